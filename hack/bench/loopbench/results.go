package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/ornlu-is/askeladden/hack/bench/stats"
)

// config is one configuration's result: a loop (name) at one spacing of
// edits (gap), or a measurement without a loop (the sync round trip, the
// builds).
type config struct {
	Name    string        `json:"name"`
	Gap     string        `json:"gap,omitempty"`
	About   string        `json:"about"`
	Summary stats.Summary `json:"summary"`
	// MedianVsFloor is this configuration's median over the floor's.
	MedianVsFloor float64 `json:"median_vs_floor,omitempty"`
	// Phases holds each sample's moments (Tilt configurations), in the
	// order of Summary.Values.
	Phases []phases `json:"phases,omitempty"`
}

// label names a configuration in tables and the chart.
func (c config) label() string {
	if c.Gap == "" || c.Gap == gapSettled {
		return c.Name
	}
	return c.Name + " (" + c.Gap + " gap)"
}

// goal is one of the targets the issues set, checked against this run.
type goal struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"` // "x" (a ratio) or "ms"
	// AtLeast is set for a lower bound; otherwise Limit is an upper bound.
	AtLeast bool `json:"at_least,omitempty"`
	Met     bool `json:"met"`
}

type results struct {
	Date    string        `json:"date"`
	Machine stats.Machine `json:"machine"`
	Command string        `json:"command"`
	Edits   int           `json:"edits_per_config"`
	Gaps    []string      `json:"gaps"`
	Configs []config      `json:"configs"`
	Ratios  ratios        `json:"ratios"`
	Goals   []goal        `json:"goals"`
	// Failures lists the sessions or measurements that failed; the rest
	// of the run stands.
	Failures []string `json:"failures,omitempty"`
}

// ratios are the comparisons the goals are stated in, from medians
// (p90 / median for the tail); 0 when a configuration did not run.
type ratios struct {
	// NaiveVsLiveUpdate: what live_update saves (tilt-naive / tilt-source).
	NaiveVsLiveUpdate float64 `json:"naive_vs_live_update,omitempty"`
	// DefaultVsNoTests: tests on against --no-tests, per strategy and gap,
	// keyed "source settled", "binary 1s" and so on.
	DefaultVsNoTests map[string]float64 `json:"default_vs_no_tests,omitempty"`
	// SourceTail: tilt-source's p90 over its median.
	SourceTail float64 `json:"source_p90_vs_median,omitempty"`
	// SourceOverFloorMS: tilt-source's median minus the floor's.
	SourceOverFloorMS float64 `json:"source_minus_floor_ms,omitempty"`
	// SyncRoundTripMS: the sync-only round trip's median, Tilt's fixed
	// cost per edit (its watch quiet period and the exec/tar sync).
	SyncRoundTripMS float64 `json:"sync_round_trip_ms,omitempty"`
	// PodVsHostBuild: the same edit built in the pod and on the host.
	PodVsHostBuild float64 `json:"pod_vs_host_build,omitempty"`
	// AirErrorOverFloorMS is air-error's median minus floor-error's: what
	// air adds to the failing build before an open page hears of it. A
	// difference may be zero or negative: nil when either did not run.
	AirErrorOverFloorMS *float64 `json:"air_error_over_floor_error_ms,omitempty"`
	// BuildCheckMS is tilt-source's median minus tilt-source-nocheck's:
	// what the live_update step that waits for the pod's build costs on a
	// good edit. Nil when either did not run.
	BuildCheckMS *float64 `json:"build_check_ms,omitempty"`
	// DebugVsSource is tilt-source-debug's median over tilt-source's: what
	// running under Delve, a client attached, costs per edit.
	DebugVsSource float64 `json:"debug_vs_source,omitempty"`
}

func (r *results) find(name, gap string) *config {
	for i := range r.Configs {
		c := &r.Configs[i]
		if c.Name == name && (gap == "" || c.Gap == gap || (c.Gap == "" && gap == gapSettled)) {
			return c
		}
	}
	return nil
}

func (r *results) median(name, gap string) float64 {
	if c := r.find(name, gap); c != nil {
		return c.Summary.MedMS
	}
	return 0
}

