package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The dev loop's build wrapper (devimage/buildrec) writes a build-status
// record after every build: under air on the laptop and in the pod, and in
// Tilt's compile resource. In dev mode the server watches it and tells open
// pages over /_dev/events, so a broken edit shows where the developer looks.

const (
	// maxRecordBytes bounds what the server reads of a record. go build
	// stops after ten errors per package, so a real record is kilobytes;
	// anything near this size is not a build's output.
	maxRecordBytes = 16 << 20
	// maxShownBytes caps the raw output sent to the page.
	maxShownBytes = 64 << 10
	// maxDiagnostics and maxMessageBytes bound the parsed list likewise.
	maxDiagnostics  = 200
	maxMessageBytes = 2 << 10
	// statusPollEvery is how often the watcher stats the record; see
	// watchBuildStatus for why it polls.
	statusPollEvery = 50 * time.Millisecond
)

// buildRecord is the file the wrapper writes. Only these fields are read.
type buildRecord struct {
	Exit   *int      `json:"exit"`
	Output string    `json:"output"`
	Time   time.Time `json:"time"`
}

// diagnostic is one compiler or vet message, located in a file.
type diagnostic struct {
	Package string `json:"package,omitempty"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col,omitempty"`
	Msg     string `json:"msg"`
}

// buildReport is the data of a build-error or build-ok event.
type buildReport struct {
	Exit        int          `json:"exit"`
	Time        time.Time    `json:"time,omitzero"`
	Diagnostics []diagnostic `json:"diagnostics,omitempty"`
	// MoreDiagnostics counts diagnostics beyond maxDiagnostics.
	MoreDiagnostics int    `json:"more_diagnostics,omitempty"`
	Output          string `json:"output,omitempty"`
	// OutputBytes is the size of the whole output; Note says when Output
	// is only its beginning.
	OutputBytes int    `json:"output_bytes,omitempty"`
	Note        string `json:"note,omitempty"`
}

// diagLine matches `file.go:12:5: message` and `file.go:12: message`,
// optionally prefixed by `vet: ` as go vet prints type errors. The file
// part is non-greedy so a Windows drive letter (C:\x.go) stays in it.
var diagLine = regexp.MustCompile(`^(?:vet: )?(\S.*?\.(?:go|mod|sum|s|c|h)):(\d+)(?::(\d+))?: (.+)$`)

// parseDiagnostics reads go build / go vet text output. `# pkg` lines name
// the package of the lines that follow; tab-indented lines continue the
// previous message (have/want pairs); anything else is not a diagnostic.
func parseDiagnostics(out string) (diags []diagnostic, more int) {
	pkg := ""
	last := -1
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		if p, ok := strings.CutPrefix(line, "# "); ok {
			pkg, last = strings.TrimSpace(p), -1
			continue
		}
		if strings.HasPrefix(line, "\t") && last >= 0 {
			if m := &diags[last].Msg; len(*m) < maxMessageBytes {
				*m = capString(*m+"\n"+strings.TrimSpace(line), maxMessageBytes)
			}
			continue
		}
		m := diagLine.FindStringSubmatch(line)
		if m == nil {
			last = -1
			continue
		}
		if len(diags) == maxDiagnostics {
			more++
			last = -1
			continue
		}
		ln, err := strconv.Atoi(m[2])
		if err != nil {
			continue // more digits than an int holds: not a real position
		}
		col, _ := strconv.Atoi(m[3]) // empty when the tool gave no column
		diags = append(diags, diagnostic{Package: pkg, File: strings.TrimPrefix(m[1], "./"), Line: ln, Col: col, Msg: capString(m[4], maxMessageBytes)})
		last = len(diags) - 1
	}
	return diags, more
}

// capString cuts s to at most n bytes at a rune boundary.
func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reportFromRecord turns a record into what the page is told. Invalid
// UTF-8 becomes U+FFFD, so the event is always valid JSON text.
func reportFromRecord(rec buildRecord) buildReport {
	out := strings.ToValidUTF8(rec.Output, "\uFFFD")
	r := buildReport{Exit: *rec.Exit, Time: rec.Time, OutputBytes: len(out)}
	if r.Exit == 0 {
		return buildReport{Exit: 0, Time: rec.Time}
	}
	r.Diagnostics, r.MoreDiagnostics = parseDiagnostics(out)
	r.Output = capString(out, maxShownBytes)
	if len(r.Output) < len(out) {
		r.Note = fmt.Sprintf("output cut: showing the first %d KiB of %d bytes", maxShownBytes>>10, len(out))
	}
	return r
}

