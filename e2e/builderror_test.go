//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

// uiResource is what this test reads of `tilt get uiresource -o json`.
type uiResource struct {
	Status struct {
		UpdateStatus string `json:"updateStatus"`
		BuildHistory []struct {
			Error      string `json:"error"`
			StartTime  string `json:"startTime"`
			FinishTime string `json:"finishTime"`
		} `json:"buildHistory"`
	} `json:"status"`
}

func (tu *tiltUp) port() string {
	return strings.TrimSuffix(tu.webURL[strings.LastIndex(strings.TrimSuffix(tu.webURL, "/"), ":")+1:], "/")
}

func (tu *tiltUp) resource(t *testing.T, name string) uiResource {
	t.Helper()
	out, err := runErr(30*time.Second, "", nil, "tilt", "get", "uiresource", name, "--port", tu.port(), "-o", "json")
	var r uiResource
	if err != nil {
		t.Logf("tilt get uiresource %s: %v %s", name, err, out)
		return r
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("tilt get uiresource %s: %v", name, err)
	}
	return r
}

// waitResource polls the resource until cond holds; it returns when.
func (tu *tiltUp) waitResource(t *testing.T, name string, within time.Duration, what string, cond func(uiResource) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	var r uiResource
	for {
		r = tu.resource(t, name)
		if cond(r) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; %s is %+v\n%s", what, within, name, r.Status, tail(tu.out.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (tu *tiltUp) logs(t *testing.T, name string) string {
	t.Helper()
	out, err := runErr(30*time.Second, "", nil, "tilt", "logs", name, "--port", tu.port())
	if err != nil {
		t.Fatalf("tilt logs %s: %v\n%s", name, err, out)
	}
	return out
}

func overlayLocations(ctx context.Context) string {
	s, _ := devloop.Eval[string](ctx, `Array.from(document.querySelectorAll("#build-error .location")).map(function (e) { return e.textContent; }).join(",")`)
	return s
}

// breakQuote appends devloop.BrokenLine to quote.go and returns the good content
// and the location the compiler will report, as "quote.go:LINE:".
func breakQuote(t *testing.T, dir string) ([]byte, string) {
	t.Helper()
	p := filepath.Join(dir, "quote.go")
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.TrimRight(string(good), "\n") + "\n\n" + devloop.BrokenLine + "\n"
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	return good, fmt.Sprintf("quote.go:%d:", strings.Count(broken, "\n"))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testBuildError runs under the source strategy's `tilt up`, with the pod
// that testLiveUpdate checked: a broken save shows in the page and in
// Tilt, and the fix clears both, without a new pod or a restart.
func testBuildError(t *testing.T, dir string, tu *tiltUp, pod podInfo, shown string) {
	tu.waitResource(t, "askeladden", 2*time.Minute, "askeladden ok before the broken save", func(r uiResource) bool { return r.Status.UpdateStatus == "ok" })
	page := devloop.NewBrowser(t)
	if _, err := chromedp.Run(page, chromedp.Navigate(forward)); err != nil {
		t.Fatal(err)
	}
	devloop.MarkPage(t, page)

	// The broken save: Tilt turns red with the compiler's output in the
	// resource's log; the page shows the overlay over the old quote.
	good, at := breakQuote(t, dir)
	wrote := time.Now()
	red := tu.waitResource(t, "askeladden", 10*time.Second, "askeladden in error within 10 s of the broken save", func(r uiResource) bool {
		return r.Status.UpdateStatus == "error" && len(r.Status.BuildHistory) > 0 && r.Status.BuildHistory[0].Error != ""
	})
	t.Logf("Tilt showed the error %s after the broken save", red.Sub(wrote).Round(time.Millisecond))
	fmt.Printf("e2e: broken save to Tilt resource in error: %s\n", red.Sub(wrote).Round(time.Millisecond))
	if logs := tu.logs(t, "askeladden"); !strings.Contains(logs, at) || !strings.Contains(logs, "build failed") {
		t.Errorf("the askeladden log lacks the compiler output (%s) and the step's verdict:\n%s", at, tail(logs, 30))
	}
	devloop.WaitJS(t, page, devloop.OverlayShown, 30*time.Second, "the build-error overlay through the port-forward")
	t.Logf("the page showed the error %s after the broken save", time.Since(wrote).Round(time.Millisecond))
	if locs := overlayLocations(page); !strings.Contains(locs, at) {
		t.Errorf("the overlay shows %q, want %s", locs, at)
	}
	if ok, _ := devloop.Eval[bool](page, devloop.StillMarked); !ok {
		t.Error("the page reloaded on a broken build")
	}
	if pwned, _ := devloop.Eval[bool](page, `window.__pwned === 1 || document.querySelectorAll("#build-error script").length > 0`); pwned {
		t.Error("compiler output was parsed as HTML")
	}
	if got := getBody(t, forward); got != shown+"\n" {
		t.Errorf("GET / during the broken build = %q, want the last good quote", got)
	}

	// A second tab gets the error at once.
	tab, cancelTab := chromedp.NewContext(page)
	if _, err := chromedp.Run(tab, chromedp.Navigate(forward)); err != nil {
		t.Fatal(err)
	}
	devloop.WaitJS(t, tab, devloop.OverlayShown, 5*time.Second, "the overlay in a second tab")
	cancelTab()
	saveOverlay(t, page)

	// The fix, with a new quote: the page reloads, Tilt is green again.
	fixed := "I fart in your general direction!"
	quoteFile := filepath.Join(dir, "quote.go")
	writeFile(t, quoteFile, good)
	setQuote(t, dir, fixed)
	devloop.WaitJS(t, page, `(document.getElementById("quote") || {}).textContent === `+fmt.Sprintf("%q", fixed), time.Minute, "the fixed quote")
	if ok, _ := devloop.Eval[bool](page, devloop.StillMarked); ok {
		t.Error("the fixed quote appeared without a reload")
	}
	tu.waitResource(t, "askeladden", time.Minute, "askeladden ok after the fix", func(r uiResource) bool { return r.Status.UpdateStatus == "ok" })

	// Break, then revert to the exact previous content: same build ID, so
	// the overlay goes without a reload.
	devloop.MarkPage(t, page)
	fixedContent, _ := breakQuote(t, dir)
	devloop.WaitJS(t, page, devloop.OverlayShown, time.Minute, "the overlay after the second break")
	writeFile(t, quoteFile, fixedContent)
	devloop.WaitJS(t, page, devloop.OverlayGone, time.Minute, "the overlay going away after the revert")
	if ok, _ := devloop.Eval[bool](page, devloop.StillMarked); !ok {
		t.Error("reverting to the last good content reloaded the page")
	}
	if csp, _ := devloop.Eval[string](page, `window.__csp.join("; ")`); csp != "" {
		t.Errorf("the overlay broke the page's CSP: %s", csp)
	}
	tu.waitResource(t, "askeladden", time.Minute, "askeladden ok after the revert", func(r uiResource) bool { return r.Status.UpdateStatus == "ok" })

	after := onePod(t, time.Minute)
	if after.UID != pod.UID || after.Restarts != pod.Restarts {
		t.Errorf("pod %s (restarts %d) became %s (restarts %d): a broken build must not replace or restart it", pod.Name, pod.Restarts, after.Name, after.Restarts)
	}
	setQuote(t, dir, shown) // leave the quote the suite's next steps expect
	waitBody(t, forward, shown, 2*time.Minute)
}

// saveOverlay saves the README's picture of the overlay.
func saveOverlay(t *testing.T, ctx context.Context) {
	t.Helper()
	dir := os.Getenv("E2E_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot, "docs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	save(t, ctx, filepath.Join(dir, "build-error.png"))
}

// currentQuote reads the quote constant from dir/quote.go.
func currentQuote(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "quote.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^const quote = (".*")$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("quote.go has no quote constant")
	}
	q, err := strconv.Unquote(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// testBinaryBuildError runs `tilt up -- --strategy=binary`: the compile
// resource fails on a broken save, and its record, synced into the pod,
// reaches the page.
func testBinaryBuildError(t *testing.T, dir string) {
	source := onePod(t, time.Minute)
	tu := startTiltUp(t, dir, "--strategy=binary", "--no-tests")
	// The binary strategy's image replaces the source strategy's pod.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if pods := appPods(t); len(pods) == 1 && pods[0].UID != source.UID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no binary-strategy pod within 10 minutes:\n%s", tail(tu.out.String(), 60))
		}
		time.Sleep(2 * time.Second)
	}
	tu.waitResource(t, "askeladden", 5*time.Minute, "askeladden ok under the binary strategy", func(r uiResource) bool { return r.Status.UpdateStatus == "ok" })
	waitBody(t, forward, currentQuote(t, dir), 2*time.Minute)
	page := devloop.NewBrowser(t)
	if _, err := chromedp.Run(page, chromedp.Navigate(forward)); err != nil {
		t.Fatal(err)
	}
	devloop.MarkPage(t, page)

	good, at := breakQuote(t, dir)
	wrote := time.Now()
	tu.waitResource(t, "compile", time.Minute, "compile in error", func(r uiResource) bool { return r.Status.UpdateStatus == "error" })
	devloop.WaitJS(t, page, devloop.OverlayShown, time.Minute, "the build-error overlay under the binary strategy")
	t.Logf("binary strategy: the page showed the error %s after the broken save", time.Since(wrote).Round(time.Millisecond))
	fmt.Printf("e2e: binary strategy broken save to error shown: %s\n", time.Since(wrote).Round(time.Millisecond))
	if locs := overlayLocations(page); !strings.Contains(locs, at) {
		t.Errorf("the overlay shows %q, want %s", locs, at)
	}
	if ok, _ := devloop.Eval[bool](page, devloop.StillMarked); !ok {
		t.Error("the page reloaded on a broken build")
	}

	writeFile(t, filepath.Join(dir, "quote.go"), good)
	devloop.WaitJS(t, page, devloop.OverlayGone, 2*time.Minute, "the overlay going away after the fix")
	tu.waitResource(t, "compile", time.Minute, "compile ok after the fix", func(r uiResource) bool { return r.Status.UpdateStatus == "ok" })
}
