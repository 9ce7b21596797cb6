#!/usr/bin/env bash
# Builds the base images the project's Dockerfiles start FROM, locally: no
# image registry is reachable from CI, so `docker pull golang:...` cannot work.
#
#   golang:<go major.minor>-bookworm  Debian bookworm (debootstrap minbase) with
#                                     this machine's /usr/local/go and CA bundle
#   debian:bookworm-slim              the same Debian, without Go
#
# Runnable alone (starts dockerd if none answers; `hack/cluster/cluster.sh down` stops
# a dockerd started this way). Skips the work when the tag already carries the
# same Go version and rootfs. Env: ASKELADDEN_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
# shellcheck source=hack/lib.sh source-path=SCRIPTDIR/../..
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

require_root "hack/cluster/base-images.sh"
ensure_packages docker.io debootstrap ca-certificates
ensure_dockerd

GO_VERSION="$(go_version)" # e.g. go1.26.8
GO_MINOR="$(sed -E 's/^go([0-9]+\.[0-9]+).*/\1/' <<<"$GO_VERSION")"
GO_IMAGE="${ASKELADDEN_GO_IMAGE:-golang:$GO_MINOR-bookworm}"
DEBIAN_IMAGE="debian:bookworm-slim"
GOROOT_HOST="$(go env GOROOT)"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA_BUNDLE" ] || die "$CA_BUNDLE missing: containers need it to reach the Go module proxy over TLS"

ROOTFS_TAR="$ASKELADDEN_CACHE/base/bookworm-minbase.tar"
# Part of the stamp, so that a new CA bundle or rootfs leads to a rebuild.
stamp="$GO_VERSION $(sha256sum "$CA_BUNDLE" | cut -c1-12)"
[ -f "$ROOTFS_TAR" ] && stamp+=" $(stat -c %Y "$ROOTFS_TAR")"

label() { docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

if [ -f "$ROOTFS_TAR" ] && [ "$(label "$GO_IMAGE" org.askeladden.stamp)" = "$stamp" ]; then
	log "$GO_IMAGE is up to date ($GO_VERSION)"
	exit 0
fi

mirror() {
	if [ -n "${ASKELADDEN_DEBIAN_MIRROR:-}" ]; then
		echo "$ASKELADDEN_DEBIAN_MIRROR"
		return
	fi
	# Use the mirror apt already uses: it is the one this network lets through.
	local m
	m="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)"
	[ -n "$m" ] || m="$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)"
	[ -n "$m" ] || die "no Debian mirror in apt's sources (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list); set ASKELADDEN_DEBIAN_MIRROR"
	echo "$m"
}

if [ ! -f "$ROOTFS_TAR" ]; then
	work="$(mktemp -d /tmp/askeladden-debootstrap.XXXXXX)"
	trap 'rm -rf "$work"' EXIT
	m="$(mirror)"
	log "debootstrap --variant=minbase bookworm from $m (about a minute)"
	debootstrap --variant=minbase bookworm "$work/rootfs" "$m" >"$work/debootstrap.log" 2>&1 || {
		tail -n 40 "$work/debootstrap.log" >&2
		die "debootstrap failed"
	}
	# What debootstrap leaves that an image has no use for.
	rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
		"$work"/rootfs/var/log/* "$work/rootfs/debootstrap"
	mkdir -p "$(dirname "$ROOTFS_TAR")"
	# --numeric-owner: the host's user names must not remap the image's files.
	tar --numeric-owner -C "$work/rootfs" -cf "$ROOTFS_TAR.tmp" .
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$work"
	trap - EXIT
	stamp="$GO_VERSION $(sha256sum "$CA_BUNDLE" | cut -c1-12) $(stat -c %Y "$ROOTFS_TAR")"
fi

log "importing $DEBIAN_IMAGE"
docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'CMD ["bash"]' \
	--change "LABEL org.askeladden.stamp=\"$stamp\"" \
	"$ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null

ctx="$(mktemp -d /tmp/askeladden-goimage.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
# Hard links make the 250 MB build context free to lay out; cp -a is the
# fallback when GOROOT is on another filesystem than /tmp.
cp -al "$GOROOT_HOST" "$ctx/go" 2>/dev/null || cp -a "$GOROOT_HOST" "$ctx/go"
cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
# The environment of the official golang image, so Dockerfiles written for it
# behave the same here.
cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY go /usr/local/go
ENV GOLANG_VERSION=${GO_VERSION#go} GOTOOLCHAIN=local GOPATH=/go
ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
WORKDIR /go
LABEL org.askeladden.stamp="$stamp"
EOF
log "building $GO_IMAGE from $GOROOT_HOST ($GO_VERSION)"
DOCKER_BUILDKIT=0 docker build -q -t "$GO_IMAGE" -t "golang:${GO_VERSION#go}-bookworm" "$ctx" >/dev/null 2>"$ctx/build.err" || {
	cat "$ctx/build.err" >&2
	die "docker build of $GO_IMAGE failed"
}
log "built $GO_IMAGE ($(docker image inspect --format '{{.Size}}' "$GO_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
