/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layer extraction: tar (libarchive, read side only) into a directory,
 * everything fd-relative.
 *
 * A layer is untrusted.  libarchive parses; we create every inode ourselves
 * with *at() calls below a root fd: parents are opened with openat2()
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (a symlink extracted earlier is never
 * followed), the last component is created O_EXCL/O_NOFOLLOW after
 * removing whatever was there, hard link targets resolve the same way.
 * Paths are normalised up front: absolute paths and ".." are refused.
 * Trees are built in a temporary directory and renamed into place only
 * after the layer blob's digest is verified at its end.
 *
 * Two modes share the entry code:
 *  store: one directory per layer, ownership as in the tar (or shifted, for
 *         the per-map copies), OCI whiteouts turned into overlayfs ones;
 *  flat:  all layers into one tree, whiteouts applied (they delete what
 *         lower layers made), ownership shifted on the way.
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

#include "oci/oci-internal.h"
#include "util/syscalls.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_META ".wh..wh."
#define OVL_OPAQUE "trusted.overlay.opaque"

#define RESOLVE_SAFE                                                           \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |       \
	 RESOLVE_NO_XDEV)

/*
 * The translators of the shift engine (libshift/core/acl.c, fcaps.c), so a
 * flat unpack shifts ACLs and capabilities exactly as shift-tree does.
 */
/* The first ACL qualifier the map can't represent, for the message. */
struct unmapped {
	bool any;
	enum shift_id_kind kind;
	uint32_t id;
};

static void note_unmapped(enum shift_id_kind kind, uint32_t id, void *userdata)
{
	struct unmapped *u = userdata;

	if (!u->any)
		*u = (struct unmapped){ .any = true, .kind = kind, .id = id };
}

static int sk_layer_acl_shift(const void *in, size_t len, void *out,
			      const struct shift_idmap *map,
			      struct unmapped *unmapped)
{
	int r;

	memcpy(out, in, len);
	r = shift_acl_translate(out, len, map, true, SHIFT_UNMAPPED_ERROR,
				note_unmapped, unmapped);
	if (r < 0)
		return r;
	return unmapped->any ? -ERANGE : 0;
}

