/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ownership manifests: record a tree's ownership metadata (type, uid, gid,
 * mode, POSIX ACLs, file capability), write it as an mtree(5) spec in the
 * exact form libarchive's writer gives, plus "#shiftkit" extension lines
 * (ACLs and file capabilities, which mtree has no keywords for) and a
 * sha256 digest line, read it back, and compare a tree with a manifest
 * under a map.  docs/manifest-format.md describes the format and why it
 * looks like this.
 *
 * Record and check stream: the walk goes in the manifest's order (per
 * directory, non-directories then subdirectories, each sorted by name),
 * the text is written as entries come, and a check merges the manifest
 * file with the walk; memory is bounded by the directories on the current
 * path, not by the tree ("Bounded memory" in docs/manifest-format.md).
 *
 * Reading a tree is read-only and race-tolerant: directories are walked by
 * fd (openat with O_NOFOLLOW), entries are statx'ed relative to their
 * directory, symlinks are never followed and other mounts are not entered
 * (statx mount id).  The ACL and capability xattrs are translated with the
 * same functions the shift engine uses (acl.c, fcaps.c).
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "verify/verify-internal.h"
#include "util/error.h"

#define XATTR_ACL_ACCESS "system.posix_acl_access"
#define XATTR_ACL_DEFAULT "system.posix_acl_default"
#define XATTR_CAPS "security.capability"
#define CAPS_SZ_2 20
#define CAPS_SZ_3 24
#define MAX_ACL_ENTRIES 1024

struct blob {
	uint32_t len;
	unsigned char *data;
};

enum {
	ME_CAPS_OVERFLOW = 1
			   << 0, /* getxattr said EOVERFLOW: rootid unmapped */
	ME_WHITEOUT = 1 << 1,	 /* a 0/0 character device */
	ME_OPAQUE = 1 << 2,	 /* a directory with overlay.opaque=y */
};
/* Merged layers (shift_manifest_check_layers): the layer an entry comes
 * from, in the flags' bits from here up. */
#define ME_LAYER_SHIFT 8

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

static void set_err_path(const char *path, size_t len)
{
	if (err_path[0])
		return; /* the deepest one is already there */
	if (len >= sizeof(err_path))
		len = sizeof(err_path) - 1;
	memcpy(err_path, path, len);
	err_path[len] = '\0';
}

/* A failed record or check: the entry it failed on ("./a/b") as err's
 * path, none when it is the top directory (or no entry) itself. */
static int tree_error(int r, struct shift_error *err)
{
	if (r < 0)
		sk_error_set_path(err, r, err_path[0] ? err_path : NULL, NULL);
	return r;
}

void shift_manifest_set_progress(shift_manifest_progress_fn fn, void *userdata)
{
	progress_fn = fn;
	progress_data = userdata;
}

struct mentry {
	char *path; /* "." or "./a/b", unescaped */
	uint32_t uid, gid;
	uint32_t mode; /* st_mode: type and permission bits */
	uint32_t flags;
	struct blob acl_a, acl_d, caps;
};

/* Strings and blobs live in chunks that never move. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	unsigned char data[];
};

struct shift_manifest {
	struct mentry *e;
	size_t n, cap;
	struct arena_chunk *arena;
	char digest[8 + 64 + 1];
	/* shift_manifest_open(): the entries stay in the file, read again
	 * by each check (n counted, digest verified) */
	char *stream;
	size_t stream_n;
};

static void *arena_alloc(struct shift_manifest *m, size_t size)
{
	struct arena_chunk *c = m->arena;

	size = (size + 7) & ~(size_t)7;
	if (!c || c->size - c->used < size) {
		size_t cs = size > 1 << 20 ? size : 1 << 20;

		c = malloc(sizeof(*c) + cs);
		if (!c)
			return NULL;
		c->next = m->arena;
		c->used = 0;
		c->size = cs;
		m->arena = c;
	}
	c->used += size;
	return c->data + c->used - size;
}

static char *arena_strndup(struct shift_manifest *m, const char *s, size_t len)
{
	char *p = arena_alloc(m, len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

static int blob_set(struct shift_manifest *m, struct blob *b, const void *data,
		    size_t len)
{
	b->data = arena_alloc(m, len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = (uint32_t)len;
	return 0;
}

static struct shift_manifest *manifest_new(void)
{
	return calloc(1, sizeof(struct shift_manifest));
}

void shift_manifest_free(struct shift_manifest *m)
{
	struct arena_chunk *c, *next;

	if (!m)
		return;
	for (c = m->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	free(m->e);
	free(m->stream);
	free(m);
}

static void manifest_freep(struct shift_manifest **m)
{
	shift_manifest_free(*m);
}
#define _cleanup_manifest_ _cleanup_(manifest_freep)

size_t shift_manifest_count(const struct shift_manifest *m)
{
	return m->stream ? m->stream_n : m->n;
}

static struct mentry *manifest_add(struct shift_manifest *m)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct mentry *e = realloc(m->e, cap * sizeof(*e));

		if (!e)
			return NULL;
		m->e = e;
		m->cap = cap;
	}
	memset(&m->e[m->n], 0, sizeof(m->e[0]));
	return &m->e[m->n++];
}

/*
 * The canonical order: path components compared bytewise, a parent before
 * its children ('/' sorts below every byte of a name).
 */
static int path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = *a == '/' ? 0 : (unsigned char)*a + 1;
		int y = *b == '/' ? 0 : (unsigned char)*b + 1;

		if (!*a || !*b)
			return !*a ? (!*b ? 0 : -1) : 1;
		if (x != y)
			return x < y ? -1 : 1;
	}
}

static int entry_cmp(const void *a, const void *b)
{
	return path_cmp(((const struct mentry *)a)->path,
			((const struct mentry *)b)->path);
}

/* ------------------------------------------------------------------ */
/* Recording a tree                                                    */
/* ------------------------------------------------------------------ */

/*
 * A walk of the tree in the manifest's order (the order of libarchive's
 * mtree writer, which the format keeps): a directory, its non-directories
 * sorted by name (bytewise), then each subdirectory sorted by name with
 * its subtree.  Each directory's entries are read (readdir order, so the
 * statx and xattr calls go in the filesystem's order), sorted, handed to
 * visit() and forgotten: what is held is the listing of each directory on
 * the path from the top to the current one, never the tree.
 */
