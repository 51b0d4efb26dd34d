#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Ownership as reported through idmapped mounts (catalogue K9-K15).  The
# fixture (images/fixture.sh) gives one inode of each type; $MAP shows
# on-disk 0..1999 as 10000..11999.

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() { sem_setup; }
teardown() { sem_teardown; }

@test "[K9] stat through the mount gives map(disk id) for every inode type" {
	sem_idmap "$TREE" "$M/i"
	local p want
	# path -> on-disk owner in the fixture
	for p in file-root:0:0 file-1000:1000:1000 file-1000-1001:1000:1001 \
		dir:1000:1000 dir/file:1000:1000 symlink:1000:1000 \
		dangling:1001:1001 fifo:1000:1000 socket:1000:1000 \
		chardev:0:0 blockdev:0:6 setgid-dir:0:1000 hardlink-b:1001:1001 \
		deep/a/b/c/file:1001:1001; do
		IFS=: read -r path u g <<<"$p"
		want="$((u + 10000)):$((g + 10000))"
		assert_equal "$path $(owner "$M/i/$path")" "$path $want"
		# The original mount is unchanged.
		assert_equal "$path $(owner "$TREE/$path")" "$path $u:$g"
	done
	# statx agrees with stat (find's %U uses fstatat).
	run find "$M/i/file-1000" -printf '%U:%G'
	assert_output "11000:11000"
}

@test "[K10] two mounts of one tree with different maps each report their own view" {
	sem_idmap "$TREE" "$M/a" --map "$MAP"
	sem_idmap "$TREE" "$M/b" --map "$MAP2"
	sem_idmap "$TREE" "$M/c" --map "u:1000:3000:1 g:1001:4001:1"
	assert_equal "$(owner "$M/a/file-1000-1001")" "11000:11001"
	assert_equal "$(owner "$M/b/file-1000-1001")" "21000:21001"
	assert_equal "$(owner "$M/c/file-1000-1001")" "3000:4001"
	assert_equal "$(owner "$TREE/file-1000-1001")" "1000:1001"
}

@test "[K11] an on-disk id outside the map shows as the overflow id 65534" {
	sem_idmap "$TREE" "$M/i"
	assert_equal "$(owner "$M/i/file-70000")" "65534:65534"
	assert_equal "$(owner "$M/i/file-1000000")" "65534:65534"
	# 65534 on disk is itself outside this map: still 65534, not 75534.
	assert_equal "$(owner "$M/i/file-65534")" "65534:65534"
	# A map of one id: everything else overflows, uid and gid separately.
	sem_idmap "$TREE" "$M/one" --map "u:1000:5000:1 g:6:7006:1"
	assert_equal "$(owner "$M/one/file-1000")" "5000:65534"
	assert_equal "$(owner "$M/one/blockdev")" "65534:7006"
	assert_equal "$(owner "$M/one/file-root")" "65534:65534"
}

@test "[K11] an inode with an owner the mount can't map can't be written: EACCES" {
	sem_need_rw
	mkdir "$T/d"
	echo data >"$T/d/f"
	chmod 0777 "$T/d"
	chmod 0666 "$T/d/f"
	chown 5000:5000 "$T/d" "$T/d/f"
	sem_idmap "$T" "$M/i"
	assert_equal "$(owner "$M/i/d/f")" "65534:65534"
	# Mode bits would allow it; the unknown owner doesn't (the inode's
	# ids could not be written back correctly); removing an entry whose
	# ids are unknown is EOVERFLOW.
	run sem_do --groups "" --fsgid 11005 --fsuid 11005 read "$M/i/d/f" \
		write "$M/i/d/f" create "$M/i/d/new" 0644 unlink "$M/i/d/f"
	assert_output "read: OK
write: EACCES
create: EACCES
unlink: EOVERFLOW"
	# Root too.
	run sem_do write "$M/i/d/f"
	assert_output "write: EACCES"
	run sem_do write "$T/d/f"
	assert_output "write: OK"
}

