#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The kernel's rules for an overlayfs built from idmapped layers given as
# file descriptors, which shift-mount --fallback=reassemble and its
# canonical upper rely on (the O entries of docs/kernel-semantics.md).
# The lower layer is the fixture on $FS, idmapped; upper and work lie on a
# tmpfs of the test's own.  The raw steps are fs-tests/helpers/ovl-helper.

load lib

OVL=$HELPERS/ovl-helper
# Container root = host 10000 under the suite's map.
ROOT=10000

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	[ -x "$OVL" ] || skip "ovl-helper is not built"
	mkdir -p "$M/t" "$M/o"
	mount -t tmpfs -o size=16m,mode=0755 sem-ovl-layers "$M/t"
	mkdir "$M/t/l2" "$M/t/up" "$M/t/wk"
	echo l2 >"$M/t/l2/l2-file"
}
teardown() { sem_teardown; }

# fd_layers_supported: skip where overlayfs takes no layer fds (< 6.13).
fd_layers() {
	run "$OVL" --map "$MAP" "$@"
	if [[ $output == *"lowerdir+: Invalid argument"* ]]; then
		skip "overlayfs takes no layers as file descriptors (Linux < 6.13)"
	fi
}

@test "[O1] idmapped detached clones as layer fds make an overlay; mountinfo names them relative to their clones" {
	fd_layers "$TREE" "$M/t/l2" "$M/o"
	assert_output "create: OK
mount: ro"
	assert_equal "$(owner "$M/o/file-1000")" 11000:11000
	assert_equal "$(owner "$M/o/l2-file")" 10000:10000
	# The layer paths in the options say nothing about where they are.
	assert_equal "$(findmnt -no FS-OPTIONS --mountpoint "$M/o")" "ro,lowerdir+=/,lowerdir+=/,redirect_dir=on"
}

@test "[O2] a detached layer whose fd closes before FSCONFIG_CMD_CREATE: EINVAL" {
	fd_layers --close-early "$TREE" "$M/t/l2" "$M/o"
	assert_output --partial "create: EINVAL"
	run mountpoint -q "$M/o"
	assert_failure
}

@test "[O3] upperdir and workdir from two clones (two mounts): EINVAL" {
	fd_layers --idmap-upper --separate-clones --upper "$M/t/up" --work "$M/t/wk" "$TREE" "$M/o"
	assert_output --partial "create: EINVAL"
	# From one clone of their parent: fine.
	fd_layers --idmap-upper --upper "$M/t/up" --work "$M/t/wk" --fsuid "$ROOT" "$TREE" "$M/o"
	assert_output "create: OK
mount: rw"
}

@test "[O4] an idmapped upper and host root creating the overlay: work dir EOVERFLOW, the overlay is read-only" {
	fd_layers --idmap-upper --upper "$M/t/up" --work "$M/t/wk" "$TREE" "$M/o"
	assert_output "create: OK
mount: ro"
	[ ! -e "$M/t/wk/work" ]
	run touch "$M/o/new"
	assert_failure
	assert_output --partial "Read-only file system"
}

@test "[O5] created with fsuid/fsgid = map(0) and capabilities kept: read-write, container ids on disk" {
	fd_layers --idmap-upper --upper "$M/t/up" --work "$M/t/wk" --fsuid "$ROOT" "$TREE" "$M/o"
	assert_output "create: OK
mount: rw"
	assert_equal "$(owner "$M/t/wk/work")" 0:0
	# Copy-up keeps the owner and the setuid bit, stored as on the lower.
	touch "$M/o/file-1000" "$M/o/setuid"
	assert_equal "$(owner "$M/t/up/file-1000")" 1000:1000
	assert_equal "$(stat -c '%a %u:%g' "$M/t/up/setuid")" "$(stat -c '%a %u:%g' "$TREE/setuid")"
	# The container's root creates: 0 on disk.
	as_user "$ROOT" "$ROOT" sh -c "echo new >'$M/o/by-root'"
	assert_equal "$(owner "$M/t/up/by-root")" 0:0
	assert_equal "$(owner "$M/o/by-root")" 10000:10000
}

@test "[O6] created inside the container's user namespace from layer fds made outside: EPERM" {
	fd_layers --in-userns "$TREE" "$M/t/l2" "$M/o"
	assert_output --partial "create: EPERM"
	fd_layers --in-userns --idmap-upper --upper "$M/t/up" --work "$M/t/wk" "$TREE" "$M/o"
	assert_output --partial "create: EPERM"
}

@test "[O7] one upper under two live overlays: EBUSY with index=on, accepted without; a live upper as a lower: EBUSY only for index=on with an upper" {
	local t=$M/t
	mkdir "$t/o1" "$t/o2" "$t/o3" "$t/o4" "$t/wk2" "$t/up3" "$t/wk3"
	mount -t overlay sem-o1 -o "lowerdir=$t/l2,upperdir=$t/up,workdir=$t/wk,index=on" "$t/o1"
	run mount -t overlay sem-o2 -o "lowerdir=$t/l2,upperdir=$t/up,workdir=$t/wk2,index=on" "$t/o2"
	assert_failure
	run mountpoint -q "$t/o2"
	assert_failure
	# index=off: the kernel only warns ("undefined behavior").
	mount -t overlay sem-o2 -o "lowerdir=$t/l2,upperdir=$t/up,workdir=$t/wk2,index=off" "$t/o2"
	umount "$t/o2"
	# The live upper as a lower layer: read-only, accepted.
	mount -t overlay sem-o3 -o "lowerdir=$t/up:$t/l2" "$t/o3"
	umount "$t/o3"
	# With an upper of its own and index=on: EBUSY.
	run mount -t overlay sem-o4 -o "lowerdir=$t/up:$t/l2,upperdir=$t/up3,workdir=$t/wk3,index=on" "$t/o4"
	assert_failure
	mount -t overlay sem-o4 -o "lowerdir=$t/up:$t/l2,upperdir=$t/up3,workdir=$t/wk3,index=off" "$t/o4"
	umount "$t/o4" "$t/o1"
}
