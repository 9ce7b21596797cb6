package checks

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

type dockerfile struct {
	path     string
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	raw      string
}

// parseDockerfile reads a Dockerfile with BuildKit's own parser, the one
// that will build it.
func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return dockerfile{path, stages, metaArgs, string(b)}
}

func (d dockerfile) metaArg(name string) (string, bool) {
	for _, a := range d.metaArgs {
		for _, kv := range a.Args {
			if kv.Key == name && kv.Value != nil {
				return *kv.Value, true
			}
		}
	}
	return "", false
}

var numericUser = regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`)

func TestDockerfiles(t *testing.T) {
	for _, path := range []string{"Dockerfile", "Dockerfile.dev"} {
		t.Run(path, func(t *testing.T) {
			d := parseDockerfile(t, path)
			if strings.HasPrefix(strings.TrimSpace(d.raw), "# syntax=") || strings.Contains(d.raw, "\n# syntax=") {
				t.Error("a # syntax= line makes BuildKit pull a frontend image")
			}
			// Base images come from build arguments, so an offline or
			// mirrored build can swap them, and none floats on latest.
			if v, ok := d.metaArg("GO_IMAGE"); !ok || v != "golang:1.26-bookworm" {
				t.Errorf("ARG GO_IMAGE = %q, want golang:1.26-bookworm", v)
			}
			names := map[string]bool{}
			for _, s := range d.stages {
				if !strings.HasPrefix(s.BaseName, "${") && !names[s.BaseName] && s.BaseName != "scratch" {
					t.Errorf("stage %q: FROM %s is not overridable by a build argument", s.Name, s.BaseName)
				}
				if strings.HasSuffix(s.BaseName, ":latest") {
					t.Errorf("stage %q uses a latest tag", s.Name)
				}
				names[s.Name] = true
				for _, c := range s.Commands {
					switch c := c.(type) {
					case *instructions.EntrypointCommand:
						if c.PrependShell {
							t.Errorf("stage %q: ENTRYPOINT in shell form; want exec form [\"...\"]", s.Name)
						}
					case *instructions.CmdCommand:
						if c.PrependShell {
							t.Errorf("stage %q: CMD in shell form", s.Name)
						}
					}
				}
			}
			for _, a := range d.metaArgs {
				for _, kv := range a.Args {
					if kv.Value != nil && strings.HasSuffix(*kv.Value, ":latest") {
						t.Errorf("ARG %s defaults to a latest tag", kv.Key)
					}
				}
			}
			// Every image a user runs is non-root with a numeric USER,
			// which runAsNonRoot can verify.
			for _, s := range d.stages {
				if !isFinal(d, s) {
					continue
				}
				user := d.effectiveUser(s)
				var entry *instructions.EntrypointCommand
				for _, c := range s.Commands {
					if c, ok := c.(*instructions.EntrypointCommand); ok {
						entry = c
					}
				}
				if !numericUser.MatchString(user) || strings.HasPrefix(user, "0") {
					t.Errorf("stage %q: USER %q, want a numeric non-root uid", s.Name, user)
				}
				if entry == nil {
					t.Errorf("stage %q has no ENTRYPOINT", s.Name)
				}
			}
		})
	}
}

// effectiveUser is the last USER of a stage or, failing that, of the
// stage it builds on.
func (d dockerfile) effectiveUser(s instructions.Stage) string {
	for i := len(s.Commands) - 1; i >= 0; i-- {
		if u, ok := s.Commands[i].(*instructions.UserCommand); ok {
			return u.User
		}
	}
	for _, base := range d.stages {
		if base.Name == s.BaseName && base.Name != s.Name {
			return d.effectiveUser(base)
		}
	}
	return ""
}

// isFinal reports whether a stage is one that gets run: the last stage,
// or, in Dockerfile.dev, a named target the Tiltfile builds.
func isFinal(d dockerfile, s instructions.Stage) bool {
	if d.path == "Dockerfile.dev" {
		return slices.Contains([]string{"source", "binary", "source-debug", "binary-debug"}, s.Name)
	}
	return s.Name == d.stages[len(d.stages)-1].Name
}

func TestProductionDockerfile(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile")
	if v, ok := d.metaArg("RUNTIME_IMAGE"); !ok || (v != "scratch" && !strings.Contains(v, "distroless/static")) {
		t.Errorf("ARG RUNTIME_IMAGE = %q, want scratch or distroless static", v)
	}
	final := d.stages[len(d.stages)-1]
	if final.BaseName != "${RUNTIME_IMAGE}" {
		t.Errorf("final stage FROM %s, want ${RUNTIME_IMAGE}", final.BaseName)
	}
	var user, health string
	var entry []string
	var copied, exposed []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		case *instructions.HealthCheckCommand:
			health = strings.Join(c.Health.Test, " ")
		case *instructions.CopyCommand:
			copied = append(copied, c.DestPath)
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.RunCommand:
			t.Errorf("final stage runs %v: it has no shell", c.CmdLine)
		}
	}
	if user != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532", user)
	}
	if !slices.Equal(entry, []string{"/askeladden"}) {
		t.Errorf("ENTRYPOINT %v, want [\"/askeladden\"]", entry)
	}
	if health != "CMD /askeladden -healthcheck" {
		t.Errorf("HEALTHCHECK %q, want the binary's own -healthcheck (no shell, no curl)", health)
	}
	if !slices.Contains(exposed, "8090") {
		t.Errorf("EXPOSE %v, want 8090", exposed)
	}
	for _, want := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/", "/askeladden"} {
		if !slices.Contains(copied, want) {
			t.Errorf("final stage copies %v, want %s (CA certificates, passwd/group, the binary)", copied, want)
		}
	}

	build := d.stages[0]
	var caches []string
	var buildLine string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			// Mount flags are only evaluated on expansion; no build args
			// appear in them, so expand words as they are.
			if err := r.Expand(func(w string) (string, error) { return w, nil }); err != nil {
				t.Fatal(err)
			}
			for _, m := range instructions.GetMounts(r) {
				if m.Type == instructions.MountTypeCache {
					caches = append(caches, m.Target)
				}
			}
			if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
				buildLine = line
			}
		}
	}
	for _, want := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !slices.Contains(caches, want) {
			t.Errorf("no BuildKit cache mount for %s (have %v)", want, caches)
		}
	}
	for _, want := range []string{"-trimpath", "-s -w", "-X main.version="} {
		if !strings.Contains(buildLine, want) {
			t.Errorf("go build lacks %s: %s", want, buildLine)
		}
	}
	if !strings.Contains(d.raw, "CGO_ENABLED=0") {
		t.Error("the build must be static: CGO_ENABLED=0")
	}
}

// TestProductionDockerfileCrossCompiles: `docker buildx build --platform
// linux/amd64,linux/arm64` must need no emulator, so every command runs on
// the builder's platform and Go cross-compiles for the target's.
func TestProductionDockerfileCrossCompiles(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile")
	for i, s := range d.stages {
		runs := slices.ContainsFunc(s.Commands, func(c instructions.Command) bool {
			_, ok := c.(*instructions.RunCommand)
			return ok
		})
		final := i == len(d.stages)-1
		switch {
		case final && s.Platform != "":
			t.Errorf("final stage FROM --platform=%s: it must be the target's platform", s.Platform)
		case runs && s.Platform != "$BUILDPLATFORM":
			t.Errorf("stage %q runs commands on platform %q: want FROM --platform=$BUILDPLATFORM, or a multi-platform build emulates it", s.Name, s.Platform)
		}
	}
	build := d.stages[0]
	declared := map[string]bool{}
	var buildLine string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				declared[kv.Key] = true
			}
		case *instructions.RunCommand:
			if line := strings.Join(c.CmdLine, " "); strings.Contains(line, "go build") {
				buildLine = line
				for _, arg := range []string{"TARGETOS", "TARGETARCH"} {
					if !declared[arg] {
						t.Errorf("ARG %s is not declared in the build stage before go build: BuildKit sets it only for stages that declare it", arg)
					}
				}
			}
		}
	}
	for _, want := range []string{"GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}"} {
		if !strings.Contains(buildLine, want) {
			t.Errorf("go build does not cross-compile: %q lacks %s", buildLine, want)
		}
	}
}
