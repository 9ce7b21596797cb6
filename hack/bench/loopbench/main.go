// Command loopbench measures the inner loop: the time from saving an edit
// to the first HTTP response that carries it, for each way of running the
// service, side by side in one run, with a profile of where each Tilt
// sample's time went.
//
//	go run ./hack/bench/loopbench              # air and the floor, 10 edits each
//	go run ./hack/bench/loopbench -modes all   # also Tilt, given a cluster (see README)
//	go run ./hack/bench/loopbench -modes floor-error,air-error   # edit to build error shown
//	go run ./hack/bench/loopbench -replot docs/loopbench.json   # redraw the table and chart
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ornlu-is/askeladden/hack/bench/stats"
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
	// spaced modes run once per -gaps spacing: a save that lands while
	// the previous one's tests or compile still run is what they are for.
	spaced bool
	// extras: the sync-only round trip and the pod-against-host build run
	// in this mode's session (tilt-source: the pod air builds in).
	extras bool
}

// sample is one timed edit.
type sample struct {
	start, end time.Time
	// binMTime is the compiled binary's modification time after the edit
	// was served (binary strategy): when the host compile finished.
	binMTime time.Time
}

func (s sample) d() time.Duration { return s.end.Sub(s.start) }

// loop times edits: from writing one to the first response carrying it.
type loop interface {
	edit(ctx context.Context, quote string) (sample, error)
	// settle waits, after an edit was served, until the next may be
	// written: gap after it, or once nothing runs any more (gapSettled).
	settle(ctx context.Context, gap string) error
	stop()
}

// profiler is a loop that can say where each sample's time went.
type profiler interface {
	profile(ctx context.Context, s []sample) ([]phases, error)
}

type opts struct {
	root string // the project checkout
	lock string // a lock file to hold while a Tilt session runs ("" for none)
	// probe is how Tilt configurations see the edit: "nodeport" (the dev
	// event stream on the NodePort, as the dev page watches; a reconnect
	// that finds no server is refused and retried) or "forward" (polling
	// Tilt's port-forward, which a poll that finds no server breaks).
	probe string
}

// gapSettled waits for the loop to go idle (Tilt: no resource building or
// testing), then one second: a developer who looks at the result first.
const gapSettled = "settled"

