#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Files created through an idmapped mount are stored with the caller's
# fsuid/fsgid mapped back to on-disk ids; a caller whose ids have no
# on-disk image gets EOVERFLOW.

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
	require_writable
}

@test "every kind of entry a user creates is stored as the user's on-disk id" {
	local m d
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	# dir/ is 1000:1000 on disk, 101000:101000 through the mount.
	d=$m/dir/new-$BATS_TEST_NUMBER
	as_user 101000 101000 sh -ec "
		mkdir '$d'
		echo data >'$d/file'
		mkfifo '$d/fifo'
		ln -s file '$d/symlink'
		ln '$d/file' '$d/link'
		mv '$d/file' '$d/renamed'"
	for p in . renamed fifo symlink link; do
		assert_equal "$(owner "$FS_TREE/dir/new-$BATS_TEST_NUMBER/$p")" 1000:1000
		assert_equal "$(owner "$d/$p")" 101000:101000
	done
}

@test "a user with a group id of its own stores that group" {
	local m
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	as_user 101000 101001 touch "$m/dir/g-$BATS_TEST_NUMBER"
	assert_equal "$(owner "$FS_TREE/dir/g-$BATS_TEST_NUMBER")" 1000:1001
}

@test "root creating through the mount is stored as on-disk 0 when mapped" {
	local m
	m=$(scratch m)
	idmap_mount --allow-host-root --map 0:0:1 --map 1:100001:65535 "$FS_TREE" "$m"
	touch "$m/root-$BATS_TEST_NUMBER"
	assert_equal "$(owner "$FS_TREE/root-$BATS_TEST_NUMBER")" 0:0
}

@test "a caller unmapped in the mount gets EOVERFLOW creating, and unlink works" {
	local m
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	# Host root (uid 0) has no on-disk image under 0:100000:65536.
	run touch "$m/overflow-$BATS_TEST_NUMBER"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	run mkdir "$m/overflow-$BATS_TEST_NUMBER"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	# A user outside the map, in a world-writable directory.
	run as_user 500 500 touch "$m/sticky-dir/overflow-$BATS_TEST_NUMBER"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	[ ! -e "$FS_TREE/overflow-$BATS_TEST_NUMBER" ]
	[ ! -e "$FS_TREE/sticky-dir/overflow-$BATS_TEST_NUMBER" ]
	# Removing needs no new owner: it works.
	echo x >"$FS_TREE/dir/victim-$BATS_TEST_NUMBER"
	rm "$m/dir/victim-$BATS_TEST_NUMBER"
	[ ! -e "$FS_TREE/dir/victim-$BATS_TEST_NUMBER" ]
}

@test "chown through the mount stores the mapped-back id; an unmapped id is EOVERFLOW" {
	local m f
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	f=chown-$BATS_TEST_NUMBER
	touch "$FS_TREE/$f"
	chown 101234:102345 "$m/$f"
	assert_equal "$(owner "$FS_TREE/$f")" 1234:2345
	run chown 5:5 "$m/$f"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	assert_equal "$(owner "$FS_TREE/$f")" 1234:2345
}

@test "a new entry in the setgid directory takes its mapped group" {
	local m
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	# setgid-dir is 0:1000 mode 2775: group 101000 may write.
	as_user 100000 101000 mkdir "$m/setgid-dir/sub-$BATS_TEST_NUMBER"
	as_user 100000 101000 touch "$m/setgid-dir/f-$BATS_TEST_NUMBER"
	assert_equal "$(owner "$FS_TREE/setgid-dir/sub-$BATS_TEST_NUMBER")" 0:1000
	assert_equal "$(owner "$FS_TREE/setgid-dir/f-$BATS_TEST_NUMBER")" 0:1000
	assert_equal "$(stat -c %a "$FS_TREE/setgid-dir/sub-$BATS_TEST_NUMBER")" 2755
}
