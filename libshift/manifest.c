/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ownership manifests: record a tree's ownership metadata (type, uid, gid,
 * mode, POSIX ACLs, file capability), write it as an mtree(5) spec through
 * libarchive plus "#shiftkit" extension lines (ACLs and file capabilities,
 * which mtree has no keywords for) and a sha256 digest line, read it back,
 * and compare a tree with a manifest under a map.  docs/manifest-format.md
 * describes the format and why it looks like this.
 *
 * Reading a tree is read-only and race-tolerant: directories are walked by
 * fd (openat with O_NOFOLLOW), entries are statx'ed relative to their
 * directory, symlinks are never followed and other mounts are not entered
 * (statx mount id).  The ACL and capability xattrs are translated with the
 * same functions the shift engine uses (acl.c, fcaps.c).
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "internal.h"

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

const char *shift_manifest_error_path(void)
{
	return err_path[0] ? err_path : NULL;
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
	free(m);
}

static void manifest_freep(struct shift_manifest **m)
{
	shift_manifest_free(*m);
}
#define _cleanup_manifest_ _cleanup_(manifest_freep)

size_t shift_manifest_count(const struct shift_manifest *m)
{
	return m->n;
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

static const struct mentry *manifest_find(const struct shift_manifest *m,
					  const char *path)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = path_cmp(m->e[mid].path, path);

		if (c == 0)
			return &m->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Recording a tree                                                    */
/* ------------------------------------------------------------------ */

struct walk {
	struct shift_manifest *m;
	uint64_t mnt_id;
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

static int record_xattrs(struct walk *w, struct mentry *e, int dfd,
			 const char *name)
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
		if (r > 0 && (q = blob_set(w->m, &e->acl_a, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_ad && S_ISDIR(e->mode)) {
		r = xref_get(&x, XATTR_ACL_DEFAULT, buf, sizeof(buf));
		if (r < 0)
			return (int)r;
		if (r > 0 && (q = blob_set(w->m, &e->acl_d, buf, (size_t)r)) < 0)
			return q;
	}
	if (has_caps) {
		r = xref_get(&x, XATTR_CAPS, buf, sizeof(buf));
		if (r == -EOVERFLOW)
			e->flags |= ME_CAPS_OVERFLOW;
		else if (r < 0)
			return (int)r;
		else if (r > 0 && (q = blob_set(w->m, &e->caps, buf, (size_t)r)) < 0)
			return q;
	}
	return 0;
}

static int record_entry(struct walk *w, int dfd, const char *name,
			size_t plen, const struct statx *stx)
{
	struct mentry *e = manifest_add(w->m);

	if (!e)
		return -ENOMEM;
	e->path = arena_strndup(w->m, w->path, plen);
	if (!e->path)
		return -ENOMEM;
	e->uid = stx->stx_uid;
	e->gid = stx->stx_gid;
	e->mode = stx->stx_mode;
	if (S_ISCHR(e->mode) && stx->stx_rdev_major == 0 &&
	    stx->stx_rdev_minor == 0)
		e->flags |= ME_WHITEOUT;
	if (S_ISLNK(e->mode))
		return 0;
	return record_xattrs(w, e, dfd, name);
}

static int walk_dir(struct walk *w, int dfd, size_t plen)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	d = fdopendir(dfd);
	if (!d) {
		r = negative_errno();
		set_err_path(w->path, plen);
		close(dfd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		size_t nlen = strlen(name), clen;
		struct statx stx;

		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		if (plen + 1 + nlen >= sizeof(w->path)) {
			r = -ENAMETOOLONG;
			set_err_path(w->path, plen);
			break;
		}
		w->path[plen] = '/';
		memcpy(w->path + plen + 1, name, nlen + 1);
		clen = plen + 1 + nlen;
		if (statx(dirfd(d), name,
			  AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC,
			  STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID |
				  STATX_MNT_ID,
			  &stx) < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			r = negative_errno();
			set_err_path(w->path, clen);
			break;
		}
		/* another mount on top: not part of this tree */
		if ((stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != w->mnt_id)
			continue;
		r = record_entry(w, dirfd(d), name, clen, &stx);
		if (r < 0) {
			set_err_path(w->path, clen);
			break;
		}
		if (progress_fn && (w->m->n & 1023) == 0)
			progress_fn(w->m->n, progress_data);
		if (S_ISDIR(stx.stx_mode)) {
			int cfd = openat(dirfd(d), name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC | O_NOCTTY);

			if (cfd < 0) {
				if (errno == ENOENT)
					continue;
				r = negative_errno();
				set_err_path(w->path, clen);
				break;
			}
			r = walk_dir(w, cfd, clen);
			if (r < 0)
				break;
		}
	}
	if (r == 0 && errno) {
		r = negative_errno();
		set_err_path(w->path, plen);
	}
	closedir(d);
	return r;
}

int shift_manifest_record(const char *dir, struct shift_manifest **ret)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	struct walk *w;
	struct statx stx;
	int fd, r;

	err_path[0] = '\0';
	m = manifest_new();
	if (!m)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_MNT_ID,
		  &stx) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->m = m;
	w->mnt_id = stx.stx_mnt_id;
	w->path[0] = '.';
	w->path[1] = '\0';
	/* the root's xattrs: through its own fd's /proc link */
	r = record_entry(w, fd, ".", 1, &stx);
	if (r >= 0)
		r = walk_dir(w, fd, 1);
	else
		close(fd);
	free(w);
	if (r < 0)
		return r;
	if (progress_fn)
		progress_fn(m->n, progress_data);
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

static int archive_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return AE_IFDIR;
	case S_IFLNK:
		return AE_IFLNK;
	case S_IFCHR:
		return AE_IFCHR;
	case S_IFBLK:
		return AE_IFBLK;
	case S_IFIFO:
		return AE_IFIFO;
	case S_IFSOCK:
		return AE_IFSOCK;
	default:
		return AE_IFREG;
	}
}

static ssize_t sb_archive_write(struct archive *a, void *userdata,
				const void *buf, size_t len)
{
	struct strbuf *b = userdata;

	sb_addn(b, buf, len);
	return b->oom ? -1 : (ssize_t)len;
}

/* The mtree body as libarchive writes it (its own order: per directory,
 * files first, then subdirectories). */
static int mtree_body(const struct shift_manifest *m, struct strbuf *out)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	int r = 0;
	size_t i;

	if (!a || !ae) {
		r = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_mtree(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, "!all,type,uid,gid,mode") != ARCHIVE_OK ||
	    archive_write_open(a, out, NULL, sb_archive_write, NULL) != ARCHIVE_OK) {
		r = -EIO;
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		const struct mentry *e = &m->e[i];

		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_filetype(ae, (unsigned)archive_type(e->mode));
		archive_entry_set_perm(ae, e->mode & 07777);
		archive_entry_set_uid(ae, e->uid);
		archive_entry_set_gid(ae, e->gid);
		if (archive_write_header(a, ae) < ARCHIVE_WARN) {
			r = out->oom ? -ENOMEM : -EIO;
			goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		r = out->oom ? -ENOMEM : -EIO;
out:
	archive_entry_free(ae);
	archive_write_free(a);
	return r;
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

static void sha256_hex(const void *data, size_t len, char *out /* 65 */)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < mdlen && i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = '\0';
}

/* The whole manifest text, digest line included. */
static int manifest_render(const struct shift_manifest *m, struct strbuf *out,
			   char *digest /* 72 */)
{
	struct strbuf body = { 0 };
	size_t pos = 0;
	char path[PATH_MAX + 2], hex[65];
	int r;

	r = mtree_body(m, &body);
	if (r < 0)
		goto out;
	while (pos < body.len) {
		const char *line = body.s + pos;
		const char *nl = memchr(line, '\n', body.len - pos);
		size_t llen = nl ? (size_t)(nl - line) : body.len - pos;
		const struct mentry *e;

		sb_addn(out, line, llen);
		sb_add(out, "\n");
		pos += llen + 1;
		if (llen == 0 || line[0] == '#' || line[0] == '/')
			continue;
		r = mtree_unescape(line, strcspn(line, " \n"), path, sizeof(path));
		e = r >= 0 ? manifest_find(m, path) : NULL;
		if (!e) {
			/* libarchive wrote a path we can't match: a bug */
			sk_debug("manifest: unmatched mtree line '%.*s'", (int)llen, line);
			r = -EIO;
			goto out;
		}
		r = extension_line(e, out);
		if (r < 0)
			goto out;
	}
	sha256_hex(out->s, out->len, hex);
	snprintf(digest, 72, "sha256:%s", hex);
	sb_printf(out, "#shiftkit sha256=%s\n", hex);
	r = out->oom ? -ENOMEM : 0;
out:
	free(body.s);
	return r;
}

int shift_manifest_write(const struct shift_manifest *m, int fd)
{
	struct strbuf out = { 0 };
	size_t pos = 0;
	int r;

	r = manifest_render(m, &out, ((struct shift_manifest *)m)->digest);
	while (r >= 0 && pos < out.len) {
		ssize_t k = write(fd, out.s + pos, out.len - pos);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			r = negative_errno();
		else
			pos += (size_t)k;
	}
	free(out.s);
	return r < 0 ? r : 0;
}

const char *shift_manifest_digest(const struct shift_manifest *m)
{
	struct shift_manifest *mm = (struct shift_manifest *)m;

	if (!mm->digest[0]) {
		struct strbuf out = { 0 };

		if (manifest_render(m, &out, mm->digest) < 0)
			mm->digest[0] = '\0';
		free(out.s);
	}
	return mm->digest[0] ? mm->digest : NULL;
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

static int manifest_parse(struct shift_manifest *m, char *text, size_t len,
			  const char **err, unsigned *err_line)
{
	struct defaults d = { 0 };
	struct mentry *last = NULL;
	char path[PATH_MAX + 2], hex[65];
	bool have_digest = false;
	unsigned lineno = 0;
	size_t pos = 0, i;
	int r;

	while (pos < len) {
		char *line = text + pos;
		char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		size_t plen;

		lineno++;
		*err_line = lineno;
		if (have_digest) {
			*err = "text after the digest line";
			return -EBADMSG;
		}
		if (llen > 17 && !strncmp(line, "#shiftkit sha256=", 17)) {
			sha256_hex(text, pos, hex);
			if (llen != 17 + 64 || strncmp(line + 17, hex, 64) != 0) {
				*err = "digest does not match: the manifest was changed or truncated";
				return -EBADMSG;
			}
			snprintf(m->digest, sizeof(m->digest), "sha256:%s", hex);
			have_digest = true;
		} else if (llen > 10 && !strncmp(line, "#shiftkit ", 10)) {
			if (!last) {
				*err = "#shiftkit line before any entry";
				return -EBADMSG;
			}
			r = parse_extension(m, last, line + 10, llen - 10, err);
			if (r < 0)
				return r;
			last = NULL; /* one extension line per entry */
		} else if (llen == 0 || line[0] == '#') {
			/* comment */
		} else if (llen >= 4 && !strncmp(line, "/set", 4)) {
			r = parse_keywords(line + 4, llen - 4, &d, false, err);
			if (r < 0)
				return r;
		} else if (llen >= 6 && !strncmp(line, "/unset", 6)) {
			parse_keywords(line + 6, llen - 6, &d, true, err);
		} else if (line[llen - 1] == '\\') {
			*err = "continued lines are not supported";
			return -EBADMSG;
		} else {
			struct defaults ed = d;
			struct mentry *e;

			plen = strcspn(line, " \t\n");
			if (plen > llen)
				plen = llen;
			if (mtree_unescape(line, plen, path, sizeof(path)) < 0) {
				*err = "bad path";
				return -EBADMSG;
			}
			if (strcmp(path, ".") != 0 && strncmp(path, "./", 2) != 0) {
				*err = "not a full-path mtree entry (paths start with '.')";
				return -EBADMSG;
			}
			r = parse_keywords(line + plen, llen - plen, &ed, false, err);
			if (r < 0)
				return r;
			if (!ed.has_type || !ed.has_uid || !ed.has_gid || !ed.has_mode) {
				*err = "entry lacks one of type, uid, gid, mode";
				return -EBADMSG;
			}
			e = manifest_add(m);
			if (!e)
				return -ENOMEM;
			e->path = arena_strndup(m, path, strlen(path));
			if (!e->path)
				return -ENOMEM;
			e->uid = ed.uid;
			e->gid = ed.gid;
			e->mode = ed.type | ed.mode;
			last = e;
		}
		pos += llen + (nl ? 1 : 0);
	}
	*err_line = 0;
	if (!have_digest) {
		*err = "no digest line (#shiftkit sha256=...): truncated?";
		return -EBADMSG;
	}
	qsort(m->e, m->n, sizeof(m->e[0]), entry_cmp);
	for (i = 1; i < m->n; i++)
		if (path_cmp(m->e[i - 1].path, m->e[i].path) == 0) {
			*err = "a path appears twice";
			return -EBADMSG;
		}
	*err = NULL;
	return 0;
}

int shift_manifest_read(const char *path, struct shift_manifest **ret,
			const char **err, unsigned *err_line)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	const char *dummy;
	unsigned dummy_line;
	int r;

	if (!err)
		err = &dummy;
	if (!err_line)
		err_line = &dummy_line;
	*err = NULL;
	*err_line = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t k;

		if (cap - len < 65536) {
			char *nb = realloc(buf, cap ? cap * 2 : 1 << 20);

			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = cap ? cap * 2 : 1 << 20;
		}
		k = read(fd, buf + len, cap - len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		*err = "not a text file";
		return -EBADMSG;
	}
	m = manifest_new();
	if (!m)
		return -ENOMEM;
	r = manifest_parse(m, buf, len, err, err_line);
	if (r < 0)
		return r;
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

int shift_manifest_check(const struct shift_manifest *m,
			 const struct shift_idmap *map, const char *dir,
			 unsigned flags, shift_difference_fn fn, void *userdata)
{
	_cleanup_manifest_ struct shift_manifest *t = NULL;
	struct diff_ctx c = {.fn = fn, .userdata = userdata};
	int r;

	r = shift_manifest_record(dir, &t);
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
			e->flags &= ~(uint32_t)ME_OPAQUE;
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

int shift_manifest_check_layers(const struct shift_manifest *const *layers,
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
	merged = manifest_new();
	if (!merged)
		return -ENOMEM;
	r = merge_layers(layers, n, merged, &origin);
	if (r < 0)
		return r;
	r = shift_manifest_record(dir, &t);
	if (r < 0)
		return r;
	/* extra entries (the container's own) are attributed to the top */
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

int shift_tree_check_range(const char *dir, const struct shift_idmap *map,
			   shift_difference_fn fn, void *userdata)
{
	_cleanup_manifest_ struct shift_manifest *t = NULL;
	struct diff_ctx c = {.fn = fn, .userdata = userdata};
	char ur[256], gr[256], uexp[300], gexp[300], found[16];
	int entries = 0;
	size_t i;
	int r;

	r = shift_manifest_record(dir, &t);
	if (r < 0)
		return r;
	range_text(map, SHIFT_UID, ur, sizeof(ur));
	range_text(map, SHIFT_GID, gr, sizeof(gr));
	snprintf(uexp, sizeof(uexp), "in %s", ur);
	snprintf(gexp, sizeof(gexp), "in %s", gr);
	for (i = 0; i < t->n; i++) {
		const struct mentry *e = &t->e[i];
		int before = c.count;
		uint32_t x, rootid;

		if (e->flags & ME_WHITEOUT)
			continue;
		if (shift_idmap_to_disk(map, SHIFT_UID, e->uid, &x) < 0) {
			snprintf(found, sizeof(found), "%" PRIu32, e->uid);
			if ((r = report(&c, e->path, "uid", uexp, found)) < 0)
				return r;
		}
		if (shift_idmap_to_disk(map, SHIFT_GID, e->gid, &x) < 0) {
			snprintf(found, sizeof(found), "%" PRIu32, e->gid);
			if ((r = report(&c, e->path, "gid", gexp, found)) < 0)
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
				r = report(&c, e->path, k ? "acl.default" : "acl.access",
					   a.bad->tag == SHIFT_ACL_USER ? uexp : gexp,
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
			r = report(&c, e->path, "fcaps", uexp, s.s ? s.s : "?");
			free(s.s);
			if (r < 0)
				return r;
		}
		if (c.count > before)
			entries++;
	}
	return entries;
}