var modes = []mode{
	{name: "floor", about: "incremental go build of the edit, then exec to first response", start: startFloor},
	{name: "air", about: "go tool air on the laptop (.air.toml)", start: startAir},
	{name: "tilt-source", about: "tilt up -- --no-tests: live_update syncs the source, air rebuilds in the pod (the default strategy)", start: tiltMode("--no-tests"), exclusive: true, spaced: true, extras: true},
	{name: "tilt-default", about: "tilt up, exactly as the README says: the source strategy with the unit-tests resource", start: tiltMode(), exclusive: true, spaced: true},
	{name: "tilt-binary", about: "tilt up -- --strategy=binary --no-tests: compile on the host, sync the binary, devrun restarts", start: tiltMode("--strategy=binary", "--no-tests"), exclusive: true, spaced: true},
	{name: "tilt-binary-default", about: "tilt up -- --strategy=binary: the binary strategy with the unit-tests resource", start: tiltMode("--strategy=binary"), exclusive: true, spaced: true},
	{name: "tilt-naive", about: "tilt up -- --no-live-update --no-tests: image rebuild and redeploy per edit", start: tiltMode("--no-live-update", "--no-tests"), exclusive: true},
	{name: "tilt-source-debug", about: "tilt up -- --debug --no-tests: the source strategy under Delve, a client attached that continues after each live update", start: tiltDebugMode, exclusive: true},
	// What the live_update run() step that waits for the pod's build costs:
	// the same loop as tilt-source with that step taken out of the Tiltfile.
	{name: "tilt-source-nocheck", about: "tilt-source without the live_update step that waits for the pod's build", start: tiltModeWith(withoutBuildCheck, "--no-tests"), exclusive: true},
	// Edit to error shown: a broken save, to the build-error event that
	// tells an open page (a client of /_dev/events, as the page's
	// EventSource is). Each sample then fixes the edit and waits for the
	// fix to serve, so the next one starts from a good build.
	{name: "floor-error", about: "incremental go build of a broken edit, to its failure", start: startFloorError},
	{name: "air-error", about: "go tool air: a broken save to the build-error event on /_dev/events", start: errorMode(startAir)},
	{name: "tilt-source-error", about: "tilt up -- --no-tests: a broken save to the build-error event on the dev event stream", start: errorMode(tiltMode("--no-tests")), exclusive: true},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loopbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "edits per configuration")
	which := fs.String("modes", "floor,air", "comma-separated configurations to run, or all: "+modeNames()+" (tilt-* need a cluster, KUBECONFIG and tilt on PATH)")
	gapList := fs.String("gaps", gapSettled, "comma-separated spacings of edits for the tilt live-update modes: "+gapSettled+" (wait until Tilt is idle, then 1s) or a duration after the previous edit was served, e.g. 1s; the other modes use the first")
	out := fs.String("out", "docs/loopbench.json", "JSON results file; the table (.md) and chart (.svg) are written beside it")
	lock := fs.String("lock", "", "a lock file (flock) to hold while each Tilt session runs, e.g. /tmp/askeladden-cluster.lock")
	probe := fs.String("probe", "nodeport", "how the tilt modes see the edit: nodeport (localhost:30008, holding the dev event stream as the page does; the naive loop polls) or forward (poll Tilt's port-forward, localhost:8090, every 2 ms; tilt-source is measured so either way)")
	replot := fs.String("replot", "", "redraw the table and chart of this results file and exit (no measurement)")
	verbose := fs.Bool("v", false, "show the output of air, Tilt and the servers")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q: loopbench takes only flags", fs.Arg(0)))
	}
	if *replot != "" {
		r, err := readResults(*replot)
		if err != nil {
			return err
		}
		return writeReports(stdout, r, *replot, false)
	}
	if *n < 1 || *n > 200 {
		return usageError(fmt.Sprintf("invalid -n %d: want 1 to 200 edits", *n))
	}
	if *probe != "forward" && *probe != "nodeport" {
		return usageError(fmt.Sprintf("invalid -probe %q: want forward or nodeport", *probe))
	}
	gaps, err := parseGaps(*gapList)
	if err != nil {
		return err
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
	o := opts{root: root, lock: *lock, probe: *probe}

	res := results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: stats.DescribeMachine(),
		Command: "go run ./hack/bench/loopbench " + strings.Join(args[1:], " "),
		Edits:   *n,
		Gaps:    gaps,
	}
	var shared []mode
	for _, m := range selected {
		if !m.exclusive {
			shared = append(shared, m)
		}
	}
	if len(shared) > 0 {
		cs, err := measureRoundRobin(ctx, shared, o, *n, gaps[0], log, stderr)
		if err != nil {
			return err
		}
		res.Configs = append(res.Configs, cs...)
	}
	for _, m := range selected {
		if m.exclusive {
			cs, err := measureSession(ctx, m, o, *n, gaps, log, stderr, &res.Failures)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				// One broken session should not cost a long run the
				// others: it is reported in the results and the exit code.
				fmt.Fprintf(stderr, "loopbench: %v\n", err)
				res.Failures = append(res.Failures, err.Error())
				continue
			}
			res.Configs = append(res.Configs, cs...)
		}
	}
	if len(res.Configs) == 0 {
		return fmt.Errorf("no configuration measured: %s", strings.Join(res.Failures, "; "))
	}
	res.analyse()
	if err := writeReports(stdout, res, *out, true); err != nil {
		return err
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d part(s) of the run failed (listed in %s): %s", len(res.Failures), *out, strings.Join(res.Failures, "; "))
	}
	return nil
}

// writeReports prints the table and writes it, the chart and (unless
// only redrawing) the results file beside out.
func writeReports(stdout io.Writer, r results, out string, writeJSON bool) error {
	printTable(stdout, r)
	if writeJSON {
		if err := r.write(out); err != nil {
			return err
		}
	}
	base := strings.TrimSuffix(out, filepath.Ext(out))
	var md strings.Builder
	printTable(&md, r)
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	svg, err := chart(r)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return os.WriteFile(base+".svg", svg, 0o644)
}

func parseGaps(list string) ([]string, error) {
	var gaps []string
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		if g != gapSettled {
			d, err := time.ParseDuration(g)
			if err != nil || d < 0 || d > time.Minute {
				return nil, usageError(fmt.Sprintf("invalid spacing %q in -gaps: want %s or a duration from 0s to 1m, e.g. 1s", g, gapSettled))
			}
			g = d.String()
		}
		for _, have := range gaps {
			if have == g {
				return nil, usageError(fmt.Sprintf("spacing %q appears twice in -gaps", g))
			}
		}
		gaps = append(gaps, g)
	}
	return gaps, nil
}

