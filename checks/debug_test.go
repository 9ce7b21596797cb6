package checks

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/ornlu-is/askeladden/hack/devloop"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// A child process that holds a port, for the port-taken check: the
// Tiltfile's check ignores its own ancestors (Tilt holds its forwards), and
// this test process is one of them.
func init() {
	if p := os.Getenv("ASKELADDEN_HOLD_PORT"); p != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening")
		time.Sleep(time.Minute)
		ln.Close()
		os.Exit(0)
	}
}

func TestTiltfileDebug(t *testing.T) {
	// The default local port is 2345; another session's Tilt on this
	// machine may hold it, which the port check then reports.
	code, res, stderr := tiltfileResult(t, "Tiltfile", "--debug")
	switch {
	case code == 5 && strings.Contains(stderr, "local port 2345 is already taken"):
	case code == 0:
		if f := forwardNamed(res, "dlv"); f == nil || f.LocalPort != 2345 || f.ContainerPort != 2345 {
			t.Errorf("--debug forwards %+v, want localhost:2345 -> 2345 named dlv", f)
		}
	default:
		t.Fatalf("--debug: exit %d:\n%s", code, stderr)
	}

	// The rest on a free port, so that no other Tilt can be in the way.
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, strategy := range []string{"source", "binary"} {
		t.Run(strategy, func(t *testing.T) {
			code, res, stderr := tiltfileResult(t, "Tiltfile", "--debug", "--strategy="+strategy, "--debug-port="+strconv.Itoa(port))
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			for _, m := range res.Manifests {
				switch m.Name {
				case "askeladden":
					it := m.ImageTargets[0]
					if it.BuildDetails.Target != strategy+"-debug" {
						t.Errorf("--debug builds target %q, want %s-debug", it.BuildDetails.Target, strategy)
					}
					if len(it.LiveUpdateSpec.Syncs) != 1 {
						t.Errorf("--debug must keep the live update, syncs = %+v", it.LiveUpdateSpec.Syncs)
					}
					if f := forwardNamed(res, "dlv"); f == nil || f.LocalPort != port || f.ContainerPort != 2345 {
						t.Errorf("dlv forward = %+v, want %d -> 2345", f, port)
					}
					d := devDeployment(t, m.DeployTarget.YAML)
					c := d.Spec.Template.Spec.Containers[0]
					lp := c.LivenessProbe
					if lp == nil || lp.PeriodSeconds*lp.FailureThreshold < 30*60 {
						t.Errorf("liveness %+v: a request held at a breakpoint for half an hour must not get the container killed", lp)
					}
					sc := c.SecurityContext
					if sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 || !slices.Equal(sc.Capabilities.Drop, nil) && !slices.Contains(sc.Capabilities.Drop, "ALL") {
						t.Errorf("debug mode changed the capabilities: %+v; Delve's PTRACE_TRACEME needs none", sc.Capabilities)
					}
					if len(c.Ports) != 1 {
						t.Errorf("container ports %+v: the debugger is reached by port-forward only, not a declared port", c.Ports)
					}
				case "compile":
					cmd := strings.Join(m.DeployTarget.UpdateCmdSpec.Args, " ")
					if !strings.Contains(cmd, `-gcflags="all=-N -l"`) || strings.Contains(cmd, "-s -w") {
						t.Errorf("debug compile %q: want -gcflags=all=-N -l and no -s -w (Delve needs the DWARF)", cmd)
					}
				}
			}
		})
	}

	// Without --debug nothing of it shows: no forward, production's liveness.
	_, res, _ = tiltfileResult(t, "Tiltfile", "--strategy=binary")
	for _, m := range res.Manifests {
		switch m.Name {
		case "askeladden":
			for _, f := range m.DeployTarget.PortForwardTemplateSpec.Forwards {
				if f.Name == "dlv" || f.ContainerPort == 2345 {
					t.Errorf("the default loop forwards the debugger port: %+v", f)
				}
			}
			lp := devDeployment(t, m.DeployTarget.YAML).Spec.Template.Spec.Containers[0].LivenessProbe
			if lp == nil || lp.PeriodSeconds != 10 || lp.FailureThreshold != 3 {
				t.Errorf("the default loop's liveness %+v, want production's (10 s x 3)", lp)
			}
		case "compile":
			if cmd := strings.Join(m.DeployTarget.UpdateCmdSpec.Args, " "); !strings.Contains(cmd, `-ldflags="-s -w"`) || strings.Contains(cmd, "-N -l") {
				t.Errorf("the default compile %q lost its fast link", cmd)
			}
		}
	}

	code, res, stderr = tiltfileResult(t, "Tiltfile", "--debug", "--no-live-update", "--debug-port="+strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("--debug --no-live-update: exit %d:\n%s", code, stderr)
	}
	for _, m := range res.Manifests {
		if m.Name == "askeladden" && len(m.ImageTargets[0].LiveUpdateSpec.Syncs) != 0 {
			t.Error("--debug --no-live-update still syncs files")
		}
	}
	if code, _, stderr := tiltfileResult(t, "Tiltfile", "--debug", "--strategy=carrier-pigeon", "--debug-port="+strconv.Itoa(port)); code != 5 || !strings.Contains(stderr, "--strategy must be") {
		t.Errorf("--debug with a bad --strategy: exit %d, want 5 with its message:\n%s", code, stderr)
	}
	for _, args := range [][]string{{"--debug", "--debug-port=http"}, {"--debug-port=2346"}} {
		if code, _, stderr := tiltfileResult(t, "Tiltfile", args...); code != 5 || !strings.Contains(stderr, "--debug-port must be") {
			t.Errorf("%v: exit %d, want 5 with a message:\n%s", args, code, stderr)
		}
	}
}

