package main

// Debug mode: one Delve for the life of the pod. Each new binary replaces
// the file Delve launched, and Delve is asked over its JSON-RPC API to
// restart its target, which re-reads the binary and re-applies every
// breakpoint by file and line. An attached client keeps its connection and
// its breakpoints across an edit.
//
// Delve listens on a loopback port of its own; devrun listens on the
// public one (still loopback: only a port-forward reaches it) and relays
// every connection. Counting them is what makes two decisions safe:
//   - after a restart, the new process runs at once only when no client is
//     attached; with one attached, it waits at its entry for the client's
//     continue, so the client's view (paused) is the truth and its next
//     continue does not race ours past a breakpoint;
//   - when the last client leaves, its breakpoints are cleared and the
//     target resumed, so a client that vanished cannot leave the server
//     frozen on the next request.
//
// The protocol is the standard library's JSON-RPC, so devrun needs none
// of Delve's packages.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The subset of Delve's API (service/rpc2, API version 2) devrun calls.
type (
	dlvState struct {
		Pid     int
		Running bool
		Exited  bool `json:"exited"`
	}
	dlvStateIn  struct{ NonBlocking bool }
	dlvStateOut struct{ State *dlvState }
	dlvCommand  struct {
		Name string `json:"name"`
	}
	dlvCommandOut struct{ State dlvState }
	dlvRestartIn  struct{}
	dlvBreakpoint struct {
		ID   int    `json:"id"`
		File string `json:"file"`
		Line int    `json:"line"`
	}
	dlvRestartOut struct {
		DiscardedBreakpoints []struct {
			Breakpoint *dlvBreakpoint
			Reason     string
		}
	}
	dlvListIn   struct{ All bool }
	dlvListOut  struct{ Breakpoints []*dlvBreakpoint }
	dlvClearIn  struct{ Id int }
	dlvClearOut struct{ Breakpoint *dlvBreakpoint }
)

type debugger struct {
	dlv             string   // the dlv executable
	listen, backend string   // devrun's relay and Delve's own address
	bin             string   // the file Delve launches; replaced, never written
	args            []string // the app's arguments
	stdout, stderr  io.Writer

	cmd     *exec.Cmd
	exited  chan struct{}
	pid     int // the target's, once known
	clients atomic.Int32
	mu      sync.Mutex // one restart or release at a time
	// gate holds clients' requests back while a restart halts and
	// relaunches the target: a client answering the halt with a continue
	// would otherwise run the old process again before Delve relaunches it.
	gate sync.RWMutex
}

// start runs Delve on d.bin and waits until its API answers.
func (d *debugger) start() error {
	args := append([]string{"exec", "--headless", "--accept-multiclient", "--continue",
		"--api-version=2", "--listen=" + d.backend, d.bin, "--"}, d.args...)
	cmd := exec.Command(d.dlv, args...)
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	// Should devrun die without stopping it, Delve still stops, and takes
	// the server with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start delve: %w", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.backend, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("delve exited before it listened on %s: %v", d.backend, cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delve did not listen on %s within 30s", d.backend)
		}
	}
}

// targetPid finds the process Delve launched with --continue: its child
// running d.bin (Delve's other child is its telemetry helper).
func (d *debugger) targetPid() int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The parent PID is the second field after the parenthesised name.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(d.cmd.Process.Pid) {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if strings.TrimSuffix(exe, " (deleted)") == d.bin {
			return pid
		}
	}
	return 0
}

// install puts a new binary where Delve launches it from. A rename, so the
// running process keeps its own file and nothing writes to an executable
// in use.
func (d *debugger) install(src string) error {
	tmp := d.bin + ".new"
	if err := copyFile(src, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, d.bin)
}

func (d *debugger) dial() (*rpc.Client, error) {
	c, err := net.DialTimeout("tcp", d.backend, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("delve API: %w", err)
	}
	return jsonrpc.NewClient(c), nil
}

// halt stops the target if it runs. Delve serves one command at a time:
// anything that changes the target waits for a running continue to end.
func halt(c *rpc.Client) error {
	var st dlvStateOut
	if err := c.Call("RPCServer.State", dlvStateIn{NonBlocking: true}, &st); err != nil {
		return err
	}
	if st.State == nil || !st.State.Running {
		return nil
	}
	var out dlvCommandOut
	return c.Call("RPCServer.Command", dlvCommand{Name: "halt"}, &out)
}

// resume continues the target without waiting: the call answers only at
// the next stop. Closing the connection does not stop the target.
func resume(c *rpc.Client) {
	c.Go("RPCServer.Command", dlvCommand{Name: "continue"}, &dlvCommandOut{}, make(chan *rpc.Call, 1))
	time.AfterFunc(time.Second, func() { c.Close() })
}

// restart relaunches Delve's target on the binary now at d.bin.
func (d *debugger) restart() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate.Lock()
	defer d.gate.Unlock()
	c, err := d.dial()
	if err != nil {
		return err
	}
	if d.pid == 0 {
		d.pid = d.targetPid()
	}
	if d.clients.Load() == 0 && d.pid > 0 {
		// Nobody holds a session that the old process's exit would end,
		// so end it at once: Delve's halt takes a quarter of a second.
		_ = syscall.Kill(d.pid, syscall.SIGKILL)
	} else if err := halt(c); err != nil {
		c.Close()
		return fmt.Errorf("halt: %w", err)
	}
	var out dlvRestartOut
	if err := c.Call("RPCServer.Restart", dlvRestartIn{}, &out); err != nil {
		c.Close()
		return fmt.Errorf("restart: %w", err)
	}
	// The new process waits at its entry: its PID is in the state now.
	var st dlvStateOut
	if err := c.Call("RPCServer.State", dlvStateIn{NonBlocking: true}, &st); err == nil && st.State != nil {
		d.pid = st.State.Pid
	}
	for _, b := range out.DiscardedBreakpoints {
		if b.Breakpoint != nil {
			fmt.Fprintf(d.stderr, "devrun: breakpoint %d at %s:%d is gone: %s\n", b.Breakpoint.ID, b.Breakpoint.File, b.Breakpoint.Line, b.Reason)
		}
	}
	if n := d.clients.Load(); n > 0 {
		fmt.Fprintf(d.stderr, "devrun: new binary under delve; %d client(s) attached, so it waits at its entry for a continue\n", n)
		c.Close()
		return nil
	}
	resume(c)
	return nil
}