static int sk_layer_fcaps_shift(const void *in, size_t len, void *out,
				size_t *ret_len, const struct shift_idmap *map)
{
	int r = shift_fcaps_translate(in, len, out, SHIFT_FCAPS_MAX_SIZE, map,
				      true);

	if (r < 0)
		return r;
	*ret_len = (size_t)r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* A set of strings (paths seen in the current layer).                 */

struct strset {
	char **slot;
	size_t n, cap;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void strset_clear(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	*s = (struct strset){ 0 };
}

static bool strset_has(const struct strset *s, const char *k)
{
	if (!s->cap)
		return false;
	for (size_t i = fnv(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (!strcmp(s->slot[i], k))
			return true;
	}
}

static int strset_add(struct strset *s, const char *k)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct strset bigger = { .cap = s->cap ? 2 * s->cap : 1024 };

		bigger.slot = calloc(bigger.cap, sizeof(char *));
		if (!bigger.slot)
			return -ENOMEM;
		for (i = 0; i < s->cap; i++) {
			size_t j;

			if (!s->slot[i])
				continue;
			for (j = fnv(s->slot[i]) & (bigger.cap - 1);
			     bigger.slot[j]; j = (j + 1) & (bigger.cap - 1))
				;
			bigger.slot[j] = s->slot[i];
		}
		bigger.n = s->n;
		free(s->slot);
		*s = bigger;
	}
	for (i = fnv(k) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->slot[i], k))
			return 0;
	s->slot[i] = strdup(k);
	if (!s->slot[i])
		return -ENOMEM;
	s->n++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The extraction context.                                             */

enum xmode {
	XMODE_STORE,
	XMODE_FLAT,
};

struct dirtime {
	char *path;
	struct timespec ts[2];
};

struct xctx {
	int rootfd;
	enum xmode mode;
	const struct shift_idmap *map; /* NULL: ids as in the tar */
	unsigned flags;
	const volatile sig_atomic_t *cancel; /* set: stop, -ECANCELED */
	void (*on_entry)(const struct shift_layer_event *ev, void *userdata);
	void *userdata;
	unsigned layer;			/* being extracted */
	const char *layer_digest;
	struct sk_blob *blob;		/* its blob, for bytes_read */
	uint64_t bytes_before, bytes_total;
	struct shift_oci_diag *diag;
	struct strset layer_paths;     /* flat: what this layer made */
	struct dirtime *dirs;
	size_t n_dirs, cap_dirs;
	char *pcache_path;	       /* last parent opened */
	int pcache_fd;
	char path[PATH_MAX];	       /* normalised entry path */
	char link[PATH_MAX];	       /* normalised hard link target */
	unsigned char xbuf[65536];     /* translated xattr values */
	char ebuf[4 * PATH_MAX];       /* an escaped name, for debug lines */
};

static bool dry(const struct xctx *x)
{
	return x->flags & SHIFT_LAYER_DRY_RUN;
}

static void emit(struct xctx *x, const char *what, int64_t size)
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
static const char *esc(struct xctx *x, const char *s)
{
	shift_escape_to(x->ebuf, sizeof(x->ebuf), s ? s : "");
	return x->ebuf;
}

static int fail(struct xctx *x, int err, const char *where, const char *why)
{
	if (x->diag && !x->diag->where && !x->diag->why) {
		x->diag->where = where ? strdup(where) : NULL;
		x->diag->why = why;
	}
	return err;
}

/*
 * fail() with a reason made at run time: why lives in where's allocation
 * (after its NUL) and goes away with it in shift_oci_diag_clear(), which
 * resets both.  With replace, an earlier failure is overwritten.
 */
_printf_(5, 6) static int fail_fmt(struct xctx *x, int err, bool replace,
				   const char *where, const char *fmt, ...)
{
	_cleanup_free_ char *why = NULL;
	size_t wlen = strlen(where) + 1;
	va_list ap;
	char *buf;
	int n;

	if (!x->diag || (!replace && (x->diag->where || x->diag->why)))
		return err;
	va_start(ap, fmt);
	n = vasprintf(&why, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	buf = malloc(wlen + strlen(why) + 1);
	if (!buf)
		return -ENOMEM;
	shift_oci_diag_clear(x->diag);
	memcpy(buf, where, wlen);
	strcpy(buf + wlen, why);
	x->diag->where = buf;
	x->diag->why = buf + wlen;
	return err;
}

/*
 * The one wording for an id the entry can't have, in both unpacks: ids
 * 2^32-1 and above are no id at all (the kernel's "invalid" id), others
 * may lack an image under the map.  what: "uid", "gid", "ACL entry's
 * uid"...
 */
static int fail_id(struct xctx *x, const char *what, int64_t id, int r)
{
	if (r == -EINVAL)
		return fail_fmt(x, -ERANGE, false, x->path,
				"its %s is not a valid id: %" PRId64, what, id);
	return fail_fmt(x, -ERANGE, false, x->path,
			"its %s has no image under the map: %" PRId64, what, id);
}

static void pcache_drop(struct xctx *x)
{
	free(x->pcache_path);
	x->pcache_path = NULL;
	x->pcache_fd = safe_close(x->pcache_fd);
}

static void xctx_done(struct xctx *x)
{
	pcache_drop(x);
	strset_clear(&x->layer_paths);
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
			*why = "path contains '..' (refusing to extract outside the root)";
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

static int open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.resolve = RESOLVE_SAFE,
	};
	int fd = sys_openat2(rootfd, *path ? path : ".", &how);

	return fd < 0 ? negative_errno() : fd;
}

/* -EINVAL: not an id at all; -ERANGE: no image under the map. */
static int map_id(const struct xctx *x, enum shift_id_kind kind, int64_t id,
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

static int root_owner(const struct xctx *x, uid_t *uid, gid_t *gid)
{
	uint32_t u = 0, g = 0;

	if (map_id(x, SHIFT_UID, 0, &u) < 0 || map_id(x, SHIFT_GID, 0, &g) < 0)
		return -ERANGE;
	*uid = u;
	*gid = g;
	return 0;
}

/* Remove name under dfd, recursively, never following symlinks. */
static int rm_rf_at(int dfd, const char *name)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd, r = 0;

	if (unlinkat(dfd, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return negative_errno();
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = rm_rf_at(dirfd(d), de->d_name);
		if (r < 0)
			return r;
	}
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
		return negative_errno();
	return 0;
}

static int rm_rf(const char *path)
{
	char copy[PATH_MAX];
	char *slash;
	_cleanup_close_ int dfd = -EBADF;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	slash = strrchr(copy, '/');
	if (!slash)
		return rm_rf_at(AT_FDCWD, copy);
	*slash = '\0';
	dfd = open(*copy ? copy : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	return rm_rf_at(dfd, slash + 1);
}

/*
 * Why opening path beneath rootfd failed with ENOTDIR/ELOOP: the first
 * component that is a symlink or not a directory (messages only; stops at
 * the first non-directory, so nothing outside the root is looked at).
 */
static int why_notdir(int rootfd, const char *path)
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
static int drop_inherited_acls(int fd, int pfd, const char *name, bool is_dir)
{
	static const char *const keys[] = { "system.posix_acl_access",
					     "system.posix_acl_default" };
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
 * host's).  ACLs go with drop_inherited_acls().
 */
static int drop_lower_xattrs(struct xctx *x, int fd)
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
static int open_parent(struct xctx *x, const char *parent, bool create,
		       const char *entry)
{
	_cleanup_close_ int fd = -EBADF;
	uid_t ru;
	gid_t rg;

	if (x->pcache_path && !strcmp(x->pcache_path, parent))
		return x->pcache_fd;
	pcache_drop(x);
	fd = open_beneath(x->rootfd, parent, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT && create) {
		char walk[PATH_MAX];
		char *p = walk, *slash;

		if (root_owner(x, &ru, &rg) < 0)
			return fail(x, -ERANGE, entry,
				    "uid/gid 0 has no image under the map (needed for implied directories)");
		snprintf(walk, sizeof(walk), "%s", parent);
		fd = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return negative_errno();
		for (;;) {
			int next;

			slash = strchr(p, '/');
			if (slash)
				*slash = '\0';
			next = open_beneath(fd, p, O_RDONLY | O_DIRECTORY);
			if (next == -ENOENT) {
				if (mkdirat(fd, p, 0700) < 0)
					return fail(x, negative_errno(), entry,
						    "cannot create a parent directory");
				next = open_beneath(fd, p,
						    O_RDONLY | O_DIRECTORY);
				/*
				 * Exactly 0755 0:0 (mapped), whatever the
				 * umask, a setgid parent (group, setgid
				 * bit) or a default ACL would give it.
				 */
				if (next >= 0) {
					int q = drop_inherited_acls(next, -EBADF,
								    NULL, true);

					if (q < 0 || fchown(next, ru, rg) < 0 ||
					    fchmod(next, 0755) < 0) {
						q = q < 0 ? q : negative_errno();
						safe_close(next);
						return fail(x, q, entry,
							    "cannot create a parent directory");
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
		fd = why_notdir(x->rootfd, parent);
	if (fd == -ELOOP)
		return fail(x, -ELOOP, entry,
			    "path goes through a symbolic link (refusing to follow it)");
	if (fd == -ENOTDIR)
		return fail(x, -ENOTDIR, entry, "a parent is not a directory");
	if (fd == -EXDEV)
		return fail(x, -EXDEV, entry, "path escapes the root");
	if (fd < 0)
		return fail(x, fd, entry, "cannot open the parent directory");
	x->pcache_path = strdup(parent);
	if (!x->pcache_path)
		return -ENOMEM;
	x->pcache_fd = TAKE_FD(fd);
	return x->pcache_fd;
}

/* Make room for a new entry name in pfd: keep a directory if want_dir. */
static int make_room(struct xctx *x, int pfd, const char *name, bool want_dir,
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
		r = rm_rf_at(pfd, name);
		return r;
	}
	return unlinkat(pfd, name, 0) < 0 ? negative_errno() : 0;
}

/* ------------------------------------------------------------------ */
/* Metadata                                                            */

/* An xattr we never take from a layer (it would steer overlayfs). */
static bool xattr_forbidden(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) ||
	       !strncmp(name, "user.overlay.", 13);
}

/* POSIX.1e ACL entries of the tar (SCHILY.acl.*) as a kernel xattr value. */
static int acl_to_xattr(struct archive_entry *e, int type, unsigned char *out,
			size_t size, size_t *ret_len)
{
	struct {
		uint16_t tag, perm;
		uint32_t id;
	} ents[512];
	size_t n = 0, len;
	int etype, perm, tag, qual;
	const char *name;

	if (archive_entry_acl_reset(e, type) <= 0)
		return 0;
	while (archive_entry_acl_next(e, type, &etype, &perm, &tag, &qual,
				      &name) == ARCHIVE_OK) {
		uint16_t t;

		switch (tag) {
		case ARCHIVE_ENTRY_ACL_USER_OBJ: t = 0x01; break;
		case ARCHIVE_ENTRY_ACL_USER: t = 0x02; break;
		case ARCHIVE_ENTRY_ACL_GROUP_OBJ: t = 0x04; break;
		case ARCHIVE_ENTRY_ACL_GROUP: t = 0x08; break;
		case ARCHIVE_ENTRY_ACL_MASK: t = 0x10; break;
		case ARCHIVE_ENTRY_ACL_OTHER: t = 0x20; break;
		default: return -EINVAL;
		}
		if (n == ARRAY_SIZE(ents))
			return -E2BIG;
		ents[n].tag = t;
		ents[n].perm = (uint16_t)(perm & 7);
		ents[n].id = (t == 0x02 || t == 0x08) ? (uint32_t)qual
						       : SHIFT_ID_NONE;
		n++;
	}
	if (n == 0)
		return 0;
	/* Kernel order: by tag, then qualifier (insertion sort, n small). */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 &&
		     (ents[j - 1].tag > ents[j].tag ||
		      (ents[j - 1].tag == ents[j].tag &&
		       ents[j - 1].id > ents[j].id)); j--) {
			__typeof__(ents[0]) t = ents[j];

			ents[j] = ents[j - 1];
			ents[j - 1] = t;
		}
	len = 4 + 8 * n;
	if (len > size)
		return -E2BIG;
	out[0] = 2;
	out[1] = out[2] = out[3] = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = out + 4 + 8 * i;

		p[0] = ents[i].tag & 0xff;
		p[1] = ents[i].tag >> 8;
		p[2] = ents[i].perm & 0xff;
		p[3] = ents[i].perm >> 8;
		p[4] = ents[i].id & 0xff;
		p[5] = (ents[i].id >> 8) & 0xff;
		p[6] = (ents[i].id >> 16) & 0xff;
		p[7] = ents[i].id >> 24;
	}
	*ret_len = len;
	return 1;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * Why the kernel would refuse a POSIX ACL xattr value (posix_acl_valid()
 * and posix_acl_from_xattr() say only EINVAL), or NULL when it is valid:
 * checked before it is translated or set, so both unpacks name the same
 * reason.
 */
static const char *acl_invalid(const unsigned char *v, size_t len)
{
	unsigned seen = 0, last_tag = 0;
	uint32_t last_id = 0;
	bool named = false;

	if (len < 4 || (len - 4) % 8)
		return "its length is not a header and whole entries";
	if (le32(v) != 2)
		return "unknown ACL version (not 2)";
	for (const unsigned char *p = v + 4; p < v + len; p += 8) {
		unsigned tag = (unsigned)p[0] | (unsigned)p[1] << 8;
		unsigned perm = (unsigned)p[2] | (unsigned)p[3] << 8;
		uint32_t id = le32(p + 4);

		switch (tag) {
		case SHIFT_ACL_USER:
		case SHIFT_ACL_GROUP:
			if (id == SHIFT_ID_NONE)
				return "a named user or group entry without a numeric id";
			named = true;
			break;
		case SHIFT_ACL_USER_OBJ:
		case SHIFT_ACL_GROUP_OBJ:
		case SHIFT_ACL_MASK:
		case SHIFT_ACL_OTHER:
			if (seen & tag)
				return "a user::, group::, mask:: or other:: entry given twice";
			break;
		default:
			return "an entry of unknown type";
		}
		if (perm & ~7u)
			return "permissions other than rwx";
		if (tag < last_tag ||
		    (tag == last_tag && (tag == SHIFT_ACL_USER ||
					 tag == SHIFT_ACL_GROUP) &&
		     id <= last_id))
			return "entries out of order or a named entry given twice";
		seen |= tag;
		last_tag = tag;
		last_id = id;
	}
	if (len == 4)
		return NULL; /* empty: no ACL */
	if (!(seen & SHIFT_ACL_USER_OBJ) || !(seen & SHIFT_ACL_GROUP_OBJ) ||
	    !(seen & SHIFT_ACL_OTHER))
		return "no user::, group:: or other:: entry";
	if (named && !(seen & SHIFT_ACL_MASK))
		return "no mask entry (required with named user or group entries)";
	return NULL;
}

/* A v3 file capability whose root id is no id at all (2^32-1). */
static bool fcaps_rootid_invalid(const unsigned char *v, size_t len)
{
	return len >= 24 && (le32(v) & 0xff000000u) == 0x03000000u &&
	       le32(v + 20) == SHIFT_ID_NONE;
}

/* Set one xattr on the new inode: by fd, or by name below pfd (symlinks). */
static int set_xattr(int fd, int pfd, const char *name, const char *key,
		     const void *value, size_t len)
{
	char proc[64 + NAME_MAX];

	if (fd >= 0)
		return fsetxattr(fd, key, value, len, 0) < 0 ? negative_errno()
							      : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", pfd, name);
	return lsetxattr(proc, key, value, len, 0) < 0 ? negative_errno() : 0;
}

/* Translate (flat with a map) and set one xattr value from the layer. */
static int apply_xattr(struct xctx *x, int fd, int pfd, const char *name,
		       const char *key, const void *value, size_t len)
{
	bool is_acl = !strcmp(key, "system.posix_acl_access") ||
		      !strcmp(key, "system.posix_acl_default");
	size_t out_len = len;
	char ekey[256];
	const char *why;
	int r;

	/* The name comes from the archive: escaped in messages. */
	shift_escape_to(ekey, sizeof(ekey), key);
	if (xattr_forbidden(key)) {
		sk_debug("%s: dropping xattr %s from the layer", esc(x, x->path),
			 ekey);
		return 0;
	}
	if (!strcmp(key, "security.selinux") &&
	    !(x->flags & SHIFT_LAYER_SELINUX_LABELS)) {
		sk_debug("%s: not applying the layer's SELinux label (host policy)",
			 esc(x, x->path));
		return 0;
	}
	if (is_acl && (why = acl_invalid(value, len)))
		return fail_fmt(x, -EINVAL, false, x->path,
				"invalid POSIX ACL in %s: %s", key, why);
	if (!strcmp(key, "security.capability") &&
	    fcaps_rootid_invalid(value, len))
		return fail_fmt(x, -ERANGE, false, x->path,
				"its file capability's root id is not a valid id: %" PRIu32,
				SHIFT_ID_NONE);
	if (x->map && is_acl) {
		if (len > sizeof(x->xbuf))
			return fail(x, -E2BIG, x->path, "ACL too large");
		struct unmapped um = { 0 };

		r = sk_layer_acl_shift(value, len, x->xbuf, x->map, &um);
		if (r == -ERANGE)
			return fail_fmt(x, r, false, x->path,
					"an ACL entry's uid/gid has no image under the map: %s:%" PRIu32 " in %s",
					um.kind == SHIFT_UID ? "user" : "group",
					um.id, key);
		if (r < 0)
			return fail_fmt(x, r, false, x->path,
					"invalid POSIX ACL in %s", key);
		value = x->xbuf;
	} else if (x->map && !strcmp(key, "security.capability")) {
		r = sk_layer_fcaps_shift(value, len, x->xbuf, &out_len, x->map);
		if (r == -ERANGE)
			return fail_fmt(x, r, false, x->path,
					"the file capability's root id has no image under the map: %" PRIu32,
					len >= 24 && (le32(value) & 0xff000000u) ==
							     0x03000000u
						? le32((const unsigned char *)value + 20)
						: 0);
		if (r < 0)
			return fail(x, r, x->path,
				    "malformed security.capability xattr");
		value = x->xbuf;
	}
	if (dry(x))
		return 0;
	r = set_xattr(fd, pfd, name, key, value, out_len);
	if (r == -EOPNOTSUPP && strncmp(key, "system.", 7) &&
	    strcmp(key, "security.capability")) {
		sk_debug("%s: xattr %s not supported here, skipped",
			 esc(x, x->path), ekey);
		return 0;
	}
	if (r < 0)
		return fail_fmt(x, r, false, x->path,
				"cannot set the extended attribute %s: %s", ekey,
				strerror(-r));
	return 0;
}

/*
 * Owner, mode, xattrs, ACLs, times of the inode just made: by fd when we
 * have one (files, directories), else by name below pfd.
 */
static int apply_meta(struct xctx *x, struct archive_entry *e, int fd, int pfd,
		      const char *name, bool is_dir)
{
	mode_t type = archive_entry_filetype(e);
	const char *key;
	const void *value;
	size_t len;
	uint32_t uid, gid;
	struct timespec ts[2];
	int r;

	/* What the parent passed on, before the archive's metadata. */
	if (type != AE_IFLNK && !dry(x)) {
		r = drop_inherited_acls(fd, pfd, name, is_dir);
		if (r < 0)
			return fail(x, r, x->path,
				    "cannot remove the ACLs inherited from the parent directory");
	}
	r = map_id(x, SHIFT_UID, archive_entry_uid(e), &uid);
	if (r < 0)
		return fail_id(x, "uid", archive_entry_uid(e), r);
	r = map_id(x, SHIFT_GID, archive_entry_gid(e), &gid);
	if (r < 0)
		return fail_id(x, "gid", archive_entry_gid(e), r);
	if (dry(x))
		r = 0;
	else if (fd >= 0)
		r = fchown(fd, uid, gid);
	else
		r = fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return fail(x, negative_errno(), x->path,
			    "cannot set the owner");
	/* After chown, which clears setuid/setgid. */
	if (type != AE_IFLNK && !dry(x)) {
		mode_t mode = archive_entry_perm(e) & 07777;

		r = fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, name, mode, 0);
		if (r < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot set the mode");
	}
	/* Then xattrs: chown would drop security.capability. */
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &value, &len) == ARCHIVE_OK) {
		r = apply_xattr(x, fd, pfd, name, key, value, len);
		if (r < 0)
			return r;
	}
	for (int pass = 0; pass < 2 && type != AE_IFLNK; pass++) {
		unsigned char acl[4 + 8 * 512];
		int t = pass ? ARCHIVE_ENTRY_ACL_TYPE_DEFAULT
			     : ARCHIVE_ENTRY_ACL_TYPE_ACCESS;

		if (pass && !is_dir)
			break;
		r = acl_to_xattr(e, t, acl, sizeof(acl), &len);
		if (r < 0)
			return fail(x, r, x->path, "unusable ACL in the layer");
		if (r == 0)
			continue;
		r = apply_xattr(x, fd, pfd, name,
				pass ? "system.posix_acl_default"
				     : "system.posix_acl_access",
				acl, len);
		if (r < 0)
			return r;
	}
	if (dry(x))
		return 0;
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
	if (is_dir) {
		/* Later entries would change it: set at the end. */
		if (x->n_dirs == x->cap_dirs) {
			size_t cap = x->cap_dirs ? 2 * x->cap_dirs : 256;
			struct dirtime *d = realloc(x->dirs, cap * sizeof(*d));

			if (!d)
				return -ENOMEM;
			x->dirs = d;
			x->cap_dirs = cap;
		}
		x->dirs[x->n_dirs].path = strdup(x->path);
		if (!x->dirs[x->n_dirs].path)
			return -ENOMEM;
		memcpy(x->dirs[x->n_dirs].ts, ts, sizeof(ts));
		x->n_dirs++;
		return 0;
	}
	r = fd >= 0 ? futimens(fd, ts)
		    : utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return fail(x, negative_errno(), x->path,
			    "cannot set the times");
	return 0;
}

static int set_dir_times(struct xctx *x)
{
	/* Deepest last-made first does not matter: times only. */
	for (size_t i = x->n_dirs; i-- > 0;) {
		int fd = open_beneath(x->rootfd, x->dirs[i].path,
				      O_RDONLY | O_DIRECTORY);

		/* Replaced or whited out later in the layer: skip. */
		if (fd < 0)
			continue;
		if (futimens(fd, x->dirs[i].ts) < 0) {
			int r = negative_errno();

			safe_close(fd);
			return fail(x, r, x->dirs[i].path,
				    "cannot set the times");
		}
		safe_close(fd);
	}
	for (size_t i = 0; i < x->n_dirs; i++)
		free(x->dirs[i].path);
	x->n_dirs = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Entries                                                             */

/*
 * The entry's data into fd.  The archive's declared size is trusted only
 * as far as the data bears it out: a plain file must get exactly that many
 * bytes (fewer means a corrupt header, e.g. the old GNU "realsize" field
 * that libarchive < 3.8 takes for the size of any entry: Go's nil-uid.tar
 * would be zero-padded to 2176 bytes instead of its 14), and a sparse
 * file's data blocks must lie within it; only a sparse file may end in a
 * hole, which ftruncate() makes.
 */
static int write_data(struct xctx *x, struct archive *a, int fd,
		      struct archive_entry *e)
{
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	bool sparse = archive_entry_sparse_count(e) > 0;
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	int r;

	if (size < 0)
		return fail(x, -EBADMSG, x->path,
			    "corrupt archive (negative file size)");
	for (;;) {
		r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return fail(x, -EBADMSG, x->path,
				    "corrupt or truncated archive");
		if (off < 0 || (uint64_t)off + len > (uint64_t)size)
			return fail(x, -EBADMSG, x->path,
				    "corrupt archive (file data beyond the size its header declares)");
		if (x->cancel && *x->cancel)
			return fail(x, -ECANCELED, x->path, "interrupted");
		if (fd < 0) { /* a dry run: checked, not written */
			off += (la_int64_t)len;
			len = 0;
		}
		while (len > 0) {
			ssize_t n = pwrite(fd, buf, len, off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return fail(x, n < 0 ? negative_errno() : -EIO,
					    x->path, "cannot write the file");
			buf = (const char *)buf + n;
			len -= (size_t)n;
			off += n;
		}
		if (off > end)
			end = off;
	}
	if (end < size && !sparse)
		return fail(x, -EBADMSG, x->path,
			    "corrupt archive (the file's data is shorter than the size its header declares)");
	/* A sparse file may end in a hole. */
	if (size > end && fd >= 0 && ftruncate(fd, size) < 0)
		return fail(x, negative_errno(), x->path,
			    "cannot write the file");
	return 0;
}

/* A whiteout entry ".wh.NAME" or the opaque marker, in parent pfd. */
static int do_whiteout(struct xctx *x, const char *parent, const char *name)
{
	bool opaque = !strcmp(name, WH_OPAQUE);
	const char *victim = name + strlen(WH_PREFIX);
	char victim_path[PATH_MAX];
	bool kept;
	int pfd, r;

	if (!opaque && !strncmp(name, WH_META, strlen(WH_META))) {
		sk_debug("%s: ignoring aufs metadata", esc(x, x->path));
		return 0;
	}
	if (!opaque && (!*victim || !strcmp(victim, ".") ||
			!strcmp(victim, "..")))
		return fail(x, -EPERM, x->path,
			    "whiteout of an invalid name");
	emit(x, opaque ? "opaque" : "whiteout", 0);
	if (dry(x))
		return 0;

	if (x->mode == XMODE_STORE) {
		pfd = open_parent(x, parent, true, x->path);
		if (pfd < 0)
			return pfd;
		if (opaque) {
			if (fsetxattr(pfd, OVL_OPAQUE, "y", 1, 0) < 0)
				return fail(x, negative_errno(), x->path,
					    "cannot mark the directory opaque (needs trusted.* xattrs: root, and a filesystem with xattrs)");
			return 0;
		}
		r = make_room(x, pfd, victim, false, &kept);
		if (r < 0)
			return fail(x, r, x->path, "cannot replace an entry");
		if (mknodat(pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot create the overlay whiteout (needs CAP_MKNOD)");
		return 0;
	}

	/* Flat: delete what lower layers made. */
	pfd = open_parent(x, parent, false, x->path);
	if (pfd == -ENOENT) {
		shift_oci_diag_clear(x->diag);
		return 0;
	}
	if (pfd < 0)
		return pfd;
	if (!opaque) {
		snprintf(victim_path, sizeof(victim_path), "%s%s%s", parent,
			 *parent ? "/" : "", victim);
		if (strset_has(&x->layer_paths, victim_path))
			return 0;
		r = make_room(x, pfd, victim, false, &kept);
		if (r < 0)
			return fail(x, r, x->path, "cannot apply the whiteout");
		return 0;
	} else {
		_cleanup_closedir_ DIR *d = NULL;
		struct dirent *de;
		int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return negative_errno();
		d = fdopendir(fd);
		if (!d) {
			safe_close(fd);
			return negative_errno();
		}
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(victim_path, sizeof(victim_path), "%s%s%s",
				 parent, *parent ? "/" : "", de->d_name);
			if (strset_has(&x->layer_paths, victim_path))
				continue;
			r = rm_rf_at(dirfd(d), de->d_name);
			if (r < 0)
				return fail(x, r, x->path,
					    "cannot apply the opaque whiteout");
		}
		/* Below the parent, nothing cached is valid any more. */
		pcache_drop(x);
	}
	return 0;
}

/*
 * A dry run's checks of one entry: what needs no tree (the tree-dependent
 * ones, symlinks on the way and hard link targets, can't be made without
 * building it).
 */
static int dry_entry(struct xctx *x, struct archive *a,
		     struct archive_entry *e, const char *hardlink, mode_t type)
{
	const char *why = NULL;
	int r;

	if (hardlink) {
		r = sk_layer_path_normalise(hardlink, x->link, sizeof(x->link),
					    &why);
		if (r < 0 || !*x->link)
			return fail(x, r < 0 ? r : -EPERM, x->path,
				    r < 0 ? "hard link target outside the root"
					  : "hard link to the root");
		return 0;
	}
	switch (type) {
	case AE_IFREG:
		/* The data is read (sizes checked) and dropped. */
		r = write_data(x, a, -EBADF, e);
		if (r < 0)
			return r;
		break;
	case AE_IFDIR:
	case AE_IFIFO:
		break;
	case AE_IFLNK:
		if (!archive_entry_symlink(e) || !*archive_entry_symlink(e))
			return fail(x, -EINVAL, x->path,
				    "symbolic link without a target");
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		if (type == AE_IFCHR && archive_entry_rdevmajor(e) == 0 &&
		    archive_entry_rdevminor(e) == 0)
			return fail(x, -EPERM, x->path,
				    "a 0/0 character device is an overlay whiteout, not content (refusing it)");
		if (x->flags & SHIFT_LAYER_NO_DEVICES)
			return fail(x, -EPERM, x->path,
				    "device nodes are not allowed (--no-devices)");
		break;
	default:
		return fail(x, -EOPNOTSUPP, x->path,
			    "unsupported entry type (sockets cannot be extracted)");
	}
	return apply_meta(x, e, -EBADF, -EBADF, NULL, type == AE_IFDIR);
}

static int do_entry(struct xctx *x, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e), *why = NULL;
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	_cleanup_close_ int fd = -EBADF;
	char parent[PATH_MAX], *slash, *name;
	bool kept = false;
	int pfd, r;

	if (x->cancel && *x->cancel)
		return fail(x, -ECANCELED, raw ? raw : "(no name)",
			    "interrupted");
	r = sk_layer_path_normalise(raw, x->path, sizeof(x->path), &why);
	if (r < 0)
		return fail(x, r, raw ? raw : "(no name)", why);

	if (!*x->path) {
		/* The root itself: only its metadata. */
		if (type != AE_IFDIR)
			return fail(x, -EINVAL, raw,
				    "the root entry is not a directory");
		emit(x, "dir", 0);
		if (dry(x))
			return apply_meta(x, e, -EBADF, -EBADF, NULL, true);
		fd = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return negative_errno();
		if (x->mode == XMODE_FLAT &&
		    (r = strset_add(&x->layer_paths, "")) < 0)
			return r;
		if (x->mode == XMODE_FLAT && (r = drop_lower_xattrs(x, fd)) < 0)
			return fail(x, r, ".",
				    "cannot remove a lower layer's extended attributes");
		return apply_meta(x, e, fd, -EBADF, NULL, true);
	}

	slash = strrchr(x->path, '/');
	if (slash) {
		memcpy(parent, x->path, (size_t)(slash - x->path));
		parent[slash - x->path] = '\0';
		name = slash + 1;
	} else {
		parent[0] = '\0';
		name = x->path;
	}

	if (!strncmp(name, WH_PREFIX, strlen(WH_PREFIX)))
		return do_whiteout(x, parent, name);

	if (x->mode == XMODE_FLAT &&
	    (r = strset_add(&x->layer_paths, x->path)) < 0)
		return r;

	if (hardlink) {
		emit(x, "hardlink", 0);
	} else {
		emit(x, type == AE_IFREG   ? "file"
			: type == AE_IFDIR  ? "dir"
			: type == AE_IFLNK  ? "symlink"
			: type == AE_IFIFO  ? "fifo"
			: type == AE_IFCHR  ? "chardev"
			: type == AE_IFBLK  ? "blockdev"
					    : "other",
		     archive_entry_size(e));
	}
	if (dry(x))
		return dry_entry(x, a, e, hardlink, type);

	pfd = open_parent(x, parent, true, x->path);
	if (pfd < 0)
		return pfd;

	if (hardlink) {
		char tparent[PATH_MAX];
		_cleanup_close_ int tpfd = -EBADF;
		const char *tname;

		r = sk_layer_path_normalise(hardlink, x->link, sizeof(x->link), &why);
		if (r < 0 || !*x->link)
			return fail(x, r < 0 ? r : -EPERM, x->path,
				    r < 0 ? "hard link target outside the root"
					  : "hard link to the root");
		slash = strrchr(x->link, '/');
		if (slash) {
			memcpy(tparent, x->link, (size_t)(slash - x->link));
			tparent[slash - x->link] = '\0';
			tname = slash + 1;
		} else {
			tparent[0] = '\0';
			tname = x->link;
		}
		tpfd = open_beneath(x->rootfd, tparent,
				    O_RDONLY | O_DIRECTORY);
		if (tpfd == -ENOTDIR || tpfd == -ELOOP)
			tpfd = why_notdir(x->rootfd, tparent);
		if (tpfd < 0)
			return fail(x, tpfd, x->path,
				    tpfd == -ELOOP ? "hard link target goes through a symbolic link"
				    : tpfd == -ENOTDIR ? "hard link target goes through a non-directory"
						       : "hard link target not found in the layer");
		if (!strcmp(x->link, x->path))
			return 0;
		r = make_room(x, pfd, name, false, &kept);
		if (r < 0)
			return fail(x, r, x->path, "cannot replace an entry");
		/* flags 0: a symlink target is linked, not followed. */
		if (linkat(tpfd, tname, pfd, name, 0) < 0)
			return fail(x, negative_errno(), x->path,
				    errno == ENOENT ? "hard link target not found in the layer"
						    : "cannot create the hard link");
		return 0;
	}

	switch (type) {
	case AE_IFREG:
		for (int tries = 0;; tries++) {
			fd = openat(pfd, name,
				    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					    O_CLOEXEC | O_NOCTTY,
				    0600);
			if (fd >= 0 || errno != EEXIST || tries)
				break;
			r = make_room(x, pfd, name, false, &kept);
			if (r < 0)
				return fail(x, r, x->path,
					    "cannot replace an entry");
		}
		if (fd < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot create the file");
		r = write_data(x, a, fd, e);
		if (r < 0)
			return r;
		return apply_meta(x, e, fd, pfd, name, false);

	case AE_IFDIR:
		if (mkdirat(pfd, name, 0700) < 0) {
			if (errno != EEXIST)
				return fail(x, negative_errno(), x->path,
					    "cannot create the directory");
			r = make_room(x, pfd, name, true, &kept);
			if (r < 0)
				return fail(x, r, x->path,
					    "cannot replace an entry");
			if (!kept && mkdirat(pfd, name, 0700) < 0)
				return fail(x, negative_errno(), x->path,
					    "cannot create the directory");
			/* make_room may have dropped the cached parent. */
			pfd = open_parent(x, parent, false, x->path);
			if (pfd < 0)
				return pfd;
		}
		fd = openat(pfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot open the new directory");
		if (kept && x->mode == XMODE_FLAT &&
		    (r = drop_lower_xattrs(x, fd)) < 0)
			return fail(x, r, x->path,
				    "cannot remove a lower layer's extended attributes");
		return apply_meta(x, e, fd, pfd, name, true);

	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);

		if (!target || !*target)
			return fail(x, -EINVAL, x->path,
				    "symbolic link without a target");
		for (int tries = 0;; tries++) {
			r = symlinkat(target, pfd, name);
			if (r == 0 || errno != EEXIST || tries)
				break;
			r = make_room(x, pfd, name, false, &kept);
			if (r < 0)
				return fail(x, r, x->path,
					    "cannot replace an entry");
		}
		if (r < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot create the symbolic link");
		return apply_meta(x, e, -EBADF, pfd, name, false);
	}

	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO: {
		dev_t dev = 0;

		if (type != AE_IFIFO) {
			dev = makedev(archive_entry_rdevmajor(e),
				      archive_entry_rdevminor(e));
			if (type == AE_IFCHR && dev == makedev(0, 0))
				return fail(x, -EPERM, x->path,
					    "a 0/0 character device is an overlay whiteout, not content (refusing it)");
			if (x->flags & SHIFT_LAYER_NO_DEVICES)
				return fail(x, -EPERM, x->path,
					    "device nodes are not allowed (--no-devices)");
		}
		for (int tries = 0;; tries++) {
			r = mknodat(pfd, name, (type == AE_IFCHR ? S_IFCHR :
						type == AE_IFBLK ? S_IFBLK :
								   S_IFIFO) |
						       0600,
				    dev);
			if (r == 0 || errno != EEXIST || tries)
				break;
			r = make_room(x, pfd, name, false, &kept);
			if (r < 0)
				return fail(x, r, x->path,
					    "cannot replace an entry");
		}
		if (r < 0 && errno == EPERM && type != AE_IFIFO)
			return fail(x, -EPERM, x->path,
				    "device node, and we may not create device nodes here (unprivileged: needs CAP_MKNOD)");
		if (r < 0)
			return fail(x, negative_errno(), x->path,
				    "cannot create the node");
		return apply_meta(x, e, -EBADF, pfd, name, false);
	}

	default:
		return fail(x, -EOPNOTSUPP, x->path,
			    "unsupported entry type (sockets cannot be extracted)");
	}
}

/* ------------------------------------------------------------------ */
/* One layer blob                                                      */

static la_ssize_t blob_read_cb(struct archive *a, void *data,
			       const void **buf)
{
	struct sk_blob *b = data;
	ssize_t n = sk_blob_read(b);

	if (n < 0) {
		archive_set_error(a, (int)-n, "%s",
				  n == -EBADMSG ? "blob larger than its descriptor says"
						: strerror((int)-n));
		return -1;
	}
	*buf = b->buf;
	return n;
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void blob_freep(struct sk_blob **b)
{
	sk_blob_free(*b);
}

/*
 * The uncompressed stream of a layer, hashed for the config's diff_id in
 * the same pass as the extraction.  Two archive readers are chained:
 * "outer" reads the blob (which sk_blob hashes for the layer digest),
 * undoes the compression the media type names and hands the result out
 * through libarchive's raw format; the tar reader takes outer's data
 * blocks through unz_read_cb(), which hashes them.  So every byte the tar
 * reader sees is hashed exactly once, without a copy, and what follows
 * the tar's end-of-archive blocks is hashed by unz_drain() at the end.
 */
struct unz {
	struct archive *outer;
	EVP_MD_CTX *md;
	uint64_t size;		/* uncompressed bytes hashed so far */
	int err;		/* outer's failure, or 0 */
	const char *why;	/* why unz_open() failed */
	bool eof;
};

static void unz_done(struct unz *u)
{
	if (u->outer)
		archive_read_free(u->outer);
	EVP_MD_CTX_free(u->md);
	*u = (struct unz){ 0 };
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * Set up outer over blob b: the one decompression filter the media type
 * names ("+gzip", Docker's ".tar.gzip", "+zstd"), none for plain tar.
 * -ENOMEM, or -EBADMSG when the blob doesn't start as that compression.
 */
static int unz_open(struct unz *u, struct sk_blob *b, const char *media_type)
{
	struct archive_entry *e;
	bool compressed = true;
	int ar;

	u->md = EVP_MD_CTX_new();
	if (!u->md || !EVP_DigestInit_ex(u->md, EVP_sha256(), NULL))
		return -ENOMEM;
	u->outer = archive_read_new();
	if (!u->outer)
		return -ENOMEM;
	if (has_suffix(media_type, "+gzip") || has_suffix(media_type, ".gzip"))
		archive_read_support_filter_gzip(u->outer);
	else if (has_suffix(media_type, "+zstd"))
		archive_read_support_filter_zstd(u->outer);
	else
		compressed = false;
	archive_read_support_format_raw(u->outer);
	if (archive_read_open(u->outer, b, NULL, blob_read_cb, NULL) !=
	    ARCHIVE_OK) {
		sk_debug("decompressing: %s", archive_error_string(u->outer));
		u->why = "corrupt or truncated archive";
		return (u->err = -EBADMSG);
	}
	/* Without a matching filter libarchive passes the bytes through. */
	if (compressed && archive_filter_count(u->outer) < 2) {
		u->why = "corrupt archive (not compressed as its media type says)";
		return (u->err = -EBADMSG);
	}
	ar = archive_read_next_header(u->outer, &e);
	if (ar == ARCHIVE_EOF)
		u->eof = true; /* an empty stream */
	else if (ar < ARCHIVE_WARN) {
		sk_debug("decompressing: %s", archive_error_string(u->outer));
		u->why = "corrupt or truncated archive";
		return (u->err = -EBADMSG);
	}
	return 0;
}

/* The next block of uncompressed bytes, hashed; 0 at the end. */
static la_ssize_t unz_next(struct unz *u, const void **buf)
{
	size_t len = 0;
	la_int64_t off;
	int ar;

	if (u->err)
		return -1;
	while (!u->eof) {
		ar = archive_read_data_block(u->outer, buf, &len, &off);
		if (ar == ARCHIVE_EOF) {
			u->eof = true;
			break;
		}
		if (ar < ARCHIVE_WARN) {
			int e = archive_errno(u->outer);

			sk_debug("decompressing: %s",
				 archive_error_string(u->outer));
			u->err = e == ENOMEM || e == EIO ? -e : -EBADMSG;
			return -1;
		}
		if (len > 0) {
			EVP_DigestUpdate(u->md, *buf, len);
			u->size += len;
			return (la_ssize_t)len;
		}
	}
	return 0;
}

static la_ssize_t unz_read_cb(struct archive *a, void *data,
			      const void **buf)
{
	struct unz *u = data;
	la_ssize_t n = unz_next(u, buf);

	if (n < 0)
		archive_set_error(a, -u->err, "%s",
				  archive_error_string(u->outer)
					  ? archive_error_string(u->outer)
					  : "cannot decompress the layer");
	return n;
}

/* Hash what the tar reader left of the stream: 0, or outer's error. */
static int unz_drain(struct unz *u)
{
	const void *buf;
	la_ssize_t n;

	while ((n = unz_next(u, &buf)) > 0)
		;
	return n < 0 ? u->err : 0;
}

/* The diff_id mismatch, with both digests (replaces any entry error). */
static int fail_diff_id(struct xctx *x, const struct sk_oci_layer *l,
			const char *got)
{
	return fail_fmt(x, -EBADMSG, true, l->digest,
			"diff_id mismatch: the uncompressed layer hashes to sha256:%s, the config's diff_id is %s",
			got, l->diff_id);
}

/*
 * After the tar reader is done with result r: hash the rest of the
 * uncompressed stream, check the blob against its digest, then the
 * stream against the config's diff_id.  A damaged blob or a diff_id
 * mismatch explains a failure best, so either replaces what r reported.
 * Returns r when both check out.
 */
static int verify_layer(struct xctx *x, const struct sk_oci_layer *l,
			struct unz *u, struct sk_blob *b, int r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char got[2 * EVP_MAX_MD_SIZE + 1];
	unsigned len = 0;
	int rz, rb;

	rz = unz_drain(u);
	rb = sk_blob_finish(b);
	if (rb == -EBADMSG) {
		shift_oci_diag_clear(x->diag);
		return fail(x, rb, l->digest, "digest mismatch");
	}
	if (rb < 0)
		return r < 0 ? r : fail(x, rb, l->digest, "cannot read the blob");
	if (rz < 0)
		return r < 0 ? r
			     : fail(x, rz, l->digest,
				    "corrupt or truncated archive (after the end of the tar)");
	/* Refused when the image was opened; a library user may differ. */
	if (!sk_oci_digest_valid(l->diff_id))
		return r < 0 ? r
			     : fail(x, -EOPNOTSUPP, l->digest,
				    "no sha256 diff_id for this layer in the config");
	if (!EVP_DigestFinal_ex(u->md, md, &len))
		return r < 0 ? r : -EIO;
	for (unsigned i = 0; i < len; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, l->diff_id + 7) != 0) {
		sk_debug("%s: %" PRIu64 " uncompressed bytes hash to sha256:%s, diff_id %s",
			 l->digest, u->size, got, l->diff_id);
		return fail_diff_id(x, l, got);
	}
	return r;
}

/* Open layer l's blob and its uncompressed stream: 0, or the failure,
 * reported (a blob that isn't what its media type says is checked against
 * its digest first: verify_layer()). */
static int layer_stream_open(struct xctx *x, const struct shift_oci_image *img,
			     const struct sk_oci_layer *l, struct sk_blob **b,
			     struct unz *u)
{
	int r;

	r = sk_blob_open(img, l->digest, l->size, b);
	if (r < 0)
		return fail(x, r, l->digest, "cannot open the layer blob");
	r = unz_open(u, *b, l->media_type);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return verify_layer(x, l, u, *b, fail(x, r, l->digest, u->why));
	return 0;
}

/* Extract layer i of img below x->rootfd. */
static int extract_layer(struct xctx *x, const struct shift_oci_image *img,
			 unsigned i)
{
	_cleanup_(blob_freep) struct sk_blob *b = NULL;
	_cleanup_(unz_done) struct unz u = { 0 };
	_cleanup_(archive_freep) struct archive *a = NULL;
	const struct sk_oci_layer *l = &img->layers[i];
	struct archive_entry *e;
	int r, ar;

	r = layer_stream_open(x, img, l, &b, &u);
	if (r < 0)
		return r;
	x->layer = i;
	x->layer_digest = l->digest;
	x->blob = b;
	a = archive_read_new();
	if (!a)
		return -ENOMEM;
	/* Only what OCI layers use: tar (the compression is outer's). */
	archive_read_support_format_tar(a);
	if (archive_read_open(a, &u, NULL, unz_read_cb, NULL) != ARCHIVE_OK)
		return verify_layer(x, l, &u, b,
				    fail(x, -EBADMSG, l->digest,
					 "corrupt or truncated archive (not a tar stream)"));
	strset_clear(&x->layer_paths);
	for (;;) {
		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			sk_debug("%s: %s", l->digest,
				 esc(x, archive_error_string(a)));
			return verify_layer(x, l, &u, b,
					    fail(x, -EBADMSG, l->digest,
						 "corrupt or truncated archive"));
		}
		r = do_entry(x, a, e);
		if (r < 0)
			return verify_layer(x, l, &u, b, r);
	}
	r = verify_layer(x, l, &u, b, 0);
	x->blob = NULL;
	x->bytes_before += l->size;
	if (r < 0)
		return r;
	return dry(x) ? 0 : set_dir_times(x);
}

/*
 * A layer already in the store was verified when it was made, against
 * the diff_id its layer.json records.  Another image may name the same
 * blob with another diff_id: then hash the blob's uncompressed stream
 * again (no extraction) and refuse the image if it doesn't match.
 */
static int check_stored_diff_id(struct xctx *x,
				const struct shift_oci_image *img, unsigned i,
				const char *dir)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_(blob_freep) struct sk_blob *b = NULL;
	_cleanup_(unz_done) struct unz u = { 0 };
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct json_object *o = NULL, *v;
	bool same = false;
	int r;

	if (asprintf(&path, "%s/layer.json", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd >= 0)
		o = json_object_from_fd(fd);
	if (o && json_object_object_get_ex(o, "diffID", &v) &&
	    json_object_is_type(v, json_type_string) && l->diff_id &&
	    !strcmp(json_object_get_string(v), l->diff_id))
		same = true;
	if (o)
		json_object_put(o);
	if (same)
		return 0;
	sk_debug("%s: stored layer records another diff_id, hashing the blob",
		 l->digest);
	r = layer_stream_open(x, img, l, &b, &u);
	if (r < 0)
		return r;
	return verify_layer(x, l, &u, b, 0);
}

/* The root directory's defaults when the layer has no "./" entry. */
static int init_root(struct xctx *x)
{
	uid_t u;
	gid_t g;
	int r;

	if (root_owner(x, &u, &g) < 0)
		return fail(x, -ERANGE, ".",
			    "uid/gid 0 has no image under the map");
	/* The temporary root is made below DEST's parent or STORE/tmp. */
	r = drop_inherited_acls(x->rootfd, -EBADF, NULL, true);
	if (r < 0)
		return fail(x, r, ".",
			    "cannot remove the ACLs inherited from the parent directory");
	if (fchown(x->rootfd, u, g) < 0 || fchmod(x->rootfd, 0755) < 0)
		return fail(x, negative_errno(), ".",
			    "cannot set the owner of the root");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Temporary directories, committed by rename                          */

/*
 * Temporaries are locked: the unpack that makes one holds flock(LOCK_EX)
 * on it until it is renamed into place or removed, so one that nobody
 * holds was left by an interrupted run (SIGKILL, a crash, a power loss)
 * and may go.  A cleaner may take a directory between our mkdtemp() and
 * our lock, so after locking we check that its name still leads to the
 * directory we hold, and try again with a new name if not.
 */
static int mkdtemp_locked(char *templ, int *ret_fd)
{
	_cleanup_free_ char *pattern = strdup(templ);

	if (!pattern)
		return -ENOMEM;
	for (int tries = 0; tries < 8; tries++) {
		struct stat a, b;
		int fd;

		strcpy(templ, pattern);
		if (!mkdtemp(templ))
			return negative_errno();
		fd = open(templ, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 &&
		    lstat(templ, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			*ret_fd = fd;
			return 0;
		}
		safe_close(fd);
	}
	return -EBUSY;
}

/*
 * Remove the stale temporaries in dir: entries starting with prefix
 * (all, for "") that are directories nobody holds locked.  Returns the
 * number removed (or, dry, that would be).
 */
static int remove_stale(const char *dir, const char *prefix, bool dry_run,
			void (*on_remove)(const struct shift_layer_gc_event *,
					  void *),
			void *userdata)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	size_t plen = strlen(prefix);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		int fd, r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    strncmp(de->d_name, prefix, plen))
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			/* A running unpack's. */
			safe_close(fd);
			continue;
		}
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			safe_close(fd);
			return -ENOMEM;
		}
		if (on_remove)
			on_remove(&(struct shift_layer_gc_event){
					  .kind = "temporary", .path = path },
				  userdata);
		sk_debug("removing the stale temporary '%s'", path);
		r = dry_run ? 0 : rm_rf_at(dirfd(d), de->d_name);
		safe_close(fd);
		if (r < 0)
			return r;
		n++;
	}
	return n;
}

/*
 * "DIR/.NAME.shift-layer-XXXXXX" beside path, made and locked: the path
 * in *ret_tmp, the locked fd in *ret_fd.  Stale ones of earlier runs for
 * the same destination are removed first.
 */
static int temp_beside(const char *path, char **ret_tmp, int *ret_fd)
{
	_cleanup_free_ char *copy = strdup(path), *prefix = NULL;
	char *slash, *t = NULL;
	const char *dir, *base;
	int r;

	if (!copy)
		return -ENOMEM;
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		dir = *copy ? copy : "/";
		base = slash + 1;
	} else {
		dir = ".";
		base = copy;
	}
	if (asprintf(&prefix, ".%s.shift-layer-", base) < 0)
		return -ENOMEM;
	r = remove_stale(dir, prefix, false, NULL, NULL);
	if (r < 0)
		sk_debug("cannot remove stale temporaries in '%s': %s", dir,
			 strerror(-r));
	if (asprintf(&t, "%s/%sXXXXXX", dir, prefix) < 0)
		return -ENOMEM;
	r = mkdtemp_locked(t, ret_fd);
	if (r < 0) {
		free(t);
		return r;
	}
	*ret_tmp = t;
	return 0;
}

static bool dir_empty(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return false;
	return true;
}

static uint64_t blobs_total(const struct shift_oci_image *img)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < img->n_layers; i++)
		t += img->layers[i].size;
	return t;
}

int shift_layer_unpack_flat_opts(const struct shift_oci_image *img,
				 const char *dest,
				 const struct shift_idmap *map,
				 const struct shift_layer_opts *opts,
				 struct shift_oci_diag *diag)
{
	struct xctx x = {
		.rootfd = -EBADF,
		.pcache_fd = -EBADF,
		.mode = XMODE_FLAT,
		.map = map,
		.diag = diag,
	};
	_cleanup_free_ char *tmp = NULL;
	struct stat st;
	int r = 0;

	if (!img || !dest)
		return -EINVAL;
	if (opts) {
		x.flags = opts->flags;
		x.cancel = opts->cancel;
		x.on_entry = opts->on_entry;
		x.userdata = opts->userdata;
	}
	x.bytes_total = blobs_total(img);
	if (stat(dest, &st) == 0 && (!S_ISDIR(st.st_mode) || !dir_empty(dest)))
		return fail(&x, -EEXIST, dest,
			    "destination exists and is not an empty directory");
	if (dry(&x)) {
		/* Nothing made: every layer read and checked. */
		for (unsigned i = 0; r >= 0 && i < img->n_layers; i++)
			r = extract_layer(&x, img, i);
		xctx_done(&x);
		return r < 0 ? r : 0;
	}
	r = temp_beside(dest, &tmp, &x.rootfd);
	if (r < 0)
		return fail(&x, r, dest,
			    "cannot create a temporary directory beside it");
	r = init_root(&x);
	for (unsigned i = 0; r >= 0 && i < img->n_layers; i++)
		r = extract_layer(&x, img, i);
	if (r >= 0 && x.cancel && *x.cancel)
		r = fail(&x, -ECANCELED, dest, "interrupted");
	if (r >= 0 && rename(tmp, dest) < 0)
		r = fail(&x, negative_errno(), dest,
			 "cannot move the unpacked tree into place");
	xctx_done(&x);
	/* Removed while still locked: no cleaner takes it meanwhile. */
	if (r < 0)
		(void)rm_rf(tmp);
	safe_close(x.rootfd);
	return r < 0 ? r : 0;
}

int shift_layer_unpack_flat(const struct shift_oci_image *img,
			    const char *dest, const struct shift_idmap *map,
			    unsigned flags, struct shift_oci_diag *diag)
{
	struct shift_layer_opts o = { .flags = flags };

	return shift_layer_unpack_flat_opts(img, dest, map, &o, diag);
}

/* ------------------------------------------------------------------ */
/* The layer store                                                     */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

/* STORE/layers/sha256/HEX, or STORE/shifted/KEY/sha256/HEX. */
static char *layer_dir(const char *store, const char *key, const char *digest)
{
	char *p = NULL;
	int r;

	if (key)
		r = asprintf(&p, "%s/shifted/%s/sha256/%s", store, key,
			     digest + 7);
	else
		r = asprintf(&p, "%s/layers/sha256/%s", store, digest + 7);
	return r < 0 ? NULL : p;
}

static int write_layer_json(const char *dir, const struct sk_oci_layer *l,
			    const char *map_str, const char *manifest_digest)
{
	struct json_object *o = json_object_new_object();
	_cleanup_free_ char *path = NULL;
	const char *s;
	int r = 0;
	FILE *f;

	if (!o || asprintf(&path, "%s/layer.json", dir) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	json_object_object_add(o, "digest", json_object_new_string(l->digest));
	json_object_object_add(o, "mediaType",
			       json_object_new_string(l->media_type));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)l->size));
	if (l->diff_id)
		json_object_object_add(o, "diffID",
				       json_object_new_string(l->diff_id));
	if (map_str)
		json_object_object_add(o, "map", json_object_new_string(map_str));
	if (manifest_digest)
		json_object_object_add(o, "manifest",
				       json_object_new_string(manifest_digest));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n", s) < 0)
		r = -EIO;
	if (f && fclose(f) != 0)
		r = -EIO;
	json_object_put(o);
	return r;
}

