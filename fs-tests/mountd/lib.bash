# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2034 # MD_*: used by the bats files
#
# fs-tests/mountd: a shift-mountd started by the test file on a private
# socket in its scratch root, and real test users with /etc/subuid and
# /etc/subgid delegations.
#
#   md_setup_file / md_teardown_file   users, daemon (stopped by pid), fs
#                         (this file's setup_file, teardown_file, setup and
#                         teardown hooks call them and md_setup/md_teardown)
#   md_users_create N     users skmd<PID><letter> (uids 61000-61999), each
#                         with 65536 delegated ids: MD_USERi MD_UIDi MD_SUBi
#   md_as i CMD...        run CMD as user i (no groups, no capabilities)
#   md_client i ARGS...   the test client (fs-tests/helpers/mountd-client.c)
#                         as user i against the daemon's socket
#   md_tree i             a fresh directory in $FS_TREE owned by user i with
#                         files f (uid), g (first delegated id), d/ (uid)
#   md_snapshot           the daemon's fds, children, mounts and namespaces
#   md_assert_clean       nothing of that changed since the test's setup,
#                         and the daemon still serves

load ../lib/common

MD_CLIENT_SRC=$HELPERS/mountd-client
SHIFT_MOUNTD=${SHIFT_MOUNTD:-$BUILDDIR/bin/shift-mountd}

md_users_create() {
	local n=$1 i name letters=abcdefgh start uid
	for ((i = 1; i <= n; i++)); do
		name=skmd$$${letters:i-1:1}
		echo "$name" >>"$SK_TMP/.md-users"
		useradd -M -U -s /usr/sbin/nologin -K UID_MIN=61000 \
			-K UID_MAX=61999 -K GID_MIN=61000 -K GID_MAX=61999 \
			-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$name"
		uid=$(id -u "$name")
		start=$((70000000 + (uid - 61000) * 65536))
		usermod --add-subuids "$start-$((start + 65535))" \
			--add-subgids "$start-$((start + 65535))" "$name"
		export "MD_USER$i=$name" "MD_UID$i=$uid" "MD_SUB$i=$start"
	done
}

md_users_remove() {
	local name
	[ -n "${SK_TMP:-}" ] && [ -s "$SK_TMP/.md-users" ] || return 0
	while read -r name; do
		[[ $name =~ ^skmd[0-9]+[a-h]$ ]] || continue
		# a process of the user may still be ending: retry a while
		for _ in $(seq 50); do
			userdel "$name" 2>/dev/null && break
			id "$name" >/dev/null 2>&1 || break
			sleep 0.2
		done
		groupdel "$name" 2>/dev/null || true
		sed -i "/^$name:/d" /etc/subuid /etc/subgid
	done <"$SK_TMP/.md-users"
	rm -f "$SK_TMP/.md-users"
}

# md_daemon_start [CONFIG-TEXT]: shift-mountd on $MD_SOCK, in the
# background, its log in $MD_LOG; waits until it listens.
md_daemon_start() {
	local i
	MD_DIR=$SK_TMP/mountd
	mkdir -p "$MD_DIR"
	chmod 0755 "$MD_DIR"
	MD_SOCK=$MD_DIR/sock
	MD_LOG=$SK_TMP/mountd.log
	printf '%s\n' "${1:-}" >"$SK_TMP/mountd.conf"
	"$SHIFT_MOUNTD" --socket "$MD_SOCK" --config "$SK_TMP/mountd.conf" \
		</dev/null >>"$MD_LOG" 2>&1 3>&- &
	MD_PID=$!
	echo "$MD_PID" >"$SK_TMP/mountd.pid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$MD_SOCK" ] && break
		sleep 0.05
	done
	[ -S "$MD_SOCK" ] || {
		echo "shift-mountd did not start: $(cat "$MD_LOG")" >&2
		return 1
	}
	export MD_SOCK MD_PID MD_LOG
}

md_daemon_stop() {
	local pid
	[ -n "${SK_TMP:-}" ] && [ -f "$SK_TMP/mountd.pid" ] || return 0
	pid=$(cat "$SK_TMP/mountd.pid")
	# Only the daemon this file started (its command line says so).
	if grep -qa shift-mountd "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$SK_TMP/mountd.pid"
}

