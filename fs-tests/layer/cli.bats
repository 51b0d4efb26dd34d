#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-layer's command line: help, version, usage errors (exit 2), list.
# run-on: once

load ../lib/common
load lib

setup() {
	T=$(scratch t)
}

@test "--help prints usage on stdout and exits 0" {
	run "$SHIFT_LAYER" --help
	assert_success
	assert_line --index 0 "Usage:"
	assert_output --partial "unpack --flat"
	assert_output --partial "Exit status:"
}

@test "--version" {
	run "$SHIFT_LAYER" --version
	assert_success
	assert_output --regexp '^shift-layer from shiftkit [0-9]'
}

@test "usage errors exit 2 with a hint" {
	local args
	for args in "" "frobnicate x" "unpack x" "unpack --flat x" "unpack --store s" \
		"unpack --store s --flat x y" "unpack --store s --map 0:1000:1 x" \
		"mount --store s x y" "mount --map 0:100000:65536 x y" "list" \
		"unpack --flat --upper u x y" "--bogus" \
		"mount --flat --store s --map 0:100000:65536 x y" "list --map 0:100000:65536 x" \
		"list --store s x" "list --flat x" "mount --store s --map 0:100000:65536 --selinux-labels x y"; do
		# shellcheck disable=SC2086 # split on purpose
		run "$SHIFT_LAYER" $args
		[ "$status" -eq 2 ] || fail "'$args': exit $status, want 2: $output"
		assert_output --partial "Try 'shift-layer --help'"
	done
}

@test "a map giving away host root is refused unless allowed" {
	mkimage "$T/L" "$(spec s <<<"file a")"
	run "$SHIFT_LAYER" unpack --flat --map 0:0:65536 "$T/L" "$T/out"
	assert_failure 2
	assert_output --partial "invalid map"
	run "$SHIFT_LAYER" unpack --flat --map 0:0:65536 --allow-host-root "$T/L" "$T/out"
	assert_success
}

@test "list shows the layers bottom first" {
	mkimage "$T/L" --compress zstd "$(spec a <<<"file a")" "$(spec b <<<"file b")"
	run "$SHIFT_LAYER" list "$T/L"
	assert_success
	assert_line --index 0 --regexp '^image sha256:[0-9a-f]{64}$'
	assert_line --index 1 --regexp "^0 sha256:$(basename "$(layer_blob "$T/L" 0)") [0-9]+ application/vnd.oci.image.layer.v1.tar\+zstd$"
	assert_line --index 2 --partial "1 sha256:$(basename "$(layer_blob "$T/L" 1)")"
}

@test "a layout that is not one is refused with a reason" {
	mkdir "$T/notalayout"
	run "$SHIFT_LAYER" list "$T/notalayout"
	assert_failure 1
	assert_output --partial "not an OCI image layout"
	mkimage "$T/L" "$(spec a <<<"file a")"
	echo '{"imageLayoutVersion":"2.0.0"}' >"$T/L/oci-layout"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 3
	assert_output --partial "unsupported imageLayoutVersion"
}

@test "a tampered manifest is refused" {
	local md
	mkimage "$T/L" "$(spec a <<<"file a")"
	md=$(jq -r '.manifests[0].digest' "$T/L/index.json" | cut -d: -f2)
	sed -i 's/"schemaVersion":2/"schemaVersion":3/' "$T/L/blobs/sha256/$md"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 1
	assert_output --partial "'sha256:$md': digest mismatch"
}

@test "a descriptor whose size is wrong is refused" {
	mkimage "$T/L" "$(spec a <<<"file a")"
	jq -c '.manifests[0].size += 1' "$T/L/index.json" >"$T/i"
	cp "$T/i" "$T/L/index.json"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 1
	assert_output --partial "size differs from its descriptor"
}

@test "an unknown layer media type is refused (exit 3)" {
	local md nd
	mkimage "$T/L" "$(spec a <<<"file a")"
	md=$(jq -r '.manifests[0].digest' "$T/L/index.json" | cut -d: -f2)
	jq -c '.layers[0].mediaType = "application/x-squashfs"' "$T/L/blobs/sha256/$md" >"$T/m"
	nd=$(sha256sum "$T/m" | cut -d' ' -f1)
	cp "$T/m" "$T/L/blobs/sha256/$nd"
	jq -c --arg d "sha256:$nd" --argjson s "$(stat -c %s "$T/m")" \
		'.manifests[0].digest = $d | .manifests[0].size = $s' "$T/L/index.json" >"$T/i"
	cp "$T/i" "$T/L/index.json"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 3
	assert_output --partial "'application/x-squashfs': unsupported layer media type"
}

