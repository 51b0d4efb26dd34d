#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --json (one JSON document on stdout, snake_case, errors in
# it), --dry-run (says which path would be taken and what would change,
# changes nothing), --quiet and the progress line of --fallback=shift|copy.
# run-on: once

load ../lib/common

MAP=b:0:100000:65536

# make_overlay: an overlayfs (which can't be idmapped) over a lower dir
# with files owned by 0 and 1000; sets OVL and D.
make_overlay() {
	D=$(scratch o)
	mkdir "$D/lower" "$D/upper" "$D/work" "$D/ovl"
	touch "$D/lower/file-root" "$D/lower/file-1000"
	chown 1000:1000 "$D/lower/file-1000"
	mount -t overlay overlay \
		-o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work" "$D/ovl"
	OVL=$D/ovl
}

# one_doc: $output is exactly one JSON document.
one_doc() {
	run jq -s 'length' <<<"$output"
	assert_success
	assert_output 1
}

@test "--json: an idmapped mount is one document naming source, target, map and method" {
	require_idmap
	local t out
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --json --map "$MAP" "$FS_TREE" "$t"
	assert_success
	[ -z "$stderr" ]
	out=$output
	one_doc
	run jq -e --arg s "$FS_TREE" --arg t "$t" '.source == $s and .target == $t and
		.map == "b:0:100000:65536" and .mode == "bind" and .method == "idmapped" and
		.mounted == true and .dry_run == false and .already_shifted == false and
		(has("error") | not)' <<<"$out"
	assert_success
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}

@test "--json: --fallback=shift reports the path taken and the engine's counts" {
	local t out
	make_overlay
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --json --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_success
	out=$output
	one_doc
	run jq -e '.method == "fallback_shift" and .mounted == true and
		.shift.changed >= 3 and .shift.unmapped == 0' <<<"$out"
	assert_success
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}

@test "--json: a failure is inside the document, with the exit status" {
	local t out
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --json --map "$MAP" "$t/no-such-dir" "$t"
	assert_failure 1
	out=$output
	one_doc
	run jq -e --arg p "$t/no-such-dir" '.mounted == false and .error.exit_status == 1 and
		(.error.message | contains($p)) and (.error.messages | length) == 1' <<<"$out"
	assert_success
}

@test "--json: each file with an unmapped id is in the error's messages" {
	local t out
	make_overlay
	t=$(scratch t)
	touch "$OVL/file-70000"
	chown 70000:70000 "$OVL/file-70000"
	run --separate-stderr "$SHIFT_MOUNT" --json --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_failure 1
	out=$output
	one_doc
	run jq -e '.mounted == false and .error.exit_status == 1 and
		.shift.unmapped == 2 and
		([.error.messages[] | select(contains("file-70000"))] | length) == 2' <<<"$out"
	assert_success
}

@test "--json: usage errors and bad maps are documents too (exit 2)" {
	local t out
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --json --no-such-option
	assert_failure 2
	out=$output
	one_doc
	run jq -e '.error.exit_status == 2 and (.error.message | contains("--no-such-option"))' <<<"$out"
	assert_success
	run --separate-stderr "$SHIFT_MOUNT" --json --map 0:0:1 "$t" "$t"
	assert_failure 2
	out=$output
	one_doc
	run jq -e '.error.exit_status == 2 and (.error.message | contains("--allow-host-root"))' <<<"$out"
	assert_success
	# --help is still the text
	run --separate-stderr "$SHIFT_MOUNT" --json --help
	assert_success
	assert_output --partial "Usage:"
}

@test "--dry-run: the idmapped path says what it would mount and mounts nothing" {
	require_idmap
	local t
	t=$(scratch t)
	run --separate-stderr "$SHIFT_MOUNT" --dry-run --map "$MAP" "$FS_TREE" "$t"
	assert_success
	assert_output --partial "would mount '$FS_TREE' at '$t' idmapped with map '$MAP'"
	run mountpoint -q "$t"
	assert_failure
	run --separate-stderr "$SHIFT_MOUNT" -n -q --map "$MAP" "$FS_TREE" "$t"
	assert_success
	assert_output ""
}

