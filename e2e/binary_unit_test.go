//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// The detector against two histories Tilt recorded on this machine: one
// where compile waited for the tests (allow_parallel off), one where it
// did not but happened to start just after a test run ended.
func TestCompilesThatWaited(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05.000", "2026-12-01 "+s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run := func(a, b string) buildRecord { return buildRecord{StartTime: at(a), FinishTime: at(b)} }

	waited := compilesThatWaited(
		[]time.Time{at("05:02:49.523"), at("05:02:52.491")},
		[]buildRecord{run("05:02:53.880", "05:02:54.816"), run("05:02:50.416", "05:02:51.308")},
		[]buildRecord{run("05:02:51.309", "05:02:53.878"), run("05:02:49.227", "05:02:50.415"), run("05:02:54.818", "05:02:55.029")})
	if len(waited) != 2 {
		t.Errorf("allow_parallel off: found %d waiting compiles, want 2: %q", len(waited), waited)
	}

	fine := compilesThatWaited(
		[]time.Time{at("06:21:14.099"), at("06:21:16.610")},
		[]buildRecord{run("06:21:16.815", "06:21:17.779"), run("06:21:14.304", "06:21:15.506")},
		[]buildRecord{run("06:21:13.802", "06:21:16.803"), run("06:21:12.126", "06:21:12.960"), run("06:21:16.805", "06:21:17.965")})
	if len(fine) != 0 {
		t.Errorf("a compile 205 ms after its save counted as waiting: %q", fine)
	}
}
