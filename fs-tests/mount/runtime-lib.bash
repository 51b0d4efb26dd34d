# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# fs-tests/mount/runtime-lib.bash: real runtimes (crun, LXC) on a root
# filesystem, for runtime-overlay.bats and ../layer/runtime.bats (after
# ../lib/common).  The containers run in a user namespace with $MAP; TAG
# tells the scratch dirs of two runs in one test apart.

# require_runtime: skip a test named "lxc ..." without LXC (and the
# uidmap tools it maps ids with), any other without crun.
require_runtime() {
	if [[ $BATS_TEST_DESCRIPTION == lxc* ]]; then
		command -v lxc-execute >/dev/null || skip "lxc is not installed (no lxc-execute)"
		if ! command -v newuidmap >/dev/null || ! command -v newgidmap >/dev/null; then
			skip "newuidmap/newgidmap (uidmap) are not installed: LXC maps ids through them"
		fi
	else
		command -v crun >/dev/null || skip "crun is not installed"
	fi
}

# mk_image DIR: an image layer in the container's ids (root = 0): dash
# (also as a setuid copy), id, stat, cat (also as a copy with the file
# capability cap_dac_read_search) and their libraries, a root-only shadow.
mk_image() {
	local r=$1 l
	mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/dev" "$r/lib64" "$r/lib/x86_64-linux-gnu"
	cp /bin/dash "$r/bin/sh"
	cp /bin/dash "$r/bin/suidsh"
	cp /usr/bin/id /usr/bin/stat /bin/cat "$r/bin/"
	cp /bin/cat "$r/bin/capcat"
	for l in $(ldd /bin/dash /usr/bin/id /usr/bin/stat /bin/cat | awk '$3 ~ /^\// {print $3}' | sort -u); do
		cp "$l" "$r/lib/x86_64-linux-gnu/"
	done
	cp /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
	echo 'root:x:0:0:root:/:/bin/sh' >"$r/etc/passwd"
	echo 'root:*:19000:0:99999:7:::' >"$r/etc/shadow"
	chmod 0640 "$r/etc/shadow"
	chmod 4755 "$r/bin/suidsh"
	setcap cap_dac_read_search+ep "$r/bin/capcat"
}

