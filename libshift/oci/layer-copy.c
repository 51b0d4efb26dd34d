/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: shifted copies of a stored layer (where its filesystem can't be
 * idmapped). (libshift/oci/layer-internal.h has the shared context; the whole
 * design is at the top of layer-internal.h and in docs/oci.md.)
 */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>

#include "oci/layer-internal.h"
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* Mounting                                                            */

/*
 * Shifted copies: the canonical layer copied inode by inode (file data by
 * reflink where the filesystem can, else copy_file_range), with its
 * on-disk metadata, then shifted by the engine's shift_inode(), the same
 * function shift-tree uses.
 */
struct hardlink {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct copyctx {
	struct shift_inode_ctx *ictx;
	struct shift_error *diag;
	int droot;
	struct hardlink *links;
	size_t n_links, cap_links;
	bool failed; /* an event reported a problem */
	const char *why;
	char path[PATH_MAX]; /* relative path of the current entry */
	char names[65536];
	char value[65536];
};

static void copy_event(const struct shift_event *ev, void *userdata)
{
	struct copyctx *c = userdata;

	if (ev->type != SHIFT_EVENT_UNMAPPED && ev->type != SHIFT_EVENT_ERROR)
		return;
	if (!c->failed) {
		c->failed = true;
		c->why = ev->type == SHIFT_EVENT_UNMAPPED
			     ? "an id in the layer has no image under the map"
			     : "cannot shift the copy";
		if (c->diag && !c->diag->path)
			c->diag->path = strdup(c->path);
	}
}

static int copy_xattrs(struct copyctx *c, int sfd, int dfd)
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
		len = getxattr(sp, k, c->value, sizeof(c->value));
		if (len < 0)
			return negative_errno();
		if (setxattr(dp, k, c->value, (size_t)len, 0) < 0)
			return negative_errno();
	}
	return 0;
}

static int copy_data(int sfd, int dfd)
{
	ssize_t n;

	if (ioctl(dfd, FICLONE, sfd) == 0)
		return 0;
	do
		n = copy_file_range(sfd, NULL, dfd, NULL, 1 << 30, 0);
	while (n > 0);
	if (n == 0)
		return 0;
	/* Old kernels, cross-device: plain read/write. */
	if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP) {
		char buf[65536];

		if (lseek(sfd, 0, SEEK_SET) < 0 || ftruncate(dfd, 0) < 0 ||
		    lseek(dfd, 0, SEEK_SET) < 0)
			return negative_errno();
		while ((n = read(sfd, buf, sizeof(buf))) > 0)
			if (write(dfd, buf, (size_t)n) != n)
				return -EIO;
		return n < 0 ? negative_errno() : 0;
	}
	return negative_errno();
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
	while ((de = readdir(d))) {
		struct stat st;

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
	return 0;
}

/* Owner and mode as on disk, xattrs, then the engine's shift; times last. */
static int copy_meta(struct copyctx *c, int sfd, int dfd, int pfd,
		     const char *name, const struct stat *st)
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
	r = copy_xattrs(c, sfd, dfd);
	if (r < 0)
		return r;
	r = shift_inode(c->ictx, dfd, NULL, c->path);
	if (r < 0 || c->failed)
		return r < 0 ? r : -ERANGE;
	r = pfd >= 0 ? utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW)
		     : futimens(dfd, ts);
	return r < 0 ? negative_errno() : 0;
}

static int copy_entry(struct copyctx *c, int sfd, int dfd, const char *name,
		      const struct stat *st)
{
	_cleanup_close_ int s = -EBADF, d = -EBADF;
	char target[PATH_MAX];
	ssize_t n;
	int r;

	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		for (size_t i = 0; i < c->n_links; i++)
			if (c->links[i].dev == st->st_dev &&
			    c->links[i].ino == st->st_ino)
				return linkat(c->droot, c->links[i].path, dfd,
					      name, 0) < 0
					   ? negative_errno()
					   : 0;
		if (c->n_links == c->cap_links) {
			size_t cap = c->cap_links ? 2 * c->cap_links : 64;
			struct hardlink *l =
			    realloc(c->links, cap * sizeof(*l));

			if (!l)
				return -ENOMEM;
			c->links = l;
			c->cap_links = cap;
		}
		c->links[c->n_links] = (struct hardlink){
		    .dev = st->st_dev,
		    .ino = st->st_ino,
		    .path = strdup(c->path),
		};
		if (!c->links[c->n_links].path)
			return -ENOMEM;
		c->n_links++;
	}

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		s = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		d = openat(dfd, name,
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			   0600);
		if (s < 0 || d < 0)
			return negative_errno();
		r = copy_data(s, d);
		if (r < 0)
			return r;
		return copy_meta(c, s, d, -EBADF, NULL, st);
	case S_IFDIR:
		if (mkdirat(dfd, name, 0700) < 0)
			return negative_errno();
		s = openat(sfd, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		d = openat(dfd, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0 || d < 0)
			return negative_errno();
		r = copy_dir(c, s, d);
		if (r < 0)
			return r;
		return copy_meta(c, s, d, -EBADF, NULL, st);
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
		if (mknodat(dfd, name, st->st_mode & S_IFMT, st->st_rdev) < 0)
			return negative_errno();
		break;
	default:
		return 0;
	}
	s = openat(sfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	d = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0 || d < 0)
		return negative_errno();
	return copy_meta(c, s, d, dfd, name, st);
}

