#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-layer as a normal user: the rootless store (unpack --store inside a
# user namespace of the user's delegation: layers owned within it, opaque
# directories as user.overlay.opaque, device nodes skipped and counted,
# the store keyed by the delegation) and `shift-layer mount` through
# shift-mountd in the user's own user and mount namespaces, each container
# with its own range from shift-alloc --user.

load lib
load ../layer/lib

# The image: layer 1 with a setuid binary, a file capability, a device
# node, ids 0, 5, 42 and 999; layer 2 whites out etc/gone and makes d/
# opaque (hiding d/old).
mk_image() {
	local l1 l2
	l1=$(spec l1 <<'EOF'
dir etc 0 0 0755
file etc/shadow 0 42 0640 x
file etc/gone 0 0 0644 g
dir d 0 0 0755
file d/old 5 5 0644 o
dir bin 0 0 0755
file bin/su 0 0 04755 su
file bin/ping 0 0 0755 p
xattr security.capability 0100000200200000000000000000000000000000
dir dev 0 0 0755
chr dev/null 1 3 0 0 0666
dir home 0 0 0755
dir home/k 999 999 0755
file home/k/f 999 999 0644 f
EOF
	)
	l2=$(spec l2 <<'EOF'
file etc/.wh.gone
file d/.wh..wh..opq
file d/new 0 0 0644 n
EOF
	)
	mkimage "$MD_T/L" "$l1" "$l2"
	chmod -R a+rX "$MD_T/L"
	mkdir -m 0755 "$MD_T/u1" "$MD_T/u2"
	chown "$MD_UID1:$MD_UID1" "$MD_T/u1"
	chown "$MD_UID2:$MD_UID2" "$MD_T/u2"
}

layer_as() {
	local i=$1
	shift
	md_as "$i" env SHIFT_MOUNTD_SOCKET="${SOCK:-$MD_SOCK}" "$SHIFT_LAYER" "$@"
}

# The store's on-disk ids, modes and capabilities (for "nothing chowned").
store_listing() {
	(cd "$1" && find layers -printf '%p %U:%G %m %y\n' | LC_ALL=C sort &&
		getcap -rn layers | LC_ALL=C sort)
}

# in_ns RANGE SCRIPT ARGS...: SCRIPT as user 1, root of a container whose
# ids 0..999 are host RANGE..RANGE+999, in its own mount namespace
in_ns() {
	local range=$1 script=$2
	shift 2
	md_as 1 env SHIFT_MOUNTD_SOCKET="${SOCK:-$MD_SOCK}" LAYER="$SHIFT_LAYER" \
		unshare --user --map-users="$range,0,1000" --map-groups="$range,0,1000" \
		--mount --setuid 0 --setgid 0 sh -c "$script" sh "$@"
}

@test "layer: a normal user's store keeps the layers within its delegation, nothing of a device" {
	local s h
	mk_image
	s=$MD_T/u1/store
	run --separate-stderr layer_as 1 --json unpack --store "$s" "$MD_T/L"
	assert_success
	# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
	assert_equal "$stderr" "shift-layer: warning: skipping the device node 'dev/null' of layer 0: a normal user's store can't hold device nodes (the container's runtime provides /dev)"
	assert_equal "$(jq -c '[.layers_unpacked, .devices_skipped, .rootless]' <<<"$output")" "[2,1,true]"
	assert_equal "$(jq -c . "$s/delegation.json")" \
		"{\"uid\":$MD_UID1,\"map\":\"b:0:$MD_UID1:1 b:1:$MD_SUB1:65536\"}"
	# container id 0 is the user's uid, id k the delegation's k-th
	h=$(dirname "$(compgen -G "$s/layers/sha256/*/rootfs/bin/su")")/..
	assert_equal "$(cd "$h" && stat -c '%n %u:%g %a' . etc/shadow d/old bin/su home/k)" \
		". $MD_UID1:$MD_UID1 755
etc/shadow $MD_UID1:$((MD_SUB1 + 41)) 640
d/old $((MD_SUB1 + 4)):$((MD_SUB1 + 4)) 644
bin/su $MD_UID1:$MD_UID1 4755
home/k $((MD_SUB1 + 998)):$((MD_SUB1 + 998)) 755"
	[ ! -e "$h/dev/null" ] || fail "a device node was made"
	# the capability's root id is the user's uid (v3, made by the kernel)
	run sh -c "getfattr --absolute-names -e hex -n security.capability '$h/bin/ping' | sed -n 's/.*=0x//p'"
	assert_output "0100000300200000000000000000000000000000$(printf '%02x%02x%02x%02x' \
		$((MD_UID1 & 255)) $((MD_UID1 >> 8 & 255)) $((MD_UID1 >> 16 & 255)) 0)"
	# whiteouts: a 0/0 character device; opaque: the user.* xattr
	h=$(dirname "$(compgen -G "$s/layers/sha256/*/rootfs/d/new")")/..
	assert_equal "$(stat -c '%F %t:%T %u' "$h/etc/gone")" "character special file 0:0 $MD_UID1"
	assert_equal "$(getfattr --only-values -n user.overlay.opaque "$h/d")" y
	run getfattr -n trusted.overlay.opaque "$h/d"
	assert_failure
	# again: nothing to do
	run layer_as 1 unpack --store "$s" "$MD_T/L"
	assert_success
	assert_output "0 of 2 layers unpacked into '$s'"
}

