package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

// syncOnlyFile is synced into the pod by the source strategy (it is in the
// image's build context) but builds nothing there: .air.toml excludes
// devimage/, and the source strategy does not fall back to an image build
// for it. Editing it times Tilt's part of a save alone.
const syncOnlyFile = "devimage/devrun/main.go"

// measureExtras runs, in the source strategy's session, the sync-only
// round trip and the same edit built in the pod and on the host.
func (l *tiltLoop) measureExtras(ctx context.Context, n int, stderr io.Writer) ([]config, error) {
	syncs, err := l.measureSyncOnly(ctx, n, stderr)
	if err != nil {
		return nil, fmt.Errorf("sync-only round trip: %w", err)
	}
	host, pod, err := l.measureBuilds(ctx, n, stderr)
	if err != nil {
		return nil, fmt.Errorf("builds: %w", err)
	}
	var out []config
	for _, c := range []struct {
		name, about string
		s           []sample
	}{
		{"tilt-sync-only", "tilt-source's session: save a synced file that builds nothing (" + syncOnlyFile + ") until Tilt logs the container updated: its watch quiet period and the exec/tar sync", syncs},
		{"build-host", "go build of the edit on the host, with the pod's flags and environment (CGO_ENABLED=0, -buildvcs=false, -ldflags='-s -w'), timed inside the shell that runs it", host},
		{"build-pod", "the same edit and command in the tilt-source pod (kubectl exec), in a copy of /src beside it, with the pod's warm cache", pod},
	} {
		cfg, err := summarize(c.name, "", c.about, c.s, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, cfg)
	}
	return out, nil
}

func (l *tiltLoop) measureSyncOnly(ctx context.Context, n int, stderr io.Writer) ([]sample, error) {
	path := filepath.Join(l.dir, syncOnlyFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []sample
	for e := 1; e <= n; e++ {
		if err := l.settle(ctx, gapSettled); err != nil {
			return nil, err
		}
		body := append(append([]byte(nil), orig...), fmt.Sprintf("\n// loopbench sync-only edit %d, %d\n", e, time.Now().UnixNano())...)
		s := sample{start: time.Now()}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, perEditTimeout)
		ln, err := l.lines.waitFor(wctx, s.start, func(ln line) bool {
			return ln.Resource == "askeladden" && strings.HasPrefix(ln.Text, "→ Container ") && strings.HasSuffix(ln.Text, " updated!")
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("edit %d: Tilt never logged the container updated: %w", e, err)
		}
		s.end = ln.T
		fmt.Fprintf(stderr, "loopbench: tilt-sync-only edit %d: %s\n", e, s.d().Round(time.Millisecond))
		out = append(out, s)
	}
	// The premise: nothing in the pod rebuilt for these edits.
	pod, err := podLog(ctx)
	if err != nil {
		return nil, err
	}
	for _, ln := range pod {
		if ln.T.After(out[0].start) && strings.Contains(ln.Text, "building...") {
			return nil, fmt.Errorf("air rebuilt in the pod at %s after a sync-only edit: the sync-only file is watched", ln.T.Format(time.RFC3339Nano))
		}
	}
	return out, nil
}

// buildScript builds the edit read from stdin in directory $1 and prints
// the build's wall time in nanoseconds, timed by the shell on the side
// that builds, so neither kubectl's round trip nor a process start on the
// other side counts. The command is air's (.air.toml) in the pod.
const buildScript = `set -e
cd "$1"
cat >quote.go
s=$(date +%s%N)
GOWORK=off go build -ldflags='-s -w' -o ./tmp/askeladden .
e=$(date +%s%N)
echo $((e - s))`

// podBuildDir is beside /src, on the same filesystem, so air's watcher
// does not see the edits.
const podBuildDir = "/home/nonroot/loopbench-build"

func (l *tiltLoop) measureBuilds(ctx context.Context, n int, stderr io.Writer) (host, pod []sample, err error) {
	hostDir, err := os.MkdirTemp("", "loopbench-build")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(hostDir)
	if err := devloop.CopyProject(l.dir, hostDir); err != nil {
		return nil, nil, err
	}
	podName, err := appPod(ctx)
	if err != nil {
		return nil, nil, err
	}
	setup := exec.CommandContext(ctx, "kubectl", "exec", "-n", devNamespace, podName, "--", "sh", "-c",
		`set -e; rm -rf "$1"; mkdir -p "$1"; cp /src/go.mod /src/go.sum /src/*.go "$1"/`, "sh", podBuildDir)
	if out, err := setup.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("preparing %s in the pod: %w: %s", podBuildDir, err, out)
	}
	defer func() {
		_ = exec.Command("kubectl", "exec", "-n", devNamespace, podName, "--", "rm", "-rf", podBuildDir).Run()
	}()
	hostCmd := func() *exec.Cmd {
		c := exec.CommandContext(ctx, "sh", "-c", buildScript, "sh", hostDir)
		c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		return c
	}
	podCmd := func() *exec.Cmd {
		return exec.CommandContext(ctx, "kubectl", "exec", "-i", "-n", devNamespace, podName, "--", "sh", "-c", buildScript, "sh", podBuildDir)
	}
	// Edit 0 warms both: the copies are new paths to the build cache.
	for e := 0; e <= n; e++ {
		if err := devloop.SetQuote(hostDir, editQuote(e)); err != nil {
			return nil, nil, err
		}
		src, err := os.ReadFile(filepath.Join(hostDir, "quote.go"))
		if err != nil {
			return nil, nil, err
		}
		// Alternate which side goes first, so neither always builds
		// right after the other.
		sides := []struct {
			name string
			cmd  func() *exec.Cmd
			to   *[]sample
		}{{"host", hostCmd, &host}, {"pod", podCmd, &pod}}
		if e%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			if err := waitGap(ctx, gapSettled); err != nil {
				return nil, nil, err
			}
			d, err := timedBuild(side.cmd(), src)
			if err != nil {
				return nil, nil, fmt.Errorf("%s build: %w", side.name, err)
			}
			if e == 0 {
				continue
			}
			fmt.Fprintf(stderr, "loopbench: build-%s edit %d: %s\n", side.name, e, d.Round(time.Millisecond))
			t := time.Now()
			*side.to = append(*side.to, sample{start: t.Add(-d), end: t})
		}
	}
	return host, pod, nil
}

func timedBuild(cmd *exec.Cmd, src []byte) (time.Duration, error) {
	cmd.Stdin = bytes.NewReader(src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("build script printed %q, not a time", out)
	}
	return time.Duration(ns), nil
}

// appPod names the one running app pod that is not being deleted (a pod
// still in its grace period also shows as Running).
func appPod(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "kubectl", "get", "pods", "-n", devNamespace, "-l", appSelector,
		"--field-selector=status.phase=Running", "-o", `jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}`).Output()
	if err != nil {
		return "", fmt.Errorf("kubectl get pods: %w", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 1 {
			names = append(names, f[0])
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("want one running app pod, have %q", names)
	}
	return names[0], nil
}