/* shift-verify's manifest of rootfs into dir/manifest; its digest. */
static char *record_manifest(const char *dir)
{
	_cleanup_free_ char *rootfs = NULL, *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	char *digest = NULL, d[72];

	if (asprintf(&rootfs, "%s/rootfs", dir) < 0 ||
	    asprintf(&path, "%s/manifest", dir) < 0)
		return NULL;
	/* written as the tree is read (bounded memory); none if it fails */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return NULL;
	if (shift_manifest_record_to(rootfs, fd, NULL, d) < 0 ||
	    !(digest = strdup(d)))
		unlink(path);
	return digest;
}

/*
 * Make one layer of img present in the store, unshifted.  Returns 1 when
 * made, 0 when it was there.
 */
static int store_layer(const struct shift_oci_image *img, unsigned i,
		       const char *store, const struct shift_layer_opts *opts,
		       uint64_t bytes_before, struct shift_oci_diag *diag)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_free_ char *final = layer_dir(store, NULL, l->digest);
	_cleanup_free_ char *tmpdir = NULL, *tmp = NULL, *rootfs = NULL;
	_cleanup_free_ char *mdigest = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct xctx x = {
		.rootfd = -EBADF,
		.pcache_fd = -EBADF,
		.mode = XMODE_STORE,
		.map = NULL,
		.flags = opts->flags,
		.cancel = opts->cancel,
		.on_entry = opts->on_entry,
		.userdata = opts->userdata,
		.bytes_before = bytes_before,
		.bytes_total = blobs_total(img),
		.diag = diag,
	};
	struct stat st;
	int r;

	if (!final)
		return -ENOMEM;
	if (stat(final, &st) == 0)
		return check_stored_diff_id(&x, img, i, final);
	if (dry(&x)) {
		r = extract_layer(&x, img, i);
		xctx_done(&x);
		return r < 0 ? r : 1;
	}
	if (asprintf(&tmpdir, "%s/tmp", store) < 0)
		return -ENOMEM;
	r = mkdir_p(tmpdir, 0700);
	if (r < 0)
		return fail(&x, r, tmpdir, "cannot create the store");
	if (asprintf(&tmp, "%s/%s.XXXXXX", tmpdir, l->digest + 7) < 0)
		return -ENOMEM;
	r = mkdtemp_locked(tmp, &lockfd);
	if (r < 0) {
		free(tmp);
		tmp = NULL;
		return fail(&x, r, tmpdir, "cannot create a temporary directory");
	}
	if (asprintf(&rootfs, "%s/rootfs", tmp) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(rootfs, 0755) < 0) {
		r = negative_errno();
		goto out;
	}
	x.rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.rootfd < 0) {
		r = negative_errno();
		goto out;
	}
	r = init_root(&x);
	if (r >= 0)
		r = extract_layer(&x, img, i);
	if (r >= 0 && x.cancel && *x.cancel)
		r = fail(&x, -ECANCELED, l->digest, "interrupted");
	if (r < 0)
		goto out;
	mdigest = record_manifest(tmp);
	r = write_layer_json(tmp, l, NULL, mdigest);
	if (r < 0) {
		r = fail(&x, r, tmp, "cannot write layer.json");
		goto out;
	}
	{
		_cleanup_free_ char *parent = strdup(final);

		if (!parent) {
			r = -ENOMEM;
			goto out;
		}
		*strrchr(parent, '/') = '\0';
		r = mkdir_p(parent, 0755);
		if (r < 0) {
			r = fail(&x, r, parent, "cannot create the store");
			goto out;
		}
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		r = negative_errno();
		if (r == -EEXIST) /* someone else stored it meanwhile */
			r = 0;
		else
			r = fail(&x, r, final, "cannot move the layer into the store");
		goto out;
	}
	r = 1;
	free(tmp);
	tmp = NULL;
