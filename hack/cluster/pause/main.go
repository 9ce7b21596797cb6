// Command pause is the pod sandbox ("infra") container of the local test
// cluster. No registry with the upstream pause image is reachable in CI, so
// hack/cluster/cluster.sh builds this one FROM scratch and points containerd at it.
//
// It only has to hold the pod's namespaces open until the runtime stops it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
