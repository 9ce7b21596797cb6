package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
	resp, err := http.Get(srv.URL + devEventsPath) //nolint:bodyclose // closed by the defer below; the reader goroutine hides that from the linter
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
	case err := <-done:
		if err != nil {
			t.Logf("stream ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event stream still open 5s after shutdown began")
	}
}
