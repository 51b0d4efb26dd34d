/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets: the checks that say whether a set of containers sharing
 * layers is safe and right.  Maps alone decide checks 1-3 and 7; manifests
 * and the trees decide 4-6 (manifest.c).  The description is a JSON file
 * (docs/shift-verify.1, CONTAINER SET).
 */
#include "config.h"

#include <inttypes.h>
#include <ctype.h>
#include <fcntl.h>
#include <json.h>
#include <pwd.h>
#include <libmount.h>
#include <stdarg.h>
#include <string.h>

#include "verify/verify-internal.h"
#include "util/error.h"

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
	bool canonical_upper; /* upper stores the container's own ids */
};

/* Where a key or array element of the description is (see scan_value). */
struct jloc {
	const json_object *parent;
	char *key; /* NULL for an array element */
	size_t idx;
	size_t off;
};

struct vset {
	json_object *root; /* owns every string above */
	char *text;	   /* the description, for positions */
	size_t len;
	struct jloc *locs;
	size_t nlocs, caplocs;
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
	int cb_err; /* what fn returned when it failed */
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
	for (i = 0; i < s->nlocs; i++)
		free(s->locs[i].key);
	free(s->locs);
	free(s->layers);
	free(s->cs);
	free(s->text);
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

/*
 * Where each key and array element of the description is in its text, so
 * that every complaint names a line and a column: json-c keeps no
 * positions, so the text is walked a second time beside the parsed tree
 * (json-c has already checked the syntax).  The walk also refuses what
 * json-c lets through: a key given twice (json-c keeps the last one, which
 * would silently drop the first) and single-quoted strings.
 */
struct jscan {
	struct vset *s;
	const char *p, *end;
	char *err;
	size_t errlen;
};

static void pos_of(const struct vset *s, size_t off, unsigned *line,
		   unsigned *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < s->len; i++) {
		if (s->text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

static size_t loc_find(const struct vset *s, const json_object *parent,
		       const char *key, size_t idx)
{
	size_t i;

	for (i = 0; i < s->nlocs; i++) {
		const struct jloc *l = &s->locs[i];

		if (l->parent != parent)
			continue;
		if (key ? (l->key && !strcmp(l->key, key))
			: (!l->key && l->idx == idx))
			return l->off;
	}
	return SIZE_MAX;
}

/* "line L, column C: " (when the offset is known) + the message. */
_printf_(5, 0) static int vbad_off(const struct vset *s, size_t off,
				   char *err, size_t errlen, const char *fmt,
				   va_list ap)
{
	unsigned line, col;
	int n = 0;

	if (!err || !errlen)
		return -EBADMSG;
	err[0] = '\0';
	if (s && off != SIZE_MAX) {
		pos_of(s, off, &line, &col);
		n = snprintf(err, errlen, "line %u, column %u: ", line, col);
		if (n < 0 || (size_t)n >= errlen)
			n = 0;
	}
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	return -EBADMSG;
}

/* The message, placed at the key (or element) of parent. */
_printf_(6, 7) static int bad_at(const struct vset *s, char *err, size_t errlen,
				 const json_object *parent, const char *key,
				 const char *fmt, ...)
{
	size_t off = s ? loc_find(s, parent, key, 0) : SIZE_MAX;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vbad_off(s, off, err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* The same for element idx of an array. */
_printf_(6, 7) static int bad_idx(const struct vset *s, char *err,
				  size_t errlen, const json_object *arr,
				  size_t idx, const char *fmt, ...)
{
	size_t off = loc_find(s, arr, NULL, idx);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vbad_off(s, off, err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int scan_bad(struct jscan *j, const char *what)
{
	unsigned line, col;

	pos_of(j->s, (size_t)(j->p - j->s->text), &line, &col);
	return bad(j->err, j->errlen, "line %u, column %u: %s", line, col,
		   what);
}

static void scan_ws(struct jscan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Past a double-quoted string; the caller checked *p == '"'. */
static void scan_string(struct jscan *j)
{
	for (j->p++; j->p < j->end && *j->p != '"'; j->p++)
		if (*j->p == '\\' && j->p + 1 < j->end)
			j->p++;
	if (j->p < j->end)
		j->p++;
}

static int loc_add(struct vset *s, const json_object *parent, char *key,
		   size_t idx, size_t off)
{
	if (s->nlocs == s->caplocs) {
		size_t cap = s->caplocs ? s->caplocs * 2 : 64;
		struct jloc *l = realloc(s->locs, cap * sizeof(*l));

		if (!l) {
			free(key);
			return -ENOMEM;
		}
		s->locs = l;
		s->caplocs = cap;
	}
	s->locs[s->nlocs++] = (struct jloc){parent, key, idx, off};
	return 0;
}

/* key already a key of o?  (o's keys are recorded from index first on) */
static bool key_seen(const struct vset *s, size_t first, const json_object *o,
		     const char *key)
{
	for (size_t i = first; i < s->nlocs; i++)
		if (s->locs[i].parent == o && s->locs[i].key &&
		    !strcmp(s->locs[i].key, key))
			return true;
	return false;
}

static int scan_value(struct jscan *j, json_object *o, unsigned depth)
{
	int r;

	scan_ws(j);
	if (j->p >= j->end)
		return scan_bad(j, "unexpected end of the text");
	if (depth > 64)
		return scan_bad(j, "nested too deeply");
	if (*j->p == '{') {
		/* this object's keys are all recorded from here on */
		size_t first = j->s->nlocs;

		j->p++;
		scan_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		for (;;) {
			const char *k0;
			json_object *ks, *child = NULL;
			char *key;

			scan_ws(j);
			if (j->p >= j->end || *j->p != '"')
				return scan_bad(
				    j,
				    "a key must be a string in double quotes");
			k0 = j->p;
			scan_string(j);
			key = strndup(k0, (size_t)(j->p - k0));
			if (!key)
				return -ENOMEM;
			/* json-c unescapes the key exactly as it did for the
			 * tree */
			ks = json_tokener_parse(key);
			free(key);
			if (!ks || !json_object_is_type(ks, json_type_string)) {
				json_object_put(ks);
				j->p = k0;
				return scan_bad(j, "bad key");
			}
			key = strdup(json_object_get_string(ks));
			json_object_put(ks);
			if (!key)
				return -ENOMEM;
			if (key_seen(j->s, first, o, key)) {
				j->p = k0;
				r = scan_bad(
				    j, "a key appears twice in one object: ");
				if (j->err)
					snprintf(j->err + strlen(j->err),
						 j->errlen - strlen(j->err),
						 "\"%.60s\"", key);
				free(key);
				return r;
			}
			json_object_object_get_ex(o, key, &child);
			r = loc_add(j->s, o, key, 0, (size_t)(k0 - j->s->text));
			if (r < 0)
				return r;
			scan_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return scan_bad(j, "':' expected");
			j->p++;
			r = scan_value(j, child, depth + 1);
			if (r < 0)
				return r;
			scan_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == '}') {
				j->p++;
				return 0;
			}
			return scan_bad(j, "',' or '}' expected");
		}
	}
	if (*j->p == '[') {
		size_t idx;

		j->p++;
		scan_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		for (idx = 0;; idx++) {
			scan_ws(j);
			r = loc_add(j->s, o, NULL, idx,
				    (size_t)(j->p - j->s->text));
			if (r < 0)
				return r;
			r = scan_value(j, json_object_array_get_idx(o, idx),
				       depth + 1);
			if (r < 0)
				return r;
			scan_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == ']') {
				j->p++;
				return 0;
			}
			return scan_bad(j, "',' or ']' expected");
		}
	}
	if (*j->p == '"') {
		scan_string(j);
		return 0;
	}
	if (*j->p == '\'')
		return scan_bad(j, "strings are in double quotes");
	while (j->p < j->end && !strchr(",]} \t\r\n", *j->p))
		j->p++;
	return 0;
}

/* The closest known key to a typo (at most two edits), or NULL. */
static const char *closest_key(const char *key, const char *const *known)
{
	const char *best = NULL;
	size_t bestd = 3, i;

	for (i = 0; known[i]; i++) {
		size_t la = strlen(key), lb = strlen(known[i]), x, y;
		size_t d[32];

		if (la >= ARRAY_SIZE(d) || lb >= ARRAY_SIZE(d))
			continue;
		/* Levenshtein distance, one row */
		for (y = 0; y <= lb; y++)
			d[y] = y;
		for (x = 1; x <= la; x++) {
			size_t prev = d[0];

			d[0] = x;
			for (y = 1; y <= lb; y++) {
				size_t cur = d[y];
				size_t sub =
				    prev + (key[x - 1] != known[i][y - 1]);
				size_t del = d[y] + 1, ins = d[y - 1] + 1;

				d[y] = sub < del ? (sub < ins ? sub : ins)
						 : (del < ins ? del : ins);
				prev = cur;
			}
		}
		if (d[lb] < bestd) {
			bestd = d[lb];
			best = known[i];
		}
	}
	return best;
}

/* Every key of o is one of known[]: a typo must never drop a check. */
static int check_keys(const struct vset *s, json_object *o, const char *what,
		      const char *const *known, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val)
	{
		const char *near;
		char list[256] = "";
		size_t i, len = 0;

		(void)val;
		for (i = 0; known[i]; i++)
			if (!strcmp(key, known[i]))
				break;
		if (known[i])
			continue;
		for (i = 0; known[i] && len < sizeof(list); i++)
			len +=
			    (size_t)snprintf(list + len, sizeof(list) - len,
					     "%s%s", i ? ", " : "", known[i]);
		near = closest_key(key, known);
		return bad_at(s, err, errlen, o, key,
			      "%s: unknown key \"%.60s\"%s%s%s (known: %s)",
			      what, key, near ? " (did you mean \"" : "",
			      near ? near : "", near ? "\"?)" : "", list);
	}
	return 0;
}

static const char *const set_keys[] = {"layers", "containers", NULL};
static const char *const layer_keys[] = {"name", "path", "manifest", "shifted",
					 NULL};
static const char *const container_keys[] = {
    "name", "owner", "map", "pid", "upper", "canonical_upper", "views", NULL};
static const char *const view_keys[] = {"layer", "path", "merged", "copy",
					NULL};

/* An optional string member (absent: NULL); null, "" or another type is an
 * error. */
static int get_str(const struct vset *s, json_object *o, const char *key,
		   const char *what, const char **ret, char *err, size_t errlen)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return bad_at(s, err, errlen, o, key,
			      "%s: \"%s\" must be a string", what, key);
	if (!*json_object_get_string(v))
		return bad_at(s, err, errlen, o, key, "%s: \"%s\" is empty",
			      what, key);
	*ret = json_object_get_string(v);
	return 0;
}

static int get_bool(const struct vset *s, json_object *o, const char *key,
		    const char *what, bool *ret, char *err, size_t errlen)
{
	json_object *v;

	*ret = false;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return bad_at(s, err, errlen, o, key,
			      "%s: \"%s\" must be true or false", what, key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* A map given as one string or an array of strings (parse grammar): the
 * member key of parent. */
static int parse_map(const struct vset *s, json_object *parent, const char *key,
		     struct shift_idmap **ret, const char *what, char *err,
		     size_t errlen)
{
	struct shift_idmap *m;
	json_object *v = NULL;
	_cleanup_(shift_error_clear) struct shift_error why = { 0 };
	size_t i, n;
	int r = 0;

	json_object_object_get_ex(parent, key, &v);
	if (json_object_is_type(v, json_type_string)) {
		m = shift_idmap_new();
		if (!m)
			return -ENOMEM;
		r = shift_idmap_parse(m, json_object_get_string(v), &why);
		if (r < 0) {
			shift_idmap_free(m);
			return bad_at(s, err, errlen, parent, key,
				      "%s: bad map: %s", what,
				      shift_error_why(&why, r));
		}
	} else if (json_object_is_type(v, json_type_array) &&
		   (n = json_object_array_length(v)) > 0) {
		m = shift_idmap_new();
		if (!m)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(v, i);

			r = json_object_is_type(x, json_type_string)
				? shift_idmap_parse(
				      m, json_object_get_string(x), &why)
				: sk_error_set(&why, -EINVAL,
					       "map entries must be strings");
			if (r < 0) {
				shift_idmap_free(m);
				return bad_idx(s, err, errlen, v, i,
					       "%s: bad map: %s", what,
					       shift_error_why(&why, r));
			}
		}
	} else
		return bad_at(s, err, errlen, parent, key,
			      "%s: \"%s\" is a string or an array of strings, "
			      "e.g. \"b:0:100000:65536\"",
			      what, key);
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

static int parse_layers(struct vset *s, char *err, size_t errlen)
{
	json_object *arr;
	size_t i, n;
	int r;

	if (!json_object_object_get_ex(s->root, "layers", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad_at(s, err, errlen, s->root, "layers",
			      "\"layers\" must be an array");
	n = json_object_array_length(arr);
	s->layers = calloc(n ? n : 1, sizeof(*s->layers));
	if (!s->layers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		struct vlayer *l = &s->layers[s->nlayers];
		char what[64];

		snprintf(what, sizeof(what), "layer %zu", i + 1);
		if (!json_object_is_type(o, json_type_object))
			return bad_idx(s, err, errlen, arr, i,
				       "%s: must be an object", what);
		r = get_str(s, o, "name", what, &l->name, err, errlen);
		if (r >= 0 && l->name)
			snprintf(what, sizeof(what), "layer '%.40s'", l->name);
		if (r >= 0)
			r = check_keys(s, o, what, layer_keys, err, errlen);
		if (r >= 0)
			r = get_str(s, o, "path", what, &l->path, err, errlen);
		if (r >= 0)
			r = get_str(s, o, "manifest", what, &l->manifest_path,
				    err, errlen);
		if (r < 0)
			return r;
		if (!l->name || !l->path)
			return bad_idx(s, err, errlen, arr, i,
				       "%s: needs \"name\" and \"path\"", what);
		if (find_layer(s, l->name))
			return bad_at(s, err, errlen, o, "name",
				      "layer '%.40s' is described twice",
				      l->name);
		s->nlayers++;
		snprintf(what, sizeof(what), "layer '%.40s'", l->name);
		if (json_object_object_get_ex(o, "shifted", &v)) {
			r = parse_map(s, o, "shifted", &l->shifted, what, err,
				      errlen);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int parse_views(struct vset *s, struct vcontainer *c, json_object *o,
		       const char *cwhat, char *err, size_t errlen)
{
	json_object *arr;
	size_t i, n;
	int r;

	if (!json_object_object_get_ex(o, "views", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad_at(s, err, errlen, o, "views",
			      "%s: \"views\" must be an array", cwhat);
	n = json_object_array_length(arr);
	c->views = calloc(n ? n : 1, sizeof(*c->views));
	if (!c->views)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *vo = json_object_array_get_idx(arr, i);
		struct vview *v = &c->views[c->nviews];
		const char *lname = NULL;
		char what[128];

		snprintf(what, sizeof(what), "%s: view %zu", cwhat, i + 1);
		if (!json_object_is_type(vo, json_type_object))
			return bad_idx(s, err, errlen, arr, i,
				       "%s: must be an object", what);
		r = check_keys(s, vo, what, view_keys, err, errlen);
		if (r >= 0)
			r = get_str(s, vo, "layer", what, &lname, err, errlen);
		if (r >= 0)
			r = get_str(s, vo, "path", what, &v->path, err, errlen);
		if (r >= 0)
			r = get_bool(s, vo, "merged", what, &v->merged, err,
				     errlen);
		if (r >= 0)
			r = get_bool(s, vo, "copy", what, &v->copy, err,
				     errlen);
		if (r < 0)
			return r;
		if (!lname || !v->path)
			return bad_idx(s, err, errlen, arr, i,
				       "%s: needs \"layer\" and \"path\"",
				       what);
		if (v->merged && v->copy)
			return bad_idx(
			    s, err, errlen, arr, i,
			    "%s: \"merged\" and \"copy\" exclude each other",
			    what);
		v->layer = find_layer(s, lname);
		if (!v->layer)
			return bad_at(
			    s, err, errlen, vo, "layer",
			    "%s: no layer named '%.40s' in \"layers\"", what,
			    lname);
		c->nviews++;
	}
	return 0;
}

static int parse_containers(struct vset *s, char *err, size_t errlen)
{
	json_object *arr;
	size_t i, j, n;
	int r;

	if (!json_object_object_get_ex(s->root, "containers", &arr))
		return bad(err, errlen, "no \"containers\": nothing to check");
	if (!json_object_is_type(arr, json_type_array))
		return bad_at(s, err, errlen, s->root, "containers",
			      "\"containers\" must be an array");
	n = json_object_array_length(arr);
	if (n == 0)
		return bad_at(s, err, errlen, s->root, "containers",
			      "\"containers\" is empty: nothing to check");
	s->cs = calloc(n, sizeof(*s->cs));
	if (!s->cs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *pv;
		struct vcontainer *c = &s->cs[s->ncs];
		bool has_map, has_pid;
		char what[80];

		snprintf(what, sizeof(what), "container %zu", i + 1);
		if (!json_object_is_type(o, json_type_object))
			return bad_idx(s, err, errlen, arr, i,
				       "%s: must be an object", what);
		r = get_str(s, o, "name", what, &c->name, err, errlen);
		if (r >= 0 && c->name)
			snprintf(what, sizeof(what), "container '%.40s'",
				 c->name);
		if (r >= 0)
			r = check_keys(s, o, what, container_keys, err, errlen);
		if (r >= 0)
			r = get_str(s, o, "owner", what, &c->owner, err,
				    errlen);
		if (r >= 0)
			r = get_str(s, o, "upper", what, &c->upper, err,
				    errlen);
		if (r >= 0)
			r = get_bool(s, o, "canonical_upper", what,
				     &c->canonical_upper, err, errlen);
		if (r >= 0 && c->canonical_upper && !c->upper)
			r = bad_at(s, err, errlen, o, "canonical_upper",
				   "%s: \"canonical_upper\" needs \"upper\"",
				   what);
		if (r < 0)
			return r;
		if (!c->name)
			return bad_idx(s, err, errlen, arr, i,
				       "%s: needs \"name\"", what);
		for (j = 0; j < s->ncs; j++)
			if (!strcmp(s->cs[j].name, c->name))
				return bad_at(
				    s, err, errlen, o, "name",
				    "container '%.40s' is described twice",
				    c->name);
		s->ncs++;
		snprintf(what, sizeof(what), "container '%.40s'", c->name);
		has_map = json_object_object_get_ex(o, "map", NULL);
		has_pid = json_object_object_get_ex(o, "pid", &pv);
		if (has_map == has_pid)
			return bad_idx(
			    s, err, errlen, arr, i,
			    "%s: give exactly one of \"map\" and \"pid\"",
			    what);
		if (has_map) {
			r = parse_map(s, o, "map", &c->map, what, err, errlen);
			if (r < 0)
				return r;
		} else {
			int64_t pid = json_object_get_int64(pv);

			if (!json_object_is_type(pv, json_type_int) || pid <= 0 ||
			    pid > 0x3fffffff)
				return bad_at(
				    s, err, errlen, o, "pid",
				    "%s: \"pid\" must be a positive number",
				    what);
			c->pid = (pid_t)pid;
			c->map = shift_idmap_new();
			if (!c->map)
				return -ENOMEM;
			r = shift_idmap_from_pid(c->map, c->pid);
			if (r < 0)
				return bad_at(s, err, errlen, o, "pid",
					      "%s: Failed to read the maps of "
					      "process %d: %s",
					      what, (int)c->pid, strerror(-r));
		}
		r = parse_views(s, c, o, what, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Bigger than any sane description: refused rather than read whole. */
#define VSET_MAX_SIZE (16u << 20)

static int vset_read(struct vset *s, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -EBADF;
	size_t cap = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t k;

		if (cap - s->len < 4096) {
			char *nb;

			if (cap >= VSET_MAX_SIZE)
				return bad(err, errlen, "larger than %u MiB",
					   VSET_MAX_SIZE >> 20);
			nb = realloc(s->text, cap + 65536);
			if (!nb)
				return -ENOMEM;
			s->text = nb;
			cap += 65536;
		}
		k = read(fd, s->text + s->len, cap - s->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		s->len += (size_t)k;
	}
	s->text[s->len] = '\0';
	if (memchr(s->text, '\0', s->len))
		return bad(err, errlen, "not a text file");
	return 0;
}

static int vset_load(struct vset *s, const char *path, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct jscan j = {s, NULL, NULL, err, errlen};
	int r;

	r = vset_read(s, path, err, errlen);
	if (r < 0)
		return r;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	/* strict: no trailing commas, comments or text after the object */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	s->root = json_tokener_parse_ex(tok, s->text, (int)s->len + 1);
	if (!s->root) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		size_t end = json_tokener_get_parse_end(tok);
		unsigned line, col;

		const char *why = json_tokener_error_desc(e);
		size_t k = end;

		json_tokener_free(tok);
		if (e == json_tokener_success || e == json_tokener_continue ||
		    end >= s->len)
			why = "unexpected end of the text";
		/* json-c says "unexpected character" for a trailing comma */
		while (k > 0 && strchr(" \t\r\n", s->text[k - 1]))
			k--;
		if (end < s->len &&
		    (s->text[end] == ']' || s->text[end] == '}') && k > 0 &&
		    s->text[k - 1] == ',') {
			why = "a comma before the closing bracket (JSON allows "
			      "no trailing comma)";
			end = k - 1;
		}
		pos_of(s, end, &line, &col);
		return bad(err, errlen,
			   "not valid JSON: line %u, column %u: %s", line, col,
			   why);
	}
	json_tokener_free(tok);
	j.p = s->text;
	j.end = s->text + s->len;
	r = scan_value(&j, s->root, 0);
	if (r < 0)
		return r;
	if (!json_object_is_type(s->root, json_type_object))
		return bad(err, errlen, "the top level must be an object");
	r = check_keys(s, s->root, "the container set", set_keys, err, errlen);
	if (r >= 0)
		r = parse_layers(s, err, errlen);
	if (r >= 0)
		r = parse_containers(s, err, errlen);
	return r;
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
	/* a check fails once, however many differences it lists */
	if (st == SHIFT_VERIFY_FAIL && !d)
		run->fails++;
	return run->fn ? run->fn(&f, run->userdata) : 0;
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

/* Append "lo-hi" to buf (comma-separated). */
static void range_append(char *buf, size_t size, uint64_t lo, uint64_t end)
{
	size_t len = strlen(buf);

	if (len < size)
		snprintf(buf + len, size - len, "%s%" PRIu64 "-%" PRIu64,
			 len ? "," : "", lo, end - 1);
}

/*
 * The sub-ranges of the map's host ids of kind k covered neither by the
 * delegation's ranges nor by the owner's own id (own, when has_own), into
 * out as "lo-hi,...".  Returns how many ids are outside.
 */
static uint64_t outside_ranges(const struct shift_idmap *map,
			       const struct shift_idmap *deleg,
			       enum shift_id_kind k, bool has_own, uint32_t own,
			       char *out, size_t size)
{
	unsigned i, j, nd = shift_idmap_count(deleg, k);
	uint64_t total = 0;

	out[0] = '\0';
	for (i = 0; i < shift_idmap_count(map, k); i++) {
		struct shift_extent e;
		uint64_t cur, end;

		shift_idmap_extent(map, k, i, &e);
		cur = e.seen;
		end = (uint64_t)e.seen + e.count;
		while (cur < end) {
			uint64_t covered = cur, next = end;

			/* the furthest end of a range holding cur, and the
			 * nearest start of a range above cur */
			for (j = 0; j <= nd; j++) {
				uint64_t lo, hi;

				if (j < nd) {
					struct shift_extent d;

					shift_idmap_extent(deleg, k, j, &d);
					lo = d.seen;
					hi = (uint64_t)d.seen + d.count;
				} else if (has_own) {
					lo = own;
					hi = (uint64_t)own + 1;
				} else
					break;
				if (lo <= cur && hi > covered)
					covered = hi;
				else if (lo > cur && lo < next)
					next = lo;
			}
			if (covered > cur) {
				cur = covered;
				continue;
			}
			range_append(out, size, cur, next);
			total += next - cur;
			cur = next;
		}
	}
	return total;
}

struct subid_warn {
	struct vrun *run;
	int r;
};

/* A malformed line of another user: said once, as information. */
static void subid_warn(const char *file, unsigned line, const char *why,
		       void *userdata)
{
	struct subid_warn *w = userdata;

	if (w->r >= 0)
		w->r =
		    emit(w->run, SHIFT_VERIFY_INFO, NULL,
			 "%s: line %u: %s: ignored (newuidmap ignores it too)",
			 file, line, why);
}

/*
 * 3: each range inside the owner's delegation.  The owner's own uid and
 * primary gid count as its own: newuidmap(1) and newgidmap(1) let a user
 * map them, and the standard rootless layout maps container root to them.
 */
static int check_subid(struct vset *s, struct vrun *run)
{
	bool warned = false;
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_SUBID;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		struct passwd *pw;
		bool any = false, has_uid = false, has_gid = false;
		uint32_t own_uid = 0, own_gid = 0;

		run->subject = c->name;
		if (!c->owner) {
			r = emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"owner\" given");
			if (r < 0)
				return r;
			continue;
		}
		errno = 0;
		pw = getpwnam(c->owner);
		if (pw) {
			own_uid = pw->pw_uid;
			own_gid = pw->pw_gid;
			has_uid = has_gid = true;
		} else {
			char *end;
			unsigned long u;

			errno = 0;
			u = strtoul(c->owner, &end, 10);
			if (!*end && !errno && u < UINT32_MAX &&
			    isdigit((unsigned char)c->owner[0])) {
				own_uid = (uint32_t)u;
				has_uid = true;
				pw = getpwuid((uid_t)u);
				if (pw) {
					own_gid = pw->pw_gid;
					has_gid = true;
				}
			}
		}
		if (!has_uid) {
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "owner '%s': no such user", c->owner);
			if (r < 0)
				return r;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct shift_idmap *deleg = shift_idmap_new();
			_cleanup_(shift_error_clear) struct shift_error e = { 0 };
			struct subid_warn w = {run, 0};
			char out[256];
			bool missing;
			uint64_t n;

			if (!deleg)
				return -ENOMEM;
			r = shift_subid_read((enum shift_id_kind)k, c->owner,
					     deleg, warned ? NULL : subid_warn,
					     &w, &e);
			if (w.r < 0) {
				shift_idmap_free(deleg);
				return w.r;
			}
			missing = r == -ENOENT;
			if (missing)
				r = 0; /* no file: no delegation, said below */
			if (r < 0) {
				shift_idmap_free(deleg);
				any = true;
				if (r == -EBADMSG)
					r = emit(run, SHIFT_VERIFY_FAIL, NULL,
						 "%s: line %u: %s: the line of "
						 "'%s' is malformed, so it "
						 "delegates nothing",
						 e.path ? e.path : "?", e.line,
						 shift_error_why(&e, r),
						 c->owner);
				else
					r = emit(run, SHIFT_VERIFY_FAIL, NULL,
						 "Failed to read '%s': %s",
						 e.path ? e.path : "?",
						 strerror(-r));
				if (r < 0)
					return r;
				continue;
			}
			n = outside_ranges(c->map, deleg, (enum shift_id_kind)k,
					   k ? has_gid : has_uid,
					   k ? own_gid : own_uid, out,
					   sizeof(out));
			shift_idmap_free(deleg);
			if (!n)
				continue;
			any = true;
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "host %s %s not inside the %s delegation of "
				 "'%s' (%s%s)",
				 k ? "gids" : "uids", out,
				 k ? "subgid" : "subuid", c->owner,
				 sk_subid_file((enum shift_id_kind)k),
				 missing ? ": no such file" : "");
			if (r < 0)
				return r;
		}
		warned = true;
		if (!any && (r = emit(run, SHIFT_VERIFY_PASS, NULL,
				      "ranges inside the delegation of '%s'",
				      c->owner)) < 0)
			return r;
	}
	return 0;
}

static int diff_to_finding(const struct shift_difference *d, void *userdata)
{
	struct vrun *run = userdata;
	int r;

	run->diffs++;
	r = emit(run, SHIFT_VERIFY_FAIL, d, "%s: %s is %s, expected %s",
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
		return emit(run, SHIFT_VERIFY_FAIL, NULL,
			    "Failed to read %s '%s'%s%s: %s%s", what, path,
			    sub ? " at " : "", sub ? sub : "", strerror(-r),
			    diffs ? " (after the differences listed)" : "");
	}
	if (diffs > 0)
		return emit(run, SHIFT_VERIFY_FAIL, NULL,
			    "'%s' differs from the manifest in %d place%s",
			    path, diffs, diffs == 1 ? "" : "s");
	return 1;
}

/* 4: every layer unchanged on disk against its manifest. */
static int check_layers(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_LAYER;
	for (i = 0; i < s->nlayers; i++) {
		struct vlayer *l = &s->layers[i];
		_cleanup_(shift_error_clear) struct shift_error e = { 0 };

		run->subject = l->name;
		if (!l->manifest_path) {
			r = emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"manifest\" given");
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
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "Failed to read manifest '%s': line %u: %s",
					 l->manifest_path, e.line, shift_error_why(&e, r));
			else
				r = emit(run, SHIFT_VERIFY_FAIL, NULL,
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
			r = emit(run, SHIFT_VERIFY_PASS, NULL,
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
	r = emit(g->run, SHIFT_VERIFY_FAIL, d, "%s: %s is %s, expected %s",
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
			r = emit(run, SHIFT_VERIFY_SKIP, NULL, "%s", why);
			continue;
		}
		r = tree_result(run, rc, g.diffs[j], "view", path, &ge);
		if (r == 1)
			r = emit(run, SHIFT_VERIFY_PASS, NULL,
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
static int check_views(struct vset *s, struct vrun *run)
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
				r = emit(run, SHIFT_VERIFY_SKIP, NULL, "%s",
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
					r = emit(run, SHIFT_VERIFY_PASS, NULL,
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
static int check_uppers(struct vset *s, struct vrun *run)
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
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "'%s' holds ids outside the container's %s "
				 "(%d finding%s)",
				 c->upper, what, run->diffs,
				 run->diffs == 1 ? "" : "s");
		else if (r == 1)
			r = emit(run, SHIFT_VERIFY_PASS, NULL,
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
			/* asked to look at this process: not being able to is
			 * a failure, never a pass */
			r = emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "Failed to read '%s' (the process is gone?)",
				 path);
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
			    void *userdata, struct shift_error *err)
{
	struct vset s = { 0 };
	struct vrun run = { .fn = fn, .userdata = userdata };
	char why[512] = "";
	int r;

	/* The parser below builds its reason in a buffer, "line L, column
	 * C: ..." where it knows the place: handed over whole as why, with
	 * the place also as line and column. */
	r = vset_load(&s, path, why, sizeof(why));
	if (r < 0) {
		unsigned line = 0, col = 0;

		if (sscanf(why, "line %u, column %u: ", &line, &col) != 2)
			line = col = 0;
		if (why[0])
			sk_error_set_line(err, r, line, col, "%s", why);
		else
			sk_error_errno(err, r);
		sk_error_path(err, r, path);
	}
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
