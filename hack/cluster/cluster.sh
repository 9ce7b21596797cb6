#!/usr/bin/env bash
# A single-node Kubernetes cluster that looks like microk8s to Tilt, for the
# inner-loop tests. Test infrastructure only: no image can be pulled in CI, so
# every piece is built or installed here (components from the Go module proxy,
# the rest from Debian) and run as plain processes from one state directory.
#
#   hack/cluster/cluster.sh up       start (or finish starting) everything; idempotent
#   hack/cluster/cluster.sh down     stop what `up` started and remove its traces
#   hack/cluster/cluster.sh status   show each component; exit 0 only if all are up
#   hack/cluster/cluster.sh build    only build the Kubernetes and metrics-server binaries (no root needed)
#
# See hack/cluster/README.md for the layout and the choices behind it.
set -euo pipefail
# shellcheck source=hack/lib.sh source-path=SCRIPTDIR/../..
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

D="$ASKELADDEN_CLUSTER_DIR"
KUBECONFIG_FILE="$D/kubeconfig"
KUBE_VERSION="$(awk '$1 == "k8s.io/kubernetes" { print $2 } $1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' \
	"$ASKELADDEN_ROOT/tools/kube/go.mod" | head -1)"
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
METRICS_SERVER_VERSION="$(awk '$1 == "sigs.k8s.io/metrics-server" { print $2 } $1 == "require" && $2 == "sigs.k8s.io/metrics-server" { print $3 }' \
	"$ASKELADDEN_ROOT/tools/metrics-server/go.mod" | head -1)"
METRICS_SERVER_MANIFEST="$ASKELADDEN_ROOT/hack/cluster/metrics-server.yaml"

