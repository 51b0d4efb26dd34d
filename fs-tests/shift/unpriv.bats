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

@test "unprivileged: a map leaving the delegation is refused, naming that cause" {
	run as_sk_user "$SHIFT_TREE" --map "$RANGE:100000:100" "$T"
	assert_failure 1
	assert_output "shift-tree: Failed to shift '$T': the map stores ids outside what you own (your uid and gid, and your delegation in /etc/subuid and /etc/subgid): only root can store them"
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
}

@test "unprivileged: a user namespace that can't be set up is named as the cause" {
	# a newuidmap that refuses, first in PATH
	mkdir "$BASE/bin"
	printf '#!/bin/sh\nexit 1\n' >"$BASE/bin/newuidmap"
	chmod 0755 "$BASE/bin" "$BASE/bin/newuidmap"
	run as_sk_user env PATH="$BASE/bin:$PATH" "$SHIFT_TREE" --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_failure 1
	assert_output --partial "the user namespace could not be set up: newuidmap or newgidmap refused the map or failed"
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
}

# The issue's case: the user's own files (its uid and gid, not in its
# delegation) shifted into its delegation, and back.
@test "unprivileged: the user's own files into its delegation and back" {
	local uid gid O=$BASE/own
	uid=$(id -u "$SK_USER")
	gid=$(id -g "$SK_USER")
	mkdir -p "$O/d"
	echo f >"$O/f"
	echo g >"$O/d/g"
	chown -R "$uid:$gid" "$O"
	run as_sk_user "$SHIFT_TREE" --map "u:$uid:$((RANGE + 5)):1 g:$gid:$((RANGE + 7)):1" "$O"
	assert_success
	assert_equal "$(owner "$O/f")" "$((RANGE + 5)):$((RANGE + 7))"
	assert_equal "$(owner "$O/d/g")" "$((RANGE + 5)):$((RANGE + 7))"
	assert_equal "$(owner "$O")" "$((RANGE + 5)):$((RANGE + 7))"
	run as_sk_user "$SHIFT_TREE" --reverse --map "u:$uid:$((RANGE + 5)):1 g:$gid:$((RANGE + 7)):1" "$O"
	assert_success
	assert_equal "$(owner "$O/f")" "$uid:$gid"
	assert_equal "$(owner "$O")" "$uid:$gid"
}

# shift-tree(1)'s example: --dry-run --json --subid USER on the user's
# own tree; one JSON document, the user's ids mapped through its range.
@test "unprivileged: --dry-run --json --subid USER on the user's own tree" {
	local uid gid O=$BASE/own
	uid=$(id -u "$SK_USER")
	gid=$(id -g "$SK_USER")
	mkdir -p "$O"
	echo f >"$O/f"
	chown -R "$uid:$gid" "$O"
	# a file of root's: not the user's to shift, reported as such
	echo r >"$O/r"
	run --separate-stderr as_sk_user "$SHIFT_TREE" --dry-run --json --subid "$SK_USER" "$O"
	assert_failure 4
	run jq -r '.events[] | select(.path == "f") | "\(.type) \(.new_uid):\(.new_gid)"' <<<"$output"
	assert_success
	assert_output "change $((RANGE + uid)):$((RANGE + gid))"
	run --separate-stderr as_sk_user "$SHIFT_TREE" --dry-run --json --subid "$SK_USER" "$O"
	run jq -r '([.events[] | select(.path == "r") | .outside_delegation] | all), .exit_status' <<<"$output"
	assert_output "true
4"
	assert_equal "$(owner "$O/f")" "$uid:$gid"
	rm "$O/r"
	run as_sk_user "$SHIFT_TREE" -q --subid "$SK_USER" "$O"
	assert_success
	assert_equal "$(owner "$O/f")" "$((RANGE + uid)):$((RANGE + gid))"
}

# --json's "engine" is the executor that ran in the user namespace, not
# "sync" for every unprivileged run.
@test "unprivileged: --json reports the engine that ran (threads, sync)" {
	local e
	for e in threads sync; do
		run --separate-stderr as_sk_user "$SHIFT_TREE" --json --engine "$e" \
			--map "$RANGE:$((RANGE + 1000)):100" "$T"
		assert_success
		run jq -r '.engine' <<<"$output"
		assert_output "$e"
		run as_sk_user "$SHIFT_TREE" -q --reverse --map "$RANGE:$((RANGE + 1000)):100" "$T"
		assert_success
	done
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
}

@test "unprivileged: a file owned outside the delegation is reported as such, untouched" {
	chown 0:0 "$T/d/b"
	# the delegation's own id at the namespace's overflow position
	# (the 65535th) is an ordinary id, reported as itself
	echo o >"$T/o"
	chown "$((RANGE + 65534)):$((RANGE + 65534))" "$T/o"
	run --separate-stderr as_sk_user "$SHIFT_TREE" --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_failure 4
	assert_equal "$(grep "'d/b'" <<<"$stderr")" "shift-tree: 'd/b': its uid is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)
shift-tree: 'd/b': its gid is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)"
	assert_equal "$(grep -c "'o': [ug]id $((RANGE + 65534)) has no image under the map" <<<"$stderr")" 2
	assert_equal "$(owner "$T/d/b")" 0:0
	assert_equal "$(owner "$T/o")" "$((RANGE + 65534)):$((RANGE + 65534))"
	assert_equal "$(owner "$T/a")" "$((RANGE + 1005)):$((RANGE + 1007))"
}

