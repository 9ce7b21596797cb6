// Package devloop drives the inner loop the way a developer does: copy the
// project, run its watcher (air, tilt up), edit the quote, and wait for the
// new one to be served, in a page too. The checks, the e2e suite and the
// loop benchmark share it.
package devloop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// projectFiles decides what a scratch copy needs to build and run under
// air: the module, its non-test Go sources and the air config.
func projectFiles(name string) bool {
	switch {
	case name == "go.mod", name == "go.sum", name == ".air.toml", name == ".air.debug.toml":
		return true
	case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
		return true
	}
	return false
}

// buildDirs are the folders besides the top level that air's build
// command needs: the build recorder it runs as a Go tool.
var buildDirs = []string{filepath.Join("devimage", "buildrec")}

// CopyProject copies what the project in src needs to build under air
// into dst, which must exist: the top level and buildDirs.
func CopyProject(src, dst string) error {
	n := 0
	for _, dir := range append([]string{"."}, buildDirs...) {
		entries, err := os.ReadDir(filepath.Join(src, dir))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, dir), 0o755); err != nil {
			return err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !projectFiles(e.Name()) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, dir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, dir, e.Name()), b, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "quote.go")); err != nil {
		return fmt.Errorf("copy of %s has no quote.go (%d files copied): %w", src, n, err)
	}
	return nil
}

var quoteLine = regexp.MustCompile(`(?m)^const quote = (".*")$`)

// MustCheckout is the checkout a test package in a folder of its own
// (checks/, e2e/) tests, the parent of its working directory, and the quote
// that checkout serves. It panics where there is none: no test there could
// run.
func MustCheckout() (root, quote string) {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	root = filepath.Dir(wd)
	quote, err = Quote(root)
	if err != nil {
		panic(fmt.Sprintf("%v: run the tests from a folder of the askeladden checkout", err))
	}
	return root, quote
}

// Quote reads the quote the service in dir serves, from its quote.go: the
// one source of it for every check and test outside the service.
func Quote(dir string) (string, error) {
	p := filepath.Join(dir, "quote.go")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	m := quoteLine.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s has no line `const quote = \"...\"`", p)
	}
	return strconv.Unquote(string(m[1]))
}

// SetQuote rewrites the quote constant in dir/quote.go in one write, as an
// editor's save would.
func SetQuote(dir, q string) error {
	p := filepath.Join(dir, "quote.go")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !quoteLine.Match(b) {
		return fmt.Errorf("%s has no line `const quote = \"...\"` to edit", p)
	}
	out := quoteLine.ReplaceAll(b, []byte("const quote = "+strconv.Quote(q)))
	return os.WriteFile(p, out, 0o644)
}

// WaitForBody polls url until its body contains want, and returns the time
// the matching response arrived. Connection errors are retried: the server
// is expected to go away and come back. Each poll opens a new connection, as
// a reloading page does: a kept-alive one through a port-forward can hang on
// a backend that is gone and measure the client's timeout, not the loop.
func WaitForBody(ctx context.Context, url, want string, every time.Duration) (time.Time, error) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return time.Now(), nil
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s never served %q (last: %s): %w", url, want, last, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Process is a watcher (air, tilt up) running in its own process group, so
// that stopping it reaches every process it started.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts cmd in a process group of its own.
func Start(name string, cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Stop interrupts the process as Ctrl-C would and waits for it to exit.
// Whatever is left of its group after timeout is killed, and that is
// reported as an error: a watcher must clean up after itself. Calling Stop
// again is harmless.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within %s of SIGINT; killed its process group", p.name, timeout)
	}
}

// Air is `go tool air` running in a project copy.
type Air struct {
	*Process
	Dir  string
	Port int
}

// StartAir runs `go tool air` in dir with the server on port, writing air's
// and the server's output to log.
func StartAir(dir string, port int, log io.Writer) (*Air, error) {
	return StartAirConfig(dir, "", port, log)
}

