// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Directory readahead for a cold ext4 tree.
 *
 * ext4 reads a directory's blocks synchronously, one at a time, when it is
 * first read -- even a one-block directory goes through the hashed-readdir
 * path, with no readahead -- and io_uring has no getdents.  A cold walk
 * of a layer-like tree therefore waits for ~16k single 4 KiB reads, 8 or
 * so in flight at a time (docs/benchmarks.md).  ext4 keeps directory blocks
 * in the block device's page cache, so they can be read ahead there: a
 * walker that has just read a directory asks, for each subdirectory, where
 * its blocks are (FIEMAP) and hints them to the block device
 * (posix_fadvise WILLNEED), before it hands the subdirectories out; when
 * another walker reads one, ext4 finds its block up to date.  This is what
 * ureadahead does for boot-time metadata.  The blocks of all the
 * subdirectories are sorted and runs of them with small gaps between are
 * read as one: siblings' blocks lie close together, and each hint is a
 * request through the block layer (7k requests instead of 16k on the
 * benchmark's tree; cold, 1.7 s instead of 2.7 s with one per directory).
 * The walk (walk.c read_dir) reads ahead only while directory reads wait
 * for the disk: on a cached tree the hints would cost CPU for nothing.
 *
 * A hint only: nothing here changes what the walk reads or writes, and any
 * failure just means no hint.  Only on ext4 (FIEMAP on other filesystems
 * gives no device offsets: Btrfs's are logical, XFS has none for
 * directories), only for a caller who may read the block device (root),
 * never through a symlink or into another mount (openat2 with
 * RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, beneath the directory fd).
 * LIBSHIFT_NO_DIRAHEAD=1 turns it off (to rule it out, or to compare).
 */
#include "config.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/engine-internal.h"
#include "util/syscalls.h"

/* Extents asked for per directory: one is the norm, big ones have a few. */
#define DIRAHEAD_EXTENTS 8
/* Ranges gathered before they are merged and hinted. */
#define DIRAHEAD_RANGES 256
/* Ranges this close are read as one (the gap is read too). */
#define DIRAHEAD_GAP (64 * 1024)

/* The device node of dev: udev's /dev/block/MAJ:MIN link, or the DEVNAME
 * the kernel gives in sysfs (no udev); checked to be dev. */
static int open_bdev(dev_t dev, char *path, size_t size)
{
	char line[256];
	struct stat st;
	FILE *f;
	int fd;

	snprintf(path, size, "/dev/block/%u:%u", major(dev), minor(dev));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		snprintf(line, sizeof(line), "/sys/dev/block/%u:%u/uevent",
			 major(dev), minor(dev));
		f = fopen(line, "re");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "DEVNAME=", 8) == 0) {
				line[strcspn(line, "\n")] = 0;
				snprintf(path, size, "/dev/%s", line + 8);
				fd = open(path, O_RDONLY | O_CLOEXEC |
							O_NONBLOCK | O_NOCTTY);
				break;
			}
		fclose(f);
	}
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) ||
			st.st_rdev != dev))
		fd = safe_close(fd);
	return fd;
}

/* Subdirectories are opened beneath their parent, never through a
 * symlink or into another mount. */
static const struct open_how dirahead_how = {
	.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME,
	.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
};

/* LIBSHIFT_DIRAHEAD=always: read every directory's subdirectories ahead,
 * cold tree or not -- for tests that must run this code on a cached tree
 * (the attacker race), and for measuring what it costs. */
bool sk_dirahead_always(void)
{
	const char *v = secure_getenv("LIBSHIFT_DIRAHEAD");

	return v && strcmp(v, "always") == 0;
}

int sk_dirahead_open(const struct sk_engine *e)
{
	dev_t dev = makedev((unsigned)(e->root.dev >> 32),
			    (unsigned)(e->root.dev & 0xffffffffu));
	struct open_how how = dirahead_how;
	char path[PATH_MAX];
	int fd;

	if (secure_getenv("LIBSHIFT_NO_DIRAHEAD")) {
		sk_debug("no directory readahead: LIBSHIFT_NO_DIRAHEAD is set");
		return -1;
	}
	if (!e->ext4)
		return -1;
	/* Once here, not once per directory: a kernel without openat2
	 * (before 5.6) gets no readahead. */
	fd = sys_openat2(e->rootfd, ".", &how);
	if (fd < 0) {
		sk_debug("no directory readahead: openat2: %m");
		return -1;
	}
	close(fd);
	fd = open_bdev(dev, path, sizeof(path));
	if (fd < 0) {
		sk_debug("no directory readahead: no block device %u:%u to read",
			 major(dev), minor(dev));
		return -1;
	}
	sk_debug("directory readahead through %s", path);
	return fd;
}

/* One range of the block device to read. */
struct dirahead_range {
	uint64_t off, len;
};

static int range_cmp(const void *a, const void *b)
{
	const struct dirahead_range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Hint the ranges, sorted and merged: sibling directories' blocks tend to
 * lie close together, and every hint is a request through the block
 * layer (on a loop device a wakeup of its worker too), so one read over
 * a small gap costs less than two. */
static size_t dirahead_flush(int bdevfd, struct dirahead_range *r, size_t n)
{
	size_t i, m = 0;

	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), range_cmp);
	for (i = 1; i < n; i++) {
		if (r[i].off <= r[m].off + r[m].len + DIRAHEAD_GAP) {
			uint64_t end = r[i].off + r[i].len;

			if (end > r[m].off + r[m].len)
				r[m].len = end - r[m].off;
		} else {
			r[++m] = r[i];
		}
	}
	for (i = 0; i <= m; i++)
		(void)posix_fadvise(bdevfd, (off_t)r[i].off, (off_t)r[i].len,
				    POSIX_FADV_WILLNEED);
	return m + 1;
}

size_t sk_dirahead(int bdevfd, int dirfd, const struct sk_dentry *subs,
		   size_t n, unsigned long *requests)
{
	struct dirahead_range r[DIRAHEAD_RANGES];
	struct {
		struct fiemap map;
		struct fiemap_extent ext[DIRAHEAD_EXTENTS];
	} f;
	size_t nr = 0, hinted = 0;

	for (size_t s = 0; s < n; s++) {
		struct open_how how = dirahead_how;
		_cleanup_close_ int fd = sys_openat2(dirfd, subs[s].name, &how);

		if (fd < 0)
			continue;
		memset(&f, 0, sizeof(f));
		f.map.fm_length = FIEMAP_MAX_OFFSET;
		f.map.fm_extent_count = DIRAHEAD_EXTENTS;
		if (ioctl(fd, FS_IOC_FIEMAP, &f.map) < 0)
			continue;
		hinted++;
		for (unsigned i = 0;
		     i < f.map.fm_mapped_extents && i < DIRAHEAD_EXTENTS; i++) {
			const struct fiemap_extent *x = &f.ext[i];

			if (x->fe_flags & (FIEMAP_EXTENT_UNKNOWN |
					   FIEMAP_EXTENT_DELALLOC |
					   FIEMAP_EXTENT_ENCODED))
				continue;
			if (nr == DIRAHEAD_RANGES) {
				*requests += dirahead_flush(bdevfd, r, nr);
				nr = 0;
			}
			r[nr++] = (struct dirahead_range){ x->fe_physical,
							   x->fe_length };
		}
	}
	*requests += dirahead_flush(bdevfd, r, nr);
	return hinted;
}
