#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hard links and the in-place shift on overlayfs.  overlayfs (index=off,
# the default) breaks the link of a lower-layer file when one name is
# copied up -- the first chown does that -- but keeps reporting one st_ino
# for every name: each name must end up shifted all the same, while links
# made in the upper layer stay one inode, shifted once.  Run by shift-tree
# and by shift-mount --fallback=shift.  The layers live on the filesystem
# under test (in a scratch dir on the root filesystem when it is read-only;
# the fixture itself is a lower layer there).
# (docs/shift-engine.md, "Hard links on overlayfs")
# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr

load ../lib/common
load lib

MAP=0:100000:65536
# Overlapping ranges: an inode shifted twice shows it (0 -> 1000 -> 2000).
OVERLAP=0:1000:65536

teardown() {
	fs_test_teardown
	rm -rf --one-file-system "$FS_MNT"/ovl-links-"$BATS_TEST_NUMBER"-* \
		"$FS_MNT/plain-links-$BATS_TEST_NUMBER" 2>/dev/null || true
}

# layers NAME: a fresh directory for overlay layers, on the filesystem
# under test when it is writable.
layers() {
	local d

	if [ "$FS_RO" = 0 ]; then
		d=$FS_MNT/ovl-links-$BATS_TEST_NUMBER-$1
		mkdir "$d"
		echo "$d"
	else
		scratch "$1"
	fi
}

# ovl_mount L M: mount the overlay of L/lower, L/upper, L/work at M.
ovl_mount() {
	mount -t overlay overlay \
		-o "lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work" "$2"
}

# make_overlay: L (layers) with an empty upper, the lower to be filled by
# the caller, and M, a scratch mount point; mount with ovl_mount "$L" "$M".
make_overlay() {
	L=$(layers "${1:-l}")
	mkdir "$L/lower" "$L/upper" "$L/work"
	M=$(scratch "m${1:-}")
}

# lower_links DIR: a pair (a, b: 0:0 4755, an ACL) and a triple across
# directories (x, d1/y, d2/deep/z: 1000:1000 2755, a capability), and a
# single file p.
lower_links() {
	local d=$1

	mkdir -p "$d/d1" "$d/d2/deep"
	echo pair >"$d/a"
	setfacl -m u:1000:rw,g:1001:r "$d/a"
	chmod 4755 "$d/a"
	ln "$d/a" "$d/b"
	echo triple >"$d/x"
	chown 1000:1000 "$d/x"
	chmod 2755 "$d/x"
	setcap cap_net_raw+ep "$d/x"
	ln "$d/x" "$d/d1/y"
	ln "$d/x" "$d/d2/deep/z"
	echo single >"$d/p"
	chown 1000:1000 "$d/p"
}

# check_lower_links DIR: lower_links shifted by $MAP, on every name.
check_lower_links() {
	local d=$1 f

	for f in a b; do
		assert_equal "$f $(stat -c '%u:%g %a' "$d/$f")" "$f 100000:100000 4755"
		assert_equal "$(cat "$d/$f")" pair
		run getfacl -cnpE "$d/$f"
		assert_line "user:101000:rw-"
		assert_line "group:101001:r--"
	done
	for f in x d1/y d2/deep/z; do
		assert_equal "$f $(stat -c '%u:%g %a' "$d/$f")" "$f 101000:101000 2755"
		assert_equal "$(cat "$d/$f")" triple
		run getcap -n "$d/$f"
		assert_output "$d/$f cap_net_raw=ep [rootid=100000]"
	done
	assert_equal "$(owner "$d/p")" 101000:101000
	assert_equal "$(owner "$d/d2/deep")" 100000:100000
}

@test "lower-layer hard links: every name shifted, with its ACL, capability and setid bits" {
	local engine
	for engine in sync auto; do
		make_overlay "$engine"
		lower_links "$L/lower"
		ovl_mount "$L" "$M"
		run --separate-stderr "$SHIFT_TREE" --json --engine="$engine" --map "$MAP" "$M"
		assert_success
		assert_equal "$stderr" ''
		# root, d1, d2, deep, p, and each of the 5 names: an inode of
		# its own once its link is broken
		assert_equal "$(jq .inodes <<<"$output") $(jq .changed <<<"$output")" "10 10"
		assert_equal "$(jq .hardlinks <<<"$output")" 0
		check_lower_links "$M"
		# on disk: every name was copied up, shifted; and so after a
		# fresh mount, without overlayfs's caches
		check_lower_links "$L/upper"
		umount "$M"
		ovl_mount "$L" "$M"
		check_lower_links "$M"
		# the lower layer is untouched
		assert_equal "$(owner "$L/lower/d2/deep/z")" 1000:1000
		assert_equal "$(stat -c %h "$L/lower/a")" 2
		umount "$M"
	done
}

