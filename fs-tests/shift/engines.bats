#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every executor of the shift engine (sync, threads, uring, auto) leaves a
# tree byte-identical to the sync engine's: owners, modes, ACLs, file
# capabilities, the marker, the reports, the exit status; also after a kill
# and a resume.  Where io_uring is unusable (seccomp, sysctl) auto (which
# does not use it) still works and uring says so.  The trees come from
# bench/gentree (deterministic), with srv/zoo holding one inode of each
# special kind.
#
# run-on: ext4 xfs btrfs tmpfs

load ../lib/common

MAP=0:196608:65536
GENTREE=$BUILDDIR/bench/gentree
NO_URING=$BUILDDIR/bench/no-uring
ENGINES=(sync threads uring auto)
SYSCTL=/proc/sys/kernel/io_uring_disabled
SYSCTL_LOCK=/run/lock/shiftkit-io_uring_disabled.lock

setup() {
	require_writable
	[ -x "$SHIFT_TREE" ] || fail "'$SHIFT_TREE' is not built"
	[ -x "$GENTREE" ] || fail "'$GENTREE' is not built"
	T=$(scratch_fs)
}

teardown() {
	# A test that changed the io_uring sysctl puts it back, also on failure.
	if [ -n "${SK_TMP:-}" ] && [ -f "$SK_TMP/uring-saved" ]; then
		cat "$SK_TMP/uring-saved" >"$SYSCTL"
		rm -f "$SK_TMP/uring-saved"
	fi
	rm -rf --one-file-system "${T:?}"
	fs_test_teardown
}

# scratch_fs: a fresh directory on the filesystem under test.
scratch_fs() {
	local d=$FS_MNT/engines-t$BATS_TEST_NUMBER

	rm -rf --one-file-system "$d"
	mkdir "$d"
	echo "$d"
}

# gen DIR [gentree options...]: the test tree, the same every time.
gen() {
	local d=$1
	shift
	mkdir "$d"
	"$GENTREE" -n "${GEN_INODES:-800}" --data-max 16 -s 3 "$@" "$d" >/dev/null
}

# man DIR: the manifest of DIR, with the engine's marker decoded and its
# per-run random generation ("gen=...") and the time it was written
# ("time=...") taken out: everything else of the marker (state, direction,
# policy, map) must be identical too.
man() {
	local m
	# (a pending record of an inode left for an id without image holds
	# the run's generation too)
	manifest "$1" | sed -E 's/ (trusted|user)\.shiftkit\.shift=[^ ]*//g;
		s/(shiftkit\.inode=0x[0-9a-f]{16})[0-9a-f]{16}/\1GEN/g'
	m=$(getfattr -h --only-values -n trusted.shiftkit.shift "$1" 2>/dev/null ||
		getfattr -h --only-values -n user.shiftkit.shift "$1" 2>/dev/null || true)
	echo "marker: $(tr '\0' ' ' <<<"$m" | sed -E 's/gen=[0-9a-f]+ ?//; s/time=[0-9]+ ?//')"
}

# uring_expected: 0 when io_uring should work here (the kernel has it and
# the sysctl allows it), so "uring" must not report "not supported".
uring_expected() {
	[ ! -e "$SYSCTL" ] || [ "$(cat "$SYSCTL")" = 0 ]
}

# shift_with ENGINE DIR [options...]: run shift-tree into $T/ENGINE.out/.err
# and .rc; print nothing.
shift_with() {
	local e=$1 d=$2 rc=0
	shift 2
	"$SHIFT_TREE" --engine="$e" "$@" "$d" >"$T/$e.out" 2>"$T/$e.err" || rc=$?
	echo "$rc" >"$T/$e.rc"
}

# errors ENGINE: its stderr with the tree's path taken out, sorted (workers
# report in any order).
errors() {
	sed "s|$T/[a-z-]*|DIR|g" "$T/$1.err" | LC_ALL=C sort
}

