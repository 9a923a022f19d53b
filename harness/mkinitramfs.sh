#!/usr/bin/env bash
# mkinitramfs.sh: build/guest/initramfs.cpio.gz with busybox, /init, the test
# list, the static programs of build/guest/bin, the tree's run_vmtests.sh
# with its KSM programs (build/guest/vmtests) and a static bash.
#
# NESTED_KERNEL=BZIMAGE harness/mkinitramfs.sh builds
# build/guest/initramfs-nested.cpio.gz instead: the same, plus QEMU (binary,
# shared libraries, TCG module, firmware), BZIMAGE and a busybox initramfs for
# the inner guests of harness/guest/ksm_nested.sh, all under /nested and /usr.
# It is about 25 MB larger, so only the nested workload uses it.
. "$(dirname "$0")/lib.sh"

bin=$("$TOP/harness/build-userspace.sh")
root=$BUILD/guest/root
img=$BUILD/guest/initramfs.cpio.gz
if [ -n "${NESTED_KERNEL:-}" ]; then
	root=$BUILD/guest/root-nested
	img=$BUILD/guest/initramfs-nested.cpio.gz
fi
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,tests,usr/bin,usr/sbin,etc}
cp /bin/busybox "$root/bin/busybox"
cp "$TOP/harness/guest/init" "$root/init"
cp "$TOP/harness/tests.list" "$root/tests/tests.list"
cp "$bin"/* "$root/tests/"
cp "$TOP/harness/guest/ksm_nested.sh" "$TOP/harness/guest/ksm_vmtests.sh" "$root/tests/"
# The tree's run_vmtests.sh and its KSM programs (build-userspace.sh), and
# the bash it needs (Debian's bash-static).
cp -r "$BUILD/guest/vmtests" "$root/tests/vmtests"
cp /bin/bash-static "$root/bin/bash"
# Extra files for the guest (e.g. a nested QEMU), one host path a line.
if [ -n "${GUEST_EXTRA:-}" ]; then
	for f in $GUEST_EXTRA; do cp --parents -L "$f" "$root/"; done
fi

# add_nested ROOT KERNEL: QEMU and what the inner guests boot.
add_nested() {
	local r=$1 kernel=$2 qemu=/usr/bin/qemu-system-x86_64 f inner
	local accel=/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
	[ -f "$kernel" ] || die "NESTED_KERNEL: no such file: $kernel"
	if [ ! -x "$qemu" ] || [ ! -f "$accel" ]; then
		die "$qemu or $accel missing (qemu-system-x86)"
	fi
	# QEMU finds its accelerator module relative to its own path
	# (../lib/x86_64-linux-gnu/qemu/), so both keep their host paths.
	cp --parents -L "$qemu" "$accel" "$r/"
	for f in $(ldd "$qemu" "$accel" | awk '/=> \//{print $3} /^\t\/.*\(0x/{print $1}' | sort -u); do
		cp --parents -L "$f" "$r/"
	done
	# The firmware a `-kernel` boot of the pc machine opens (found with strace),
	# at the paths of `-L /usr/share/seabios -L /usr/share/qemu`.
	for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin \
		/usr/share/qemu/linuxboot_dma.bin; do
		cp --parents -L "$f" "$r/"
	done
	mkdir -p "$r/nested"
	cp "$kernel" "$r/nested/bzImage"
	# The inner guests' initramfs: busybox and an /init that fills some
	# memory and checks it now and then.
	inner=$(mktemp -d)
	mkdir -p "$inner"/{bin,dev,proc,sys,tmp}
	cp /bin/busybox "$inner/bin/busybox"
	cp "$TOP/harness/guest/ksm_nested.inner" "$inner/init"
	chmod +x "$inner/init"
	# Not compressed: gunzip in a guest nested in TCG took seconds.
	(cd "$inner" && find . | cpio -o -H newc --quiet) >"$r/nested/inner.cpio"
	rm -rf "$inner"
}
[ -n "${NESTED_KERNEL:-}" ] && add_nested "$root" "$NESTED_KERNEL"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.tmp"
mv "$img.tmp" "$img"
echo "$img"
