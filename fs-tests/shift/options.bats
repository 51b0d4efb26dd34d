#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-tree's command line: help, version, exit codes, bad input, every
# option, the marker (already shifted, another map, pending run), reports
# of unmapped ids, mount points and outside hard links.
#
# run-on: once

load ../lib/common
load lib

setup() {
	require_writable
	BASE=$FS_MNT/shift-opt-$BATS_TEST_NUMBER
	mkdir "$BASE"
	T=$BASE/t
	mkdir "$T"
	echo x >"$T/f0"
	echo y >"$T/f70000"
	chown 70000:5 "$T/f70000"
	mkdir "$T/d"
	chown 1:2 "$T/d"
}

teardown() {
	fs_test_teardown
	sk_umount_under "$BASE"
	rm -rf --one-file-system "${BASE:?}"
}

@test "--help and --version" {
	run "$SHIFT_TREE" --help
	assert_success
	assert_output --partial 'Usage:'
	assert_output --partial '--unmapped=POLICY'
	run "$SHIFT_TREE" --version
	assert_success
	assert_output --regexp '^shift-tree from shiftkit '
}

@test "usage errors exit 2" {
	run "$SHIFT_TREE" --bogus "$T"
	assert_failure 2
	assert_output --partial "Try 'shift-tree --help'"
	run "$SHIFT_TREE" "$T"
	assert_failure 2
	assert_output --partial 'no id map given'
	run "$SHIFT_TREE" --map 0:100000:65536
	assert_failure 2
	run "$SHIFT_TREE" --map 0:100000:0 "$T"
	assert_failure 2
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=maybe "$T"
	assert_failure 2
	run "$SHIFT_TREE" --map 0:100000:65536 --engine=fast "$T"
	assert_failure 2
	run "$SHIFT_TREE" --map 0:100000:65536 "$T" "$T"
	assert_failure 2
	# a map that hands out host root is refused unless asked for
	run "$SHIFT_TREE" --map 1000:0:1 "$T"
	assert_failure 2
	assert_output --partial 'allow-host-root'
}

@test "missing directory and non-directory fail with the path" {
	run "$SHIFT_TREE" --map 0:100000:65536 "$BASE/nope"
	assert_failure 1
	assert_output --partial "Failed to shift '$BASE/nope'"
	run "$SHIFT_TREE" --map 0:100000:65536 "$T/f0"
	assert_failure 1
	assert_output --partial 'Not a directory'
}

@test "default: an inode with an unmapped id is left whole, reported, exit 4" {
	run "$SHIFT_TREE" --map 0:100000:65536 "$T"
	assert_failure 4
	assert_output --partial "'f70000': uid 70000 has no image under the map (left as is)"
	assert_equal "$(owner "$T/f70000")" 70000:5
	assert_equal "$(owner "$T/d")" 100001:100002
	assert_equal "$(owner "$T/f0")" 100000:100000
}

@test "--unmapped=keep exits 0, --unmapped=overflow stores 65534" {
	cp -a "$T" "$BASE/t2"
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	assert_output --partial 'uid 70000 has no image'
	assert_equal "$(owner "$T/f70000")" 70000:100005
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=overflow "$BASE/t2"
	assert_success
	assert_equal "$(owner "$BASE/t2/f70000")" 65534:100005
}

@test "--dry-run lists changes and changes nothing" {
	local before
	before=$(snapshot "$T")
	run "$SHIFT_TREE" --dry-run --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	assert_output --partial 'd: uid 1 -> 100001, gid 2 -> 100002'
	assert_output --partial 'would change'
	assert_equal "$(snapshot "$T")" "$before"
	run getfattr -n trusted.shiftkit.shift "$T"
	assert_failure
}

@test "--json summary" {
	run --separate-stderr "$SHIFT_TREE" --json --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	run python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["inodes"], d["changed"], d["ok"], d["already_shifted"], d["exit_status"], len(d["events"]))' "$output"
	assert_output '4 4 True False 0 1'
}

@test "-v lists every change" {
	run "$SHIFT_TREE" -v --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	assert_output --partial 'f0: uid 0 -> 100000, gid 0 -> 100000'
}

