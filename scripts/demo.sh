#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make demo: idmap the sample ext4 image with shift-mount and show what a
# container with the map 0:100000:65536 sees.  Leaves nothing mounted.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILDDIR=${BUILDDIR:-build}
bin=$BUILDDIR/bin
MAP=0:100000:65536

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (loop devices, mounts)" >&2; exit 1; }

# A container user creates a file through the mount below $tmp: other
# users must be able to reach it (a private TMPDIR, mode 0700, won't do).
base=${TMPDIR:-/tmp}
setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$base" || base=/tmp
tmp=$(mktemp -d "$base/shiftkit-demo.XXXXXX")
dev=
cleanup() {
	umount "$tmp/container" 2>/dev/null || true
	umount "$tmp/disk" 2>/dev/null || true
	[ -z "$dev" ] || losetup -d "$dev" 2>/dev/null || true
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
chmod 0755 "$tmp"
mkdir "$tmp/disk" "$tmp/container"

step() {
	if [ -t 1 ]; then
		printf '\n\033[1m== %s\033[0m\n' "$*"
	else
		printf '\n== %s\n' "$*"
	fi
}

# A few interesting entries: mode, owner, name (and symlink target).
show() {
	(cd "$1" && stat -c '%A %8u %8g  %N' file-root file-1000 file-1001 \
		file-70000 dir setgid setgid-dir sticky-dir symlink acl-file \
		fcap-v2 fcap-v3 chardev) | tr -d "'"
}

step "Building the sample ext4 image (cached)"
images=$(images/build.sh ext4)
cp --sparse=always "$images/ext4.img" "$tmp/ext4.img"
dev=$(losetup -f --show "$tmp/ext4.img")
mount -t ext4 "$dev" "$tmp/disk"
echo "$tmp/ext4.img on $dev, mounted at $tmp/disk"

step "On disk ($tmp/disk)"
show "$tmp/disk"

step "shift-mount --map $MAP $tmp/disk $tmp/container"
"$bin/shift-mount" --map "$MAP" "$tmp/disk" "$tmp/container"
grep -F " $tmp/container " /proc/self/mountinfo | awk '{ print "mountinfo:", $5, $6 }'

step "Through the idmapped mount: owners shifted by 100000 (70000 is outside the map: 65534)"
show "$tmp/container"

step "ACL qualifiers are shifted too (getfacl -n acl-file)"
paste <(getfacl -n -p -E --omit-header "$tmp/disk/acl-file" | sed '/^$/d') \
	<(getfacl -n -p -E --omit-header "$tmp/container/acl-file" | sed '/^$/d') |
	awk -F'\t' 'BEGIN { printf "%-20s %s\n", "on disk", "in the container" }
		{ printf "%-20s %s\n", $1, $2 }'

step "File capabilities: the rootid is shifted (getcap -n)"
(cd "$tmp/disk" && getcap -n fcap-v2 fcap-v3) | sed 's/^/on disk:          /'
(cd "$tmp/container" && getcap -n fcap-v2 fcap-v3) | sed 's/^/in the container: /'

step "A file created by container uid 1000 (host uid 101000) is stored as 1000"
setpriv --reuid=101000 --regid=101000 --clear-groups touch "$tmp/container/dir/hello"
echo "through the mount: $(stat -c '%u:%g %n' "$tmp/container/dir/hello")"
echo "on disk:           $(stat -c '%u:%g %n' "$tmp/disk/dir/hello")"

step "shift-probe on both mounts"
"$bin/shift-probe" --mounts-only "$tmp/disk" "$tmp/container"

step "Cleaning up"
umount "$tmp/container"
umount "$tmp/disk"
losetup -d "$dev"
dev=
echo "done: nothing left mounted"