struct walk {
	uint64_t mnt_id;
	size_t count; /* entries visited */
	/* called per entry in order, its full path in path[0..plen) */
	int (*visit)(struct walk *w, const struct mentry *e, size_t plen);
	void *data;
	char path[PATH_MAX];
};

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
			if (!strcmp(list + i, XATTR_ACL_ACCESS))
				has_aa = true;
			else if (!strcmp(list + i, XATTR_ACL_DEFAULT))
				has_ad = true;
			else if (!strcmp(list + i, XATTR_CAPS))
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
		r = xref_get(&x, XATTR_ACL_ACCESS, buf, sizeof(buf));
		if (r < 0)
			return (int)r;
		if (r > 0 && (q = blob_set(store, &e->acl_a, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_ad && S_ISDIR(e->mode)) {
		r = xref_get(&x, XATTR_ACL_DEFAULT, buf, sizeof(buf));
		if (r < 0)
			return (int)r;
		if (r > 0 && (q = blob_set(store, &e->acl_d, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_caps) {
		r = xref_get(&x, XATTR_CAPS, buf, sizeof(buf));
		if (r == -EOVERFLOW)
			e->flags |= ME_CAPS_OVERFLOW;
		else if (r < 0)
			return (int)r;
		else if (r > 0 && (q = blob_set(store, &e->caps, buf, (size_t)r)) < 0)
			return q;
	}
	return 0;
}

/* e from stx and the xattrs of name in dfd; blobs in store. */
static int fill_entry(struct shift_manifest *store, struct mentry *e, int dfd,
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
static int read_listing(struct walk *w, DIR *d, size_t plen,
			struct shift_manifest **ret, size_t *nfiles)
{
	_cleanup_manifest_ struct shift_manifest *l = manifest_new();
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
			set_err_path(w->path, plen);
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
			set_err_path(w->path, clen);
			return r;
		}
		/* another mount on top: not part of this tree */
		if ((stx.stx_mask & STATX_MNT_ID) &&
		    stx.stx_mnt_id != w->mnt_id)
			continue;
		e = manifest_add(l);
		if (!e)
			return -ENOMEM;
		e->path = arena_strndup(l, name, nlen);
		if (!e->path)
			return -ENOMEM;
		r = fill_entry(l, e, dirfd(d), name, &stx);
		if (r < 0) {
			set_err_path(w->path, clen);
			return r;
		}
	}
	if (errno) {
		r = negative_errno();
		set_err_path(w->path, plen);
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

static int walk_visit(struct walk *w, struct mentry *e, size_t plen)
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
static int walk_dir(struct walk *w, int dfd, size_t plen)
{
	_cleanup_manifest_ struct shift_manifest *l = NULL;
	size_t i, nfiles = 0;
	DIR *d;
	int r;

	d = fdopendir(dfd);
	if (!d) {
		r = negative_errno();
		set_err_path(w->path, plen);
		close(dfd);
		return r;
	}
	r = read_listing(w, d, plen, &l, &nfiles);
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
			set_err_path(w->path, clen);
			break;
		}
		/* walk_visit left the child's path in w->path */
		r = walk_dir(w, cfd, clen);
	}
	closedir(d);
	return r;
}

/* Open dir, visit it as "." and everything below it.  Returns 0. */
static int walk_tree(struct walk *w, const char *dir)
{
	_cleanup_manifest_ struct shift_manifest *store = NULL;
	struct mentry root = {0};
	struct statx stx;
	int fd, r;

	err_path[0] = '\0';
	store = manifest_new();
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
	r = fill_entry(store, &root, fd, ".", &stx);
	if (r >= 0) {
		root.path = w->path;
		r = w->visit(w, &root, 1);
		w->count++;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	r = walk_dir(w, fd, 1);
	if (r < 0)
		return r;
	if (progress_fn)
		progress_fn(w->count, progress_data);
	return 0;
}

/* A copy of e (path included) in m. */
static int manifest_add_copy(struct shift_manifest *m, const struct mentry *e,
			     size_t plen)
{
	struct mentry *c = manifest_add(m);
	int r;

	if (!c)
		return -ENOMEM;
	*c = *e;
	c->acl_a = c->acl_d = c->caps = (struct blob){0};
	c->path = arena_strndup(m, e->path, plen);
	if (!c->path)
		return -ENOMEM;
	if (e->acl_a.len &&
	    (r = blob_set(m, &c->acl_a, e->acl_a.data, e->acl_a.len)) < 0)
		return r;
	if (e->acl_d.len &&
	    (r = blob_set(m, &c->acl_d, e->acl_d.data, e->acl_d.len)) < 0)
		return r;
	if (e->caps.len &&
	    (r = blob_set(m, &c->caps, e->caps.data, e->caps.len)) < 0)
		return r;
	return 0;
}

static int visit_collect(struct walk *w, const struct mentry *e, size_t plen)
{
	return manifest_add_copy(w->data, e, plen);
}

static int manifest_record(const char *dir, struct shift_manifest **ret)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_free_ struct walk *w = NULL;
	int r;

	m = manifest_new();
	w = calloc(1, sizeof(*w));
	if (!m || !w)
		return -ENOMEM;
	w->visit = visit_collect;
	w->data = m;
	r = walk_tree(w, dir);
	if (r < 0)
		return r;
	qsort(m->e, m->n, sizeof(m->e[0]), entry_cmp);
	*ret = TAKE_PTR(m);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Text forms of ACLs and capabilities                                 */
/* ------------------------------------------------------------------ */

struct strbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_addn(struct strbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_add(struct strbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

_printf_(2, 3) static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_addn(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char *acl_tag_name(uint16_t tag)
{
	switch (tag) {
	case SHIFT_ACL_USER_OBJ:
	case SHIFT_ACL_USER:
		return "user";
	case SHIFT_ACL_GROUP_OBJ:
	case SHIFT_ACL_GROUP:
		return "group";
	case SHIFT_ACL_MASK:
		return "mask";
	case SHIFT_ACL_OTHER:
		return "other";
	default:
		return NULL;
	}
}

static int acl_entry_text(const struct shift_acl_entry *e, unsigned idx,
			  void *userdata)
{
	struct strbuf *b = userdata;
	const char *t = acl_tag_name(e->tag);

	if (idx)
		sb_add(b, ",");
	if (!t) {
		sb_printf(b, "tag%u:%" PRIu32 ":", e->tag, e->id);
	} else if (e->tag == SHIFT_ACL_USER || e->tag == SHIFT_ACL_GROUP)
		sb_printf(b, "%s:%" PRIu32 ":", t, e->id);
	else
		sb_printf(b, "%s::", t);
	sb_printf(b, "%c%c%c", e->perm & 4 ? 'r' : '-', e->perm & 2 ? 'w' : '-',
		  e->perm & 1 ? 'x' : '-');
	if (e->perm & ~7u)
		sb_printf(b, "+%#x", e->perm & ~7u);
	return 0;
}

/* "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r--" */
static int acl_to_text(const struct blob *a, struct strbuf *b)
{
	int r = shift_acl_foreach(a->data, a->len, acl_entry_text, b);

	if (r < 0)
		sb_add(b, "invalid");
	return b->oom ? -ENOMEM : 0;
}

static uint32_t le32_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32_at(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_le16_at(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* "v3,rootid=100000,permitted=0x2000,inheritable=0x0,effective" */
static int caps_to_text(const struct blob *c, uint32_t flags,
			struct strbuf *b)
{
	uint32_t rootid = 0;
	int v;

	if (flags & ME_CAPS_OVERFLOW) {
		sb_add(b, "unmapped");
		return b->oom ? -ENOMEM : 0;
	}
	v = shift_fcaps_rootid(c->data, c->len, &rootid);
	if (v < 0) {
		sb_add(b, "invalid");
		return b->oom ? -ENOMEM : 0;
	}
	sb_printf(b, "v%d", v);
	if (v == 3)
		sb_printf(b, ",rootid=%" PRIu32, rootid);
	sb_printf(b, ",permitted=%#" PRIx64 ",inheritable=%#" PRIx64,
		  (uint64_t)le32_at(c->data + 4) |
			  (uint64_t)le32_at(c->data + 12) << 32,
		  (uint64_t)le32_at(c->data + 8) |
			  (uint64_t)le32_at(c->data + 16) << 32);
	if (le32_at(c->data) & 1)
		sb_add(b, ",effective");
	return b->oom ? -ENOMEM : 0;
}

static int parse_perm(const char *s, size_t len, uint16_t *ret)
{
	if (len != 3)
		return -EINVAL;
	*ret = 0;
	if (s[0] == 'r')
		*ret |= 4;
	else if (s[0] != '-')
		return -EINVAL;
	if (s[1] == 'w')
		*ret |= 2;
	else if (s[1] != '-')
		return -EINVAL;
	if (s[2] == 'x')
		*ret |= 1;
	else if (s[2] != '-')
		return -EINVAL;
	return 0;
}

static int parse_u32_str(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* The inverse of acl_to_text(), into the kernel's xattr format. */
static int acl_from_text(struct shift_manifest *m, const char *s, size_t len,
			 struct blob *ret)
{
	unsigned char buf[4 + 8 * MAX_ACL_ENTRIES];
	size_t n = 0, pos = 0;

	put_le32_at(buf, 2);
	while (pos < len) {
		size_t end = pos, c1, c2;
		uint16_t tag, perm;
		uint32_t id = SHIFT_ID_NONE;
		bool qual;

		while (end < len && s[end] != ',')
			end++;
		for (c1 = pos; c1 < end && s[c1] != ':'; c1++)
			;
		for (c2 = c1 + 1; c2 < end && s[c2] != ':'; c2++)
			;
		if (c1 >= end || c2 >= end || n >= MAX_ACL_ENTRIES)
			return -EINVAL;
		qual = c2 > c1 + 1;
		if (c1 - pos == 4 && !strncmp(s + pos, "user", 4))
			tag = qual ? SHIFT_ACL_USER : SHIFT_ACL_USER_OBJ;
		else if (c1 - pos == 5 && !strncmp(s + pos, "group", 5))
			tag = qual ? SHIFT_ACL_GROUP : SHIFT_ACL_GROUP_OBJ;
		else if (c1 - pos == 4 && !strncmp(s + pos, "mask", 4) && !qual)
			tag = SHIFT_ACL_MASK;
		else if (c1 - pos == 5 && !strncmp(s + pos, "other", 5) && !qual)
			tag = SHIFT_ACL_OTHER;
		else
			return -EINVAL;
		if (qual && parse_u32_str(s + c1 + 1, c2 - c1 - 1, &id) < 0)
			return -EINVAL;
		if (parse_perm(s + c2 + 1, end - c2 - 1, &perm) < 0)
			return -EINVAL;
		put_le16_at(buf + 4 + 8 * n, tag);
		put_le16_at(buf + 4 + 8 * n + 2, perm);
		put_le32_at(buf + 4 + 8 * n + 4, id);
		n++;
		pos = end + 1;
	}
	if (n == 0)
		return -EINVAL;
	return blob_set(m, ret, buf, 4 + 8 * n);
}

static int parse_hex64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len < 3 || s[0] != '0' || s[1] != 'x' || len > 18)
		return len == 1 && s[0] == '0' ? (*ret = 0, 0) : -EINVAL;
	for (i = 2; i < len; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*ret = v;
	return 0;
}

/* The inverse of caps_to_text(). */
static int caps_from_text(struct shift_manifest *m, const char *s, size_t len,
			  struct mentry *e)
{
	unsigned char buf[CAPS_SZ_3] = { 0 };
	uint64_t perm = 0, inh = 0;
	uint32_t rootid = 0, magic;
	bool eff = false, have_root = false;
	int version;
	size_t pos, end;

	if (len == 8 && !strncmp(s, "unmapped", 8)) {
		e->flags |= ME_CAPS_OVERFLOW;
		return 0;
	}
	if (len >= 2 && !strncmp(s, "v2", 2))
		version = 2;
	else if (len >= 2 && !strncmp(s, "v3", 2))
		version = 3;
	else
		return -EINVAL;
	for (pos = 2; pos < len; pos = end) {
		const char *k;
		size_t klen;

		if (s[pos] != ',')
			return -EINVAL;
		k = s + ++pos;
		for (end = pos; end < len && s[end] != ','; end++)
			;
		klen = end - pos;
		if (klen == 9 && !strncmp(k, "effective", 9))
			eff = true;
		else if (klen > 7 && !strncmp(k, "rootid=", 7)) {
			if (parse_u32_str(k + 7, klen - 7, &rootid) < 0)
				return -EINVAL;
			have_root = true;
		} else if (klen > 10 && !strncmp(k, "permitted=", 10)) {
			if (parse_hex64(k + 10, klen - 10, &perm) < 0)
				return -EINVAL;
		} else if (klen > 12 && !strncmp(k, "inheritable=", 12)) {
			if (parse_hex64(k + 12, klen - 12, &inh) < 0)
				return -EINVAL;
		} else
			return -EINVAL;
	}
	if (have_root != (version == 3))
		return -EINVAL;
	magic = (version == 3 ? 0x03000000u : 0x02000000u) | (eff ? 1u : 0u);
	put_le32_at(buf, magic);
	put_le32_at(buf + 4, (uint32_t)perm);
	put_le32_at(buf + 8, (uint32_t)inh);
	put_le32_at(buf + 12, (uint32_t)(perm >> 32));
	put_le32_at(buf + 16, (uint32_t)(inh >> 32));
	if (version == 3)
		put_le32_at(buf + 20, rootid);
	return blob_set(m, &e->caps, buf, version == 3 ? CAPS_SZ_3 : CAPS_SZ_2);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static const char *mtree_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "dir";
	case S_IFREG:
		return "file";
	case S_IFLNK:
		return "link";
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown";
	}
}

/* mtree's escapes: \ooo (what libarchive writes) and \\ \s \t \n. */
static int mtree_unescape(const char *s, size_t len, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '\\' && i + 1 < len) {
			char n = s[i + 1];

			if (i + 3 < len && n >= '0' && n <= '3' &&
			    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
			    s[i + 3] <= '7') {
				c = (char)((n - '0') << 6 | (s[i + 2] - '0') << 3 |
					   (s[i + 3] - '0'));
				i += 3;
			} else if (n == '\\' || n == 's' || n == 't' || n == 'n') {
				c = n == 's' ? ' ' : n == 't' ? '\t' : n == 'n' ? '\n' : '\\';
				i++;
			}
		}
		if (o + 1 >= size || c == '\0')
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

/* "#shiftkit acl.access=... acl.default=... fcaps=..." or nothing. */
static int extension_line(const struct mentry *e, struct strbuf *out)
{
	if (!e->acl_a.len && !e->acl_d.len && !e->caps.len &&
	    !(e->flags & (ME_CAPS_OVERFLOW | ME_WHITEOUT | ME_OPAQUE)))
		return 0;
	sb_add(out, "#shiftkit");
	if (e->flags & ME_WHITEOUT)
		sb_add(out, " overlay=whiteout");
	if (e->flags & ME_OPAQUE)
		sb_add(out, " overlay=opaque");
	if (e->acl_a.len) {
		sb_add(out, " acl.access=");
		acl_to_text(&e->acl_a, out);
	}
	if (e->acl_d.len) {
		sb_add(out, " acl.default=");
		acl_to_text(&e->acl_d, out);
	}
	if (e->caps.len || (e->flags & ME_CAPS_OVERFLOW)) {
		sb_add(out, " fcaps=");
		caps_to_text(&e->caps, e->flags, out);
	}
	sb_add(out, "\n");
	return out->oom ? -ENOMEM : 0;
}

/*
 * The bytes libarchive's mtree writer puts for a path: every byte but the
 * printable ASCII ones other than '#', '=' and '\' as \ooo.
 */
static void mtree_quote(struct strbuf *b, const char *s)
{
	const char *start = s;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4];

		if (c > ' ' && c < 0x7f && c != '#' && c != '=' && c != '\\')
			continue;
		sb_addn(b, start, (size_t)(s - start));
		esc[0] = '\\';
		esc[1] = (char)('0' + c / 64);
		esc[2] = (char)('0' + c / 8 % 8);
		esc[3] = (char)('0' + c % 8);
		sb_addn(b, esc, 4);
		start = s + 1;
	}
	sb_addn(b, start, (size_t)(s - start));
}

/*
 * Writing a manifest as its entries come, in the manifest's order: the
 * text goes out in 64 KiB pieces and into the digest as it goes, so
 * nothing but the current piece is held.  fd < 0: only the digest.
 */
struct mwriter {
	int fd;
	EVP_MD_CTX *md;
	struct strbuf buf;
	size_t count;
	int err;
};

static int mw_flush(struct mwriter *o)
{
	size_t pos = 0;

	if (o->buf.oom && !o->err)
		o->err = -ENOMEM;
	if (o->err)
		return o->err;
	if (!EVP_DigestUpdate(o->md, o->buf.s, o->buf.len))
		return o->err = -ENOMEM;
	while (o->fd >= 0 && pos < o->buf.len) {
		ssize_t k = write(o->fd, o->buf.s + pos, o->buf.len - pos);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return o->err = negative_errno();
		pos += (size_t)k;
	}
	o->buf.len = 0;
	return 0;
}

static int mw_init(struct mwriter *o, int fd)
{
	*o = (struct mwriter){.fd = fd};
	o->md = EVP_MD_CTX_new();
	if (!o->md || !EVP_DigestInit_ex(o->md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(o->md);
		o->md = NULL;
		return -ENOMEM;
	}
	sb_add(&o->buf, "#mtree\n");
	return 0;
}

static void mw_done(struct mwriter *o)
{
	EVP_MD_CTX_free(o->md);
	free(o->buf.s);
	o->md = NULL;
	o->buf.s = NULL;
}

/* The entry line as libarchive writes it ("!all,type,uid,gid,mode"), and
 * its extension line. */
static int mw_entry(struct mwriter *o, const char *path, const struct mentry *e)
{
	mtree_quote(&o->buf, path);
	sb_printf(&o->buf, " mode=%o gid=%" PRIu32 " uid=%" PRIu32 " type=%s\n",
		  e->mode & 07777, e->gid, e->uid, mtree_type(e->mode));
	extension_line(e, &o->buf);
	o->count++;
	if (o->buf.len >= 65536 || o->buf.oom)
		return mw_flush(o);
	return o->err;
}

/* The digest line; digest: "sha256:HEX" (72 bytes). */
static int mw_finish(struct mwriter *o, char *digest)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	char hex[65];
	int r;

	r = mw_flush(o);
	if (r < 0)
		return r;
	if (!EVP_DigestFinal_ex(o->md, md, &mdlen) || mdlen != 32)
		return -ENOMEM;
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[64] = '\0';
	snprintf(digest, 72, "sha256:%s", hex);
	sb_printf(&o->buf, "#shiftkit sha256=%s\n", hex);
	/* the digest line is not part of what it digests: write it raw */
	if (o->buf.oom)
		return -ENOMEM;
	for (size_t pos = 0; o->fd >= 0 && pos < o->buf.len;) {
		ssize_t k = write(o->fd, o->buf.s + pos, o->buf.len - pos);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		pos += (size_t)k;
	}
	o->buf.len = 0;
	return 0;
}

/*
 * The manifest's order on full paths (mentry.mode says which are
 * directories): a directory before what is below it; among the entries
 * of one directory, non-directories before directories, each sorted by
 * name bytewise.  An entry with more components below the point where two
 * paths part is, at that point, a directory.
 */
static int mtree_order_cmp(const struct mentry *x, const struct mentry *y)
{
	const char *a = x->path, *b = y->path;

	for (;;) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		bool da, db;
		int c;

		if (la == lb && !memcmp(a, b, la)) {
			if (!a[la] || !b[lb])
				return !a[la] ? (!b[lb] ? 0 : -1) : 1;
			a += la + 1;
			b += lb + 1;
			continue;
		}
		da = a[la] || S_ISDIR(x->mode);
		db = b[lb] || S_ISDIR(y->mode);
		if (da != db)
			return da ? 1 : -1;
		c = memcmp(a, b, la < lb ? la : lb);
		if (c)
			return c;
		return la < lb ? -1 : 1;
	}
}

static int mtree_order_qcmp(const void *a, const void *b)
{
	return mtree_order_cmp(*(const struct mentry *const *)a,
			       *(const struct mentry *const *)b);
}

/* Write m in the manifest format (fd < 0: only its digest). */
static int manifest_render(const struct shift_manifest *m, int fd,
			   char *digest /* 72 */)
{
	_cleanup_free_ const struct mentry **order = NULL;
	struct mwriter o;
	size_t i;
	int r;

	order = calloc(m->n ? m->n : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < m->n; i++)
		order[i] = &m->e[i];
	qsort(order, m->n, sizeof(*order), mtree_order_qcmp);
	r = mw_init(&o, fd);
	for (i = 0; r >= 0 && i < m->n; i++)
		r = mw_entry(&o, order[i]->path, order[i]);
	if (r >= 0)
		r = mw_finish(&o, digest);
	mw_done(&o);
	return r;
}

int shift_manifest_write(const struct shift_manifest *m, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (m->stream)
		return -EOPNOTSUPP;
	return manifest_render(m, fd, ((struct shift_manifest *)m)->digest);
}

const char *shift_manifest_digest(const struct shift_manifest *m)
{
	struct shift_manifest *mm = (struct shift_manifest *)m;

	if (!mm->digest[0] && manifest_render(m, -1, mm->digest) < 0)
		mm->digest[0] = '\0';
	return mm->digest[0] ? mm->digest : NULL;
}

static int visit_write(struct walk *w, const struct mentry *e, size_t plen)
{
	(void)plen;
	return mw_entry(w->data, e->path, e);
}

static int manifest_record_to(const char *dir, int fd, size_t *count,
			      char *digest)
{
	struct walk *w;
	struct mwriter o;
	char d[72];
	int r;

	if (fd < 0)
		return -EBADF;
	r = mw_init(&o, fd);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w)); /* PATH_MAX of path: not on the stack */
	if (!w) {
		mw_done(&o);
		return -ENOMEM;
	}
	w->visit = visit_write;
	w->data = &o;
	r = walk_tree(w, dir);
	free(w);
	if (r >= 0)
		r = mw_finish(&o, d);
	if (r >= 0 && count)
		*count = o.count;
	if (r >= 0 && digest)
		memcpy(digest, d, sizeof(d));
	mw_done(&o);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

struct defaults {
	bool has_uid, has_gid, has_mode, has_type;
	uint32_t uid, gid, mode, type;
};

static int parse_mode(const char *s, size_t len, uint32_t *ret)
{
	uint32_t v = 0;
	size_t i;

	if (len == 0 || len > 6)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -EINVAL;
		v = v << 3 | (uint32_t)(s[i] - '0');
	}
	if (v > 07777)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_type(const char *s, size_t len, uint32_t *ret)
{
	static const struct {
		const char *name;
		uint32_t type;
	} types[] = {
		{ "dir", S_IFDIR },   { "file", S_IFREG }, { "link", S_IFLNK },
		{ "char", S_IFCHR },  { "block", S_IFBLK }, { "fifo", S_IFIFO },
		{ "socket", S_IFSOCK },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(types); i++)
		if (strlen(types[i].name) == len && !strncmp(s, types[i].name, len)) {
			*ret = types[i].type;
			return 0;
		}
	return -EINVAL;
}

/* Apply "key=value" words of a line to the defaults. */
static int parse_keywords(const char *s, size_t len, struct defaults *d,
			  bool unset, const char **err)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end, eq;
		const char *k;

		while (pos < len && (s[pos] == ' ' || s[pos] == '\t'))
			pos++;
		if (pos >= len)
			break;
		for (end = pos; end < len && s[end] != ' ' && s[end] != '\t'; end++)
			;
		k = s + pos;
		for (eq = pos; eq < end && s[eq] != '='; eq++)
			;
		if (unset) {
			size_t kl = end - pos;

			if (kl == 3 && !strncmp(k, "uid", 3))
				d->has_uid = false;
			else if (kl == 3 && !strncmp(k, "gid", 3))
				d->has_gid = false;
			else if (kl == 4 && !strncmp(k, "mode", 4))
				d->has_mode = false;
			else if (kl == 4 && !strncmp(k, "type", 4))
				d->has_type = false;
			else if (kl == 3 && !strncmp(k, "all", 3))
				d->has_uid = d->has_gid = d->has_mode = d->has_type = false;
			pos = end;
			continue;
		}
		if (eq == end) {
			pos = end; /* a flag keyword such as "nochange" */
			continue;
		}
		if (eq - pos == 3 && !strncmp(k, "uid", 3)) {
			if (parse_u32_str(s + eq + 1, end - eq - 1, &d->uid) < 0) {
				*err = "bad uid";
				return -EBADMSG;
			}
			d->has_uid = true;
		} else if (eq - pos == 3 && !strncmp(k, "gid", 3)) {
			if (parse_u32_str(s + eq + 1, end - eq - 1, &d->gid) < 0) {
				*err = "bad gid";
				return -EBADMSG;
			}
			d->has_gid = true;
		} else if (eq - pos == 4 && !strncmp(k, "mode", 4)) {
			if (parse_mode(s + eq + 1, end - eq - 1, &d->mode) < 0) {
				*err = "bad mode (octal, symbolic modes are not supported)";
				return -EBADMSG;
			}
			d->has_mode = true;
		} else if (eq - pos == 4 && !strncmp(k, "type", 4)) {
			if (parse_type(s + eq + 1, end - eq - 1, &d->type) < 0) {
				*err = "bad type";
				return -EBADMSG;
			}
			d->has_type = true;
		}
		/* other mtree keywords (size, time, link, digests...) are
		 * not ownership: ignored */
		pos = end;
	}
	return 0;
}

static int parse_extension(struct shift_manifest *m, struct mentry *e,
			   const char *s, size_t len, const char **err)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end, eq;
		const char *k;
		int r = 0;

		while (pos < len && s[pos] == ' ')
			pos++;
		if (pos >= len)
			break;
		for (end = pos; end < len && s[end] != ' '; end++)
			;
		k = s + pos;
		for (eq = pos; eq < end && s[eq] != '='; eq++)
			;
		if (eq - pos == 10 && !strncmp(k, "acl.access", 10)) {
			r = acl_from_text(m, s + eq + 1, end - eq - 1, &e->acl_a);
			*err = "bad acl.access";
		} else if (eq - pos == 11 && !strncmp(k, "acl.default", 11)) {
			r = acl_from_text(m, s + eq + 1, end - eq - 1, &e->acl_d);
			*err = "bad acl.default";
		} else if (eq - pos == 5 && !strncmp(k, "fcaps", 5)) {
			r = caps_from_text(m, s + eq + 1, end - eq - 1, e);
			*err = "bad fcaps";
		} else if (eq - pos == 7 && !strncmp(k, "overlay", 7)) {
			*err = "bad overlay (whiteout, opaque)";
			if (end - eq - 1 == 8 &&
			    !strncmp(s + eq + 1, "whiteout", 8) &&
			    S_ISCHR(e->mode))
				e->flags |= ME_WHITEOUT;
			else if (end - eq - 1 == 6 &&
				 !strncmp(s + eq + 1, "opaque", 6) &&
				 S_ISDIR(e->mode))
				e->flags |= ME_OPAQUE;
			else
				r = -EINVAL;
		} else {
			*err = "unknown #shiftkit keyword";
			r = -EINVAL;
		}
		if (r < 0)
			return r == -ENOMEM ? r : -EBADMSG;
		pos = end;
	}
	*err = NULL;
	return 0;
}

