package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseDiagnostics(t *testing.T) {
	out := strings.Join([]string{
		"# github.com/ornlu-is/askeladden/internal/a",
		"internal/a/a.go:3:9: undefined: nope",
		"# github.com/ornlu-is/askeladden",
		"./quote.go:5:6: syntax error: unexpected name broken, expected (",
		"./handlers.go:40: missing return", // no column
		"./run.go:12:2: cannot use x (variable of type int) as string value in return statement",
		"\thave (int)", // continues the message above
		"\twant (string)",
		"vet: ./page.go:7:14: undefined: pageCSSS", // go vet's type-check line
		`C:\src\askeladden\main.go:1:1: expected 'package', found 'EOF'`,
		"go: errors parsing go.mod:",
		"/src/go.mod:5: unknown directive: requir",
		"too many errors",               // not a diagnostic
		"note: module requires Go 1.99", // not a diagnostic
		"\tthis tab line follows no diagnostic",
	}, "\n")
	got, more := parseDiagnostics(out)
	want := []diagnostic{
		{"github.com/ornlu-is/askeladden/internal/a", "internal/a/a.go", 3, 9, "undefined: nope"},
		{"github.com/ornlu-is/askeladden", "quote.go", 5, 6, "syntax error: unexpected name broken, expected ("},
		{"github.com/ornlu-is/askeladden", "handlers.go", 40, 0, "missing return"},
		{"github.com/ornlu-is/askeladden", "run.go", 12, 2, "cannot use x (variable of type int) as string value in return statement\nhave (int)\nwant (string)"},
		{"github.com/ornlu-is/askeladden", "page.go", 7, 14, "undefined: pageCSSS"},
		{"github.com/ornlu-is/askeladden", `C:\src\askeladden\main.go`, 1, 1, "expected 'package', found 'EOF'"},
		{"github.com/ornlu-is/askeladden", "/src/go.mod", 5, 0, "unknown directive: requir"},
	}
	if more != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("parseDiagnostics:\n got %+v (more %d)\nwant %+v", got, more, want)
	}

	if got, _ := parseDiagnostics("ok  \tgithub.com/x\t0.1s\nFAIL\n"); len(got) != 0 {
		t.Errorf("test output is not a diagnostic: %+v", got)
	}
	// A line that looks like one but whose line number overflows an int.
	if got, _ := parseDiagnostics("a.go:99999999999999999999999: x\n"); len(got) != 0 {
		t.Errorf("overflowing line number parsed: %+v", got)
	}
	var many strings.Builder
	for i := range maxDiagnostics + 7 {
		fmt.Fprintf(&many, "a.go:%d:1: e\n", i+1)
	}
	if got, more := parseDiagnostics(many.String()); len(got) != maxDiagnostics || more != 7 {
		t.Errorf("%d diagnostics: kept %d, more %d; want %d and 7", maxDiagnostics+7, len(got), more, maxDiagnostics)
	}
}