@test "a 0600 index.json (as umoci makes it) is read as root; another user is told why not" {
	mkimage "$T/L" "$(spec a <<<"file a")"
	chmod 0600 "$T/L/index.json"
	run "$SHIFT_LAYER" list "$T/L"
	assert_success
	run as_user 1000 1000 "$SHIFT_LAYER" list "$T/L"
	assert_failure 1
	assert_output --partial "'index.json': cannot read it: permission denied"
	rm "$T/L/oci-layout"
	run "$SHIFT_LAYER" list "$T/L"
	assert_failure 1
	assert_output --partial "'oci-layout': not an OCI image layout (missing)"
}

@test "unpack --dry-run lists the entries (escaped), checks them, writes nothing" {
	mkimage "$T/L" "$(spec a <<<"dir etc
file etc/passwd
symlink link etc/passwd")" "$(spec b <<<$'file etc/.wh.passwd\nfile odd\e]0;x\a')"
	run --separate-stderr "$SHIFT_LAYER" unpack --flat --dry-run --map 0:100000:65536 "$T/L" "$T/out"
	assert_success
	assert_line --index 0 "0 dir etc"
	assert_line --index 1 "0 file etc/passwd"
	assert_line --index 2 "0 symlink link"
	assert_line --index 3 "1 whiteout etc/.wh.passwd"
	assert_line --index 4 "1 file odd\\033]0;x\\007"
	assert_line --index 5 "dry run: 5 entries in 2 layers checked, nothing written"
	[ ! -e "$T/out" ] || fail "DEST made by a dry run"
	[ -z "$(compgen -G "$T/.out.shift-layer-*")" ] || fail "a temporary made by a dry run"
	run "$SHIFT_LAYER" unpack --store "$T/store" -n "$T/L"
	assert_success
	assert_output --partial "dry run: 2 of 2 layers would be unpacked into '$T/store'"
	[ ! -e "$T/store" ] || fail "the store made by a dry run"
}

@test "unpack --dry-run refuses what the unpack would refuse" {
	mkimage "$T/L" "$(spec a <<<"file ok 0 0 0644
file far 70000 0 0644")"
	run "$SHIFT_LAYER" unpack --flat -n --map 0:100000:65536 "$T/L" "$T/out"
	assert_failure 1
	assert_output --partial "'far': its uid has no image under the map: 70000 (dry run: nothing was written)"
	rm -rf "$T/L"
	mkimage "$T/L" --compress none "@$SRCDIR/fs-tests/layer/data/nil-uid.tar"
	run "$SHIFT_LAYER" unpack --flat -n "$T/L" "$T/out"
	assert_failure 1
	assert_output --partial "the file's data is shorter than the size its header declares"
	[ ! -e "$T/out" ] || fail "DEST made by a dry run"
}

@test "--json: unpack and list print one JSON document, errors inside it; --quiet prints nothing" {
	mkimage "$T/L" "$(spec a <<<"file a")" "$(spec b <<<"file b")"
	run --separate-stderr "$SHIFT_LAYER" unpack --store "$T/store" --json "$T/L"
	assert_success
	run jq -r '[.layers, .layers_unpacked, .entries, .dry_run] | join(" ")' <<<"$output"
	assert_output "2 2 2 false"
	run --separate-stderr "$SHIFT_LAYER" unpack --flat --json -n "$T/L" "$T/out"
	assert_success
	run jq -r '.entry_list | map(.type + " " + .path) | join(",")' <<<"$output"
	assert_output "file a,file b"
	run --separate-stderr "$SHIFT_LAYER" list --json "$T/L"
	assert_success
	run jq -r '.layers[1].media_type' <<<"$output"
	assert_output "application/vnd.oci.image.layer.v1.tar+gzip"
	run --separate-stderr "$SHIFT_LAYER" unpack --flat --json "$T/nothing" "$T/out"
	assert_failure 1
	run jq -r '[.error.action, .error.exit_status] | join(" ")' <<<"$output"
	assert_output "open image 1"
	run "$SHIFT_LAYER" unpack --store "$T/store2" -q "$T/L"
	assert_success
	assert_output ""
}

@test "unpack shows a progress line on a terminal, not with --quiet" {
	mkimage "$T/L" "$(spec a <<<"file a")" "$(spec b <<<"file b")"
	# script(1) gives the unpack a terminal.
	run script -qec "'$SHIFT_LAYER' unpack --flat '$T/L' '$T/out'" /dev/null
	assert_success
	assert_output --regexp "shift-layer: layer bytes [0-9]+ of [0-9]+ \([0-9]+%\)"
	run script -qec "'$SHIFT_LAYER' unpack --flat -q '$T/L' '$T/out2'" /dev/null
	assert_success
	refute_output --partial "layer bytes"
	[ -f "$T/out2/b" ] || fail "no unpack"
}
