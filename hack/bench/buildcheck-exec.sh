#!/usr/bin/env bash
# What the Tiltfile's build-check step costs by itself, on one pod of the
# source strategy (docs/performance.md, "A broken save"): the round trip of
# a `kubectl exec` of `buildrec wait` on a build already recorded, and an
# in-pod `go build` alone and with one such exec fired during it. It deploys
# the committed HEAD with `tilt ci` and takes it down again.
#
#   flock -o /tmp/askeladden-cluster.lock bash hack/bench/buildcheck-exec.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
command -v tilt >/dev/null && command -v kubectl >/dev/null ||
	die "tilt and kubectl must be on PATH (see the README's end-to-end section)"
[ -n "${KUBECONFIG:-}" ] || die "KUBECONFIG is not set: this needs the cluster"

ns=askeladden-dev
dir=$(mktemp -d)
execs=()
cleanup() {
	local pid
	for pid in "${execs[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	(cd "$dir" && tilt down >/dev/null 2>&1) || true
	rm -rf "$dir"
}
trap cleanup EXIT
git -C "$ASKELADDEN_ROOT" archive HEAD | tar -x -C "$dir"
cd "$dir"
log "tilt ci (source strategy, no tests)"
TILT_WEB_MODE=prod timeout 10m tilt ci --host 127.0.0.1 --port 10377 --timeout 9m -- --no-tests >"$dir/tilt.log" 2>&1 ||
	die "tilt ci failed: $(tail -n 20 "$dir/tilt.log")"
pod=$(kubectl get pod -n "$ns" -l app.kubernetes.io/name=askeladden --field-selector=status.phase=Running -o name | head -n 1)
[ -n "$pod" ] || die "no running pod in $ns"

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
check() { kubectl exec -n "$ns" "$pod" -- buildrec wait -src /src /src/tmp/build-status.json >/dev/null; }

samples=()
for _ in $(seq 1 15); do
	s=$(date +%s%N)
	check
	samples+=("$(ms "$s")")
done
echo "exec of buildrec wait on a recorded build, ms: $(printf '%s\n' "${samples[@]}" | sort -n | tr '\n' ' ')"

# A copy of the sources, so air in the pod does not rebuild too.
kubectl exec -n "$ns" "$pod" -- sh -c 'rm -rf /home/nonroot/b && cp -r /src /home/nonroot/b && rm -rf /home/nonroot/b/tmp'
build() {
	kubectl exec -n "$ns" "$pod" -- sh -c "cd /home/nonroot/b && sed -i 's/^const quote = .*/const quote = \"q $1\"/' quote.go &&
		s=\$(date +%s%N) && go build -ldflags='-s -w' -o /home/nonroot/bx . && echo \$(((\$(date +%s%N) - s) / 1000000))"
}
build warm >/dev/null
alone=() with=()
for i in $(seq 1 10); do
	alone+=("$(build "a$i")")
	(sleep 0.15 && check) &
	execs=("$!")
	with+=("$(build "w$i")")
	wait "${execs[0]}"
	execs=()
done
echo "in-pod go build alone, ms: $(printf '%s\n' "${alone[@]}" | sort -n | tr '\n' ' ')"
echo "in-pod go build with one exec during it, ms: $(printf '%s\n' "${with[@]}" | sort -n | tr '\n' ' ')"
