#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every bad map is refused before anything is mounted, with a message
# naming the map and the problem, and exit status 2.
# run-on: once

load ../lib/common

# refused MESSAGE MAP-ARGS...: shift-mount MAP-ARGS SOURCE TARGET must exit
# 2, print MESSAGE, and leave TARGET unmounted.
refused() {
	local msg=$1 m
	shift
	m=$(scratch "m$RANDOM")
	run "$SHIFT_MOUNT" "$@" "$FS_TREE" "$m"
	assert_failure 2
	assert_output --partial "shift-mount: invalid map"
	assert_output --partial "$msg"
	run mountpoint -q "$m"
	assert_failure
}

@test "a zero count is refused" {
	refused "count must not be zero" --map 0:100000:0
}

@test "an extent past the largest id is refused" {
	refused "past the largest id" --map 4294967295:100000:2
	refused "past the largest id" --map 0:4294967000:65536
}

@test "overlapping extents are refused" {
	refused "overlaps" --map 0:100000:100 --map 50:300000:100
	refused "overlaps" --map 0:100000:100 --map 500:100050:10
	refused "overlaps" --map 0:100000:10,5:200000:10
}

@test "more than 340 extents are refused" {
	local args=() i
	for ((i = 0; i < 341; i++)); do
		args+=(--map "$((i * 2)):$((100000 + i * 2)):1")
	done
	refused "more than 340 extents" "${args[@]}"
}

@test "340 extents are accepted" {
	require_idmap
	local args=() i m
	# Short ids: the kernel takes a uid_map only in one write of less
	# than a page, and 340 lines "A B N" of this map need 3740 bytes.
	for ((i = 0; i < 340; i++)); do
		args+=(--map "$((i * 2)):$((1000 + i * 2)):1")
	done
	m=$(scratch m)
	idmap_mount "${args[@]}" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-root")" 1000:1000
	assert_equal "$(owner "$m/file-1000")" 65534:65534
}

@test "a uid map without a gid map is refused" {
	refused "needs a gid map" --map u:0:100000:65536
	refused "gid map needs a uid map" --map g:0:100000:65536
}

@test "a map giving away host root is refused without --allow-host-root" {
	refused "--allow-host-root" --map 0:0:65536
	refused "--allow-host-root" --map 0:100000:65536 --map 70000:0:1
	refused "--allow-host-root" --map u:0:100000:65536 --map g:0:0:1
}

@test "a map giving away host root is accepted with --allow-host-root" {
	require_idmap
	local m
	m=$(scratch m)
	idmap_mount --allow-host-root --map 0:0:65536 "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000")" 1000:1000
}

@test "malformed maps are refused" {
	local bad
	for bad in garbage 1:2 1:2:3:4 x:1:2:3 -1:5:5 0:100000:-5 "" 0x10:5:5 1:2:3junk; do
		refused "invalid map" --map "$bad"
	done
}
