package main

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLineLogStampsAndSplits(t *testing.T) {
	base := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	now := base
	var tee strings.Builder
	l := newLineLog(&tee)
	l.now = func() time.Time { return now }
	// A line may arrive in pieces; it is stamped when it is complete.
	_, _ = io.WriteString(l, "\x1b[34maskeladden │\x1b[0m 1 File Changed: [quote.go]\nunit-te")
	now = base.Add(40 * time.Millisecond)
	_, _ = io.WriteString(l, "sts │ Running cmd: nice -n 19 go test\nTilt started\n")
	want := []line{
		{T: base, Resource: "askeladden", Text: "1 File Changed: [quote.go]"},
		{T: base.Add(40 * time.Millisecond), Resource: "unit-tests", Text: "Running cmd: nice -n 19 go test"},
		{T: base.Add(40 * time.Millisecond), Text: "Tilt started"},
	}
	if got := l.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %+v\nwant    %+v", got, want)
	}
	if !strings.Contains(tee.String(), "Tilt started\n") {
		t.Errorf("output not passed on: %q", tee.String())
	}
}

func TestLineLogWaitFor(t *testing.T) {
	l := newLineLog(nil)
	since := time.Now()
	got := make(chan line, 1)
	go func() {
		ln, err := l.waitFor(context.Background(), since, func(ln line) bool { return strings.HasSuffix(ln.Text, "updated!") })
		if err == nil {
			got <- ln
		}
		close(got)
	}()
	_, _ = io.WriteString(l, "askeladden │ Will copy 1 file(s)\n")
	_, _ = io.WriteString(l, "askeladden │   → Container askeladden-x/askeladden updated!\n")
	select {
	case ln := <-got:
		if ln.Text != "→ Container askeladden-x/askeladden updated!" {
			t.Errorf("waitFor returned %+v", ln)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitFor did not return after a matching line")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.waitFor(ctx, time.Now().Add(time.Hour), func(line) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitFor for a line that never comes: %v", err)
	}
}

func TestParsePodLog(t *testing.T) {
	in := "2026-12-01T05:00:00.100000000Z \x1b[36mbuilding...\x1b[0m\n" +
		"2026-12-01T05:00:00.950000000Z running...\n" +
		"2026-12-01T05:00:00.970000000Z {\"time\":\"x\",\"level\":\"INFO\",\"msg\":\"serving\"}\n\n"
	got, err := parsePodLog(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Text != "building..." || got[1].T.Sub(got[0].T) != 850*time.Millisecond {
		t.Errorf("parsePodLog = %+v", got)
	}
	if _, err := parsePodLog(strings.NewReader("building...\n")); err == nil {
		t.Error("a line without a timestamp was accepted")
	}
}

func TestSamplePhases(t *testing.T) {
	start := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	tilt := []line{
		{T: at(-500), Resource: "askeladden", Text: "1 File Changed: [quote.go]"}, // the previous edit
		{T: at(205), Resource: "unit-tests", Text: "1 File Changed: [quote.go]"},
		{T: at(206), Resource: "askeladden", Text: "1 File Changed: [quote.go]"},
		{T: at(208), Resource: "unit-tests", Text: "Running cmd: go run ./hack/waitserved; nice -n 19 go test -short ./..."},
		{T: at(210), Resource: "askeladden", Text: "Will copy 1 file(s) to container: [askeladden-x/askeladden]"},
		{T: at(520), Resource: "askeladden", Text: "→ Container askeladden-x/askeladden updated!"},
		{T: at(1380), Resource: "unit-tests", Text: "waitserved: the app serves build 0123abcd, 1.1s later"},
		{T: at(1340), Resource: "askeladden", Text: "Reconnecting... Error port-forwarding askeladden (8090 -> 8090): error copying from local connection to remote stream"},
		{T: at(3000), Resource: "askeladden", Text: "→ Container askeladden-x/askeladden updated!"}, // after the response
	}
	pod := []line{
		{T: at(540), Text: "building..."},
		{T: at(1300), Text: "running..."},
		{T: at(1330), Text: `{"time":"2026-12-01T05:00:01.33Z","level":"INFO","msg":"serving","addr":":8090"}`},
	}
	got := samplePhases(start, at(1350), tilt, pod, time.Time{})
	want := phases{TiltSaw: 206, TestsStart: 1380, SyncStart: 210, SyncDone: 520, BuildStart: 540, BuildEnd: 1300, Serving: 1330, ForwardLost: 1340, Response: 1350}
	if got != want {
		t.Errorf("source strategy: %+v\nwant %+v", got, want)
	}

	binTilt := []line{
		{T: at(203), Resource: "compile", Text: "1 File Changed: [quote.go]"},
		{T: at(204), Resource: "compile", Text: "Running cmd: sh -c mkdir -p build && ..."},
		{T: at(420), Resource: "askeladden", Text: "Will copy 1 file(s) to container: [askeladden-y/askeladden]"}, // the edit-time stamp
		{T: at(500), Resource: "askeladden", Text: "→ Container askeladden-y/askeladden updated!"},
		{T: at(1400), Resource: "askeladden", Text: "1 File Changed: [build/askeladden]"},
		{T: at(1410), Resource: "askeladden", Text: "Will copy 2 file(s) to container: [askeladden-y/askeladden]"},
		{T: at(1700), Resource: "askeladden", Text: "→ Container askeladden-y/askeladden updated!"},
	}
	binPod := []line{
		{T: at(1720), Text: "devrun: new binary at /app/sync/askeladden, restarting"},
		{T: at(1760), Text: "time=2026-12-01T05:00:01.760Z level=INFO msg=serving addr=:8090"},
	}
	got = samplePhases(start, at(1790), binTilt, binPod, at(1150))
	want = phases{TiltSaw: 203, CompileStart: 204, CompileEnd: 1150, SyncStart: 1410, SyncDone: 1700, BuildEnd: 1720, Serving: 1760, Response: 1790}
	if got != want {
		t.Errorf("binary strategy: %+v\nwant %+v", got, want)
	}
	// A binary last written before this edit is not this edit's compile.
	if got := samplePhases(start, at(1790), binTilt, binPod, at(-10)); got.CompileEnd != 0 {
		t.Errorf("an old binary's time was taken as this compile's end: %+v", got)
	}
}