md_setup_file() {
	fs_setup
	[ -x "$SHIFT_MOUNTD" ] && [ -x "$MD_CLIENT_SRC" ] || {
		echo "mountd: build shift-mountd and helpers/mountd-client (make)" >&2
		return 1
	}
	mkdir -p "$SK_TMP/bin"
	chmod 0755 "$SK_TMP/bin"
	install -m 0755 "$MD_CLIENT_SRC" "$SK_TMP/bin/mountd-client"
	export MD_CLIENT=$SK_TMP/bin/mountd-client
	md_users_create 2
	md_daemon_start "${MD_CONF:-}"
}

md_teardown_file() {
	md_daemon_stop
	md_users_remove
	fs_teardown
}

md_setup() {
	# a test that stopped the daemon leaves nothing to compare with
	kill -0 "$MD_PID" 2>/dev/null || return 0
	require_writable
	require_idmap
	MD_T=$FS_TREE/md.t$BATS_TEST_NUMBER
	rm -rf --one-file-system "$MD_T"
	mkdir -m 0755 "$MD_T"
	MD_BASE=$(md_snapshot)
}

md_teardown() {
	fs_test_teardown
	[ -z "${MD_T:-}" ] || rm -rf --one-file-system "$MD_T"
}

md_as() {
	local i=$1 uid
	shift
	uid=$(eval echo "\$MD_UID$i")
	setpriv --reuid "$uid" --regid "$uid" --clear-groups \
		--inh-caps=-all -- "$@"
}

md_client() {
	local i=$1
	shift
	md_as "$i" "$MD_CLIENT" "$MD_SOCK" "$@"
}

# md_tree i: print a fresh tree owned by user i.
md_tree() {
	local i=$1 uid sub d
	uid=$(eval echo "\$MD_UID$i")
	sub=$(eval echo "\$MD_SUB$i")
	d=$MD_T/u$i.$RANDOM
	mkdir -p "$d/d"
	echo f >"$d/f"
	echo g >"$d/g"
	chown -R "$uid:$uid" "$d"
	chown "$sub:$sub" "$d/g"
	echo "$d"
}

# Workers finish within the timeout; wait for them before counting.
md_quiet() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -z "$(pgrep -P "$MD_PID")" ] && return 0
		sleep 0.05
	done
	return 1
}

md_snapshot() {
	md_quiet || true
	printf 'fds=%s children=%s mounts=%s idmapped=%s ns=%s\n' \
		"$(find "/proc/$MD_PID/fd" -mindepth 1 | wc -l)" \
		"$(pgrep -P "$MD_PID" | wc -l)" \
		"$(grep -c -F "$SK_TMP" "/proc/$MD_PID/mountinfo")" \
		"$(grep -F "$SK_TMP" "/proc/$MD_PID/mountinfo" | grep -c idmapped)" \
		"$(readlink "/proc/$MD_PID/ns/mnt" "/proc/$MD_PID/ns/user" | tr '\n' ,)"
}

md_assert_clean() {
	local now
	now=$(md_snapshot)
	assert_equal "$now" "$MD_BASE"
	kill -0 "$MD_PID"
	# still serving: a good request from user 2 gets its mount
	local t
	t=$(md_tree 2)
	run md_client 2 --map "b:$MD_UID2:$((MD_SUB2 + 1)):1" --source "$t"
	assert_output ok
	assert_equal "$(md_snapshot)" "$MD_BASE"
}

# The bats hooks of every fs-tests/mountd file.
setup_file() {
	md_setup_file
}

teardown_file() {
	md_teardown_file
}

setup() {
	md_setup
}

teardown() {
	md_teardown
}

# md_minimal_rootfs DIR: a root filesystem that runs: dash (also as a
# setuid copy, bin/suidsh, mode 4755), id, stat and their libraries,
# /etc/passwd and /etc/shadow (0640) for root; owned by the caller.
md_minimal_rootfs() {
	local r=$1 l
	mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/dev" "$r/lib64" "$r/lib/x86_64-linux-gnu"
	cp /bin/dash "$r/bin/sh"
	cp /bin/dash "$r/bin/suidsh"
	cp /usr/bin/id /usr/bin/stat "$r/bin/"
	for l in $(ldd /bin/dash /usr/bin/id /usr/bin/stat | awk '$3 ~ /^\// {print $3}' | sort -u); do
		cp "$l" "$r/lib/x86_64-linux-gnu/"
	done
	cp /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
	echo 'root:x:0:0:root:/:/bin/sh' >"$r/etc/passwd"
	echo 'root:*:19000:0:99999:7:::' >"$r/etc/shadow"
	chmod 0640 "$r/etc/shadow"
	chmod 4755 "$r/bin/suidsh"
}
