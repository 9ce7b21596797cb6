package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// config is everything the process can be told from outside. Each field has
// a flag and an environment variable; the flag wins so that a one-off
// `-port 9000` beats whatever the shell exported.
type config struct {
	port            int
	logFormat       string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	dev             bool
	buildStatus     string
	healthcheck     bool
	// The HTTP server's own limits. They are not flags: nothing in
	// production needs to change them, but tests shorten them rather than
	// wait out the real ones.
	http httpLimits
}

// httpLimits bound what a slow or greedy client can hold on to.
type httpLimits struct {
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	maxHeaderBytes                                            int
}

// defaultHTTPLimits cut off a client that sends headers slowly after 5 s,
// a whole request after 15 s, a response after 30 s, an idle keep-alive
// connection after 60 s, and headers beyond 16 KiB (431).
var defaultHTTPLimits = httpLimits{
	readHeaderTimeout: 5 * time.Second,
	readTimeout:       15 * time.Second,
	writeTimeout:      30 * time.Second,
	idleTimeout:       60 * time.Second,
	maxHeaderBytes:    16 << 10,
}

// usageError marks bad input from the command line or environment; main
// turns it into exit code 2, the convention for usage errors.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errHelp means -h was asked for and usage was printed: not a failure.
var errHelp = errors.New("help requested")

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// option ties one setting to its flag, its environment variable and a parser
// whose error message names the accepted form.
type option struct {
	flag, env, def, usage string
	set                   func(string) error
	isBool                bool
}

func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	cfg := config{http: defaultHTTPLimits}
	opts := []option{
		{"port", "PORT", "8090", "TCP port to listen on (0 picks a free one)", func(s string) error {
			p, err := strconv.Atoi(s)
			if err != nil || p < 0 || p > 65535 {
				return errors.New("want an integer from 0 to 65535")
			}
			cfg.port = p
			return nil
		}, false},
		{"log-format", "LOG_FORMAT", "text", "log format: text or json", func(s string) error {
			if s != "text" && s != "json" {
				return errors.New("want text or json")
			}
			cfg.logFormat = s
			return nil
		}, false},
		{"log-level", "LOG_LEVEL", "info", "log level: debug, info, warn or error", func(s string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(s)); err != nil {
				return errors.New("want debug, info, warn or error")
			}
			cfg.logLevel = l
			return nil
		}, false},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "10s", "how long in-flight requests may take to finish after the drain", durationSetter(&cfg.shutdownTimeout), false},
		{"drain-delay", "DRAIN_DELAY", "0s", "how long to keep serving, not ready, after a stop signal", durationSetter(&cfg.drainDelay), false},
		{"dev", "ASKELADDEN_DEV", "false", "dev mode: the HTML page reloads itself when a new build serves", boolSetter(&cfg.dev), true},
		{"build-status", "ASKELADDEN_BUILD_STATUS", "tmp/build-status.json", "dev mode: the build-status record the dev loop writes, shown in the page when a build fails", func(s string) error {
			if strings.TrimSpace(s) == "" {
				return errors.New("want a file path")
			}
			cfg.buildStatus = s
			return nil
		}, false},
	}

	fs := flag.NewFlagSet(progName(args), flag.ContinueOnError)
	// flag prints its own errors and usage on failure; we want one line.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, o := range opts {
		// Environment first, so a bad variable is reported even when a flag
		// would have overridden it: a broken environment should not hide.
		v := o.def
		if e := getenv(o.env); e != "" {
			v = e
		}
		if err := o.set(v); err != nil {
			return cfg, &usageError{fmt.Sprintf("invalid %s %q: %v", o.env, v, err)}
		}
		usage := fmt.Sprintf("%s (env %s, default %s)", o.usage, o.env, o.def)
		if o.isBool {
			fs.BoolFunc(o.flag, usage, o.set)
		} else {
			fs.Func(o.flag, usage, o.set)
		}
	}
	fs.BoolFunc("healthcheck", "GET /healthz on localhost:PORT and exit 0 if it answers 200, 1 otherwise", boolSetter(&cfg.healthcheck))

	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "Usage: %s [flags]\n\nServes one quote over HTTP. Every flag falls back to its environment variable.\n\nFlags:\n", fs.Name())
			fs.PrintDefaults()
			return cfg, errHelp
		}
		return cfg, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return cfg, &usageError{fmt.Sprintf("unexpected argument %q: this command takes flags only (see -h)", fs.Arg(0))}
	}
	return cfg, nil
}

func durationSetter(dst *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return errors.New("want a non-negative Go duration such as 500ms or 10s")
		}
		*dst = d
		return nil
	}
}

func boolSetter(dst *bool) func(string) error {
	return func(s string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("want 1, 0, true or false")
		}
		*dst = b
		return nil
	}
}

func progName(args []string) string {
	if len(args) == 0 || args[0] == "" {
		return "askeladden"
	}
	name := args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
