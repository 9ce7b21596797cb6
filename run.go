package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// run is the whole program behind main, with its dependencies passed in so
// tests can drive it end to end in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.healthcheck {
		return healthcheck(ctx, cfg.port)
	}

	logger := newLogger(cfg, stdout)
	started := time.Now()

	// The first SIGINT/SIGTERM starts a graceful stop; stop() hands signals
	// back to the runtime, so a second one kills the process at once.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("cannot listen on port %d: %w (is another server already using it? set PORT or -port)", cfg.port, err)
	}

	reg := newRegistry()
	life := newLifecycle()
	build := readBuild(started)
	if cfg.dev {
		edit, ok, err := editTime(getenv, ".")
		if err != nil {
			ln.Close()
			return err
		}
		if d, recent := deployLatency(edit, time.Now()); ok && recent {
			build.EditToReady = d.Round(time.Millisecond).String()
		}
	}
	// The build-status watcher exists in dev mode only: production reads
	// no record and sends no event.
	var status *buildStatus
	if cfg.dev {
		status = newBuildStatus()
		watchBuildStatus(cfg.buildStatus, statusPollEvery, status, logger, life.stopping)
		logger.Info("watching the dev loop's build status", "path", cfg.buildStatus)
	}
	logger.Info("serving", "addr", ln.Addr().String(), "dev", cfg.dev, "version", build.Version, "build_id", build.BuildID)
	return serve(ctx, ln, newServer(logger, life, reg, build, cfg.dev, status), life, cfg, logger)
}

// serve answers on ln until ctx ends, then drains: not ready at once, still
// serving for drainDelay, then no new connections and up to shutdownTimeout
// for the requests in flight.
func serve(ctx context.Context, ln net.Listener, h http.Handler, life *lifecycle, cfg config, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.http.readHeaderTimeout,
		ReadTimeout:       cfg.http.readTimeout,
		WriteTimeout:      cfg.http.writeTimeout,
		IdleTimeout:       cfg.http.idleTimeout,
		MaxHeaderBytes:    cfg.http.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	life.setReady()

	select {
	case err := <-serveErr:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}

	life.beginShutdown()
	// Tell keep-alive clients to reconnect, so they find a ready pod next.
	srv.SetKeepAlivesEnabled(false)
	logger.Info("shutting down", "drain_delay", cfg.drainDelay.String(), "shutdown_timeout", cfg.shutdownTimeout.String())
	time.Sleep(cfg.drainDelay)

	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("requests still running after SHUTDOWN_TIMEOUT %s were cut off: %w", cfg.shutdownTimeout, err)
	}
	logger.Info("stopped")
	return nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// healthcheck lets a shell-less image probe itself (Docker HEALTHCHECK).
func healthcheck(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}