// release makes the target safe to leave alone once the last client has
// gone: no user breakpoint is left to stop a request, and it runs.
func (d *debugger) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clients.Load() > 0 {
		return // someone came back meanwhile
	}
	c, err := d.dial()
	if err != nil {
		fmt.Fprintf(d.stderr, "devrun: %v\n", err)
		return
	}
	if err := halt(c); err != nil {
		fmt.Fprintf(d.stderr, "devrun: halt after the last client left: %v\n", err)
		c.Close()
		return
	}
	var list dlvListOut
	if err := c.Call("RPCServer.ListBreakpoints", dlvListIn{}, &list); err == nil {
		n := 0
		for _, b := range list.Breakpoints {
			// Negative IDs are Delve's own (unrecovered panic, fatal throw).
			if b.ID > 0 && c.Call("RPCServer.ClearBreakpoint", dlvClearIn{Id: b.ID}, &dlvClearOut{}) == nil {
				n++
			}
		}
		if n > 0 {
			fmt.Fprintf(d.stderr, "devrun: last debugger client left; cleared its %d breakpoint(s) and resumed the server\n", n)
		}
	}
	resume(c)
}

// serve relays connections on d.listen to Delve, counting them.
func (d *debugger) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fmt.Fprintf(d.stderr, "devrun: accept: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go d.relay(conn)
	}
}

func (d *debugger) relay(conn net.Conn) {
	defer conn.Close()
	up, err := net.DialTimeout("tcp", d.backend, 5*time.Second)
	if err != nil {
		fmt.Fprintf(d.stderr, "devrun: delve is not listening: %v\n", err)
		return
	}
	defer up.Close()
	d.clients.Add(1)
	done := make(chan struct{}, 2)
	go func() { d.forward(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done // either side closing ends the session
	conn.Close()
	up.Close()
	<-done
	if d.clients.Add(-1) == 0 {
		d.release()
	}
}

// forward copies a client's requests to Delve, each through the gate.
func (d *debugger) forward(up io.Writer, conn io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			d.gate.RLock()
			_, werr := up.Write(buf[:n])
			d.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stop ends Delve, which kills its target. SIGINT is Delve's own way out
// of headless mode.
func (d *debugger) stop(grace time.Duration) {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// runDebug is run's loop in debug mode: Delve instead of a plain child,
// and a restart over its API instead of a new process per binary.
func (s *supervisor) runDebug(d *debugger, events <-chan struct{}, signals <-chan os.Signal, with *exec.Cmd) error {
	if err := os.MkdirAll(filepath.Dir(d.bin), 0o755); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("debugger port: %w", err)
	}
	defer ln.Close()
	go d.serve(ln)

	var withDone chan struct{}
	if with != nil {
		with.Stdout, with.Stderr = s.stdout, s.stderr
		if err := with.Start(); err != nil {
			return fmt.Errorf("start %s: %w", with.Path, err)
		}
		withDone = make(chan struct{})
		go func() { _ = with.Wait(); close(withDone) }()
		defer func() {
			_ = with.Process.Signal(syscall.SIGTERM)
			select {
			case <-withDone:
			case <-time.After(s.grace):
				_ = with.Process.Kill()
			}
		}()
	}

	// The first binary may not exist yet (air in the pod builds it).
	first := ""
	for _, p := range []string{s.watch, s.initial} {
		if _, err := os.Stat(p); err == nil && p != "" {
			first = p
			break
		}
	}
	started := false
	launch := func(src string) {
		if err := d.install(src); err != nil {
			fmt.Fprintf(s.stderr, "devrun: install %s: %v\n", src, err)
			return
		}
		if !started {
			if err := d.start(); err != nil {
				fmt.Fprintf(s.stderr, "devrun: %v\n", err)
				return
			}
			started = true
			fmt.Fprintf(s.stderr, "devrun: %s runs under delve; debugger on %s\n", src, d.listen)
			return
		}
		t0 := time.Now()
		if err := d.restart(); err != nil {
			fmt.Fprintf(s.stderr, "devrun: %v\n", err)
			return
		}
		fmt.Fprintf(s.stderr, "devrun: delve restarted its target on the new binary in %s\n", time.Since(t0).Round(time.Millisecond))
	}
	if first != "" {
		launch(first)
	}
	for {
		var dlvExited <-chan struct{}
		if started {
			dlvExited = d.exited
		}
		select {
		case <-signals:
			d.stop(s.grace)
			return nil
		case <-events:
			fmt.Fprintf(s.stderr, "devrun: new binary at %s\n", s.watch)
			launch(s.watch)
		case <-dlvExited:
			return fmt.Errorf("delve exited: %v", d.cmd.ProcessState)
		case <-withDone:
			d.stop(s.grace)
			return fmt.Errorf("%s exited: %v", with.Path, with.ProcessState)
		}
	}
}
