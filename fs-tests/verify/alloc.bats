#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-alloc: blocks of host ids from a user's delegation; concurrent
# callers never get overlapping blocks; idempotent; host 0 never handed out.
#
# run-on: once

load ../lib/common

setup() {
	[ -x "$SHIFT_ALLOC" ] || fail "'$SHIFT_ALLOC' is not built"
	A=$(scratch alloc)
	STATE=$A/alloc.json
	printf 'alice:100000:6553600\nroot:0:131072\n' >"$A/subuid"
	printf 'alice:100000:6553600\nroot:0:131072\n' >"$A/subgid"
	export SHIFT_SUBUID=$A/subuid SHIFT_SUBGID=$A/subgid
}

@test "shift-alloc --help, --version and usage errors" {
	run "$SHIFT_ALLOC" --help
	assert_success
	assert_output --partial "Usage:"
	run "$SHIFT_ALLOC" --version
	assert_success
	assert_output --regexp "^shift-alloc from shiftkit "
	run "$SHIFT_ALLOC" --bogus
	assert_failure 2
	assert_output --partial "Try 'shift-alloc --help'"
	run "$SHIFT_ALLOC" --state "$STATE"
	assert_failure 2
	assert_output --partial "no CONTAINER given"
	run "$SHIFT_ALLOC" --state "$STATE" --size 0 c1
	assert_failure 2
	run "$SHIFT_ALLOC" --state "$STATE" --list c1
	assert_failure 2
	run "$SHIFT_ALLOC" --state "$STATE" --list --release
	assert_failure 2
}

@test "a block is printed as a map, and the same name gets the same block" {
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_success
	assert_output "b:0:100000:65536"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c2
	assert_output "b:0:165536:65536"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_success
	assert_output "b:0:100000:65536"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice --size 1000 c1
	assert_failure 1
	assert_output --partial "already has a block"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice --json c3
	assert_success
	[ "$(jq -r .uid_start <<<"$output")" = 231072 ]
	[ "$(jq -r .map <<<"$output")" = "b:0:231072:65536" ]
}

@test "host uid 0 is never handed out" {
	run "$SHIFT_ALLOC" --state "$STATE" --user root r1
	assert_success
	assert_output "b:0:65536:65536"
	run "$SHIFT_ALLOC" --state "$STATE" --user root r2
	assert_failure 1
	assert_output --partial "no free block of 65536 ids left"
}

@test "a user without a delegation, a corrupt state file" {
	run "$SHIFT_ALLOC" --state "$STATE" --user nobody-at-all c1
	assert_failure 1
	assert_output --partial "user 'nobody-at-all' has no range in"
	echo garbage >"$STATE"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_failure 1
	assert_output --partial "not a shift-alloc state"
}

@test "50 parallel allocations are distinct and never overlap, then all are released" {
	local i pids=()
	for i in $(seq 1 50); do
		"$SHIFT_ALLOC" --state "$STATE" --user alice "c$i" >"$A/out.$i" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	# 50 different maps, each a 65536-aligned block of alice's range
	run sh -c "cat '$A'/out.* | sort -u | wc -l"
	assert_output 50
	run "$SHIFT_ALLOC" --state "$STATE" --list --json
	assert_success
	[ "$(jq '.allocations | length' <<<"$output")" = 50 ]
	# no two blocks overlap (sorted by start, each ends before the next)
	jq -r '.allocations[] | "\(.uid_start) \(.size)"' <<<"$output" | sort -n |
		awk 'NR > 1 && $1 < end { bad = 1 } { end = $1 + $2 }
		     ($1 - 100000) % 65536 != 0 { bad = 1 } END { exit bad }'
	jq -r '.allocations[] | "\(.gid_start) \(.size)"' <<<"$output" | sort -n |
		awk 'NR > 1 && $1 < end { bad = 1 } { end = $1 + $2 } END { exit bad }'
	for i in $(seq 1 50); do
		"$SHIFT_ALLOC" --state "$STATE" --release "c$i" &
	done
	wait
	run "$SHIFT_ALLOC" --state "$STATE" --list --noheadings
	assert_success
	assert_output ""
	run "$SHIFT_ALLOC" --state "$STATE" --release c1
	assert_failure 1
	assert_output --partial "has no block"
}

@test "--list shows a table" {
	"$SHIFT_ALLOC" --state "$STATE" --user alice web
	run "$SHIFT_ALLOC" --state "$STATE" --list
	assert_success
	assert_line --index 0 --regexp "^CONTAINER +USER +UID_START +GID_START +SIZE +MAP"
	assert_line --index 1 --regexp "^web +alice +100000 +100000 +65536 +b:0:100000:65536"
}
