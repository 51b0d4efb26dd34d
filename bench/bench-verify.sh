#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The verification benchmark ("verify" section of bench/run.sh).
#
# A generated layer-like tree (bench/gentree, ~200k inodes: ACLs, file
# capabilities, huge and tiny directories) on an ext4 loop image.  Measured,
# warm and cold cache (median of BENCH_REPS):
#   record     shift-verify record DIR > MANIFEST
#   check      shift-verify check --manifest M DIR            (no map)
#   check-map  shift-verify check --manifest M --map MAP VIEW (through an
#              idmapped mount of DIR: every id, ACL and fcaps translated)
#   baseline   find DIR -printf '%U %G %m %p\n' (stat of every inode, no
#              xattrs): the floor a walk can hope for
# Printed: seconds, inodes/s and peak RSS of shift-verify; last a line with
# the peak RSS of record and check against BENCH_RSS_MIB (default 64: they
# stream, whatever the size of the tree), failing the benchmark when over.
#
# Environment:
#   BUILDDIR       where the binaries are (default build)
#   BENCH_QUICK=1  a 20k-inode tree, one repetition
#   BENCH_INODES   size of the generated tree (default 200000)
#   BENCH_REPS     repetitions per measurement (default 3)
#   BENCH_DIR      scratch parent directory (default /var/tmp)
#   BENCH_RSS_MIB  the peak RSS bound of record and check (default 64)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init bench-verify

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	inodes=${BENCH_INODES:-20000}
	reps=${BENCH_REPS:-1}
else
	inodes=${BENCH_INODES:-200000}
	reps=${BENCH_REPS:-3}
fi
MAP=b:0:196608:65536

[ "$(id -u)" -eq 0 ] || die "Failed to run the verify benchmark: needs root (loop mounts, drop_caches)"
bench_need "$B/bench/gentree" "$B/bin/shift-verify" "$B/bin/shift-mount"

loop=
bench_on_exit() {
	umount "$work/view" 2>/dev/null || umount -l "$work/view" 2>/dev/null || true
	umount "$work/fs" 2>/dev/null || umount -l "$work/fs" 2>/dev/null || true
	[ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
}
bench_workdir "${BENCH_DIR:-/var/tmp}" shiftkit-bench-verify

# inodes * ~1.5 KiB of image, at least 256 MiB
size=$((inodes * 3 / 2 / 1024 + 256))
truncate -s "${size}M" "$work/img"
mkfs.ext4 -q -N $((inodes * 2 + 10000)) "$work/img"
loop=$(losetup -f --show "$work/img")
mkdir "$work/fs" "$work/view"
mount "$loop" "$work/fs"
mkdir "$work/fs/tree"
"$B/bench/gentree" -n "$inodes" --data-max 0 "$work/fs/tree" >/dev/null
n=$(find "$work/fs/tree" | wc -l)
"$B/bin/shift-mount" --map "$MAP" "$work/fs/tree" "$work/view"
echo "tree: $n inodes on ext4 (${size} MiB image), $(nproc) CPUs, map $MAP"

# run_timed NAME CMD...: median seconds of BENCH_REPS runs, peak RSS (KiB)
# of the last one, stdout to /dev/null (record: to the manifest).
run_timed() {
	local name=$1 cache=$2 i t rss times=()
	shift 2
	for ((i = 0; i < reps; i++)); do
		if [ "$cache" = cold ]; then
			sync
			echo 3 >/proc/sys/vm/drop_caches
		fi
		/usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" || {
			case $name in check*) die "$name found differences: $(head -5 "$work/out")" ;; esac
		}
		read -r t rss <"$work/time"
		times+=("$t")
	done
	case $name in record | check) echo "$name $rss" >>"$work/rss" ;; esac
	t=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")
	awk -v name="$name" -v cache="$cache" -v t="$t" -v n="$n" -v rss="$rss" 'BEGIN {
		printf "%-10s %-5s %7.2f s  %9.0f inodes/s  peak RSS %6.1f MiB\n",
			name, cache, t, (t > 0 ? n / t : 0), rss / 1024 }'
}

[ -x /usr/bin/time ] || die "Failed to find /usr/bin/time (apt-get install time)"
"$B/bin/shift-verify" record -o "$work/m" "$work/fs/tree"
for cache in warm cold; do
	run_timed baseline "$cache" find "$work/fs/tree" -printf '%U %G %m %p\n'
	run_timed record "$cache" "$B/bin/shift-verify" record -o "$work/m2" "$work/fs/tree"
	run_timed check "$cache" "$B/bin/shift-verify" check -M "$work/m" "$work/fs/tree"
	run_timed check-map "$cache" "$B/bin/shift-verify" check -M "$work/m" \
		--map "$MAP" "$work/view"
done
cmp -s "$work/m" "$work/m2" || die "two records of one tree differ"
bound=${BENCH_RSS_MIB:-64}
awk -v bound="$bound" '{ if ($2 > max[$1]) max[$1] = $2 }
	END { over = 0
		for (k in max) if (max[k] > bound * 1024) over = 1
		printf "peak RSS: record %.1f MiB, check %.1f MiB (bound %d MiB: %s)\n",
			max["record"] / 1024, max["check"] / 1024, bound, over ? "OVER" : "ok"
		exit over }' "$work/rss" || die "record or check over ${bound} MiB of peak RSS"
echo "manifest: $(wc -c <"$work/m") bytes, $(grep -c '^#shiftkit ' "$work/m") extension lines"
