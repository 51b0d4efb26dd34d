/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: the extraction context: failures, paths, parents opened beneath
 * the root. (libshift/oci/layer-internal.h has the shared context; the whole
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

bool sk_layer_dry(const struct xctx *x)
{
	return x->flags & SHIFT_LAYER_DRY_RUN;
}

void sk_layer_emit(struct xctx *x, const char *what, int64_t size)
{
	struct shift_layer_event ev = {
	    .layer = x->layer,
	    .digest = x->layer_digest,
	    .path = x->path,
	    .what = what,
	    .size = size > 0 ? (uint64_t)size : 0,
	    .bytes_read = x->bytes_before + (x->blob ? x->blob->got_size : 0),
	    .bytes_total = x->bytes_total,
	};

	if (x->on_entry)
		x->on_entry(&ev, x->userdata);
}

/* s escaped (a tar name or libarchive's message about one), for sk_debug. */
const char *sk_layer_esc(struct xctx *x, const char *s)
{
	shift_escape_to(x->ebuf, sizeof(x->ebuf), s ? s : "");
	return x->ebuf;
}

int sk_layer_fail(struct xctx *x, int err, const char *where, const char *why)
{
	return sk_error_first(x->diag, err, where, why);
}

/*
 * sk_layer_fail() with a reason made at run time.  With replace, an
 * earlier failure is overwritten.
 */
_printf_(5, 6) int sk_layer_fail_fmt(struct xctx *x, int err, bool replace,
				     const char *where, const char *fmt, ...)
{
	va_list ap;

	if (!x->diag || (!replace && (x->diag->path || x->diag->why)))
		return err;
	va_start(ap, fmt);
	sk_error_setv(x->diag, err, fmt, ap);
	va_end(ap);
	return sk_error_path(x->diag, err, where);
}

/*
 * The one wording for an id the entry can't have, in both unpacks: ids
 * 2^32-1 and above are no id at all (the kernel's "invalid" id), others
 * may lack an image under the map.  what: "uid", "gid", "ACL entry's
 * uid"...
 */
int sk_layer_fail_id(struct xctx *x, const char *what, int64_t id, int r)
{
	if (r == -EINVAL)
		return sk_layer_fail_fmt(x, -ERANGE, false, x->path,
					 "its %s is not a valid id: %" PRId64,
					 what, id);
	return sk_layer_fail_fmt(x, -ERANGE, false, x->path,
				 "its %s has no image under the map: %" PRId64,
				 what, id);
}

void sk_layer_pcache_drop(struct xctx *x)
{
	free(x->pcache_path);
	x->pcache_path = NULL;
	x->pcache_fd = safe_close(x->pcache_fd);
}

void sk_layer_xctx_done(struct xctx *x)
{
	sk_layer_pcache_drop(x);
	sk_strset_clear(&x->layer_paths);
	for (size_t i = 0; i < x->n_dirs; i++)
		free(x->dirs[i].path);
	free(x->dirs);
	x->dirs = NULL;
	x->n_dirs = x->cap_dirs = 0;
}

/*
 * Normalise an entry path into out: drop "." and empty components and a
 * leading "./"; refuse absolute paths and "..".  "" is the root.
 */
int sk_layer_path_normalise(const char *in, char *out, size_t size,
			    const char **why)
{
	size_t len = 0;
	const char *p = in;

	if (!in || !*in) {
		*why = "empty path";
		return -EINVAL;
	}
	/* "/" alone is the root (umoci writes it so); "/x" is absolute. */
	if (*in == '/' && in[strspn(in, "/.")] == '\0') {
		out[0] = '\0';
		return 0;
	}
	if (*in == '/') {
		*why = "absolute path (refusing to extract outside the root)";
		return -EPERM;
	}
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			*why = "path contains '..' (refusing to extract "
			       "outside the root)";
			return -EPERM;
		} else {
			if (len + n + 2 > size) {
				*why = "path too long";
				return -ENAMETOOLONG;
			}
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = *end ? end + 1 : end;
	}
	out[len] = '\0';
	return 0;
}

