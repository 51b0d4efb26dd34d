#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# images/oci.sh: OCI image layouts for shift-layer's tests and benchmarks,
# built with umoci (the peer the tests compare against) and cached.
#
#   oci.sh fixture   layout "fixture": the tree of images/fixture.sh (less
#                    its socket, which tar can't carry) as layer 1, and a
#                    layer 2 that deletes, replaces and adds (whiteouts,
#                    an opaque directory, ACLs, capabilities)
#   oci.sh debian    layout "debian": a debootstrap'ed Debian (images/rootfs.sh)
#                    as layer 1, then a layer with ACLs, file capabilities,
#                    user-owned files and deletions, then an "app" layer
#   oci.sh clean     remove the cached layouts
#
# Prints the layout directory (IMAGE for shift-layer is DIR:TAG, the tag
# being the command name).  Cached in $SHIFTKIT_IMAGES (default
# /var/tmp/shiftkit-images) under a key of this script's contents; one
# builder at a time (flock).  Run as root.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
cache=${SHIFTKIT_IMAGES:-/var/tmp/shiftkit-images}
key=$(cat "$0" "$here/fixture.sh" | sha256sum | cut -c1-12)

die() {
	echo "$prog: $*" >&2
	exit 1
}

# repack BUNDLE LAYOUT:TAG: a new layer of what changed in BUNDLE/rootfs.
repack() {
	umoci repack --refresh-bundle --image "$2" "$1" >&2
}

# Layer 2, on top of any rootfs: the cases overlay and whiteouts must get
# right, plus ACLs and capabilities umoci keeps as xattrs.
changes() {
	local r=$1
	# Deletions: a file and a whole directory (whiteouts).
	rm -f "$r/etc/shiftkit-gone" "$r/file-root"
	rm -rf "$r/deep"
	# A directory replaced by a fresh one (opaque).
	rm -rf "$r/dir"
	mkdir "$r/dir"
	echo new >"$r/dir/only-new"
	chown 1000:1000 "$r/dir" "$r/dir/only-new"
	if [ -d "$r/etc/skel" ]; then
		rm -rf "$r/etc/skel"
		mkdir "$r/etc/skel"
		echo new >"$r/etc/skel/.profile"
	fi
	# Ownership and metadata that need shifting.
	mkdir -p "$r/home/user/.config"
	echo hi >"$r/home/user/.config/app"
	chown -R 1000:1000 "$r/home/user"
	chmod 0700 "$r/home/user"
	echo shared >"$r/srv-shared"
	setfacl -m u:1000:rw,g:1001:r "$r/srv-shared"
	mkdir -p "$r/srv-dir"
	setfacl -m u:1000:rwx -d -m u:1000:rwx,g:1001:rx "$r/srv-dir"
	printf '#!/bin/sh\n' >"$r/cap-v2"
	chmod 0755 "$r/cap-v2"
	setcap cap_net_raw+ep "$r/cap-v2"
	cp "$r/cap-v2" "$r/cap-v3"
	setcap -n 1000 cap_net_bind_service+ep "$r/cap-v3"
	echo setuid >"$r/setuid-new"
	chmod 4755 "$r/setuid-new"
}

# app layer: a user's files and a replaced file of the layer below.
app() {
	local r=$1
	mkdir -p "$r/opt/app/data"
	for i in 1 2 3 4 5; do
		head -c 4096 /dev/zero >"$r/opt/app/data/blob$i"
	done
	chown -R 1001:1001 "$r/opt/app"
	echo replaced >"$r/srv-shared"
	chown 1000:1001 "$r/srv-shared"
}

build() {
	local what=$1 out=$2 tmp b
	tmp=$(mktemp -d "$cache/.oci.XXXXXX")
	# shellcheck disable=SC2064 # expand now: $tmp is fixed
	trap "rm -rf '$tmp'" EXIT
	b=$tmp/bundle
	umoci init --layout "$tmp/layout" >&2
	umoci new --image "$tmp/layout:$what" >&2
	umoci unpack --image "$tmp/layout:$what" "$b" >&2
	case $what in
	fixture)
		"$here/fixture.sh" "$b/rootfs"
		rm -f "$b/rootfs/socket"
		echo gone >"$b/rootfs/file-gone"
		;;
	debian)
		"$here/rootfs.sh" extract "$b/rootfs" >&2
		touch "$b/rootfs/etc/shiftkit-gone"
		;;
	esac
	repack "$b" "$tmp/layout:$what"
	changes "$b/rootfs"
	[ "$what" = fixture ] && rm -f "$b/rootfs/file-gone"
	repack "$b" "$tmp/layout:$what"
	if [ "$what" = debian ]; then
		app "$b/rootfs"
		repack "$b" "$tmp/layout:$what"
	fi
	umoci gc --layout "$tmp/layout" >&2
	rm -rf "$out"
	mv "$tmp/layout" "$out"
	rm -rf "$tmp"
	trap - EXIT
}

[ $# -eq 1 ] || die "usage: $prog fixture|debian|clean"
case $1 in
fixture | debian) ;;
clean)
	rm -rf "$cache"/oci-*
	exit 0
	;;
-h | --help)
	sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "usage: $prog fixture|debian|clean" ;;
esac
[ "$(id -u)" -eq 0 ] || die "Failed to build the '$1' layout: must run as root"
command -v umoci >/dev/null || die "Failed to find umoci (apt-get install umoci)"
mkdir -p "$cache"
out=$cache/oci-$1-$key
exec 9>"$cache/.oci-$1.lock"
flock 9
[ -f "$out/index.json" ] || build "$1" "$out"
exec 9>&-
echo "$out"
