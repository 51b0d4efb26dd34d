#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The oracle for shift-mount --fallback=copy: the shifted copy it mounts
# equals, entry by entry, the kernel's idmapped view of the same tree with
# the same map: type, mode with the setid and sticky bits, owners, size,
# mtime, device numbers, link targets, hard links, ACLs (getfacl), file
# capabilities (getcap), the other xattrs.  The tree is the fixture (every
# inode type, ACLs, capabilities, hard links, setid files) seen through an
# overlay (which can't be idmapped, so the fallback copies it), with a
# sparse file on top whose holes the copy keeps.

load ../lib/common

# Wide enough for every id of the fixture (up to 1000000).
MAP=0:2000000:1000001

setup() {
	require_idmap
}

# view DIR: what a container sees, in a form both trees share (not
# shift-mount's own marker on the copy's root).
view() {
	(
		cd "$1" || exit 1
		find . -xdev \( -type d -printf '%p %y %m %U %G - %Ts\n' \) -o \
			\( -type l -printf '%p %y %m %U %G %s %Ts -> %l\n' \) -o \
			-printf '%p %y %m %U %G %s %Ts %n\n' | sort
		echo "-- devices"
		find . -xdev \( -type b -o -type c \) -exec stat -c '%n %t:%T' {} + | sort
		echo "-- hard links"
		find . -xdev -type f -links +1 -printf '%i %p\n' | sort -n |
			awk '{ if ($1 == i) print p, "=", $2; else { i = $1; p = $2 } }'
		echo "-- acl"
		find . -xdev -print0 | sort -z |
			xargs -0 getfacl -n -P -p --skip-base 2>/dev/null | grep -v '^$' || true
		echo "-- fcap"
		find . -xdev -type f -print0 | sort -z | xargs -0 getcap -n 2>/dev/null || true
		echo "-- xattr"
		find . -xdev -print0 | sort -z |
			xargs -0 getfattr -h -d -m '^(user|trusted)\.' --absolute-names 2>/dev/null |
			awk '/^# file: / { f = $0; next }
				/^(user|trusted)\.shiftkit\.shift=/ || /^$/ { next }
				/^trusted\.SGI_ACL_/ { next } # XFS: the ACL, compared above
				/^trusted\.overlay\./ { next }
				{ if (f != "") print f; f = ""; print }'
	)
}

@test "--fallback=copy mounts a copy equal to the idmapped view of the same tree (setid bits, ACLs, caps, hard links, devices, times, holes)" {
	local top up wk s i t c
	top=$(scratch top)
	up=$(scratch up)
	wk=$(scratch wk)
	s=$(scratch src)
	i=$(scratch idmapped)
	t=$(scratch t)
	c=$(scratch c)/copy
	# a sparse file: 64 MiB with 4 KiB of data in the middle
	truncate -s 64M "$top/sparse"
	echo data | dd of="$top/sparse" bs=4096 seek=8192 conv=notrunc status=none
	# The merged root shows the (empty) upper's times, the oracle's the
	# top layer's, which "sparse" just changed: the same, or the two
	# differ whenever a second ends in between.
	touch -r "$top" "$up"
	mount -t overlay sk-src -o "lowerdir=$top:$FS_TREE,upperdir=$up,workdir=$wk" "$s"
	track_mount "$s"
	idmap_mount --map "$MAP" --fallback=copy --copy-dir "$c" "$s" "$t"
	# the oracle: the same overlay's layers through the kernel's idmap
	idmap_mount --overlay --map "$MAP" --read-only "$top:$FS_TREE" "$i"
	# The view holds what the test is about, else the comparison proves little.
	assert_equal "$(stat -c '%a %u:%g' "$t/setuid")" "$(stat -c '%a %u:%g' "$FS_TREE/setuid" | awk '{ split($2, a, ":"); print $1, a[1] + 2000000 ":" a[2] + 2000000 }')"
	[ -p "$t/fifo" ] && [ -S "$t/socket" ] && [ -c "$t/chardev" ] && [ -b "$t/blockdev" ]
	assert_equal "$(stat -c %i "$t/hardlink-a")" "$(stat -c %i "$t/hardlink-b")"
	run getcap -n "$t/fcap-v2"
	assert_output "$t/fcap-v2 cap_net_raw=ep [rootid=2000000]"
	run diff <(view "$i") <(view "$t")
	assert_success
	# holes stay holes (a few blocks, not 64 MiB of zeros)
	[ "$(stat -c %b "$t/sparse")" -lt 1024 ] ||
		fail "the copy of a sparse file takes $(stat -c %b "$t/sparse") blocks"
	assert_equal "$(cmp "$top/sparse" "$t/sparse" && echo same)" same
}