func TestTiltfileDebugPortTaken(t *testing.T) {
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// A free port passes, and is the one forwarded.
	code, res, stderr := tiltfileResult(t, "Tiltfile", "--debug", "--debug-port="+strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("a free --debug-port: exit %d:\n%s", code, stderr)
	}
	if f := forwardNamed(res, "dlv"); f == nil || f.LocalPort != port || f.ContainerPort != 2345 {
		t.Errorf("--debug-port=%d is not forwarded to the pod's 2345", port)
	}

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), "ASKELADDEN_HOLD_PORT="+strconv.Itoa(port))
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	buf := make([]byte, 16)
	if n, _ := out.Read(buf); !strings.Contains(string(buf[:n]), "listening") {
		t.Fatalf("the port holder did not start: %q", buf[:n])
	}
	code, _, stderr = tiltfileResult(t, "Tiltfile", "--debug", "--debug-port="+strconv.Itoa(port))
	want := fmt.Sprintf("local port %d is already taken by", port)
	if code != 5 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "pid "+strconv.Itoa(holder.Process.Pid)) {
		t.Errorf("a taken debugger port: exit %d, want 5 and %q naming pid %d:\n%s", code, want, holder.Process.Pid, stderr)
	}
}

type forward struct {
	LocalPort, ContainerPort int
}

// forwardNamed is askeladden's port-forward called name, or nil.
func forwardNamed(r tiltResult, name string) *forward {
	for _, m := range r.Manifests {
		if m.Name != "askeladden" || m.DeployTarget.PortForwardTemplateSpec == nil {
			continue
		}
		for _, f := range m.DeployTarget.PortForwardTemplateSpec.Forwards {
			if f.Name == name {
				return &forward{f.LocalPort, f.ContainerPort}
			}
		}
	}
	return nil
}

