/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hard-link set of a shift run: every inode with more than one link is
 * shifted once, at its first name; the others are counted.  Inodes whose
 * links are not all inside the tree are reported at the end of the phase
 * (SHIFT_EVENT_EXTERNAL_LINK).  Open addressing on (dev, ino), under the
 * engine lock; memory grows with the number of multiply-linked inodes only.
 *
 * overlayfs (without index=on) breaks the hard link of a lower-layer file
 * when one of its names is copied up -- and the first chown does that --
 * yet keeps reporting the same st_ino for every name.  So on overlayfs the
 * further names are remembered, and after the walk each one whose inode no
 * longer matches its first name's is shifted as an inode of its own
 * (docs/shift-engine.md, "Hard links on overlayfs").
 */
#include "config.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/macros.h"
#include "engine/engine-internal.h"
#include "util/hash.h"
#include "util/syscalls.h"

/* The hard-link set: open addressing on (dev, ino), under e->lock. */

static int link_grow(struct sk_engine *e)
{
	size_t nsize = e->links_size ? e->links_size * 2 : 1024, i;
	struct sk_link *nl = calloc(nsize, sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	for (i = 0; i < e->links_size; i++) {
		struct sk_link *l = &e->links[i];
		size_t h;

		if (!l->nlink)
			continue;
		h = sk_hash_dev_ino(l->dev, l->ino) & (nsize - 1);
		while (nl[h].nlink)
			h = (h + 1) & (nsize - 1);
		nl[h] = *l;
	}
	free(e->links);
	e->links = nl;
	e->links_size = nsize;
	return 0;
}

/* Remember dir/name, a further name of l, for links_recheck(). */
static int link_defer(struct sk_link *l, const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	struct sk_link_name *n = malloc(sizeof(*n) + dl + nl + 2);

	if (!n)
		return -ENOMEM;
	memcpy(n->dir, dir, dl + 1);
	memcpy(n->dir + dl + 1, name, nl + 1);
	n->name = n->dir + dl + 1;
	n->next = l->deferred;
	l->deferred = n;
	return 0;
}

/* 1 when the inode was seen before in this phase, 0 when new. */
int sk_links_seen(struct sk_engine *e, const struct sk_stat *st,
		  const char *dir, const char *name)
{
	size_t h;
	int r = 0;

	pthread_mutex_lock(&e->lock);
	if ((e->links_n + 1) * 2 > e->links_size && link_grow(e) < 0) {
		r = -ENOMEM;
		goto out;
	}
	h = sk_hash_dev_ino(st->dev, st->ino) & (e->links_size - 1);
	while (e->links[h].nlink) {
		if (e->links[h].dev == st->dev && e->links[h].ino == st->ino) {
			e->links[h].seen++;
			/* Skipped for now either way: the first name may
			 * still be in the works in another walker. */
			r = 1;
			if (e->phase == SK_PHASE_SHIFT && e->root.overlay)
				r = link_defer(&e->links[h], dir, name) < 0
					    ? -ENOMEM
					    : 1;
			goto out;
		}
		h = (h + 1) & (e->links_size - 1);
	}
	e->links[h] = (struct sk_link){
		.dev = st->dev,
		.ino = st->ino,
		.seen = 1,
		.nlink = st->nlink,
	};
	if (strcmp(dir, ".") == 0) {
		e->links[h].path = strdup(name);
	} else if (asprintf(&e->links[h].path, "%s/%s", dir, name) < 0) {
		e->links[h].path = NULL;
	}
	e->links_n++;
out:
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* What tells two inodes apart on overlayfs, where st_ino alone doesn't. */
struct link_id {
	uint64_t ino;
	int64_t ctime_sec;
	uint32_t ctime_nsec, uid, gid, mode;
};

static void link_id_from(const struct statx *sx, struct link_id *id)
{
	*id = (struct link_id){
		.ino = sx->stx_ino,
		.ctime_sec = sx->stx_ctime.tv_sec,
		.ctime_nsec = sx->stx_ctime.tv_nsec,
		.uid = sx->stx_uid,
		.gid = sx->stx_gid,
		.mode = sx->stx_mode,
	};
}

static bool link_id_known(const struct link_id *ids, size_t n,
			  const struct link_id *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ids[i].ino == id->ino && ids[i].uid == id->uid &&
		    ids[i].gid == id->gid && ids[i].mode == id->mode &&
		    ids[i].ctime_sec == id->ctime_sec &&
		    ids[i].ctime_nsec == id->ctime_nsec)
			return true;
	return false;
}

/* Open dir/name (relative to the root, never leaving the tree) as O_PATH
 * and statx it; returns the fd. */
static int link_open(struct sk_engine *e, const char *dir, const char *name,
		     struct statx *sx)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	_cleanup_close_ int dfd = sys_openat2(e->rootfd, dir, &how);
	int fd;

	if (dfd < 0)
		return negative_errno();
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
		  STATX_BASIC_STATS, sx) < 0) {
		int r = negative_errno();

		safe_close(fd);
		return r;
	}
	return fd;
}