@test "unprivileged: --unmapped=overflow, whose 65534 is outside the delegation, is refused with the reason" {
	run as_sk_user "$SHIFT_TREE" --unmapped=overflow --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_failure 1
	assert_output "shift-tree: Failed to shift '$T': --unmapped=overflow stores host id 65534, which is outside your delegation in /etc/subuid or /etc/subgid, so your user namespace can't write it (use --unmapped=keep, or run as root)"
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
	run getfattr --only-values -n user.shiftkit.shift "$T"
	assert_failure
}

# The marker always records the host view of the map, and a run as root
# mirrors its (trusted.*) marker into user.*: root and the delegation's
# owner see the same record of the same tree.  The map overlaps itself
# (R..R+99 -> R+10..R+109): a second shift would move the ids again.

# mkbig DIR N: about N files owned by ids of the delegation's first 100,
# a tenth with an access ACL (qualifier in the same range).
mkbig() {
	python3 - "$1" "$2" "$RANGE" <<'PY'
import os, struct, sys
root, n, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def acl(entries):
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in entries)
NONE = 0xffffffff
os.makedirs(root)
for d in range(max(1, n // 100)):
    dp = os.path.join(root, 'd%02d' % d)
    os.mkdir(dp)
    os.chown(dp, r + d % 100, r + (d + 1) % 100)
    for i in range(100):
        p = os.path.join(dp, 'f%03d' % i)
        with open(p, 'w') as f:
            f.write('x')
        os.chown(p, r + i, r + (i * 7) % 100)
        if i % 10 == 3:
            os.setxattr(p, 'system.posix_acl_access', acl([(1, 6, NONE), (2, 4, r + (i + 1) % 100), (4, 4, NONE), (16, 6, NONE), (32, 4, NONE)]))
os.chown(root, r, r)
PY
}

# marker_state DIR: the state the tree's marker records (either namespace).
marker_state() {
	{ getfattr --only-values -n trusted.shiftkit.shift "$1" 2>/dev/null ||
		getfattr --only-values -n user.shiftkit.shift "$1" 2>/dev/null; } |
		sed -n 's/.*state=\([a-z]*\).*/\1/p'
}

# killed_run DIR USER|root: start a shift of DIR with $OVL and SIGKILL it
# (its whole process group: the unprivileged engine runs in a child) until
# one is caught in the middle; the tree is restored from DIR.orig between
# tries.
killed_run() {
	local dir=$1 who=$2 i us pid state
	for ((i = 0; i < 30; i++)); do
		if [ "$who" = root ]; then
			setsid "$SHIFT_TREE" -q --map "$OVL" "$dir" >/dev/null 2>&1 &
		else
			setsid setpriv --reuid="$(id -u "$SK_USER")" \
				--regid="$(id -g "$SK_USER")" --clear-groups -- \
				"$SHIFT_TREE" -q --map "$OVL" "$dir" >/dev/null 2>&1 &
		fi
		pid=$!
		us=$((5000 + (RANDOM % 60) * 1000))
		sleep "$(printf '0.%06d' "$us")"
		kill -9 -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		state=$(marker_state "$dir")
		case $state in
		running | cleanup) return 0 ;;
		esac
		rm -rf --one-file-system "$dir"
		cp -a "$dir.orig" "$dir"
	done
	fail "no SIGKILL hit a running shift in 30 tries"
}

# as_who root|user CMD...: run CMD as root or as the delegation's owner.
as_who() {
	local who=$1
	shift
	if [ "$who" = root ]; then "$@"; else as_sk_user "$@"; fi
}

# finish_refused DIR REFUSED MESSAGE FINISHER: the run (root|user) of
# REFUSED on the interrupted shift of DIR with $OVL fails naming MESSAGE
# and changes nothing; FINISHER's resumes it, which ends exactly as root's
# uninterrupted shift of $BASE/clean (DIR's copy from before).
finish_refused() {
	local dir=$1 refused=$2 msg=$3 finisher=$4 before
	before=$(snapshot "$dir")
	run as_who "$refused" "$SHIFT_TREE" --map "$OVL" "$dir"
	assert_failure 1
	assert_output --partial "$msg"
	assert_equal "$(snapshot "$dir")" "$before"
	run as_who "$finisher" "$SHIFT_TREE" --map "$OVL" "$dir"
	assert_success
	assert_output --partial resumed
	run "$SHIFT_TREE" -q --map "$OVL" "$BASE/clean"
	assert_success
	run diff -u <(snapshot "$BASE/clean") <(snapshot "$dir")
	assert_success
}

