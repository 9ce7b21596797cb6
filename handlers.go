package main

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
)

var (
	quoteText = []byte(quote + "\n")
	quoteJSON = []byte(fmt.Sprintf("{\"quote\":%q}\n", quote))
)

func handleQuote(p page) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, ok := negotiate(c.Request().Header.Get(echo.HeaderAccept))
		c.Response().Header().Add(echo.HeaderVary, echo.HeaderAccept)
		if !ok {
			return echo.NewHTTPError(http.StatusNotAcceptable, "acceptable types: text/plain, text/html, application/json")
		}
		switch f {
		case formatHTML:
			c.Response().Header().Set("Content-Security-Policy", p.csp)
			return c.Blob(http.StatusOK, contentType(f), p.html)
		case formatJSON:
			return c.Blob(http.StatusOK, contentType(f), quoteJSON)
		default:
			return c.Blob(http.StatusOK, contentType(f), quoteText)
		}
	}
}

func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.String(http.StatusOK, "ok\n")
	}
}

func handleReadyz(life *lifecycle) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !life.ready.Load() {
			return c.String(http.StatusServiceUnavailable, "shutting down\n")
		}
		return c.String(http.StatusOK, "ready\n")
	}
}

func handleVersion(build buildInfo) echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, build)
	}
}

// handleError writes every error in the format the request asked for and
// never leaks an internal error's text to the client.
func handleError(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError)
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if m, ok := he.Message.(string); ok && he.Code < 500 {
				msg = m
			} else {
				msg = http.StatusText(code)
			}
		} else {
			logger.Error("handler error", "err", err, "path", c.Request().URL.Path, "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}

		f, ok := negotiate(c.Request().Header.Get(echo.HeaderAccept))
		if !ok {
			f = formatText
		}
		if !slices.Contains(c.Response().Header().Values(echo.HeaderVary), echo.HeaderAccept) {
			c.Response().Header().Add(echo.HeaderVary, echo.HeaderAccept)
		}
		var werr error
		switch {
		case c.Request().Method == http.MethodHead:
			werr = c.NoContent(code)
		case f == formatJSON:
			werr = c.JSON(code, map[string]any{"error": msg, "status": code})
		case f == formatHTML:
			body := fmt.Sprintf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%d %s</title></head><body><h1>%d %s</h1><p>%s</p></body></html>\n",
				code, http.StatusText(code), code, http.StatusText(code), template.HTMLEscapeString(msg))
			werr = c.HTML(code, body)
		default:
			werr = c.String(code, msg+"\n")
		}
		if werr != nil {
			logger.Warn("writing error response", "err", werr)
		}
	}
}
