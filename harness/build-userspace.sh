#!/usr/bin/env bash
# build-userspace.sh: static test programs for the guest, into build/guest/bin.
#   - the base tree's ksm_tests and ksm_functional_tests, from the PRISTINE
#     tree, with harness/ref-ksm-functional-fixes.patch applied to a copy;
#   - our selftests (overlay copies of tools/testing/selftests/mm/ksm_*.c):
#     ksm_tests, ksm_stat_tests, ksm_scan_tests and those of KSM against
#     reclaim, migration, THP, hwpoison... (ksm_*_tests, see below);
#   - ksm_random_tests (seeded random operations; ksmd against a memcg limit)
#     and ksm_cgroup_tests (KSM and memory cgroups);
#   - the demonstration and benchmark programs from harness/guest/.
. "$(dirname "$0")/lib.sh"

pristine=$("$TOP/harness/tree.sh" pristine)
out=$BUILD/guest/bin
hdr=$BUILD/hdr
mkdir -p "$out" "$BUILD/guest/ref"

# rebuild OUT SRC...: compile only when a source is newer than the output.
stale() { local o=$1; shift; [ ! -f "$o" ] || [ -n "$(find "$@" -newer "$o" 2>/dev/null)" ]; }

# The headers and the reference copies come from the base tree: made again
# when tree.sh unpacked it afresh (another tarball).
if stale "$hdr/.stamp" "$pristine/.unpacked" || ! grep -qs PR_SET_MEMORY_MERGE "$hdr/include/linux/prctl.h"; then
	log "installing 6.12 UAPI headers into $hdr"
	rm -rf "$hdr" "$BUILD/hdr-out"
	make -s -C "$pristine" O="$BUILD/hdr-out" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr"
	touch "$hdr/.stamp"
fi

CFLAGS="-O2 -static -D_GNU_SOURCE= -U_FORTIFY_SOURCE -isystem $hdr/include"
# A program that does not build is left out, loudly: the tests that run it
# then fail in the guest (exit 127), while the others still run.
cc() {
	local o prev=
	for a in "$@"; do [ "$prev" = -o ] && o=$a; prev=$a; done
	gcc $CFLAGS "$@" || { log "ERROR: ${o##*/} does not build; its tests will fail"; rm -f "$o"; }
}

# Reference tests: a copy of the pristine sources, with our fixes.
ref=$BUILD/guest/ref
sel=$pristine/tools/testing/selftests/mm
if stale "$ref/.stamp" "$TOP/harness/ref-ksm-functional-fixes.patch" "$pristine/.unpacked"; then
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

# Our selftests (tools/testing/selftests/mm), one program per topic, each
# linked with the helper files of its family (as the tree's Makefile does):
#   ksm_util.c ksm_model.c: ksm_tests (also run_vmtests.sh's command line),
#     ksm_stat_tests, ksm_scan_tests;
#   ksm_mm_util.c ksm_mm_worker.c ksm_mm_model.c: KSM against the rest of mm,
#     ksm_swap_tests, ksm_numa_tests, ksm_phys_tests, ksm_vma_tests,
#     ksm_unmerge_tests (static, no libnuma);
#   ksm_content_tests stands alone.
osel=$TOP/tools/testing/selftests/mm
# selftest PROG EXTRA-CFLAGS LIB...: build PROG from PROG.c and the LIB files.
selftest() {
	local prog=$1 flags=$2 src
	shift 2
	src=("$osel/$prog.c")
	for l in "$@"; do src+=("$osel/$l"); done
	[ -f "${src[0]}" ] || return 0
	if stale "$out/$prog" "${src[@]}" "$osel"/ksm_*.h; then
		log "building $prog"
		cc $flags -o "$out/$prog" "${src[@]}" -lpthread
	fi
}
for p in ksm_tests ksm_stat_tests ksm_scan_tests; do
	selftest $p -Wall ksm_util.c ksm_model.c
done
for p in ksm_swap_tests ksm_numa_tests ksm_phys_tests ksm_vma_tests ksm_unmerge_tests; do
	selftest $p -Wall ksm_mm_util.c ksm_mm_worker.c ksm_mm_model.c
done
selftest ksm_content_tests "-Wall -Wextra"
rm -f "$out/ksm_mm_tests"

# The patched tree's own build of its KSM selftests, with its
# run_vmtests.sh, into build/guest/vmtests: what the vmtests-ksm entry runs
# (tools/testing/selftests/mm/Makefile of build/src/ours, static).
oursrc=$("$TOP/harness/tree.sh" ours)
vmt=$BUILD/guest/vmtests
mkdir -p "$vmt"
vmprogs="ksm_tests ksm_stat_tests ksm_scan_tests ksm_content_tests ksm_swap_tests
ksm_numa_tests ksm_phys_tests ksm_vma_tests ksm_unmerge_tests ksm_functional_tests
ksm_cgroup_tests ksm_random_tests"
if ! make -s -C "$oursrc/tools/testing/selftests/mm" OUTPUT="$vmt" LDFLAGS=-static \
	KHDR_INCLUDES="-isystem $hdr/include" $(for p in $vmprogs; do echo "$vmt/$p"; done) >&2; then
	log "ERROR: the tree's selftests Makefile failed; vmtests-ksm will fail"
fi
cp "$oursrc/tools/testing/selftests/mm/run_vmtests.sh" "$vmt/"

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
