#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fs-tests/verify/compat-tree.sh DIR: make the tree whose manifest, written
# by the libarchive-based writer of shiftkit before streaming record, is
# fs-tests/verify/compat-tree.mtree.  The streaming writer must give the
# same bytes (so the same digest) and check must accept that old manifest.
#
# It exercises what decides the bytes and their order: names needing mtree
# escapes (space, '#', '=', '\', control bytes, DEL, non-UTF-8 bytes),
# names that sort differently bytewise than by locale, a directory and a
# file sharing a prefix ("a", "a-b", "a.b", "a0", "a b"), files after
# directories by name (per directory: non-directories first, then
# subdirectories), empty and nested directories, every file type, setuid/
# setgid/sticky bits, owners, ACLs, v2/v3 capabilities, whiteouts and
# opaque directories.  Only ownership metadata is recorded, so the tree is
# the same on every filesystem that has ACLs, security.* and trusted.*.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: compat-tree.sh DIR" >&2
	exit 2
}
umask 022
mkdir -p "$1"
cd "$1"
chmod 0755 .
chown 0:0 .

mkdir -p a/b/c a/b2 'a b dir' A z/y/x empty 'dir#=' $'dir\twith\ttabs'
touch file B a0 'a b' a-b a.b 'with space' $'new\nline' 'back\slash' \
	'hash#' 'eq=ual' $'\001ctl' $'caf\303\251' $'tab\there' $'\177del' \
	$'\377\376raw' '~tilde' '!bang' a/f a/b1 a/b/g a/b/c/h z/zz z/y/x/leaf \
	'a b dir/in' 'dir#=/x=y'
ln -s target link
ln -s /abs/path a/link2
ln -s dangling-nowhere z/dangling
mkfifo fifo
mknod chr c 1 3
mknod blk b 7 200
mknod wh c 0 0
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' sock
mkdir opq
setfattr -n trusted.overlay.opaque -v y opq
touch opq/inside

chown 1000:1001 a a/f 'with space'
chown 65534:65534 z/zz
chown 100000:100000 a/b/g
chown -h 1000:1000 link
chown 0:6 blk
chmod 4755 a0
chmod 2755 a.b
chmod 1777 z
chmod 0 B
chmod 6711 a-b
chmod 0600 $'caf\303\251'
chmod 2775 'a b dir'
setfacl -m u:1000:rw-,g:1001:r-- a/f
setfacl -m u:1000:rwx,g:1001:r-x a/b
setfacl -d -m u:0:rwx,g:1000:r-x a/b
setcap cap_net_raw+ep 'a b'
setcap -n 1000 cap_net_bind_service,cap_sys_admin+eip $'\001ctl'
