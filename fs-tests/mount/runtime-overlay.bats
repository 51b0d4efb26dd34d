#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Real runtimes on shift-mount's overlays: crun and LXC start containers
# (in a user namespace with the map) on an engine's overlay root
# re-assembled over idmapped layers, with a new upper in host ids or a
# canonical one, and on an --overlay --canonical-upper root.  Inside: root
# owns /, a setuid binary runs as root for an unprivileged user, a file
# capability works (and is needed); a write lands in the upper in host ids
# or in the container's own (helpers in runtime-lib.bash).  The image lives in scratch dirs: the filesystem under
# test is irrelevant.
# run-on: once

load ../lib/common
load runtime-lib

MAP=0:100000:65536

setup() {
	require_idmap
	require_runtime
}

# src_overlay: an engine's live overlay root at $S: the image $IMG, its
# upper $UP (host root wrote /etc/motd through it).
src_overlay() {
	IMG=$(scratch img)
	UP=$(scratch up)
	local wk
	wk=$(scratch wk)
	S=$(scratch src)
	mk_image "$IMG"
	mount -t overlay sk-src -o "lowerdir=$IMG,upperdir=$UP,workdir=$wk,index=off" "$S"
	echo motd >"$S/etc/motd"
}

# The three cases, each run by a runtime: RUNNER is run_containers (crun)
# or run_lxc (runtime-lib.bash), given the root to start on.

# A re-assembled overlay (the default) with a new upper: writes land in
# host ids, the source's layers unchanged.
reassembled_host_upper() {
	local n before
	src_overlay
	n=$(scratch new)
	mkdir "$n/mnt"
	before=$(manifest "$IMG"; manifest "$UP")
	idmap_mount --map "$MAP" --upper "$n/upper" --work "$n/work" "$S" "$n/mnt"
	"$1" "$n/mnt"
	assert_equal "$(stat -c '%u:%g' "$n/upper/written" "$n/upper/etc/motd")" "100000:100000
100000:100000"
	assert_equal "$(cat "$n/upper/etc/motd")" "motd
more"
	assert_equal "$(stat -c '%u:%g %a' "$n/upper/bin/suidsh")" "100000:100000 4755"
	run getcap -n "$n/upper/bin/capcat"
	assert_output "$n/upper/bin/capcat cap_dac_read_search=ep [rootid=100000]"
	# The source's layers are unchanged.
	run diff <(echo "$before") <(manifest "$IMG"; manifest "$UP")
	assert_success
	assert_equal "$(cat "$S/etc/motd")" motd
}

# A re-assembled overlay with a canonical upper: writes land in the
# container's ids.
reassembled_canonical_upper() {
	local n
	src_overlay
	n=$(scratch new)
	mkdir "$n/mnt"
	idmap_mount --map "$MAP" --canonical-upper --upper "$n/upper" --work "$n/work" "$S" "$n/mnt"
	"$1" "$n/mnt"
	assert_equal "$(stat -c '%u:%g' "$n/upper" "$n/upper/written" "$n/upper/etc/motd")" "0:0
0:0
0:0"
	assert_equal "$(stat -c '%u:%g %a' "$n/upper/bin/suidsh")" "0:0 4755"
	run getcap -n "$n/upper/bin/capcat"
	assert_output "$n/upper/bin/capcat cap_dac_read_search=ep"
	assert_equal "$(cat "$S/etc/motd")" motd
}

# --overlay --canonical-upper: writes land in the container's ids.
overlay_canonical_upper() {
	local img n
	img=$(scratch img)
	n=$(scratch new)
	mk_image "$img"
	echo motd >"$img/etc/motd"
	mkdir "$n/mnt"
	idmap_mount --map "$MAP" --overlay --canonical-upper --upper "$n/upper" --work "$n/work" "$img" "$n/mnt"
	"$1" "$n/mnt"
	assert_equal "$(stat -c '%u:%g' "$n/upper/written" "$n/upper/etc/motd")" "0:0
0:0"
	run getcap -n "$n/upper/bin/capcat"
	assert_output "$n/upper/bin/capcat cap_dac_read_search=ep"
	assert_equal "$(cat "$img/etc/motd")" motd
}

@test "crun on a re-assembled overlay (the default) with a new upper: writes land in host ids" {
	reassembled_host_upper run_containers
}

@test "crun on a re-assembled overlay with a canonical upper: writes land in the container's ids" {
	reassembled_canonical_upper run_containers
}

@test "crun on --overlay --canonical-upper: writes land in the container's ids" {
	overlay_canonical_upper run_containers
}

@test "lxc on a re-assembled overlay (the default) with a new upper: writes land in host ids" {
	reassembled_host_upper run_lxc
}

@test "lxc on a re-assembled overlay with a canonical upper: writes land in the container's ids" {
	reassembled_canonical_upper run_lxc
}

@test "lxc on --overlay --canonical-upper: writes land in the container's ids" {
	overlay_canonical_upper run_lxc
}
