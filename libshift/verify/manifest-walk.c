/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a tree for a manifest (manifest.c): the walk in the manifest's
 * order, each entry statx'ed and its ownership xattrs read relative to its
 * directory fd; where the last walk failed and who hears of progress.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "util/error.h"
#include "verify/verify-internal.h"

#define XATTR_OPAQUE_TRUSTED "trusted.overlay.opaque"
#define XATTR_OPAQUE_USER "user.overlay.opaque"

/*
 * Where the last record in this thread failed ("./a/b"), so that a caller
 * names the unreadable subdirectory rather than the top; and who to tell
 * about progress.
 */
static __thread char err_path[PATH_MAX];
static __thread shift_manifest_progress_fn progress_fn;
static __thread void *progress_data;

void sk_mwalk_set_err_path(const char *path, size_t len)
{
	if (err_path[0])
		return; /* the deepest one is already there */
	if (len >= sizeof(err_path))
		len = sizeof(err_path) - 1;
	memcpy(err_path, path, len);
	err_path[len] = '\0';
}

/* The entry the last record or check in this thread failed on, or NULL. */
const char *sk_mwalk_err_path(void)
{
	return err_path[0] ? err_path : NULL;
}

/* A failed record or check: the entry it failed on ("./a/b") as err's
 * path, none when it is the top directory (or no entry) itself. */
int sk_mwalk_error(int r, struct shift_error *err)
{
	if (r < 0)
		sk_error_set_path(err, r, sk_mwalk_err_path(), NULL);
	return r;
}

void shift_manifest_set_progress(shift_manifest_progress_fn fn, void *userdata)
{
	progress_fn = fn;
	progress_data = userdata;
}

/* A new walk or check: no failure named yet. */
void sk_mwalk_err_reset(void)
{
	err_path[0] = '\0';
}

/* Tell who listens that count entries were visited. */
void sk_mwalk_progress(size_t count)
{
	if (progress_fn)
		progress_fn(count, progress_data);
}

/* ------------------------------------------------------------------ */
/* Recording a tree                                                    */
/* ------------------------------------------------------------------ */

/*
 * xattrs of an entry relative to its directory fd, never following a final
 * symlink: listxattrat/getxattrat (Linux 6.13) where the kernel has them,
 * else the path "/proc/self/fd/DFD/NAME" with the l*xattr calls.  Tried
 * once; ENOSYS switches to the fallback for good.
 */
#ifndef __NR_getxattrat
#define __NR_getxattrat 464
#endif
#ifndef __NR_listxattrat
#define __NR_listxattrat 465
#endif

struct sk_xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

static int have_xattrat = -1; /* -1 unknown, 0 no, 1 yes */

struct xref {
	int dfd;
	const char *name;
	char procpath[PATH_MAX + 64];
};

static ssize_t xref_list(struct xref *x, char *list, size_t size)
{
	if (have_xattrat != 0) {
		long r = syscall(__NR_listxattrat, x->dfd, x->name,
				 AT_SYMLINK_NOFOLLOW, list, size);

		if (r >= 0 || errno != ENOSYS) {
			have_xattrat = 1;
			return r;
		}
		have_xattrat = 0;
	}
	return llistxattr(x->procpath, list, size);
}

/* Returns the length, 0 when absent, negative errno. */
static ssize_t xref_get(struct xref *x, const char *name, unsigned char *buf,
			size_t size)
{
	ssize_t r;

	if (have_xattrat == 1) {
		struct sk_xattr_args args = {
			.value = (uint64_t)(uintptr_t)buf, .size = (uint32_t)size,
		};

		r = syscall(__NR_getxattrat, x->dfd, x->name, AT_SYMLINK_NOFOLLOW,
			    name, &args, sizeof(args));
	} else
		r = lgetxattr(x->procpath, name, buf, size);
	if (r < 0)
		return errno == ENODATA || errno == ENOTSUP ? 0 : negative_errno();
	return r;
}

