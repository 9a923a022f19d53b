#!/usr/bin/env bash
# Install what the build, the guest and the tests need. Idempotent: it only
# calls apt-get when a package is missing.
. "$(dirname "$0")/lib.sh"

PKGS="qemu-system-x86 linux-source-6.12 busybox-static gcc make bc bison flex
libelf-dev libssl-dev cpio ccache libnuma-dev xz-utils python3 rsync kmod
sparse coccinelle gcc-aarch64-linux-gnu bash-static"
# The patch series: git am, and checkpatch.pl's SPDX check (scripts/spdxcheck.py).
PKGS="$PKGS git python3-ply python3-git"
# The benchmark's chart.
[ "${WITH_BENCH:-0}" = 1 ] && PKGS="$PKGS gnuplot-nox"

missing=()
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

log "installing: ${missing[*]}"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"${TMPDIR:-/tmp}/ksm-apt.log" 2>&1; then
	$SUDO apt-get update -q >>"${TMPDIR:-/tmp}/ksm-apt.log" 2>&1 || true
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
		>>"${TMPDIR:-/tmp}/ksm-apt.log" 2>&1 ||
		die "apt-get could not install: ${missing[*]} (see ${TMPDIR:-/tmp}/ksm-apt.log)"
fi
[ -f "$TARBALL" ] || die "$TARBALL missing after installing linux-source-6.12"
