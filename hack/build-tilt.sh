#!/usr/bin/env bash
# Builds the Tilt release pinned in tools/tilt/go.mod, with its web dashboard
# compiled in, into $ASKELADDEN_CACHE/bin/tilt. A rerun with unchanged pins
# returns at once; a cold build takes about 8 minutes on 2 cores.
#
# `go install github.com/tilt-dev/tilt/cmd/tilt@vX` cannot be used: tilt's
# go.mod has replace lines (honoured only in the main module, so tools/tilt
# repeats them), and the module the Go proxy serves carries no compiled
# dashboard, so such a binary stops `tilt up` with "JS/CSS files are not
# available". The dashboard is built here from the module's own web/ sources.
#
# Needs go, a C compiler, node (>= 18), the Go module proxy and the npm
# registry; as root on Debian it installs a missing node or gcc itself.
# Environment: ASKELADDEN_CACHE (default ~/.cache/askeladden).
set -euo pipefail

# shellcheck source=hack/lib.sh source-path=SCRIPTDIR/..
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tilt_module=github.com/tilt-dev/tilt
tools_dir=$ASKELADDEN_ROOT/tools/tilt
script=$ASKELADDEN_ROOT/hack/build-tilt.sh
bin=$ASKELADDEN_BIN/tilt
stamp=$bin.stamp
# The repository's go.work must not change which tilt gets built.
export GOWORK=off

stage_name='' stage_start=0
stage() {
	stage_name=$1
	stage_start=$SECONDS
	log "$1 ..."
}
stage_done() { log "$stage_name took $((SECONDS - stage_start))s"; }

tmp='' staged=''
cleanup() { rm -rf ${tmp:+"$tmp"} ${staged:+"$staged"}; }
trap cleanup EXIT

command -v go >/dev/null || die "'go' is not on PATH (Go 1.26 or newer is needed)"

# The pin lives in go.mod only; read it without go so the up-to-date check stays fast.
tilt_version=$(awk '($1 == "require" && $2 == m && $3 ~ /^v/) { print $3 } ($1 == m && $2 ~ /^v/) { print $2 }' \
	m="$tilt_module" "$tools_dir/go.mod" | head -n 1)
[[ -n $tilt_version ]] || die "no 'require $tilt_module vX.Y.Z' in $tools_dir/go.mod"

inputs_hash=$(cat "$tools_dir/go.mod" "$tools_dir/go.sum" "$script" | sha256sum | cut -d' ' -f1)
want_stamp="tilt $tilt_version
inputs $inputs_hash
$(cd "$tools_dir" && go env GOVERSION)"

up_to_date() {
	if [[ -x $bin && -f $stamp && "$(cat "$stamp")" == "$want_stamp" ]]; then
		log "$bin is up to date (tilt $tilt_version)"
		return 0
	fi
	return 1
}
up_to_date && exit 0

if ! command -v node >/dev/null; then
	# Debian-family machines (CI included) can get node from the distribution.
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "node is missing; installing Debian's nodejs"
		ensure_packages nodejs
	fi
	command -v node >/dev/null || die "'node' is not on PATH (Node.js 18 or newer builds the dashboard; on Debian: apt-get install -y nodejs)"
fi
# tilt's Tiltfile language server (starlark-lsp) parses with tree-sitter, in C.
cc=$(go env CC)
if ! command -v "${cc%% *}" >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "no C compiler ($cc); installing Debian's gcc"
		ensure_packages gcc libc6-dev
	fi
	command -v "${cc%% *}" >/dev/null || die "no C compiler '$cc' on PATH: tilt needs cgo (on Debian: apt-get install -y gcc)"
fi

# Yarn is pointed at the npm registry this machine is configured for.
if ! command -v npm >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "npm is missing; installing Debian's npm"
		ensure_packages npm
	fi
	command -v npm >/dev/null || die "'npm' is not on PATH: it tells which npm registry to use (on Debian: apt-get install -y npm)"
fi
npm_registry=$(npm config get registry)
[[ $npm_registry == http* ]] || die "npm config get registry printed '$npm_registry', not a registry URL"

node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "node $(node --version) is too old: the dashboard's yarn 4 needs Node.js 18 or newer"

mkdir -p "$ASKELADDEN_BIN" "$ASKELADDEN_CACHE/src"
# Two builds at once (a developer's and a test's) would share $src; the
# second one waits, then finds the first one's binary.
exec 9>"$ASKELADDEN_CACHE/build-tilt.lock"
if ! flock -n 9; then
	log "waiting for another build-tilt run to finish"
	flock 9
fi
up_to_date && exit 0

src=$ASKELADDEN_CACHE/src/tilt-$tilt_version
web_stamp=$src.web-stamp
# Next to $src, so that moving it into place is a rename.
staged=$src.partial
rm -rf "$staged"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/build-tilt.XXXXXX")
total_start=$SECONDS