/*
 * Reading a manifest as a stream of entries: lines are read in pieces
 * from the file and digested as they go; an entry is handed out once the
 * line after it shows whether an extension line belongs to it.  What is
 * held is the current piece of the file and two entries.
 */
struct mreader {
	int fd;
	char *buf;
	size_t cap, start, end; /* unread bytes: buf[start..end) */
	size_t dpos;		/* buf[..dpos) went into the digest */
	bool eof, have_digest;
	EVP_MD_CTX *md;
	struct defaults d;
	unsigned lineno;
	char digest[8 + 64 + 1];
	/* the entry waiting for a possible extension line lives in
	 * store[cur], the one handed out before it in the other */
	struct shift_manifest *store[2];
	int cur;
	struct mentry pending;
	bool have_pending, pending_ext;
	const char *err;
	unsigned err_line;
};

#define MR_PIECE (256 << 10)
#define MR_MAX_LINE (16 << 20)

static int mr_init(struct mreader *r, int fd)
{
	*r = (struct mreader){.fd = fd};
	r->md = EVP_MD_CTX_new();
	r->store[0] = manifest_new();
	r->store[1] = manifest_new();
	r->buf = malloc(MR_PIECE);
	r->cap = MR_PIECE;
	if (!r->md || !r->store[0] || !r->store[1] || !r->buf ||
	    !EVP_DigestInit_ex(r->md, EVP_sha256(), NULL))
		return -ENOMEM;
	return 0;
}