@test "layer: a store is its delegation's: another user, root and a changed delegation are refused" {
	local s
	mk_image
	s=$MD_T/u1/store
	run layer_as 1 -q unpack --store "$s" "$MD_T/L"
	assert_success
	chmod 0777 "$MD_T/u1/store"
	run layer_as 2 unpack --store "$s" "$MD_T/L"
	assert_failure 1
	assert_output "shift-layer: Failed to unpack '$MD_T/L': '$s': it is the store of uid $MD_UID1 with the ids 'b:0:$MD_UID1:1 b:1:$MD_SUB1:65536', and this run is uid $MD_UID2 with 'b:0:$MD_UID2:1 b:1:$MD_SUB2:65536' (another user, or a changed /etc/subuid or /etc/subgid delegation): the on-disk ids would mean something else; use a store of your own (the store holds only complete layers)"
	# the same user with another delegation
	printf '%s:%s:65536\n' "$MD_USER1" "$MD_SUB2" >"$SK_TMP/subuid"
	chmod 0644 "$SK_TMP/subuid"
	run md_as 1 env SHIFT_SUBUID="$SK_TMP/subuid" SHIFT_SUBGID="$SK_TMP/subuid" \
		"$SHIFT_LAYER" unpack --store "$s" "$MD_T/L"
	assert_failure 1
	assert_output --partial "'$s': it is the store of uid $MD_UID1 with the ids 'b:0:$MD_UID1:1 b:1:$MD_SUB1:65536', and this run is uid $MD_UID1 with 'b:0:$MD_UID1:1 b:1:$MD_SUB2:65536'"
	# root doesn't mix canonical layers in, nor mounts it directly
	run "$SHIFT_LAYER" unpack --store "$s" "$MD_T/L"
	assert_failure 1
	assert_output "shift-layer: Failed to unpack '$MD_T/L': '$s': it is a normal user's rootless store (its layers are owned within that user's delegation): use it as that user, or give root a store of its own (the store holds only complete layers)"
	run "$SHIFT_LAYER" mount --store "$s" --map "b:0:$MD_SUB1:1000" "$MD_T/L" "$(scratch m)"
	assert_failure 1
	assert_output --partial "it is a normal user's rootless store"
	# and a user doesn't write into root's store
	"$SHIFT_LAYER" -q unpack --store "$MD_T/rootstore" "$MD_T/L"
	chmod -R a+rwX "$MD_T/rootstore"
	run layer_as 1 unpack --store "$MD_T/rootstore" "$MD_T/L"
	assert_failure 1
	assert_output "shift-layer: Failed to unpack '$MD_T/L': '$MD_T/rootstore': it is a store of canonical layers (root's, no delegation.json): a normal user keeps a store of its own (the store holds only complete layers)"
	[ ! -e "$MD_T/rootstore/delegation.json" ]
}

