#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-verify containers: a container set that is not exactly what the
# format says is refused, naming the line and column, never checked in part
# (a typo in a key used to drop whole checks and print PASS); and the
# delegation check (subid) judged as newuidmap(1) judges a map.
#
# run-on: once

load ../lib/common

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	D=$(scratch set)
	SET=$D/set.json
}

# refused TEXT MESSAGE: the set TEXT is refused (exit 1, no PASS) with a
# message ending in MESSAGE
refused() {
	printf '%s\n' "$1" >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	refute_output --partial PASS
	assert_output "shift-verify: Failed to read container set '$SET': $2 (see shift-verify(1), CONTAINER SET)"
}

@test "an unknown key is refused with its line and column, never ignored" {
	refused '{ "containers": [
  { "name": "c1", "map": "b:0:100000:65536",
    "uper": "/srv/c1/upper" } ] }' \
		'line 3, column 5: container '"'"'c1'"'"': unknown key "uper" (did you mean "upper"?) (known: name, owner, map, pid, upper, canonical_upper, views)'
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", "veiws": [] } ] }' \
		'line 1, column 62: container '"'"'c1'"'"': unknown key "veiws" (did you mean "views"?) (known: name, owner, map, pid, upper, canonical_upper, views)'
	refused '{ "layers": [ { "name": "base", "path": "/l" } ],
  "containers": [ { "name": "c1", "map": "b:0:100000:65536", "layer": "base" } ] }' \
		'line 2, column 62: container '"'"'c1'"'"': unknown key "layer" (known: name, owner, map, pid, upper, canonical_upper, views)'
	refused '{ "layers": [ { "name": "base", "path": "/l", "manfest": "/m" } ],
  "containers": [ { "name": "c1", "map": "b:0:100000:65536" } ] }' \
		'line 1, column 47: layer '"'"'base'"'"': unknown key "manfest" (did you mean "manifest"?) (known: name, path, manifest, shifted)'
	refused '{ "layers": [ { "name": "base", "path": "/l" } ],
  "containers": [ { "name": "c1", "map": "b:0:100000:65536",
    "views": [ { "layer": "base", "path": "/v", "mereged": true } ] } ] }' \
		'line 3, column 49: container '"'"'c1'"'"': view 1: unknown key "mereged" (did you mean "merged"?) (known: layer, path, merged, copy)'
	refused '{ "container": [ { "name": "c1", "map": "b:0:100000:65536" } ] }' \
		'line 1, column 3: the container set: unknown key "container" (did you mean "containers"?) (known: layers, containers)'
}

@test "an empty container set is refused" {
	refused '{ "containers": [] }' \
		'line 1, column 3: "containers" is empty: nothing to check'
	refused '{}' 'no "containers": nothing to check'
	refused '{ "layers": [ { "name": "base", "path": "/l" } ] }' \
		'no "containers": nothing to check'
}

@test "a value of the wrong type is refused with its position" {
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", "upper": 3 } ] }' \
		'line 1, column 62: container '"'"'c1'"'"': "upper" must be a string'
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", "owner": null } ] }' \
		'line 1, column 62: container '"'"'c1'"'"': "owner" must be a string'
	refused '{ "containers": [ { "name": "", "map": "b:0:100000:65536" } ] }' \
		'line 1, column 21: container 1: "name" is empty'
	refused '{ "containers": [ { "name": "c1", "pid": "42" } ] }' \
		'line 1, column 35: container '"'"'c1'"'"': "pid" must be a positive number'
	refused '{ "containers": [ { "name": "c1", "map": 5 } ] }' \
		'line 1, column 35: container '"'"'c1'"'"': "map" is a string or an array of strings, e.g. "b:0:100000:65536"'
	refused '{ "containers": [ { "name": "c1", "map": [ "b:0:100000:1", 7 ] } ] }' \
		'line 1, column 60: container '"'"'c1'"'"': bad map: map entries must be strings'
	refused '{ "layers": [ { "name": "base", "path": "/l" } ], "containers": [ { "name": "c1", "map": "b:0:100000:65536",
    "views": [ { "layer": "base", "path": "/v", "merged": "yes" } ] } ] }' \
		'line 2, column 49: container '"'"'c1'"'"': view 1: "merged" must be true or false'
	refused '{ "containers": { "name": "c1" } }' \
		'line 1, column 3: "containers" must be an array'
	refused '[ { "name": "c1", "map": "b:0:100000:65536" } ]' \
		'the top level must be an object'
}

@test "not JSON: trailing commas, duplicate keys, single quotes, comments, trailing text" {
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536" }, ] }' \
		'not valid JSON: line 1, column 62: a comma before the closing bracket (JSON allows no trailing comma)'
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", } ] }' \
		'not valid JSON: line 1, column 60: a comma before the closing bracket (JSON allows no trailing comma)'
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", "name": "c2" } ] }' \
		'line 1, column 62: a key appears twice in one object: "name"'
	refused "{ \"containers\": [ { 'name': \"c1\", \"map\": \"b:0:100000:65536\" } ] }" \
		'line 1, column 21: a key must be a string in double quotes'
	refused '{ "containers": [ /* c1 */ { "name": "c1", "map": "b:0:100000:65536" } ] }' \
		'not valid JSON: line 1, column 19: unexpected character'
	refused '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536" } ] } x' \
		'not valid JSON: line 1, column 67: unexpected character'
	refused '{ "containers": [
  { "name": "c1", "map": "b:0:100000:65536" }' \
		'not valid JSON: line 3, column 1: unexpected end of the text'
}

