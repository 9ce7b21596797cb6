package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

// startAirCopy runs the real laptop loop, `go tool air`, in a scratch copy
// of this project and waits until it serves the quote.
func startAirCopy(t *testing.T) (*devloop.Air, string, *devloop.Buffer) {
	t.Helper()
	skipShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("the air loop test reads /proc to find the server processes")
	}
	dir := t.TempDir()
	if err := devloop.CopyProject(repoRoot, dir); err != nil {
		t.Fatal(err)
	}
	log := &devloop.Buffer{}
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	air, err := devloop.StartAir(dir, port, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := air.Stop(15 * time.Second); err != nil {
			t.Errorf("%v\n%s", err, log)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", air.Port)
	// The first build under air compiles the whole server: allow for it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := devloop.WaitForBody(ctx, base+"/", quote, 50*time.Millisecond); err != nil {
		t.Fatalf("%v\nair log:\n%s", err, log)
	}
	return air, base, log
}

func TestAirLoop(t *testing.T) {
	air, base, log := startAirCopy(t)
	before, err := devloop.PIDsRunning(air.Binary())
	if err != nil || len(before) != 1 {
		t.Fatalf("want exactly one server process from %s, got %v (%v)", air.Binary(), before, err)
	}
	if code, body := get(t, base+"/", "Accept", "text/html"); code != 200 || !strings.Contains(body, "/_dev/reload.js") {
		t.Errorf("dev mode is not on under air: GET / as a browser = %d, no reload script", code)
	}

	// Test code, the checks and the dev tooling are not the server: saving
	// them must not restart it. air debounces for 10 ms; a second is ample
	// for a restart to have begun.
	for _, f := range []string{"helpers_test.go", "checks/manifests_test.go", "hack/devloop/devloop.go", "devimage/devrun/main.go"} {
		p := filepath.Join(air.Dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		pkg := "x"
		if filepath.Dir(f) == "." {
			pkg = "main"
		}
		if err := os.WriteFile(p, []byte("package "+pkg+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	if now, _ := devloop.PIDsRunning(air.Binary()); len(now) != 1 || now[0] != before[0] {
		t.Fatalf("saving test or tooling files restarted the server: pids %v, before %v\n%s", now, before, log)
	}

	const edited = "Listen, strange women lying in ponds distributing swords is no basis for a system of government."
	if err := devloop.SetQuote(air.Dir, edited); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wrote := time.Now()
	if _, err := devloop.WaitForBody(ctx, base+"/", edited, 20*time.Millisecond); err != nil {
		t.Fatalf("%v\nair log:\n%s", err, log)
	}
	t.Logf("edit served after %s", time.Since(wrote).Round(time.Millisecond))
	if code, body := get(t, base+"/"); code != 200 || body != edited+"\n" {
		t.Errorf("after the edit GET / = %d %q", code, body)
	}

	if devloop.Alive(before[0]) {
		t.Errorf("old server (pid %d) still running after the new one serves", before[0])
	}
	after, _ := devloop.PIDsRunning(air.Binary())
	if len(after) != 1 || after[0] == before[0] {
		t.Errorf("want exactly one new server process, got %v (old %v)", after, before)
	}
	if !strings.Contains(log.String(), `msg="shutting down"`) {
		t.Errorf("the old server was not stopped gracefully (no shutdown log line):\n%s", log)
	}

	// Ctrl-C on air must take the server with it and free the port.
	if err := air.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	requireGone(t, after, base, "air")
}

func TestDevReloadInBrowser(t *testing.T) {
	skipShort(t)
	ctx := devloop.NewBrowser(t)
	air, base, log := startAirCopy(t)

	if _, err := chromedp.Run(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open page: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text("#quote"))
	if err != nil || got != quote {
		t.Fatalf("page shows %q (%v), want the quote", got, err)
	}
	// Mark this page load: a reload by the page itself clears the mark.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.__loadedOnce = true")); err != nil {
		t.Fatal(err)
	}

	const edited = "Help! Help! I'm being repressed!"
	if err := devloop.SetQuote(air.Dir, edited); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready, err := devloop.WaitForBody(rctx, base+"/", edited, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}

	// No navigation from here: the page must notice the new build itself.
	// Evaluations fail while it reloads; keep asking until it shows the edit.
	deadline := time.Now().Add(30 * time.Second)
	var shown string
	for shown != edited {
		if time.Now().After(deadline) {
			t.Fatalf("page still shows %q 30s after the new server was ready", shown)
		}
		shown = devloop.PageQuote(ctx)
		if shown != edited {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("page showed the new quote %s after the new server first answered", time.Since(ready).Round(time.Millisecond))
	if still, _ := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.__loadedOnce === true")); still {
		t.Error("the quote changed without a page reload: the test expected the page to reload itself")
	}
}
