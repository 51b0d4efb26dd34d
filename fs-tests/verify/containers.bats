#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-verify containers: three containers share two layers, c1 and c2
# through idmapped overlay mounts (shift-mount --overlay) with different
# maps, c3 through a copy shifted by shift-tree.  All checks pass; then each
# rule is broken on purpose and exactly that violation must be reported.
#
# run-on: ext4 xfs btrfs

load ../lib/common
load lib

M1=b:0:100000:65536
M2=b:0:200000:65536
M3=b:0:300000:65536

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	[ -x "$SHIFT_TREE" ] || fail "'$SHIFT_TREE' is not built"
	require_writable
	require_idmap
	W=$(vwork)
	new_layer "$W/base"
	mkdir -p "$W/app/opt/app"
	echo conf >"$W/app/opt/app/app.conf"
	chown -R 1000:1000 "$W/app/opt/app"
	setfacl -m u:1001:r "$W/app/opt/app/app.conf"
	"$SHIFT_VERIFY" record --output "$W/base.mtree" "$W/base"
	"$SHIFT_VERIFY" record --output "$W/app.mtree" "$W/app"

	mkdir -p "$W/c1" "$W/c2"
	V1=$(scratch c1)
	V2=$(scratch c2)
	idmap_mount --map "$M1" --overlay "$W/app:$W/base" --upper "$W/c1/upper" \
		--work "$W/c1/work" "$V1"
	idmap_mount --map "$M2" --overlay "$W/app:$W/base" --upper "$W/c2/upper" \
		--work "$W/c2/work" "$V2"
	# c3: shifted copies of both layers, and an upper dir of its own ids
	mkdir -p "$W/c3/upper"
	cp -a "$W/base" "$W/c3/base"
	cp -a "$W/app" "$W/c3/app"
	"$SHIFT_TREE" -q --unmapped=overflow --map "$M3" "$W/c3/base" 2>/dev/null
	"$SHIFT_TREE" -q --unmapped=overflow --map "$M3" "$W/c3/app" 2>/dev/null
	touch "$W/c3/upper/mine"
	chown 301000:301000 "$W/c3/upper/mine"
	chown 300000:300000 "$W/c3/upper"
	SET=$W/set.json
	write_set
}

teardown() {
	verify_teardown
}

# write_set: the container set of the three containers
write_set() {
	jq . >"$SET" <<EOF
{
  "layers": [
    { "name": "base", "path": "$W/base", "manifest": "$W/base.mtree" },
    { "name": "app", "path": "$W/app", "manifest": "$W/app.mtree" }
  ],
  "containers": [
    { "name": "c1", "map": "$M1", "upper": "$W/c1/upper",
      "views": [ { "layer": "base", "path": "$V1", "merged": true },
                 { "layer": "app", "path": "$V1", "merged": true } ] },
    { "name": "c2", "map": "$M2", "upper": "$W/c2/upper",
      "views": [ { "layer": "base", "path": "$V2", "merged": true },
                 { "layer": "app", "path": "$V2", "merged": true } ] },
    { "name": "c3", "map": ["u:0:300000:65536", "g:0:300000:65536"],
      "upper": "$W/c3/upper",
      "views": [ { "layer": "base", "path": "$W/c3/base", "copy": true },
                 { "layer": "app", "path": "$W/c3/app", "copy": true } ] }
  ]
}
EOF
}