func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return round2(a / b)
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// analyse computes the ratios and checks the goals.
func (r *results) analyse() {
	floor := r.median("floor", "")
	for i := range r.Configs {
		c := &r.Configs[i]
		if strings.HasPrefix(c.Name, "floor") || strings.HasPrefix(c.Name, "air") || strings.HasPrefix(c.Name, "tilt-") && c.Name != "tilt-sync-only" {
			// A broken save is measured against the failing build, the
			// rest against the good one.
			if strings.HasSuffix(c.Name, "-error") {
				c.MedianVsFloor = ratio(c.Summary.MedMS, r.median("floor-error", ""))
			} else {
				c.MedianVsFloor = ratio(c.Summary.MedMS, floor)
			}
		}
	}
	q := &r.Ratios
	q.NaiveVsLiveUpdate = ratio(r.median("tilt-naive", ""), r.median("tilt-source", gapSettled))
	q.DefaultVsNoTests = map[string]float64{}
	for _, s := range []struct{ key, tests, none string }{{"source", "tilt-default", "tilt-source"}, {"binary", "tilt-binary-default", "tilt-binary"}} {
		for _, g := range r.Gaps {
			if v := ratio(r.median(s.tests, g), r.median(s.none, g)); v > 0 {
				q.DefaultVsNoTests[s.key+" "+g] = v
			}
		}
	}
	if len(q.DefaultVsNoTests) == 0 {
		q.DefaultVsNoTests = nil
	}
	if c := r.find("tilt-source", gapSettled); c != nil {
		q.SourceTail = ratio(c.Summary.P90MS, c.Summary.MedMS)
		if floor > 0 {
			q.SourceOverFloorMS = float64(int(c.Summary.MedMS - floor + 0.5))
		}
	}
	q.SyncRoundTripMS = float64(int(r.median("tilt-sync-only", "") + 0.5))
	q.PodVsHostBuild = ratio(r.median("build-pod", ""), r.median("build-host", ""))
	q.AirErrorOverFloorMS = difference(r.median("air-error", ""), r.median("floor-error", ""))
	// The first spacing of each: tilt-source-nocheck and -debug run only at that one.
	q.BuildCheckMS = difference(r.median("tilt-source", ""), r.median("tilt-source-nocheck", ""))
	q.DebugVsSource = ratio(r.median("tilt-source-debug", ""), r.median("tilt-source", ""))

	r.Goals = nil
	add := func(text string, value, limit float64, unit string, atLeast bool) {
		if value <= 0 || limit <= 0 {
			return
		}
		met := value <= limit
		if atLeast {
			met = value >= limit
		}
		r.Goals = append(r.Goals, goal{Goal: text, Value: value, Limit: limit, Unit: unit, AtLeast: atLeast, Met: met})
	}
	add("air median / floor median", r.find1("air").MedianVsFloor, 1.3, "x", false)
	add("tilt-naive / tilt-source medians (what live_update saves)", q.NaiveVsLiveUpdate, 3, "x", true)
	add("tilt-source median / floor median", r.find1("tilt-source").MedianVsFloor, 1.5, "x", false)
	for _, g := range r.Gaps {
		add("tilt-default (tests on) / tilt-source (--no-tests), "+g+" gap", q.DefaultVsNoTests["source "+g], 1.10, "x", false)
		add("tilt-binary-default (tests on) / tilt-binary (--no-tests), "+g+" gap", q.DefaultVsNoTests["binary "+g], 1.10, "x", false)
	}
	add("tilt-source p90 / median", q.SourceTail, 1.25, "x", false)
	if q.SyncRoundTripMS > 0 {
		add("tilt-source median - floor median, at most the sync round trip + 100 ms", q.SourceOverFloorMS, q.SyncRoundTripMS+100, "ms", false)
	}
	add("in-pod build / host build of the same edit", q.PodVsHostBuild, 1.05, "x", false)
	// Differences may be zero or negative, which add would take for "not run".
	addDiff := func(text string, value *float64, limit float64) {
		if value != nil {
			r.Goals = append(r.Goals, goal{Goal: text, Value: *value, Limit: limit, Unit: "ms", Met: *value <= limit})
		}
	}
	addDiff("edit to error shown under air, over the failing build (air-error - floor-error medians)", q.AirErrorOverFloorMS, 300)
	addDiff("the build-check step's cost on a good edit (tilt-source - tilt-source-nocheck medians)", q.BuildCheckMS, 50)
	add("under Delve / plain (tilt-source-debug / tilt-source medians)", q.DebugVsSource, 1.5, "x", false)
}

