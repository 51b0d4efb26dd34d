/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets: the checks that say whether a set of containers sharing
 * layers is safe and right.  Maps alone decide checks 1-3 and 7; manifests
 * and the trees decide 4-6 (manifest.c).  The description is a JSON file
 * (docs/shift-verify.1, CONTAINER SET).
 */
#include "config.h"

#include <inttypes.h>
#include <json.h>
#include <libmount.h>
#include <stdarg.h>
#include <string.h>

#include "internal.h"

struct vlayer {
	const char *name;
	const char *path;
	const char *manifest_path;
	struct shift_idmap *shifted; /* shifted in place with this map */
	struct shift_manifest *manifest;
	bool changed; /* check 4 found differences */
	bool unreadable;
};

struct vview {
	struct vlayer *layer;
	const char *path;
	bool merged; /* an overlay's merged dir: extra entries are fine */
	bool copy;   /* a shifted copy, not the layer itself */
};

struct vcontainer {
	const char *name;
	const char *owner;
	pid_t pid;
	struct shift_idmap *map;
	struct vview *views;
	size_t nviews;
	const char *upper;
};

struct vset {
	json_object *root; /* owns every string above */
	struct vlayer *layers;
	size_t nlayers;
	struct vcontainer *cs;
	size_t ncs;
};

struct vrun {
	shift_verify_fn fn;
	void *userdata;
	int fails;
	/* the finding being built: its check and subject */
	enum shift_verify_check check;
	const char *subject;
	int diffs; /* differences passed on so far for this subject */
};

static const char *const check_names[] = {
	[SHIFT_VERIFY_OVERLAP] = "overlap",
	[SHIFT_VERIFY_HOST_ROOT] = "host-root",
	[SHIFT_VERIFY_SUBID] = "subid",
	[SHIFT_VERIFY_LAYER] = "layer",
	[SHIFT_VERIFY_VIEW] = "view",
	[SHIFT_VERIFY_UPPER] = "upper",
	[SHIFT_VERIFY_IN_PLACE] = "in-place",
	[SHIFT_VERIFY_MOUNTS] = "mounts",
};

const char *shift_verify_check_name(enum shift_verify_check c)
{
	if ((unsigned)c >= ARRAY_SIZE(check_names) || !check_names[c])
		return "unknown";
	return check_names[c];
}

const char *shift_verify_status_name(enum shift_verify_status s)
{
	switch (s) {
	case SHIFT_VERIFY_PASS:
		return "pass";
	case SHIFT_VERIFY_FAIL:
		return "fail";
	case SHIFT_VERIFY_SKIP:
		return "skip";
	default:
		return "info";
	}
}

static void vset_free(struct vset *s)
{
	size_t i;

	for (i = 0; i < s->nlayers; i++) {
		shift_idmap_free(s->layers[i].shifted);
		shift_manifest_free(s->layers[i].manifest);
	}
	for (i = 0; i < s->ncs; i++) {
		shift_idmap_free(s->cs[i].map);
		free(s->cs[i].views);
	}
	free(s->layers);
	free(s->cs);
	json_object_put(s->root);
}

_printf_(3, 4) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static const char *opt_str(json_object *o, const char *key, bool *wrong)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*wrong = true;
		return NULL;
	}
	return json_object_get_string(v);
}

static bool opt_bool(json_object *o, const char *key, bool *wrong)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return false;
	if (!json_object_is_type(v, json_type_boolean)) {
		*wrong = true;
		return false;
	}
	return json_object_get_boolean(v);
}

/* A map given as one string or an array of strings (parse grammar). */
static int parse_map(json_object *v, struct shift_idmap **ret, const char *what,
		     char *err, size_t errlen)
{
	struct shift_idmap *m = shift_idmap_new();
	const char *why = NULL;
	size_t i, n;
	int r = 0;

	if (!m)
		return -ENOMEM;
	if (json_object_is_type(v, json_type_string)) {
		r = shift_idmap_parse(m, json_object_get_string(v), &why);
	} else if (json_object_is_type(v, json_type_array) &&
		   (n = json_object_array_length(v)) > 0) {
		for (i = 0; i < n && r >= 0; i++) {
			json_object *x = json_object_array_get_idx(v, i);

			if (!json_object_is_type(x, json_type_string)) {
				r = -EINVAL;
				why = "map entries must be strings";
				break;
			}
			r = shift_idmap_parse(m, json_object_get_string(x), &why);
		}
	} else {
		r = -EINVAL;
		why = "a map is a string or an array of strings, e.g. \"b:0:100000:65536\"";
	}
	if (r < 0) {
		shift_idmap_free(m);
		return bad(err, errlen, "%s: bad map: %s", what,
			   why ? why : strerror(-r));
	}
	*ret = m;
	return 0;
}

