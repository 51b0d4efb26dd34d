#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Quota through idmapped mounts (catalogue K20, as xfstests xfs/152-153):
# usage is charged to the on-disk id, not to the caller's.  Each test makes
# its own small filesystem with quotas on.
# run-on: ext4 xfs

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() { sem_setup; }
teardown() {
	sem_teardown
	if [ -n "${QDEV:-}" ]; then
		losetup -d "$QDEV" 2>/dev/null || true
	fi
}

# note: skips without quota support in the kernel: ext4 CONFIG_QFMT_V2, xfs CONFIG_XFS_QUOTA
@test "[K20] quota is charged to the on-disk id" {
	mkdir -p "$M/q"
	truncate -s 320M "$M/q.img"
	if [ "$FS" = ext4 ]; then
		mkfs.ext4 -q -F -O quota "$M/q.img"
	else
		mkfs.xfs -q -f "$M/q.img"
	fi
	QDEV=$(losetup -f --show "$M/q.img")
	local opts=usrquota,grpquota
	[ "$FS" = xfs ] && opts=uquota,gquota
	if ! mount -t "$FS" -o "$opts" "$QDEV" "$M/q" 2>/dev/null; then
		skip "filesystem $FS: no quota support in this kernel (mount -o $opts refused)"
	fi
	chmod 0777 "$M/q"
	sem_idmap "$M/q" "$M/i"
	run sem_do quota "$QDEV" u 7
	assert_output --regexp '^inodes:0 '
	run sem_do --groups "" --fsgid 10008 --fsuid 10007 create "$M/i/f" 0644 \
		mkdir "$M/i/d" 0755 quota "$QDEV" u 7 quota "$QDEV" g 8 \
		quota "$QDEV" u 10007
	assert_output --regexp "^create: OK
mkdir: OK
inodes:2 space:[0-9]+
inodes:2 space:[0-9]+
inodes:0 space:0$"
}
