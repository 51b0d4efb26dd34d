#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-probe names each test filesystem as supported (the answer found by
# really trying must agree with shift-mount) and overlayfs as not, in the
# table and in --json.

load ../lib/common

# The mount holding the fixture.
target() {
	findmnt -no TARGET -T "$FS_TREE"
}

@test "the table says the fixture's filesystem can be idmapped" {
	require_idmap
	run "$SHIFT_PROBE" --mounts-only --noheadings "$FS_TREE"
	assert_success
	assert_output --regexp "^$(target) +$FS +.* no +yes"
}

@test "--json says the fixture's filesystem can be idmapped (checked with jq)" {
	require_idmap
	run "$SHIFT_PROBE" --json "$FS_TREE"
	assert_success
	jq -e . >/dev/null <<<"$output"
	run jq -e --arg t "$(target)" --arg fs "$FS" \
		'.mounts | map(select(.target == $t)) | length == 1 and
		 (.[0].fstype == $fs) and (.[0].supported == true) and
		 (.[0].idmapped == false)' <<<"$output"
	assert_success
}

@test "an idmapped mount is reported as idmapped" {
	require_idmap
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:65536 "$FS_TREE" "$m"
	run "$SHIFT_PROBE" --json "$m"
	assert_success
	run jq -e --arg t "$m" '.mounts | map(select(.target == $t)) |
		length == 1 and .[0].idmapped == true' <<<"$output"
	assert_success
}

@test "an overlayfs is reported as not supported, naming overlay" {
	local o
	o=$(scratch o)
	mkdir "$o.empty"
	mount -t overlay shiftkit-ovl -o "lowerdir=$FS_TREE:$o.empty" "$o"
	run "$SHIFT_PROBE" --mounts-only --noheadings "$o"
	assert_success
	assert_output --regexp "^$o +overlay +.* no +no +.*overlay"
	run "$SHIFT_PROBE" --json "$o"
	assert_success
	run jq -e --arg t "$o" '.mounts | map(select(.target == $t)) |
		length == 1 and .[0].fstype == "overlay" and
		.[0].supported == false and (.[0].why | test("overlay"))' <<<"$output"
	assert_success
}

@test "the answer agrees with what shift-mount can do" {
	local m sup rc=0
	m=$(scratch m)
	sup=$("$SHIFT_PROBE" --json "$FS_TREE" | jq -r --arg t "$(target)" \
		'.mounts[] | select(.target == $t) | .supported')
	"$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE" "$m" || rc=$?
	if [ "$sup" = true ]; then
		assert_equal "$rc" 0
	else
		assert_equal "$rc" 3
	fi
}

@test "probing leaves no mount behind" {
	local before
	# Only our mounts: other processes may mount things meanwhile.
	before=$(grep -F "$SK_TMP" /proc/self/mountinfo)
	"$SHIFT_PROBE" "$FS_TREE" >/dev/null
	"$SHIFT_PROBE" --json "$FS_TREE" >/dev/null
	assert_equal "$(grep -F "$SK_TMP" /proc/self/mountinfo)" "$before"
}
