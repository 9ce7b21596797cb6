package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ornlu-is/askeladden/internal/devloop"
)

type syncBuffer = devloop.Buffer

func freePort(t testing.TB) int {
	t.Helper()
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
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
	out    *syncBuffer
}

func startRun(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	port := freePort(t)
	if env == nil {
		env = map[string]string{}
	}
	env["PORT"] = strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{base: fmt.Sprintf("http://127.0.0.1:%d", port), cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	go func() { r.done <- run(ctx, append([]string{"askeladden"}, args...), envFunc(env), r.out, r.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
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

func TestRunEndToEnd(t *testing.T) {
	r := startRun(t, map[string]string{"LOG_FORMAT": "json"})
	if code, body, _ := get(t, r.base+"/"); code != 200 || body != quote+"\n" {
		t.Errorf("GET / = %d %q", code, body)
	}
	if code, body, _ := get(t, r.base+"/", "Accept", "application/json"); code != 200 || !strings.Contains(body, `"quote"`) {
		t.Errorf("GET / json = %d %q", code, body)
	}
	if code, _, _ := get(t, r.base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil (clean exit)", err)
	}
	// Every log line is JSON, and the run says it served and stopped.
	sc := bufio.NewScanner(strings.NewReader(r.out.String()))
	var msgs []string
	for sc.Scan() {
		var line struct{ Msg string }
		if err := jsonUnmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("LOG_FORMAT=json printed a non-JSON line %q", sc.Text())
		}
		msgs = append(msgs, line.Msg)
	}
	joined := strings.Join(msgs, ",")
	for _, want := range []string{"serving", "request", "shutting down", "stopped"} {
		if !strings.Contains(joined, want) {
			t.Errorf("logs %v lack %q", msgs, want)
		}
	}
	if _, err := http.Get(r.base + "/healthz"); err == nil {
		t.Error("server still answers after run returned")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantMsg string
	}{
		{"bad PORT", map[string]string{"PORT": "eighty"}, nil, `invalid PORT "eighty": want an integer from 0 to 65535`},
		{"PORT out of range", map[string]string{"PORT": "70000"}, nil, `invalid PORT "70000"`},
		{"bad LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}, nil, `invalid LOG_FORMAT "xml": want text or json`},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, nil, `invalid LOG_LEVEL "loud": want debug, info, warn or error`},
		{"bad SHUTDOWN_TIMEOUT", map[string]string{"SHUTDOWN_TIMEOUT": "10"}, nil, `invalid SHUTDOWN_TIMEOUT "10": want a non-negative Go duration`},
		{"negative DRAIN_DELAY", map[string]string{"DRAIN_DELAY": "-1s"}, nil, `invalid DRAIN_DELAY "-1s"`},
		{"bad ASKELADDEN_DEV", map[string]string{"ASKELADDEN_DEV": "maybe"}, nil, `invalid ASKELADDEN_DEV "maybe": want 1, 0, true or false`},
		{"bad flag value", nil, []string{"-port", "x"}, `invalid value "x" for flag -port: want an integer`},
		{"unknown flag", nil, []string{"-verbose"}, "flag provided but not defined: -verbose"},
		{"stray argument", nil, []string{"serve"}, `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"askeladden"}, tt.args...), envFunc(tt.env), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.wantMsg)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code = %d, want 2", exitCode(err))
			}
		})
	}

	t.Run("flag overrides env", func(t *testing.T) {
		cfg, err := parseConfig([]string{"x", "-port", "9000", "-dev"}, envFunc(map[string]string{"PORT": "8000"}), io.Discard)
		if err != nil || cfg.port != 9000 || !cfg.dev || cfg.shutdownTimeout != 10*time.Second || cfg.logLevel != slog.LevelInfo {
			t.Errorf("cfg = %+v, err %v", cfg, err)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"askeladden", "-h"}, envFunc(nil), &out, &out); err != nil {
			t.Fatalf("-h returned %v, want nil", err)
		}
		for _, want := range []string{"Usage:", "-port", "PORT", "-drain-delay", "DRAIN_DELAY", "-healthcheck"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("usage lacks %q:\n%s", want, out.String())
			}
		}
	})
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	start := time.Now()
	err = run(context.Background(), []string{"askeladden"}, envFunc(map[string]string{"PORT": port}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot listen on port "+port) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want a clear address-in-use error", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code = %d, want 1", exitCode(err))
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s to fail: it must fail at once", time.Since(start))
	}
}

func TestHealthcheckMode(t *testing.T) {
	r := startRun(t, nil)
	port := strings.TrimPrefix(r.base, "http://127.0.0.1:")
	if err := run(context.Background(), []string{"askeladden", "-healthcheck"}, envFunc(map[string]string{"PORT": port}), io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck against a live server: %v", err)
	}
	dead := strconv.Itoa(freePort(t))
	err := run(context.Background(), []string{"askeladden", "-healthcheck"}, envFunc(map[string]string{"PORT": dead}), io.Discard, io.Discard)
	if err == nil || exitCode(err) != 1 {
		t.Errorf("healthcheck with nothing listening: err %v, want exit 1", err)
	}
}

func TestHTTPLimits(t *testing.T) {
	r := startRun(t, nil)
	addr := strings.TrimPrefix(r.base, "http://")

	t.Run("oversized headers get 431", func(t *testing.T) {
		req, _ := http.NewRequest("GET", r.base+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status = %d, want 431", resp.StatusCode)
		}
	})

	t.Run("slow headers are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		// Never finish the headers; the server must hang up on its own.
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("server kept a header-less connection open for %s", time.Since(start))
		}
		t.Logf("slow client cut off after %s", time.Since(start).Round(time.Millisecond))
	})
}

// slowHandler wraps the real server with one slow route, so a request can
// be held in flight across a shutdown.
func slowHandler(h http.Handler, started chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			time.Sleep(1500 * time.Millisecond)
			io.WriteString(w, "slow done\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestGracefulShutdown(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := newLifecycle()
	h := newServer(logger, life, newRegistry(), readBuild(time.Now(), envFunc(nil)), false, nil)
	started := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config{drainDelay: 500 * time.Millisecond, shutdownTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, slowHandler(h, started), life, cfg, logger) }()
	waitReady(t, base, 5*time.Second)

	// Concurrent clients keep going through the shutdown. A request that
	// started before shutdown began must complete; one that started later
	// may find the listener gone (refused, or reset while still in the
	// accept queue), which is what the drain delay exists to make rare.
	var ok, dropped, lateFailures atomic.Int64
	var shutdownAt atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for n := 0; n < 2000; n++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				began := time.Now().UnixNano()
				resp, err := client.Get(base + "/")
				if err != nil {
					if at := shutdownAt.Load(); at == 0 || began < at {
						dropped.Add(1)
						t.Errorf("request started before shutdown was dropped: %v", err)
					} else {
						lateFailures.Add(1)
					}
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "slow done\n" {
			slow <- fmt.Errorf("slow request got %d %q", resp.StatusCode, b)
			return
		}
		slow <- nil
	}()
	<-started
	shutdownAt.Store(time.Now().UnixNano())
	cancel()

	// During the drain delay the server still serves, but is not ready.
	time.Sleep(100 * time.Millisecond)
	if code, _, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz during drain = %d, want 503", code)
	}
	if code, body, _ := get(t, base+"/"); code != 200 || body != quote+"\n" {
		t.Errorf("GET / during drain = %d %q, want the quote", code, body)
	}

	if err := <-slow; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return")
	}
	close(stopLoad)
	wg.Wait()
	t.Logf("%d requests answered under load; %d started before shutdown and dropped; %d started after it and failed at the closed listener",
		ok.Load(), dropped.Load(), lateFailures.Load())
	if ok.Load() == 0 {
		t.Error("load generator made no successful request")
	}
}

func TestShutdownTimeoutCutsOff(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := newLifecycle()
	started := make(chan struct{}, 1)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, slowHandler(http.NotFoundHandler(), started), life, config{shutdownTimeout: 100 * time.Millisecond}, logger)
	}()
	go http.Get("http://" + ln.Addr().String() + "/slow")
	<-started
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Errorf("err = %v, want the shutdown timeout named", err)
	}
}

// The signal path needs a real process: build the binary once.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "askeladden-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "askeladden")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func startBinary(t *testing.T, env ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(buildBinary(t))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), append(env, "PORT="+strconv.Itoa(port))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, base, 10*time.Second)
	return cmd, base, out
}

func TestSignals(t *testing.T) {
	t.Run("SIGTERM drains and exits 0", func(t *testing.T) {
		cmd, base, out := startBinary(t, "DRAIN_DELAY=300ms")
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
		if code, _, _ := get(t, base+"/readyz"); code != 503 {
			t.Errorf("/readyz after SIGTERM = %d, want 503", code)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, out)
		}
	})
	t.Run("second signal exits at once", func(t *testing.T) {
		cmd, _, out := startBinary(t, "DRAIN_DELAY=30s")
		cmd.Process.Signal(syscall.SIGINT)
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("second signal took %s to end the process", took)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Success() {
			t.Errorf("exit after a second signal = %v, want a non-zero exit\n%s", err, out)
		}
	})
	t.Run("config error exits 2 with one line", func(t *testing.T) {
		cmd := exec.Command(buildBinary(t))
		cmd.Env = append(os.Environ(), "LOG_LEVEL=chatty")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit = %v, want code 2", err)
		}
		if got := stderr.String(); got != "askeladden: invalid LOG_LEVEL \"chatty\": want debug, info, warn or error\n" {
			t.Errorf("stderr = %q", got)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