out:
	xctx_done(&x);
	safe_close(x.rootfd);
	/* Removed while still locked (lockfd closes after). */
	if (tmp)
		(void)rm_rf(tmp);
	return r;
}

/*
 * The store's own lock: unpacks and mounts hold it shared while they add
 * and use layers, gc exclusively, so gc never takes a layer an unpack
 * has stored but not yet recorded its image for.  Returns the fd.
 */
static int store_lock(const char *store, int op)
{
	int fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	while (flock(fd, op) < 0) {
		int r = negative_errno();

		if (r == -EINTR && !(op & LOCK_NB))
			continue;
		safe_close(fd);
		return r;
	}
	return fd;
}

/*
 * STORE/images/HEX.json: the image's layers, what shift_layer_gc()
 * counts as references.  Written whole, then renamed into place.
 */
static int record_image(const char *store, const struct shift_oci_image *img)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *tmp = NULL;
	struct json_object *o = json_object_new_object();
	struct json_object *layers = json_object_new_array();
	const char *s;
	int r = 0;
	FILE *f;

	if (!o || !layers || asprintf(&dir, "%s/images", store) < 0 ||
	    asprintf(&path, "%s/%s.json", dir, img->manifest_digest + 7) < 0 ||
	    asprintf(&tmp, "%s/.%s.json.%d", dir, img->manifest_digest + 7,
		     (int)getpid()) < 0) {
		json_object_put(o);
		json_object_put(layers);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < img->n_layers; i++)
		json_object_array_add(layers, json_object_new_string(
						      img->layers[i].digest));
	json_object_object_add(o, "manifest",
			       json_object_new_string(img->manifest_digest));
	json_object_object_add(o, "layout", json_object_new_string(img->layout));
	json_object_object_add(o, "layers", layers);
	r = mkdir_p(dir, 0700);
	if (r >= 0) {
		s = json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PRETTY |
				   JSON_C_TO_STRING_NOSLASHESCAPE);
		f = fopen(tmp, "we");
		if (!f || fprintf(f, "%s\n", s) < 0)
			r = -EIO;
		if (f && fclose(f) != 0)
			r = -EIO;
		if (r >= 0 && rename(tmp, path) < 0)
			r = negative_errno();
		if (r < 0)
			(void)unlink(tmp);
	}
	json_object_put(o);
	return r;
}