# maps_only SPEC...: a set of containers NAME=MAP[@OWNER], no layers
maps_only() {
	local s first=1
	{
		echo '{ "containers": ['
		for s in "$@"; do
			[ "$first" = 1 ] || echo ,
			first=0
			local name=${s%%=*} rest=${s#*=} owner=
			case "$rest" in *@*) owner=${rest#*@}; rest=${rest%@*} ;; esac
			printf '{ "name": "%s", "map": "%s"%s }' "$name" "$rest" \
				"${owner:+, \"owner\": \"$owner\"}"
		done
		echo '] }'
	} >"$SET"
}

@test "three containers sharing two layers: every check passes" {
	run "$SHIFT_VERIFY" containers "$SET"
	assert_success
	assert_line --regexp "PASS: 0 failed, 17 passed, 3 skipped$"
	run "$SHIFT_VERIFY" containers --json "$SET"
	assert_success
	[ "$(jq -r .result <<<"$output")" = pass ]
	# every check ran: 3 overlap pairs, 3 host-root, 2 layers, 6 views,
	# 3 uppers (subid skipped: no owner)
	run jq -r '[.findings[] | select(.status == "pass") | .check] | group_by(.) |
		map("\(.[0])=\(length)") | join(" ")' <<<"$output"
	assert_output "host-root=3 layer=2 overlap=3 upper=3 view=6"
}

@test "overlapping ranges are reported, uids and gids separately, with why" {
	maps_only c1="$M1" c2=b:0:150000:65536 c3="$M3"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output overlap
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^overlap +fail +c1,c2 +'c1' and 'c2' share host uids 150000-165535: .*RLIMIT_NPROC"
	assert_line --regexp "^overlap +fail +c1,c2 +'c1' and 'c2' share host gids 150000-165535"
	# a gid-only overlap is still an overlap
	maps_only c1="$M1" c2="u:0:200000:65536 g:0:100000:10"
	run report "$SET"
	assert_failure 1
	run failures overlap
	assert_output "c1,c2 - -"
}

@test "a container that maps host root is reported" {
	maps_only c1="$M1" c2=b:0:0:65536
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output host-root
	run failures host-root
	assert_output "c2 - -
c2 - -"
}

@test "a range outside the owner's delegation is reported" {
	# daemon: an existing user (uid 1, gid 1) the test need not create
	printf 'daemon:100000:65536\n' >"$W/subuid"
	printf 'daemon:100000:65536\ndaemon:200000:65536\n' >"$W/subgid"
	export SHIFT_SUBUID=$W/subuid SHIFT_SUBGID=$W/subgid
	maps_only c1="$M1@daemon" c2="$M2@daemon"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output subid
	run findings 'select(.status == "fail") | "\(.subject) \(.message)"'
	assert_output "c2 host uids 200000-265535 not inside the subuid delegation of 'daemon' ($W/subuid)"
}

@test "a layer chowned in place is reported once, as the layer" {
	chown 4242 "$W/base/dir/file"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output layer
	run failures layer
	assert_output "base ./dir/file uid"
	# the views through it say why they were not judged; the copy is fine
	run findings 'select(.check == "view") | "\(.subject) \(.status)"'
	assert_output "c1:base skip
c1:app pass
c2:base skip
c2:app pass
c3:base pass
c3:app pass"
}

@test "a stray file with a host id in an upper dir is reported" {
	touch "$W/c1/upper/stray"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output upper
	run failures upper
	assert_output "c1:upper ./stray uid
c1:upper ./stray gid"
}

@test "an ACL entry left unshifted in a shifted copy is reported" {
	setfacl -m u:1001:r "$W/c3/app/opt/app/app.conf"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output view
	run failures view
	assert_output "c3:app ./opt/app/app.conf acl.access"
	run differences ".found"
	assert_output "user::rw-,user:1001:r--,user:301001:r--,group::r--,mask::r--,other::r--"
}

@test "a stale fcaps rootid in a shifted copy is reported" {
	setcap -n 1000 cap_net_raw+ep "$W/c3/base/fcap-v3"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output view
	run failures view
	assert_output "c3:base ./fcap-v3 fcaps"
	run differences '"\(.expected) \(.found)"'
	assert_output "v3,rootid=301000,permitted=0x2000,inheritable=0,effective v3,rootid=1000,permitted=0x2000,inheritable=0,effective"
}

@test "a layer shifted in place used by a container with another map is reported" {
	local v2
	v2=$(scratch c2-inplace)
	# c2 uses base through an idmapped mount with its own map; then base
	# is shifted in place for c1 (who uses it without an idmap) under c2's
	# feet (shift-mount refuses to idmap a tree already shifted)
	idmap_mount --map "$M2" "$W/base" "$v2"
	"$SHIFT_TREE" -q --unmapped=overflow --map "$M1" "$W/base" 2>/dev/null
	jq -n --arg w "$W" --arg v2 "$v2" --arg m1 "$M1" --arg m2 "$M2" '{
	  layers: [ { name: "base", path: "\($w)/base", manifest: "\($w)/base.mtree",
		      shifted: $m1 } ],
	  containers: [
	    { name: "c1", map: $m1, views: [ { layer: "base", path: "\($w)/base" } ] },
	    { name: "c2", map: $m2, views: [ { layer: "base", path: $v2 } ] } ] }' >"$SET"
	run report "$SET"
	assert_failure 1
	run failed_checks
	assert_output in-place
	run findings 'select(.check == "layer" or .check == "view") |
		"\(.check) \(.subject) \(.status)"'
	assert_output "layer base pass
view c1:base pass
view c2:base skip"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_line --regexp "^in-place +fail +base +layer 'base' is shifted in place for map b:0:100000:65536, but container 'c2' uses it with map b:0:200000:65536"
}

