#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# POSIX ACL qualifiers (access and default ACL_USER/ACL_GROUP entries) are
# translated through an idmapped mount; an unmappable one reads as
# 4294967295.  The ACL on disk is unchanged.

load ../lib/common

setup() {
	require_idmap
	require_acl
}

# acl PATH: getfacl -n without the header and effective rights.
acl() {
	getfacl -n -p -E --omit-header -- "$1" | grep -v '^$'
}

@test "access ACL entries are seen with mapped qualifiers" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run acl "$m/acl-file"
	assert_success
	assert_output "user::rw-
user:101000:rw-
group::rw-
group:101001:r--
mask::rw-
other::r--"
	run acl "$FS_TREE/acl-file"
	assert_line "user:1000:rw-"
	assert_line "group:1001:r--"
}

@test "default ACL entries are seen with mapped qualifiers" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run acl "$m/acl-dir"
	assert_success
	assert_output "user::rwx
user:101000:rwx
group::rwx
group:101001:r-x
mask::rwx
other::r-x
default:user::rwx
default:user:100000:rwx
default:user:101000:rwx
default:group::r-x
default:group:101001:r-x
default:mask::rwx
default:other::r-x"
}

@test "an ACL qualifier outside the map reads as 4294967295" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:1000 "$FS_TREE" "$m"
	run acl "$m/acl-file"
	assert_success
	assert_line "user:4294967295:rw-"
	assert_line "group:4294967295:r--"
}

@test "an ACL set through the mount is stored with on-disk qualifiers" {
	require_writable
	local m f=acl-set-$BATS_TEST_NUMBER
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	touch "$FS_TREE/$f"
	setfacl -m u:102000:r,g:102001:rw "$m/$f"
	run acl "$FS_TREE/$f"
	assert_line "user:2000:r--"
	assert_line "group:2001:rw-"
	run acl "$m/$f"
	assert_line "user:102000:r--"
	assert_line "group:102001:rw-"
	# An entry for an id with no on-disk image can't be stored.
	run setfacl -m u:5:r "$m/$f"
	assert_failure
	run acl "$FS_TREE/$f"
	refute_line --partial "user:4294967295"
}

@test "a file created in acl-dir inherits the default ACL, translated" {
	require_writable
	local m f
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	f=acl-dir/new-$BATS_TEST_NUMBER
	as_user 101000 101000 touch "$m/$f"
	assert_equal "$(owner "$FS_TREE/$f")" 1000:1000
	run acl "$FS_TREE/$f"
	assert_line "user:0:rwx"
	assert_line "user:1000:rwx"
	assert_line "group:1001:r-x"
	run acl "$m/$f"
	assert_line "user:100000:rwx"
	assert_line "user:101000:rwx"
}

@test "ACL permission checks use the mapped qualifiers" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	# acl-dir is 0:0 0775 with user:1000:rwx; 101000 is that user here.
	as_user 101000 101000 ls "$m/acl-dir" >/dev/null
	# acl-file: other::r--, but user 1000 (101000 here) has rw-.
	run as_user 102000 102000 sh -c "echo x >>'$m/acl-file'"
	assert_failure
	if [ "$FS_RO" = 0 ]; then
		as_user 101000 101000 sh -c "printf '' >>'$m/acl-file'"
	fi
}
