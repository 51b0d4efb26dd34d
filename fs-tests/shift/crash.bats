#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crash safety: SIGKILL at many random points, then the same command once
# more, must leave exactly the tree one uninterrupted run leaves -- also
# when the map's source and target ranges overlap (ids alone can't tell a
# shifted inode from an unshifted one there), with ACLs, capabilities,
# setuid/setgid files and hard links in the tree.
#
# run-on: ext4 tmpfs

load ../lib/common
load lib

KILLS=${SHIFT_CRASH_KILLS:-30}

setup() {
	require_writable
	BASE=$FS_MNT/shift-crash-$BATS_TEST_NUMBER
	mkdir "$BASE"
	mktree "$BASE/src" 1200
}

teardown() {
	[ -z "${PID:-}" ] || kill -9 "$PID" 2>/dev/null || true
	fs_test_teardown
	rm -rf --one-file-system "${BASE:?}"
}

# crash_vs_clean MAP [options]: shift $BASE/a once, and $BASE/b with KILLS
# kills and a final run; both must end identical (snapshot) with the same
# exit status, and enough of the kills must have hit a running shift.
crash_vs_clean() {
	local map=$1 t0 t1 dur us i killed=0 rca rcb
	shift
	cp -a "$BASE/src" "$BASE/a"
	cp -a "$BASE/src" "$BASE/b"
	t0=$(date +%s%N)
	rca=0
	"$SHIFT_TREE" -q --map "$map" "$@" "$BASE/a" >/dev/null 2>&1 || rca=$?
	t1=$(date +%s%N)
	dur=$(((t1 - t0) / 1000))
	[ "$dur" -gt 1000 ] || dur=1000
	for ((i = 0; i < KILLS; i++)); do
		"$SHIFT_TREE" -q --map "$map" "$@" "$BASE/b" >/dev/null 2>&1 &
		PID=$!
		# short enough that most kills hit a run: each resumed run
		# gets a little further
		us=$((2000 + dur / 100 + (RANDOM * 32768 + RANDOM) % (dur / 12 + 1)))
		sleep "$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))"
		if kill -9 "$PID" 2>/dev/null; then
			killed=$((killed + 1))
		fi
		wait "$PID" 2>/dev/null || true
		PID=
	done
	rcb=0
	"$SHIFT_TREE" -q --map "$map" "$@" "$BASE/b" >/dev/null 2>"$BASE/final.err" || rcb=$?
	echo "uninterrupted: ${dur}us exit $rca; killed $killed of $KILLS; final exit $rcb"
	grep -v 'has no image under the map (' "$BASE/final.err" | head -20
	[ "$killed" -ge $((KILLS / 4)) ] || fail "only $killed kills hit a running shift"
	assert_equal "$rcb" "$rca"
	run diff -u <(snapshot "$BASE/a") <(snapshot "$BASE/b")
	assert_success
	# nothing of the engine's progress records is left behind
	run grep -c shiftkit.inode <(getfattr -R -h -d -m - "$BASE/b" 2>/dev/null)
	assert_output 0
}

@test "crash: overlapping map 0:1000:65536, overflow, sync engine" {
	crash_vs_clean 0:1000:65536 --unmapped=overflow --engine=sync
}

@test "crash: overlapping map 0:1000:65536, keep, default engine" {
	crash_vs_clean 0:1000:65536 --unmapped=keep
}

@test "crash: disjoint map 0:100000:65536, keep" {
	crash_vs_clean 0:100000:65536 --unmapped=keep
}

@test "crash: undoing an overlapping shift gives back the original" {
	run "$SHIFT_TREE" -q --map 0:1000:65536 --unmapped=keep "$BASE/src"
	assert_success
	crash_vs_clean 0:1000:65536 --unmapped=keep --reverse
	mktree "$BASE/orig" 1200
	run diff <(snapshot "$BASE/orig" | cut -d' ' -f1-5,7-) \
		<(snapshot "$BASE/b" | cut -d' ' -f1-5,7-)
	assert_success
}
