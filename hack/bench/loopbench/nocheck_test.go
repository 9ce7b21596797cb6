package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tilt-source-nocheck mode edits the project's real Tiltfile: this
// keeps its pattern in step with the Tiltfile's build-check step.
func TestWithoutBuildCheck(t *testing.T) {
	real, err := os.ReadFile(filepath.Join("..", "..", "..", "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "Tiltfile")
	if err := os.WriteFile(p, real, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := withoutBuildCheck(dir); err != nil {
		t.Fatalf("the Tiltfile's build-check step was not found: %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "'buildrec', 'wait'") {
		t.Error("the build-check step is still there")
	}
	// Only that line went.
	if removed := strings.Count(string(real), "\n") - strings.Count(string(got), "\n"); removed != 1 {
		t.Errorf("%d lines removed, want 1", removed)
	}
	if err := withoutBuildCheck(dir); err == nil {
		t.Error("a Tiltfile without the step: no error")
	}
}