static struct vlayer *find_layer(struct vset *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nlayers; i++)
		if (!strcmp(s->layers[i].name, name))
			return &s->layers[i];
	return NULL;
}

static int parse_layers(struct vset *s, json_object *arr, char *err,
			size_t errlen)
{
	size_t i, n;
	int r;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, errlen, "\"layers\" must be an array");
	n = json_object_array_length(arr);
	s->layers = calloc(n ? n : 1, sizeof(*s->layers));
	if (!s->layers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		struct vlayer *l = &s->layers[s->nlayers];
		bool wrong = false;
		char what[64];

		if (!json_object_is_type(o, json_type_object))
			return bad(err, errlen, "layer %zu: must be an object", i + 1);
		l->name = opt_str(o, "name", &wrong);
		l->path = opt_str(o, "path", &wrong);
		l->manifest_path = opt_str(o, "manifest", &wrong);
		if (wrong || !l->name || !l->path)
			return bad(err, errlen,
				   "layer %zu: needs \"name\" and \"path\" (strings), \"manifest\" is a string",
				   i + 1);
		if (find_layer(s, l->name))
			return bad(err, errlen, "layer '%s' is described twice", l->name);
		s->nlayers++;
		snprintf(what, sizeof(what), "layer '%.40s'", l->name);
		if (json_object_object_get_ex(o, "shifted", &v) &&
		    !json_object_is_type(v, json_type_null)) {
			r = parse_map(v, &l->shifted, what, err, errlen);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int parse_views(struct vset *s, struct vcontainer *c, json_object *arr,
		       char *err, size_t errlen)
{
	size_t i, n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, errlen, "container '%s': \"views\" must be an array",
			   c->name);
	n = json_object_array_length(arr);
	c->views = calloc(n ? n : 1, sizeof(*c->views));
	if (!c->views)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct vview *v = &c->views[c->nviews];
		const char *lname;
		bool wrong = false;

		if (!json_object_is_type(o, json_type_object))
			return bad(err, errlen, "container '%s': view %zu must be an object",
				   c->name, i + 1);
		lname = opt_str(o, "layer", &wrong);
		v->path = opt_str(o, "path", &wrong);
		v->merged = opt_bool(o, "merged", &wrong);
		v->copy = opt_bool(o, "copy", &wrong);
		if (wrong || !lname || !v->path)
			return bad(err, errlen,
				   "container '%s': view %zu needs \"layer\" and \"path\" (strings); \"merged\", \"copy\" are booleans",
				   c->name, i + 1);
		v->layer = find_layer(s, lname);
		if (!v->layer)
			return bad(err, errlen, "container '%s': view %zu: no layer named '%s'",
				   c->name, i + 1, lname);
		c->nviews++;
	}
	return 0;
}

