package checks

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const namespace = "askeladden-dev"

// kustomization is the part of kustomize's type these files use, decoded
// strictly so a typo in a field name fails here rather than at apply time.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

type manifests struct {
	ns     *corev1.Namespace
	svc    *corev1.Service
	deploy *appsv1.Deployment
	kust   kustomization
	files  []string // every YAML file in k8s/ but the kustomization
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every document in k8s/ strictly into the
// Kubernetes API types: an unknown or misspelt field is an error.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	var m manifests
	paths, _ := filepath.Glob(filepath.Join(repoRoot, "k8s", "*.yaml"))
	if len(paths) == 0 {
		t.Fatal("no manifests in k8s/")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) == "kustomization.yaml" {
			if err := yaml.UnmarshalStrict(b, &m.kust); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			continue
		}
		m.files = append(m.files, filepath.Base(p))
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var head struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s doc %d: %v", p, i, err)
			}
			var obj any
			switch head.Kind {
			case "Namespace":
				m.ns = &corev1.Namespace{}
				obj = m.ns
			case "Service":
				m.svc = &corev1.Service{}
				obj = m.svc
			case "Deployment":
				m.deploy = &appsv1.Deployment{}
				obj = m.deploy
			default:
				t.Fatalf("%s doc %d: unexpected kind %q", p, i, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s doc %d (%s): strict decode: %v", p, i, head.Kind, err)
			}
		}
	}
	if m.ns == nil || m.svc == nil || m.deploy == nil {
		t.Fatalf("want a Namespace, a Service and a Deployment in k8s/, got ns=%v svc=%v deploy=%v", m.ns != nil, m.svc != nil, m.deploy != nil)
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestStrictDecodeCatchesTypos(t *testing.T) {
	// The check itself must be able to fail.
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &d); err == nil {
		t.Fatal("strict decoding accepted the unknown field spec.replica")
	}
}

func TestManifestMetadata(t *testing.T) {
	m := loadManifests(t)
	if m.ns.Name != namespace {
		t.Errorf("Namespace is %q, want %q", m.ns.Name, namespace)
	}
	if got := m.ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace enforces pod security %q, want restricted", got)
	}
	for _, obj := range []struct {
		kind string
		meta map[string]string
		ns   string
		name string
	}{
		{"Service", m.svc.Labels, m.svc.Namespace, m.svc.Name},
		{"Deployment", m.deploy.Labels, m.deploy.Namespace, m.deploy.Name},
		{"pod template", m.deploy.Spec.Template.Labels, namespace, "template"},
	} {
		if obj.ns != namespace {
			t.Errorf("%s %s: metadata.namespace = %q, want %q (never rely on the kubectl context)", obj.kind, obj.name, obj.ns, namespace)
		}
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} {
			if obj.meta[k] == "" {
				t.Errorf("%s %s lacks the recommended label %s", obj.kind, obj.name, k)
			}
		}
	}
}

func TestPodSecurityRestricted(t *testing.T) {
	m := loadManifests(t)
	spec := m.deploy.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", psc)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("pod shares a host namespace")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the app calls no Kubernetes API: automountServiceAccountToken should be false")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container has no securityContext")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container is privileged")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Error("container runs as root")
	}
	// Whatever must write gets an emptyDir.
	mounted := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		mounted[vm.Name] = true
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir", v.Name)
		}
		if !mounted[v.Name] {
			t.Errorf("volume %s is never mounted", v.Name)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == "/tmp" }) {
		t.Error("no writable /tmp for a read-only root filesystem")
	}
}

func TestProbesResourcesAndShutdown(t *testing.T) {
	m := loadManifests(t)
	spec := m.deploy.Spec.Template.Spec
	c := spec.Containers[0]
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe missing or not an HTTP GET", name)
			continue
		}
		if p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe port = %s, want the named port http", name, p.HTTPGet.Port.String())
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe path = %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe path = %q, want /healthz", c.LivenessProbe.HTTPGet.Path)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want CPU and memory requests and a memory limit", c.Resources)
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Error("memory limit below the request")
	}

	// Rolling updates: a new pod is ready before an old one goes, and the
	// old one outlives the endpoint removal.
	st := m.deploy.Spec.Strategy
	if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil || st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0", st)
	}
	if m.deploy.Spec.RevisionHistoryLimit == nil {
		t.Error("revisionHistoryLimit unset")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Fatalf("want a preStop sleep so endpoints are gone before the drain ends, got %+v", c.Lifecycle)
	}
	// That the env parses and the grace period covers the drain is checked
	// against the app's own parseConfig, in the root package's config_test.go.
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds unset")
	}
}

func TestManifestConsistency(t *testing.T) {
	m := loadManifests(t)
	pod := m.deploy.Spec.Template
	for k, v := range m.svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
		}
	}
	for k, v := range m.deploy.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match its own pod labels", k, v)
		}
	}
	if len(m.svc.Spec.Selector) == 0 {
		t.Error("Service has no selector")
	}

	c := pod.Spec.Containers[0]
	var http *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http" {
			http = &c.Ports[i]
		}
	}
	if http == nil {
		t.Fatal("container has no port named http")
	}
	// That 8090 is also the app's default port is a root test (config_test.go).
	if http.ContainerPort != 8090 {
		t.Errorf("containerPort http = %d, want 8090", http.ContainerPort)
	}
	if m.svc.Spec.Type != corev1.ServiceTypeNodePort || len(m.svc.Spec.Ports) != 1 {
		t.Fatalf("Service = %s with %d ports, want one NodePort", m.svc.Spec.Type, len(m.svc.Spec.Ports))
	}
	sp := m.svc.Spec.Ports[0]
	target := sp.TargetPort.IntValue()
	if sp.TargetPort.String() == "http" {
		target = int(http.ContainerPort)
	}
	if sp.NodePort < 30000 || sp.NodePort > 32767 {
		t.Errorf("nodePort %d is outside Kubernetes' default NodePort range", sp.NodePort)
	}
	if sp.Port != 80 || target != int(http.ContainerPort) || sp.NodePort != 30008 {
		t.Errorf("Service port %d -> %s (nodePort %d), want 80 -> 8090 (the container's http port), nodePort 30008", sp.Port, sp.TargetPort.String(), sp.NodePort)
	}

	if c.Image != "askeladden" {
		t.Errorf("Deployment image = %q, want the plain name askeladden (Tilt adds the registry)", c.Image)
	}
	tiltfile, err := os.ReadFile(filepath.Join(repoRoot, "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`docker_build\(\s*'` + regexp.QuoteMeta(c.Image) + `'`).Match(tiltfile) {
		t.Errorf("the Tiltfile's docker_build does not build the Deployment's image %q", c.Image)
	}

	if m.kust.Kind != "Kustomization" {
		t.Errorf("kustomization kind = %q", m.kust.Kind)
	}
	listed := slices.Clone(m.kust.Resources)
	slices.Sort(listed)
	files := slices.Clone(m.files)
	slices.Sort(files)
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization lists %v, k8s/ has %v", listed, files)
	}
	if len(m.kust.Images) != 1 || m.kust.Images[0].Name != c.Image || m.kust.Images[0].NewTag == "latest" {
		t.Errorf("kustomization images = %+v, want one rewrite of %q to a pinned tag", m.kust.Images, c.Image)
	}
}
