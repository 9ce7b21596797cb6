package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

// served is a loop that serves a project copy over HTTP: the error modes
// break its source and listen to its dev event stream.
type served interface {
	loop
	project() (dir, url string)
}

func (a *airLoop) project() (string, string)  { return a.air.Dir, a.url }
func (l *tiltLoop) project() (string, string) { return l.dir, l.url }

// errorLoop times a broken save to the build-error event an open page
// receives, on a loop that serves (air or Tilt).
type errorLoop struct {
	served
	events <-chan devloop.Event
	cancel context.CancelFunc
	n      int
}

func errorMode(start func(context.Context, opts, io.Writer) (loop, error)) func(context.Context, opts, io.Writer) (loop, error) {
	return func(ctx context.Context, o opts, log io.Writer) (loop, error) {
		l, err := start(ctx, o, log)
		if err != nil {
			return nil, err
		}
		s, ok := l.(served)
		if !ok {
			l.stop()
			return nil, fmt.Errorf("%T serves no page to show an error in", l)
		}
		_, url := s.project()
		// The stream outlives each edit's context: it is the open page.
		ectx, cancel := context.WithCancel(context.Background())
		return &errorLoop{served: s, events: devloop.Events(ectx, url+"_dev/events"), cancel: cancel}, nil
	}
}

func (e *errorLoop) edit(ctx context.Context, q string) (sample, error) {
	dir, url := e.project()
	e.n++
	devloop.Drain(e.events)
	s := sample{start: time.Now()}
	good, err := devloop.Break(dir, e.n)
	if err != nil {
		return s, err
	}
	wctx, cancel := context.WithTimeout(ctx, perEditTimeout)
	defer cancel()
	ev, err := devloop.WaitEvent(wctx, e.events, "build-error")
	if err != nil {
		return s, err
	}
	if !strings.Contains(ev.Data, "broken edit") {
		return s, fmt.Errorf("the build-error event does not carry the broken line: %.300s", ev.Data)
	}
	s.end = ev.At
	// Fix it, with a new quote, and wait until the fix serves and the page
	// hears the build is good again: the next sample starts from a good build.
	if err := os.WriteFile(filepath.Join(dir, "quote.go"), good, 0o644); err != nil {
		return s, err
	}
	if err := devloop.SetQuote(dir, q); err != nil {
		return s, err
	}
	if _, err := waitFor(ctx, url, q); err != nil {
		return s, fmt.Errorf("after the fix: %w", err)
	}
	if _, err := devloop.WaitEvent(wctx, e.events, "build-ok"); err != nil {
		return s, fmt.Errorf("after the fix: %w", err)
	}
	return s, nil
}

func (e *errorLoop) stop() {
	e.cancel()
	e.served.stop()
}

// floorErrorLoop is the least a loop can do with a broken save: the
// incremental go build that fails on it.
type floorErrorLoop struct {
	*floorLoop
	n int
}

func startFloorError(ctx context.Context, o opts, log io.Writer) (loop, error) {
	l, err := startFloor(ctx, o, log)
	if err != nil {
		return nil, err
	}
	return &floorErrorLoop{floorLoop: l.(*floorLoop)}, nil
}

func (f *floorErrorLoop) edit(ctx context.Context, q string) (sample, error) {
	f.n++
	good, err := devloop.Break(f.dir, f.n)
	if err != nil {
		return sample{}, err
	}
	s := sample{start: time.Now()}
	err = f.build(ctx)
	s.end = time.Now()
	if err == nil {
		return s, errors.New("the broken edit built")
	}
	// Fixed and built, as the error loops do between samples.
	if err := os.WriteFile(filepath.Join(f.dir, "quote.go"), good, 0o644); err != nil {
		return s, err
	}
	if err := devloop.SetQuote(f.dir, q); err != nil {
		return s, err
	}
	if err := f.build(ctx); err != nil {
		return s, fmt.Errorf("build after the fix: %w", err)
	}
	return s, nil
}
