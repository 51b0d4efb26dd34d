/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets (verify.c): the checks manifests and trees decide
 * (manifest.c): layers, views, upper directories.
 */
#include "config.h"

#include <string.h>

#include "verify/verify-internal.h"
#include "util/error.h"

static int diff_to_finding(const struct shift_difference *d, void *userdata)
{
	struct vrun *run = userdata;
	int r;

	run->diffs++;
	r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, d, "%s: %s is %s, expected %s",
		 d->path, d->field, d->found, d->expected);
	if (r < 0)
		run->cb_err = r;
	return r;
}

/*
 * The finding of a check that compared a tree (its differences, if any,
 * went out as findings of their own): a failure when it found differences
 * or could not read everything (naming the entry it could not read), 1
 * when it passed and the caller says so.
 */
static int tree_result(struct vrun *run, int r, int diffs, const char *what,
		       const char *path, const struct shift_error *e)
{
	const char *sub;

	if (run->cb_err)
		return run->cb_err;
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		sub = e ? e->path : NULL;
		return sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
			    "Failed to read %s '%s'%s%s: %s%s", what, path,
			    sub ? " at " : "", sub ? sub : "", strerror(-r),
			    diffs ? " (after the differences listed)" : "");
	}
	if (diffs > 0)
		return sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
			    "'%s' differs from the manifest in %d place%s",
			    path, diffs, diffs == 1 ? "" : "s");
	return 1;
}

/* 4: every layer unchanged on disk against its manifest. */
int sk_verify_layers(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_LAYER;
	for (i = 0; i < s->nlayers; i++) {
		struct vlayer *l = &s->layers[i];
		_cleanup_(shift_error_clear) struct shift_error e = { 0 };

		run->subject = l->name;
		if (!l->manifest_path) {
			r = sk_verify_emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"manifest\" given");
			if (r < 0)
				return r;
			continue;
		}
		r = shift_manifest_read(l->manifest_path, &l->manifest, &e);
		if (r < 0) {
			l->unreadable = true;
			if (r == -ENOMEM)
				return r;
			if (e.line)
				r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read manifest '%s': line %u: %s",
					 l->manifest_path, e.line, shift_error_why(&e, r));
			else
				r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read manifest '%s': %s",
					 l->manifest_path, shift_error_why(&e, r));
			if (r < 0)
				return r;
			continue;
		}
		run->diffs = 0;
		r = shift_manifest_check(l->manifest, l->shifted, l->path, 0,
					 diff_to_finding, run, &e);
		r = tree_result(run, r, run->diffs, "layer", l->path, &e);
		if (r == 0)
			l->changed = true;
		else if (r == 1)
			r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				 "'%s' matches %s%s", l->path,
				 shift_manifest_digest(l->manifest),
				 l->shifted ? " under its in-place map" : "");
		if (r < 0)
			return r;
	}
	return 0;
}

/* Where a view is, seen from here. */
static char *view_path(const struct vcontainer *c, const char *path)
{
	char *p = NULL;

	if (c->pid > 0 && path[0] == '/') {
		if (asprintf(&p, "/proc/%d/root%s", (int)c->pid, path) < 0)
			return NULL;
		return p;
	}
	return strdup(path);
}

/* Why a view can't be judged (its layer's problem is reported once, by
 * another check), or NULL. */
static const char *view_skip(const struct vcontainer *c, const struct vview *v,
			     char *buf, size_t size)
{
	const struct vlayer *l = v->layer;

	if (!l->manifest)
		snprintf(buf, size, "layer '%.60s' has no readable manifest%s",
			 l->name,
			 l->manifest_path ? " (see check 'layer')" : "");
	else if (l->shifted && !v->copy &&
		 !shift_idmap_equal(l->shifted, c->map))
		snprintf(buf, size,
			 "layer '%.60s' is shifted in place for another map "
			 "(see check 'in-place')",
			 l->name);
	else if (l->changed && !v->copy)
		/* the view shows the layer itself: its differences are the
		 * layer's, reported once */
		snprintf(buf, size,
			 "layer '%.60s' changed on disk (see check 'layer')",
			 l->name);
	else
		return NULL;
	return buf;
}

/* The views of one merged directory, bottom layer first. */
struct vgroup {
	struct vrun *run;
	struct vview **views;
	char **subjects;
	int *diffs;
	bool *skip;
	size_t *stack_view; /* layer index in the check -> view */
	size_t n;
};

static int group_diff(const struct shift_difference *d, size_t layer,
		      void *userdata)
{
	struct vgroup *g = userdata;
	size_t k = g->stack_view[layer];
	int r;

	if (g->skip[k])
		return 0; /* its layer's differences are reported by check 4 */
	g->diffs[k]++;
	g->run->subject = g->subjects[k];
	r = sk_verify_emit(g->run, SHIFT_VERIFY_FAIL, d, "%s: %s is %s, expected %s",
		 d->path, d->field, d->found, d->expected);
	if (r < 0)
		g->run->cb_err = r;
	return r;
}

/*
 * The merged views of container c at path (first: the first of them):
 * checked together, layer by layer, so that a file deleted or replaced by a
 * higher layer is not expected from a lower one.
 */