static void mr_done(struct mreader *r)
{
	EVP_MD_CTX_free(r->md);
	shift_manifest_free(r->store[0]);
	shift_manifest_free(r->store[1]);
	free(r->buf);
	r->md = NULL;
	r->store[0] = r->store[1] = NULL;
	r->buf = NULL;
}

/* Empty a store for the next entry: keep its first chunk. */
static void store_reset(struct shift_manifest *m)
{
	struct arena_chunk *c = m->arena, *next;

	m->n = 0;
	if (!c)
		return;
	for (next = c->next; next; next = c->next) {
		c->next = next->next;
		free(next);
	}
	c->used = 0;
}

static int mr_digest_to(struct mreader *r, size_t pos)
{
	if (pos > r->dpos &&
	    !EVP_DigestUpdate(r->md, r->buf + r->dpos, pos - r->dpos))
		return -ENOMEM;
	r->dpos = pos;
	return 0;
}

/* The next line, without its newline, in line and len: 1; 0 at the end. */
static int mr_line(struct mreader *r, const char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		ssize_t k;

		if (nl || (r->eof && r->end > r->start)) {
			size_t l = nl ? (size_t)(nl - (r->buf + r->start))
				      : r->end - r->start;

			*line = r->buf + r->start;
			*len = l;
			r->start += l + (nl ? 1 : 0);
			if (memchr(*line, '\0', l)) {
				r->err = "not a text file";
				return -EBADMSG;
			}
			return 1;
		}
		if (r->eof)
			return 0;
		/* digest what was read, move the rest to the front */
		if (mr_digest_to(r, r->start) < 0)
			return -ENOMEM;
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = r->dpos = 0;
		if (r->cap - r->end < MR_PIECE / 2) {
			char *nb;

			if (r->cap >= MR_MAX_LINE) {
				r->err = "a line longer than 16 MiB";
				return -EBADMSG;
			}
			nb = realloc(r->buf, r->cap * 2);
			if (!nb)
				return -ENOMEM;
			r->buf = nb;
			r->cap *= 2;
		}
		k = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			r->eof = true;
		r->end += (size_t)k;
	}
}

/* An entry line into *e, its strings in store. */
static int parse_entry_line(struct mreader *r, struct shift_manifest *store,
			    const char *line, size_t llen, struct mentry *e)
{
	struct defaults ed = r->d;
	char path[PATH_MAX + 2];
	size_t plen;
	int q;

	for (plen = 0; plen < llen && line[plen] != ' ' && line[plen] != '\t';
	     plen++)
		;
	q = mtree_unescape(line, plen, path, sizeof(path));
	if (q < 0) {
		r->err = "bad path";
		return -EBADMSG;
	}
	if (strcmp(path, ".") != 0 && strncmp(path, "./", 2) != 0) {
		r->err = "not a full-path mtree entry (paths start with '.')";
		return -EBADMSG;
	}
	q = parse_keywords(line + plen, llen - plen, &ed, false, &r->err);
	if (q < 0)
		return q;
	if (!ed.has_type || !ed.has_uid || !ed.has_gid || !ed.has_mode) {
		r->err = "entry lacks one of type, uid, gid, mode";
		return -EBADMSG;
	}
	*e = (struct mentry){0};
	e->path = arena_strndup(store, path, strlen(path));
	if (!e->path)
		return -ENOMEM;
	e->uid = ed.uid;
	e->gid = ed.gid;
	e->mode = ed.type | ed.mode;
	return 0;
}

/*
 * The next entry in *e, valid until the next call: 1; 0 after the last
 * one, once the digest line was found to match; negative errno (-EBADMSG
 * with r->err and r->err_line when malformed).
 */
static int mr_next(struct mreader *r, struct mentry *e)
{
	for (;;) {
		const char *line;
		size_t llen;
		int k = mr_line(r, &line, &llen);

		if (k < 0) {
			r->err_line = r->lineno + 1;
			return k;
		}
		if (k == 0) {
			if (r->have_pending) {
				*e = r->pending;
				r->have_pending = false;
				return 1;
			}
			if (!r->have_digest) {
				r->err = "no digest line (#shiftkit "
					 "sha256=...): truncated?";
				r->err_line = 0;
				return -EBADMSG;
			}
			return 0;
		}
		r->lineno++;
		r->err_line = r->lineno;
		if (r->have_digest) {
			r->err = "text after the digest line";
			return -EBADMSG;
		}
		if (llen > 17 && !strncmp(line, "#shiftkit sha256=", 17)) {
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned mdlen = 0, i;
			char hex[65];

			if (mr_digest_to(r, (size_t)(line - r->buf)) < 0 ||
			    !EVP_DigestFinal_ex(r->md, md, &mdlen) ||
			    mdlen != 32)
				return -ENOMEM;
			for (i = 0; i < 32; i++)
				sprintf(hex + 2 * i, "%02x", md[i]);
			if (llen != 17 + 64 ||
			    strncmp(line + 17, hex, 64) != 0) {
				r->err = "digest does not match: the manifest "
					 "was changed or truncated";
				return -EBADMSG;
			}
			snprintf(r->digest, sizeof(r->digest), "sha256:%s",
				 hex);
			r->have_digest = true;
		} else if (llen > 10 && !strncmp(line, "#shiftkit ", 10)) {
			if (!r->have_pending || r->pending_ext) {
				r->err = "#shiftkit line before any entry";
				return -EBADMSG;
			}
			k = parse_extension(r->store[r->cur], &r->pending,
					    line + 10, llen - 10, &r->err);
			if (k < 0)
				return k;
			r->pending_ext =
			    true; /* one extension line per entry */
		} else if (llen == 0 || line[0] == '#') {
			/* comment */
		} else if (llen >= 4 && !strncmp(line, "/set", 4)) {
			k = parse_keywords(line + 4, llen - 4, &r->d, false,
					   &r->err);
			if (k < 0)
				return k;
		} else if (llen >= 6 && !strncmp(line, "/unset", 6)) {
			parse_keywords(line + 6, llen - 6, &r->d, true,
				       &r->err);
		} else if (line[llen - 1] == '\\') {
			r->err = "continued lines are not supported";
			return -EBADMSG;
		} else {
			struct shift_manifest *st = r->store[!r->cur];
			struct mentry n;

			store_reset(st);
			k = parse_entry_line(r, st, line, llen, &n);
			if (k < 0)
				return k;
			r->cur = !r->cur;
			r->pending_ext = false;
			if (r->have_pending) {
				*e = r->pending;
				r->pending = n;
				return 1;
			}
			r->pending = n;
			r->have_pending = true;
		}
	}
}

