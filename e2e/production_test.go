//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The production steps run after the loop's, on what `kubectl apply -k
// k8s/` deploys: two replicas, an HPA on metrics-server, a disruption
// budget and a NetworkPolicy.

// prodKinds are the kinds k8s/ deploys into the namespace; cleanup and the
// pre-clean delete them by the app's label.
const prodKinds = "deployment,service,horizontalpodautoscaler,poddisruptionbudget,networkpolicy"

func deleteProduction(t *testing.T) {
	bestEffort(t, "kubectl", "delete", prodKinds, "-n", namespace, "-l", selector, "--ignore-not-found", "--wait=false")
	bestEffort(t, "kubectl", "delete", "pod", "-n", namespace, "-l", "app.kubernetes.io/name=askeladden-loadgen", "--ignore-not-found", "--wait=false")
}

// bestEffort runs a clean-up command; a failure is logged, not fatal.
func bestEffort(t *testing.T, name string, args ...string) {
	if out, err := runErr(time.Minute, "", nil, name, args...); err != nil {
		t.Logf("clean-up %s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 5))
	}
}

const arm64Image = "askeladden:e2e-arm64"

// testArm64Image cross-builds the production image for arm64 on this
// amd64 machine with BuildKit and no emulator: the binary must be an
// aarch64 ELF, the image small and shell-less.
func testArm64Image(t *testing.T, dir string) {
	start := time.Now()
	dockerBuild(t, dir, "--platform", "linux/arm64", "--build-arg", "VERSION=e2e", "-t", arm64Image, ".")
	t.Logf("arm64 image built in %s", time.Since(start).Round(time.Millisecond))
	info := strings.Fields(run(t, time.Minute, "", nil, "docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{.Size}}", arm64Image))
	if len(info) != 2 {
		t.Fatalf("docker image inspect: %q", info)
	}
	if info[0] != "linux/arm64" {
		t.Errorf("image platform %s, want linux/arm64", info[0])
	}
	size, err := strconv.ParseInt(info[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("e2e: arm64 production image size %.1f MB\n", float64(size)/1e6)
	if size > 15_000_000 {
		t.Errorf("arm64 image is %d bytes, over 15 MB", size)
	}

	// The image's files, through a container that is created, never run.
	cid := strings.TrimSpace(run(t, time.Minute, "", nil, "docker", "create", "--platform", "linux/arm64", arm64Image))
	defer bestEffort(t, "docker", "rm", "-f", cid)
	files, binary := exportedFiles(t, cid, "askeladden")
	for _, f := range files {
		if base := filepath.Base(f); slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox"}, base) {
			t.Errorf("the image has a shell: %s", f)
		}
	}
	if binary == nil {
		t.Fatalf("no /askeladden in the image; files: %v", files)
	}
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("/askeladden is not an ELF file: %v", err)
	}
	defer f.Close()
	t.Logf("/askeladden: %s %s %s, %d bytes", f.Class, f.Machine, f.Type, len(binary))
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("/askeladden is %s %s, want a 64-bit aarch64 ELF", f.Class, f.Machine)
	}
	// Static: no program interpreter, so it runs on scratch.
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/askeladden asks for a dynamic loader (PT_INTERP): it must be static")
		}
	}
}

// exportedFiles lists a container's files and returns the content of one.
func exportedFiles(t *testing.T, cid, want string) ([]string, []byte) {
	t.Helper()
	cmd := exec.Command("docker", "export", cid)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var files []string
	var content []byte
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("docker export: %v", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		files = append(files, name)
		if name == want {
			if content, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("docker export: %v %s", err, stderr.String())
	}
	return files, content
}

// testNetworkPolicy: the policy passes the apiserver's validation, and a
// broken one does not, so that passing means something. Nothing more can
// be checked here: the fixture's CNI (the plain bridge plugin) does not
// enforce NetworkPolicy, so no packet is ever dropped by it.
func testNetworkPolicy(t *testing.T, dir string) {
	policy := filepath.Join(dir, "k8s", "networkpolicy.yaml")
	out := run(t, time.Minute, "", nil, "kubectl", "apply", "--dry-run=server", "-f", policy)
	if !strings.Contains(out, "networkpolicy.networking.k8s.io/askeladden") || !strings.Contains(out, "server dry run") {
		t.Errorf("server-side dry run of the NetworkPolicy: %s", out)
	}
	b, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), "port: http", "port: not_a-port-name", 1)
	if broken == string(b) {
		t.Fatal("networkpolicy.yaml no longer names the port http; update this test")
	}
	cmd := exec.Command("kubectl", "apply", "--dry-run=server", "-f", "-")
	cmd.Stdin = strings.NewReader(broken)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Invalid value") {
		t.Errorf("a NetworkPolicy with an invalid port passed the server-side dry run (err %v): %s", err, out)
	}
	msg := "NetworkPolicy passes a server-side dry run; the fixture's bridge CNI does not enforce NetworkPolicy, so its filtering is not tested here"
	t.Log(msg)
	fmt.Println("e2e: " + msg)
}

