#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --fallback=reassemble: SOURCE is an overlayfs mount (which
# can't be idmapped); its layers are read from its mount options, each is
# idmapped as a detached clone and a new overlay over them is the only
# mount attached.  The source's live upper layer is never an upper of the
# new overlay: -R makes it a read-only layer, --upper/--work put a new
# writable layer above it.  Re-assembly is also what an overlayfs SOURCE
# gets without --fallback.  The fixture on $FS is the bottom layer; the
# other layers are scratch directories.

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
}

# src_overlay [OPTS]: mount the source overlay at $S: lowerdir $TOP over
# the fixture, upper $UP, work $WK (OPTS: more overlay options).
src_overlay() {
	TOP=$(scratch top)
	UP=$(scratch up)
	WK=$(scratch wk)
	S=$(scratch src)
	echo top >"$TOP/top-file"
	chown 2000:2000 "$TOP/top-file"
	echo up >"$UP/up-file"
	chown 7:7 "$UP/up-file"
	mount -t overlay sk-src -o "lowerdir=$TOP:$FS_TREE,upperdir=$UP,workdir=$WK${1:+,$1}" "$S"
}

# layers_manifest: the metadata of every source layer, for before/after.
layers_manifest() {
	manifest "$TOP"
	manifest "$UP"
	manifest "$FS_TREE"
}

@test "-R: the re-assembled overlay shows every layer through the map, read-only" {
	local m before
	src_overlay
	m=$(scratch m)
	before=$(layers_manifest)
	idmap_mount --fallback=reassemble -R --map "$MAP" "$S" "$m"
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" overlay
	assert_equal "$(owner "$m/file-root")" 100000:100000
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/top-file")" 102000:102000
	assert_equal "$(owner "$m/up-file")" 100007:100007
	assert_equal "$(owner "$m/file-70000")" 65534:65534
	assert_equal "$(cat "$m/up-file")" up
	run getcap -n "$m/fcap-v3"
	assert_output "$m/fcap-v3 cap_net_raw=ep [rootid=101000]"
	run touch "$m/new"
	assert_failure
	assert_output --partial "Read-only file system"
	# The source still shows the unmapped view; no layer changed.
	assert_equal "$(owner "$S/file-1000")" 1000:1000
	run diff <(echo "$before") <(layers_manifest)
	assert_success
}

@test "only the new overlay reaches the mount table: mountinfo gains exactly one line" {
	local m n out
	src_overlay index=off
	m=$(scratch m)
	n=$(scratch new)
	# In a private mount namespace of its own, where no one else mounts;
	# read-only, and with a canonical upper (a clone more, and a child).
	# shellcheck disable=SC2016 # expanded by the inner shell
	out=$(unshare -m --propagation private sh -c '
		for args in "-R" "--canonical-upper --upper $5/u --work $5/w"; do
			cut -d" " -f1 /proc/self/mountinfo | sort >"$5.before"
			# shellcheck disable=SC2086
			"$1" --fallback=reassemble $args --map "$2" "$3" "$4" || exit 1
			# The mounts that are new, by id, and where they are.
			cut -d" " -f1 /proc/self/mountinfo | sort |
				comm -13 "$5.before" - >"$5.new"
			echo "$(wc -l <"$5.new")" "$(awk -v m="$4" "\$5 == m" /proc/self/mountinfo |
				cut -d" " -f1)" "$(cat "$5.new")"
			umount "$4"
		done' sh "$SHIFT_MOUNT" "$MAP" "$S" "$m" "$n")
	# One new mount each time, the one at the target.
	[[ $out =~ ^1\ ([0-9]+)\ ([0-9]+)$'\n'1\ ([0-9]+)\ ([0-9]+)$ ]] || fail "unexpected: $out"
	assert_equal "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	assert_equal "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
}

@test "a live source with an upper layer is refused without -R or --upper, nothing mounted" {
	local m
	src_overlay
	m=$(scratch m)
	run "$SHIFT_MOUNT" --fallback=reassemble --map "$MAP" "$S" "$m"
	assert_failure 1
	assert_output --partial "it is live with a writable layer ('$UP')"
	assert_output --partial "use --read-only"
	run mountpoint -q "$m"
	assert_failure
}

