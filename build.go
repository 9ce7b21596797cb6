package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildInfo describes the running binary for /version and for the dev page,
// whose reload is keyed on BuildID.
type buildInfo struct {
	Version   string    `json:"version"`
	Revision  string    `json:"revision"`
	Dirty     bool      `json:"dirty"`
	GoVersion string    `json:"go"`
	Started   time.Time `json:"started"`
	BuildID   string    `json:"build_id"`
	// EditToReady is how long after the last source edit this process
	// started serving: the deploy latency of the inner loop. Dev mode only.
	EditToReady string `json:"edit_to_ready,omitempty"`
}

func readBuild(started time.Time) buildInfo {
	b := buildInfo{Version: version, Revision: "unknown", GoVersion: runtime.Version(), Started: started.UTC(), BuildID: binaryID()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Dirty = s.Value == "true"
			}
		}
	}
	return b
}

// binaryID identifies this exact build. The Go linker stores a build ID
// whose second half hashes the binary's content, so any change to the code
// changes it; reading it costs one ELF note, not a hash of the whole file.
// Where there is no such note (a laptop on macOS) the file itself is
// hashed; where the executable cannot be read at all, the start time
// stands in, which still changes with every restart.
func binaryID() string {
	if id, err := executableID(); err == nil {
		return id
	}
	return "start-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func executableID() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if f, err := elf.Open(exe); err == nil {
		defer f.Close()
		if s := f.Section(".note.go.buildid"); s != nil {
			if data, err := s.Data(); err == nil && len(data) > 16 {
				sum := sha256.Sum256(data[16:])
				return hex.EncodeToString(sum[:6]), nil
			}
		}
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:6]), nil
}

// editTime is when the code this process runs was last edited, for the dev
// page's deploy latency. The dev loop may say (devrun passes the host's
// edit time as ASKELADDEN_EDIT_TIME); otherwise the newest Go source in the
// working directory tells, which holds under air and in the source-sync
// pod, where Tilt's sync keeps the edit's modification time.
func editTime(getenv func(string) string, dir string) (time.Time, bool, error) {
	if v := getenv("ASKELADDEN_EDIT_TIME"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, false, &usageError{fmt.Sprintf("invalid ASKELADDEN_EDIT_TIME %q: want an RFC 3339 time such as 2026-01-02T15:04:05.123Z", v)}
		}
		return t, true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false, nil
	}
	var newest time.Time
	for _, e := range entries {
		name := e.Name()
		source := strings.HasSuffix(name, ".go") || name == "go.mod"
		if !e.Type().IsRegular() || !source {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest, !newest.IsZero(), nil
}

// deployLatency is the time from the last edit to now, if that edit is
// recent enough to be the one this process was built for: an old checkout's
// file times say nothing about the loop.
func deployLatency(edit time.Time, now time.Time) (time.Duration, bool) {
	d := now.Sub(edit)
	return d, d > 0 && d < 10*time.Minute
}
