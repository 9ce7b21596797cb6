package checks

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// minScaleDownWindow is the shortest scale-down stabilization window that
// still rides out a load arriving in waves (the HPA syncs every 15 s and
// metrics-server reports every 15 to 60 s).
const minScaleDownWindow = 60

// checkScaling returns every way the Deployment, its HPA and its PDB break
// what they promise together: at least two pods, an HPA on CPU that can
// scale and does not flap, and a disruption budget that lets a drain
// proceed at the HPA's smallest size. Each error names the object and the
// field to change.
func checkScaling(d *appsv1.Deployment, hpa *autoscalingv2.HorizontalPodAutoscaler, pdb *policyv1.PodDisruptionBudget) []error {
	var errs []error
	fail := func(kind, name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s: %s", kind, name, fmt.Sprintf(format, args...)))
	}
	const dk, hk, pk = "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"

	replicas := int32(1) // the API's default
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas < 2 {
		fail(dk, d.Name, "spec.replicas is %d: one pod cannot be drained or updated without a gap; want at least 2", replicas)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Resources.Requests.Cpu().IsZero() {
			fail(dk, d.Name, "spec.template.spec.containers[%s].resources.requests.cpu is unset: the HPA's CPU utilisation is a share of it", c.Name)
		}
	}

	// The HPA.
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != dk || ref.Name != d.Name || hpa.Namespace != d.Namespace {
		fail(hk, hpa.Name, "spec.scaleTargetRef is %s %s/%s in namespace %q, want apps/v1 Deployment %s in %q", ref.APIVersion, ref.Kind, ref.Name, hpa.Namespace, d.Name, d.Namespace)
	}
	minReplicas := int32(1) // the API's default
	if hpa.Spec.MinReplicas == nil {
		fail(hk, hpa.Name, "spec.minReplicas is unset (the API defaults it to 1); want at least 2")
	} else {
		minReplicas = *hpa.Spec.MinReplicas
		if minReplicas < 2 {
			fail(hk, hpa.Name, "spec.minReplicas is %d; want at least 2, so that one pod can be evicted while another serves", minReplicas)
		}
	}
	maxReplicas := hpa.Spec.MaxReplicas
	switch {
	case minReplicas > maxReplicas:
		fail(hk, hpa.Name, "spec.minReplicas (%d) is above spec.maxReplicas (%d)", minReplicas, maxReplicas)
	case minReplicas == maxReplicas:
		fail(hk, hpa.Name, "spec.maxReplicas (%d) equals spec.minReplicas: the HPA can never scale", maxReplicas)
	}
	if replicas < minReplicas || replicas > maxReplicas {
		fail(dk, d.Name, "spec.replicas (%d) is outside the HPA's spec.minReplicas..spec.maxReplicas (%d..%d): every apply would fight the HPA", replicas, minReplicas, maxReplicas)
	}
	cpu := false
	for i, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil || m.Resource.Name != corev1.ResourceCPU {
			continue
		}
		cpu = true
		tg := m.Resource.Target
		if tg.Type != autoscalingv2.UtilizationMetricType || tg.AverageUtilization == nil || *tg.AverageUtilization < 1 || *tg.AverageUtilization > 100 {
			fail(hk, hpa.Name, "spec.metrics[%d].resource.target: want type Utilization with averageUtilization in 1..100, got %s %v", i, tg.Type, ptrValue(tg.AverageUtilization))
		}
	}
	if !cpu {
		fail(hk, hpa.Name, "spec.metrics has no Resource metric on cpu")
	}
	var down *autoscalingv2.HPAScalingRules
	if hpa.Spec.Behavior != nil {
		down = hpa.Spec.Behavior.ScaleDown
	}
	switch {
	case down == nil:
		fail(hk, hpa.Name, "spec.behavior.scaleDown is unset: say how fast it may scale in, with a stabilization window of at least %ds", minScaleDownWindow)
	case down.StabilizationWindowSeconds == nil || *down.StabilizationWindowSeconds < minScaleDownWindow:
		fail(hk, hpa.Name, "spec.behavior.scaleDown.stabilizationWindowSeconds is %v: under %ds the HPA removes pods between two waves of load and adds them back (flapping)", ptrValue(down.StabilizationWindowSeconds), minScaleDownWindow)
	}
	if down != nil {
		if down.SelectPolicy != nil && *down.SelectPolicy == autoscalingv2.DisabledPolicySelect {
			fail(hk, hpa.Name, "spec.behavior.scaleDown.selectPolicy is Disabled: it would never scale back in")
		}
		for i, p := range down.Policies {
			if p.Value < 1 || p.PeriodSeconds < 1 {
				fail(hk, hpa.Name, "spec.behavior.scaleDown.policies[%d]: value %d per %ds; both must be positive", i, p.Value, p.PeriodSeconds)
			}
		}
	}

	// The PDB, at the smallest size the HPA allows.
	if pdb.Namespace != d.Namespace {
		fail(pk, pdb.Name, "metadata.namespace %q, want the Deployment's %q", pdb.Namespace, d.Namespace)
	}
	if !selects(pdb.Spec.Selector, d.Spec.Template.Labels) {
		fail(pk, pdb.Name, "spec.selector %v does not select the Deployment's pods (labels %v)", pdb.Spec.Selector, d.Spec.Template.Labels)
	}
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil:
		fail(pk, pdb.Name, "spec.minAvailable and spec.maxUnavailable are both set; the API takes one")
	case pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil:
		fail(pk, pdb.Name, "neither spec.minAvailable nor spec.maxUnavailable is set: the budget protects nothing")
	case pdb.Spec.MaxUnavailable != nil:
		// The disruption controller rounds percentages up.
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(minReplicas), true)
		switch {
		case err != nil:
			fail(pk, pdb.Name, "spec.maxUnavailable: %v", err)
		case n < 1:
			fail(pk, pdb.Name, "spec.maxUnavailable is %s: no pod may ever be evicted, so every node drain blocks", pdb.Spec.MaxUnavailable.String())
		case int32(n) >= minReplicas:
			fail(pk, pdb.Name, "spec.maxUnavailable (%s) lets a drain evict all %d pods at the HPA's spec.minReplicas at once; want fewer than spec.minReplicas", pdb.Spec.MaxUnavailable.String(), minReplicas)
		}
	default:
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(minReplicas), true)
		switch {
		case err != nil:
			fail(pk, pdb.Name, "spec.minAvailable: %v", err)
		case int32(n)+1 > minReplicas:
			fail(pk, pdb.Name, "spec.minAvailable (%s) allows no eviction at the HPA's spec.minReplicas (%d), so a drain blocks: want spec.minReplicas >= spec.minAvailable + 1", pdb.Spec.MinAvailable.String(), minReplicas)
		case n < 1:
			fail(pk, pdb.Name, "spec.minAvailable (%s) keeps no pod serving through a drain; want at least 1", pdb.Spec.MinAvailable.String())
		}
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		fail(pk, pdb.Name, "spec.unhealthyPodEvictionPolicy is %v: want AlwaysAllow, or a pod that never gets ready can block a drain", ptrValue(p))
	}
	return errs
}

