#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An attacker inside the tree swaps directories and files for symlinks to
# things outside it, in a tight loop, while shift-tree runs: nothing outside
# the tree may change.
#
# run-on: ext4 tmpfs

load ../lib/common
load lib

setup() {
	require_writable
	BASE=$FS_MNT/shift-race-$BATS_TEST_NUMBER
	mkdir -p "$BASE/tree/d" "$BASE/outside/sub"
	for i in $(seq 200); do echo "$i" >"$BASE/tree/d/f$i"; done
	for i in $(seq 50); do echo "$i" >"$BASE/outside/o$i"; done
	echo secret >"$BASE/outside/sub/secret"
	chmod 4755 "$BASE/outside/o1"
	setfacl -m u:1000:r "$BASE/outside/o2"
	setcap cap_net_raw+ep "$BASE/outside/o3"
	ln -s ../outside "$BASE/tree/always-link"
}

teardown() {
	[ -z "${APID:-}" ] || kill "$APID" 2>/dev/null || true
	[ -z "${APID:-}" ] || wait "$APID" 2>/dev/null || true
	fs_test_teardown
	rm -rf --one-file-system "${BASE:?}"
}

attacker() {
	cd "$BASE/tree" || exit 1
	while :; do
		mv d d.x 2>/dev/null
		ln -sfn ../outside d 2>/dev/null
		ln -sf ../outside/sub/secret d.x/f1 2>/dev/null
		rm -f d 2>/dev/null
		mv d.x d 2>/dev/null
	done
}

@test "race: directory/symlink swaps never reach outside the tree" {
	local before i ra
	before=$(snapshot "$BASE/outside")
	attacker &
	APID=$!
	# Every other round with directory readahead on (ext4: it opens the
	# subdirectories the attacker swaps; otherwise only on a cold tree).
	for i in $(seq 12); do
		ra=auto
		[ $((i % 2)) = 0 ] || ra=always
		LIBSHIFT_DIRAHEAD=$ra "$SHIFT_TREE" -q --map 0:100000:65536 \
			--unmapped=keep --force "$BASE/tree" >/dev/null 2>&1 || true
		LIBSHIFT_DIRAHEAD=$ra "$SHIFT_TREE" -q --reverse \
			--map 0:100000:65536 --unmapped=keep --force "$BASE/tree" \
			>/dev/null 2>&1 || true
	done
	kill "$APID"
	wait "$APID" 2>/dev/null || true
	APID=
	assert_equal "$(snapshot "$BASE/outside")" "$before"
	assert_equal "$(owner "$BASE/outside/sub/secret")" 0:0
}
