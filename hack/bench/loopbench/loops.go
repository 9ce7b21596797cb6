package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

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

// waitFor returns the time of the first response at url carrying q.
func waitFor(ctx context.Context, url, q string) (time.Time, error) {
	ectx, cancel := context.WithTimeout(ctx, perEditTimeout)
	defer cancel()
	return devloop.WaitForBody(ectx, url, q, 2*time.Millisecond)
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

func (f *floorLoop) edit(ctx context.Context, q string) (sample, error) {
	port, err := devloop.FreePort()
	if err != nil {
		return sample{}, err
	}
	if err := devloop.SetQuote(f.dir, q); err != nil {
		return sample{}, err
	}
	s := sample{start: time.Now()}
	if err := f.build(ctx); err != nil {
		return s, fmt.Errorf("build: %w", err)
	}
	srv := exec.Command(f.bin)
	srv.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	srv.Stdout, srv.Stderr = f.log, f.log
	if err := srv.Start(); err != nil {
		return s, err
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	s.end, err = waitFor(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), q)
	return s, err
}

func (f *floorLoop) settle(ctx context.Context, gap string) error { return waitGap(ctx, gap) }

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
	if _, err := waitFor(ctx, a.url, "Strange women"); err != nil {
		a.stop()
		return nil, fmt.Errorf("air never served: %w", err)
	}
	return a, nil
}

func (a *airLoop) edit(ctx context.Context, q string) (sample, error) {
	s := sample{start: time.Now()}
	if err := devloop.SetQuote(a.air.Dir, q); err != nil {
		return s, err
	}
	var err error
	s.end, err = waitFor(ctx, a.url, q)
	return s, err
}

func (a *airLoop) settle(ctx context.Context, gap string) error { return waitGap(ctx, gap) }

func (a *airLoop) stop() {
	_ = a.air.Stop(15 * time.Second)
	os.RemoveAll(a.air.Dir)
}

// tiltLoop runs `tilt up` in a scratch copy of the whole project and times
// edits through its port-forward, as a developer's browser sees them.
type tiltLoop struct {
	dir   string
	port  int // Tilt's web and API port
	tilt  *devloop.Process
	lines *lineLog
	log   io.Writer
	url   string // where edits are watched for
	// poll: poll url every 2 ms; otherwise hold the dev event stream, as
	// the dev page does (no load on the pod while it builds). The naive
	// loop polls: its stream would stay on the old pod through its
	// preStop sleep while the new pod already serves.
	poll bool
}

const (
	tiltForward  = "http://localhost:8090/"
	tiltNodePort = "http://localhost:30008/"
	devNamespace = "askeladden-dev"
	appSelector  = "app.kubernetes.io/name=askeladden"
)

func tiltMode(args ...string) func(context.Context, opts, io.Writer) (loop, error) {
	return tiltModeWith(nil, args...)
}

// tiltModeWith is tiltMode on a scratch copy that patch changes first.
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
				os.RemoveAll(dir)
				return nil, err
			}
		}
		port, err := devloop.FreePort()
		if err != nil {
			return nil, err
		}
		lines := newLineLog(log)
		tilt, err := devloop.StartTilt(dir, port, lines, args...)
		if err != nil {
			return nil, err
		}
		l := &tiltLoop{dir: dir, port: port, tilt: tilt, lines: lines, log: log, url: tiltForward, poll: true}
		if o.probe == "nodeport" {
			l.url, l.poll = tiltNodePort, slices.Contains(args, "--no-live-update")
		}
		// The first deploy builds the image: allow for a cold cache.
		wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		if _, err := devloop.WaitForBody(wctx, tiltForward, "Strange women", 100*time.Millisecond); err != nil {
			l.stop()
			return nil, fmt.Errorf("tilt up never served through the port-forward: %w", err)
		}
		// kube-proxy may program the NodePort a moment after the pod is up.
		if _, err := devloop.WaitForBody(wctx, l.url, "Strange women", 100*time.Millisecond); err != nil {
			l.stop()
			return nil, fmt.Errorf("tilt up never served at %s: %w", l.url, err)
		}
		return l, nil
	}
}

func (l *tiltLoop) edit(ctx context.Context, q string) (sample, error) {
	var old string
	if !l.poll {
		var err error
		if old, err = devloop.BuildID(ctx, l.url); err != nil {
			return sample{}, err
		}
	}
	s := sample{start: time.Now()}
	if err := devloop.SetQuote(l.dir, q); err != nil {
		return s, err
	}
	var err error
	if l.poll {
		s.end, err = waitFor(ctx, l.url, q)
	} else {
		ectx, cancel := context.WithTimeout(ctx, perEditTimeout)
		s.end, err = devloop.WaitForNewBuild(ectx, l.url, old, q, 2*time.Millisecond)
		cancel()
	}
	if err != nil {
		return s, err
	}
	if st, err := os.Stat(filepath.Join(l.dir, "build", "askeladden")); err == nil {
		s.binMTime = st.ModTime()
	}
	return s, nil
}

func (l *tiltLoop) settle(ctx context.Context, gap string) error {
	if gap != gapSettled {
		return waitGap(ctx, gap)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		busy, err := l.busy(sctx)
		if err != nil {
			return err
		}
		if len(busy) == 0 {
			return waitGap(ctx, gap)
		}
		select {
		case <-sctx.Done():
			return fmt.Errorf("tilt still busy (%s): %w", strings.Join(busy, ", "), sctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// busy lists the Tilt resources that are updating or waiting to, from
// Tilt's API (`tilt get uiresources`).
func (l *tiltLoop) busy(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "tilt", "get", "uiresources", "-o", "json", "--host", "127.0.0.1", "--port", strconv.Itoa(l.port))
	cmd.Dir = l.dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tilt get uiresources: %w", err)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct{ UpdateStatus string }
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("tilt get uiresources: %w", err)
	}
	var busy []string
	for _, it := range list.Items {
		if it.Status.UpdateStatus == "pending" || it.Status.UpdateStatus == "in_progress" {
			busy = append(busy, it.Metadata.Name+" "+it.Status.UpdateStatus)
		}
	}
	return busy, nil
}

// podLog is the app pod's log with the runtime's timestamps.
func podLog(ctx context.Context) ([]line, error) {
	cmd := exec.CommandContext(ctx, "kubectl", "logs", "-n", devNamespace, "-l", appSelector, "--timestamps", "--tail=-1")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl logs: %w", err)
	}
	return parsePodLog(bytes.NewReader(out))
}

func (l *tiltLoop) profile(ctx context.Context, s []sample) ([]phases, error) {
	pod, err := podLog(ctx)
	if err != nil {
		return nil, err
	}
	tilt := l.lines.snapshot()
	out := make([]phases, len(s))
	for i, smp := range s {
		out[i] = samplePhases(smp.start, smp.end, tilt, pod, smp.binMTime)
	}
	return out, nil
}

func (l *tiltLoop) stop() {
	down := exec.Command("tilt", "down")
	down.Dir, down.Stdout, down.Stderr = l.dir, l.log, l.log
	_ = down.Run()
	// The next configuration's port-forward must not find this one's pod,
	// still serving through its preStop sleep.
	wait := exec.Command("kubectl", "wait", "--for=delete", "pod", "-n", devNamespace, "-l", appSelector, "--timeout=90s")
	wait.Stdout, wait.Stderr = l.log, l.log
	_ = wait.Run()
	_ = l.tilt.Stop(30 * time.Second)
	os.RemoveAll(l.dir)
}
