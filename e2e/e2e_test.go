//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

// TestInnerLoop runs the suite in order: each step leaves the cluster in
// the state the next one starts from, so the first failure stops the rest.
func TestInnerLoop(t *testing.T) {
	requireEnv(t)
	dir := scratchCopy(t)
	steps := []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"ProductionImage", testProductionImage},
		{"TiltCI", testTiltCI},
		{"LiveUpdate", testLiveUpdate},
		{"TiltDown", testTiltDown},
		{"Restricted", testRestricted},
		{"RollingUpdate", testRollingUpdate},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.fn(t, dir) }) {
			t.Fatalf("%s failed; later steps depend on it", s.name)
		}
	}
}

const prodImage = "askeladden:e2e"

// dockerBuild builds with BuildKit, which the Dockerfile's cache mounts
// need: through buildx where the CLI has it, else through a Docker CLI
// that still speaks BuildKit itself (Debian's docker.io).
func dockerBuild(t *testing.T, dir string, args ...string) {
	t.Helper()
	if err := exec.Command("docker", "buildx", "version").Run(); err == nil {
		run(t, 15*time.Minute, dir, nil, "docker", append([]string{"buildx", "build", "--load"}, args...)...)
		return
	}
	cli := "docker"
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		cli = "/usr/bin/docker"
	}
	run(t, 15*time.Minute, dir, []string{"DOCKER_BUILDKIT=1"}, cli, append([]string{"build"}, args...)...)
}

func testProductionImage(t *testing.T, dir string) {
	dockerBuild(t, dir, "--build-arg", "VERSION=e2e", "-t", prodImage, ".")

	size, err := strconv.ParseInt(strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "image", "inspect", "-f", "{{.Size}}", prodImage)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("production image size: %d bytes (%.1f MB)", size, float64(size)/1e6)
	fmt.Printf("e2e: production image size %.1f MB\n", float64(size)/1e6)
	if size > 15_000_000 {
		t.Errorf("image is %d bytes, over the 15 MB goal", size)
	}

	// No shell, and nothing but the binary, CA bundle and user database.
	cid := strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "create", prodImage))
	files := run(t, time.Minute, "", nil, "sh", "-c", "docker export "+cid+" | tar -t")
	run(t, time.Minute, "", nil, "docker", "rm", cid)
	for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox"} {
		if slices.Contains(strings.Split(files, "\n"), sh) {
			t.Errorf("the image has a shell: %s", sh)
		}
	}
	if !strings.Contains(files, "askeladden") || !strings.Contains(files, "etc/ssl/certs/ca-certificates.crt") || !strings.Contains(files, "etc/passwd") {
		t.Errorf("image files:\n%s", files)
	}

	port := freePort(t)
	cid = strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "run", "-d", "--read-only", "--user", "65532:65532",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-p", fmt.Sprintf("127.0.0.1:%d:8090", port), prodImage))
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", cid).Run() })
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitBody(t, url, quote, 30*time.Second)
	if got := getBody(t, url); got != quote+"\n" {
		t.Errorf("GET / = %q", got)
	}
	if v := getBody(t, url+"version"); !strings.Contains(v, `"version":"e2e"`) {
		t.Errorf("/version = %s, want the build's VERSION", v)
	}
	// The image's own HEALTHCHECK (the binary's -healthcheck mode).
	deadline := time.Now().Add(60 * time.Second)
	status := ""
	for time.Now().Before(deadline) {
		status = strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "inspect", "-f", "{{.State.Health.Status}}", cid))
		if status == "healthy" {
			break
		}
		time.Sleep(time.Second)
	}
	if status != "healthy" {
		t.Errorf("HEALTHCHECK status %q after 60s, want healthy", status)
	}
	run(t, time.Minute, "", nil, "docker", "stop", "-t", "10", cid)
	if code := strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "inspect", "-f", "{{.State.ExitCode}}", cid)); code != "0" {
		t.Errorf("exit code after docker stop (SIGTERM) = %s, want 0", code)
	}
}

