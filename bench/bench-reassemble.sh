#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The overlay-root benchmark ("reassemble" section of bench/run.sh): time
# to a ready root filesystem for a container with map MAP when the source
# is an overlayfs mount (an image layer of N inodes from bench/gentree, a
# small top layer, an upper layer), by the three ways shift-mount has:
#
#   reassemble  --fallback=reassemble -R: a new overlay over idmapped
#               clones of the layers (expected: constant, ~1 ms)
#   shift       --fallback=shift: shift-tree through the overlay in place
#               (every inode copied up: linear)
#   copy        --fallback=copy: a shifted copy, bind-mounted (linear)
#
# Each run starts from a freshly mounted source (untimed); the figure is
# the median wall time of BENCH_REPS runs of the shift-mount command, and
# the ratios shift/reassemble and copy/reassemble.
#
# Environment:
#   BUILDDIR             binaries (default build)
#   BENCH_QUICK=1        10k inodes only, one repetition
#   BENCH_REPS           repetitions (default 3)
#   BENCH_REASSEMBLE_1M=1  also 1M inodes (minutes; 4 GB of tmpfs)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init bench-reassemble
reps=${BENCH_REPS:-3}
sizes=(10000 100000)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	reps=1
	sizes=(10000)
fi
[ "${BENCH_REASSEMBLE_1M:-0}" = 1 ] && sizes+=(1000000)
MAP=b:0:3000000:65536
MOUNT=$B/bin/shift-mount
GENTREE=$B/bench/gentree

bench_need_root
bench_need "$MOUNT" "$GENTREE"

bench_workdir "${TMPDIR:-/tmp}" bench-reassemble
mount -t tmpfs -o size=4g,mode=0755 bench-reassemble "$work"

# fresh_source N: the source overlay at $work/src over the N-inode image
# layer (made once per N), a fresh top-free upper; nothing else mounted.
fresh_source() {
	local n=$1 m
	while read -r m; do umount "$m"; done < <(
		awk -v d="$work/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	rm -rf "$work/up" "$work/wk" "$work/copy" "$work/src" "$work/t"
	if [ ! -d "$work/image-$n" ]; then
		rm -rf "$work"/image-*
		mkdir "$work/image-$n"
		"$GENTREE" -n "$n" --data-max 64 "$work/image-$n" >/dev/null
		mkdir -p "$work/top/etc"
		echo top >"$work/top/etc/top"
	fi
	mkdir "$work/up" "$work/wk" "$work/src" "$work/t"
	mount -t overlay bench-src \
		-o "lowerdir=$work/top:$work/image-$n,upperdir=$work/up,workdir=$work/wk" "$work/src"
}

# timed ARGS...: the wall seconds of one shift-mount ARGS src t.
timed() {
	local t
	t=$( { TIMEFORMAT='%R'; time "$MOUNT" --map "$MAP" "$@" "$work/src" "$work/t" >/dev/null 2>"$work/err"; } 2>&1 ) ||
		die "shift-mount $* failed: $(cat "$work/err")"
	echo "$t"
}

median() {
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf '%-9s %12s %12s %12s %14s %12s\n' inodes reassemble shift copy shift/reassem copy/reassem
for n in "${sizes[@]}"; do
	declare -A med=()
	for way in reassemble shift copy; do
		: >"$work/$way.times"
		for ((i = 0; i < reps; i++)); do
			fresh_source "$n"
			case $way in
			reassemble) timed --fallback=reassemble -R >>"$work/$way.times" ;;
			shift) timed --fallback=shift >>"$work/$way.times" ;;
			copy) timed --fallback=copy --copy-dir "$work/copy" >>"$work/$way.times" ;;
			esac
		done
		med[$way]=$(median <"$work/$way.times")
	done
	awk -v n="$n" -v r="${med[reassemble]}" -v s="${med[shift]}" -v c="${med[copy]}" 'BEGIN {
		if (r <= 0) r = 0.0005 # below time(1)'"'"'s resolution
		printf "%-9s %11.3fs %11.3fs %11.3fs %13.0fx %11.0fx\n", n, r, s, c, s / r, c / r
	}'
	unset med
done
