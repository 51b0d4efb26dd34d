#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-verify record and check: a canonical manifest of the fixture, and
# a tree compared with it under a map, through an idmapped mount and as a
# shifted copy made by shift-tree; each difference named exactly.
#
# run-on: ext4 xfs btrfs

load ../lib/common
load lib

MAP=b:0:100000:65536

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	require_writable
	W=$(vwork)
	new_layer "$W/base"
	M=$W/base.mtree
	"$SHIFT_VERIFY" record --output "$M" "$W/base"
}

teardown() {
	verify_teardown
}

@test "shift-verify --help, --version and usage errors" {
	run "$SHIFT_VERIFY" --help
	assert_success
	assert_output --partial "Usage:"
	run "$SHIFT_VERIFY" --version
	assert_success
	assert_output --regexp "^shift-verify from shiftkit "
	run "$SHIFT_VERIFY"
	assert_failure 2
	assert_output --partial "no command given"
	run "$SHIFT_VERIFY" frobnicate x
	assert_failure 2
	assert_output --partial "unknown command 'frobnicate'"
	run "$SHIFT_VERIFY" check "$W/base"
	assert_failure 2
	assert_output --partial "needs --manifest"
	run "$SHIFT_VERIFY" record --map "$MAP" "$W/base"
	assert_failure 2
	run "$SHIFT_VERIFY" check -M "$M" --map 0:1 "$W/base"
	assert_failure 2
	assert_output --partial "invalid map"
	run "$SHIFT_VERIFY" record "$W/does-not-exist"
	assert_failure 1
	assert_output --partial "Failed to record '$W/does-not-exist'"
}

@test "record is canonical: an mtree spec with ACLs, fcaps and a digest, the same on every filesystem" {
	run head -1 "$M"
	assert_output "#mtree"
	run tail -1 "$M"
	assert_output --regexp '^#shiftkit sha256=[0-9a-f]{64}$'
	run grep -A1 '^\./acl-file ' "$M"
	assert_line --index 0 "./acl-file mode=664 gid=0 uid=0 type=file"
	assert_line --index 1 "#shiftkit acl.access=user::rw-,user:1000:rw-,group::rw-,group:1001:r--,mask::rw-,other::r--"
	run grep -A1 '^\./fcap-v3 ' "$M"
	assert_line --index 1 --regexp '^#shiftkit fcaps=v3,rootid=1000,permitted=0x2000,'
	run grep -A1 '^\./fcap-v2 ' "$M"
	assert_line --index 1 --regexp '^#shiftkit fcaps=v2,permitted=0x2000,'
	run grep '^\./setuid-1000 ' "$M"
	assert_output "./setuid-1000 mode=6755 gid=1000 uid=1000 type=file"
	# the fixture on the host's /tmp and its copy here: byte-identical
	run diff <("$SHIFT_VERIFY" record "$SHIFTKIT_IMAGES/tree") "$M"
	assert_success
}

@test "check: the tree itself matches; one chown is one difference" {
	run "$SHIFT_VERIFY" check -M "$M" "$W/base"
	assert_success
	assert_output --regexp "entries match sha256:"
	chown 1234:1000 "$W/base/file-1000"
	run "$SHIFT_VERIFY" check -M "$M" "$W/base"
	assert_failure 1
	assert_line --regexp '^\./file-1000 +uid +1000 +1234$'
	run "$SHIFT_VERIFY" check --json -M "$M" "$W/base"
	assert_failure 1
	[ "$(jq -c '.differences' <<<"$output")" = \
		'[{"path":"./file-1000","field":"uid","expected":"1000","found":"1234"}]' ]
}

@test "check through an idmapped mount: matches under its map, not under another" {
	require_idmap
	local v
	v=$(scratch view)
	idmap_mount --map "$MAP" "$W/base" "$v"
	run "$SHIFT_VERIFY" check -M "$M" --map "$MAP" "$v"
	assert_success
	run "$SHIFT_VERIFY" check -M "$M" --map b:0:200000:65536 "$v"
	assert_failure 1
	assert_line --regexp '^\./file-1000 +uid +201000 +101000$'
	assert_line --regexp '^\./acl-file +acl.access +user::rw-,user:201000:rw-,.* +user::rw-,user:101000:rw-,'
	assert_line --regexp '^\./fcap-v2 +fcaps +v3,rootid=200000,.* +v3,rootid=100000,'
}

@test "check a shift-tree copy: owners, ACL qualifiers and fcaps rootids all shifted" {
	[ -x "$SHIFT_TREE" ] || skip "shift-tree is not built"
	cp -a "$W/base" "$W/copy"
	"$SHIFT_TREE" -q --unmapped=overflow --map "$MAP" "$W/copy"
	run "$SHIFT_VERIFY" check -M "$M" --map "$MAP" "$W/copy"
	assert_success
	# an ACL entry left unshifted, a stale fcaps rootid: exactly these two
	setfacl -x u:101000 -m u:1000:rw "$W/copy/acl-file"
	setcap -n 1000 cap_net_raw+ep "$W/copy/fcap-v3"
	run "$SHIFT_VERIFY" check --json -M "$M" --map "$MAP" "$W/copy"
	assert_failure 1
	run jq -r '.differences[] | "\(.path) \(.field) \(.found)"' <<<"$output"
	assert_output "./acl-file acl.access user::rw-,user:1000:rw-,group::rw-,group:101001:r--,mask::rw-,other::r--
./fcap-v3 fcaps v3,rootid=1000,permitted=0x2000,inheritable=0,effective"
}

