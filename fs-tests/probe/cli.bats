#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-probe's command line, kernel feature report and JSON shape.
# run-on: once

load ../lib/common

@test "--help prints the usage to stdout and exits 0" {
	run --separate-stderr "$SHIFT_PROBE" --help
	assert_success
	assert_output --partial "Usage:"
	assert_output --partial "--json"
	[ -z "$stderr" ]
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
