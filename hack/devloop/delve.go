package devloop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/go-delve/delve/service/rpc2"
)

// Delve is one debugger client session on a headless Delve, as an editor
// holds one: Delve's own JSON-RPC client (service/rpc2).
type Delve struct {
	*rpc2.RPCClient
	Addr string
}

// DialDelve connects to Delve's API at addr, retrying until ctx ends: the
// debugger may still be starting, or a port-forward still opening.
func DialDelve(ctx context.Context, addr string) (*Delve, error) {
	var last error
	for {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c := rpc2.NewClientFromConn(conn)
			// A port-forward accepts before the pod end answers: only an
			// API answer proves Delve is there.
			if _, err = getVersion(c, 5*time.Second); err == nil {
				return &Delve{RPCClient: c, Addr: addr}, nil
			}
			_ = c.Disconnect(false)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no Delve API at %s (last: %w): %w", addr, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getVersion(c *rpc2.RPCClient, timeout time.Duration) (api.GetVersionOut, error) {
	type result struct {
		v   api.GetVersionOut
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var out api.GetVersionOut
		err := c.CallAPI("GetVersion", api.GetVersionIn{}, &out)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(timeout):
		return api.GetVersionOut{}, errors.New("Delve did not answer GetVersion")
	}
}

// Wait returns the state a Continue channel delivers, or an error after
// timeout: a breakpoint that never fires must fail a test, not hang it.
func Wait(ch <-chan *api.DebuggerState, timeout time.Duration) (*api.DebuggerState, error) {
	select {
	case st := <-ch:
		if st == nil {
			return nil, errors.New("the debugger connection closed")
		}
		if st.Err != nil {
			return st, st.Err
		}
		return st, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("the target did not stop within %s", timeout)
	}
}

// Where is the file:line a stopped target is at.
func Where(st *api.DebuggerState) string {
	if st == nil || st.CurrentThread == nil {
		return "(no current thread)"
	}
	return fmt.Sprintf("%s:%d", st.CurrentThread.File, st.CurrentThread.Line)
}

// UserBreakpoints lists the breakpoints a client set; Delve's own (for an
// unrecovered panic and a fatal throw) have negative IDs.
func (d *Delve) UserBreakpoints() ([]*api.Breakpoint, error) {
	all, err := d.ListBreakpoints(false)
	if err != nil {
		return nil, err
	}
	var user []*api.Breakpoint
	for _, b := range all {
		if b.ID > 0 {
			user = append(user, b)
		}
	}
	return user, nil
}

// KeepRunning continues the target whenever it stops, until ctx ends: a
// client that is attached but not stepping, as an idle editor is. Under
// `tilt up -- --debug` every live update stops the target at the new
// binary's entry while a client is attached, and waits for its continue.
func (d *Delve) KeepRunning(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			ch := d.Continue()
			select {
			case st := <-ch:
				if st == nil || st.Err != nil && !strings.Contains(st.Err.Error(), "exited") {
					done <- fmt.Errorf("continue: %v", st)
					return
				}
			case <-ctx.Done():
				done <- nil
				return
			}
		}
	}()
	return done
}

// QuoteHandlerLine is the line of the quote handler's first statement in
// dir/handlers.go, where the tests put their breakpoint: read from the
// source, so that moving the handler moves the test's expectation too.
func QuoteHandlerLine(dir string) (int, error) {
	p := filepath.Join(dir, "handlers.go")
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, inHandler := 0, false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "func handleQuote(") {
			inHandler = true
			continue
		}
		if inHandler && strings.HasPrefix(line, "return func(") {
			continue
		}
		if inHandler && line != "" {
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no func handleQuote with a statement in its handler", p)
}

// NoKeepAlive is an HTTP client that opens a new connection per request:
// a kept-alive one may belong to a process Delve has since killed.
func NoKeepAlive(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// Get fetches url and returns the status and body.
func Get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// GetLater sends GET url in the background and delivers "code body" when
// it is answered, or "error: ..." after within. A connection error is
// retried: across a restart a request can reach the old process, halted at
// a breakpoint with its socket still open, and be reset when it is killed,
// as a browser's refresh would be.
func GetLater(url string, within time.Duration) <-chan string {
	ch := make(chan string, 1)
	go func() {
		client := NoKeepAlive(within)
		deadline := time.Now().Add(within)
		for {
			code, body, err := Get(client, url)
			if err == nil {
				ch <- strconv.Itoa(code) + " " + body
				return
			}
			if time.Now().After(deadline) {
				ch <- "error: " + err.Error()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return ch
}

// ExpectBody waits up to within for what GetLater delivers and fails the
// test unless it is want.
func ExpectBody(t TB, ch <-chan string, want string, within time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("GET / = %q, want %q", got, want)
		}
	case <-time.After(within):
		t.Fatalf("GET / did not complete within %s (want %q)", within, want)
	}
}
