package main

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// newServer builds the whole HTTP surface from its dependencies: the one
// constructor that tests, benchmarks and run all call, so each gets the
// stack that production runs. status is the dev loop's build status, nil
// outside dev mode.
func newServer(logger *slog.Logger, life *lifecycle, reg *prometheus.Registry, build buildInfo, dev bool, status *buildStatus) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = handleError(logger)

	// Every response, errors and panics included, gets an ID, the security
	// headers, a log line and a metric.
	e.Use(edge(logger, newMetrics(reg), dev))
	addRoutes(e, life, reg, build, dev, status)
	return e
}

// lifecycle is the readiness state the probes and the dev reload stream
// read, flipped by run when shutdown begins.
type lifecycle struct {
	ready    atomic.Bool
	stopping chan struct{}
	once     sync.Once
}

func newLifecycle() *lifecycle { return &lifecycle{stopping: make(chan struct{})} }

func (l *lifecycle) setReady() { l.ready.Store(true) }

func (l *lifecycle) beginShutdown() {
	l.once.Do(func() {
		l.ready.Store(false)
		close(l.stopping)
	})
}
