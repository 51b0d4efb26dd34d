#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mountd against unprivileged users who try to get more than they
# own (docs/security-mountd.md): each attack is refused with its message,
# nothing is mounted or leaked in the daemon (fds, children, mounts,
# namespaces), and the daemon keeps serving.  The daemon, the users and
# their /etc/subuid lines are this file's own and go in teardown_file.

load lib

# Short timeout and small per-user limit, so the slow-client and flood
# cases run in seconds.
MD_CONF='timeout = 2
max-requests-per-user = 4
max-requests = 16'

@test "mountd: a user's own tree within its delegation is granted, with the map's owners" {
	local t
	t=$(md_tree 1)
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 10)):1 b:$MD_SUB1:$((MD_SUB1 + 20)):1" \
		--source "$t" --stat f --stat g --stat d
	assert_success
	assert_output "ok
f $((MD_SUB1 + 10)):$((MD_SUB1 + 10))
g $((MD_SUB1 + 20)):$((MD_SUB1 + 20))
d $((MD_SUB1 + 10)):$((MD_SUB1 + 10))"
	md_assert_clean
}

@test "mountd: attached in the user's own namespaces, nodev can't be lifted" {
	local t m
	t=$(md_tree 1)
	m=$(scratch m)
	# root of the user's namespace = the user's uid; the map sends f's
	# owner (the uid) to itself and g's (first delegated id) to the uid
	run md_client 1 --map "b:$MD_UID1:$MD_UID1:1 b:$MD_SUB1:$((MD_SUB1 + 1)):1" \
		--source "$t" --attach "$m" --stat f --stat g
	assert_success
	assert_line "attach: OK"
	assert_line "ns f 0:0"
	assert_line "ns g 65534:65534"
	assert_line "clear-nodev: EPERM"
	# nothing of it is visible outside the user's namespace
	run grep -F " $m " /proc/self/mountinfo
	assert_failure
	md_assert_clean
}

@test "mountd: another user's directory is refused" {
	local t
	t=$(md_tree 2)
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the source directory is owned by uid $MD_UID2, which is neither yours ($MD_UID1) nor in your /etc/subuid delegation"
	md_assert_clean
}

@test "mountd: /etc is refused" {
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source /etc
	assert_failure 1
	assert_output "refused: EPERM: the source directory is owned by uid 0, which is neither yours ($MD_UID1) nor in your /etc/subuid delegation"
	md_assert_clean
}

@test "mountd: a caller-owned directory with a root-owned filesystem mounted below it is refused" {
	local t
	t=$(md_tree 1)
	mkdir "$t/sub"
	mount -t tmpfs -o mode=0700 mdsub "$t/sub"
	track_mount "$t/sub"
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the source has mounts below it (the service clones exactly one mount, non-recursively: ask for each mount separately)"
	umount "$t/sub"
	md_assert_clean
}

@test "mountd: a map whose on-disk side leaves the delegation is refused" {
	local t
	t=$(md_tree 1)
	run md_client 1 --map "b:$MD_UID2:$((MD_SUB1 + 1)):1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's on-disk uid $MD_UID2 is not yours (neither your uid $MD_UID1 nor in your /etc/subuid delegation)"
	run md_client 1 --map "b:$MD_SUB1:$((MD_SUB1 + 1)):65537" --source "$t"
	assert_failure 1
	assert_output --partial "the map's"
	md_assert_clean
}

@test "mountd: a map whose seen side leaves the delegation is refused" {
	local t
	t=$(md_tree 1)
	run md_client 1 --map "b:$MD_UID1:$MD_SUB2:1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's seen uid $MD_SUB2 is not yours (neither your uid $MD_UID1 nor in your /etc/subuid delegation)"
	run md_client 1 --map "u:$MD_UID1:$MD_UID1:1 g:$MD_UID1:100:1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's seen gid 100 is not yours (neither your gid $MD_UID1 nor in your /etc/subgid delegation)"
	md_assert_clean
}

@test "mountd: host 0 on either side is refused" {
	local t
	t=$(md_tree 1)
	run md_client 1 --map "b:$MD_UID1:0:1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's seen side of uid extent $MD_UID1:0:1 contains host uid 0 (the service never maps host root)"
	run md_client 1 --map "b:0:$MD_UID1:1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's on-disk side of uid extent 0:$MD_UID1:1 contains host uid 0 (the service never maps host root)"
	md_assert_clean
}

@test "mountd: a path swapped for a symlink between open and request gives the opened tree, never the link's target" {
	local t
	t=$(md_tree 1)
	chmod 0777 "$MD_T"
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t" --swap /etc \
		--stat f --stat passwd
	assert_success
	assert_output "ok
f $((MD_SUB1 + 1)):$((MD_SUB1 + 1))
passwd ENOENT"
	[ -L "$t" ]
	md_assert_clean
}

