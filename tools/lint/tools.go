//go:build tools

// Package tools pins the linters hack/lint.sh builds and runs, in a module
// of their own so that none of their dependencies enter the service's
// go.mod: golangci-lint for Go, shfmt for the shell scripts.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
	_ "mvdan.cc/sh/v3/cmd/shfmt"
)
