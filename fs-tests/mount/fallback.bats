#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --fallback=none|shift|copy on a SOURCE that can't be idmapped
# (an overlayfs mount): none exits 3, shift changes the source in place and
# bind-mounts it, copy shifts a copy in --copy-dir and bind-mounts that.
# (Without --fallback an overlayfs SOURCE is re-assembled: reassemble.bats.)
# The overlay lives in scratch dirs, so the filesystem under test is irrelevant.
# run-on: once

load ../lib/common

MAP=0:100000:65536

# make_overlay: an overlayfs at $d/ovl over a lower dir holding files owned
# by 0 and 1000 (an ACL, a file capability, a hard link, a fifo, a symlink);
# sets OVL and D.
make_overlay() {
	D=$(scratch o)
	mkdir "$D/lower" "$D/upper" "$D/work" "$D/ovl"
	echo root >"$D/lower/file-root"
	echo user >"$D/lower/file-1000"
	chown 1000:1000 "$D/lower/file-1000"
	mkdir "$D/lower/dir-1000"
	chown 1000:1000 "$D/lower/dir-1000"
	ln -s file-1000 "$D/lower/symlink"
	mkfifo "$D/lower/fifo"
	setfacl -m u:1000:rw "$D/lower/file-root"
	setcap cap_net_raw+ep "$D/lower/file-1000"
	setfattr -n trusted.shiftkit-test -v kept "$D/lower/file-root"
	touch -h -d @1700000000 "$D/lower/file-root" "$D/lower/file-1000"
	mount -t overlay overlay \
		-o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work" "$D/ovl"
	OVL=$D/ovl
}

@test "--fallback=none exits 3 naming every fallback; without --fallback the live overlay is not shifted or copied" {
	local t before
	make_overlay
	t=$(scratch t)
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=none "$OVL" "$t"
	assert_failure 3
	assert_output --partial "'$OVL'"
	assert_output --partial "--fallback=reassemble"
	assert_output --partial "--fallback=shift"
	assert_output --partial "--fallback=copy"
	run mountpoint -q "$t"
	assert_failure
	# No --fallback: an overlayfs SOURCE is re-assembled by default, and
	# one with a live upper layer is refused (exit 1) without -R or
	# --upper/--work; never shifted or copied instead.
	before=$(manifest "$D/lower")
	run "$SHIFT_MOUNT" --map "$MAP" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "it is live with a writable layer ('$D/upper')"
	run mountpoint -q "$t"
	assert_failure
	assert_equal "$(owner "$D/lower/file-1000")" 1000:1000
	run diff <(echo "$before") <(manifest "$D/lower")
	assert_success
}

@test "--fallback=copy needs --copy-dir, --copy-dir needs copy, --force needs shift" {
	local t
	make_overlay
	t=$(scratch t)
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy "$OVL" "$t"
	assert_failure 2
	assert_output --partial "--copy-dir"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=none --copy-dir "$t" "$OVL" "$t"
	assert_failure 2
	run "$SHIFT_MOUNT" --map "$MAP" --copy-dir "$t" "$D/lower" "$t"
	assert_failure 2
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$D/c" --force "$OVL" "$t"
	assert_failure 2
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift --tmpfs "$t"
	assert_failure 2
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=copy mounts a shifted copy and leaves the overlay unchanged" {
	local t c before
	make_overlay
	t=$(scratch t)
	c=$(scratch c)/copy
	ln "$OVL/file-root" "$OVL/hardlink"
	before=$(manifest "$OVL")
	idmap_mount --map "$MAP" --fallback=copy --copy-dir "$c" "$OVL" "$t"
	assert_equal "$(owner "$t/file-root")" 100000:100000
	assert_equal "$(owner "$t/file-1000")" 101000:101000
	assert_equal "$(owner "$t/dir-1000")" 101000:101000
	assert_equal "$(owner "$t/symlink")" 100000:100000
	assert_equal "$(owner "$t/fifo")" 100000:100000
	assert_equal "$(owner "$t")" 100000:100000
	[ -p "$t/fifo" ]
	assert_equal "$(readlink "$t/symlink")" file-1000
	assert_equal "$(cat "$t/file-1000")" user
	assert_equal "$(stat -c %Y "$t/file-root")" 1700000000
	assert_equal "$(stat -c %i "$t/hardlink")" "$(stat -c %i "$t/file-root")"
	run getfacl -cn "$t/file-root"
	assert_line "user:101000:rw-"
	run getcap -n "$t/file-1000"
	assert_output "$t/file-1000 cap_net_raw=ep [rootid=100000]"
	assert_equal "$(getfattr --only-values -n trusted.shiftkit-test "$t/file-root")" kept
	# a plain bind mount of the copy, not an idmapped one
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$t")" "$(findmnt -no FSTYPE -T "$c")"
	[[ "$(mount_opts "$t")" != *idmapped* ]]
	assert_equal "$(owner "$c/file-1000")" 101000:101000
	assert_equal "$(manifest "$OVL")" "$before"
	assert_equal "$(owner "$OVL/file-1000")" 1000:1000
}