static int parse_containers(struct vset *s, json_object *arr, char *err,
			    size_t errlen)
{
	size_t i, j, n;
	int r;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return bad(err, errlen, "\"containers\" must be an array");
	n = json_object_array_length(arr);
	s->cs = calloc(n ? n : 1, sizeof(*s->cs));
	if (!s->cs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v, *pv;
		struct vcontainer *c = &s->cs[s->ncs];
		bool wrong = false, has_map, has_pid;
		char what[80];

		if (!json_object_is_type(o, json_type_object))
			return bad(err, errlen, "container %zu: must be an object", i + 1);
		c->name = opt_str(o, "name", &wrong);
		c->owner = opt_str(o, "owner", &wrong);
		c->upper = opt_str(o, "upper", &wrong);
		if (wrong || !c->name)
			return bad(err, errlen,
				   "container %zu: needs \"name\"; \"owner\" and \"upper\" are strings",
				   i + 1);
		for (j = 0; j < s->ncs; j++)
			if (!strcmp(s->cs[j].name, c->name))
				return bad(err, errlen, "container '%s' is described twice",
					   c->name);
		s->ncs++;
		snprintf(what, sizeof(what), "container '%.40s'", c->name);
		has_map = json_object_object_get_ex(o, "map", &v);
		has_pid = json_object_object_get_ex(o, "pid", &pv);
		if (has_map == has_pid)
			return bad(err, errlen, "container '%s': give exactly one of \"map\" and \"pid\"",
				   c->name);
		if (has_map) {
			r = parse_map(v, &c->map, what, err, errlen);
			if (r < 0)
				return r;
		} else {
			int64_t pid = json_object_get_int64(pv);

			if (!json_object_is_type(pv, json_type_int) || pid <= 0 ||
			    pid > 0x3fffffff)
				return bad(err, errlen, "container '%s': \"pid\" must be a positive number",
					   c->name);
			c->pid = (pid_t)pid;
			c->map = shift_idmap_new();
			if (!c->map)
				return -ENOMEM;
			r = shift_idmap_from_pid(c->map, c->pid);
			if (r < 0)
				return bad(err, errlen, "container '%s': Failed to read the maps of process %d: %s",
					   c->name, (int)c->pid, strerror(-r));
		}
		r = parse_views(s, c, json_object_object_get_ex(o, "views", &v) ? v : NULL,
				err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int vset_load(struct vset *s, const char *path, char *err, size_t errlen)
{
	json_object *v;
	int r;

	s->root = json_object_from_file(path);
	if (!s->root) {
		if (access(path, R_OK) < 0)
			return negative_errno();
		return bad(err, errlen, "not valid JSON: %s", json_util_get_last_err() ?
			   json_util_get_last_err() : "parse error");
	}
	if (!json_object_is_type(s->root, json_type_object))
		return bad(err, errlen, "the top level must be an object");
	r = parse_layers(s, json_object_object_get_ex(s->root, "layers", &v) ? v : NULL,
			 err, errlen);
	if (r < 0)
		return r;
	return parse_containers(s, json_object_object_get_ex(s->root, "containers", &v) ?
				v : NULL, err, errlen);
}

/* ------------------------------------------------------------------ */

_printf_(4, 5) static int emit(struct vrun *run, enum shift_verify_status st,
			       const struct shift_difference *d,
			       const char *fmt, ...)
{
	struct shift_verify_finding f = {
		.check = run->check, .status = st, .subject = run->subject,
		.diff = d,
	};
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	f.message = msg;
	if (st == SHIFT_VERIFY_FAIL)
		run->fails++;
	return run->fn ? run->fn(&f, run->userdata) : 0;
}

static void kind_ranges(const struct shift_idmap *m, enum shift_id_kind k,
			char *buf, size_t size)
{
	unsigned i, n = shift_idmap_count(m, k);
	size_t len = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		struct shift_extent e;
		int w;

		shift_idmap_extent(m, k, i, &e);
		w = snprintf(buf + len, size - len, "%s%" PRIu32 "-%" PRIu32,
			     i ? "," : "", e.seen, e.seen + e.count - 1);
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
	}
}

/* The first overlapping host id range of kind k between two maps. */
static bool maps_overlap(const struct shift_idmap *a, const struct shift_idmap *b,
			 enum shift_id_kind k, uint32_t *lo, uint32_t *hi)
{
	unsigned i, j;

	for (i = 0; i < shift_idmap_count(a, k); i++)
		for (j = 0; j < shift_idmap_count(b, k); j++) {
			struct shift_extent x, y;
			uint64_t l, h;

			shift_idmap_extent(a, k, i, &x);
			shift_idmap_extent(b, k, j, &y);
			l = x.seen > y.seen ? x.seen : y.seen;
			h = (uint64_t)x.seen + x.count < (uint64_t)y.seen + y.count ?
				    (uint64_t)x.seen + x.count :
				    (uint64_t)y.seen + y.count;
			if (l < h) {
				*lo = (uint32_t)l;
				*hi = (uint32_t)(h - 1);
				return true;
			}
		}
	return false;
}

/* 1: no two containers' host ranges overlap, uids and gids separately. */
static int check_overlap(struct vset *s, struct vrun *run)
{
	size_t i, j;
	int r;

	run->check = SHIFT_VERIFY_OVERLAP;
	for (i = 0; i < s->ncs; i++)
		for (j = i + 1; j < s->ncs; j++) {
			_cleanup_free_ char *subject = NULL;
			bool any = false;

			if (asprintf(&subject, "%s,%s", s->cs[i].name, s->cs[j].name) < 0)
				return -ENOMEM;
			run->subject = subject;
			for (int k = 0; k < 2; k++) {
				uint32_t lo, hi;

				if (!maps_overlap(s->cs[i].map, s->cs[j].map,
						  (enum shift_id_kind)k, &lo, &hi))
					continue;
				any = true;
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "'%s' and '%s' share host %s %" PRIu32 "-%" PRIu32 ": each one's root can %s the other's processes and files, and per-%s limits (RLIMIT_NPROC, inotify, keyrings) are shared, so one can exhaust them for the other",
					 s->cs[i].name, s->cs[j].name,
					 k ? "gids" : "uids", lo, hi,
					 k ? "read and write (by group)" :
					     "signal, ptrace, read and write",
					 k ? "group" : "user");
				if (r < 0)
					return r;
			}
			if (!any) {
				r = emit(run, SHIFT_VERIFY_PASS, NULL,
					 "host ranges are disjoint");
				if (r < 0)
					return r;
			}
		}
	return 0;
}

/* 2: no container maps host uid or gid 0. */
static int check_host_root(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_HOST_ROOT;
	for (i = 0; i < s->ncs; i++) {
		bool any = false;

		run->subject = s->cs[i].name;
		for (int k = 0; k < 2; k++) {
			uint32_t inside;

			if (shift_idmap_to_disk(s->cs[i].map, (enum shift_id_kind)k, 0,
						&inside) < 0)
				continue;
			any = true;
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "host %s 0 is mapped (as %" PRIu32 " inside): the container can own and change host root's files",
				 k ? "gid" : "uid", inside);
			if (r < 0)
				return r;
		}
		if (!any && (r = emit(run, SHIFT_VERIFY_PASS, NULL,
				      "host uid 0 and gid 0 are not mapped")) < 0)
			return r;
	}
	return 0;
}