// difference is a - b, both medians, or nil when either did not run.
func difference(a, b float64) *float64 {
	if a <= 0 || b <= 0 {
		return nil
	}
	// math.Round: round2 rounds towards zero below it.
	d := math.Round((a-b)*100) / 100
	return &d
}

// find1 is find for the first spacing, never nil.
func (r *results) find1(name string) config {
	if c := r.find(name, ""); c != nil {
		return *c
	}
	return config{}
}

func (r results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readResults loads a results file, for redrawing its table and chart.
func readResults(path string) (results, error) {
	var r results
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Configs) == 0 {
		return r, fmt.Errorf("%s: no configurations", path)
	}
	for _, c := range r.Configs {
		if c.Name == "" || c.Summary.N == 0 || len(c.Summary.Values) != c.Summary.N {
			return r, fmt.Errorf("%s: configuration %q has no samples or a sample count that disagrees with its values", path, c.Name)
		}
		if len(c.Phases) != 0 && len(c.Phases) != c.Summary.N {
			return r, fmt.Errorf("%s: configuration %q has %d phase records for %d samples", path, c.label(), len(c.Phases), c.Summary.N)
		}
	}
	if r.Date == "" {
		return r, errors.New(path + ": no date")
	}
	return r, nil
}

func printTable(w io.Writer, r results) {
	fmt.Fprintf(w, "Edit to first response with the edit, %d edits each, %s\n", r.Edits, r.Date)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Command: %s\n\n", r.Command)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED: %s\n\n", f)
	}
	for _, c := range r.Configs {
		if strings.HasSuffix(c.Name, "-error") {
			fmt.Fprintf(w, "Each *-error row is a broken save to the page's build-error event; its floor is floor-error.\n\n")
			break
		}
	}
	fmt.Fprintln(w, "| configuration                     |  min ms | median ms |  p90 ms | p90 / median | median / floor |")
	fmt.Fprintln(w, "|-----------------------------------|--------:|----------:|--------:|-------------:|---------------:|")
	for _, c := range r.Configs {
		vs := "-"
		if c.MedianVsFloor > 0 {
			vs = fmt.Sprintf("%.2fx", c.MedianVsFloor)
		}
		fmt.Fprintf(w, "| %-33s | %7.0f | %9.0f | %7.0f | %11.2fx | %14s |\n", c.label(), c.Summary.MinMS, c.Summary.MedMS, c.Summary.P90MS, ratio(c.Summary.P90MS, c.Summary.MedMS), vs)
	}
	if len(r.Goals) > 0 {
		fmt.Fprintln(w, "\n| goal | this run | limit | |")
		fmt.Fprintln(w, "|---|--:|--:|---|")
		for _, g := range r.Goals {
			bound := "at most"
			if g.AtLeast {
				bound = "at least"
			}
			verdict := "missed"
			if g.Met {
				verdict = "met"
			}
			fmt.Fprintf(w, "| %s | %s | %s %s | **%s** |\n", g.Goal, fmtValue(g.Value, g.Unit), bound, fmtValue(g.Limit, g.Unit), verdict)
		}
	}
	for _, c := range r.Configs {
		if len(c.Phases) > 0 {
			fmt.Fprintln(w)
			printPhases(w, c)
		}
	}
}

func fmtValue(v float64, unit string) string {
	if unit == "ms" {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.2fx", v)
}

// printPhases is the profile of one configuration: for each step, its
// median time after the edit, and each sample's, slowest sample last.
func printPhases(w io.Writer, c config) {
	fmt.Fprintf(w, "Profile of %s: ms after the edit was written, per sample (sorted by response), and the median\n\n", c.label())
	order := make([]int, len(c.Phases))
	for i := range order {
		order[i] = i
	}
	// Slowest last: the tail is what the profile is for.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && c.Phases[order[j]].Response < c.Phases[order[j-1]].Response; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	fmt.Fprint(w, "| step | median |")
	for range order {
		fmt.Fprint(w, " |")
	}
	fmt.Fprint(w, "\n|---|--:|")
	for range order {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w)
	for _, p := range phaseNames {
		var vals []float64
		for _, ph := range c.Phases {
			if v := p.get(ph); v > 0 {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f |", p.Label, stats.Median(vals))
		for _, i := range order {
			if v := p.get(c.Phases[i]); v > 0 {
				fmt.Fprintf(w, " %.0f |", v)
			} else {
				fmt.Fprint(w, " - |")
			}
		}
		fmt.Fprintln(w)
	}
}
