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
//
// It also shows the dev loop's build status: build-error puts an overlay
// over the last good page, build-ok takes it away. The page's CSP admits
// no inline style, so the overlay is styled through the CSSOM (element.style),
// which style-src does not govern; compiler text goes in only as textContent.
const devScript = `(function () {
  "use strict";
  var me = document.currentScript.dataset.build;
  var es = new EventSource("` + devEventsPath + `");
  var overlay = null;
  es.addEventListener("build", function (ev) {
    if (ev.data !== me) { es.close(); location.reload(); }
  });
  es.addEventListener("build-ok", hide);
  es.addEventListener("build-error", function (ev) {
    var st;
    try { st = JSON.parse(ev.data); } catch (e) { return; }
    show(st);
  });

  function el(tag, style, text) {
    var e = document.createElement(tag);
    Object.assign(e.style, style);
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function hide() {
    if (overlay) { overlay.remove(); overlay = null; }
  }
  function show(st) {
    hide();
    var mono = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    overlay = el("div", {position: "fixed", inset: "0", zIndex: "2147483647", overflow: "auto",
      background: "rgba(24, 16, 12, 0.94)", color: "#f6f1e7", padding: "2rem", boxSizing: "border-box",
      fontFamily: mono, fontSize: "14px", lineHeight: "1.45", textAlign: "left"});
    overlay.id = "build-error";
    overlay.setAttribute("role", "alert");
    overlay.appendChild(el("h1", {margin: "0 0 0.4rem", fontSize: "1.3rem", color: "#ff8a7a"},
      st.exit === -1 ? "Build status unreadable" : "Build failed (exit status " + st.exit + ")"));
    overlay.appendChild(el("p", {margin: "0 0 1.2rem", color: "#c9b8a6"},
      "The page below is the last good build; it comes back when the build is fixed."));
    var list = el("ul", {listStyle: "none", margin: "0 0 1.2rem", padding: "0"});
    (st.diagnostics || []).forEach(function (d) {
      var li = el("li", {margin: "0 0 0.6rem"});
      li.className = "diagnostic";
      var at = d.file + ":" + d.line + (d.col ? ":" + d.col : "");
      var loc = el("span", {color: "#ffd479", fontWeight: "bold"}, at);
      loc.className = "location";
      li.appendChild(loc);
      var msg = el("span", {whiteSpace: "pre-wrap"}, " " + d.msg);
      msg.className = "message";
      li.appendChild(msg);
      list.appendChild(li);
    });
    if (st.more_diagnostics) {
      list.appendChild(el("li", {color: "#c9b8a6"}, "and " + st.more_diagnostics + " more"));
    }
    overlay.appendChild(list);
    var raw = el("pre", {margin: "0", padding: "1rem", background: "#000", color: "#e8e0d4",
      whiteSpace: "pre-wrap", wordBreak: "break-word", fontFamily: mono}, st.output || "");
    raw.id = "build-output";
    overlay.appendChild(raw);
    if (st.note) {
      var note = el("p", {color: "#ffd479"}, st.note);
      note.id = "build-output-note";
      overlay.appendChild(note);
    }
    document.body.appendChild(overlay);
  }
})();
`

func handleDevScript() echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(devScript))
	}
}

// handleDevEvents sends the build ID and the current build status, then
// every change of status, until the client leaves or shutdown begins.
// Ending it at shutdown matters: an open stream would otherwise hold
// http.Server.Shutdown for its whole timeout and slow every restart of the
// dev loop.
func handleDevEvents(build buildInfo, life *lifecycle, status *buildStatus) echo.HandlerFunc {
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
		// A page that connects while the build is broken learns it at once.
		ev, changed := status.current()
		if ev != nil {
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data); err != nil {
				return nil
			}
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
			case <-changed:
				if ev, changed = status.current(); ev != nil {
					if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data); err != nil {
						return nil
					}
					w.Flush()
				}
			case <-keepalive.C:
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return nil
				}
				w.Flush()
			}
		}
	}
}