// devDeployment decodes the Deployment in the YAML Tilt will apply.
func devDeployment(t *testing.T, stream string) appsv1.Deployment {
	t.Helper()
	for _, doc := range docSeparator.Split(stream, -1) {
		if strings.Contains(doc, "kind: Deployment") {
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("no Deployment")
	return appsv1.Deployment{}
}

func TestDebugDockerfile(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile.dev")
	stages := map[string]string{}
	entry := map[string][]string{}
	for _, s := range d.stages {
		var text []string
		for _, c := range s.Commands {
			text = append(text, fmt.Sprint(c))
		}
		stages[s.Name] = strings.Join(text, "\n")
		for _, c := range s.Commands {
			if e, ok := c.(*instructions.EntrypointCommand); ok {
				entry[s.Name] = e.CmdLine
			}
		}
	}
	if !strings.Contains(stages["tools"], "github.com/go-delve/delve/cmd/dlv") {
		t.Error("the tools stage does not build Delve (the version go.mod pins)")
	}
	if s := stages["source-debug"]; !strings.Contains(s, `-gcflags="all=-N -l"`) || strings.Contains(s, "-s -w") {
		t.Errorf("source-debug's warm-up build must use the debug flags, or the pod's first build recompiles everything:\n%s", s)
	}
	if s := stages["source"]; strings.Contains(s, "-N -l") || !strings.Contains(s, "-s -w") {
		t.Error("the default source target lost its fast link or gained debug flags")
	}
	for _, name := range []string{"source-debug", "binary-debug"} {
		e := strings.Join(entry[name], " ")
		if !strings.Contains(e, "devrun -dlv /usr/local/bin/dlv") {
			t.Errorf("%s ENTRYPOINT %q: want devrun owning one Delve", name, e)
		}
		if strings.Contains(e, "-dlv-listen") {
			t.Errorf("%s overrides devrun's loopback-only debugger address: %q", name, e)
		}
	}
	src, err := os.ReadFile(filepath.Join(repoRoot, "devimage", "devrun", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `"dlv-listen", "127.0.0.1:2345"`) || !strings.Contains(string(src), `"dlv-backend", "127.0.0.1:2346"`) {
		t.Error("devrun's debugger addresses are not loopback by default: the pod network would reach Delve")
	}
	dockerignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerignore), "!.air.debug.toml") {
		t.Error(".dockerignore leaves out .air.debug.toml, which source-debug's air reads")
	}
}

// buildTools builds Delve (the version go.mod pins) and devrun into dir.
func buildTools(t *testing.T, dir string) (dlv, devrun string) {
	t.Helper()
	dlv, devrun = filepath.Join(dir, "dlv"), filepath.Join(dir, "devrun")
	for _, args := range [][]string{
		{"build", "-o", dlv, "github.com/go-delve/delve/cmd/dlv"},
		{"build", "-o", devrun, "./devimage/devrun"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	return dlv, devrun
}

func debugBuild(t *testing.T, src, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-gcflags=all=-N -l", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debug build: %v\n%s", err, b)
	}
}

// stopAt continues and waits for a stop at file:line.
var debugLog fmt.Stringer = &strings.Builder{}

func stopAt(t *testing.T, d *devloop.Delve, ch <-chan *api.DebuggerState, file string, line int) *api.DebuggerState {
	t.Helper()
	st, err := devloop.Wait(ch, 60*time.Second)
	if err != nil {
		t.Fatalf("waiting for the breakpoint at %s:%d: %v\n%s", file, line, err, debugLog)
	}
	if want := fmt.Sprintf("%s:%d", file, line); devloop.Where(st) != want {
		t.Fatalf("stopped at %s, want %s (the quote handler's first statement)", devloop.Where(st), want)
	}
	return st
}

func needDelve(t *testing.T) {
	t.Helper()
	skipShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("devrun waits on inotify, and these tests read /proc: Linux only")
	}
}

