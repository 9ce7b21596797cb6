package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// line is one line of a log with the time it was written (a pod's log,
// stamped by the container runtime) or seen (Tilt's --stream output,
// stamped by lineLog as it arrives).
type line struct {
	T        time.Time
	Resource string // Tilt's resource prefix; empty for pod logs and Tilt's own lines
	Text     string
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// splitTiltLine separates `tilt up --stream`'s "resource │ text" prefix
// and drops the colours Tilt writes even to a pipe.
func splitTiltLine(s string) (resource, text string) {
	s = ansi.ReplaceAllString(s, "")
	if r, t, ok := strings.Cut(s, "│"); ok {
		return strings.TrimSpace(r), strings.TrimSpace(t)
	}
	return "", strings.TrimSpace(s)
}

// lineLog is an io.Writer for Tilt's output that stamps each line with the
// time it arrived, so the benchmark can tell when Tilt saw an edit and when
// its live update ran. Tilt prints each line as it logs it, so arrival is
// within a few milliseconds of the event.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []line
	tee     io.Writer
	now     func() time.Time
	changed chan struct{} // closed and replaced on every new line
}

func newLineLog(tee io.Writer) *lineLog {
	return &lineLog{tee: tee, now: time.Now, changed: make(chan struct{})}
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	t := l.now()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		res, text := splitTiltLine(string(l.partial[:i]))
		l.lines = append(l.lines, line{T: t, Resource: res, Text: text})
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	if l.tee != nil {
		_, _ = l.tee.Write(p)
	}
	return len(p), nil
}

// snapshot returns the lines so far.
func (l *lineLog) snapshot() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]line(nil), l.lines...)
}

// waitFor returns the first line at or after since that match accepts.
func (l *lineLog) waitFor(ctx context.Context, since time.Time, match func(line) bool) (line, error) {
	for {
		l.mu.Lock()
		for _, ln := range l.lines {
			if !ln.T.Before(since) && match(ln) {
				l.mu.Unlock()
				return ln, nil
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return line{}, ctx.Err()
		case <-ch:
		}
	}
}

// parsePodLog reads `kubectl logs --timestamps` output: each line starts
// with the runtime's RFC 3339 timestamp, taken as the container wrote it.
func parsePodLog(r io.Reader) ([]line, error) {
	var out []line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		ts, text, ok := strings.Cut(sc.Text(), " ")
		if !ok && ts == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("pod log line %d: no timestamp: %q", n, sc.Text())
		}
		out = append(out, line{T: t, Text: strings.TrimSpace(ansi.ReplaceAllString(text, ""))})
	}
	return out, sc.Err()
}

// phases are the moments of one sample, each in milliseconds after the
// edit was written; 0 means the log did not show that step.
type phases struct {
	// TiltSaw: Tilt logs "1 File Changed" for the app or compile resource,
	// after its file watcher's 200 ms quiet period.
	TiltSaw float64 `json:"tilt_saw_ms,omitempty"`
	// CompileStart: the binary strategy's compile resource runs its command
	// on the host; CompileEnd is the compiled binary's modification time.
	CompileStart float64 `json:"compile_start_ms,omitempty"`
	CompileEnd   float64 `json:"compile_end_ms,omitempty"`
	// SyncStart and SyncDone: Tilt's live update, from "Will copy" to
	// "Container ... updated!" (tar through the Kubernetes exec API).
	SyncStart float64 `json:"sync_start_ms,omitempty"`
	SyncDone  float64 `json:"sync_done_ms,omitempty"`
	// BuildStart and BuildEnd: air in the pod logs "building..." and then
	// "running..." once go build is done (source strategy); devrun logs
	// "new binary" (binary strategy, BuildEnd only).
	BuildStart float64 `json:"pod_build_start_ms,omitempty"`
	BuildEnd   float64 `json:"pod_build_end_ms,omitempty"`
	// Serving: the new server logs "serving" when it listens.
	Serving float64 `json:"serving_ms,omitempty"`
	// TestsStart: the unit-tests resource starts its run (tests on).
	TestsStart float64 `json:"tests_start_ms,omitempty"`
	// ForwardLost: Tilt logs that its port-forward broke and reconnects.
	ForwardLost float64 `json:"port_forward_lost_ms,omitempty"`
	// Response: the first response carrying the edit, the sample itself.
	Response float64 `json:"response_ms"`
}

