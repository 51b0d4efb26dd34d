# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# fs-tests/lib/common.bash: what every fs-tests bats file loads first
#
#	load ../lib/common
#
# It gives each bats file one freshly mounted filesystem of type $FS with
# the fixture tree of images/fixture.sh in it, and cleans up after every
# test and after the file, even when a test fails.  See fs-tests/README.md
# for the whole API; in short:
#
#   setup_file/teardown_file/teardown   defaults below (fs_setup, fs_teardown,
#                                       fs_test_teardown); override them and
#                                       call these yourself if you need more
#   $FS $FS_MNT $FS_TREE $FS_RO         filesystem type, its mount, the
#                                       fixture root, 1 when read-only
#   require_idmap require_writable      skip (with the reason) when the
#   require_acl                         kernel/filesystem can't do it
#   scratch NAME                        a fresh directory for this test
#   track_mount PATH                    unmount PATH when the test ends
#   userns_process "0 100000 65536"     a process in a user namespace (pid)
#   idmap_mount ARGS... SOURCE TARGET   shift-mount ARGS; fail loudly
#   mapped ID MAP                       what ID looks like through MAP
#   as_user UID GID CMD...              run CMD with those ids, no groups
#   sk_umount_under DIR                 unmount everything below DIR

# bats-support and bats-assert, sourced directly: their load.bash forks a
# dirname per file, for every test, which costs seconds on a busy machine.
for _f in /usr/lib/bats/bats-support/src/*.bash /usr/lib/bats/bats-assert/src/*.bash; do
	# shellcheck disable=SC1090
	source "$_f"
done
unset _f
# run's flags (--separate-stderr, ! , -N) need 1.5; Debian 12 has 1.8.
bats_require_minimum_version 1.5.0

# The source tree, and the tools (fs-tests/run exports all of these).
# (No forks at load time: this file is sourced once per test.)
if [ -z "${SRCDIR:-}" ]; then
	SRCDIR=${BASH_SOURCE[0]%/*}/../..
	[ "${SRCDIR:0:1}" = / ] || SRCDIR=$PWD/$SRCDIR
fi
BUILDDIR=${BUILDDIR:-$SRCDIR/build}
SHIFT_MOUNT=${SHIFT_MOUNT:-$BUILDDIR/bin/shift-mount}
SHIFT_PROBE=${SHIFT_PROBE:-$BUILDDIR/bin/shift-probe}
SHIFT_TREE=${SHIFT_TREE:-$BUILDDIR/bin/shift-tree}
SHIFT_VERIFY=${SHIFT_VERIFY:-$BUILDDIR/bin/shift-verify}
SHIFT_LAYER=${SHIFT_LAYER:-$BUILDDIR/bin/shift-layer}
SHIFT_ALLOC=${SHIFT_ALLOC:-$BUILDDIR/bin/shift-alloc}
HELPERS=${HELPERS:-$BUILDDIR/helpers}
FS=${FS:-ext4}
export SRCDIR BUILDDIR SHIFT_MOUNT SHIFT_PROBE SHIFT_TREE SHIFT_VERIFY \
	SHIFT_LAYER SHIFT_ALLOC HELPERS FS

# The fixture's documented contents (images/fixture.sh).
export FIXTURE_MTIME=1700000000
# One path of each inode type in the fixture (for the tests).
# shellcheck disable=SC2034
FIXTURE_TYPES=(file-1000 dir symlink dangling fifo socket chardev blockdev
	empty hardlink-a setgid-dir sticky-dir)

# ---------------------------------------------------------------- setup

setup_file() {
	fs_setup
}

teardown_file() {
	fs_teardown
}

teardown() {
	fs_test_teardown
}

# fs_setup: mount a fresh copy of the $FS fixture image (or a tmpfs filled
# with the fixture, or a fixture copy inside $SHIFTKIT_MOUNT) and export
# FS_MNT (the filesystem's mount), FS_TREE (the fixture root in it), FS_DEV
# (its loop device, if any), FS_RO (1: read-only filesystem) and SK_TMP (a
# world-searchable scratch root that fs_teardown removes).
fs_setup() {
	local img

	SK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shiftkit-fstest.XXXXXX")
	chmod 0755 "$SK_TMP"
	export SK_TMP FS_DEV='' FS_RO=0
	export FS_MNT=$SK_TMP/fs FS_TREE=$SK_TMP/fs
	mkdir "$FS_MNT"

	if [ -n "${SHIFTKIT_MOUNT:-}" ]; then
		_fs_setup_existing
		return
	fi
	if [ -z "${SHIFTKIT_IMAGES:-}" ] || [ ! -d "$SHIFTKIT_IMAGES/tree" ] ||
	   { [ "$FS" != tmpfs ] && [ ! -f "$SHIFTKIT_IMAGES/$FS.img" ]; }; then
		SHIFTKIT_IMAGES=$("$SRCDIR/images/build.sh" "$FS") || {
			echo "fs_setup: Failed to build the $FS fixture image" >&2
			return 1
		}
		export SHIFTKIT_IMAGES
	fi

	case "$FS" in
	tmpfs)
		mount -t tmpfs -o mode=0755,size=64m shiftkit-fstest "$FS_MNT"
		cp -a "$SHIFTKIT_IMAGES/tree/." "$FS_MNT/"
		;;
	squashfs | erofs)
		# Read-only: share the cached image.
		FS_RO=1
		FS_DEV=$(losetup -f --show -r "$SHIFTKIT_IMAGES/$FS.img")
		echo "$FS_DEV" >"$SK_TMP/.loop"
		mount -t "$FS" -o ro "$FS_DEV" "$FS_MNT"
		;;
	*)
		img=$SK_TMP/$FS.img
		cp --reflink=auto --sparse=always "$SHIFTKIT_IMAGES/$FS.img" "$img"
		FS_DEV=$(losetup -f --show "$img")
		echo "$FS_DEV" >"$SK_TMP/.loop"
		# Copies of one image share a UUID: XFS refuses a second
		# one unless told (btrfs >= 6.7 gives it a temporary fsid).
		if [ "$FS" = xfs ]; then
			mount -t xfs -o nouuid "$FS_DEV" "$FS_MNT"
		else
			mount -t "$FS" "$FS_DEV" "$FS_MNT"
		fi
		;;
	esac
}

# --mount DIR: the tests run on a fixture copy made inside DIR (removed
# afterwards), or on DIR itself when it is read-only.
_fs_setup_existing() {
	rmdir "$FS_MNT"
	FS_MNT=$SHIFTKIT_MOUNT
	FS=$(findmnt -no FSTYPE -T "$FS_MNT")
	if FS_TREE=$(mktemp -d "$FS_MNT/shiftkit-fstest.XXXXXX" 2>/dev/null); then
		echo "$FS_TREE" >"$SK_TMP/.tree"
		chmod 0755 "$FS_TREE"
		cp -a "${SHIFTKIT_IMAGES:?}/tree/." "$FS_TREE/"
	else
		FS_TREE=$FS_MNT
		FS_RO=1
	fi
}

# fs_teardown: undo fs_setup and everything a test left mounted under
# SK_TMP, even after failures.  Removes SK_TMP only when nothing is
# mounted below it any more.
fs_teardown() {
	local t

	[ -n "${SK_TMP:-}" ] && [ -d "$SK_TMP" ] || return 0
	sk_umount_under "$SK_TMP"
	if [ -f "$SK_TMP/.loop" ]; then
		losetup -d "$(cat "$SK_TMP/.loop")" 2>/dev/null || true
	fi
	if [ -f "$SK_TMP/.tree" ]; then
		t=$(cat "$SK_TMP/.tree")
		case "$t" in
		*/shiftkit-fstest.*) rm -rf --one-file-system "$t" ;;
		esac
	fi
	if grep -qF " $SK_TMP/" /proc/self/mountinfo; then
		echo "fs_teardown: mounts left below '$SK_TMP', not removing it" >&2
		return 1
	fi
	rm -rf --one-file-system "$SK_TMP"
}

