package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// buildCheckStep is the Tiltfile's live_update step that waits for the
// pod's build; withoutBuildCheck removes it from a scratch copy, so that
// tilt-source-nocheck measures what the step costs.
var buildCheckStep = regexp.MustCompile(`(?m)^\s*run\(\['buildrec', 'wait'[^\n]*\),\n`)

func withoutBuildCheck(dir string) error {
	p := filepath.Join(dir, "Tiltfile")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !buildCheckStep.Match(b) {
		return fmt.Errorf("%s has no `run(['buildrec', 'wait', ...])` step to take out", p)
	}
	return os.WriteFile(p, buildCheckStep.ReplaceAll(b, nil), 0o644)
}
