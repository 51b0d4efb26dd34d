#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# stat through an idmapped mount shows map(on-disk owner) for every inode
# type; the original mount is unchanged.

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
}

@test "every inode type is seen with its owner mapped" {
	local m p want
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	for p in . "${FIXTURE_TYPES[@]}" setuid setgid acl-dir fcap-v3 deep/a/b/c/file; do
		IFS=: read -r u g <<<"$(owner "$FS_TREE/$p")"
		want="$(mapped "$u" "$MAP"):$(mapped "$g" "$MAP")"
		[ "$(owner "$m/$p")" = "$want" ] || fail "'$p': seen as $(owner "$m/$p"), want $want (on disk $u:$g)"
	done
	# Spot checks against the fixture's documented owners.
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000-1001")" 101000:101001
	assert_equal "$(owner "$m/blockdev")" 100000:100006
	assert_equal "$(owner "$m/symlink")" 101000:101000
}

@test "modes, sizes, types, links and mtimes are unchanged through the mount" {
	local m
	m=$(scratch m)
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	# ACL qualifiers and capability rootids are translated (other tests);
	# everything else, user.* and trusted.* xattrs included, is identical.
	run diff <(manifest "$FS_TREE" | cut -d' ' -f1-3,6- | sed -E 's/ (system|security)\.[^ ]*//g') \
		<(manifest "$m" | cut -d' ' -f1-3,6- | sed -E 's/ (system|security)\.[^ ]*//g')
	assert_success
}

@test "the original mount still shows the on-disk owners" {
	local m before
	m=$(scratch m)
	before=$(manifest "$FS_TREE")
	idmap_mount --map "$MAP" "$FS_TREE" "$m"
	assert_equal "$(owner "$FS_TREE/file-1000")" 1000:1000
	assert_equal "$(owner "$FS_TREE/file-root")" 0:0
	run diff <(echo "$before") <(manifest "$FS_TREE")
	assert_success
}

@test "ids outside the map are seen as 65534" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:1000 "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 65534:65534
	assert_equal "$(owner "$m/file-70000")" 65534:65534
	assert_equal "$(owner "$m/file-1000000")" 65534:65534
	# A map that reaches high on-disk ids maps them.
	m=$(scratch m2)
	idmap_mount --map 70000:2000000:40000 "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-70000")" 2000000:2000000
	assert_equal "$(owner "$m/file-100000")" 2030000:2030000
	assert_equal "$(owner "$m/file-root")" 65534:65534
	assert_equal "$(owner "$m/file-165535")" 65534:65534
}

@test "separate uid and gid maps apply to owner and group separately" {
	local m
	m=$(scratch m)
	idmap_mount --map u:0:200000:65536 --map g:0:300000:65536 "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000-1001")" 201000:301001
	assert_equal "$(owner "$m/setgid-dir")" 200000:301000
}

@test "a multi-extent map maps each range by its own extent" {
	local m
	m=$(scratch m)
	idmap_mount --map 0:100000:1001 --map 1001:500000:1 --map 65534:65534:1 \
		"$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/file-1001")" 500000:500000
	assert_equal "$(owner "$m/file-65534")" 65534:65534
	assert_equal "$(owner "$m/file-70000")" 65534:65534
}
