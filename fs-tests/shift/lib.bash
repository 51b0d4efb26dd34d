# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers of the fs-tests/shift area (load after ../lib/common).

# snapshot DIR: everything a shift may change or must keep, one line per
# fact, sorted: type/mode/owner/size/mtime of every inode (by path), and
# every xattr in hex (ACLs, capabilities, others) -- except the marker the
# engine leaves on the root, and XFS's raw trusted.SGI_ACL_* copies of the
# ACLs (opaque on-disk bytes, never idmapped by the kernel).
snapshot() {
	(
		cd "$1" || exit 1
		find . -printf '%p %M %U %G %s %T@ %n\n' | sort
		find . -print0 | sort -z |
			xargs -0 getfattr -h -d -m - -e hex --absolute-names 2>/dev/null |
			grep -v '^trusted\.shiftkit\.shift=\|^user\.shiftkit\.shift=' |
			grep -v '^trusted\.SGI_ACL_' |
			awk '/^# file:/ { f = $0; next } NF { print f, $0 }' | sort
	)
}

# kernel_view DIR: the same through the kernel's eyes (stat + xattrs) --
# run on an idmapped mount of the original to get the oracle.
kernel_view() {
	snapshot "$1"
}

# mktree DIR N: a deterministic tree of about N inodes with ids chosen to
# overlap map ranges (0, 1, 1000, 1500, 2000, 65534, 65535, 70000), setuid
# and setgid files, access and default ACLs, v2 and v3 capabilities,
# symlinks, fifos, hard links.  Written with raw xattrs: fast.
mktree() {
	python3 - "$1" "$2" <<'PY'
import os, struct, sys
root, n = sys.argv[1], int(sys.argv[2])
ids = [0, 1, 1000, 1500, 2000, 65534, 65535, 70000]
def acl(entries):
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in entries)
NONE = 0xffffffff
os.makedirs(root, exist_ok=True)
ndirs = max(1, n // 40)
dirs = []
for d in range(ndirs):
    p = os.path.join(root, 'd%03d' % (d % 50), 's%04d' % d) if d >= 50 else os.path.join(root, 'd%03d' % d)
    os.makedirs(p, exist_ok=True)
    dirs.append(p)
for i in range(n):
    d = dirs[i % ndirs]
    u, g = ids[i % len(ids)], ids[(i // 3) % len(ids)]
    kind = i % 23
    path = os.path.join(d, 'f%05d' % i)
    if kind == 21:
        os.symlink('f%05d' % (i - 1), path)
        os.lchown(path, u, g)
        continue
    if kind == 22:
        os.mkfifo(path, 0o640)
        os.chown(path, u, g)
        continue
    with open(path, 'w') as f:
        f.write('x' * (i % 7))
    os.chown(path, u, g)
    mode = 0o644
    if i % 50 == 7:
        mode = 0o4755
    elif i % 50 == 17:
        mode = 0o2755
    elif i % 50 == 27:
        mode = 0o6775
    os.chmod(path, mode)
    if i % 40 == 3:
        os.setxattr(path, 'system.posix_acl_access', acl([(1, 6, NONE), (2, 6, ids[(i + 1) % 8]), (4, 4, NONE), (8, 4, ids[(i + 2) % 8]), (16, 6, NONE), (32, 4, NONE)]))
    if i % 60 == 11:
        os.setxattr(path, 'security.capability', struct.pack('<IIIII', 0x02000001, 1 << 13, 0, 0, 0))
    elif i % 60 == 41:
        os.setxattr(path, 'security.capability', struct.pack('<IIIIII', 0x03000001, 1 << 13, 0, 0, 0, ids[(i // 60) % 3 + 1]))
    if i % 70 == 5:
        os.link(path, os.path.join(dirs[(i + 1) % ndirs], 'h%05d' % i))
    if i % 90 == 9:
        os.setxattr(path, 'user.keep', b'v%d' % i)
for j, d in enumerate(dirs):
    if j % 5 == 0:
        os.setxattr(d, 'system.posix_acl_default', acl([(1, 7, NONE), (2, 7, ids[j % 8]), (4, 5, NONE), (8, 5, ids[(j + 3) % 8]), (16, 7, NONE), (32, 5, NONE)]))
    os.chown(d, ids[j % 8], ids[(j + 1) % 8])
    os.utime(d, (1700000000, 1700000000))
PY
}
