package devloop

import (
	"context"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath finds a Chromium or Chrome binary: $CHROMIUM, else the
// usual names on PATH.
func ChromiumPath() (string, bool) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, true
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// NewBrowser starts headless Chromium for one test and returns its context,
// which ends after five minutes at most. The flags keep it off the network
// (this machine reaches nothing beyond loopback, and Chromium's background
// services would try) and let it run as root in a VM, where its sandbox
// cannot work.
func NewBrowser(t TB) context.Context {
	t.Helper()
	path, ok := ChromiumPath()
	NeedTool(t, ok, "Chromium", "install Debian's package (apt-get install chromium) or set CHROMIUM to a Chrome binary")
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	return ctx
}

// PageQuote is what an open page shows as the quote, or "" while it is
// (re)loading: evaluations fail then, and callers poll.
func PageQuote(ctx context.Context) string {
	ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	shown, _ := chromedp.Run(ectx, chromedp.Evaluate[string](`(document.getElementById("quote") || {}).textContent || ""`))
	return shown
}