// waitGap waits gap (a duration) or, for gapSettled, one second: what a
// loop with nothing running in the background needs between edits.
func waitGap(ctx context.Context, gap string) error {
	d := time.Second
	if gap != gapSettled {
		d, _ = time.ParseDuration(gap) // checked by parseGaps
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// measureRoundRobin starts the loops and takes n samples from each, round
// robin: every configuration takes its i-th sample before any takes its
// next, so a noisy minute on the machine hits all of them.
func measureRoundRobin(ctx context.Context, ms []mode, o opts, n int, gap string, log, stderr io.Writer) ([]config, error) {
	loops := make([]loop, len(ms))
	defer func() {
		for _, l := range loops {
			if l != nil {
				l.stop()
			}
		}
	}()
	for i, m := range ms {
		fmt.Fprintf(stderr, "loopbench: starting %s\n", m.name)
		l, err := m.start(ctx, o, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		loops[i] = l
	}
	samples := make([][]sample, len(ms))
	for e := 1; e <= n; e++ {
		for i, m := range ms {
			if err := loops[i].settle(ctx, gap); err != nil {
				return nil, fmt.Errorf("%s, before edit %d: %w", m.name, e, err)
			}
			s, err := loops[i].edit(ctx, editQuote(e))
			if err != nil {
				return nil, fmt.Errorf("%s, edit %d: %w", m.name, e, err)
			}
			fmt.Fprintf(stderr, "loopbench: %s edit %d: %s\n", m.name, e, s.d().Round(time.Millisecond))
			samples[i] = append(samples[i], s)
		}
	}
	var out []config
	for i, m := range ms {
		c, err := summarize(m.name, gap, m.about, samples[i], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// measureSession runs one exclusive mode in one session: n edits at each
// spacing it runs at, then its extras, then its profile.
func measureSession(ctx context.Context, m mode, o opts, n int, gaps []string, log, stderr io.Writer, failures *[]string) (out []config, err error) {
	if o.lock != "" {
		unlock, err := lockFile(ctx, o.lock, stderr)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	fmt.Fprintf(stderr, "loopbench: starting %s\n", m.name)
	l, err := m.start(ctx, o, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	defer l.stop()
	if !m.spaced {
		gaps = gaps[:1]
	}
	type set struct {
		name, about, gap string
		samples          []sample
	}
	var sets []set
	measure := func(name, about, gap string) error {
		s := set{name: name, about: about, gap: gap}
		for e := 1; e <= n; e++ {
			if err := l.settle(ctx, gap); err != nil {
				return fmt.Errorf("%s, before edit %d: %w", name, e, err)
			}
			smp, err := l.edit(ctx, editQuote(e))
			if err != nil {
				return fmt.Errorf("%s (%s gap), edit %d: %w", name, gap, e, err)
			}
			fmt.Fprintf(stderr, "loopbench: %s (%s gap) edit %d: %s\n", name, gap, e, smp.d().Round(time.Millisecond))
			s.samples = append(s.samples, smp)
		}
		sets = append(sets, s)
		return nil
	}
	for _, gap := range gaps {
		if err := measure(m.name, m.about, gap); err != nil {
			return nil, err
		}
	}
	// The same loop polled through Tilt's port-forward, which the other
	// sets avoid: a poll that reaches the pod while no server listens
	// there (the few ms of a restart) breaks the port-forward, and Tilt
	// takes most of a second to make a new one.
	if tl, ok := l.(*tiltLoop); ok && m.extras && !tl.poll {
		url := tl.url
		tl.url, tl.poll = tiltForward, true
		err := measure(m.name+"-forward", m.about+"; polled every 2 ms through Tilt's port-forward (localhost:8090), as this benchmark did before", gaps[0])
		tl.url, tl.poll = url, false
		if err != nil {
			return nil, err
		}
	}
	var extras []config
	if tl, ok := l.(*tiltLoop); ok && m.extras {
		if extras, err = tl.measureExtras(ctx, n, stderr); err != nil {
			// The loop's own samples stand without them.
			fmt.Fprintf(stderr, "loopbench: %s: %v\n", m.name, err)
			*failures = append(*failures, fmt.Sprintf("%s: %v", m.name, err))
			extras = nil
		}
	}
	for _, s := range sets {
		var ph []phases
		if p, ok := l.(profiler); ok {
			if ph, err = p.profile(ctx, s.samples); err != nil {
				return nil, fmt.Errorf("%s: profile: %w", m.name, err)
			}
		}
		c, err := summarize(s.name, s.gap, s.about, s.samples, ph)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return append(out, extras...), nil
}

func summarize(name, gap, about string, s []sample, ph []phases) (config, error) {
	ds := make([]time.Duration, len(s))
	for i := range s {
		ds[i] = s[i].d()
	}
	sum, err := stats.Summarize(ds)
	if err != nil {
		return config{}, fmt.Errorf("%s: %w", name, err)
	}
	return config{Name: name, Gap: gap, About: about, Summary: sum, Phases: ph}, nil
}

// lockFile holds an flock on path until the returned function is called,
// so that one benchmark run can leave the shared cluster to others between
// its Tilt sessions. It waits in a blocking flock, as flock(1) does, so it
// queues with other waiters. The descriptor is close-on-exec: Tilt and
// kubectl do not inherit the lock.
func lockFile(ctx context.Context, path string, stderr io.Writer) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return func() { f.Close() }, nil
	}
	fmt.Fprintf(stderr, "loopbench: waiting for the lock %s\n", path)
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// The blocked flock goes with the process.
		return nil, ctx.Err()
	}
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
