#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-probe's command line, kernel feature report and JSON shape.
# run-on: once

load ../lib/common

# one_doc: $output is exactly one JSON document (jq 1.6 -e passes on an
# empty input, so check this first).
one_doc() {
	run jq -s 'length' <<<"$output"
	assert_success
	assert_output 1
}

@test "--help prints the usage to stdout and exits 0" {
	run --separate-stderr "$SHIFT_PROBE" --help
	assert_success
	assert_output --partial "Usage:"
	assert_output --partial "--json"
	[ -z "$stderr" ]
}

@test "-r and -n are not --raw and --noheadings (they mean --recursive and --dry-run in every tool)" {
	run "$SHIFT_PROBE" -r --features-only
	assert_failure 2
	run "$SHIFT_PROBE" -n --features-only
	assert_failure 2
	run --separate-stderr "$SHIFT_PROBE" --raw --noheadings --features-only
	assert_success
}

@test "--version prints the version and exits 0" {
	run "$SHIFT_PROBE" --version
	assert_success
	assert_output --regexp '^shift-probe from shiftkit [0-9]'
}

@test "an unknown option exits 2 and points to --help" {
	run --separate-stderr "$SHIFT_PROBE" --no-such-option
	assert_failure 2
	[[ "$stderr" == *"Try 'shift-probe --help' for more information."* ]]
}

@test "a path that doesn't exist exits 1 naming it" {
	run "$SHIFT_PROBE" --mounts-only "$FS_TREE/no-such-path"
	assert_failure 1
	assert_output --partial "'$FS_TREE/no-such-path'"
}

@test "--json is one valid JSON object with the kernel features" {
	run "$SHIFT_PROBE" --json
	assert_success
	run jq -e 'type == "object" and (.features | type == "array") and
		(.mounts | type == "array")' <<<"$output"
	assert_success
}

@test "the kernel features this suite needs are reported available" {
	run "$SHIFT_PROBE" --json --features-only
	assert_success
	local f
	for f in mount-api mount-setattr idmap-tmpfs idmap-overlay-lower userns; do
		jq -e --arg f "$f" '.features[] | select(.name == $f) | .available == true' \
			<<<"$output" >/dev/null || fail "feature '$f' is not reported available"
	done
}

@test "--json: a PATH that can't be probed is in the document's error, the others are reported, exit 1" {
	local out
	run --separate-stderr "$SHIFT_PROBE" --json --mounts-only "$FS_TREE/no-such-path" /proc
	assert_failure 1
	out=$output
	one_doc
	run jq -e --arg p "$FS_TREE/no-such-path" '.error.exit_status == 1 and
		(.error.message | contains($p)) and
		(.mounts | map(select(.target == "/proc")) | length) == 1' <<<"$out"
	assert_success
}

@test "--json: usage errors are one JSON document too, exit 2" {
	local out
	run --separate-stderr "$SHIFT_PROBE" --json --no-such-option
	assert_failure 2
	out=$output
	one_doc
	run jq -e '.error.exit_status == 2 and (.error.message | contains("--no-such-option"))' <<<"$out"
	assert_success
	run --separate-stderr "$SHIFT_PROBE" -J --raw
	assert_failure 2
	out=$output
	one_doc
	run jq -e '.error.exit_status == 2 and (.error.message | contains("--raw"))' <<<"$out"
	assert_success
	run --separate-stderr "$SHIFT_PROBE" --json --features-only /
	assert_failure 2
	out=$output
	one_doc
	run jq -e '.error.exit_status == 2' <<<"$out"
	assert_success
}

@test "--json keys are snake_case" {
	local out
	run --separate-stderr "$SHIFT_PROBE" --json
	assert_success
	out=$output
	one_doc
	run jq -e '(.uidmap_tools | type == "array") and
		([paths | .[] | strings] | all(test("^[a-z0-9_]+$")))' <<<"$out"
	assert_success
}

@test "the delegation section names a malformed line of the caller's, per kind" {
	local d
	d=$(scratch subid)
	printf 'root:0100000:65536\n' >"$d/subuid"
	printf 'root:200000:65536\n' >"$d/subgid"
	SHIFT_SUBUID=$d/subuid SHIFT_SUBGID=$d/subgid \
		run "$SHIFT_PROBE" --json --features-only
	assert_success
	run jq -r '.delegation[] | "\(.kind) \(.start) \(.count) \(.detail)"' <<<"$output"
	assert_success
	assert_output "uid null null $d/subuid line 1: a number with a leading 0 (newuidmap may read it as octal) (newuidmap ignores it: no range)
gid 200000 65536 container gids 0-65535"
}