@test "the same map again is detected and nothing is done" {
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	run "$SHIFT_TREE" --json --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	assert_output --partial '"already_shifted": true'
	assert_equal "$(owner "$T/f0")" 100000:100000
}

@test "another map on a shifted tree is refused unless --force" {
	run "$SHIFT_TREE" -q --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	run "$SHIFT_TREE" --map 0:300000:65536 "$T"
	assert_failure 1
	assert_output --partial "shifted with map 'b:0:100000:65536'"
	assert_equal "$(owner "$T/f0")" 100000:100000
	run "$SHIFT_TREE" -q --force --map 100000:300000:65536 --unmapped=keep "$T"
	assert_success
	assert_equal "$(owner "$T/f0")" 300000:300000
}

@test "a pending interrupted run with another map blocks" {
	setfattr -n trusted.shiftkit.shift \
		-v 'shiftkit 1 state=running gen=01 dir=forward unmapped=error cleanup=0 map=b:0:200000:10' "$T"
	run "$SHIFT_TREE" --map 0:100000:65536 "$T"
	assert_failure 1
	assert_output --partial "interrupted shift with map 'b:0:200000:10' is pending"
	assert_equal "$(owner "$T/f0")" 0:0
}

@test "--reverse undoes, twice is a no-op" {
	local before
	before=$(snapshot "$T")
	run "$SHIFT_TREE" -q --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep --reverse "$T"
	assert_success
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep --reverse "$T"
	assert_success
	assert_output --partial 'already undone'
	assert_equal "$(snapshot "$T" | cut -d' ' -f1-5,7-)" \
		"$(echo "$before" | cut -d' ' -f1-5,7-)"
}

