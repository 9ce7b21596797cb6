// Command loopbench measures the inner loop: the time from saving an edit
// to the first HTTP response that carries it, for each way of running the
// service, side by side in one run. The *-error modes time a broken save
// to the build-error event that tells an open page.
//
//	go run ./hack/bench/loopbench              # air and the floor, 10 edits each
//	go run ./hack/bench/loopbench -modes floor-error,air-error
//	go run ./hack/bench/loopbench -modes all   # also Tilt, given a cluster (see README)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ornlu-is/askeladden/hack/bench/stats"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopbench: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// mode is one way of running the loop. start sets it up (a scratch copy,
// a watcher, a deploy) and returns the loop to time.
type mode struct {
	name, about string
	start       func(ctx context.Context, o opts, log io.Writer) (loop, error)
	// exclusive modes share the cluster and Tilt's port-forward, so they
	// run one after another rather than round robin with the others.
	exclusive bool
}

// loop times one edit: from writing it to the first response carrying it.
type loop interface {
	edit(ctx context.Context, quote string) (time.Duration, error)
	stop()
}

// served is a loop that serves a project copy over HTTP: the error modes
// break its source and listen to its dev event stream.
type served interface {
	loop
	project() (dir, url string)
}

type opts struct {
	root string // the project checkout
}

var modes = []mode{
	{"floor", "incremental go build of the edit, then exec to first response", startFloor, false},
	{"air", "go tool air on the laptop (.air.toml)", startAir, false},
	{"tilt-source", "tilt up: live_update syncs the source, air rebuilds in the pod (the default)", tiltMode("--no-tests"), true},
	{"tilt-binary", "tilt up -- --strategy=binary: compile on the host, sync the binary, devrun restarts", tiltMode("--no-tests", "--strategy=binary"), true},
	{"tilt-source-debug", "tilt up -- --debug: the source strategy under Delve, a client attached that continues after each live update", tiltDebugMode, true},
	{"tilt-naive", "tilt up -- --no-live-update: image rebuild and redeploy per edit", tiltMode("--no-tests", "--no-live-update"), true},
	// What the live_update run() step that waits for the pod's build costs:
	// the same loop as tilt-source with that step taken out of the Tiltfile.
	{"tilt-source-nocheck", "tilt-source without the live_update step that waits for the pod's build", tiltModeWith(withoutBuildCheck, "--no-tests"), true},
	// Edit to error shown: a broken save, to the build-error event that
	// tells an open page (a client of /_dev/events, as the page's
	// EventSource is). Each sample then fixes the edit and waits for the
	// fix to serve, so the next one starts from a good build.
	{"floor-error", "incremental go build of a broken edit, to its failure", startFloorError, false},
	{"air-error", "go tool air: a broken save to the build-error event on /_dev/events", errorMode(startAir), false},
	{"tilt-source-error", "tilt up: a broken save to the build-error event through the port-forward", errorMode(tiltMode("--no-tests")), true},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loopbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "edits per configuration")
	which := fs.String("modes", "floor,air", "comma-separated configurations to run, or all: "+modeNames()+" (tilt-* need a cluster, KUBECONFIG and tilt on PATH)")
	out := fs.String("out", "docs/loopbench.json", "JSON results file (directories are created)")
	verbose := fs.Bool("v", false, "show the output of air and the servers")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error())
	}
	if *n < 1 || *n > 200 {
		return usageError(fmt.Sprintf("invalid -n %d: want 1 to 200 edits", *n))
	}
	selected, err := selectModes(*which)
	if err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "quote.go")); err != nil {
		return usageError("run loopbench from the project root (no quote.go here)")
	}
	log := io.Discard
	if *verbose {
		log = stderr
	}

	res := results{Date: time.Now().UTC().Format(time.RFC3339), Machine: stats.DescribeMachine(), Edits: *n}
	samples := make([][]time.Duration, len(selected))
	var shared []int
	for i, m := range selected {
		if !m.exclusive {
			shared = append(shared, i)
		}
	}
	if err := measureRoundRobin(ctx, selected, shared, root, *n, log, stderr, samples); err != nil {
		return err
	}
	for i, m := range selected {
		if m.exclusive {
			if err := measureRoundRobin(ctx, selected, []int{i}, root, *n, log, stderr, samples); err != nil {
				return err
			}
		}
	}
	for i, m := range selected {
		s, err := stats.Summarize(samples[i])
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		res.Configs = append(res.Configs, config{Name: m.name, About: m.about, Summary: s})
	}
	res.ratios()
	printTable(stdout, res)
	if res.NaiveVsLiveUpdate > 0 {
		fmt.Fprintf(stdout, "\nnaive / live_update (tilt-naive / tilt-source medians): %.2fx\n", res.NaiveVsLiveUpdate)
	}
	if res.AirErrorOverFloorMS != nil {
		fmt.Fprintf(stdout, "edit to error shown under air, over the failing build (air-error - floor-error medians): %+.0f ms (goal: at most 300)\n", *res.AirErrorOverFloorMS)
	}
	if res.BuildCheckMS != nil {
		fmt.Fprintf(stdout, "the build-check step's cost on a good edit (tilt-source - tilt-source-nocheck medians): %+.0f ms (goal: at most 50)\n", *res.BuildCheckMS)
	}
	if res.DebugVsSource > 0 {
		fmt.Fprintf(stdout, "under Delve / plain (tilt-source-debug / tilt-source medians): %.2fx (goal: at most 1.5x)\n", res.DebugVsSource)
	}
	if err := res.write(*out); err != nil {
		return err
	}
	base := strings.TrimSuffix(*out, filepath.Ext(*out))
	var md strings.Builder
	printTable(&md, res)
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(base+".svg", []byte(chart(res)), 0o644)
}

