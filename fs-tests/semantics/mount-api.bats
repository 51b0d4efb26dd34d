#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Creating an idmapped mount: what mount_setattr accepts and refuses
# (catalogue K1-K8; the kernel's mount_setattr selftests and xfstests'
# idmapped-mounts core tests).

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() { sem_setup; }
teardown() { sem_teardown; }

@test "[K1] idmapping an attached mount gives EINVAL and changes nothing" {
	mkdir -p "$M/bind"
	mount --bind "$TREE" "$M/bind"
	run "$HELPER" idmap --attached --map "$MAP" "$M/bind"
	assert_success
	assert_output "idmap: EINVAL"
	run findmnt -no OPTIONS "$M/bind"
	refute_output --partial idmapped
	assert_equal "$(owner "$M/bind/file-1000")" "1000:1000"
}

@test "[K1,K7] a detached clone can be idmapped; mountinfo says idmapped" {
	sem_idmap "$TREE" "$M/i"
	run findmnt -no OPTIONS "$M/i"
	assert_success
	assert_output --regexp '(^|,)idmapped(,|$)'
	# The mount it was cloned from is untouched.
	run findmnt -no OPTIONS "$SEM_FS"
	refute_output --partial idmapped
	assert_equal "$(owner "$M/i/file-1000")" "11000:11000"
}

@test "[K2] a second idmap on the same clone gives EPERM" {
	run "$HELPER" idmap --map "$MAP" --again "$TREE"
	assert_success
	assert_output "idmap: OK
again: EPERM"
}

@test "[K2] idmapping a clone of an idmapped mount gives EPERM" {
	run "$HELPER" idmap --map "$MAP" --reclone "$TREE"
	assert_success
	assert_output "idmap: OK
reclone: EPERM"
	# Also once attached: the attached idmapped mount can't be re-idmapped.
	sem_idmap "$TREE" "$M/i"
	run "$HELPER" idmap --map "$MAP2" --reclone "$M/i"
	assert_output "idmap: EPERM"
	assert_equal "$(owner "$M/i/file-1000")" "11000:11000"
}

@test "[K5,K6] one ramfs submount fails a recursive idmap whole, nothing changes" {
	mkdir -p "$M/top"
	mount --bind "$TREE" "$M/top"
	mount -t ramfs sem-ramfs "$M/top/dir"
	touch "$M/top/dir/onramfs"
	chown 1000:1000 "$M/top/dir/onramfs"
	# NOSUID and IDMAP together, on the tree and its submount: all or none.
	mkdir -p "$M/c"
	run "$HELPER" idmap --map "$MAP" --clone-recursive --recursive --nosuid \
		--attach "$M/c" --attach-always "$M/top"
	assert_success
	assert_output "idmap: EINVAL
attach: OK"
	run findmnt -no OPTIONS "$M/c"
	refute_output --partial idmapped
	refute_output --partial nosuid
	run findmnt -no OPTIONS "$M/c/dir"
	refute_output --partial nosuid
	refute_output --partial idmapped
	assert_equal "$(owner "$M/c/file-1000")" "1000:1000"
	assert_equal "$(owner "$M/c/dir/onramfs")" "1000:1000"
}

@test "[K8] a clone without AT_RECURSIVE leaves submounts out" {
	mkdir -p "$M/top"
	mount --bind "$TREE" "$M/top"
	mount -t tmpfs -o size=1m sem-sub "$M/top/dir"
	touch "$M/top/dir/ontmpfs"
	sem_idmap "$M/top" "$M/c"
	# The clone holds only the top mount: dir is the directory beneath.
	run findmnt -no TARGET "$M/c/dir"
	assert_failure
	[ ! -e "$M/c/dir/ontmpfs" ]
	assert_equal "$(owner "$M/c/dir")" "11000:11000"
}

@test "[K8] OPEN_TREE_CLONE|AT_RECURSIVE + recursive setattr maps the subtree" {
	mkdir -p "$M/top"
	mount --bind "$TREE" "$M/top"
	mount -t tmpfs -o size=1m sem-sub "$M/top/dir"
	touch "$M/top/dir/ontmpfs"
	chown 7:8 "$M/top/dir/ontmpfs"
	sem_idmap "$M/top" "$M/c" --clone-recursive --recursive
	run findmnt -no OPTIONS "$M/c/dir"
	assert_output --partial idmapped
	assert_equal "$(owner "$M/c/dir/ontmpfs")" "10007:10008"
	assert_equal "$(owner "$M/c/file-root")" "10000:10000"
	# Recursive clone, setattr on the top only: the submount stays plain.
	sem_idmap "$M/top" "$M/d" --clone-recursive
	run findmnt -no OPTIONS "$M/d/dir"
	refute_output --partial idmapped
	assert_equal "$(owner "$M/d/dir/ontmpfs")" "7:8"
	assert_equal "$(owner "$M/d/file-root")" "10000:10000"
}
