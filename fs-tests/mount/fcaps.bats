#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# File capabilities through an idmapped mount: a v2 capability reads back
# as v3 with rootid = map(0); a v3 rootid is translated; a rootid outside
# the map gives EOVERFLOW.  The on-disk xattr is unchanged.

load ../lib/common

setup() {
	require_idmap
}

@test "a v2 capability reads back as v3 with the mapped rootid" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run getcap -n "$m/fcap-v2"
	assert_success
	assert_output "$m/fcap-v2 cap_net_raw=ep [rootid=100000]"
	# v3 magic, permitted CAP_NET_RAW, rootid 100000 (0x186a0 LE).
	run getfattr --absolute-names -e hex -n security.capability "$m/fcap-v2"
	assert_line "security.capability=0x0100000300200000000000000000000000000000a0860100"
	run getfattr --absolute-names -e hex -n security.capability "$FS_TREE/fcap-v2"
	assert_line "security.capability=0x0100000200200000000000000000000000000000"
}

@test "a v3 capability's rootid is translated" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run getcap -n "$m/fcap-v3"
	assert_success
	assert_output "$m/fcap-v3 cap_net_raw=ep [rootid=101000]"
	run getcap -n "$FS_TREE/fcap-v3"
	assert_output "$FS_TREE/fcap-v3 cap_net_raw=ep [rootid=1000]"
}

@test "a rootid outside the map gives EOVERFLOW" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:1000 "$FS_TREE" "$m"
	run getfattr --absolute-names -e hex -n security.capability "$m/fcap-v3"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	# v2 (rootid 0) is still mapped.
	run getcap -n "$m/fcap-v2"
	assert_output "$m/fcap-v2 cap_net_raw=ep [rootid=100000]"
}

@test "a capability set through the mount is stored with the on-disk rootid" {
	require_writable
	local m f=fcap-set-$BATS_TEST_NUMBER
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	echo x >"$FS_TREE/$f"
	setcap -n 100000 cap_net_admin+ep "$m/$f"
	run getcap -n "$FS_TREE/$f"
	assert_output "$FS_TREE/$f cap_net_admin=ep"
	run getcap -n "$m/$f"
	assert_output "$m/$f cap_net_admin=ep [rootid=100000]"
	setcap -n 102000 cap_net_admin+ep "$m/$f"
	run getcap -n "$FS_TREE/$f"
	assert_output "$FS_TREE/$f cap_net_admin=ep [rootid=2000]"
}