@test "layer: mount through the service: each container its own range, root owns /, setuid and caps kept, whiteouts hide, writes in the upper, nothing chowned" {
	local s before c range
	mk_image
	s=$MD_T/u1/store
	run layer_as 1 -q unpack --store "$s" "$MD_T/L"
	assert_success
	before=$(store_listing "$s")
	for c in c1 c2; do
		range=$("$SHIFT_ALLOC" --user "$MD_USER1" --size 1000 --state "$SK_TMP/alloc.json" "$c")
		[[ $range =~ ^b:0:([0-9]+):1000$ ]] || fail "shift-alloc: $range"
		range=${BASH_REMATCH[1]}
		mkdir -p "$MD_T/rw-$c" "$MD_T/m-$c"
		chown "$range:$range" "$MD_T/rw-$c"
		run in_ns "$range" '
			"$LAYER" -v mount --store "$1" --map "b:0:$2:1000" "$3" "$4" --upper "$5/up" || exit
			cd "$4" || exit
			stat -c "%n %u:%g %a" . etc/shadow bin/su d/new home/k
			ls -A d etc dev
			getcap bin/ping
			echo w >written && mkdir nd && chown 5:5 nd
			grep " $4 " /proc/self/mountinfo | grep -o "nodev.*- overlay" | cut -d" " -f1
			grep " $4 " /proc/self/mountinfo | grep -c userxattr' \
			"$s" "$range" "$MD_T/L" "$MD_T/m-$c" "$MD_T/rw-$c"
		assert_success
		assert_output "shift-layer: no CAP_SYS_ADMIN: asking shift-mountd at '$MD_SOCK' for 2 idmapped layer(s) of the rootless store (nodev)
shift-layer: mounted an overlay of the idmapped layers made by shift-mountd at '$MD_T/m-$c'
mounted '$MD_T/L' at '$MD_T/m-$c' (idmapped layers from shift-mountd)
. 0:0 755
etc/shadow 0:42 640
bin/su 0:0 4755
d/new 0:0 644
home/k 999:999 755
d:
new

dev:

etc:
shadow
bin/ping cap_net_raw=ep
nodev,relatime
1"
		# writes are in the upper, as the container's host ids
		assert_equal "$(owner "$MD_T/rw-$c/up/upper/written")" "$range:$range"
		assert_equal "$(owner "$MD_T/rw-$c/up/upper/nd")" "$((range + 5)):$((range + 5))"
		# nothing mounted outside the user's namespace
		run grep -F " $MD_T/m-$c " /proc/self/mountinfo
		assert_failure
	done
	# the two containers got different ranges
	[ "$(owner "$MD_T/rw-c1/up/upper/written")" != "$(owner "$MD_T/rw-c2/up/upper/written")" ]
	# one request per layer per container, granted
	assert_equal "$(grep -c "uid $MD_UID1 .*granted" "$MD_LOG")" 4
	# nothing in the store was chowned, copied or written
	assert_equal "$(store_listing "$s")" "$before"
	md_assert_clean
}

