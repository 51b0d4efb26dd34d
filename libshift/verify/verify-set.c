/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets (verify.c): the JSON description read, parsed and
 * checked, every key and array element placed at its line and column.
 */
#include "config.h"

#include <fcntl.h>
#include <json.h>
#include <stdarg.h>
#include <string.h>

#include "verify/verify-internal.h"
#include "util/error.h"

void sk_vset_free(struct vset *s)
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

int sk_vset_load(struct vset *s, const char *path, char *err, size_t errlen)
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