@test "--fallback=copy reuses the shifted copy of the same map, refuses another map" {
	local t t2 t3 c
	make_overlay
	t=$(scratch t)
	t2=$(scratch t2)
	t3=$(scratch t3)
	c=$(scratch c)/copy
	idmap_mount --map "$MAP" --fallback=copy --copy-dir "$c" "$OVL" "$t"
	echo mine >"$c/only-in-copy"
	idmap_mount --map "$MAP" --fallback=copy --copy-dir "$c" "$OVL" "$t2"
	assert_equal "$(cat "$t2/only-in-copy")" mine
	assert_equal "$(owner "$t2/file-1000")" 101000:101000
	run "$SHIFT_MOUNT" --map 0:200000:65536 --fallback=copy --copy-dir "$c" "$OVL" "$t3"
	assert_failure 1
	assert_output --partial "'$c'"
	run mountpoint -q "$t3"
	assert_failure
	assert_equal "$(owner "$c/file-1000")" 101000:101000
}

@test "--fallback=copy refuses a non-empty --copy-dir without a shifted copy" {
	local t c
	make_overlay
	t=$(scratch t)
	c=$(scratch c)
	touch "$c/stray"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$c" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "'$c'"
	assert_output --partial "not empty"
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=copy --read-only mounts the copy read-only" {
	local t c
	make_overlay
	t=$(scratch t)
	c=$(scratch c)/copy
	idmap_mount --map "$MAP" --fallback=copy --copy-dir "$c" --read-only "$OVL" "$t"
	run touch "$t/new"
	assert_failure
	assert_output --partial "Read-only file system"
}

@test "--fallback=shift shifts the overlay in place and bind-mounts it" {
	local t
	make_overlay
	t=$(scratch t)
	idmap_mount --map "$MAP" --fallback=shift "$OVL" "$t"
	assert_equal "$(owner "$OVL/file-root")" 100000:100000
	assert_equal "$(owner "$OVL/file-1000")" 101000:101000
	assert_equal "$(owner "$OVL/dir-1000")" 101000:101000
	assert_equal "$(owner "$t/file-root")" 100000:100000
	assert_equal "$(owner "$t/file-1000")" 101000:101000
	assert_equal "$(stat -c %i "$t/file-1000")" "$(stat -c %i "$OVL/file-1000")"
	run getcap -n "$t/file-1000"
	assert_output "$t/file-1000 cap_net_raw=ep [rootid=100000]"
	[[ "$(mount_opts "$t")" != *idmapped* ]]
	# a second run with the same map finds it done and mounts again
	sk_umount_under "$t"
	idmap_mount --map "$MAP" --fallback=shift "$OVL" "$t"
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}

@test "--fallback=shift refuses a shared layer unless --force" {
	local t name line
	make_overlay
	t=$(scratch t)
	for name in trusted.shiftkit.shared user.shiftkit.shared; do
		setfattr -n "$name" -v 1 "$OVL"
		run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift "$OVL" "$t"
		assert_failure 1
		assert_output --partial "'$OVL'"
		assert_output --partial "$name"
		assert_output --partial "--force"
		assert_equal "$(owner "$OVL/file-1000")" 1000:1000
		run mountpoint -q "$t"
		assert_failure
		setfattr -x "$name" "$OVL"
	done
	setfattr -n user.shiftkit.shared -v 1 "$OVL"
	idmap_mount --map "$MAP" --fallback=shift --force "$OVL" "$t"
	assert_equal "$(owner "$OVL/file-1000")" 101000:101000
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}

@test "--fallback=shift with an id outside the map fails naming it, mounts nothing" {
	local t
	make_overlay
	t=$(scratch t)
	touch "$OVL/file-70000"
	chown 70000:70000 "$OVL/file-70000"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift "$OVL" "$t"
	assert_failure 1
	assert_output --partial "file-70000"
	assert_output --partial "70000 has no image"
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=shift on a filesystem that can be idmapped makes an idmapped mount, shifts nothing" {
	require_idmap
	local t before
	t=$(scratch t)
	before=$(manifest "$FS_TREE")
	idmap_mount --map "$MAP" --fallback=shift "$FS_TREE" "$t"
	assert_equal "$(owner "$t/file-1000")" 101000:101000
	[[ "$(mount_opts "$t")" == *idmapped* ]]
	assert_equal "$(manifest "$FS_TREE")" "$before"
}

