package checks

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ornlu-is/askeladden/hack/devloop"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// tiltBinary finds the Tilt that hack/build-tilt.sh builds, or one on PATH.
func tiltBinary(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("ASKELADDEN_TILT")}
	cache := os.Getenv("ASKELADDEN_CACHE")
	if cache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "askeladden")
		}
	}
	candidates = append(candidates, filepath.Join(cache, "bin", "tilt"))
	if p, err := exec.LookPath("tilt"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	devloop.NeedTool(t, false, "Tilt", "build it with `bash hack/build-tilt.sh` (Tilt v0.37.6 from the Go module proxy, into ~/.cache/askeladden/bin), or put tilt on PATH")
	return ""
}

// Just the parts of `tilt alpha tiltfile-result` this test reads; the
// command's JSON is documented as unstable, so the test says exactly what
// it depends on.
type tiltResult struct {
	Manifests []struct {
		Name                 string
		Labels               map[string]string
		ResourceDependencies []string
		ImageTargets         []struct {
			DockerImageName string
			LiveUpdateSpec  struct {
				StopPaths []string `json:"stopPaths"`
				Syncs     []struct {
					LocalPath     string `json:"localPath"`
					ContainerPath string `json:"containerPath"`
				} `json:"syncs"`
				Execs []struct {
					Args []string `json:"args"`
				} `json:"execs"`
			}
			BuildDetails struct {
				Target             string `json:"target"`
				DockerfileContents string `json:"dockerfileContents"`
			}
		}
		DeployTarget struct {
			YAML                    string `json:"yaml"`
			PortForwardTemplateSpec *struct {
				Forwards []struct {
					LocalPort     int    `json:"localPort"`
					ContainerPort int    `json:"containerPort"`
					Name          string `json:"name"`
				} `json:"forwards"`
			} `json:"portForwardTemplateSpec"`
			Links []struct {
				URL  struct{ Scheme, Host, Path string }
				Name string
			}
			UpdateCmdSpec *struct {
				Args []string `json:"args"`
			}
			AllowParallel bool
			Deps          []string
		}
	}
	DefaultRegistry *struct {
		Host string `json:"host"`
	}
}

// microk8sKubeconfig points Tilt at a cluster named as microk8s names its
// own, without needing one to exist: evaluation never connects.
func microk8sKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: microk8s-cluster
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: admin
  user: {token: unused}
contexts:
- name: microk8s
  context: {cluster: microk8s-cluster, user: admin}
current-context: microk8s
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tiltfileResult evaluates a Tiltfile with the real Tilt engine and returns
// its exit code and, on success, the decoded result.
func tiltfileResult(t *testing.T, tiltfile string, args ...string) (int, tiltResult, string) {
	t.Helper()
	cmdArgs := []string{"alpha", "tiltfile-result", "-f", tiltfile}
	if len(args) > 0 {
		cmdArgs = append(append(cmdArgs, "--"), args...)
	}
	cmd := exec.Command(tiltBinary(t), cmdArgs...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+microk8sKubeconfig(t), "TILT_DISABLE_ANALYTICS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), tiltResult{}, stderr.String()
	}
	if err != nil {
		t.Fatalf("tilt: %v", err)
	}
	var res tiltResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decoding tiltfile-result: %v", err)
	}
	return 0, res, stderr.String()
}

