# Shared settings for the harness scripts (sourced, not run).
# shellcheck shell=bash
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
TARBALL=${TARBALL:-/usr/src/linux-source-6.12.tar.xz}
TARDIR=linux-source-6.12
JOBS=${JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$TOP/build/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
# Paths below the build root become relative, so trees of the same name in
# different build roots (build/, build/wip/) share cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$BUILD}
# Kernel sources the overlay may contain, at their in-tree paths.
OVERLAY_ROOTS="arch block Documentation drivers fs include init kernel lib mm scripts tools MAINTAINERS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# tarball_id: names the installed base tarball (size and mtime); tree.sh
# keeps it in build/src/VARIANT/.unpacked, so another package unpacks anew.
tarball_id() { stat -c '%s-%Y' "$TARBALL"; }

# hash_files FILE...: one digest over the contents of existing files.
hash_files() {
	local f
	for f in "$@"; do [ -f "$f" ] && { echo "$f"; cat "$f"; }; done | sha1sum | cut -c1-16
}