int sk_layer_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
	    .resolve = RESOLVE_SAFE,
	};
	int fd = sys_openat2(rootfd, *path ? path : ".", &how);

	return fd < 0 ? negative_errno() : fd;
}

/* -EINVAL: not an id at all; -ERANGE: no image under the map. */
int sk_layer_map_id(const struct xctx *x, enum shift_id_kind kind, int64_t id,
		    uint32_t *ret)
{
	if (id < 0 || id >= (int64_t)SHIFT_ID_NONE)
		return -EINVAL;
	if (!x->map) {
		*ret = (uint32_t)id;
		return 0;
	}
	return shift_idmap_to_seen(x->map, kind, (uint32_t)id, ret);
}

int sk_layer_root_owner(const struct xctx *x, uid_t *uid, gid_t *gid)
{
	uint32_t u = 0, g = 0;

	if (sk_layer_map_id(x, SHIFT_UID, 0, &u) < 0 ||
	    sk_layer_map_id(x, SHIFT_GID, 0, &g) < 0)
		return -ERANGE;
	*uid = u;
	*gid = g;
	return 0;
}

int sk_layer_rm_rf(const char *path)
{
	char copy[PATH_MAX];
	char *slash;
	_cleanup_close_ int dfd = -EBADF;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	slash = strrchr(copy, '/');
	if (!slash)
		return sk_rm_rf_at(AT_FDCWD, copy);
	*slash = '\0';
	dfd = open(*copy ? copy : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	return sk_rm_rf_at(dfd, slash + 1);
}

/*
 * Why opening path beneath rootfd failed with ENOTDIR/ELOOP: the first
 * component that is a symlink or not a directory (messages only; stops at
 * the first non-directory, so nothing outside the root is looked at).
 */
int sk_layer_why_notdir(int rootfd, const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (fstatat(rootfd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISLNK(st.st_mode))
				return -ELOOP;
			if (!S_ISDIR(st.st_mode))
				return -ENOTDIR;
		}
		*p = c;
		if (!c)
			return -ENOTDIR;
	}
}

/*
 * Remove the ACLs a new inode got from its parent's default ACL (the
 * access ACL, and for a directory the default ACL too), by fd or by name
 * below pfd: the archive's own ACLs are set afterwards, and an entry the
 * archive gives none must have none (GNU tar and umoci leave none).  For
 * a directory kept from a lower layer (flat), this also drops the lower
 * layer's ACLs, as the overlay would show the upper directory's.
 */
int sk_layer_drop_inherited_acls(int fd, int pfd, const char *name, bool is_dir)
{
	static const char *const keys[] = {"system.posix_acl_access",
					   "system.posix_acl_default"};
	char proc[64 + NAME_MAX];

	if (fd < 0)
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", pfd, name);
	for (int i = 0; i < (is_dir ? 2 : 1); i++) {
		int r = fd >= 0 ? fremovexattr(fd, keys[i])
				: lremovexattr(proc, keys[i]);

		if (r < 0 && errno != ENODATA && errno != EOPNOTSUPP)
			return negative_errno();
	}
	return 0;
}

/*
 * Flat: a directory entry that keeps a lower layer's directory takes the
 * entry's xattrs only, as the overlay would show the upper directory's
 * alone: the lower layer's user.*, trusted.* and security.capability go
 * (security.selinux too when labels come from the image; else it is the
 * host's).  ACLs go with sk_layer_drop_inherited_acls().
 */
int sk_layer_drop_lower_xattrs(struct xctx *x, int fd)
{
	char *names = (char *)x->xbuf;
	ssize_t n = flistxattr(fd, names, sizeof(x->xbuf));

	if (n < 0)
		return errno == EOPNOTSUPP ? 0 : negative_errno();
	for (char *k = names; k < names + n; k += strlen(k) + 1) {
		if (strncmp(k, "user.", 5) && strncmp(k, "trusted.", 8) &&
		    strcmp(k, "security.capability") &&
		    (strcmp(k, "security.selinux") ||
		     !(x->flags & SHIFT_LAYER_SELINUX_LABELS)))
			continue;
		if (fremovexattr(fd, k) < 0 && errno != ENODATA)
			return negative_errno();
	}
	return 0;
}

