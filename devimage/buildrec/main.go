// Command buildrec records the outcome of every dev-loop build, so the dev
// server can show a broken build in the page and Tilt can fail a live
// update whose build failed.
//
//	buildrec record -o tmp/build-status.json -- go build -o tmp/askeladden .
//	buildrec wait [-src /src] [-timeout 2m] /src/tmp/build-status.json
//
// record runs the command with its output passed through unchanged (what
// the developer sees in the terminal or in Tilt's log stays as it was),
// keeps a copy, and writes a JSON record atomically (temp file and rename):
// exit status, the command's whole output, the time, and a fingerprint of
// the sources it built. It exits with the command's status.
//
// wait is the Tilt live_update step of the source strategy: it fingerprints
// the synced sources and waits for the record of a build of exactly those
// sources. It exits 0 if that build succeeded; if it failed, it prints the
// compiler output and exits 1, which turns the Tilt resource red.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Record is the file's format; the server reads exit, output and time.
type Record struct {
	Exit     int       `json:"exit"`
	Output   string    `json:"output"`
	Time     time.Time `json:"time"`
	Started  time.Time `json:"started"`
	Sources  string    `json:"sources"`
	Command  []string  `json:"command"`
	Duration string    `json:"duration"`
}

// errUsage is bad input on the command line: exit status 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

const usage = `usage:
  buildrec record -o FILE [-src DIR] -- COMMAND [ARG...]
  buildrec wait [-src DIR] [-timeout D] [-every D] FILE`

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildrec: %v\n", err)
		var ue errUsage
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, errUsage{"no subcommand"}
	}
	switch args[0] {
	case "record":
		return record(args[1:], stdout, stderr)
	case "wait":
		return wait(args[1:], stdout, stderr)
	}
	return 2, errUsage{fmt.Sprintf("unknown subcommand %q", args[0])}
}

func record(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("o", "", "where to write the record")
	src := fs.String("src", ".", "the source directory the command builds")
	if err := fs.Parse(args); err != nil {
		return 2, errUsage{err.Error()}
	}
	if *out == "" || fs.NArg() == 0 {
		return 2, errUsage{"record needs -o FILE and a command after --"}
	}
	sources, err := Fingerprint(*src)
	if err != nil {
		return 1, err
	}
	started := time.Now()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	// One buffer for both streams keeps the order the developer saw.
	var both lockedBuffer
	cmd.Stdout = io.MultiWriter(stdout, &both)
	cmd.Stderr = io.MultiWriter(stderr, &both)
	cmd.Stdin = os.Stdin
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("start %s: %w", fs.Arg(0), err)
	}
	// air and Tilt stop a build by signalling us: pass it on, and record
	// nothing for a build that never finished.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	werr := cmd.Wait()
	close(done)
	signal.Stop(sigs)
	code := 0
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return 1, werr
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		code = ee.ExitCode()
	}
	now := time.Now()
	rec := Record{Exit: code, Output: both.String(), Time: now.UTC(), Started: started.UTC(), Sources: sources,
		Command: fs.Args(), Duration: now.Sub(started).Round(time.Millisecond).String()}
	if err := Write(*out, rec); err != nil {
		fmt.Fprintf(stderr, "buildrec: cannot write the build record: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code, nil
}

func wait(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	src := fs.String("src", ".", "the source directory the build reads")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the build of these sources")
	every := fs.Duration("every", 10*time.Millisecond, "how often to look at the record")
	if err := fs.Parse(args); err != nil {
		return 2, errUsage{err.Error()}
	}
	if fs.NArg() != 1 || *timeout <= 0 || *every <= 0 {
		return 2, errUsage{"wait needs one record FILE, and a positive -timeout and -every"}
	}
	path := fs.Arg(0)
	want, err := Fingerprint(*src)
	if err != nil {
		return 1, err
	}
	deadline := time.Now().Add(*timeout)
	var last os.FileInfo
	var lastErr error
	for {
		// A stat per poll; the file is read only when it changed.
		if fi, err := os.Stat(path); err == nil && !sameFile(last, fi) {
			last = fi
			rec, err := Read(path)
			lastErr = err
			if err == nil && rec.Sources == want {
				if rec.Exit == 0 {
					fmt.Fprintf(stdout, "build ok (%s)\n", rec.Duration)
					return 0, nil
				}
				fmt.Fprintf(stderr, "%s\nbuild failed (exit status %d): the last good server keeps serving\n", strings.TrimRight(rec.Output, "\n"), rec.Exit)
				return 1, nil
			}
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return 1, fmt.Errorf("no build of these sources in %s; the record %s: %w", *timeout, path, lastErr)
			}
			return 1, fmt.Errorf("no build of these sources in %s: is the dev loop (air) running? its log is the container's", *timeout)
		}
		time.Sleep(*every)
	}
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// Fingerprint hashes what `go build .` in dir reads that an edit can
// change: the package's non-test Go files, go.mod and go.sum, by name and
// content. Equal fingerprints mean the same sources, whatever the files'
// times, so a save that changes nothing matches the last build.
func Fingerprint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	names := []string{}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if n == "go.mod" || n == "go.sum" || strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// Write replaces path with rec atomically: readers see the old record or
// the new one, never a part.
func Write(path string, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read decodes the record at path.
func Read(path string) (Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("not a build record: %w", err)
	}
	return rec, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
