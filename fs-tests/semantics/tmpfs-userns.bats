#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Idmapped mounts of a tmpfs mounted inside a user namespace (catalogue
# K38, as xfstests tmpfs/001; kernel >= 6.3).  A real unprivileged user
# with a subordinate id delegation makes the namespace (unshare
# --map-root-user --map-auto: its ids 0, 1..65535), mounts a tmpfs there
# and, as that namespace's root, idmaps it with $MAP.  The checks of the
# other files are then repeated in there.
# run-on: tmpfs

load lib

setup_file() {
	sem_setup_file
	sem_users_create 1
}
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	mkdir -p "$M/t"
}
teardown() { sem_teardown; }

# inns SCRIPT: run the bash SCRIPT as root of a new user and mount
# namespace of test user 1, with H (the helper) and D (a directory with a
# fresh tmpfs at $D/t holding src/ and an idmapped mount of it at i/).
inns() {
	local prologue='set -eu
mount -t tmpfs -o mode=0755 sem-userns-tmpfs "$D/t"
mkdir "$D/t/src" "$D/t/i"
chmod 0777 "$D/t/src"
touch "$D/t/src/f0" "$D/t/src/f1000" "$D/t/src/f5000"
chown 1000:1001 "$D/t/src/f1000"
chown 5000:5000 "$D/t/src/f5000"
out=$("$H" idmap --map b:0:10000:2000 --attach "$D/t/i" "$D/t/src" 2>&1) || true
if [ "$out" != "$(printf "idmap: OK\nattach: OK")" ]; then
	echo "NOIDMAP ${out#idmap: }"
	exit 0
fi
'
	H=$UHELPER D=$M TREE=$TREE sem_as "$SEM_USER1" unshare --user --map-root-user \
		--map-auto --mount bash -c "$prologue$1"
}

# Skip (with the kernel's answer) when the kernel can't idmap a tmpfs
# mounted in a user namespace.
check_noidmap() {
	if [[ $output == NOIDMAP* ]]; then
		skip "tmpfs mounted in a user namespace can't be idmapped here (${output#NOIDMAP })"
	fi
}

@test "[K38,K9,K11] in a userns-mounted tmpfs: stat through the mount is mapped" {
	run inns 'stat -c "%n %u:%g" "$D/t/i/f0" "$D/t/i/f1000" "$D/t/i/f5000"
findmnt -no OPTIONS "$D/t/i" | tr , "\n" | grep -x idmapped'
	check_noidmap
	assert_success
	assert_output "$M/t/i/f0 10000:10000
$M/t/i/f1000 11000:11001
$M/t/i/f5000 65534:65534
idmapped"
}

@test "[K38,K16,K17] in a userns-mounted tmpfs: creation stores map^-1, unmapped gives EOVERFLOW" {
	run inns '"$H" do --fsgid 10006 --fsuid 10005 create "$D/t/i/new" 0644 mkdir "$D/t/i/nd" 0755
stat -c "%u:%g" "$D/t/src/new" "$D/t/src/nd"
"$H" do --fsgid 5 --fsuid 5 create "$D/t/i/no" 0644 unlink "$D/t/i/new"
[ ! -e "$D/t/src/no" ] && echo gone'
	check_noidmap
	assert_success
	assert_output "create: OK
mkdir: OK
5:6
5:6
create: EOVERFLOW
unlink: OK
gone"
}

@test "[K38,K2,K13] in a userns-mounted tmpfs: no re-idmap, chown to unmapped ids refused" {
	run inns '"$H" idmap --map b:0:20000:2000 --reclone "$D/t/i"
"$H" idmap --map b:0:20000:2000 --attached "$D/t/src"
"$H" do chown "$D/t/i/f1000" 11500 10007 chown "$D/t/i/f1000" 5 -1
stat -c "%u:%g" "$D/t/src/f1000"'
	check_noidmap
	assert_success
	assert_output "idmap: EPERM
idmap: EINVAL
chown: OK
chown: EOVERFLOW
1500:7"
}

@test "[K38] the namespace's root can't idmap a filesystem mounted outside it" {
	# Only filesystems whose superblock belongs to the namespace qualify:
	# the fixture's, seen from in there, gives EPERM.
	run inns '"$H" idmap --map b:0:10000:2000 "$TREE"'
	check_noidmap
	assert_success
	assert_output "idmap: EPERM"
}