/*
 * Open the parent directory of the current entry, creating missing
 * directories (owned by the map's 0:0, mode 0755) when create is set.
 * The fd is cached and owned by x.
 */
int sk_layer_open_parent(struct xctx *x, const char *parent, bool create,
			 const char *entry)
{
	_cleanup_close_ int fd = -EBADF;
	uid_t ru;
	gid_t rg;

	if (x->pcache_path && !strcmp(x->pcache_path, parent))
		return x->pcache_fd;
	sk_layer_pcache_drop(x);
	fd = sk_layer_open_beneath(x->rootfd, parent, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT && create) {
		char walk[PATH_MAX];
		char *p = walk, *slash;

		if (sk_layer_root_owner(x, &ru, &rg) < 0)
			return sk_layer_fail(
			    x, -ERANGE, entry,
			    "uid/gid 0 has no image under the map (needed for "
			    "implied directories)");
		snprintf(walk, sizeof(walk), "%s", parent);
		fd = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return negative_errno();
		for (;;) {
			int next;

			slash = strchr(p, '/');
			if (slash)
				*slash = '\0';
			next = sk_layer_open_beneath(fd, p,
						     O_RDONLY | O_DIRECTORY);
			if (next == -ENOENT) {
				if (mkdirat(fd, p, 0700) < 0)
					return sk_layer_fail(
					    x, negative_errno(), entry,
					    "cannot create a parent directory");
				next = sk_layer_open_beneath(
				    fd, p, O_RDONLY | O_DIRECTORY);
				/*
				 * Exactly 0755 0:0 (mapped), whatever the
				 * umask, a setgid parent (group, setgid
				 * bit) or a default ACL would give it.
				 */
				if (next >= 0) {
					int q = sk_layer_drop_inherited_acls(
					    next, -EBADF, NULL, true);

					if (q < 0 || fchown(next, ru, rg) < 0 ||
					    fchmod(next, 0755) < 0) {
						q = q < 0 ? q
							  : negative_errno();
						safe_close(next);
						return sk_layer_fail(
						    x, q, entry,
						    "cannot create a parent "
						    "directory");
					}
				}
			}
			if (next < 0) {
				fd = next;
				break;
			}
			safe_close(fd);
			fd = next;
			if (!slash)
				break;
			p = slash + 1;
		}
	}
	if (fd == -ENOTDIR || fd == -ELOOP)
		fd = sk_layer_why_notdir(x->rootfd, parent);
	if (fd == -ELOOP)
		return sk_layer_fail(x, -ELOOP, entry,
				     "path goes through a symbolic link "
				     "(refusing to follow it)");
	if (fd == -ENOTDIR)
		return sk_layer_fail(x, -ENOTDIR, entry,
				     "a parent is not a directory");
	if (fd == -EXDEV)
		return sk_layer_fail(x, -EXDEV, entry, "path escapes the root");
	if (fd < 0)
		return sk_layer_fail(x, fd, entry,
				     "cannot open the parent directory");
	x->pcache_path = strdup(parent);
	if (!x->pcache_path)
		return -ENOMEM;
	x->pcache_fd = TAKE_FD(fd);
	return x->pcache_fd;
}

/* Make room for a new entry name in pfd: keep a directory if want_dir. */
int sk_layer_make_room(struct xctx *x, int pfd, const char *name, bool want_dir,
		       bool *ret_kept)
{
	struct stat st;
	int r;

	*ret_kept = false;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (S_ISDIR(st.st_mode)) {
		if (want_dir) {
			*ret_kept = true;
			return 0;
		}
		/* The cached parent may live below what goes away. */
		if (x->pcache_fd == pfd) {
			free(x->pcache_path);
			x->pcache_path = NULL;
		}
		r = sk_rm_rf_at(pfd, name);
		return r;
	}
	return unlinkat(pfd, name, 0) < 0 ? negative_errno() : 0;
}
