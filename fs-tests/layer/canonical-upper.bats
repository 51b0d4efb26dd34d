#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-layer mount --upper with a canonical writable layer (the default
# over idmapped layers): DIR/upper stores the container's own ids (root =
# 0), like the stored layers, and is idmapped.  Writes and copy-ups land
# there in canonical form (setuid bits, file capabilities, ACLs), the same
# upper serves a container with another map without a shift, and an upper
# of the other form is told apart by its root's owner and never mixed up.
# run-on: once

load ../lib/common
load lib

MAP=b:0:2000000:1100000
MAP2=b:0:3000000:1100000

setup() {
	require_idmap
	T=$(scratch t)
	local cap
	touch "$T/capfile"
	setcap cap_net_raw+ep "$T/capfile"
	cap=$(getfattr --absolute-names -e hex -n security.capability "$T/capfile" | sed -n 's/^security.capability=0x//p')
	[ -n "$cap" ] || fail "no capability to copy"
	mkimage "$T/L" "$(spec base <<EOF
dir bin 0 0 0755
file bin/suid 0 0 04755 suid
file bin/cap 0 0 0755 cap
xattr security.capability $cap
file acl-file 1000 1000 0644 acl
acl access user::rw-,user:1000:r--,user:1001:rw-,group::r--,mask::rw-,other::r--
file file-1000 1000 1000 0644 data
EOF
)"
	mkdir "$T/mnt" "$T/mnt2"
}

# lmount ARGS...: shift-layer mount --store $T/S ARGS, which must succeed.
lmount() {
	run "$SHIFT_LAYER" mount --store "$T/S" "$@"
	assert_success
}

# writes M: as the container's root (the map's image of 0) a new file;
# copy-ups of the setuid and capability binaries (opened for writing,
# unchanged: a write drops a file capability), of the ACL'd file and of
# file-1000 (data appended).
writes() {
	as_user 2000000 2000000 sh -c "echo new >'$1/new-by-root'"
	: >>"$1/bin/suid"
	: >>"$1/bin/cap"
	echo more >>"$1/acl-file"
	echo more >>"$1/file-1000"
}

@test "mount --upper: the upper is canonical by default; writes and copy-ups land in the container's ids" {
	lmount --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	assert_output --partial "(idmapped layers, canonical upper)"
	assert_equal "$(stat -c %a "$T/up")" 700
	assert_equal "$(owner "$T/up/upper")" 0:0
	assert_equal "$(owner "$T/mnt")" 2000000:2000000
	writes "$T/mnt"
	assert_equal "$(owner "$T/mnt/new-by-root")" 2000000:2000000
	assert_equal "$(owner "$T/up/upper/new-by-root")" 0:0
	assert_equal "$(stat -c '%u:%g %a' "$T/up/upper/bin/suid")" "0:0 4755"
	assert_equal "$(owner "$T/up/upper/file-1000")" 1000:1000
	assert_equal "$(owner "$T/up/upper/acl-file")" 1000:1000
	run getcap -n "$T/up/upper/bin/cap"
	assert_output "$T/up/upper/bin/cap cap_net_raw=ep"
	run getfacl -cn "$T/up/upper/acl-file"
	assert_line "user:1000:r--"
	assert_line "user:1001:rw-"
	# Through the mount: the map's view.
	run getcap -n "$T/mnt/bin/cap"
	assert_output "$T/mnt/bin/cap cap_net_raw=ep [rootid=2000000]"
	run getfacl -cn "$T/mnt/acl-file"
	assert_line "user:2001000:r--"
	# The stored layers are untouched.
	assert_equal "$(stat -c '%u:%g %a' "$(echo "$T"/S/layers/sha256/*/rootfs/bin/suid)")" "0:0 4755"
	assert_equal "$(cat "$(echo "$T"/S/layers/sha256/*/rootfs/file-1000)")" data
}

@test "a canonical upper serves a container with another map as it is: no shift, the new map's view" {
	local before
	lmount --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	writes "$T/mnt"
	umount "$T/mnt"
	before=$(manifest "$T/up/upper")
	lmount --map "$MAP2" --upper "$T/up" "$T/L" "$T/mnt2"
	assert_output --partial "canonical upper"
	assert_equal "$(owner "$T/mnt2/new-by-root")" 3000000:3000000
	assert_equal "$(owner "$T/mnt2/file-1000")" 3001000:3001000
	assert_equal "$(stat -c '%u:%g %a' "$T/mnt2/bin/suid")" "3000000:3000000 4755"
	assert_equal "$(cat "$T/mnt2/file-1000")" "data
more"
	run getcap -n "$T/mnt2/bin/cap"
	assert_output "$T/mnt2/bin/cap cap_net_raw=ep [rootid=3000000]"
	run getfacl -cn "$T/mnt2/acl-file"
	assert_line "user:3001000:r--"
	# The new container's root writes as its own root.
	as_user 3000000 3000000 sh -c "echo again >'$T/mnt2/new-by-root'"
	umount "$T/mnt2"
	assert_equal "$(owner "$T/up/upper/new-by-root")" 0:0
	# Nothing else on disk changed: the upper was not shifted.
	run diff <(grep -v new-by-root <<<"$before") <(manifest "$T/up/upper" | grep -v new-by-root)
	assert_success
}

