#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The oracle on a real distribution tree: a debootstrap'ed Debian minbase
# (images/rootfs.sh, cached) unpacked on ext4, XFS, Btrfs and tmpfs; one
# copy shifted in place by shift-tree must look exactly like the other
# through an idmapped mount with the same map (owners, modes with the setuid
# binaries' bits, ACLs, capabilities, every xattr, sizes, links, mtimes).
# Each filesystem is a sparse image of this test's own (the fixture images
# are too small for two Debian trees), mounted with -o loop so that the
# loop device goes away with the mount.  Skips only when debootstrap cannot
# reach the mirror.
# run-on: once

load ../lib/common
load lib

MAP=b:0:100000:65536

setup_file() {
	fs_setup
	TARBALL=$(debian_image "$SRCDIR/images/rootfs.sh" tarball) || return 1
	export TARBALL
}

setup() {
	require_debian
}

# fs_of TYPE: a fresh, empty filesystem of TYPE mounted on a scratch dir
# (unmounted by the test's teardown; the image lives in the scratch dir
# too); prints the mount point.
fs_of() {
	local d m
	d=$(scratch "fs-$1")
	m=$d/mnt
	mkdir "$m"
	case "$1" in
	tmpfs)
		mount -t tmpfs -o size=1500m,mode=0755 shiftkit-debian "$m"
		;;
	*)
		truncate -s 1500M "$d/img"
		case "$1" in
		ext4) mkfs.ext4 -q -F "$d/img" ;;
		xfs) mkfs.xfs -q -f "$d/img" ;;
		btrfs) mkfs.btrfs -q -f "$d/img" >/dev/null ;;
		esac
		mount -o loop -t "$1" "$d/img" "$m"
		;;
	esac
	echo "$m"
}

# debian_oracle TYPE
debian_oracle() {
	local m view n
	m=$(fs_of "$1")
	mkdir "$m/orig"
	tar --numeric-owner --xattrs --xattrs-include='*' --acls \
		-C "$m/orig" -xf "$TARBALL"
	# a file capability and an ACL, as a real system gets them from
	# packages (ping) and admins (setfacl)
	cp "$m/orig/usr/bin/true" "$m/orig/usr/bin/pingish"
	setcap cap_net_raw+ep "$m/orig/usr/bin/pingish"
	setfacl -m u:100:rx,g:42:r "$m/orig/etc/shadow"
	cp -a "$m/orig" "$m/copy"
	view=$(scratch view)
	idmap_mount --map "$MAP" "$m/orig" "$view"
	run --separate-stderr "$SHIFT_TREE" --json --map "$MAP" "$m/copy"
	assert_success
	# every inode counted; nothing refused or left out
	n=$(find "$m/copy" -printf '%i\n' | sort -u | wc -l)
	assert_equal "$(jq -c '[.inodes, .errors, .unmapped, .mountpoints]' <<<"$output")" "[$n,0,0,0]"
	snapshot "$view" >"$m/expected"
	snapshot "$m/copy" >"$m/got"
	run diff -u "$m/expected" "$m/got"
	assert_success
	# the comparison covered the interesting parts of a real system
	assert [ "$(find "$m/copy" -perm -4000 -type f | wc -l)" -ge 3 ]
	assert_equal "$(stat -c %u:%g "$m/copy/etc/passwd")" 100000:100000
	assert_equal "$(stat -c %g "$m/copy/etc/shadow")" 100042
	run getcap -n "$m/copy/usr/bin/pingish"
	assert_output "$m/copy/usr/bin/pingish cap_net_raw=ep [rootid=100000]"
	run getfacl -cn "$m/copy/etc/shadow"
	assert_line "user:100100:r-x"
	assert_line "group:100042:r--"
}

@test "debian rootfs on ext4: shifted in place = the idmapped view" {
	debian_oracle ext4
}

@test "debian rootfs on xfs: shifted in place = the idmapped view" {
	debian_oracle xfs
}

@test "debian rootfs on btrfs: shifted in place = the idmapped view" {
	debian_oracle btrfs
}

@test "debian rootfs on tmpfs: shifted in place = the idmapped view" {
	debian_oracle tmpfs
}