@test "--json: the error is inside the one JSON document on stdout" {
	printf '{ "containers": [ { "name": "c1", "map": "b:0:100000:65536", "uper": "/u" } ] }\n' >"$SET"
	run --separate-stderr "$SHIFT_VERIFY" containers --json "$SET"
	assert_failure 1
	[ "$(jq -r .result <<<"$output")" = error ]
	[ "$(jq -r .file <<<"$output")" = "$SET" ]
	jq -r .error.message <<<"$output" | grep -q 'line 1, column 62: .*unknown key "uper"'
	[[ "$stderr" == *'unknown key "uper"'* ]]
}

@test "untrusted names in messages are escaped" {
	printf '{ "containers": [ { "name": "a\\u001b[2Jb\\nc", "map": "b:0:100000:1" },\n { "name": "a\\u001b[2Jb\\nc", "map": "b:0:200000:1" } ] }\n' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_output "shift-verify: Failed to read container set '$SET': line 2, column 4: container 'a\\033[2Jb\\nc' is described twice (see shift-verify(1), CONTAINER SET)"
	# and in the table
	printf '{ "containers": [ { "name": "a\\u001b[2Jb", "map": "b:0:0:1" } ] }\n' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp '^host-root +fail +a\\033\[2Jb +host uid 0 is mapped'
	refute_output --partial $'\033'
}

# subid: maps only, an existing user (daemon: uid 1, gid 1) so that the
# test creates none

# subid_set NAME=MAP... (owner daemon)
subid_set() {
	local s first=1
	{
		echo '{ "containers": ['
		for s in "$@"; do
			[ "$first" = 1 ] || echo ,
			first=0
			printf '{ "name": "%s", "owner": "daemon", "map": %s }' "${s%%=*}" "${s#*=}"
		done
		echo '] }'
	} >"$SET"
}

@test "subid: the standard rootless layout (root -> the owner's own ids) is the owner's" {
	printf 'daemon:100000:65536\n' >"$D/subuid"
	printf 'daemon:100000:65536\n' >"$D/subgid"
	export SHIFT_SUBUID=$D/subuid SHIFT_SUBGID=$D/subgid
	subid_set rootless='["u:0:1:1", "u:1:100000:65536", "g:0:1:1", "g:1:100000:65536"]'
	run "$SHIFT_VERIFY" containers --all "$SET"
	assert_success
	assert_line --regexp "^subid +pass +rootless +ranges inside the delegation of 'daemon'"
	# --quiet: nothing to say when all is well
	run "$SHIFT_VERIFY" containers --quiet "$SET"
	assert_success
	assert_output ""
	# someone else's uid is not the owner's
	subid_set other='["u:0:2:1", "u:1:100000:65536", "g:0:1:1", "g:1:100000:65536"]'
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^subid +fail +other +host uids 2-2 not inside the subuid delegation of 'daemon' \($D/subuid\)"
}

@test "subid: exactly the ids outside the delegation are reported" {
	printf 'daemon:100000:65536\n' >"$D/subuid"
	printf 'daemon:100000:65536\ndaemon:165536:5\n' >"$D/subgid"
	export SHIFT_SUBUID=$D/subuid SHIFT_SUBGID=$D/subgid
	subid_set part='"b:0:99990:65556"'
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^subid +fail +part +host uids 99990-99999,165536-165545 not inside the subuid delegation of 'daemon' \($D/subuid\)"
	assert_line --regexp "^subid +fail +part +host gids 99990-99999,165541-165545 not inside the subgid delegation of 'daemon' \($D/subgid\)"
	assert_line --regexp "FAIL: 2 failed, 1 passed, 0 skipped$"
}

@test "subid: an owner that does not exist is 'no such user'" {
	printf 'ghost-user-x:100000:65536\n' >"$D/subuid"
	export SHIFT_SUBUID=$D/subuid SHIFT_SUBGID=$D/subuid
	printf '{ "containers": [ { "name": "c1", "owner": "ghost-user-x", "map": "b:0:100000:65536" } ] }\n' >"$SET"
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^subid +fail +c1 +owner 'ghost-user-x': no such user$"
}

@test "subid: a malformed line of the owner's fails, another user's is information, a missing file is named" {
	printf 'daemon:100000:65536\r\n' >"$D/subuid"
	printf 'bin:1:2:3\ndaemon:100000:65536\nbin:-5:10\n' >"$D/subgid"
	export SHIFT_SUBUID=$D/subuid SHIFT_SUBGID=$D/subgid
	subid_set c1='"b:0:100000:65536"'
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^subid +fail +c1 +$D/subuid: line 1: ends in CR \(a DOS line end\): the line of 'daemon' is malformed, so it delegates nothing"
	assert_line --regexp "^subid +info +c1 +$D/subgid: line 1: not NAME:START:COUNT \(three fields\): ignored"
	assert_line --regexp "^subid +info +c1 +$D/subgid: line 3: START is not a number from 0 to 4294967295: ignored"
	printf 'daemon:100000:65536\n' >"$D/subgid"
	export SHIFT_SUBUID=$D/nonexistent
	run "$SHIFT_VERIFY" containers "$SET"
	assert_failure 1
	assert_line --regexp "^subid +fail +c1 +host uids 100000-165535 not inside the subuid delegation of 'daemon' \($D/nonexistent: no such file\)"
}
