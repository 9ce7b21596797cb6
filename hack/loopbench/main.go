// Command loopbench measures the inner loop: the time from saving an edit
// to the first HTTP response that carries it, for each way of running the
// service, side by side in one run.
//
//	go run ./hack/loopbench              # air and the floor, 10 edits each
//	go run ./hack/loopbench -modes all   # also Tilt, given a cluster (see README)
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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ornlu-is/askeladden/internal/devloop"
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
}

// loop times one edit: from writing it to the first response carrying it.
type loop interface {
	edit(ctx context.Context, quote string) (time.Duration, error)
	stop()
}

type opts struct {
	root string // the project checkout
}

var modes = []mode{
	{"floor", "incremental go build of the edit, then exec to first response", startFloor},
	{"air", "go tool air on the laptop (.air.toml)", startAir},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loopbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "edits per configuration")
	which := fs.String("modes", "floor,air", "comma-separated configurations to run, or all: "+modeNames())
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
	var log io.Writer = io.Discard
	if *verbose {
		log = stderr
	}

	res := results{Date: time.Now().UTC().Format(time.RFC3339), Machine: describeMachine(), Edits: *n}
	loops := make([]loop, len(selected))
	defer func() {
		for _, l := range loops {
			if l != nil {
				l.stop()
			}
		}
	}()
	for i, m := range selected {
		fmt.Fprintf(stderr, "loopbench: starting %s\n", m.name)
		if loops[i], err = m.start(ctx, opts{root: root}, log); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	// Round robin: every configuration takes its i-th sample before any
	// takes its next, so a noisy minute on the machine hits all of them.
	samples := make([][]time.Duration, len(selected))
	for e := 1; e <= *n; e++ {
		for i, m := range selected {
			// Let watchers settle, as between a developer's saves.
			time.Sleep(300 * time.Millisecond)
			d, err := loops[i].edit(ctx, editQuote(e))
			if err != nil {
				return fmt.Errorf("%s, edit %d: %w", m.name, e, err)
			}
			fmt.Fprintf(stderr, "loopbench: %s edit %d: %s\n", m.name, e, d.Round(time.Millisecond))
			samples[i] = append(samples[i], d)
		}
	}
	for i, m := range selected {
		s, err := devloop.Summarize(samples[i])
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		res.Configs = append(res.Configs, config{Name: m.name, About: m.about, Summary: s})
	}
	res.ratios()
	printTable(stdout, res)
	return res.write(*out)
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
	air *devloop.Air
	url string
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
	a := &airLoop{air: air, url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
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

func (a *airLoop) stop() {
	a.air.Stop(15 * time.Second)
	os.RemoveAll(a.air.Dir)
}

type config struct {
	Name    string          `json:"name"`
	About   string          `json:"about"`
	Summary devloop.Summary `json:"summary"`
	// MedianVsFloor is this configuration's median over the floor's.
	MedianVsFloor float64 `json:"median_vs_floor,omitempty"`
}

type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemGiB int    `json:"mem_gib"`
	OS     string `json:"os"`
	Go     string `json:"go"`
}

type results struct {
	Date    string   `json:"date"`
	Machine machine  `json:"machine"`
	Edits   int      `json:"edits_per_config"`
	Configs []config `json:"configs"`
}

func (r *results) ratios() {
	var floor float64
	for _, c := range r.Configs {
		if c.Name == "floor" {
			floor = c.Summary.MedMS
		}
	}
	if floor == 0 {
		return
	}
	for i := range r.Configs {
		r.Configs[i].MedianVsFloor = round2(r.Configs[i].Summary.MedMS / floor)
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
	fmt.Fprintf(w, "Machine: %s, %d cores, %d GiB, %s, %s\n\n", r.Machine.CPU, r.Machine.Cores, r.Machine.MemGiB, r.Machine.OS, r.Machine.Go)
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

func describeMachine() machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	return m
}