// readRecord reads and decodes the record at path, refusing one larger
// than maxRecordBytes.
func readRecord(path string) (buildRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return buildRecord{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordBytes+1))
	if err != nil {
		return buildRecord{}, err
	}
	if len(b) > maxRecordBytes {
		return buildRecord{}, fmt.Errorf("it is over %d MiB, too large to be a build's output", maxRecordBytes>>20)
	}
	var rec buildRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return buildRecord{}, fmt.Errorf("not a JSON build record: %w", err)
	}
	if rec.Exit == nil {
		return buildRecord{}, errors.New(`it has no "exit" field`)
	}
	return rec, nil
}

// statusEvent is one SSE event, encoded once and sent to every page.
type statusEvent struct {
	name string // build-error or build-ok
	data []byte // one line of JSON
}

// buildStatus holds the latest build status and wakes the streams that
// wait on it. Pages that connect later read the current value at once.
type buildStatus struct {
	mu      sync.Mutex
	cur     *statusEvent
	changed chan struct{} // closed and replaced on every change
}

func newBuildStatus() *buildStatus { return &buildStatus{changed: make(chan struct{})} }

// current returns the latest event (nil before any record was read) and a
// channel that is closed when it changes.
func (s *buildStatus) current() (*statusEvent, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.changed
}

func (s *buildStatus) set(r buildReport) {
	name := "build-error"
	if r.Exit == 0 {
		name = "build-ok"
	}
	data, err := json.Marshal(r)
	if err != nil {
		// Only strings, ints and times go in: this cannot fail.
		panic("build report: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = &statusEvent{name: name, data: data}
	close(s.changed)
	s.changed = make(chan struct{})
}

// watchBuildStatus polls the record at path until stop is closed.
//
// It polls with stat rather than using inotify or fsnotify: the service's
// go.mod stays free of a watcher dependency, it works the same on macOS
// and in the pod, the record's directory may not exist yet when the server
// starts, and a record replaced by rename needs no re-arming of a watch.
// One stat every 50 ms costs nothing next to a build, and adds 25 ms on
// average to the time an error takes to reach the page.
//
// The first read happens before it returns, so the first page to connect
// already gets the status; the polling goes on in a goroutine.
func watchBuildStatus(path string, every time.Duration, s *buildStatus, logger *slog.Logger, stop <-chan struct{}) {
	w := &statusWatcher{path: path, status: s, logger: logger}
	w.poll()
	go w.run(every, stop)
}

func (w *statusWatcher) run(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.poll()
		}
	}
}

type statusWatcher struct {
	path   string
	status *buildStatus
	logger *slog.Logger
	last   fs.FileInfo // the file as of the last read, nil when missing
	// bad is why the last read failed. A record caught mid-write looks the
	// same as a broken one, so a failure is reported only once the file
	// has stayed unchanged for a whole poll.
	bad error
}

func (w *statusWatcher) poll() {
	fi, err := os.Stat(w.path)
	if err != nil {
		if w.last != nil && errors.Is(err, fs.ErrNotExist) {
			w.logger.Info("build status record removed; keeping the last status", "path", w.path)
		}
		w.last, w.bad = nil, nil
		return
	}
	if w.last != nil && os.SameFile(w.last, fi) && fi.ModTime().Equal(w.last.ModTime()) && fi.Size() == w.last.Size() {
		if w.bad != nil {
			w.logger.Warn("cannot read the build status record", "path", w.path, "err", w.bad)
			w.status.set(buildReport{Exit: -1, Output: capString(fmt.Sprintf("askeladden: cannot read the build status record %s: %v", w.path, w.bad), maxShownBytes)})
			w.bad = nil
		}
		return
	}
	w.last = fi
	if !fi.Mode().IsRegular() {
		// A directory or a FIFO: reading could fail or block for ever.
		w.bad = fmt.Errorf("it is not a regular file (%s)", fi.Mode().Type())
		return
	}
	rec, err := readRecord(w.path)
	if err != nil {
		w.bad = err
		return
	}
	w.bad = nil
	r := reportFromRecord(rec)
	if r.Exit != 0 {
		w.logger.Info("build failed", "path", w.path, "exit", r.Exit, "diagnostics", len(r.Diagnostics))
	}
	w.status.set(r)
}
