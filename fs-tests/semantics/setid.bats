#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# setgid inheritance, S_ISGID stripping and setuid execution through
# idmapped mounts (catalogue K21-K25; xfstests generic/633 setgid cases,
# generic/696-697).  The setuid test needs a real unprivileged user.
# run-on: ext4 xfs btrfs tmpfs

load lib

# A map that also gives host root an id: disk 10000 is seen as 0.
MAPROOT="b:10000:0:1 b:0:10000:2000"

setup_file() {
	sem_setup_file
	sem_users_create 1
}
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	if [ -n "$T" ]; then
		mkdir "$T/sg"
		chown 0:1000 "$T/sg"
		chmod 2777 "$T/sg"
	fi
}
teardown() { sem_teardown; }

# mode PATH: the permission bits in octal, as stat prints them.
mode() {
	stat -c %a -- "$1"
}

@test "[K21] in a setgid directory new entries take its gid, as mapped" {
	sem_need_rw
	sem_idmap "$T" "$M/i"
	assert_equal "$(owner "$M/i/sg")" "10000:11000"
	run sem_do --groups "" --umask 0 --fsgid 11006 --fsuid 11005 \
		create "$M/i/sg/f" 0644 mkdir "$M/i/sg/d" 0755 \
		mknod "$M/i/sg/p" p 0644 0 0 tmpfile "$M/i/sg" 0644 "$M/i/sg/t"
	assert_output "create: OK
mkdir: OK
mknod: OK
tmpfile: OK"
	local p
	for p in f d p t; do
		assert_equal "$p $(owner "$T/sg/$p")" "$p 1005:1000"
		assert_equal "$p $(owner "$M/i/sg/$p")" "$p 11005:11000"
	done
	# The new directory inherits S_ISGID.
	assert_equal "$(mode "$T/sg/d")" 2755
}

@test "[K22] S_ISGID is stripped from a new file unless the caller is in the mapped group" {
	sem_need_rw
	sem_idmap "$T" "$M/i"
	# Not in group 11000 (the directory's gid seen through the mount).
	run sem_do --groups "" --umask 0 --fsgid 11006 --fsuid 11005 \
		create "$M/i/sg/out" 02755 mknod "$M/i/sg/outp" f 02755 0 0 \
		tmpfile "$M/i/sg" 02755 "$M/i/sg/outt" mkdir "$M/i/sg/outd" 0755
	assert_output "create: OK
mknod: OK
tmpfile: OK
mkdir: OK"
	assert_equal "$(mode "$T/sg/out")" 755
	assert_equal "$(mode "$T/sg/outp")" 755
	assert_equal "$(mode "$T/sg/outt")" 755
	# Directories keep it.
	assert_equal "$(mode "$T/sg/outd")" 2755
	# In group 11000 as a supplementary group: kept.
	run sem_do --groups 11000 --umask 0 --fsgid 11006 --fsuid 11005 \
		create "$M/i/sg/in" 02755
	assert_output "create: OK"
	assert_equal "$(mode "$T/sg/in")" 2755
	# In group 1000, the on-disk gid, counts for nothing through the mount.
	run sem_do --groups 1000 --umask 0 --fsgid 11006 --fsuid 11005 \
		create "$M/i/sg/disk" 02755
	assert_output "create: OK"
	assert_equal "$(mode "$T/sg/disk")" 755
}

@test "[K22] CAP_FSETID keeps S_ISGID on a new file; without it it is stripped" {
	sem_need_rw
	sem_idmap "$T" "$M/i" --map "$MAPROOT"
	run sem_do --groups "" --umask 0 create "$M/i/sg/cap" 02755
	assert_output "create: OK"
	assert_equal "$(mode "$T/sg/cap")" 2755
	assert_equal "$(owner "$T/sg/cap")" "10000:1000"
	run sem_do --groups "" --umask 0 --drop-caps cap_fsetid \
		create "$M/i/sg/nocap" 02755 mkdir "$M/i/sg/nocapd" 0755
	assert_output "create: OK
mkdir: OK"
	assert_equal "$(mode "$T/sg/nocap")" 755
	assert_equal "$(mode "$T/sg/nocapd")" 2755
}

