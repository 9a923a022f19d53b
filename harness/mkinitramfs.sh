#!/usr/bin/env bash
# mkinitramfs.sh: build/guest/initramfs.cpio.gz with busybox, /init, the test
# list and the static programs of build/guest/bin.
. "$(dirname "$0")/lib.sh"

bin=$("$TOP/harness/build-userspace.sh")
root=$BUILD/guest/root
img=$BUILD/guest/initramfs.cpio.gz
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,tests,usr/bin,usr/sbin,etc}
cp /bin/busybox "$root/bin/busybox"
cp "$TOP/harness/guest/init" "$root/init"
cp "$TOP/harness/tests.list" "$root/tests/tests.list"
cp "$bin"/* "$root/tests/"
# Extra files for the guest (e.g. a nested QEMU), one host path a line.
if [ -n "${GUEST_EXTRA:-}" ]; then
	for f in $GUEST_EXTRA; do cp --parents -L "$f" "$root/"; done
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.tmp"
mv "$img.tmp" "$img"
echo "$img"
