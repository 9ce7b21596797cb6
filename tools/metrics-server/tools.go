//go:build tools

// Package tools pins the metrics-server release that the test cluster runs,
// as microk8s' metrics-server add-on does. No image registry is reachable in
// CI, so hack/cluster/cluster.sh compiles it from the Go module proxy and wraps the
// static binary in a FROM scratch image of its own.
//
// Its own module: metrics-server brings k8s.io/apiserver and friends at
// versions of its choosing, which must not meet the service's go.mod or the
// Kubernetes release in tools/kube.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
