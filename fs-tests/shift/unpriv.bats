#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A normal user shifts a tree within its own /etc/subuid delegation, through
# newuidmap/newgidmap, without root.  The user and its delegation (a
# test-only range) are created here and removed afterwards.
#
# run-on: once

load ../lib/common
load lib

SK_USER=sk-unpriv-$$
RANGE=3400000

setup() {
	require_writable
	command -v newuidmap >/dev/null || skip "newuidmap is not installed"
	useradd -M -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 -s /bin/sh "$SK_USER"
	usermod --add-subuids "$RANGE-$((RANGE + 65535))" \
		--add-subgids "$RANGE-$((RANGE + 65535))" "$SK_USER"
	BASE=$(scratch unpriv)
	T=$BASE/t
	mkdir -p "$T/d"
	echo a >"$T/a"
	echo b >"$T/d/b"
	echo s >"$T/suid"
	chown -R "$RANGE:$RANGE" "$T"
	chown "$((RANGE + 5)):$((RANGE + 7))" "$T/a"
	chmod 4755 "$T/suid"
	setfacl -m "u:$((RANGE + 5)):r" "$T/a"
}

teardown() {
	userdel "$SK_USER" 2>/dev/null || true
	fs_test_teardown
}

as_sk_user() {
	as_user "$(id -u "$SK_USER")" "$(id -g "$SK_USER")" "$@"
}

@test "unprivileged: shift within the delegation" {
	run as_sk_user "$SHIFT_TREE" --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 1005)):$((RANGE + 1007))"
	assert_equal "$(owner "$T/d/b")" "$((RANGE + 1000)):$((RANGE + 1000))"
	run stat -c %a "$T/suid"
	assert_output 4755
	run getfacl -n "$T/a"
	assert_output --partial "user:$((RANGE + 1005)):r--"
	run getfattr --only-values -n user.shiftkit.shift "$T"
	assert_output --partial 'state=done'
	# and back
	run as_sk_user "$SHIFT_TREE" --reverse --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
}

@test "unprivileged: a map leaving the delegation is refused" {
	run as_sk_user "$SHIFT_TREE" --map "$RANGE:100000:100" "$T"
	assert_failure 1
	assert_output --partial 'leaves your delegation'
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
}

@test "unprivileged: a file owned outside the delegation is reported, untouched" {
	chown 0:0 "$T/d/b"
	run as_sk_user "$SHIFT_TREE" --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_failure 1
	assert_output --partial "'d/b': uid"
	assert_output --partial 'has no image under the map'
	assert_equal "$(owner "$T/d/b")" 0:0
	assert_equal "$(owner "$T/a")" "$((RANGE + 1005)):$((RANGE + 1007))"
}