// measureRoundRobin starts the loops named by idx and takes n samples from
// each, round robin: every configuration takes its i-th sample before any
// takes its next, so a noisy minute on the machine hits all of them.
func measureRoundRobin(ctx context.Context, modes []mode, idx []int, root string, n int, log, stderr io.Writer, samples [][]time.Duration) error {
	loops := map[int]loop{}
	defer func() {
		for _, l := range loops {
			l.stop()
		}
	}()
	for _, i := range idx {
		fmt.Fprintf(stderr, "loopbench: starting %s\n", modes[i].name)
		l, err := modes[i].start(ctx, opts{root: root}, log)
		if err != nil {
			return fmt.Errorf("%s: %w", modes[i].name, err)
		}
		loops[i] = l
	}
	for e := 1; e <= n; e++ {
		for _, i := range idx {
			// Let watchers and Tilt settle, as between a developer's saves.
			time.Sleep(time.Second)
			d, err := loops[i].edit(ctx, editQuote(e))
			if err != nil {
				return fmt.Errorf("%s, edit %d: %w", modes[i].name, e, err)
			}
			fmt.Fprintf(stderr, "loopbench: %s edit %d: %s\n", modes[i].name, e, d.Round(time.Millisecond))
			samples[i] = append(samples[i], d)
		}
	}
	return nil
}

func modeNames() string {
	var names []string
	for _, m := range modes {
		names = append(names, m.name)
	}
	return strings.Join(names, ",")
}

func selectModes(list string) ([]mode, error) {
	if list == "all" {
		return modes, nil
	}
	var out []mode
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, m := range modes {
			if m.name == strings.TrimSpace(name) {
				out, found = append(out, m), true
			}
		}
		if !found {
			return nil, usageError(fmt.Sprintf("unknown mode %q in -modes: want all or some of %s", name, modeNames()))
		}
	}
	return out, nil
}

// editQuote is the n-th edit: a distinct quote, so each sample waits for
// its own change and not a previous one.
func editQuote(i int) string {
	return fmt.Sprintf("Strange women lying in ponds distributing swords is no basis for a system of government. (edit %d, %d)", i, time.Now().UnixNano())
}

const perEditTimeout = 3 * time.Minute

