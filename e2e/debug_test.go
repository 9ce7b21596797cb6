//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

const dlvAddr = "127.0.0.1:2345"

// TestDebugLoop drives `tilt up -- --debug` with Delve's own client
// through Tilt's port-forward, in both strategies: a breakpoint set before
// a live update stops a request after it, in a pod that was neither
// replaced nor restarted.
func TestDebugLoop(t *testing.T) {
	requireEnv(t)
	for _, strategy := range []string{"source", "binary"} {
		if !t.Run(strategy, func(t *testing.T) { testDebugLoop(t, strategy) }) {
			return
		}
	}
}

func testDebugLoop(t *testing.T, strategy string) {
	dir := scratchCopy(t)
	tu := startTiltUp(t, dir, "--debug", "--no-tests", "--strategy="+strategy)
	t.Cleanup(func() {
		_ = tu.Stop(30 * time.Second)
		if out, err := runErr(5*time.Minute, dir, nil, "tilt", "down"); err != nil {
			t.Errorf("tilt down: %v\n%s", err, tail(out, 20))
		}
	})
	// The debug image's warm-up build compiles everything with -N -l.
	waitBody(t, forward, quote, 10*time.Minute)
	before := onePod(t, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devloop.DialDelve(ctx, dlvAddr)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(tu.out.String(), 40))
	}
	line, err := devloop.QuoteHandlerLine(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The source strategy builds in the pod's /src: that is the path in
	// the binary's DWARF (an editor maps it with substitutePath). The
	// binary strategy builds here, from the checkout's own path.
	file, appPath := "/src/handlers.go", "/home/nonroot/run/app"
	if strategy == "binary" {
		file, appPath = filepath.Join(dir, "handlers.go"), "/app/run/app"
	}

	// 1. Halt, break on the quote handler, continue, and GET /.
	if _, err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	bp, err := d.CreateBreakpoint(&api.Breakpoint{File: file, Line: line})
	if err != nil {
		t.Fatalf("breakpoint at %s:%d: %v", file, line, err)
	}
	if bp.File != file || bp.Line != line {
		t.Errorf("breakpoint set at %s:%d, want %s:%d", bp.File, bp.Line, file, line)
	}
	ch := d.Continue()
	resp := devloop.GetLater(forward, 2*time.Minute)
	first := stopAt(t, ch, file, line)

	// 2. Continue: the request completes with the quote.
	ch = d.Continue()
	devloop.ExpectBody(t, resp, "200 "+quote+"\n", 2*time.Minute)

	// 3. Edit the quote: a live update.
	edited := "Your mother was a hamster and your father smelt of elderberries! (" + strategy + ")"
	setQuote(t, dir, edited)
	wrote := time.Now()
	// devrun halts the target to restart it on the new binary, which
	// answers this client's pending continue; the new process then waits
	// at its entry for the attached client to continue it.
	if st, err := devloop.Wait(ch, 3*time.Minute); err != nil && !strings.Contains(err.Error(), "exited") {
		t.Fatalf("the client's continue across the live update: %v (%+v)\n%s", err, st, tail(tu.out.String(), 40))
	}
	t.Logf("live update reached the attached client (its continue returned) %s after the edit", time.Since(wrote).Round(time.Millisecond))

	// 4. The breakpoint set before the edit stops a new request, which
	// then returns the new quote.
	ch = d.Continue()
	resp = devloop.GetLater(forward, 2*time.Minute)
	second := stopAt(t, ch, file, line)
	hit := time.Since(wrote)
	if second.Pid == first.Pid {
		t.Errorf("stopped in the same process (pid %d): the target was not relaunched on the new binary", second.Pid)
	}
	ch = d.Continue()
	devloop.ExpectBody(t, resp, "200 "+edited+"\n", 2*time.Minute)
	t.Logf("edit to the old breakpoint firing in the new code: %s", hit.Round(time.Millisecond))
	fmt.Printf("e2e: debug live update (%s), edit to breakpoint hit %s\n", strategy, hit.Round(time.Millisecond))
	after := onePod(t, time.Minute)
	if after.UID != before.UID {
		t.Errorf("pod replaced (%s -> %s): not a live update", before.Name, after.Name)
	}
	if after.Restarts != before.Restarts {
		t.Errorf("container restarted (%d -> %d)", before.Restarts, after.Restarts)
	}

	// 5. Clear the breakpoint and disconnect: none is left.
	if _, err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	<-ch
	if _, err := d.ClearBreakpoint(bp.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Disconnect(true); err != nil {
		t.Fatal(err)
	}
	d2, err := devloop.DialDelve(ctx, dlvAddr)
	if err != nil {
		t.Fatal(err)
	}
	// Delve answers most requests only while the target is stopped.
	if _, err := d2.Halt(); err != nil {
		t.Fatal(err)
	}
	if bps, err := d2.UserBreakpoints(); err != nil || len(bps) != 0 {
		t.Errorf("breakpoints left after clearing and disconnecting: %+v (%v)", bps, err)
	}
	// A client that leaves with a breakpoint set, as a crashed editor
	// would, must not leave the server frozen on the next request.
	if _, err := d2.CreateBreakpoint(&api.Breakpoint{File: file, Line: line}); err != nil {
		t.Fatal(err)
	}
	d2.Continue()
	time.Sleep(200 * time.Millisecond)
	if err := d2.Disconnect(false); err != nil {
		t.Fatal(err)
	}
	devloop.ExpectBody(t, devloop.GetLater(forward, 2*time.Minute), "200 "+edited+"\n", 2*time.Minute)

	// 6. Admitted under restricted, every capability dropped, none added;
	// Delve traces the server (PTRACE_TRACEME) under the runtime's default
	// seccomp profile without CAP_SYS_PTRACE.
	ns := run(t, time.Minute, "", nil, "kubectl", "get", "namespace", namespace, "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}")
	if ns != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", namespace, ns)
	}
	var pod struct {
		Spec struct {
			SecurityContext struct{ SeccompProfile struct{ Type string } }
			Containers      []struct {
				SecurityContext struct {
					Capabilities struct{ Add, Drop []string }
				}
				LivenessProbe struct{ PeriodSeconds, FailureThreshold int }
			}
		}
		Status struct{ PodIP string }
	}
	if err := json.Unmarshal([]byte(run(t, time.Minute, "", nil, "kubectl", "get", "pod", "-n", namespace, after.Name, "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if len(c.SecurityContext.Capabilities.Add) != 0 || strings.Join(c.SecurityContext.Capabilities.Drop, ",") != "ALL" {
		t.Errorf("capabilities %+v, want drop ALL and nothing added", c.SecurityContext.Capabilities)
	}
	if pod.Spec.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod seccomp profile %q, want RuntimeDefault", pod.Spec.SecurityContext.SeccompProfile.Type)
	}
	if lp := c.LivenessProbe; lp.PeriodSeconds*lp.FailureThreshold < 30*60 {
		t.Errorf("debug liveness %+v: a paused request would get the container killed", lp)
	}
	status := run(t, time.Minute, "", nil, "kubectl", "exec", "-n", namespace, after.Name, "--", "sh", "-c",
		`for d in /proc/[0-9]*; do [ "$(readlink $d/exe)" = `+appPath+` ] && grep -E '^(Seccomp|CapEff|TracerPid):' $d/status; done; true`)
	fields := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if fields["Seccomp"] != "2" || fields["CapEff"] != "0000000000000000" || fields["TracerPid"] == "0" || fields["TracerPid"] == "" {
		t.Errorf("the server process: %v; want Seccomp 2 (filtered), no effective capability, and a tracer (Delve)", fields)
	}
	t.Logf("server under Delve in the pod: %v", fields)

	// Delve listens on the pod's loopback: from the pod network (here, the
	// node) its port is closed while the app's is open.
	if pod.Status.PodIP == "" {
		t.Fatal("pod has no IP")
	}
	app := net.JoinHostPort(pod.Status.PodIP, "8090")
	if c, err := net.DialTimeout("tcp", app, 3*time.Second); err != nil {
		t.Errorf("the app's port %s is not reachable from the node: %v", app, err)
	} else {
		c.Close()
	}
	for _, port := range []int{2345, 2346} {
		addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port))
		if c, err := net.DialTimeout("tcp", addr, 3*time.Second); err == nil {
			c.Close()
			t.Errorf("the debugger answers on %s: it must be reachable through the port-forward only", addr)
		}
	}
}

func stopAt(t *testing.T, ch <-chan *api.DebuggerState, file string, line int) *api.DebuggerState {
	t.Helper()
	st, err := devloop.Wait(ch, 2*time.Minute)
	if err != nil {
		t.Fatalf("waiting for the breakpoint at %s:%d: %v", file, line, err)
	}
	if got, want := devloop.Where(st), fmt.Sprintf("%s:%d", file, line); got != want {
		t.Fatalf("stopped at %s, want %s (the quote handler's first statement)", got, want)
	}
	return st
}