// testDeploy pushes the production image (built by ProductionImage) and
// applies k8s/: two ready pods.
func testDeploy(t *testing.T, dir string) {
	ref := registry + "/askeladden:0.1.0"
	run(t, time.Minute, "", nil, "docker", "tag", prodImage, ref)
	run(t, 5*time.Minute, "", nil, "docker", "push", ref)
	run(t, 2*time.Minute, "", nil, "kubectl", "apply", "-k", filepath.Join(dir, "k8s"))
	run(t, 3*time.Minute, "", nil, "kubectl", "rollout", "status", "-n", namespace, "deployment/askeladden", "--timeout=150s")
	pods := readyPods(t, 2, time.Minute)
	for _, p := range pods {
		if !strings.Contains(p.Image, "askeladden:0.1.0") {
			t.Errorf("pod %s runs %s, want the production image", p.Name, p.Image)
		}
	}
	waitBody(t, nodePort, quote, time.Minute)
}

// readyPods waits until exactly n app pods are ready and returns them.
func readyPods(t *testing.T, n int, within time.Duration) []podInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	var ready []podInfo
	for {
		ready = ready[:0]
		for _, p := range appPods(t) {
			if p.Ready {
				ready = append(ready, p)
			}
		}
		if len(ready) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(ready) != n {
		t.Fatalf("want %d ready app pods within %s, have %+v", n, within, ready)
	}
	return ready
}

type hpaStatus struct {
	Spec struct {
		MinReplicas int32 `json:"minReplicas"`
		MaxReplicas int32 `json:"maxReplicas"`
	} `json:"spec"`
	Status struct {
		CurrentReplicas int32 `json:"currentReplicas"`
		DesiredReplicas int32 `json:"desiredReplicas"`
		CurrentMetrics  []struct {
			Type     string `json:"type"`
			Resource *struct {
				Name    string `json:"name"`
				Current struct {
					AverageUtilization *int32 `json:"averageUtilization"`
					AverageValue       string `json:"averageValue"`
				} `json:"current"`
			} `json:"resource"`
		} `json:"currentMetrics"`
	} `json:"status"`
}

func getHPA(t *testing.T) hpaStatus {
	t.Helper()
	var h hpaStatus
	out := run(t, time.Minute, "", nil, "kubectl", "get", "hpa", "askeladden", "-n", namespace, "-o", "json")
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("kubectl get hpa: %v", err)
	}
	return h
}

// cpuUtilization is the HPA's current CPU use as a share of the request,
// or nil while it reports none (`<unknown>` in kubectl get hpa).
func (h hpaStatus) cpuUtilization() *int32 {
	for _, m := range h.Status.CurrentMetrics {
		if m.Type == "Resource" && m.Resource != nil && m.Resource.Name == "cpu" {
			return m.Resource.Current.AverageUtilization
		}
	}
	return nil
}

