#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A layer is untrusted: every hostile archive is refused with a message
# naming the entry, and nothing is left behind (no DEST, no temp dir, no
# half-stored layer, nothing written outside).
# run-on: once

load ../lib/common
load lib

setup() {
	T=$(scratch t)
	L=$T/layout
	OUT=$T/out
	OUTSIDE=$T/outside
	mkdir "$OUTSIDE"
	echo original >"$OUTSIDE/victim"
}

# refused: run shift-layer unpack --flat on $L, expect failure naming $1
# and the reason $2; nothing at $OUT, $OUTSIDE untouched.
refused() {
	run "$SHIFT_LAYER" unpack --flat "$@" "$L" "$OUT"
	assert_failure 1
	assert_nothing_left "$OUT"
	[ "$(cat "$OUTSIDE/victim")" = original ] || fail "outside file changed"
	[ "$(ls "$OUTSIDE")" = victim ] || fail "something appeared outside: $(ls "$OUTSIDE")"
}

@test "a '../' path is refused, naming the entry" {
	mkimage "$L" "$(spec s <<<"dir etc
file etc/ok
file ../outside/evil")"
	refused
	assert_output --partial "'../outside/evil': path contains '..'"
}

@test "a '..' in the middle of a path is refused" {
	mkimage "$L" "$(spec s <<<"dir a
file a/../../outside/evil")"
	refused
	assert_output --partial "'a/../../outside/evil'"
}

@test "an absolute path is refused" {
	mkimage "$L" "$(spec s <<<"file $OUTSIDE/evil")"
	refused
	assert_output --partial "'$OUTSIDE/evil': absolute path"
}

@test "a file through a symlink extracted earlier in the layer is refused" {
	mkimage "$L" "$(spec s <<<"symlink esc $OUTSIDE
file esc/victim 0 0 0644 pwned")"
	refused
	assert_output --partial "'esc/victim': path goes through a symbolic link"
}

@test "a relative symlink escape is refused too" {
	mkimage "$L" "$(spec s <<<"dir d
symlink d/up ../../outside
file d/up/evil")"
	refused
	assert_output --partial "'d/up/evil': path goes through a symbolic link"
}

@test "a file through a symlink from a lower layer is refused" {
	mkimage "$L" "$(spec lower <<<"symlink esc $OUTSIDE")" "$(spec upper <<<"file esc/victim 0 0 0644 pwned")"
	refused
	assert_output --partial "'esc/victim': path goes through a symbolic link"
}

@test "a directory entry through a symlink is refused" {
	mkimage "$L" "$(spec s <<<"symlink esc $OUTSIDE
dir esc/newdir")"
	refused
	assert_output --partial "'esc/newdir'"
}

@test "a hard link to a path outside the root is refused" {
	mkimage "$L" "$(spec s <<<"hardlink h ../outside/victim")"
	refused
	assert_output --partial "'h': hard link target outside the root"
}

@test "a hard link to an absolute path is refused" {
	mkimage "$L" "$(spec s <<<"hardlink h $OUTSIDE/victim")"
	refused
	assert_output --partial "'h': hard link target outside the root"
}

@test "a hard link through a symlink is refused" {
	mkimage "$L" "$(spec s <<<"symlink esc $OUTSIDE
hardlink h esc/victim")"
	refused
	assert_output --partial "'h': hard link target goes through a symbolic link"
	[ "$(stat -c %h "$OUTSIDE/victim")" = 1 ] || fail "the outside file got a link"
}

@test "a hard link to a missing target is refused" {
	mkimage "$L" "$(spec s <<<"hardlink h nothing-here")"
	refused
	assert_output --partial "'h': hard link target not found"
}

@test "a whiteout of '..' is refused" {
	mkimage "$L" "$(spec s <<<"dir a
file a/.wh...")"
	refused
	assert_output --partial "'a/.wh...': whiteout of an invalid name"
}

@test "a digest mismatch is refused" {
	local b
	mkimage "$L" --compress none "$(spec s <<<"file a 0 0 0644 hello")"
	b=$(layer_blob "$L" 0)
	# Same size, one byte changed in the file's content.
	sed -i 's/hello/jello/' "$b"
	refused
	assert_output --partial "digest mismatch"
	assert_output --partial "$(basename "$b")"
}

@test "a digest mismatch in a later layer leaves nothing of the earlier ones" {
	local b
	mkimage "$L" --compress gzip "$(spec a <<<"file a")" "$(spec b <<<"file b 0 0 0644 hello")"
	b=$(layer_blob "$L" 1)
	printf 'x' >>"$b"
	refused
	assert_output --partial "sha256:$(basename "$b")"
}

