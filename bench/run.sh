#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# make bench: every benchmark of shiftkit, one section each.
#   bench/run.sh [SECTION...]     sections: shift mount verify layer reassemble
#                                 rootless huge (default: all; huge only with BENCH_HUGE=1)
# Environment: BUILDDIR (default build), BENCH_QUICK=1 for small trees;
# each section documents its own knobs.  Figures and method: docs/benchmarks.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export BUILDDIR=${BUILDDIR:-build}
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(shift mount verify layer reassemble rootless huge)
rc=0

want() {
	local s
	for s in "${sections[@]}"; do [ "$s" = "$1" ] && return 0; done
	return 1
}

# ---- shift section (in-place shift engines; owner: bench/shift-bench.sh) ----
if want shift; then
	echo "== shift: in-place shift engines vs nftw baseline vs systemd-nspawn =="
	"$here/shift-bench.sh" || rc=1
fi
# ---- end of shift section ----

# ---- mount section (idmapped mounts) ----
if want mount; then
	# Knobs: BENCH_MOUNT_RUNS (default 200; 50 with BENCH_QUICK=1).
	echo "== mount: idmapped mounts (namespace creation included) =="
	runs=${BENCH_MOUNT_RUNS:-200}
	[ "${BENCH_QUICK:-0}" = 1 ] && runs=${BENCH_MOUNT_RUNS:-50}
	if [ "$(id -u)" -ne 0 ]; then
		echo "(skipped: needs root)"
	else
		mrc=0
		"$BUILDDIR/bench/bench-mount" "$runs" || mrc=$?
		[ "$mrc" -eq 0 ] || [ "$mrc" -eq 77 ] || rc=1
	fi
fi
# ---- end of mount section ----

# ---- verify section (shift-verify record/check; owner: bench/bench-verify.sh) ----
if want verify; then
	echo "== verify: record and check a ~200k-inode tree =="
	"$here/bench-verify.sh" || rc=1
fi
# ---- end of verify section ----

# ---- layer section (OCI images: mount vs flat unpack vs tar/umoci; owner: bench/bench-layer.sh) ----
if want layer; then
	echo "== layer: ready rootfs for a 3-layer Debian image: idmapped overlay, flat shifted unpack, tar, umoci, tar+chown =="
	"$here/bench-layer.sh" || rc=1
fi
# ---- end of layer section ----

# ---- reassemble section (overlay roots: re-assembly vs shift vs copy; owner: bench/bench-reassemble.sh) ----
if want reassemble; then
	echo "== reassemble: ready rootfs from an overlay root of 10k and 100k inodes (1M: BENCH_REASSEMBLE_1M=1): re-assembly, shift in place, shifted copy =="
	"$here/bench-reassemble.sh" || rc=1
fi
# ---- end of reassemble section ----

# ---- rootless section (a user's container root: shift-mountd vs newuidmap copy + shift-tree; owner: bench/bench-rootless.sh) ----
if want rootless; then
	echo "== rootless: an unprivileged user's ready rootfs of 10k and 100k inodes: through shift-mountd, shifted copy in a newuidmap namespace =="
	"$here/bench-rootless.sh" || rc=1
fi
# ---- end of rootless section ----

# ---- huge section (1M inodes: verify, shift-tree, shift-layer; opt-in; owner: bench/bench-huge.sh) ----
if want huge; then
	echo "== huge: record, check, shift-tree and shift-layer unpack at a million inodes: time and peak RSS =="
	if [ "${BENCH_HUGE:-0}" = 1 ]; then
		"$here/bench-huge.sh" || rc=1
	else
		echo "(skipped: takes minutes and a few GB of disk; run with BENCH_HUGE=1)"
	fi
fi
# ---- end of huge section ----

exit "$rc"
