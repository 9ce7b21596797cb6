package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// requestID keeps a caller's X-Request-ID so one ID follows a request
// across services, but only a sane one: it ends up in our logs.
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func securityHeaders(dev bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			// Pages set their own, looser policy; everything else (text,
			// JSON, errors) may load nothing at all.
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			if dev {
				// A reloading page must never be served from cache.
				h.Set("Cache-Control", "no-store")
			}
			return next(c)
		}
	}
}

// newRegistry is a registry of our own rather than the global one, so each
// server (and each test) starts from zero.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "askeladden_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "askeladden_http_request_duration_seconds",
			Help:    "HTTP request latency by method, route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe logs one line and records metrics per request. It renders a
// returned error first so both see the status the client saw.
func observe(logger *slog.Logger, m *metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			d := time.Since(start)
			req, res := c.Request(), c.Response()
			route := c.Path()
			if route == "" || res.Status == http.StatusNotFound || res.Status == http.StatusMethodNotAllowed {
				// Unmatched paths are unbounded; one label keeps the series finite.
				route = "unmatched"
			}
			code := strconv.Itoa(res.Status)
			m.requests.WithLabelValues(req.Method, route, code).Inc()
			m.duration.WithLabelValues(req.Method, route, code).Observe(d.Seconds())
			logger.LogAttrs(req.Context(), slog.LevelInfo, "request",
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", res.Status),
				slog.Duration("duration", d),
				slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
			)
			return nil
		}
	}
}

// recoverPanics turns a handler panic into a logged 500; the client sees
// no stack trace.
func recoverPanics(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r) // net/http's own signal to drop the connection
					}
					logger.Error("panic in handler", "panic", fmt.Sprint(r), "path", c.Request().URL.Path,
						"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "stack", string(debug.Stack()))
					err = echo.NewHTTPError(http.StatusInternalServerError)
				}
			}()
			return next(c)
		}
	}
}
