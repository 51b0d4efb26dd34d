/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one tree copy of libshift (shift_copy_tree()): shift-mount
 * --fallback=copy, the copied layers of its re-assembly and the OCI store's
 * shifted layer copies all go through it.  Inode by inode, fd-relative,
 * file data by reflink where the filesystem can (else copy_file_range over
 * the data segments, so holes stay holes), owners, modes (setuid bits
 * included), every xattr (ACLs, file capabilities, trusted.*), hard links,
 * special files and times kept; with a map, each inode is shifted on the
 * way by the engine's shift_inode(), the function shift-tree uses.  The
 * copy is made in a temporary sibling of the destination and renamed into
 * place, so a failed copy leaves nothing half-made behind.
 * docs/design.md ("Tree walkers") says why this walk is not the engine's.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/engine-internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/error.h"
#include "util/syscalls.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

/* An inode with several links: copied once, linked at its other names. */
struct copy_link {
	dev_t dev;
	ino_t ino;
	char *path; /* relative to the copy's root */
};

struct copyctx {
	struct shift_inode_ctx *ictx; /* NULL: copy without shifting */
	int droot;
	dev_t droot_dev; /* the copy's root: never copied into itself */
	ino_t droot_ino;
	struct copy_link *links;
	size_t n_links, cap_links;
	size_t *link_slot; /* open addressing over links: index + 1, 0 free */
	size_t link_slots; /* a power of two, at least twice n_links */
	bool unmapped;	   /* the engine met an id without image */
	bool failed;	   /* the engine could not shift an inode */
	char where[PATH_MAX]; /* the entry of the first problem */
	char path[PATH_MAX];  /* relative path of the current entry */
	char names[XATTR_LIST_MAX];
	char value[XATTR_SIZE_MAX];
};

/* What the copy's root must not take from the source's root: the engine's
 * marker (it describes the source's shift, not the copy's) and the
 * shared-layer marker (the copy is private). */
static bool root_only_xattr(const char *name)
{
	const char *dot = strchr(name, '.');

	if (!dot || (strncmp(name, "trusted.", 8) && strncmp(name, "user.", 5)))
		return false;
	return !strcmp(dot + 1, SK_MARKER_SUFFIX) ||
	       !strcmp(dot + 1, SHIFT_SHARED_XATTR_SUFFIX);
}

static void copy_event(const struct shift_event *ev, void *userdata)
{
	struct copyctx *c = userdata;

	if (ev->type != SHIFT_EVENT_UNMAPPED && ev->type != SHIFT_EVENT_ERROR)
		return;
	if (!c->unmapped && !c->failed)
		snprintf(c->where, sizeof(c->where), "%s",
			 *c->path ? c->path : ".");
	if (ev->type == SHIFT_EVENT_UNMAPPED)
		c->unmapped = true;
	else
		c->failed = true;
}

static int copy_xattrs(struct copyctx *c, int sfd, int dfd, bool root)
{
	char sp[64], dp[64];
	ssize_t n, len;

	snprintf(sp, sizeof(sp), "/proc/self/fd/%d", sfd);
	snprintf(dp, sizeof(dp), "/proc/self/fd/%d", dfd);
	/* Through the magic link: works for O_PATH fds of any inode type. */
	n = listxattr(sp, c->names, sizeof(c->names));
	if (n < 0)
		return errno == EOPNOTSUPP ? 0 : negative_errno();
	for (char *k = c->names; k < c->names + n; k += strlen(k) + 1) {
		if (root && root_only_xattr(k))
			continue;
		len = getxattr(sp, k, c->value, sizeof(c->value));
		if (len < 0) {
			if (errno == ENODATA) /* removed meanwhile */
				continue;
			return negative_errno();
		}
		if (setxattr(dp, k, c->value, (size_t)len, 0) < 0)
			return negative_errno();
	}
	return 0;
}

/* Bytes [off, end) of sfd to the same offsets of dfd. */
static int copy_range(int sfd, int dfd, off_t off, off_t end)
{
	char buf[65536];
	loff_t in = off, out = off;
	ssize_t n;

	while (in < end) {
		n = copy_file_range(sfd, &in, dfd, &out, (size_t)(end - in), 0);
		if (n == 0)
			return 0; /* the file shrank meanwhile */
		if (n > 0)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP &&
		    errno != ENOSYS)
			return negative_errno();
		/* Old kernels, some filesystems: plain pread/pwrite. */
		while (in < end) {
			size_t want = (size_t)(end - in) < sizeof(buf)
					  ? (size_t)(end - in)
					  : sizeof(buf);

			n = pread(sfd, buf, want, in);
			if (n < 0)
				return negative_errno();
			if (n == 0)
				return 0;
			in += n;
			for (ssize_t done = 0, w; done < n; done += w) {
				w = pwrite(dfd, buf + done, (size_t)(n - done),
					   out);
				if (w < 0)
					return negative_errno();
				if (w == 0)
					return -EIO;
				out += w;
			}
		}
	}
	return 0;
}