@test "[K23] umask and default ACLs with S_ISGID: the same modes as on a plain mount" {
	sem_need_rw
	mkdir "$T/sg/acl"
	chmod 2777 "$T/sg/acl"
	setfacl -d -m u::rwx,g::rwx,o::r-x "$T/sg/acl" ||
		skip "filesystem $FS: no POSIX ACLs (setfacl -d failed)"
	sem_idmap "$T" "$M/i"
	local plain idm
	# Plain mount as 1005:1006, idmapped mount as 11005:11006: same modes.
	plain=$(sem_do --groups "" --umask 022 --fsgid 1006 --fsuid 1005 \
		create "$T/sg/p1" 02777 mkdir "$T/sg/pd" 02777 \
		create "$T/sg/acl/p2" 02777 mkdir "$T/sg/acl/pd" 0777 2>&1)
	idm=$(sem_do --groups "" --umask 022 --fsgid 11006 --fsuid 11005 \
		create "$M/i/sg/i1" 02777 mkdir "$M/i/sg/id" 02777 \
		create "$M/i/sg/acl/i2" 02777 mkdir "$M/i/sg/acl/id" 0777 2>&1)
	assert_equal "$idm" "$plain"
	assert_equal "$idm" "$(printf 'create: OK\nmkdir: OK\ncreate: OK\nmkdir: OK')"
	assert_equal "$(mode "$T/sg/i1")" "$(mode "$T/sg/p1")"
	assert_equal "$(mode "$T/sg/id")" "$(mode "$T/sg/pd")"
	assert_equal "$(mode "$T/sg/acl/i2")" "$(mode "$T/sg/acl/p2")"
	assert_equal "$(mode "$T/sg/acl/id")" "$(mode "$T/sg/acl/pd")"
	# And what they are: umask applies without a default ACL, not with one;
	# S_ISGID goes (not in group), directories keep it.
	assert_equal "$(mode "$T/sg/i1")" 755
	assert_equal "$(mode "$T/sg/id")" 2755
	assert_equal "$(mode "$T/sg/acl/i2")" 775
	assert_equal "$(mode "$T/sg/acl/id")" 2775
	run getfacl -cn "$M/i/sg/acl/id"
	assert_line "default:user::rwx"
}

@test "[K24] a setuid/setgid binary run through the mount runs as the mapped owner" {
	sem_need_rw
	cp /usr/bin/id "$T/id"
	chown 1005:1006 "$T/id"
	chmod 6755 "$T/id"
	cp /usr/bin/id "$T/id-unmapped"
	chown 5000:5000 "$T/id-unmapped"
	chmod 6755 "$T/id-unmapped"
	sem_idmap "$T" "$M/i"
	# Directly: the on-disk owner.
	run sem_as "$SEM_USER1" "$T/id" -u
	assert_output 1005
	# Through the mount: the owner as mapped.
	run sem_as "$SEM_USER1" "$M/i/id" -u
	assert_output 11005
	run sem_as "$SEM_USER1" "$M/i/id" -g
	assert_output 11006
	run sem_as "$SEM_USER1" "$M/i/id" -ru
	assert_output "$SEM_UID1"
	# An owner the mount can't map: no id change at all.
	run sem_as "$SEM_USER1" "$M/i/id-unmapped" -u
	assert_output "$SEM_UID1"
	run sem_as "$SEM_USER1" "$M/i/id-unmapped" -g
	assert_output "$SEM_GID1"
}

@test "[K25] chown through the mount clears S_ISUID, S_ISGID with g+x, and the capability" {
	sem_need_rw
	touch "$T/f" "$T/nogx"
	chmod 6755 "$T/f"
	setcap cap_net_raw+ep "$T/f"
	chmod 6755 "$T/f"
	chmod 2745 "$T/nogx"
	sem_idmap "$T" "$M/i" --map "$MAPROOT"
	run sem_do getcap "$M/i/f"
	assert_output "v3:10000"
	run sem_do chown "$M/i/f" 11005 11005 chown "$M/i/nogx" 11005 11005 \
		getcap "$M/i/f"
	assert_output "chown: OK
chown: OK
getcap: ENODATA"
	assert_equal "$(owner "$T/f")" "1005:1005"
	assert_equal "$(mode "$T/f")" 755
	# Without group execute, S_ISGID is not a setgid bit: it stays.
	assert_equal "$(mode "$T/nogx")" 2745
	run getfattr -n security.capability "$T/f"
	assert_failure
}
