// Command devrun is the restart mechanism of the "binary" dev strategy:
// Tilt compiles on the host and syncs the binary into the pod; devrun runs
// it, and when a new one lands, stops the old process gracefully (SIGTERM)
// and starts the new one. Linux only: it waits on inotify, not a poll. It
// lives in devimage/ because it runs only inside the dev image.
//
// It exists instead of Tilt's restart_process extension because Tilt fetches
// extensions from a git repository when the Tiltfile loads, which an offline
// machine or this CI cannot do, and because devrun drains the old server with
// SIGTERM and never writes over a running executable.
//
//	devrun -watch /app/sync/askeladden -initial /app/askeladden -run-dir /app/run -- -dev
//
// With -dlv it runs the app under one long-lived Delve instead, and a new
// binary restarts Delve's target (debug.go); -with starts a second command
// beside it, such as air building the binary devrun watches.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if err := run(os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "devrun: %v\n", err)
		os.Exit(1)
	}
}

// editStamp sits beside the watched binary; see start.
const editStamp = ".edit-time"

type supervisor struct {
	watch, initial, runDir string
	args                   []string
	grace                  time.Duration
	stdout, stderr         io.Writer
	child                  *exec.Cmd
	exited                 chan struct{}
	gen                    int
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	watch := fs.String("watch", "/app/sync/askeladden", "path where new binaries are synced")
	initial := fs.String("initial", "/app/askeladden", "binary to run until one is synced")
	runDir := fs.String("run-dir", "/app/run", "where each binary is copied before it runs")
	grace := fs.Duration("grace", 10*time.Second, "how long a stopping process may take before SIGKILL")
	dlv := fs.String("dlv", "", "debug mode: run the app under this Delve executable")
	dlvListen := fs.String("dlv-listen", "127.0.0.1:2345", "debug mode: where debugger clients connect")
	dlvBackend := fs.String("dlv-backend", "127.0.0.1:2346", "debug mode: where Delve itself listens")
	with := fs.String("with", "", "debug mode: a command to run beside the app (split on spaces), stopped with it")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *with != "" && *dlv == "" {
		return errors.New("-with needs -dlv")
	}
	s := &supervisor{watch: *watch, initial: *initial, runDir: *runDir, args: fs.Args(), grace: *grace, stdout: stdout, stderr: stderr}
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return err
	}
	// Watch the directory, not the file: a sync replaces the file, and a
	// watch on the old inode would go quiet.
	dir := filepath.Dir(s.watch)
	// In the source strategy's debug image air makes this directory only
	// when it first builds.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CLOSE_WRITE|syscall.IN_MOVED_TO); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	events := make(chan struct{}, 1)
	go readEvents(fd, filepath.Base(s.watch), events)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	if *dlv != "" {
		d := &debugger{dlv: *dlv, listen: *dlvListen, backend: *dlvBackend,
			bin: filepath.Join(s.runDir, "app"), args: s.args, stdout: stdout, stderr: stderr}
		var withCmd *exec.Cmd
		if f := strings.Fields(*with); len(f) > 0 {
			withCmd = exec.Command(f[0], f[1:]...)
		}
		return s.runDebug(d, events, signals, withCmd)
	}

	first := s.initial
	if _, err := os.Stat(s.watch); err == nil {
		first = s.watch // a restarted container keeps its last synced binary
	}
	if err := s.start(first); err != nil {
		return err
	}
	for {
		select {
		case sig := <-signals:
			// The pod is stopping: pass the signal on and leave with the
			// child, so Kubernetes' grace period covers its drain.
			s.stop(sig)
			return nil
		case <-events:
			fmt.Fprintf(s.stderr, "devrun: new binary at %s, restarting\n", s.watch)
			s.stop(syscall.SIGTERM)
			if err := s.start(s.watch); err != nil {
				// Keep waiting: the next sync may bring a good binary.
				fmt.Fprintf(s.stderr, "devrun: %v\n", err)
			}
		case <-s.exited:
			// The app died on its own; a new sync will start it again.
			fmt.Fprintf(s.stderr, "devrun: %s exited: %v; waiting for the next sync\n", s.child.Path, s.child.ProcessState)
			s.exited = nil
		}
	}
}

// start copies bin to a path of its own and runs that copy, so a later sync
// never writes to a running executable ("text file busy").
func (s *supervisor) start(bin string) error {
	s.gen++
	dst := filepath.Join(s.runDir, "app-"+strconv.Itoa(s.gen))
	if err := copyFile(bin, dst); err != nil {
		return fmt.Errorf("copy %s: %w", bin, err)
	}
	env := os.Environ()
	if st, err := os.Stat(filepath.Join(filepath.Dir(s.watch), editStamp)); err == nil {
		// The host's compile step gives this file the modification time of
		// the newest source edit; the app reports its deploy latency from
		// it. Its name sorts before the binary's, so a sync brings it first.
		env = append(env, "ASKELADDEN_EDIT_TIME="+st.ModTime().UTC().Format(time.RFC3339Nano))
	}
	cmd := exec.Command(dst, s.args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = s.stdout, s.stderr, env
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.child, s.exited = cmd, exited
	// Older copies are not running any more; keep the directory small.
	if s.gen > 1 {
		os.Remove(filepath.Join(s.runDir, "app-"+strconv.Itoa(s.gen-1)))
	}
	return nil
}

func (s *supervisor) stop(sig os.Signal) {
	if s.child == nil || s.exited == nil {
		return
	}
	_ = s.child.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(s.grace):
		_ = s.child.Process.Kill()
		<-s.exited
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// readEvents forwards inotify events about name, coalesced: a burst of
// writes becomes one restart.
func readEvents(fd int, name string, out chan<- struct{}) {
	buf := make([]byte, 64*(syscall.SizeofInotifyEvent+syscall.NAME_MAX+1))
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			fmt.Fprintf(os.Stderr, "devrun: inotify read: %v\n", err)
			os.Exit(1)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if cstring(nameBytes) == name {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
