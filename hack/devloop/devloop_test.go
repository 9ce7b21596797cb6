package devloop

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSetQuote(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "quote.go")
	if err := os.WriteFile(p, []byte("package main\n\n// keep\nconst quote = \"old\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetQuote(dir, `new "quoted" text`); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "package main\n\n// keep\nconst quote = \"new \\\"quoted\\\" text\"\n"; string(b) != want {
		t.Errorf("quote.go = %q, want %q", b, want)
	}
	if err := os.WriteFile(p, []byte("package main\nvar quote = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetQuote(dir, "x"); err == nil || !strings.Contains(err.Error(), "no line") {
		t.Errorf("SetQuote on a file without the constant: %v", err)
	}
}

func TestCopyProject(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, d := range []string{"devimage/buildrec", "devimage/devrun"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "main.go", "quote.go", "main_test.go", "README.md", ".air.toml",
		"devimage/buildrec/main.go", "devimage/buildrec/main_test.go", "devimage/devrun/main.go"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CopyProject(src, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadDir(dst)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".air.toml devimage go.mod go.sum main.go quote.go" {
		t.Errorf("copied %v", names)
	}
	// air's build command runs the build recorder; nothing else below.
	got, _ = os.ReadDir(filepath.Join(dst, "devimage"))
	rec, _ := os.ReadDir(filepath.Join(dst, "devimage", "buildrec"))
	if len(got) != 1 || len(rec) != 1 || rec[0].Name() != "main.go" {
		t.Errorf("copied under devimage: %v, buildrec: %v; want buildrec/main.go alone", got, rec)
	}
	if err := CopyProject(t.TempDir(), t.TempDir()); err == nil {
		t.Error("copying a directory without quote.go must fail")
	}
}

// fakeDevServer is a dev-mode server that restarts into a new build when
// flip is closed: its event streams end, and new ones announce "b".
func fakeDevServer(t *testing.T, flip chan struct{}) string {
	t.Helper()
	flipped := func() bool {
		select {
		case <-flip:
			return true
		default:
			return false
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_dev/events", func(w http.ResponseWriter, r *http.Request) {
		id := "a"
		if flipped() {
			id = "b"
		}
		fmt.Fprintf(w, "retry: 100\nevent: build\ndata: %s\n\n", id)
		w.(http.Flusher).Flush()
		if id == "a" {
			select {
			case <-flip:
			case <-r.Context().Done():
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if flipped() {
			fmt.Fprintln(w, "new quote")
			return
		}
		fmt.Fprintln(w, "old quote")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func TestWaitForNewBuild(t *testing.T) {
	flip := make(chan struct{})
	base := fakeDevServer(t, flip)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := BuildID(ctx, base)
	if err != nil || id != "a" {
		t.Fatalf("BuildID = %q, %v; want a", id, err)
	}
	at := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		at <- time.Now()
		close(flip)
	}()
	seen, err := WaitForNewBuild(ctx, base, id, "new quote", 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d := seen.Sub(<-at); d < 0 || d > 2*time.Second {
		t.Errorf("new build seen %s after the restart, want soon after it", d)
	}

	// A server that never restarts: the wait ends with the context.
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := WaitForNewBuild(short, fakeDevServer(t, make(chan struct{})), "a", "new quote", 2*time.Millisecond); err == nil {
		t.Error("WaitForNewBuild returned without a new build")
	}
	if _, err := BuildID(ctx, "http://127.0.0.1:1/"); err == nil {
		t.Error("BuildID of a server that is not there succeeded")
	}
}