/* The file data: a reflink, or the data segments only (holes stay holes,
 * as cp's --sparse=auto keeps them). */
static int copy_data(int sfd, int dfd, off_t size)
{
	off_t off = 0, data, hole;
	int r;

	if (ioctl(dfd, FICLONE, sfd) == 0)
		return 0;
	while (off < size) {
		data = lseek(sfd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0) {
			if (errno != EINVAL && errno != EOPNOTSUPP)
				return negative_errno();
			data = off; /* no SEEK_DATA here: all of it */
			hole = size;
		} else {
			hole = lseek(sfd, data, SEEK_HOLE);
			if (hole < 0)
				hole = size;
		}
		if (hole > size)
			hole = size;
		r = copy_range(sfd, dfd, data, hole);
		if (r < 0)
			return r;
		off = hole;
	}
	return ftruncate(dfd, size) < 0 ? negative_errno() : 0;
}

static int copy_entry(struct copyctx *c, int sfd, int dfd, const char *name,
		      const struct stat *st);

static int copy_dir(struct copyctx *c, int sfd, int dfd)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	size_t plen = strlen(c->path);
	int fd, r;

	fd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	for (;;) {
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (plen + strlen(de->d_name) + 2 > sizeof(c->path))
			return -ENAMETOOLONG;
		snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s",
			 plen ? "/" : "", de->d_name);
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return negative_errno();
		r = copy_entry(c, sfd, dfd, de->d_name, &st);
		if (r < 0)
			return r;
		c->path[plen] = '\0';
	}
	return errno ? negative_errno() : 0;
}

/*
 * Owner and mode as in the source (the mode after the chown, which clears
 * setuid bits), xattrs after both (a chown drops file capabilities), then
 * the engine's shift; times last.  dfd is the new inode; for an inode that
 * can't be opened for writing (symlink, fifo, device) also its directory
 * pfd and name.
 */
static int copy_meta(struct copyctx *c, int sfd, int dfd, int pfd,
		     const char *name, const struct stat *st, bool root)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	int r;

	if (fchownat(dfd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH) < 0)
		return negative_errno();
	if (!S_ISLNK(st->st_mode)) {
		r = pfd >= 0 ? fchmodat(pfd, name, st->st_mode & 07777, 0)
			     : fchmod(dfd, st->st_mode & 07777);
		if (r < 0)
			return negative_errno();
	}
	r = copy_xattrs(c, sfd, dfd, root);
	if (r < 0)
		return r;
	if (c->ictx) {
		r = shift_inode(c->ictx, dfd, NULL, *c->path ? c->path : ".");
		if (r < 0 || c->failed)
			return r < 0 ? r : -EIO;
		if (c->unmapped)
			return -ERANGE;
	}
	r = pfd >= 0 ? utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW)
		     : futimens(dfd, ts);
	return r < 0 ? negative_errno() : 0;
}

/* The slot of (dev, ino) in the index: its entry, or the free slot where
 * it goes.  Lookups are O(1), not a scan of every link seen so far. */
static size_t *link_slot_of(const struct copyctx *c, dev_t dev, ino_t ino)
{
	size_t mask = c->link_slots - 1,
	       i = (size_t)sk_hash_dev_ino(dev, ino) & mask;

	for (;; i = (i + 1) & mask) {
		size_t *slot = &c->link_slot[i];
		const struct copy_link *l;

		if (!*slot)
			return slot;
		l = &c->links[*slot - 1];
		if (l->dev == dev && l->ino == ino)
			return slot;
	}
}

static int link_index_grow(struct copyctx *c)
{
	size_t n = c->link_slots ? 2 * c->link_slots : 128;
	size_t *old = c->link_slot, old_n = c->link_slots;

	c->link_slot = calloc(n, sizeof(*c->link_slot));
	if (!c->link_slot) {
		c->link_slot = old;
		return -ENOMEM;
	}
	c->link_slots = n;
	for (size_t i = 0; i < old_n; i++)
		if (old[i]) {
			const struct copy_link *l = &c->links[old[i] - 1];

			*link_slot_of(c, l->dev, l->ino) = old[i];
		}
	free(old);
	return 0;
}