OVL=

setup_overlap() {
	OVL="$RANGE:$((RANGE + 10)):100"
}

@test "unprivileged: a tree shifted by the user is 'already shifted' for root" {
	setup_overlap
	run as_sk_user "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 15)):$((RANGE + 17))"
	run getfattr --only-values -n user.shiftkit.shift "$T"
	assert_output --partial "map=b:$RANGE:$((RANGE + 10)):100"
	run "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	assert_output --partial 'already shifted with this map'
	assert_equal "$(owner "$T/a")" "$((RANGE + 15)):$((RANGE + 17))"
	# and root undoes what the user did
	run "$SHIFT_TREE" --reverse --map "$OVL" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
	run getfacl -n "$T/a"
	assert_output --partial "user:$((RANGE + 5)):r--"
}

@test "unprivileged: a tree shifted by root is 'already shifted' for the user" {
	setup_overlap
	run "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	run as_sk_user "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	assert_output --partial 'already shifted with this map'
	assert_equal "$(owner "$T/a")" "$((RANGE + 15)):$((RANGE + 17))"
	assert_equal "$(owner "$T/d/b")" "$((RANGE + 10)):$((RANGE + 10))"
	# another map is refused for the user as for root
	run as_sk_user "$SHIFT_TREE" --map "$RANGE:$((RANGE + 500)):100" "$T"
	assert_failure 1
	assert_output --partial "shifted with map 'b:$RANGE:$((RANGE + 10)):100'"
}

@test "unprivileged: the user undoes root's shift; root sees it undone" {
	setup_overlap
	run "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	run as_sk_user "$SHIFT_TREE" --reverse --map "$OVL" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
	# the same undo by root: nothing more to do
	run "$SHIFT_TREE" --reverse --map "$OVL" "$T"
	assert_success
	assert_output --partial 'already undone'
	assert_equal "$(owner "$T/a")" "$((RANGE + 5)):$((RANGE + 7))"
	# and root can shift it again, which the user sees
	run "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	assert_equal "$(owner "$T/a")" "$((RANGE + 15)):$((RANGE + 17))"
	run as_sk_user "$SHIFT_TREE" --map "$OVL" "$T"
	assert_success
	assert_output --partial 'already shifted'
	assert_equal "$(owner "$T/a")" "$((RANGE + 15)):$((RANGE + 17))"
}

# An interrupted run in a user namespace left its progress records in
# that namespace's view of the ids (owners, ACL qualifiers): root can't
# use them, only the same user can finish the run.
@test "unprivileged: a run stopped by an obstacle: root is refused, the user finishes it" {
	setup_overlap
	mkbig "$BASE/big" 300
	mv "$T" "$BASE/big/t"
	cp -a "$BASE/big" "$BASE/clean"
	chattr +i "$BASE/big/d01/f050" 2>/dev/null ||
		skip "chattr +i is not supported here"
	run as_sk_user "$SHIFT_TREE" --map "$OVL" "$BASE/big"
	chattr -i "$BASE/big/d01/f050"
	assert_failure 1
	assert_output --partial "'d01/f050'"
	assert_equal "$(marker_state "$BASE/big")" incomplete
	finish_refused "$BASE/big" root \
		"interrupted shift with map 'b:$RANGE:$((RANGE + 10)):100' was started by an unprivileged user" user
	# and root sees it done
	run "$SHIFT_TREE" --map "$OVL" "$BASE/big"
	assert_success
	assert_output --partial 'already shifted'
}

@test "unprivileged: a SIGKILLed run of the user: root is refused, the user finishes it" {
	setup_overlap
	mkbig "$BASE/big" 4000
	cp -a "$BASE/big" "$BASE/big.orig"
	cp -a "$BASE/big" "$BASE/clean"
	killed_run "$BASE/big" user
	finish_refused "$BASE/big" root 'was started by an unprivileged user' user
	run "$SHIFT_TREE" --map "$OVL" "$BASE/big"
	assert_success
	assert_output --partial 'already shifted'
}

@test "unprivileged: a SIGKILLed run of root is refused to the user, root finishes it" {
	setup_overlap
	mkbig "$BASE/big" 4000
	cp -a "$BASE/big" "$BASE/big.orig"
	cp -a "$BASE/big" "$BASE/clean"
	killed_run "$BASE/big" root
	# its progress records are in trusted.*, invisible to the user:
	# carrying on without them would shift some inodes twice
	finish_refused "$BASE/big" user 'was started by root' root
}

@test "unprivileged: -v lists the changes in host ids" {
	run as_sk_user "$SHIFT_TREE" -v --map "$RANGE:$((RANGE + 1000)):100" "$T"
	assert_success
	assert_output --partial "a: uid $((RANGE + 5)) -> $((RANGE + 1005)), gid $((RANGE + 7)) -> $((RANGE + 1007)), access ACL"
	assert_output --partial "suid: uid $RANGE -> $((RANGE + 1000))"
}
