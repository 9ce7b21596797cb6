package main

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry is a registry of our own rather than the global one, so each
// server (and each test) starts from zero.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	series   sync.Map // seriesKey -> *series: skips label hashing per request
}

type seriesKey struct {
	method, route string
	code          int
}

type series struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) observe(method, route string, code int, d time.Duration) {
	if route == "" || code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		// Unmatched paths are unbounded; one label keeps the series finite.
		route = "unmatched"
	}
	k := seriesKey{method, route, code}
	v, ok := m.series.Load(k)
	if !ok {
		c := strconv.Itoa(code)
		v, _ = m.series.LoadOrStore(k, &series{m.requests.WithLabelValues(method, route, c), m.duration.WithLabelValues(method, route, c)})
	}
	s := v.(*series)
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "askeladden_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "askeladden_http_request_duration_seconds",
			Help:    "HTTP request latency by method, route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}