@test "a blob whose descriptor has the wrong digest is refused" {
	local b
	mkimage "$L" "$(spec s <<<"file a")"
	b=$(layer_blob "$L" 0)
	mv "$b" "${b%/*}/0000000000000000000000000000000000000000000000000000000000000000"
	cp "${b%/*}/0000000000000000000000000000000000000000000000000000000000000000" "$b"
	truncate -s -1 "$b"
	refused
	assert_output --partial "sha256:$(basename "$b")"
}

@test "a truncated tar is refused" {
	mkimage "$L" --compress none --truncate 1100 "$(spec s <<<"file a
big b 4096")"
	refused
	assert_output --partial "corrupt or truncated archive"
}

@test "a truncated gzip stream is refused" {
	local b
	mkimage "$L" --compress gzip "$(spec s <<<"big a 100000
big b 100000")"
	b=$(layer_blob "$L" 0)
	head -c "$(($(stat -c %s "$b") / 2))" "$b" >"$T/cut"
	replace_last_layer "$L" "$T/cut"
	refused
	assert_output --partial "corrupt or truncated archive"
}

@test "a plain file whose data ends before its declared size is refused, not zero-padded (Go's nil-uid.tar)" {
	# 14 bytes of data; libarchive 3.6 reads 2176 from the old GNU
	# realsize field.  Refused by both unpacks, nothing left.
	mkimage "$L" --compress none "@$SRCDIR/fs-tests/layer/data/nil-uid.tar"
	refused
	assert_output --partial "'P1050238.JPG.log': corrupt archive (the file's data is shorter than the size its header declares)"
	run "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	assert_failure 1
	assert_output --partial "'P1050238.JPG.log': corrupt archive (the file's data is shorter"
	[ ! -e "$T/store/layers/sha256" ] || [ -z "$(ls -A "$T/store/layers/sha256")" ] ||
		fail "a layer was stored: $(ls "$T/store/layers/sha256")"
	[ -z "$(ls -A "$T/store/tmp")" ] || fail "temp left: $(ls -A "$T/store/tmp")"
}

@test "a sparse file that ends in a hole keeps its declared size (Go's pax-nil-sparse-hole.tar)" {
	mkimage "$L" --compress none "@$SRCDIR/fs-tests/layer/data/pax-nil-sparse-hole.tar"
	run "$SHIFT_LAYER" unpack --flat "$L" "$OUT"
	assert_success
	assert_equal "$(stat -c %s "$OUT/sparse.db")" 1000
	cmp -s "$OUT/sparse.db" <(head -c 1000 /dev/zero) || fail "not 1000 zero bytes"
}

@test "garbage instead of a tar is refused" {
	head -c 4096 /dev/urandom >"$T/garbage"
	mkimage "$L" "$(spec s <<<"file a")"
	replace_last_layer "$L" "$T/garbage"
	refused
	assert_output --partial "sha256:"
}

@test "a device node is refused when unprivileged" {
	mkimage "$L" "$(spec s <<<"file ok
chr null 1 3 0 0 0666")"
	# A user namespace of our own: root there, but no CAP_MKNOD.
	run unshare --user --map-root-user "$SHIFT_LAYER" unpack --flat "$L" "$OUT"
	assert_failure 1
	assert_output --partial "'null': device node"
	assert_nothing_left "$OUT"
}

@test "device nodes are refused with --no-devices, also as root" {
	mkimage "$L" "$(spec s <<<"blk sda 8 0 0 0 0660")"
	refused --no-devices
	assert_output --partial "'sda': device nodes are not allowed"
}

@test "a 0/0 character device (an overlay whiteout) is refused as content" {
	mkimage "$L" "$(spec s <<<"chr wh 0 0")"
	refused
	assert_output --partial "'wh': a 0/0 character device is an overlay whiteout"
}

@test "an owner the map can't represent is refused" {
	mkimage "$L" "$(spec s <<<"file ok 0 0
file far 70000 0 0644")"
	refused --map 0:100000:65536
	assert_output --partial "'far': its uid has no image under the map"
}

@test "a group the map can't represent is refused" {
	mkimage "$L" "$(spec s <<<"dir d 0 65536 0755")"
	refused --map 0:100000:65536
	assert_output --partial "'d': its gid has no image under the map"
}