// TestDevrunDebugKeepsBreakpoints runs the cluster's debug loop on this
// machine: devrun owns one Delve, a new binary lands where the binary
// strategy syncs it, and an attached client keeps its connection and its
// breakpoint across the restart.
func TestDevrunDebugKeepsBreakpoints(t *testing.T) {
	needDelve(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := devloop.CopyProject(repoRoot, src); err != nil {
		t.Fatal(err)
	}
	dlv, devrun := buildTools(t, dir)
	bin := filepath.Join(dir, "sync", "askeladden")
	debugBuild(t, src, bin)
	line, err := devloop.QuoteHandlerLine(src)
	if err != nil {
		t.Fatal(err)
	}
	handlers := filepath.Join(src, "handlers.go")

	var ports [3]int
	for i := range ports {
		if ports[i], err = devloop.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	log := &devloop.Buffer{}
	debugLog = log
	cmd := exec.Command(devrun, "-dlv", dlv, "-watch", bin, "-initial", "", "-run-dir", filepath.Join(dir, "run"),
		"-dlv-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]), "-dlv-backend", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--", "-dev")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(ports[0]))
	cmd.Stdout, cmd.Stderr = log, log
	proc, err := devloop.Start("devrun -dlv", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop(15 * time.Second) })
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := devloop.WaitForBody(ctx, base+"/", quote, 50*time.Millisecond); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}

	d, err := devloop.DialDelve(ctx, fmt.Sprintf("127.0.0.1:%d", ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	bp, err := d.CreateBreakpoint(&api.Breakpoint{File: handlers, Line: line})
	if err != nil {
		t.Fatal(err)
	}
	ch := d.Continue()
	resp := devloop.GetLater(base+"/", time.Minute)
	before := stopAt(t, d, ch, handlers, line)
	ch = d.Continue()
	devloop.ExpectBody(t, resp, "200 "+quote+"\n", time.Minute)

	const edited = "Help! Help! I'm being repressed!"
	if err := devloop.SetQuote(src, edited); err != nil {
		t.Fatal(err)
	}
	saved := time.Now()
	debugBuild(t, src, bin)
	// The restart halts the target: the client's pending continue answers,
	// and the new process waits at its entry for this client's continue.
	if _, err := devloop.Wait(ch, 60*time.Second); err != nil && !strings.Contains(err.Error(), "exited") {
		t.Fatalf("the client's continue across the restart: %v\n%s", err, log)
	}
	ch = d.Continue()
	resp = devloop.GetLater(base+"/", time.Minute)
	after := stopAt(t, d, ch, handlers, line)
	t.Logf("build to breakpoint hit in the new process: %s", time.Since(saved).Round(time.Millisecond))
	if after.Pid == before.Pid {
		t.Errorf("stopped in the old process (pid %d): the target was not restarted", after.Pid)
	}
	ch = d.Continue()
	devloop.ExpectBody(t, resp, "200 "+edited+"\n", time.Minute)
	// Delve answers most requests only while the target is stopped.
	if _, err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	<-ch
	if bps, err := d.UserBreakpoints(); err != nil || len(bps) != 1 || bps[0].ID != bp.ID {
		t.Errorf("breakpoints after the restart = %v (%v), want the one set before it", bps, err)
	}

	// A client that leaves with its breakpoint set must not leave the
	// server frozen for the next request.
	d.Continue()
	time.Sleep(200 * time.Millisecond)
	if err := d.Disconnect(false); err != nil {
		t.Fatal(err)
	}
	devloop.ExpectBody(t, devloop.GetLater(base+"/", time.Minute), "200 "+edited+"\n", time.Minute)
	d2, err := devloop.DialDelve(ctx, fmt.Sprintf("127.0.0.1:%d", ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Halt(); err != nil {
		t.Fatal(err)
	}
	if bps, err := d2.UserBreakpoints(); err != nil || len(bps) != 0 {
		t.Errorf("breakpoints left after the last client went: %v (%v)", bps, err)
	}
	if err := d2.Disconnect(true); err != nil {
		t.Fatal(err)
	}

	// With no client attached a new binary serves by itself.
	const again = "Now go away or I shall taunt you a second time."
	if err := devloop.SetQuote(src, again); err != nil {
		t.Fatal(err)
	}
	debugBuild(t, src, bin)
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if _, err := devloop.WaitForBody(ctx2, base+"/", again, 20*time.Millisecond); err != nil {
		t.Fatalf("with no client attached: %v\n%s", err, log)
	}

	run := filepath.Join(dir, "run", "app")
	pids, _ := devloop.PIDsRunning(run)
	if err := proc.Stop(15 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	requireGone(t, pids, base, "devrun")
}

// TestAirDebugLoop is the laptop's debug loop: `go tool air -c
// .air.debug.toml` runs the server under Delve, a breakpoint is hit, and a
// save rebuilds and restarts both.
func TestAirDebugLoop(t *testing.T) {
	needDelve(t)
	dir := t.TempDir()
	if err := devloop.CopyProject(repoRoot, dir); err != nil {
		t.Fatal(err)
	}
	dlvPort, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, ".air.debug.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "--listen=127.0.0.1:2345") {
		t.Fatal(".air.debug.toml does not run Delve on 127.0.0.1:2345")
	}
	// Port 2345 may be Tilt's forward on this machine: the test's own.
	cfg = []byte(strings.Replace(string(cfg), "--listen=127.0.0.1:2345", fmt.Sprintf("--listen=127.0.0.1:%d", dlvPort), 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	log := &devloop.Buffer{}
	air, err := devloop.StartAirConfig(dir, ".air.debug.toml", port, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = air.Stop(15 * time.Second) })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The first debug build compiles every package with -N -l, and `go
	// tool dlv` builds Delve once: allow for both.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := devloop.WaitForBody(ctx, base+"/", quote, 50*time.Millisecond); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	line, err := devloop.QuoteHandlerLine(dir)
	if err != nil {
		t.Fatal(err)
	}
	handlers := filepath.Join(dir, "handlers.go")
	addr := fmt.Sprintf("127.0.0.1:%d", dlvPort)

	hit := func(want string) {
		t.Helper()
		d, err := devloop.DialDelve(ctx, addr)
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		defer func() { _ = d.Disconnect(false) }()
		if _, err := d.Halt(); err != nil {
			t.Fatal(err)
		}
		bp, err := d.CreateBreakpoint(&api.Breakpoint{File: handlers, Line: line})
		if err != nil {
			t.Fatal(err)
		}
		ch := d.Continue()
		resp := devloop.GetLater(base+"/", time.Minute)
		stopAt(t, d, ch, handlers, line)
		if _, err := d.ClearBreakpoint(bp.ID); err != nil {
			t.Fatal(err)
		}
		d.Continue()
		devloop.ExpectBody(t, resp, "200 "+want+"\n", time.Minute)
	}
	hit(quote)
	pids, err := devloop.PIDsRunning(air.Binary())
	if err != nil || len(pids) != 1 {
		t.Fatalf("want one server under Delve, got %v (%v)", pids, err)
	}

	const edited = "We are the knights who say Ni!"
	if err := devloop.SetQuote(dir, edited); err != nil {
		t.Fatal(err)
	}
	if _, err := devloop.WaitForBody(ctx, base+"/", edited, 20*time.Millisecond); err != nil {
		t.Fatalf("a save did not rebuild: %v\n%s", err, log)
	}
	if devloop.Alive(pids[0]) {
		t.Errorf("the old server (pid %d) still runs after the rebuild", pids[0])
	}
	// A new Delve came with the new server: the client connects again and
	// its breakpoint stops the new code.
	hit(edited)

	now, _ := devloop.PIDsRunning(air.Binary())
	if err := air.Stop(15 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, pid := range now {
		if devloop.Alive(pid) {
			t.Errorf("server pid %d outlived air", pid)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("Delve still listens after air stopped")
	}
}