# Both run in a writable copy of the module's web/.
install_dashboard_deps() {
	cd "$1"
	# Storybook is only for developing the UI, and one of its packages pins a
	# canary release of @storybook/csf that the registry no longer serves.
	# packageManager would send corepack to download yarn, which is unreachable;
	# the yarn release tilt commits in .yarn/releases is run directly instead.
	node -e '
    const fs = require("fs");
    const p = JSON.parse(fs.readFileSync("package.json", "utf8"));
    for (const k of Object.keys(p.devDependencies || {})) {
      if (k.startsWith("@storybook/")) delete p.devDependencies[k];
    }
    delete p.packageManager;
    fs.writeFileSync("package.json", JSON.stringify(p, null, 2) + "\n");
  '
	cp yarn.lock yarn.lock.upstream
	local yarn
	yarn=$(ls .yarn/releases/yarn-*.cjs) || die "no yarn release under web/.yarn/releases"
	# tilt's yarn.lock pins every package with its checksum, so installing with
	# it gives the dashboard tilt shipped. Yarn's default registry may not be
	# reachable; the npm registry this machine uses serves the same packages. Yarn's global
	# folder (its package cache) lives in ASKELADDEN_CACHE, not ~/.yarn, so a
	# rebuild downloads nothing and the cache goes away with the rest.
	# .yarnrc.yml says checksumBehavior: update; a mismatch must fail instead.
	# Under CI=true yarn refuses any lock change, pruning storybook included.
	YARN_NPM_REGISTRY_SERVER="$npm_registry" \
		YARN_GLOBAL_FOLDER="$ASKELADDEN_CACHE/yarn" \
		YARN_ENABLE_GLOBAL_CACHE=1 \
		YARN_CHECKSUM_BEHAVIOR=throw \
		YARN_ENABLE_TELEMETRY=0 \
		YARN_ENABLE_PROGRESS_BARS=0 \
		YARN_ENABLE_IMMUTABLE_INSTALLS=0 \
		node "$yarn" install >&2
	# Dropping storybook should only remove lock entries; a package resolved
	# anew would be one tilt never shipped with.
	local floated
	floated=$(comm -13 <(grep '^  resolution:' yarn.lock.upstream | sort -u) \
		<(grep '^  resolution:' yarn.lock | sort -u))
	[[ -z $floated ]] || die "yarn resolved packages missing from tilt's yarn.lock:
$floated"
}

build_dashboard() {
	cd "$1"
	# Lint and type checks are upstream's business, and the *.stories.tsx files
	# (imported by tests, so they cannot just be deleted) fail the type check
	# without storybook.
	CI=false GENERATE_SOURCEMAP=false DISABLE_ESLINT_PLUGIN=true \
		TSC_COMPILE_ON_ERROR=true BROWSERSLIST_IGNORE_OLD_DATA=true \
		node_modules/.bin/react-scripts build >&2
	[[ -f build/index.html ]] || die "react-scripts build left no build/index.html"
}

# The dashboard changes only with tilt's web sources and this recipe, so edits
# elsewhere in this script do not redo the slow yarn and webpack work.
want_web_stamp="tilt $tilt_version
node $node_major
recipe $(declare -f install_dashboard_deps build_dashboard | sha256sum | cut -d' ' -f1)"

if [[ -f $src/pkg/assets/build/index.html && -f $web_stamp && "$(cat "$web_stamp")" == "$want_web_stamp" ]]; then
	log "dashboard for tilt $tilt_version is cached in $src"
else
	stage "download $tilt_module@$tilt_version"
	# Run in tools/tilt so the download is checked against its go.sum.
	(cd "$tools_dir" && go mod download "$tilt_module")
	mod_dir=$(cd "$tools_dir" && go list -m -f '{{.Dir}}' "$tilt_module")
	[[ -d $mod_dir/web ]] || die "$mod_dir has no web/ directory"
	stage_done

	stage "yarn install of the dashboard's packages"
	cp -R "$mod_dir/web" "$tmp/web"
	chmod -R u+w "$tmp/web"
	(install_dashboard_deps "$tmp/web")
	stage_done

	stage "react-scripts build of the dashboard"
	(build_dashboard "$tmp/web")
	stage_done

	stage "copy the module with the dashboard into $src"
	# The module cache is read-only; the copy is the tree tilt gets built from.
	cp -R "$mod_dir/." "$staged"
	chmod -R u+w "$staged"
	cp -R "$tmp/web/build/." "$staged/pkg/assets/build/"
	rm -f "$web_stamp"
	rm -rf "$src"
	mv "$staged" "$src"
	printf '%s\n' "$want_web_stamp" >"$web_stamp"
	stage_done
fi

stage "go build of tilt $tilt_version"
# Builds in a scratch copy of tools/tilt: the replace pointing at the cache
# copy is machine-specific and must not reach the committed go.mod.
build=$tmp/build
mkdir "$build"
cp "$tools_dir/go.mod" "$tools_dir/go.sum" "$build/"
tilt_date=$(cd "$tools_dir" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$tilt_module")
# The replace target is written into the binary's build info: a relative path
# through a symlink keeps the binary the same wherever ASKELADDEN_CACHE is.
ln -s "$src" "$build/tilt"
(
	cd "$build"
	go mod edit -replace "$tilt_module=./tilt"
	# main.version marks the binary as a release: tilt then serves the embedded
	# dashboard by default instead of expecting a dev server (TILT_WEB_MODE).
	# The module's commit time as the date keeps the binary reproducible.
	# cgo is required: starlark-lsp's tree-sitter parser is C.
	CGO_ENABLED=1 go build -trimpath \
		-ldflags "-s -w -X main.version=${tilt_version#v} -X main.date=$tilt_date" \
		-o "$bin.tmp" "$tilt_module/cmd/tilt"
)
mv "$bin.tmp" "$bin"
printf '%s\n' "$want_stamp" >"$stamp"
stage_done

log "built $bin ($("$bin" version)) in $((SECONDS - total_start))s"