@test "an ACL qualifier the map can't represent is refused" {
	require_acl
	mkimage "$L" "$(spec s <<<"file a 0 0 0644
acl access user::rw-,user:70000:r--,group::r--,mask::r--,other::r--")"
	refused --map 0:100000:65536
	assert_output --partial "'a': an ACL entry's uid/gid has no image under the map: user:70000 in system.posix_acl_access"
}

@test "a file capability root id the map can't represent is refused" {
	# v3, cap_net_raw+ep, rootid 70000 (0x11170)
	mkimage "$L" "$(spec s <<<"file ping 0 0 0755
xattr security.capability 010000030020000000000000000000000000000070110100")"
	refused --map 0:100000:65536
	assert_output --partial "'ping': the file capability's root id has no image under the map: 70000"
}

@test "a huge uid is refused even without a map" {
	mkimage "$L" "$(spec s <<<"file a 4294967295 0 0644")"
	refused
	assert_output --partial "'a': its uid is not a valid id"
}

@test "overlay xattrs in a layer are dropped, not applied" {
	local s=$T/store d
	# trusted.overlay.redirect could point overlayfs anywhere.
	mkimage "$L" "$(spec s <<<"dir d 0 0 0755
xattr trusted.overlay.redirect 2f657463
xattr trusted.overlay.opaque 79
xattr user.keep 6f6b")"
	run "$SHIFT_LAYER" unpack --store "$s" "$L"
	assert_success
	d=$(echo "$s"/layers/sha256/*/rootfs/d)
	run getfattr -d -m - --absolute-names "$d"
	refute_output --partial trusted.overlay
	assert_output --partial 'user.keep="ok"'
}

@test "a refused layer leaves nothing in the store" {
	local s=$T/store
	mkimage "$L" "$(spec a <<<"file fine")" "$(spec b <<<"file ../evil")"
	run "$SHIFT_LAYER" unpack --store "$s" "$L"
	assert_failure 1
	assert_output --partial "'../evil'"
	# The good bottom layer is stored; the bad one left no trace.
	[ "$(ls "$s/layers/sha256" | wc -l)" = 1 ] || fail "store: $(ls "$s/layers/sha256")"
	[ -z "$(ls -A "$s/tmp")" ] || fail "temp left: $(ls -A "$s/tmp")"
}

@test "a mount of a bad image mounts nothing" {
	local s=$T/store m=$T/mnt
	mkdir "$m"
	mkimage "$L" "$(spec s <<<"file ../evil")"
	run "$SHIFT_LAYER" mount --store "$s" --map 0:100000:65536 "$L" "$m"
	assert_failure 1
	assert_output --partial "'../evil'"
	run findmnt "$m"
	assert_failure
}

# The config's rootfs.diff_ids name each layer's uncompressed tar stream;
# a blob that matches its manifest digest must match its diff_id too.

# A sha256 diff_id of nothing in the image.
BOGUS_DIFF=sha256:$(printf 'not this layer' | sha256sum | cut -d' ' -f1)

# The diff_id the config of $1 gives its layer $2.
config_diff_id() {
	local md cd
	md=$(jq -r '.manifests[0].digest' "$1/index.json" | cut -d: -f2)
	cd=$(jq -r '.config.digest' "$1/blobs/sha256/$md" | cut -d: -f2)
	jq -r ".rootfs.diff_ids[$2]" "$1/blobs/sha256/$cd"
}

@test "a gzip layer whose uncompressed tar doesn't match its diff_id is refused" {
	local b real
	mkimage "$L" --compress gzip --diff-id "$BOGUS_DIFF" "$(spec s <<<"file a 0 0 0644 hello")"
	b=$(layer_blob "$L" 0)
	real=sha256:$(gzip -dc "$b" | sha256sum | cut -d' ' -f1)
	# The blob itself is intact: only the config disagrees.
	[ "$(sha256sum "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || fail "blob digest"
	refused
	assert_output --partial "'sha256:$(basename "$b")': diff_id mismatch"
	assert_output --partial "hashes to $real"
	assert_output --partial "the config's diff_id is $BOGUS_DIFF"
	[ "${#lines[@]}" = 1 ] || fail "not one line: $output"
}

@test "an uncompressed layer's diff_id must be its blob digest" {
	local b
	mkimage "$L" --compress none --diff-id "$BOGUS_DIFF" "$(spec s <<<"file a 0 0 0644 hello")"
	b=$(layer_blob "$L" 0)
	refused
	assert_output --partial "'sha256:$(basename "$b")': diff_id mismatch: the uncompressed layer hashes to sha256:$(basename "$b"), the config's diff_id is $BOGUS_DIFF"
}

@test "a zstd layer with a wrong diff_id in a lower layer is refused" {
	local md cd d0 d1
	# Layer 0 of a two-layer image carries layer 1's diff_id.
	mkimage "$L" --compress zstd "$(spec a <<<"file a")" "$(spec b <<<"file b")"
	md=$(jq -r '.manifests[0].digest' "$L/index.json" | cut -d: -f2)
	cd=$(jq -r '.config.digest' "$L/blobs/sha256/$md" | cut -d: -f2)
	d1=$(config_diff_id "$L" 1)
	jq -c --arg d "$d1" '.rootfs.diff_ids[0] = $d' "$L/blobs/sha256/$cd" >"$T/c.json"
	d0=$(sha256sum "$T/c.json" | cut -d' ' -f1)
	cp "$T/c.json" "$L/blobs/sha256/$d0"
	jq -c --arg d "sha256:$d0" --argjson s "$(stat -c %s "$T/c.json")" \
		'.config.digest = $d | .config.size = $s' "$L/blobs/sha256/$md" >"$T/m.json"
	md=$(sha256sum "$T/m.json" | cut -d' ' -f1)
	cp "$T/m.json" "$L/blobs/sha256/$md"
	jq -c --arg d "sha256:$md" --argjson s "$(stat -c %s "$T/m.json")" \
		'.manifests[0].digest = $d | .manifests[0].size = $s' "$L/index.json" >"$T/i.json"
	mv "$T/i.json" "$L/index.json"
	refused
	assert_output --partial "'$(jq -r '.layers[0].digest' "$L/blobs/sha256/$md")': diff_id mismatch"
	assert_output --partial "the config's diff_id is $d1"
}

@test "bytes after the tar's end-of-archive blocks count for the diff_id" {
	local d
	mkimage "$T/plain" "$(spec s <<<"file a")"
	d=$(config_diff_id "$T/plain" 0)
	# Zero padding (as tar's blocking writes, but longer than what the tar
	# reader reads ahead), with the diff_id of the tar without it:
	# refused; with its own diff_id: fine.
	mkimage "$L" --pad 1048576 --diff-id "$d" "$(spec s <<<"file a")"
	refused
	assert_output --partial "diff_id mismatch"
	rm -rf "$L"
	mkimage "$L" --pad 1048576 "$(spec s <<<"file a")"
	run "$SHIFT_LAYER" unpack --flat "$L" "$OUT"
	assert_success
	[ -f "$OUT/a" ] || fail "a not unpacked"
}

@test "a diff_id of another algorithm is refused as unsupported" {
	mkimage "$L" --diff-id "sha512:$(printf x | sha512sum | cut -d' ' -f1)" "$(spec s <<<"file a")"
	run "$SHIFT_LAYER" unpack --flat "$L" "$OUT"
	assert_failure 3
	assert_nothing_left "$OUT"
	assert_output --partial "$(basename "$(layer_blob "$L" 0)")': the config's diff_id for this layer uses an unsupported algorithm (only sha256 is supported)"
	run "$SHIFT_LAYER" list "$L"
	assert_failure 3
}

@test "a malformed diff_id and a config without diff_ids are refused" {
	mkimage "$L" --diff-id "sha256:ABC" "$(spec s <<<"file a")"
	refused
	assert_output --partial "the config's diff_id for this layer is malformed"
	rm -rf "$L"
	mkimage "$L" --no-diff-ids "$(spec s <<<"file a")"
	refused
	assert_output --partial "config has no rootfs.diff_ids"
}

@test "a diff_id mismatch leaves nothing in the store" {
	local s=$T/store
	mkimage "$L" "$(spec a <<<"file fine")" "$(spec b <<<"file b")"
	rm -rf "$L"
	mkimage "$L" --diff-id "$BOGUS_DIFF" "$(spec a <<<"file fine")" "$(spec b <<<"file b")"
	run "$SHIFT_LAYER" unpack --store "$s" "$L"
	assert_failure 1
	assert_output --partial "'sha256:$(basename "$(layer_blob "$L" 1)")': diff_id mismatch"
	[ "$(ls "$s/layers/sha256")" = "$(basename "$(layer_blob "$L" 0)")" ] ||
		fail "store: $(ls "$s/layers/sha256")"
	[ -z "$(ls -A "$s/tmp")" ] || fail "temp left: $(ls -A "$s/tmp")"
	# A second run refuses again (nothing was taken as complete).
	run "$SHIFT_LAYER" unpack --store "$s" "$L"
	assert_failure 1
	assert_output --partial "diff_id mismatch"
}

@test "a stored layer doesn't vouch for another image's wrong diff_id" {
	local s=$T/store m=$T/mnt
	mkdir "$m"
	mkimage "$T/good" "$(spec a <<<"file a 0 0 0644 hello")"
	run "$SHIFT_LAYER" unpack --store "$s" "$T/good"
	assert_success
	# The same blob (gzip without a time stamp), another diff_id.
	mkimage "$L" --diff-id "$BOGUS_DIFF" "$(spec a <<<"file a 0 0 0644 hello")"
	[ "$(layer_blob "$L" 0 | xargs basename)" = "$(layer_blob "$T/good" 0 | xargs basename)" ] ||
		fail "not the same blob"
	run "$SHIFT_LAYER" unpack --store "$s" "$L"
	assert_failure 1
	assert_output --partial "diff_id mismatch"
	run "$SHIFT_LAYER" mount --store "$s" --map 0:100000:65536 "$L" "$m"
	assert_failure 1
	assert_output --partial "diff_id mismatch"
	run findmnt "$m"
	assert_failure
	# The good image is still served from the store.
	run "$SHIFT_LAYER" unpack --store "$s" "$T/good"
	assert_success
	assert_output --partial "0 of 1 layers unpacked"
}

# Both unpacks name the same entry, attribute and reason: the message up to
# the hint that differs between them ("(nothing was left ...)", "(the store
# holds ...)").
same_message_flat_store() {
	local flat store
	run "$SHIFT_LAYER" unpack --flat "$@" "$L" "$OUT"
	assert_failure 1
	flat=${output%% (nothing was left*}
	assert_nothing_left "$OUT"
	run "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	assert_failure 1
	store=${output%% (the store holds*}
	assert_equal "$store" "$flat"
	echo "$flat"
}

@test "an invalid POSIX ACL xattr names the attribute and the reason, the same in both unpacks" {
	require_acl
	# user::rw- user:1000:r-- group::r-- other::r--: a named entry, no mask.
	mkimage "$L" "$(spec s <<<"file a 0 0 0644
xattr system.posix_acl_access 0200000001000600ffffffff02000400e803000004000400ffffffff20000400ffffffff")"
	run same_message_flat_store
	assert_success
	assert_output --partial "'a': invalid POSIX ACL in system.posix_acl_access: no mask entry (required with named user or group entries)"
	run same_message_flat_store --map 0:100000:65536
	assert_success
	assert_output --partial "'a': invalid POSIX ACL in system.posix_acl_access: no mask entry"
}

@test "a named ACL entry without a numeric id is refused with that reason" {
	require_acl
	# user:4294967295 is no id (a name that tar couldn't resolve to one).
	mkimage "$L" "$(spec s <<<"dir d 0 0 0755
xattr system.posix_acl_default 0200000001000700ffffffff02000500ffffffff04000500ffffffff10000500ffffffff20000500ffffffff")"
	run same_message_flat_store
	assert_success
	assert_output --partial "'d': invalid POSIX ACL in system.posix_acl_default: a named user or group entry without a numeric id"
}

@test "uid 2^32-1 is 'not a valid id' in both unpacks, with or without a map" {
	mkimage "$L" "$(spec s <<<"file a 4294967295 0 0644")"
	run same_message_flat_store
	assert_success
	assert_output --partial "'a': its uid is not a valid id: 4294967295"
	run same_message_flat_store --map 0:100000:65536
	assert_success
	assert_output --partial "'a': its uid is not a valid id: 4294967295"
}

@test "an unmappable owner names the id" {
	mkimage "$L" "$(spec s <<<"file far 0 70000 0644")"
	refused --map 0:100000:65536
	assert_output --partial "'far': its gid has no image under the map: 70000"
}

@test "entry names with control characters are printed escaped" {
	mkimage "$L" "$(spec s <<<$'file evil\e[31m\r/../x')"
	refused
	assert_output --partial "'evil\\033[31m\\015/../x': path contains '..'"
	[[ "$output" != *$'\e'* ]] || fail "a raw escape character reached the terminal"
}

@test "an xattr the kernel refuses is named, with the reason" {
	# A v2 capability cut short (16 bytes): the kernel says EINVAL.
	mkimage "$L" "$(spec s <<<"file f 0 0 0755
xattr security.capability 00000002002000000000000000000000")"
	run same_message_flat_store
	assert_success
	assert_output --partial "'f': cannot set the extended attribute security.capability: Invalid argument"
}