static int open_manifest(const char *path, struct shift_error *err)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? sk_error_set_path(err, negative_errno(), path, NULL)
		      : fd;
}

static void mr_error(const struct mreader *r, int ret, const char *path,
		     struct shift_error *err)
{
	if (ret >= 0)
		return;
	if (ret == -EBADMSG && r->err)
		sk_error_set_line(err, ret, r->err_line, 0, "%s", r->err);
	sk_error_path(err, ret, path);
}

int shift_manifest_read(const char *path, struct shift_manifest **ret,
			struct shift_error *err)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct mreader r;
	struct mentry e;
	size_t i;
	int k;

	fd = open_manifest(path, err);
	if (fd < 0)
		return fd;
	m = manifest_new();
	if (!m)
		return -ENOMEM;
	k = mr_init(&r, fd);
	while (k >= 0 && (k = mr_next(&r, &e)) > 0)
		k = manifest_add_copy(m, &e, strlen(e.path));
	mr_error(&r, k, path, err);
	if (k == 0)
		memcpy(m->digest, r.digest, sizeof(m->digest));
	mr_done(&r);
	if (k < 0)
		return k;
	if (m->n)
		qsort(m->e, m->n, sizeof(m->e[0]), entry_cmp);
	for (i = 1; i < m->n; i++)
		if (path_cmp(m->e[i - 1].path, m->e[i].path) == 0)
			return sk_error_set_path(err, -EBADMSG, path,
						 "a path appears twice");
	*ret = TAKE_PTR(m);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checking                                                            */
/* ------------------------------------------------------------------ */

/* The entry as it must look under map: what the engine writes and what
 * the kernel shows through an idmapped mount. */
