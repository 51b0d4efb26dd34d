#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The in-place shift benchmark ("shift" section of bench/run.sh).
#
# Two trees on ext4 loop images: "generated" (bench/gentree, ~200k inodes)
# and "rootfs" (a debootstrap'ed Debian minbase with the generated tree
# inside at srv/layer).  For each tree, warm and cold cache, every
# contender shifts the tree from 0..65535 to 196608..262143 starting from an
# identical copy of the image:
#   shift-tree --engine=sync|threads|uring|auto   (the full job)
#   baseline-nftw   nftw + lchown, uid/gid only (bench/baseline-nftw.c)
#   nspawn          systemd-nspawn --private-users=196608:65536
#                   --private-users-ownership=chown (rootfs tree only: it
#                   needs an OS tree; it also starts the container, whose
#                   fixed cost is measured separately as "nspawn-noop")
# It prints seconds (median of BENCH_REPS), inodes/s, ratios against the
# baseline and nspawn of the same run, CPU seconds (user + system: the
# figure to trust when the machine is busy) and peak RSS, and the load
# average before and after, so a noisy run shows as such.
#
# Environment:
#   BUILDDIR       where the binaries are (default build)
#   BENCH_QUICK=1  a 20k-inode tree, one repetition
#   BENCH_INODES   size of the generated tree (default 200000)
#   BENCH_REPS     repetitions per measurement, median reported (default 3)
#   BENCH_TREES    "generated rootfs" (default both)
#   BENCH_CACHES   "warm cold" (default both)
#   BENCH_ENGINES  "sync threads uring auto" (default all four); ENGINE/N
#                  runs ENGINE with --threads N (e.g. "threads/8 uring/16")
#   BENCH_JOURNAL  ext4 journal size in MiB (default 1024, what mke2fs gives
#                  a filesystem of 128 GiB or more, where container storage
#                  lives); "default" = an image made by plain mkfs.ext4
#                  (mke2fs's 64 MiB journal for the 6 GiB image, its default
#                  inode count when the tree fits), where both contenders
#                  wait on the journal
#   BENCH_DEFAULT_JOURNAL  1 (default): after the trees above, one more row:
#                  the generated tree, warm, on an image made by plain
#                  mkfs.ext4, BENCH_DJ_ENGINES (default "threads") against
#                  nftw measured in the same series; 0: skip it (it is the
#                  main series already with BENCH_JOURNAL=default)
#   BENCH_OUT      also append machine-readable result lines to this file
#   BENCH_DIR      scratch parent directory (default /var/tmp)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
B=${BUILDDIR:-build}
case "$B" in /*) ;; *) B="$top/$B" ;; esac

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	inodes=${BENCH_INODES:-20000}
	reps=${BENCH_REPS:-1}
else
	inodes=${BENCH_INODES:-200000}
	reps=${BENCH_REPS:-3}
fi
trees=${BENCH_TREES:-generated rootfs}
caches=${BENCH_CACHES:-warm cold}
engines=${BENCH_ENGINES:-sync threads uring auto}
out=${BENCH_OUT:-}
MAP_FROM=0
MAP_TO=196608
MAP_COUNT=65536

log() { echo "bench: $*" >&2; }
die() {
	echo "bench: $*" >&2
	exit 1
}

journal=${BENCH_JOURNAL:-1024}
case "$journal" in
default) journal_opt=() ;;
*[!0-9]* | '') die "invalid BENCH_JOURNAL '$journal': a size in MiB or 'default'" ;;
*) journal_opt=(-J "size=$journal") ;;
esac
default_journal=${BENCH_DEFAULT_JOURNAL:-1}
case "$default_journal" in
0 | 1) ;;
*) die "invalid BENCH_DEFAULT_JOURNAL '$default_journal': 0 or 1" ;;
esac
[ "$journal" = default ] && default_journal=0
dj_engines=${BENCH_DJ_ENGINES:-threads}
[ "$(id -u)" -eq 0 ] || die "Failed to run the shift benchmark: needs root (loop mounts, drop_caches)"
for t in gentree baseline-nftw runone; do
	[ -x "$B/bench/$t" ] || die "Failed to find '$B/bench/$t' (run make first)"
done
shift_tree="$B/bin/shift-tree"
[ -x "$shift_tree" ] || log "no '$shift_tree': shift-tree engines are skipped"

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/shiftkit-bench.XXXXXX")
cd "$work"
mnt="$work/mnt"
mkdir "$mnt"
loopdev=""

cleanup() {
	if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
	if [ -n "$loopdev" ]; then losetup -d "$loopdev" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

attach() { # IMAGE
	loopdev=$(losetup --find --show --direct-io=on "$1" 2>/dev/null ||
		losetup --find --show "$1")
	blockdev --flushbufs "$loopdev"
	mount -t ext4 "$loopdev" "$mnt"
}

detach() {
	umount "$mnt"
	losetup -d "$loopdev"
	loopdev=""
}

make_image() { # IMAGE
	local opts=()

	truncate -s 6G "$1"
	if [ "$plain_mkfs" = 1 ]; then
		# mkfs.ext4's own choices (journal, inode count: 393216 for
		# 6 GiB) when they hold the tree and a Debian base
		[ $((inodes + 20000)) -le 393216 ] ||
			opts=(-N $((inodes * 2 + 100000)))
	else
		# enough inodes for the tree plus a Debian base
		opts=(-N $((inodes * 2 + 100000)) "${journal_opt[@]}")
	fi
	# lazy init off: no background zeroing of inode tables during the runs
	mkfs.ext4 -q -F "${opts[@]}" \
		-E lazy_itable_init=0,lazy_journal_init=0 "$1"
}

build_generated() { # IMAGE
	make_image "$1"
	attach "$1"
	mkdir "$mnt/tree"
	"$B/bench/gentree" -n "$inodes" "$mnt/tree" >&2
	count_inodes
	detach
}

build_rootfs() { # IMAGE
	local tarball
	tarball=$("$top/images/rootfs.sh" tarball) || return 1
	make_image "$1"
	attach "$1"
	mkdir "$mnt/tree"
	tar --numeric-owner --xattrs --xattrs-include='*' --acls \
		-C "$mnt/tree" -xf "$tarball"
	mkdir "$mnt/tree/srv/layer"
	"$B/bench/gentree" -n "$inodes" "$mnt/tree/srv/layer" >&2
	count_inodes
	detach
}

count_inodes() {
	find "$mnt/tree" -xdev -printf '%i\n' | sort -u | wc -l >"$work/inodes.$cur_tree"
}

# Fill the caches the way a second pass over the tree would find them:
# every inode and its xattrs.  Then sync: reading the directories updated
# their atimes (relatime), and the contender must not be charged for
# writing back what the warm-up dirtied (~15k inode blocks, most of a
# small journal).
warm_up() {
	find "$mnt/tree" -xdev -printf '' 2>/dev/null
	getfattr -R -P -m - "$mnt/tree" >/dev/null 2>&1 || true
	sync -f "$mnt"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# Anything still owned by an id in the source range means the contender
# did not do the whole job.
check_shifted() {
	local left
	left=$(find "$mnt/tree" -xdev \( -uid -$((MAP_FROM + MAP_COUNT)) -o -gid -$((MAP_FROM + MAP_COUNT)) \) -print 2>/dev/null | head -n 3)
	[ -z "$left" ] || {
		log "  left unshifted: $(echo "$left" | tr '\n' ' ')"
		return 1
	}
}

# measure TREE CACHE NAME COMMAND...: one repetition from a fresh image copy;
# appends "seconds maxrss status ok" to $work/res.TREE.CACHE.NAME
measure() {
	local tree=$1 cache=$2 name=$3 res line ok=ok
	shift 3
	# a new file every time: nothing of the previous run can leak in
	rm -f "$work/run.img"
	cp --sparse=always "$work/$tree.img" "$work/run.img"
	# write the copy out now: left dirty, the host's writeback of it (over
	# a GiB with the journal) ran during the measurement that followed
	sync "$work/run.img"
	attach "$work/run.img"
	if [ "$name" = nspawn-noop ]; then
		# the container's fixed cost: nspawn on a tree it already shifted
		"${nspawn_cmd[@]}" >/dev/null 2>&1 || true
	fi
	if [ "$cache" = warm ]; then warm_up; else drop_caches; fi
	res="$work/one"
	rm -f "$res"
	"$B/bench/runone" -o "$res" "$@" >"$work/cmd.out" 2>&1 || true
	line=$(cat "$res")
	case "$name" in
	nspawn-noop) ;;
	*) check_shifted || ok=incomplete ;;
	esac
	detach
	# seconds=S maxrss_kb=K status=N cpu=C -> "S K N ok C"
	local sec rss st cpu
	read -r sec rss st cpu <<<"$line"
	echo "${sec#*=} ${rss#*=} ${st#*=} $ok ${cpu#*=}" >>"$work/res.$tree.$cache.${name//\//_}"
	if [ "${st#*=}" != 0 ]; then
		log "  $name exited ${st#*=}: $(tail -n 2 "$work/cmd.out" | tr '\n' ' ')"
	fi
}

median() { # FILE -> "seconds maxrss status ok cpu" of the median run
	sort -n -k1,1 "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}

contenders() { # TREE
	names=()
	if [ -x "$shift_tree" ]; then
		for e in $engines; do names+=("shift-tree:$e"); done
	fi
	names+=(baseline-nftw)
	if [ "$1" = rootfs ] && command -v systemd-nspawn >/dev/null; then
		names+=(nspawn nspawn-noop)
	fi
}

run_one() { # TREE CACHE NAME
	local tree=$1 cache=$2 name=$3
	case "$name" in
	shift-tree:*/*) # ENGINE/THREADS
		local et=${name#shift-tree:}
		measure "$tree" "$cache" "$name" "$shift_tree" --quiet \
			--map "$MAP_FROM:$MAP_TO:$MAP_COUNT" \
			--engine="${et%/*}" --threads "${et#*/}" "$mnt/tree"
		;;
	shift-tree:*)
		measure "$tree" "$cache" "$name" "$shift_tree" --quiet \
			--map "$MAP_FROM:$MAP_TO:$MAP_COUNT" \
			--engine="${name#shift-tree:}" "$mnt/tree"
		;;
	baseline-nftw)
		measure "$tree" "$cache" "$name" "$B/bench/baseline-nftw" \
			"$MAP_FROM" "$MAP_TO" "$MAP_COUNT" "$mnt/tree"
		;;
	nspawn | nspawn-noop)
		measure "$tree" "$cache" "$name" "${nspawn_cmd[@]}"
		;;
	esac
}

