/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writing a file a user named (a manifest, the allocator's state).
 *
 * A regular file (or a name not taken yet) is written atomically: a
 * temporary beside it, renamed over it only when complete, so a reader
 * never sees half of it and a failure leaves the old one.  Anything else
 * is never replaced: a character or block device, a FIFO or a socket is
 * written in place (`--output /dev/null` must leave /dev/null a device,
 * and renaming over it as root would break the machine), and a symbolic
 * link is followed, so the file it points to is written and the link
 * stays (`--output /dev/stdout` is such a link).  A directory is refused.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shift/util.h"
#include "util/log.h"

static void output_reset(struct shift_output *out)
{
	free(out->tmp);
	free(out->path);
	*out = (struct shift_output){.fd = -EBADF};
}

int shift_output_open(const char *path, struct shift_output *out)
{
	_cleanup_free_ char *target = NULL;
	struct stat st;
	int r;

	if (!path || !*path || !out)
		return -EINVAL;
	*out = (struct shift_output){.fd = -EBADF};
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return -EISDIR;
		if (!S_ISREG(st.st_mode)) {
			/* A device, FIFO or socket: written, never replaced. */
			out->path = strdup(path);
			if (!out->path)
				return -ENOMEM;
			out->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
			if (out->fd < 0) {
				r = negative_errno();
				output_reset(out);
				return r;
			}
			out->direct = true;
			return 0;
		}
		/* A regular file, maybe through links: replace the file. */
		target = realpath(path, NULL);
		if (!target)
			return negative_errno();
	} else if (errno != ENOENT) {
		return negative_errno();
	} else if (lstat(path, &st) == 0) {
		/* A symbolic link to nothing: replacing it would lose it. */
		return -ENOLINK;
	} else {
		target = strdup(path);
		if (!target)
			return -ENOMEM;
	}
	if (asprintf(&out->tmp, "%s.tmpXXXXXX", target) < 0) {
		out->tmp = NULL;
		return -ENOMEM;
	}
	out->fd = mkostemp(out->tmp, O_CLOEXEC);
	if (out->fd < 0) {
		r = negative_errno();
		output_reset(out);
		return r;
	}
	out->path = TAKE_PTR(target);
	return 0;
}

int shift_output_commit(struct shift_output *out, mode_t mode)
{
	int r = 0;

	if (!out || out->fd < 0)
		return -EINVAL;
	if (out->direct) {
		if (close(out->fd) < 0)
			r = negative_errno();
		out->fd = -EBADF;
		output_reset(out);
		return r;
	}
	if (fchmod(out->fd, mode) < 0 || fsync(out->fd) < 0)
		r = negative_errno();
	if (close(out->fd) < 0 && r >= 0)
		r = negative_errno();
	out->fd = -EBADF;
	if (r >= 0 && rename(out->tmp, out->path) < 0)
		r = negative_errno();
	if (r < 0)
		(void)unlink(out->tmp);
	output_reset(out);
	return r;
}

void shift_output_discard(struct shift_output *out)
{
	if (!out)
		return;
	if (out->fd >= 0)
		close(out->fd);
	if (out->tmp)
		(void)unlink(out->tmp);
	output_reset(out);
}
