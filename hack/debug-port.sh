#!/usr/bin/env bash
# The Tiltfile's check under --debug: prints one line naming whoever holds
# local TCP port $1, or nothing when the port is free or held by the Tilt
# that runs this script (its port-forward, from an earlier load of the
# Tiltfile). Without it a taken port shows only as "address already in use"
# deep in the resource's log, and the debugger never connects.
set -euo pipefail

port=${1:-}
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
	echo "usage: debug-port.sh PORT (1-65535), got '${port}'" >&2
	exit 2
fi

# PIDs listening on the port, where the system lets us see them; "?" for a
# listener whose owner is hidden (another user's process).
listeners() {
	if command -v ss >/dev/null 2>&1; then
		local line pid
		while IFS= read -r line; do
			pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2 || true)
			echo "${pid:-?}"
		done < <(ss -Hltnp "( sport = :$port )" 2>/dev/null)
	elif command -v lsof >/dev/null 2>&1; then
		lsof -nP -iTCP:"$port" -sTCP:LISTEN -t 2>/dev/null || true
	fi
}

# This script's ancestors: Tilt is one of them.
ancestors=" "
pid=$$
while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
	ancestors+="$pid "
	pid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
done

while IFS= read -r holder; do
	[ -n "$holder" ] || continue
	case "$ancestors" in *" $holder "*) continue ;; esac
	if [ "$holder" = "?" ]; then
		who="another user's process"
	else
		who="$(ps -o comm= -p "$holder" 2>/dev/null || echo '?') (pid $holder)"
	fi
	echo "--debug: local port $port is already taken by $who, so Tilt cannot forward the debugger there. Stop it (a laptop debug loop, go tool air -c .air.debug.toml, listens on 2345 too) or pass --debug-port=PORT."
	exit 0
done < <(listeners | sort -u)