/* A copy of one kind of a map. */
static struct shift_idmap *map_kind(const struct shift_idmap *m,
				    enum shift_id_kind k)
{
	struct shift_idmap *x = shift_idmap_new();
	unsigned i;

	if (!x)
		return NULL;
	for (i = 0; i < shift_idmap_count(m, k); i++) {
		struct shift_extent e;

		shift_idmap_extent(m, k, i, &e);
		shift_idmap_add(x, k, e.disk, e.seen, e.count, NULL);
	}
	return x;
}

/* 3: each range inside the owner's delegation. */
static int check_subid(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_SUBID;
	for (i = 0; i < s->ncs; i++) {
		bool any = false;

		run->subject = s->cs[i].name;
		if (!s->cs[i].owner) {
			r = emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"owner\" given");
			if (r < 0)
				return r;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct shift_idmap *x = map_kind(s->cs[i].map, (enum shift_id_kind)k);
			char ranges[256];
			int in;

			if (!x)
				return -ENOMEM;
			in = shift_idmap_count(x, (enum shift_id_kind)k) ?
				     shift_idmap_within_subid(x, s->cs[i].owner) : 1;
			kind_ranges(x, (enum shift_id_kind)k, ranges, sizeof(ranges));
			shift_idmap_free(x);
			if (in < 0)
				return in;
			if (in)
				continue;
			any = true;
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "host %s %s not inside the %s delegation of '%s' (%s)",
				 k ? "gids" : "uids", ranges, k ? "subgid" : "subuid",
				 s->cs[i].owner,
				 k ? (getenv("SHIFT_SUBGID") ?: "/etc/subgid") :
				     (getenv("SHIFT_SUBUID") ?: "/etc/subuid"));
			if (r < 0)
				return r;
		}
		if (!any && (r = emit(run, SHIFT_VERIFY_PASS, NULL,
				      "ranges inside the delegation of '%s'",
				      s->cs[i].owner)) < 0)
			return r;
	}
	return 0;
}

static int diff_to_finding(const struct shift_difference *d, void *userdata)
{
	struct vrun *run = userdata;

	run->diffs++;
	return emit(run, SHIFT_VERIFY_FAIL, d, "%s: %s is %s, expected %s",
		    d->path, d->field, d->found, d->expected);
}

