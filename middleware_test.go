package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func TestPanicIsRecovered(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	e := newServer(logger, newLifecycle(), prometheus.NewRegistry(), buildInfo{}, false, nil).(*echo.Echo)
	e.GET("/boom", func(echo.Context) error { panic("secret internals") })

	for _, accept := range []string{"", "application/json"} {
		rec := do(e, "GET", "/boom", "Accept", accept)
		if rec.Code != 500 {
			t.Fatalf("status = %d, want 500", rec.Code)
		}
		if b := rec.Body.String(); strings.Contains(b, "secret") || strings.Contains(b, "goroutine") || !strings.Contains(b, "Internal Server Error") {
			t.Errorf("500 body leaks or lacks the generic message: %q", b)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Error("a 500 lost the security headers")
		}
	}
	if l := logs.String(); !strings.Contains(l, "panic in handler") || !strings.Contains(l, "secret internals") || !strings.Contains(l, "goroutine") {
		t.Errorf("panic not logged with its value and stack: %s", l)
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	h, _, _ := testServer(t, false)
	for _, path := range []string{"/", "/healthz", "/readyz", "/version", "/metrics", "/missing"} {
		rec := do(h, "GET", path)
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
			}
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: CSP = %q", path, rec.Header().Get("Content-Security-Policy"))
		}
	}
	csp := do(h, "GET", "/", "Accept", "text/html").Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("page CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("page CSP allows inline code: %q", csp)
	}
}

func TestRequestIDAndLog(t *testing.T) {
	h, _, logs := testServer(t, false)
	rec := do(h, "GET", "/", "X-Request-ID", "abc-123")
	if got := rec.Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID = %q, want the caller's abc-123", got)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("want exactly one JSON log line per request, got %q: %v", logs.String(), err)
	}
	for k, want := range map[string]any{"msg": "request", "method": "GET", "path": "/", "status": float64(200), "request_id": "abc-123"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("log line has no duration")
	}

	for _, bad := range []string{"has space", "new\nline", strings.Repeat("x", 129)} {
		got := do(h, "GET", "/", "X-Request-ID", bad).Header().Get("X-Request-ID")
		if got == bad || !validRequestID(got) {
			t.Errorf("unsafe X-Request-ID %q was kept or not replaced: %q", bad, got)
		}
	}
	a, b := do(h, "GET", "/").Header().Get("X-Request-ID"), do(h, "GET", "/").Header().Get("X-Request-ID")
	if a == "" || a == b {
		t.Errorf("generated IDs %q and %q should be present and distinct", a, b)
	}
}
