package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
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

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitReady polls /readyz until it answers 200 or the deadline passes.
func waitReady(t testing.TB, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not ready within %s", base, within)
}

type running struct {
	base   string
	cancel context.CancelFunc
	done   chan error
	out    *lockedBuffer
}

func startRun(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	port := freePort(t)
	if env == nil {
		env = map[string]string{}
	}
	env["PORT"] = strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{base: fmt.Sprintf("http://127.0.0.1:%d", port), cancel: cancel, done: make(chan error, 1), out: &lockedBuffer{}}
	go func() { r.done <- run(ctx, append([]string{"askeladden"}, args...), envFunc(env), r.out, r.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("run returned %v after cancel, want a clean stop", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return within 15s of cancel")
		}
	})
	waitReady(t, r.base, 10*time.Second)
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // leave it for Cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15s of cancel")
		return nil
	}
}

func get(t *testing.T, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// asMainEnv makes this test binary run the program itself instead of the
// tests: the signal tests need a real process, and re-running the test
// binary gives them one without a separate go build.
const asMainEnv = "ASKELADDEN_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Args = []string{"askeladden"}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serverCommand runs the program, as main does, in a process of its own.
func serverCommand(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), asMainEnv+"=1"), env...)
	return cmd
}

func startBinary(t *testing.T, env ...string) (*exec.Cmd, string, *lockedBuffer) {
	t.Helper()
	port := freePort(t)
	cmd := serverCommand(append(env, "PORT="+strconv.Itoa(port))...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, base, 10*time.Second)
	return cmd, base, out
}

// lockedBuffer collects a server's or a process's output while it runs in
// another goroutine, safe to read at any time.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
