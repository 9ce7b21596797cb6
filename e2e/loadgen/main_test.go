package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLoadCountsFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every fifth request fails.
		if n.Add(1)%5 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-url", srv.URL + "/", "-workers", "2", "-max", "10", "-interval", "0s", "-duration", "30s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Sent != 20 || res.Failed != 4 || !strings.Contains(res.FirstFailure, "status 503") {
		t.Errorf("result %+v, want 20 sent, 4 failed with status 503 (server saw %d)", res, n.Load())
	}
	if res.Ended.Before(res.Started) {
		t.Errorf("ended %s before it started %s", res.Ended, res.Started)
	}
}

func TestLoadStopsAtTheDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-url", srv.URL, "-workers", "1", "-max", "1000000", "-interval", "10ms", "-duration", "200ms"}, &out, &errOut)
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); code != 0 || err != nil {
		t.Fatalf("exit %d, output %q: %v", code, out.String(), err)
	}
	// About 20 at one per 10 ms; far fewer than -max shows the deadline held.
	if res.Sent < 1 || res.Sent > 100 || res.Failed != 0 {
		t.Errorf("result %+v: want a few requests in 200ms, none failed", res)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "localhost:8090"},
		{"-url", "https://example.invalid/"},
		{"-url", "http://127.0.0.1/", "-workers", "0"},
		{"-url", "http://127.0.0.1/", "-workers", "65"},
		{"-url", "http://127.0.0.1/", "-max", "0"},
		{"-url", "http://127.0.0.1/", "-duration", "0s"},
		{"-url", "http://127.0.0.1/", "-duration", "11m"},
		{"-url", "http://127.0.0.1/", "-timeout", "0s"},
		{"-url", "http://127.0.0.1/", "extra"},
		{"-url", "http://127.0.0.1/", "-nope"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "loadgen: ") && !strings.Contains(errOut.String(), "flag provided but not defined") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and an error", args, code, out.String(), errOut.String())
		}
	}
}