// testHPAMetrics: metrics-server feeds the HPA, and `kubectl top` works.
func testHPAMetrics(t *testing.T, dir string) {
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	var u *int32
	for time.Now().Before(deadline) {
		if u = getHPA(t).cpuUtilization(); u != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if u == nil {
		out, _ := runErr(time.Minute, "", nil, "kubectl", "describe", "hpa", "askeladden", "-n", namespace)
		t.Fatalf("the HPA reports no CPU utilisation after 3 minutes:\n%s", tail(out, 30))
	}
	msg := fmt.Sprintf("HPA reports CPU utilisation %d%% %s after the deploy step", *u, time.Since(start).Round(time.Second))
	t.Log(msg)
	fmt.Println("e2e: " + msg)

	out := run(t, time.Minute, "", nil, "kubectl", "top", "pod", "-n", namespace, "-l", selector, "--no-headers")
	t.Logf("kubectl top pod:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Errorf("kubectl top pod lists %d pods, want the 2 replicas:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || !strings.HasSuffix(f[1], "m") || !strings.HasSuffix(f[2], "Mi") {
			t.Errorf("kubectl top pod line %q: want NAME CPU(m) MEMORY(Mi)", l)
		}
	}
}

// apiClient talks to the apiserver directly, with kubectl's credentials,
// where the exact status code matters (an eviction's 429).
type apiClient struct {
	server, token string
	http          *http.Client
}

func newAPIClient(t *testing.T) *apiClient {
	t.Helper()
	var cfg struct {
		Clusters []struct {
			Cluster struct {
				Server                   string `json:"server"`
				CertificateAuthorityData string `json:"certificate-authority-data"`
				CertificateAuthority     string `json:"certificate-authority"`
				InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token                 string `json:"token"`
				ClientCertificateData string `json:"client-certificate-data"`
				ClientKeyData         string `json:"client-key-data"`
			} `json:"user"`
		} `json:"users"`
	}
	out := run(t, time.Minute, "", nil, "kubectl", "config", "view", "--raw", "--minify", "--flatten", "-o", "json")
	if err := json.Unmarshal([]byte(out), &cfg); err != nil || len(cfg.Clusters) != 1 || len(cfg.Users) != 1 {
		t.Fatalf("kubectl config view: %v (%d clusters, %d users)", err, len(cfg.Clusters), len(cfg.Users))
	}
	cl, u := cfg.Clusters[0].Cluster, cfg.Users[0].User
	tc := &tls.Config{InsecureSkipVerify: cl.InsecureSkipTLSVerify}
	if cl.CertificateAuthorityData != "" {
		pem, err := base64.StdEncoding.DecodeString(cl.CertificateAuthorityData)
		if err != nil {
			t.Fatal(err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			t.Fatal("kubeconfig: no certificate in certificate-authority-data")
		}
	}
	if u.ClientCertificateData != "" {
		c, err := base64.StdEncoding.DecodeString(u.ClientCertificateData)
		if err != nil {
			t.Fatal(err)
		}
		k, err := base64.StdEncoding.DecodeString(u.ClientKeyData)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return &apiClient{server: cl.Server, token: u.Token, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}
}

func (c *apiClient) post(path string, body any) (int, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(http.MethodPost, c.server+path, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb), err
}

func (c *apiClient) evict(name string) (int, string, error) {
	return c.post("/api/v1/namespaces/"+namespace+"/pods/"+name+"/eviction", map[string]any{
		"apiVersion": "policy/v1",
		"kind":       "Eviction",
		"metadata":   map[string]string{"name": name, "namespace": namespace},
	})
}

// testEviction: with two ready pods the budget allows one eviction; the
// other pod is then the last one serving, and its eviction is refused
// (429) until the replacement is ready.
func testEviction(t *testing.T, dir string) {
	api := newAPIClient(t)
	pods := readyPods(t, 2, 2*time.Minute)
	// The disruption controller must have counted both pods first.
	deadline := time.Now().Add(time.Minute)
	allowed := ""
	for time.Now().Before(deadline) {
		allowed = strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "pdb", "askeladden", "-n", namespace, "-o", "jsonpath={.status.disruptionsAllowed}"))
		if allowed == "1" {
			break
		}
		time.Sleep(time.Second)
	}
	if allowed != "1" {
		t.Fatalf("PDB disruptionsAllowed = %q with two ready pods, want 1", allowed)
	}

	code, body, err := api.evict(pods[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("evicting %s (one of two ready pods): %d %s, want 201", pods[0].Name, code, body)
	}
	// At once: the replacement is not ready yet, so this is the last pod.
	code, body, err = api.evict(pods[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("evicted %s; evicting the last ready pod %s answered %d", pods[0].Name, pods[1].Name, code)
	t.Log(msg + ": " + strings.TrimSpace(body))
	fmt.Println("e2e: " + msg)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "disruption budget") {
		t.Errorf("evicting the last ready pod: %d %s, want 429 naming the disruption budget", code, body)
	}

	// The Deployment replaces the evicted pod; the refused one is untouched.
	after := readyPods(t, 2, 2*time.Minute)
	names := []string{after[0].Name, after[1].Name}
	if slices.Contains(names, pods[0].Name) || !slices.Contains(names, pods[1].Name) {
		t.Errorf("ready pods after the evictions: %v; want %s gone and %s still serving", names, pods[0].Name, pods[1].Name)
	}
}

// loadgenImage is the suite's in-cluster client (e2e/loadgen), built here
// and run as a pod: load for the rolling update goes from the pod network
// to the Service's virtual IP and never leaves the cluster.
const loadgenImage = registry + "/askeladden-loadgen:e2e"

func pushLoadgen(t *testing.T, dir string) {
	t.Helper()
	ctx := t.TempDir()
	run(t, 5*time.Minute, filepath.Join(dir, "e2e", "loadgen"), []string{"CGO_ENABLED=0", "GOOS=linux"},
		"go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctx, "loadgen"), ".")
	df := "FROM scratch\nCOPY loadgen /loadgen\nUSER 65532:65532\nENTRYPOINT [\"/loadgen\"]\n"
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerBuild(t, ctx, "-t", loadgenImage, ".")
	run(t, 2*time.Minute, "", nil, "docker", "push", loadgenImage)
}

// startLoadgen runs loadgen as a pod that passes the restricted standard.
func startLoadgen(t *testing.T, name string, args ...string) {
	t.Helper()
	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata": map[string]any{
			"name": name, "namespace": namespace,
			"labels": map[string]string{"app.kubernetes.io/name": "askeladden-loadgen", "app.kubernetes.io/part-of": "askeladden"},
		},
		"spec": map[string]any{
			"restartPolicy":                "Never",
			"automountServiceAccountToken": false,
			"securityContext": map[string]any{
				"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
				"seccompProfile": map[string]string{"type": "RuntimeDefault"},
			},
			"containers": []map[string]any{{
				"name": "loadgen", "image": loadgenImage, "imagePullPolicy": "Always", "args": args,
				"resources": map[string]any{"requests": map[string]string{"cpu": "50m", "memory": "16Mi"}, "limits": map[string]string{"memory": "64Mi"}},
				"securityContext": map[string]any{
					"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
					"capabilities": map[string]any{"drop": []string{"ALL"}},
				},
			}},
		},
	}
	b, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kubectl", "create", "-f", "-")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl create loadgen pod: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		bestEffort(t, "kubectl", "delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=false")
	})
}