static int check_merged(struct vrun *run, struct vcontainer *c, size_t first)
{
	const char *vpath = c->views[first].path;
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ const struct shift_manifest **stack = NULL;
	struct vgroup g = {.run = run};
	_cleanup_(shift_error_clear) struct shift_error ge = {0};
	size_t j, ns = 0;
	char why[256];
	int r = 0, rc;

	g.views = calloc(c->nviews, sizeof(*g.views));
	g.subjects = calloc(c->nviews, sizeof(*g.subjects));
	g.diffs = calloc(c->nviews, sizeof(*g.diffs));
	g.skip = calloc(c->nviews, sizeof(*g.skip));
	g.stack_view = calloc(c->nviews, sizeof(*g.stack_view));
	stack = calloc(c->nviews, sizeof(*stack));
	path = view_path(c, vpath);
	if (!g.views || !g.subjects || !g.diffs || !g.skip || !g.stack_view ||
	    !stack || !path) {
		r = -ENOMEM;
		goto out;
	}
	for (j = first; j < c->nviews; j++) {
		struct vview *v = &c->views[j];

		if (!v->merged || strcmp(v->path, vpath) != 0)
			continue;
		if (asprintf(&g.subjects[g.n], "%s:%s", c->name,
			     v->layer->name) < 0) {
			g.subjects[g.n] = NULL;
			r = -ENOMEM;
			goto out;
		}
		g.views[g.n] = v;
		g.skip[g.n] = view_skip(c, v, why, sizeof(why)) != NULL;
		/* a layer without a manifest can't take part */
		if (v->layer->manifest) {
			g.stack_view[ns] = g.n;
			stack[ns++] = v->layer->manifest;
		}
		g.n++;
	}
	run->cb_err = 0;
	rc = ns ? shift_manifest_check_layers(stack, ns, c->map, path,
					      SHIFT_CHECK_IGNORE_EXTRA,
					      group_diff, &g, &ge)
		: 0;
	for (j = 0; j < g.n && r >= 0; j++) {
		run->subject = g.subjects[j];
		if (view_skip(c, g.views[j], why, sizeof(why))) {
			r = sk_verify_emit(run, SHIFT_VERIFY_SKIP, NULL, "%s", why);
			continue;
		}
		r = tree_result(run, rc, g.diffs[j], "view", path, &ge);
		if (r == 1)
			r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				 "'%s' matches the manifest under the "
				 "container's map%s",
				 path, g.n > 1 ? " (layers merged)" : "");
	}
out:
	if (g.subjects)
		for (j = 0; j < g.n; j++)
			free(g.subjects[j]);
	free(g.views);
	free(g.subjects);
	free(g.diffs);
	free(g.skip);
	free(g.stack_view);
	return r < 0 ? r : 0;
}

/* 5: each container's view of each layer equals the manifest under its map. */
int sk_verify_views(struct vset *s, struct vrun *run)
{
	size_t i, j, k;
	int r;

	run->check = SHIFT_VERIFY_VIEW;
	for (i = 0; i < s->ncs; i++)
		for (j = 0; j < s->cs[i].nviews; j++) {
			struct vcontainer *c = &s->cs[i];
			struct vview *v = &c->views[j];
			_cleanup_free_ char *subject = NULL, *path = NULL;
			struct shift_error ve = {0};
			char why[256];
			bool done = false;

			if (v->merged) {
				/* the first merged view of its path checks all
				 */
				for (k = 0; k < j; k++)
					if (c->views[k].merged &&
					    !strcmp(c->views[k].path, v->path))
						done = true;
				if (!done && (r = check_merged(run, c, j)) < 0)
					return r;
				continue;
			}
			if (asprintf(&subject, "%s:%s", c->name, v->layer->name) < 0)
				return -ENOMEM;
			run->subject = subject;
			path = view_path(c, v->path);
			if (!path)
				return -ENOMEM;
			if (view_skip(c, v, why, sizeof(why))) {
				r = sk_verify_emit(run, SHIFT_VERIFY_SKIP, NULL, "%s",
					 why);
			} else {
				run->diffs = 0;
				run->cb_err = 0;
				r = shift_manifest_check(v->layer->manifest,
							 c->map, path, 0,
							 diff_to_finding, run,
							 &ve);
				r = tree_result(run, r, run->diffs, "view",
						path, &ve);
				shift_error_clear(&ve);
				if (r == 1)
					r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
						 "'%s' matches the manifest under the container's map",
						 path);
			}
			if (r < 0)
				return r;
		}
	return 0;
}

/* 6: upper dirs hold only ids inside the container's range (a canonical
 * one: only the container's own ids, those the map gives an image). */
int sk_verify_uppers(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_UPPER;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		_cleanup_free_ char *subject = NULL;
		struct shift_idmap *inv = NULL;
		const char *what = c->canonical_upper ? "own ids" : "range";

		if (!c->upper)
			continue;
		if (asprintf(&subject, "%s:upper", c->name) < 0)
			return -ENOMEM;
		/* The inverse map's host side is the container's side. */
		if (c->canonical_upper && !(inv = shift_idmap_invert(c->map)))
			return -ENOMEM;
		run->subject = subject;
		run->diffs = 0;
		run->cb_err = 0;
		r = shift_tree_check_range(c->upper, inv ? inv : c->map,
					   diff_to_finding, run);
		shift_idmap_free(inv);
		r = tree_result(run, r < 0 ? r : 0, r < 0 ? run->diffs : 0,
				"upper dir", c->upper, NULL);
		if (r == 1 && run->diffs > 0)
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "'%s' holds ids outside the container's %s "
				 "(%d finding%s)",
				 c->upper, what, run->diffs,
				 run->diffs == 1 ? "" : "s");
		else if (r == 1)
			r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				 c->canonical_upper
				     ? "'%s' holds only the container's own ids"
				     : "'%s' holds only ids of the container's "
				       "range",
				 c->upper);
		if (r < 0)
			return r;
	}
	return 0;
}
