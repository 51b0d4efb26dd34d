#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The oracle no one here wrote: a copy of the fixture shifted in place by
# shift-tree must look exactly like the original seen through an idmapped
# mount with the same map -- owners of every inode type, modes with
# setuid/setgid, access and default ACLs, file capabilities (v2 -> v3),
# every other xattr, sizes, link counts and mtimes.
#
# run-on: ext4 xfs btrfs tmpfs

load ../lib/common
load lib

setup() {
	require_writable
	require_idmap
	BASE=$FS_MNT/shift-oracle-$BATS_TEST_NUMBER
	mkdir "$BASE"
}

teardown() {
	fs_test_teardown
	rm -rf --one-file-system "${BASE:?}"
}

# copy_fixture DEST: the fixture, copied on the filesystem under test in
# one cp (hard links stay links), root owner/mode/mtime included.
copy_fixture() {
	local -a entries
	mapfile -t entries < <(cd "$FS_TREE" && find . -mindepth 1 -maxdepth 1 \
		! -name lost+found ! -name 'shift-*')
	mkdir "$1"
	(cd "$FS_TREE" && cp -a "${entries[@]}" "$1/")
	chown 0:0 "$1"
	chmod 0755 "$1"
	touch -d "@$FIXTURE_MTIME" "$1"
}

# oracle MAP [shift-tree options]: idmap-mount one copy, shift another,
# compare the two views.
oracle() {
	local map=$1 view
	shift
	copy_fixture "$BASE/orig"
	cp -a "$BASE/orig" "$BASE/copy"
	view=$(scratch view)
	idmap_mount ${MOUNT_EXTRA:-} --map "$map" "$BASE/orig" "$view"
	run "$SHIFT_TREE" -q --map "$map" "$@" "$BASE/copy"
	assert_success
	snapshot "$view" >"$BASE/expected"
	snapshot "$BASE/copy" >"$BASE/got"
	run diff -u "$BASE/expected" "$BASE/got"
	assert_success
	# the comparison saw the interesting parts
	run grep -c 'security.capability\|system.posix_acl' "$BASE/got"
	assert [ "$output" -ge 4 ]
}

@test "oracle: b:0:100000:65536, unmapped ids shown as 65534" {
	oracle 0:100000:65536 --unmapped=overflow
}

@test "oracle: split uid map, different gid map" {
	oracle "u:0:100000:1001 u:1001:300000:64535 g:0:200000:65536" \
		--unmapped=overflow
}

@test "oracle: overlapping ranges (0:1000:65536)" {
	oracle 0:1000:65536 --unmapped=overflow
}

@test "oracle: sync engine gives the same view" {
	oracle 0:100000:65536 --unmapped=overflow --engine=sync
}

@test "oracle: a v3 capability whose rootid maps to 0 reads back as v2" {
	# disk 1000 seen as 0 and the rest shifted away from 0: the v3
	# fcap-v3 (rootid 1000) becomes v2, as the kernel shows it.
	MOUNT_EXTRA=--allow-host-root oracle \
		"b:1000:0:1 b:0:101000:1000 b:1001:102001:64535" \
		--unmapped=overflow --allow-host-root
	run getfattr -e hex -n security.capability "$BASE/copy/fcap-v3"
	assert_success
	assert_output --partial 'security.capability=0x01000002'
	run getfattr -e hex -n security.capability "$BASE/copy/fcap-v2"
	assert_output --regexp 'security.capability=0x01000003[0-9a-f]{32}888a0100'
}

@test "reverse restores the original exactly" {
	copy_fixture "$BASE/orig"
	cp -a "$BASE/orig" "$BASE/copy"
	run "$SHIFT_TREE" -q --map 0:200000:65536 --unmapped=keep "$BASE/copy"
	assert_success
	run "$SHIFT_TREE" -q --map 0:200000:65536 --unmapped=keep --reverse "$BASE/copy"
	assert_success
	run diff -u <(snapshot "$BASE/orig") <(snapshot "$BASE/copy")
	assert_success
	# the marker says so; the same undo again is a no-op
	run getfattr --only-values -n trusted.shiftkit.shift "$BASE/copy"
	assert_output --partial 'state=undone'
	run "$SHIFT_TREE" --map 0:200000:65536 --unmapped=keep --reverse "$BASE/copy"
	assert_success
	assert_output --partial 'already'
}