/* 4: every layer unchanged on disk against its manifest. */
static int check_layers(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_LAYER;
	for (i = 0; i < s->nlayers; i++) {
		struct vlayer *l = &s->layers[i];
		const char *why = NULL;
		unsigned line = 0;

		run->subject = l->name;
		if (!l->manifest_path) {
			r = emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"manifest\" given");
			if (r < 0)
				return r;
			continue;
		}
		r = shift_manifest_read(l->manifest_path, &l->manifest, &why, &line);
		if (r < 0) {
			l->unreadable = true;
			if (line)
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read manifest '%s': line %u: %s",
					 l->manifest_path, line, why ? why : strerror(-r));
			else
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read manifest '%s': %s",
					 l->manifest_path, why ? why : strerror(-r));
			if (r < 0)
				return r;
			continue;
		}
		run->diffs = 0;
		r = shift_manifest_check(l->manifest, l->shifted, l->path, 0,
					 diff_to_finding, run);
		if (r < 0) {
			if (run->diffs == 0 && r != -ENOMEM) {
				l->changed = true;
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read layer '%s': %s", l->path,
					 strerror(-r));
			}
			if (r < 0)
				return r;
			continue;
		}
		if (r > 0)
			l->changed = true;
		else if ((r = emit(run, SHIFT_VERIFY_PASS, NULL,
				   "'%s' matches %s%s", l->path,
				   shift_manifest_digest(l->manifest),
				   l->shifted ? " under its in-place map" : "")) < 0)
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

/* 5: each container's view of each layer equals the manifest under its map. */
static int check_views(struct vset *s, struct vrun *run)
{
	size_t i, j;
	int r;

	run->check = SHIFT_VERIFY_VIEW;
	for (i = 0; i < s->ncs; i++)
		for (j = 0; j < s->cs[i].nviews; j++) {
			struct vcontainer *c = &s->cs[i];
			struct vview *v = &c->views[j];
			_cleanup_free_ char *subject = NULL, *path = NULL;

			if (asprintf(&subject, "%s:%s", c->name, v->layer->name) < 0)
				return -ENOMEM;
			run->subject = subject;
			path = view_path(c, v->path);
			if (!path)
				return -ENOMEM;
			if (!v->layer->manifest) {
				r = emit(run, SHIFT_VERIFY_SKIP, NULL,
					 "layer '%s' has no readable manifest",
					 v->layer->name);
			} else if (v->layer->shifted && !v->copy &&
				   !shift_idmap_equal(v->layer->shifted, c->map)) {
				/* reported once, by check 7 */
				r = emit(run, SHIFT_VERIFY_SKIP, NULL,
					 "layer '%s' is shifted in place for another map (see check 'in-place')",
					 v->layer->name);
			} else if (v->layer->changed && !v->copy) {
				/* the view shows the layer itself: its
				 * differences are the layer's, reported once */
				r = emit(run, SHIFT_VERIFY_SKIP, NULL,
					 "layer '%s' changed on disk (see check 'layer')",
					 v->layer->name);
			} else {
				run->diffs = 0;
				r = shift_manifest_check(v->layer->manifest, c->map, path,
							 v->merged ? SHIFT_CHECK_IGNORE_EXTRA : 0,
							 diff_to_finding, run);
				if (r < 0 && run->diffs == 0 && r != -ENOMEM)
					r = emit(run, SHIFT_VERIFY_FAIL, NULL,
						 "Failed to read view '%s': %s", path,
						 strerror(-r));
				else if (r == 0)
					r = emit(run, SHIFT_VERIFY_PASS, NULL,
						 "'%s' matches the manifest under the container's map",
						 path);
			}
			if (r < 0)
				return r;
		}
	return 0;
}

/* 6: upper dirs hold only ids inside the container's range. */
static int check_uppers(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_UPPER;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		_cleanup_free_ char *subject = NULL;

		if (!c->upper)
			continue;
		if (asprintf(&subject, "%s:upper", c->name) < 0)
			return -ENOMEM;
		run->subject = subject;
		run->diffs = 0;
		r = shift_tree_check_range(c->upper, c->map, diff_to_finding, run);
		if (r < 0 && run->diffs == 0 && r != -ENOMEM)
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "Failed to read upper dir '%s': %s", c->upper,
				 strerror(-r));
		else if (r == 0)
			r = emit(run, SHIFT_VERIFY_PASS, NULL,
				 "'%s' holds only ids of the container's range",
				 c->upper);
		if (r < 0)
			return r;
	}
	return 0;
}

