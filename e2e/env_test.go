//go:build e2e

// Package e2e proves the inner loop on a real cluster: the production
// image, tilt ci, live update, a full rebuild, tilt down, and a rolling
// update under load. It expects a cluster that looks like microk8s with
// its registry add-on (hack/cluster.sh up makes one) and KUBECONFIG set.
//
//	bash hack/cluster.sh up
//	export KUBECONFIG=/tmp/askeladden-cluster/kubeconfig PATH=~/.cache/askeladden/bin:$PATH
//	go test -tags e2e -count=1 -v ./e2e/...
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ornlu-is/askeladden/hack/devloop"
)

const (
	namespace = "askeladden-dev"
	nodePort  = "http://localhost:30008/"
	forward   = "http://localhost:8090/"
	registry  = "localhost:32000"
	selector  = "app.kubernetes.io/name=askeladden"
)

// repoRoot is the checkout under test, and quote what it serves.
var repoRoot, quote = devloop.MustCheckout()

// need fails in CI and skips elsewhere when a tool is missing.
var need = devloop.NeedTool

func requireEnv(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"kubectl", "tilt", "docker"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool, "run `bash hack/cluster.sh up` and `bash hack/build-tilt.sh`, then put ~/.cache/askeladden/bin on PATH")
	}
	need(t, os.Getenv("KUBECONFIG") != "", "KUBECONFIG", "export KUBECONFIG=/tmp/askeladden-cluster/kubeconfig (printed by hack/cluster.sh up)")
	out, err := exec.Command("kubectl", "get", "--raw", "/readyz").CombinedOutput()
	need(t, err == nil, "a reachable cluster", fmt.Sprintf("kubectl get --raw /readyz: %v %s", err, out))
}

// run runs a command with a deadline and returns its combined output; a
// failure is fatal and shows the output.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(timeout, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 60))
	}
	return out
}

func runErr(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// scratchCopy copies the tracked files of the checkout, as a fresh clone
// would have them, so the suite can edit and leave the checkout alone.
func scratchCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := devloop.CopyTracked(repoRoot, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := devloop.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

// waitBody polls url until the body contains want.
func waitBody(t *testing.T, url, want string, within time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	seen, err := devloop.WaitForBody(ctx, url, want, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

type podInfo struct {
	UID, Name, Image string
	Restarts         int
}

// appPods lists the app's pods that are running and not terminating.
func appPods(t *testing.T) []podInfo {
	t.Helper()
	out := run(t, time.Minute, "", nil, "kubectl", "get", "pods", "-n", namespace, "-l", selector, "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string
				UID               string
				DeletionTimestamp *string
			}
			Status struct {
				Phase             string
				ContainerStatuses []struct {
					RestartCount int
					Image        string
					Ready        bool
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("kubectl get pods: %v", err)
	}
	var pods []podInfo
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil || p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		cs := p.Status.ContainerStatuses[0]
		pods = append(pods, podInfo{UID: p.Metadata.UID, Name: p.Metadata.Name, Image: cs.Image, Restarts: cs.RestartCount})
	}
	return pods
}

// onePod waits until exactly one app pod runs and returns it.
func onePod(t *testing.T, within time.Duration) podInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	var pods []podInfo
	for time.Now().Before(deadline) {
		if pods = appPods(t); len(pods) == 1 {
			return pods[0]
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("want exactly one running app pod within %s, have %+v", within, pods)
	return podInfo{}
}

// registryTags lists the tags the cluster registry holds for the image.
func registryTags(t *testing.T, image string) []string {
	t.Helper()
	resp, err := httpClient.Get("http://" + registry + "/v2/" + image + "/tags/list")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var tags struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&tags); err != nil {
		t.Fatalf("registry tags: %v", err)
	}
	return tags.Tags
}

// tiltUp is `tilt up` running in dir, web UI on a free port, until the
// test ends; what it deployed stays, as a user's would after Ctrl-C.
type tiltUp struct {
	*devloop.Process
	out    *devloop.Buffer
	webURL string
}

func startTiltUp(t *testing.T, dir string, args ...string) *tiltUp {
	t.Helper()
	port := freePort(t)
	out := &devloop.Buffer{}
	p, err := devloop.StartTilt(dir, port, out, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return &tiltUp{Process: p, out: out, webURL: fmt.Sprintf("http://127.0.0.1:%d/", port)}
}
