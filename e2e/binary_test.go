//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

// testBinaryTestsOn is issue 13's regression check: with the binary
// strategy and the unit tests on (the README's defaults but for the
// strategy), a save never waits for tests. Tilt runs a local_resource
// without allow_parallel only when nothing else updates, so compile used
// to queue behind the unit-test run that a previous change had started.
func testBinaryTestsOn(t *testing.T, dir string) {
	// Earlier steps edited the copy: serve whatever it holds now.
	current, err := devloop.Quote(dir)
	if err != nil {
		t.Fatal(err)
	}
	tu := startTiltUp(t, dir, "--strategy=binary")
	waitBody(t, forward, current, 5*time.Minute)
	waitAllGreen(t, tu.webURL, 5*time.Minute)

	// Set the unit tests going (a test file is theirs alone), then save
	// while they run, as an editor that formats on save does.
	f, err := os.OpenFile(filepath.Join(dir, "helpers_test.go"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n// e2e: a test-only change (%d)\n", time.Now().UnixNano())
	f.Close()
	time.Sleep(500 * time.Millisecond)

	var saves []time.Time
	first := fmt.Sprintf("Bring out your dead! (%d)", time.Now().UnixNano())
	setQuote(t, dir, first)
	saves = append(saves, time.Now())
	servedFirst := waitBody(t, forward, first, 2*time.Minute)
	tookFirst := servedFirst.Sub(saves[0])

	// A developer who saves often: the next save a second after the last
	// one showed up.
	time.Sleep(time.Second)
	second := fmt.Sprintf("I'm not dead yet! (%d)", time.Now().UnixNano())
	setQuote(t, dir, second)
	saves = append(saves, time.Now())
	servedSecond := waitBody(t, forward, second, 2*time.Minute)
	tookSecond := servedSecond.Sub(saves[1])
	t.Logf("save to response: first %s (saved %s), second %s (saved %s), %.2fx", tookFirst.Round(time.Millisecond), saves[0].Format("15:04:05.000"),
		tookSecond.Round(time.Millisecond), saves[1].Format("15:04:05.000"), float64(tookSecond)/float64(tookFirst))
	fmt.Printf("e2e: binary strategy, tests on: save to response %s, then %s\n", tookFirst.Round(time.Millisecond), tookSecond.Round(time.Millisecond))

	// The evidence is Tilt's own record of when each compile and each
	// unit-test run began and ended.
	hist, evidence := buildHistory(t, tu.webURL)
	t.Logf("Tilt's build history:\n%s", evidence)
	for _, why := range compilesThatWaited(saves, hist["compile"], hist["unit-tests"]) {
		t.Errorf("%s\n%s", why, evidence)
	}
	if tookSecond > 2*tookFirst {
		t.Errorf("the second save took %s, more than twice the first's %s", tookSecond, tookFirst)
	}
}

type buildRecord struct {
	StartTime  time.Time `json:"startTime"`
	FinishTime time.Time `json:"finishTime"`
}

// buildHistory reads every resource's builds, finished and running, from
// the running Tilt.
func buildHistory(t *testing.T, tiltURL string) (map[string][]buildRecord, string) {
	t.Helper()
	port := strings.TrimSuffix(tiltURL[strings.LastIndex(strings.TrimSuffix(tiltURL, "/"), ":")+1:], "/")
	out := run(t, 30*time.Second, "", nil, "tilt", "get", "uiresources", "--port", port, "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				BuildHistory []buildRecord `json:"buildHistory"`
				CurrentBuild buildRecord   `json:"currentBuild"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("tilt get uiresources: %v", err)
	}
	hist := map[string][]buildRecord{}
	var b strings.Builder
	for _, r := range list.Items {
		h := r.Status.BuildHistory
		if cur := r.Status.CurrentBuild; !cur.StartTime.IsZero() {
			cur.FinishTime = time.Now() // still running
			h = append(h, cur)
		}
		hist[r.Metadata.Name] = h
		if r.Metadata.Name == "compile" || r.Metadata.Name == "unit-tests" {
			for _, x := range h {
				fmt.Fprintf(&b, "  %-10s %s -> %s\n", r.Metadata.Name, x.StartTime.Format("15:04:05.000"), x.FinishTime.Format("15:04:05.000"))
			}
		}
	}
	return hist, b.String()
}

// compilesThatWaited finds the compiles that Tilt held back for the
// tests: each compile belongs to the latest save before it, and one that
// began the moment a unit-test run ended, well after Tilt's 200 ms file
// debounce had passed since its save, waited for that run.
func compilesThatWaited(saves []time.Time, compiles, tests []buildRecord) []string {
	var out []string
	for _, c := range compiles {
		var save time.Time
		for _, s := range saves {
			if s.Before(c.StartTime) && s.After(save) {
				save = s
			}
		}
		if save.IsZero() || c.StartTime.Sub(save) < 500*time.Millisecond {
			continue // no save of ours, or it started as soon as Tilt saw the save
		}
		for _, u := range tests {
			if u.StartTime.Before(c.StartTime) && !u.FinishTime.After(c.StartTime) && c.StartTime.Sub(u.FinishTime) < 100*time.Millisecond {
				out = append(out, fmt.Sprintf("the compile for the save at %s began at %s, %s after the save and %s after a unit-test run ended: it waited for the tests",
					save.Format("15:04:05.000"), c.StartTime.Format("15:04:05.000"), c.StartTime.Sub(save).Round(time.Millisecond), c.StartTime.Sub(u.FinishTime).Round(time.Millisecond)))
				break
			}
		}
	}
	return out
}
