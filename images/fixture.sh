#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# images/fixture.sh DIR: fill DIR (which must exist and should be empty) with
# the shiftkit test fixture, a small tree holding one of everything an id
# shifter has to get right.  Run as root.  The result is the same on every
# run: fixed names, owners, modes, xattrs and mtimes.
#
#   path                 type      owner           mode  extra
#   .                    dir       0:0             0755
#   file-root            reg       0:0             0644
#   file-1000            reg       1000:1000       0644
#   file-1001            reg       1001:1001       0640
#   file-1000-1001       reg       1000:1001       0664
#   file-65534           reg       65534:65534     0644
#   file-70000           reg       70000:70000     0644
#   file-100000          reg       100000:100000   0644
#   file-165535          reg       165535:165535   0644
#   file-1000000         reg       1000000:1000000 0600
#   empty                reg       0:0             0644  size 0
#   dir                  dir       1000:1000       0755
#   dir/file             reg       1000:1000       0644
#   deep/a/b/c/file      reg       1001:1001       0644  dirs 1001:1001
#   symlink              lnk       1000:1000             -> file-root
#   dangling             lnk       1001:1001             -> does-not-exist
#   fifo                 fifo      1000:1000       0644
#   socket               sock      1000:1000       0755
#   chardev              chr 1:3   0:0             0666
#   blockdev             blk 7:200 0:6             0660
#   setuid               reg       0:0             4755
#   setgid               reg       0:1000          2755
#   setuid-1000          reg       1000:1000       6755  setuid+setgid
#   setgid-dir           dir       0:1000          2775
#   setgid-dir/file      reg       0:1000          0644
#   sticky-dir           dir       0:0             1777
#   sticky-dir/file-1000 reg       1000:1000       0644
#   acl-file             reg       0:0             0664  u:1000:rw g:1001:r m::rw
#   acl-dir              dir       0:0             0775  u:1000:rwx g:1001:rx
#                                                        default u:0:rwx
#                                                        u:1000:rwx g:1001:r-x
#   fcap-v2              reg       0:0             0755  cap_net_raw+ep (v2)
#   fcap-v3              reg       0:0             0755  cap_net_raw+ep rootid 1000
#   hardlink-a/b/c       reg       1001:1001       0644  one inode, 3 links
#   xattr-file           reg       1000:1000       0644  user.shiftkit=hello
#                                                        trusted.shiftkit=secret
#
# All mtimes are FIXTURE_MTIME (2023-11-14 22:13:20 UTC).  The list above is
# the contract the fs-tests rely on: add entries, don't change existing ones.
set -euo pipefail

FIXTURE_MTIME=${FIXTURE_MTIME:-1700000000}

die() {
	echo "fixture.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: fixture.sh DIR"
[ -d "$1" ] || die "Failed to use '$1': not a directory (create it first)"
[ "$(id -u)" -eq 0 ] || die "must run as root (it sets owners and device nodes)"
cd "$1"

umask 022

# reg PATH UID GID MODE [CONTENT]
reg() {
	printf '%s' "${5-$1
}" >"$1"
	chown "$2:$3" "$1"
	chmod "$4" "$1"
}

# mkd PATH UID GID MODE
mkd() {
	mkdir -p "$1"
	chown "$2:$3" "$1"
	chmod "$4" "$1"
}

chown 0:0 .
chmod 0755 .

reg file-root 0 0 0644
reg file-1000 1000 1000 0644
reg file-1001 1001 1001 0640
reg file-1000-1001 1000 1001 0664
reg file-65534 65534 65534 0644
reg file-70000 70000 70000 0644
reg file-100000 100000 100000 0644
reg file-165535 165535 165535 0644
reg file-1000000 1000000 1000000 0600
reg empty 0 0 0644 ""

mkd dir 1000 1000 0755
reg dir/file 1000 1000 0644
mkd deep/a/b/c 1001 1001 0755
chown 1001:1001 deep deep/a deep/a/b
reg deep/a/b/c/file 1001 1001 0644

ln -s file-root symlink
chown -h 1000:1000 symlink
ln -s does-not-exist dangling
chown -h 1001:1001 dangling

mkfifo -m 0644 fifo
chown 1000:1000 fifo

# No mksock(1): bind a unix socket and leave its inode behind.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	socket || die "Failed to create 'socket': python3 is needed"
chown 1000:1000 socket
chmod 0755 socket

mknod -m 0666 chardev c 1 3
mknod -m 0660 blockdev b 7 200
chown 0:6 blockdev

# chown clears setid bits, so chmod last.
reg setuid 0 0 4755
reg setgid 0 1000 2755
reg setuid-1000 1000 1000 6755
mkd setgid-dir 0 1000 2775
reg setgid-dir/file 0 1000 0644
mkd sticky-dir 0 0 1777
reg sticky-dir/file-1000 1000 1000 0644

reg acl-file 0 0 0664
setfacl -m u:1000:rw,g:1001:r acl-file
mkd acl-dir 0 0 0775
setfacl -m u:1000:rwx,g:1001:rx acl-dir
setfacl -d -m u::rwx,g::rx,o::rx,u:0:rwx,u:1000:rwx,g:1001:rx acl-dir

reg fcap-v2 0 0 0755
setcap cap_net_raw+ep fcap-v2
reg fcap-v3 0 0 0755
setcap -n 1000 cap_net_raw+ep fcap-v3

reg hardlink-a 1001 1001 0644
ln hardlink-a hardlink-b
ln hardlink-a hardlink-c

reg xattr-file 1000 1000 0644
setfattr -n user.shiftkit -v hello xattr-file
setfattr -n trusted.shiftkit -v secret xattr-file

# Children before parents, so creating entries doesn't bump a parent later.
find . -depth -exec touch -h -d "@$FIXTURE_MTIME" {} +