int shift_layer_store_unpack_opts(const struct shift_oci_image *img,
				  const char *store_dir,
				  const struct shift_layer_opts *opts,
				  struct shift_oci_diag *diag)
{
	struct shift_layer_opts none = { 0 };
	_cleanup_free_ char *tmpdir = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	uint64_t done = 0;
	int made = 0, r;

	if (!img || !store_dir)
		return -EINVAL;
	if (!opts)
		opts = &none;
	if (!(opts->flags & SHIFT_LAYER_DRY_RUN)) {
		r = mkdir_p(store_dir, 0700);
		if (r < 0)
			return r;
		lockfd = store_lock(store_dir, LOCK_SH);
		if (lockfd < 0)
			return lockfd;
		if (asprintf(&tmpdir, "%s/tmp", store_dir) < 0)
			return -ENOMEM;
		r = remove_stale(tmpdir, "", false, NULL, NULL);
		if (r < 0)
			sk_debug("cannot remove stale temporaries in '%s': %s",
				 tmpdir, strerror(-r));
		/* images/ says the store keeps records (see shift_layer_gc). */
		free(tmpdir);
		if (asprintf(&tmpdir, "%s/images", store_dir) < 0) {
			tmpdir = NULL;
			return -ENOMEM;
		}
		r = mkdir_p(tmpdir, 0700);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < img->n_layers; i++) {
		if (opts->cancel && *opts->cancel) {
			if (diag && !diag->where && !diag->why) {
				diag->where = strdup(img->layers[i].digest);
				diag->why = "interrupted";
			}
			return -ECANCELED;
		}
		r = store_layer(img, i, store_dir, opts, done, diag);
		if (r < 0)
			return r;
		made += r;
		done += img->layers[i].size;
	}
	if (!(opts->flags & SHIFT_LAYER_DRY_RUN)) {
		r = record_image(store_dir, img);
		if (r < 0) {
			if (diag && !diag->where && !diag->why) {
				diag->where = strdup(store_dir);
				diag->why = "cannot record the image in the store (images/)";
			}
			return r;
		}
	}
	return made;
}

