//go:build tools

// Package tools pins the Kubernetes release that hack/cluster/cluster.sh builds its
// single-node test cluster from. No image registry is reachable in CI, so the
// components are compiled from the Go module proxy instead of downloaded.
//
// Build with hack/cluster/cluster.sh (it sets the version ldflags the binaries need to
// report v1.34.4 instead of v0.0.0-master).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
