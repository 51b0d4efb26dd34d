/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Idmapped mounts with the new mount API.
 *
 * Every mount is built detached (open_tree(OPEN_TREE_CLONE) or fsmount()),
 * gets its idmap and attributes with one mount_setattr(), and only then is
 * attached with move_mount().  So a mount is never visible without its
 * idmap, and on any failure closing the detached tree's fd unmounts it:
 * nothing stays behind.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/syscalls.h"

/* SHIFT_MOUNT_* flags as MOUNT_ATTR_* bits (also for overlay-reassemble.c). */
uint64_t sk_mount_attrs(unsigned flags)
{
	uint64_t a = 0;

	if (flags & SHIFT_MOUNT_RDONLY)
		a |= MOUNT_ATTR_RDONLY;
	if (flags & SHIFT_MOUNT_NOSUID)
		a |= MOUNT_ATTR_NOSUID;
	if (flags & SHIFT_MOUNT_NODEV)
		a |= MOUNT_ATTR_NODEV;
	if (flags & SHIFT_MOUNT_NOEXEC)
		a |= MOUNT_ATTR_NOEXEC;
	return a;
}

/* Idmap (when userns_fd >= 0) and set attributes on a detached tree. */
static int setattr_idmap(int tree_fd, int userns_fd, unsigned flags)
{
	struct mount_attr attr = {
		.attr_set = sk_mount_attrs(flags),
	};
	unsigned at = AT_EMPTY_PATH;

	if (userns_fd >= 0) {
		attr.attr_set |= MOUNT_ATTR_IDMAP;
		attr.userns_fd = (uint64_t)userns_fd;
	}
	if (!attr.attr_set)
		return 0;
	if (flags & SHIFT_MOUNT_RECURSIVE)
		at |= AT_RECURSIVE;
	if (mount_setattr(tree_fd, "", at, &attr, sizeof(attr)) < 0) {
		int r = negative_errno();

		sk_debug("mount_setattr(IDMAP) failed: %s", strerror(-r));
		return r;
	}
	return 0;
}

