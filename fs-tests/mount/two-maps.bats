#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two idmapped mounts of one tree, each with its own map, each show their
# own view; a change made through the original shows in both, mapped.

load ../lib/common

setup() {
	require_idmap
}

@test "two mounts of one tree with different maps each show their own owners" {
	local a b
	a=$(scratch a)
	b=$(scratch b)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$a"
	idmap_mount --map 0:300000:65536 "$FS_TREE" "$b"
	assert_equal "$(owner "$a/file-1000")" 101000:101000
	assert_equal "$(owner "$b/file-1000")" 301000:301000
	assert_equal "$(owner "$a/dir/file")" 101000:101000
	assert_equal "$(owner "$b/dir/file")" 301000:301000
	assert_equal "$(owner "$a/file-70000")" 65534:65534
	assert_equal "$(owner "$b/file-70000")" 65534:65534
	assert_equal "$(owner "$FS_TREE/file-1000")" 1000:1000
}

@test "the same source mounted twice with one map shows one view" {
	local a b
	a=$(scratch a)
	b=$(scratch b)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$a"
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$b"
	run diff <(manifest "$a") <(manifest "$b")
	assert_success
}

@test "chown through the original mount shows in every view, mapped" {
	require_writable
	local a b
	a=$(scratch a)
	b=$(scratch b)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$a"
	idmap_mount --map 0:300000:65536 "$FS_TREE" "$b"
	touch "$FS_TREE/chown-$BATS_TEST_NUMBER"
	chown 1234:4321 "$FS_TREE/chown-$BATS_TEST_NUMBER"
	assert_equal "$(owner "$a/chown-$BATS_TEST_NUMBER")" 101234:104321
	assert_equal "$(owner "$b/chown-$BATS_TEST_NUMBER")" 301234:304321
	chown 70000:70000 "$FS_TREE/chown-$BATS_TEST_NUMBER"
	assert_equal "$(owner "$a/chown-$BATS_TEST_NUMBER")" 65534:65534
	rm "$FS_TREE/chown-$BATS_TEST_NUMBER"
}
