#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# --recursive clones and idmaps the mounts below SOURCE too; without it the
# submounts are not part of the idmapped mount.

load ../lib/common

setup() {
	require_idmap
	# A tmpfs on the fixture's dir/, with a file owned by 1000.
	SUB=$FS_TREE/dir
	mount -t tmpfs -o mode=0755 shiftkit-sub "$SUB"
	track_mount "$SUB"
	echo sub >"$SUB/on-submount"
	chown 1000:1000 "$SUB/on-submount"
}

@test "--recursive idmaps the submounts too" {
	local m
	m=$(scratch m)
	idmap_mount --recursive --map 0:100000:65536 "$FS_TREE" "$m"
	mountpoint -q "$m/dir"
	assert_equal "$(owner "$m/dir/on-submount")" 101000:101000
	assert_equal "$(owner "$m/dir")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	grep -F " $m/dir " /proc/self/mountinfo | grep -q idmapped
}

@test "without --recursive the submounts are absent" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run mountpoint -q "$m/dir"
	assert_failure
	[ ! -e "$m/dir/on-submount" ]
	# What is seen is the directory under the submount, mapped.
	assert_equal "$(owner "$m/dir/file")" 101000:101000
}

@test "--recursive fails, leaving nothing mounted, when a submount can't be idmapped" {
	local m
	m=$(scratch m)
	# ramfs has no FS_ALLOW_IDMAP.
	mount -t ramfs shiftkit-ramfs "$FS_TREE/deep"
	track_mount "$FS_TREE/deep"
	run "$SHIFT_MOUNT" --recursive --map 0:100000:65536 "$FS_TREE" "$m"
	assert_failure
	assert_output --partial "ramfs"
	run mountpoint -q "$m"
	assert_failure
}
