#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# btrfs subvolumes and snapshots through idmapped mounts (catalogue K40, as
# xfstests btrfs/245), with the subvolume ioctls (idmap-helper do
# subvol-create, snapshot, subvol-delete, subvol-ro).  Two real users; the
# mount maps disk 1005 to the first one.
# run-on: btrfs

load lib

setup_file() {
	sem_setup_file
	sem_users_create 2
}
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	chmod 0777 "$T"
	UMAP="u:1005:$SEM_UID1:1 g:1005:$SEM_GID1:1 b:0:10000:1000"
}
teardown() { sem_teardown; }

# as1/as2 OP...: idmap-helper do as test user 1 or 2.
as1() { sem_as "$SEM_USER1" "$UHELPER" do "$@"; }
as2() { sem_as "$SEM_USER2" "$UHELPER" do "$@"; }

@test "[K40] subvolumes and snapshots created through the mount are owned by map^-1(caller)" {
	sem_idmap "$T" "$M/i" --map "$UMAP"
	run as1 subvol-create "$M/i/sv" snapshot "$M/i/sv" "$M/i/snap" rw \
		snapshot "$M/i/sv" "$M/i/snapro" ro
	assert_output "subvol-create: OK
snapshot: OK
snapshot: OK"
	assert_equal "$(owner "$T/sv")" "1005:1005"
	assert_equal "$(owner "$T/snap")" "1005:1005"
	assert_equal "$(owner "$M/i/snapro")" "$SEM_UID1:$SEM_GID1"
	# They are subvolumes (inode 256), the snapshot read-only.
	assert_equal "$(stat -c %i "$T/sv") $(stat -c %i "$T/snapro")" "256 256"
	run btrfs property get -ts "$T/snapro" ro
	assert_output "ro=true"
	# Root creating through a mount that maps host 0: map^-1(0).
	sem_idmap "$T" "$M/r" --map "b:10000:0:1 b:0:10000:2000"
	run sem_do subvol-create "$M/r/rootsv"
	assert_output "subvol-create: OK"
	assert_equal "$(owner "$T/rootsv")" "10000:10000"
	# A caller the mount can't map: EOVERFLOW.
	run as2 subvol-create "$M/i/nope"
	assert_output "subvol-create: EOVERFLOW"
}

@test "[K40] snapshotting a subvolume needs its ownership as mapped" {
	sem_idmap "$T" "$M/i" --map "$UMAP"
	run as1 subvol-create "$M/i/sv"
	assert_output "subvol-create: OK"
	# User 2 may create entries in $T (0777) but doesn't own sv.
	sem_idmap "$T" "$M/j" --map "u:1006:$SEM_UID2:1 g:1006:$SEM_GID2:1 u:1005:$SEM_UID1:1 g:1005:$SEM_GID1:1 b:0:10000:1000"
	run as2 snapshot "$M/j/sv" "$M/j/snap" rw
	assert_output "snapshot: EPERM"
	run as1 snapshot "$M/j/sv" "$M/j/snap" rw
	assert_output "snapshot: OK"
	assert_equal "$(owner "$T/snap")" "1005:1005"
}

@test "[K40] flipping a subvolume read-only needs its ownership as mapped" {
	btrfs subvolume create "$T/sv" >/dev/null
	chown 1005:1005 "$T/sv"
	sem_idmap "$T" "$M/i" --map "$UMAP"
	run as2 subvol-ro "$M/i/sv" 1
	assert_output "subvol-ro: EPERM"
	# Without the mount, user 1 isn't the owner either.
	run as1 subvol-ro "$T/sv" 1
	assert_output "subvol-ro: EPERM"
	run as1 subvol-ro "$M/i/sv" 1
	assert_output "subvol-ro: OK"
	run btrfs property get -ts "$T/sv" ro
	assert_output "ro=true"
	run as1 subvol-ro "$M/i/sv" 0
	assert_output "subvol-ro: OK"
	run btrfs property get -ts "$T/sv" ro
	assert_output "ro=false"
}

@test "[K40] deleting a subvolume through the mount: user_subvol_rm_allowed and mapped ownership" {
	sem_idmap "$T" "$M/i" --map "$UMAP"
	run as1 subvol-create "$M/i/sv" subvol-create "$M/i/sv2"
	assert_output "subvol-create: OK
subvol-create: OK"
	# Unprivileged deletion is off by default.
	run as1 subvol-delete "$M/i/sv"
	assert_output "subvol-delete: EPERM"
	mount -o remount,user_subvol_rm_allowed "$FS_MNT"
	# Not the owner (no write permission in the subvolume's root): EACCES.
	run as2 subvol-delete "$M/i/sv"
	assert_output "subvol-delete: EACCES"
	[ -d "$T/sv" ]
	# The owner on disk, but not as seen through this mount: refused too.
	sem_idmap "$T" "$M/j" --map "u:1005:$SEM_UID2:1 g:1005:$SEM_GID2:1 b:0:10000:1000"
	run as1 subvol-delete "$M/j/sv2"
	assert_output "subvol-delete: EACCES"
	# The owner as mapped: gone.
	run as1 subvol-delete "$M/i/sv" subvol-delete "$M/i/sv2"
	assert_output "subvol-delete: OK
subvol-delete: OK"
	[ ! -e "$T/sv" ] && [ ! -e "$T/sv2" ]
}