@test "mountd: fds of /proc, of a socket, of a file are refused" {
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source /proc
	assert_failure 1
	assert_output "refused: EPERM: the source is on a 'proc' filesystem, a kernel interface the service never idmaps"
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source /sys
	assert_failure 1
	assert_output "refused: EPERM: the source is on a 'sysfs' filesystem, a kernel interface the service never idmaps"
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source-socket
	assert_failure 1
	assert_output "refused: ENOTDIR: the source is not a directory"
	local t
	t=$(md_tree 1)
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t/f" --open path
	assert_failure 1
	assert_output "refused: ENOTDIR: the source is not a directory"
	md_assert_clean
}

@test "mountd: an fd of an already idmapped mount is refused" {
	local t m
	t=$(md_tree 1)
	m=$(scratch idm)
	# its root shows as a delegated id, so only the idmap is wrong
	idmap_mount --map "b:$MD_UID1:$((MD_SUB1 + 5)):1" "$t" "$m"
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$m"
	assert_failure 1
	assert_output "refused: EPERM: the source is already an idmapped mount (ask for a mount of the directory it shows)"
	umount "$m"
	md_assert_clean
}

@test "mountd: user namespace fds of another owner, of the initial namespace, or mapping root are refused" {
	local t pid
	t=$(md_tree 1)
	# a namespace root made (owner 0), mapping only the user's ids
	pid=$(userns_process "0 $MD_SUB1 65536")
	run md_client 1 --userns-fd 5 --source "$t" 5<"/proc/$pid/ns/user"
	assert_failure 1
	assert_output "refused: EPERM: the user namespace belongs to uid 0, not to you ($MD_UID1)"
	# the user's own view of the initial namespace
	run md_client 1 --userns-fd 5 --source "$t" 5</proc/self/ns/user
	assert_failure 1
	assert_output "refused: EPERM: the user namespace belongs to uid 0, not to you ($MD_UID1)"
	# the user's own namespace, root in it = its uid: on-disk 0 -> uid
	run md_as 1 unshare --user --map-root-user sh -c \
		'exec "$0" "$1" --userns-fd 5 --source "$2" 5</proc/self/ns/user' \
		"$MD_CLIENT" "$MD_SOCK" "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's on-disk side of uid extent 0:$MD_UID1:1 contains host uid 0 (the service never maps host root)"
	# not a namespace at all
	run md_client 1 --userns-fd 5 --source "$t" 5<"$t/f"
	assert_failure 1
	assert_output "refused: EPERM: the second file descriptor is not a user namespace"
	md_assert_clean
}

@test "mountd: the caller's own user namespace, within its delegation, serves as the map" {
	local t
	t=$(md_tree 1)
	chown "$((MD_SUB1 + 1)):$((MD_SUB1 + 1))" "$t/g"
	# namespace ids S+1.. are host S+101..: on disk S+1 is seen as S+101,
	# which the client (inside that namespace) sees as its S+1 again
	run md_as 1 unshare --user \
		--map-users="$((MD_SUB1 + 101)),$((MD_SUB1 + 1)),999" \
		--map-groups="$((MD_SUB1 + 101)),$((MD_SUB1 + 1)),999" sh -c \
		'exec "$0" "$1" --userns-fd 5 --source "$2" --stat g --stat f 5</proc/self/ns/user' \
		"$MD_CLIENT" "$MD_SOCK" "$t"
	assert_success
	assert_output "ok
g $((MD_SUB1 + 1)):$((MD_SUB1 + 1))
f 65534:65534"
	grep -q "uid $MD_UID1 pid [0-9]*: granted" "$MD_LOG"
	md_assert_clean
}

@test "mountd: a forged uid in the message body is refused, not believed" {
	local t
	t=$(md_tree 2)
	run md_client 1 --source "$t" \
		--json "{\"version\":1,\"op\":\"idmap\",\"map\":\"b:$MD_UID2:$((MD_SUB2 + 1)):1\",\"uid\":$MD_UID2}"
	assert_failure 1
	assert_output "refused: EBADMSG: unknown key 'uid'"
	md_assert_clean
}

@test "mountd: malformed, truncated and oversized messages are refused" {
	local t
	t=$(md_tree 1)
	run md_client 1 --source "$t" --json 'not json'
	assert_failure 1
	assert_output --partial 'refused: EBADMSG: not JSON'
	run md_client 1 --source "$t" --json '{"version":1,"op":"idmap","map":'
	assert_failure 1
	assert_output --partial 'refused: EBADMSG: not JSON'
	run md_client 1 --source "$t" --json '{"version":7,"op":"idmap","map":"b:1:1:1"}'
	assert_failure 1
	assert_output 'refused: EBADMSG: protocol version 7 is not spoken here (version 1)'
	run md_client 1 --source "$t" --raw-size 5000
	assert_failure 1
	assert_output 'refused: EBADMSG: message larger than 4096 bytes'
	run md_client 1 --source "$t" --raw-size 4096
	assert_failure 1
	assert_output --partial 'refused: EBADMSG: not JSON'
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t" --fds 12
	assert_failure 1
	assert_output 'refused: EBADMSG: more than 4 file descriptors'
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t" --fds 0
	assert_failure 1
	assert_output 'refused: EBADMSG: 0 file descriptors sent, 1 expected (the source directory)'
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t" --fds 2
	assert_failure 1
	assert_output 'refused: EBADMSG: 2 file descriptors sent, 1 expected (the source directory)'
	run md_client 1 --map "x:1:2" --source "$t"
	assert_failure 1
	assert_output --partial "refused: EBADMSG: bad map 'x:1:2'"
	md_assert_clean
}