int shift_layer_store_unpack(const struct shift_oci_image *img,
			     const char *store_dir, unsigned flags,
			     struct shift_oci_diag *diag)
{
	struct shift_layer_opts o = { .flags = flags };

	return shift_layer_store_unpack_opts(img, store_dir, &o, diag);
}

/* ------------------------------------------------------------------ */
/* Garbage collection                                                  */

struct gcctx {
	const char *store;
	bool dry_run;
	void (*on_remove)(const struct shift_layer_gc_event *ev, void *userdata);
	void *userdata;
	struct shift_oci_diag *diag;
	struct strset refs;	/* "sha256:HEX" of referenced layers */
	int removed;
};

static int gc_fail(struct gcctx *g, int r, const char *where, const char *why)
{
	if (g->diag && !g->diag->where && !g->diag->why) {
		g->diag->where = where ? strdup(where) : NULL;
		g->diag->why = why;
	}
	return r;
}

static bool is_hex64(const char *s)
{
	return strlen(s) == SK_SHA256_HEX &&
	       strspn(s, "0123456789abcdef") == SK_SHA256_HEX;
}

/*
 * Remove dir/name: renamed into STORE/tmp first (a half-removed layer is
 * never seen under its name, and what's left after a crash is a stale
 * temporary), then removed.
 */