func manifestNames(r tiltResult) []string {
	var names []string
	for _, m := range r.Manifests {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

func TestTiltfileDefault(t *testing.T) {
	code, res, stderr := tiltfileResult(t, "Tiltfile")
	if code != 0 {
		t.Fatalf("tiltfile-result exit %d:\n%s", code, stderr)
	}
	if got := manifestNames(res); !slices.Equal(got, []string{"askeladden", "namespace", "unit-tests"}) {
		t.Errorf("resources = %v, want askeladden, namespace, unit-tests", got)
	}
	if res.DefaultRegistry == nil || res.DefaultRegistry.Host != "localhost:32000" {
		t.Errorf("on a microk8s context the fallback registry should be localhost:32000, got %+v", res.DefaultRegistry)
	}
	for _, m := range res.Manifests {
		switch m.Name {
		case "askeladden":
			if m.Labels["app"] == "" || !slices.Contains(m.ResourceDependencies, "namespace") || slices.Contains(m.ResourceDependencies, "unit-tests") {
				t.Errorf("askeladden labels %v deps %v: want label app, after namespace, never waiting on the tests", m.Labels, m.ResourceDependencies)
			}
			if len(m.ImageTargets) != 1 {
				t.Fatalf("askeladden has %d image targets, want 1", len(m.ImageTargets))
			}
			it := m.ImageTargets[0]
			if !strings.HasPrefix(it.DockerImageName, "askeladden") || it.BuildDetails.Target != "source" {
				t.Errorf("image %q target %q, want askeladden built from the source target", it.DockerImageName, it.BuildDetails.Target)
			}
			if !strings.Contains(it.BuildDetails.DockerfileContents, " AS source\n") {
				t.Error("askeladden is not built from Dockerfile.dev")
			}
			lu := it.LiveUpdateSpec
			if len(lu.Syncs) != 1 || lu.Syncs[0].LocalPath != "." || lu.Syncs[0].ContainerPath != "/src" {
				t.Errorf("live_update syncs = %+v, want . -> /src", lu.Syncs)
			}
			for _, p := range []string{"go.mod", "go.sum", "Dockerfile.dev", "devimage/buildrec"} {
				if !slices.Contains(lu.StopPaths, p) {
					t.Errorf("fall_back_on %v lacks %s: that change needs a full rebuild", lu.StopPaths, p)
				}
			}
			// After the sync, a step waits for the pod's build of it, so a
			// failed build fails the update and Tilt shows it.
			if len(lu.Execs) != 1 || !strings.Contains(strings.Join(lu.Execs[0].Args, " "), "buildrec wait -src /src /src/tmp/build-status.json") {
				t.Errorf("live_update run steps = %+v, want one `buildrec wait` on the pod's build record", lu.Execs)
			}
			pf := m.DeployTarget.PortForwardTemplateSpec
			if pf == nil || len(pf.Forwards) != 1 || pf.Forwards[0].LocalPort != 8090 || pf.Forwards[0].ContainerPort != 8090 {
				t.Errorf("port forwards = %+v, want 8090 -> 8090", pf)
			}
			var links []string
			for _, l := range m.DeployTarget.Links {
				links = append(links, l.URL.Scheme+"://"+l.URL.Host+l.URL.Path)
			}
			if !slices.Contains(links, "http://localhost:30008/") {
				t.Errorf("links = %v, want the NodePort http://localhost:30008/", links)
			}
			checkDevDeployment(t, m.DeployTarget.YAML)
		case "unit-tests":
			if m.Labels["tests"] == "" {
				t.Errorf("unit-tests labels = %v, want tests", m.Labels)
			}
			if args := m.DeployTarget.UpdateCmdSpec; args == nil || !strings.Contains(strings.Join(args.Args, " "), "go test") {
				t.Errorf("unit-tests does not run go test: %+v", args)
			}
		}
	}
}

// checkDevDeployment reads the Deployment Tilt will apply: production's,
// with dev mode on and no drain wait, and still the restricted settings.
func checkDevDeployment(t *testing.T, stream string) {
	t.Helper()
	// The dev patch drops what fights one replica, and keeps the rest.
	for _, kind := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		if strings.Contains(stream, "kind: "+kind) {
			t.Errorf("Tilt applies a %s in dev; the dev patch should drop it", kind)
		}
	}
	if !strings.Contains(stream, "kind: NetworkPolicy") {
		t.Error("Tilt does not apply the NetworkPolicy with the app: dev should run production's")
	}
	for _, doc := range docSeparator.Split(stream, -1) {
		if !strings.Contains(doc, "kind: Deployment") {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
			t.Fatalf("Tilt's Deployment: %v", err)
		}
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["ASKELADDEN_DEV"] != "1" || env["DRAIN_DELAY"] != "0s" {
			t.Errorf("dev env = %v, want ASKELADDEN_DEV=1 and DRAIN_DELAY=0s", env)
		}
		if c.Image != "askeladden" || d.Namespace != namespace {
			t.Errorf("dev Deployment image %q namespace %q", c.Image, d.Namespace)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("dev Deployment replicas %v, want 1: every pod would get each live update", ptrValue(d.Spec.Replicas))
		}
		if _, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok {
			t.Error("dev container has an ephemeral-storage limit: builds in the pod would get it evicted")
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Error("the dev Deployment lost the restricted security settings")
		}
		return
	}
	t.Error("no Deployment in the askeladden resource")
}

func TestTiltfileFlags(t *testing.T) {
	code, res, stderr := tiltfileResult(t, "Tiltfile", "--strategy=binary", "--no-tests")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if got := manifestNames(res); !slices.Equal(got, []string{"askeladden", "compile", "namespace"}) {
		t.Errorf("resources = %v, want askeladden, compile, namespace (no tests)", got)
	}
	for _, m := range res.Manifests {
		if m.Name != "askeladden" {
			continue
		}
		if !slices.Contains(m.ResourceDependencies, "compile") {
			t.Errorf("askeladden deps %v: the image needs the host build first", m.ResourceDependencies)
		}
		it := m.ImageTargets[0]
		if it.BuildDetails.Target != "binary" || len(it.LiveUpdateSpec.Syncs) != 1 || it.LiveUpdateSpec.Syncs[0].ContainerPath != "/app/sync/" {
			t.Errorf("binary strategy: target %q syncs %+v", it.BuildDetails.Target, it.LiveUpdateSpec.Syncs)
		}
		if len(it.LiveUpdateSpec.Execs) != 0 {
			t.Errorf("binary strategy run steps %+v: its compile resource already shows a failed build", it.LiveUpdateSpec.Execs)
		}
	}
	for _, m := range res.Manifests {
		if m.Name != "compile" {
			continue
		}
		// The compile's record, synced beside the binary, is how the page
		// learns of a failed compile.
		if args := m.DeployTarget.UpdateCmdSpec; args == nil || !strings.Contains(strings.Join(args.Args, " "), "go tool buildrec record -o build/build-status.json -- ") {
			t.Errorf("compile does not record its build for the page: %+v", args)
		}
	}

	if code, _, stderr := tiltfileResult(t, "Tiltfile", "--strategy=carrier-pigeon"); code != 5 || !strings.Contains(stderr, "--strategy must be") {
		t.Errorf("a bad --strategy: exit %d, want 5 with a message:\n%s", code, stderr)
	}
	code, res, _ = tiltfileResult(t, "Tiltfile", "--no-live-update")
	if code != 0 || len(res.Manifests) == 0 {
		t.Fatalf("--no-live-update: exit %d", code)
	}
	for _, m := range res.Manifests {
		if m.Name == "askeladden" && len(m.ImageTargets[0].LiveUpdateSpec.Syncs) != 0 {
			t.Error("--no-live-update still syncs files")
		}
	}
}

func TestBrokenTiltfileIsReported(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(repoRoot, "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "Tiltfile")
	if err := os.WriteFile(broken, append(good, []byte("\nk8s_resource('no-such-resource', port_forwards=8090)\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := tiltfileResult(t, broken); code != 5 {
		t.Errorf("a Tiltfile naming a missing resource: exit %d, want 5", code)
	}
	if err := os.WriteFile(broken, []byte("docker_build('askeladden', '.'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := tiltfileResult(t, broken); code != 5 {
		t.Errorf("a Tiltfile with a syntax error: exit %d, want 5", code)
	}
}

// TestTiltfileTestsStayOutOfTheWay holds the settings that keep a save from
// waiting for tests: Tilt runs a local_resource without allow_parallel only
// when nothing else updates, so compile would queue behind the unit tests
// the previous save started; and the tests yield the CPU to the build.
func TestTiltfileTestsStayOutOfTheWay(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(go test [^#\n]*?)\s+# the tests$`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no line `go test ...  # the tests` in its quick start")
	}
	wantTests := "go run ./hack/waitserved; nice -n 19 " + strings.Replace(string(m[1]), "go test ", "go test -short ", 1)

	for _, args := range [][]string{nil, {"--strategy=binary"}} {
		code, res, stderr := tiltfileResult(t, "Tiltfile", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d:\n%s", args, code, stderr)
		}
		seen := map[string]bool{}
		for _, m := range res.Manifests {
			seen[m.Name] = true
			switch m.Name {
			case "compile":
				if !m.DeployTarget.AllowParallel {
					t.Errorf("%v: compile has no allow_parallel: each save's build would wait for the tests", args)
				}
			case "unit-tests":
				if !m.DeployTarget.AllowParallel {
					t.Errorf("%v: unit-tests has no allow_parallel", args)
				}
				cmd := m.DeployTarget.UpdateCmdSpec
				if cmd == nil || len(cmd.Args) != 3 || cmd.Args[2] != wantTests {
					t.Errorf("%v: unit-tests runs %+v, want %q (once the app serves the edit, the README's test command, -short, at the lowest priority)", args, cmd, wantTests)
				}
				// The binary strategy's tests wait for compile: they follow
				// the binary, not the app's sources.
				var quote, binary, tests bool
				for _, d := range m.DeployTarget.Deps {
					quote = quote || filepath.Base(d) == "quote.go"
					binary = binary || strings.HasSuffix(filepath.ToSlash(d), "/build/askeladden")
					tests = tests || filepath.Base(d) == "handlers_test.go"
				}
				if wantBinary := len(args) > 0; quote == wantBinary || binary != wantBinary || !tests {
					t.Errorf("%v: unit-tests deps %v: want quote.go %v, build/askeladden %v, handlers_test.go true", args, m.DeployTarget.Deps, !wantBinary, wantBinary)
				}
			}
		}
		if !seen["unit-tests"] || (len(args) > 0 && !seen["compile"]) {
			t.Errorf("%v: resources %v, want unit-tests (and compile for the binary strategy)", args, manifestNames(res))
		}
	}
}
