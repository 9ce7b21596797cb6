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
	shown, _ := Eval[string](ctx, `(document.getElementById("quote") || {}).textContent || ""`)
	return shown
}

// Eval runs one short evaluation in the page. It fails while the page
// reloads; callers that poll try again.
func Eval[T any](ctx context.Context, js string) (T, error) {
	ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return chromedp.Run(ectx, chromedp.Evaluate[T](js))
}

// WaitJS polls a JavaScript condition in the page until it holds, and
// fails the test with what the page shows if it does not within the time.
func WaitJS(t TB, ctx context.Context, cond string, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ok, err := Eval[bool](ctx, cond); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := Eval[string](ctx, `document.body ? document.body.innerText.slice(0, 2000) : "(no body)"`)
			t.Fatalf("%s: not seen within %s; the page shows:\n%s", what, within, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MarkPage sets window.__loadedOnce, which a reload clears, and records
// every Content-Security-Policy violation from now on in window.__csp.
func MarkPage(t TB, ctx context.Context) {
	t.Helper()
	js := `window.__loadedOnce = true; window.__csp = [];
	document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); }); true`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
		t.Fatalf("marking the page: %v", err)
	}
}

// BrokenLine does not compile, and the compiler echoes it: the build-error
// overlay must show the markup as text, never run it.
const BrokenLine = `var _ int = "<script>window.__pwned = 1</script>"`

// Conditions on the dev page, for WaitJS: the build-error overlay is
// shown or gone, and the page has not reloaded since MarkPage.
const (
	OverlayShown = `!!document.getElementById("build-error")`
	OverlayGone  = `!document.getElementById("build-error")`
	StillMarked  = `window.__loadedOnce === true`
)