@test "links made in the upper layer are one inode, shifted once; mixed lower/upper links too" {
	local map id f
	for map in "$OVERLAP" "$MAP"; do
		id=$(mapped 0 "$map")
		make_overlay "${map%%:*}-${id}"
		echo lower >"$L/lower/g"
		ln "$L/lower/g" "$L/lower/g2"
		echo f >"$L/lower/f"
		ovl_mount "$L" "$M"
		# a new file with three names, in two directories
		echo new >"$M/n"
		setfacl -m u:0:r "$M/n"
		mkdir "$M/sub"
		ln "$M/n" "$M/n2"
		ln "$M/n" "$M/sub/n3"
		# a lower file linked through the overlay: copied up, linked
		ln "$M/f" "$M/sub/f2"
		# a lower link pair, one name linked again through the
		# overlay: g and g3 are one upper inode, g2 the lower one
		ln "$M/g" "$M/sub/g3"
		run --separate-stderr "$SHIFT_TREE" --json --map "$map" "$M"
		assert_success
		assert_equal "$stderr" ''
		# root, sub, n, f, g, g2; n2, n3, f2, g3 are further links
		assert_equal "$(jq -c '[.inodes, .hardlinks, .unmapped]' <<<"$output")" "[6,4,0]"
		for f in n n2 sub/n3 f sub/f2 g g2 sub/g3; do
			assert_equal "$f $(owner "$M/$f")" "$f $id:$id"
		done
		run getfacl -cnpE "$M/sub/n3"
		assert_line "user:$id:r--"
		assert_equal "$(stat -c '%h %i' "$M/n2")" "3 $(stat -c %i "$M/n")"
		assert_equal "$(stat -c %h "$M/sub/f2")" 2
		assert_equal "$(cat "$M/g2")" lower
		# no intent record of the run is left on any name
		run getfattr -h -d -m 'shiftkit\.inode' "$M/n" "$M/n2" \
			"$M/sub/n3" "$M/f" "$M/sub/f2" "$M/g" "$M/g2" "$M/sub/g3"
		assert_output ''
		umount "$M"
		ovl_mount "$L" "$M"
		for f in n sub/n3 sub/f2 g g2 sub/g3; do
			assert_equal "$f $(owner "$M/$f")" "$f $id:$id"
		done
		umount "$M"
	done
}

@test "links outside the shifted directory: reported when they share the inode, not when a copy-up broke them" {
	make_overlay
	mkdir "$L/lower/sub" "$L/lower/other"
	echo x >"$L/lower/sub/x"
	ln "$L/lower/sub/x" "$L/lower/other/x"
	ovl_mount "$L" "$M"
	echo u >"$M/sub/u"
	ln "$M/sub/u" "$M/other/u"
	run --separate-stderr "$SHIFT_TREE" --map "$MAP" --unmapped=keep "$M/sub"
	assert_success
	assert_equal "$stderr" "shift-tree: 'u' has 1 hard link(s) outside the tree: they show the new owner too"
	assert_equal "$(owner "$M/other/u")" 100000:100000
	assert_equal "$(owner "$M/sub/x")" 100000:100000
	assert_equal "$(owner "$M/other/x")" 0:0
}

@test "shift-mount --fallback=shift shifts every name of a lower-layer hard link" {
	local t
	make_overlay
	lower_links "$L/lower"
	ovl_mount "$L" "$M"
	t=$(scratch t)
	idmap_mount --map "$MAP" --fallback=shift "$M" "$t"
	check_lower_links "$t"
	check_lower_links "$M"
	# the same again finds it done and mounts again
	sk_umount_under "$t"
	idmap_mount --map "$MAP" --fallback=shift "$M" "$t"
	check_lower_links "$t"
}

