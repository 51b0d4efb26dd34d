#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A minimal Debian root filesystem (debootstrap --variant=minbase), built when
# asked and cached as a tarball so benchmarks and tests reuse it.
#
#   rootfs.sh tarball       build if needed, print the tarball's path
#   rootfs.sh extract DIR   build if needed, unpack into DIR (must exist)
#   rootfs.sh mirror        print the mirror that would be used
#
# The mirror is the one apt is configured with on this machine (deb822
# /etc/apt/sources.list.d/*.sources "URIs:", else /etc/apt/sources.list);
# SHIFTKIT_MIRROR overrides it.  Environment:
#   SHIFTKIT_IMAGES  cache directory (default /var/tmp/shiftkit-images)
#   SHIFTKIT_SUITE   Debian suite (default bookworm)
set -euo pipefail

prog=${0##*/}
cache=${SHIFTKIT_IMAGES:-/var/tmp/shiftkit-images}
suite=${SHIFTKIT_SUITE:-bookworm}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
tarball="$cache/debian-$suite-minbase-$arch.tar"

die() {
	echo "$prog: $*" >&2
	exit 1
}

# First "deb" URI whose suites include $suite (not a -security/-updates
# archive), from deb822 files, then from one-line sources.list files.
find_mirror() {
	local f
	if [ -n "${SHIFTKIT_MIRROR:-}" ]; then
		echo "$SHIFTKIT_MIRROR"
		return 0
	fi
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && uris != "" &&
				    (" " suites " ") ~ (" " suite " ")) {
					split(uris, u, " ")
					print u[1]
					found = 1
					exit
				}
				types = ""; uris = ""; suites = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			END { if (!found) flush() }
		' "$f" | head -n1
	done | head -n1 | grep . && return 0
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI suite components...
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }'
	done | head -n1 | grep . && return 0
	return 1
}

build() {
	local mirror tmp
	mirror=$(find_mirror) ||
		die "Failed to find a Debian mirror for '$suite' in /etc/apt (set SHIFTKIT_MIRROR=URL)"
	command -v debootstrap >/dev/null ||
		die "Failed to find debootstrap (apt-get install debootstrap)"
	[ "$(id -u)" -eq 0 ] || die "Failed to build '$tarball': debootstrap needs root"
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	# shellcheck disable=SC2064 # expand now: $tmp is fixed
	trap "rm -rf '$tmp'" EXIT
	echo "$prog: debootstrap $suite (minbase) from $mirror" >&2
	if ! debootstrap --variant=minbase --arch="$arch" "$suite" "$tmp/root" \
		"$mirror" >"$tmp/log" 2>&1; then
		tail -n 20 "$tmp/log" >&2
		die "Failed to debootstrap '$suite' from '$mirror' (see the log above)"
	fi
	# Drop the package cache: it is not part of an image.
	rm -rf "$tmp/root/var/cache/apt/archives/"*.deb
	tar --numeric-owner --xattrs --xattrs-include='*' --acls \
		-C "$tmp/root" -cf "$tmp/out.tar" .
	mv -f "$tmp/out.tar" "$tarball"
	rm -rf "$tmp"
	trap - EXIT
}

ensure() {
	local lock
	mkdir -p "$cache"
	lock="$cache/.lock"
	# One builder at a time; the others wait and then reuse its result.
	exec 9>"$lock"
	flock 9
	[ -s "$tarball" ] || build
	exec 9>&-
}

case "${1:-tarball}" in
tarball)
	ensure
	echo "$tarball"
	;;
extract)
	[ $# -eq 2 ] || die "usage: $prog extract DIR"
	[ -d "$2" ] || die "Failed to extract into '$2': not a directory"
	ensure
	tar --numeric-owner --xattrs --xattrs-include='*' --acls \
		-C "$2" -xf "$tarball"
	;;
mirror)
	find_mirror || die "no mirror found for '$suite'"
	;;
-h | --help)
	sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	echo "usage: $prog tarball|extract DIR|mirror" >&2
	exit 2
	;;
esac