// checkNetworkPolicy returns every way the policy fails to admit exactly
// the Deployment's http port: it must select the pods, and each ingress
// rule must name ports, all of them http.
func checkNetworkPolicy(np *networkingv1.NetworkPolicy, d *appsv1.Deployment) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("NetworkPolicy %s: %s", np.Name, fmt.Sprintf(format, args...)))
	}
	if np.Namespace != d.Namespace {
		fail("metadata.namespace %q, want the Deployment's %q", np.Namespace, d.Namespace)
	}
	sel := np.Spec.PodSelector
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		fail("spec.podSelector is empty: it would apply to every pod in the namespace")
	} else if !selects(&sel, d.Spec.Template.Labels) {
		fail("spec.podSelector %v does not select the Deployment's pods (labels %v)", sel, d.Spec.Template.Labels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		fail("spec.policyTypes %v lacks Ingress: nothing would be filtered on the way in", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) == 0 {
		fail("spec.ingress is empty: it would admit nothing, not even the http port")
	}
	var http *corev1.ContainerPort
	for _, c := range d.Spec.Template.Spec.Containers {
		for i := range c.Ports {
			if c.Ports[i].Name == "http" {
				http = &c.Ports[i]
			}
		}
	}
	if http == nil {
		fail("the Deployment's containers have no port named http to admit")
		return errs
	}
	for i, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			fail("spec.ingress[%d].ports is empty, which admits every port; want only http", i)
		}
		for j, p := range r.Ports {
			isHTTP := p.Port != nil && (p.Port.String() == http.Name || (p.Port.Type == intstr.Int && p.Port.IntVal == http.ContainerPort))
			if !isHTTP || p.EndPort != nil {
				port := "every port"
				if p.Port != nil {
					port = p.Port.String()
				}
				if p.EndPort != nil {
					port += fmt.Sprintf(" to %d", *p.EndPort)
				}
				fail("spec.ingress[%d].ports[%d] is %s: want only the http port (%s, %d)", i, j, port, http.Name, http.ContainerPort)
			}
			if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
				fail("spec.ingress[%d].ports[%d].protocol is %s, want TCP", i, j, *p.Protocol)
			}
		}
	}
	// The app opens no connection, so nothing goes out either.
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) != 0 {
		fail("spec.policyTypes %v with %d spec.egress rules: the app calls nothing, want Egress listed and no egress rule", np.Spec.PolicyTypes, len(np.Spec.Egress))
	}
	return errs
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(podLabels))
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}
