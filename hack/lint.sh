#!/usr/bin/env bash
# The static checks, in one place for CI and for a developer: gofmt, go vet
# and golangci-lint on every Go module, shellcheck and shfmt on every shell
# script. The linters are pinned in tools/lint and built into
# $ASKELADDEN_CACHE/bin on first use; shellcheck is Debian's.
set -euo pipefail
# shellcheck source=hack/lib.sh source-path=SCRIPTDIR/..
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ASKELADDEN_ROOT"

# The modules go.work joins, and the tools modules outside it.
modules=(. checks e2e hack)

build_linters() {
	local want have
	want="$(sha256sum tools/lint/go.mod tools/lint/go.sum | sha256sum | cut -c1-16) $(go env GOVERSION)"
	have="$(cat "$ASKELADDEN_BIN/.lint.stamp" 2>/dev/null || true)"
	if [ "$want" = "$have" ] && [ -x "$ASKELADDEN_BIN/golangci-lint" ] && [ -x "$ASKELADDEN_BIN/shfmt" ]; then
		return 0
	fi
	log "building golangci-lint and shfmt from tools/lint (a few minutes when cold)"
	mkdir -p "$ASKELADDEN_BIN"
	(cd tools/lint && GOWORK=off go build -o "$ASKELADDEN_BIN/" \
		github.com/golangci/golangci-lint/v2/cmd/golangci-lint mvdan.cc/sh/v3/cmd/shfmt) ||
		die "building the linters in tools/lint failed"
	printf '%s\n' "$want" >"$ASKELADDEN_BIN/.lint.stamp"
}

need_shellcheck() {
	command -v shellcheck >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "shellcheck is missing: apt-get install shellcheck (Debian's package)"
	ensure_packages shellcheck
}

# Every tracked shell script, by extension or by its #! line.
scripts() {
	local f
	while IFS= read -r f; do
		case "$f" in
		*.sh) echo "$f" ;;
		*) head -c 64 "$f" 2>/dev/null | head -n 1 | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f" ;;
		esac
	done < <(git ls-files)
}

fail=0
step() { # step NAME CMD...: run one check, note a failure, go on to the next
	local name=$1
	shift
	if "$@"; then
		log "$name: ok"
	else
		log "$name: FAILED"
		fail=1
	fi
}

gofmt_clean() {
	local out files
	mapfile -t files < <(git ls-files '*.go')
	out="$(gofmt -l "${files[@]}")"
	[ -z "$out" ] || {
		printf 'gofmt would change:\n%s\n' "$out" >&2
		return 1
	}
}

vet_all() {
	local m rc=0
	for m in "${modules[@]}"; do
		(cd "$m" && go vet -tags e2e ./...) || rc=1
	done
	return $rc
}

golangci_all() {
	local m rc=0
	for m in "${modules[@]}"; do
		(cd "$m" && "$ASKELADDEN_BIN/golangci-lint" run --allow-parallel-runners --build-tags e2e ./...) || rc=1
	done
	return $rc
}

build_linters
need_shellcheck
mapfile -t shell_scripts < <(scripts)
[ "${#shell_scripts[@]}" -gt 0 ] || die "found no shell scripts to check"

step gofmt gofmt_clean
step "go vet" vet_all
step golangci-lint golangci_all
step shellcheck shellcheck -S warning -x "${shell_scripts[@]}"
# Tabs, as every script here is written; -d prints the diff and fails.
step shfmt "$ASKELADDEN_BIN/shfmt" -d "${shell_scripts[@]}"
exit $fail
