#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The service from the user's side: shift-mount without CAP_SYS_ADMIN gets
# its idmapped mount from shift-mountd and attaches it in the user's own
# user and mount namespaces (the rootless container case: root owns / and
# /etc/shadow inside, setuid bits kept, new files land in the delegation,
# nothing copied or chowned); shift-probe's row; shift-mountd's command
# line, configuration and socket activation.

load lib

# A root filesystem as a rootless store keeps it: container root is the
# user's uid on disk, container id k is delegated id k-1.
mk_rootfs() {
	local r=$MD_T/rootfs
	mkdir -p "$r/etc" "$r/bin" "$r/home/k"
	echo 'root:*:19000:0:99999:7:::' >"$r/etc/shadow"
	chmod 0640 "$r/etc/shadow"
	echo su >"$r/bin/su"
	chown -R "$MD_UID1:$MD_UID1" "$r"
	chmod 4755 "$r/bin/su"
	chown "$((MD_SUB1 + 4)):$((MD_SUB1 + 4))" "$r/home/k"
	echo "$r"
}

@test "client: a normal user's rootless container root filesystem through shift-mount and the service" {
	local r m before
	r=$(mk_rootfs)
	m=$(scratch root)
	before=$(stat -c '%u:%g' "$r" "$r/etc/shadow" "$r/bin/su" "$r/home/k")
	# the container's namespace: ids 0..999 are the delegation's 100..1099;
	# the mount shows disk uid as 0 and disk delegated id k-1 as k
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- unshare --user \
		--map-users="$((MD_SUB1 + 100)),0,1000" --map-groups="$((MD_SUB1 + 100)),0,1000" \
		--mount --setuid 0 --setgid 0 sh -c '
		"$0" -v --map "b:$1:$(($2 + 100)):1 b:$2:$(($2 + 101)):999" "$3" "$4" || exit
		stat -c "%n %u:%g %a" "$4" "$4/etc/shadow" "$4/bin/su" "$4/home/k"
		echo new >"$4/new" && mkdir "$4/newdir" && chown 5:5 "$4/newdir"' \
		"$SHIFT_MOUNT" "$MD_UID1" "$MD_SUB1" "$r" "$m"
	assert_success
	assert_output "shift-mount: no CAP_SYS_ADMIN: asking shift-mountd at '$MD_SOCK' (the mount is nodev)
shift-mount: attached the idmapped mount made by shift-mountd at '$m'
$m 0:0 755
$m/etc/shadow 0:0 640
$m/bin/su 0:0 4755
$m/home/k 5:5 755"
	# on disk: what was there is unchanged, what was written is the user's
	assert_equal "$(stat -c '%u:%g' "$r" "$r/etc/shadow" "$r/bin/su" "$r/home/k")" "$before"
	assert_equal "$(owner "$r/new")" "$MD_UID1:$MD_UID1"
	assert_equal "$(owner "$r/newdir")" "$((MD_SUB1 + 4)):$((MD_SUB1 + 4))"
	# nothing mounted outside the user's namespace
	run grep -F " $m " /proc/self/mountinfo
	assert_failure
	md_assert_clean
}

# mk_bundle DIR: an OCI bundle whose rootfs holds dash (also as a setuid
# copy), id, stat and their libraries, owned by user 1 as a rootless store
# keeps it; config.json runs ARGS as UID inside.
mk_bundle() {
	local b=$1
	md_minimal_rootfs "$b/rootfs"
	mkdir -p "$b/mnt"
	chown -R "$MD_UID1:$MD_UID1" "$b"
	# chown clears the setuid bit
	chmod 4755 "$b/rootfs/bin/suidsh"
}

# mk_config DIR BUNDLE UID ARGS: DIR/config.json (readable by anyone)
# running ARGS as UID on BUNDLE's mounted root filesystem.
mk_config() {
	mkdir -p "$1"
	cat >"$1/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": $3, "gid": $3},
             "args": ["/bin/sh", "-c", "$4"], "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "$2/mnt", "readonly": false},
 "hostname": "c1",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]}}
JSON
}