@test "--upper/--work: a new writable layer over the source's upper (host ids); no source layer changes" {
	local m n before
	src_overlay index=off
	m=$(scratch m)
	n=$(scratch new)
	before=$(layers_manifest)
	idmap_mount --fallback=reassemble --map "$MAP" --upper "$n/upper" --work "$n/work" "$S" "$m"
	assert_equal "$(owner "$n/upper")" 100000:100000
	assert_equal "$(owner "$m/up-file")" 100007:100007
	echo more >>"$m/file-1000"
	echo more >>"$m/up-file"
	as_user 100000 100000 sh -c "echo new >'$m/new-by-root'"
	assert_equal "$(owner "$n/upper/file-1000")" 101000:101000
	assert_equal "$(owner "$n/upper/up-file")" 100007:100007
	assert_equal "$(owner "$n/upper/new-by-root")" 100000:100000
	assert_equal "$(cat "$UP/up-file")" up
	run diff <(echo "$before") <(layers_manifest)
	assert_success
}

@test "--upper/--work under a source with index=on: overlayfs refuses its live upper as a lower, said clearly" {
	local m n
	src_overlay index=on
	m=$(scratch m)
	n=$(scratch new)
	[[ $(findmnt -no FS-OPTIONS --mountpoint "$S") == *index=on* ]] ||
		skip "overlayfs turns index off over $FS (no file handles)"
	run "$SHIFT_MOUNT" --fallback=reassemble --map "$MAP" --upper "$n/upper" --work "$n/work" "$S" "$m"
	assert_failure 1
	assert_output --partial "refuses its writable layer ('$UP') as a lower layer while the source overlay uses it with index=on"
	run mountpoint -q "$m"
	assert_failure
}

@test "--canonical-upper: the new upper stores the container's ids; copy-up keeps setuid" {
	local m n
	src_overlay index=off
	m=$(scratch m)
	n=$(scratch new)
	idmap_mount --fallback=reassemble --canonical-upper --map "$MAP" --upper "$n/upper" --work "$n/work" "$S" "$m"
	assert_equal "$(owner "$n/upper")" 0:0
	assert_equal "$(owner "$m")" 100000:100000
	as_user 100000 100000 sh -c "echo new >'$m/new-by-root'"
	echo more >>"$m/file-1000"
	chmod 4755 "$m/up-file"
	assert_equal "$(owner "$m/new-by-root")" 100000:100000
	assert_equal "$(owner "$n/upper/new-by-root")" 0:0
	assert_equal "$(owner "$n/upper/file-1000")" 1000:1000
	assert_equal "$(owner "$n/upper/up-file")" 7:7
	assert_equal "$(stat -c %a "$n/upper/up-file")" 4755
	assert_equal "$(owner "$n/work/work")" 0:0
}