@test "a re-run on the shifted overlay changes nothing" {
	local before
	make_overlay
	lower_links "$L/lower"
	ln "$L/lower/p" "$L/lower/d1/p2"
	chown 0:0 "$L/lower/p"
	ovl_mount "$L" "$M"
	run "$SHIFT_TREE" --map "$OVERLAP" "$M"
	assert_success
	assert_equal "$(owner "$M/d1/p2")" 1000:1000
	assert_equal "$(owner "$M/d2/deep/z")" 2000:2000
	before=$(snapshot "$M")
	run "$SHIFT_TREE" --map "$OVERLAP" "$M"
	assert_success
	assert_output --partial 'already shifted'
	assert_equal "$(snapshot "$M")" "$before"
	# and after a fresh mount
	umount "$M"
	ovl_mount "$L" "$M"
	run "$SHIFT_TREE" --map "$OVERLAP" "$M"
	assert_success
	assert_output --partial 'already shifted'
	assert_equal "$(snapshot "$M")" "$before"
	assert_equal "$(owner "$M/p")" 1000:1000
	assert_equal "$(owner "$M/b")" 1000:1000
}

@test "the fixture as the lower layer: its 3-name hard link shifted on every name" {
	local f
	L=$(scratch l)
	M=$(scratch m)
	mkdir "$L/upper" "$L/work"
	# upper and lower on different filesystems: xino=on gives every
	# inode the overlay's st_dev (else the walk sees other mounts)
	mount -t overlay overlay \
		-o "lowerdir=$FS_TREE,upperdir=$L/upper,workdir=$L/work,xino=on" "$M"
	[ "$(stat -c %h "$M/hardlink-a")" = 3 ]
	run "$SHIFT_TREE" --map "$MAP" --unmapped=keep "$M"
	assert_success
	refute_output --partial 'outside'
	for f in hardlink-a hardlink-b hardlink-c; do
		assert_equal "$f $(owner "$M/$f")" "$f 101001:101001"
		assert_equal "$f $(owner "$L/upper/$f")" "$f 101001:101001"
	done
	assert_equal "$(owner "$FS_TREE/hardlink-b")" 1001:1001
}

@test "plain filesystem: a hard link across directories is shifted once" {
	require_writable
	local d=$FS_MNT/plain-links-$BATS_TEST_NUMBER f
	mkdir -p "$d/d1" "$d/d2/deep"
	echo x >"$d/f"
	setfacl -m u:0:r "$d/f"
	ln "$d/f" "$d/d1/f"
	ln "$d/f" "$d/d2/deep/f"
	run --separate-stderr "$SHIFT_TREE" --json --map "$OVERLAP" "$d"
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$(jq '.inodes, .hardlinks' <<<"$output" | tr '\n' ' ')" "5 2 "
	for f in f d1/f d2/deep/f; do
		assert_equal "$f $(stat -c '%u:%g %h' "$d/$f")" "$f 1000:1000 3"
	done
	run getfacl -cnpE "$d/d2/deep/f"
	assert_line "user:1000:r--"
}

@test "layers on different filesystems, xino=off: every file shifted, none taken for another mount" {
	local up
	make_overlay
	lower_links "$L/lower"
	up=$(scratch up)
	mount -t tmpfs -o mode=0755 tmpfs "$up"
	mkdir "$up/upper" "$up/work"
	mount -t overlay overlay -o "lowerdir=$L/lower,upperdir=$up/upper,workdir=$up/work,xino=off" "$M"
	# the case itself: a file shows its layer's st_dev, not the overlay's
	[ "$(stat -c %d "$M/p")" != "$(stat -c %d "$M")" ]
	run --separate-stderr "$SHIFT_TREE" --json --map "$MAP" "$M"
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$(jq -c '[.inodes, .mountpoints]' <<<"$output")" "[10,0]"
	check_lower_links "$M"
	# a file made in the upper layer (st_dev of the tmpfs) too
	echo new >"$M/new"
	chown 100500:100500 "$M/new"
	run "$SHIFT_TREE" --reverse --map "$MAP" "$M"
	assert_success
	assert_equal "$(owner "$M/p") $(owner "$M/new")" "1000:1000 500:500"
}