/* Copy the tree at src into the empty directory dst, shifted by map. */
static int copy_shifted(const char *src, const char *dst,
			const struct shift_idmap *map, struct shift_error *diag)
{
	struct shift_options opts = {
	    .map = map,
	    .unmapped = SHIFT_UNMAPPED_ERROR,
	    .on_event = copy_event,
	};
	_cleanup_close_ int s = -EBADF;
	struct copyctx *c;
	struct stat st;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->diag = diag;
	c->droot = -EBADF;
	opts.userdata = c;
	c->ictx = shift_inode_ctx_new(&opts);
	s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->droot = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!c->ictx)
		r = -ENOMEM;
	else if (s < 0 || c->droot < 0 || fstat(s, &st) < 0)
		r = negative_errno();
	else
		r = copy_dir(c, s, c->droot);
	if (r >= 0) {
		c->path[0] = '\0';
		r = copy_meta(c, s, c->droot, -EBADF, NULL, &st);
	}
	sk_error_path(diag, r, *c->path ? c->path : ".");
	sk_error_why(diag, r, c->why ? c->why : "cannot make the shifted copy");
	for (size_t i = 0; i < c->n_links; i++)
		free(c->links[i].path);
	free(c->links);
	shift_inode_ctx_free(c->ictx);
	safe_close(c->droot);
	free(c);
	return r;
}

/* STORE/shifted/KEY/sha256/HEX from the canonical layer, if missing. */
int sk_layer_store_shifted(const struct shift_oci_image *img, unsigned i,
			   const char *store, const struct shift_idmap *map,
			   const char *key, struct shift_error *diag)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_free_ char *final = sk_layer_layer_dir(store, key, l->digest);
	_cleanup_free_ char *canon = sk_layer_layer_dir(store, NULL, l->digest);
	_cleanup_free_ char *tmp = NULL, *src = NULL, *dst = NULL;
	_cleanup_free_ char *mstr = shift_idmap_to_string(map);
	_cleanup_free_ char *parent = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct stat st;
	int r;

	if (!final || !canon || !mstr)
		return -ENOMEM;
	if (stat(final, &st) == 0)
		return 0;
	if (asprintf(&tmp, "%s/tmp/%s.XXXXXX", store, l->digest + 7) < 0 ||
	    asprintf(&src, "%s/rootfs", canon) < 0)
		return -ENOMEM;
	{
		_cleanup_free_ char *t = NULL;

		if (asprintf(&t, "%s/tmp", store) < 0)
			return -ENOMEM;
		r = sk_layer_mkdir_p(t, 0700);
		if (r < 0)
			return r;
	}
	r = sk_layer_mkdtemp_locked(tmp, &lockfd);
	if (r < 0) {
		free(tmp);
		tmp = NULL;
		return r;
	}
	if (asprintf(&dst, "%s/rootfs", tmp) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(dst, 0755) < 0) {
		r = negative_errno();
		goto out;
	}
	r = copy_shifted(src, dst, map, diag);
	if (r < 0)
		goto out;
	r = sk_layer_write_layer_json(tmp, l, mstr, NULL);
	if (r < 0)
		goto out;
	parent = strdup(final);
	if (!parent) {
		r = -ENOMEM;
		goto out;
	}
	*strrchr(parent, '/') = '\0';
	r = sk_layer_mkdir_p(parent, 0755);
	if (r < 0)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		r = errno == EEXIST ? 0 : negative_errno();
		goto out;
	}
	free(tmp);
	tmp = NULL;
	r = 1;
out:
	if (tmp)
		(void)sk_layer_rm_rf(tmp);
	return r;
}
