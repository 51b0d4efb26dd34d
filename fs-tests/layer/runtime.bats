#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Real runtimes on shift-layer mount's default, a canonical upper: crun and
# LXC start containers on an image mounted from the store, the usual checks
# inside (root owns /, a setuid binary and a file capability work), their
# writes land in the upper in the container's own ids, and the same upper
# then serves a container with another map as it is, no shift.
# run-on: once

load ../lib/common
load lib
load ../mount/runtime-lib

MAP=0:100000:65536

setup() {
	require_idmap
	require_runtime
	T=$(scratch t)
	# The image of ../mount/runtime-lib's mk_image as a one-layer OCI
	# layout (numeric owners, the file capability as a pax xattr).
	mk_image "$T/img"
	tar --numeric-owner --xattrs --xattrs-include=security.capability \
		-C "$T/img" -cf "$T/layer.tar" .
	mkimage "$T/L" "@$T/layer.tar"
	mkdir "$T/mnt" "$T/mnt2"
}

# on_canonical_upper RUN: RUN (run_containers or run_lxc) on the image
# mounted with a new upper (canonical by default), then, after a
# remount of the same upper under another map, again.
on_canonical_upper() {
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	assert_success
	assert_output --partial "canonical upper"
	"$1" "$T/mnt" 1
	assert_equal "$(stat -c '%u:%g' "$T/up/upper" "$T/up/upper/written" "$T/up/upper/etc/motd")" "0:0
0:0
0:0"
	assert_equal "$(stat -c '%u:%g %a' "$T/up/upper/bin/suidsh")" "0:0 4755"
	run getcap -n "$T/up/upper/bin/capcat"
	assert_output "$T/up/upper/bin/capcat cap_dac_read_search=ep"
	umount "$T/mnt"
	# Another container, another map, the same upper as it is.
	MAP=0:200000:65536
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt2"
	assert_success
	assert_equal "$(stat -c '%u:%g' "$T/mnt2/written")" 200000:200000
	assert_equal "$(cat "$T/mnt2/written")" hi
	"$1" "$T/mnt2" 2
	assert_equal "$(stat -c '%u:%g' "$T/up/upper/written" "$T/up/upper/etc/motd")" "0:0
0:0"
	assert_equal "$(cat "$T/mnt2/etc/motd")" "more
more"
	# The stored layer is unchanged.
	assert_equal "$(stat -c '%u:%g %a' "$(echo "$T"/S/layers/sha256/*/rootfs/bin/suidsh)")" "0:0 4755"
}

@test "crun on shift-layer mount's canonical upper, then on the same upper under another map" {
	on_canonical_upper run_containers
}

@test "lxc on shift-layer mount's canonical upper, then on the same upper under another map" {
	on_canonical_upper run_lxc
}