func TestReportCapsAndSanitizes(t *testing.T) {
	one := 1
	huge := "./quote.go:1:1: first\n" + strings.Repeat("é", 100<<10) // 200 KiB of two-byte runes
	r := reportFromRecord(buildRecord{Exit: &one, Output: huge})
	if len(r.Output) > maxShownBytes || !utf8.ValidString(r.Output) || r.OutputBytes != len(huge) {
		t.Errorf("capped output: %d bytes (valid UTF-8 %v), output_bytes %d", len(r.Output), utf8.ValidString(r.Output), r.OutputBytes)
	}
	if !strings.Contains(r.Note, "64 KiB") || !strings.Contains(r.Note, fmt.Sprint(len(huge))) {
		t.Errorf("note = %q, want it to say the output was cut at 64 KiB of %d bytes", r.Note, len(huge))
	}
	if len(r.Diagnostics) != 1 {
		t.Errorf("diagnostics of the capped output: %+v", r.Diagnostics)
	}

	small := reportFromRecord(buildRecord{Exit: &one, Output: "./a.go:1:1: x\n"})
	if small.Note != "" || small.Output != "./a.go:1:1: x\n" {
		t.Errorf("uncut output = %q, note %q", small.Output, small.Note)
	}

	bad := reportFromRecord(buildRecord{Exit: &one, Output: "./a.go:2:3: \xff\xfe <script>alert(1)</script>\n"})
	if !utf8.ValidString(bad.Output) || !strings.Contains(bad.Output, "\uFFFD") || !strings.Contains(bad.Output, "<script>alert(1)</script>") {
		t.Errorf("non-UTF-8 output = %q: want U+FFFD for the bad bytes and the markup kept as text", bad.Output)
	}
	zero := 0
	if ok := reportFromRecord(buildRecord{Exit: &zero, Output: "warning\n"}); ok.Output != "" || ok.Diagnostics != nil {
		t.Errorf("a good build's report carries output: %+v", ok)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ name, data string }

// readEvents reads events from an SSE body until n have arrived.
func readEvents(t *testing.T, br *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var evs []sseEvent
	var cur sseEvent
	for len(evs) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %v: %v", evs, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.name != "" {
				evs = append(evs, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return evs
}

func openStream(t *testing.T, base string) *bufio.Reader {
	t.Helper()
	req, _ := http.NewRequest("GET", base+devEventsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("%s = %d", devEventsPath, resp.StatusCode)
	}
	return bufio.NewReader(resp.Body)
}

func devTestServer(t *testing.T, status *buildStatus) string {
	t.Helper()
	life := newLifecycle()
	life.setReady()
	build := buildInfo{BuildID: "build-1"}
	srv := httptest.NewServer(newServer(slog.New(slog.NewTextHandler(io.Discard, nil)), life, newRegistry(), build, true, status))
	t.Cleanup(func() { life.beginShutdown(); srv.Close() })
	return srv.URL
}

func TestStreamSendsCurrentStatusOnConnect(t *testing.T) {
	status := newBuildStatus()
	one := 1
	status.set(reportFromRecord(buildRecord{Exit: &one, Output: "# pkg\n./quote.go:3:1: syntax error: <script>x</script>\n"}))
	base := devTestServer(t, status)

	evs := readEvents(t, openStream(t, base), 2)
	if evs[0] != (sseEvent{"build", "build-1"}) || evs[1].name != "build-error" {
		t.Fatalf("a page connecting while broken got %+v, want the build ID then build-error", evs)
	}
	var r buildReport
	if err := json.Unmarshal([]byte(evs[1].data), &r); err != nil {
		t.Fatalf("build-error data is not JSON: %v: %s", err, evs[1].data)
	}
	if len(r.Diagnostics) != 1 || r.Diagnostics[0].File != "quote.go" || r.Diagnostics[0].Line != 3 || !strings.Contains(r.Output, "<script>x</script>") {
		t.Errorf("build-error = %+v", r)
	}
	if strings.Contains(evs[1].data, "<script>") {
		t.Errorf("markup travels unescaped in the event: %s", evs[1].data)
	}

	// A page already connected hears every change.
	second := openStream(t, base)
	readEvents(t, second, 2)
	zero := 0
	status.set(reportFromRecord(buildRecord{Exit: &zero}))
	if evs := readEvents(t, second, 1); evs[0].name != "build-ok" {
		t.Errorf("after a good build the open stream got %+v, want build-ok", evs)
	}
	// And a page connecting now hears that the build is fine.
	if evs := readEvents(t, openStream(t, base), 2); evs[1].name != "build-ok" {
		t.Errorf("connecting after the fix: %+v", evs)
	}
}

func TestStreamWithoutRecordSendsBuildOnly(t *testing.T) {
	base := devTestServer(t, nil)
	br := openStream(t, base)
	evs := readEvents(t, br, 1)
	if evs[0] != (sseEvent{"build", "build-1"}) {
		t.Fatalf("first event %+v", evs)
	}
	// Nothing else is pending: the next thing would be a keepalive in 15 s.
	if br.Buffered() != 0 {
		b, _ := br.Peek(br.Buffered())
		t.Errorf("unexpected data after the build ID: %q", b)
	}
}

// watcherAt makes a watcher whose polls the test drives, for determinism.
func watcherAt(t *testing.T, path string) (*statusWatcher, *buildStatus, *bytes.Buffer) {
	var logs bytes.Buffer
	s := newBuildStatus()
	return &statusWatcher{path: path, status: s, logger: slog.New(slog.NewTextHandler(&logs, nil))}, s, &logs
}

func currentReport(t *testing.T, s *buildStatus) (string, buildReport) {
	t.Helper()
	ev, _ := s.current()
	if ev == nil {
		return "", buildReport{}
	}
	var r buildReport
	if err := json.Unmarshal(ev.data, &r); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	return ev.name, r
}

func TestWatcherSurvivesPartialWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tmp", "build-status.json")
	w, s, _ := watcherAt(t, path)

	w.poll() // no record, not even its directory: nothing to say
	if ev, _ := s.current(); ev != nil {
		t.Fatalf("status without a record: %+v", ev)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, []byte(`{"exit":0,"output":"","time":"2026-01-02T03:04:05Z"}`), 0o644)
	w.poll()
	if name, _ := currentReport(t, s); name != "build-ok" {
		t.Fatalf("after a good record: %q", name)
	}

	// A writer that does not rename: the first half lands, then the rest.
	full := `{"exit":1,"output":"# m\n./quote.go:4:2: undefined: x\n","time":"2026-01-02T03:04:06Z"}`
	mustWrite(t, path, []byte(full[:len(full)/2]), 0o644)
	w.poll()
	if name, _ := currentReport(t, s); name != "build-ok" {
		t.Errorf("a half-written record changed the status to %q at once", name)
	}
	mustWrite(t, path, []byte(full), 0o644)
	w.poll()
	name, r := currentReport(t, s)
	if name != "build-error" || len(r.Diagnostics) != 1 || r.Diagnostics[0].Line != 4 {
		t.Fatalf("after the write completed: %q %+v", name, r)
	}

	// A record left broken is reported once it stops changing.
	mustWrite(t, path, []byte(full[:20]), 0o644)
	w.poll()
	w.poll()
	name, r = currentReport(t, s)
	if name != "build-error" || r.Exit != -1 || !strings.Contains(r.Output, "cannot read the build status record") {
		t.Errorf("a record that stays half-written: %q %+v", name, r)
	}

	// Removed: the last status stays, nothing breaks.
	os.Remove(path)
	w.poll()
	if name, _ := currentReport(t, s); name != "build-error" {
		t.Errorf("after removal: %q", name)
	}
}

func TestWatcherBadRecords(t *testing.T) {
	for _, tc := range []struct {
		name     string
		content  []byte
		wantExit int
		check    func(buildReport) bool
	}{
		{"not UTF-8", []byte("{\"exit\":2,\"output\":\"./a.go:1:1: \xff\xfe\xfd <script>alert(1)</script>\\n\"}"), 2, func(r buildReport) bool {
			return utf8.ValidString(r.Output) && strings.Contains(r.Output, "<script>alert(1)</script>") && len(r.Diagnostics) == 1
		}},
		{"binary garbage", []byte("\x00\x01\xff\xfe not json at all"), -1, func(r buildReport) bool {
			return utf8.ValidString(r.Output) && strings.Contains(r.Output, "not a JSON build record")
		}},
		{"no exit field", []byte(`{"output":"x"}`), -1, func(r buildReport) bool { return strings.Contains(r.Output, `no "exit" field`) }},
		{"huge output", fmt.Appendf(nil, `{"exit":1,"output":%q}`, "./a.go:1:1: x\n"+strings.Repeat("<b>0123456789</b>\n", 1<<16)), 1, func(r buildReport) bool {
			return len(r.Output) <= maxShownBytes && strings.Contains(r.Note, "output cut")
		}},
		{"a FIFO", nil, -1, func(r buildReport) bool { return strings.Contains(r.Output, "not a regular file") }},
		{"over the read limit", append(append([]byte(`{"exit":1,"output":"`), bytes.Repeat([]byte("x"), maxRecordBytes)...), `"}`...), -1, func(r buildReport) bool {
			return strings.Contains(r.Output, "too large")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "build-status.json")
			if tc.content == nil {
				// A FIFO, which a plain open would block on.
				if err := syscall.Mkfifo(path, 0o644); err != nil {
					t.Skipf("cannot make a FIFO here: %v", err)
				}
			} else {
				mustWrite(t, path, tc.content, 0o644)
			}
			w, s, _ := watcherAt(t, path)
			w.poll()
			w.poll() // a bad record is reported on the second look
			name, r := currentReport(t, s)
			if name != "build-error" || r.Exit != tc.wantExit || !tc.check(r) {
				t.Errorf("got %q exit %d, output %d bytes %.200q, note %q", name, r.Exit, len(r.Output), r.Output, r.Note)
			}
		})
	}
}

