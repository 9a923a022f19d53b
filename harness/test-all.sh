#!/usr/bin/env bash
# test-all.sh KSMT-COMMAND...: what `make test` runs.
#
#   1. the QEMU tests of harness/tests.list (KSMT-COMMAND, harness/ksmt.py);
#   2. the patch series check (harness/series.py check --no-builds: git am
#      onto a fresh unpack, the same tree, checkpatch.pl --strict);
#   3. the compile-only configuration matrix (harness/config-matrix.sh),
#      entries MATRIX_QUICK only.
# FULL=1 (`make full-check`) makes parts 2 and 3 whole: a build after every
# patch of the series, and every entry of the matrix. They do not fit in
# CI's budget beside part 1 (README, "How long they take").
#
# Each part prints its own results and closing line; the last line adds
# them up: `N passed, N failed` (and `, N skipped` when some were).
# ONLY=a,b: the tests of tests.list named there, plus `series` and/or
# `matrix` when named. Parts 2 and 3 do not depend on the kernel under test,
# so they run only for VARIANT=ours, REPEAT=1 and without STAGING=1.
. "$(dirname "$0")/lib.sh"
set +e

only=",${ONLY:-},"
want_part() { # want_part NAME: run part NAME?
	[ "${VARIANT:-ours}" = ours ] && [ "${REPEAT:-1}" = 1 ] &&
		[ "${STAGING:-0}" != 1 ] || return 1
	[ "$only" = ",," ] || [[ "$only" == *",$1,"* ]]
}
# The matrix entries of `make test`: the configurations the issue names
# first (SWAP=n; MEMCG=n, since ksm_cgroup.c has code for it; KSM=n, the
# patched kernel files against ksm.h's stubs; 32-bit; arm64
# with MTE, whose memcmp_pages() must decide), each about one `make
# prepare` and our objects. KUNIT=m (a whole vmlinux) and the other
# options off run with FULL=1.
MATRIX_QUICK=${MATRIX_QUICK:-swap-n memcg-n ksm-n i386 arm64-mte}
series_args=(--no-builds) matrix_args=($MATRIX_QUICK)
if [ "${FULL:-0}" = 1 ]; then
	series_args=() matrix_args=()
fi
qemu_only=$(tr ',' '\n' <<<"${ONLY:-}" | grep -vx -e series -e matrix -e '' | paste -sd,)

passed=0 failed=0 skipped=0 summary=()
# part NAME COMMAND...: run one part, add up its closing line.
part() {
	local name=$1 out line p f s rc t0=$(date +%s)
	shift
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	rm -f "$out"
	if [ -z "$line" ]; then
		line="0 passed, 1 failed (no closing line, exit code $rc)"
	elif [ "$rc" -ne 0 ] && [[ "$line" == *" 0 failed"* ]]; then
		line="$line, then exit code $rc (counted as 1 failed)"
		failed=$((failed + 1))
	fi
	p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$line")
	f=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
	s=$(sed -n 's/.*, \([0-9]*\) skipped.*/\1/p' <<<"$line")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + ${s:-0}))
	summary+=("$name: $line ($(( $(date +%s) - t0 )) s)")
}

if [ "$only" = ",," ] || [ -n "$qemu_only" ]; then
	if [ -n "$qemu_only" ]; then
		part "QEMU tests" "$@" --only "$qemu_only"
	else
		part "QEMU tests" "$@"
	fi
fi
want_part series && part "patch series" python3 "$TOP/harness/series.py" check "${series_args[@]}"
want_part matrix && part "config matrix" "$TOP/harness/config-matrix.sh" "${matrix_args[@]}"

if [ ${#summary[@]} -gt 1 ]; then
	echo "# make test:"
	printf '#   %s\n' "${summary[@]}"
fi
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
