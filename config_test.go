package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantMsg string
	}{
		{"bad PORT", map[string]string{"PORT": "eighty"}, nil, `invalid PORT "eighty": want an integer from 0 to 65535`},
		{"PORT out of range", map[string]string{"PORT": "70000"}, nil, `invalid PORT "70000"`},
		{"bad LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}, nil, `invalid LOG_FORMAT "xml": want text or json`},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, nil, `invalid LOG_LEVEL "loud": want debug, info, warn or error`},
		{"bad SHUTDOWN_TIMEOUT", map[string]string{"SHUTDOWN_TIMEOUT": "10"}, nil, `invalid SHUTDOWN_TIMEOUT "10": want a non-negative Go duration`},
		{"negative DRAIN_DELAY", map[string]string{"DRAIN_DELAY": "-1s"}, nil, `invalid DRAIN_DELAY "-1s"`},
		{"bad ASKELADDEN_DEV", map[string]string{"ASKELADDEN_DEV": "maybe"}, nil, `invalid ASKELADDEN_DEV "maybe": want 1, 0, true or false`},
		{"bad flag value", nil, []string{"-port", "x"}, `invalid value "x" for flag -port: want an integer`},
		{"unknown flag", nil, []string{"-verbose"}, "flag provided but not defined: -verbose"},
		{"stray argument", nil, []string{"serve"}, `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"askeladden"}, tt.args...), envFunc(tt.env), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.wantMsg)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code = %d, want 2", exitCode(err))
			}
		})
	}

	t.Run("flag overrides env", func(t *testing.T) {
		cfg, err := parseConfig([]string{"x", "-port", "9000", "-dev"}, envFunc(map[string]string{"PORT": "8000"}), io.Discard)
		if err != nil || cfg.port != 9000 || !cfg.dev || cfg.shutdownTimeout != 10*time.Second || cfg.logLevel != slog.LevelInfo {
			t.Errorf("cfg = %+v, err %v", cfg, err)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"askeladden", "-h"}, envFunc(nil), &out, &out); err != nil {
			t.Fatalf("-h returned %v, want nil", err)
		}
		for _, want := range []string{"Usage:", "-port", "PORT", "-drain-delay", "DRAIN_DELAY", "-healthcheck"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("usage lacks %q:\n%s", want, out.String())
			}
		}
	})
}

// TestDeploymentMatchesConfig holds k8s/ to the app it deploys: the
// container's environment must parse, its port must be the app's default,
// its probes must hit routes the server has, and the grace period must
// cover the whole drain. The manifests' own checks (strict decoding,
// security, labels) are in checks/.
func TestDeploymentMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("k8s", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct{ Path string } `yaml:"httpGet"`
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Grace      int64 `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Ports []struct {
							Name          string
							ContainerPort int `yaml:"containerPort"`
						}
						Env       []struct{ Name, Value string }
						Lifecycle struct {
							PreStop struct {
								Sleep struct{ Seconds int64 }
							} `yaml:"preStop"`
						}
						Startup   *probe `yaml:"startupProbe"`
						Readiness *probe `yaml:"readinessProbe"`
						Liveness  *probe `yaml:"livenessProbe"`
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("k8s/deployment.yaml: %v", err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	cfg, err := parseConfig([]string{"askeladden"}, envFunc(env), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("the Deployment's env does not parse: %v", err)
	}
	if cfg.drainDelay <= 0 {
		t.Error("DRAIN_DELAY should be set so the server keeps serving while it is being taken out")
	}
	need := c.Lifecycle.PreStop.Sleep.Seconds + int64((cfg.drainDelay + cfg.shutdownTimeout).Seconds())
	if d.Spec.Template.Spec.Grace <= need {
		t.Errorf("terminationGracePeriodSeconds %d must exceed preStop + DRAIN_DELAY + SHUTDOWN_TIMEOUT = %ds", d.Spec.Template.Spec.Grace, need)
	}

	defaults, err := parseConfig([]string{"askeladden"}, envFunc(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	httpPort := 0
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if httpPort != defaults.port || httpPort != cfg.port {
		t.Errorf("containerPort http = %d; the app listens on %d by default and %d with this env", httpPort, defaults.port, cfg.port)
	}

	h, _, _ := testServer(t, false)
	for name, p := range map[string]*probe{"startup": c.Startup, "readiness": c.Readiness, "liveness": c.Liveness} {
		if p == nil || p.HTTPGet.Path == "" {
			t.Errorf("%s probe has no httpGet path", name)
			continue
		}
		if rec := do(h, "GET", p.HTTPGet.Path); rec.Code != 200 {
			t.Errorf("%s probe path %s answers %d", name, p.HTTPGet.Path, rec.Code)
		}
	}
}
