#!/bin/sh
# ksm_nested.sh: KSM on real guest memory. Boots GUESTS small QEMU guests
# (TCG, nested inside this guest) from /nested (see harness/mkinitramfs.sh,
# NESTED_KERNEL). QEMU marks guest RAM mergeable by itself (mem-merge=on), so
# nothing here calls madvise: whatever KSM merges is the guests' own memory.
#
# Usage: ksm_nested.sh [SECS [INTERVAL [GUESTS [MIB]]]]   (90 5 3 160)
#   KSM_NESTED_PAGES / KSM_NESTED_SLEEP: pages_to_scan (2000), sleep_millisecs (20)
#
# Every INTERVAL seconds of guest time: a progress line, and for plotting
#   NESTED <t> <pages_shared> <pages_sharing>
# After SECS seconds the guests are stopped, then
#   BENCH nested <metric> <value>          when every check passed
#   BENCH-FAIL nested <what>               for each check that failed
# and the closing `== nested summary: ...` line. Exit 0 if every check passed,
# 1 if one failed, 4 if this initramfs has no QEMU.
# Checks: pages_sharing above 0 at the end; every guest still running at the
# end; no guest found its own memory changed (INNER-CHECK BAD, from
# harness/guest/ksm_nested.inner); pages_sharing back to 0 within 30 s of the
# guests exiting.

KSM=/sys/kernel/mm/ksm
QEMU=/usr/bin/qemu-system-x86_64
IMG=/nested
SECS=${1:-90}
INTERVAL=${2:-5}
GUESTS=${3:-3}
MIB=${4:-160}
PAGES=${KSM_NESTED_PAGES:-2000}
SLEEP=${KSM_NESTED_SLEEP:-20}
DIR=/tmp/nested
failures=0
pids=

