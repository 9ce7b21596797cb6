// Command waitserved runs before the unit tests in Tilt's unit-tests
// resource and returns once the app serves the project's current sources,
// so that the tests never run beside the app's build: at the lowest CPU
// priority they still slowed the build in the pod by about a quarter on
// two cores (docs/performance.md).
//
//	go run ./hack/waitserved; nice -n 19 go test -short ./...
//
// It waits only when the app's sources (the top level's non-test .go files,
// go.mod and go.sum) changed since its last run. The app's /version says
// which edit the serving build was made from (its start less its
// edit-to-ready time; Tilt's sync keeps the edit's modification time, to
// the second at least); until that is the newest source's, it waits on the
// app's dev event stream for the next build, as the dev page does: one
// connection, reconnecting 100 ms after it breaks, never polling. It gives
// up after -timeout (a build that failed never comes) and exits 0 whatever
// the app does: the tests must run.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
	stamp := fs.String("stamp", filepath.Join("tmp", ".waitserved"), "where the sources' digest is kept between runs")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || *timeout <= 0 || !strings.HasSuffix(*url, "/") {
		return fmt.Errorf("usage: waitserved [-url http://host:port/] [-timeout 30s] [-stamp file]")
	}
	sum, newest, err := sources(".")
	if err != nil {
		return err
	}
	prev, _ := os.ReadFile(*stamp)
	if err := os.MkdirAll(filepath.Dir(*stamp), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*stamp, []byte(sum+"\n"), 0o644); err != nil {
		return err
	}
	prevSum := strings.TrimSpace(string(prev))
	if sum == prevSum || prevSum == "" {
		return nil // no edit to the app since the last run, or the first run
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	for {
		v, err := version(ctx, *url)
		if err != nil {
			// No app to wait for (not deployed yet, or down): run the tests.
			fmt.Fprintf(stderr, "waitserved: %v; not waiting\n", err)
			return nil
		}
		// Tilt's sync keeps an edit's modification time (to the second,
		// at least), and the app reports the edit it was built from: its
		// start less its edit-to-ready time.
		if !v.edit.IsZero() && !v.edit.Before(newest.Truncate(time.Second).Add(-time.Millisecond)) {
			if time.Since(start) > 50*time.Millisecond {
				fmt.Fprintf(stderr, "waitserved: the app serves build %s, %s later\n", v.id, time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if _, err := devloop.WaitForOtherBuild(ctx, *url, v.id, 100*time.Millisecond); err != nil {
			fmt.Fprintf(stderr, "waitserved: %v; running the tests anyway\n", err)
			return nil
		}
	}
}

type served struct {
	id   string
	edit time.Time // zero when the app does not say
}

// version asks the app which build it serves and which edit that is.
func version(ctx context.Context, base string) (served, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"version", nil)
	if err != nil {
		return served{}, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return served{}, err
	}
	defer resp.Body.Close()
	var v struct {
		BuildID     string    `json:"build_id"`
		Started     time.Time `json:"started"`
		EditToReady string    `json:"edit_to_ready"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return served{}, fmt.Errorf("%sversion: not the app's build info (%s): %w", base, resp.Status, err)
	}
	if v.BuildID == "" {
		return served{}, fmt.Errorf("%sversion: no build_id (%s)", base, resp.Status)
	}
	out := served{id: v.BuildID}
	if d, err := time.ParseDuration(v.EditToReady); err == nil {
		out.edit = v.Started.Add(-d)
	}
	return out, nil
}

// sources hashes what the app is built from (the top level's non-test
// .go files, go.mod and go.sum), and finds the newest edit among them.
func sources(dir string) (string, time.Time, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", time.Time{}, err
	}
	h := sha256.New()
	var newest time.Time
	found := false
	for _, e := range entries { // sorted by name
		n := e.Name()
		app := n == "go.mod" || n == "go.sum" || strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")
		if !e.Type().IsRegular() || !app {
			continue
		}
		found = found || n == "go.mod"
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", time.Time{}, err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
		if info, err := e.Info(); err == nil && n != "go.sum" && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	if !found {
		return "", time.Time{}, errors.New("run waitserved from the project root (no go.mod here)")
	}
	return hex.EncodeToString(h.Sum(nil)), newest, nil
}