# The node address must not be a loopback one (kubelet and the "kubernetes"
# Service endpoints refuse those); it lives on lo so it never leaves the VM.
NODE_IP=10.200.0.1
NODE_NAME=askeladden
POD_CIDR=10.201.0.0/16
SERVICE_CIDR=10.202.0.0/24
API_PORT=16443 # microk8s' port
REGISTRY=localhost:32000
PAUSE_IMAGE="$REGISTRY/pause:askeladden"
METRICS_SERVER_IMAGE="$REGISTRY/metrics-server:$METRICS_SERVER_VERSION"
CNI_BRIDGE=askeladden0
DEV_NAMESPACE=askeladden-dev
# Start order; `down` walks it backwards.
COMPONENTS=(dockerd registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
PACKAGES=(docker.io etcd-server containerd runc containernetworking-plugins docker-registry iptables conntrack
	debootstrap openssl curl iproute2 ca-certificates)

kubectl() { "$ASKELADDEN_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
ctr_k8s() { ctr --address "$D/containerd/containerd.sock" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------- build

build_kube() {
	local stamp="$ASKELADDEN_BIN/.kubernetes.stamp" want="k8s.io/kubernetes $KUBE_VERSION" b absent=""
	[ -n "$KUBE_VERSION" ] || die "cannot read the k8s.io/kubernetes version from tools/kube/go.mod"
	for b in "${KUBE_BINARIES[@]}"; do [ -x "$ASKELADDEN_BIN/$b" ] || absent=1; done
	if [ -z "$absent" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	local minor ld="-s -w" pkgs=() p start=$SECONDS
	minor="$(cut -d. -f2 <<<"$KUBE_VERSION")"
	# Without these the servers report v0.0.0-master, and kubectl warns about skew.
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	log "building Kubernetes $KUBE_VERSION into $ASKELADDEN_BIN (about 10 minutes on 2 cores when cold)"
	mkdir -p "$ASKELADDEN_BIN"
	rm -f "$stamp"
	# One invocation: the six commands share most packages, which then compile once.
	(cd "$ASKELADDEN_ROOT/tools/kube" &&
		GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" CGO_ENABLED=0 \
			go build -ldflags "$ld" -o "$ASKELADDEN_BIN/" "${pkgs[@]}") ||
		die "building Kubernetes $KUBE_VERSION failed"
	printf '%s\n' "$want" >"$stamp"
	log "built Kubernetes $KUBE_VERSION in $((SECONDS - start))s"
}

# metrics-server, like microk8s' add-on, from the Go module proxy in its own
# tools module: its Kubernetes libraries are not the cluster's.
build_metrics_server() {
	local stamp="$ASKELADDEN_BIN/.metrics-server.stamp" want="sigs.k8s.io/metrics-server $METRICS_SERVER_VERSION"
	[ -n "$METRICS_SERVER_VERSION" ] || die "cannot read the sigs.k8s.io/metrics-server version from tools/metrics-server/go.mod"
	if [ -x "$ASKELADDEN_BIN/metrics-server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	local start=$SECONDS p=k8s.io/client-go/pkg/version
	log "building metrics-server $METRICS_SERVER_VERSION into $ASKELADDEN_BIN (a few minutes on 2 cores when cold)"
	mkdir -p "$ASKELADDEN_BIN"
	rm -f "$stamp"
	(cd "$ASKELADDEN_ROOT/tools/metrics-server" &&
		GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" CGO_ENABLED=0 \
			go build -trimpath -ldflags "-s -w -X $p.gitVersion=$METRICS_SERVER_VERSION -X $p.gitTreeState=clean" \
			-o "$ASKELADDEN_BIN/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server) ||
		die "building metrics-server $METRICS_SERVER_VERSION failed"
	printf '%s\n' "$want" >"$stamp"
	log "built metrics-server $METRICS_SERVER_VERSION in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- pieces

write_pki() {
	[ -f "$D/pki/tokens.csv" ] && return 0
	local p="$D/pki" token
	mkdir -p "$p" && chmod 700 "$p"
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=askeladden-ca" \
		-keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
		-keyout "$p/apiserver.key" -out "$p/apiserver.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%.*}.1" >"$p/apiserver.ext"
	openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
		-days 365 -extfile "$p/apiserver.ext" -out "$p/apiserver.crt" 2>/dev/null
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
	token="$(openssl rand -hex 24)"
	printf '%s,admin,admin,system:masters\n' "$token" >"$p/tokens.csv"
	cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: microk8s-cluster
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$p/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: microk8s
  context:
    cluster: microk8s-cluster
    user: admin
current-context: microk8s
EOF
	chmod 600 "$KUBECONFIG_FILE"
}

# The aggregation layer: kube-apiserver proxies /apis/metrics.k8s.io to
# metrics-server with this client certificate, and metrics-server trusts the
# X-Remote-User headers only from a certificate signed by this CA (which
# kube-apiserver publishes in kube-system/extension-apiserver-authentication).
# A CA of its own, as kubeadm and microk8s make, so no other client
# certificate of the cluster CA can claim to be the proxy.
write_front_proxy_pki() {
	local p="$D/pki"
	[ -f "$p/front-proxy-client.crt" ] && return 0
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=front-proxy-ca" \
		-keyout "$p/front-proxy-ca.key" -out "$p/front-proxy-ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=front-proxy-client" \
		-keyout "$p/front-proxy-client.key" -out "$p/front-proxy-client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$p/front-proxy-client.ext"
	openssl x509 -req -in "$p/front-proxy-client.csr" -CA "$p/front-proxy-ca.crt" -CAkey "$p/front-proxy-ca.key" \
		-CAcreateserial -days 365 -extfile "$p/front-proxy-client.ext" -out "$p/front-proxy-client.crt" 2>/dev/null
}

start_registry() {
	pid_alive registry && return 0
	mkdir -p "$D/registry/storage"
	cat >"$D/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $D/registry/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:32000
EOF
	log "starting registry on $REGISTRY"
	start_bg registry "$(command -v docker-registry)" serve "$D/registry/config.yml"
	wait_for registry 30 curl -sf http://127.0.0.1:32000/v2/
}

push_pause() {
	if curl -sf -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:32000/v2/pause/manifests/askeladden"; then
		return 0
	fi
	local w="$D/pause"
	mkdir -p "$w"
	# Built in a throwaway module: the root go.mod may be mid-edit, and this
	# program needs nothing but the standard library.
	cp "$ASKELADDEN_ROOT/hack/cluster/pause/main.go" "$w/main.go"
	printf 'module pause\n\ngo 1.22\n' >"$w/go.mod"
	(cd "$w" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o pause .) || die "building hack/cluster/pause failed"
	cat >"$w/Dockerfile" <<'EOF'
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
	log "pushing $PAUSE_IMAGE"
	DOCKER_BUILDKIT=0 docker build -q -t "$PAUSE_IMAGE" -f "$w/Dockerfile" "$w" >/dev/null 2>"$w/build.log" ||
		{
			cat "$w/build.log" >&2
			die "docker build of the pause image failed"
		}
	docker push "$PAUSE_IMAGE" >"$w/push.log" 2>&1 || {
		cat "$w/push.log" >&2
		die "docker push $PAUSE_IMAGE failed"
	}
}

# The registry is emptied by `down`, so every `up` pushes again; the local
# tag is removed after the push, so docker keeps nothing of it.
push_metrics_server() {
	if curl -sf -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:32000/v2/metrics-server/manifests/$METRICS_SERVER_VERSION"; then
		return 0
	fi
	build_metrics_server
	local w="$D/metrics-server"
	mkdir -p "$w"
	cp "$ASKELADDEN_BIN/metrics-server" "$w/metrics-server"
	cat >"$w/Dockerfile" <<'EOF'
FROM scratch
COPY metrics-server /metrics-server
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
EOF
	log "pushing $METRICS_SERVER_IMAGE"
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$METRICS_SERVER_IMAGE" -f "$w/Dockerfile" "$w" >/dev/null 2>"$w/build.log"; then
		cat "$w/build.log" >&2
		die "docker build of the metrics-server image failed"
	fi
	if ! docker push "$METRICS_SERVER_IMAGE" >"$w/push.log" 2>&1; then
		cat "$w/push.log" >&2
		die "docker push $METRICS_SERVER_IMAGE failed"
	fi
	docker rmi "$METRICS_SERVER_IMAGE" >/dev/null 2>&1 || true
	rm -f "$w/metrics-server"
}

setup_host_network() {
	ip -4 addr show dev lo | grep -q " $NODE_IP/32 " || ip addr add "$NODE_IP/32" dev lo
	sysctl -qw net.ipv4.ip_forward=1
	# Pod-to-Service traffic that comes back to the same bridge must cross
	# iptables; br_netfilter may be built in (then modprobe has nothing to do).
	modprobe br_netfilter 2>/dev/null || true
	[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
	# kube-proxy turns route_localnet on for NodePorts on localhost; remember the
	# value it found so that `down` can put it back.
	[ -f "$D/route_localnet.orig" ] || sysctl -n net.ipv4.conf.all.route_localnet >"$D/route_localnet.orig"
	# dockerd sets the FORWARD policy to DROP. A pod calling a Service whose
	# endpoint is on the same bridge is routed through the host (DNAT to the
	# pod IP, back out the bridge), and kube-proxy accepts only what it
	# marked for masquerading or what is already established: without these
	# rules, pod-to-Service traffic is dropped (host-to-pod is not forwarded,
	# so the NodePort and the apiserver never showed it). The same two rules
	# dockerd keeps for docker0, in a chain of our own that `down` removes.
	local chain=ASKELADDEN-FORWARD
	iptables -N "$chain" 2>/dev/null || true
	iptables -C "$chain" -i "$CNI_BRIDGE" -o "$CNI_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -A "$chain" -i "$CNI_BRIDGE" -o "$CNI_BRIDGE" -j ACCEPT
	iptables -C "$chain" -i "$CNI_BRIDGE" ! -o "$CNI_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -A "$chain" -i "$CNI_BRIDGE" ! -o "$CNI_BRIDGE" -j ACCEPT
	iptables -C FORWARD -j "$chain" 2>/dev/null || iptables -I FORWARD 1 -j "$chain"
	guard_localhost_nodeports
}

# A connection to a localhost NodePort that kube-proxy has no rule for yet
# (a new Service, or one whose endpoints are not programmed) is not NATed:
# the host answers it with a reset, and conntrack keeps that un-NATed entry
# (10 s once closed, 120 s while a SYN waits). A later connection that the
# kernel gives the same source port matches the old entry, so it is never
# NATed either and is refused, although the Service now has endpoints: the
# "bursts of refused connections" on localhost:30008. Rejecting such a SYN
# in filter OUTPUT, before conntrack confirms its entry, refuses that one
# attempt and leaves nothing behind. hack/cluster/README.md has the details.
# The registry's port is exempt: a real listener inside the NodePort range.
LOCAL_NODEPORT_CHAIN=ASKELADDEN-LOCAL-NODEPORTS
guard_localhost_nodeports() {
	local c=$LOCAL_NODEPORT_CHAIN port=${REGISTRY##*:} ports=30000:32767
	if ((port > 30000 && port < 32767)); then
		ports="30000:$((port - 1)),$((port + 1)):32767"
	fi
	iptables -w -N "$c" 2>/dev/null || iptables -w -F "$c"
	iptables -w -A "$c" -p tcp --syn -d 127.0.0.0/8 -m multiport --dports "$ports" \
		-m conntrack ! --ctstate DNAT -m comment --comment "localhost NodePort without a rule: refuse, keep no conntrack entry" \
		-j REJECT --reject-with tcp-reset
	iptables -w -C OUTPUT -j "$c" 2>/dev/null || iptables -w -I OUTPUT -j "$c"
}

start_containerd() {
	pid_alive containerd && return 0
	local c="$D/containerd"
	mkdir -p "$c/root" "$c/state" "$c/opt" "$c/certs.d/$REGISTRY" "$D/cni/net.d" "$D/cni/ipam"
	cat >"$c/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve", "push"]
EOF
	# containerd's CRI plugin sets up the pod's lo itself with the loopback plugin
	# from bin_dir, and reads only the first file here, so one conflist it is.
	cat >"$D/cni/net.d/10-askeladden.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "askeladden",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$D/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
	cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"

[grpc]
  address = "$c/containerd.sock"

[ttrpc]
  address = "$c/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM lacks CAP_SYS_RESOURCE: lowering oom_score_adj for the sandbox
  # (-998) is denied and every pod would fail to start.
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
	log "starting containerd for Kubernetes"
	start_bg containerd "$(command -v containerd)" --config "$c/config.toml"
	wait_for containerd 30 ctr --address "$c/containerd.sock" version
}

start_etcd() {
	pid_alive etcd && return 0
	mkdir -p "$D/etcd" && chmod 700 "$D/etcd"
	log "starting etcd"
	start_bg etcd "$(command -v etcd)" --name askeladden --data-dir "$D/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster askeladden=http://127.0.0.1:2380
	wait_for etcd 30 curl -sf http://127.0.0.1:2379/health
}

start_apiserver() {
	pid_alive kube-apiserver && return 0
	local p="$D/pki"
	log "starting kube-apiserver on 127.0.0.1:$API_PORT"
	start_bg kube-apiserver "$ASKELADDEN_BIN/kube-apiserver" \
		--etcd-servers=http://127.0.0.1:2379 \
		--bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
		--cert-dir="$p" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
		--client-ca-file="$p/ca.crt" \
		--token-auth-file="$p/tokens.csv" --authorization-mode=AlwaysAllow \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--kubelet-preferred-address-types=InternalIP,Hostname \
		--requestheader-client-ca-file="$p/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$p/front-proxy-client.crt" --proxy-client-key-file="$p/front-proxy-client.key" \
		--enable-aggregator-routing=true \
		--allow-privileged=true --profiling=false
	wait_for kube-apiserver 120 kubectl get --raw /readyz
}

start_controller_manager() {
	pid_alive kube-controller-manager && return 0
	log "starting kube-controller-manager"
	# The service-account key lets the token controller and the root CA
	# publisher give every namespace a usable "default" ServiceAccount.
	start_bg kube-controller-manager "$ASKELADDEN_BIN/kube-controller-manager" \
		--kubeconfig="$KUBECONFIG_FILE" --bind-address=127.0.0.1 --leader-elect=false \
		--service-account-private-key-file="$D/pki/sa.key" --root-ca-file="$D/pki/ca.crt" \
		--use-service-account-credentials=false --service-cluster-ip-range="$SERVICE_CIDR" \
		--allocate-node-cidrs=false --profiling=false
	wait_for kube-controller-manager 60 curl -skf https://127.0.0.1:10257/healthz
}

start_scheduler() {
	pid_alive kube-scheduler && return 0
	log "starting kube-scheduler"
	start_bg kube-scheduler "$ASKELADDEN_BIN/kube-scheduler" \
		--kubeconfig="$KUBECONFIG_FILE" --bind-address=127.0.0.1 --leader-elect=false --profiling=false
	wait_for kube-scheduler 60 curl -skf https://127.0.0.1:10259/healthz
}

start_kubelet() {
	pid_alive kubelet && return 0
	mkdir -p "$D/kubelet/root" "$D/kubelet/pki"
	cat >"$D/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# kube-apiserver reaches the kubelet (exec, logs, port-forward) with no client
# certificate; this is a throwaway test node.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$D/containerd/containerd.sock
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# A nearly full CI disk must not evict the pods under test or drop images.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
	log "starting kubelet"
	start_bg kubelet "$ASKELADDEN_BIN/kubelet" \
		--config="$D/kubelet/config.yaml" --kubeconfig="$KUBECONFIG_FILE" \
		--root-dir="$D/kubelet/root" --cert-dir="$D/kubelet/pki" \
		--hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
	wait_for kubelet 60 curl -sf http://127.0.0.1:10248/healthz
}

start_kube_proxy() {
	pid_alive kube-proxy && return 0
	mkdir -p "$D/kube-proxy"
	cat >"$D/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $KUBECONFIG_FILE
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts on localhost (kube-proxy then sets route_localnet) and the node IP.
nodePortAddresses: ["127.0.0.0/8", "$NODE_IP/32"]
iptables:
  localhostNodePorts: true
  # Program new endpoints at once rather than batching them for a second.
  minSyncPeriod: 0s
# Leave the machine's conntrack sysctls alone; a VM may not allow writing them.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
	log "starting kube-proxy"
	start_bg kube-proxy "$ASKELADDEN_BIN/kube-proxy" --config="$D/kube-proxy/config.yaml"
	wait_for kube-proxy 60 curl -sf http://127.0.0.1:10256/healthz
}

node_ready() {
	[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

apply_addons() {
	# What microk8s' registry add-on publishes; Tilt reads it to push images.
	kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "$REGISTRY"
    help: "https://microk8s.io/docs/registry-built-in"
EOF
	# Only when missing: the project's own manifests may manage it later.
	if ! kubectl get namespace "$DEV_NAMESPACE" >/dev/null 2>&1; then
		kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $DEV_NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/audit: restricted
    pod-security.kubernetes.io/warn: restricted
EOF
	fi
	local ns
	for ns in default "$DEV_NAMESPACE"; do
		wait_for kube-controller-manager 60 kubectl -n "$ns" get serviceaccount default
		wait_for kube-controller-manager 60 kubectl -n "$ns" get configmap kube-root-ca.crt
	done
	apply_metrics_server
}

metrics_available() {
	[ "$(kubectl get apiservice v1beta1.metrics.k8s.io -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ] &&
		kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes >/dev/null 2>&1
}

apply_metrics_server() {
	grep -q "image: $METRICS_SERVER_IMAGE\$" "$METRICS_SERVER_MANIFEST" ||
		die "$METRICS_SERVER_MANIFEST does not run $METRICS_SERVER_IMAGE (the version in tools/metrics-server/go.mod)"
	push_metrics_server
	kubectl apply -f "$METRICS_SERVER_MANIFEST" >/dev/null
	log "waiting for metrics-server to serve metrics.k8s.io"
	local start=$SECONDS
	# Its first answer needs two kubelet scrapes (a rate needs two samples).
	until metrics_available; do
		if ((SECONDS - start >= 120)); then
			kubectl -n kube-system get pods -l app.kubernetes.io/name=metrics-server -o wide >&2 || true
			kubectl -n kube-system logs -l app.kubernetes.io/name=metrics-server --tail=40 >&2 || true
			kubectl get apiservice v1beta1.metrics.k8s.io -o yaml >&2 || true
			die "metrics-server did not serve metrics.k8s.io within 120s"
		fi
		sleep 1
	done
	log "metrics-server serving after $((SECONDS - start))s"
}

print_exports() {
	cat <<EOF
export KUBECONFIG=$KUBECONFIG_FILE
export PATH=$ASKELADDEN_BIN:\$PATH
EOF
}

# ---------------------------------------------------------------- commands

all_running() {
	local c
	docker_up || return 1
	for c in "${COMPONENTS[@]}"; do
		[ "$c" = dockerd ] && continue
		pid_alive "$c" || return 1
	done
	node_ready
}

cmd_up() {
	require_root "hack/cluster/cluster.sh up"
	local start=$SECONDS
	if [ -x "$ASKELADDEN_BIN/kubectl" ] && all_running; then
		log "cluster already up (node $NODE_NAME Ready)"
		# A cluster started by an older version of this script lacks it.
		guard_localhost_nodeports
		print_exports
		return 0
	fi
	ensure_packages "${PACKAGES[@]}"
	clean_stale_state
	mkdir -p "$D" "$ASKELADDEN_PIDS" "$ASKELADDEN_LOGS"
	ensure_dockerd
	bash "$ASKELADDEN_ROOT/hack/cluster/base-images.sh"
	build_kube
	build_metrics_server
	start_registry
	push_pause
	setup_host_network
	write_pki
	write_front_proxy_pki
	start_containerd
	start_etcd
	start_apiserver
	start_controller_manager
	start_scheduler
	start_kubelet
	start_kube_proxy
	log "waiting for node $NODE_NAME to be Ready"
	wait_for kubelet 120 node_ready
	apply_addons
	log "cluster up in $((SECONDS - start))s; to use it:"
	print_exports
}

# Deleting the pods through the API lets kubelet tear them down properly
# (CNI DEL, network namespaces, volume mounts); the controllers are stopped
# first so nothing recreates them.
drain_pods() {
	pid_alive kubelet && pid_alive kube-apiserver || return 0
	kubectl get --raw /readyz >/dev/null 2>&1 || return 0
	stop_pid kube-controller-manager
	stop_pid kube-scheduler
	log "deleting all pods"
	kubectl delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
	local i
	for ((i = 0; i < 150; i++)); do
		[ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ] && return 0
		sleep 0.2
	done
	log "pods still running after 30s; removing them directly"
}

# For what the drain left (kubelet dead or stuck): kill and remove every
# container of our containerd, and release the network namespaces the CRI
# plugin bind-mounted for its sandboxes.
remove_containers() {
	pid_alive containerd || return 0
	local id ns
	for id in $(ctr_k8s containers ls -q 2>/dev/null); do
		ns="$(ctr_k8s containers info "$id" 2>/dev/null | grep -o '"/var/run/netns/[^"]*"\|"/run/netns/[^"]*"' | tr -d '"' | head -1 || true)"
		ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true
		ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
		if [ -n "$ns" ] && [ -e "$ns" ]; then
			umount "$ns" 2>/dev/null || true
			rm -f "$ns"
		fi
	done
}

unmount_state() {
	local m
	# Deepest first: reverse order sorts /a/b/c before /a/b.
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
	done < <(awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

# purge_iptables CMD PATTERN: drop chains whose names match PATTERN (an ERE)
# and every rule that jumps to them, in all tables, through one restore per table.
purge_iptables() {
	local cmd="$1" re="$2" table dump script
	[ -n "$re" ] && command -v "$cmd" >/dev/null 2>&1 || return 0
	for table in filter nat mangle raw; do
		dump="$("$cmd-save" -t "$table" 2>/dev/null)" || continue
		script="$(awk -v re="^($re)\$" '
			/^:/ { c = substr($1, 2); if (c ~ re) chains[++n] = c; next }
			/^-A / { if ($2 !~ re && match($0, / -j [^ ]+/)) { t = substr($0, RSTART + 4, RLENGTH - 4); if (t ~ re) { sub(/^-A /, "-D "); print } } }
			END { for (i = 1; i <= n; i++) print "-F " chains[i]; for (i = 1; i <= n; i++) print "-X " chains[i] }
		' <<<"$dump")"
		[ -n "$script" ] || continue
		printf '*%s\n%s\nCOMMIT\n' "$table" "$script" | "$cmd-restore" --noflush ||
			log "could not remove all $re chains from $cmd table $table"
	done
}

# teardown FIRST: stops COMPONENTS[FIRST..] in reverse order and removes every
# trace of the cluster; with FIRST=1 dockerd (and its pid file) survives.
teardown() {
	local first="$1" i
	drain_pods
	remove_containers
	for ((i = ${#COMPONENTS[@]} - 1; i >= first; i--)); do
		case "${COMPONENTS[i]}" in
		containerd)
			remove_containers
			stop_pid containerd
			;;
		# Its graceful shutdown waits up to a minute for idle connections; the
		# data it would protect is deleted below anyway.
		kube-apiserver) stop_pid kube-apiserver 3 ;;
		*) stop_pid "${COMPONENTS[i]}" ;;
		esac
	done
	unmount_state
	if [ -x "$ASKELADDEN_BIN/kube-proxy" ]; then
		"$ASKELADDEN_BIN/kube-proxy" --cleanup >"$ASKELADDEN_LOGS/kube-proxy-cleanup.log" 2>&1 || true
	fi
	# kube-proxy --cleanup leaves kubelet's own chains (KUBE-FIREWALL, canaries).
	purge_iptables iptables 'KUBE-[A-Z0-9-]+'
	purge_iptables iptables 'ASKELADDEN-FORWARD'
	purge_iptables ip6tables 'KUBE-[A-Z0-9-]+'
	purge_iptables iptables "$LOCAL_NODEPORT_CHAIN"
	if [ -f "$D/route_localnet.orig" ]; then
		sysctl -qw net.ipv4.conf.all.route_localnet="$(cat "$D/route_localnet.orig")" || true
	fi
	if ip -4 addr show dev lo | grep -q " $NODE_IP/32 "; then
		ip addr del "$NODE_IP/32" dev lo
	fi
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
		ip link delete "$CNI_BRIDGE"
	fi
	# Only when kubelet could not run CNI DEL: bridge masquerade chains of pods.
	purge_iptables iptables "$(iptables-save -t nat 2>/dev/null | grep 'name: \\"askeladden\\"' |
		grep -o -- '-j CNI-[A-Za-z0-9-]*' | cut -c4- | sort -u | paste -sd'|' || true)"
	unmount_state
	# kubelet's cgroupfs driver leaves the (now empty) pod cgroups behind.
	find /sys/fs/cgroup -depth -type d -path '*/kubepods*' -exec rmdir {} + 2>/dev/null || true
	local keep=""
	if ((first > 0)) && [ -f "$ASKELADDEN_PIDS/dockerd.pid" ]; then
		keep="$(cat "$ASKELADDEN_PIDS/dockerd.pid")"
	fi
	# --one-file-system: never follow a mount that survived into another tree.
	rm -rf --one-file-system "$D"
	if [ -n "$keep" ]; then
		mkdir -p "$ASKELADDEN_PIDS" && printf '%s\n' "$keep" >"$ASKELADDEN_PIDS/dockerd.pid"
	fi
}

cmd_down() {
	[ -d "$D" ] || return 0
	require_root "hack/cluster/cluster.sh down"
	teardown 0
	log "cluster down"
}

# A state dir whose cluster processes are all gone (killed at the end of a CI
# step or a session, or a reboot) still holds mounts, an old etcd and CNI
# leases: start from a clean slate rather than on top of it.
clean_stale_state() {
	[ -d "$D/pki" ] || return 0
	local c
	for c in "${COMPONENTS[@]:2}"; do
		pid_alive "$c" && return 0
	done
	log "no cluster process of an earlier run is alive; removing its state first"
	# Its containerd, revived on the old state, is what can still reach the
	# orphaned shims and tell which network namespaces its sandboxes held.
	if [ -f "$D/containerd/config.toml" ]; then
		start_bg containerd "$(command -v containerd)" --config "$D/containerd/config.toml"
		wait_for containerd 30 ctr --address "$D/containerd/containerd.sock" version
	fi
	teardown 1
}

cmd_status() {
	local c ok=0 state
	for c in "${COMPONENTS[@]}"; do
		if pid_alive "$c"; then
			state="running (pid $(pid_of "$c"))"
		elif [ "$c" = dockerd ] && docker_up; then
			state="running (not started by cluster.sh)"
		else
			state="stopped"
			ok=1
		fi
		printf '%-24s %s\n' "$c" "$state"
	done
	if [ -x "$ASKELADDEN_BIN/kubectl" ] && [ -f "$KUBECONFIG_FILE" ] && node_ready; then
		printf '%-24s %s\n' "node $NODE_NAME" Ready
	else
		printf '%-24s %s\n' "node $NODE_NAME" "not Ready"
		ok=1
	fi
	return "$ok"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
build) build_kube && build_metrics_server ;;
*)
	echo "usage: $0 up|down|status|build" >&2
	exit 2
	;;
esac