@test "--fallback=shift: a mount below SOURCE is left out, and refused with --recursive" {
	local t
	make_overlay
	t=$(scratch t)
	mount -t tmpfs -o mode=0755 fallback-sub "$OVL/dir-1000"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift --recursive "$OVL" "$t"
	assert_failure 1
	assert_output --partial "'$OVL/dir-1000'"
	assert_output --partial "--recursive"
	run mountpoint -q "$t"
	assert_failure
	idmap_mount --map "$MAP" --fallback=shift "$OVL" "$t"
	assert_equal "$(owner "$t/file-1000")" 101000:101000
	assert_equal "$(owner "$OVL/dir-1000")" 0:0
	run mountpoint -q "$t/dir-1000"
	assert_failure
}

@test "kernel filesystems (proc, sysfs) exit 3 with no fallback hint, and no fallback touches them" {
	local t c
	t=$(scratch t)
	c=$(scratch c)/copy
	run "$SHIFT_MOUNT" --map "$MAP" /proc "$t"
	assert_failure 3
	assert_output --partial "'proc'"
	refute_output --partial "--fallback"
	run "$SHIFT_MOUNT" --map "$MAP" /sys "$t"
	assert_failure 3
	refute_output --partial "--fallback="
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift /proc "$t"
	assert_failure 3
	assert_output --partial "kernel filesystem"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift /sys "$t"
	assert_failure 3
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$c" /sys "$t"
	assert_failure 3
	assert_output --partial "'sysfs'"
	[ ! -e "$c" ]
	run getfattr -d -m - /sys
	refute_output --partial shiftkit
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=shift on a filesystem without xattrs exits 3 (not supported), as shift-tree does" {
	local t d
	t=$(scratch t)
	d=$(scratch r)
	# ramfs: no idmapped mounts and no xattrs, so the shift can't record
	# itself
	mount -t ramfs -o mode=0755 fallback-ramfs "$d"
	touch "$d/f"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift "$d" "$t"
	assert_failure 3
	assert_output --partial "'$d'"
	assert_output --partial "extended attributes"
	assert_equal "$(owner "$d/f")" 0:0
	run mountpoint -q "$t"
	assert_failure
}

@test "untrusted file names are escaped in messages (no raw newlines or escape sequences)" {
	local t name
	make_overlay
	t=$(scratch t)
	name=$'evil\n\033[31mforged: line'
	touch "$OVL/$name"
	chown 70000:70000 "$OVL/$name"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=shift "$OVL" "$t"
	assert_failure 1
	assert_output --partial "'$OVL/evil\\n\\033[31mforged: line': uid 70000 has no image"
	refute_output --partial $'\033'
	# every line is one of shift-mount's: none forged by the name
	assert_equal "${#lines[@]}" 3
	for line in "${lines[@]}"; do
		[[ "$line" == "shift-mount: "* ]] || fail "forged line: $line"
	done
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=copy: a copy that failed half-way leaves nothing behind (no half copy, no marker of the source), so it is never taken for a shifted copy" {
	local t c
	make_overlay
	t=$(scratch t)
	c=$(scratch c)
	head -c 2000000 /dev/urandom >"$OVL/big"
	# the source carries the engine's marker of a shift undone since
	"$SHIFT_TREE" -q --map "$MAP" "$OVL"
	"$SHIFT_TREE" -q --reverse --map "$MAP" "$OVL"
	run getfattr -n trusted.shiftkit.shift "$OVL"
	assert_success
	# too small for the copy: it fails half-way
	mount -t tmpfs -o size=1m,mode=0755 fallback-small "$c"
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$c/copy" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "Failed to copy '$OVL' into '$c/copy': cannot copy 'big': No space left on device"
	run getfattr -d -m shiftkit.shift "$c/copy"
	refute_output --partial shiftkit.shift
	# nothing of the half copy is left, next to it either
	assert_equal "$(ls -A "$c/copy")" ""
	assert_equal "$(ls -A "$c")" copy
	# the next run copies afresh (and fails the same way): never mounts
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$c/copy" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "No space left on device"
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=copy refuses a --copy-dir inside SOURCE (the copy would copy itself), mounts nothing" {
	local t
	make_overlay
	t=$(scratch t)
	run "$SHIFT_MOUNT" --map "$MAP" --fallback=copy --copy-dir "$OVL/copy" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "Failed to copy '$OVL' into '$OVL/copy': the copy would lie inside the source"
	assert_equal "$(ls -A "$OVL/copy")" ""
	run mountpoint -q "$t"
	assert_failure
}