func testTiltCI(t *testing.T, dir string) {
	start := time.Now()
	out, err := runErr(20*time.Minute, dir, []string{"TILT_WEB_MODE=prod"}, "tilt", "ci", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--timeout", "15m")
	if err != nil {
		t.Fatalf("tilt ci: %v\n%s", err, tail(out, 80))
	}
	t.Logf("tilt ci passed in %s", time.Since(start).Round(time.Second))
	if !strings.Contains(out, "SUCCESS. All workloads are healthy.") {
		t.Errorf("tilt ci output lacks its success line:\n%s", tail(out, 30))
	}
	// The unit-test resource ran and passed: tilt ci fails on any failed
	// resource, and its log shows go test's summary.
	if !regexp.MustCompile(`unit-tests\s+│.*ok\s+github.com/ornlu-is/askeladden\s`).MatchString(out) {
		t.Errorf("tilt ci output shows no passing unit-tests run:\n%s", tail(out, 40))
	}
	// kube-proxy may need a moment to program the NodePort.
	waitBody(t, nodePort, quote, 30*time.Second)
	if got := getBody(t, nodePort); got != quote+"\n" {
		t.Errorf("NodePort GET / = %q, want the exact quote", got)
	}
}

func testLiveUpdate(t *testing.T, dir string) {
	tu := startTiltUp(t, dir)
	waitBody(t, forward, quote, 5*time.Minute)
	if got := getBody(t, forward); got != quote+"\n" {
		t.Fatalf("port-forward GET / = %q, want the exact quote", got)
	}
	before := onePod(t, time.Minute)
	tagsBefore := registryTags(t, "askeladden")
	if len(tagsBefore) == 0 {
		t.Fatalf("no askeladden image in the registry at %s: Tilt did not push there", registry)
	}

	// A browser on the port-forward, in dev mode: it must follow the edit.
	page := devloop.NewBrowser(t)
	if _, err := chromedp.Run(page, chromedp.Navigate(forward)); err != nil {
		t.Fatalf("open %s: %v", forward, err)
	}
	if _, err := chromedp.Run(page, chromedp.Evaluate[bool]("window.__loadedOnce = true")); err != nil {
		t.Fatal(err)
	}

	edited := "Come and see the violence inherent in the system!"
	setQuote(t, dir, edited)
	wrote := time.Now()
	seen := waitBody(t, forward, edited, 2*time.Minute)
	t.Logf("live update: edit served through the port-forward after %s", seen.Sub(wrote).Round(time.Millisecond))
	fmt.Printf("e2e: live update edit-to-response %s\n", seen.Sub(wrote).Round(time.Millisecond))
	waitPageQuote(t, page, edited, 30*time.Second)
	t.Logf("the open page reloaded itself %s after the edit", time.Since(wrote).Round(time.Millisecond))
	after := onePod(t, time.Minute)
	if after.UID != before.UID {
		t.Errorf("pod replaced (%s -> %s): that was a redeploy, not a live update", before.Name, after.Name)
	}
	if after.Restarts != before.Restarts {
		t.Errorf("container restarted (%d -> %d): live update must restart the process, not the container", before.Restarts, after.Restarts)
	}
	if tags := registryTags(t, "askeladden"); !slices.Equal(tags, tagsBefore) {
		t.Errorf("registry tags changed %v -> %v: an image was pushed for a live update", tagsBefore, tags)
	}
	if !strings.Contains(getBody(t, nodePort), edited) {
		t.Error("the NodePort does not serve the live-updated quote")
	}
	// After an edit, so the page shows the loop's deploy latency.
	screenshots(t, tu.webURL, forward, edited)

	// go.mod is outside what a sync may change: a full rebuild and a new pod.
	f, err := os.OpenFile(filepath.Join(dir, "go.mod"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n// e2e: a change that needs a full rebuild (%d)\n", time.Now().UnixNano())
	f.Close()
	deadline := time.Now().Add(10 * time.Minute)
	var rebuilt podInfo
	for time.Now().Before(deadline) {
		pods := appPods(t)
		if len(pods) == 1 && pods[0].UID != before.UID {
			rebuilt = pods[0]
			break
		}
		time.Sleep(2 * time.Second)
	}
	if rebuilt.UID == "" {
		t.Fatalf("no new pod within 10 minutes of the go.mod change:\n%s", tail(tu.out.String(), 60))
	}
	if tags := registryTags(t, "askeladden"); len(tags) <= len(tagsBefore) {
		t.Errorf("registry tags %v after the go.mod change: no new image was pushed", tags)
	}
	waitBody(t, forward, edited, 3*time.Minute)
	t.Logf("full rebuild: new pod %s serves the edited quote", rebuilt.Name)
}

func setQuote(t *testing.T, dir, q string) {
	t.Helper()
	if err := devloop.SetQuote(dir, q); err != nil {
		t.Fatal(err)
	}
}

func testTiltDown(t *testing.T, dir string) {
	run(t, 5*time.Minute, dir, nil, "tilt", "down")
	deadline := time.Now().Add(2 * time.Minute)
	left := ""
	for time.Now().Before(deadline) {
		left = strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "deployments,services,pods", "-n", namespace, "-l", selector, "-o", "name"))
		if left == "" {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("tilt down left behind:\n%s", left)
}

func testRestricted(t *testing.T, dir string) {
	out := run(t, 2*time.Minute, "", nil, "kubectl", "apply", "--dry-run=server", "-k", filepath.Join(dir, "k8s"))
	t.Logf("server-side dry run:\n%s", out)
	// The namespace refuses what the restricted standard forbids, so the
	// manifests passing is a real check.
	bad, err := runErr(time.Minute, "", nil, "kubectl", "run", "root-pod", "-n", namespace, "--image", registry+"/askeladden:0.1.0",
		"--dry-run=server", "--overrides", `{"spec":{"securityContext":{"runAsUser":0}}}`)
	if err == nil || !strings.Contains(bad, "violates PodSecurity") {
		t.Errorf("a root pod was not refused in %s (err %v):\n%s", namespace, err, bad)
	}
}

// testRollingUpdate deploys the production image with `kubectl apply -k`
// and restarts it under a steady load through the NodePort.
func testRollingUpdate(t *testing.T, dir string) {
	ref := registry + "/askeladden:0.1.0"
	run(t, time.Minute, "", nil, "docker", "tag", prodImage, ref)
	run(t, 5*time.Minute, "", nil, "docker", "push", ref)
	run(t, 2*time.Minute, "", nil, "kubectl", "apply", "-k", filepath.Join(dir, "k8s"))
	t.Cleanup(func() {
		_ = exec.Command("kubectl", "delete", "deployment,service", "-n", namespace, "-l", selector, "--wait=false").Run()
	})
	run(t, 3*time.Minute, "", nil, "kubectl", "rollout", "status", "-n", namespace, "deployment/askeladden", "--timeout=150s")
	pod := onePod(t, time.Minute)
	if !strings.Contains(pod.Image, "askeladden:0.1.0") {
		t.Errorf("pod runs %s, want the production image", pod.Image)
	}
	waitBody(t, nodePort, quote, time.Minute)

	// The load goes to the NodePort on localhost: load may target only
	// loopback (or pod IPs), never the node's address. Every request opens a
	// new connection, so each one takes kube-proxy's localhost NodePort path
	// (DNAT, route_localnet, SNAT) afresh; see hack/cluster/README.md for
	// what that path needs to take a burst.
	target := nodePort
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	const workers, perWorker, minSent = 4, 3000, 2000
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	loadStart := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Bounded: at most perWorker requests per worker and 3 minutes.
	deadline := time.Now().Add(3 * time.Minute)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Get(target)
				if err == nil {
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s after the load began: %v", time.Since(loadStart).Round(time.Millisecond), err))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	t.Logf("rollout restart %s after the load began", time.Since(loadStart).Round(time.Millisecond))
	run(t, time.Minute, "", nil, "kubectl", "rollout", "restart", "-n", namespace, "deployment/askeladden")
	run(t, 3*time.Minute, "", nil, "kubectl", "rollout", "status", "-n", namespace, "deployment/askeladden", "--timeout=150s")
	t.Logf("rollout complete %s after the load began", time.Since(loadStart).Round(time.Millisecond))
	// Keep the load on while the old pod drains and exits, and until it
	// has sent enough requests to mean something.
	time.Sleep(8 * time.Second)
	for sent.Load() < minSent && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	after := onePod(t, time.Minute)
	msg := fmt.Sprintf("rolling update under load through %s: %d requests sent, %d failed", target, sent.Load(), failed.Load())
	t.Log(msg)
	fmt.Println("e2e: " + msg)
	if after.UID == pod.UID {
		t.Error("rollout restart did not replace the pod")
	}
	if failed.Load() != 0 {
		t.Errorf("%s (first: %v)", msg, firstErr.Load())
		events, _ := runErr(time.Minute, "", nil, "kubectl", "get", "events", "-n", namespace, "--sort-by=.lastTimestamp")
		t.Logf("events:\n%s", tail(events, 30))
	}
	if sent.Load() < minSent {
		t.Errorf("only %d requests sent, want at least %d", sent.Load(), minSent)
	}
}
