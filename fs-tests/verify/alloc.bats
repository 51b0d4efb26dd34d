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

@test "short options mean what they mean in every tool: -n is --dry-run; -u, -s, -r are gone" {
	run --separate-stderr "$SHIFT_ALLOC" --state "$STATE" -n --user alice c1
	assert_success
	assert_output "b:0:100000:65536"
	[ ! -e "$STATE" ]
	# the old -n (--noheadings) with --list is refused, never taken silently
	run "$SHIFT_ALLOC" --state "$STATE" -n --list
	assert_failure 2
	for o in "-u alice" "-s 10" "-r"; do
		# shellcheck disable=SC2086
		run "$SHIFT_ALLOC" --state "$STATE" $o c1
		assert_failure 2
		assert_output --partial "Try 'shift-alloc --help'"
	done
	[ ! -e "$STATE" ]
	run "$SHIFT_ALLOC" --state "$STATE" --size 10 --user alice c1
	assert_success
	run "$SHIFT_ALLOC" --state "$STATE" --list --noheadings
	assert_success
	assert_output --partial "c1"
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

# state JSON: a state file with these allocations
state() {
	printf '{ "version": 1, "allocations": [ %s ] }\n' "$1" >"$STATE"
}

# refused_state MESSAGE: get, release and list all refuse the state,
# naming what is wrong, and leave it as it was
refused_state() {
	local before
	before=$(cat "$STATE")
	run "$SHIFT_ALLOC" --state "$STATE" --user alice new
	assert_failure 1
	assert_output "shift-alloc: Failed to read state file '$STATE': $1 (not a shift-alloc state as this version writes it: fix it, move it away or pass another --state)"
	run "$SHIFT_ALLOC" --state "$STATE" --list
	assert_failure 1
	assert_output "shift-alloc: Failed to read state file '$STATE': $1 (not a shift-alloc state as this version writes it)"
	run "$SHIFT_ALLOC" --state "$STATE" --release web
	assert_failure 1
	assert_output --partial "$1"
	[ "$(cat "$STATE")" = "$before" ]
}

@test "a corrupt state is refused, naming the allocation: past 2^32, host 0, overlaps, twice" {
	state '{ "container": "web", "user": "alice", "uid_start": 4294967000, "gid_start": 100000, "size": 65536 }'
	refused_state "allocation 1 ('web'): uid block 4294967000+65536 runs past the last id 4294967295"
	state '{ "container": "web", "user": "alice", "uid_start": 100000, "gid_start": 0, "size": 65536 }'
	refused_state "allocation 1 ('web'): gid block 0+65536 contains host id 0"
	state '{ "container": "web", "user": "alice", "uid_start": 100000, "gid_start": 100000, "size": 65536 },
	       { "container": "db", "user": "alice", "uid_start": 165535, "gid_start": 300000, "size": 65536 }'
	refused_state "allocations 1 ('web') and 2 ('db'): their uid blocks overlap"
	state '{ "container": "web", "user": "alice", "uid_start": 100000, "gid_start": 100000, "size": 65536 },
	       { "container": "web", "user": "alice", "uid_start": 300000, "gid_start": 300000, "size": 65536 }'
	refused_state "allocations 1 and 2: container 'web' twice"
	state '{ "container": "web", "user": "alice", "uid_start": 100000, "gid_start": 100000, "size": 65536, "sise": 1 }'
	refused_state 'allocation 1: unknown key "sise"'
}

@test "a state of another version is refused, never rewritten as version 1" {
	printf '{ "version": 2, "allocations": [], "pools": [] }\n' >"$STATE"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_failure 1
	assert_output --partial "version 2, but this shift-alloc reads version 1 only"
	run "$SHIFT_ALLOC" --state "$STATE" --list
	assert_failure 1
	[ "$(jq -c . "$STATE")" = '{"version":2,"allocations":[],"pools":[]}' ]
}

@test "a missing delegation file is named, not 'no range'" {
	export SHIFT_SUBUID=$A/nonexistent
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_failure 1
	assert_output "shift-alloc: Failed to allocate ids for 'c1': $A/nonexistent does not exist, so no user has a delegation (add one with usermod --add-subuids)"
}

@test "malformed delegation lines: the user's own is an error naming file and line, others' a warning" {
	printf 'bob:1:2:3\nalice:100000:6553600\ncarol:-5:10\n' >"$A/subuid"
	run --separate-stderr "$SHIFT_ALLOC" --state "$STATE" --user alice c1
	assert_success
	assert_output "b:0:100000:65536"
	[ "$stderr" = "shift-alloc: warning: $A/subuid: line 1: not NAME:START:COUNT (three fields): ignored (newuidmap ignores it too)
shift-alloc: warning: $A/subuid: line 3: START is not a number from 0 to 4294967295: ignored (newuidmap ignores it too)" ]
	printf 'alice:100000:6553600\r\n' >"$A/subgid"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c2
	assert_failure 1
	assert_line "shift-alloc: Failed to allocate ids for 'c2': $A/subgid: line 1: ends in CR (a DOS line end): the line of 'alice' is malformed, so it delegates nothing (newuidmap ignores it too): fix it"
	printf 'alice:100000:-65536\n' >"$A/subgid"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c2
	assert_failure 1
	assert_line --partial "$A/subgid: line 1: COUNT is not a number from 1 to 4294967295: the line of 'alice'"
	# older newuidmap reads 0100000 as octal: ambiguous, so refused
	printf '# comment\nalice:0100000:65536\n' >"$A/subgid"
	run "$SHIFT_ALLOC" --state "$STATE" --user alice c2
	assert_failure 1
	assert_line --partial "$A/subgid: line 2: a number with a leading 0 (newuidmap may read it as octal): the line of 'alice'"
}

@test "--dry-run shows the block, changes nothing; --json for every action, errors included" {
	run --separate-stderr "$SHIFT_ALLOC" --state "$STATE" --dry-run --user alice c1
	assert_success
	assert_output "b:0:100000:65536"
	[ "$stderr" = "shift-alloc: --dry-run: would allocate this block to 'c1'; nothing changed" ]
	# not even the lock file is created
	[ ! -e "$STATE" ] && [ ! -e "$STATE.lock" ]
	run "$SHIFT_ALLOC" --state "$STATE" --dry-run --json --user alice c1
	assert_success
	[ "$(jq -c '[.result, .dry_run, .uid_start, .map]' <<<"$output")" = '["would_allocate",true,100000,"b:0:100000:65536"]' ]
	"$SHIFT_ALLOC" --state "$STATE" --user alice c1 >/dev/null
	cp "$STATE" "$A/before"
	run "$SHIFT_ALLOC" --state "$STATE" --dry-run --release c1
	assert_success
	assert_output "would release b:0:100000:65536 of 'c1'; nothing changed"
	cmp "$STATE" "$A/before"
	run "$SHIFT_ALLOC" --state "$STATE" --json --release c1
	assert_success
	[ "$(jq -c '[.result, .container, .uid_start]' <<<"$output")" = '["released","c1",100000]' ]
	run --separate-stderr "$SHIFT_ALLOC" --state "$STATE" --json --release c1
	assert_failure 1
	[ "$(jq -r .result <<<"$output")" = error ]
	jq -r .error.message <<<"$output" | grep -q "it has no block"
	run "$SHIFT_ALLOC" --state "$STATE" --dry-run --list
	assert_failure 2
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