@test "layer: mount as a user: no service, missing layers, --copy: one line each saying what to do" {
	local s m h
	mk_image
	s=$MD_T/u1/store
	m=$(scratch m)
	run in_ns "$MD_SUB1" '"$LAYER" mount --store "$1" --map "b:0:$2:1000" "$3" "$4"' \
		"$s" "$MD_SUB1" "$MD_T/L" "$m"
	assert_failure 1
	assert_output "shift-layer: Failed to mount '$MD_T/L': '$s': not a normal user's layer store (no delegation.json): unpack the image into it first as yourself, outside the container's namespaces (shift-layer unpack --store STORE IMAGE)"
	run layer_as 1 -q unpack --store "$s" "$MD_T/L"
	assert_success
	SOCK=$SK_TMP/no-such.sock run in_ns "$MD_SUB1" '"$LAYER" mount --store "$1" --map "b:0:$2:1000" "$3" "$4"' \
		"$s" "$MD_SUB1" "$MD_T/L" "$m"
	assert_failure 1
	assert_output "shift-layer: Failed to mount '$MD_T/L': '$m': no CAP_SYS_ADMIN for idmapped mounts, and shift-mountd is not reachable at '$SK_TMP/no-such.sock': start it (systemctl start shift-mountd.socket), or set SHIFT_MOUNTD_SOCKET to its socket"
	run in_ns "$MD_SUB1" '"$LAYER" mount --copy --store "$1" --map "b:0:$2:1000" "$3" "$4"' \
		"$s" "$MD_SUB1" "$MD_T/L" "$m"
	assert_failure 3
	assert_output --partial "shifted copies are not available without CAP_SYS_ADMIN"
	# a layer missing from the store
	h=$(compgen -G "$s/layers/sha256/*/rootfs/d/new")
	rm -rf "${h%/rootfs/d/new}"
	run in_ns "$MD_SUB1" '"$LAYER" mount --store "$1" --map "b:0:$2:1000" "$3" "$4"' \
		"$s" "$MD_SUB1" "$MD_T/L" "$m"
	assert_failure 1
	assert_output --regexp "^shift-layer: Failed to mount '$MD_T/L': 'sha256:[0-9a-f]{64}': the layer is not in the store '$s' \(No such file or directory\): unpack the image first as its owner, outside the container's namespaces \(shift-layer unpack --store STORE IMAGE\)$"
	# outside a mount namespace of its own the user is told where to run it
	run layer_as 1 -q unpack --store "$s" "$MD_T/L"
	run layer_as 1 mount --store "$s" --map "b:0:$MD_SUB1:1000" "$MD_T/L" "$m"
	assert_failure 1
	assert_output --partial "(mount it in a mount namespace you own: run shift-layer inside 'unshare --user --map-root-user --mount' or your container's namespaces)"
	md_assert_clean
}

# mk_rootfs_image LAYOUT: a one-layer image whose rootfs holds dash (also
# as a setuid copy), id, stat and their libraries, all 0:0 in the tar.
mk_rootfs_image() {
	local r=$MD_T/rootfs-src
	md_minimal_rootfs "$r"
	tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$MD_T/rootfs.tar" .
	mkimage "$1" "@$MD_T/rootfs.tar"
	chmod -R a+rX "$1"
}

@test "layer: crun as the user runs a container on the image mounted from its rootless store through the service" {
	command -v crun >/dev/null || skip "crun is not installed"
	local s range c
	mk_rootfs_image "$MD_T/R"
	mkdir -m 0755 "$MD_T/u1"
	chown "$MD_UID1:$MD_UID1" "$MD_T/u1"
	s=$MD_T/u1/store
	# a private umask doesn't hide the store from the container's ids
	run md_as 1 sh -c 'umask 077 && exec "$0" -q unpack --store "$1" "$2"' "$SHIFT_LAYER" "$s" "$MD_T/R"
	assert_success
	range=$("$SHIFT_ALLOC" --user "$MD_USER1" --size 1000 --state "$SK_TMP/alloc.json" crun1)
	range=${range#b:0:}
	range=${range%:1000}
	mkdir -p "$MD_T/rw" "$MD_T/m" "$MD_T/st"
	chown "$range:$range" "$MD_T/rw"
	chmod 1777 "$MD_T/st"
	for c in root user; do
		mkdir -p "$MD_T/c-$c"
		cat >"$MD_T/c-$c/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": $([ $c = root ] && echo 0 || echo 100), "gid": $([ $c = root ] && echo 0 || echo 100)},
             "args": ["/bin/sh", "-c", "$([ $c = root ] && echo "stat -c '%n %U %u:%g %a' / /etc/shadow /bin/suidsh; echo hi >/written; id" || echo "id -u; /bin/suidsh -p -c 'id -u; id -nu'")"],
             "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "$MD_T/m", "readonly": false},
 "hostname": "c1",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]}}
JSON
	done
	# The user's own namespaces, as in client.bats's crun case.
	run in_ns "$range" '
		if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs none /sys/fs/cgroup/unified; fi
		"$LAYER" -q mount --store "$1" --map "b:0:$2:1000" "$3" "$4/m" --upper "$4/rw/up" || exit
		for c in root user; do
			: | crun --root "$4/st" --cgroup-manager=disabled run --bundle "$4/c-$c" "c-$c" || exit
		done' "$s" "$range" "$MD_T/R" "$MD_T"
	assert_success
	assert_output "/ root 0:0 755