@test "every engine shifts the tree exactly as the sync engine does" {
	local e
	for e in "${ENGINES[@]}"; do
		gen "$T/$e"
		shift_with "$e" "$T/$e" --map "$MAP"
		if [ "$e" = uring ] && [ "$(cat "$T/$e.rc")" = 3 ] && ! uring_expected; then
			continue
		fi
		[ "$(cat "$T/$e.rc")" = 0 ] || fail "engine $e: exit $(cat "$T/$e.rc"): $(cat "$T/$e.err")"
		man "$T/$e" >"$T/$e.manifest"
	done
	# The reference really is shifted, ACLs and capabilities included.
	assert_equal "$(owner "$T/sync")" 196608:196608
	assert_equal "$(owner "$T/sync/srv/zoo/hardlink-a")" 197608:197608
	assert_equal "$(owner "$T/sync/srv/zoo/nobody")" 262142:262142
	assert_equal "$(stat -c %a "$T/sync/srv/zoo/setuid")" 4755
	assert_equal "$(stat -c %a "$T/sync/srv/zoo/setgid")" 2755
	run getfacl -n -p "$T/sync/srv/zoo/acl-file"
	assert_output --partial "user:197609:rw-"
	run getfattr -n security.capability -e hex "$T/sync/srv/zoo/fcaps-v3"
	# v3, rootid 1000 + 196608 = 197608 = 0x000303e8, little endian
	assert_output --partial "e8030300"
	run getfattr -n security.capability -e hex "$T/sync/srv/zoo/fcaps-v2"
	assert_output --partial "=0x01000003"
	for e in "${ENGINES[@]}"; do
		[ "$e" != sync ] && [ -f "$T/$e.manifest" ] || continue
		run diff "$T/sync.manifest" "$T/$e.manifest"
		[ "$status" = 0 ] || fail "engine $e differs from sync: $output"
	done
}

@test "directory readahead: on ext4 only, for a cold tree only, through the block device; the same tree as without" {
	gen "$T/cold"
	gen "$T/warm"
	gen "$T/plain"
	run env LIBSHIFT_DEBUG=1 LIBSHIFT_NO_DIRAHEAD=1 "$SHIFT_TREE" -q --map "$MAP" "$T/plain"
	assert_success
	refute_output --partial 'libshift: directory readahead'
	# Just written: every directory is cached, nothing is read ahead.
	run env LIBSHIFT_DEBUG=1 "$SHIFT_TREE" -q --map "$MAP" "$T/warm"
	assert_success
	if [ "$FS" = ext4 ]; then
		assert_output --regexp 'directory readahead through /dev/[a-z]'
		assert_output --partial 'directory readahead: 0 directories in 0 requests'
	else
		refute_output --partial 'libshift: directory readahead'
	fi
	# Asked for on every directory (what the race test uses), warm too.
	gen "$T/forced"
	run env LIBSHIFT_DEBUG=1 LIBSHIFT_DIRAHEAD=always "$SHIFT_TREE" -q --map "$MAP" "$T/forced"
	assert_success
	if [ "$FS" = ext4 ]; then
		assert_output --regexp 'directory readahead: [1-9][0-9]* directories in [1-9][0-9]* requests'
	else
		refute_output --partial 'libshift: directory readahead'
	fi
	if [ "$FS" = ext4 ] && [ -n "$FS_DEV" ]; then
		# Unmounted, the loop device drops its cache: the tree is cold,
		# and the walk must find that out and read directories ahead.
		umount "$FS_MNT"
		mount -t ext4 "$FS_DEV" "$FS_MNT"
		run env LIBSHIFT_DEBUG=1 "$SHIFT_TREE" -q --map "$MAP" "$T/cold"
		assert_success
		assert_output --regexp 'directory readahead: [1-9][0-9]* directories in [1-9][0-9]* requests'
	else
		run "$SHIFT_TREE" -q --map "$MAP" "$T/cold"
		assert_success
	fi
	run diff <(man "$T/plain") <(man "$T/cold")
	assert_success
	run diff <(man "$T/plain") <(man "$T/warm")
	assert_success
	run diff <(man "$T/plain") <(man "$T/forced")
	assert_success
}

# LIBSHIFT_PASSES=K (ext4): the walk shifts the tree in K walks, each over
# one range of inode numbers (docs/shift-engine.md).  The result must be
# the one walk's, with an overlapping map (intents kept to the cleanup
# phase), unmapped ids, and undone with --reverse; other filesystems
# ignore it.
@test "inode-range passes: the same tree as one walk, every engine, overlapping map, --reverse" {
	local e k
	gen "$T/one" --foreign-ids
	shift_with sync "$T/one" --map 0:1000:65536 --unmapped=keep
	[ "$(cat "$T/sync.rc")" = 0 ] || fail "one walk: exit $(cat "$T/sync.rc"): $(cat "$T/sync.err")"
	man "$T/one" >"$T/one.manifest"
	gen "$T/orig" --foreign-ids
	man "$T/orig" >"$T/orig.manifest"
	for e in sync threads; do
		for k in 2 3 8; do
			gen "$T/$e$k" --foreign-ids
			run env LIBSHIFT_DEBUG=1 LIBSHIFT_PASSES=$k "$SHIFT_TREE" -q \
				--engine="$e" --map 0:1000:65536 --unmapped=keep "$T/$e$k"
			assert_success
			if [ "$FS" = ext4 ]; then
				assert_output --partial "walk: $k pass(es)"
			else
				assert_output --partial "walk: 1 pass(es)"
			fi
			run diff "$T/one.manifest" <(man "$T/$e$k")
			[ "$status" = 0 ] || fail "engine $e, $k passes: differs from one walk: $output"
			run env LIBSHIFT_PASSES=$k "$SHIFT_TREE" -q --engine="$e" \
				--map 0:1000:65536 --unmapped=keep --reverse "$T/$e$k"
			assert_success
			run diff <(grep -v '^marker:' "$T/orig.manifest") <(man "$T/$e$k" | grep -v '^marker:')
			[ "$status" = 0 ] || fail "engine $e, $k passes: --reverse does not restore the tree: $output"
		done
	done
}