@test "[K12] chown through the original mount shows in every view, mapped" {
	sem_need_rw
	touch "$T/f"
	sem_idmap "$T" "$M/a" --map "$MAP"
	sem_idmap "$T" "$M/b" --map "$MAP2"
	assert_equal "$(owner "$M/a/f")" "10000:10000"
	chown 1500:1600 "$T/f"
	assert_equal "$(owner "$M/a/f")" "11500:11600"
	assert_equal "$(owner "$M/b/f")" "21500:21600"
	chown 3000:3000 "$T/f"
	assert_equal "$(owner "$M/a/f")" "65534:65534"
}

@test "[K13] chown through the mount to an id unmapped in it gives EOVERFLOW" {
	sem_need_rw
	touch "$T/f"
	chown 1000:1000 "$T/f"
	sem_idmap "$T" "$M/i"
	run sem_do chown "$M/i/f" 5 -1 chown "$M/i/f" -1 5 chown "$M/i/f" 65534 -1 \
		chown "$M/i/f" 12000 -1
	assert_success
	assert_output "chown: EOVERFLOW
chown: EOVERFLOW
chown: EOVERFLOW
chown: EOVERFLOW"
	assert_equal "$(owner "$T/f")" "1000:1000"
	# A mapped target works, and lands on disk as map^-1.
	run sem_do chown "$M/i/f" 11500 10007
	assert_output "chown: OK"
	assert_equal "$(owner "$T/f")" "1500:7"
}

@test "[K14] permission checks and the chown/chgrp rules use mapped ids" {
	sem_need_rw
	echo data >"$T/f"
	chown 1000:1001 "$T/f"
	chmod 0640 "$T/f"
	sem_idmap "$T" "$M/i"
	# The owner as seen through the mount (11000) may write; the on-disk
	# owner id (1000) may not, through the mount, though it may directly.
	run sem_do --groups "" --fsuid 11000 --fsgid 11000 write "$M/i/f"
	assert_output "write: OK"
	run sem_do --groups "" --fsuid 1000 --fsgid 1000 write "$M/i/f" read "$M/i/f"
	assert_output "write: EACCES
read: EACCES"
	run sem_do --groups "" --fsuid 1000 --fsgid 1000 write "$T/f"
	assert_output "write: OK"
	# Group read goes by the mapped group.
	run sem_do --groups "" --fsuid 11005 --fsgid 11001 read "$M/i/f" write "$M/i/f"
	assert_output "read: OK
write: EACCES"
	# The owner may chgrp to a group it is in, not to another, and can't
	# give the file away; a non-owner can't chmod.
	run sem_do --groups "" --fsuid 11000 --fsgid 11000 chown "$M/i/f" -1 11000 \
		chown "$M/i/f" -1 11005 chown "$M/i/f" 11001 -1
	assert_output "chown: OK
chown: EPERM
chown: EPERM"
	assert_equal "$(owner "$T/f")" "1000:1000"
	run sem_do --groups "" --fsuid 11002 --fsgid 11002 chmod "$M/i/f" 0666
	assert_output "chmod: EPERM"
	run sem_do --groups "" --fsuid 11000 --fsgid 11000 chmod "$M/i/f" 0600
	assert_output "chmod: OK"
}

@test "[K15] nested user namespaces compose; holes show as 65534" {
	sem_idmap "$TREE" "$M/i"
	# Seen from a user namespace mapping ns 0..499 to host 10000..10499:
	# disk 0 -> host 10000 -> ns 0; disk 1000 -> host 11000, a hole -> 65534.
	run "$HELPER" userns --map b:0:10000:500 -- \
		stat -c '%n %u:%g' "$M/i/file-root" "$M/i/file-1000" "$M/i/blockdev"
	assert_success
	assert_output "$M/i/file-root 0:0
$M/i/file-1000 65534:65534
$M/i/blockdev 0:6"
	# A namespace inside that one, shifted by 5 again.
	run "$HELPER" userns --map b:0:10000:500 -- \
		"$HELPER" userns --map b:0:5:100 -- stat -c '%u:%g' "$M/i/blockdev"
	assert_success
	assert_output "65534:1"
}