/* 7: a layer shifted in place is used only by containers with its map. */
static int check_in_place(struct vset *s, struct vrun *run)
{
	size_t i, j, k;
	int r;

	run->check = SHIFT_VERIFY_IN_PLACE;
	for (i = 0; i < s->nlayers; i++) {
		struct vlayer *l = &s->layers[i];
		_cleanup_free_ char *lmap = NULL;
		bool any = false;

		if (!l->shifted)
			continue;
		run->subject = l->name;
		lmap = shift_idmap_to_string(l->shifted);
		if (!lmap)
			return -ENOMEM;
		for (j = 0; j < s->ncs; j++)
			for (k = 0; k < s->cs[j].nviews; k++) {
				_cleanup_free_ char *cmap = NULL;

				if (s->cs[j].views[k].layer != l || s->cs[j].views[k].copy ||
				    shift_idmap_equal(l->shifted, s->cs[j].map))
					continue;
				cmap = shift_idmap_to_string(s->cs[j].map);
				any = true;
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "layer '%s' is shifted in place for map %s, but container '%s' uses it with map %s: it sees ids of another container (use an idmapped mount of an unshifted layer, or a shifted copy)",
					 l->name, lmap, s->cs[j].name,
					 cmap ? cmap : "?");
				if (r < 0)
					return r;
			}
		if (!any && (r = emit(run, SHIFT_VERIFY_PASS, NULL,
				      "every container using it has its map %s",
				      lmap)) < 0)
			return r;
	}
	return 0;
}

static bool has_option(const char *optstr, const char *name)
{
	return optstr && mnt_optstr_get_option(optstr, name, NULL, NULL) == 0;
}

/* For a running container: which of its mounts are idmapped. */
static int report_mounts(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_MOUNTS;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		struct libmnt_table *tb;
		struct libmnt_iter *it;
		struct libmnt_fs *fs;
		char path[64];
		unsigned total = 0, idm = 0;

		if (c->pid <= 0)
			continue;
		run->subject = c->name;
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)c->pid);
		tb = mnt_new_table_from_file(path);
		if (!tb) {
			r = emit(run, SHIFT_VERIFY_SKIP, NULL,
				 "Failed to read '%s' (the process is gone?)", path);
			if (r < 0)
				return r;
			continue;
		}
		it = mnt_new_iter(MNT_ITER_FORWARD);
		if (!it) {
			mnt_unref_table(tb);
			return -ENOMEM;
		}
		r = 0;
		while (r >= 0 && mnt_table_next_fs(tb, it, &fs) == 0) {
			const char *target = mnt_fs_get_target(fs);
			bool idmapped = has_option(mnt_fs_get_vfs_options(fs), "idmapped");
			bool viewed = false;
			size_t j;

			total++;
			if (idmapped)
				idm++;
			/* a mount that holds a view, or any idmapped one */
			for (j = 0; j < c->nviews; j++)
				if (target && !strcmp(target, c->views[j].path))
					viewed = true;
			if (!idmapped && !viewed)
				continue;
			r = emit(run, SHIFT_VERIFY_INFO, NULL, "%s (%s) is %sidmapped",
				 target ? target : "?", mnt_fs_get_fstype(fs) ?: "?",
				 idmapped ? "" : "not ");
		}
		if (r >= 0)
			r = emit(run, SHIFT_VERIFY_INFO, NULL,
				 "%u of %u mounts of process %d are idmapped", idm,
				 total, (int)c->pid);
		mnt_free_iter(it);
		mnt_unref_table(tb);
		if (r < 0)
			return r;
	}
	return 0;
}

int shift_verify_containers(const char *path, shift_verify_fn fn,
			    void *userdata, char *err, size_t errlen)
{
	struct vset s = { 0 };
	struct vrun run = { .fn = fn, .userdata = userdata };
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = vset_load(&s, path, err, errlen);
	if (r >= 0)
		r = check_overlap(&s, &run);
	if (r >= 0)
		r = check_host_root(&s, &run);
	if (r >= 0)
		r = check_subid(&s, &run);
	if (r >= 0)
		r = check_layers(&s, &run);
	if (r >= 0)
		r = check_views(&s, &run);
	if (r >= 0)
		r = check_uppers(&s, &run);
	if (r >= 0)
		r = check_in_place(&s, &run);
	if (r >= 0)
		r = report_mounts(&s, &run);
	vset_free(&s);
	return r < 0 ? r : run.fails;
}