nspawn_cmd=(systemd-nspawn -q --register=no --keep-unit
	--private-users="$MAP_TO:$MAP_COUNT" --private-users-ownership=chown
	-D "$mnt/tree" /bin/true)

report() { # TREE CACHE
	local tree=$1 cache=$2 n base nsp s rss st ok rate vb vn name
	n=$(cat "$work/inodes.$tree")
	base=$(median "$work/res.$tree.$cache.baseline-nftw" | cut -d' ' -f1)
	nsp=""
	[ -f "$work/res.$tree.$cache.nspawn" ] &&
		nsp=$(median "$work/res.$tree.$cache.nspawn" | cut -d' ' -f1)
	printf '\n%s tree (%s inodes), %s cache, median of %s\n' "$tree" "$n" "$cache" "$reps"
	printf '%-20s %9s %11s %8s %9s %8s %10s %s\n' contender seconds inodes/s vs-nftw vs-nspawn cpu_s maxrss_kB note
	for name in "${names[@]}"; do
		[ -f "$work/res.$tree.$cache.${name//\//_}" ] || continue
		read -r s rss st ok cpu < <(median "$work/res.$tree.$cache.${name//\//_}")
		rate=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
		vb=$(awk -v a="$base" -v s="$s" 'BEGIN { printf "%.2fx", (s > 0 ? a / s : 0) }')
		vn=-
		[ -n "$nsp" ] && vn=$(awk -v a="$nsp" -v s="$s" 'BEGIN { printf "%.2fx", (s > 0 ? a / s : 0) }')
		note=""
		[ "$st" = 0 ] || note="exit $st"
		[ "$ok" = ok ] || note="$note $ok"
		printf '%-20s %9s %11s %8s %9s %8s %10s %s\n' "$name" "$s" "$rate" "$vb" "$vn" "$cpu" "$rss" "$note"
		if [ -n "$out" ]; then
			echo "tree=$tree cache=$cache contender=$name inodes=$n seconds=$s inodes_per_s=$rate vs_nftw=$vb vs_nspawn=$vn cpu_s=$cpu maxrss_kb=$rss status=$st check=$ok runs=$(tr '\n' ';' <"$work/res.$tree.$cache.${name//\//_}")" >>"$out"
		fi
	done
}

log "scratch in $work; tree of $inodes inodes; $reps repetition(s)"
echo "machine: $(nproc) CPUs, kernel $(uname -r), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$journal" = default ]; then
	echo "ext4 images: 6 GiB, made by plain mkfs.ext4 (default journal)"
	plain_mkfs=1
