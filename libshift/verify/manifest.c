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
 *
 * The files, one job each (shared internals in verify-internal.h):
 *   manifest.c         record (into memory or as text), open a file
 *   manifest-arena.c   the entries in memory, their arena, path order
 *   manifest-walk.c    reading a tree: the ordered, fd-relative walk
 *   manifest-codec.c   text forms: ACLs, capabilities, mtree escapes
 *   manifest-write.c   the mtree text and its digest, as entries come
 *   manifest-parse.c   reading the text back, as a stream of entries
 *   manifest-check.c   comparing a tree with a manifest under a map
 *   manifest-layers.c  what overlayfs shows of layers, checked
 *   manifest-range.c   the range check (no manifest: the map alone)
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>

#include "util/error.h"
#include "verify/verify-internal.h"

static int visit_collect(struct mwalk *w, const struct mentry *e, size_t plen)
{
	return sk_manifest_add_copy(w->data, e, plen);
}

int sk_manifest_record(const char *dir, struct shift_manifest **ret)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_free_ struct mwalk *w = NULL;
	int r;

	m = sk_manifest_new();
	w = calloc(1, sizeof(*w));
	if (!m || !w)
		return -ENOMEM;
	w->visit = visit_collect;
	w->data = m;
	r = sk_mwalk_tree(w, dir);
	if (r < 0)
		return r;
	qsort(m->e, m->n, sizeof(m->e[0]), sk_entry_cmp);
	*ret = TAKE_PTR(m);
	return 0;
}

static int visit_write(struct mwalk *w, const struct mentry *e, size_t plen)
{
	(void)plen;
	return sk_mw_entry(w->data, e->path, e);
}

static int manifest_record_to(const char *dir, int fd, size_t *count,
			      char *digest)
{
	struct mwalk *w;
	struct mwriter o;
	char d[72];
	int r;

	if (fd < 0)
		return -EBADF;
	r = sk_mw_init(&o, fd);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w)); /* PATH_MAX of path: not on the stack */
	if (!w) {
		sk_mw_done(&o);
		return -ENOMEM;
	}
	w->visit = visit_write;
	w->data = &o;
	r = sk_mwalk_tree(w, dir);
	free(w);
	if (r >= 0)
		r = sk_mw_finish(&o, d);
	if (r >= 0 && count)
		*count = o.count;
	if (r >= 0 && digest)
		memcpy(digest, d, sizeof(d));
	sk_mw_done(&o);
	return r < 0 ? r : 0;
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
		o->lv[0].files = sk_manifest_new();
		if (!o->lv[0].files)
			return -ENOMEM;
		o->n = 1;
		o->path[0] = '.';
		return 1;
	}
	while (o->n && !sk_is_below(e->path, o->path, o->lv[o->n - 1].plen, true))
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
		f = sk_manifest_add(l->files);
		if (!f ||
		    !(f->path = sk_manifest_strndup(l->files, name, strlen(name))))
			return -ENOMEM;
		return 1;
	}
	l->dirs = true;
	if (sk_find_name(l->files->e, l->files->n, name))
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
	o->lv[o->n].files = sk_manifest_new();
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

	fd = sk_manifest_open_file(path, err);
	if (fd < 0)
		return fd;
	m = sk_manifest_new();
	if (!m)
		return -ENOMEM;
	k = sk_mr_init(&r, fd);
	while (k >= 0 && (k = sk_mr_next(&r, &e)) > 0) {
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
	sk_mr_error(&r, k, path, err);
	if (k == 0)
		memcpy(m->digest, r.digest, sizeof(m->digest));
	sk_mr_done(&r);
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

/* The public calls: the entry a failure is about goes into err. */
int shift_manifest_record(const char *dir, struct shift_manifest **ret,
			  struct shift_error *err)
{
	sk_mwalk_err_reset();
	return sk_mwalk_error(sk_manifest_record(dir, ret), err);
}

int shift_manifest_record_to(const char *dir, int fd, size_t *count,
			     char *digest, struct shift_error *err)
{
	sk_mwalk_err_reset();
	return sk_mwalk_error(manifest_record_to(dir, fd, count, digest), err);
}
