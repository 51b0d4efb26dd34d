#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A block device or an image file given as PATH (shift-probe) or SOURCE
# (shift-mount) is named by the filesystem libblkid finds in it: shift-probe
# reports "FS image" / "block device holding FS" instead of the mount that
# holds the file or the device node, and shift-mount refuses to bind it onto
# a directory (exit 1), pointing to mounting it first.
#
# run-on: ext4 xfs btrfs squashfs erofs

load ../lib/common

setup() {
	[ -n "$FS_DEV" ] || skip "filesystem $FS: no block device (not an image)"
	IMG=$SHIFTKIT_IMAGES/$FS.img
	[ -f "$IMG" ] || skip "filesystem $FS: no image file"
}

@test "shift-probe names an image file's filesystem (table and --json)" {
	run "$SHIFT_PROBE" --mounts-only --noheadings "$IMG"
	assert_success
	assert_output --regexp "^$IMG +$FS +$IMG +$FS image: mount it \\(mount -o loop\\), then probe the mount point$"
	run "$SHIFT_PROBE" --json --mounts-only "$IMG"
	assert_success
	run jq -e --arg t "$IMG" --arg fs "$FS" \
		'.mounts | length == 1 and .[0].target == $t and
		 .[0].fstype == $fs and .[0].supported == null and
		 .[0].idmapped == null' <<<"$output"
	assert_success
}

@test "shift-probe names a block device's filesystem and where it is mounted" {
	run "$SHIFT_PROBE" --mounts-only --noheadings "$FS_DEV"
	assert_success
	assert_output --partial "block device holding $FS, mounted at '$FS_MNT': probe that path"
	refute_output --regexp "devtmpfs"
}

@test "shift-mount refuses an image file as SOURCE for a directory, naming its filesystem" {
	local m
	m=$(scratch m)
	run --separate-stderr "$SHIFT_MOUNT" --map 0:100000:65536 "$IMG" "$m"
	assert_failure 1
	[[ "$stderr" == *"Failed to mount '$IMG': it is an image file holding $FS, not a directory tree (mount it first, e.g. 'mount -o loop $IMG DIR', and give DIR as SOURCE)"* ]] ||
		fail "unexpected message: $stderr"
	run mountpoint -q "$m"
	assert_failure
}

@test "shift-mount refuses a block device as SOURCE for a directory, with any --fallback" {
	local m f
	m=$(scratch m)
	for f in none shift; do
		run --separate-stderr "$SHIFT_MOUNT" --map 0:100000:65536 \
			--fallback="$f" "$FS_DEV" "$m"
		assert_failure 1
		[[ "$stderr" == *"it is a block device holding $FS, not a directory tree"* ]] ||
			fail "--fallback=$f: unexpected message: $stderr"
	done
	run mountpoint -q "$m"
	assert_failure
	run stat -c %u:%g "$FS_DEV"
	assert_output 0:0
}
