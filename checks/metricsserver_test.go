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
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// apiService is the part of apiregistration.k8s.io/v1 APIService the
// fixture uses, decoded strictly (its Go type lives in kube-aggregator,
// too heavy a dependency for one object).
type apiService struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Service struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			Port      int32  `json:"port"`
		} `json:"service"`
		InsecureSkipTLSVerify bool  `json:"insecureSkipTLSVerify"`
		GroupPriorityMinimum  int32 `json:"groupPriorityMinimum"`
		VersionPriority       int32 `json:"versionPriority"`
	} `json:"spec"`
}

// TestMetricsServerManifest checks the fixture's metrics-server add-on
// (hack/cluster/metrics-server.yaml): strict decoding, the image cluster.sh
// builds, the flags this fixture needs, and the objects agreeing.
func TestMetricsServerManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "hack", "cluster", "metrics-server.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		deploy *appsv1.Deployment
		svc    *corev1.Service
		api    *apiService
		kinds  []string
	)
	for i, doc := range docSeparator.Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		kinds = append(kinds, head.Kind)
		var obj any
		switch head.Kind {
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		case "Service":
			svc = &corev1.Service{}
			obj = svc
		case "Deployment":
			deploy = &appsv1.Deployment{}
			obj = deploy
		case "APIService":
			api = &apiService{}
			obj = api
		default:
			t.Fatalf("doc %d: unexpected kind %q", i, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("doc %d (%s): strict decode: %v", i, head.Kind, err)
		}
	}
	if deploy == nil || svc == nil || api == nil {
		t.Fatalf("kinds %v: want a Deployment, a Service and an APIService", kinds)
	}

	// The image is the one cluster.sh builds: the version tools/ pins.
	mod, err := os.ReadFile(filepath.Join(repoRoot, "tools", "metrics-server", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^require sigs\.k8s\.io/metrics-server (v\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("tools/metrics-server/go.mod does not require sigs.k8s.io/metrics-server")
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	if want := "localhost:32000/metrics-server:" + string(m[1]); c.Image != want {
		t.Errorf("image %q, want %q (the version in tools/metrics-server/go.mod)", c.Image, want)
	}
	for _, arg := range []string{"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP", "--metric-resolution=15s", "--cert-dir=/tmp"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("metrics-server args %v lack %s", c.Args, arg)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == "/tmp" }) {
		t.Error("--cert-dir=/tmp needs a writable /tmp on a read-only root filesystem")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("metrics-server securityContext %+v: want read-only, no privilege escalation", sc)
	}
	for k, v := range svc.Spec.Selector {
		if deploy.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the metrics-server pods", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == svc.Spec.Ports[0].TargetPort.String() }) {
		t.Errorf("Service ports %+v do not target a container port (%+v)", svc.Spec.Ports, c.Ports)
	}
	s := api.Spec.Service
	if api.APIVersion != "apiregistration.k8s.io/v1" || api.Metadata.Name != "v1beta1.metrics.k8s.io" || api.Spec.Group != "metrics.k8s.io" || api.Spec.Version != "v1beta1" {
		t.Errorf("APIService %s %s for %s/%s, want apiregistration.k8s.io/v1 v1beta1.metrics.k8s.io", api.APIVersion, api.Metadata.Name, api.Spec.Group, api.Spec.Version)
	}
	if s.Name != svc.Name || s.Namespace != svc.Namespace || s.Port != svc.Spec.Ports[0].Port {
		t.Errorf("APIService points at %s/%s:%d, the Service is %s/%s:%d", s.Namespace, s.Name, s.Port, svc.Namespace, svc.Name, svc.Spec.Ports[0].Port)
	}
}