@test "client: crun as the user starts a container on a root filesystem mounted through the service" {
	command -v crun >/dev/null || skip "crun is not installed"
	local b=$MD_T/bundle st=$MD_T/state
	mk_bundle "$b"
	mkdir -m 1777 "$st"
	mk_config "$MD_T/c-root" "$b" 0 "stat -c '%n %U %u:%g %a' / /etc/shadow /bin/suidsh; echo hi >/written; id"
	mk_config "$MD_T/c-user" "$b" 100 "id -u; /bin/suidsh -p -c 'id -u; id -nu'"
	# The user's own namespaces, as a rootless runtime makes them; crun
	# needs no user namespace of its own there.  A hybrid cgroup layout
	# makes crun 1.8 refuse to start, so the user hides the unified
	# hierarchy in its own mount namespace (cgroups are disabled anyway).
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- unshare --user \
		--map-users="$((MD_SUB1 + 100)),0,1000" --map-groups="$((MD_SUB1 + 100)),0,1000" \
		--mount --setuid 0 --setgid 0 sh -c '
		if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs none /sys/fs/cgroup/unified; fi
		"$0" --map "b:$1:$(($2 + 100)):1 b:$2:$(($2 + 101)):999" "$3/rootfs" "$3/mnt" || exit
		for c in root user; do
			: | crun --root "$4" --cgroup-manager=disabled run --bundle "$5/c-$c" "c-$c" || exit
		done' "$SHIFT_MOUNT" "$MD_UID1" "$MD_SUB1" "$b" "$st" "$MD_T"
	assert_success
	assert_output "/ root 0:0 755
/etc/shadow root 0:0 640
/bin/suidsh root 0:0 4755
uid=0(root) gid=0 groups=0
100
0
root"
	# written by the container's root: on disk it is the user's own uid;
	# nothing of the tree was copied or chowned
	assert_equal "$(owner "$b/rootfs/written")" "$MD_UID1:$MD_UID1"
	assert_equal "$(stat -c '%u:%g %a' "$b/rootfs/bin/suidsh")" "$MD_UID1:$MD_UID1 4755"
	md_assert_clean
}

@test "client: in the initial mount namespace the attach fails with what to do" {
	local t m
	t=$(md_tree 1)
	m=$(scratch m)
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- "$SHIFT_MOUNT" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" "$t" "$m"
	assert_failure 1
	assert_output "shift-mount: Failed to attach the idmapped mount from shift-mountd at '$m': Operation not permitted (attach it in a mount namespace you own: run shift-mount inside 'unshare --user --map-root-user --mount' or your container's namespaces)"
	md_assert_clean
}

@test "client: the service's refusal reaches the user as one line" {
	local m
	m=$(scratch m)
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- unshare --user --map-root-user --mount \
		"$SHIFT_MOUNT" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" /etc "$m"
	assert_failure 1
	assert_output "shift-mount: Failed to idmap '/etc' through shift-mountd: the source directory is owned by uid 0, which is neither yours ($MD_UID1) nor in your /etc/subuid delegation"
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- unshare --user --map-root-user --mount \
		"$SHIFT_MOUNT" -r --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" "$MD_T" "$m"
	assert_failure 1
	assert_output --partial "--recursive is not available through shift-mountd"
	md_assert_clean
}

@test "client: an overlayfs SOURCE is not re-assembled through the service: one line, exit 1" {
	local o m
	o=$(scratch o)
	m=$(scratch m)
	mkdir "$o.l1" "$o.l2"
	mount -t overlay sk-ovl -o "lowerdir=$o.l1:$o.l2" "$o"
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- unshare --user --map-root-user --mount \
		"$SHIFT_MOUNT" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" "$o" "$m"
	assert_failure 1
	assert_output "shift-mount: Failed to idmap '$o': it is an overlayfs mount, and re-assembling it over its idmapped layers is not available through shift-mountd (run as root)"
	umount "$o"
	md_assert_clean
}

