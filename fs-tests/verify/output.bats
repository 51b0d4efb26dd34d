#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Files a user names for output: a regular file is replaced atomically, but
# a device, a FIFO or a symbolic link is never replaced.  shift-verify
# record --output /dev/full used to rename its temporary over the device
# node, leaving a regular file where /dev/full was (as root: for every
# process on the machine).  Here the devices are our own nodes, made in the
# test's directory, never the machine's.
#
# run-on: once

load ../lib/common

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	[ -x "$SHIFT_ALLOC" ] || fail "'$SHIFT_ALLOC' is not built"
	[ "$(id -u)" = 0 ] || skip "needs root (mknod)"
	O=$(scratch out)
	mkdir "$O/tree"
	echo x >"$O/tree/f"
}

@test "record --output into a device node writes it and leaves it a device" {
	mknod -m 0666 "$O/null" c 1 3
	run "$SHIFT_VERIFY" record --output "$O/null" "$O/tree"
	assert_success
	[ -c "$O/null" ] || fail "$O/null is no longer a character device: $(stat -c %F "$O/null")"
	[ "$(stat -c %t:%T "$O/null")" = 1:3 ]
	# a full device: the write fails, and the device stays
	mknod -m 0666 "$O/full" c 1 7
	run "$SHIFT_VERIFY" record --output "$O/full" "$O/tree"
	assert_failure
	assert_output --partial "No space left on device"
	[ -c "$O/full" ] || fail "$O/full is no longer a character device"
	# nothing left beside them
	run find "$O" -maxdepth 1 -name '*.tmp*'
	assert_output ""
}

@test "record --output through a symbolic link writes the target and keeps the link" {
	echo old >"$O/real"
	ln -s real "$O/link"
	run "$SHIFT_VERIFY" record --output "$O/link" "$O/tree"
	assert_success
	[ -L "$O/link" ] || fail "the link was replaced"
	run head -1 "$O/real"
	assert_output --partial "#mtree"
	# a FIFO: written in place
	mkfifo "$O/fifo"
	cat "$O/fifo" >"$O/from-fifo" &
	local reader=$!
	run "$SHIFT_VERIFY" record --output "$O/fifo" "$O/tree"
	assert_success
	wait "$reader"
	[ -p "$O/fifo" ] || fail "the FIFO was replaced"
	run head -1 "$O/from-fifo"
	assert_output --partial "#mtree"
	# a link to nothing, a directory: refused, nothing made
	ln -s nowhere "$O/dangling"
	run "$SHIFT_VERIFY" record --output "$O/dangling" "$O/tree"
	assert_failure
	[ -L "$O/dangling" ] && [ ! -e "$O/nowhere" ]
	run "$SHIFT_VERIFY" record --output "$O/tree" "$O/tree"
	assert_failure
	assert_output --partial "Is a directory"
}

@test "shift-alloc refuses a state that is not a regular file (it would lose every allocation)" {
	mknod -m 0666 "$O/null" c 1 3
	printf 'alice:100000:6553600\n' >"$O/subuid"
	printf 'alice:100000:6553600\n' >"$O/subgid"
	SHIFT_SUBUID=$O/subuid SHIFT_SUBGID=$O/subgid \
		run "$SHIFT_ALLOC" --state "$O/null" --user alice c1
	assert_failure
	assert_output --partial "not a regular file"
	[ -c "$O/null" ] || fail "the state device was replaced"
}
