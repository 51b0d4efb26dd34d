/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checking a tree against layers as overlayfs merges them (manifest.c).
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "verify/verify-internal.h"

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
	int c = sk_path_cmp(x->e->path, y->e->path);

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
		       sk_path_cmp(refs[h].e->path, top->e->path) == 0)
			h++;
		while (nst && !path_is_ancestor(st[nst - 1].path, top->e->path))
			nst--;
		pfloor = nst ? st[nst - 1].floor : 0;
		if (top->layer >= pfloor && !(top->e->flags & ME_WHITEOUT)) {
			struct mentry *e = sk_manifest_add(out);

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
	merged = sk_manifest_new();
	if (!merged)
		return -ENOMEM;
	r = merge_layers(layers, n, merged, &origin);
	if (r < 0)
		return r;
	/* the tree walked, not recorded; extra entries (the container's
	 * own) are attributed to the top */
	r = sk_manifest_check_mem(merged, map, dir, flags, &c, n - 1);
	if (r <= 0)
		return r < 0 ? r : c.count;
	r = sk_manifest_record(dir, &t);
	if (r < 0)
		return r;
	if (!(flags & SHIFT_CHECK_IGNORE_EXTRA))
		c.layer = n - 1;
	return sk_manifest_compare_trees(&c, merged, origin, map, t, flags);
}

/* The entry a failure is about goes into err. */
int shift_manifest_check_layers(const struct shift_manifest *const *layers,
				size_t n, const struct shift_idmap *map,
				const char *dir, unsigned flags,
				shift_layer_difference_fn fn, void *userdata,
				struct shift_error *err)
{
	sk_mwalk_err_reset();
	return sk_mwalk_error(manifest_check_layers(layers, n, map, dir, flags,
						    fn, userdata),
			      err);
}
