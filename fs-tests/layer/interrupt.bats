#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An interrupted unpack: SIGINT, SIGTERM and SIGHUP make it remove what it
# made and die of the signal; after a SIGKILL its temporary stays, and the
# next unpack for the same destination (or store), or gc, removes it.  A
# temporary a running unpack holds is never taken.
# run-on: once

load ../lib/common
load lib

setup() {
	T=$(scratch t)
	L=$T/layout
	# Enough entries that a kill lands in the middle of the extraction.
	{
		echo "dir d"
		for ((i = 0; i < 1000; i++)); do echo "file d/f$i"; done
	} >"$T/spec"
	mkimage "$L" "$T/spec"
}

# kill_mid SIGNUM CMD...: run CMD and send it SIGNUM halfway through its
# work, by CPU time (helpers/cpukill: independent of the machine's speed),
# closer to the start each time it ended first; succeeds once it died of
# the signal.  CMD must leave nothing behind when it runs to the end.
kill_mid() {
	local sig=$1 full noop want i u s TIMEFORMAT='%3U %3S'
	shift
	read -r u s < <({ time "$@" >/dev/null 2>&1; } 2>&1)
	full=$(cpu_of "$u" "$s")
	rm -rf "$T/out" "$T/store"
	noop=$(least_cpu_ns 3 "$SHIFT_LAYER" list "$L")
	want=$(((noop + full) / 2))
	for ((i = 0; i < 6; i++)); do
		if "$HELPERS/cpukill" -s "$sig" "$want" "$@" >/dev/null 2>"$T/err"; then
			return 0
		fi
		rm -rf "$T/out" "$T/store"
		want=$(((noop + want) / 2))
	done
	fail "no signal $sig reached a running unpack (full run ${full}ns, start-up ${noop}ns)"
}

temps_beside() {
	compgen -G "$T/.out.shift-layer-*" || true
}

@test "a flat unpack killed by SIGKILL leaves its temporary; the next unpack removes it" {
	kill_mid 9 "$SHIFT_LAYER" unpack --flat "$L" "$T/out"
	[ -n "$(temps_beside)" ] || fail "no temporary after a SIGKILL: the kill didn't land mid-unpack"
	[ ! -e "$T/out" ] || fail "DEST exists after a killed unpack"
	run "$SHIFT_LAYER" unpack --flat "$L" "$T/out"
	assert_success
	assert_equal "$(temps_beside)" ""
	[ -f "$T/out/d/f999" ] || fail "the second unpack is incomplete"
}

@test "SIGTERM, SIGINT and SIGHUP stop a flat unpack, which removes its temporary and dies of the signal" {
	local sig
	for sig in 15 2 1; do
		kill_mid "$sig" "$SHIFT_LAYER" unpack --flat "$L" "$T/out"
		assert_nothing_left "$T/out"
		run cat "$T/err"
		assert_output --partial "interrupted by a signal: nothing was left at the destination"
	done
}

@test "a store unpack stopped by SIGTERM leaves nothing in STORE/tmp" {
	kill_mid 15 "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	assert_equal "$(ls -A "$T/store/tmp")" ""
	[ -z "$(ls -A "$T/store/layers/sha256" 2>/dev/null)" ] || fail "a layer was stored"
}

@test "a store unpack killed by SIGKILL: gc --dry-run lists the stale temporary, gc removes it, so does the next unpack" {
	kill_mid 9 "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	[ -n "$(ls -A "$T/store/tmp")" ] || fail "no temporary after a SIGKILL"
	run "$SHIFT_LAYER" gc --dry-run "$T/store"
	assert_success
	assert_output --regexp "would remove temporary $T/store/tmp/[0-9a-f]{64}\."
	[ -n "$(ls -A "$T/store/tmp")" ] || fail "gc --dry-run removed something"
	run "$SHIFT_LAYER" gc --store "$T/store"
	assert_success
	assert_output --partial "removing temporary"
	assert_equal "$(ls -A "$T/store/tmp")" ""
	kill_mid 9 "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	[ -n "$(ls -A "$T/store/tmp")" ] || fail "no temporary after the second SIGKILL"
	run "$SHIFT_LAYER" unpack --store "$T/store" "$L"
	assert_success
	assert_equal "$(ls -A "$T/store/tmp")" ""
}

@test "a temporary a running unpack holds (flock) is left alone" {
	local a b
	mkdir -p "$T/store/tmp/0000.live" "$T/.out.shift-layer-live00"
	# Held as a running unpack holds its own, on fds of this shell.
	exec {a}<"$T/store/tmp/0000.live" {b}<"$T/.out.shift-layer-live00"
	flock -n "$a" && flock -n "$b" || fail "flock failed"
	run "$SHIFT_LAYER" gc "$T/store"
	assert_success
	run "$SHIFT_LAYER" unpack --flat "$L" "$T/out"
	assert_success
	exec {a}<&- {b}<&-
	[ -d "$T/store/tmp/0000.live" ] || fail "gc removed a held temporary"
	[ -d "$T/.out.shift-layer-live00" ] || fail "unpack removed a held temporary"
	run "$SHIFT_LAYER" gc "$T/store"
	assert_success
	[ ! -e "$T/store/tmp/0000.live" ] || fail "gc left a stale temporary"
}

@test "under nohup (SIGHUP ignored) a hangup doesn't stop the unpack" {
	local full noop u s TIMEFORMAT='%3U %3S'
	read -r u s < <({ time "$SHIFT_LAYER" unpack --flat "$L" "$T/out" >/dev/null 2>&1; } 2>&1)
	full=$(cpu_of "$u" "$s")
	rm -rf "$T/out"
	noop=$(least_cpu_ns 3 "$SHIFT_LAYER" list "$L")
	# cpukill: 1 = it ended (or survived the signal), not killed.
	run "$HELPERS/cpukill" -s 1 $(((noop + full) / 2)) nohup "$SHIFT_LAYER" unpack --flat "$L" "$T/out"
	assert_failure 1
	[ -f "$T/out/d/f999" ] || fail "the unpack didn't complete"
	assert_equal "$(temps_beside)" ""
}