@test "mountd: clients that disconnect mid-request or never speak cost nothing" {
	local t i pids=()
	t=$(md_tree 1)
	for i in $(seq 20); do
		md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t" --disconnect >/dev/null || true
	done
	# four silent clients take user 1's four slots until the timeout
	for i in 1 2 3 4; do
		md_as 1 /usr/bin/python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); time.sleep(4)' "$MD_SOCK" 3>&- &
		pids+=($!)
	done
	sleep 0.5
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_failure 1
	assert_output "refused: EAGAIN: busy: 4 requests of yours in flight (max-requests-per-user), retry later"
	# another user is not starved
	local t2
	t2=$(md_tree 2)
	run md_client 2 --map "b:$MD_UID2:$((MD_SUB2 + 1)):1" --source "$t2"
	assert_output ok
	# after the 2 s timeout the slots are free again
	sleep 2.5
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_output ok
	# the silent clients end by themselves (4 s)
	wait "${pids[@]}" 2>/dev/null || true
	grep -q "ended by signal 14 (timeout)" "$MD_LOG"
	md_assert_clean
}

@test "mountd: a user's namespace processes, whatever their uids, share the user's limit" {
	local t pid
	t=$(md_tree 1)
	# four silent clients as four different delegated uids of user 1
	md_as 1 unshare --user --map-users="$((MD_SUB1 + 100)),0,1000" \
		--map-groups="$((MD_SUB1 + 100)),0,1000" --setuid 0 --setgid 0 sh -c '
		for i in 1 2 3 4; do
			setpriv --reuid $i --regid $i --clear-groups /usr/bin/python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); time.sleep(4)" "$0" &
		done
		wait' "$MD_SOCK" 3>&- &
	pid=$!
	sleep 0.7
	run md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_output "refused: EAGAIN: busy: 4 requests of yours in flight (max-requests-per-user), retry later"
	wait "$pid" || true
	md_assert_clean
}

@test "mountd: 1000 requests at once from two users: each answered, the refused ones busy as documented, the daemon still serving" {
	local t1 t2 i out=$MD_T/flood
	t1=$(md_tree 1)
	t2=$(md_tree 2)
	mkdir "$out"
	# 50 clients at once (25 per user), 20 requests each, against 4
	# requests per user and 16 in total: most are answered "busy"
	for i in $(seq 25); do
		md_client 1 --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t1" --count 20 >"$out/1.$i" 3>&- &
		md_client 2 --map "b:$MD_UID2:$((MD_SUB2 + 1)):1" --source "$t2" --count 20 >"$out/2.$i" 3>&- &
	done
	wait
	# every request got an answer: a mount, or "busy"; never anything else
	run sh -c "cat '$out'/* | awk -F'[= ]' '/^ok=/ {ok+=\$2; busy+=\$4; bad+=\$6} END {print ok+busy, bad}'"
	assert_output "1000 0"
	# neither user was starved
	for i in 1 2; do
		run sh -c "cat '$out'/$i.* | awk -F'[= ]' '/^ok=/ {ok+=\$2} END {print (ok > 0)}'"
		assert_output 1
	done
	# a refused request is "busy" with one of the documented messages
	run sh -c "cat '$out'/* | grep '^busy: ' | sort -u | grep -Ev '^busy: busy: [0-9]+ requests (of yours in flight \(max-requests-per-user\)|in flight \(max-requests\)), retry later$'"
	assert_output ""
	# no fd, worker, mount or namespace left behind, and still serving
	md_assert_clean
}

# Last: stop the daemon and read its log.  Under ASan/UBSan (a build-asan
# --bindir) a report, a leak at exit or a worker killed by anything but
# the timeout fails here.
@test "mountd: after all of it, the daemon stops cleanly: no sanitizer report, no crashed worker" {
	local pid=$MD_PID
	kill -TERM "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	run kill -0 "$pid"
	assert_failure
	run grep -E "Sanitizer|runtime error|ended by signal (1[^4]|[02-9])" "$MD_LOG"
	assert_failure
	grep -q "shift-mountd: stopping" "$MD_LOG"
	[ ! -e "$MD_SOCK" ]
}
