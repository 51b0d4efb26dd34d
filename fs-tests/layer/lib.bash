# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# fs-tests/layer/lib.bash: helpers for the shift-layer tests (after
# ../lib/common).
#
#   mkimage LAYOUT [mklayer options] SPEC...   craft a layout (helpers/mklayer)
#   spec NAME <<EOF ... EOF                    write a spec file, print its path
#   replace_last_layer LAYOUT FILE             make FILE the last layer blob,
#                                              fixing the manifest and index
#   assert_nothing_left DIR                    DIR and no temp dir beside it

MKLAYER=${MKLAYER:-$HELPERS/mklayer}

mkimage() {
	local layout=$1
	shift
	"$MKLAYER" "$layout" "$@" >/dev/null ||
		fail "mklayer $layout $* failed"
}

spec() {
	local f=$BATS_TEST_TMPDIR/$1.spec
	cat >"$f"
	echo "$f"
}

replace_last_layer() {
	local l=$1 f=$2 ld ls md nd ns
	ld=$(sha256sum "$f" | cut -d' ' -f1)
	ls=$(stat -c %s "$f")
	cp "$f" "$l/blobs/sha256/$ld"
	md=$(jq -r '.manifests[0].digest' "$l/index.json" | cut -d: -f2)
	jq -c --arg d "sha256:$ld" --argjson s "$ls" \
		'.layers[-1].digest = $d | .layers[-1].size = $s' \
		"$l/blobs/sha256/$md" >"$l/m.json"
	nd=$(sha256sum "$l/m.json" | cut -d' ' -f1)
	ns=$(stat -c %s "$l/m.json")
	mv "$l/m.json" "$l/blobs/sha256/$nd"
	jq -c --arg d "sha256:$nd" --argjson s "$ns" \
		'.manifests[0].digest = $d | .manifests[0].size = $s' \
		"$l/index.json" >"$l/i.json"
	mv "$l/i.json" "$l/index.json"
}

# The layer blob of an image (index 0 = bottom).
layer_blob() {
	local l=$1 i=$2 md
	md=$(jq -r '.manifests[0].digest' "$l/index.json" | cut -d: -f2)
	echo "$l/blobs/sha256/$(jq -r ".layers[$i].digest" "$l/blobs/sha256/$md" | cut -d: -f2)"
}

assert_nothing_left() {
	local d=$1
	[ ! -e "$d" ] || fail "'$d' exists after a refused unpack"
	if compgen -G "$(dirname "$d")/.$(basename "$d").shift-layer-*" >/dev/null; then
		fail "a temporary directory was left beside '$d'"
	fi
}

# listing DIR: type, owner, mode, ACLs and capabilities of every entry,
# sorted, for comparing trees (mtimes and sizes of directories left out).
listing() {
	(
		cd "$1" || exit 1
		{
			find . -xdev -type d -printf '%p %y %U:%G %m\n'
			find . -xdev ! -type d -printf '%p %y %U:%G %m %n %s %l\n'
		} | LC_ALL=C sort
		getfacl -RPn --skip-base . 2>/dev/null |
			awk '/^$/ { if (r != "") print r; r = ""; next }
			     { r = r (r == "" ? "" : " ") $0 }
			     END { if (r != "") print r }' | LC_ALL=C sort
		getcap -rn . 2>/dev/null | LC_ALL=C sort
	)
}

# umoci_fixup DIR MAP: what umoci unpack --uid-map/--gid-map leaves undone,
# done with the standard tools (an oracle independent of libshift): ACL
# qualifiers and file capability root ids mapped.  MAP is one extent
# [b:]A:B:N for uids and gids alike.
umoci_fixup() {
	local dir=$1 a b n path acl caps root r
	IFS=: read -r a b n <<<"${2#b:}"
	(cd "$dir" && getfacl -RPn --skip-base . 2>/dev/null) |
		awk -v A="$a" -v B="$b" -v N="$n" '
		/^# file: / { if (f != "") print f "\t" acl
			      f = substr($0, 9); acl = ""; next }
		/^#/ || /^$/ { next }
		{
			sub(/[ \t]*#.*/, "")
			n = split($0, p, ":")
			q = (p[1] == "default") ? 3 : 2
			if (p[q] != "") {
				id = p[q] + 0
				p[q] = (id >= A && id < A + N) ? id - A + B : "UNMAPPED"
			}
			line = p[1]
			for (i = 2; i <= n; i++) line = line ":" p[i]
			acl = acl (acl == "" ? "" : ",") line
		}
		END { if (f != "") print f "\t" acl }' |
		while IFS=$'\t' read -r path acl; do
			setfacl -P --set "$acl" "$dir/$path" ||
				fail "setfacl --set '$acl' '$path' failed"
		done
	(cd "$dir" && getcap -rn . 2>/dev/null) |
		while read -r path caps root; do
			r=0
			if [ -n "$root" ]; then
				r=${root#\[rootid=}
				r=${r%\]}
			fi
			setcap -n "$((r - a + b))" "$caps" "$dir/$path" ||
				fail "setcap on '$path' failed"
		done
}
