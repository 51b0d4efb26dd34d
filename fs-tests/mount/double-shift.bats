#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount on a tree already shifted in place by shift-tree (the
# engine's marker on its root or on an ancestor): with the same map it is
# bind-mounted without idmap (an idmapped mount would apply the map twice:
# every file seen as 65534); with another map, or while a shift is running
# or was left half-way, it is refused and nothing is mounted -- on the
# direct idmapped path and with --fallback=shift|copy alike.

load ../lib/common

MAP=b:0:100000:65536

setup() {
	require_writable
	require_idmap
}

# shifted_tree: a tree on $FS with files owned by 0 and 1000, shifted in
# place by shift-tree with $MAP; sets S.
shifted_tree() {
	S=$FS_TREE/double-$BATS_TEST_NUMBER
	mkdir -p "$S/sub"
	touch "$S/f" "$S/sub/g"
	chown 1000:1000 "$S/sub/g"
	"$SHIFT_TREE" -q --map "$MAP" "$S"
	assert_equal "$(owner "$S/f")" 100000:100000
}

@test "a tree shifted with the same map is bind-mounted plain, not idmapped a second time" {
	local t
	shifted_tree
	t=$(scratch t)
	idmap_mount --map "$MAP" "$S" "$t"
	assert_equal "$(owner "$t/f")" 100000:100000
	assert_equal "$(owner "$t/sub/g")" 101000:101000
	[[ "$(mount_opts "$t")" != *idmapped* ]]
	# the tree itself is unchanged
	assert_equal "$(owner "$S/sub/g")" 101000:101000
}

@test "the issue's reproduction: --fallback=shift on an idmappable tree already shifted" {
	local t
	shifted_tree
	t=$(scratch t)
	run "$SHIFT_MOUNT" --fallback=shift --map "$MAP" "$S" "$t"
	assert_success
	assert_equal "$(owner "$t/f")" 100000:100000
	assert_equal "$(owner "$t/sub/g")" 101000:101000
	[[ "$(mount_opts "$t")" != *idmapped* ]]
	assert_equal "$(owner "$S/f")" 100000:100000
}

@test "--fallback=copy on a tree already shifted mounts it plain and copies nothing" {
	local t c
	shifted_tree
	t=$(scratch t)
	c=$(scratch c)/copy
	idmap_mount --fallback=copy --copy-dir "$c" --map "$MAP" "$S" "$t"
	assert_equal "$(owner "$t/sub/g")" 101000:101000
	[[ "$(mount_opts "$t")" != *idmapped* ]]
	[ ! -e "$c" ]
}

@test "a directory below a shifted root counts as shifted (the marker of an ancestor)" {
	local t
	shifted_tree
	t=$(scratch t)
	idmap_mount --map "$MAP" "$S/sub" "$t"
	assert_equal "$(owner "$t/g")" 101000:101000
	[[ "$(mount_opts "$t")" != *idmapped* ]]
}

@test "a tree shifted with another map is refused naming the marker's state and map" {
	local t fb
	shifted_tree
	t=$(scratch t)
	for fb in none shift; do
		run "$SHIFT_MOUNT" --fallback=$fb --map b:0:200000:65536 "$S/sub" "$t"
		assert_failure 1
		assert_output --partial "'$S'"
		assert_output --partial "map '$MAP'"
		assert_output --partial "marker state 'done'"
		assert_output --partial "shift-tree --reverse"
		run mountpoint -q "$t"
		assert_failure
	done
	assert_equal "$(owner "$S/sub/g")" 101000:101000
}

@test "an undone shift is mounted idmapped as usual" {
	local t
	shifted_tree
	t=$(scratch t)
	"$SHIFT_TREE" -q --reverse --map "$MAP" "$S"
	assert_equal "$(owner "$S/sub/g")" 1000:1000
	idmap_mount --map "$MAP" "$S" "$t"
	assert_equal "$(owner "$t/sub/g")" 101000:101000
	[[ "$(mount_opts "$t")" == *idmapped* ]]
}