@test "a running container: maps from /proc/PID, views through /proc/PID/root, idmapped mounts listed" {
	local v1b pid
	v1b=$(scratch c1-base)
	idmap_mount --map "$M1" "$W/base" "$v1b"
	# the container's mount namespace is a copy: it holds both mounts
	pid=$(start_container "0 100000 65536" "0 100000 65536")
	jq -n --arg w "$W" --arg v1 "$V1" --arg v1b "$v1b" --argjson pid "$pid" '{
	  layers: [ { name: "base", path: "\($w)/base", manifest: "\($w)/base.mtree" } ],
	  containers: [ { name: "c1", pid: $pid, upper: "\($w)/c1/upper",
	    views: [ { layer: "base", path: $v1, merged: true },
		     { layer: "base", path: $v1b } ] } ] }' >"$SET"
	run "$SHIFT_VERIFY" containers --all "$SET"
	assert_success
	assert_line --regexp "^view +pass +c1:base +'/proc/$pid/root$V1' matches"
	assert_line --regexp "^mounts +info +c1 +$v1b \(ext4|xfs|btrfs\) is idmapped"
	assert_line --regexp "^mounts +info +c1 +$V1 \(overlay\) is not idmapped"
	# the same process with host root mapped: reported
	pid=$(start_container "0 0 65536" "0 100000 65536")
	jq -n --argjson pid "$pid" '{ containers: [ { name: "c9", pid: $pid } ] }' >"$SET"
	run report "$SET"
	assert_failure 1
	run failures host-root
	assert_output "c9 - -"
}

@test "a bad container set is a clear error" {
	echo '{ "containers": [ { "name": "c1" } ] }' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_output "shift-verify: Failed to read container set '$SET': line 1, column 19: container 'c1': give exactly one of \"map\" and \"pid\" (see shift-verify(1), CONTAINER SET)"
	echo '{ "containers": [ { "name": "c1", "map": "0:1" } ] }' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_output --partial "container 'c1': bad map"
	echo 'not json' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_output --partial "not valid JSON"
	run "$SHIFT_VERIFY" containers "$W/nope.json"
	assert_failure 1
	assert_output --partial "No such file"
}