# ovl_escape PATH: PATH quoted for the legacy lowerdir list (\, : and ,).
ovl_escape() {
	local s=${1//\\/\\\\}
	s=${s//:/\\:}
	echo "${s//,/\\,}"
}

@test "escaped layer paths (space, comma, colon, backslash) and data-only layers are read right" {
	local d a b m
	d=$(scratch 'odd dir')
	a="$d/sp ace,co:lon"
	b="$d/back\\slash"
	mkdir "$a" "$b" "$d/data" "$d/src"
	echo a >"$a/a-file"
	chown 3:3 "$a/a-file"
	echo b >"$b/b-file"
	m=$(scratch m)
	mount -t overlay sk-src -o "lowerdir=$(ovl_escape "$a"):$(ovl_escape "$b")::$(ovl_escape "$d/data"),metacopy=on,redirect_dir=follow" "$d/src"
	# mountinfo holds them escaped twice over (octal and backslashes).
	assert_regex "$(grep -F ' sk-src ' /proc/self/mountinfo)" 'co\\134:lon.*::'
	idmap_mount --fallback=reassemble --map "$MAP" "$d/src" "$m"
	assert_equal "$(owner "$m/a-file")" 100003:100003
	assert_equal "$(cat "$m/b-file")" b
	run findmnt -no FS-OPTIONS --mountpoint "$m"
	assert_output --regexp '^ro,lowerdir\+=[^,]*,lowerdir\+=[^,]*,datadir\+=.*metacopy=on'
}

@test "a layer on a filesystem that can't be idmapped is named, exit 3, nothing mounted" {
	local r m s
	r=$(scratch ramfs)
	s=$(scratch src)
	m=$(scratch m)
	mount -t ramfs sk-ramfs "$r"
	echo r >"$r/r-file"
	mount -t overlay sk-src -o "lowerdir=$r:$FS_TREE" "$s"
	run "$SHIFT_MOUNT" --fallback=reassemble --map "$MAP" "$s" "$m"
	assert_failure 3
	assert_output --partial "Failed to idmap layer '$r' of the overlay '$s'"
	assert_output --partial "'ramfs' does not support idmapped mounts"
	assert_output --partial "give --copy-dir DIR"
	run mountpoint -q "$m"
	assert_failure
}

@test "--copy-dir: a layer that can't be idmapped is used as a shifted copy, and says so; the layer is unchanged" {
	local r m s c before
	r=$(scratch ramfs)
	s=$(scratch src)
	m=$(scratch m)
	c=$(scratch copies)
	mount -t ramfs sk-ramfs "$r"
	echo r >"$r/r-file"
	chown 5:5 "$r/r-file"
	mount -t overlay sk-src -o "lowerdir=$r:$FS_TREE" "$s"
	before=$(manifest "$r")
	run "$SHIFT_MOUNT" --fallback=reassemble --copy-dir "$c" --map "$MAP" "$s" "$m"
	assert_success
	assert_output --partial "layer '$r' of '$s' can't be idmapped: using its shifted copy in '$c/layer-0'"
	assert_equal "$(owner "$m/r-file")" 100005:100005
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$c/layer-0/r-file")" 100005:100005
	run diff <(echo "$before") <(manifest "$r")
	assert_success
	# A second run takes the copy as it is.
	umount "$m"
	idmap_mount --fallback=reassemble --copy-dir "$c" --map "$MAP" "$s" "$m" 2>/dev/null
	assert_equal "$(owner "$m/r-file")" 100005:100005
}

@test "an overlay built from detached layers (no paths in its options) is refused, not guessed" {
	local o up m
	o=$(scratch o)
	up=$(scratch up)
	m=$(scratch m)
	idmap_mount --overlay --map 0:200000:65536 --upper "$up/u" --work "$up/w" "$FS_TREE" "$o"
	run "$SHIFT_MOUNT" --fallback=reassemble -R --map "$MAP" "$o" "$m"
	assert_failure 1
	assert_output --partial "its mount options don't say where its layers are"
	run mountpoint -q "$m"
	assert_failure
}

@test "a directory inside an overlay, not its mount point, is refused" {
	local m
	src_overlay
	m=$(scratch m)
	run "$SHIFT_MOUNT" --fallback=reassemble -R --map "$MAP" "$S/dir" "$m"
	assert_failure 1
	assert_output --partial "not the overlay's mount point"
}

@test "not an overlay: --fallback=reassemble is an ordinary idmapped mount" {
	local m
	m=$(scratch m)
	idmap_mount --fallback=reassemble --map "$MAP" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000")" 101000:101000
}

@test "usage: option combinations that do nothing or contradict are refused with exit 2" {
	local m
	src_overlay
	m=$(scratch m)
	run "$SHIFT_MOUNT" --canonical-upper --map "$MAP" "$FS_TREE" "$m"
	assert_failure 2
	assert_output --partial "--canonical-upper needs --overlay, or --fallback=reassemble"
	run "$SHIFT_MOUNT" --canonical-upper --map "$MAP" "$S" "$m"
	assert_failure 2
	assert_output --partial "--canonical-upper needs --upper and --work"
	run "$SHIFT_MOUNT" --fallback=none --upper "$m/u" --work "$m/w" --map "$MAP" "$S" "$m"
	assert_failure 2
	assert_output --partial "--upper and --work need --overlay"
	run "$SHIFT_MOUNT" --fallback=reassemble --canonical-upper --map "$MAP" "$S" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --fallback=reassemble -R --upper "$m/u" --work "$m/w" --map "$MAP" "$S" "$m"
	assert_failure 2
	assert_output --partial "contradict"
	run "$SHIFT_MOUNT" --fallback=reassemble --upper "$m/u" --map "$MAP" "$S" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --fallback=reassemble -r -R --map "$MAP" "$S" "$m"
	assert_failure 2
	assert_output --partial "--recursive"
	run "$SHIFT_MOUNT" --fallback=reassemble --upper "$m/u" --work "$m/w" --map "$MAP" "$FS_TREE" "$m"
	assert_failure 2
	assert_output --partial "needs an overlayfs mount as SOURCE"
	run mountpoint -q "$m"
	assert_failure
}

@test "--replace: the source is unmounted and its upper taken over, in the container's ids" {
	local m
	src_overlay
	m=$(scratch m)
	echo more >>"$S/file-1000"
	idmap_mount --fallback=reassemble --replace --map "$MAP" "$S" "$m"
	run mountpoint -q "$S"
	assert_failure
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" overlay
	assert_equal "$(findmnt -no VFS-OPTIONS --mountpoint "$m" | cut -d, -f1)" rw
	# What the source wrote, through the map.
	assert_equal "$(tail -n1 "$m/file-1000")" more
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/up-file")" 100007:100007
	as_user 100000 100000 sh -c "echo new >'$m/by-root'"
	assert_equal "$(owner "$UP/by-root")" 0:0
}

@test "--replace onto the source's own mount point takes its place" {
	src_overlay
	idmap_mount --fallback=reassemble --replace --map "$MAP" "$S" "$S"
	assert_equal "$(grep -c " $S " /proc/self/mountinfo)" 1
	assert_equal "$(owner "$S/up-file")" 100007:100007
	assert_equal "$(owner "$S/file-root")" 100000:100000
}

@test "--replace while the source is in use changes nothing" {
	local m pid
	src_overlay
	m=$(scratch m)
	(cd "$S" && exec sleep 600) &
	pid=$!
	echo "$pid" >>"$SK_TMP/t$BATS_TEST_NUMBER.pids"
	# Until the sleep's working directory is the source.
	for _ in $(seq 50); do
		[ "$(readlink "/proc/$pid/cwd")" = "$S" ] && break
		sleep 0.1
	done
	run "$SHIFT_MOUNT" --fallback=reassemble --replace --map "$MAP" "$S" "$m"
	assert_failure 1
	assert_output --partial "Failed to unmount '$S' to take its place"
	assert_output --partial "it is in use"
	run mountpoint -q "$S"
	assert_success
	run mountpoint -q "$m"
	assert_failure
	kill "$pid"
}

@test "--replace: when the new overlay can't be attached, the source is mounted again as it was" {
	local f opts
	src_overlay
	opts=$(findmnt -no FS-OPTIONS --mountpoint "$S")
	f=$(scratch f)/file
	touch "$f"
	run "$SHIFT_MOUNT" --fallback=reassemble --replace --map "$MAP" "$S" "$f"
	assert_failure
	assert_output --partial "'$f'"
	run mountpoint -q "$S"
	assert_success
	assert_equal "$(findmnt -no FS-OPTIONS --mountpoint "$S")" "$opts"
	assert_equal "$(owner "$S/up-file")" 7:7
	run mountpoint -q "$f"
	assert_failure
}

@test "--replace: usage, and a source without an upper layer" {
	local m s
	src_overlay
	m=$(scratch m)
	run "$SHIFT_MOUNT" --replace --map "$MAP" "$FS_TREE" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --fallback=none --replace --map "$MAP" "$S" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --fallback=reassemble --replace -R --map "$MAP" "$S" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --fallback=reassemble --replace --canonical-upper --map "$MAP" "$S" "$m"
	assert_failure 2
	s=$(scratch ro)
	mount -t overlay sk-src -o "lowerdir=$TOP:$FS_TREE" "$s"
	run "$SHIFT_MOUNT" --fallback=reassemble --replace --map "$MAP" "$s" "$m"
	assert_failure 1
	assert_output --partial "no upper layer to take over"
	run mountpoint -q "$s"
	assert_success
}

@test "a source of 300 layers with long paths (a mountinfo line over 64 KiB) is read whole" {
	local d m s p i layers=() len
	d=$(scratch long)
	m=$(scratch m)
	s=$(scratch src)
	# fsconfig takes paths of up to 255 bytes: 300 of nearly that length.
	p=$(printf 'x%.0s' $(seq $((240 - ${#d}))))
	for ((i = 0; i < 300; i++)); do
		mkdir "$d/$i$p"
		echo "$i" >"$d/$i$p/f$i"
		layers+=("$d/$i$p")
	done
	chown 9:9 "$d/299$p/f299"
	run "$HELPERS/ovl-helper" --by-path "${layers[@]}" "$s"
	assert_output "create: OK
mount: ro"
	len=$(grep -F " $s " /proc/self/mountinfo | wc -c)
	[ "$len" -gt 65536 ]
	idmap_mount --fallback=reassemble --map "$MAP" "$s" "$m"
	assert_equal "$(cat "$m/f0")" 0
	assert_equal "$(owner "$m/f299")" 100009:100009
	assert_equal "$(find "$m" -mindepth 1 | wc -l)" 300
}

@test "--fallback=none: an overlayfs SOURCE is refused with exit 3 and --fallback=reassemble is named" {
	local m
	src_overlay
	m=$(scratch m)
	run "$SHIFT_MOUNT" --fallback=none --map "$MAP" "$S" "$m"
	assert_failure 3
	assert_output --partial "try --fallback=reassemble"
	run mountpoint -q "$m"
	assert_failure
	run "$SHIFT_MOUNT" --map "$MAP" "$FS_TREE/dir" "$m"
	refute_output --partial "reassemble"
}

@test "without --fallback, a read-only overlayfs SOURCE is re-assembled (the default); --json says so" {
	local m lo before s
	lo=$(scratch lo)
	s=$(scratch src)
	echo top >"$lo/top-file"
	chown 2000:2000 "$lo/top-file"
	mount -t overlay sk-src -o "lowerdir=$lo:$FS_TREE" "$s"
	m=$(scratch m)
	before=$(manifest "$FS_TREE")
	run --separate-stderr "$SHIFT_MOUNT" --json --map "$MAP" "$s" "$m"
	assert_success
	run jq -e '.fallback == "reassemble" and .method == "reassemble" and .mounted == true' <<<"$output"
	assert_success
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" overlay
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/top-file")" 102000:102000
	assert_equal "$(owner "$s/file-1000")" 1000:1000
	run diff <(echo "$before") <(manifest "$FS_TREE")
	assert_success
}

@test "--json with --fallback=reassemble names the fallback" {
	local m
	src_overlay
	m=$(scratch m)
	run --separate-stderr "$SHIFT_MOUNT" --json --fallback=reassemble -R --map "$MAP" "$S" "$m"
	assert_success
	run jq -e '.fallback == "reassemble" and .method == "reassemble"' <<<"$output"
	assert_success
}

@test "without --fallback, a live upper is refused without -R or --upper (exit 1); with them it is re-assembled" {
	local m n before
	src_overlay index=off
	m=$(scratch m)
	n=$(scratch new)
	before=$(layers_manifest)
	run "$SHIFT_MOUNT" --map "$MAP" "$S" "$m"
	assert_failure 1
	assert_output --partial "it is live with a writable layer ('$UP')"
	assert_output --partial "use --read-only"
	run mountpoint -q "$m"
	assert_failure
	# Nothing shifted or copied instead.
	run diff <(echo "$before") <(layers_manifest)
	assert_success
	idmap_mount -R --map "$MAP" "$S" "$m"
	assert_equal "$(owner "$m/up-file")" 100007:100007
	umount "$m"
	idmap_mount --upper "$n/upper" --work "$n/work" --map "$MAP" "$S" "$m"
	as_user 100000 100000 sh -c "echo new >'$m/new-by-root'"
	assert_equal "$(owner "$n/upper/new-by-root")" 100000:100000
	run diff <(echo "$before") <(layers_manifest)
	assert_success
}

@test "--fallback=shift on an overlayfs SOURCE is taken as asked, not re-assembled" {
	local m
	src_overlay
	m=$(scratch m)
	# (The fixture's id 70000 is outside the map: the shift would stop,
	# exit 1; what matters is the way taken.)
	run --separate-stderr "$SHIFT_MOUNT" --fallback=shift --dry-run --json --map "$MAP" "$S" "$m"
	run jq -e '.fallback == "shift" and .method == "fallback_shift"' <<<"$output"
	assert_success
}

@test "not an overlay and can't be idmapped: --fallback=reassemble fails as none does (exit 3), nothing copied or shifted" {
	local r m
	r=$(scratch ramfs)
	m=$(scratch m)
	mount -t ramfs sk-ramfs "$r"
	echo r >"$r/r-file"
	chown 5:5 "$r/r-file"
	run "$SHIFT_MOUNT" --fallback=reassemble --map "$MAP" "$r" "$m"
	assert_failure 3
	assert_output --partial "'ramfs' does not support idmapped mounts"
	assert_equal "$(owner "$r/r-file")" 5:5
	run mountpoint -q "$m"
	assert_failure
	run "$SHIFT_MOUNT" --fallback=reassemble --copy-dir "$m/c" --map "$MAP" "$r" "$m"
	assert_failure 2
	assert_output --partial "needs an overlayfs mount as SOURCE"
}