static int record_xattrs(struct shift_manifest *store, struct mentry *e,
			 int dfd, const char *name)
{
	struct xref x = { .dfd = dfd, .name = name };
	char list[4096];
	unsigned char buf[8 + 8 * MAX_ACL_ENTRIES];
	ssize_t len, r;
	bool has_aa = false, has_ad = false, has_caps = false, has_opq = false;
	int q;

	if (snprintf(x.procpath, sizeof(x.procpath), "/proc/self/fd/%d/%s", dfd,
		     name) >= (int)sizeof(x.procpath))
		return -ENAMETOOLONG;
	len = xref_list(&x, list, sizeof(list));
	if (len < 0) {
		if (errno == ENOTSUP)
			return 0;
		if (errno != ERANGE)
			return negative_errno();
		/* a huge list: just ask for the three we want */
		has_aa = has_ad = has_caps = true;
	} else {
		for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
			if (!strcmp(list + i, SHIFT_XATTR_ACL_ACCESS))
				has_aa = true;
			else if (!strcmp(list + i, SHIFT_XATTR_ACL_DEFAULT))
				has_ad = true;
			else if (!strcmp(list + i, SHIFT_XATTR_CAPS))
				has_caps = true;
			else if (!strcmp(list + i, XATTR_OPAQUE_TRUSTED) ||
				 !strcmp(list + i, XATTR_OPAQUE_USER))
				has_opq = true;
		}
	}
	if (has_opq && S_ISDIR(e->mode)) {
		/* an overlay layer's opaque directory hides the lower layers'
		 * entries below it (shift_manifest_check_layers) */
		for (int k = 0; k < 2; k++) {
			r = xref_get(
			    &x, k ? XATTR_OPAQUE_USER : XATTR_OPAQUE_TRUSTED,
			    buf, sizeof(buf));
			if (r == 1 && buf[0] == 'y')
				e->flags |= ME_OPAQUE;
		}
	}
	if (has_aa) {
		r = xref_get(&x, SHIFT_XATTR_ACL_ACCESS, buf, sizeof(buf));
		if (r < 0)
			return (int)r;
		if (r > 0 && (q = sk_manifest_blob_set(store, &e->acl_a, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_ad && S_ISDIR(e->mode)) {
		r = xref_get(&x, SHIFT_XATTR_ACL_DEFAULT, buf, sizeof(buf));
		if (r < 0)
			return (int)r;
		if (r > 0 && (q = sk_manifest_blob_set(store, &e->acl_d, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_caps) {
		r = xref_get(&x, SHIFT_XATTR_CAPS, buf, sizeof(buf));
		if (r == -EOVERFLOW)
			e->flags |= ME_CAPS_OVERFLOW;
		else if (r < 0)
			return (int)r;
		else if (r > 0 && (q = sk_manifest_blob_set(store, &e->caps, buf, (size_t)r)) < 0)
			return q;
	}
	return 0;
}

/* e from stx and the xattrs of name in dfd; blobs in store. */
int sk_mwalk_fill_entry(struct shift_manifest *store, struct mentry *e, int dfd,
			const char *name, const struct statx *stx)
{
	e->uid = stx->stx_uid;
	e->gid = stx->stx_gid;
	e->mode = stx->stx_mode;
	if (S_ISCHR(e->mode) && stx->stx_rdev_major == 0 &&
	    stx->stx_rdev_minor == 0)
		e->flags |= ME_WHITEOUT;
	if (S_ISLNK(e->mode))
		return 0;
	return record_xattrs(store, e, dfd, name);
}

/* The manifest's order within a directory: non-directories first. */
static int listing_cmp(const void *a, const void *b)
{
	const struct mentry *x = a, *y = b;
	bool dx = S_ISDIR(x->mode), dy = S_ISDIR(y->mode);

	if (dx != dy)
		return dx ? 1 : -1;
	return strcmp(x->path, y->path);
}

/*
 * The entries of the directory d (its path in w->path[0..plen)), each
 * e->path its name, sorted by listing_cmp; *nfiles: how many are not
 * directories (they come first).
 */
int sk_mwalk_listing(struct mwalk *w, DIR *d, size_t plen,
		     struct shift_manifest **ret, size_t *nfiles)
{
	_cleanup_manifest_ struct shift_manifest *l = sk_manifest_new();
	struct dirent *de;
	size_t i;
	int r;

	if (!l)
		return -ENOMEM;
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		size_t nlen = strlen(name), clen;
		struct statx stx;
		struct mentry *e;

		if (name[0] == '.' &&
		    (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		if (plen + 1 + nlen >= sizeof(w->path)) {
			sk_mwalk_set_err_path(w->path, plen);
			return -ENAMETOOLONG;
		}
		w->path[plen] = '/';
		memcpy(w->path + plen + 1, name, nlen + 1);
		clen = plen + 1 + nlen;
		if (statx(dirfd(d), name,
			  AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT |
			      AT_STATX_DONT_SYNC,
			  STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID |
			      STATX_MNT_ID,
			  &stx) < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			r = negative_errno();
			sk_mwalk_set_err_path(w->path, clen);
			return r;
		}
		/* another mount on top: not part of this tree */
		if ((stx.stx_mask & STATX_MNT_ID) &&
		    stx.stx_mnt_id != w->mnt_id)
			continue;
		e = sk_manifest_add(l);
		if (!e)
			return -ENOMEM;
		e->path = sk_manifest_strndup(l, name, nlen);
		if (!e->path)
			return -ENOMEM;
		r = sk_mwalk_fill_entry(l, e, dirfd(d), name, &stx);
		if (r < 0) {
			sk_mwalk_set_err_path(w->path, clen);
			return r;
		}
	}
	if (errno) {
		r = negative_errno();
		sk_mwalk_set_err_path(w->path, plen);
		return r;
	}
	if (l->n) /* an empty directory has no array */
		qsort(l->e, l->n, sizeof(l->e[0]), listing_cmp);
	for (i = 0; i < l->n && !S_ISDIR(l->e[i].mode); i++)
		;
	*nfiles = i;
	*ret = TAKE_PTR(l);
	return 0;
}

static int walk_visit(struct mwalk *w, struct mentry *e, size_t plen)
{
	size_t nlen = strlen(e->path);
	const char *name = e->path;
	int r;

	w->path[plen] = '/';
	memcpy(w->path + plen + 1, name, nlen + 1);
	e->path = w->path;
	/* a visitor's error (writing, memory) is not the entry's */
	r = w->visit(w, e, plen + 1 + nlen);
	e->path = (char *)name;
	if (r < 0)
		return r;
	w->count++;
	if (progress_fn && (w->count & 1023) == 0)
		progress_fn(w->count, progress_data);
	return 0;
}

/* Visit what is below the directory dfd (consumed), its path in
 * w->path[0..plen). */
int sk_mwalk_dir(struct mwalk *w, int dfd, size_t plen)
{
	_cleanup_manifest_ struct shift_manifest *l = NULL;
	size_t i, nfiles = 0;
	DIR *d;
	int r;

	d = fdopendir(dfd);
	if (!d) {
		r = negative_errno();
		sk_mwalk_set_err_path(w->path, plen);
		close(dfd);
		return r;
	}
	r = sk_mwalk_listing(w, d, plen, &l, &nfiles);
	for (i = 0; r >= 0 && i < nfiles; i++)
		r = walk_visit(w, &l->e[i], plen);
	for (; r >= 0 && i < l->n; i++) {
		const char *name = l->e[i].path;
		size_t clen = plen + 1 + strlen(name);
		int cfd;

		r = walk_visit(w, &l->e[i], plen);
		if (r < 0)
			break;
		cfd = openat(dirfd(d), name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
				 O_NOCTTY);
		if (cfd < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			r = negative_errno();
			sk_mwalk_set_err_path(w->path, clen);
			break;
		}
		/* walk_visit left the child's path in w->path */
		r = sk_mwalk_dir(w, cfd, clen);
	}
	closedir(d);
	return r;
}

/* Open dir, visit it as "." and everything below it.  Returns 0. */
int sk_mwalk_tree(struct mwalk *w, const char *dir)
{
	_cleanup_manifest_ struct shift_manifest *store = NULL;
	struct mentry root = {0};
	struct statx stx;
	int fd, r;

	err_path[0] = '\0';
	store = sk_manifest_new();
	if (!store)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID |
		      STATX_MNT_ID,
		  &stx) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	w->mnt_id = stx.stx_mnt_id;
	w->path[0] = '.';
	w->path[1] = '\0';
	w->count = 0;
	/* the root's xattrs: through its own fd's /proc link */
	r = sk_mwalk_fill_entry(store, &root, fd, ".", &stx);
	if (r >= 0) {
		root.path = w->path;
		r = w->visit(w, &root, 1);
		w->count++;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	r = sk_mwalk_dir(w, fd, 1);
	if (r < 0)
		return r;
	if (progress_fn)
		progress_fn(w->count, progress_data);
	return 0;
}
