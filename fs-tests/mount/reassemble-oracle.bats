#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The oracle for shift-mount --fallback=reassemble: the view through a
# re-assembled overlay equals, entry by entry (type, mode with the setid
# bits, owners, size, ACLs by getfacl, file capabilities by getcap, the
# other xattrs), the source overlay's view copied and shifted in place by
# shift-tree with the same map; no source layer changes.  And copy-up from
# inside a user namespace with the map lands in the new upper layer with
# the expected owners, capability root id and ACLs: host ids in a plain
# upper, the container's own ids in a canonical one.

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
}

# src_overlay: the source overlay at $S: a top layer $TOP (a setuid file,
# an ACL, a file capability, a whiteout hiding file-1001, an opaque dir)
# over the fixture, upper $UP (a changed file, a new one), work $WK.
src_overlay() {
	TOP=$(scratch top)
	UP=$(scratch up)
	WK=$(scratch wk)
	S=$(scratch src)
	echo top >"$TOP/top-setuid"
	chown 1000:1001 "$TOP/top-setuid"
	chmod 4750 "$TOP/top-setuid"
	echo acl >"$TOP/top-acl"
	chown 2000:2000 "$TOP/top-acl"
	setfacl -m u:1000:rw,g:1001:r "$TOP/top-acl"
	echo cap >"$TOP/top-fcap"
	setcap cap_net_admin+ep "$TOP/top-fcap"
	setfattr -n user.shiftkit -v top "$TOP/top-fcap"
	mknod "$TOP/file-1001" c 0 0
	mkdir "$TOP/dir"
	chown 1000:1000 "$TOP/dir"
	setfattr -n trusted.overlay.opaque -v y "$TOP/dir"
	echo opaque >"$TOP/dir/only"
	chown 3:3 "$TOP/dir/only"
	echo changed >"$UP/file-root"
	chmod 0640 "$UP/file-root"
	echo new >"$UP/up-new"
	chown 65000:7 "$UP/up-new"
	mount -t overlay sk-src -o "lowerdir=$TOP:$FS_TREE,upperdir=$UP,workdir=$WK,index=off" "$S"
}

layers_manifest() {
	manifest "$TOP"
	manifest "$UP"
	manifest "$FS_TREE"
}

# view DIR: what a container sees, entry by entry, in a form both trees
# share: type, mode, owners, size (not of directories), link target; the
# ACLs (getfacl, numeric); file capabilities (getcap); other xattrs (not
# shift-tree's own marker on the copy's root).
view() {
	(
		cd "$1" || exit 1
		find . -xdev \( -type d -printf '%p %y %m %U %G -\n' \) -o \
			\( -type l -printf '%p %y %m %U %G %s -> %l\n' \) -o \
			-printf '%p %y %m %U %G %s\n' | sort
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
				{ if (f != "") print f; f = ""; print }'
	)
}

@test "the re-assembled view equals the source's view shifted by shift-tree on a copy; no layer changes" {
	local m c before
	src_overlay
	m=$(scratch m)
	c=$(scratch copy)
	before=$(layers_manifest)
	idmap_mount --fallback=reassemble -R --map "$MAP" "$S" "$m"
	cp -a --preserve=xattr "$S/." "$c/"
	run "$SHIFT_TREE" --map "$MAP" --unmapped=overflow "$c"
	assert_success
	# The view holds what the test built, else the comparison proves little.
	assert_equal "$(stat -c '%a %u:%g' "$m/top-setuid")" "4750 101000:101001"
	[ ! -e "$m/file-1001" ]
	[ ! -e "$m/dir/file" ]
	assert_equal "$(owner "$m/up-new")" 165000:100007
	run getcap -n "$m/top-fcap"
	assert_output "$m/top-fcap cap_net_admin=ep [rootid=100000]"
	run diff <(view "$c") <(view "$m")
	assert_success
	run diff <(echo "$before") <(layers_manifest)
	assert_success
}

# in_userns CMD: run sh -c CMD as root of a user namespace with $MAP.
in_userns() {
	"$HELPERS/idmap-helper" userns --map "b:$MAP" -- sh -c "$1"
}

@test "copy-up from inside the user namespace lands in a plain new upper in host ids" {
	local m n
	src_overlay
	m=$(scratch m)
	n=$(scratch new)
	idmap_mount --fallback=reassemble --map "$MAP" --upper "$n/u" --work "$n/w" "$S" "$m"
	run in_userns "chown 5:6 '$m/file-1000' && chmod 4711 '$m/file-1000' &&
		echo more >>'$m/top-acl' && setfacl -m u:7:r '$m/top-acl' &&
		setcap cap_sys_time+ep '$m/dir/only' && echo new >'$m/by-root'"
	assert_success
	assert_equal "$(stat -c '%a %u:%g' "$n/u/file-1000")" "4711 100005:100006"
	assert_equal "$(owner "$n/u/by-root")" 100000:100000
	assert_equal "$(owner "$n/u/top-acl")" 102000:102000
	run getfacl -n -p --skip-base "$n/u/top-acl"
	assert_output --partial "user:100007:r--"
	assert_output --partial "user:101000:rw-"
	run getcap -n "$n/u/dir/only"
	assert_output "$n/u/dir/only cap_sys_time=ep [rootid=100000]"
	# The source layers as they were.
	assert_equal "$(owner "$FS_TREE/file-1000")" 1000:1000
	run getfacl -n -p --skip-base "$TOP/top-acl"
	refute_output --partial "user:7:"
}

@test "copy-up from inside the user namespace lands in a canonical upper in the container's ids" {
	local m n
	src_overlay
	m=$(scratch m)
	n=$(scratch new)
	idmap_mount --fallback=reassemble --canonical-upper --map "$MAP" --upper "$n/u" --work "$n/w" "$S" "$m"
	run in_userns "chown 5:6 '$m/file-1000' && chmod 4711 '$m/file-1000' &&
		echo more >>'$m/top-acl' && setfacl -m u:7:r '$m/top-acl' &&
		setcap cap_sys_time+ep '$m/dir/only' && echo new >'$m/by-root' &&
		stat -c '%u:%g' '$m/by-root' '$m/file-1000'"
	assert_success
	assert_output "0:0
5:6"
	assert_equal "$(stat -c '%a %u:%g' "$n/u/file-1000")" "4711 5:6"
	assert_equal "$(owner "$n/u/by-root")" 0:0
	assert_equal "$(owner "$n/u/top-acl")" 2000:2000
	run getfacl -n -p --skip-base "$n/u/top-acl"
	assert_output --partial "user:7:r--"
	assert_output --partial "user:1000:rw-"
	run getcap -n "$n/u/dir/only"
	assert_output "$n/u/dir/only cap_sys_time=ep"
	# Seen from the host through the new overlay: mapped as ever.
	assert_equal "$(owner "$m/file-1000")" 100005:100006
	run getcap -n "$m/dir/only"
	assert_output "$m/dir/only cap_sys_time=ep [rootid=100000]"
}