/* A further name of an inode already copied: a hard link to the copy.
 * Returns 1 when linked, 0 when this is the first name (remembered). */
static int copy_hardlink(struct copyctx *c, int dfd, const char *name,
			 const struct stat *st)
{
	size_t *slot;
	int r;

	if (2 * (c->n_links + 1) > c->link_slots) {
		r = link_index_grow(c);
		if (r < 0)
			return r;
	}
	slot = link_slot_of(c, st->st_dev, st->st_ino);
	if (*slot)
		return linkat(c->droot, c->links[*slot - 1].path, dfd, name,
			      0) < 0
			   ? negative_errno()
			   : 1;
	if (c->n_links == c->cap_links) {
		size_t cap = c->cap_links ? 2 * c->cap_links : 64;
		struct copy_link *l = realloc(c->links, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		c->links = l;
		c->cap_links = cap;
	}
	c->links[c->n_links] = (struct copy_link){
	    .dev = st->st_dev,
	    .ino = st->st_ino,
	    .path = strdup(c->path),
	};
	if (!c->links[c->n_links].path)
		return -ENOMEM;
	*slot = ++c->n_links;
	return 0;
}

static int copy_entry(struct copyctx *c, int sfd, int dfd, const char *name,
		      const struct stat *st)
{
	_cleanup_close_ int s = -EBADF, d = -EBADF;
	char target[PATH_MAX];
	struct stat now;
	ssize_t n;
	int r;

	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		r = copy_hardlink(c, dfd, name, st);
		if (r != 0)
			return r < 0 ? r : 0;
	}

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		/* O_NONBLOCK: a fifo put in the file's place after the stat
		 * must not block the copy; the fstat tells it. */
		s = openat(sfd, name,
			   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (s < 0)
			return negative_errno();
		if (fstat(s, &now) < 0)
			return negative_errno();
		if (!S_ISREG(now.st_mode) || now.st_ino != st->st_ino ||
		    now.st_dev != st->st_dev)
			return -ESTALE; /* replaced while copied */
		d = openat(dfd, name,
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			   0600);
		if (d < 0)
			return negative_errno();
		r = copy_data(s, d, st->st_size);
		if (r < 0)
			return r;
		return copy_meta(c, s, d, -EBADF, NULL, st, false);
	case S_IFDIR:
		/* The copy lies inside the source: copying it would copy
		 * the copy (as cp refuses "a directory into itself"). */
		if (st->st_dev == c->droot_dev && st->st_ino == c->droot_ino)
			return -ELOOP;
		s = openat(sfd, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0)
			return negative_errno();
		if (mkdirat(dfd, name, 0700) < 0)
			return negative_errno();
		d = openat(dfd, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d < 0)
			return negative_errno();
		r = copy_dir(c, s, d);
		if (r < 0)
			return r;
		return copy_meta(c, s, d, -EBADF, NULL, st, false);
	case S_IFLNK:
		n = readlinkat(sfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return negative_errno();
		target[n] = '\0';
		if (symlinkat(target, dfd, name) < 0)
			return negative_errno();
		break;
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (mknodat(dfd, name, st->st_mode & S_IFMT, st->st_rdev) < 0)
			return negative_errno();
		break;
	default:
		return -EBADMSG; /* an inode type this copy doesn't know */
	}
	s = openat(sfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0)
		return negative_errno();
	d = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return negative_errno();
	return copy_meta(c, s, d, dfd, name, st, false);
}

/* The source tree at sfd into the directory c->droot, its root last. */
static int copy_root(struct copyctx *c, int sfd)
{
	struct stat st;
	int r;

	if (fstat(sfd, &st) < 0)
		return negative_errno();
	c->path[0] = '\0';
	r = copy_dir(c, sfd, c->droot);
	if (r < 0)
		return r;
	c->path[0] = '\0';
	return copy_meta(c, sfd, c->droot, -EBADF, NULL, &st, true);
}

int shift_copy_tree(const char *src, const char *dst,
		    const struct shift_idmap *map, unsigned flags,
		    struct shift_error *err)
{
	struct shift_options opts = {
	    .map = map,
	    .unmapped = SHIFT_UNMAPPED_ERROR,
	    .on_event = copy_event,
	};
	_cleanup_free_ char *parent = NULL, *tmp = NULL;
	_cleanup_close_ int s = -EBADF, pfd = -EBADF;
	struct copyctx *c = NULL;
	const char *base, *pdir = ".", *w = NULL;
	bool in_place = false, exists = false;
	struct stat dst_st;
	struct statx stx;
	int r;

	if (!src || !dst || !*dst || flags) {
		r = -EINVAL;
		goto out;
	}
	s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s < 0) {
		r = negative_errno();
		w = "cannot open the source";
		goto out;
	}

	/* dst: a new directory, or an empty one that the copy replaces. */
	parent = strdup(dst);
	if (!parent) {
		r = -ENOMEM;
		goto out;
	}
	while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/')
		parent[strlen(parent) - 1] = '\0';
	base = strrchr(parent, '/');
	if (base) {
		*(char *)base++ = '\0';
		pdir = *parent ? parent : "/"; /* "/NAME" */
	} else {
		base = parent;
	}
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		/* "/", "." or "..": no sibling to make the copy in. */
		in_place = true;
	} else {
		pfd = open(pdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0) {
			r = negative_errno();
			w = "cannot open the destination's directory";
			goto out;
		}
	}
	if (statx(in_place ? AT_FDCWD : pfd, in_place ? dst : base,
		  AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) == 0) {
		_cleanup_close_ int dfd = -EBADF;

		exists = true;
		if (!S_ISDIR(stx.stx_mode)) {
			r = -ENOTDIR;
			w = "the destination is not a directory";
			goto out;
		}
		dfd = in_place ? open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
			       : openat(pfd, base,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					    O_CLOEXEC);
		r = dfd < 0 ? negative_errno() : sk_dir_is_empty_at(dfd, NULL);
		if (r == 0) {
			r = -ENOTEMPTY;
			w = "the destination is not empty";
		}
		if (r < 0)
			goto out;
		/* A mount point can't be renamed over: copy into it. */
		if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT &&
		    stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)
			in_place = true;
	} else if (errno != ENOENT || in_place) {
		r = negative_errno();
		w = "cannot look at the destination";
		goto out;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	c->droot = -EBADF;
	if (map) {
		opts.userdata = c;
		c->ictx = shift_inode_ctx_new(&opts);
		if (!c->ictx) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (!in_place) {
		if (asprintf(&tmp, "%s/.%s.copy-XXXXXX", pdir, base) < 0) {
			tmp = NULL;
			r = -ENOMEM;
			goto out;
		}
		if (!mkdtemp(tmp)) {
			free(tmp);
			tmp = NULL;
			/* No sibling can be made (a directory the caller
			 * may not write), but the empty dst is there. */
			if (exists && (errno == EACCES || errno == EPERM ||
				       errno == EROFS)) {
				in_place = true;
			} else {
				r = negative_errno();
				w = "cannot create the temporary copy";
				goto out;
			}
		}
	}
	c->droot = open(tmp ? tmp : dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->droot < 0 || fstat(c->droot, &dst_st) < 0) {
		r = negative_errno();
		goto fail;
	}
	c->droot_dev = dst_st.st_dev;
	c->droot_ino = dst_st.st_ino;
	r = copy_root(c, s);
	if (r < 0)
		goto fail;
	if (tmp) {
		/* Over an empty dst (rename(2) replaces an empty directory),
		 * never over one that got entries meanwhile. */
		if (exists ? rename(tmp, dst) < 0
			   : renameat2(AT_FDCWD, tmp, AT_FDCWD, dst,
				       RENAME_NOREPLACE) < 0) {
			r = negative_errno();
			w = r == -ENOTEMPTY || r == -EEXIST
				? "the destination is not empty"
				: "cannot rename the copy into place";
			*c->where = '\0';
			goto fail;
		}
		free(tmp);
		tmp = NULL;
	}
	r = 0;
	goto out;

fail:
	if (!w && r == -ELOOP) {
		w = "the copy would lie inside the source";
		*c->where = *c->path = '\0'; /* the copy's own name */
	}
	if (!w)
		w = r == -ERANGE
			? "an id in the tree has no image under the map"
		    : c->failed ? "cannot shift the copy"
				: "cannot copy";
	if (!*c->where && *c->path)
		snprintf(c->where, sizeof(c->where), "%s", c->path);
	sk_error_set_path(err, r, *c->where ? c->where : NULL, "%s", w);
	if (tmp)
		(void)sk_rm_rf_at(AT_FDCWD, tmp);
	else
		(void)sk_rm_rf_children_at(AT_FDCWD, dst);
out:
	/* A failure before the copy began names no entry. */
	if (r < 0 && (!c || !err || !err->error))
		sk_error_set(err, r, "%s", w ? w : "cannot copy");
	if (c) {
		for (size_t i = 0; i < c->n_links; i++)
			free(c->links[i].path);
		free(c->links);
		free(c->link_slot);
		shift_inode_ctx_free(c->ictx);
		safe_close(c->droot);
		free(c);
	}
	return r;
}
