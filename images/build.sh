#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# images/build.sh [--out DIR] [FSTYPE...]: build the fixture images the
# fs-tests mount (FSTYPE: ext4 xfs btrfs squashfs erofs tmpfs; default all).
# Every image holds the tree of images/fixture.sh at its root; the tree
# itself is kept as DIR/tree (tmpfs and --mount runs copy it with cp -a).
#
# Images are cached in DIR = $SHIFTKIT_IMAGE_CACHE/KEY (default cache
# /var/tmp/shiftkit-images), KEY a hash of images/*.sh, so an unchanged
# fixture is built once.  --out DIR builds into DIR itself instead.  The
# directory is printed on stdout; everything else goes to stderr.
#
# Each image is loop-mounted read-only after it is made and compared with
# the tree (images/manifest.sh: owners, modes, links, ACLs, capabilities,
# other xattrs, mtimes).  Where a mkfs can't carry something it is put in
# through a read-write loop mount ("fix-up"), then compared again; a
# read-only image that differs is an error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ALL_FS=(ext4 xfs btrfs squashfs erofs tmpfs)
# Fixed so that two builds give the same images (as far as each mkfs can).
UUID=5eed5eed-0000-4000-8000-000000000001
export FIXTURE_MTIME=1700000000
export E2FSPROGS_FAKE_TIME=$FIXTURE_MTIME

die() {
	echo "build.sh: $*" >&2
	exit 1
}

log() {
	echo "build.sh: $*" >&2
}

out=
fslist=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	-h | --help)
		sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option '$1' (try --help)" ;;
	*) fslist+=("$1"); shift ;;
	esac
done
[ ${#fslist[@]} -gt 0 ] || fslist=("${ALL_FS[@]}")
for fs in "${fslist[@]}"; do
	case " ${ALL_FS[*]} " in
	*" $fs "*) ;;
	*) die "unknown filesystem '$fs' (known: ${ALL_FS[*]})" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, owners, device nodes)"

