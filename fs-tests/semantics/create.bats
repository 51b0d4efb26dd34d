#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Creating and writing through idmapped mounts (catalogue K16-K19; K20 in quota.bats).  The
# caller's fs ids are set with setfsuid/setfsgid (idmap-helper do), which
# also drops the filesystem capabilities, as for an unprivileged caller.
# run-on: ext4 xfs btrfs tmpfs

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	if [ -n "$T" ]; then
		chmod 0777 "$T"
	fi
}
teardown() { sem_teardown; }

@test "[K16] every way of creating stores map^-1 of the caller's fsuid/fsgid" {
	sem_need_rw
	sem_idmap "$T" "$M/i"
	# The caller's own file (protected_hardlinks forbids linking others').
	touch "$T/old"
	chown 1005:1301 "$T/old"
	run sem_do --groups "" --fsgid 11006 --fsuid 11005 \
		create "$M/i/file" 0644 mkdir "$M/i/dir" 0755 \
		mknod "$M/i/fifo" p 0644 0 0 mknod "$M/i/reg" f 0644 0 0 \
		mknod "$M/i/sock" s 0644 0 0 symlink file "$M/i/sym" \
		tmpfile "$M/i" 0600 "$M/i/tmp" \
		link "$M/i/old" "$M/i/old.link" rename "$M/i/old.link" "$M/i/old.moved"
	assert_success
	assert_output "create: OK
mkdir: OK
mknod: OK
mknod: OK
mknod: OK
symlink: OK
tmpfile: OK
link: OK
rename: OK"
	local p
	for p in file dir fifo reg sock sym tmp; do
		assert_equal "$p $(owner "$T/$p")" "$p 1005:1006"
		assert_equal "$p $(owner "$M/i/$p")" "$p 11005:11006"
	done
	# link and rename create no inode: the owner stays.
	assert_equal "$(owner "$T/old.moved")" "1005:1301"
	assert_equal "$(stat -c %h "$T/old")" 2
}

@test "[K16] root creating through a mount that maps disk 10000 to 0 stores 10000" {
	sem_need_rw
	sem_idmap "$T" "$M/i" --map "b:10000:0:1 b:0:10000:2000"
	run sem_do create "$M/i/f" 0644 mkdir "$M/i/d" 0700
	assert_output "create: OK
mkdir: OK"
	assert_equal "$(owner "$T/f")" "10000:10000"
	assert_equal "$(owner "$T/d")" "10000:10000"
	assert_equal "$(owner "$M/i/f")" "0:0"
}

@test "[K17] a caller unmapped in the mount can't create (EOVERFLOW) but can unlink" {
	sem_need_rw
	touch "$T/victim"
	mkdir "$T/emptydir"
	sem_idmap "$T" "$M/i"
	# fsuid 5 is not in the mount's seen range 10000..11999.
	run sem_do --groups "" --fsgid 5 --fsuid 5 \
		create "$M/i/f" 0644 mkdir "$M/i/d" 0755 mknod "$M/i/p" p 0644 0 0 \
		symlink x "$M/i/s" tmpfile "$M/i" 0600 "$M/i/t" \
		unlink "$M/i/victim" rmdir "$M/i/emptydir"
	assert_success
	assert_output "create: EOVERFLOW
mkdir: EOVERFLOW
mknod: EOVERFLOW
symlink: EOVERFLOW
tmpfile: EOVERFLOW
unlink: OK
rmdir: OK"
	[ ! -e "$T/f" ] && [ ! -e "$T/d" ] && [ ! -e "$T/victim" ] && [ ! -e "$T/emptydir" ]
	# Mapped uid with an unmapped gid is refused as well.
	run sem_do --groups "" --fsgid 5 --fsuid 11000 create "$M/i/g" 0644
	assert_output "create: EOVERFLOW"
}

@test "[K18] root in a user namespace can't mknod a char device through the mount" {
	sem_need_rw
	sem_idmap "$T" "$M/i"
	# The namespace's root is host 10000, the owner of $T as seen there.
	run "$HELPER" userns --map "$MAP" -- "$HELPER" do \
		mknod "$M/i/null" c 0666 1 3 mknod "$M/i/blk" b 0660 7 0 \
		mknod "$M/i/fifo" p 0644 0 0
	assert_success
	assert_output "mknod: EPERM
mknod: EPERM
mknod: OK"
	[ ! -e "$T/null" ]
	assert_equal "$(owner "$T/fifo")" "0:0"
	# Host root, with CAP_MKNOD, may (stored as map^-1 of an id it has).
	sem_idmap "$T" "$M/r" --map "b:10000:0:1 b:0:10000:2000"
	run sem_do mknod "$M/r/null" c 0666 1 3
	assert_output "mknod: OK"
	assert_equal "$(owner "$T/null")" "10000:10000"
}

@test "[K19] ftruncate through the mount keeps the owner" {
	sem_need_rw
	head -c 4096 /dev/zero >"$T/f"
	chown 1000:1001 "$T/f"
	chmod 0666 "$T/f"
	sem_idmap "$T" "$M/i"
	run sem_do --groups "" --fsgid 11005 --fsuid 11005 truncate "$M/i/f" 100
	assert_output "truncate: OK"
	run sem_do truncate "$M/i/f" 10
	assert_output "truncate: OK"
	assert_equal "$(stat -c %s "$T/f")" 10
	assert_equal "$(owner "$T/f")" "1000:1001"
	assert_equal "$(owner "$M/i/f")" "11000:11001"
}
