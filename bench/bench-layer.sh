#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The OCI layer benchmark ("layer" section of bench/run.sh): time to a
# ready root filesystem for a container with map MAP, for the three-layer
# Debian image of images/oci.sh (debootstrap'ed minbase + two layers).
#
#   mount      shift-layer's idmapped overlay over the stored layers, timed
#              in-process by bench/layer-mount (open image + mount), ms;
#              the store is filled once beforehand (not timed here)
#   copy-mount the same over shifted copies (the fallback), copies made
#   tar        plain "tar -xzf" of the same layer blobs, one after the other
#              (no shift, no whiteouts, no digests: the floor)
#   flat       shift-layer unpack --flat --map (shift, whiteouts, ACLs,
#              capabilities, digests, all while extracting)
#   umoci      umoci unpack --uid-map --gid-map (no ACL/capability shift)
#   tar+chown  tar -x, then shift-tree --map over the result (the classic
#              unpack-then-chown)
#
# Prints the median wall seconds and CPU seconds (user+system, children
# included: the figure to trust on a busy machine) of BENCH_REPS runs, the
# ratios to tar and to flat, and whether flat is within 1.2x of tar.
#
# Environment:
#   BUILDDIR         binaries (default build)
#   BENCH_QUICK=1    one repetition
#   BENCH_REPS       repetitions (default 3)
#   BENCH_LAYER_FS   tmpfs (default: no disk noise) or disk (BENCH_DIR)
#   BENCH_DIR        scratch parent for BENCH_LAYER_FS=disk (default /var/tmp)
#   BENCH_MOUNT_RUNS mounts timed by layer-mount (default 50)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init bench-layer
reps=${BENCH_REPS:-3}
[ "${BENCH_QUICK:-0}" = 1 ] && reps=1
fs=${BENCH_LAYER_FS:-tmpfs}
mruns=${BENCH_MOUNT_RUNS:-50}
MAP=b:0:3000000:65536
LAYER=$B/bin/shift-layer

bench_need_root
bench_need "$LAYER"
command -v umoci >/dev/null || die "Failed to find umoci (apt-get install umoci)"

if ! layout=$("$top/images/oci.sh" debian); then
	echo "(skipped: the Debian OCI image could not be built, see above)"
	exit 0
fi
image=$layout:debian
md=$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)
mapfile -t blobs < <(jq -r '.layers[].digest' "$layout/blobs/sha256/$md" |
	sed "s|^sha256:|$layout/blobs/sha256/|")

bench_workdir "${BENCH_DIR:-/var/tmp}" bench-layer
if [ "$fs" = tmpfs ]; then
	mount -t tmpfs -o size=6g,mode=0755 bench-layer "$work"
fi

# run NAME COMMAND...: one timed repetition into $work/NAME.times
# ("wall cpu" per line).  The command runs in $work.
run() {
	local name=$1 t
	shift
	t=$( { TIMEFORMAT='%R %U %S'; time { ( cd "$work" && "$@" ) >/dev/null 2>"$work/err"; }; } 2>&1 ) ||
		{ cat "$work/err" >&2; die "'$name' failed"; }
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' <<<"${t##*$'\n'}" >>"$work/$name.times"
}

median() {
	sort -n -k"$2" "$work/$1.times" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'
}

untar() {
	local b
	mkdir "$1"
	for b in "${blobs[@]}"; do
		tar --numeric-owner -xzf "$b" -C "$1"
	done
}

tar_chown() {
	untar "$1"
	"$B/bin/shift-tree" --map "$MAP" "$1"
}

umoci_unpack() {
	local a b n
	IFS=: read -r a b n <<<"${MAP#b:}"
	umoci unpack --uid-map "$a:$b:$n" --gid-map "$a:$b:$n" --image "$image" "$1"
}

echo "image: $image (${#blobs[@]} layers, $(du -ch "${blobs[@]}" | tail -n1 | cut -f1) compressed)"
echo "scratch: $fs; $reps repetition(s); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
methods=(tar flat umoci)
[ -x "$B/bin/shift-tree" ] && methods+=(tar+chown)
for ((i = 0; i < reps; i++)); do
	for m in "${methods[@]}"; do
		rm -rf "${work:?}/out"
		case $m in
		tar) run tar untar out ;;
		flat) run flat "$LAYER" unpack --flat --map "$MAP" "$image" out ;;
		umoci) run umoci umoci_unpack out ;;
		tar+chown) run tar+chown tar_chown out ;;
		esac
	done
done
rm -rf "${work:?}/out"

# The store once, then the mounts.
"$LAYER" unpack --store "$work/store" "$image" >/dev/null
mount_out=$("$B/bench/layer-mount" "$work/store" "$image" "$MAP" "$mruns")
copy_first=$( { TIMEFORMAT='%R'; time "$B/bench/layer-mount" "$work/store" "$image" "$MAP" 1 --copy >/dev/null; } 2>&1)
copy_out=$("$B/bench/layer-mount" "$work/store" "$image" "$MAP" "$mruns" --copy)

printf '\n%-10s %10s %10s %8s %8s\n' method "wall s" "cpu s" "/tar" "/flat"
tw=$(median tar 1)
fw=$(median flat 1)
for m in "${methods[@]}"; do
	w=$(median "$m" 1)
	c=$(median "$m" 2)
	printf '%-10s %10s %10s %8s %8s\n' "$m" "$w" "$c" \
		"$(awk -v a="$w" -v b="$tw" 'BEGIN { printf "%.2fx", a / b }')" \
		"$(awk -v a="$w" -v b="$fw" 'BEGIN { printf "%.2fx", a / b }')"
done
echo
echo "mount (idmapped overlay, in-process, $mruns runs): $(grep '^open+mount' <<<"$mount_out" | cut -d' ' -f2-)"
echo "copy-mount: first (makes the shifted copies) ${copy_first}s; then: $(grep '^open+mount' <<<"$copy_out" | cut -d' ' -f2-)"
mm=$(grep '^open+mount' <<<"$mount_out" | awk '{ print $6 }')
echo "flat unpack / idmapped mount: $(awk -v a="$fw" -v b="$mm" 'BEGIN { printf "%.0fx", a * 1000 / b }')"
ratio=$(awk -v a="$fw" -v b="$tw" 'BEGIN { printf "%.2f", a / b }')
if awk -v r="$ratio" 'BEGIN { exit !(r <= 1.2) }'; then
	echo "flat/tar = $ratio: within the 1.2x target"
else
	echo "flat/tar = $ratio: MISSES the 1.2x target"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