int shift_mount_clone_idmapped(int dfd, const char *path, int userns_fd,
			       unsigned flags)
{
	_cleanup_close_ int fd = -EBADF;
	unsigned ot = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
	int r;

	if (!path || !*path) {
		path = "";
		ot |= AT_EMPTY_PATH;
	}
	if (flags & SHIFT_MOUNT_RECURSIVE)
		ot |= AT_RECURSIVE;
	fd = open_tree(dfd, path, ot);
	if (fd < 0) {
		r = negative_errno();
		sk_debug("open_tree('%s') failed: %s", path, strerror(-r));
		return r;
	}
	r = setattr_idmap(fd, userns_fd, flags);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

int shift_mount_attach(int tree_fd, int dfd, const char *target)
{
	if (tree_fd < 0 || !target)
		return -EBADF;
	if (move_mount(tree_fd, "", dfd, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int r = negative_errno();
		struct stat a, b;

		/* The kernel says EINVAL for a directory over a file (and the
		 * reverse); say what it is, EINVAL means "can't idmap". */
		if (r == -EINVAL && fstat(tree_fd, &a) >= 0 &&
		    fstatat(dfd, target, &b, 0) >= 0 &&
		    S_ISDIR(a.st_mode) != S_ISDIR(b.st_mode))
			r = S_ISDIR(a.st_mode) ? -ENOTDIR : -EISDIR;

		sk_debug("move_mount(-> '%s') failed: %s", target, strerror(-r));
		return r;
	}
	return 0;
}

int shift_mount_idmapped(const char *source, const char *target,
			 const struct shift_idmap *map, unsigned flags)
{
	_cleanup_close_ int userns = -EBADF;

	if (!source || !target || !map)
		return -EINVAL;
	userns = shift_userns_create(map);
	if (userns < 0)
		return userns;
	return shift_mount_idmapped_userns(source, target, userns, flags);
}

int shift_mount_idmapped_userns(const char *source, const char *target,
				int userns_fd, unsigned flags)
{
	_cleanup_close_ int tree = -EBADF;

	if (!source || !target)
		return -EINVAL;
	tree = shift_mount_clone_idmapped(AT_FDCWD, source, userns_fd, flags);
	if (tree < 0)
		return tree;
	/* On failure the tree fd closes and the clone is gone. */
	return shift_mount_attach(tree, AT_FDCWD, target);
}

/*
 * Apply "key=value,flag,..." to an fsopen() context.  A value can't
 * contain ',' (as with mount -o, use the per-layer API for odd paths).
 */
static int fsconfig_options(int fsfd, const char *options)
{
	_cleanup_free_ char *copy = NULL;
	char *save = NULL, *tok;

	if (!options || !*options)
		return 0;
	copy = strdup(options);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int r;

		if (eq) {
			*eq = '\0';
			r = fsconfig(fsfd, FSCONFIG_SET_STRING, tok, eq + 1, 0);
		} else {
			r = fsconfig(fsfd, FSCONFIG_SET_FLAG, tok, NULL, 0);
		}
		if (r < 0) {
			r = negative_errno();
			sk_debug("fsconfig option '%s' refused: %s", tok,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

/* Log the kernel's own explanation from an fs context (debug only; also
 * for overlay-reassemble.c). */
void sk_fs_log(int fsfd)
{
	char buf[512];
	ssize_t n;

	while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		sk_debug("kernel: %s", buf);
	}
}

int shift_mount_tmpfs_idmapped(const char *target,
			       const struct shift_idmap *map,
			       const char *options, unsigned flags)
{
	_cleanup_close_ int userns = -EBADF;

	if (!target || !map)
		return -EINVAL;
	userns = shift_userns_create(map);
	if (userns < 0)
		return userns;
	return shift_mount_tmpfs_idmapped_userns(target, userns, options,
						 flags);
}

int shift_mount_tmpfs_idmapped_userns(const char *target, int userns,
				      const char *options, unsigned flags)
{
	_cleanup_close_ int fsfd = -EBADF, mfd = -EBADF;
	int r;

	if (!target)
		return -EINVAL;
	fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return negative_errno();
	r = fsconfig_options(fsfd, options);
	if (r < 0)
		return r;
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		r = negative_errno();
		sk_fs_log(fsfd);
		return r;
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return negative_errno();
	r = setattr_idmap(mfd, userns, flags & ~(unsigned)SHIFT_MOUNT_RECURSIVE);
	if (r < 0)
		return r;
	return shift_mount_attach(mfd, AT_FDCWD, target);
}

/* ------------------------------------------------------------------ */
/* overlayfs over idmapped lower layers                                */

/*
 * Create dir (mode 0755, owned by uid:gid) if missing; an existing empty
 * directory is given that owner too (the overlay root takes the upper
 * root's owner), a non-empty one is left as it is.
 */
int sk_ensure_layer_dir(const char *path, uid_t uid, gid_t gid, bool follow)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	int r;

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			    (follow ? 0 : O_NOFOLLOW));
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	r = sk_dir_is_empty_at(fd, NULL);
	if (r <= 0)
		return r; /* in use (0): left as it is */
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return negative_errno();
	if ((st.st_mode & 07777) != 0755 && fchmod(fd, 0755) < 0)
		return negative_errno();
	return 0;
}

/* Tests set this to exercise the path-based fallback on new kernels. */
extern bool sk_overlay_no_fd_layers;
bool sk_overlay_no_fd_layers;

/* Layers as fds: "lowerdir+" with FSCONFIG_SET_FD (Linux >= 6.13). */
static int overlay_layers_by_fd(int fsfd, const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fsconfig(fsfd, FSCONFIG_SET_FD, "lowerdir+", NULL,
			     fds[i]) < 0)
			return negative_errno();
	return 0;
}

struct tmp_layers {
	char dir[64];
	size_t attached;
};

static void tmp_layers_cleanup(struct tmp_layers *t)
{
	char path[96];

	if (!t->dir[0])
		return;
	while (t->attached > 0) {
		t->attached--;
		snprintf(path, sizeof(path), "%s/%zu", t->dir, t->attached);
		/* The overlay holds its own private clones of the layers. */
		if (umount2(path, MNT_DETACH) < 0)
			sk_debug("Failed to detach '%s': %m", path);
		rmdir(path);
	}
	rmdir(t->dir);
	t->dir[0] = '\0';
}

/*
 * Older kernels: attach the clones to a private (0700) temp dir, name them
 * by path ("lowerdir+" strings from 6.8, else one "lowerdir="), and detach
 * them again once the overlay holds them.
 */
static int overlay_layers_by_path(int fsfd, const int *fds, size_t n,
				  struct tmp_layers *t)
{
	_cleanup_free_ char *joined = NULL;
	size_t i, len = 0;
	char path[96];
	int r;

	snprintf(t->dir, sizeof(t->dir), "/tmp/.shiftkit-ovl-XXXXXX");
	if (!mkdtemp(t->dir)) {
		t->dir[0] = '\0';
		return negative_errno();
	}
	joined = malloc(n * sizeof(path));
	if (!joined)
		return -ENOMEM;
	joined[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%zu", t->dir, i);
		if (mkdir(path, 0700) < 0)
			return negative_errno();
		r = shift_mount_attach(fds[i], AT_FDCWD, path);
		if (r < 0) {
			rmdir(path);
			return r;
		}
		t->attached++;
		len += (size_t)snprintf(joined + len, sizeof(path) + 1, "%s%s",
					i ? ":" : "", path);
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%zu", t->dir, i);
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", path, 0) < 0)
			break;
	}
	if (i == n)
		return 0;
	if (i > 0 || errno != EINVAL)
		return negative_errno();
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", joined, 0) < 0)
		return negative_errno();
	return 0;
}

/* An absolute path where possible: mountinfo shows what we pass. */
static int set_dir_option(int fsfd, const char *key, const char *path)
{
	_cleanup_free_ char *abs = realpath(path, NULL);

	return fsconfig(fsfd, FSCONFIG_SET_STRING, key, abs ? abs : path, 0);
}

static void close_fds(int *fds, size_t n)
{
	size_t i;

	if (!fds)
		return;
	for (i = 0; i < n; i++)
		safe_close(fds[i]);
	free(fds);
}

static int overlay_fsopen(int *ret)
{
	int fd = fsopen("overlay", FSOPEN_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	*ret = fd;
	return 0;
}

int shift_mount_overlay(const struct shift_overlay *ovl, const char *target,
			const struct shift_idmap *map, unsigned flags,
			struct shift_error *err)
{
	_cleanup_close_ int userns = -EBADF;
	int r;

	if (!ovl || !map)
		return sk_error_errno(err, -EINVAL);
	userns = shift_userns_create(map);
	if (userns < 0)
		return sk_error_errno(err, userns);
	r = shift_mount_overlay_userns(ovl, target, map, userns, flags, err);
	return r;
}

/* Per-layer detached idmapped clones; on failure *failed names the layer. */
static int clone_layers(const struct shift_overlay *ovl, size_t n,
			int userns_fd, unsigned flags, int *fds,
			const char **failed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fds[i] = shift_mount_clone_idmapped(
			AT_FDCWD, ovl->lower[i], userns_fd,
			flags & SHIFT_MOUNT_RECURSIVE);
		if (fds[i] < 0) {
			*failed = ovl->lower[i];
			return fds[i];
		}
	}
	return 0;
}

/* The mount id of path (relative to dfd), as statx reports it (also for
 * overlay-reassemble.c). */
int sk_mnt_id_of(int dfd, const char *path, uint64_t *ret)
{
	struct statx stx;

	if (statx(dfd, path, 0, STATX_MNT_ID, &stx) < 0)
		return negative_errno();
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	*ret = stx.stx_mnt_id;
	return 0;
}

/*
 * Closing a detached tree that overlayfs has taken its own clones of costs
 * an RCU grace period (~0.3 ms here), per tree.  So when all layers lie
 * under one directory of one mount, clone that directory once and open
 * each layer beneath it: one close instead of n.  Returns the tree fd and
 * fills fds with the layer dirs, or a negative errno (the caller then
 * clones per layer, which also names the failing layer).
 */
static int clone_layers_shared(const struct shift_overlay *ovl, size_t n,
			       int userns_fd, int *fds)
{
	_cleanup_close_ int tree = -EBADF;
	char **abs;
	size_t i, plen = 0;
	uint64_t id0 = 0, id;
	int r = 0;

	abs = calloc(n, sizeof(char *));
	if (!abs)
		return -ENOMEM;
	for (i = 0; i < n && r >= 0; i++) {
		abs[i] = realpath(ovl->lower[i], NULL);
		if (!abs[i])
			r = negative_errno();
		else if ((r = sk_mnt_id_of(AT_FDCWD, abs[i], &id)) >= 0) {
			if (i == 0)
				id0 = id;
			else if (id != id0)
				r = -EXDEV;
		}
	}
	if (r < 0)
		goto out;

	/* The longest common prefix of whole path components. */
	plen = strlen(abs[0]);
	for (i = 1; i < n; i++) {
		size_t k = 0;

		while (k < plen && abs[i][k] && abs[i][k] == abs[0][k])
			k++;
		if (k < plen && !(abs[i][k] == '\0' && abs[0][k] == '/') &&
		    !(abs[0][k] == '\0' && abs[i][k] == '/'))
			while (k > 0 && abs[0][k - 1] != '/')
				k--;
		plen = k;
	}
	if (plen > 1 && abs[0][plen - 1] == '/')
		plen--;
	if (plen == 0)
		plen = 1; /* "/" */
	{
		char *prefix = strndup(abs[0], plen);

		if (!prefix) {
			r = -ENOMEM;
			goto out;
		}
		/* The ancestor must be inside the same mount. */
		r = sk_mnt_id_of(AT_FDCWD, prefix, &id);
		if (r >= 0 && id != id0)
			r = -EXDEV;
		if (r >= 0) {
			tree = shift_mount_clone_idmapped(AT_FDCWD, prefix,
							  userns_fd, 0);
			if (tree < 0)
				r = tree;
		}
		free(prefix);
	}
	for (i = 0; i < n && r >= 0; i++) {
		const char *rel = abs[i] + plen;
		struct open_how how = {
			.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				   RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS,
		};

		while (*rel == '/')
			rel++;
		fds[i] = sys_openat2(tree, *rel ? rel : ".", &how);
		if (fds[i] < 0)
			r = negative_errno();
	}
out:
	for (i = 0; i < n; i++)
		free(abs[i]);
	free(abs);
	if (r < 0) {
		sk_debug("no shared clone for the layers: %s", strerror(-r));
		for (i = 0; i < n; i++)
			fds[i] = safe_close(fds[i]);
		return r;
	}
	return TAKE_FD(tree);
}

/* One overlay being built by shift_mount_overlay_userns(), step by step. */
struct ovl_build {
	const struct shift_overlay *ovl;
	const struct shift_idmap *map;
	int userns_fd;
	unsigned flags;
	int *fds; /* the layers' detached idmapped clones */
	size_t n;
	int tree;		/* one shared clone the fds lie in, or -EBADF */
	int fsfd;		/* the overlay's fs context */
	struct tmp_layers tmp;	/* layers attached by path (old kernels) */
	const char *failed;	/* the path a failure is about */
};

/*
 * overlayfs wants two lower layers when there is no upper one; one
 * read-only layer is exactly its idmapped clone, made read-only.
 */
static int ovl_single_layer(struct ovl_build *b, const char *target)
{
	int r = clone_layers(b->ovl, 1, b->userns_fd, b->flags, b->fds,
			     &b->failed);

	if (r < 0)
		return r;
	r = setattr_idmap(b->fds[0], -EBADF, b->flags | SHIFT_MOUNT_RDONLY);
	if (r >= 0)
		r = shift_mount_attach(b->fds[0], AT_FDCWD, target);
	if (r < 0)
		b->failed = target;
	return r;
}

/* The layers' clones: one shared tree where they allow it, else each. */
static int ovl_clone(struct ovl_build *b, bool by_fd)
{
	if (by_fd && b->n > 1 && !(b->flags & SHIFT_MOUNT_RECURSIVE))
		b->tree = clone_layers_shared(b->ovl, b->n, b->userns_fd,
					      b->fds);
	if (b->tree >= 0)
		return 0;
	return clone_layers(b->ovl, b->n, b->userns_fd, b->flags, b->fds,
			    &b->failed);
}

/* The container's root as the host sees it owns the upper's root. */
static int ovl_prepare_upper(struct ovl_build *b)
{
	uint32_t uid = 0, gid = 0;
	int r;

	if (!b->ovl->upper)
		return 0;
	if (shift_idmap_to_seen(b->map, SHIFT_UID, 0, &uid) < 0 ||
	    shift_idmap_to_seen(b->map, SHIFT_GID, 0, &gid) < 0) {
		uid = 0;
		gid = 0;
	}
	r = sk_ensure_layer_dir(b->ovl->upper, uid, gid, false);
	if (r < 0) {
		b->failed = b->ovl->upper;
		return r;
	}
	r = sk_ensure_layer_dir(b->ovl->work, uid, gid, false);
	if (r < 0)
		b->failed = b->ovl->work;
	return r;
}

/* A new fs context with the lower layers: as fds (lowerdir+, 6.13+), else
 * attached to a private temp dir and named by path. */
static int ovl_add_layers(struct ovl_build *b, bool by_fd)
{
	int r = overlay_fsopen(&b->fsfd);

	if (r < 0)
		return r;
	r = by_fd ? overlay_layers_by_fd(b->fsfd, b->fds, b->n) : -EINVAL;
	if (r != -EINVAL)
		return r;
	sk_debug("overlay layers as fds refused, attaching them to a temp dir");
	b->fsfd = safe_close(b->fsfd);
	r = overlay_fsopen(&b->fsfd);
	if (r < 0)
		return r;
	if (b->tree >= 0) {
		/* Attaching needs a tree per layer. */
		for (size_t i = 0; i < b->n; i++)
			b->fds[i] = safe_close(b->fds[i]);
		b->tree = safe_close(b->tree);
		r = clone_layers(b->ovl, b->n, b->userns_fd, b->flags, b->fds,
				 &b->failed);
		if (r < 0)
			return r;
	}
	return overlay_layers_by_path(b->fsfd, b->fds, b->n, &b->tmp);
}

/* Upper, work and the caller's options; the superblock; a detached
 * mount of it (returned). */
static int ovl_create(struct ovl_build *b)
{
	const struct shift_overlay *ovl = b->ovl;
	int mfd, r;

	if (ovl->upper && (set_dir_option(b->fsfd, "upperdir", ovl->upper) < 0 ||
			   set_dir_option(b->fsfd, "workdir", ovl->work) < 0)) {
		b->failed = ovl->upper;
		return negative_errno();
	}
	r = fsconfig_options(b->fsfd, ovl->options);
	if (r < 0)
		return r;
	if (fsconfig(b->fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return negative_errno();
	mfd = fsmount(b->fsfd, FSMOUNT_CLOEXEC,
		      (unsigned)sk_mount_attrs(b->flags));
	return mfd < 0 ? negative_errno() : mfd;
}

int shift_mount_overlay_userns(const struct shift_overlay *ovl,
			       const char *target,
			       const struct shift_idmap *map, int userns_fd,
			       unsigned flags, struct shift_error *err)
{
	struct ovl_build b = {
		.ovl = ovl,
		.map = map,
		.userns_fd = userns_fd,
		.flags = flags,
		.tree = -EBADF,
		.fsfd = -EBADF,
		.tmp = { .dir = "", .attached = 0 },
	};
	bool by_fd = !sk_overlay_no_fd_layers;
	int mfd, r;

	if (!ovl || !ovl->lower || !ovl->lower[0] || !target || !map)
		return -EINVAL;
	if (ovl->upper && !ovl->work)
		return -EINVAL;
	while (ovl->lower[b.n])
		b.n++;
	b.fds = calloc(b.n, sizeof(int));
	if (!b.fds)
		return -ENOMEM;
	for (size_t i = 0; i < b.n; i++)
		b.fds[i] = -EBADF;

	if (!ovl->upper && b.n == 1 && !ovl->options) {
		r = ovl_single_layer(&b, target);
		goto out;
	}
	r = ovl_clone(&b, by_fd);
	if (r >= 0)
		r = ovl_prepare_upper(&b);
	if (r < 0)
		goto out;
	r = ovl_add_layers(&b, by_fd);
	mfd = r < 0 ? r : ovl_create(&b);
	if (mfd < 0) {
		r = mfd;
		if (b.fsfd >= 0)
			sk_fs_log(b.fsfd);
		goto out;
	}
	tmp_layers_cleanup(&b.tmp);
	r = shift_mount_attach(mfd, AT_FDCWD, target);
	safe_close(mfd);
	if (r < 0)
		b.failed = target;
out:
	tmp_layers_cleanup(&b.tmp);
	close_fds(b.fds, b.n);
	safe_close(b.tree);
	safe_close(b.fsfd);
	return r < 0 ? sk_error_set_path(err, r, b.failed, NULL) : r;
}

/* ------------------------------------------------------------------ */
/* Checks before mounting                                              */

int shift_mount_is_mountpoint(int dfd, const char *path)
{
	_cleanup_free_ char *parent = NULL;
	struct statx a, b;
	unsigned at = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT;

	if (!path)
		return -EINVAL;
	if (!*path)
		at |= AT_EMPTY_PATH;
	if (statx(dfd, path, at, STATX_MNT_ID | STATX_INO, &a) < 0)
		return negative_errno();
	/* The kernel's own answer (Linux >= 5.8): no guessing. */
	if (a.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
		return !!(a.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	/* Older kernels: the parent lies on another mount, or path is the
	 * root (its own parent).  st_dev alone would miss a bind mount of a
	 * directory of the same filesystem. */
	if (asprintf(&parent, "%s%s..", path, *path ? "/" : "") < 0) {
		parent = NULL;
		return -ENOMEM;
	}
	if (!S_ISDIR(a.stx_mode))
		return -ENOTDIR; /* a file bind mount: can't tell, say so */
	if (statx(dfd, parent, AT_NO_AUTOMOUNT, STATX_MNT_ID | STATX_INO, &b) <
	    0)
		return negative_errno();
	if (a.stx_dev_major == b.stx_dev_major &&
	    a.stx_dev_minor == b.stx_dev_minor && a.stx_ino == b.stx_ino)
		return 1;
	if ((a.stx_mask & b.stx_mask & STATX_MNT_ID))
		return a.stx_mnt_id != b.stx_mnt_id;
	return a.stx_dev_major != b.stx_dev_major ||
	       a.stx_dev_minor != b.stx_dev_minor;
}

/* ------------------------------------------------------------------ */
/* Explaining errors                                                   */

struct find_unsupported {
	const char *abs;
	size_t alen;
	int userns_fd;
	char **ret_path;
};

static int check_one_mount(const struct sk_mountinfo *mi, void *userdata)
{
	struct find_unsupported *u = userdata;
	const char *mp = mi->target;
	int fd;

	if (strncmp(mp, u->abs, u->alen) != 0 ||
	    (mp[u->alen] != '/' && mp[u->alen] != '\0' &&
	     !(u->alen == 1 && u->abs[0] == '/')))
		return 0;
	fd = shift_mount_clone_idmapped(AT_FDCWD, mp, u->userns_fd, 0);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd != -EINVAL)
		return 0;
	*u->ret_path = strdup(mp);
	return *u->ret_path ? 1 : -ENOMEM;
}

int shift_mount_find_unsupported(const char *path, int userns_fd,
				 char **ret_path)
{
	_cleanup_free_ char *abs = NULL;
	struct find_unsupported u;
	int r;

	if (!path || userns_fd < 0 || !ret_path)
		return -EINVAL;
	abs = realpath(path, NULL);
	if (!abs)
		return negative_errno();
	u = (struct find_unsupported){ abs, strlen(abs), userns_fd, ret_path };
	r = sk_mountinfo_foreach(NULL, check_one_mount, &u);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -ENOENT;
}

/*
 * The mount holding path: fstype and per-mount options.  Returns 0 and
 * fills the buffers, or a negative errno.
 */
static int mount_info_of(const char *path, char *fstype, size_t fslen,
			 char *opts, size_t optlen)
{
	struct sk_mountinfo mi;
	uint64_t id;
	int r;

	r = sk_mnt_id_of(AT_FDCWD, path, &id);
	if (r < 0)
		return r;
	r = sk_mountinfo_by_id(id, &mi);
	if (r < 0)
		return r;
	snprintf(fstype, fslen, "%s", mi.fstype);
	snprintf(opts, optlen, "%s", mi.vfs_options);
	sk_mountinfo_clear(&mi);
	return 0;
}

/* statfs magic -> name, when mountinfo can't tell. */
static const char *fstype_by_magic(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return NULL;
	return sk_fstype_by_magic((unsigned long)sfs.f_type);
}

char *shift_mount_strerror(int err, const char *path)
{
	char fstype[128] = "", opts[1024] = "";
	const char *fs = NULL;
	char *s = NULL;
	int r = -1;

	if (err > 0)
		err = -err;
	if (path) {
		if (mount_info_of(path, fstype, sizeof(fstype), opts,
				  sizeof(opts)) >= 0)
			fs = fstype;
		else
			fs = fstype_by_magic(path);
	}

	switch (err) {
	case -EINVAL:
		if (fs)
			r = asprintf(&s, "filesystem '%s' does not support idmapped mounts",
				     fs);
		else
			r = asprintf(&s, "the filesystem does not support idmapped mounts");
		break;
	case -ENOSYS:
		r = asprintf(&s, "the kernel lacks the mount API needed for idmapped mounts (open_tree, mount_setattr: Linux >= 5.12)");
		break;
	case -EPERM:
		if (opts[0] && sk_mount_option_has(opts, "idmapped"))
			r = asprintf(&s, "the mount is already idmapped and can't be idmapped again (use the original mount)");
		else if (geteuid() != 0)
			r = asprintf(&s, "permission denied: idmapped mounts need CAP_SYS_ADMIN (run as root)");
		else
			r = asprintf(&s, "operation not permitted (an idmapped mount can't be idmapped again, and the map must be writable by the caller)");
		break;
	case -EOVERFLOW:
		r = asprintf(&s, "an id is not mapped (a file's owner or the caller has no image under the map)");
		break;
	case -ENOENT:
		r = asprintf(&s, "no such file or directory");
		break;
	case -ENOTDIR:
		r = asprintf(&s, "not a directory");
		break;
	case -EBUSY:
		r = asprintf(&s, "device or resource busy");
		break;
	case -EXDEV:
		r = asprintf(&s, "the layers must be on one filesystem (upper and work)");
		break;
	default:
		r = asprintf(&s, "%s", strerror(-err));
		break;
	}
	return r < 0 ? NULL : s;
}
