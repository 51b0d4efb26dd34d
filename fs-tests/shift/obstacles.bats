#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Obstacles are reported per path and end the run non-zero, never a silent
# partial shift; once the obstacle is gone the same command finishes.
#
# run-on: ext4

load ../lib/common
load lib

setup() {
	require_writable
	BASE=$FS_MNT/shift-obst-$BATS_TEST_NUMBER
	mkdir -p "$BASE/t/d"
	echo a >"$BASE/t/a"
	echo b >"$BASE/t/d/b"
	echo c >"$BASE/t/c"
}

teardown() {
	chattr -i -a "$BASE/t/a" "$BASE/t/c" 2>/dev/null || true
	fs_test_teardown
	sk_umount_under "$BASE"
	rm -rf --one-file-system "${BASE:?}"
}

@test "immutable and append-only files: reported, exit 1, re-run finishes" {
	chattr +i "$BASE/t/a"
	chattr +a "$BASE/t/c"
	run "$SHIFT_TREE" --map 0:100000:65536 "$BASE/t"
	assert_failure 1
	assert_output --partial "Failed to change owner 'a': Operation not permitted (immutable or append-only?"
	assert_output --partial "Failed to change owner 'c'"
	assert_output --partial 'partially shifted'
	assert_equal "$(owner "$BASE/t/d/b")" 100000:100000
	run getfattr --only-values -n trusted.shiftkit.shift "$BASE/t"
	assert_output --partial 'state=incomplete'
	chattr -i "$BASE/t/a"
	chattr -a "$BASE/t/c"
	run "$SHIFT_TREE" --map 0:100000:65536 "$BASE/t"
	assert_success
	assert_output --partial 'resumed'
	assert_equal "$(owner "$BASE/t/a")" 100000:100000
	assert_equal "$(owner "$BASE/t/c")" 100000:100000
	assert_equal "$(owner "$BASE/t/d/b")" 100000:100000
}

@test "read-only mount: refused before any change" {
	local ro
	ro=$(scratch ro)
	mount --bind "$BASE/t" "$ro"
	mount -o remount,bind,ro "$ro"
	run "$SHIFT_TREE" --map 0:100000:65536 "$ro"
	assert_failure 1
	assert_output --partial "Failed to shift '$ro': read-only file system"
	assert_equal "$(owner "$BASE/t/a")" 0:0
}

@test "no room for xattrs (ENOSPC) is reported" {
	local img=$BASE/small.img mnt
	mnt=$(scratch small)
	truncate -s 2M "$img"
	mkfs.ext4 -q -I 128 -b 1024 -N 64 "$img"
	mount -o loop "$img" "$mnt"
	track_mount "$mnt"
	mkdir "$mnt/t"
	echo s >"$mnt/t/suid"
	chmod 4755 "$mnt/t/suid"
	setfattr -n user.pad -v x "$mnt/t"
	dd if=/dev/zero of="$mnt/fill" bs=1k 2>/dev/null || true
	run "$SHIFT_TREE" --map 0:100000:65536 "$mnt/t"
	assert_failure 1
	assert_output --partial 'No space left on device'
}
