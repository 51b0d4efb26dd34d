#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-layer on the fixture image (images/oci.sh fixture, built by umoci)
# and on crafted layouts: the flat unpack against umoci, whiteouts in both
# forms, the store, the idmapped overlay and its copy fallback.
# run-on: once

load ../lib/common
load lib

MAP=b:0:2000000:1100000

setup_file() {
	fs_setup
	FIXTURE_OCI=$("$SRCDIR/images/oci.sh" fixture)
	export FIXTURE_OCI
}

setup() {
	T=$(scratch t)
}

@test "flat unpack without a map equals umoci unpack" {
	run "$SHIFT_LAYER" unpack --flat "$FIXTURE_OCI:fixture" "$T/ours"
	assert_success
	umoci unpack --image "$FIXTURE_OCI:fixture" "$T/umoci" >/dev/null 2>&1
	run diff <(listing "$T/umoci/rootfs") <(listing "$T/ours")
	assert_success
	# Spot checks of what the layers say.
	assert_equal "$(stat -c %u:%g "$T/ours/file-1000-1001")" 1000:1001
	[ ! -e "$T/ours/file-root" ] || fail "whiteout of file-root not applied"
	[ ! -e "$T/ours/deep" ] || fail "whiteout of deep not applied"
	[ ! -e "$T/ours/dir/file" ] || fail "dir/file survived"
	assert_equal "$(cat "$T/ours/dir/only-new")" new
	assert_equal "$(stat -c %h "$T/ours/hardlink-b")" 3
}

@test "flat unpack with a map equals umoci unpack with maps plus ACL and capability ids" {
	local a b n
	IFS=: read -r a b n <<<"${MAP#b:}"
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$FIXTURE_OCI:fixture" "$T/ours"
	assert_success
	# umoci's --uid-map is container:host:size, our A:B:N in the same order.
	umoci unpack --uid-map "$a:$b:$n" --gid-map "$a:$b:$n" \
		--image "$FIXTURE_OCI:fixture" "$T/umoci" >/dev/null 2>&1
	run diff <(listing "$T/umoci/rootfs") <(listing "$T/ours")
	# umoci leaves ACL qualifiers and capability root ids alone...
	assert_failure
	assert_output --partial "user:1000:"
	umoci_fixup "$T/umoci/rootfs" "$MAP"
	run diff <(listing "$T/umoci/rootfs") <(listing "$T/ours")
	assert_success
	assert_equal "$(stat -c %u:%g "$T/ours/file-1000-1001")" 2001000:2001001
	run getcap -n "$T/ours/cap-v2"
	assert_output --partial "rootid=2000000"
	run getfacl -n "$T/ours/srv-dir"
	assert_output --partial "default:user:2001000:rwx"
}

@test "flat unpack: whiteouts delete lower entries, opaque dirs hide them, same-layer entries stay" {
	mkimage "$T/L" "$(spec lower <<<"dir a 0 0 0755
file a/old1
dir a/sub
file a/sub/old2
file gone
dir gonedir 1000 1000 0700
file gonedir/x
file becomes-dir
dir becomes-file
file becomes-file/x
symlink link target")" "$(spec upper <<<"dir a 0 0 0750
file a/new-before
file a/.wh..wh..opq
file a/new-after
file .wh.gone
file .wh.gonedir
dir becomes-dir 1000 1000 0755
file becomes-file 0 0 0600
file .wh.link
file .wh.never-existed")"
	run "$SHIFT_LAYER" unpack --flat "$T/L" "$T/out"
	assert_success
	run bash -c "cd '$T/out' && find . | LC_ALL=C sort"
	assert_output "$(printf '%s\n' . ./a ./a/new-after ./a/new-before ./becomes-dir ./becomes-file)"
	assert_equal "$(stat -c %a "$T/out/a")" 750
	assert_equal "$(stat -c %F "$T/out/becomes-file")" "regular file"
}

@test "store: whiteouts become overlayfs whiteouts, opaque dirs an xattr" {
	local top
	mkimage "$T/L" "$(spec lower <<<"dir a
file a/old
file gone")" "$(spec upper <<<"dir a
file a/.wh..wh..opq
file a/new
file .wh.gone")"
	run "$SHIFT_LAYER" unpack --store "$T/S" "$T/L"
	assert_success
	assert_output --partial "2 of 2 layers"
	top=$T/S/layers/sha256/$(basename "$(layer_blob "$T/L" 1)")/rootfs
	assert_equal "$(stat -c '%F %t:%T %u:%g' "$top/gone")" "character special file 0:0 0:0"
	assert_equal "$(getfattr --only-values -n trusted.overlay.opaque "$top/a")" y
	[ ! -e "$top/a/.wh..wh..opq" ] || fail "the marker itself was extracted"
	[ -f "$top/../layer.json" ] || fail "no layer.json"
	run jq -r .digest "$top/../layer.json"
	assert_output "sha256:$(basename "$(layer_blob "$T/L" 1)")"
}

