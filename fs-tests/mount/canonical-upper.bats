#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --overlay ... --upper DIR --work DIR --canonical-upper: the
# writable layer is stored in the container's own ids (root = 0), like the
# image layers, and is itself idmapped.  So a container's whole tree does
# not depend on its range: mounted again under another map, with no shift,
# it shows that map's owners, capability root ids and ACL qualifiers.  A
# host-id upper converts to canonical with shift-tree --reverse.

load ../lib/common

MAP=0:100000:65536
MAP2=0:200000:65536

setup() {
	require_idmap
}

# in_userns MAP CMD: run sh -c CMD as root of a user namespace with MAP.
in_userns() {
	"$HELPERS/idmap-helper" userns --map "b:$1" -- sh -c "$2"
}

@test "the canonical upper stores the container's ids; the view is mapped" {
	local m u
	m=$(scratch m)
	u=$(scratch u)
	idmap_mount --overlay --canonical-upper --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	assert_equal "$(owner "$u/upper")" 0:0
	assert_equal "$(owner "$m")" 100000:100000
	assert_equal "$(findmnt -no VFS-OPTIONS --mountpoint "$m" | cut -d, -f1)" rw
	run in_userns "$MAP" "echo new >'$m/by-root' && chown 5:6 '$m/file-1000' && mkdir '$m/d' && stat -c %u:%g '$m/by-root' '$m/file-1000'"
	assert_success
	assert_output "0:0
5:6"
	assert_equal "$(owner "$u/upper/by-root")" 0:0
	assert_equal "$(owner "$u/upper/file-1000")" 5:6
	assert_equal "$(owner "$u/upper/d")" 0:0
	assert_equal "$(owner "$m/file-1000")" 100005:100006
	assert_equal "$(owner "$u/work/work")" 0:0
}

@test "moved to another range, the container's writes need no shift: the upper is mounted as it is" {
	local m u before
	m=$(scratch m)
	u=$(scratch u)
	idmap_mount --overlay --canonical-upper --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	run in_userns "$MAP" "echo s >'$m/suid' && chown 7:7 '$m/suid' && chmod 4755 '$m/suid' &&
		echo c >'$m/cap' && setcap cap_net_raw+ep '$m/cap' &&
		echo a >'$m/acl' && setfacl -m u:9:rw '$m/acl'"
	assert_success
	umount "$m"
	before=$(manifest "$u/upper")
	# The same upper under another container's map.
	idmap_mount --overlay --canonical-upper --map "$MAP2" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	assert_equal "$(stat -c '%a %u:%g' "$m/suid")" "4755 200007:200007"
	run getcap -n "$m/cap"
	assert_output "$m/cap cap_net_raw=ep [rootid=200000]"
	run getfacl -n -p --skip-base "$m/acl"
	assert_output --partial "user:200009:rw-"
	assert_equal "$(owner "$m/file-1000")" 201000:201000
	# Nothing in the upper changed on the way.
	run diff <(echo "$before") <(manifest "$u/upper")
	assert_success
	# Inside the new container, the same ids as in the old one.
	run in_userns "$MAP2" "stat -c '%a %u:%g' '$m/suid'; getcap -n '$m/cap'"
	assert_output "4755 7:7
$m/cap cap_net_raw=ep"
}

@test "a host-id upper becomes canonical with shift-tree --reverse, and back" {
	local m u
	m=$(scratch m)
	u=$(scratch u)
	idmap_mount --overlay --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	as_user 100000 100000 sh -c "echo new >'$m/by-root'"
	echo more >>"$m/file-1000"
	umount "$m"
	assert_equal "$(owner "$u/upper/by-root")" 100000:100000
	"$SHIFT_TREE" --reverse --map "$MAP" "$u/upper"
	# shift-tree --reverse undoes a shift made with MAP: host ids -> canonical.
	assert_equal "$(owner "$u/upper/by-root")" 0:0
	assert_equal "$(owner "$u/upper/file-1000")" 1000:1000
	rm -rf "$u/work"
	idmap_mount --overlay --canonical-upper --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/by-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	# And back, for an engine that expects host ids in its upper.
	umount "$m"
	"$SHIFT_TREE" --map "$MAP" "$u/upper"
	assert_equal "$(owner "$u/upper/by-root")" 100000:100000
	rm -rf "$u/work"
	idmap_mount --overlay --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/by-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
}

@test "--canonical-upper needs --upper and --overlay or --fallback=reassemble; not with --recursive" {
	local m u
	m=$(scratch m)
	u=$(scratch u)
	run "$SHIFT_MOUNT" --overlay --canonical-upper --map "$MAP" "$FS_TREE" "$m"
	assert_failure 2
	assert_output --partial "--canonical-upper needs --upper"
	run "$SHIFT_MOUNT" --canonical-upper --map "$MAP" "$FS_TREE" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --tmpfs --canonical-upper --map "$MAP" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" -r --overlay --canonical-upper --map "$MAP" --upper "$u/upper" --work "$u/work" "$FS_TREE" "$m"
	assert_failure 2
	run mountpoint -q "$m"
	assert_failure
}

@test "a canonical upper and work on two mounts are refused, nothing mounted" {
	local m u w
	m=$(scratch m)
	u=$(scratch u)
	w=$(scratch w)
	mount -t tmpfs -o size=4m sk-work "$w"
	run "$SHIFT_MOUNT" --overlay --canonical-upper --map "$MAP" --upper "$u/upper" --work "$w/work" "$FS_TREE" "$m"
	assert_failure 1
	assert_output --partial "Failed to prepare the writable layer '$u/upper'"
	assert_output --partial "one filesystem"
	run mountpoint -q "$m"
	assert_failure
}
