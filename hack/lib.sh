#!/usr/bin/env bash
# The shell library every script here sources (.ci/run, hack/lint.sh,
# hack/build-tilt.sh, hack/cluster/*.sh): the one cache-directory default,
# the one apt installer, logging and the PID bookkeeping of the processes the
# scripts start. It sets no shell options of its own, so the caller's
# `set -euo pipefail` rules.

# shellcheck disable=SC2034 # used by the scripts that source this file
ASKELADDEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASKELADDEN_CACHE="${ASKELADDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/askeladden}"
ASKELADDEN_CLUSTER_DIR="${ASKELADDEN_CLUSTER_DIR:-/tmp/askeladden-cluster}"
# shellcheck disable=SC2034
ASKELADDEN_BIN="$ASKELADDEN_CACHE/bin"
# Every process the scripts start is recorded here, so that `down` stops those
# and nothing else that happens to share a name.
ASKELADDEN_PIDS="$ASKELADDEN_CLUSTER_DIR/pids"
ASKELADDEN_LOGS="$ASKELADDEN_CLUSTER_DIR/logs"

# The Go toolchain is not on root's PATH under sudo or in a bare CI shell.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

require_root() {
	[ "$(id -u)" = 0 ] || die "$1 must run as root (it starts containerd, kubelet and changes iptables)"
}

# Installs only what is missing, so a machine that already has everything
# never touches the network. The one `apt-get update` is shared across calls.
_apt_updated=""
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	log "installing ${missing[*]}"
	if [ -z "$_apt_updated" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed; cannot install ${missing[*]}"
		_apt_updated=1
	fi
	if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
		return 0
	fi
	# One at a time only on failure, to name the package that broke.
	for p in "${missing[@]}"; do
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >&2 ||
			die "apt-get install $p failed"
	done
}

# pid_alive NAME: the recorded process is still the one we started. The
# command line is compared too, so a recycled PID is never mistaken for ours.
pid_alive() {
	local f="$ASKELADDEN_PIDS/$1.pid" pid want
	[ -f "$f" ] || return 1
	pid="$(sed -n 1p "$f")"
	want="$(sed -n 2p "$f")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -d' ' -f1)" = "$want" ]
}

pid_of() { sed -n 1p "$ASKELADDEN_PIDS/$1.pid" 2>/dev/null || true; }

# start_bg NAME CMD...: starts CMD detached from this shell (its own session,
# so a Ctrl-C of the script or the end of a CI step does not take it down),
# logs to logs/NAME.log and records its PID.
start_bg() {
	local name="$1"
	shift
	mkdir -p "$ASKELADDEN_PIDS" "$ASKELADDEN_LOGS"
	# The daemon keeps none of the caller's other open files: a lock held
	# around `up` (flock) would otherwise stay held for the daemon's life.
	# Neither the subshell nor setsid forks (setsid does not when its caller
	# leads no process group, as a background job never does), so $! is the
	# daemon itself.
	(
		for fd in "/proc/$BASHPID/fd"/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
		done
		exec setsid "$@" </dev/null >>"$ASKELADDEN_LOGS/$name.log" 2>&1
	) &
	printf '%s\n%s\n' "$!" "$1" >"$ASKELADDEN_PIDS/$name.pid"
}

# stop_pid NAME [TIMEOUT]: SIGTERM, then SIGKILL after TIMEOUT seconds.
stop_pid() {
	local name="$1" timeout="${2:-15}" pid i
	if pid_alive "$name"; then
		pid="$(pid_of "$name")"
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < timeout * 10; i++)); do
			pid_alive "$name" || break
			sleep 0.1
		done
		if pid_alive "$name"; then
			log "$name did not stop in ${timeout}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	rm -f "$ASKELADDEN_PIDS/$name.pid"
}

# wait_for NAME TIMEOUT CMD...: polls CMD; on timeout shows NAME's log tail.
wait_for() {
	local name="$1" timeout="$2" start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ -f "$ASKELADDEN_PIDS/$name.pid" ] && ! pid_alive "$name"; then
			show_log "$name"
			die "$name exited during start-up"
		fi
		if ((SECONDS - start >= timeout)); then
			show_log "$name"
			die "$name not ready after ${timeout}s"
		fi
		sleep 0.2
	done
}

show_log() {
	local f="$ASKELADDEN_LOGS/$1.log"
	[ -f "$f" ] || return 0
	printf -- '--- last 40 lines of %s ---\n' "$f" >&2
	tail -n 40 "$f" >&2
	printf -- '---\n' >&2
}

docker_up() { docker info >/dev/null 2>&1; }

# Starts Debian's dockerd when no daemon answers. /var/lib/docker stays at its
# default so base images survive `cluster.sh down` and later runs.
ensure_dockerd() {
	if docker_up; then
		return 0
	fi
	command -v dockerd >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
	[ -x "$(command -v dockerd)" ] || die "dockerd not found; install docker.io"
	log "starting dockerd"
	start_bg dockerd "$(command -v dockerd)"
	wait_for dockerd 60 docker info
}

go_version() { go env GOVERSION; }