@test "a layered image with deletions: whiteouts and opaque dirs of a higher layer are expected" {
	local v
	v=$(scratch cd)
	# del, above base: deletes file-1000 and dir/, replaces file-1001
	# with a file of another owner, and makes deep/ opaque (hiding
	# base's deep/a) with a file of its own
	mkdir -p "$W/del/deep"
	mknod "$W/del/file-1000" c 0 0
	mknod "$W/del/dir" c 0 0
	echo new >"$W/del/file-1001"
	chown 2000:2000 "$W/del/file-1001"
	touch "$W/del/deep/new"
	chown 1000:1000 "$W/del/deep/new"
	setfattr -n trusted.overlay.opaque -v y "$W/del/deep"
	"$SHIFT_VERIFY" record --output "$W/del.mtree" "$W/del"
	run grep -A1 '^\./file-1000 ' "$W/del.mtree"
	assert_line --index 1 "#shiftkit overlay=whiteout"
	run grep -A1 '^\./deep ' "$W/del.mtree"
	assert_line --index 1 "#shiftkit overlay=opaque"
	mkdir -p "$W/cd"
	idmap_mount --map "$M1" --overlay "$W/del:$W/base" --upper "$W/cd/upper" \
		--work "$W/cd/work" "$v"
	# what the kernel shows: deleted, replaced, hidden
	[ ! -e "$v/file-1000" ] && [ ! -e "$v/dir" ] && [ ! -e "$v/deep/a" ]
	assert_equal "$(owner "$v/file-1001")" 102000:102000
	# views listed bottom layer first, as an image manifest lists them
	jq -n --arg w "$W" --arg v "$v" --arg m1 "$M1" '{
	  layers: [ { name: "base", path: "\($w)/base", manifest: "\($w)/base.mtree" },
		    { name: "del", path: "\($w)/del", manifest: "\($w)/del.mtree" } ],
	  containers: [ { name: "cd", map: $m1,
	    views: [ { layer: "base", path: $v, merged: true },
		     { layer: "del", path: $v, merged: true } ] } ] }' >"$SET"
	run "$SHIFT_VERIFY" containers --all "$SET"
	assert_success
	assert_line --regexp "^view +pass +cd:base +'$v' matches the manifest under the container's map \(layers merged\)"
	assert_line --regexp "^view +pass +cd:del +'$v' matches"
	# a deletion the image does not make is still found, as base's
	rm "$v/file-65534"
	run report "$SET"
	assert_failure 1
	run failures view
	assert_output "cd:base ./file-65534 entry"
}

@test "a check with many differences fails once; --max-differences caps the list" {
	# 7 entries (dir, dir/file, deep/a/b/c/file and its dirs), uid and gid
	chown -R 4242:4242 "$W/c3/base/dir" "$W/c3/base/deep"
	run report --max-differences 3 "$SET"
	assert_failure 1
	[ "$(jq -r '"\(.failed) \(.passed) \(.skipped) \(.differences)"' \
		"$SK_TMP/t$BATS_TEST_NUMBER.report")" = "1 16 3 14" ]
	run findings 'select(.status == "fail") | "\(.subject) \(.differences | length) \(.differences_total) \(.message)"'
	assert_output "c3:base 3 14 '$W/c3/base' differs from the manifest in 14 places"
	run "$SHIFT_VERIFY" containers --max-differences 3 "$SET"
	assert_failure 1
	assert_line --regexp "^view +fail +c3:base +'$W/c3/base' differs from the manifest in 14 places"
	assert_line --regexp "^view +diff +c3:base +\./deep: uid is 4242, expected 301001"
	assert_line --regexp "^view +diff +c3:base +\.\.\. and 11 more \(--max-differences\)"
	assert_line --regexp "FAIL: 1 failed, 16 passed, 3 skipped \(14 differences\)$"
	[ "$(grep -c ' diff ' <<<"$output")" = 4 ]
	# the default lists them all here; 'all' too
	run report --max-differences all "$SET"
	run findings 'select(.status == "fail") | .differences | length'
	assert_output 14
}