# fs_test_teardown: unmount what this test mounted (its scratch dirs and
# the mounts it named with track_mount).
fs_test_teardown() {
	local d=$SK_TMP/t$BATS_TEST_NUMBER m

	[ -n "${SK_TMP:-}" ] || return 0
	if [ -f "$d.mounts" ]; then
		while read -r m; do
			sk_umount_under "$m"
		done < <(tac "$d.mounts")
		rm -f "$d.mounts"
	fi
	sk_umount_under "$d"
	[ -e "$d" ] || [ -e "$d.pids" ] || return 0
	if [ -f "$d.pids" ]; then
		while read -r m; do
			kill "$m" 2>/dev/null || true
		done <"$d.pids"
		rm -f "$d.pids"
	fi
	rm -rf --one-file-system "$d"
}

# sk_umount_under DIR: unmount every mount at or below DIR, newest first
# (lazily if a plain umount fails).  No forks unless something is mounted:
# it runs after every test.  Reading mountinfo while other processes mount
# and unmount can miss lines, so scan again until two scans in a row find
# nothing left.
sk_umount_under() {
	local dir=$1 line f m i pass empty=0
	local -a fields

	for ((pass = 0; pass < 12; pass++)); do
		m=()
		while IFS= read -r line; do
			read -r -a fields <<<"$line"
			f=${fields[4]//\\040/ }
			[ "$f" = "$dir" ] || [ "${f#"$dir"/}" != "$f" ] || continue
			m+=("$f")
		done </proc/self/mountinfo
		if [ ${#m[@]} -eq 0 ]; then
			((++empty < 2)) || return 0
			continue
		fi
		empty=0
		for ((i = ${#m[@]} - 1; i >= 0; i--)); do
			umount "${m[i]}" 2>/dev/null || umount -l "${m[i]}" 2>/dev/null || true
		done
	done
}

# ---------------------------------------------------------------- skips

# require_idmap: skip unless $FS can be idmapped here.  Found by trying
# once per bats file: with the kernel-level helper when it is built,
# otherwise with shift-mount itself (exit 3 = not supported).
require_idmap() {
	local f=$SK_TMP/.idmap t out rc=0

	if [ ! -f "$f" ]; then
		t=$SK_TMP/.idmap-probe
		mkdir -p "$t"
		if [ -x "$HELPERS/idmap-helper" ]; then
			out=$("$HELPERS/idmap-helper" idmap --map b:0:100000:65536 \
				"$FS_TREE" 2>&1) || rc=$?
			if [ "$rc" -eq 0 ] && grep -q '^idmap: OK' <<<"$out"; then
				echo yes >"$f"
			elif [ "$rc" -eq 0 ]; then
				echo "no: $(grep '^idmap:' <<<"$out")" >"$f"
			fi
		fi
		if [ ! -f "$f" ]; then
			rc=0
			out=$("$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE" "$t" 2>&1) || rc=$?
			sk_umount_under "$t"
			case $rc in
			0) echo yes >"$f" ;;
			3) echo "no: $out" >"$f" ;;
			*)
				echo "require_idmap: the probe failed (exit $rc): $out" >&2
				return 1
				;;
			esac
		fi
		rmdir "$t"
	fi
	read -r t <"$f"
	[ "$t" = yes ] || skip "filesystem $FS: no idmapped mounts on this kernel"
}

# require_writable: skip on read-only filesystems (squashfs, erofs).
require_writable() {
	[ "$FS_RO" = 0 ] || skip "filesystem $FS: read-only"
}

# require_acl: skip where the filesystem has no POSIX ACLs (squashfs).
require_acl() {
	getfattr -n system.posix_acl_access "$FS_TREE/acl-file" >/dev/null 2>&1 ||
		skip "filesystem $FS: no POSIX ACLs"
}

# debian_image BUILDER ARGS...: in setup_file, run an images/ builder of a
# Debian tree (it debootstraps when its cache is empty) and print its last
# line, the image.  When debootstrap can't reach the mirror, note why for
# require_debian and print nothing; any other failure shows the builder's
# output and fails.
debian_image() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		tail -n1 <<<"$out"
	elif grep -q "Failed to debootstrap\|Failed to find a Debian mirror" <<<"$out"; then
		echo "no Debian image: $(grep -m1 Failed <<<"$out") (debootstrap cannot reach the apt mirror)" \
			>"$SK_TMP/.debian-skip"
	else
		echo "$out" >&2
		return 1
	fi
}

# require_debian: skip when debian_image found no way to build the image.
require_debian() {
	[ ! -f "$SK_TMP/.debian-skip" ] || skip "$(cat "$SK_TMP/.debian-skip")"
}

# ---------------------------------------------------------------- helpers

# scratch NAME: create and print a fresh directory for this test
# (world-searchable, so as_user can reach mounts below it).
scratch() {
	local d=$SK_TMP/t$BATS_TEST_NUMBER

	mkdir -p "$d"
	chmod 0755 "$d"
	mkdir "$d/$1"
	chmod 0755 "$d/$1"
	echo "$d/$1"
}

# track_mount PATH: unmount PATH (and what is below it) when this test
# ends; for mounts outside the test's scratch dirs, e.g. a submount made
# inside $FS_TREE.
track_mount() {
	echo "$1" >>"$SK_TMP/t$BATS_TEST_NUMBER.mounts"
}

# userns_process UID_MAP [GID_MAP]: start a process (sleep) in a new user
# namespace whose maps root writes ("0 100000 65536" form, the gid map
# defaults to the uid map), print its pid.  The test's teardown kills it.
userns_process() {
	local pid ns i
	mkdir -p "$SK_TMP/t$BATS_TEST_NUMBER"
	unshare --user sleep 600 </dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	echo "$pid" >>"$SK_TMP/t$BATS_TEST_NUMBER.pids"
	ns=$(readlink /proc/self/ns/user)
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink "/proc/$pid/ns/user" 2>/dev/null)" = "$ns" ] || break
		sleep 0.05
	done
	echo "$1" >"/proc/$pid/uid_map"
	echo "${2:-$1}" >"/proc/$pid/gid_map"
	echo "$pid"
}

# idmap_mount ARGS...: run shift-mount ARGS; on failure print the command,
# its exit status and output, and fail.  Mount targets should be scratch
# dirs (then the test's teardown unmounts them).
idmap_mount() {
	local out rc=0

	out=$("$SHIFT_MOUNT" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "shift-mount $* failed with exit $rc: $out" >&2
		return 1
	fi
	[ -z "$out" ] || echo "$out" >&2
}

# mapped ID MAP...: print what the on-disk ID is seen as through the maps
# (each [u:|g:|b:]A:B:N; the prefix is ignored), 65534 when unmapped.
mapped() {
	local id=$1 m a b n
	shift
	for m in "$@"; do
		m=${m#[ugb]:}
		IFS=: read -r a b n <<<"$m"
		if [ "$id" -ge "$a" ] && [ "$id" -lt $((a + n)) ]; then
			echo $((b + id - a))
			return
		fi
	done
	echo 65534
}

# owner PATH: "UID:GID" of PATH itself (symlinks not followed).
owner() {
	stat -c %u:%g -- "$1"
}

# as_user UID GID CMD...: run CMD with real/effective/saved uid and gid set
# and no supplementary groups (and so no capabilities).
as_user() {
	local uid=$1 gid=$2
	shift 2
	setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
}

# manifest DIR: images/manifest.sh DIR (owners, modes, xattrs of a tree).
manifest() {
	"$SRCDIR/images/manifest.sh" "$1"
}

# mount_opts PATH: the per-mount options of the mount at PATH.
mount_opts() {
	findmnt -no VFS-OPTIONS --mountpoint "$1"
}

# expect_failure REASON CMD...: CMD is known to fail on this kernel (REASON
# names the kernel bug and its fix).  The failure is reported as a skip
# naming REASON; an unexpected pass fails the test, so a kernel that fixed
# the bug is noticed and the expectation can be dropped.
expect_failure() {
	local reason=$1
	shift
	if "$@"; then
		fail "unexpected pass of an expected failure ($reason): $*"
		return 1
	fi
	skip "expected failure: $reason"
}

# cpu_of USER SYS: bash's `time` figures (seconds, 3 decimals) -> ns.
cpu_of() {
	echo $(((10#${1/./} + 10#${2/./}) * 1000000))
}

# least_cpu_ns N CMD...: the least CPU time (user + system, ns) of N runs
# of CMD (its output and status ignored).  For a run's fixed start-up cost:
# it varies from run to run, most under ASan.
least_cpu_ns() {
	local n=$1 i t u s least= TIMEFORMAT='%3U %3S'
	shift
	for ((i = 0; i < n; i++)); do
		read -r u s < <({ time "$@" >/dev/null 2>&1; } 2>&1)
		t=$(cpu_of "$u" "$s")
		[ -n "$least" ] && [ "$least" -le "$t" ] || least=$t
	done
	echo "$least"
}
