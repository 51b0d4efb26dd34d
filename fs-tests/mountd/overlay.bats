#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --overlay as a normal user through shift-mountd: each layer
# an idmapped mount from the service (one request per layer), the overlay
# assembled by the user in its own user and mount namespaces (userxattr,
# nodev); a layer the user doesn't own is refused and leaves nothing
# mounted.

load lib

# Two layers as a rootless store keeps them (container root is user 1's
# uid on disk, container id k is delegated id k-1), and a directory the
# container's root may write in for upper and work.
mk_layers() {
	mkdir -p "$MD_T/top/etc" "$MD_T/base/etc" "$MD_T/base/bin" "$MD_T/base/home/k" "$MD_T/rw"
	echo top >"$MD_T/top/etc/motd"
	echo base >"$MD_T/base/etc/motd"
	echo 'root:*:19000:0:99999:7:::' >"$MD_T/base/etc/shadow"
	chmod 0640 "$MD_T/base/etc/shadow"
	echo su >"$MD_T/base/bin/su"
	chown -R "$MD_UID1:$MD_UID1" "$MD_T/top" "$MD_T/base"
	chmod 4755 "$MD_T/base/bin/su"
	chown "$((MD_SUB1 + 4)):$((MD_SUB1 + 4))" "$MD_T/base/home/k"
	chown "$((MD_SUB1 + 100)):$((MD_SUB1 + 100))" "$MD_T/rw"
}

# in_container SCRIPT ARGS...: SCRIPT as user 1, root of a container whose
# ids 0..999 are the delegation's 100..1099, with $MOUNT and $MAP set
in_container() {
	local script=$1
	shift
	md_as 1 env SHIFT_MOUNTD_SOCKET="$MD_SOCK" MOUNT="$SHIFT_MOUNT" \
		MAP="b:$MD_UID1:$((MD_SUB1 + 100)):1 b:$MD_SUB1:$((MD_SUB1 + 101)):999" \
		unshare --user --map-users="$((MD_SUB1 + 100)),0,1000" \
		--map-groups="$((MD_SUB1 + 100)),0,1000" --mount --setuid 0 --setgid 0 \
		sh -c "$script" sh "$@"
}

@test "overlay: a normal user's writable overlay of two layers idmapped by the service" {
	local m before
	mk_layers
	m=$(scratch root)
	before=$(cd "$MD_T" && stat -c '%n %u:%g %a' top top/etc/motd base base/etc/shadow base/bin/su base/home/k)
	run in_container '
		"$MOUNT" -v --map "$MAP" --overlay "$1/top:$1/base" --upper "$1/rw/up" --work "$1/rw/wk" "$2" || exit
		stat -c "%n %u:%g %a" "$2" "$2/etc/shadow" "$2/bin/su" "$2/home/k"
		cat "$2/etc/motd"
		grep " $2 " /proc/self/mountinfo | grep -c "overlay.*nodev.*userxattr\|overlay.*userxattr" || true
		grep -c " $2 " /proc/self/mountinfo
		echo new >"$2/new" && mkdir "$2/newdir" && chown 5:5 "$2/newdir" && echo more >>"$2/home/k/../../etc/motd"' \
		"$MD_T" "$m"
	assert_success
	assert_output "shift-mount: no CAP_SYS_ADMIN: asking shift-mountd at '$MD_SOCK' for 2 idmapped layer(s) (nodev)
shift-mount: mounted an overlay of the idmapped layers made by shift-mountd at '$m'
$m 0:0 755
$m/etc/shadow 0:0 640
$m/bin/su 0:0 4755
$m/home/k 5:5 755
top
1
1"
	# the layers are unchanged; what was written is in the upper layer,
	# with the container's ids as the delegation's
	assert_equal "$(cd "$MD_T" && stat -c '%n %u:%g %a' top top/etc/motd base base/etc/shadow base/bin/su base/home/k)" "$before"
	assert_equal "$(cat "$MD_T/top/etc/motd")" top
	assert_equal "$(owner "$MD_T/rw/up/new")" "$((MD_SUB1 + 100)):$((MD_SUB1 + 100))"
	assert_equal "$(owner "$MD_T/rw/up/newdir")" "$((MD_SUB1 + 105)):$((MD_SUB1 + 105))"
	assert_equal "$(cat "$MD_T/rw/up/etc/motd")" "top
more"
	# one request per layer, granted
	assert_equal "$(grep -c "uid $MD_UID1 .*granted" "$MD_LOG")" 2
	# nothing mounted outside the user's namespace
	run grep -F " $m " /proc/self/mountinfo
	assert_failure
	md_assert_clean
}

@test "overlay: --dry-run says it; without --upper the user's overlay is read-only and nodev" {
	local m
	mk_layers
	m=$(scratch root)
	run in_container '
		"$MOUNT" --dry-run --map "$MAP" --overlay "$1/top:$1/base" "$2" || exit
		grep -c " $2 " /proc/self/mountinfo
		"$MOUNT" --map "$MAP" --overlay "$1/top:$1/base" "$2" || exit
		cat "$2/etc/motd"
		grep " $2 " /proc/self/mountinfo | awk "{ print \$6 }" | tr , "\n" | grep -x nodev
		touch "$2/new" 2>&1 && echo wrote
		true' \
		"$MD_T" "$m"
	assert_success
	assert_output "would ask shift-mountd at '$MD_SOCK' for 2 idmapped layer(s) with map 'b:$MD_UID1:$((MD_SUB1 + 100)):1 b:$MD_SUB1:$((MD_SUB1 + 101)):999' (nodev) and mount an overlay of them at '$m', read-only
0
top
nodev
touch: cannot touch '$m/new': Read-only file system"
	md_assert_clean
}

@test "overlay: a layer the user doesn't own is refused by the service, naming it, and nothing stays mounted" {
	local m
	mk_layers
	m=$(scratch root)
	chown -R "$MD_UID2:$MD_UID2" "$MD_T/base"
	run in_container '
		"$MOUNT" --map "$MAP" --overlay "$1/top:$1/base" "$2"; rc=$?
		echo "rc=$rc"
		grep -c " $2 " /proc/self/mountinfo || true' \
		"$MD_T" "$m"
	assert_success
	assert_line --index 0 --partial "shift-mount: Failed to idmap layer '$MD_T/base' through shift-mountd: "
	assert_line --index 1 "rc=1"
	assert_line --index 2 "0"
	md_assert_clean
}
