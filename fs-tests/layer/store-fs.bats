#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layer store on each writable test filesystem: unpack into it, mount
# the image idmapped from it (or over shifted copies where $FS can't be
# idmapped) and compare with the flat unpack; whiteouts and the opaque
# xattr must survive on $FS.
# run-on: ext4 xfs btrfs tmpfs

load ../lib/common
load lib

MAP=b:0:2000000:1100000

setup_file() {
	fs_setup
	FIXTURE_OCI=$("$SRCDIR/images/oci.sh" fixture)
	export FIXTURE_OCI
}

setup() {
	require_writable
	T=$(scratch t)
	S=$FS_MNT/store-t$BATS_TEST_NUMBER
}

teardown() {
	fs_test_teardown
	rm -rf --one-file-system "$S"
}

@test "store on $FS: the mounted image equals the flat unpack" {
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$FIXTURE_OCI:fixture" "$T/flat"
	assert_success
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$S" --map "$MAP" --upper "$FS_MNT/up-t$BATS_TEST_NUMBER" \
		"$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	run diff <(listing "$T/flat") <(listing "$T/mnt")
	assert_success
	umount "$T/mnt"
	rm -rf "$FS_MNT/up-t$BATS_TEST_NUMBER"
}

@test "store on $FS: overlay whiteouts and opaque dirs are stored" {
	mkimage "$T/L" "$(spec lower <<<"dir a
file a/old
file gone")" "$(spec upper <<<"dir a
file a/.wh..wh..opq
file .wh.gone")"
	run "$SHIFT_LAYER" unpack --store "$S" "$T/L"
	assert_success
	top=$S/layers/sha256/$(basename "$(layer_blob "$T/L" 1)")/rootfs
	assert_equal "$(stat -c '%F %t:%T' "$top/gone")" "character special file 0:0"
	assert_equal "$(getfattr --only-values -n trusted.overlay.opaque "$top/a")" y
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$S" --map "$MAP" "$T/L" "$T/mnt"
	assert_success
	run ls -A "$T/mnt" "$T/mnt/a"
	assert_output "$T/mnt:
a

$T/mnt/a:"
}

@test "store on $FS: --copy makes shifted copies on $FS" {
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$FIXTURE_OCI:fixture" "$T/flat"
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --copy --store "$S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	run diff <(listing "$T/flat") <(listing "$T/mnt")
	assert_success
}

@test "store on $FS: mount refuses a TARGET that is already a mount point unless --allow-stacked" {
	mkdir "$T/mnt"
	mount -t tmpfs -o size=1m shiftkit-running "$T/mnt"
	touch "$T/mnt/running-container"
	run --separate-stderr "$SHIFT_LAYER" mount --store "$S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_failure 1
	assert_equal "$stderr" "${SHIFT_LAYER##*/}: Failed to mount on '$T/mnt': it is already a mount point, and a mount on top would hide it (unmount it first, or use --allow-stacked to mount over it)"
	# nothing stacked: the running container's root is still what is seen
	[ -e "$T/mnt/running-container" ]
	[ "$(grep -c " $T/mnt " /proc/self/mountinfo)" -eq 1 ]
	run "$SHIFT_LAYER" mount --allow-stacked --store "$S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	[ ! -e "$T/mnt/running-container" ]
	umount "$T/mnt"
	run "$SHIFT_LAYER" unpack --store "$S" --allow-stacked "$FIXTURE_OCI:fixture"
	assert_failure 2
}
