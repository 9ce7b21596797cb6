package checks

import (
	"errors"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestScalingPromises(t *testing.T) {
	m := loadManifests(t)
	if err := errors.Join(checkScaling(m.deploy, m.hpa, m.pdb)...); err != nil {
		t.Error(err)
	}
	if err := errors.Join(checkNetworkPolicy(m.netpol, m.deploy)...); err != nil {
		t.Error(err)
	}
	// The figures the README and the e2e suite rely on.
	if *m.hpa.Spec.MinReplicas != 2 {
		t.Errorf("HPA spec.minReplicas = %d, want 2", *m.hpa.Spec.MinReplicas)
	}
	if m.hpa.Spec.MaxReplicas > 20 {
		t.Errorf("HPA spec.maxReplicas = %d: a runaway load could take a small cluster; keep it at 20 or under", m.hpa.Spec.MaxReplicas)
	}
}

// TestScalingPromisesRejectBadInput breaks the real manifests one field at
// a time: each must fail, with a message that names the field.
func TestScalingPromisesRejectBadInput(t *testing.T) {
	cases := []struct {
		name  string
		field string
		edit  func(*manifests)
	}{
		{"HPA minimum above its maximum", "spec.minReplicas (5) is above spec.maxReplicas (3)", func(m *manifests) {
			m.hpa.Spec.MinReplicas, m.hpa.Spec.MaxReplicas = ptr.To[int32](5), 3
		}},
		{"HPA that cannot scale", "spec.maxReplicas (2) equals spec.minReplicas", func(m *manifests) { m.hpa.Spec.MaxReplicas = 2 }},
		{"HPA minimum of one", "spec.minReplicas is 1", func(m *manifests) { m.hpa.Spec.MinReplicas = ptr.To[int32](1) }},
		{"HPA minimum left to the default", "spec.minReplicas is unset", func(m *manifests) { m.hpa.Spec.MinReplicas = nil }},
		{"HPA on memory only", "spec.metrics has no Resource metric on cpu", func(m *manifests) {
			m.hpa.Spec.Metrics[0].Resource.Name = corev1.ResourceMemory
		}},
		{"HPA that flaps", "spec.behavior.scaleDown.stabilizationWindowSeconds is 0", func(m *manifests) {
			m.hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds = ptr.To[int32](0)
		}},
		{"HPA that never scales in", "spec.behavior.scaleDown.selectPolicy is Disabled", func(m *manifests) {
			m.hpa.Spec.Behavior.ScaleDown.SelectPolicy = ptr.To(autoscalingv2.DisabledPolicySelect)
		}},
		{"HPA on another workload", "spec.scaleTargetRef", func(m *manifests) { m.hpa.Spec.ScaleTargetRef.Name = "other" }},
		{"one replica", "spec.replicas is 1", func(m *manifests) { m.deploy.Spec.Replicas = ptr.To[int32](1) }},
		{"no CPU request", "resources.requests.cpu is unset", func(m *manifests) {
			delete(m.deploy.Spec.Template.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU)
		}},
		{"PDB that blocks every drain", "spec.maxUnavailable is 0", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(0))
		}},
		{"PDB of 0%", "spec.maxUnavailable is 0%", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable = ptr.To(intstr.FromString("0%"))
		}},
		{"PDB minimum equal to the HPA minimum", "spec.minAvailable (2) allows no eviction at the HPA's spec.minReplicas (2)", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable, m.pdb.Spec.MinAvailable = nil, ptr.To(intstr.FromInt32(2))
		}},
		{"PDB minimum of 100%", "spec.minAvailable (100%) allows no eviction", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable, m.pdb.Spec.MinAvailable = nil, ptr.To(intstr.FromString("100%"))
		}},
		{"PDB minimum of 60% rounds up to both pods", "spec.minAvailable (60%) allows no eviction", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable, m.pdb.Spec.MinAvailable = nil, ptr.To(intstr.FromString("60%"))
		}},
		{"PDB that lets a drain take every pod", "spec.maxUnavailable (100%) lets a drain evict all 2 pods", func(m *manifests) {
			m.pdb.Spec.MaxUnavailable = ptr.To(intstr.FromString("100%"))
		}},
		{"PDB with no budget", "neither spec.minAvailable nor spec.maxUnavailable", func(m *manifests) { m.pdb.Spec.MaxUnavailable = nil }},
		{"PDB selecting other pods", "spec.selector", func(m *manifests) {
			m.pdb.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "other"}
		}},
		{"PDB that waits on unready pods", "spec.unhealthyPodEvictionPolicy is IfHealthyBudget", func(m *manifests) {
			m.pdb.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.IfHealthyBudget)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadManifests(t)
			c.edit(&m)
			err := errors.Join(checkScaling(m.deploy, m.hpa, m.pdb)...)
			if err == nil {
				t.Fatalf("accepted; want an error naming %q", c.field)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name %q", err, c.field)
			}
		})
	}
}

func TestNetworkPolicyPromisesRejectBadInput(t *testing.T) {
	cases := []struct {
		name  string
		field string
		edit  func(*networkingv1.NetworkPolicy)
	}{
		{"a rule without ports admits every port", "spec.ingress[0].ports is empty", func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress[0].Ports = nil
		}},
		{"another port", "spec.ingress[0].ports[0] is 9090", func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress[0].Ports[0].Port = ptr.To(intstr.FromInt32(9090))
		}},
		{"a port range from http", "spec.ingress[0].ports[0]", func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress[0].Ports[0].Port, np.Spec.Ingress[0].Ports[0].EndPort = ptr.To(intstr.FromInt32(8090)), ptr.To[int32](9000)
		}},
		{"UDP", "spec.ingress[0].ports[0].protocol is UDP", func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress[0].Ports[0].Protocol = ptr.To(corev1.ProtocolUDP)
		}},
		{"an empty selector takes the whole namespace", "spec.podSelector is empty", func(np *networkingv1.NetworkPolicy) {
			np.Spec.PodSelector.MatchLabels = nil
		}},
		{"egress allowed", "spec.egress", func(np *networkingv1.NetworkPolicy) {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
		}},
		{"ingress not filtered", "spec.policyTypes [Egress] lacks Ingress", func(np *networkingv1.NetworkPolicy) {
			np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadManifests(t)
			c.edit(m.netpol)
			err := errors.Join(checkNetworkPolicy(m.netpol, m.deploy)...)
			if err == nil {
				t.Fatalf("accepted; want an error naming %q", c.field)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name %q", err, c.field)
			}
		})
	}
}
