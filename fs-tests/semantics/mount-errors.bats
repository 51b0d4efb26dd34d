#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mount_setattr's refusals that don't depend on the filesystem underneath
# (catalogue K3-K6; the kernel's mount_setattr selftests): bad user
# namespace fds, namespaces without maps, ramfs, AT_RECURSIVE on an
# attached tree.  Run once, on the first filesystem.
# run-on: once

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() { sem_setup; }
teardown() { sem_teardown; }

@test "[K3] a bad userns fd is refused: negative or huge EINVAL, closed EBADF" {
	run "$HELPER" idmap --userns negative "$TREE"
	assert_output "idmap: EINVAL"
	run "$HELPER" idmap --userns huge "$TREE"
	assert_output "idmap: EINVAL"
	run "$HELPER" idmap --userns closed "$TREE"
	assert_output "idmap: EBADF"
	run "$HELPER" idmap --userns notuserns "$TREE"
	assert_output "idmap: EINVAL"
}

@test "[K3] the initial user namespace as the idmap gives EPERM" {
	run "$HELPER" idmap --userns initial "$TREE"
	assert_success
	assert_output "idmap: EPERM"
}

@test "[K4] a user namespace without maps, or with only a uid map, gives EINVAL" {
	run "$HELPER" idmap --userns nomaps --map "$MAP" "$TREE"
	assert_output "idmap: EINVAL"
	run "$HELPER" idmap --userns uidonly --map "$MAP" "$TREE"
	assert_output "idmap: EINVAL"
}

@test "[K5] ramfs has no FS_ALLOW_IDMAP: EINVAL" {
	mkdir -p "$M/ram"
	mount -t ramfs sem-ramfs "$M/ram"
	run "$HELPER" idmap --map "$MAP" "$M/ram"
	assert_success
	assert_output "idmap: EINVAL"
}

@test "[K6] recursive mount_setattr: a failing submount leaves no attribute set" {
	# The same all-or-nothing rule on an attached tree: NOSUID|IDMAP over
	# a tree whose root is attached fails (EINVAL, K1), and no submount
	# got NOSUID on the way.
	mkdir -p "$M/top"
	mount --bind "$TREE" "$M/top"
	mount -t tmpfs -o size=1m sem-sub "$M/top/dir"
	run "$HELPER" idmap --attached --recursive --nosuid --map "$MAP" "$M/top"
	assert_output "idmap: EINVAL"
	run findmnt -no OPTIONS "$M/top/dir"
	refute_output --partial nosuid
	run findmnt -no OPTIONS "$M/top"
	refute_output --partial nosuid
}
