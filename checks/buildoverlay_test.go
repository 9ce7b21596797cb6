package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

// overlayLocations lists what the overlay shows as file:line:col.
func overlayLocations(ctx context.Context) string {
	s, _ := devloop.Eval[string](ctx, `Array.from(document.querySelectorAll("#build-error .location")).map(function (e) { return e.textContent; }).join(",")`)
	return s
}

func TestBuildErrorOverlayInBrowser(t *testing.T) {
	skipShort(t)
	ctx := devloop.NewBrowser(t)
	air, base, log := startAirCopy(t)
	quoteFile := filepath.Join(air.Dir, "quote.go")
	good, err := os.ReadFile(quoteFile)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.TrimRight(string(good), "\n") + "\n\n" + devloop.BrokenLine + "\n"
	brokenAt := fmt.Sprintf("quote.go:%d:", strings.Count(broken, "\n"))

	if _, err := chromedp.Run(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	devloop.MarkPage(t, ctx)

	// 1. A broken save: the overlay names the file and line, over the page
	// that stays, and the server keeps serving the last good build.
	if err := os.WriteFile(quoteFile, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	devloop.WaitJS(t, ctx, devloop.OverlayShown, time.Minute, "the build-error overlay")
	t.Logf("edit to error shown: %s", time.Since(wrote).Round(time.Millisecond))
	if locs := overlayLocations(ctx); !strings.Contains(locs, brokenAt) {
		t.Errorf("overlay shows locations %q, want %s", locs, brokenAt)
	}
	if ok, _ := devloop.Eval[bool](ctx, devloop.StillMarked); !ok {
		t.Error("the page reloaded on a broken build; it should stay and show the overlay")
	}
	raw, _ := devloop.Eval[string](ctx, `document.getElementById("build-output").textContent`)
	if !strings.Contains(raw, "<script>window.__pwned = 1</script>") {
		t.Errorf("raw output = %q, want the compiler's text with the markup as text", raw)
	}
	if pwned, _ := devloop.Eval[bool](ctx, `window.__pwned === 1 || document.querySelectorAll("#build-error script").length > 0`); pwned {
		t.Error("compiler output was parsed as HTML")
	}
	if q, _ := devloop.Eval[string](ctx, `document.getElementById("quote").textContent`); q != quote {
		t.Errorf("under the overlay the page shows %q, want the last good quote", q)
	}
	if code, body := get(t, base+"/"); code != 200 || body != quote+"\n" {
		t.Errorf("GET / during the broken build = %d %q, want 200 and the old quote", code, body)
	}

	// 2. A page opened now gets the error at once, with no new build.
	tab, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	opened := time.Now()
	if _, err := chromedp.Run(tab, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	devloop.WaitJS(t, tab, devloop.OverlayShown, 5*time.Second, "the overlay in a second tab")
	t.Logf("second tab showed the error %s after it was opened", time.Since(opened).Round(time.Millisecond))
	if locs := overlayLocations(tab); !strings.Contains(locs, brokenAt) {
		t.Errorf("second tab shows %q, want %s", locs, brokenAt)
	}
	cancelTab()

	// 3. The fix: a new build ID, so the page reloads with the new quote.
	const fixed = "We are the knights who say Ni!"
	if err := os.WriteFile(quoteFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := devloop.SetQuote(air.Dir, fixed); err != nil {
		t.Fatal(err)
	}
	devloop.WaitJS(t, ctx, `(document.getElementById("quote") || {}).textContent === `+jsString(fixed), time.Minute, "the fixed quote")
	if ok, _ := devloop.Eval[bool](ctx, devloop.StillMarked); ok {
		t.Error("the new quote appeared without a reload")
	}
	if ok, _ := devloop.Eval[bool](ctx, devloop.OverlayGone); !ok {
		t.Error("the overlay outlived the fix")
	}

	// 4. Break, then revert to the exact previous content: the same build
	// ID, so the overlay goes away without a reload.
	devloop.MarkPage(t, ctx)
	fixedContent, err := os.ReadFile(quoteFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(quoteFile, []byte(strings.TrimRight(string(fixedContent), "\n")+"\n\n"+devloop.BrokenLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	devloop.WaitJS(t, ctx, devloop.OverlayShown, time.Minute, "the overlay after the second break")
	if err := os.WriteFile(quoteFile, fixedContent, 0o644); err != nil {
		t.Fatal(err)
	}
	devloop.WaitJS(t, ctx, devloop.OverlayGone, time.Minute, "the overlay going away after the revert")
	if ok, _ := devloop.Eval[bool](ctx, devloop.StillMarked); !ok {
		t.Error("reverting to the last good content reloaded the page; the build ID is the same, so it should not")
	}
	if csp, _ := devloop.Eval[string](ctx, `window.__csp.join("; ")`); csp != "" {
		t.Errorf("the overlay broke the page's CSP: %s", csp)
	}
	if t.Failed() {
		t.Logf("air log:\n%s", log)
	}
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }
