package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
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
	// EditToReady is how long after the newest source edit this process
	// became ready: the deploy latency of the inner loop. Set only when the
	// dev loop says when the edit happened (ASKELADDEN_EDIT_TIME).
	EditToReady string `json:"edit_to_ready,omitempty"`
}

func readBuild(started time.Time, getenv func(string) string) buildInfo {
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
func binaryID() string {
	exe, err := os.Executable()
	if err != nil {
		return "start-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if f, err := elf.Open(exe); err == nil {
		defer f.Close()
		if s := f.Section(".note.go.buildid"); s != nil {
			if data, err := s.Data(); err == nil && len(data) > 16 {
				sum := sha256.Sum256(data[16:])
				return hex.EncodeToString(sum[:6])
			}
		}
	}
	// Not ELF (a laptop on macOS): hash the file itself.
	f, err := os.Open(exe)
	if err != nil {
		return "start-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "start-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
