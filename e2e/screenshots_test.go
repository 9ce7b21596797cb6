//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

// screenshots saves the two pictures the README shows: the app page in dev
// mode through Tilt's port-forward, and the Tilt dashboard once every
// resource is green. They go to $E2E_SCREENSHOT_DIR (default docs/).
func screenshots(t *testing.T, tiltURL, appURL, wantQuote string) {
	t.Helper()
	dir := os.Getenv("E2E_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot, "docs")
	}
	waitAllGreen(t, tiltURL, 5*time.Minute)
	ctx := devloop.NewBrowser(t)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The app page: dev mode shows the build and its deploy latency.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(appURL)); err != nil {
		t.Fatalf("open %s: %v", appURL, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text("#quote"))
	if err != nil || text != wantQuote {
		t.Fatalf("app page shows %q (%v)", text, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitVisible("#edit-to-ready")); err != nil {
		t.Errorf("the dev page in the cluster shows no deploy latency: %v", err)
	}
	save(t, ctx, filepath.Join(dir, "app-dev.png"))

	// The dashboard's table view, with its first-run analytics banner
	// answered so it does not cover the resources.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(tiltURL)); err != nil {
		t.Fatalf("open the Tilt dashboard: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.innerText.includes("Resource Name") && document.body.innerText.includes("askeladden")`)); err != nil {
		t.Fatalf("the Tilt dashboard shows no resource table: %v", err)
	}
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const b = [...document.querySelectorAll("button")].find(b => /^(no|nope|no thanks|dismiss)$/i.test(b.textContent.trim()));
		if (b) { b.click(); return true } return false })()`))
	_, _ = chromedp.Run(ctx, chromedp.Sleep(time.Second))
	save(t, ctx, filepath.Join(dir, "tilt-dashboard.png"))
}

func save(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	// Quality 100 makes a PNG; anything less, a JPEG.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", path, len(png))
}

// waitPageQuote waits for an open page to show want by reloading itself:
// the dev-mode reload through Tilt's port-forward. Evaluations fail while
// the page reloads, so it keeps asking.
func waitPageQuote(t *testing.T, ctx context.Context, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	shown := ""
	for shown != want {
		if time.Now().After(deadline) {
			t.Fatalf("the open page still shows %q %s after the edit was served", shown, within)
		}
		shown = devloop.PageQuote(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	if reloaded, _ := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.__loadedOnce !== true")); !reloaded {
		t.Error("the quote changed without a reload: the test expected the page to reload itself")
	}
}

// waitAllGreen asks the running Tilt for its resources until each has
// updated and runs healthy.
func waitAllGreen(t *testing.T, tiltURL string, within time.Duration) {
	t.Helper()
	port := tiltURL[strings.LastIndex(strings.TrimSuffix(tiltURL, "/"), ":")+1:]
	port = strings.TrimSuffix(port, "/")
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		out, err := runErr(30*time.Second, "", nil, "tilt", "get", "uiresources", "--port", port, "-o", "json")
		if err == nil {
			var list struct {
				Items []struct {
					Metadata struct{ Name string }
					Status   struct {
						UpdateStatus  string
						RuntimeStatus string
					}
				}
			}
			if json.Unmarshal([]byte(out), &list) == nil && len(list.Items) > 0 {
				green, states := true, []string{}
				for _, r := range list.Items {
					ok := r.Status.UpdateStatus == "ok" || r.Status.UpdateStatus == "not_applicable"
					ok = ok && (r.Status.RuntimeStatus == "ok" || r.Status.RuntimeStatus == "not_applicable")
					green = green && ok
					states = append(states, r.Metadata.Name+"="+r.Status.UpdateStatus+"/"+r.Status.RuntimeStatus)
				}
				last = strings.Join(states, " ")
				if green {
					return
				}
			}
		} else {
			last = err.Error() + " " + out
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("Tilt resources not all green within %s: %s", within, last)
}
