// Package checks holds the tests of what is not the service's Go code: the
// manifests, the Dockerfiles and the Tiltfile, checked without a cluster,
// and the laptop loop (air, and a page in headless Chromium) driven for
// real. It reads the repository the way e2e/ does, from its parent folder.
package checks

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

// repoRoot is the checkout under test, and quote what it serves.
var repoRoot, quote = devloop.MustCheckout()

// get fetches url with optional header pairs and returns the status and
// body; a connection error fails the test.
func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// answers reports whether anything serves url at all.
func answers(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err == nil {
		resp.Body.Close()
	}
	return err == nil
}

// requireGone checks that stopping a watcher (air, devrun) took its
// servers with it: none of pids is alive, and nothing answers on base.
func requireGone(t *testing.T, pids []int, base, watcher string) {
	t.Helper()
	for _, pid := range pids {
		if devloop.Alive(pid) {
			t.Errorf("server pid %d outlived %s", pid, watcher)
		}
	}
	if answers(base + "/healthz") {
		t.Errorf("something still answers on the port after %s stopped", watcher)
	}
}

// skipShort keeps `go test -short` (Tilt's unit-test resource) fast: the
// dev-loop tests build the server several times.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a dev-loop test that rebuilds the server")
	}
}