@test "--dry-run --fallback=shift counts what would change and changes nothing" {
	local t before out
	make_overlay
	t=$(scratch t)
	before=$(manifest "$OVL")
	run --separate-stderr "$SHIFT_MOUNT" --dry-run --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_success
	assert_output --partial "would shift in place '$OVL' with map '$MAP': 3 inodes, 3 would change"
	assert_output --partial "would bind-mount '$OVL' at '$t' without idmap"
	assert_equal "$(manifest "$OVL")" "$before"
	run getfattr -d -m - "$OVL"
	refute_output --partial shiftkit.shift
	run mountpoint -q "$t"
	assert_failure
	run --separate-stderr "$SHIFT_MOUNT" --json --dry-run --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_success
	out=$output
	one_doc
	run jq -e '.dry_run == true and .mounted == false and .method == "fallback_shift" and
		.shift.changed == 3' <<<"$out"
	assert_success
}

@test "--dry-run --fallback=shift with an unmapped id fails naming it, changes nothing" {
	local t before
	make_overlay
	t=$(scratch t)
	touch "$OVL/file-70000"
	chown 70000:70000 "$OVL/file-70000"
	before=$(manifest "$OVL")
	run "$SHIFT_MOUNT" --dry-run --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_failure 1
	assert_output --partial "file-70000"
	assert_equal "$(manifest "$OVL")" "$before"
}

@test "--dry-run --fallback=copy creates no copy directory" {
	local t c before
	make_overlay
	t=$(scratch t)
	c=$(scratch c)/copy
	before=$(manifest "$OVL")
	run --separate-stderr "$SHIFT_MOUNT" --dry-run --fallback=copy --copy-dir "$c" --map "$MAP" "$OVL" "$t"
	assert_success
	assert_output --partial "would copy '$OVL' into '$c'"
	assert_output --partial "3 would change"
	assert_output --partial "would bind-mount the copy '$c' at '$t' without idmap"
	[ ! -e "$c" ]
	# an empty --copy-dir that exists: the same, and it stays empty
	mkdir "$c"
	run --separate-stderr "$SHIFT_MOUNT" --dry-run --fallback=copy --copy-dir "$c" --map "$MAP" "$OVL" "$t"
	assert_success
	assert_output --partial "would bind-mount the copy '$c' at '$t' without idmap"
	assert_equal "$(ls -A "$c")" ""
	assert_equal "$(manifest "$OVL")" "$before"
	run mountpoint -q "$t"
	assert_failure
}

@test "--fallback=shift shows a progress line on a terminal, none with --quiet" {
	local t
	make_overlay
	t=$(scratch t)
	run script -qec "'$SHIFT_MOUNT' --fallback=shift --map $MAP '$OVL' '$t'" /dev/null
	assert_success
	assert_output --partial "shift-mount: inodes"
	sk_umount_under "$t"
	run script -qec "'$SHIFT_MOUNT' -q --fallback=shift --map $MAP '$OVL' '$t'" /dev/null
	assert_success
	refute_output --partial "inodes"
	# not on a pipe
	sk_umount_under "$t"
	run --separate-stderr "$SHIFT_MOUNT" --fallback=shift --map "$MAP" "$OVL" "$t"
	assert_success
	[ -z "$stderr" ]
}

@test "--fallback=copy on a terminal says what it copies, then counts the shift" {
	local t c
	make_overlay
	t=$(scratch t)
	c=$(scratch c)/copy
	run script -qec "'$SHIFT_MOUNT' --fallback=copy --copy-dir '$c' --map $MAP '$OVL' '$t'" /dev/null
	assert_success
	assert_output --partial "shift-mount: copying '$OVL' into '$c'"
	assert_output --partial "shift-mount: inodes"
	assert_equal "$(owner "$t/file-1000")" 101000:101000
}
