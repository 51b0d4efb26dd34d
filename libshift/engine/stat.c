/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the engine and the walk need of an inode's stat (struct sk_stat),
 * from statx: never following a symlink, nor an automount.  Shared by the
 * walker (walk.c), the inode steps (inode.c) and the hard-link checks
 * (links.c), so that none of them depends on another for it.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "engine/engine-internal.h"

static void stat_from_statx(const struct statx *sx, struct sk_stat *st)
{
	st->dev = ((uint64_t)sx->stx_dev_major << 32) | sx->stx_dev_minor;
	st->ino = sx->stx_ino;
	st->mnt_id = (sx->stx_mask & STATX_MNT_ID) ? sx->stx_mnt_id : 0;
	st->mode = sx->stx_mode;
	st->uid = sx->stx_uid;
	st->gid = sx->stx_gid;
	st->nlink = sx->stx_nlink;
}

#define SK_STATX_MASK                                                    \
	(STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_NLINK | \
	 STATX_INO | STATX_MNT_ID)

int sk_statx_fd(int fd, struct sk_stat *st)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, SK_STATX_MASK,
		  &sx) < 0)
		return negative_errno();
	stat_from_statx(&sx, st);
	return 0;
}

int sk_statx_at(int dirfd, const char *name, struct sk_stat *st)
{
	struct statx sx;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  SK_STATX_MASK, &sx) < 0)
		return negative_errno();
	stat_from_statx(&sx, st);
	return 0;
}
