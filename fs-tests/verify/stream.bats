#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Manifests are written and checked as the tree is walked (bounded
# memory), in the bytes and with the digest of the libarchive-based writer
# before them: compat-tree.mtree was written by that writer for the tree
# compat-tree.sh makes, and record must give it again byte for byte, and
# check accept it.  Manifests in another order (another mtree writer's)
# are still read whole and checked.
#
# run-on: ext4 xfs btrfs tmpfs

load ../lib/common
load lib

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	require_writable
	require_acl
	W=$(vwork)
	OLD=$SRCDIR/fs-tests/verify/compat-tree.mtree
	"$SRCDIR/fs-tests/verify/compat-tree.sh" "$W/t"
}

teardown() {
	verify_teardown
}

# body FILE: the manifest without its digest line
body() {
	sed '$d' "$1"
}

# seal FILE: append the digest line of what FILE holds
seal() {
	printf '#shiftkit sha256=%s\n' "$(sha256sum <"$1" | cut -d' ' -f1)" >>"$1"
}

@test "record gives the old writer's bytes and digest; check accepts the old manifest" {
	run "$SHIFT_VERIFY" record --json --output "$W/new.mtree" "$W/t"
	assert_success
	cmp "$OLD" "$W/new.mtree"
	[ "$(jq -r .digest <<<"$output")" = "sha256:$(tail -1 "$OLD" | cut -d= -f2)" ]
	[ "$(jq -r .entries <<<"$output")" = "$(grep -c '^\.' "$OLD")" ]
	# stdout too
	run diff <("$SHIFT_VERIFY" record "$W/t") "$OLD"
	assert_success
	run "$SHIFT_VERIFY" check -M "$OLD" "$W/t"
	assert_success
	assert_output "$W/t: $(grep -c '^\.' "$OLD") entries match sha256:$(tail -1 "$OLD" | cut -d= -f2)"
}

@test "check names every difference once: changed, missing, extra, a directory that became a file and back" {
	local d="$W/t"
	chown 5:5 "$d/file"
	rm "$d/a0"
	rm -r "$d/a/b"
	touch "$d/0first" "$d/zzz-new"
	mkdir -p "$d/newdir/x"
	touch "$d/newdir/x/f"
	rm "$d/B"
	mkdir "$d/B"
	touch "$d/B/f"
	rm -r "$d/z"
	touch "$d/z"
	setfacl -b "$d/a/f"
	run "$SHIFT_VERIFY" check --json --max-differences 100 -M "$OLD" "$d"
	assert_failure 1
	run jq -r '.differences[] | "\(.path) \(.field) \(.expected) \(.found)"' <<<"$output"
	run sort <<<"$output"
	assert_output "./0first entry absent present
./B type file dir
./B/f entry absent present
./a/b entry present absent
./a/b/c entry present absent
./a/b/c/h entry present absent
./a/b/g entry present absent
./a/f acl.access user::rw-,user:1000:rw-,group::r--,group:1001:r--,mask::rw-,other::r-- none
./a/f mode 0664 0644
./a0 entry present absent
./file gid 0 5
./file uid 0 5
./newdir entry absent present
./newdir/x entry absent present
./newdir/x/f entry absent present
./z type dir file
./z/dangling entry present absent
./z/y entry present absent
./z/y/x entry present absent
./z/y/x/leaf entry present absent
./z/zz entry present absent
./zzz-new entry absent present"
	run "$SHIFT_VERIFY" check --ignore-extra --ignore-missing -M "$OLD" "$d"
	assert_failure 1
	assert_output --partial "differs from '$OLD' in 6 places"
}

@test "a manifest in another writer's order is read whole; a path twice is refused" {
	# the same entries, reversed (each extension line stays after its
	# entry): not the walk's order
	body "$OLD" | sed 1d | awk '/^#shiftkit /{ l[n - 1] = l[n - 1] "\n" $0; next } { l[n++] = $0 }
		END { print "#mtree"; for (i = n - 1; i >= 0; i--) print l[i] }' >"$W/rev.mtree"
	seal "$W/rev.mtree"
	run "$SHIFT_VERIFY" check -M "$W/rev.mtree" "$W/t"
	assert_success
	chown 7 "$W/t/a/f"
	run "$SHIFT_VERIFY" check -M "$W/rev.mtree" "$W/t"
	assert_failure 1
	assert_line --regexp '^\./a/f +uid +1000 +7$'
	# a directory left out, what is below it kept: compared whole
	body "$OLD" | grep -v '^\./a ' >"$W/orphans.mtree"
	seal "$W/orphans.mtree"
	run "$SHIFT_VERIFY" check --json -M "$W/orphans.mtree" "$W/t"
	assert_failure 1
	[ "$(jq -c '[.differences[] | [.path, .field, .found]]' <<<"$output")" = \
		'[["./a","entry","present"],["./a/f","uid","7"]]' ]
	# a directory with the name of a file of the same directory, in the
	# walk's order otherwise
	body "$OLD" | sed '/^\.\/opq /i ./file mode=755 gid=0 uid=0 type=dir' >"$W/dup.mtree"
	grep -B1 '^\./opq ' "$W/dup.mtree" | grep -q '^\./file .*type=dir$'
	seal "$W/dup.mtree"
	run "$SHIFT_VERIFY" check -M "$W/dup.mtree" "$W/t"
	assert_failure 1
	assert_output --partial "a path appears twice"
	{ body "$OLD" | sed -n '1,3p'; body "$OLD" | sed -n '3,$p'; } >"$W/dup2.mtree"
	seal "$W/dup2.mtree"
	run "$SHIFT_VERIFY" check -M "$W/dup2.mtree" "$W/t"
	assert_failure 1
	assert_output --partial "a path appears twice"
}