@test "client: without the service, -v says so and the error says what to start" {
	local t m
	t=$(md_tree 1)
	m=$(scratch m)
	run env SHIFT_MOUNTD_SOCKET="$SK_TMP/no-such.sock" setpriv --reuid "$MD_UID1" --regid "$MD_UID1" \
		--clear-groups -- "$SHIFT_MOUNT" -v --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" "$t" "$m"
	assert_failure
	assert_line "shift-mount: no CAP_SYS_ADMIN, and shift-mountd is not reachable at '$SK_TMP/no-such.sock': trying directly"
	assert_output --partial "start shift-mountd: systemctl start shift-mountd.socket"
}

@test "client: root takes the direct path and -v says so" {
	local t m
	t=$(md_tree 1)
	m=$(scratch m)
	run "$SHIFT_MOUNT" -v --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" "$t" "$m"
	assert_success
	assert_output "shift-mount: making the idmapped mount directly"
	umount "$m"
}

@test "client: shift-probe reports whether the service answers" {
	run env SHIFT_MOUNTD_SOCKET="$MD_SOCK" "$SHIFT_PROBE" --features-only --json
	assert_success
	run jq -c '.uidmap_tools[] | select(.tool == "shift-mountd")' <<<"$output"
	assert_output "{\"tool\":\"shift-mountd\",\"path\":\"$MD_SOCK\",\"present\":true,\"setuid\":false,\"filecaps\":null}"
	run env SHIFT_MOUNTD_SOCKET="$SK_TMP/no-such.sock" "$SHIFT_PROBE" --features-only
	assert_success
	assert_line --regexp "^shift-mountd +$SK_TMP/no-such.sock +no +no *$"
}

@test "shift-mountd: --help, --version, usage errors" {
	run "$SHIFT_MOUNTD" --help
	assert_success
	assert_line --partial "Usage:"
	run "$SHIFT_MOUNTD" --version
	assert_success
	run "$SHIFT_MOUNTD" --bogus
	assert_failure 2
	run "$SHIFT_MOUNTD" extra
	assert_failure 2
	assert_output --partial "unexpected argument 'extra'"
	run setpriv --reuid "$MD_UID1" --regid "$MD_UID1" --clear-groups -- \
		"$SHIFT_MOUNTD" --config /dev/null --socket "$SK_TMP/x.sock"
	assert_failure 1
	assert_output "shift-mountd: must run as root (it makes idmapped mounts for others)"
}

@test "shift-mountd: the configuration is checked, unknown keys refused" {
	printf 'allow-users = *\ntimeout = 5\n' >"$MD_T/ok.conf"
	run "$SHIFT_MOUNTD" --check-config --config "$MD_T/ok.conf"
	assert_success
	assert_output ""
	printf 'timeout = 5\nallow_users = *\n' >"$MD_T/bad.conf"
	run "$SHIFT_MOUNTD" --check-config --config "$MD_T/bad.conf"
	assert_failure 2
	assert_output "shift-mountd: '$MD_T/bad.conf': line 2: unknown key 'allow_users'"
	printf 'foreign-range = perhaps\n' >"$MD_T/bad.conf"
	run "$SHIFT_MOUNTD" --socket "$MD_T/never.sock" --config "$MD_T/bad.conf"
	assert_failure 2
	assert_output "shift-mountd: '$MD_T/bad.conf': line 1: invalid value 'perhaps' for 'foreign-range' (use yes or no)"
	[ ! -e "$MD_T/never.sock" ]
}

@test "shift-mountd: allow-users refuses users not listed" {
	local pid t
	printf 'allow-users = %s\n' "$MD_USER2" >"$MD_T/only2.conf"
	"$SHIFT_MOUNTD" --socket "$MD_T/only2.sock" --config "$MD_T/only2.conf" \
		</dev/null >"$MD_T/only2.log" 2>&1 3>&- &
	pid=$!
	for _ in $(seq 100); do [ -S "$MD_T/only2.sock" ] && break; sleep 0.05; done
	t=$(md_tree 1)
	run md_as 1 "$MD_CLIENT" "$MD_T/only2.sock" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_output "refused: EPERM: user '$MD_USER1' may not use shift-mountd (allow-users, allow-groups in /etc/shiftkit/mountd.conf)"
	t=$(md_tree 2)
	run md_as 2 "$MD_CLIENT" "$MD_T/only2.sock" --map "b:$MD_UID2:$((MD_SUB2 + 1)):1" --source "$t"
	assert_output ok
	kill "$pid"
	wait "$pid" || true
	[ ! -e "$MD_T/only2.sock" ]
}

