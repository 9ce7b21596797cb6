// Command waitserved runs before the unit tests in Tilt's unit-tests
// resource and returns once the app serves the project's current sources,
// so that the tests never run beside the app's build: at the lowest CPU
// priority they still slowed the build in the pod by about a quarter on
// two cores (docs/performance.md).
//
//	go run ./hack/waitserved && nice -n 19 go test -short ./...
//
// It waits only when the app's sources (the top level's non-test .go files,
// go.mod and go.sum) changed since its last run, for a build other than
// the one it saw then, on the app's dev event stream (as the dev page
// does: one connection, reconnecting 100 ms after it breaks, never
// polling). It gives up after -timeout (a build that failed never
// announces itself) and exits 0 whatever happens: the tests must run.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "waitserved: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("waitserved", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://localhost:8090/", "the app in dev mode (Tilt's port-forward)")
	timeout := fs.Duration("timeout", 30*time.Second, "the longest wait for a new build")
	stamp := fs.String("stamp", filepath.Join("tmp", ".waitserved"), "where the sources' digest and the build seen are kept between runs")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || *timeout <= 0 || !strings.HasSuffix(*url, "/") {
		return fmt.Errorf("usage: waitserved [-url http://host:port/] [-timeout 30s] [-stamp file]")
	}
	sum, err := sourcesDigest(".")
	if err != nil {
		return err
	}
	prevSum, prevBuild := readStamp(*stamp)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	build, err := devloop.BuildID(ctx, *url)
	switch {
	case err != nil:
		// No app to wait for (not deployed yet, or down): run the tests.
		fmt.Fprintf(stderr, "waitserved: %v; not waiting\n", err)
	case sum != prevSum && build == prevBuild:
		start := time.Now()
		if build, err = devloop.WaitForOtherBuild(ctx, *url, prevBuild, 100*time.Millisecond); err != nil {
			fmt.Fprintf(stderr, "waitserved: %v; running the tests anyway\n", err)
			build = prevBuild
		} else {
			fmt.Fprintf(stderr, "waitserved: the app serves build %s, %s later\n", build, time.Since(start).Round(time.Millisecond))
		}
	}
	return writeStamp(*stamp, sum, build)
}

// sourcesDigest hashes what the app is built from.
func sourcesDigest(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && (n == "go.mod" || n == "go.sum" || strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")) {
			names = append(names, n)
		}
	}
	if !slices.Contains(names, "go.mod") {
		return "", errors.New("run waitserved from the project root (no go.mod here)")
	}
	h := sha256.New()
	for _, n := range names { // ReadDir sorts them
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readStamp(path string) (sum, build string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	sum, build, _ = strings.Cut(strings.TrimSpace(string(b)), " ")
	return sum, build
}

func writeStamp(path, sum, build string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(sum+" "+build+"\n"), 0o644)
}
