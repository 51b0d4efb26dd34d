#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# images/manifest.sh DIR: print the ownership metadata of the tree at DIR,
# one line per entry, sorted by path, so two trees can be compared with
# diff(1):
#
#   PATH TYPE MODE UID GID NLINK SIZE MTIME RDEV [-> TARGET] [XATTR=HEX...]
#
# NLINK and SIZE are '-' for directories (they differ between filesystems),
# hardlinked files carry "=FIRSTPATH" in place of NLINK for the second and
# later names, ext4's lost+found and XFS's trusted.SGI_ACL_* copies of
# the ACLs are left out.  Other mounts below DIR are
# not entered.
set -euo pipefail

[ $# -eq 1 ] && [ -d "$1" ] || {
	echo "usage: manifest.sh DIR" >&2
	exit 2
}
cd "$1"

find . -xdev -path ./lost+found -prune -o -print0 | sort -z |
	xargs -0 stat -c '%n|%F|%a|%u|%g|%h|%s|%Y|%t:%T|%i|%N' >"${TMPDIR:-/tmp}/manifest.$$"
trap 'rm -f "${TMPDIR:-/tmp}/manifest.$$"' EXIT

find . -xdev -path ./lost+found -prune -o -print0 | sort -z |
	xargs -0 getfattr -h -d -m - -e hex --absolute-names -- 2>/dev/null |
	awk -v statf="${TMPDIR:-/tmp}/manifest.$$" '
	/^# file: / { f = substr($0, 9); next }
	# XFS shows its on-disk form of the ACLs too; the ACL is there already.
	/^trusted\.SGI_ACL_/ { next }
	/=/ { x[f] = x[f] " " $0; next }
	END {
		FS = "|"
		while ((getline line < statf) > 0) {
			split(line, a, "|")
			type = a[2]
			gsub(/ /, "-", type)
			nlink = a[6]; size = a[7]
			if (type == "directory") { nlink = "-"; size = "-" }
			if (a[6] > 1 && type != "directory") {
				if (a[10] in seen)
					nlink = "=" seen[a[10]]
				else
					seen[a[10]] = a[1]
			}
			tgt = ""
			if (type == "symbolic-link") {
				n = index(a[11], " -> ")
				tgt = " -> " substr(a[11], n + 4)
			}
			printf "%s %s %s %s %s %s %s %s %s%s%s\n", a[1], type,
				a[3], a[4], a[5], nlink, size, a[8], a[9], tgt, x[a[1]]
		}
	}'
