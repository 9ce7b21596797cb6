package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// bareQuote is the floor for GET /: net/http alone writing the same bytes.
func bareQuote() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(quoteText)
	})
}

// fullStack is the production handler with every middleware on; the log
// line is still formatted, only its destination is discarded.
func fullStack() http.Handler {
	life := newLifecycle()
	life.setReady()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return newServer(logger, life, newRegistry(), readBuild(time.Now()), false, nil)
}

// discardWriter is a ResponseWriter that costs nothing, so the benchmark
// measures the handlers rather than httptest's recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *discardWriter) WriteHeader(code int) { w.code = code }

// BenchmarkQuote calls each handler directly: it isolates the cost the
// Echo stack and middleware add to one request.
func BenchmarkQuote(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare-nethttp", bareQuote()}, {"echo-full-stack", fullStack()}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = 200
				bc.h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkQuoteHTTP goes through a real server on loopback with a
// keep-alive client, which is what a caller pays.
func BenchmarkQuoteHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare-nethttp", bareQuote()}, {"echo-full-stack", fullStack()}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			client := srv.Client()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(srv.URL + "/")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