else
	echo "ext4 images: 6 GiB, journal ${journal} MiB"
	plain_mkfs=0
fi

# run_tree NAME BUILDER CACHES: build the image, measure, report
run_tree() {
	cur_tree=$1
	log "building the $cur_tree image"
	if ! "$2" "$work/$cur_tree.img"; then
		log "skipping the $cur_tree tree: failed to build it"
		return 0
	fi
	contenders "$cur_tree"
	for cache in $3; do
		for ((r = 1; r <= reps; r++)); do
			for name in "${names[@]}"; do
				log "$cur_tree/$cache #$r: $name"
				run_one "$cur_tree" "$cache" "$name"
			done
		done
		report "$cur_tree" "$cache"
	done
	rm -f "$work/$cur_tree.img" "$work/run.img"
}

for t in $trees; do
	run_tree "$t" "build_$t" "$caches"
done
if [ "$default_journal" = 1 ]; then
	# The same generated tree on an image made the way users make theirs:
	# plain mkfs.ext4 (64 MiB journal for 6 GiB; docs/benchmarks.md, "The
	# journal"), warm, the default engine against nftw of this series.
	echo
	echo "default journal: generated tree on a 6 GiB image made by plain mkfs.ext4"
	plain_mkfs=1
	engines=$dj_engines
	run_tree generated-default-journal build_generated warm
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
