package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// devServer is the app in dev mode: build "b<n>", built from the edit at
// edit; next restarts it into the next build, ending the open streams.
type devServer struct {
	mu      sync.Mutex
	n       int
	edit    time.Time
	restart chan struct{}
}

func (d *devServer) next(edit time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	d.edit = edit
	close(d.restart)
	d.restart = make(chan struct{})
}

func (d *devServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	ch, n, edit := d.restart, d.n, d.edit
	d.mu.Unlock()
	if r.URL.Path == "/version" {
		now := time.Now()
		fmt.Fprintf(w, `{"build_id":"b%d","started":%q,"edit_to_ready":%q}`, n, now.Format(time.RFC3339Nano), now.Sub(edit).Round(time.Millisecond).String())
		return
	}
	fmt.Fprintf(w, "retry: 100\nevent: build\ndata: b%d\n\n", n)
	w.(http.Flusher).Flush()
	select {
	case <-ch:
	case <-r.Context().Done():
	}
}

func TestWaitServed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("quote.go", "package main\nconst quote = \"a\"\n")
	d := &devServer{restart: make(chan struct{}), edit: time.Now().Add(-time.Hour)}
	srv := httptest.NewServer(d)
	defer srv.Close()
	t.Chdir(dir)
	waited := func(args ...string) (time.Duration, string) {
		t.Helper()
		var log strings.Builder
		start := time.Now()
		if err := run(context.Background(), append([]string{"waitserved", "-url", srv.URL + "/", "-timeout", "3s"}, args...), &log); err != nil {
			t.Fatal(err)
		}
		return time.Since(start), log.String()
	}

	if d, log := waited(); d > time.Second {
		t.Errorf("first run waited %s (%s): nothing to wait for", d, log)
	}
	write("handlers_test.go", "package main\n")
	if d, log := waited(); d > time.Second {
		t.Errorf("a test-only edit waited %s (%s)", d, log)
	}

	// An edit to the app: the tests wait until it serves a new build.
	write("quote.go", "package main\nconst quote = \"b\"\n")
	info, err := os.Stat(filepath.Join(dir, "quote.go"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		d.next(info.ModTime())
	}()
	if d, log := waited(); d < 250*time.Millisecond || !strings.Contains(log, "serves build b1") {
		t.Errorf("an app edit waited %s (%s), want until the new build (300 ms)", d, log)
	}
	// No edit since: no wait.
	if d, log := waited(); d > time.Second {
		t.Errorf("a run with no new edit waited %s (%s)", d, log)
	}

	// A build that never comes (the edit does not compile): give up.
	write("quote.go", "package main\nconst quote = \n")
	// In a later second than the build the app serves: the edit times it
	// can compare are whole seconds.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(dir, "quote.go"), later, later); err != nil {
		t.Fatal(err)
	}
	if d, log := waited("-timeout", "300ms"); d > 2*time.Second || !strings.Contains(log, "running the tests anyway") {
		t.Errorf("a failed build waited %s (%s), want the timeout", d, log)
	}
	// No app at all: no wait, no error.
	write("quote.go", "package main\nconst quote = \"c\"\n")
	var log strings.Builder
	if err := run(context.Background(), []string{"waitserved", "-url", "http://127.0.0.1:1/"}, &log); err != nil || !strings.Contains(log.String(), "not waiting") {
		t.Errorf("no app: %v, %q", err, log.String())
	}
	if err := run(context.Background(), []string{"waitserved", "extra"}, io.Discard); err == nil {
		t.Error("an argument was accepted")
	}
}
