package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ornlu-is/askeladden/hack/bench/stats"
)

func cfg(t *testing.T, name, gap string, ms ...int) config {
	t.Helper()
	var d []time.Duration
	for _, v := range ms {
		d = append(d, time.Duration(v)*time.Millisecond)
	}
	s, err := stats.Summarize(d)
	if err != nil {
		t.Fatal(err)
	}
	return config{Name: name, Gap: gap, About: "about " + name, Summary: s}
}

// sample results: every goal has an input, some met, some missed.
func sampleResults(t *testing.T) results {
	r := results{
		Date: "2026-12-01T06:00:00Z", Command: "go run ./hack/bench/loopbench -modes all", Edits: 3,
		Machine:  stats.Machine{CPU: "test CPU", Cores: 2, MemGiB: 24, OS: "linux/amd64", Go: "go1.26.8"},
		Gaps:     []string{gapSettled, "1s"},
		Failures: []string{"tilt-binary (1s gap): tilt up never served"},
		Configs: []config{
			cfg(t, "floor", gapSettled, 700, 800, 900),
			cfg(t, "air", gapSettled, 850, 900, 950),
			cfg(t, "tilt-source", gapSettled, 1300, 1400, 2100),
			cfg(t, "tilt-source", "1s", 1300, 1500, 1600),
			cfg(t, "tilt-default", gapSettled, 1450, 1500, 1550),
			cfg(t, "tilt-default", "1s", 1800, 1800, 1900),
			cfg(t, "tilt-binary", gapSettled, 2000, 2000, 2000),
			cfg(t, "tilt-binary-default", gapSettled, 2100, 2100, 2100),
			cfg(t, "tilt-naive", gapSettled, 17000, 18000, 19000),
			cfg(t, "tilt-sync-only", "", 400, 450, 500),
			cfg(t, "build-host", "", 700, 720, 740),
			cfg(t, "build-pod", "", 720, 740, 760),
		},
	}
	r.Configs[2].Phases = []phases{{TiltSaw: 205, SyncStart: 210, SyncDone: 500, BuildStart: 520, BuildEnd: 1250, Serving: 1280, Response: 1300},
		{TiltSaw: 210, Response: 2100}, {Response: 1400}}
	return r
}

func TestAnalyse(t *testing.T) {
	r := sampleResults(t)
	r.analyse()
	want := ratios{
		NaiveVsLiveUpdate: round2(18000.0 / 1400),
		DefaultVsNoTests:  map[string]float64{"source settled": round2(1500.0 / 1400), "source 1s": 1.2, "binary settled": 1.05},
		SourceTail:        1.5,
		SourceOverFloorMS: 600,
		SyncRoundTripMS:   450,
		PodVsHostBuild:    round2(740.0 / 720),
	}
	if !reflect.DeepEqual(r.Ratios, want) {
		t.Errorf("ratios = %+v\nwant     %+v", r.Ratios, want)
	}
	if got := r.find("tilt-default", "1s").MedianVsFloor; got != 2.25 {
		t.Errorf("tilt-default 1s median / floor = %v, want 2.25", got)
	}
	if got := r.find("build-pod", "").MedianVsFloor; got != 0 {
		t.Errorf("a build is not a loop: median / floor = %v, want none", got)
	}
	verdict := map[string]bool{}
	for _, g := range r.Goals {
		verdict[g.Goal] = g.Met
	}
	for goal, met := range map[string]bool{
		"air median / floor median":                                               true,
		"tilt-naive / tilt-source medians (what live_update saves)":               true,
		"tilt-source median / floor median":                                       false,
		"tilt-default (tests on) / tilt-source (--no-tests), settled gap":         true,
		"tilt-default (tests on) / tilt-source (--no-tests), 1s gap":              false,
		"tilt-binary-default (tests on) / tilt-binary (--no-tests), settled gap":  true,
		"tilt-source p90 / median":                                                false,
		"tilt-source median - floor median, at most the sync round trip + 100 ms": false,
		"in-pod build / host build of the same edit":                              true,
	} {
		got, ok := verdict[goal]
		if !ok {
			t.Errorf("goal %q not checked; have %v", goal, verdict)
		} else if got != met {
			t.Errorf("goal %q met = %v, want %v", goal, got, met)
		}
	}
	// The binary strategy ran at one spacing only: no goal for the other.
	if _, ok := verdict["tilt-binary-default (tests on) / tilt-binary (--no-tests), 1s gap"]; ok {
		t.Error("a goal was checked for a configuration that did not run")
	}
}

