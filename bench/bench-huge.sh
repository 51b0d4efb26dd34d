#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The million-inode benchmark ("huge" section of bench/run.sh, opt-in:
# BENCH_HUGE=1; it takes minutes and a few GB of disk).
#
# A generated layer-like tree (bench/gentree, BENCH_HUGE_INODES, default
# 1,000,000 inodes) on an ext4 loop image, warm cache, one run each:
#   record      shift-verify record --output MANIFEST TREE
#   check       shift-verify check -M MANIFEST TREE
#   shift-tree  shift-tree --map MAP TREE (in place)
#   check-map   shift-verify check -M MANIFEST --map MAP TREE (the shift,
#               verified)
#   layer-store shift-layer unpack --store of a one-layer OCI image of the
#               tree (an uncompressed tar made by GNU tar; the store records
#               the layer's manifest too)
#   layer-flat  shift-layer unpack --flat --map MAP of the same image
# Printed: seconds, inodes/s and peak RSS (GNU time's %M, the child's
# getrusage).  The verify and shift-tree rows must stay under
# BENCH_HUGE_RSS_MIB (default 64) of peak RSS, whatever the size of the
# tree; a row over it is marked OVER and the script fails.  The layer rows
# have no such bound yet (shift-layer keeps a path per directory until the
# end, to set directory times last): printed only.
#
# Environment:
#   BUILDDIR             where the binaries are (default build)
#   BENCH_HUGE=1         run at all (bench/run.sh skips the section without)
#   BENCH_HUGE_INODES    size of the generated tree (default 1000000)
#   BENCH_HUGE_RSS_MIB   the bound (default 64)
#   BENCH_DIR            scratch parent directory (default /var/tmp)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init bench-huge
inodes=${BENCH_HUGE_INODES:-1000000}
bound=${BENCH_HUGE_RSS_MIB:-64}
MAP=b:0:196608:65536

bench_need_root
bench_need "$B/bench/gentree" "$B/bin/shift-verify" "$B/bin/shift-tree" "$B/bin/shift-layer"
[ -x /usr/bin/time ] || die "Failed to find /usr/bin/time (apt-get install time)"

loop=
bench_on_exit() {
	umount "$work/fs" 2>/dev/null || umount -l "$work/fs" 2>/dev/null || true
	[ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
}
bench_workdir "${BENCH_DIR:-/var/tmp}" shiftkit-bench-huge

# the tree, the store's copy and the flat copy: 3 trees of inodes each
size=$((inodes * 3 * 3 / 2 / 1024 + 1024))
truncate -s "${size}M" "$work/img"
mkfs.ext4 -q -N $((inodes * 3 + inodes / 2 + 10000)) "$work/img"
loop=$(losetup -f --show "$work/img")
mkdir "$work/fs"
mount "$loop" "$work/fs"
mkdir "$work/fs/tree"
t0=$(date +%s)
"$B/bench/gentree" -n "$inodes" --data-max 0 "$work/fs/tree" >/dev/null
n=$(find "$work/fs/tree" | wc -l)
echo "tree: $n inodes on ext4 (${size} MiB image), generated in $(($(date +%s) - t0)) s; $(nproc) CPUs, map $MAP; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

over=0
# row [--unbounded] NAME ENTRIES CMD...: one warm run; seconds, entries/s,
# peak RSS
row() {
	local limit=$bound name count t rss
	if [ "$1" = --unbounded ]; then
		limit=0
		shift
	fi
	name=$1
	count=$2
	shift 2
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" ||
		die "'$name' failed: $(head -5 "$work/err" "$work/out")"
	read -r t rss <"$work/time"
	awk -v name="$name" -v t="$t" -v n="$count" -v rss="$rss" -v bound="$limit" 'BEGIN {
		printf "%-12s %8.2f s  %9.0f inodes/s  peak RSS %7.1f MiB%s\n",
			name, t, (t > 0 ? n / t : 0), rss / 1024,
			(bound == 0 ? "  (no bound)" : rss > bound * 1024 ? "  OVER " bound " MiB" : "") }'
	[ "$limit" = 0 ] || [ "$rss" -le $((limit * 1024)) ] || over=1
}

# one uncompressed layer of the tree as generated (on-disk ids), made by
# GNU tar; srv/zoo's 0/0 character device would be a whiteout
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
# blob: stdin into the layout, its digest printed
blob() {
	local d
	cat >"$layout/blob"
	d=$(sha256sum "$layout/blob" | cut -d' ' -f1)
	mv "$layout/blob" "$layout/blobs/sha256/$d"
	echo "$d"
}
# (ACLs as system.posix_acl_* xattrs, as container tools write them: GNU
# tar's --acls text names groups, "group:adm:r-x")
ld=$(tar --numeric-owner --xattrs --xattrs-include='*' --exclude=./srv/zoo \
	--warning=no-file-ignored -C "$work/fs/tree" -cf - . | blob)
lsize=$(stat -c %s "$layout/blobs/sha256/$ld")
ln=$(tar -tf "$layout/blobs/sha256/$ld" | wc -l)
cd_=$(printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" | blob)
csize=$(stat -c %s "$layout/blobs/sha256/$cd_")
md=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
	"$cd_" "$csize" "$ld" "$lsize" | blob)
msize=$(stat -c %s "$layout/blobs/sha256/$md")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"huge"}}]}\n' \
	"$md" "$msize" >"$layout/index.json"
echo "layer: $ln entries, $((lsize >> 20)) MiB uncompressed tar"

# warm the cache
find "$work/fs/tree" -printf '' >/dev/null
row record "$n" "$B/bin/shift-verify" record -o "$work/fs/m" "$work/fs/tree"
row check "$n" "$B/bin/shift-verify" check -M "$work/fs/m" "$work/fs/tree"
row shift-tree "$n" "$B/bin/shift-tree" -q --map "$MAP" "$work/fs/tree"
row check-map "$n" "$B/bin/shift-verify" check -M "$work/fs/m" --map "$MAP" "$work/fs/tree"
row --unbounded layer-store "$ln" "$B/bin/shift-layer" unpack --store "$work/fs/store" "$layout:huge"
row --unbounded layer-flat "$ln" "$B/bin/shift-layer" unpack --flat --map "$MAP" "$layout:huge" "$work/fs/flat"
[ "$over" = 0 ] || die "peak RSS over ${bound} MiB (see OVER above)"
