package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// edge is the one middleware every request passes through: it sets the
// request ID and security headers, recovers panics, and logs and counts the
// response. It is one function rather than four because Echo wraps each
// middleware in a fresh closure on every request.
func edge(logger *slog.Logger, m *metrics, dev bool) echo.MiddlewareFunc {
	ids := newIDSource()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req, res := c.Request(), c.Response()
			id := req.Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				id = ids.next()
			}
			h := res.Header()
			h[echo.HeaderXRequestID] = []string{id}
			setSecurityHeaders(h, dev)

			if err := callRecovering(next, c, logger, id); err != nil {
				// Render the error now so the log and metrics see the
				// status the client gets.
				c.Error(err)
			}

			d := time.Since(start)
			m.observe(req.Method, c.Path(), res.Status, d)
			// Built by hand: Logger.LogAttrs would also walk the stack for a
			// source location that nobody reads, on every request.
			if lh := logger.Handler(); lh.Enabled(req.Context(), slog.LevelInfo) {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(
					slog.String("method", req.Method),
					slog.String("path", req.URL.Path),
					slog.Int("status", res.Status),
					slog.Duration("duration", d),
					slog.String("request_id", id),
				)
				_ = lh.Handle(req.Context(), r)
			}
			return nil
		}
	}
}

// The header values are shared, never modified, so setting them costs no
// allocation per request.
var (
	hdrNosniff    = []string{"nosniff"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrDeny       = []string{"DENY"}
	hdrNoStore    = []string{"no-store"}
	// Pages set their own, looser policy; everything else (text, JSON,
	// errors) may load nothing at all.
	hdrStrictCSP = []string{"default-src 'none'; frame-ancestors 'none'"}
)

func setSecurityHeaders(h http.Header, dev bool) {
	h["X-Content-Type-Options"] = hdrNosniff
	h["Referrer-Policy"] = hdrNoReferrer
	h["X-Frame-Options"] = hdrDeny
	h["Content-Security-Policy"] = hdrStrictCSP
	if dev {
		// A reloading page must never come from a cache.
		h["Cache-Control"] = hdrNoStore
	}
}

// callRecovering runs the handler and turns a panic into a logged 500; the
// client sees no stack trace.
func callRecovering(next echo.HandlerFunc, c echo.Context, logger *slog.Logger, id string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(r) // net/http's own signal to drop the connection
			}
			logger.Error("panic in handler", "panic", fmt.Sprint(r), "path", c.Request().URL.Path,
				"request_id", id, "stack", string(debug.Stack()))
			err = echo.NewHTTPError(http.StatusInternalServerError)
		}
	}()
	return next(c)
}

// validRequestID accepts a caller's X-Request-ID, so one ID follows a
// request across services, but only a short, log-safe one.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':'
		if !ok {
			return false
		}
	}
	return true
}

// idSource makes request IDs from a random per-process prefix and a
// counter: unique across replicas and restarts, without reading the
// system's randomness on every request.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return &idSource{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (s *idSource) next() string {
	var buf [32]byte
	out := append(buf[:0], s.prefix...)
	return string(strconv.AppendUint(out, s.n.Add(1), 10))
}
