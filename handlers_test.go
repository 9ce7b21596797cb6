package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func testServer(t testing.TB, dev bool) (http.Handler, *lifecycle, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	life := newLifecycle()
	life.setReady()
	build := buildInfo{Version: "test", Revision: "abc", GoVersion: "go", Started: time.Unix(0, 0), BuildID: "build-1"}
	return newServer(logger, life, newRegistry(), build, dev, nil), life, &logs
}

func do(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestQuoteNegotiation(t *testing.T) {
	h, _, _ := testServer(t, false)
	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []struct {
		name, accept string
		wantCode     int
		wantType     string
		check        func(t *testing.T, body string)
	}{
		{"no accept", "", 200, "text/plain; charset=utf-8", exactBody(quote + "\n")},
		{"curl", "*/*", 200, "text/plain; charset=utf-8", exactBody(quote + "\n")},
		{"text/*", "text/*", 200, "text/plain; charset=utf-8", exactBody(quote + "\n")},
		{"browser", browser, 200, "text/html; charset=utf-8", func(t *testing.T, body string) {
			for _, want := range []string{"<!doctype html>", `<blockquote id="quote">` + quote + "</blockquote>"} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("production page must be self-contained with no script:\n%s", body)
			}
		}},
		{"json", "application/json", 200, "application/json", func(t *testing.T, body string) {
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil || got["quote"] != quote || len(got) != 1 {
				t.Errorf("body = %q (err %v), want {\"quote\": %q}", body, err, quote)
			}
		}},
		{"json preferred by weight", "text/plain;q=0.5, application/json", 200, "application/json", nil},
		{"html refused by q=0", "text/html;q=0, */*", 200, "text/plain; charset=utf-8", nil},
		{"most specific range wins", "text/*;q=0.1, text/html;q=0.9, application/json;q=0.5", 200, "text/html; charset=utf-8", nil},
		{"malformed weight ignored", "application/json;q=abc, text/plain", 200, "text/plain; charset=utf-8", nil},
		{"unsupported", "image/png", 406, "text/plain; charset=UTF-8", func(t *testing.T, body string) {
			if !strings.Contains(body, "text/plain, text/html, application/json") {
				t.Errorf("406 body should list acceptable types, got %q", body)
			}
		}},
		{"garbage", ";;;", 406, "text/plain; charset=UTF-8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, "GET", "/", "Accept", tt.accept)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := rec.Header().Values("Vary"); len(got) != 1 || got[0] != "Accept" {
				t.Errorf("Vary = %q, want Accept once", got)
			}
			if tt.check != nil {
				tt.check(t, rec.Body.String())
			}
		})
	}
}

func exactBody(want string) func(*testing.T, string) {
	return func(t *testing.T, body string) {
		t.Helper()
		if body != want {
			t.Errorf("body = %q, want %q", body, want)
		}
	}
}

func TestHeadHasHeadersNoBody(t *testing.T) {
	h, _, _ := testServer(t, false)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/healthz", "/readyz", "/version"} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Errorf("HEAD %s = %d with %d body bytes, want 200 and none", path, resp.StatusCode, len(body))
		}
	}
	resp, err := http.Head(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != int64(len(quote)+1) {
		t.Errorf("HEAD / Content-Length = %d, want %d like GET", resp.ContentLength, len(quote)+1)
	}
}

func TestProbes(t *testing.T) {
	h, life, _ := testServer(t, false)
	if rec := do(h, "GET", "/healthz"); rec.Code != 200 {
		t.Errorf("/healthz = %d, want 200", rec.Code)
	}
	if rec := do(h, "GET", "/readyz"); rec.Code != 200 {
		t.Errorf("/readyz = %d before shutdown, want 200", rec.Code)
	}
	life.beginShutdown()
	if rec := do(h, "GET", "/readyz"); rec.Code != 503 {
		t.Errorf("/readyz = %d after shutdown began, want 503", rec.Code)
	}
	if rec := do(h, "GET", "/healthz"); rec.Code != 200 {
		t.Errorf("/healthz = %d while draining, want 200 (the process still serves)", rec.Code)
	}
}

func TestVersion(t *testing.T) {
	h, _, _ := testServer(t, false)
	rec := do(h, "GET", "/version")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/version = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"version": "test", "revision": "abc", "dirty": false, "go": "go", "build_id": "build-1", "started": "1970-01-01T00:00:00Z"} {
		if got[k] != want {
			t.Errorf("/version %s = %v, want %v", k, got[k], want)
		}
	}
}

func TestReadBuildDefaults(t *testing.T) {
	b := readBuild(time.Now(), func(string) string { return "" })
	if b.Version != "dev" || b.BuildID == "" || !strings.HasPrefix(b.GoVersion, "go") {
		t.Errorf("readBuild() = %+v, want version dev, a build ID and the Go version", b)
	}
	if again := binaryID(); again != b.BuildID {
		t.Errorf("build ID not stable for one binary: %q then %q", b.BuildID, again)
	}
}

