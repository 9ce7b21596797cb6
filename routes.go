package main

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes is the one place that lists every route the service answers.
func addRoutes(e *echo.Echo, life *lifecycle, reg *prometheus.Registry, build buildInfo, dev bool, status *buildStatus) {
	page := newPage(build, dev)

	getHead(e, "/", handleQuote(page))
	getHead(e, "/healthz", handleHealthz())
	getHead(e, "/readyz", handleReadyz(life))
	getHead(e, "/version", handleVersion(build))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	// Dev mode only: production serves no script and no extra endpoint.
	if dev {
		if status == nil {
			status = newBuildStatus() // no record watched: the stream carries build IDs only
		}
		e.GET(devScriptPath, handleDevScript())
		e.GET(devEventsPath, handleDevEvents(build, life, status))
	}
}

// getHead registers GET and HEAD together; net/http drops the body for HEAD.
func getHead(e *echo.Echo, path string, h echo.HandlerFunc) {
	e.GET(path, h)
	e.HEAD(path, h)
}