static int expect_entry(struct shift_manifest *scratch, const struct mentry *in,
			const struct shift_idmap *map, struct mentry *out)
{
	int r;

	*out = *in;
	if (!map)
		return 0;
	if (shift_idmap_to_seen(map, SHIFT_UID, in->uid, &out->uid) < 0)
		out->uid = SHIFT_OVERFLOW_ID;
	if (shift_idmap_to_seen(map, SHIFT_GID, in->gid, &out->gid) < 0)
		out->gid = SHIFT_OVERFLOW_ID;
	if (in->acl_a.len) {
		r = blob_set(scratch, &out->acl_a, in->acl_a.data, in->acl_a.len);
		if (r < 0)
			return r;
		shift_acl_translate(out->acl_a.data, out->acl_a.len, map, true,
				    SHIFT_UNMAPPED_OVERFLOW, NULL, NULL);
	}
	if (in->acl_d.len) {
		r = blob_set(scratch, &out->acl_d, in->acl_d.data, in->acl_d.len);
		if (r < 0)
			return r;
		shift_acl_translate(out->acl_d.data, out->acl_d.len, map, true,
				    SHIFT_UNMAPPED_OVERFLOW, NULL, NULL);
	}
	if (in->caps.len) {
		unsigned char buf[CAPS_SZ_3];

		r = shift_fcaps_translate(in->caps.data, in->caps.len, buf,
					  sizeof(buf), map, true);
		if (r == -ERANGE) {
			out->caps.len = 0;
			out->flags |= ME_CAPS_OVERFLOW;
		} else if (r > 0) {
			r = blob_set(scratch, &out->caps, buf, (size_t)r);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

struct diff_ctx {
	shift_difference_fn fn;
	void *userdata;
	int count;
	/* layered: who gets the differences, and the current entry's layer */
	shift_layer_difference_fn lfn;
	size_t layer;
};

static int report(struct diff_ctx *c, const char *path, const char *field,
		  const char *expected, const char *found)
{
	struct shift_difference d = { path, field, expected, found };
	int r = 0;

	c->count++;
	if (c->lfn)
		r = c->lfn(&d, c->layer, c->userdata);
	else if (c->fn)
		r = c->fn(&d, c->userdata);
	return r < 0 ? r : 0;
}

static int report_u32(struct diff_ctx *c, const char *path, const char *field,
		      uint32_t expected, uint32_t found)
{
	char x[16], y[16];

	snprintf(x, sizeof(x), "%" PRIu32, expected);
	snprintf(y, sizeof(y), "%" PRIu32, found);
	return report(c, path, field, x, y);
}

static int report_blob(struct diff_ctx *c, const char *path, const char *field,
		       const struct mentry *x, const struct mentry *y,
		       bool caps)
{
	const struct blob *bx = caps ? &x->caps :
				!strcmp(field, "acl.access") ? &x->acl_a : &x->acl_d;
	const struct blob *by = caps ? &y->caps :
				!strcmp(field, "acl.access") ? &y->acl_a : &y->acl_d;
	struct strbuf sx = { 0 }, sy = { 0 };
	int r;

	if (caps) {
		if (bx->len || (x->flags & ME_CAPS_OVERFLOW))
			caps_to_text(bx, x->flags, &sx);
		if (by->len || (y->flags & ME_CAPS_OVERFLOW))
			caps_to_text(by, y->flags, &sy);
	} else {
		if (bx->len)
			acl_to_text(bx, &sx);
		if (by->len)
			acl_to_text(by, &sy);
	}
	if (sx.oom || sy.oom)
		r = -ENOMEM;
	else if (sx.s && sy.s && !strcmp(sx.s, sy.s))
		r = 0; /* same meaning, different bytes (e.g. v3 rootid 0) */
	else
		r = report(c, path, field, sx.s ? sx.s : "none",
			   sy.s ? sy.s : "none");
	free(sx.s);
	free(sy.s);
	return r;
}

static bool blob_eq(const struct blob *a, const struct blob *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static int compare_entry(struct diff_ctx *c, const struct mentry *x,
			 const struct mentry *y)
{
	int r;

	if ((x->mode & S_IFMT) != (y->mode & S_IFMT))
		return report(c, x->path, "type", mtree_type(x->mode),
			      mtree_type(y->mode));
	if (x->uid != y->uid && (r = report_u32(c, x->path, "uid", x->uid, y->uid)) < 0)
		return r;
	if (x->gid != y->gid && (r = report_u32(c, x->path, "gid", x->gid, y->gid)) < 0)
		return r;
	if ((x->mode & 07777) != (y->mode & 07777) && !S_ISLNK(x->mode)) {
		char a[8], b[8];

		snprintf(a, sizeof(a), "%04o", x->mode & 07777);
		snprintf(b, sizeof(b), "%04o", y->mode & 07777);
		if ((r = report(c, x->path, "mode", a, b)) < 0)
			return r;
	}
	if (!blob_eq(&x->acl_a, &y->acl_a) &&
	    (r = report_blob(c, x->path, "acl.access", x, y, false)) < 0)
		return r;
	if (!blob_eq(&x->acl_d, &y->acl_d) &&
	    (r = report_blob(c, x->path, "acl.default", x, y, false)) < 0)
		return r;
	if ((!blob_eq(&x->caps, &y->caps) ||
	     (x->flags & ME_CAPS_OVERFLOW) != (y->flags & ME_CAPS_OVERFLOW)) &&
	    (r = report_blob(c, x->path, "fcaps", x, y, true)) < 0)
		return r;
	return 0;
}

/*
 * Compare the expected entries m (origin[i]: the layer entry i comes from,
 * when layered) with the recorded tree t.
 */
static int compare_trees(struct diff_ctx *c, const struct shift_manifest *m,
			 const size_t *origin, const struct shift_idmap *map,
			 const struct shift_manifest *t, unsigned flags)
{
	_cleanup_manifest_ struct shift_manifest *scratch = NULL;
	size_t i = 0, j = 0;
	int r;

	scratch = manifest_new();
	if (!scratch)
		return -ENOMEM;
	while (i < m->n || j < t->n) {
		int cmp = i >= m->n ? 1 : j >= t->n ? -1 :
			  path_cmp(m->e[i].path, t->e[j].path);

		/* an extra entry belongs to no layer: the top one */
		c->layer = origin && i < m->n ? origin[i] : 0;
		if (cmp < 0) {
			if (!(flags & SHIFT_CHECK_IGNORE_MISSING) &&
			    (r = report(c, m->e[i].path, "entry", "present",
					"absent")) < 0)
				return r;
			i++;
		} else if (cmp > 0) {
			if (!(flags & SHIFT_CHECK_IGNORE_EXTRA) &&
			    (r = report(c, t->e[j].path, "entry", "absent",
					"present")) < 0)
				return r;
			j++;
		} else {
			struct mentry x;

			r = expect_entry(scratch, &m->e[i], map, &x);
			if (r < 0)
				return r;
			r = compare_entry(c, &x, &t->e[j]);
			if (r < 0)
				return r;
			i++;
			j++;
			/* scratch blobs are per entry: recycle the arena */
			if (scratch->arena)
				scratch->arena->used = 0;
		}
	}
	return c->count;
}

/* ------------------------------------------------------------------ */
/* Checking in bounded memory: the manifest file and the walk merged   */
/* ------------------------------------------------------------------ */

/* Is path below the directory dir[0..dlen) (its child if child)? */
static bool is_below(const char *path, const char *dir, size_t dlen, bool child)
{
	if (strncmp(path, dir, dlen) != 0 || path[dlen] != '/')
		return false;
	return !child || !strchr(path + dlen + 1, '/');
}

/* The directories from "." to the last entry's, while checking that a
 * manifest is in the walk's order. */
struct olevel {
	size_t plen;		      /* the directory's path: opath[0..plen) */
	bool dirs;		      /* its subdirectories have begun */
	char *last;		      /* the last subdirectory's name */
	struct shift_manifest *files; /* its non-directories' names */
};

struct ocheck {
	struct olevel *lv;
	size_t n, cap;
	char path[PATH_MAX + 2];
};

static void ocheck_pop(struct ocheck *o)
{
	struct olevel *l = &o->lv[--o->n];

	free(l->last);
	shift_manifest_free(l->files);
}

static int name_cmp(const void *key, const void *e)
{
	return strcmp(key, ((const struct mentry *)e)->path);
}

/* The entry named name among e[0..n), sorted by name (e may be NULL). */
static struct mentry *find_name(struct mentry *e, size_t n, const char *name)
{
	return n ? bsearch(name, e, n, sizeof(*e), name_cmp) : NULL;
}

/*
 * Is e where the walk would put it after the entries before it?  1 yes,
 * 0 no (the manifest must be read whole), -ENOMEM.  A directory named as
 * a non-directory of the same directory is a path appearing twice:
 * -EBADMSG.
 */
static int ocheck_next(struct ocheck *o, const struct mentry *e)
{
	size_t len = strlen(e->path), plen;
	const char *name;
	struct olevel *l;
	char *dup;

	if (o->n == 0) {
		if (o->cap || strcmp(e->path, ".") || !S_ISDIR(e->mode))
			return 0; /* "." first, once */
		o->lv = calloc(16, sizeof(*o->lv));
		if (!o->lv)
			return -ENOMEM;
		o->cap = 16;
		o->lv[0] = (struct olevel){.plen = 1};
		o->lv[0].files = manifest_new();
		if (!o->lv[0].files)
			return -ENOMEM;
		o->n = 1;
		o->path[0] = '.';
		return 1;
	}
	while (o->n && !is_below(e->path, o->path, o->lv[o->n - 1].plen, true))
		ocheck_pop(o);
	if (!o->n)
		return 0;
	l = &o->lv[o->n - 1];
	plen = l->plen;
	name = e->path + plen + 1;
	if (!S_ISDIR(e->mode)) {
		struct mentry *f;

		/* the names of the non-directories: the last one is the
		 * last name, the others refuse a directory's name */
		if (l->dirs ||
		    (l->files->n &&
		     strcmp(l->files->e[l->files->n - 1].path, name) >= 0))
			return 0;
		f = manifest_add(l->files);
		if (!f ||
		    !(f->path = arena_strndup(l->files, name, strlen(name))))
			return -ENOMEM;
		return 1;
	}
	l->dirs = true;
	if (find_name(l->files->e, l->files->n, name))
		return -EBADMSG;
	if (l->last && strcmp(l->last, name) >= 0)
		return 0;
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	free(l->last);
	l->last = dup;
	if (len >= sizeof(o->path))
		return 0;
	if (o->n == o->cap) {
		struct olevel *nl = realloc(o->lv, 2 * o->cap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		o->lv = nl;
		o->cap *= 2;
	}
	memcpy(o->path, e->path, len + 1);
	o->lv[o->n] = (struct olevel){.plen = len};
	o->lv[o->n].files = manifest_new();
	if (!o->lv[o->n++].files)
		return -ENOMEM;
	return 1;
}

int shift_manifest_open(const char *path, struct shift_manifest **ret,
			struct shift_error *err)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct ocheck o = {0};
	struct mreader r;
	struct mentry e;
	bool ordered = true;
	size_t n = 0;
	int k, q;

	fd = open_manifest(path, err);
	if (fd < 0)
		return fd;
	m = manifest_new();
	if (!m)
		return -ENOMEM;
	k = mr_init(&r, fd);
	while (k >= 0 && (k = mr_next(&r, &e)) > 0) {
		n++;
		if (!ordered)
			continue;
		q = ocheck_next(&o, &e);
		if (q == -EBADMSG) {
			r.err = "a path appears twice";
			r.err_line = 0;
			k = q;
		} else if (q < 0)
			k = q;
		else if (q == 0)
			ordered = false;
	}
	mr_error(&r, k, path, err);
	if (k == 0)
		memcpy(m->digest, r.digest, sizeof(m->digest));
	mr_done(&r);
	while (o.n)
		ocheck_pop(&o);
	free(o.lv);
	if (k < 0)
		return k;
	if (!ordered || n == 0) /* another writer's order: read it whole */
		return shift_manifest_read(path, ret, err);
	m->stream = strdup(path);
	if (!m->stream)
		return -ENOMEM;
	m->stream_n = n;
	*ret = TAKE_PTR(m);
	return 0;
}

struct smerge {
	struct walk w; /* the tree's side; w.path: the current path */
	/* the manifest's side: the file (r), or entries in memory in the
	 * walk's order (mem[0..mem_n)) */
	struct mreader r;
	const struct mentry **mem;
	size_t mem_n, mem_i;
	struct mentry next; /* the manifest's next entry, if have */
	int have;
	struct diff_ctx *c;
	size_t extra_layer; /* the layer extra entries are charged to */
	const struct shift_idmap *map;
	unsigned flags;
	struct shift_manifest *scratch;
};

static int sm_advance(struct smerge *s)
{
	if (s->mem) {
		s->have = s->mem_i < s->mem_n;
		if (s->have)
			s->next = *s->mem[s->mem_i++];
		return 0;
	}
	s->have = mr_next(&s->r, &s->next);
	return s->have < 0 ? s->have : 0;
}

static int sm_missing(struct smerge *s, const struct mentry *me)
{
	if (s->flags & SHIFT_CHECK_IGNORE_MISSING)
		return 0;
	s->c->layer = me->flags >> ME_LAYER_SHIFT;
	return report(s->c, me->path, "entry", "present", "absent");
}

/* The manifest's entries below w.path[0..plen): not in the tree. */
static int sm_missing_below(struct smerge *s, size_t plen)
{
	int r;

	while (s->have > 0 && is_below(s->next.path, s->w.path, plen, false)) {
		r = sm_missing(s, &s->next);
		if (r >= 0)
			r = sm_advance(s);
		if (r < 0)
			return r;
	}
	return s->have < 0 ? s->have : 0;
}

static int visit_extra(struct walk *w, const struct mentry *e, size_t plen)
{
	struct smerge *s = w->data;

	s->c->layer = s->extra_layer;
	return report(s->c, e->path, "entry", "absent", "present");
}

/* The tree's entries below the directory name in dfd, its path in
 * w.path[0..plen): not in the manifest. */
static int sm_extra_below(struct smerge *s, int dfd, const char *name,
			  size_t plen)
{
	int (*visit)(struct walk *, const struct mentry *, size_t) = s->w.visit;
	int cfd, r;

	if (s->flags & SHIFT_CHECK_IGNORE_EXTRA)
		return 0;
	cfd =
	    openat(dfd, name,
		   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (cfd < 0) {
		if (errno == ENOENT)
			return 0;
		r = negative_errno();
		set_err_path(s->w.path, plen);
		return r;
	}
	s->w.visit = visit_extra;
	r = walk_dir(&s->w, cfd, plen);
	s->w.visit = visit;
	return r;
}

/* Compare the manifest's entry m with the tree's t (path set). */
static int sm_compare(struct smerge *s, const struct mentry *m,
		      const struct mentry *t)
{
	struct mentry x;
	int r;

	s->c->layer = m->flags >> ME_LAYER_SHIFT;
	r = expect_entry(s->scratch, m, s->map, &x);
	if (r >= 0)
		r = compare_entry(s->c, &x, t);
	if (s->scratch->arena)
		s->scratch->arena->used = 0;
	return r;
}

/* The tree's entry t (a name in the directory at w.path[0..plen)) with its
 * full path, counted. */
static size_t sm_tree_path(struct smerge *s, size_t plen, struct mentry *t,
			   const char **name)
{
	size_t nlen = strlen(t->path);

	*name = t->path;
	s->w.path[plen] = '/';
	memcpy(s->w.path + plen + 1, t->path, nlen + 1);
	t->path = s->w.path;
	s->w.count++;
	if (progress_fn && (s->w.count & 1023) == 0)
		progress_fn(s->w.count, progress_data);
	return plen + 1 + nlen;
}

static int sm_dir(struct smerge *s, int dfd, size_t plen);

/*
 * The tree's entry l->e[k] (not yet matched) and the manifest's next
 * entry if it has the same name (same: 1, 0 none): compare them and what
 * is below them.
 */
static int sm_pair(struct smerge *s, DIR *d, struct mentry *t, size_t plen,
		   bool same)
{
	const char *name;
	size_t clen = sm_tree_path(s, plen, t, &name);
	bool mdir = same && S_ISDIR(s->next.mode);
	int r;

	s->c->layer = s->extra_layer;
	if (!same) {
		r = s->flags & SHIFT_CHECK_IGNORE_EXTRA
			? 0
			: report(s->c, t->path, "entry", "absent", "present");
	} else {
		r = sm_compare(s, &s->next, t);
		if (r >= 0)
			r = sm_advance(s);
	}
	t->path = (char *)name;
	if (r < 0)
		return r;
	if (mdir && S_ISDIR(t->mode)) {
		int cfd = openat(dirfd(d), name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				     O_CLOEXEC | O_NOCTTY);

		if (cfd < 0) {
			if (errno != ENOENT) {
				r = negative_errno();
				set_err_path(s->w.path, clen);
				return r;
			}
			/* gone meanwhile: what was below it is missing */
			return sm_missing_below(s, clen);
		}
		return sm_dir(s, cfd, clen);
	}
	if (mdir) /* a directory became something else */
		r = sm_missing_below(s, clen);
	if (r >= 0 && S_ISDIR(t->mode))
		r = sm_extra_below(s, dirfd(d), name, clen);
	return r;
}

/*
 * Below the directory dfd (consumed), at w.path[0..plen), both sides in
 * the walk's order: first the manifest's non-directories of it (read into
 * mf, one directory's worth), matched with the tree's entries of any
 * type by name; then the manifest's subdirectories, each followed by its
 * subtree, merged by name with the tree's entries not matched yet.
 */
static int sm_dir(struct smerge *s, int dfd, size_t plen)
{
	_cleanup_manifest_ struct shift_manifest *l = NULL, *mf = NULL;
	_cleanup_free_ bool *matched = NULL;
	size_t i, j, k, nfiles = 0;
	DIR *d;
	int r;

	d = fdopendir(dfd);
	if (!d) {
		r = negative_errno();
		set_err_path(s->w.path, plen);
		close(dfd);
		return r;
	}
	mf = manifest_new();
	r = mf ? read_listing(&s->w, d, plen, &l, &nfiles) : -ENOMEM;
	if (r >= 0 && !(matched = calloc(l->n ? l->n : 1, sizeof(*matched))))
		r = -ENOMEM;
	while (r >= 0 && s->have > 0 &&
	       is_below(s->next.path, s->w.path, plen, true) &&
	       !S_ISDIR(s->next.mode)) {
		r = manifest_add_copy(mf, &s->next, strlen(s->next.path));
		if (r >= 0)
			r = sm_advance(s);
	}
	for (k = 0; r >= 0 && k < (mf ? mf->n : 0); k++) {
		const struct mentry *me = &mf->e[k];
		const char *name = me->path + plen + 1;
		struct mentry *t;
		const char *tname;
		size_t clen;

		t = find_name(l->e, nfiles, name);
		if (!t && l->n > nfiles)
			t = find_name(l->e + nfiles, l->n - nfiles, name);
		if (!t) {
			r = sm_missing(s, me);
			continue;
		}
		matched[t - l->e] = true;
		clen = sm_tree_path(s, plen, t, &tname);
		r = sm_compare(s, me, t);
		t->path = (char *)tname;
		if (r >= 0 && S_ISDIR(t->mode))
			r = sm_extra_below(s, dirfd(d), tname, clen);
	}
	/* the tree's rest (non-directories i, directories j) by name */
	i = 0;
	j = nfiles;
	while (r >= 0) {
		const char *mname = NULL;
		struct mentry *t = NULL;
		int cmp;

		while (i < nfiles && matched[i])
			i++;
		while (j < l->n && matched[j])
			j++;
		if (i < nfiles &&
		    (j >= l->n || strcmp(l->e[i].path, l->e[j].path) < 0))
			t = &l->e[i];
		else if (j < l->n)
			t = &l->e[j];
		if (s->have > 0 &&
		    is_below(s->next.path, s->w.path, plen, true)) {
			if (!S_ISDIR(s->next.mode)) {
				r = -EBADMSG; /* not the order seen when opened
					       */
				break;
			}
			mname = s->next.path + plen + 1;
		}
		if (!mname && !t)
			break;
		cmp = !mname ? 1 : !t ? -1 : strcmp(mname, t->path);
		if (cmp < 0) {
			size_t nlen = strlen(mname);

			r = sm_missing(s, &s->next);
			/* its path stays in w.path for what is below it */
			s->w.path[plen] = '/';
			memcpy(s->w.path + plen + 1, mname, nlen + 1);
			if (r >= 0)
				r = sm_advance(s);
			if (r >= 0)
				r = sm_missing_below(s, plen + 1 + nlen);
			continue;
		}
		matched[t - l->e] = true;
		r = sm_pair(s, d, t, plen, cmp == 0);
	}
	closedir(d);
	return r;
}

/* The tree at dir against s's manifest side, which starts with ".". */
static int sm_run(struct smerge *s, const char *dir)
{
	_cleanup_manifest_ struct shift_manifest *store = manifest_new();
	struct mentry root = {0};
	struct statx stx;
	int fd, r;

	err_path[0] = '\0';
	if (!store)
		return -ENOMEM;
	r = sm_advance(s);
	if (r >= 0 && (s->have <= 0 || strcmp(s->next.path, ".") != 0))
		r = -EBADMSG; /* not what was opened */
	if (r < 0)
		return r;
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
	s->w.data = s;
	s->w.mnt_id = stx.stx_mnt_id;
	s->w.path[0] = '.';
	s->w.path[1] = '\0';
	s->w.count = 1;
	r = fill_entry(store, &root, fd, ".", &stx);
	if (r >= 0) {
		root.path = s->w.path;
		r = sm_compare(s, &s->next, &root);
	}
	if (r >= 0)
		r = sm_advance(s);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = sm_dir(s, fd, 1);
	/* everything is below "." */
	if (r >= 0 && s->have != 0)
		r = s->have < 0 ? s->have : -EBADMSG;
	if (r >= 0 && progress_fn)
		progress_fn(s->w.count, progress_data);
	return r;
}

/* Check the tree at dir against the manifest file m->stream. */
static int check_stream(const struct shift_manifest *m,
			const struct shift_idmap *map, const char *dir,
			unsigned flags, shift_difference_fn fn, void *userdata)
{
	_cleanup_close_ int mfd = -EBADF;
	struct diff_ctx c = {.fn = fn, .userdata = userdata};
	struct smerge *s;
	int r;

	mfd = open(m->stream, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (mfd < 0)
		return negative_errno();
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->c = &c;
	s->map = map;
	s->flags = flags;
	s->scratch = manifest_new();
	r = s->scratch ? mr_init(&s->r, mfd) : -ENOMEM;
	if (r >= 0)
		r = sm_run(s, dir);
	/* the digest line matched: the same as when opened?  Malformed
	 * now, or in another order: not what was opened either (the tree's
	 * errors name their entry) */
	if (r >= 0 && strcmp(s->r.digest, m->digest) != 0)
		r = -ESTALE;
	if (r == -EBADMSG && !err_path[0])
		r = -ESTALE;
	mr_done(&s->r);
	shift_manifest_free(s->scratch);
	free(s);
	return r < 0 ? r : c.count;
}

/*
 * m (sorted by path_cmp: each directory's subtree right after it) is a
 * tree: "." first and a directory, every other entry's parent present and
 * a directory.  end[i]: the index after entry i's subtree.  1 yes, 0 no.
 */
static int mem_subtrees(const struct shift_manifest *m, size_t *end, size_t *st)
{
	size_t i, nst = 0;

	if (!m->n || strcmp(m->e[0].path, ".") || !S_ISDIR(m->e[0].mode))
		return 0;
	for (i = 0; i < m->n; i++) {
		const char *p = m->e[i].path;

		while (nst && !is_below(p, m->e[st[nst - 1]].path,
					strlen(m->e[st[nst - 1]].path), false))
			end[st[--nst]] = i;
		if (i && (!nst || !S_ISDIR(m->e[st[nst - 1]].mode) ||
			  !is_below(p, m->e[st[nst - 1]].path,
				    strlen(m->e[st[nst - 1]].path), true)))
			return 0; /* its parent is missing or not a directory */
		st[nst++] = i;
	}
	while (nst)
		end[st[--nst]] = m->n;
	return 1;
}

/* The entries below directory i, in the walk's order, into order[k..). */
static size_t mem_walk_order(const struct shift_manifest *m, const size_t *end,
			     size_t i, const struct mentry **order, size_t k)
{
	size_t j;

	for (j = i + 1; j < end[i]; j = end[j])
		if (!S_ISDIR(m->e[j].mode))
			order[k++] = &m->e[j];
	for (j = i + 1; j < end[i]; j = end[j])
		if (S_ISDIR(m->e[j].mode)) {
			order[k++] = &m->e[j];
			k = mem_walk_order(m, end, j, order, k);
		}
	return k;
}

/*
 * Check the tree at dir against m, in memory (sorted by path_cmp), the
 * tree walked and merged as for a manifest file: the tree is not recorded.
 * 1 when m is not a tree (no ".", an entry whose parent is missing or not
 * a directory): the caller compares the old way.
 */
static int check_mem(const struct shift_manifest *m,
		     const struct shift_idmap *map, const char *dir,
		     unsigned flags, struct diff_ctx *c, size_t extra_layer)
{
	_cleanup_free_ const struct mentry **order = NULL;
	_cleanup_free_ size_t *end = NULL, *st = NULL;
	struct smerge *s;
	int r;

	end = calloc(m->n ? m->n : 1, sizeof(*end));
	st = calloc(m->n ? m->n : 1, sizeof(*st));
	if (!end || !st)
		return -ENOMEM;
	if (!mem_subtrees(m, end, st))
		return 1;
	order = calloc(m->n, sizeof(*order));
	s = calloc(1, sizeof(*s));
	if (!order || !s) {
		free(s);
		return -ENOMEM;
	}
	order[0] = &m->e[0];
	if (mem_walk_order(m, end, 0, order, 1) != m->n) {
		free(s);
		return -EIO; /* a bug */
	}
	s->mem = order;
	s->mem_n = m->n;
	s->c = c;
	s->extra_layer = extra_layer;
	s->map = map;
	s->flags = flags;
	s->scratch = manifest_new();
	r = s->scratch ? sm_run(s, dir) : -ENOMEM;
	shift_manifest_free(s->scratch);
	free(s);
	return r < 0 ? r : 0;
}

static int manifest_check(const struct shift_manifest *m,
			  const struct shift_idmap *map, const char *dir,
			  unsigned flags, shift_difference_fn fn, void *userdata)
{
	_cleanup_manifest_ struct shift_manifest *t = NULL;
	struct diff_ctx c = {.fn = fn, .userdata = userdata};
	int r;

	if (m->stream)
		return check_stream(m, map, dir, flags, fn, userdata);
	r = check_mem(m, map, dir, flags, &c, 0);
	if (r <= 0)
		return r < 0 ? r : c.count;
	/* not a tree (another writer's manifest): record ours whole */
	r = manifest_record(dir, &t);
	if (r < 0)
		return r;
	return compare_trees(&c, m, NULL, map, t, flags);
}

/* ------------------------------------------------------------------ */
/* Layers merged by overlayfs                                          */
/* ------------------------------------------------------------------ */

struct lref {
	const struct mentry *e;
	size_t layer;
};

static int lref_cmp(const void *a, const void *b)
{
	const struct lref *x = a, *y = b;
	int c = path_cmp(x->e->path, y->e->path);

	if (c)
		return c;
	return x->layer > y->layer ? -1 : x->layer < y->layer; /* top first */
}

/* Is a an ancestor directory path of b ("." of "./x", "./a" of "./a/b")? */
static bool path_is_ancestor(const char *a, const char *b)
{
	size_t n = strlen(a);

	return strncmp(a, b, n) == 0 && b[n] == '/';
}

struct lstack {
	const char *path;
	size_t floor; /* lowest layer whose entries below path are visible */
};

/*
 * What overlayfs shows of layers[0..n) (bottom first): per path the entry
 * of the highest layer that has it, unless a higher layer hides it: a
 * whiteout hides the path and what is below it, a non-directory hides the
 * lower layers' entries below it, an opaque directory the lower layers'
 * entries below it.  Entries point into the layers' manifests.
 */
static int merge_layers(const struct shift_manifest *const *layers, size_t n,
			struct shift_manifest *out, size_t **ret_origin)
{
	_cleanup_free_ struct lref *refs = NULL;
	_cleanup_free_ struct lstack *st = NULL;
	_cleanup_free_ size_t *origin = NULL;
	size_t total = 0, k = 0, i, g, nst = 0;

	for (i = 0; i < n; i++)
		total += layers[i]->n;
	refs = calloc(total ? total : 1, sizeof(*refs));
	origin = calloc(total ? total : 1, sizeof(*origin));
	st = calloc(total ? total : 1, sizeof(*st));
	if (!refs || !origin || !st)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		for (g = 0; g < layers[i]->n; g++)
			refs[k++] = (struct lref){&layers[i]->e[g], i};
	qsort(refs, total, sizeof(*refs), lref_cmp);
	for (g = 0; g < total;) {
		const struct lref *top = &refs[g];
		size_t h = g + 1, pfloor, floor = n;

		while (h < total &&
		       path_cmp(refs[h].e->path, top->e->path) == 0)
			h++;
		while (nst && !path_is_ancestor(st[nst - 1].path, top->e->path))
			nst--;
		pfloor = nst ? st[nst - 1].floor : 0;
		if (top->layer >= pfloor && !(top->e->flags & ME_WHITEOUT)) {
			struct mentry *e = manifest_add(out);

			if (!e)
				return -ENOMEM;
			*e = *top->e;
			e->flags &= ((uint32_t)1 << ME_LAYER_SHIFT) - 1;
			e->flags &= ~(uint32_t)ME_OPAQUE;
			e->flags |= (uint32_t)top->layer << ME_LAYER_SHIFT;
			origin[out->n - 1] = top->layer;
			if (S_ISDIR(top->e->mode)) {
				/* merged down to the first layer where the
				 * path is not a directory, or is opaque */
				floor = 0;
				for (i = g; i < h; i++) {
					if (!S_ISDIR(refs[i].e->mode)) {
						floor = refs[i].layer + 1;
						break;
					}
					if (refs[i].e->flags & ME_OPAQUE) {
						floor = refs[i].layer;
						break;
					}
				}
				if (floor < pfloor)
					floor = pfloor;
			}
		}
		st[nst++] = (struct lstack){top->e->path, floor};
		g = h;
	}
	*ret_origin = TAKE_PTR(origin);
	return 0;
}

static int manifest_check_layers(const struct shift_manifest *const *layers,
				 size_t n, const struct shift_idmap *map,
				 const char *dir, unsigned flags,
				 shift_layer_difference_fn fn, void *userdata)
{
	_cleanup_manifest_ struct shift_manifest *t = NULL, *merged = NULL;
	_cleanup_free_ size_t *origin = NULL;
	struct diff_ctx c = {.userdata = userdata, .lfn = fn};
	int r;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (layers[i]->stream)
			return -EINVAL; /* merging needs them whole */
	merged = manifest_new();
	if (!merged)
		return -ENOMEM;
	r = merge_layers(layers, n, merged, &origin);
	if (r < 0)
		return r;
	/* the tree walked, not recorded; extra entries (the container's
	 * own) are attributed to the top */
	r = check_mem(merged, map, dir, flags, &c, n - 1);
	if (r <= 0)
		return r < 0 ? r : c.count;
	r = manifest_record(dir, &t);
	if (r < 0)
		return r;
	if (!(flags & SHIFT_CHECK_IGNORE_EXTRA))
		c.layer = n - 1;
	return compare_trees(&c, merged, origin, map, t, flags);
}

/* ------------------------------------------------------------------ */
/* Range check                                                         */
/* ------------------------------------------------------------------ */

static void range_text(const struct shift_idmap *map, enum shift_id_kind k,
		       char *buf, size_t size)
{
	unsigned i, n = shift_idmap_count(map, k);
	size_t len = 0;

	buf[0] = '\0';
	for (i = 0; i < n && len < size; i++) {
		struct shift_extent e;
		int w;

		shift_idmap_extent(map, k, i, &e);
		w = snprintf(buf + len, size - len, "%s%" PRIu32 "-%" PRIu32,
			     i ? "," : "", e.seen, e.seen + e.count - 1);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

struct acl_range {
	const struct shift_idmap *map;
	const struct shift_acl_entry *bad;
	struct shift_acl_entry bad_copy;
};

static int acl_range_entry(const struct shift_acl_entry *e, unsigned idx,
			   void *userdata)
{
	struct acl_range *a = userdata;
	uint32_t x;

	if (e->tag != SHIFT_ACL_USER && e->tag != SHIFT_ACL_GROUP)
		return 0;
	if (shift_idmap_to_disk(a->map, e->tag == SHIFT_ACL_USER ? SHIFT_UID : SHIFT_GID,
				e->id, &x) < 0) {
		a->bad_copy = *e;
		a->bad = &a->bad_copy;
		return 1;
	}
	return 0;
}

struct range_ctx {
	struct diff_ctx c;
	const struct shift_idmap *map;
	char uexp[300], gexp[300];
	int entries;
};

/* One entry of the range check, as the walk comes to it. */
static int visit_range(struct walk *w, const struct mentry *e, size_t plen)
{
	struct range_ctx *rc = w->data;
	struct diff_ctx *c = &rc->c;
	const struct shift_idmap *map = rc->map;
	int before = c->count, r;
	uint32_t x, rootid;
	char found[16];

	if (e->flags & ME_WHITEOUT)
		return 0;
	if (shift_idmap_to_disk(map, SHIFT_UID, e->uid, &x) < 0) {
		snprintf(found, sizeof(found), "%" PRIu32, e->uid);
		if ((r = report(c, e->path, "uid", rc->uexp, found)) < 0)
			return r;
	}
	if (shift_idmap_to_disk(map, SHIFT_GID, e->gid, &x) < 0) {
		snprintf(found, sizeof(found), "%" PRIu32, e->gid);
		if ((r = report(c, e->path, "gid", rc->gexp, found)) < 0)
			return r;
	}
	for (int k = 0; k < 2; k++) {
		const struct blob *b = k ? &e->acl_d : &e->acl_a;
		struct acl_range a = { map, NULL, { 0 } };

		if (!b->len)
			continue;
		shift_acl_foreach(b->data, b->len, acl_range_entry, &a);
		if (a.bad) {
			struct strbuf s = { 0 };

			acl_to_text(b, &s);
			r = report(c, e->path, k ? "acl.default" : "acl.access",
				   a.bad->tag == SHIFT_ACL_USER ? rc->uexp : rc->gexp,
				   s.s ? s.s : "?");
			free(s.s);
			if (r < 0)
				return r;
		}
	}
	if (e->caps.len &&
	    shift_fcaps_rootid(e->caps.data, e->caps.len, &rootid) >= 0 &&
	    shift_idmap_to_disk(map, SHIFT_UID, rootid, &x) < 0) {
		struct strbuf s = { 0 };

		caps_to_text(&e->caps, e->flags, &s);
		r = report(c, e->path, "fcaps", rc->uexp, s.s ? s.s : "?");
		free(s.s);
		if (r < 0)
			return r;
	}
	if (c->count > before)
		rc->entries++;
	return 0;
}

/* In the walk's order, in bounded memory (docs/manifest-format.md). */
int shift_tree_check_range(const char *dir, const struct shift_idmap *map,
			   shift_difference_fn fn, void *userdata)
{
	struct range_ctx *rc = calloc(1, sizeof(*rc));
	struct walk *w = calloc(1, sizeof(*w));
	char ur[256], gr[256];
	int r = -ENOMEM;

	if (rc && w) {
		rc->c = (struct diff_ctx){.fn = fn, .userdata = userdata};
		rc->map = map;
		range_text(map, SHIFT_UID, ur, sizeof(ur));
		range_text(map, SHIFT_GID, gr, sizeof(gr));
		snprintf(rc->uexp, sizeof(rc->uexp), "in %s", ur);
		snprintf(rc->gexp, sizeof(rc->gexp), "in %s", gr);
		w->visit = visit_range;
		w->data = rc;
		r = walk_tree(w, dir);
		if (r >= 0)
			r = rc->entries;
	}
	free(w);
	free(rc);
	return r;
}

/* The public calls: the entry a failure is about goes into err. */
int shift_manifest_record(const char *dir, struct shift_manifest **ret,
			  struct shift_error *err)
{
	err_path[0] = '\0';
	return tree_error(manifest_record(dir, ret), err);
}

int shift_manifest_record_to(const char *dir, int fd, size_t *count,
			     char *digest, struct shift_error *err)
{
	err_path[0] = '\0';
	return tree_error(manifest_record_to(dir, fd, count, digest), err);
}

int shift_manifest_check(const struct shift_manifest *m,
			 const struct shift_idmap *map, const char *dir,
			 unsigned flags, shift_difference_fn fn, void *userdata,
			 struct shift_error *err)
{
	err_path[0] = '\0';
	return tree_error(manifest_check(m, map, dir, flags, fn, userdata),
			  err);
}

int shift_manifest_check_layers(const struct shift_manifest *const *layers,
				size_t n, const struct shift_idmap *map,
				const char *dir, unsigned flags,
				shift_layer_difference_fn fn, void *userdata,
				struct shift_error *err)
{
	err_path[0] = '\0';
	return tree_error(manifest_check_layers(layers, n, map, dir, flags, fn,
						userdata),
			  err);
}
