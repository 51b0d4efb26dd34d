#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-layer gc: a layer is referenced by the image records the store
# keeps (STORE/images/HEX.json, written by unpack --store and mount), or,
# with --keep, by the images named; everything else goes, shifted copies
# with their layer.  --dry-run lists and removes nothing.
# run-on: once

load ../lib/common
load lib

setup() {
	T=$(scratch t)
	S=$T/store
	# A and B share their bottom layer; C has one of its own.
	mkimage "$T/A" "$(spec base <<<"file base")" "$(spec a <<<"file a")"
	mkimage "$T/B" "$(spec base <<<"file base")" "$(spec b <<<"file b")"
	mkimage "$T/C" "$(spec c <<<"file c")"
	for i in A B C; do
		run "$SHIFT_LAYER" unpack --store "$S" "$T/$i"
		assert_success
	done
	[ "$(ls "$S/layers/sha256" | wc -l)" = 4 ] || fail "store: $(ls "$S/layers/sha256")"
}

stored() {
	[ -d "$S/layers/sha256/$(basename "$(layer_blob "$T/$1" "$2")")" ]
}

@test "every stored layer is referenced by a recorded image: gc removes nothing" {
	run "$SHIFT_LAYER" gc --store "$S"
	assert_success
	assert_output "0 items removed"
	[ "$(ls "$S/images" | wc -l)" = 3 ] || fail "records: $(ls "$S/images")"
	run jq -r '.layers[]' "$S/images/$(jq -r '.manifests[0].digest' "$T/A/index.json" | cut -d: -f2).json"
	assert_output "$(jq -r '.layers[].digest' "$T/A/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/A/index.json" | cut -d: -f2)")"
}

@test "gc --keep: other images' records and their unshared layers go, shared ones stay" {
	run "$SHIFT_LAYER" gc --dry-run --json --store "$S" --keep "$T/A"
	assert_success
	run jq -r '[.dry_run, .count, ([.removed[].kind] | sort | join(","))] | join(" ")' <<<"$output"
	assert_output "true 4 image,image,layer,layer"
	[ "$(ls "$S/layers/sha256" | wc -l)" = 4 ] || fail "--dry-run removed layers"
	run "$SHIFT_LAYER" gc --store "$S" --keep "$T/A"
	assert_success
	assert_output --partial "removing layer $S/layers/sha256/$(basename "$(layer_blob "$T/C" 0)")"
	assert_output --partial "4 items removed"
	stored A 0 || fail "the shared layer went"
	stored A 1 || fail "A's layer went"
	! stored B 1 || fail "B's own layer stayed"
	! stored C 0 || fail "C's layer stayed"
	[ "$(ls "$S/images")" = "$(jq -r '.manifests[0].digest' "$T/A/index.json" | cut -d: -f2).json" ] ||
		fail "records: $(ls "$S/images")"
	assert_equal "$(ls -A "$S/tmp")" ""
	# A is still complete: a second unpack has nothing to do.
	run "$SHIFT_LAYER" unpack --store "$S" "$T/A"
	assert_success
	assert_output --partial "0 of 2 layers unpacked"
}

@test "gc removes a deleted record's layers and their shifted copies" {
	local m=$T/mnt k
	mkdir "$m"
	run "$SHIFT_LAYER" mount --copy --store "$S" --map 0:100000:65536 "$T/B" "$m"
	assert_success
	track_mount "$m"
	umount "$m"
	k=$(ls "$S/shifted")
	[ "$(ls "$S/shifted/$k/sha256" | wc -l)" = 2 ] || fail "shifted copies: $(ls "$S/shifted/$k/sha256")"
	rm "$S/images/$(jq -r '.manifests[0].digest' "$T/B/index.json" | cut -d: -f2).json"
	run "$SHIFT_LAYER" gc --store "$S"
	assert_success
	assert_output --partial "removing layer $S/layers/sha256/$(basename "$(layer_blob "$T/B" 1)")"
	assert_output --partial "removing shifted $S/shifted/$k/sha256/$(basename "$(layer_blob "$T/B" 1)")"
	assert_output --partial "2 items removed"
	! stored B 1 || fail "B's own layer stayed"
	stored B 0 || fail "the layer A shares went"
	assert_equal "$(ls "$S/shifted/$k/sha256")" "$(basename "$(layer_blob "$T/B" 0)")"
}

@test "gc refuses what isn't a store, a store without records, and an unreadable record" {
	mkdir "$T/notastore"
	run "$SHIFT_LAYER" gc "$T/notastore"
	assert_failure 1
	assert_output --partial "not a layer store"
	# A store made before records were kept: layers, no images/.
	mv "$S/images" "$T/images.away"
	run "$SHIFT_LAYER" gc "$S"
	assert_failure 1
	assert_output --partial "holds layers but no image records"
	mv "$T/images.away" "$S/images"
	echo '{"layers": ' >"$S/images/$(printf '%064d' 0).json"
	run "$SHIFT_LAYER" gc "$S"
	assert_failure 1
	assert_output --partial "unreadable image record (nothing removed"
	[ "$(ls "$S/layers/sha256" | wc -l)" = 4 ] || fail "layers removed"
}

@test "gc --json: one document, errors inside it" {
	run --separate-stderr "$SHIFT_LAYER" gc --json "$T/nothing-here"
	assert_failure 1
	run jq -r '.error.reason' <<<"$output"
	assert_success
	assert_output --partial "not a layer store"
	run --separate-stderr "$SHIFT_LAYER" gc --json --dry-run "$S"
	assert_success
	run jq -r '[.dry_run, .count, (.removed | length)] | join(" ")' <<<"$output"
	assert_output "true 0 0"
}

@test "gc waits for no unpack: a store in use (shared lock) is refused, nothing removed" {
	local fd
	rm "$S/images/$(jq -r '.manifests[0].digest' "$T/C/index.json" | cut -d: -f2).json"
	# As an unpack or mount holds it while it adds and uses layers.
	exec {fd}<"$S"
	flock -s -n "$fd" || fail "flock failed"
	run "$SHIFT_LAYER" gc "$S"
	exec {fd}<&-
	assert_failure 1
	assert_output --partial "the store is in use by an unpack or a mount"
	stored C 0 || fail "a layer was removed"
	run "$SHIFT_LAYER" gc "$S"
	assert_success
	! stored C 0 || fail "C's layer stayed"
}
