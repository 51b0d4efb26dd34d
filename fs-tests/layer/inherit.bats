#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the kernel hands a new inode from its parent (a default ACL becomes
# the child's access and default ACL; a setgid directory gives its group
# and, to subdirectories, its setgid bit; the umask trims the mode) must
# not reach the unpacked tree: every entry ends as the archive says, in the
# store, in the store's recorded manifest and in a flat unpack, on each
# writable filesystem.
# run-on: ext4 xfs btrfs tmpfs

load ../lib/common
load lib

setup() {
	require_writable
	T=$(scratch t)
	W=$FS_MNT/inherit-t$BATS_TEST_NUMBER
	mkdir "$W"
}

teardown() {
	fs_test_teardown
	rm -rf --one-file-system "$W"
}

# no_extended_acl PATH...: getfacl shows only the base entries.
no_extended_acl() {
	local p out
	for p in "$@"; do
		out=$(getfacl -cnpP --skip-base "$p" 2>&1) ||
			fail "getfacl '$p': $out"
		[ -z "$out" ] || fail "'$p' has an ACL the image doesn't give it: $out"
	done
}

# unpack_both LAYOUT: store unpack (prints the layer's rootfs in $R) and
# flat unpack into $W/flat; both must succeed.
unpack_both() {
	run "$SHIFT_LAYER" unpack --store "$W/store" "$1"
	assert_success
	R=$(echo "$W"/store/layers/sha256/*/rootfs)
	[ -d "$R" ] || fail "no stored layer"
	run "$SHIFT_LAYER" unpack --flat "$1" "$W/flat"
	assert_success
}

@test "a directory's default ACL is not inherited by the entries the layer puts below it" {
	require_acl
	# opt/app/ has a default ACL u:1001:rx; nothing below it has an ACL
	# (made with setfacl -d after the files, as umoci repack records it).
	mkimage "$T/L" "$(spec s <<<"dir opt 0 0 0755
dir opt/app 0 0 0755
acl default user::rwx,user:1001:r-x,group::r-x,mask::r-x,other::r-x
file opt/app/f1 0 0 0644
file opt/app/f2 1000 1000 0600
dir opt/app/sub 0 0 0750
file opt/app/sub/f3 0 0 0640
fifo opt/app/pipe 0 0 0644
file opt/app/implied/f4 0 0 0644")"
	unpack_both "$T/L"
	for d in "$R" "$W/flat"; do
		no_extended_acl "$d"/opt/app/{f1,f2,sub,sub/f3,pipe,implied,implied/f4}
		assert_equal "$(stat -c %a "$d/opt/app/f1")" 644
		assert_equal "$(stat -c %a "$d/opt/app/f2")" 600
		assert_equal "$(stat -c %a "$d/opt/app/sub")" 750
		assert_equal "$(stat -c %a "$d/opt/app/pipe")" 644
		assert_equal "$(stat -c %a "$d/opt/app/implied")" 755
		# The directory itself keeps its own default ACL.
		run getfacl -cn "$d/opt/app"
		assert_output --partial "default:user:1001:r-x"
	done
	# The manifest recorded with the stored layer says the same.
	run grep -c "user:1001:" "$(dirname "$R")/manifest"
	assert_output 1
}

@test "an upper layer's entries don't inherit a lower layer's default ACL (flat)" {
	require_acl
	mkimage "$T/L" "$(spec lower <<<"dir srv 0 0 0755
acl default user::rwx,user:1001:rwx,group::r-x,mask::rwx,other::r-x")" \
		"$(spec upper <<<"file srv/f 0 0 0644
dir srv/d 0 0 0755")"
	run "$SHIFT_LAYER" unpack --flat --map b:0:100000:65536 "$T/L" "$W/flat"
	assert_success
	no_extended_acl "$W/flat/srv/f" "$W/flat/srv/d"
	run getfacl -cn "$W/flat/srv"
	assert_output --partial "default:user:101001:rwx"
}

@test "a setgid directory gives neither its group nor its setgid bit to the layer's entries" {
	# umask 077 must not trim what the image (or the implied 0755) says.
	mkimage "$T/L" "$(spec s <<<"dir s 0 1000 02775
file s/f 0 0 0644
dir s/d 0 0 0755
file s/x/y/f2 0 0 0644
symlink s/l target 0 0")"
	umask 077
	unpack_both "$T/L"
	for d in "$R" "$W/flat"; do
		assert_equal "$(stat -c '%a %u:%g' "$d/s")" "2775 0:1000"
		assert_equal "$(stat -c '%a %u:%g' "$d/s/f")" "644 0:0"
		assert_equal "$(stat -c '%a %u:%g' "$d/s/d")" "755 0:0"
		assert_equal "$(stat -c '%a %u:%g' "$d/s/x")" "755 0:0"
		assert_equal "$(stat -c '%a %u:%g' "$d/s/x/y")" "755 0:0"
		assert_equal "$(stat -c '%u:%g' "$d/s/l")" "0:0"
	done
}

@test "a directory an upper layer lists again has only that layer's xattrs (flat), as the overlay shows" {
	require_acl
	mkimage "$T/L" "$(spec lower <<<"dir ./ 0 0 0755
xattr user.root-lower 31
dir d 0 0 0755
xattr user.lower 31
acl access user::rwx,user:1001:rwx,group::r-x,mask::rwx,other::r-x")" \
		"$(spec upper <<<"dir ./ 0 0 0755
dir d 1000 1000 0750
xattr user.upper 32")"
	run "$SHIFT_LAYER" unpack --flat "$T/L" "$W/flat"
	assert_success
	run getfattr -d -m - --absolute-names "$W/flat/d"
	assert_output --partial 'user.upper="2"'
	refute_output --partial user.lower
	refute_output --partial posix_acl
	run getfattr -d -m - --absolute-names "$W/flat"
	refute_output --partial user.root-lower
	assert_equal "$(stat -c '%a %u:%g' "$W/flat/d")" "750 1000:1000"
}
