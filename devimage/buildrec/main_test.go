package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func sources(t *testing.T, quote string) string {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "go.mod"), []byte("module m\n"), 0o644)
	mustWrite(t, filepath.Join(dir, "quote.go"), []byte("package main\nconst quote = "+quote+"\n"), 0o644)
	mustWrite(t, filepath.Join(dir, "quote_test.go"), []byte("package main\n"), 0o644)
	return dir
}

func TestRecord(t *testing.T) {
	dir := sources(t, `"a"`)
	path := filepath.Join(dir, "tmp", "build-status.json")
	var stdout, stderr bytes.Buffer
	code, err := run([]string{"record", "-src", dir, "-o", path, "--", "sh", "-c", "echo out; echo './quote.go:2:7: broken <script>' >&2; exit 3"}, &stdout, &stderr)
	if err != nil || code != 3 {
		t.Fatalf("record = %d, %v; want the command's exit status 3", code, err)
	}
	// What the developer sees passes through unchanged.
	if stdout.String() != "out\n" || stderr.String() != "./quote.go:2:7: broken <script>\n" {
		t.Errorf("passed through: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	rec, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := Fingerprint(dir)
	// Two pipes: the order between them is the scheduler's, the lines are not.
	lines := strings.Split(strings.TrimSuffix(rec.Output, "\n"), "\n")
	slices.Sort(lines)
	if rec.Exit != 3 || !slices.Equal(lines, []string{"./quote.go:2:7: broken <script>", "out"}) || rec.Sources != fp || time.Since(rec.Time) > time.Minute {
		t.Errorf("record = %+v", rec)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "tmp", ".*")); len(left) != 0 {
		t.Errorf("temporary files left beside the record: %v", left)
	}

	code, err = run([]string{"record", "-src", dir, "-o", path, "--", "true"}, &stdout, &stderr)
	if rec, _ := Read(path); err != nil || code != 0 || rec.Exit != 0 || rec.Output != "" {
		t.Errorf("a good build: %d %v %+v", code, err, rec)
	}

	for _, bad := range [][]string{{}, {"nope"}, {"record", "--", "true"}, {"record", "-o", path}, {"wait"}, {"wait", "-timeout", "0s", path}} {
		if code, err := run(bad, &stdout, &stderr); code != 2 || err == nil {
			t.Errorf("run(%q) = %d, %v; want a usage error", bad, code, err)
		}
	}
	if code, err := run([]string{"record", "-src", dir, "-o", path, "--", "/nonexistent/cc"}, &stdout, &stderr); code == 0 || err == nil {
		t.Errorf("a command that cannot start: %d %v", code, err)
	}
}

func TestFingerprint(t *testing.T) {
	dir := sources(t, `"a"`)
	a, err := Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Tests, other files and times do not count; content does.
	mustWrite(t, filepath.Join(dir, "quote_test.go"), []byte("package main // changed\n"), 0o644)
	mustWrite(t, filepath.Join(dir, "README.md"), []byte("x"), 0o644)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "quote.go"), later, later); err != nil {
		t.Fatal(err)
	}
	if b, _ := Fingerprint(dir); b != a {
		t.Error("fingerprint changed with a test file, a README or a time")
	}
	mustWrite(t, filepath.Join(dir, "quote.go"), []byte("package main\nconst quote = \"b\"\n"), 0o644)
	b, _ := Fingerprint(dir)
	mustWrite(t, filepath.Join(dir, "quote.go"), []byte("package main\nconst quote = \"a\"\n"), 0o644)
	c, _ := Fingerprint(dir)
	if b == a || c != a {
		t.Errorf("edit then revert: %s %s %s; want a changed one, then the first again", a, b, c)
	}
	if _, err := Fingerprint(filepath.Join(dir, "missing")); err == nil {
		t.Error("fingerprint of a missing directory succeeded")
	}
}

func TestWait(t *testing.T) {
	dir := sources(t, `"a"`)
	path := filepath.Join(dir, "tmp", "build-status.json")
	fp, _ := Fingerprint(dir)
	var stdout, stderr bytes.Buffer

	// The record of an older build does not answer for these sources.
	mustRecord(t, path, Record{Exit: 0, Sources: "older"})
	code, err := run([]string{"wait", "-src", dir, "-timeout", "200ms", path}, &stdout, &stderr)
	if code == 0 || err == nil || !strings.Contains(err.Error(), "no build of these sources") {
		t.Errorf("wait on a stale record = %d, %v; want a timeout", code, err)
	}

	// The build finishes while we wait: the failure and its output.
	go func() {
		time.Sleep(100 * time.Millisecond)
		if err := Write(path, Record{Exit: 1, Sources: fp, Output: "./quote.go:2:7: boom\n"}); err != nil {
			t.Error(err)
		}
	}()
	stdout.Reset()
	stderr.Reset()
	code, err = run([]string{"wait", "-src", dir, "-timeout", "10s", path}, &stdout, &stderr)
	if code != 1 || err != nil || !strings.Contains(stderr.String(), "./quote.go:2:7: boom") || !strings.Contains(stderr.String(), "build failed (exit status 1)") {
		t.Errorf("wait on a failed build = %d, %v, stderr %q", code, err, stderr.String())
	}

	mustRecord(t, path, Record{Exit: 0, Sources: fp, Duration: "1.2s"})
	stdout.Reset()
	code, err = run([]string{"wait", "-src", dir, "-timeout", "10s", path}, &stdout, &stderr)
	if code != 0 || err != nil || !strings.Contains(stdout.String(), "build ok") {
		t.Errorf("wait on a good build = %d, %v, %q", code, err, stdout.String())
	}

	mustWrite(t, path, []byte("{half"), 0o644)
	if code, err := run([]string{"wait", "-src", dir, "-timeout", "100ms", path}, &stdout, &stderr); code == 0 || err == nil || !strings.Contains(err.Error(), "not a build record") {
		t.Errorf("wait on a broken record = %d, %v", code, err)
	}
}

// BenchmarkWaitReady is the wait step's own cost when the build it waits
// for is already recorded: what it adds to a live update in the pod,
// before Tilt's exec round trip.
func BenchmarkWaitReady(b *testing.B) {
	dir := b.TempDir()
	for _, n := range []string{"a.go", "b.go", "c.go", "d.go", "e.go", "f.go", "g.go", "h.go", "i.go", "j.go", "k.go", "l.go", "m.go", "go.mod", "go.sum"} {
		mustWrite(b, filepath.Join(dir, n), bytes.Repeat([]byte("x"), 3000), 0o644)
	}
	fp, _ := Fingerprint(dir)
	path := filepath.Join(dir, "tmp", "build-status.json")
	mustRecord(b, path, Record{Exit: 0, Sources: fp})
	var out bytes.Buffer
	for b.Loop() {
		if code, err := run([]string{"wait", "-src", dir, path}, &out, &out); code != 0 || err != nil {
			b.Fatal(code, err)
		}
	}
}

func mustWrite(t testing.TB, path string, b []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
}

func mustRecord(t testing.TB, path string, rec Record) {
	t.Helper()
	if err := Write(path, rec); err != nil {
		t.Fatal(err)
	}
}
