package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

// debugLoop is tilt-source with a debugger client attached through the
// port-forward for the whole run, as an editor's would be: each live
// update stops the new process at its entry until the client continues
// it, and the client continues at once.
type debugLoop struct {
	*tiltLoop
	dlv      *devloop.Delve
	detach   context.CancelFunc
	detached <-chan error
}

func tiltDebugMode(ctx context.Context, o opts, log io.Writer) (loop, error) {
	l, err := tiltMode("--no-tests", "--debug")(ctx, o, log)
	if err != nil {
		return nil, err
	}
	tl := l.(*tiltLoop)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d, err := devloop.DialDelve(dctx, "127.0.0.1:2345")
	if err != nil {
		tl.stop()
		return nil, err
	}
	if _, err := d.Halt(); err != nil {
		_ = d.Disconnect(false)
		tl.stop()
		return nil, fmt.Errorf("halt through the debugger: %w", err)
	}
	// The client outlives each edit's context, as an editor's does.
	kctx, kcancel := context.WithCancel(context.Background())
	return &debugLoop{tiltLoop: tl, dlv: d, detach: kcancel, detached: d.KeepRunning(kctx)}, nil
}

func (l *debugLoop) stop() {
	l.detach()
	if err := <-l.detached; err != nil {
		fmt.Fprintf(l.log, "loopbench: debugger client: %v\n", err)
	}
	_ = l.dlv.Disconnect(false)
	l.tiltLoop.stop()
}