key=$(cat "$here"/*.sh | sha256sum | cut -c1-16)
if [ -z "$out" ]; then
	cache=${SHIFTKIT_IMAGE_CACHE:-/var/tmp/shiftkit-images}
	out=$cache/$key
	# Images of older fixtures, unused for a day.
	if [ -d "$cache" ]; then
		find "$cache" -mindepth 1 -maxdepth 1 -type d -name '????????????????' \
			! -name "$key" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
	fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A different fixture in the same --out directory: start over.
if [ "$(cat "$out/KEY" 2>/dev/null)" != "$key" ]; then
	rm -rf "${out:?}/tree" "$out"/*.img
	echo "$key" >"$out/KEY"
fi

# Concurrent builds (parallel test runs) wait for each other.
exec 9>"$out/.lock"
flock 9

mnt='' dev=''
cleanup() {
	if [ -n "$mnt" ]; then
		umount "$mnt" 2>/dev/null || true
		rmdir "$mnt" 2>/dev/null || true
	fi
	[ -z "$dev" ] || losetup -d "$dev" 2>/dev/null || true
	rm -rf "$out"/*.tmp
}
trap cleanup EXIT

# attach IMG FSTYPE ro|rw: loop-mount IMG at the temporary $mnt.
attach() {
	local ro=
	[ "$3" = ro ] && ro=-r
	mnt=$(mktemp -d "${TMPDIR:-/tmp}/shiftkit-build.XXXXXX")
	dev=$(losetup -f --show $ro "$1")
	# nouuid: a test run may have a copy of this XFS image mounted.
	if [ "$2" = xfs ]; then
		mount -t xfs -o "$3,nouuid" "$dev" "$mnt"
	else
		mount -t "$2" -o "$3" "$dev" "$mnt"
	fi
}

detach() {
	umount "$mnt"
	rmdir "$mnt"
	mnt=
	losetup -d "$dev"
	dev=
}

# fixup SRC DST: make the tree at DST carry everything of SRC that a mkfs
# left out: missing entries (sockets), hardlinks, sticky bits, owners,
# ACLs, capabilities and other xattrs, and mtimes.
fixup() {
	local src=$1 dst=$2 p ino nlink type
	local -A first=()

	while IFS= read -r -d '' p; do
		read -r ino nlink type < <(stat -c '%i %h %F' "$src/$p")
		if [ "$type" != directory ] && [ "$nlink" -gt 1 ]; then
			if [ -n "${first[$ino]:-}" ]; then
				if [ "$(stat -c %i "$dst/$p" 2>/dev/null)" != \
				     "$(stat -c %i "$dst/${first[$ino]}")" ]; then
					rm -f "$dst/$p"
					ln "$dst/${first[$ino]}" "$dst/$p"
				fi
				continue
			fi
			first[$ino]=$p
		fi
		# btrfs-progs 6.2 --rootdir makes device nodes with rdev 0:0.
		if [ "$type" != directory ] &&
		   [ "$(stat -c '%F %t:%T' "$src/$p")" != \
		     "$(stat -c '%F %t:%T' "$dst/$p" 2>/dev/null)" ]; then
			rm -f "$dst/$p"
		fi
		if [ ! -e "$dst/$p" ] && [ ! -L "$dst/$p" ]; then
			if [ "$type" = directory ]; then
				mkdir "$dst/$p"
			else
				cp -a "$src/$p" "$dst/$p"
			fi
		fi
		chown -h "$(stat -c %u:%g "$src/$p")" "$dst/$p"
		[ -L "$src/$p" ] || chmod "$(stat -c %a "$src/$p")" "$dst/$p"
		getfattr -h -d -m - -e hex --absolute-names -- "$src/$p" |
			sed "s|^# file: .*|# file: $dst/$p|" | setfattr -h --restore=-
	done < <(cd "$src" && find . -print0 | sort -z)
	find "$dst" -xdev -depth -exec touch -h -d "@$FIXTURE_MTIME" {} +
}

# verify FSTYPE IMG: compare the image with the tree, fixing up a writable
# one if needed.
verify() {
	local fs=$1 img=$2 want got

	want=$("$here/manifest.sh" "$out/tree")
	# squashfs has no POSIX ACLs (the fs-tests skip ACL checks there).
	[ "$fs" != squashfs ] ||
		want=$(sed -E 's/ system\.posix_acl_[a-z]+=0x[0-9a-f]+//g' <<<"$want")
	attach "$img" "$fs" ro
	got=$("$here/manifest.sh" "$mnt")
	detach
	[ "$got" = "$want" ] && return 0
	case "$fs" in
	squashfs | erofs)
		diff <(echo "$want") <(echo "$got") >&2 || true
		die "$fs image differs from the fixture tree (see the diff above)"
		;;
	esac
	log "$fs: mkfs left out $(diff <(echo "$want") <(echo "$got") | grep -c '^>') entries' metadata; fixing up"
	attach "$img" "$fs" rw
	fixup "$out/tree" "$mnt"
	got=$("$here/manifest.sh" "$mnt")
	detach
	if [ "$got" != "$want" ]; then
		diff <(echo "$want") <(echo "$got") >&2 || true
		die "$fs image differs from the fixture tree after fix-up (see the diff above)"
	fi
}

# xfs_proto DIR [INDENT]: an mkfs.xfs protofile body for the tree at DIR.
# xfsprogs 6.1 protofiles know no sockets, hardlinks, sticky bits or
# xattrs; those are left to fixup().
xfs_proto_entries() {
	local dir=$1 ind=$2 e name type mode uid gid maj min m
	for e in "$dir"/* "$dir"/.[!.]*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		name=${e##*/}
		read -r type mode uid gid maj min < <(stat -c '%F %a %u %g %t %T' "$e" |
			sed 's/^\([a-z]*\) [a-z -]*\([0-9]\)/\1 \2/')
		m=$((8#$mode))
		local su=- sg=-
		[ $((m & 8#4000)) -ne 0 ] && su=u
		[ $((m & 8#2000)) -ne 0 ] && sg=g
		local perm
		perm=$(printf '%03o' $((m & 8#777)))
		case "$type" in
		regular) echo "$ind$name -$su$sg$perm $uid $gid $e" ;;
		directory)
			echo "${ind}$name d$su$sg$perm $uid $gid"
			xfs_proto_entries "$e" "$ind  "
			echo "$ind\$"
			;;
		symbolic) echo "$ind$name l$su$sg$perm $uid $gid $(readlink "$e")" ;;
		fifo) echo "$ind$name p$su$sg$perm $uid $gid" ;;
		character) echo "$ind$name c$su$sg$perm $uid $gid $((16#$maj)) $((16#$min))" ;;
		block) echo "$ind$name b$su$sg$perm $uid $gid $((16#$maj)) $((16#$min))" ;;
		*) ;; # sockets: fixup()
		esac
	done
}

xfs_proto() {
	local uid gid mode
	read -r mode uid gid < <(stat -c '%a %u %g' "$1")
	echo "shiftkit-fixture"
	echo "0 0"
	echo "d--$(printf '%03o' $((8#$mode & 8#777))) $uid $gid"
	xfs_proto_entries "$1" "  "
	echo "\$"
}

# quiet CMD...: run CMD, showing its output only when it fails.
quiet() {
	local o
	o=$("$@" 2>&1) || {
		echo "$o" >&2
		die "Failed to run '$*'"
	}
}

build_one() {
	local fs=$1 img=$out/$1.img tmp=$out/$1.img.tmp
	rm -f "$tmp"
	case "$fs" in
	ext4)
		truncate -s 64M "$tmp"
		# mke2fs -d copies xattrs (ACLs converted to ext4's format,
		# security.capability as is), hardlinks and special files.
		mke2fs -q -F -t ext4 -b 4096 -I 256 -U "$UUID" \
			-E "hash_seed=$UUID" -d "$out/tree" "$tmp"
		;;
	xfs)
		truncate -s 300M "$tmp"
		xfs_proto "$out/tree" >"$out/xfs.proto.tmp"
		mkfs.xfs -q -f -m "uuid=$UUID" -p "$out/xfs.proto.tmp" "$tmp" >&2
		;;
	btrfs)
		truncate -s 128M "$tmp"
		# No fixed -U: mkfs.btrfs refuses a UUID that a mounted copy of
		# this image (a test run) has registered already.
		quiet mkfs.btrfs -q -f --rootdir "$out/tree" "$tmp"
		;;
	squashfs)
		# No -xattrs-exclude in 4.5.1: it warns about the ACLs it drops.
		quiet env -u SOURCE_DATE_EPOCH mksquashfs "$out/tree" "$tmp" -noappend -quiet \
			-no-progress -xattrs -mkfs-time "$FIXTURE_MTIME"
		;;
	erofs)
		mkfs.erofs --quiet -x1 -T"$FIXTURE_MTIME" -U"$UUID" "$tmp" "$out/tree" >&2
		;;
	tmpfs) return 0 ;;
	esac
	verify "$fs" "$tmp"
	mv "$tmp" "$img"
}

if [ ! -d "$out/tree" ]; then
	rm -rf "$out/tree.tmp"
	mkdir "$out/tree.tmp"
	"$here/fixture.sh" "$out/tree.tmp"
	mv "$out/tree.tmp" "$out/tree"
fi

for fs in "${fslist[@]}"; do
	[ "$fs" != tmpfs ] && [ ! -s "$out/$fs.img" ] || continue
	log "building $fs image"
	build_one "$fs"
done
rm -f "$out/xfs.proto.tmp"
echo "$out"