type loadResult struct {
	Started, Ended time.Time
	Sent, Failed   int64
	FirstFailure   string `json:"first_failure"`
}

// waitLoadgen waits for the pod to finish and returns what it printed.
func waitLoadgen(t *testing.T, name string, within time.Duration) loadResult {
	t.Helper()
	deadline := time.Now().Add(within)
	phase := ""
	for time.Now().Before(deadline) {
		phase = strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}"))
		if phase == "Succeeded" || phase == "Failed" {
			break
		}
		time.Sleep(time.Second)
	}
	logs := run(t, time.Minute, "", nil, "kubectl", "logs", name, "-n", namespace)
	if phase != "Succeeded" {
		t.Fatalf("loadgen pod %s is %q after %s:\n%s", name, phase, within, tail(logs, 20))
	}
	var res loadResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs)), &res); err != nil {
		t.Fatalf("loadgen output %q: %v", logs, err)
	}
	return res
}

// testRollingUpdate restarts the Deployment under a steady in-cluster load
// through the Service and counts failed requests: there must be none.
func testRollingUpdate(t *testing.T, dir string) {
	before := readyPods(t, 2, 2*time.Minute)
	pushLoadgen(t, dir)
	clusterIP := strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "service", "askeladden", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"))
	port := strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "service", "askeladden", "-n", namespace, "-o", "jsonpath={.spec.ports[0].port}"))
	target := "http://" + clusterIP + ":" + port + "/"

	// Bounded: 4 workers, one request each per 20 ms, at most 3000 each
	// (about a minute) and 90 s. The rollout and the old pods' drain take
	// 10 to 15 s of it; the margin is for a slower machine.
	name := fmt.Sprintf("loadgen-%d", time.Now().Unix())
	const loadFor = 90 * time.Second
	startLoadgen(t, name, "-url", target, "-workers", "4", "-max", "3000", "-interval", "20ms", "-duration", loadFor.String())
	deadline := time.Now().Add(2 * time.Minute)
	for phase := ""; phase != "Running"; {
		if time.Now().After(deadline) {
			t.Fatalf("loadgen pod not running after 2 minutes (phase %q)", phase)
		}
		time.Sleep(500 * time.Millisecond)
		phase = strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}"))
	}
	time.Sleep(3 * time.Second)
	restart := time.Now()
	run(t, time.Minute, "", nil, "kubectl", "rollout", "restart", "-n", namespace, "deployment/askeladden")
	run(t, 3*time.Minute, "", nil, "kubectl", "rollout", "status", "-n", namespace, "deployment/askeladden", "--timeout=150s")
	done := time.Now()
	t.Logf("rollout took %s", done.Sub(restart).Round(time.Millisecond))

	res := waitLoadgen(t, name, loadFor+time.Minute)
	msg := fmt.Sprintf("rolling update of %d replicas under in-cluster load through the Service %s: %d requests sent, %d failed",
		len(before), target, res.Sent, res.Failed)
	t.Log(msg)
	fmt.Println("e2e: " + msg)
	// The load must cover the whole rollout and the old pods' drain
	// (preStop 3 s + DRAIN_DELAY 2 s, then in-flight requests).
	if res.Started.After(restart) || res.Ended.Before(done.Add(8*time.Second)) {
		t.Errorf("the load ran %s..%s, which does not cover the rollout %s..%s plus the drain",
			res.Started.Format(time.TimeOnly), res.Ended.Format(time.TimeOnly), restart.Format(time.TimeOnly), done.Format(time.TimeOnly))
	}
	if res.Failed != 0 {
		t.Errorf("%s (first: %s)", msg, res.FirstFailure)
		events, _ := runErr(time.Minute, "", nil, "kubectl", "get", "events", "-n", namespace, "--sort-by=.lastTimestamp")
		t.Logf("events:\n%s", tail(events, 30))
	}
	if res.Sent < 2000 {
		t.Errorf("only %d requests sent, want at least 2000", res.Sent)
	}
	after := appPods(t)
	for _, p := range after {
		if slices.ContainsFunc(before, func(b podInfo) bool { return b.UID == p.UID }) {
			t.Errorf("pod %s survived the rollout", p.Name)
		}
	}
	if len(after) < 2 {
		t.Errorf("%d pods after the rollout, want at least 2", len(after))
	}
}