// TestBuildrecFeedsTheServer runs the recorder the way air does (`go tool
// buildrec`) around a failing build, and checks that the server's watcher
// reads what it wrote: the format is shared only through the file.
func TestBuildrecFeedsTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that builds the recorder and a package")
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	mustWrite(t, filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { nope() }\n"), 0o644)
	rec := filepath.Join(dir, "tmp", "build-status.json")
	cmd := exec.Command("go", "tool", "buildrec", "record", "-src", dir, "-o", rec, "--", "go", "build", "-C", dir, "-o", filepath.Join(dir, "tmp", "bin"), ".")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("buildrec around a failing build: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "main.go:3:15: undefined: nope") {
		t.Errorf("the compiler's output did not pass through:\n%s", out)
	}
	w, s, _ := watcherAt(t, rec)
	w.poll()
	name, r := currentReport(t, s)
	if name != "build-error" || len(r.Diagnostics) != 1 || r.Diagnostics[0] != (diagnostic{"broken", "main.go", 3, 15, "undefined: nope"}) {
		t.Errorf("the server read %q %+v", name, r)
	}
	if time.Since(r.Time) > time.Minute {
		t.Errorf("record time %v is not this build's", r.Time)
	}
}

// TestBuildStatusOnlyInDev runs the whole program over a broken record: in
// dev mode the page hears of it; in production nothing reads it and no
// event, script or overlay code is served.
func TestBuildStatusOnlyInDev(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build-status.json")
	mustWrite(t, path, []byte(`{"exit":1,"output":"./quote.go:1:1: broken\n"}`), 0o644)
	env := func() map[string]string { return map[string]string{"ASKELADDEN_BUILD_STATUS": path} }

	prod := startRun(t, env())
	for _, p := range []string{devEventsPath, devScriptPath} {
		if code, _, _ := get(t, prod.base+p); code != 404 {
			t.Errorf("production serves %s: %d", p, code)
		}
	}
	if _, page, _ := get(t, prod.base+"/", "Accept", "text/html"); strings.Contains(page, "<script") || strings.Contains(page, "build-error") {
		t.Errorf("the production page carries script or overlay code:\n%s", page)
	}
	if logs := prod.out.String(); strings.Contains(logs, "build status") || strings.Contains(logs, "build failed") {
		t.Errorf("production watches the build status record:\n%s", logs)
	}

	dev := startRun(t, env(), "-dev")
	evs := readEvents(t, openStream(t, dev.base), 2)
	if evs[1].name != "build-error" || !strings.Contains(evs[1].data, `"file":"quote.go"`) {
		t.Errorf("dev mode over a broken record sent %+v", evs)
	}
	if !strings.Contains(dev.out.String(), "watching the dev loop's build status") {
		t.Errorf("dev mode did not say it watches the record:\n%s", dev.out)
	}
	_, js, _ := get(t, dev.base+devScriptPath)
	for _, want := range []string{`"build-error"`, `"build-ok"`, "textContent"} {
		if !strings.Contains(js, want) {
			t.Errorf("the dev script lacks %s", want)
		}
	}
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "insertAdjacentHTML") || strings.Contains(js, "setAttribute(\"style\"") {
		t.Error("the dev script may parse compiler text as HTML or set inline style attributes")
	}
}

func mustWrite(t testing.TB, path string, b []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
}
