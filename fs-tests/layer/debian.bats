#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The proof on a real distribution: an OCI image of a debootstrap'ed Debian
# (images/oci.sh debian, three layers made by umoci).  The flat unpack with
# a map must equal umoci unpack --uid-map/--gid-map followed by what umoci
# leaves undone (ACL qualifiers and capability root ids, done here with
# setfacl/setcap), and the idmapped overlay must equal the flat unpack
# (shift-verify).  Skips only when debootstrap cannot reach the mirror.
# Works in a tmpfs of its own (fast, and idmappable since Linux 6.3).
# run-on: once

load ../lib/common
load lib

MAP=b:0:3000000:65536

setup_file() {
	local a b n
	fs_setup
	DEBIAN_OCI=$(debian_image "$SRCDIR/images/oci.sh" debian) || return 1
	[ -n "$DEBIAN_OCI" ] || return 0
	W=$SK_TMP/work
	mkdir "$W"
	mount -t tmpfs -o size=4g,mode=0755 shiftkit-layer "$W"
	export DEBIAN_OCI W
	# The two trees most tests compare: ours, and umoci's.
	"$SHIFT_LAYER" unpack --flat --map "$MAP" "$DEBIAN_OCI:debian" "$W/flat" >&2
	IFS=: read -r a b n <<<"${MAP#b:}"
	# umoci's --uid-map is container:host:size, our A:B:N in that order.
	umoci unpack --uid-map "$a:$b:$n" --gid-map "$a:$b:$n" \
		--image "$DEBIAN_OCI:debian" "$W/umoci" >/dev/null 2>&1
}

teardown_file() {
	if [ -n "${W:-}" ]; then
		sk_umount_under "$W"
	fi
	fs_teardown
}

setup() {
	require_debian
	T=$W/t$BATS_TEST_NUMBER
	mkdir -p "$T"
}

teardown() {
	[ -n "${T:-}" ] && sk_umount_under "$T"
	fs_test_teardown
}

@test "debian: the image has three layers" {
	run "$SHIFT_LAYER" list "$DEBIAN_OCI:debian"
	assert_success
	assert_equal "$(grep -c 'tar+gzip' <<<"$output")" 3
}

@test "debian: flat unpack with a map equals umoci unpack with maps plus ACL and capability ids" {
	[ -x "$W/flat/bin/sh" ] || fail "no /bin/sh in the flat unpack"
	[ ! -e "$W/flat/etc/shiftkit-gone" ] || fail "whiteout not applied"
	run diff <(listing "$W/umoci/rootfs") <(listing "$W/flat")
	# Before the fix-up they differ exactly in ACL ids and capability rootids.
	assert_failure
	umoci_fixup "$W/umoci/rootfs" "$MAP"
	run diff <(listing "$W/umoci/rootfs") <(listing "$W/flat")
	assert_success
	assert_equal "$(stat -c %u:%g "$W/flat/etc/passwd")" 3000000:3000000
	assert_equal "$(stat -c %u:%g "$W/flat/home/user")" 3001000:3001000
	run getcap -n "$W/flat/cap-v3"
	assert_output --partial "rootid=3001000"
	run getfacl -n "$W/flat/srv-dir"
	assert_output --partial "default:user:3001000:rwx"
}

@test "debian: the idmapped overlay equals the flat unpack (shift-verify)" {
	require_idmap
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$W/S" --map "$MAP" "$DEBIAN_OCI:debian" "$T/mnt"
	assert_success
	assert_output --partial "idmapped layers"
	"$SHIFT_VERIFY" record --output "$T/flat.manifest" "$W/flat"
	run "$SHIFT_VERIFY" check --manifest "$T/flat.manifest" "$T/mnt"
	assert_success
	# The store's layers are still what was recorded when they were stored.
	local m
	for m in "$W"/S/layers/sha256/*/manifest; do
		run "$SHIFT_VERIFY" check --manifest "$m" "${m%/manifest}/rootfs"
		assert_success
	done
}

@test "debian: the shifted-copy fallback equals the flat unpack too" {
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --copy --store "$W/S" --map "$MAP" "$DEBIAN_OCI:debian" "$T/mnt"
	assert_success
	assert_output --partial "shifted copies"
	"$SHIFT_VERIFY" record --output "$T/flat.manifest" "$W/flat"
	run "$SHIFT_VERIFY" check --manifest "$T/flat.manifest" "$T/mnt"
	assert_success
}
