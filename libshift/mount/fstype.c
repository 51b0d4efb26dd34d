/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a block device or an image file holds, by libblkid: the same
 * superblock detection mount(8) uses, so shift-probe and shift-mount can
 * name "an ext4 image" instead of treating it as a file to bind.
 */
#include "config.h"

#include <blkid.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mount/mount-internal.h"

static void blkid_probep(blkid_probe *pr)
{
	if (*pr)
		blkid_free_probe(*pr);
}

int shift_probe_fstype(const char *path, char *type, size_t size)
{
	_cleanup_(blkid_probep) blkid_probe pr = NULL;
	_cleanup_close_ int fd = -EBADF;
	const char *t = NULL;
	struct stat st;
	int r;

	if (!path || !type || !size)
		return -EINVAL;
	*type = '\0';
	/* Only these two are read: opening a tape or a fifo has effects. */
	if (stat(path, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	/* ... and still one of them (not swapped for a fifo meanwhile). */
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;
	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, 0) < 0)
		return errno > 0 ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	r = blkid_do_safeprobe(pr);
	if (r == -1)
		return errno > 0 ? -errno : -EIO;
	/* 1: nothing found, -2: more than one signature (mount(8) refuses
	 * to guess too) */
	if (r != 0 || blkid_probe_lookup_value(pr, "TYPE", &t, NULL) < 0 ||
	    !t || !*t)
		return 0;
	snprintf(type, size, "%s", t);
	return 1;
}
