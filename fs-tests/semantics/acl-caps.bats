#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# POSIX ACLs and file capabilities through idmapped mounts (catalogue
# K26-K32; xfstests generic/689 and generic/644).  The fixture has
# acl-file (u:1000:rw g:1001:r), acl-dir (with a default ACL), fcap-v2
# (cap_net_raw+ep, v2) and fcap-v3 (rootid 1000).

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	export LC_ALL=C
}
teardown() { sem_teardown; }

# acl PATH: the numeric ACL entries of PATH, one per line, no comments.
acl() {
	getfacl -cnE -- "$1" 2>/dev/null
}

@test "[K26] access and default ACL_USER/ACL_GROUP qualifiers are translated" {
	require_acl
	sem_idmap "$TREE" "$M/i"
	run acl "$M/i/acl-file"
	assert_line "user:11000:rw-"
	assert_line "group:11001:r--"
	refute_line "user:1000:rw-"
	run acl "$M/i/acl-dir"
	assert_line "user:11000:rwx"
	assert_line "group:11001:r-x"
	assert_line "default:user:10000:rwx"
	assert_line "default:user:11000:rwx"
	assert_line "default:group:11001:r-x"
	# The original mount still shows the on-disk ids.
	run acl "$TREE/acl-dir"
	assert_line "default:user:1000:rwx"
}

@test "[K27] an ACL qualifier the reader can't map reads as 4294967295" {
	require_acl
	# Only disk 0..999 mapped: 1000 and 1001 have no image.
	sem_idmap "$TREE" "$M/i" --map b:0:10000:1000
	run acl "$M/i/acl-file"
	assert_line "user:4294967295:rw-"
	assert_line "group:4294967295:r--"
	run acl "$M/i/acl-dir"
	assert_line "default:user:10000:rwx"
	assert_line "default:user:4294967295:rwx"
}

@test "[K28] ACL permission checks use mapped ids" {
	sem_need_rw
	echo data >"$T/f"
	chmod 0600 "$T/f"
	setfacl -m u:1005:r,g:1006:rw "$T/f" ||
		skip "filesystem $FS: no POSIX ACLs (setfacl failed)"
	chmod 0777 "$T"
	sem_idmap "$T" "$M/i"
	# The named user as seen through the mount may read, not write.
	run sem_do --groups "" --fsgid 11999 --fsuid 11005 read "$M/i/f" write "$M/i/f"
	assert_output "read: OK
write: EACCES"
	# The on-disk id gets nothing through the mount.
	run sem_do --groups "" --fsgid 11999 --fsuid 1005 read "$M/i/f"
	assert_output "read: EACCES"
	# The named group, mapped, may write.
	run sem_do --groups "" --fsgid 11006 --fsuid 11998 write "$M/i/f"
	assert_output "write: OK"
	run sem_do --groups "" --fsgid 1006 --fsuid 11998 write "$M/i/f"
	assert_output "write: EACCES"
}

@test "[K29] setting an ACL through the mount round-trips" {
	sem_need_rw
	touch "$T/f"
	mkdir "$T/d"
	setfacl -m u:0:r "$T/f" 2>/dev/null || skip "filesystem $FS: no POSIX ACLs (setfacl failed)"
	setfacl -b "$T/f"
	sem_idmap "$T" "$M/i"
	setfacl -m u:11005:rw,g:11006:r "$M/i/f"
	setfacl -d -m u:11007:rwx,g:11008:rx "$M/i/d"
	# On disk: map^-1 of the qualifiers.
	run acl "$T/f"
	assert_line "user:1005:rw-"
	assert_line "group:1006:r--"
	run acl "$T/d"
	assert_line "default:user:1007:rwx"
	assert_line "default:group:1008:r-x"
	# Read back through the mount: what was set.
	run acl "$M/i/f"
	assert_line "user:11005:rw-"
	assert_line "group:11006:r--"
	run acl "$M/i/d"
	assert_line "default:user:11007:rwx"
	# A new file in d inherits the default ACL, still translated.
	run sem_do --groups "" --fsgid 10000 --fsuid 10000 create "$M/i/d/new" 0644
	assert_output "create: OK"
	run acl "$T/d/new"
	assert_line "user:1007:rwx"
	# A qualifier the mount can't map is refused, and nothing changes.
	run setfacl -m u:5:r "$M/i/f"
	assert_failure
	assert_output --partial "Invalid argument"
	run acl "$T/f"
	refute_line --partial "user:5:"
}

@test "[K30] a v2 capability on disk reads back through the mount as v3 with rootid map(0)" {
	run sem_do getcap "$TREE/fcap-v2"
	assert_output "v2"
	sem_idmap "$TREE" "$M/i"
	run sem_do getcap "$M/i/fcap-v2"
	assert_output "v3:10000"
	sem_idmap "$TREE" "$M/j" --map "$MAP2"
	run sem_do getcap "$M/j/fcap-v2"
	assert_output "v3:20000"
	# getcap(8) agrees on the capability itself.
	run getcap "$M/i/fcap-v2"
	assert_output --partial "cap_net_raw=ep"
}

@test "[K31] a v3 rootid is translated; one the reader can't map gives EOVERFLOW" {
	run sem_do getcap "$TREE/fcap-v3"
	assert_output "v3:1000"
	sem_idmap "$TREE" "$M/i"
	run sem_do getcap "$M/i/fcap-v3"
	assert_output "v3:11000"
	sem_idmap "$TREE" "$M/j" --map b:0:10000:1000
	run sem_do getcap "$M/j/fcap-v3"
	assert_output "getcap: EOVERFLOW"
	# Inside a user namespace whose root is the file's mapped rootid, the
	# capability reads as a plain v2 one (it is that namespace's root's).
	run "$HELPER" userns --map b:0:11000:100 -- "$HELPER" do getcap "$M/i/fcap-v3"
	assert_output "v2"
}

@test "[K32] writing a v3 capability through the mount needs a mappable rootid" {
	sem_need_rw
	touch "$T/a" "$T/b" "$T/c" "$T/d"
	sem_idmap "$T" "$M/i"
	run sem_do setcap "$M/i/a" v3 11005 setcap "$M/i/b" v3 5 setcap "$M/i/c" v2 0
	assert_output "setcap: OK
setcap: EINVAL
setcap: EINVAL"
	run sem_do getcap "$T/a" getcap "$T/b" getcap "$T/c"
	assert_output "v3:1005
getcap: ENODATA
getcap: ENODATA"
	# The namespace's root writes a v2 capability: stored for map^-1 of
	# its root, here disk 0, so on disk it is a plain v2 one.
	run "$HELPER" userns --map "$MAP" -- "$HELPER" do setcap "$M/i/d" v2 0 getcap "$M/i/d"
	assert_output "setcap: OK
v2"
	run sem_do getcap "$T/d"
	assert_output "v2"
}