# mk_config DIR ROOT UID ARGS: DIR/config.json running ARGS as UID on
# ROOT, in a user namespace with $MAP; the bounding set holds only the
# file capability's (an effective file capability outside it is EPERM).
mk_config() {
	local h=${MAP#*:}
	mkdir -p "$1"
	cat >"$1/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": $3, "gid": $3},
             "args": ["/bin/sh", "-c", "$4"], "env": ["PATH=/bin"], "cwd": "/",
             "capabilities": {"bounding": ["CAP_DAC_READ_SEARCH"]}},
 "root": {"path": "$2", "readonly": false},
 "hostname": "c1",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                          {"type": "uts"}, {"type": "user"}],
           "uidMappings": [{"containerID": 0, "hostID": ${h%%:*}, "size": ${MAP##*:}}],
           "gidMappings": [{"containerID": 0, "hostID": ${h%%:*}, "size": ${MAP##*:}}]}}
JSON
}

# run_containers ROOT [TAG]: crun runs, on ROOT, a container as root (owners,
# a write, copy-ups of a file and, unchanged, of the setuid and the
# capability binaries) and then one as uid 100 (the copied-up setuid
# binary and file capability work).
# crun 1.8 refuses a hybrid cgroup layout: it runs in a private mount
# namespace with cgroup2 at /sys/fs/cgroup, cgroups disabled.
run_containers() {
	local d st null
	null=$(stat -c '%u:%g %a' /dev/null)
	d=$(scratch "crun${2:-}")
	st=$d/state
	mkdir "$st"
	mk_config "$d/c-root" "$1" 0 \
		"stat -c '%n %u:%g %a' / /etc/shadow /bin/suidsh; echo hi >/written; echo more >>/etc/motd; : >>/bin/suidsh; : >>/bin/capcat; id -u"
	mk_config "$d/c-user" "$1" 100 \
		"id -u; /bin/suidsh -p -c 'id -u'; /bin/capcat /etc/shadow; cat /etc/shadow 2>/dev/null || echo denied"
	# shellcheck disable=SC2016 # expanded by the inner shell
	run unshare -m --propagation private sh -c '
		mount -t cgroup2 none /sys/fs/cgroup || exit
		for c in root user; do
			# stdin a pipe of its own: crun hands its stdio to the
			# container user (fchown), and an inherited /dev/null
			# would be the host'"'"'s
			: | crun --root "$1" --cgroup-manager=disabled run --bundle "$2/c-$c" "sk-$c-$$" || exit
		done' sh "$st" "$d"
	assert_success
	assert_output "/ 0:0 755
/etc/shadow 0:0 640
/bin/suidsh 0:0 4755
0
100
0
root:*:19000:0:99999:7:::
denied"
	# nothing outside the test's own files changed
	[ "$(stat -c '%u:%g %a' /dev/null)" = "$null" ] ||
		fail "the host's /dev/null changed: $(stat -c '%u:%g %a' /dev/null), was $null"
}

# lxc_config FILE ROOT UID: an LXC config running as UID on ROOT in a user
# namespace with $MAP; no network, /proc and a /dev of LXC's own.
lxc_config() {
	local h=${MAP#*:}
	cat >"$1" <<EOF
lxc.uts.name = c1
lxc.rootfs.path = dir:$2
lxc.idmap = u 0 ${h%%:*} ${MAP##*:}
lxc.idmap = g 0 ${h%%:*} ${MAP##*:}
lxc.init.uid = $3
lxc.init.gid = $3
lxc.net.0.type = empty
lxc.mount.auto = proc:mixed
lxc.autodev = 1
lxc.apparmor.profile = unconfined
lxc.console.path = none
lxc.log.level = WARN
EOF
}

# run_lxc ROOT [TAG]: the containers of run_containers, by lxc-execute.  LXC
# (as root too) maps ids with newuidmap/newgidmap, which need root's
# delegation of the range in /etc/subuid and /etc/subgid: the test's own
# files stand in for both in a private mount namespace (the real files are
# never touched), as the upper layer of an overlay over /etc, not as bind
# mounts over the two files: a bind mount on a file is bypassed as soon as
# the file is replaced by a rename (useradd, usermod and sed -i in tests
# running in parallel do exactly that), and newuidmap then reads the real
# /etc/subuid and refuses the map.  There, too, an empty tmpfs over
# /sys/fs/cgroup (LXC then makes no cgroups on the host) and over /run
# (its lock files).
run_lxc() {
	local d null h=${MAP#*:}
	null=$(stat -c '%u:%g %a' /dev/null)
	d=$(scratch "lxc${2:-}")
	mkdir "$d/path"
	echo "root:${h%%:*}:${MAP##*:}" >"$d/subid"
	lxc_config "$d/c-root.conf" "$1" 0
	lxc_config "$d/c-user.conf" "$1" 100
	# shellcheck disable=SC2016 # expanded by the inner shell
	run unshare -m --propagation private sh -c '
		mkdir "$1/etc-up" "$1/etc-wk" &&
			cp "$1/subid" "$1/etc-up/subuid" &&
			cp "$1/subid" "$1/etc-up/subgid" &&
			mount -t overlay sk-etc -o "lowerdir=/etc,upperdir=$1/etc-up,workdir=$1/etc-wk" /etc &&
			mount -t tmpfs sk-cg /sys/fs/cgroup &&
			mount -t tmpfs sk-run /run || exit
		lxc() {
			: | lxc-execute -n "sk-$1-$$" -P "$2/path" -f "$2/c-$1.conf" \
				-o "$2/$1.log" -- /bin/sh -c "$3" || {
				cat "$2/$1.log"
				exit 1
			}
		}
		lxc root "$1" "stat -c '"'"'%n %u:%g %a'"'"' / /etc/shadow /bin/suidsh; echo hi >/written; echo more >>/etc/motd; : >>/bin/suidsh; : >>/bin/capcat; id -u"
		lxc user "$1" "id -u; /bin/suidsh -p -c '"'"'id -u'"'"'; /bin/capcat /etc/shadow; cat /etc/shadow 2>/dev/null || echo denied"
	' sh "$d"
	assert_success
	assert_output "/ 0:0 755
/etc/shadow 0:0 640
/bin/suidsh 0:0 4755
0
100
0
root:*:19000:0:99999:7:::
denied"
	[ "$(stat -c '%u:%g %a' /dev/null)" = "$null" ] ||
		fail "the host's /dev/null changed: $(stat -c '%u:%g %a' /dev/null), was $null"
	[ ! -e /sys/fs/cgroup/unified/lxc.pivot ] || fail "LXC made cgroups on the host"
}
