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
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

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
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
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
	if resp, err := http.Get(r.base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("server still answers after run returned")
	}
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
	t.Parallel()
	cfg, err := parseConfig([]string{"askeladden"}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.http != defaultHTTPLimits || cfg.http.readHeaderTimeout != 5*time.Second || cfg.http.maxHeaderBytes != 16<<10 {
		t.Fatalf("parseConfig's HTTP limits = %+v, want the defaults: 5s for headers, 16 KiB of them", cfg.http)
	}
	// The real server with the real limits, but a slow client is cut off
	// after 300 ms instead of 5 s, so the test need not wait that long.
	cfg.http.readHeaderTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := newLifecycle()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, newServer(logger, life, newRegistry(), readBuild(time.Now()), false, nil), life, cfg, logger)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	base := "http://" + addr
	waitReady(t, base, 5*time.Second)

	t.Run("oversized headers get 431", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/", nil)
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
		if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = io.ReadAll(conn)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("server kept a header-less connection open for %s", time.Since(start))
		}
		if took := time.Since(start); took < cfg.http.readHeaderTimeout {
			t.Errorf("slow client cut off after %s, before the %s header timeout", took, cfg.http.readHeaderTimeout)
		}
		t.Logf("slow client cut off after %s", time.Since(start).Round(time.Millisecond))
	})
}

// slowHandler wraps the real server with one slow route, so a request can
// be held in flight across a shutdown.
func slowHandler(h http.Handler, started chan<- struct{}, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			time.Sleep(d)
			_, _ = io.WriteString(w, "slow done\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := newLifecycle()
	h := newServer(logger, life, newRegistry(), readBuild(time.Now()), false, nil)
	started := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	// The slow request outlasts the drain delay, so it is still in flight
	// when the server stops accepting and Shutdown must wait for it.
	cfg := config{drainDelay: 200 * time.Millisecond, shutdownTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, slowHandler(h, started, 3*cfg.drainDelay), life, cfg, logger) }()
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
				_, _ = io.Copy(io.Discard, resp.Body)
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
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	life := newLifecycle()
	started := make(chan struct{}, 1)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, slowHandler(http.NotFoundHandler(), started, 1500*time.Millisecond), life, config{shutdownTimeout: 100 * time.Millisecond}, logger)
	}()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Errorf("err = %v, want the shutdown timeout named", err)
	}
}

func TestSignals(t *testing.T) {
	t.Parallel()
	t.Run("SIGTERM drains and exits 0", func(t *testing.T) {
		cmd, base, out := startBinary(t, "DRAIN_DELAY=300ms")
		_ = cmd.Process.Signal(syscall.SIGTERM)
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
		_ = cmd.Process.Signal(syscall.SIGINT)
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		_ = cmd.Process.Signal(syscall.SIGINT)
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
		cmd := serverCommand("LOG_LEVEL=chatty")
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