// scratchCopy makes a temporary copy of the project for one loop.
func scratchCopy(o opts, name string) (string, error) {
	dir, err := os.MkdirTemp("", "loopbench-"+name)
	if err != nil {
		return "", err
	}
	if err := devloop.CopyProject(o.root, dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// waitFor times from start to the first response at url carrying q.
func waitFor(ctx context.Context, start time.Time, url, q string) (time.Duration, error) {
	ectx, cancel := context.WithTimeout(ctx, perEditTimeout)
	defer cancel()
	seen, err := devloop.WaitForBody(ectx, url, q, 2*time.Millisecond)
	if err != nil {
		return 0, err
	}
	return seen.Sub(start), nil
}

// floorLoop is the least any loop can do: rebuild the changed package and
// start the binary. Its build flags match .air.toml's.
type floorLoop struct {
	dir, bin string
	log      io.Writer
}

func startFloor(ctx context.Context, o opts, log io.Writer) (loop, error) {
	dir, err := scratchCopy(o, "floor")
	if err != nil {
		return nil, err
	}
	f := &floorLoop{dir: dir, bin: filepath.Join(dir, "askeladden"), log: log}
	if err := f.build(ctx); err != nil { // warm the cache, as a developer's is
		f.stop()
		return nil, fmt.Errorf("first build: %w", err)
	}
	return f, nil
}

func (f *floorLoop) build(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags=-s -w", "-o", f.bin, ".")
	cmd.Dir, cmd.Stdout, cmd.Stderr = f.dir, f.log, f.log
	cmd.Env = append(os.Environ(), "GOWORK=off")
	return cmd.Run()
}

func (f *floorLoop) edit(ctx context.Context, q string) (time.Duration, error) {
	port, err := devloop.FreePort()
	if err != nil {
		return 0, err
	}
	if err := devloop.SetQuote(f.dir, q); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := f.build(ctx); err != nil {
		return 0, fmt.Errorf("build: %w", err)
	}
	srv := exec.Command(f.bin)
	srv.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	srv.Stdout, srv.Stderr = f.log, f.log
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	return waitFor(ctx, start, fmt.Sprintf("http://127.0.0.1:%d/", port), q)
}

func (f *floorLoop) stop() { os.RemoveAll(f.dir) }

// airLoop runs the laptop loop exactly as the README tells a user to.
type airLoop struct {
	air      *devloop.Air
	dir, url string
}

func startAir(ctx context.Context, o opts, log io.Writer) (loop, error) {
	dir, err := scratchCopy(o, "air")
	if err != nil {
		return nil, err
	}
	port, err := devloop.FreePort()
	if err != nil {
		return nil, err
	}
	air, err := devloop.StartAir(dir, port, log)
	if err != nil {
		return nil, err
	}
	a := &airLoop{air: air, dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	if _, err := waitFor(ctx, time.Now(), a.url, "Strange women"); err != nil {
		a.stop()
		return nil, fmt.Errorf("air never served: %w", err)
	}
	return a, nil
}

func (a *airLoop) edit(ctx context.Context, q string) (time.Duration, error) {
	start := time.Now()
	if err := devloop.SetQuote(a.air.Dir, q); err != nil {
		return 0, err
	}
	return waitFor(ctx, start, a.url, q)
}

func (a *airLoop) project() (string, string) { return a.dir, a.url }

func (a *airLoop) stop() {
	_ = a.air.Stop(15 * time.Second)
	os.RemoveAll(a.air.Dir)
}

// tiltLoop runs `tilt up` in a scratch copy of the whole project and times
// edits through its port-forward, as a developer's browser sees them.
type tiltLoop struct {
	dir, url string
	tilt     *devloop.Process
	log      io.Writer
	// Under --debug: the attached client and how to stop it.
	dlv      *devloop.Delve
	detach   context.CancelFunc
	detached <-chan error
}

// tiltDebugMode is tilt-source with a debugger client attached through
// the port-forward for the whole run, as an editor's would be: each live
// update stops the new process at its entry until the client continues it,
// and the client continues at once.
func tiltDebugMode(ctx context.Context, o opts, log io.Writer) (loop, error) {
	l, err := tiltMode("--no-tests", "--debug")(ctx, o, log)
	if err != nil {
		return nil, err
	}
	tl := l.(*tiltLoop)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d, err := devloop.DialDelve(dctx, "127.0.0.1:2345")
	if err != nil {
		tl.stop()
		return nil, err
	}
	if _, err := d.Halt(); err != nil {
		tl.stop()
		return nil, fmt.Errorf("halt through the debugger: %w", err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	tl.dlv, tl.detach, tl.detached = d, kcancel, d.KeepRunning(kctx)
	return tl, nil
}

const tiltForward = "http://localhost:8090/"

func tiltMode(args ...string) func(context.Context, opts, io.Writer) (loop, error) {
	return tiltModeWith(nil, args...)
}

// buildCheckStep is the Tiltfile's live_update step that waits for the
// pod's build; withoutBuildCheck removes it from a scratch copy.
var buildCheckStep = regexp.MustCompile(`(?m)^\s*run\(\['buildrec', 'wait'[^\n]*\),\n`)

func withoutBuildCheck(dir string) error {
	p := filepath.Join(dir, "Tiltfile")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !buildCheckStep.Match(b) {
		return fmt.Errorf("%s has no `run(['buildrec', 'wait', ...])` step to take out", p)
	}
	return os.WriteFile(p, buildCheckStep.ReplaceAll(b, nil), 0o644)
}

func tiltModeWith(patch func(dir string) error, args ...string) func(context.Context, opts, io.Writer) (loop, error) {
	return func(ctx context.Context, o opts, log io.Writer) (loop, error) {
		if _, err := exec.LookPath("tilt"); err != nil {
			return nil, usageError("tilt is not on PATH: run `bash hack/build-tilt.sh` and add ~/.cache/askeladden/bin to PATH")
		}
		if os.Getenv("KUBECONFIG") == "" {
			return nil, usageError("KUBECONFIG is not set: the tilt modes need a cluster (bash hack/cluster/cluster.sh up)")
		}
		dir, err := os.MkdirTemp("", "loopbench-tilt")
		if err != nil {
			return nil, err
		}
		if err := devloop.CopyTracked(o.root, dir); err != nil {
			return nil, err
		}
		if patch != nil {
			if err := patch(dir); err != nil {
				return nil, err
			}
		}
		port, err := devloop.FreePort()
		if err != nil {
			return nil, err
		}
		tilt, err := devloop.StartTilt(dir, port, log, args...)
		if err != nil {
			return nil, err
		}
		l := &tiltLoop{dir: dir, tilt: tilt, log: log, url: tiltForward}
		// The first deploy builds the image: allow for a cold cache.
		wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		if _, err := devloop.WaitForBody(wctx, tiltForward, "Strange women", 100*time.Millisecond); err != nil {
			l.stop()
			return nil, fmt.Errorf("tilt up never served through the port-forward: %w", err)
		}
		return l, nil
	}
}

func (l *tiltLoop) edit(ctx context.Context, q string) (time.Duration, error) {
	start := time.Now()
	if err := devloop.SetQuote(l.dir, q); err != nil {
		return 0, err
	}
	return waitFor(ctx, start, tiltForward, q)
}

func (l *tiltLoop) project() (string, string) { return l.dir, l.url }

func (l *tiltLoop) stop() {
	if l.dlv != nil {
		l.detach()
		if err := <-l.detached; err != nil {
			fmt.Fprintf(l.log, "loopbench: debugger client: %v\n", err)
		}
		_ = l.dlv.Disconnect(false)
	}
	down := exec.Command("tilt", "down")
	down.Dir, down.Stdout, down.Stderr = l.dir, l.log, l.log
	_ = down.Run()
	// The next configuration's port-forward must not find this one's pod,
	// still serving through its preStop sleep.
	wait := exec.Command("kubectl", "wait", "--for=delete", "pod", "-n", "askeladden-dev", "-l", "app.kubernetes.io/name=askeladden", "--timeout=90s")
	wait.Stdout, wait.Stderr = l.log, l.log
	_ = wait.Run()
	_ = l.tilt.Stop(30 * time.Second)
	os.RemoveAll(l.dir)
}

type config struct {
	Name    string        `json:"name"`
	About   string        `json:"about"`
	Summary stats.Summary `json:"summary"`
	// MedianVsFloor is this configuration's median over the floor's.
	MedianVsFloor float64 `json:"median_vs_floor,omitempty"`
}

type results struct {
	Date    string        `json:"date"`
	Machine stats.Machine `json:"machine"`
	Edits   int           `json:"edits_per_config"`
	Configs []config      `json:"configs"`
	// NaiveVsLiveUpdate is tilt-naive's median over the default
	// live_update strategy's: what live_update saves.
	NaiveVsLiveUpdate float64 `json:"naive_vs_live_update,omitempty"`
	// AirErrorOverFloorMS is air-error's median minus floor-error's: what
	// air, the record and the stream add to the failing build itself
	// (goal: 300 ms at most).
	AirErrorOverFloorMS *float64 `json:"air_error_over_floor_error_ms,omitempty"`
	// BuildCheckMS is tilt-source's median minus tilt-source-nocheck's:
	// what the live_update step that waits for the pod's build adds to a
	// successful edit (goal: 50 ms at most).
	BuildCheckMS *float64 `json:"build_check_ms,omitempty"`
	// DebugVsSource is tilt-source-debug's median over tilt-source's: what
	// running under Delve, with a client attached, costs a live update.
	DebugVsSource float64 `json:"debug_vs_source,omitempty"`
}

func (r *results) ratios() {
	med := map[string]float64{}
	for _, c := range r.Configs {
		med[c.Name] = c.Summary.MedMS
	}
	if med["tilt-naive"] > 0 && med["tilt-source"] > 0 {
		r.NaiveVsLiveUpdate = round2(med["tilt-naive"] / med["tilt-source"])
	}
	if med["air-error"] > 0 && med["floor-error"] > 0 {
		d := round2(med["air-error"] - med["floor-error"])
		r.AirErrorOverFloorMS = &d
	}
	if med["tilt-source-debug"] > 0 && med["tilt-source"] > 0 {
		r.DebugVsSource = round2(med["tilt-source-debug"] / med["tilt-source"])
	}
	if med["tilt-source"] > 0 && med["tilt-source-nocheck"] > 0 {
		d := round2(med["tilt-source"] - med["tilt-source-nocheck"])
		r.BuildCheckMS = &d
	}
	// A broken save is measured against the failing build, the rest
	// against the good one.
	for i, c := range r.Configs {
		floor := med["floor"]
		if strings.HasSuffix(c.Name, "-error") {
			floor = med["floor-error"]
		}
		if floor > 0 {
			r.Configs[i].MedianVsFloor = round2(c.Summary.MedMS / floor)
		}
	}
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

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

func printTable(w io.Writer, r results) {
	fmt.Fprintf(w, "Edit to first response with the edit, %d edits each, %s\n", r.Edits, r.Date)
	fmt.Fprintf(w, "Machine: %s\n\n", r.Machine)
	fmt.Fprintln(w, "Each *-error row is a broken save to the page's build-error event; its floor is floor-error.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| configuration        |  min ms | median ms |  p90 ms | median / floor |")
	fmt.Fprintln(w, "|----------------------|--------:|----------:|--------:|---------------:|")
	for _, c := range r.Configs {
		ratio := "-"
		if c.MedianVsFloor > 0 {
			ratio = fmt.Sprintf("%.2fx", c.MedianVsFloor)
		}
		fmt.Fprintf(w, "| %-20s | %7.0f | %9.0f | %7.0f | %14s |\n", c.Name, c.Summary.MinMS, c.Summary.MedMS, c.Summary.P90MS, ratio)
	}
}

// chart draws each configuration's median as a bar with a min-p90 whisker,
// on a shared linear scale, as a self-contained SVG.
func chart(r results) string {
	const left, width, row, top = 150, 520, 34, 40
	maxMS := 1.0
	for _, c := range r.Configs {
		maxMS = max(maxMS, c.Summary.P90MS)
	}
	x := func(ms float64) float64 { return left + ms/maxMS*width }
	h := top + row*len(r.Configs) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", left+width+90, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">Edit to first response with the edit: median (bar), min to p90 (line); %d edits each, %s</text>`+"\n", r.Edits, r.Date[:10])
	for i, c := range r.Configs {
		y := top + i*row
		color := "#4878a8"
		if c.Name == "floor" {
			color = "#999999"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+16, c.Name)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="20" fill="%s"/>`+"\n", left, y+2, x(c.Summary.MedMS)-left, color)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black"/>`+"\n", x(c.Summary.MinMS), x(c.Summary.P90MS), y+12, y+12)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f ms</text>`+"\n", x(c.Summary.P90MS)+6, y+16, c.Summary.MedMS)
	}
	axisY := top + row*len(r.Configs) + 8
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#444"/>`+"\n", left, left+width, axisY, axisY)
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%.0f ms</text>`+"\n", x(f*maxMS), axisY+16, f*maxMS)
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#444">%s, %d cores, %s</text>`+"\n", h-4, r.Machine.CPU, r.Machine.Cores, r.Machine.Go)
	b.WriteString("</svg>\n")
	return b.String()
}

// errorLoop times a broken save to the build-error event an open page
// receives, on a loop that serves (air or Tilt).
type errorLoop struct {
	served
	events <-chan devloop.Event
	cancel context.CancelFunc
	n      int
}

func errorMode(start func(context.Context, opts, io.Writer) (loop, error)) func(context.Context, opts, io.Writer) (loop, error) {
	return func(ctx context.Context, o opts, log io.Writer) (loop, error) {
		l, err := start(ctx, o, log)
		if err != nil {
			return nil, err
		}
		s, ok := l.(served)
		if !ok {
			l.stop()
			return nil, fmt.Errorf("%T serves no page to show an error in", l)
		}
		_, url := s.project()
		ectx, cancel := context.WithCancel(context.Background())
		return &errorLoop{served: s, events: devloop.Events(ectx, url+"_dev/events"), cancel: cancel}, nil
	}
}

func (e *errorLoop) edit(ctx context.Context, q string) (time.Duration, error) {
	dir, url := e.project()
	e.n++
	devloop.Drain(e.events)
	start := time.Now()
	good, err := devloop.Break(dir, e.n)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, perEditTimeout)
	defer cancel()
	ev, err := devloop.WaitEvent(wctx, e.events, "build-error")
	if err != nil {
		return 0, err
	}
	if !strings.Contains(ev.Data, "broken edit") {
		return 0, fmt.Errorf("the build-error event does not carry the broken line: %.300s", ev.Data)
	}
	shown := ev.At.Sub(start)
	// Fix it, with a new quote, and wait until the fix serves and the page
	// hears the build is good again.
	if err := os.WriteFile(filepath.Join(dir, "quote.go"), good, 0o644); err != nil {
		return 0, err
	}
	if err := devloop.SetQuote(dir, q); err != nil {
		return 0, err
	}
	if _, err := waitFor(ctx, time.Now(), url, q); err != nil {
		return 0, fmt.Errorf("after the fix: %w", err)
	}
	if _, err := devloop.WaitEvent(wctx, e.events, "build-ok"); err != nil {
		return 0, fmt.Errorf("after the fix: %w", err)
	}
	return shown, nil
}

func (e *errorLoop) stop() {
	e.cancel()
	e.served.stop()
}

// floorErrorLoop is the least a loop can do with a broken save: the
// incremental go build that fails on it.
type floorErrorLoop struct {
	*floorLoop
	n int
}

func startFloorError(ctx context.Context, o opts, log io.Writer) (loop, error) {
	l, err := startFloor(ctx, o, log)
	if err != nil {
		return nil, err
	}
	return &floorErrorLoop{floorLoop: l.(*floorLoop)}, nil
}

func (f *floorErrorLoop) edit(ctx context.Context, q string) (time.Duration, error) {
	f.n++
	good, err := devloop.Break(f.dir, f.n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = f.build(ctx)
	d := time.Since(start)
	if err == nil {
		return 0, errors.New("the broken edit built")
	}
	// Fixed and built, as the error loops do between samples.
	if err := os.WriteFile(filepath.Join(f.dir, "quote.go"), good, 0o644); err != nil {
		return 0, err
	}
	if err := devloop.SetQuote(f.dir, q); err != nil {
		return 0, err
	}
	if err := f.build(ctx); err != nil {
		return 0, fmt.Errorf("build after the fix: %w", err)
	}
	return d, nil
}