// phaseNames lists the phases in the order they happen, with the JSON key
// and a label for tables.
var phaseNames = []struct {
	Key, Label string
	get        func(phases) float64
}{
	{"tilt_saw_ms", "Tilt saw the change", func(p phases) float64 { return p.TiltSaw }},
	{"compile_start_ms", "host compile started", func(p phases) float64 { return p.CompileStart }},
	{"compile_end_ms", "host compile wrote the binary", func(p phases) float64 { return p.CompileEnd }},
	{"tests_start_ms", "unit tests started (after waitserved)", func(p phases) float64 { return p.TestsStart }},
	{"sync_start_ms", "sync started", func(p phases) float64 { return p.SyncStart }},
	{"sync_done_ms", "sync done", func(p phases) float64 { return p.SyncDone }},
	{"pod_build_start_ms", "pod: build started", func(p phases) float64 { return p.BuildStart }},
	{"pod_build_end_ms", "pod: build done, restart", func(p phases) float64 { return p.BuildEnd }},
	{"serving_ms", "pod: new server listening", func(p phases) float64 { return p.Serving }},
	{"port_forward_lost_ms", "Tilt's port-forward broke, reconnecting", func(p phases) float64 { return p.ForwardLost }},
	{"response_ms", "first response with the edit", func(p phases) float64 { return p.Response }},
}

// appResources are the Tilt resources on the edit's path to the pod.
var appResources = map[string]bool{"askeladden": true, "compile": true}

// samplePhases finds one sample's moments in Tilt's lines and the pod's,
// between the edit (start) and its first response (end).
func samplePhases(start, end time.Time, tilt, pod []line, binaryMTime time.Time) phases {
	ms := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Sub(start).Microseconds()) / 1000
	}
	in := func(t time.Time) bool { return !t.Before(start) && !t.After(end) }
	first := func(ls []line, match func(line) bool) time.Time {
		for _, l := range ls {
			if in(l.T) && match(l) {
				return l.T
			}
		}
		return time.Time{}
	}
	last := func(ls []line, match func(line) bool) time.Time {
		var t time.Time
		for _, l := range ls {
			if in(l.T) && match(l) {
				t = l.T
			}
		}
		return t
	}
	p := phases{Response: ms(end)}
	p.TiltSaw = ms(first(tilt, func(l line) bool {
		return appResources[l.Resource] && strings.Contains(l.Text, " Changed: ")
	}))
	p.CompileStart = ms(first(tilt, func(l line) bool {
		return l.Resource == "compile" && strings.HasPrefix(l.Text, "Running cmd:")
	}))
	if in(binaryMTime) {
		p.CompileEnd = ms(binaryMTime)
	}
	// The tests themselves start when hack/waitserved says the app serves
	// the edit, or with the resource's command if it did not wait.
	// (It says so as the app serves the edit, so a little after the
	// response that ends the sample.)
	for _, l := range tilt {
		if !l.T.Before(start) && !l.T.After(end.Add(3*time.Second)) && l.Resource == "unit-tests" && strings.HasPrefix(l.Text, "waitserved: the app serves build") {
			p.TestsStart = ms(l.T)
			break
		}
	}
	if p.TestsStart == 0 {
		p.TestsStart = ms(first(tilt, func(l line) bool {
			return l.Resource == "unit-tests" && strings.HasPrefix(l.Text, "Running cmd:")
		}))
	}
	// The last sync before the response is the edit's: the binary
	// strategy's compile also syncs its edit-time stamp, earlier.
	p.SyncStart = ms(last(tilt, func(l line) bool {
		return l.Resource == "askeladden" && strings.HasPrefix(l.Text, "Will copy ")
	}))
	p.SyncDone = ms(last(tilt, func(l line) bool {
		return l.Resource == "askeladden" && strings.HasPrefix(l.Text, "→ Container ") && strings.HasSuffix(l.Text, " updated!")
	}))
	p.ForwardLost = ms(first(tilt, func(l line) bool {
		return strings.HasPrefix(l.Text, "Reconnecting... Error port-forwarding")
	}))
	p.BuildStart = ms(first(pod, func(l line) bool { return strings.Contains(l.Text, "building...") }))
	p.BuildEnd = ms(first(pod, func(l line) bool {
		return strings.Contains(l.Text, "running...") || strings.HasPrefix(l.Text, "devrun: new binary")
	}))
	p.Serving = ms(first(pod, func(l line) bool {
		return strings.Contains(l.Text, `"msg":"serving"`) || strings.Contains(l.Text, "msg=serving")
	}))
	return p
}
