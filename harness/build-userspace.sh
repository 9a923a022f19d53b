#!/usr/bin/env bash
# build-userspace.sh: static test programs for the guest, into build/guest/bin.
#   - the base tree's ksm_tests and ksm_functional_tests, from the PRISTINE
#     tree, with harness/ref-ksm-functional-fixes.patch applied to a copy;
#   - our ksm_tests (overlay copy of tools/testing/selftests/mm/ksm_tests.c)
#     and ksm_mm_tests (KSM against reclaim, migration, THP, hwpoison...);
#   - ksm_random_tests (seeded random operations; ksmd against a memcg limit);
#   - the demonstration and benchmark programs from harness/guest/.
. "$(dirname "$0")/lib.sh"

pristine=$("$TOP/harness/tree.sh" pristine)
out=$BUILD/guest/bin
hdr=$BUILD/hdr
mkdir -p "$out" "$BUILD/guest/ref"

if [ ! -f "$hdr/include/linux/prctl.h" ] || ! grep -q PR_SET_MEMORY_MERGE "$hdr/include/linux/prctl.h"; then
	log "installing 6.12 UAPI headers into $hdr"
	make -s -C "$pristine" O="$BUILD/hdr-out" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr"
fi

CFLAGS="-O2 -static -D_GNU_SOURCE= -U_FORTIFY_SOURCE -isystem $hdr/include"
# A program that does not build is left out, loudly: the tests that run it
# then fail in the guest (exit 127), while the others still run.
cc() {
	local o prev=
	for a in "$@"; do [ "$prev" = -o ] && o=$a; prev=$a; done
	gcc $CFLAGS "$@" || { log "ERROR: ${o##*/} does not build; its tests will fail"; rm -f "$o"; }
}
# rebuild OUT SRC...: compile only when a source is newer than the output.
stale() { local o=$1; shift; [ ! -f "$o" ] || [ -n "$(find "$@" -newer "$o" 2>/dev/null)" ]; }

# Reference tests: a copy of the pristine sources, with our fixes.
ref=$BUILD/guest/ref
sel=$pristine/tools/testing/selftests/mm
if stale "$ref/.stamp" "$TOP/harness/ref-ksm-functional-fixes.patch"; then
	rm -rf "$ref"; mkdir -p "$ref/mm"
	cp "$sel"/{ksm_tests.c,ksm_functional_tests.c,vm_util.c,vm_util.h,thp_settings.c,thp_settings.h} "$ref/mm/"
	cp "$pristine/tools/testing/selftests/kselftest.h" "$ref/"
	(cd "$ref/mm" && patch -s -p5 <"$TOP/harness/ref-ksm-functional-fixes.patch")
	touch "$ref/.stamp"
fi
refinc="-I $ref/mm -I $pristine -isystem $pristine/tools/include/uapi"
if stale "$out/ref_ksm_tests" "$ref/.stamp"; then
	log "building reference ksm_tests"
	(cd "$ref/mm" && cc $refinc -o "$out/ref_ksm_tests" ksm_tests.c vm_util.c thp_settings.c \
		-lrt -lpthread -lm -lnuma)
fi
if stale "$out/ksm_functional_tests" "$ref/.stamp"; then
	log "building reference ksm_functional_tests"
	(cd "$ref/mm" && cc $refinc -o "$out/ksm_functional_tests" ksm_functional_tests.c vm_util.c \
		-lrt -lpthread -lm)
fi

# Our selftest: the overlay's copy, if it has one.
ours=$TOP/tools/testing/selftests/mm/ksm_tests.c
if [ -f "$ours" ] && stale "$out/ksm_tests" "$ours"; then
	log "building our ksm_tests"
	cc -Wall -o "$out/ksm_tests" "$ours" -lpthread
fi

# Our KSM-against-mm selftest (static, no libnuma).
mmt=$TOP/tools/testing/selftests/mm/ksm_mm_tests.c
if [ -f "$mmt" ] && stale "$out/ksm_mm_tests" "$mmt"; then
	log "building ksm_mm_tests"
	cc -Wall -o "$out/ksm_mm_tests" "$mmt" -lpthread
fi

# Content families: every identical page merges, whatever it holds.
cft=$TOP/tools/testing/selftests/mm/ksm_content_tests.c
if [ -f "$cft" ] && stale "$out/ksm_content_tests" "$cft"; then
	log "building ksm_content_tests"
	cc -Wall -Wextra -o "$out/ksm_content_tests" "$cft"
fi

# KSM and memory cgroups: merge domains, merge-now, per-cgroup counters.
cgt=$TOP/tools/testing/selftests/mm/ksm_cgroup_tests.c
if [ -f "$cgt" ] && stale "$out/ksm_cgroup_tests" "$cgt"; then
	log "building ksm_cgroup_tests"
	cc -Wall -Wextra -o "$out/ksm_cgroup_tests" "$cgt" -lm
fi

# Seeded random operations and the memcg-pressure test.
rnd=$TOP/tools/testing/selftests/mm/ksm_random_tests.c
if [ -f "$rnd" ] && stale "$out/ksm_random_tests" "$rnd"; then
	log "building ksm_random_tests"
	cc -Wall -Wextra -o "$out/ksm_random_tests" "$rnd"
fi

# Guest programs of the harness.
for c in "$TOP"/harness/guest/*.c; do
	[ -f "$c" ] || continue
	b=$out/$(basename "$c" .c)
	if stale "$b" "$c" "$TOP"/harness/guest/*.h; then
		log "building $(basename "$b")"
		cc -Wall -Wextra -o "$b" "$c" -lpthread
	fi
done
echo "$out"