/* Shift the further name dir/name, open as fd, as an inode of its own;
 * returns false when it wasn't (another mount, a directory now). */
static bool link_shift(struct sk_engine *e, int fd, const char *dir,
		       const char *name)
{
	struct shift_inode_ctx *ctx = e->ctx;
	struct sk_stat st;
	int r;

	r = sk_statx_fd(fd, &st);
	if (r < 0) {
		sk_inode_error(ctx, dir, name, "stat", r);
		return false;
	}
	if (!sk_engine_may_shift(e, ctx, &st, dir, name))
		return false;
	/* An inode of its own, no longer a further link. */
	SK_STAT_ADD(e, inodes, 1);
	__atomic_sub_fetch(&e->stats.hardlinks, 1, __ATOMIC_RELAXED);
	sk_inode_process(ctx, fd, SK_FD_PATH, &st, dir, name);
	return true;
}

/*
 * On overlayfs, after the walk: a further name of l whose inode differs
 * from the first name's (owner, mode, ctime, st_ino) now -- after the first
 * name was shifted -- lost its link in a copy-up and is shifted as an inode
 * of its own.  Every inode shifted here is remembered too: two further
 * names may still share one inode, shifted once.  Returns how many links of
 * the first name's inode are outside the tree, counted from its link count
 * now: a link broken by a copy-up is not outside (0 when unknown).
 */
static uint32_t links_recheck(struct sk_engine *e, struct sk_link *l)
{
	struct shift_inode_ctx *ctx = e->ctx;
	_cleanup_free_ struct link_id *ids = NULL;
	const char *fdir = ".", *fname = l->path;
	const struct sk_link_name *d;
	size_t n = 1, known = 0;
	uint32_t nlink, same = 1;
	struct statx sx;
	char *slash;
	int fd;

	for (d = l->deferred; d; d = d->next)
		n++;
	ids = calloc(n, sizeof(*ids));
	if (!ids || !l->path) {
		for (d = l->deferred; d; d = d->next)
			sk_inode_error(ctx, d->dir, d->name,
				       "check the hard link for an overlayfs copy-up",
				       -ENOMEM);
		return 0;
	}

	slash = strrchr(l->path, '/');
	if (slash) {
		*slash = '\0';
		fdir = l->path;
		fname = slash + 1;
	}
	fd = link_open(e, fdir, fname, &sx);
	if (fd < 0 && (fd != -ENOENT || l->deferred))
		sk_inode_error(ctx, fdir, fname,
			       "stat (to check its hard links for an overlayfs copy-up)",
			       fd);
	if (slash)
		*slash = '/';
	if (fd < 0)
		return 0;
	safe_close(fd);
	nlink = sx.stx_nlink;
	link_id_from(&sx, &ids[known++]);

	for (d = l->deferred; d; d = d->next) {
		_cleanup_close_ int dfd = link_open(e, d->dir, d->name, &sx);
		struct link_id id;

		if (dfd == -ENOENT)
			continue; /* removed meanwhile */
		if (dfd < 0) {
			sk_inode_error(ctx, d->dir, d->name, "open", dfd);
			continue;
		}
		link_id_from(&sx, &id);
		if (link_id_known(ids, 1, &id)) {
			same++; /* the first name's inode: shifted there */
			continue;
		}
		if (link_id_known(ids + 1, known - 1, &id))
			continue; /* shifted at an earlier name here */
		if (!link_shift(e, dfd, d->dir, d->name))
			continue;
		if (statx(dfd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
			  STATX_BASIC_STATS, &sx) == 0)
			link_id_from(&sx, &ids[known++]);
	}
	return nlink > same ? nlink - same : 0;
}

void sk_engine_links_report(struct sk_engine *e)
{
	size_t i;

	for (i = 0; i < e->links_size; i++) {
		struct sk_link *l = &e->links[i];
		uint32_t outside = 0;

		if (l->nlink && e->ctx && e->phase == SK_PHASE_SHIFT) {
			if (e->root.overlay)
				outside = links_recheck(e, l);
			else if (l->seen < l->nlink)
				outside = l->nlink - l->seen;
		}
		if (outside) {
			struct shift_event ev = {
				.type = SHIFT_EVENT_EXTERNAL_LINK,
				.id = outside,
			};

			sk_inode_event(e->ctx, &ev, l->path ? l->path : "?",
				       NULL);
		}
		while (l->deferred) {
			struct sk_link_name *next = l->deferred->next;

			free(l->deferred);
			l->deferred = next;
		}
		free(l->path);
	}
	free(e->links);
	e->links = NULL;
	e->links_n = e->links_size = 0;
}