# half_shifted: a tree on $FS whose shift-tree run with $MAP stopped
# half-way at an immutable file; sets S.
half_shifted() {
	local rc=0
	S=$FS_TREE/double-$BATS_TEST_NUMBER
	mkdir -p "$S"
	touch "$S/a" "$S/stuck"
	chattr +i "$S/stuck"
	"$SHIFT_TREE" -q --map "$MAP" "$S" 2>/dev/null || rc=$?
	chattr -i "$S/stuck"
	assert_equal "$rc" 1
	assert_equal "$(owner "$S/stuck")" 0:0
}

@test "a tree whose shift was left half-way is refused (idmapped path, --fallback=copy, another map)" {
	local t c fb
	half_shifted
	t=$(scratch t)
	c=$(scratch c)/copy
	for fb in none copy other; do
		case $fb in
		copy) run "$SHIFT_MOUNT" --fallback=copy --copy-dir "$c" --map "$MAP" "$S" "$t" ;;
		other) run "$SHIFT_MOUNT" --fallback=shift --map b:0:200000:65536 "$S" "$t" ;;
		*) run "$SHIFT_MOUNT" --fallback=$fb --map "$MAP" "$S" "$t" ;;
		esac
		assert_failure 1
		assert_output --partial "'$S'"
		assert_output --partial "running or was interrupted"
		assert_output --partial "map '$MAP'"
		assert_output --partial "marker state '"
		run mountpoint -q "$t"
		assert_failure
	done
	[ ! -e "$c" ]
	assert_equal "$(owner "$S/stuck")" 0:0
}

@test "--fallback=shift with the same map finishes a shift left half-way, then mounts it plain" {
	local t
	half_shifted
	t=$(scratch t)
	idmap_mount --fallback=shift --map "$MAP" "$S" "$t"
	assert_equal "$(owner "$S/stuck")" 100000:100000
	assert_equal "$(owner "$t/stuck")" 100000:100000
	assert_equal "$(owner "$t/a")" 100000:100000
	[[ "$(mount_opts "$t")" != *idmapped* ]]
}

@test "--json names the plain bind and the marker" {
	local t
	shifted_tree
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --json --map "$MAP" "$S" "$t"
	assert_success
	run jq -e --arg s "$S" '.method == "plain_bind" and .already_shifted == true and
		.mounted == true and .marker.directory == $s and .marker.state == "done"' <<<"$output"
	assert_success
}

@test "--allow-shifted idmaps it all the same: a map from the shifted ids gives another container's view" {
	local t t2
	shifted_tree
	t=$(scratch t)
	t2=$(scratch t2)
	# on disk 101000 (container 1000 of the first map) -> 201000
	idmap_mount --allow-shifted --map b:100000:200000:65536 "$S" "$t"
	assert_equal "$(owner "$t/sub/g")" 201000:201000
	assert_equal "$(owner "$t/f")" 200000:200000
	[[ "$(mount_opts "$t")" == *idmapped* ]]
	run "$SHIFT_MOUNT" --allow-shifted --fallback=shift --map "$MAP" "$S" "$t2"
	assert_failure 2
	run "$SHIFT_MOUNT" --allow-shifted --tmpfs --map "$MAP" "$t2"
	assert_failure 2
	run mountpoint -q "$t2"
	assert_failure
}

@test "--recursive on a shifted tree with a mount below it is refused (it would show unshifted)" {
	local t
	shifted_tree
	t=$(scratch t)
	mount -t tmpfs -o mode=0755 double-sub "$S/sub"
	track_mount "$S/sub"
	touch "$S/sub/unshifted"
	run "$SHIFT_MOUNT" --recursive --map "$MAP" "$S" "$t"
	assert_failure 1
	assert_output --partial "'$S/sub'"
	assert_output --partial "--recursive"
	run mountpoint -q "$t"
	assert_failure
	# without --recursive the submount is not part of the mount
	idmap_mount --map "$MAP" "$S" "$t"
	assert_equal "$(owner "$t/f")" 100000:100000
	[ ! -e "$t/sub/unshifted" ]
}
