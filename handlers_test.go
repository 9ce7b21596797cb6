package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
