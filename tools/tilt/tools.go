//go:build tools

// Package tools pins the Tilt release the project's inner loop uses.
//
// Do not `go build` or `go install` tilt from here: the module from the proxy
// carries no compiled web dashboard, so that binary cannot serve its UI.
// hack/build-tilt.sh builds the dashboard and the binary from these pins.
//
// go.sum: the checksum database has no entry for
// github.com/tilt-dev/starlark-lsp (it answers 404), so its two lines were
// copied from tilt's own go.sum before `go mod tidy`. With them in go.sum, go
// checks the download against them and never asks the database, so no
// GONOSUMDB or GOFLAGS is needed. When moving to a new tilt, copy that
// module's lines from the new release's go.sum the same way, and only those.
package tools

import _ "github.com/tilt-dev/tilt/cmd/tilt"