static int gc_remove(struct gcctx *g, const char *kind, const char *dir,
		     const char *name, const char *digest)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (g->dry_run)
		goto done;
	if (asprintf(&tmp, "%s/tmp", g->store) < 0)
		return -ENOMEM;
	r = mkdir_p(tmp, 0700);
	free(tmp);
	tmp = NULL;
	if (asprintf(&tmp, "%s/tmp/gc.XXXXXX", g->store) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	if (r >= 0)
		r = mkdtemp_locked(tmp, &lockfd);
	if (r < 0)
		return gc_fail(g, r, path, "cannot make a temporary directory in the store");
	/* Into the locked directory: no other cleaner takes it meanwhile. */
	if (renameat(AT_FDCWD, path, lockfd, "victim") < 0) {
		r = negative_errno();
		(void)rmdir(tmp);
		return gc_fail(g, r, path, "cannot remove it");
	}
	r = rm_rf(tmp);
	if (r < 0)
		return gc_fail(g, r, path, "cannot remove it");
done:
	if (g->on_remove)
		g->on_remove(&(struct shift_layer_gc_event){
				     .kind = kind, .path = path, .name = digest },
			     g->userdata);
	g->removed++;
	return 0;
}

/* The image records in STORE/images: drop the unkept, collect the rest's layers. */
static int gc_images(struct gcctx *g, const struct shift_oci_image *const *keep)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	if (asprintf(&dir, "%s/images", g->store) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d && errno != ENOENT)
		return gc_fail(g, negative_errno(), dir, "cannot read the image records");
	if (!d && !keep) {
		_cleanup_free_ char *ldir = NULL;
		_cleanup_closedir_ DIR *ld = NULL;
		struct dirent *le;

		/* Layers and no records: made before records were kept. */
		if (asprintf(&ldir, "%s/layers/sha256", g->store) < 0)
			return -ENOMEM;
		ld = opendir(ldir);
		while (ld && (le = readdir(ld)))
			if (is_hex64(le->d_name))
				return gc_fail(g, -ENOENT, NULL,
					       "the store holds layers but no image records (images/): name the images to keep with --keep");
	}
	for (unsigned k = 0; keep && keep[k]; k++) {
		for (unsigned i = 0; i < keep[k]->n_layers; i++) {
			r = strset_add(&g->refs, keep[k]->layers[i].digest);
			if (r < 0)
				return r;
		}
		if (!g->dry_run) {
			r = record_image(g->store, keep[k]);
			if (r < 0)
				return gc_fail(g, r, g->store,
					       "cannot record a kept image in the store");
		}
	}
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *hex = NULL, *path = NULL;
		_cleanup_close_ int fd = -EBADF;
		struct json_object *o = NULL, *layers;
		size_t n = strlen(de->d_name);
		bool kept = !keep;

		if (de->d_name[0] == '.' || n != SK_SHA256_HEX + 5 ||
		    strcmp(de->d_name + SK_SHA256_HEX, ".json"))
			continue;
		hex = strndup(de->d_name, SK_SHA256_HEX);
		if (!hex)
			return -ENOMEM;
		if (!is_hex64(hex))
			continue;
		for (unsigned k = 0; keep && keep[k]; k++)
			if (!strcmp(keep[k]->manifest_digest + 7, hex))
				kept = true;
		if (!kept) {
			r = gc_remove(g, "image", dir, de->d_name, NULL);
			if (r < 0)
				return r;
			continue;
		}
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			return -ENOMEM;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd >= 0)
			o = json_object_from_fd(fd);
		/* A record we can't read could reference anything: stop. */
		if (!o || !json_object_object_get_ex(o, "layers", &layers) ||
		    !json_object_is_type(layers, json_type_array)) {
			json_object_put(o);
			return gc_fail(g, -EBADMSG, path,
				       "unreadable image record (nothing removed: fix or delete it)");
		}
		for (size_t i = 0; i < json_object_array_length(layers); i++) {
			const char *l = json_object_get_string(
				json_object_array_get_idx(layers, i));

			if (l && (r = strset_add(&g->refs, l)) < 0) {
				json_object_put(o);
				return r;
			}
		}
		json_object_put(o);
	}
	return 0;
}

