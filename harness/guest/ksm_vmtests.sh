#!/bin/sh
# ksm_vmtests.sh: the patched tree's own tools/testing/selftests/mm/
# run_vmtests.sh, KSM categories only, as kernel CI runs it, from
# /tests/vmtests (built by the tree's selftests Makefile).  -d adds the
# destructive KSM tests (hwpoison, hot-remove) the guest can afford.
# Its TAP lines are the results.  Exits 1 if an entry failed or skipped:
# the test guest has everything every entry needs (two NUMA nodes, swap,
# THP, a hot-pluggable DIMM), so a skip is ours to fix.
set -o pipefail
cd /tests/vmtests || exit 1
out=/tmp/vmtests.out
bash ./run_vmtests.sh -d -t "ksm ksm_numa" 2>&1 | tee "$out"
rc=$?
summary=$(grep -E '^# SUMMARY: ' "$out")
case "$summary" in
*" SKIP=0 FAIL=0")
	;;
*)
	echo "# an entry failed or skipped: ${summary:-no SUMMARY line}"
	exit 1
	;;
esac
if [ "$rc" != 0 ]; then
	echo "# run_vmtests.sh exited with $rc"
	exit 1
fi
