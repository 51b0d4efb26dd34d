#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# journal-sim.py TREE [MAX_TXN_BLOCKS]: how many inode-table blocks an
# ext4 journal logs when the inodes of TREE are chowned in a given order
# (docs/benchmarks.md, "The default journal").  Model: 16 inodes per
# 4 KiB inode-table block (256-byte inodes), a transaction closes when it
# holds MAX_TXN_BLOCKS distinct blocks (default 5461: the 64 MiB journal
# of a plain mkfs.ext4 of 6 GiB; "each up to N blocks" in
# /proc/fs/jbd2/DEV/info), nothing else is logged.  Orders: the engine's
# walk with one walker (subdirectories on a stack, lowest inode on top;
# a directory's entries in inode order), nftw's readdir order, sorted
# batches of that walk, K walks by inode range, W directories merged by
# inode number, and one global inode order.  Hard-linked inodes count once
# per name.  Read-only; run it on a mounted image of the tree.
import heapq
import os
import sys

INODES_PER_BLOCK = 16


def walk_engine(root):
    """Directories in the engine's order, each as its sorted inodes."""
    dirs = [[os.lstat(root).st_ino]]
    stack = [root]
    while stack:
        d = stack.pop()
        subs, ents = [], []
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    subs.append((e.inode(), e.path))
                else:
                    ents.append(e.inode())
        subs.sort()
        for _, p in reversed(subs):
            stack.append(p)
        dirs.append(sorted(ents) + [i for i, _ in subs])
    return dirs


def walk_nftw(root):
    order = [os.lstat(root).st_ino]
    for dp, dn, fn in os.walk(root):
        for n in dn + fn:
            order.append(os.lstat(os.path.join(dp, n)).st_ino)
    return order


def logged(seq, txn):
    total, cur = 0, set()
    for ino in seq:
        b = (ino - 1) // INODES_PER_BLOCK
        if b not in cur:
            if len(cur) >= txn:
                total += len(cur)
                cur = set()
            cur.add(b)
    return total + len(cur)


def batched(seq, n):
    out = []
    for i in range(0, len(seq), n):
        out.extend(sorted(seq[i:i + n]))
    return out


def passes(seq, k, files):
    """files: the filesystem's inode count, split evenly as
    LIBSHIFT_PASSES does; 0: ranges holding equal numbers of inodes."""
    if not files:
        s = sorted(seq)
        bounds = [s[len(s) * p // k] for p in range(k)] + [s[-1] + 1]
    else:
        bounds = [1 + files * p // k for p in range(k)] + [files + 1]
    out = []
    for p in range(k):
        out.extend(x for x in seq if bounds[p] <= x < bounds[p + 1])
    return out


def merged(dirs, w):
    out, heap, nxt = [], [], 0

    def open_next():
        nonlocal nxt
        while nxt < len(dirs) and not dirs[nxt]:
            nxt += 1
        if nxt < len(dirs):
            heapq.heappush(heap, (dirs[nxt][0], nxt, 0))
            nxt += 1

    for _ in range(w):
        open_next()
    while heap:
        v, d, i = heapq.heappop(heap)
        out.append(v)
        if i + 1 < len(dirs[d]):
            heapq.heappush(heap, (dirs[d][i + 1], d, i + 1))
        else:
            open_next()
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: journal-sim.py TREE [MAX_TXN_BLOCKS]")
    txn = int(sys.argv[2]) if len(sys.argv) == 3 else 5461
    dirs = walk_engine(sys.argv[1])
    order = [i for d in dirs for i in d]
    print(f"inodes {len(order)}, inode-table blocks "
          f"{len(set((i - 1) // INODES_PER_BLOCK for i in order))}, "
          f"transactions of at most {txn} blocks")
    print("global inode order", logged(sorted(order), txn))
    print("engine (per-directory inode order)", logged(order, txn))
    print("nftw (readdir order)", logged(walk_nftw(sys.argv[1]), txn))
    for n in (1024, 4096, 16384, 65536):
        print(f"sorted batches of {n}", logged(batched(order, n), txn))
    files = os.statvfs(sys.argv[1]).f_files
    for k in (2, 3, 4):
        print(f"{k} walks by inode range", logged(passes(order, k, files), txn),
              "equal counts", logged(passes(order, k, 0), txn))
    for w in (64, 256, 1024):
        print(f"{w} directories merged", logged(merged(dirs, w), txn))


if __name__ == "__main__":
    main()
