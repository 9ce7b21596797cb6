package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

const (
	devScriptPath = "/_dev/reload.js"
	devEventsPath = "/_dev/events"
)

// devScript listens for the serving build's ID over Server-Sent Events.
// When the old process stops, the stream breaks and EventSource reconnects
// after `retry` ms; the new process answers with its own ID and the page
// reloads. No polling while nothing changes, and it works through any
// HTTP proxy or port-forward (Tilt's included) that passes a stream.
const devScript = `(function () {
  var me = document.currentScript.dataset.build;
  var es = new EventSource("` + devEventsPath + `");
  es.addEventListener("build", function (ev) {
    if (ev.data !== me) { es.close(); location.reload(); }
  });
})();
`

func handleDevScript() echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(devScript))
	}
}

// handleDevEvents sends the build ID, then holds the stream open until the
// client leaves or shutdown begins. Ending it at shutdown matters: an open
// stream would otherwise hold http.Server.Shutdown for its whole timeout
// and slow every restart of the dev loop.
func handleDevEvents(build buildInfo, life *lifecycle) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := c.Response()
		// The stream outlives the server's WriteTimeout by design.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		// retry: reconnect 100 ms after the old process's stream breaks,
		// rather than the browser's default of about 3 s, which would be
		// most of the edit-to-refresh time.
		if _, err := fmt.Fprintf(w, "retry: 100\nevent: build\ndata: %s\n\n", build.BuildID); err != nil {
			return nil
		}
		w.Flush()
		keepalive := time.NewTicker(15 * time.Second)
		defer keepalive.Stop()
		for {
			select {
			case <-c.Request().Context().Done():
				return nil
			case <-life.stopping:
				return nil
			case <-keepalive.C:
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return nil
				}
				w.Flush()
			}
		}
	}
}