@test "engines: sync always, threads/uring or exit 3" {
	run "$SHIFT_TREE" -q --engine=sync --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	for e in threads uring; do
		run "$SHIFT_TREE" -q --engine=$e --reverse --map 0:100000:65536 --unmapped=keep "$T"
		[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
		[ "$status" -eq 0 ] || assert_output --partial "engine '$e' is not available"
	done
}

@test "a mount inside the tree is reported, not entered" {
	mkdir "$T/mnt"
	mount -t tmpfs -o mode=0755 shiftkit-inner "$T/mnt"
	track_mount "$T/mnt"
	touch "$T/mnt/inner"
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep "$T"
	assert_failure 4
	assert_output --partial "'mnt' is another mount: not entered"
	assert_equal "$(owner "$T/mnt/inner")" 0:0
	assert_equal "$(owner "$T/f0")" 100000:100000
}

@test "hard links: one inode shifted once, links outside the tree reported" {
	ln "$T/f0" "$T/d/f0-link"
	ln "$T/f0" "$BASE/outside-link"
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	assert_output --partial 'hard link(s) outside the tree'
	assert_equal "$(owner "$T/d/f0-link")" 100000:100000
}

@test "setuid/setgid, capabilities and mtime survive" {
	echo s >"$T/suid"
	chmod 6755 "$T/suid"
	setcap cap_net_raw+ep "$T/suid"
	touch -d @1600000000 "$T/suid"
	run "$SHIFT_TREE" -q --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
	run stat -c '%a %u %g %Y' "$T/suid"
	assert_output '6755 100000 100000 1600000000'
	run getcap -n "$T/suid"
	assert_output --partial '[rootid=100000]'
}

# --unmapped=overflow and ACL qualifiers: the kernel shows an unmapped
# qualifier as 4294967295 through an idmapped mount, which setxattr
# refuses; the entry keeps its permissions with the overflow id 65534.
@test "--unmapped=overflow: an unmapped ACL qualifier becomes 65534, access and default" {
	require_acl
	touch "$T/acl"
	setfacl -m u:70000:rw,u:7:r,g:80000:x "$T/acl"
	setfacl -d -m u:70001:rx,g:3:w "$T/d"
	run "$SHIFT_TREE" --map 0:100000:65536 --unmapped=overflow "$T"
	assert_success
	assert_output --partial "'acl': ACL user 70000 has no image under the map (stored as 65534)"
	run getfacl -cn "$T/acl"
	assert_line 'user:65534:rw-'
	assert_line 'user:100007:r--'
	assert_line 'group:65534:--x'
	run getfacl -cn "$T/d"
	assert_line 'default:user:65534:r-x'
	assert_line 'default:group:100003:-w-'
}

@test "--unmapped=overflow: two ACL entries that would both be 65534 fail, the inode is left as it is" {
	local acl dacl
	require_acl
	touch "$T/acl" "$T/acl2"
	setfacl -m u:70000:rw,u:70001:r "$T/acl"
	# an unmapped qualifier and a mapped one whose image is 65534
	setfacl -m g:70000:r,g:0:w "$T/acl2"
	setfacl -d -m u:70000:rx,u:80000:w "$T/d"
	chown 1:2 "$T/acl" "$T/acl2"
	acl=$(getfattr -e hex -n system.posix_acl_access "$T/acl")
	dacl=$(getfattr -e hex -n system.posix_acl_default "$T/d")
	run "$SHIFT_TREE" --map 0:65534:1 --map 1:100001:10 --unmapped=overflow "$T"
	assert_failure 1
	assert_output --partial "Failed to translate the access ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep) 'acl': Invalid argument"
	assert_output --partial "the access ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep) 'acl2'"
	assert_output --partial "Failed to translate the default ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep) 'd'"
	assert_equal "$(getfattr -e hex -n system.posix_acl_access "$T/acl")" "$acl"
	assert_equal "$(getfattr -e hex -n system.posix_acl_default "$T/d")" "$dacl"
	assert_equal "$(owner "$T/acl")" 1:2
	assert_equal "$(owner "$T/acl2")" 1:2
	assert_equal "$(owner "$T/d")" 1:2
	# the other inodes are shifted
	assert_equal "$(owner "$T/f0")" 65534:65534
	assert_equal "$(owner "$T/f70000")" 65534:100005
}

@test "/ and paths resolving to it are refused unless --no-preserve-root (dry run: nothing could be chowned)" {
	local d
	for d in / /. /tmp/.. "$T/../../../../../../../../../../../.."; do
		run "$SHIFT_TREE" --dry-run --map 0:100000:65536 "$d"
		assert_failure 2
		assert_output "shift-tree: refusing to shift '$d': it is the root of the host's filesystem (use --no-preserve-root if you mean it)"
	done
	# asked for: a dry run of / goes ahead (and reports, changes nothing)
	run timeout 5 "$SHIFT_TREE" --dry-run -q --no-preserve-root --map 0:100000:65536 /.
	[ "$status" != 2 ]
	refute_output --partial 'refusing'
	run "$SHIFT_TREE" --dry-run -q --map 0:100000:65536 --unmapped=keep "$T"
	assert_success
}

@test "exit status: 1 failed inodes, 4 only ids without image, 0 done; documented in --help" {
	run "$SHIFT_TREE" --help
	assert_output --partial '4 shifted but for'
	assert_output --partial '5 another run is shifting DIR'
	run "$SHIFT_TREE" --map 0:100000:65536 "$T"
	assert_failure 4
	chown 0:0 "$T/f70000"
	run "$SHIFT_TREE" --map 0:100000:65536 "$T"
	assert_success
	assert_equal "$(owner "$T/f70000")" 100000:100000
}

@test "--threads with --engine=sync, and a map of one kind, are refused up front" {
	run "$SHIFT_TREE" --engine=sync --threads 4 --map 0:100000:65536 "$T"
	assert_failure 2
	assert_output --partial '--threads does not apply to --engine=sync'
	run "$SHIFT_TREE" --map u:0:100000:65536 "$T"
	assert_failure 2
	assert_output --partial 'the map has no gid extents'
	run "$SHIFT_TREE" --map g:0:100000:65536 "$T"
	assert_failure 2
	assert_output --partial 'the map has no uid extents'
	run getfattr -n trusted.shiftkit.shift "$T"
	assert_failure
	assert_equal "$(owner "$T/f0")" 0:0
}

@test "untrusted names: escaped in text lines, intact in one JSON document" {
	local nl=$'a\nb' esc=$'x\e[31my'
	touch "$T/$nl" "$T/$esc"
	chown 70000:70000 "$T/$nl" "$T/$esc"
	# dry run: change lines (stdout) and unmapped reports (stderr)
	run --separate-stderr "$SHIFT_TREE" --dry-run --map 0:100000:65536 "$T"
	assert_failure 4
	grep -qF "'a\\nb': uid 70000 has no image" <<<"$stderr"
	grep -qF "'x\\033[31my': uid 70000 has no image" <<<"$stderr"
	! grep -q $'\e' <<<"$stderr$output"
	run "$SHIFT_TREE" -v --unmapped=overflow --dry-run --map 0:100000:65536 "$T"
	assert_output --partial 'a\nb: uid 70000 -> 65534'
	refute_output --partial $'\e'
	# --json: one document on stdout, with the events and the names
	run --separate-stderr "$SHIFT_TREE" --dry-run --json -v --map 0:100000:65536 "$T"
	assert_failure 4
	assert_equal "$stderr" ""
	run jq -r '[.events[] | select(.type == "unmapped" and .path != "f70000") | .path] | unique | .[]' <<<"$output"
	assert_success
	assert_output "$nl
$esc"
	run --separate-stderr "$SHIFT_TREE" --json -v --map 0:100000:65536 "$T"
	assert_failure 4
	run jq -e '.exit_status == 4 and .ok == false and ([.events[] | select(.type == "change")] | length) == 3' <<<"$output"
	assert_success
	# a name that is not UTF-8: escaped in the JSON too, and said so
	touch "$T/"$'z\xffz'
	chown 70000 "$T/"$'z\xffz'
	run --separate-stderr "$SHIFT_TREE" --dry-run --json --map 0:100000:65536 "$T"
	assert_failure 4
	run jq -r '.events[] | select(.path_escaped) | .path' <<<"$output"
	assert_success
	assert_output 'z\377z'
	rm "$T/"$'z\xffz'
	# a run that can't run: still one document, the error in it
	run --separate-stderr "$SHIFT_TREE" --json --map 0:200000:65536 "$T"
	assert_failure 1
	run jq -r '.error.message' <<<"$output"
	assert_output --partial "a shift with map 'b:0:100000:65536' is unfinished: it left problems"
}

@test "--status: the marker in words and as JSON; 6 without one" {
	run "$SHIFT_TREE" --status "$T"
	assert_failure 6
	assert_output --partial 'no shift marker'
	run "$SHIFT_TREE" --status --json "$T"
	assert_failure 6
	run jq -e '.state == null' <<<"$output"
	assert_success
	run "$SHIFT_TREE" --status --map 0:1:1 "$T"
	assert_failure 2
	run "$SHIFT_TREE" --map 0:100000:65536 "$T"
	assert_failure 4
	run "$SHIFT_TREE" --status "$T"
	assert_success
	assert_output --partial 'incomplete: the last run left problems'
	assert_output --partial 'map:      b:0:100000:65536'
	assert_output --regexp 'written:  20[0-9-]+T[0-9:]+Z'
	run "$SHIFT_TREE" --status --json "$T"
	assert_success
	run jq -r '"\(.state) \(.map) \(.problems) \(.interrupted) \(.running_pid) \(.time > 0)"' <<<"$output"
	assert_output 'incomplete b:0:100000:65536 true false null true'
	run "$SHIFT_TREE" --unmapped=keep --map 0:100000:65536 "$T"
	assert_success
	run "$SHIFT_TREE" --status --json "$T"
	run jq -r '"\(.state) \(.unmapped) \(.problems)"' <<<"$output"
	assert_output 'done keep false'
	# a run holding the tree: "being shifted now", its pid
	python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(600)' "$T" "$BASE/locked" 3>&- &
	local holder=$! i
	for ((i = 0; i < 200; i++)); do
		[ -e "$BASE/locked" ] && break
		sleep 0.05
	done
	setfattr -n trusted.shiftkit.shift -v "shiftkit 1 state=running gen=01 dir=forward unmapped=error cleanup=0 map=b:0:100000:65536" "$T"
	run "$SHIFT_TREE" --status "$T"
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	assert_success
	assert_output --partial 'being shifted now'
	assert_output --partial "run:      pid $holder"
	assert_output --partial 'written:  unknown'
	run "$SHIFT_TREE" --status "$T"
	assert_output --partial 'interrupted: run the same command again'
}
