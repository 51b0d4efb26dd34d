#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An attached idmapped mount shows "idmapped" in /proc/self/mountinfo, with
# the attributes asked for; the original mount does not.

load ../lib/common

setup() {
	require_idmap
}

# opts TARGET: the per-mount options field of TARGET's mountinfo line.
opts() {
	awk -v t="$1" '$5 == t { print $6 }' /proc/self/mountinfo
}

@test "mountinfo shows idmapped on the new mount only" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run opts "$m"
	assert_output --regexp '(^|,)idmapped(,|$)'
	run opts "$FS_MNT"
	assert_success
	refute_output --partial idmapped
}

@test "--read-only --nosuid --nodev --noexec show as mount options" {
	local m
	m=$(scratch m)
	idmap_mount --read-only --nosuid --nodev --noexec --map 0:100000:65536 \
		"$FS_TREE" "$m"
	run opts "$m"
	assert_output --regexp '^ro,'
	assert_output --regexp '(^|,)nosuid(,|$)'
	assert_output --regexp '(^|,)nodev(,|$)'
	assert_output --regexp '(^|,)noexec(,|$)'
	assert_output --regexp '(^|,)idmapped(,|$)'
	run touch "$m/ro-$BATS_TEST_NUMBER"
	assert_failure
	assert_output --partial "Read-only file system"
}

@test "re-idmapping an idmapped mount fails with a clear message and changes nothing" {
	local a b
	a=$(scratch a)
	b=$(scratch b)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$a"
	run "$SHIFT_MOUNT" --map 0:200000:65536 "$a" "$b"
	assert_failure 1
	assert_output --partial "shift-mount: Failed to idmap '$a'"
	assert_output --partial "already idmapped"
	run mountpoint -q "$b"
	assert_failure
	assert_equal "$(owner "$a/file-1000")" 101000:101000
}
