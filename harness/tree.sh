#!/usr/bin/env bash
# tree.sh VARIANT: prepare build/src/VARIANT from the Debian tarball.
#   pristine: the base tree as shipped.
#   ours:     the base tree, then patches/series, then the overlay files.
# STAGING=1 also lays staging/ (its files, then staging/patches/series):
# work in progress that is not part of the submitted kernel yet.
# Re-running is cheap: only overlay files whose contents changed are copied,
# so an edit rebuilds only what depends on it.
. "$(dirname "$0")/lib.sh"

variant=${1:?usage: tree.sh pristine|ours}
src=$BUILD/src/$variant
mkdir -p "$BUILD/src"

# The marker names the tarball it came from: when the package is upgraded
# (or downgraded), the tree is unpacked afresh rather than kept stale.
id=$(tarball_id) || die "$TARBALL missing"
if [ "$(cat "$src/.unpacked" 2>/dev/null)" != "$id" ]; then
	log "unpacking $TARBALL into $src"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -C "$src.tmp" --strip-components=1 -xJf "$TARBALL"
	mv "$src.tmp" "$src"
	echo "$id" >"$src/.unpacked"
fi
[ "$variant" = pristine ] && { echo "$src"; exit 0; }
[ "$variant" = ours ] || die "unknown variant $variant"

# Overlay sources: repository root, then staging/ when asked.
layers=("$TOP")
[ "${STAGING:-0}" = 1 ] && [ -d "$TOP/staging" ] && layers+=("$TOP/staging")

# 1. Patches. Keep a copy of what is applied; when the series changes,
#    reverse the old one and apply the new one.
want=$BUILD/src/.want-patches
rm -rf "$want"; mkdir -p "$want"
n=0
for layer in "${layers[@]}"; do
	series=$layer/patches/series
	[ -f "$series" ] || continue
	while read -r p; do
		case "$p" in ''|\#*) continue ;; esac
		n=$((n + 1))
		cp "$layer/patches/$p" "$want/$(printf %03d $n)-$(basename "$p")"
	done <"$series"
done
have=$src/.applied-patches
mkdir -p "$have"
if ! diff -rq "$have" "$want" >/dev/null 2>&1; then
	for p in $(ls -r "$have"); do
		log "reverting $p"
		patch -d "$src" -p1 -R -s <"$have/$p" || die "cannot revert $p"
		rm "$have/$p"
	done
	for p in $(ls "$want"); do
		log "applying $p"
		patch -d "$src" -p1 -N -s <"$want/$p" || die "patch $p does not apply"
		cp "$want/$p" "$have/$p"
	done
fi

# 2. Files. A manifest lists what we laid, so a file that leaves the overlay
#    goes back to its tarball version (or away, if the tarball lacks it).
manifest=$src/.overlay-manifest
newman=$(mktemp)
for layer in "${layers[@]}"; do
	files=$(mktemp)
	for r in $OVERLAY_ROOTS; do
		[ -e "$layer/$r" ] || continue
		(cd "$layer" && find "$r" -type f ! -name '*.orig' ! -name '*.rej') >>"$files"
	done
	rsync -rc --files-from="$files" "$layer/" "$src/"
	cat "$files" >>"$newman"
	rm -f "$files"
done
sort -u -o "$newman" "$newman"
if [ -f "$manifest" ]; then
	gone=$(comm -23 "$manifest" "$newman")
	for f in $gone; do
		log "restoring $f from the tarball"
		rm -f "$src/$f"
		tar -C "$src" --strip-components=1 -xJf "$TARBALL" "$TARDIR/$f" 2>/dev/null || true
	done
fi
mv "$newman" "$manifest"
echo "$src"