# Guest time in centiseconds (CLOCK_BOOTTIME; under -icount it follows
# executed instructions). 1xx - 100 keeps "0.08" from reading as octal.
now_cs() {
	read -r up _ </proc/uptime
	echo $((${up%.*} * 100 + 1${up#*.} - 100))
}

knob() { cat "$KSM/$1" 2>/dev/null || echo -1; }

ksmd_pid() {
	for c in /proc/[0-9]*/comm; do
		[ "$(cat "$c" 2>/dev/null)" = ksmd ] && basename "${c%/comm}" && return
	done
}

# ksmd's CPU time in ns: sum_exec_runtime of schedstat (SCHEDSTATS), else
# utime + stime of stat in USER_HZ (100) ticks.
ksmd_cpu_ns() {
	if [ -r "/proc/$ksmd/schedstat" ]; then
		read -r ns _ <"/proc/$ksmd/schedstat" && echo "$ns" && return
	fi
	awk '{ printf "%.0f\n", ($14 + $15) * 10000000 }' "/proc/$ksmd/stat" 2>/dev/null || echo 0
}

check() {
	if [ "$1" = 0 ]; then
		echo "  [ ok ] $2"
	else
		echo "  [FAIL] $2"
		echo "BENCH-FAIL nested $2"
		failures=$((failures + 1))
	fi
}

# running PID: 0 if the process is alive (and no zombie).
running() {
	[ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

guests_marked() {
	n=0
	for i in $(seq 1 "$GUESTS"); do
		grep -q "$1" "$DIR/vm$i.log" 2>/dev/null && n=$((n + 1))
	done
	echo $n
}

# The inner kernel has KUnit built in (the perf kernel's config): its suites
# would run at boot, minutes of nested TCG before /init, so they are off.
start_guest() {
	"$QEMU" -L /usr/share/seabios -L /usr/share/qemu \
		-nodefaults -no-user-config -display none -vga none -monitor none \
		-nic none -accel tcg,tb-size=32 -m "${MIB}M" -smp 1 -no-reboot \
		-serial "file:$DIR/vm$1.log" \
		-kernel "$IMG/bzImage" -initrd "$IMG/inner.cpio" \
		-append "console=ttyS0 loglevel=4 nokaslr acpi=off panic=-1 kunit.enable=0" \
		</dev/null >"$DIR/qemu$1.err" 2>&1 &
	pids="$pids $!"
}

stop_guests() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
}

# sample T0: one progress line and one NESTED line.
sample() {
	t=$(($(now_cs) - $1))
	shared=$(knob pages_shared)
	sharing=$(knob pages_sharing)
	profit=$(knob general_profit)
	scans=$(($(knob full_scans) - scans0))
	cpu=$(($(ksmd_cpu_ns) - cpu0))
	used=$(awk '/^MemTotal/{t=$2} /^MemAvailable/{a=$2} END{print int((t-a)/1024)}' /proc/meminfo)
	echo "$t $shared $sharing $profit $scans $cpu $used $(guests_marked INNER-UP) $(guests_marked INNER-READY)" |
		awk -v g="$GUESTS" '{
			printf "  %6.1fs  shared %6d  sharing %6d  saved %6.1f MiB  profit %6s MiB  full_scans %3d  ksmd cpu %6.2fs  used %4d MiB  guests up %d/%d ready %d/%d\n",
			$1 / 100, $2, $3, $3 * 4 / 1024, $4 == -1 ? "-" : sprintf("%.1f", $4 / 1048576),
			$5, $6 / 1e9, $7, $8, g, $9, g
		printf "NESTED %.1f %d %d\n", $1 / 100, $2, $3 }'
}

echo "== nested QEMU: $GUESTS guests x $MIB MiB (TCG inside this guest) for $SECS s;" \
	"ksmd pages_to_scan $PAGES, sleep_millisecs $SLEEP"
if [ ! -x "$QEMU" ] || [ ! -f "$IMG/bzImage" ]; then
	echo "  no $QEMU or $IMG/bzImage in this initramfs: build it with" \
		"NESTED_KERNEL=bzImage harness/mkinitramfs.sh"
	exit 4
fi
if [ ! -w "$KSM/run" ]; then
	echo "  no $KSM: kernel without KSM"
	echo "BENCH-FAIL nested no KSM"
	exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR"
echo 2 >"$KSM/run"
echo "$PAGES" >"$KSM/pages_to_scan"
echo "$SLEEP" >"$KSM/sleep_millisecs"
scans0=$(knob full_scans)
ksmd=$(ksmd_pid)
cpu0=$(ksmd_cpu_ns)
echo 1 >"$KSM/run"
t0=$(now_cs)
for i in $(seq 1 "$GUESTS"); do
	start_guest "$i"
done
echo "  started qemu pids:$pids"

# Samples at multiples of INTERVAL, or later when this guest is too busy to
# wake up on time; the last one at SECS or just after.
at60=
prev_t=0
prev_sharing=0
while :; do
	sample "$t0"
	if [ -z "$at60" ] && [ "$t" -ge 6000 ]; then
		# pages_sharing at 60 s, interpolated between the samples around it.
		at60=$((prev_sharing + (sharing - prev_sharing) * (6000 - prev_t) / (t - prev_t)))
	fi
	prev_t=$t
	prev_sharing=$sharing
	[ "$t" -ge $((SECS * 100)) ] && break
	next=$(((t / (INTERVAL * 100) + 1) * INTERVAL * 100))
	[ "$next" -gt $((SECS * 100)) ] && next=$((SECS * 100))
	dead=
	for p in $pids; do running "$p" || dead="$dead $p"; done
	if [ -n "$dead" ]; then
		echo "  qemu exited early:$dead"
		break
	fi
	wait_cs=$((t0 + next - $(now_cs)))
	[ "$wait_cs" -gt 0 ] && usleep $((wait_cs * 10000))
done
final_shared=$shared
final_sharing=$sharing
final_profit=$profit
final_scans=$scans
final_cpu=$cpu
final_t=$t

alive=0
for p in $pids; do running "$p" && alive=$((alive + 1)); done
up=$(guests_marked INNER-UP)
ready=$(guests_marked INNER-READY)
checks=$(cat "$DIR"/vm*.log 2>/dev/null | grep -c 'INNER-CHECK.* ok')
bad=$(cat "$DIR"/vm*.log 2>/dev/null | grep -c 'INNER-CHECK.*BAD')
echo "== stopping the guests (reached /init: $up/$GUESTS, contents written: $ready/$GUESTS," \
	"$checks self-checks ok, $bad bad)"
stop_guests
# QEMU's own words (bar its goodbye to our SIGTERM), and each console's end
# if a guest died or some guest never reached /init.
for i in $(seq 1 "$GUESTS"); do
	said=$(grep -v 'terminating on signal' "$DIR/qemu$i.err" 2>/dev/null | tail -n 5)
	[ -n "$said" ] && echo "  guest $i: qemu said:" && echo "$said" | sed 's/^/    /'
	if [ "$alive" != "$GUESTS" ] || [ "$up" != "$GUESTS" ]; then
		echo "  guest $i: console (last lines):"
		tail -n 5 "$DIR/vm$i.log" 2>/dev/null | sed 's/^/    /'
	fi
done

# KSM forgets an exited process's pages on ksmd's next visit.
t1=$(now_cs)
while [ "$(knob pages_sharing)" != 0 ] && [ $(($(now_cs) - t1)) -lt 3000 ]; do
	usleep 200000
done
after_t=$(($(now_cs) - t1))
after=$(knob pages_sharing)

check "$([ "$final_sharing" -gt 0 ]; echo $?)" \
	"guest memory merged: pages_sharing $final_sharing at $((final_t / 100)) s"
check "$([ "$alive" = "$GUESTS" ]; echo $?)" "all $GUESTS guests still running at the end ($alive)"
check "$([ "$bad" = 0 ]; echo $?)" "no guest saw its memory change ($checks self-checks ok, $bad bad)"
check "$([ "$after" = 0 ]; echo $?)" \
	"pages_sharing back to 0 after the guests exited ($after, $((after_t / 100)).$((after_t % 100 / 10)) s)"
echo 2 >"$KSM/run"

if [ "$failures" = 0 ]; then
	echo "BENCH nested pages_sharing_final $final_sharing"
	echo "BENCH nested pages_shared_final $final_shared"
	echo "BENCH nested saved_mib_final $(awk -v s="$final_sharing" 'BEGIN{printf "%.1f", s * 4 / 1024}')"
	[ "$final_profit" != -1 ] &&
		echo "BENCH nested general_profit_mib_final $(awk -v s="$final_profit" 'BEGIN{printf "%.1f", s / 1048576}')"
	[ -n "$at60" ] && echo "BENCH nested sharing_at_60s $at60"
	echo "BENCH nested full_scans $final_scans"
	echo "BENCH nested ksmd_cpu_s $(awk -v s="$final_cpu" 'BEGIN{printf "%.3f", s / 1e9}')"
	echo "BENCH nested guests_ready $ready"
fi
echo "$final_t $final_shared $final_sharing $final_profit $at60" | awk -v g="$GUESTS" -v m="$MIB" \
	-v f="$failures" '{
	printf "== nested summary: %d guests x %d MiB, after %.0f s: pages_shared %d, pages_sharing %d (%.1f MiB saved",
		g, m, $1 / 100, $2, $3, $3 * 4 / 1024
	if ($4 != -1) printf ", general_profit %.1f MiB", $4 / 1048576
	printf ")%s; %s (%d check%s failed)\n", $5 == "" ? "" : sprintf(", sharing at 60 s %d", $5),
		f ? "FAILED" : "all checks passed", f, f == 1 ? "" : "s" }'
[ "$failures" = 0 ]