// StartAirConfig is StartAir with another air config, such as the debug
// loop's .air.debug.toml; "" is air's default, .air.toml.
func StartAirConfig(dir, config string, port int, log io.Writer) (*Air, error) {
	args := []string{"tool", "air"}
	if config != "" {
		args = append(args, "-c", config)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	p, err := Start("go tool air", cmd)
	if err != nil {
		return nil, err
	}
	return &Air{Process: p, Dir: dir, Port: port}, nil
}

// Binary is where .air.toml puts the server it builds.
func (a *Air) Binary() string { return filepath.Join(a.Dir, "tmp", "askeladden") }

// StartTilt runs `tilt up` in dir, its web UI on 127.0.0.1:port, streaming
// its log to log; args go after `--`, to the Tiltfile.
func StartTilt(dir string, port int, log io.Writer, args ...string) (*Process, error) {
	cmd := exec.Command("tilt", append([]string{"up", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--stream", "--"}, args...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	return Start("tilt up", cmd)
}

// PIDsRunning lists the processes whose executable path is bin, from /proc
// (Linux only). A binary replaced on disk shows as "bin (deleted)".
func PIDsRunning(bin string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.TrimSuffix(exe, " (deleted)") == bin {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// Alive reports whether pid still exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// FreePort asks the kernel for a loopback port that is free right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CopyTracked copies the files git tracks in src into dst, as a fresh clone
// would have them (with the work tree's edits), for loops that need the
// whole project: Tilt reads the Tiltfile, k8s/ and Dockerfile.dev.
func CopyTracked(src, dst string) error {
	out, err := exec.Command("git", "-C", src, "ls-files", "-z").Output()
	if err != nil {
		return fmt.Errorf("git ls-files in %s: %w", src, err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" {
			continue
		}
		st, err := os.Lstat(filepath.Join(src, f))
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or a link
		}
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// Buffer collects the output of a process or server running in another
// goroutine, safe to read while it writes.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TB is the part of testing.TB that NeedTool uses: this package is not
// test code, so it does not import testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// NeedTool skips a test outside CI when a tool is missing, saying how to
// get it, and fails it in CI (CI=true), where a skipped check would hide a
// broken pipeline.
func NeedTool(t TB, ok bool, what, how string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing, and CI=true: %s", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}

// Event is one Server-Sent Event from the dev server's /_dev/events.
type Event struct {
	Name, Data string
	At         time.Time // when it arrived
}

// Events follows url (a /_dev/events stream) as a page's EventSource does:
// it reconnects 100 ms after the stream breaks, as the server's retry
// field asks, until ctx ends. Every event goes to the returned channel,
// which is closed when ctx ends; a slow reader loses none (the channel is
// large and the dev server sends a few events per build).
func Events(ctx context.Context, url string) <-chan Event {
	out := make(chan Event, 1024)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			readEvents(ctx, client, url, out)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

func readEvents(ctx context.Context, client *http.Client, url string, out chan<- Event) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev Event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				ev.At = time.Now()
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			ev = Event{}
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// WaitEvent returns the first event called name from events.
func WaitEvent(ctx context.Context, events <-chan Event, name string) (Event, error) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return Event{}, fmt.Errorf("event stream ended before a %s event", name)
			}
			if ev.Name == name {
				return ev, nil
			}
		case <-ctx.Done():
			return Event{}, fmt.Errorf("no %s event: %w", name, ctx.Err())
		}
	}
}

// Drain discards the events that have already arrived.
func Drain(events <-chan Event) {
	for {
		select {
		case <-events:
		default:
			return
		}
	}
}

// BreakLine is a line that does not compile, distinct for each n so that
// every broken save is a new build.
func BreakLine(n int) string {
	return fmt.Sprintf("\nvar _ int = \"broken edit %d\"\n", n)
}

// Break appends BreakLine(n) to dir/quote.go in one write, as a save of a
// broken edit would, and returns the file's previous content.
func Break(dir string, n int) ([]byte, error) {
	p := filepath.Join(dir, "quote.go")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return b, os.WriteFile(p, append(bytes.Clone(b), BreakLine(n)...), 0o644)
}

// BuildID reads the build ID that the dev-mode server at base (ending in
// /) announces on its event stream, as the dev page does on load.
func BuildID(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var id string
	err := readBuildEvents(ctx, base, func(data string) bool { id = data; return false })
	if id == "" {
		return "", fmt.Errorf("no build ID from %s%s: %w", base, eventsPath, err)
	}
	return id, nil
}

const eventsPath = "_dev/events"

// readBuildEvents reads the build events of one connection to the dev event
// stream, calling on with each event's data until it returns false or the
// stream ends.
func readBuildEvents(ctx context.Context, base string, on func(data string) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+eventsPath, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s", base, eventsPath, resp.Status)
	}
	// Only the build event carries an ID; build-ok and build-error carry
	// the build's status.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			event = name
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && event == "build" && !on(data) {
			return nil
		}
		if line == "" {
			event = ""
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// WaitForNewBuild waits for an edit the way the dev page does, without
// polling a server that is busy building: it waits (WaitForOtherBuild) for
// a server announcing a build other than old, then fetches base until the
// body contains want, and returns when that response came. Unlike
// polling, it adds no load to the machine while the build runs.
func WaitForNewBuild(ctx context.Context, base, old, want string, every time.Duration) (time.Time, error) {
	if _, err := WaitForOtherBuild(ctx, base, old, every); err != nil {
		return time.Time{}, err
	}
	return WaitForBody(ctx, base, want, every)
}

// WaitForOtherBuild holds the dev event stream at base open; when the
// stream breaks (the old process stops) it reconnects every `every` until
// a server announces a build other than old, and returns that build's ID.
func WaitForOtherBuild(ctx context.Context, base, old string, every time.Duration) (string, error) {
	for {
		var fresh string
		last := readBuildEvents(ctx, base, func(data string) bool {
			if data == old {
				return true // the old process: wait for its stream to end
			}
			fresh = data
			return false
		})
		if fresh != "" {
			return fresh, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s never announced a build other than %s (last: %s): %w", base, old, errText(last), ctx.Err())
		case <-time.After(every):
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
