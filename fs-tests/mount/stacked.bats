#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A TARGET that is already a mount point (a running container's root, say)
# is refused with exit 1 unless --allow-stacked: a mount on top would hide
# it.  The test is the kernel's (STATX_ATTR_MOUNT_ROOT), so a bind mount
# from the same filesystem (same st_dev) counts too.  Nothing is shifted,
# copied or mounted when refused.
# run-on: once

load ../lib/common

MAP=b:0:100000:65536

# n_mounts DIR: how many mounts are stacked at DIR.
n_mounts() {
	findmnt -rn --mountpoint "$1" | wc -l
}

@test "a TARGET with a tmpfs on it is refused with exit 1, for every mode" {
	local s t up
	s=$(scratch s)
	t=$(scratch t)
	up=$(scratch up)
	mount -t tmpfs -o mode=0755 stacked-test "$t"
	touch "$t/running-container"
	run "$SHIFT_MOUNT" --map "$MAP" "$s" "$t"
	assert_failure 1
	assert_output --partial "'$t'"
	assert_output --partial "already a mount point"
	assert_output --partial "--allow-stacked"
	run "$SHIFT_MOUNT" --map "$MAP" --tmpfs "$t"
	assert_failure 1
	assert_output --partial "--allow-stacked"
	run "$SHIFT_MOUNT" --map "$MAP" --overlay --upper "$up/u" --work "$up/w" "$s" "$t"
	assert_failure 1
	assert_output --partial "--allow-stacked"
	run "$SHIFT_MOUNT" --map "$MAP" --dry-run "$s" "$t"
	assert_failure 1
	assert_output --partial "--allow-stacked"
	assert_equal "$(n_mounts "$t")" 1
	[ -e "$t/running-container" ]
	[ ! -e "$up/u" ]
}

@test "a bind mount from the same filesystem (same st_dev) is a mount point too" {
	local s src t
	s=$(scratch s)
	src=$(scratch src)
	t=$(scratch t)
	mount --bind "$src" "$t"
	assert_equal "$(stat -c %d "$t")" "$(stat -c %d "$s")"
	run "$SHIFT_MOUNT" --map "$MAP" "$s" "$t"
	assert_failure 1
	assert_output --partial "already a mount point"
	assert_equal "$(n_mounts "$t")" 1
}

@test "--fallback=shift refuses before shifting anything" {
	local d t
	d=$(scratch o)
	t=$(scratch t)
	mkdir "$d/lower" "$d/upper" "$d/work" "$d/ovl"
	touch "$d/lower/f"
	chown 1000:1000 "$d/lower/f"
	mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/ovl"
	mount -t tmpfs -o mode=0755 stacked-test "$t"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift "$d/ovl" "$t"
	assert_failure 1
	assert_output --partial "already a mount point"
	assert_equal "$(owner "$d/ovl/f")" 1000:1000
	assert_equal "$(n_mounts "$t")" 1
}

@test "--allow-stacked mounts on top of it" {
	require_idmap
	local t
	t=$(scratch t)
	mount -t tmpfs -o mode=0755 stacked-test "$t"
	idmap_mount --map "$MAP" --allow-stacked "$FS_TREE" "$t"
	assert_equal "$(n_mounts "$t")" 2
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}

@test "a TARGET inside a mount, not its root, is fine" {
	require_idmap
	local t
	t=$(scratch t)
	mount -t tmpfs -o mode=0755 stacked-test "$t"
	mkdir "$t/inner"
	idmap_mount --map "$MAP" "$FS_TREE" "$t/inner"
	assert_equal "$(owner "$t/inner/file-1000")" 101000:101000
}
