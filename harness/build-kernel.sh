#!/usr/bin/env bash
# build-kernel.sh VARIANT FLAVOUR: build build/out/VARIANT-FLAVOUR/arch/x86/boot/bzImage
#   VARIANT: ours | pristine       FLAVOUR: debug | perf | inner
# (inner: the small kernel of the nested guests, harness/config/inner.config)
# GDB=1 adds debug info and the gdb scripts.
. "$(dirname "$0")/lib.sh"

variant=${1:?usage: build-kernel.sh ours|pristine debug|perf|inner}
flavour=${2:?usage: build-kernel.sh ours|pristine debug|perf|inner}
cfgdir=$TOP/harness/config
[ -f "$cfgdir/$flavour.config" ] || die "no flavour $flavour"

src=$("$TOP/harness/tree.sh" "$variant")
out=$BUILD/out/$variant-$flavour
mkdir -p "$out"
frags=("$cfgdir/common.config" "$cfgdir/$flavour.config")
# The inner guests' kernel is tinyconfig and its own fragment only.
[ "$flavour" = inner ] && frags=("$cfgdir/inner.config")
[ "${GDB:-0}" = 1 ] && frags+=("$cfgdir/gdb.config")
# Our Kconfig may add options (KUnit suites) that the base tree lacks.
[ "$variant" = ours ] && [ "$flavour" != inner ] && [ -f "$cfgdir/ours.config" ] &&
	frags+=("$cfgdir/ours.config")

mk() { make -s -C "$src" O="$out" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }

stamp=$(hash_files "${frags[@]}" "$src/mm/Kconfig" "$src/lib/Kconfig.debug")
if [ "$(cat "$out/.config-stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$out/.config" ]; then
	log "configuring $variant-$flavour"
	mk tinyconfig >/dev/null
	(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" .config "${frags[@]}" >/dev/null)
	mk olddefconfig >/dev/null
	# An unmet dependency drops an option silently: check every one we ask for.
	dropped=$(cat "${frags[@]}" | sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=\(.*\)$/\1=\2/p' |
		while IFS= read -r line; do
			opt=${line%%=*}; val=${line#*=}
			[ "$val" = n ] && continue
			grep -qx "$line" "$out/.config" || echo "$opt"
		done)
	for opt in $dropped; do
		# Options of our own Kconfig only exist once our KSM is in the tree.
		grep -qx "$opt=y" "$cfgdir/ours.config" && { log "note: $opt not available"; continue; }
		die "config option $opt asked for but not set in $out/.config"
	done
	echo "$stamp" >"$out/.config-stamp"
fi

log "building $variant-$flavour kernel"
start=$(date +%s)
mk -j"$JOBS" bzImage >&2 || die "kernel build failed ($variant-$flavour)"
log "built $out/arch/x86/boot/bzImage in $(( $(date +%s) - start )) s"
echo "$out/arch/x86/boot/bzImage"
