// Command loadgen is the e2e suite's in-cluster client: it runs as a pod and
// sends a steady, bounded stream of GETs to a Service, so that a rolling
// update is measured the way in-cluster callers see it, through the
// Service's virtual IP, without load leaving the cluster's pod network.
//
//	loadgen -url http://10.202.0.10/ -workers 4 -max 3000 -interval 20ms -duration 75s
//
// It stops at -max requests per worker, after -duration, or on SIGTERM,
// whichever comes first, and prints one JSON line: how many requests it
// sent, how many failed, and the first failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result is what loadgen prints.
type Result struct {
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended"`
	Sent         int64     `json:"sent"`
	Failed       int64     `json:"failed"`
	FirstFailure string    `json:"first_failure,omitempty"`
}

type config struct {
	url      string
	workers  int
	max      int
	interval time.Duration
	duration time.Duration
	timeout  time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "", "the http:// URL to GET (required)")
	fs.IntVar(&c.workers, "workers", 4, "concurrent clients, 1 to 64")
	fs.IntVar(&c.max, "max", 3000, "requests per worker at most, 1 to 1000000")
	fs.DurationVar(&c.interval, "interval", 20*time.Millisecond, "pause between one worker's requests")
	fs.DurationVar(&c.duration, "duration", time.Minute, "stop after this long, at most 10m")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Second, "one request's deadline")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	u, err := url.Parse(c.url)
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.url == "" || err != nil || u.Scheme != "http" || u.Host == "":
		return c, fmt.Errorf("-url %q: want an http:// URL with a host", c.url)
	case c.workers < 1 || c.workers > 64:
		return c, fmt.Errorf("-workers %d: want 1 to 64", c.workers)
	case c.max < 1 || c.max > 1_000_000:
		return c, fmt.Errorf("-max %d: want 1 to 1000000", c.max)
	case c.duration <= 0 || c.duration > 10*time.Minute:
		return c, fmt.Errorf("-duration %s: want more than 0 and at most 10m (the load must be bounded)", c.duration)
	case c.interval < 0 || c.timeout <= 0:
		return c, fmt.Errorf("-interval %s -timeout %s: want a non-negative interval and a positive timeout", c.interval, c.timeout)
	}
	return c, nil
}

// load sends the requests and counts every one that is not a 200 with a
// complete body as failed.
func load(ctx context.Context, c config) Result {
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	client := &http.Client{
		Timeout:   c.timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: c.workers},
	}
	res := Result{Started: time.Now()}
	var sent, failed atomic.Int64
	var first sync.Once
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range c.max {
				if ctx.Err() != nil {
					return
				}
				sent.Add(1)
				at := time.Since(res.Started)
				if err := get(client, c.url); err != nil {
					failed.Add(1)
					first.Do(func() { res.FirstFailure = fmt.Sprintf("%s after the start: %v", at.Round(time.Millisecond), err) })
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(c.interval):
				}
			}
		}()
	}
	wg.Wait()
	res.Ended, res.Sent, res.Failed = time.Now(), sent.Load(), failed.Load()
	return res
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	if err := json.NewEncoder(stdout).Encode(load(ctx, c)); err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	return 0
}

func main() {
	// SIGTERM (the pod deleted) ends the load early, with the summary.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
