#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crossing mounts, sticky directories, protected_symlinks, lchown and
# io_uring through idmapped mounts (catalogue K33-K37).  The sticky and
# protected_symlinks rules are checked with two real unprivileged users:
# the mount maps disk 1005 to the first one, so only through the mount is
# that user the owner.
# run-on: ext4 xfs btrfs tmpfs

load lib

setup_file() {
	sem_setup_file
	sem_users_create 2
}
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	export LC_ALL=C
	# disk 1005 <-> user 1, the rest of 0..999 at 10000.
	UMAP="u:1005:$SEM_UID1:1 g:1005:$SEM_GID1:1 b:0:10000:1000"
}
teardown() {
	if [ -n "${SEM_SAVED_PS:-}" ]; then
		sysctl -q -w fs.protected_symlinks="$SEM_SAVED_PS"
	fi
	if [ -n "${SEM_PS_LOCK:-}" ]; then
		exec {SEM_PS_LOCK}>&-
	fi
	sem_teardown
}

@test "[K33] link and rename across two mounts give EXDEV, even with the same map" {
	sem_need_rw
	sem_idmap "$TREE" "$M/a"
	sem_idmap "$TREE" "$M/b"
	run sem_do link "$M/a/file-1000" "$M/b/new" rename "$M/a/file-1000" "$M/b/new" \
		link "$TREE/file-1000" "$M/a/new" rename "$M/a/file-1000" "$TREE/new"
	assert_success
	assert_output "link: EXDEV
rename: EXDEV
link: EXDEV
rename: EXDEV"
	[ -e "$TREE/file-1000" ] && [ ! -e "$TREE/new" ]
	# Within one idmapped mount both work.
	touch "$T/f"
	sem_idmap "$T" "$M/i" --map "b:10000:0:1 b:0:10000:2000"
	run sem_do link "$M/i/f" "$M/i/g" rename "$M/i/g" "$M/i/h"
	assert_output "link: OK
rename: OK"
}

@test "[K34] sticky directories: who may unlink or rename is judged on mapped ids" {
	sem_need_rw
	mkdir "$T/st"
	chmod 1777 "$T/st"
	touch "$T/st/f" "$T/st/g"
	chown 1005:1005 "$T/st/f" "$T/st/g"
	sem_idmap "$T" "$M/i" --map "$UMAP"
	assert_equal "$(owner "$M/i/st/f")" "$SEM_UID1:$SEM_GID1"
	# The other user is neither the file's nor the directory's owner.
	run sem_as "$SEM_USER2" "$UHELPER" do unlink "$M/i/st/f" \
		rename "$M/i/st/f" "$M/i/st/h"
	assert_output "unlink: EPERM
rename: EPERM"
	# Without the mount, user 1 owns nothing here.
	run sem_as "$SEM_USER1" "$UHELPER" do unlink "$T/st/f"
	assert_output "unlink: EPERM"
	# Through it, user 1 is the owner.
	run sem_as "$SEM_USER1" "$UHELPER" do rename "$M/i/st/g" "$M/i/st/h" \
		unlink "$M/i/st/f"
	assert_output "rename: OK
unlink: OK"
	[ ! -e "$T/st/f" ] && [ -e "$T/st/h" ]
}

@test "[K35] protected_symlinks is judged on mapped ids" {
	sem_need_rw
	# The sysctl is global: files running in parallel take turns.
	exec {SEM_PS_LOCK}>"${TMPDIR:-/tmp}/shiftkit-protected-symlinks.lock"
	flock -w 120 "$SEM_PS_LOCK"
	SEM_SAVED_PS=$(sysctl -n fs.protected_symlinks)
	sysctl -q -w fs.protected_symlinks=1
	mkdir "$T/st"
	chmod 1777 "$T/st"
	echo secret >"$T/target"
	chmod 0644 "$T/target"
	ln -s ../target "$T/st/by1005"
	chown -h 1005:1005 "$T/st/by1005"
	ln -s ../target "$T/st/byroot"
	sem_idmap "$T" "$M/i" --map "$UMAP"
	# A link owned by someone else in a sticky world-writable directory
	# (whose owner is someone else too) is not followed.
	run sem_as "$SEM_USER2" "$UHELPER" do read "$M/i/st/by1005"
	assert_output "read: EACCES"
	# Its owner as seen through the mount may follow it...
	run sem_as "$SEM_USER1" "$UHELPER" do read "$M/i/st/by1005"
	assert_output "read: OK"
	# ...but not on the original mount, where it isn't the owner.
	run sem_as "$SEM_USER1" "$UHELPER" do read "$T/st/by1005"
	assert_output "read: EACCES"
	# Links owned by the directory's owner are followed by anyone.
	run sem_as "$SEM_USER2" "$UHELPER" do read "$M/i/st/byroot"
	assert_output "read: OK"
}

@test "[K36] lchown of a symlink through the mount changes only the link" {
	sem_need_rw
	touch "$T/target"
	chown 1000:1000 "$T/target"
	ln -s target "$T/link"
	sem_idmap "$T" "$M/i"
	run sem_do lchown "$M/i/link" 11005 11006
	assert_output "lchown: OK"
	assert_equal "$(owner "$T/link")" "1005:1006"
	assert_equal "$(owner "$T/target")" "1000:1000"
	assert_equal "$(owner "$M/i/link")" "11005:11006"
	# chown follows the link: now only the target changes.
	run sem_do chown "$M/i/link" 11007 11008
	assert_output "chown: OK"
	assert_equal "$(owner "$T/link")" "1005:1006"
	assert_equal "$(owner "$T/target")" "1007:1008"
}

@test "[K37] io_uring openat honours the idmap, also with a registered personality" {
	sem_need_rw
	local probe
	probe=$(sem_do uring-create "$T/probe" 0644 -1 -1 2>&1)
	[ "$probe" = "uring-create: OK" ] ||
		skip "io_uring openat not available here (${probe#uring-create: })"
	chmod 0777 "$T"
	sem_idmap "$T" "$M/i"
	# With the caller's fs ids.
	run sem_do --groups "" --fsgid 11006 --fsuid 11005 uring-create "$M/i/a" 0644 -1 -1
	assert_output "uring-create: OK"
	assert_equal "$(owner "$T/a")" "1005:1006"
	# A personality registered as 11007:11008, submitted by root: the
	# personality's ids are what count.
	run sem_do uring-create "$M/i/b" 0644 11007 11008
	assert_output "uring-create: OK"
	assert_equal "$(owner "$T/b")" "1007:1008"
	# Root itself (unmapped in this mount) can't create: EOVERFLOW, as
	# with open(2).
	run sem_do uring-create "$M/i/c" 0644 -1 -1
	assert_output "uring-create: EOVERFLOW"
	# A personality unmapped in the mount: EOVERFLOW too.
	run sem_do uring-create "$M/i/d" 0644 5 5
	assert_output "uring-create: EOVERFLOW"
}