func TestMetrics(t *testing.T) {
	h, _, _ := testServer(t, false)
	do(h, "GET", "/")
	do(h, "GET", "/")
	do(h, "GET", "/no/such/page")
	body := do(h, "GET", "/metrics").Body.String()
	for _, want := range []string{
		`askeladden_http_requests_total{code="200",method="GET",route="/"} 2`,
		`askeladden_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`askeladden_http_request_duration_seconds_bucket{code="200",method="GET",route="/",le="+Inf"} 2`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestErrors(t *testing.T) {
	h, _, _ := testServer(t, false)
	tests := []struct {
		method, path, accept string
		code                 int
		ctype, bodyHas       string
	}{
		{"GET", "/nope", "", 404, "text/plain; charset=UTF-8", "Not Found"},
		{"GET", "/nope", "application/json", 404, "application/json", `"status":404`},
		{"GET", "/nope", "text/html", 404, "text/html; charset=UTF-8", "<h1>404 Not Found</h1>"},
		{"POST", "/", "", 405, "text/plain; charset=UTF-8", "Method Not Allowed"},
		{"DELETE", "/healthz", "application/json", 405, "application/json", `"status":405`},
		{"PUT", "/version", "text/html", 405, "text/html; charset=UTF-8", "405 Method Not Allowed"},
	}
	for _, tt := range tests {
		rec := do(h, tt.method, tt.path, "Accept", tt.accept)
		if rec.Code != tt.code || rec.Header().Get("Content-Type") != tt.ctype || !strings.Contains(rec.Body.String(), tt.bodyHas) {
			t.Errorf("%s %s (Accept %q) = %d %q %q; want %d %q containing %q",
				tt.method, tt.path, tt.accept, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tt.code, tt.ctype, tt.bodyHas)
		}
		if tt.code == 405 {
			allow := rec.Header().Get("Allow")
			if !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
				t.Errorf("%s %s: Allow = %q, want GET and HEAD listed", tt.method, tt.path, allow)
			}
		}
	}
}

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

func TestDevModeOnlyInDev(t *testing.T) {
	prod, _, _ := testServer(t, false)
	for _, p := range []string{devScriptPath, devEventsPath} {
		if rec := do(prod, "GET", p); rec.Code != 404 {
			t.Errorf("production serves %s: %d", p, rec.Code)
		}
	}

	dev, life, _ := testServer(t, true)
	page := do(dev, "GET", "/", "Accept", "text/html").Body.String()
	if !strings.Contains(page, `<script src="`+devScriptPath+`" data-build="build-1">`) {
		t.Errorf("dev page lacks the reload script tagged with the build ID:\n%s", page)
	}
	js := do(dev, "GET", devScriptPath)
	if js.Code != 200 || !strings.HasPrefix(js.Header().Get("Content-Type"), "text/javascript") || !strings.Contains(js.Body.String(), "EventSource") {
		t.Errorf("reload script = %d %q", js.Code, js.Header().Get("Content-Type"))
	}

	srv := httptest.NewServer(dev)
	defer srv.Close()
	resp, err := http.Get(srv.URL + devEventsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	first := make([]byte, 256)
	n, _ := io.ReadAtLeast(resp.Body, first, len("retry: 100\nevent: build\ndata: build-1\n\n"))
	if got := string(first[:n]); got != "retry: 100\nevent: build\ndata: build-1\n\n" {
		t.Errorf("first event = %q", got)
	}
	// The stream must end when shutdown begins, or it would hold Shutdown.
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	life.beginShutdown()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("event stream still open 5s after shutdown began")
	}
}

func TestEditTime(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for i, name := range []string{"a.go", "go.mod", "README.md"} {
		p := dir + "/" + name
		os.WriteFile(p, []byte("x"), 0o644)
		os.Chtimes(p, old, old.Add(time.Duration(i)*time.Minute))
	}
	got, ok, err := editTime(envFunc(nil), dir)
	if err != nil || !ok || !got.Equal(old.Add(time.Minute)) {
		t.Errorf("editTime = %v %v %v, want go.mod's time (README.md is not code)", got, ok, err)
	}
	want := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	got, ok, err = editTime(envFunc(map[string]string{"ASKELADDEN_EDIT_TIME": want.Format(time.RFC3339Nano)}), dir)
	if err != nil || !ok || !got.Equal(want) {
		t.Errorf("from ASKELADDEN_EDIT_TIME: %v %v %v", got, ok, err)
	}
	if _, _, err := editTime(envFunc(map[string]string{"ASKELADDEN_EDIT_TIME": "yesterday"}), dir); err == nil || exitCode(err) != 2 {
		t.Errorf("a bad ASKELADDEN_EDIT_TIME: %v, want a usage error", err)
	}
	if d, ok := deployLatency(time.Now().Add(-1500*time.Millisecond), time.Now()); !ok || d < time.Second {
		t.Errorf("deployLatency of a recent edit = %v %v", d, ok)
	}
	if _, ok := deployLatency(old, time.Now()); ok {
		t.Error("an hour-old edit is not this build's deploy latency")
	}
}