@test "every engine undoes a shift (--reverse) exactly as the sync engine does" {
	local e
	gen "$T/orig"
	man "$T/orig" >"$T/orig.manifest"
	for e in "${ENGINES[@]}"; do
		gen "$T/$e"
		shift_with "$e" "$T/$e" --map "$MAP"
		if [ "$e" = uring ] && [ "$(cat "$T/$e.rc")" = 3 ] && ! uring_expected; then
			continue
		fi
		[ "$(cat "$T/$e.rc")" = 0 ] || fail "engine $e: exit $(cat "$T/$e.rc"): $(cat "$T/$e.err")"
		shift_with "$e" "$T/$e" --map "$MAP" --reverse
		[ "$(cat "$T/$e.rc")" = 0 ] || fail "engine $e --reverse: exit $(cat "$T/$e.rc"): $(cat "$T/$e.err")"
		man "$T/$e" >"$T/$e.manifest"
		# the marker may record the undo; it is compared between engines below
		run diff <(grep -v '^marker:' "$T/orig.manifest") <(grep -v '^marker:' "$T/$e.manifest")
		[ "$status" = 0 ] || fail "engine $e: --reverse does not restore the tree: $output"
	done
	for e in "${ENGINES[@]}"; do
		[ "$e" != sync ] && [ -f "$T/$e.manifest" ] || continue
		run diff "$T/sync.manifest" "$T/$e.manifest"
		[ "$status" = 0 ] || fail "engine $e differs from sync after --reverse: $output"
	done
}

@test "unmapped ids: every engine reports the same, ends the same, leaves the same tree" {
	local e
	for e in "${ENGINES[@]}"; do
		gen "$T/$e" --foreign-ids
		shift_with "$e" "$T/$e" --map "$MAP"
		if [ "$e" = uring ] && [ "$(cat "$T/$e.rc")" = 3 ] && ! uring_expected; then
			continue
		fi
		man "$T/$e" >"$T/$e.manifest"
	done
	# The reference reports them, leaves those inodes and the tree
	# unfinished (exit 4).
	assert_equal "$(cat "$T/sync.rc")" 4
	run errors sync
	assert_output --partial "foreign-70000"
	assert_output --partial "foreign-uid"
	assert_output --partial "foreign-acl"
	assert_equal "$(owner "$T/sync/srv/zoo/foreign-70000")" 70000:70000
	for e in "${ENGINES[@]}"; do
		[ "$e" != sync ] && [ -f "$T/$e.manifest" ] || continue
		assert_equal "$(cat "$T/$e.rc")" "$(cat "$T/sync.rc")"
		run diff <(errors sync) <(errors "$e")
		[ "$status" = 0 ] || fail "engine $e reports differently: $output"
		run diff "$T/sync.manifest" "$T/$e.manifest"
		[ "$status" = 0 ] || fail "engine $e differs from sync: $output"
	done
}

@test "threads: any number of workers gives the sync engine's tree" {
	local n
	"$SHIFT_TREE" --help | grep -q -- '--threads' ||
		skip "shift-tree has no --threads option"
	gen "$T/sync"
	shift_with sync "$T/sync" --map "$MAP"
	assert_equal "$(cat "$T/sync.rc")" 0
	man "$T/sync" >"$T/sync.manifest"
	for n in 1 3 16; do
		gen "$T/threads-$n"
		shift_with threads "$T/threads-$n" --map "$MAP" --threads "$n"
		[ "$(cat "$T/threads.rc")" = 0 ] || fail "--threads $n: $(cat "$T/threads.err")"
		run diff "$T/sync.manifest" <(man "$T/threads-$n")
		[ "$status" = 0 ] || fail "--threads $n differs from sync: $output"
	done
}