@test "a canonical upper (container ids) verifies with canonical_upper; a host-id file planted in it is reported" {
	local v4 set=$W/set4.json
	v4=$(scratch c4)
	mkdir -p "$W/c4"
	idmap_mount --map "$M1" --overlay "$W/app:$W/base" --canonical-upper \
		--upper "$W/c4/upper" --work "$W/c4/work" "$v4"
	# Written through the overlay by the container's root and uid 1000:
	# new files, and copy-ups (one of a file with an ACL).
	as_user 100000 100000 sh -c "echo r >'$v4/by-root'; mkdir '$v4/rdir'"
	as_user 101000 101000 sh -c "echo u >'$v4/opt/app/by-1000'; echo more >>'$v4/opt/app/app.conf'"
	assert_equal "$(stat -c '%u:%g' "$W/c4/upper/by-root" "$W/c4/upper/opt/app/app.conf")" "0:0
1000:1000"
	jq . >"$set" <<JSON
{
  "layers": [
    { "name": "base", "path": "$W/base", "manifest": "$W/base.mtree" },
    { "name": "app", "path": "$W/app", "manifest": "$W/app.mtree" }
  ],
  "containers": [
    { "name": "c4", "map": "$M1", "upper": "$W/c4/upper", "canonical_upper": true,
      "views": [ { "layer": "base", "path": "$v4", "merged": true },
                 { "layer": "app", "path": "$v4", "merged": true } ] }
  ]
}
JSON
	run "$SHIFT_VERIFY" containers --all "$set"
	assert_success
	assert_line --regexp "^upper +pass +c4:upper +'$W/c4/upper' holds only the container's own ids$"
	# Recorded once, the canonical upper is what the container sees
	# through the overlay under its map, and under another map too: the
	# same upper under M2 needs no shift.
	"$SHIFT_VERIFY" record --output "$W/c4.mtree" "$W/c4/upper"
	run "$SHIFT_VERIFY" check --manifest "$W/c4.mtree" --map "$M1" --ignore-extra "$v4"
	assert_success
	umount "$v4"
	idmap_mount --map "$M2" --overlay "$W/app:$W/base" --canonical-upper \
		--upper "$W/c4/upper" --work "$W/c4/work" "$v4"
	run "$SHIFT_VERIFY" check --manifest "$W/c4.mtree" --map "$M2" --ignore-extra "$v4"
	assert_success
	assert_equal "$(owner "$v4/opt/app/by-1000")" 201000:201000
	run "$SHIFT_VERIFY" check --manifest "$W/c4.mtree" --map "$M1" --ignore-extra "$v4"
	assert_failure 1
	umount "$v4"
	idmap_mount --map "$M1" --overlay "$W/app:$W/base" --canonical-upper \
		--upper "$W/c4/upper" --work "$W/c4/work" "$v4"
	# As a host-id upper it would be wrong: its ids are not in 100000-165535.
	jq 'del(.containers[0].canonical_upper)' "$set" >"$set.host"
	run report "$set.host"
	assert_failure 1
	run failed_checks
	assert_output upper
	# A file in host ids planted in the canonical upper is reported.
	touch "$W/c4/upper/stray"
	chown 100000:100000 "$W/c4/upper/stray"
	run report "$set"
	assert_failure 1
	run failed_checks
	assert_output upper
	run failures upper
	assert_output "c4:upper ./stray uid
c4:upper ./stray gid"
	run differences 'select(.check == "upper") | .expected'
	assert_output "in 0-65535
in 0-65535"
	# "canonical_upper" is a boolean, and needs "upper".
	jq '.containers[0].canonical_upper = "yes"' "$set" >"$set.bad"
	run "$SHIFT_VERIFY" containers "$set.bad"
	assert_failure 1
	assert_output --partial '"canonical_upper" must be true or false'
	jq 'del(.containers[0].upper)' "$set" >"$set.bad"
	run "$SHIFT_VERIFY" containers "$set.bad"
	assert_failure 1
	assert_output --partial '"canonical_upper" needs "upper"'
}

@test "a container's pid: its mounts are read from /proc/PID/mountinfo (views named, idmapped counted); a gone process fails" {
	local gone
	jq --argjson pid $$ '.containers[0] |= (del(.map) | .pid = $pid)' "$SET" >"$SET.pid"
	# (this shell's maps are the host's: other checks fail, as they should)
	run "$SHIFT_VERIFY" containers --all "$SET.pid"
	assert_line --regexp "^ *mounts +info +c1 +[0-9]+ of [0-9]+ mounts of process $$ are idmapped$"
	assert_line --regexp "^ *mounts +info +c1 +$V1 \(overlay\) is not idmapped$"
	sh -c 'exit 0' &
	gone=$!
	wait "$gone"
	jq --argjson pid "$gone" '.containers[0] |= (del(.map) | .pid = $pid)' "$SET" >"$SET.gone"
	run "$SHIFT_VERIFY" containers "$SET.gone"
	assert_failure
	assert_output --partial "container 'c1': Failed to read the maps of process $gone"
}
