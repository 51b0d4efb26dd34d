#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --overlay: an overlayfs over idmapped lower layers shows the
# mapped owners, copies up with them, and leaves the lower layers as they
# were on disk.  An overlayfs itself can't be idmapped (SOURCE refused).

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
}

@test "an overlay over the idmapped fixture shows the mapped owners" {
	local m up
	m=$(scratch m)
	up=$(scratch up)
	idmap_mount --overlay --map "$MAP" --upper "$up/upper" --work "$up/work" "$FS_TREE" "$m"
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" overlay
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/deep/a/b/c/file")" 101001:101001
	assert_equal "$(owner "$m/file-70000")" 65534:65534
	run getcap -n "$m/fcap-v2"
	assert_output "$m/fcap-v2 cap_net_raw=ep [rootid=100000]"
}

@test "one layer without an upper directory is a read-only mapped view" {
	local m
	m=$(scratch m)
	idmap_mount --overlay --map "$MAP" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	run touch "$m/new-$BATS_TEST_NUMBER"
	assert_failure
	assert_output --partial "Read-only file system"
}

@test "two lower layers: the top one wins and both are mapped" {
	local top m
	top=$(scratch top)
	m=$(scratch m)
	echo top >"$top/file-root"
	echo only-top >"$top/top-only"
	chown 1000:1000 "$top/file-root"
	chown 2000:2000 "$top/top-only"
	idmap_mount --overlay --map "$MAP" "$top:$FS_TREE" "$m"
	assert_equal "$(cat "$m/file-root")" top
	assert_equal "$(owner "$m/file-root")" 101000:101000
	assert_equal "$(owner "$m/top-only")" 102000:102000
	assert_equal "$(owner "$m/file-1001")" 101001:101001
}

@test "copy-up of a file owned by container root keeps its owner; the lower is unchanged" {
	local m up before
	up=$(scratch up)
	m=$(scratch m)
	before=$(manifest "$FS_TREE")
	idmap_mount --overlay --map "$MAP" --upper "$up/upper" --work "$up/work" "$FS_TREE" "$m"
	# The upper directory belongs to the map's image of root.
	assert_equal "$(owner "$up/upper")" 100000:100000
	echo changed >>"$m/file-root"
	chmod 0600 "$m/file-1000"
	# Container root (100000) writes a new file in its own directory.
	as_user 100000 100000 sh -c "echo new >'$m/new-by-root'"
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/new-by-root")" 100000:100000
	# The copied-up files are in the upper layer with the seen owners.
	assert_equal "$(owner "$up/upper/file-root")" 100000:100000
	assert_equal "$(owner "$up/upper/file-1000")" 101000:101000
	assert_equal "$(owner "$up/upper/new-by-root")" 100000:100000
	# The lower layer on disk: not a byte of metadata changed.
	run diff <(echo "$before") <(manifest "$FS_TREE")
	assert_success
	assert_equal "$(tail -n1 "$FS_TREE/file-root")" file-root
}

@test "copy-up keeps the file capability, as seen through the map" {
	local m up
	up=$(scratch up)
	m=$(scratch m)
	idmap_mount --overlay --map "$MAP" --upper "$up/upper" --work "$up/work" "$FS_TREE" "$m"
	touch "$m/fcap-v3"
	run getcap -n "$up/upper/fcap-v3"
	assert_output "$up/upper/fcap-v3 cap_net_raw=ep [rootid=101000]"
	run getcap -n "$FS_TREE/fcap-v3"
	assert_output "$FS_TREE/fcap-v3 cap_net_raw=ep [rootid=1000]"
}

@test "an overlayfs as SOURCE: --fallback=none refuses it with exit 3 naming overlay; by default it is re-assembled" {
	local o m
	o=$(scratch o)
	m=$(scratch m)
	mkdir "$o.empty"
	mount -t overlay shiftkit-ovl -o "lowerdir=$FS_TREE:$o.empty" "$o"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=none "$o" "$m"
	assert_failure 3
	assert_output --partial "shift-mount: Failed to idmap '$o'"
	assert_output --partial "'overlay'"
	run mountpoint -q "$m"
	assert_failure
	# No --fallback: a new overlay over its idmapped layers.
	idmap_mount --map "$MAP" "$o" "$m"
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" overlay
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$o/file-1000")" 1000:1000
}

@test "an overlayfs layer is refused with exit 3 and no --fallback hint (not allowed with --overlay)" {
	local d m
	d=$(scratch o)
	m=$(scratch m)
	mkdir "$d/l" "$d/u" "$d/w" "$d/ovl"
	mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/ovl"
	run "$SHIFT_MOUNT" --map "$MAP" --overlay "$d/ovl" "$m"
	assert_failure 3
	assert_output --partial "'$d/ovl'"
	refute_output --partial "--fallback"
	run mountpoint -q "$m"
	assert_failure
}
