/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The range check: every id of a tree (owners, ACL qualifiers, the
 * capability rootid) inside a map, in the walk of manifest.c.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "verify/verify-internal.h"

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
static int visit_range(struct mwalk *w, const struct mentry *e, size_t plen)
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
		if ((r = sk_diff_report(c, e->path, "uid", rc->uexp, found)) < 0)
			return r;
	}
	if (shift_idmap_to_disk(map, SHIFT_GID, e->gid, &x) < 0) {
		snprintf(found, sizeof(found), "%" PRIu32, e->gid);
		if ((r = sk_diff_report(c, e->path, "gid", rc->gexp, found)) < 0)
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

			sk_acl_to_text(b, &s);
			r = sk_diff_report(c, e->path, k ? "acl.default" : "acl.access",
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

		sk_caps_to_text(&e->caps, e->flags, &s);
		r = sk_diff_report(c, e->path, "fcaps", rc->uexp, s.s ? s.s : "?");
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
	struct mwalk *w = calloc(1, sizeof(*w));
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
		r = sk_mwalk_tree(w, dir);
		if (r >= 0)
			r = rc->entries;
	}
	free(w);
	free(rc);
	return r;
}