@test "store: a layer shared by two images is stored once" {
	local base
	base=$(spec base <<<"dir usr
file usr/lib")
	mkimage "$T/L" --tag one "$base" "$(spec one <<<"file one")"
	mkimage "$T/L" --tag two "$base" "$(spec two <<<"file two")"
	run "$SHIFT_LAYER" unpack --store "$T/S" "$T/L:one"
	assert_output --partial "2 of 2 layers"
	run "$SHIFT_LAYER" unpack --store "$T/S" "$T/L:two"
	assert_success
	assert_output --partial "1 of 2 layers"
	assert_equal "$(ls "$T/S/layers/sha256" | wc -l)" 3
	run "$SHIFT_LAYER" unpack --store "$T/S" "$T/L:two"
	assert_output --partial "0 of 2 layers"
}

@test "gzip, zstd and uncompressed layers give the same tree" {
	local c s
	s=$(spec s <<<"dir d 1000 1000 0750
file d/f 1000 1001 0640 data
big d/big 300000
symlink d/l f 1000 1000")
	for c in gzip zstd none; do
		mkimage "$T/$c" --compress "$c" "$s"
		run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$T/$c" "$T/out-$c"
		assert_success
	done
	run diff <(listing "$T/out-gzip") <(listing "$T/out-zstd")
	assert_success
	run diff <(listing "$T/out-gzip") <(listing "$T/out-none")
	assert_success
	assert_equal "$(stat -c %u:%g:%s "$T/out-zstd/d/big")" 2000000:2000000:300000
}

@test "ACLs in the tar's SCHILY.acl form and capabilities are shifted like shift-tree does" {
	mkimage "$T/L" "$(spec s <<<"dir d 0 0 0775
acl access user::rwx,user:1000:rwx,group::rwx,group:1001:r-x,mask::rwx,other::r-x
acl default user::rwx,user:0:rwx,group::r-x,mask::rwx,other::r-x
file ping 0 0 0755
xattr security.capability 0100000200200000000000000000000000000000")"
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$T/L" "$T/out"
	assert_success
	run getfacl -n "$T/out/d"
	assert_output --partial "user:2001000:rwx"
	assert_output --partial "group:2001001:r-x"
	assert_output --partial "default:user:2000000:rwx"
	run getcap -n "$T/out/ping"
	assert_output "$T/out/ping cap_net_raw=ep [rootid=2000000]"
}

@test "an image is picked by tag; without a tag the layout must hold one" {
	mkimage "$T/L" --tag a "$(spec a <<<"file a")"
	mkimage "$T/L" --tag b "$(spec b <<<"file b")"
	run "$SHIFT_LAYER" unpack --flat "$T/L:b" "$T/out"
	assert_success
	[ -f "$T/out/b" ] && [ ! -e "$T/out/a" ] || fail "wrong image"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 1
	assert_output --partial "several images (give IMAGE as LAYOUT:TAG)"
	run "$SHIFT_LAYER" list "$T/L:c"
	assert_failure 1
	assert_output --partial "'c': no image with this tag"
	run "$SHIFT_LAYER" list "$T/nothing"
	assert_failure 1
	assert_output --partial "Failed to open image"
}

@test "DEST must not exist or be empty" {
	mkimage "$T/L" "$(spec s <<<"file a")"
	mkdir "$T/out"
	run "$SHIFT_LAYER" unpack --flat "$T/L" "$T/out"
	assert_success
	run "$SHIFT_LAYER" unpack --flat "$T/L" "$T/out"
	assert_failure 1
	assert_output --partial "destination exists and is not an empty directory"
}

@test "mount: the idmapped overlay shows what the flat unpack made" {
	require_idmap
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$FIXTURE_OCI:fixture" "$T/flat"
	assert_success
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	assert_output --partial "idmapped layers"
	run diff <(listing "$T/flat") <(listing "$T/mnt")
	assert_success
	# The store stays canonical.
	assert_equal "$(stat -c %u:%g "$(echo "$T"/S/layers/sha256/*/rootfs/file-1000-1001)")" 1000:1001
	run findmnt -no FSTYPE "$T/mnt"
	assert_output overlay
}

@test "mount --upper: writes land in an upper dir owned by the map's root" {
	require_idmap
	mkdir "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --host-upper --upper "$T/up" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	assert_equal "$(stat -c %u:%g "$T/up/upper")" 2000000:2000000
	assert_equal "$(stat -c %u:%g "$T/up/work")" 2000000:2000000
	echo written >"$T/mnt/new-file"
	chown 2001000:2001000 "$T/mnt/new-file"
	chown 2001001:2001001 "$T/mnt/file-1000"
	assert_equal "$(stat -c %u:%g "$T/up/upper/new-file")" 2001000:2001000
	assert_equal "$(stat -c %u:%g "$T/up/upper/file-1000")" 2001001:2001001
	# The layer below is untouched.
	assert_equal "$(stat -c %u:%g "$(echo "$T"/S/layers/sha256/*/rootfs/file-1000)")" 1000:1000
}

@test "mount --copy: shifted copies show the same, and are reused" {
	local before
	run "$SHIFT_LAYER" unpack --flat --map "$MAP" "$FIXTURE_OCI:fixture" "$T/flat"
	mkdir "$T/mnt" "$T/mnt2"
	run "$SHIFT_LAYER" mount --copy --store "$T/S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	assert_output --partial "shifted copies"
	run diff <(listing "$T/flat") <(listing "$T/mnt")
	assert_success
	before=$(find "$T/S/shifted" -printf '%i %p\n' | sort)
	run "$SHIFT_LAYER" mount --copy --store "$T/S" --map "$MAP" --upper "$T/up" "$FIXTURE_OCI:fixture" "$T/mnt2"
	assert_success
	assert_equal "$(find "$T/S/shifted" -printf '%i %p\n' | sort)" "$before"
	assert_equal "$(stat -c %u:%g "$T/up/upper")" 2000000:2000000
}

@test "security.selinux from a layer is dropped unless --selinux-labels (flat only)" {
	local label
	# "system_u:object_r:bin_t:s0" and its NUL, as SELinux stores it.
	label=$(printf 'system_u:object_r:bin_t:s0\0' | od -An -tx1 | tr -d ' \n')
	mkimage "$T/L" "$(spec s <<<"file bin 0 0 0755
xattr security.selinux $label
xattr user.kept 6f6b")"
	# Where the filesystem takes the xattr at all (no SELinux: as plain data).
	touch "$T/probe"
	setfattr -n security.selinux -v x "$T/probe" 2>/dev/null ||
		skip "security.selinux can't be set on $T's filesystem"
	run "$SHIFT_LAYER" unpack --flat "$T/L" "$T/plain"
	assert_success
	run getfattr -n security.selinux --absolute-names "$T/plain/bin"
	assert_failure
	run getfattr -n user.kept --only-values --absolute-names "$T/plain/bin"
	assert_output ok
	run "$SHIFT_LAYER" unpack --store "$T/store" "$T/L"
	assert_success
	run getfattr -n security.selinux --absolute-names "$T"/store/layers/sha256/*/rootfs/bin
	assert_failure
	run "$SHIFT_LAYER" unpack --flat --selinux-labels "$T/L" "$T/labelled"
	assert_success
	run getfattr -n security.selinux --only-values --absolute-names "$T/labelled/bin"
	assert_success
	assert_output --partial "system_u:object_r:bin_t:s0"
	run "$SHIFT_LAYER" unpack --store "$T/store2" --selinux-labels "$T/L"
	assert_failure 2
	assert_output --partial "--selinux-labels only goes with unpack --flat"
}

@test "mount --json: one document saying how the image is mounted" {
	require_idmap
	mkdir "$T/mnt"
	run --separate-stderr "$SHIFT_LAYER" mount --json --store "$T/S" --map "$MAP" "$FIXTURE_OCI:fixture" "$T/mnt"
	assert_success
	run jq -r '[.target, .idmapped, .read_only] | join(" ")' <<<"$output"
	assert_output "$T/mnt true true"
	run --separate-stderr "$SHIFT_LAYER" mount --json --store "$T/S" --map "$MAP" "$FIXTURE_OCI:nope" "$T/mnt"
	assert_failure 1
	run jq -r '.error.action' <<<"$output"
	assert_output "open image"
}
