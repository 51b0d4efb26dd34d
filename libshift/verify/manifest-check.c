/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checking a tree against a manifest under a map (manifest.c): entry by
 * entry, and in bounded memory with the walk and the manifest merged.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "verify/verify-internal.h"

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
		r = sk_manifest_blob_set(scratch, &out->acl_a, in->acl_a.data, in->acl_a.len);
		if (r < 0)
			return r;
		shift_acl_translate(out->acl_a.data, out->acl_a.len, map, true,
				    SHIFT_UNMAPPED_OVERFLOW, NULL, NULL);
	}
	if (in->acl_d.len) {
		r = sk_manifest_blob_set(scratch, &out->acl_d, in->acl_d.data, in->acl_d.len);
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
			r = sk_manifest_blob_set(scratch, &out->caps, buf, (size_t)r);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int sk_diff_report(struct diff_ctx *c, const char *path, const char *field,
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
	return sk_diff_report(c, path, field, x, y);
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
			sk_caps_to_text(bx, x->flags, &sx);
		if (by->len || (y->flags & ME_CAPS_OVERFLOW))
			sk_caps_to_text(by, y->flags, &sy);
	} else {
		if (bx->len)
			sk_acl_to_text(bx, &sx);
		if (by->len)
			sk_acl_to_text(by, &sy);
	}
	if (sx.oom || sy.oom)
		r = -ENOMEM;
	else if (sx.s && sy.s && !strcmp(sx.s, sy.s))
		r = 0; /* same meaning, different bytes (e.g. v3 rootid 0) */
	else
		r = sk_diff_report(c, path, field, sx.s ? sx.s : "none",
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
		return sk_diff_report(c, x->path, "type", sk_mtree_type(x->mode),
			      sk_mtree_type(y->mode));
	if (x->uid != y->uid && (r = report_u32(c, x->path, "uid", x->uid, y->uid)) < 0)
		return r;
	if (x->gid != y->gid && (r = report_u32(c, x->path, "gid", x->gid, y->gid)) < 0)
		return r;
	if ((x->mode & 07777) != (y->mode & 07777) && !S_ISLNK(x->mode)) {
		char a[8], b[8];

		snprintf(a, sizeof(a), "%04o", x->mode & 07777);
		snprintf(b, sizeof(b), "%04o", y->mode & 07777);
		if ((r = sk_diff_report(c, x->path, "mode", a, b)) < 0)
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
int sk_manifest_compare_trees(struct diff_ctx *c,
			      const struct shift_manifest *m,
			      const size_t *origin,
			      const struct shift_idmap *map,
			      const struct shift_manifest *t, unsigned flags)
{
	_cleanup_manifest_ struct shift_manifest *scratch = NULL;
	size_t i = 0, j = 0;
	int r;

	scratch = sk_manifest_new();
	if (!scratch)
		return -ENOMEM;
	while (i < m->n || j < t->n) {
		int cmp = i >= m->n ? 1 : j >= t->n ? -1 :
			  sk_path_cmp(m->e[i].path, t->e[j].path);

		/* an extra entry belongs to no layer: the top one */
		c->layer = origin && i < m->n ? origin[i] : 0;
		if (cmp < 0) {
			if (!(flags & SHIFT_CHECK_IGNORE_MISSING) &&
			    (r = sk_diff_report(c, m->e[i].path, "entry", "present",
					"absent")) < 0)
				return r;
			i++;
		} else if (cmp > 0) {
			if (!(flags & SHIFT_CHECK_IGNORE_EXTRA) &&
			    (r = sk_diff_report(c, t->e[j].path, "entry", "absent",
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

struct smerge {
	struct mwalk w; /* the tree's side; w.path: the current path */
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
	s->have = sk_mr_next(&s->r, &s->next);
	return s->have < 0 ? s->have : 0;
}

static int sm_missing(struct smerge *s, const struct mentry *me)
{
	if (s->flags & SHIFT_CHECK_IGNORE_MISSING)
		return 0;
	s->c->layer = me->flags >> ME_LAYER_SHIFT;
	return sk_diff_report(s->c, me->path, "entry", "present", "absent");
}

/* The manifest's entries below w.path[0..plen): not in the tree. */
static int sm_missing_below(struct smerge *s, size_t plen)
{
	int r;

	while (s->have > 0 && sk_is_below(s->next.path, s->w.path, plen, false)) {
		r = sm_missing(s, &s->next);
		if (r >= 0)
			r = sm_advance(s);
		if (r < 0)
			return r;
	}
	return s->have < 0 ? s->have : 0;
}

static int visit_extra(struct mwalk *w, const struct mentry *e, size_t plen)
{
	struct smerge *s = w->data;

	s->c->layer = s->extra_layer;
	return sk_diff_report(s->c, e->path, "entry", "absent", "present");
}

/* The tree's entries below the directory name in dfd, its path in
 * w.path[0..plen): not in the manifest. */
static int sm_extra_below(struct smerge *s, int dfd, const char *name,
			  size_t plen)
{
	int (*visit)(struct mwalk *, const struct mentry *, size_t) = s->w.visit;
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
		sk_mwalk_set_err_path(s->w.path, plen);
		return r;
	}
	s->w.visit = visit_extra;
	r = sk_mwalk_dir(&s->w, cfd, plen);
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
	if ((s->w.count & 1023) == 0)
		sk_mwalk_progress(s->w.count);
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
			: sk_diff_report(s->c, t->path, "entry", "absent", "present");
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
				sk_mwalk_set_err_path(s->w.path, clen);
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
		sk_mwalk_set_err_path(s->w.path, plen);
		close(dfd);
		return r;
	}
	mf = sk_manifest_new();
	r = mf ? sk_mwalk_listing(&s->w, d, plen, &l, &nfiles) : -ENOMEM;
	if (r >= 0 && !(matched = calloc(l->n ? l->n : 1, sizeof(*matched))))
		r = -ENOMEM;
	while (r >= 0 && s->have > 0 &&
	       sk_is_below(s->next.path, s->w.path, plen, true) &&
	       !S_ISDIR(s->next.mode)) {
		r = sk_manifest_add_copy(mf, &s->next, strlen(s->next.path));
		if (r >= 0)
			r = sm_advance(s);
	}
	for (k = 0; r >= 0 && k < (mf ? mf->n : 0); k++) {
		const struct mentry *me = &mf->e[k];
		const char *name = me->path + plen + 1;
		struct mentry *t;
		const char *tname;
		size_t clen;

		t = sk_find_name(l->e, nfiles, name);
		if (!t && l->n > nfiles)
			t = sk_find_name(l->e + nfiles, l->n - nfiles, name);
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
		    sk_is_below(s->next.path, s->w.path, plen, true)) {
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
	_cleanup_manifest_ struct shift_manifest *store = sk_manifest_new();
	struct mentry root = {0};
	struct statx stx;
	int fd, r;

	sk_mwalk_err_reset();
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
	r = sk_mwalk_fill_entry(store, &root, fd, ".", &stx);
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
	if (r >= 0)
		sk_mwalk_progress(s->w.count);
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
	s->scratch = sk_manifest_new();
	r = s->scratch ? sk_mr_init(&s->r, mfd) : -ENOMEM;
	if (r >= 0)
		r = sm_run(s, dir);
	/* the digest line matched: the same as when opened?  Malformed
	 * now, or in another order: not what was opened either (the tree's
	 * errors name their entry) */
	if (r >= 0 && strcmp(s->r.digest, m->digest) != 0)
		r = -ESTALE;
	if (r == -EBADMSG && !sk_mwalk_err_path())
		r = -ESTALE;
	sk_mr_done(&s->r);
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

		while (nst && !sk_is_below(p, m->e[st[nst - 1]].path,
					strlen(m->e[st[nst - 1]].path), false))
			end[st[--nst]] = i;
		if (i && (!nst || !S_ISDIR(m->e[st[nst - 1]].mode) ||
			  !sk_is_below(p, m->e[st[nst - 1]].path,
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
int sk_manifest_check_mem(const struct shift_manifest *m,
			  const struct shift_idmap *map, const char *dir,
			  unsigned flags, struct diff_ctx *c,
			  size_t extra_layer)
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
	s->scratch = sk_manifest_new();
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
	r = sk_manifest_check_mem(m, map, dir, flags, &c, 0);
	if (r <= 0)
		return r < 0 ? r : c.count;
	/* not a tree (another writer's manifest): record ours whole */
	r = sk_manifest_record(dir, &t);
	if (r < 0)
		return r;
	return sk_manifest_compare_trees(&c, m, NULL, map, t, flags);
}

/* The entry a failure is about goes into err. */
int shift_manifest_check(const struct shift_manifest *m,
			 const struct shift_idmap *map, const char *dir,
			 unsigned flags, shift_difference_fn fn, void *userdata,
			 struct shift_error *err)
{
	sk_mwalk_err_reset();
	return sk_mwalk_error(manifest_check(m, map, dir, flags, fn, userdata),
			      err);
}