func TestAnalyseWithoutFloor(t *testing.T) {
	r := results{Gaps: []string{gapSettled}, Configs: []config{cfg(t, "air", gapSettled, 900)}}
	r.analyse()
	if len(r.Goals) != 0 || r.Configs[0].MedianVsFloor != 0 {
		t.Errorf("without a floor nothing can be compared: goals %+v, air %+v", r.Goals, r.Configs[0])
	}
}

func TestResultsFileRoundTrip(t *testing.T) {
	r := sampleResults(t)
	r.analyse()
	path := filepath.Join(t.TempDir(), "sub", "loopbench.json")
	if err := r.write(path); err != nil {
		t.Fatal(err)
	}
	got, err := readResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("read back %+v\nwrote     %+v", got, r)
	}
}

func TestReadResultsRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":        "{",
		"unknown field":   `{"date":"x","configs":[],"surprise":1}`,
		"no configs":      `{"date":"x","configs":[]}`,
		"count disagrees": `{"date":"x","configs":[{"name":"floor","summary":{"n":2,"samples_ms":[1]}}]}`,
		"phases disagree": `{"date":"x","configs":[{"name":"tilt-source","summary":{"n":1,"samples_ms":[1]},"phases":[{"response_ms":1},{"response_ms":2}]}]}`,
		"no date":         `{"configs":[{"name":"floor","summary":{"n":1,"samples_ms":[1]}}]}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readResults(p); err == nil {
			t.Errorf("%s: readResults accepted %s", name, body)
		}
	}
	if _, err := readResults(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestReportsFromResults(t *testing.T) {
	r := sampleResults(t)
	r.analyse()
	var md strings.Builder
	printTable(&md, r)
	for _, want := range []string{
		"FAILED: tilt-binary (1s gap): tilt up never served", "| tilt-default (1s gap)", "| **missed** |", "| **met** |", "1.50x", // p90 / median of tilt-source
		"Profile of tilt-source", "| sync done | 500 |", "| first response with the edit | 1400 | 1300 | 1400 | 2100 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, md.String())
		}
	}
	svg, err := chart(r)
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, one label per charted loop and none for the parts.
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart is not well-formed SVG: %v", err)
			}
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	for _, want := range []string{"tilt-naive", "tilt-default (1s gap)", "18000 ms", "800 ms", "log scale"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("chart lacks %q; its text: %s", want, text.String())
		}
	}
	for _, not := range []string{"build-pod", "tilt-sync-only"} {
		if strings.Contains(text.String(), not) {
			t.Errorf("chart shows %q, which is not an edit-to-response loop", not)
		}
	}
	if _, err := chart(results{Date: "x", Configs: []config{cfg(t, "build-pod", "", 1)}}); err == nil {
		t.Error("a chart with no loop was drawn")
	}
}

func TestLogTicks(t *testing.T) {
	var labelled []string
	for _, tk := range logTicks(500, 25000) {
		if tk.Value < 500 || tk.Value > 25000 {
			t.Errorf("tick %v outside the axis", tk.Value)
		}
		if tk.Label != "" {
			labelled = append(labelled, tk.Label)
		}
	}
	if want := []string{"500", "1000", "2000", "5000", "10000", "20000"}; !reflect.DeepEqual(labelled, want) {
		t.Errorf("labelled ticks %v, want %v", labelled, want)
	}
}

func TestParseGaps(t *testing.T) {
	got, err := parseGaps("settled, 1000ms,2s")
	if err != nil || !reflect.DeepEqual(got, []string{"settled", "1s", "2s"}) {
		t.Errorf("parseGaps = %v, %v", got, err)
	}
	for _, bad := range []string{"", "soon", "-1s", "2m", "1s,1000ms"} {
		if _, err := parseGaps(bad); err == nil {
			t.Errorf("parseGaps(%q) accepted", bad)
		}
	}
}

// The figures of the error, build-check and debugger modes (issues 8, 9).
func TestAnalyseErrorCheckAndDebug(t *testing.T) {
	r := results{Gaps: []string{gapSettled}, Configs: []config{
		cfg(t, "floor", gapSettled, 800),
		cfg(t, "floor-error", gapSettled, 400, 500, 600),
		cfg(t, "air-error", gapSettled, 850, 900, 950),
		cfg(t, "tilt-source", gapSettled, 1300, 1400, 1500),
		cfg(t, "tilt-source-nocheck", gapSettled, 1380, 1420, 1460),
		cfg(t, "tilt-source-debug", gapSettled, 2000, 2200, 2400),
		cfg(t, "tilt-source-error", gapSettled, 1000),
	}}
	r.analyse()
	q := r.Ratios
	if q.AirErrorOverFloorMS == nil || *q.AirErrorOverFloorMS != 400 {
		t.Errorf("air-error - floor-error = %v, want 400", q.AirErrorOverFloorMS)
	}
	// Negative: the check costs nothing measurable; it is still a figure.
	if q.BuildCheckMS == nil || *q.BuildCheckMS != -20 {
		t.Errorf("tilt-source - tilt-source-nocheck = %v, want -20", q.BuildCheckMS)
	}
	if want := round2(2200.0 / 1400); q.DebugVsSource != want {
		t.Errorf("debug / source = %v, want %v", q.DebugVsSource, want)
	}
	// A broken save's floor is the failing build.
	if got := r.find1("tilt-source-error").MedianVsFloor; got != 2 {
		t.Errorf("tilt-source-error median / floor = %v, want 2 (over floor-error)", got)
	}
	if got := r.find1("tilt-source-debug").MedianVsFloor; got != 2.75 {
		t.Errorf("tilt-source-debug median / floor = %v, want 2.75 (over floor)", got)
	}
	verdict := map[string]bool{}
	for _, g := range r.Goals {
		verdict[g.Goal] = g.Met
	}
	for goal, met := range map[string]bool{
		"edit to error shown under air, over the failing build (air-error - floor-error medians)": false,
		"the build-check step's cost on a good edit (tilt-source - tilt-source-nocheck medians)":  true,
		"under Delve / plain (tilt-source-debug / tilt-source medians)":                           false,
	} {
		if got, ok := verdict[goal]; !ok {
			t.Errorf("goal %q not checked; have %v", goal, verdict)
		} else if got != met {
			t.Errorf("goal %q met = %v, want %v", goal, got, met)
		}
	}
	var md strings.Builder
	printTable(&md, r)
	for _, want := range []string{"its floor is floor-error", "| edit to error shown under air, over the failing build (air-error - floor-error medians) | 400 ms | at most 300 ms | **missed** |", "| -20 ms | at most 50 ms | **met** |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, md.String())
		}
	}
}

func TestAnalyseFiguresNeedBothModes(t *testing.T) {
	r := results{Gaps: []string{gapSettled}, Configs: []config{cfg(t, "air-error", gapSettled, 900), cfg(t, "tilt-source", gapSettled, 1400)}}
	r.analyse()
	if q := r.Ratios; q.AirErrorOverFloorMS != nil || q.BuildCheckMS != nil || q.DebugVsSource != 0 {
		t.Errorf("figures without their second mode: %+v", q)
	}
}