@test "--host-upper keeps the old form; an existing upper's form is kept, the other form is refused" {
	lmount --map "$MAP" --host-upper --upper "$T/up" "$T/L" "$T/mnt"
	assert_output --partial "upper in host ids"
	writes "$T/mnt"
	assert_equal "$(owner "$T/up/upper")" 2000000:2000000
	assert_equal "$(owner "$T/up/upper/new-by-root")" 2000000:2000000
	assert_equal "$(owner "$T/up/upper/file-1000")" 2001000:2001000
	umount "$T/mnt"
	# Without an option: the upper's own form.
	lmount --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	assert_output --partial "upper in host ids"
	assert_equal "$(owner "$T/mnt/new-by-root")" 2000000:2000000
	umount "$T/mnt"
	# Asked for the other form: refused, nothing mounted.
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --canonical-upper --upper "$T/up" "$T/L" "$T/mnt"
	assert_failure 1
	assert_output --partial "'$T/up/upper': it holds the container's files in host ids"
	run mountpoint -q "$T/mnt"
	assert_failure
	# And the reverse.
	lmount --map "$MAP" --upper "$T/up2" "$T/L" "$T/mnt"
	as_user 2000000 2000000 sh -c "echo new >'$T/mnt/new-by-root'"
	umount "$T/mnt"
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --host-upper --upper "$T/up2" "$T/L" "$T/mnt"
	assert_failure 1
	assert_output --partial "it holds the container's files in its own ids"
	# An upper whose root is owned by neither: a choice is needed.
	chown 5:5 "$T/up2/upper"
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --upper "$T/up2" "$T/L" "$T/mnt"
	assert_failure 1
	assert_output --partial "give --canonical-upper or --host-upper"
	run mountpoint -q "$T/mnt"
	assert_failure
	lmount --map "$MAP" --canonical-upper --upper "$T/up2" "$T/L" "$T/mnt"
	assert_equal "$(owner "$T/mnt/new-by-root")" 2000000:2000000
}

@test "--copy --canonical-upper: a canonical upper over shifted copies; --copy alone keeps host ids" {
	lmount --copy --map "$MAP" --canonical-upper --upper "$T/up" "$T/L" "$T/mnt"
	assert_output --partial "(shifted copies, canonical upper)"
	writes "$T/mnt"
	assert_equal "$(owner "$T/mnt/file-1000")" 2001000:2001000
	assert_equal "$(owner "$T/up/upper/new-by-root")" 0:0
	assert_equal "$(owner "$T/up/upper/file-1000")" 1000:1000
	assert_equal "$(stat -c '%u:%g %a' "$T/up/upper/bin/suid")" "0:0 4755"
	run getcap -n "$T/up/upper/bin/cap"
	assert_output "$T/up/upper/bin/cap cap_net_raw=ep"
	lmount --copy --map "$MAP" --upper "$T/up2" "$T/L" "$T/mnt2"
	assert_output --partial "(shifted copies, upper in host ids)"
	assert_equal "$(owner "$T/up2/upper")" 2000000:2000000
}

@test "--json says whether the upper is canonical; LIBSHIFT_NO_FD_LAYERS=1 (before Linux 6.13) does the same" {
	LIBSHIFT_NO_FD_LAYERS=1 run "$SHIFT_LAYER" mount --json --store "$T/S" --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	assert_success
	assert_equal "$(jq -c '[.idmapped, .read_only, .canonical_upper]' <<<"$output")" "[true,false,true]"
	[[ $(awk -v m="$T/mnt" '$5 == m' /proc/self/mountinfo) == *",lowerdir=0,upperdir=u/upper,workdir=u/work,"* ]] ||
		fail "not by path: $(awk -v m="$T/mnt" '$5 == m' /proc/self/mountinfo)"
	writes "$T/mnt"
	assert_equal "$(owner "$T/up/upper/new-by-root")" 0:0
	assert_equal "$(stat -c '%u:%g %a' "$T/up/upper/bin/suid")" "0:0 4755"
	run "$SHIFT_LAYER" mount --json --store "$T/S" --map "$MAP" "$T/L" "$T/mnt2"
	assert_success
	assert_equal "$(jq -c 'has("canonical_upper")' <<<"$output")" false
}

@test "usage: --canonical-upper and --host-upper need mount --upper, and contradict each other" {
	local a
	for a in "mount --store $T/S --map $MAP --canonical-upper $T/L $T/mnt" \
		"mount --store $T/S --map $MAP --host-upper $T/L $T/mnt" \
		"mount --store $T/S --map $MAP --upper $T/up --canonical-upper --host-upper $T/L $T/mnt" \
		"unpack --store $T/S --canonical-upper $T/L"; do
		# shellcheck disable=SC2086
		run "$SHIFT_LAYER" $a
		assert_failure 2
	done
	[ ! -e "$T/up" ] || fail "--upper dir made by a refused command"
}

@test "shift-verify checks a canonical upper as one (canonical_upper), and fails it as a host-id one" {
	lmount --map "$MAP" --upper "$T/up" "$T/L" "$T/mnt"
	writes "$T/mnt"
	for c in true false; do
		jq -n --arg m "$MAP" --arg u "$T/up/upper" --argjson c $c \
			'{containers: [{name: "c1", map: $m, upper: $u, canonical_upper: $c}]}' >"$T/set-$c.json"
	done
	run "$SHIFT_VERIFY" containers --all "$T/set-true.json"
	assert_success
	assert_line --regexp "^upper +pass +c1:upper +'$T/up/upper' holds only the container's own ids$"
	run "$SHIFT_VERIFY" containers --all "$T/set-false.json"
	assert_failure 1
}

@test "--canonical-upper where DIR can't be idmapped (ramfs): exit 3, said why, nothing mounted" {
	mkdir "$T/ram"
	mount -t ramfs sk-ram "$T/ram"
	run "$SHIFT_LAYER" mount --store "$T/S" --map "$MAP" --canonical-upper --upper "$T/ram/up" "$T/L" "$T/mnt"
	assert_failure 3
	assert_output --partial "its filesystem can't be idmapped, which a canonical upper needs (use --host-upper)"
	run mountpoint -q "$T/mnt"
	assert_failure
	umount "$T/ram"
}
