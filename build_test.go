package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestReadBuildDefaults(t *testing.T) {
	b := readBuild(time.Now())
	if b.Version != "dev" || b.BuildID == "" || !strings.HasPrefix(b.GoVersion, "go") {
		t.Errorf("readBuild() = %+v, want version dev, a build ID and the Go version", b)
	}
	if again := binaryID(); again != b.BuildID {
		t.Errorf("build ID not stable for one binary: %q then %q", b.BuildID, again)
	}
}

func TestEditTime(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for i, name := range []string{"a.go", "go.mod", "README.md"} {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := editTime(envFunc(nil), dir)
	if err != nil || !ok || !got.Equal(old.Add(time.Minute)) {
		t.Errorf("editTime = %v %v %v, want go.mod's time (README.md is not code)", got, ok, err)
	}
	want := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	got, ok, err = editTime(envFunc(map[string]string{"ASKELADDEN_EDIT_TIME": want.Format(time.RFC3339Nano)}), dir)
	if err != nil || !ok || !got.Equal(want) {
		t.Errorf("from ASKELADDEN_EDIT_TIME: %v %v %v", got, ok, err)
	}
	if _, _, err := editTime(envFunc(map[string]string{"ASKELADDEN_EDIT_TIME": "yesterday"}), dir); err == nil || exitCode(err) != 2 {
		t.Errorf("a bad ASKELADDEN_EDIT_TIME: %v, want a usage error", err)
	}
	if d, ok := deployLatency(time.Now().Add(-1500*time.Millisecond), time.Now()); !ok || d < time.Second {
		t.Errorf("deployLatency of a recent edit = %v %v", d, ok)
	}
	if _, ok := deployLatency(old, time.Now()); ok {
		t.Error("an hour-old edit is not this build's deploy latency")
	}
}