# md_extra_daemon NAME CONFIG: a second daemon with its own configuration
# on $MD_T/NAME.sock (stopped by pid in the test).
md_extra_daemon() {
	printf '%s\n' "$2" >"$MD_T/$1.conf"
	"$SHIFT_MOUNTD" --socket "$MD_T/$1.sock" --config "$MD_T/$1.conf" \
		</dev/null >"$MD_T/$1.log" 2>&1 3>&- &
	MD_EXTRA=$!
	for _ in $(seq 100); do [ -S "$MD_T/$1.sock" ] && break; sleep 0.05; done
	[ -S "$MD_T/$1.sock" ]
}

@test "shift-mountd: allow-groups lets a group's members in" {
	local t
	md_extra_daemon grp "allow-users = nobody
allow-groups = $MD_USER1"
	t=$(md_tree 1)
	run md_as 1 "$MD_CLIENT" "$MD_T/grp.sock" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_output ok
	t=$(md_tree 2)
	run md_as 2 "$MD_CLIENT" "$MD_T/grp.sock" --map "b:$MD_UID2:$((MD_SUB2 + 1)):1" --source "$t"
	assert_output --partial "may not use shift-mountd"
	kill "$MD_EXTRA"
	wait "$MD_EXTRA" || true
}

@test "shift-mountd: foreign-range = yes accepts systemd's foreign range on disk, never as seen ids" {
	local t f=2147352576
	t=$(md_tree 1)
	chown -R "$f:$f" "$t"
	run md_client 1 --map "b:$f:$((MD_SUB1 + 1)):65536" --source "$t"
	assert_failure 1
	assert_output --partial "is neither yours ($MD_UID1) nor in your /etc/subuid delegation"
	md_extra_daemon foreign "foreign-range = yes"
	run md_as 1 "$MD_CLIENT" "$MD_T/foreign.sock" --map "b:$f:$MD_SUB1:65536" --source "$t" --stat f
	assert_success
	assert_output "ok
f $MD_SUB1:$MD_SUB1"
	run md_as 1 "$MD_CLIENT" "$MD_T/foreign.sock" --map "b:$MD_SUB1:$f:1" --source "$t"
	assert_failure 1
	assert_output "refused: EPERM: the map's seen uid $f is not yours (neither your uid $MD_UID1 nor in your /etc/subuid delegation)"
	kill "$MD_EXTRA"
	wait "$MD_EXTRA" || true
}

@test "shift-mountd: socket activation (LISTEN_PID, LISTEN_FDS, fd 3)" {
	local t
	t=$(md_tree 1)
	# a SOCK_SEQPACKET listener as fd 3, then exec: the pid stays
	/usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666); s.listen(8)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.argv[2], [sys.argv[2], "--config", "/dev/null"])' \
		"$MD_T/act.sock" "$SHIFT_MOUNTD" </dev/null >"$MD_T/act.log" 2>&1 3>&- &
	local pid=$!
	for _ in $(seq 100); do grep -q serving "$MD_T/act.log" && break; sleep 0.05; done
	run md_as 1 "$MD_CLIENT" "$MD_T/act.sock" --map "b:$MD_UID1:$((MD_SUB1 + 1)):1" --source "$t"
	assert_output ok
	kill "$pid"
	wait "$pid" || true
	grep -q "serving on the activation socket" "$MD_T/act.log"
	# a stream socket is not what the unit promises
	run /usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.argv[2], [sys.argv[2], "--config", "/dev/null"])' \
		"$MD_T/stream.sock" "$SHIFT_MOUNTD"
	assert_failure 2
	assert_output "shift-mountd: socket activation: fd 3 is not a listening SOCK_SEQPACKET socket (ListenSequentialPacket= in the .socket unit)"
}