/* Unreferenced layer directories (HEX) below dir: removed. */
static int gc_layers(struct gcctx *g, const char *dir, const char *kind)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int r;

	if (!d)
		return errno == ENOENT ? 0
				       : gc_fail(g, negative_errno(), dir,
						 "cannot read the store");
	while ((de = readdir(d))) {
		char digest[8 + SK_SHA256_HEX];

		if (!is_hex64(de->d_name))
			continue;
		snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
		if (strset_has(&g->refs, digest))
			continue;
		r = gc_remove(g, kind, dir, de->d_name, digest);
		if (r < 0)
			return r;
	}
	return 0;
}

int shift_layer_gc(const char *store_dir,
		   const struct shift_oci_image *const *keep, unsigned flags,
		   void (*on_remove)(const struct shift_layer_gc_event *ev,
				     void *userdata),
		   void *userdata, struct shift_oci_diag *diag)
{
	struct gcctx g = {
		.store = store_dir,
		.dry_run = flags & SHIFT_LAYER_DRY_RUN,
		.on_remove = on_remove,
		.userdata = userdata,
		.diag = diag,
	};
	_cleanup_free_ char *p = NULL;
	_cleanup_closedir_ DIR *sh = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct dirent *de;
	struct stat st;
	int r;

	if (!store_dir)
		return -EINVAL;
	/* Only what looks like a store: never rm -rf a mistyped path. */
	if (asprintf(&p, "%s/layers", store_dir) < 0)
		return -ENOMEM;
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/tmp", store_dir) < 0)
			return -ENOMEM;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			return gc_fail(&g, -ENOENT, NULL,
				       "not a layer store (no layers/ or tmp/)");
	}
	lockfd = store_lock(store_dir, LOCK_EX | LOCK_NB);
	if (lockfd == -EWOULDBLOCK)
		return gc_fail(&g, -EBUSY, NULL,
			       "the store is in use by an unpack or a mount (try again when it is done)");
	if (lockfd < 0)
		return gc_fail(&g, lockfd, NULL, "cannot lock the store");
	free(p);
	p = NULL;
	if (asprintf(&p, "%s/tmp", store_dir) < 0)
		return -ENOMEM;
	r = remove_stale(p, "", g.dry_run, on_remove, userdata);
	if (r < 0)
		return gc_fail(&g, r, p, "cannot remove stale temporaries");
	g.removed += r;
	r = gc_images(&g, keep);
	if (r >= 0) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/layers/sha256", store_dir) < 0)
			r = -ENOMEM;
	}
	if (r >= 0)
		r = gc_layers(&g, p, "layer");
	/* STORE/shifted/KEY/sha256/HEX: copies of layers per map. */
	if (r >= 0) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/shifted", store_dir) < 0)
			r = -ENOMEM;
		else
			sh = opendir(p);
	}
	while (r >= 0 && sh && (de = readdir(sh))) {
		_cleanup_free_ char *q = NULL;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&q, "%s/%s/sha256", p, de->d_name) < 0)
			r = -ENOMEM;
		else
			r = gc_layers(&g, q, "shifted");
	}
	strset_clear(&g.refs);
	return r < 0 ? r : g.removed;
}

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
	struct shift_oci_diag *diag;
	int droot;
	struct hardlink *links;
	size_t n_links, cap_links;
	bool failed;		/* an event reported a problem */
	const char *why;
	char path[PATH_MAX];	/* relative path of the current entry */
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
		if (c->diag && !c->diag->where)
			c->diag->where = strdup(c->path);
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
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
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
					      name, 0) < 0 ? negative_errno()
							   : 0;
		if (c->n_links == c->cap_links) {
			size_t cap = c->cap_links ? 2 * c->cap_links : 64;
			struct hardlink *l = realloc(c->links, cap * sizeof(*l));

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
			const struct shift_idmap *map,
			struct shift_oci_diag *diag)
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
	if (r < 0 && diag && !diag->where)
		diag->where = strdup(*c->path ? c->path : ".");
	if (r < 0 && diag && !diag->why)
		diag->why = c->why ? c->why : "cannot make the shifted copy";
	for (size_t i = 0; i < c->n_links; i++)
		free(c->links[i].path);
	free(c->links);
	shift_inode_ctx_free(c->ictx);
	safe_close(c->droot);
	free(c);
	return r;
}

/* STORE/shifted/KEY/sha256/HEX from the canonical layer, if missing. */
static int store_shifted(const struct shift_oci_image *img, unsigned i,
			 const char *store, const struct shift_idmap *map,
			 const char *key, struct shift_oci_diag *diag)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_free_ char *final = layer_dir(store, key, l->digest);
	_cleanup_free_ char *canon = layer_dir(store, NULL, l->digest);
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
		r = mkdir_p(t, 0700);
		if (r < 0)
			return r;
	}
	r = mkdtemp_locked(tmp, &lockfd);
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
	r = write_layer_json(tmp, l, mstr, NULL);
	if (r < 0)
		goto out;
	parent = strdup(final);
	if (!parent) {
		r = -ENOMEM;
		goto out;
	}
	*strrchr(parent, '/') = '\0';
	r = mkdir_p(parent, 0755);
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
		(void)rm_rf(tmp);
	return r;
}

/* A short key naming a map in STORE/shifted/. */
static int map_key(const struct shift_idmap *map, char out[17])
{
	_cleanup_free_ char *s = shift_idmap_to_string(map);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!s)
		return -ENOMEM;
	if (!EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL))
		return -EIO;
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* A plain overlay (lower layers already shifted), attached at target. */
static int mount_overlay_plain(const char *const *lower, const char *upper,
			       const char *work, const char *target)
{
	_cleanup_close_ int fsfd = -EBADF, mfd = -EBADF;

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return negative_errno();
	for (size_t i = 0; lower[i]; i++)
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lower[i],
			     0) < 0)
			return negative_errno();
	if (upper) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) <
			    0 ||
		    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
			return negative_errno();
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return negative_errno();
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return negative_errno();
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return negative_errno();
	return 0;
}

int shift_layer_mount(const struct shift_oci_image *img, const char *store_dir,
		      const struct shift_idmap *map, const char *target,
		      const char *upper_dir, unsigned flags,
		      struct shift_oci_diag *diag)
{
	_cleanup_free_ char *upper = NULL, *work = NULL;
	_cleanup_free_ const char **lower = NULL;
	char **paths = NULL;
	char key[17];
	bool idmap = !(flags & SHIFT_LAYER_FORCE_COPY);
	_cleanup_close_ int lockfd = -EBADF;
	const char *why = NULL;
	uid_t ru = 0;
	gid_t rg = 0;
	unsigned n;
	int r;

	if (!img || !store_dir || !map || !target)
		return -EINVAL;
	if (!upper_dir && !(flags & SHIFT_LAYER_RDONLY))
		flags |= SHIFT_LAYER_RDONLY;
	n = img->n_layers;
	if (n == 0) {
		if (diag && !diag->why)
			diag->why = "the image has no layers";
		return -EINVAL;
	}
	r = shift_layer_store_unpack(img, store_dir, flags, diag);
	if (r < 0)
		return r;
	/* Until the overlay holds its layers: not for gc meanwhile. */
	lockfd = store_lock(store_dir, LOCK_SH);
	if (lockfd < 0)
		return lockfd;
	if (idmap) {
		/* A failed probe: let the mount itself tell. */
		r = shift_probe_idmap(store_dir, &why);
		if (r == 0) {
			sk_debug("store '%s' can't be idmapped (%s): shifted copies",
				 store_dir, why ? why : "?");
			idmap = false;
		}
	}
	if (!idmap) {
		r = map_key(map, key);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < n; i++) {
			r = store_shifted(img, i, store_dir, map, key, diag);
			if (r < 0)
				return r;
		}
	}

	lower = calloc(n + 1, sizeof(*lower));
	paths = calloc(n + 1, sizeof(*paths));
	if (!lower || !paths) {
		free(paths);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		_cleanup_free_ char *d = layer_dir(store_dir,
						   idmap ? NULL : key,
						   img->layers[i].digest);

		/* Top-most first. */
		if (!d || asprintf(&paths[n - 1 - i], "%s/rootfs", d) < 0) {
			r = -ENOMEM;
			goto out;
		}
		lower[n - 1 - i] = paths[n - 1 - i];
	}

	if (!(flags & SHIFT_LAYER_RDONLY)) {
		if (asprintf(&upper, "%s/upper", upper_dir) < 0 ||
		    asprintf(&work, "%s/work", upper_dir) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (root_owner(&(struct xctx){ .map = map }, &ru, &rg) < 0) {
			r = -ERANGE;
			if (diag && !diag->why)
				diag->why = "uid/gid 0 has no image under the map (needed for the upper directory)";
			goto out;
		}
		r = mkdir_p(upper_dir, 0755);
		if (r >= 0 && (mkdir(upper, 0755) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 && (mkdir(work, 0700) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 && (chown(upper, ru, rg) < 0 || chown(work, ru, rg) < 0))
			r = negative_errno();
		if (r < 0) {
			if (diag && !diag->where)
				diag->where = strdup(upper_dir);
			goto out;
		}
	}

	if (idmap) {
		struct shift_overlay ovl = {
			.lower = lower,
			.upper = upper,
			.work = work,
		};

		r = shift_mount_overlay(&ovl, target, map, 0);
		if (r < 0) {
			if (diag && !diag->where)
				diag->where = strdup(target);
			goto out;
		}
		r = 1;
	} else {
		r = mount_overlay_plain(lower, upper, work, target);
		if (r < 0) {
			if (diag && !diag->where)
				diag->where = strdup(target);
			if (diag && !diag->why)
				diag->why = "cannot mount the overlay";
			goto out;
		}
		r = 0;
	}
out:
	for (unsigned i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}