@test "a manifest changed after recording is refused" {
	sed -i 's/^\(\.\/file-1000 .*\)uid=1000/\1uid=1001/' "$M"
	run "$SHIFT_VERIFY" check -M "$M" "$W/base"
	assert_failure 1
	assert_output --partial "digest does not match"
	head -3 "$M" >"$W/short.mtree"
	run "$SHIFT_VERIFY" check -M "$W/short.mtree" "$W/base"
	assert_failure 1
	assert_output --partial "no digest line"
}

@test "an unreadable subdirectory is named, not the top directory" {
	mkdir -p "$W/priv/open/secret"
	touch "$W/priv/open/secret/f"
	chmod 755 "$W" "$W/priv" "$W/priv/open"
	chmod 700 "$W/priv/open/secret"
	"$SHIFT_VERIFY" record --output "$W/priv.mtree" "$W/priv"
	run as_user 1000 1000 "$SHIFT_VERIFY" record "$W/priv"
	assert_failure 1
	assert_output "shift-verify: Failed to record '$W/priv': at ./open/secret: Permission denied"
	run as_user 1000 1000 "$SHIFT_VERIFY" check -M "$W/priv.mtree" "$W/priv"
	assert_failure 1
	assert_output "shift-verify: Failed to check '$W/priv' against '$W/priv.mtree': at ./open/secret: Permission denied"
}

@test "check: --max-differences, JSON counts, errors inside the JSON, --quiet" {
	chown 4242:4242 "$W/base/file-1000" "$W/base/file-1001" "$W/base/empty"
	run "$SHIFT_VERIFY" check --max-differences 2 -M "$M" "$W/base"
	assert_failure 1
	assert_line --regexp '^\.\.\. and 4 more \(--max-differences\)$'
	[ "$(grep -c '4242' <<<"$output")" = 2 ]
	run --separate-stderr "$SHIFT_VERIFY" check --json --max-differences 1 -M "$M" "$W/base"
	assert_failure 1
	[ "$(jq -c '[.result, (.differences | length), .differences_total]' <<<"$output")" = '["fail",1,6]' ]
	# an error is a JSON document too
	run --separate-stderr "$SHIFT_VERIFY" check --json -M "$W/nope.mtree" "$W/base"
	assert_failure 1
	[ "$(jq -r .result <<<"$output")" = error ]
	jq -r .error.message <<<"$output" | grep -q "Failed to read manifest '$W/nope.mtree': No such file"
	# --quiet: nothing when all is well
	"$SHIFT_VERIFY" record --output "$M" "$W/base"
	run --separate-stderr "$SHIFT_VERIFY" check -q -M "$M" "$W/base"
	assert_success
	assert_output ""
	[ -z "$stderr" ]
}

@test "record --json with --output; options that do nothing are refused" {
	run --separate-stderr "$SHIFT_VERIFY" record --json --output "$W/r.mtree" "$W/base"
	assert_success
	[ "$(jq -r .result <<<"$output")" = recorded ]
	[ "$(jq -r .digest <<<"$output")" = "$("$SHIFT_VERIFY" check -M "$W/r.mtree" "$W/base" | sed 's/.* match //')" ]
	run "$SHIFT_VERIFY" record --json "$W/base"
	assert_failure 2
	assert_output --partial "'record --json' needs --output FILE"
	# nothing is changed, so there is nothing to allow
	run "$SHIFT_VERIFY" check --allow-host-root -M "$M" --map b:0:0:65536 "$W/base"
	assert_failure 2
	assert_output --partial "--allow-host-root does nothing here"
	run "$SHIFT_VERIFY" --help
	refute_output --partial "allow-host-root"
	run "$SHIFT_VERIFY" check --max-differences -1 -M "$M" "$W/base"
	assert_failure 2
}

@test "a progress line on a terminal, none with --quiet" {
	command -v script >/dev/null || skip "script(1) is not installed"
	run script -qec "'$SHIFT_VERIFY' check -M '$M' '$W/base'" /dev/null
	assert_success
	assert_output --partial "shift-verify: entries "
	assert_output --partial "entries match"
	run script -qec "'$SHIFT_VERIFY' check -q -M '$M' '$W/base'" /dev/null
	assert_success
	assert_output ""
}

@test "file names in the differences are escaped, never sent raw to the terminal" {
	touch "$W/base/evil"$'\033'"[2J"$'\n'"line"
	run "$SHIFT_VERIFY" check -M "$M" "$W/base"
	assert_failure 1
	assert_line --regexp '^\./evil\\033\[2J\\nline +entry +absent +present$'
	refute_output --partial $'\033'
	# JSON carries the name itself (JSON's own escaping)
	run --separate-stderr "$SHIFT_VERIFY" check --json -M "$M" "$W/base"
	[ "$(jq -r '.differences[0].path' <<<"$output")" = "./evil"$'\033'"[2J"$'\n'"line" ]
}