# no_uring_case FLAG: io_uring failing with ENOSYS (FLAG empty) or EPERM.
no_uring_case() {
	local flag=$1 rc=0
	[ -x "$NO_URING" ] || fail "'$NO_URING' is not built"
	gen "$T/orig"
	gen "$T/sync"
	shift_with sync "$T/sync" --map "$MAP"
	assert_equal "$(cat "$T/sync.rc")" 0
	gen "$T/auto"
	# shellcheck disable=SC2086 # flag is empty or one word
	"$NO_URING" $flag "$SHIFT_TREE" --engine=auto --map "$MAP" "$T/auto" 2>"$T/auto.err" ||
		fail "auto without io_uring: $(cat "$T/auto.err")"
	run diff <(man "$T/sync") <(man "$T/auto")
	assert_success
	gen "$T/uring"
	# shellcheck disable=SC2086
	"$NO_URING" $flag "$SHIFT_TREE" --engine=uring --map "$MAP" "$T/uring" 2>"$T/uring.err" || rc=$?
	assert_equal "$rc" 3
	run cat "$T/uring.err"
	assert_output --partial "uring"
	# nothing was changed, and no shift is recorded as pending
	run diff <(man "$T/orig") <(man "$T/uring")
	assert_success
}

@test "io_uring blocked by seccomp (ENOSYS): auto works, uring refuses with exit 3" {
	no_uring_case ""
}

@test "io_uring blocked by seccomp (EPERM): auto works, uring refuses with exit 3" {
	no_uring_case --eperm
}

@test "io_uring disabled by sysctl: auto works, uring refuses with exit 3" {
	local rc=0
	[ -w "$SYSCTL" ] || skip "kernel has no kernel.io_uring_disabled sysctl"
	gen "$T/orig"
	gen "$T/sync"
	shift_with sync "$T/sync" --map "$MAP"
	gen "$T/auto"
	gen "$T/uring"
	# Other test files may do the same at the same time: one at a time,
	# and the teardown restores the saved value even after a failure.
	exec 8>"$SYSCTL_LOCK"
	flock 8
	cat "$SYSCTL" >"$SK_TMP/uring-saved"
	echo 2 >"$SYSCTL"
	"$SHIFT_TREE" --engine=auto --map "$MAP" "$T/auto" 2>"$T/auto.err" || rc=$?
	"$SHIFT_TREE" --engine=uring --map "$MAP" "$T/uring" 2>"$T/uring.err" || echo "$?" >"$T/uring.rc"
	cat "$SK_TMP/uring-saved" >"$SYSCTL"
	rm -f "$SK_TMP/uring-saved"
	flock -u 8
	exec 8>&-
	assert_equal "$rc" 0
	run diff <(man "$T/sync") <(man "$T/auto")
	assert_success
	assert_equal "$(cat "$T/uring.rc" 2>/dev/null)" 3
	run cat "$T/uring.err"
	assert_output --partial "uring"
	run diff <(man "$T/orig") <(man "$T/uring")
	assert_success
}

@test "killed at random points, every parallel engine resumes to the sync engine's tree" {
	local e i interrupted=0 state cpu noop u s TIMEFORMAT='%3U %3S'
	GEN_INODES=3000 gen "$T/sync"
	{ time shift_with sync "$T/sync" --map "$MAP"; } 2>"$T/time"
	# Kill at random fractions of a whole run's work, in CPU time
	# (cpukill), past the start-up (the least of three runs that find
	# nothing to do), so the kills land mid-run however slow the build
	# (ASan: tens of ms to start) or fast the engine.
	read -r u s <"$T/time"
	assert_equal "$(cat "$T/sync.rc")" 0
	man "$T/sync" >"$T/sync.manifest"
	noop=$(least_cpu_ns 3 "$SHIFT_TREE" -q --map "$MAP" "$T/sync")
	cpu=$(($(cpu_of "$u" "$s") - noop))
	[ "$cpu" -ge 20000000 ] || cpu=20000000
	for e in threads uring; do
		if [ "$e" = uring ] && ! uring_expected; then
			continue
		fi
		for i in 1 2 3; do
			rm -rf --one-file-system "$T/k"
			GEN_INODES=3000 gen "$T/k"
			"$HELPERS/cpukill" $((noop + cpu / 100 * (5 + 60 * RANDOM / 32767))) \
				"$SHIFT_TREE" --engine="$e" --map "$MAP" "$T/k" >/dev/null 2>&1 || true
			state=$(getfattr -h --only-values -n trusted.shiftkit.shift "$T/k" 2>/dev/null | tr '\0' ' ' || true)
			case "$state" in *running* | *cleanup*) interrupted=$((interrupted + 1)) ;; esac
			shift_with "$e" "$T/k" --map "$MAP"
			[ "$(cat "$T/$e.rc")" = 0 ] || fail "engine $e, resume after kill #$i: exit $(cat "$T/$e.rc"): $(cat "$T/$e.err")"
			run diff "$T/sync.manifest" <(man "$T/k")
			[ "$status" = 0 ] || fail "engine $e, kill #$i: resumed tree differs from sync: $output"
		done
	done
	# Not every kill may land mid-run, but some must, or this tests nothing.
	[ "$interrupted" -gt 0 ] || fail "no kill interrupted a shift (too fast?)"
}
