#!/usr/bin/env bash
# config-matrix.sh [ENTRY...]: compile our KSM in other configurations.
#
# Each entry is `make tinyconfig` + harness/config/common.config +
# harness/config/ours.config + the entry's own options, configured once in
# build/matrix/ENTRY/ (reconfigured only when a fragment or Kconfig changes).
# Only `make prepare` and our objects (mm/ksm*.o, and fs/proc/base.o,
# mm/madvise.o, mm/memory.o and mm/memcontrol.o, which our patches change)
# are built, with W=1 and sparse (C=1); an entry fails on a build error, on any
# warning located in one of our files, or when an option it asks for did not
# survive Kconfig. Entries of mode `vmlinux` also link a whole vmlinux.
# Prints one line per entry and closes with `N passed, N failed`.
. "$(dirname "$0")/lib.sh"

# name            arch    mode     options (CONFIG_ prefix left out; `=n`: must
#                                  end up unset; a trailing `?`: asked, not required)
MATRIX="
swap-n            x86_64  objs     SWAP=n
numa-n            x86_64  objs     NUMA=n
migration-n       x86_64  objs     MIGRATION=n NUMA=n COMPACTION=n CMA=n MEMORY_HOTPLUG=n TRANSPARENT_HUGEPAGE=n
thp-n             x86_64  objs     TRANSPARENT_HUGEPAGE=n
memory-failure-n  x86_64  objs     MEMORY_FAILURE=n
memory-hotremove-n x86_64 objs     MEMORY_HOTREMOVE=n
debug-fs-n        x86_64  objs     DEBUG_FS=n
sysfs-n           x86_64  objs     SYSFS=n
memcg-n           x86_64  objs     MEMCG=n
ksm-n             x86_64  objs     KSM=n
kunit-m           x86_64  vmlinux  MODULES=y KUNIT=m KSM_KUNIT_TEST=m?
i386              i386    objs     X86_32=y HIGHMEM4G=y
arm64-mte         arm64   objs     ARM64_MTE=y ARM64_PAN=y ARM64_TAGGED_ADDR_ABI=y ARCH_HAS_MEMCMP_PAGES=y
"""

# Symbols an entry's objects must call: with MTE, arm64's memcmp_pages()
# has the last word on whether two pages may merge (tags differ).
declare -A MUST_CALL=(
	[arm64-mte]="mm/ksm_index.o:memcmp_pages"
)

names=$(awk 'NF { print $1 }' <<<"$MATRIX")
for n in "$@"; do
	grep -qx "$n" <<<"$names" || die "no entry $n; entries: $(echo $names)"
done

cfgdir=$TOP/harness/config
root=$BUILD/matrix
src=$("$TOP/harness/tree.sh" ours)
objs=$(cd "$TOP" && for f in mm/ksm*.c; do echo "${f%.c}.o"; done)
# and the kernel files our patches add code to (madvise.c: MADV_MERGE_NOW;
# memory.c: the copy-on-write hook; memcontrol.c, with CONFIG_MEMCG only:
# memory.stat, memory.ksm_merge_any).
objs="$objs fs/proc/base.o mm/madvise.o mm/memory.o"

# Kernel files our patches change (patches/series).
patched=$(sed -e '/^#/d' -e '/^$/d' -e "s|^|$TOP/patches/|" "$TOP/patches/series" |
	xargs sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' | sort -u)

# our_warnings LOG: the compiler and sparse messages of LOG located in our
# code: anywhere in a file of the overlay, and in a patched kernel file only
# on the lines our patches change (fs/proc/base.c has sparse warnings of its
# own). Messages about other kernel files are the base tree's.
our_warnings() {
	local l rel file line
	grep -E '(warning|error):' "$1" | while IFS= read -r l; do
		case "$l" in *src/ours/*) rel=${l#*src/ours/} ;; *) continue ;; esac
		file=${rel%%:*}; line=${rel#*:}; line=${line%%:*}
		if [ -f "$TOP/$file" ]; then
			echo "$l"
		elif grep -qx "$file" <<<"$patched" &&
		     grep -qx "$line" <<<"$(changed_lines "$file")"; then
			echo "$l"
		fi
	done
}

# changed_lines FILE: numbers of the lines of FILE in our tree that differ
# from the base tree's copy.
changed_lines() {
	local base=$BUILD/src/pristine/$1 id
	# Only a base tree unpacked from the tarball installed now will do.
	id=$(tarball_id)
	if [ "$(cat "$BUILD/src/pristine/.unpacked" 2>/dev/null)" != "$id" ]; then
		base=$root/.pristine-$id/$1
		mkdir -p "$root/.pristine-$id"
		[ -f "$base" ] || tar -C "$root/.pristine-$id" --strip-components=1 -xJf "$TARBALL" \
			"$TARDIR/$1" || die "$1 is not in $TARBALL"
	fi
	diff --old-line-format= --unchanged-line-format= --new-line-format='%dn
' "$base" "$src/$1" || true
}

mk() { # mk OUT ARCH make-args...
	local out=$1 arch=$2; shift 2
	local cross=()
	case "$arch" in
	arm64) cross=(CROSS_COMPILE=aarch64-linux-gnu- CC="ccache aarch64-linux-gnu-gcc") ;;
	*) cross=(CC="ccache gcc") ;;
	esac
	make -s -C "$src" O="$out" ARCH="$arch" HOSTCC="ccache gcc" "${cross[@]}" "$@"
}

# configure NAME ARCH OPTS...: (re)configure build/matrix/NAME when needed.
configure() {
	local name=$1 arch=$2; shift 2
	local out=$root/$name frag=$root/$name/entry.config opt stamp
	mkdir -p "$out"
	for opt in "$@"; do
		opt=${opt%\?}
		case "$opt" in
		*=n) echo "# CONFIG_${opt%=n} is not set" ;;
		*) echo "CONFIG_$opt" ;;
		esac
	done >"$frag.new"
	stamp=$(hash_files "$cfgdir/common.config" "$cfgdir/ours.config" "$frag.new" \
		"$src/mm/Kconfig" "$src/lib/Kconfig.debug" "$src/lib/kunit/Kconfig")
	mv "$frag.new" "$frag"
	[ "$(cat "$out/.config-stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$out/.config" ] && return 0
	rm -f "$out/.config-stamp"
	mk "$out" "$arch" tinyconfig >/dev/null || return 1
	(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" .config \
		"$cfgdir/common.config" "$cfgdir/ours.config" "$frag" >/dev/null) || return 1
	mk "$out" "$arch" olddefconfig >/dev/null || return 1
	echo "$stamp" >"$out/.config-stamp"
}

# check_config OUT OPTS...: every required option has the value asked for.
check_config() {
	local out=$1 opt bad=0; shift
	# Every entry but ksm-n (the stubs of ksm.h for the patched files) has KSM.
	[[ " $* " == *" KSM=n "* ]] || grep -qx 'CONFIG_KSM=y' "$out/.config" ||
		{ echo "CONFIG_KSM is not y"; bad=1; }
	for opt in "$@"; do
		case "$opt" in *\?) continue ;; esac
		case "$opt" in
		*=n) grep -q "^CONFIG_${opt%=n}=" "$out/.config" &&
			{ echo "CONFIG_${opt%=n} is still set"; bad=1; } ;;
		*) grep -qx "CONFIG_$opt" "$out/.config" ||
			{ echo "CONFIG_$opt did not survive Kconfig"; bad=1; } ;;
		esac
	done
	return $bad
}

# run_entry NAME ARCH MODE OPTS...: build one entry; log in build/matrix/NAME/log.
run_entry() {
	local name=$1 arch=$2 mode=$3; shift 3
	local out=$root/$name log=$root/$name/log o
	mkdir -p "$out"
	: >"$log"; rm -f "$out/ours.log"
	if [ "$arch" = arm64 ] && ! command -v aarch64-linux-gnu-gcc >/dev/null; then
		echo "no aarch64-linux-gnu-gcc (harness/deps.sh installs gcc-aarch64-linux-gnu)" >>"$log"
		return 1
	fi
	configure "$name" "$arch" "$@" >>"$log" 2>&1 || { echo "configuration failed" >>"$log"; return 1; }
	check_config "$out" "$@" >>"$log" || return 1
	if [ "$mode" = vmlinux ]; then
		echo "== make vmlinux" >>"$log"
		mk "$out" "$arch" -j"$JOBS" vmlinux >>"$log" 2>&1 || return 1
	else
		echo "== make prepare" >>"$log"
		mk "$out" "$arch" -j"$JOBS" W=1 prepare >>"$log" 2>&1 || return 1
	fi
	# Remove our objects so that the compiler (from ccache, which replays
	# its warnings) and sparse run on them every time.
	local eobjs=$objs
	grep -qx 'CONFIG_KSM=y' "$out/.config" || eobjs=$(tr ' ' '\n' <<<"$eobjs" |
		grep -v '^mm/ksm' | paste -sd' ')
	grep -qx 'CONFIG_MEMCG=y' "$out/.config" && eobjs="$eobjs mm/memcontrol.o"
	for o in $eobjs; do rm -f "$out/$o"; done
	echo "== make W=1 C=1 $eobjs" >>"$log"
	local rc=0
	mk "$out" "$arch" -j"$JOBS" W=1 C=1 $eobjs >"$out/objs.log" 2>&1 || rc=1
	cat "$out/objs.log" >>"$log"
	our_warnings "$out/objs.log" >"$out/ours.log"
	local need obj sym nm=nm
	[ "$arch" = arm64 ] && nm=aarch64-linux-gnu-nm
	for need in ${MUST_CALL[$name]:-}; do
		obj=${need%%:*} sym=${need#*:}
		"$nm" -u "$out/$obj" 2>/dev/null | grep -qw "$sym" ||
			echo "$obj does not call $sym" >>"$out/ours.log"
	done
	if [ -s "$out/ours.log" ]; then
		{ echo "== warnings in our code"; cat "$out/ours.log"; } >>"$log"
		rc=1
	fi
	return $rc
}

want=" $* "
passed=0 failed=0
start_all=$(date +%s)
while read -r name arch mode opts; do
	[ -n "$name" ] || continue
	[ $# -eq 0 ] || [[ "$want" == *" $name "* ]] || continue
	t0=$(date +%s)
	# shellcheck disable=SC2086
	if run_entry "$name" "$arch" "$mode" $opts; then
		res=PASS; passed=$((passed + 1))
	else
		res=FAIL; failed=$((failed + 1))
	fi
	printf '%-4s %-20s %-7s %4d s  %s\n' "$res" "$name" "$arch" $(( $(date +%s) - t0 )) "$opts"
	if [ "$res" = FAIL ]; then
		if [ -s "$root/$name/ours.log" ]; then
			head -20 "$root/$name/ours.log"
		else
			grep -E "(error|Error|not set|did not survive|still set|failed)" \
				"$root/$name/log" | grep -v '^==' | head -20
		fi | sed 's/^/     /'
		echo "     (whole log: $root/$name/log)"
	fi
done <<<"$MATRIX"
echo "# config matrix: $(( $(date +%s) - start_all )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