// testScaleOut puts a CPU load on the NodePort through loopback until the
// HPA adds a pod, and prints how long that took. Bounded: 4 clients with a
// 2 ms pause between requests (at most 2000 a second: the target, 35m of
// CPU per pod, needs a few hundred), at most 500,000 requests and 4
// minutes in all.
func testScaleOut(t *testing.T, dir string) {
	h := getHPA(t)
	if h.Status.CurrentReplicas != h.Spec.MinReplicas {
		t.Logf("HPA at %d replicas before the load (min %d)", h.Status.CurrentReplicas, h.Spec.MinReplicas)
	}
	base := h.Status.CurrentReplicas
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers, maxRequests, maxTime, pause = 4, 500_000, 4 * time.Minute, 2 * time.Millisecond
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Load() < maxRequests && time.Since(start) < maxTime {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Get(nodePort)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					// Not what this step measures: on this fixture a localhost
					// NodePort refuses a burst of connections now and then.
					failed.Add(1)
				}
				time.Sleep(pause)
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	var scaled time.Duration
	var desired int32
	var peak *int32
	for time.Since(start) < maxTime {
		time.Sleep(2 * time.Second)
		h = getHPA(t)
		if u := h.cpuUtilization(); u != nil && (peak == nil || *u > *peak) {
			peak = u
		}
		if h.Status.DesiredReplicas > base {
			scaled, desired = time.Since(start), h.Status.DesiredReplicas
			break
		}
	}
	stopLoad()
	peakText := "none"
	if peak != nil {
		peakText = fmt.Sprintf("%d%%", *peak)
	}
	if scaled == 0 {
		t.Fatalf("no scale out within %s of load (%d requests, %d failed; peak CPU utilisation %s)", maxTime, sent.Load(), failed.Load(), peakText)
	}
	msg := fmt.Sprintf("HPA scaled out from %d to %d replicas %s after the load began (%d requests, %d failed; CPU utilisation up to %s of the request)",
		base, desired, scaled.Round(time.Second), sent.Load(), failed.Load(), peakText)
	t.Log(msg)
	fmt.Println("e2e: " + msg)
	// The Deployment follows the HPA.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := strings.TrimSpace(run(t, time.Minute, "", nil, "kubectl", "get", "deployment", "askeladden", "-n", namespace, "-o", "jsonpath={.spec.replicas}"))
		if n, _ := strconv.Atoi(got); n > int(base) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment has %s replicas 2 minutes after the HPA wanted %d", got, desired)
		}
		time.Sleep(time.Second)
	}
}
