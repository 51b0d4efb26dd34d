/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The race-safe tree walk: directories are read with getdents64 on an fd
 * and every child is opened relative to its parent's fd with O_NOFOLLOW
 * (subdirectories O_DIRECTORY, everything else O_PATH), so a symlink is
 * never followed and a path is never resolved twice.  A child on another
 * mount (st_dev or mount id differ from the root's) is reported, not
 * entered.  The inode that is changed is the one that was stat'ed: both
 * happen through the same fd.  Hard-linked inodes are handled once.
 *
 * Memory: one getdents buffer and one batch array per depth level, one
 * small struct per open directory, and the hard-link set.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "shift-engine.h"

#define DENTS_BUF_SIZE (32 * 1024)
#define BATCH_MAX 128

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct level {
	char dents[DENTS_BUF_SIZE];
	struct sk_dentry batch[BATCH_MAX];
};

void sk_dir_ref(struct sk_dir *dir)
{
	__atomic_add_fetch(&dir->refs, 1, __ATOMIC_RELAXED);
}

void sk_dir_unref(struct sk_dir *dir)
{
	if (!dir || __atomic_sub_fetch(&dir->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	safe_close(dir->fd);
	free(dir->path);
	free(dir);
}

static struct sk_dir *dir_new(int fd, const struct sk_dir *parent,
			      const char *name)
{
	struct sk_dir *d = calloc(1, sizeof(*d));
	size_t nl = strlen(name);

	if (!d)
		return NULL;
	d->fd = fd;
	d->refs = 1;
	if (!parent) {
		d->path = strdup(name);
		d->path_len = nl;
	} else if (strcmp(parent->path, ".") == 0) {
		d->path = strdup(name);
		d->path_len = nl;
		d->depth = 1;
	} else {
		d->path_len = parent->path_len + 1 + nl;
		d->path = malloc(d->path_len + 1);
		if (d->path) {
			memcpy(d->path, parent->path, parent->path_len);
			d->path[parent->path_len] = '/';
			memcpy(d->path + parent->path_len + 1, name, nl + 1);
		}
		d->depth = parent->depth + 1;
	}
	if (!d->path) {
		free(d);
		return NULL;
	}
	return d;
}

static struct level *level_get(struct sk_engine *e, unsigned depth)
{
	if (depth >= e->bufs_n) {
		size_t n = depth + 16;
		char **b = realloc(e->bufs, n * sizeof(*b));

		if (!b)
			return NULL;
		memset(b + e->bufs_n, 0, (n - e->bufs_n) * sizeof(*b));
		e->bufs = b;
		e->bufs_n = n;
	}
	if (!e->bufs[depth])
		e->bufs[depth] = malloc(sizeof(struct level));
	return (struct level *)e->bufs[depth];
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sk_engine_progress(struct sk_engine *e)
{
	uint64_t t;

	if (!e->opts->on_progress)
		return;
	t = now_ns();
	if (t < e->next_progress_ns)
		return;
	e->next_progress_ns = t + 250000000ull;
	e->opts->on_progress(&e->stats, e->opts->userdata);
}

static bool other_mount(const struct sk_engine *e, const struct sk_stat *st)
{
	return st->dev != e->root_dev ||
	       (st->mnt_id && e->root_mnt_id && st->mnt_id != e->root_mnt_id);
}

static void report_mount(struct sk_engine *e, struct shift_inode_ctx *ctx,
			 const char *dir, const char *name)
{
	struct shift_event ev = { .type = SHIFT_EVENT_MOUNTPOINT };

	SK_STAT_ADD(e, mountpoints, 1);
	sk_inode_event(ctx, &ev, dir, name);
}

int sk_engine_entry(struct sk_engine *e, struct shift_inode_ctx *ctx,
		    struct sk_dir *dir, const char *name, unsigned char d_type)
{
	_cleanup_close_ int fd = -EBADF;
	struct sk_stat st;
	int r;

	fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* removed meanwhile */
		return sk_inode_error(ctx, dir->path, name, "open",
				      negative_errno());
	}
	r = sk_statx_fd(fd, &st);
	if (r < 0)
		return sk_inode_error(ctx, dir->path, name, "stat", r);
	if (S_ISDIR(st.mode))
		return sk_inode_error(ctx, dir->path, name,
				      "shift an entry that became a directory during the walk (re-run to finish)",
				      -EAGAIN);
	if (other_mount(e, &st)) {
		report_mount(e, ctx, dir->path, name);
		return 0;
	}
	if (st.nlink > 1) {
		r = sk_links_seen(e, &st, dir->path, name);
		if (r < 0)
			return sk_inode_error(ctx, dir->path, name,
					      "track hard links", r);
		if (r > 0) {
			if (e->phase == SK_PHASE_SHIFT)
				SK_STAT_ADD(e, hardlinks, 1);
			return 0;
		}
	}
	if (e->phase == SK_PHASE_SHIFT)
		SK_STAT_ADD(e, inodes, 1);
	return sk_inode_process(ctx, fd, SK_FD_PATH, &st, dir->path, name);
}

static int walk_dir(struct sk_engine *e, struct sk_dir *dir);

static int walk_subdir(struct sk_engine *e, struct sk_dir *parent,
		       const char *name)
{
	_cleanup_close_ int fd = -EBADF;
	struct sk_dir *dir;
	struct sk_stat st;
	int r;

	fd = openat(parent->fd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
			    O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR) /* swapped meanwhile */
			return e->exec->submit(e->exec_state, parent,
					       &(struct sk_dentry){ .name = name, .d_type = DT_UNKNOWN },
					       1);
		sk_inode_error(e->ctx, parent->path, name, "open directory",
			       negative_errno());
		return 0;
	}
	r = sk_statx_fd(fd, &st);
	if (r < 0) {
		sk_inode_error(e->ctx, parent->path, name, "stat", r);
		return 0;
	}
	if (other_mount(e, &st)) {
		report_mount(e, e->ctx, parent->path, name);
		return 0;
	}
	dir = dir_new(fd, parent, name);
	if (!dir)
		return -ENOMEM;
	TAKE_FD(fd);
	if (e->phase == SK_PHASE_SHIFT) {
		SK_STAT_ADD(e, inodes, 1);
		SK_STAT_ADD(e, dirs, 1);
	}
	sk_inode_process(e->ctx, dir->fd, SK_FD_FULL, &st, dir->path, NULL);
	r = walk_dir(e, dir);
	sk_dir_unref(dir);
	return r;
}

static int walk_dir(struct sk_engine *e, struct sk_dir *dir)
{
	struct level *lv = level_get(e, dir->depth);
	long n;
	int r;

	if (!lv)
		return -ENOMEM;
	for (;;) {
		size_t nb = 0;
		long off;

		n = syscall(SYS_getdents64, dir->fd, lv->dents,
			    sizeof(lv->dents));
		if (n < 0) {
			sk_inode_error(e->ctx, dir->path, NULL,
				       "read directory", negative_errno());
			return 0;
		}
		if (n == 0)
			return 0;
		/* Non-directories to the executor, in batches. */
		for (off = 0; off < n;) {
			struct linux_dirent64 *d =
				(struct linux_dirent64 *)(lv->dents + off);

			off += d->d_reclen;
			if (d->d_name[0] == '.' &&
			    (d->d_name[1] == 0 ||
			     (d->d_name[1] == '.' && d->d_name[2] == 0))) {
				d->d_type = 0xff; /* skip in both passes */
				continue;
			}
			if (d->d_type == DT_UNKNOWN) {
				struct stat sb;

				if (fstatat(dir->fd, d->d_name, &sb,
					    AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISDIR(sb.st_mode))
					d->d_type = DT_DIR;
			}
			if (d->d_type == DT_DIR)
				continue;
			lv->batch[nb++] = (struct sk_dentry){
				.name = d->d_name,
				.ino = d->d_ino,
				.d_type = d->d_type,
			};
			if (nb == BATCH_MAX) {
				r = e->exec->submit(e->exec_state, dir,
						    lv->batch, nb);
				if (r < 0)
					return r;
				nb = 0;
				sk_engine_progress(e);
			}
		}
		if (nb) {
			r = e->exec->submit(e->exec_state, dir, lv->batch, nb);
			if (r < 0)
				return r;
			sk_engine_progress(e);
		}
		/* Then the subdirectories of this batch, depth first. */
		for (off = 0; off < n;) {
			struct linux_dirent64 *d =
				(struct linux_dirent64 *)(lv->dents + off);

			off += d->d_reclen;
			if (d->d_type != DT_DIR)
				continue;
			r = walk_subdir(e, dir, d->d_name);
			if (r < 0)
				return r;
			if (e->abort)
				return -ECANCELED;
		}
	}
}

int sk_walk(struct sk_engine *e)
{
	struct sk_dir *root;
	struct sk_stat st;
	int fd, r;

	r = sk_statx_fd(e->rootfd, &st);
	if (r < 0)
		return r;
	fd = openat(e->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	root = dir_new(fd, NULL, ".");
	if (!root) {
		close(fd);
		return -ENOMEM;
	}
	if (e->phase == SK_PHASE_SHIFT) {
		SK_STAT_ADD(e, inodes, 1);
		SK_STAT_ADD(e, dirs, 1);
	}
	sk_inode_process(e->ctx, root->fd, SK_FD_FULL, &st, ".", NULL);
	r = walk_dir(e, root);
	sk_dir_unref(root);
	if (r >= 0)
		r = e->exec->drain(e->exec_state);
	return r;
}