/etc/shadow root 0:0 640
/bin/suidsh root 0:0 4755
uid=0(root) gid=0 groups=0
100
0
root"
	# written by the container's root: in the upper, as the range's first
	# id; the store's layer is as it was unpacked (the user's own uid)
	assert_equal "$(owner "$MD_T/rw/up/upper/written")" "$range:$range"
	run sh -c "stat -c '%u:%g %a' '$s'/layers/sha256/*/rootfs/bin/suidsh"
	assert_output "$MD_UID1:$MD_UID1 4755"
	md_assert_clean
}

@test "layer: LXC unprivileged (lxc-execute as the user) on the image mounted from its rootless store through the service" {
	command -v lxc-execute >/dev/null || skip "lxc is not installed"
	local s range
	mk_rootfs_image "$MD_T/R"
	mkdir -m 0755 "$MD_T/u1"
	chown "$MD_UID1:$MD_UID1" "$MD_T/u1"
	s=$MD_T/u1/store
	run layer_as 1 -q unpack --store "$s" "$MD_T/R"
	assert_success
	range=$("$SHIFT_ALLOC" --user "$MD_USER1" --size 1000 --state "$SK_TMP/alloc.json" lxc1)
	range=${range#b:0:}
	range=${range%:1000}
	mkdir -p "$MD_T/rw" "$MD_T/m" "$MD_T/lxc"
	chown "$range:$range" "$MD_T/rw"
	chown "$MD_UID1:$MD_UID1" "$MD_T/lxc"
	# LXC makes the container's user and mount namespaces (lxc.idmap,
	# through newuidmap); its pre-mount hook runs there as the
	# container's root and mounts the image where lxc.rootfs.path points.
	install -m 0666 /dev/null "$MD_T/hook.log"
	printf '%s\n' '#!/bin/sh' \
		"exec env SHIFT_MOUNTD_SOCKET='$MD_SOCK' '$SHIFT_LAYER' -v mount --store '$s' --map b:0:$range:1000 '$MD_T/R' '$MD_T/m' --upper '$MD_T/rw/c' >>'$MD_T/hook.log' 2>&1" \
		>"$MD_T/hook.sh"
	chmod 0755 "$MD_T/hook.sh"
	printf '%s\n' "lxc.idmap = u 0 $range 1000" "lxc.idmap = g 0 $range 1000" \
		"lxc.rootfs.path = dir:$MD_T/m" "lxc.hook.pre-mount = $MD_T/hook.sh" \
		"lxc.net.0.type = none" "lxc.uts.name = c1" >"$MD_T/c.conf"
	chmod 0644 "$MD_T/c.conf"
	run md_as 1 env HOME="$MD_T/lxc" timeout 60 lxc-execute -P "$MD_T/lxc" -n c1 -f "$MD_T/c.conf" \
		-o "$MD_T/lxc/log" -- /bin/sh -c "id; stat -c '%n %U %u:%g %a' / /etc/shadow /bin/suidsh; echo hi >/written"
	assert_success
	assert_output "uid=0(root) gid=0 groups=0
/ root 0:0 755
/etc/shadow root 0:0 640
/bin/suidsh root 0:0 4755"
	assert_equal "$(cat "$MD_T/hook.log")" "shift-layer: no CAP_SYS_ADMIN: asking shift-mountd at '$MD_SOCK' for 1 idmapped layer(s) of the rootless store (nodev)
shift-layer: mounted an overlay of the idmapped layers made by shift-mountd at '$MD_T/m'
mounted '$MD_T/R' at '$MD_T/m' (idmapped layers from shift-mountd)"
	# written by the container's root: in the upper, as the range's first id
	assert_equal "$(owner "$MD_T/rw/c/upper/written")" "$range:$range"
	run grep -F " $MD_T/m " /proc/self/mountinfo
	assert_failure
	md_assert_clean
}

@test "layer: gc by the user collects its rootless store, also inside directories owned by delegated ids" {
	local s
	mk_image
	s=$MD_T/u1/store
	run layer_as 1 -q unpack --store "$s" "$MD_T/L"
	assert_success
	rm "$s"/images/*.json
	run layer_as 1 gc --store "$s"
	assert_success
	assert_output --partial "2 items removed"
	run sh -c "ls -A '$s/layers/sha256' '$s/tmp'"
	assert_output "$s/layers/sha256:

$s/tmp:"
}

@test "layer: a user's unpack: --dry-run lists and counts from the namespace; SIGTERM or SIGKILL stops it, nothing half-made is left" {
	local s pid i rc
	mk_image
	s=$MD_T/u1/store
	run --separate-stderr layer_as 1 --json --dry-run unpack --store "$s" "$MD_T/L"
	assert_success
	assert_equal "$(jq -c '[.layers_to_unpack, .devices_skipped, (.entry_list | length), ([.entry_list[].type] | sort | unique)]' <<<"$output")" \
		'[2,1,16,["chardev","dir","file","opaque","whiteout"]]'
	[ ! -e "$s" ] || fail "a dry run made the store"
	# a layer big enough to be caught mid-extraction
	{
		echo "dir many 0 0 0755"
		for ((i = 0; i < 30000; i++)); do echo "file many/f$i 1 1 0644"; done
	} >"$BATS_TEST_TMPDIR/many.spec"
	mkimage "$MD_T/M" "$BATS_TEST_TMPDIR/many.spec"
	chmod -R a+rX "$MD_T/M"
	# a simple command (no function, no subshell): setpriv execs, so
	# $pid is shift-layer itself
	setpriv --reuid "$MD_UID1" --regid "$MD_UID1" --clear-groups --inh-caps=-all -- \
		"$SHIFT_LAYER" -q unpack --store "$s" "$MD_T/M" 3>&- 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		compgen -G "$s/tmp/*/rootfs/many/f10*" >/dev/null && break
		sleep 0.02
	done
	compgen -G "$s/tmp/*/rootfs/many/f10*" >/dev/null || fail "the unpack never started extracting"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	run cat "$BATS_TEST_TMPDIR/err"
	assert_output --regexp "^shift-layer: Failed to unpack '$MD_T/M': '(many/f[0-9]+|sha256:[0-9a-f]{64})': interrupted \(interrupted by a signal: the store holds only complete layers\)$"
	# the child in the namespace stopped too, and removed its temporary
	for ((i = 0; i < 100; i++)); do
		[ -z "$(pgrep -u "$MD_UID1")" ] && break
		sleep 0.05
	done
	assert_equal "$(pgrep -u "$MD_UID1")" ""
	assert_equal "$(ls -A "$s/tmp")" ""
	assert_equal "$(ls -A "$s/layers/sha256" 2>/dev/null)" ""
	# shift-layer killed outright: its child in the namespace is told
	# (PR_SET_PDEATHSIG) and stops the same way
	setpriv --reuid "$MD_UID1" --regid "$MD_UID1" --clear-groups --inh-caps=-all -- \
		"$SHIFT_LAYER" -q unpack --store "$s" "$MD_T/M" 3>&- 2>/dev/null &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		compgen -G "$s/tmp/*/rootfs/many/f10*" >/dev/null && break
		sleep 0.02
	done
	compgen -G "$s/tmp/*/rootfs/many/f10*" >/dev/null || fail "the second unpack never started extracting"
	kill -KILL "$pid"
	wait "$pid" || true
	for ((i = 0; i < 100; i++)); do
		[ -z "$(pgrep -u "$MD_UID1")" ] && break
		sleep 0.05
	done
	assert_equal "$(pgrep -u "$MD_UID1")" ""
	assert_equal "$(ls -A "$s/tmp")" ""
	assert_equal "$(ls -A "$s/layers/sha256" 2>/dev/null)" ""
}

@test "layer: --verbose goes only with unpack --store and mount (exit 2 elsewhere)" {
	local args
	for args in "-v list x" "-v gc --store s" "-v unpack --flat x y"; do
		# shellcheck disable=SC2086 # split on purpose
		run "$SHIFT_LAYER" $args
		assert_failure 2
		assert_output --partial "--verbose only goes with unpack --store and mount"
	done
	mk_image
	run "$SHIFT_LAYER" -v unpack --store "$MD_T/rootstore" "$MD_T/L"
	assert_success
	assert_line "shift-layer: root: a store of canonical layers"
}
