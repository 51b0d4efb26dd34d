/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The range allocator's state file (alloc.c): parsed and checked (every
 * rule a block obeys), read, replaced atomically (temporary file, fsync,
 * rename) and locked (flock on a sibling lock file).
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <json.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "util/error.h"
#include "verify/verify-internal.h"

void sk_alloc_state_clear(struct alloc_state *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		shift_alloc_clear(&s->a[i]);
	free(s->a);
	s->a = NULL;
	s->n = 0;
}

_printf_(2, 3) static int state_bad(struct shift_error *err, const char *fmt,
				    ...)
{
	va_list ap;

	va_start(ap, fmt);
	sk_error_setv(err, -EBADMSG, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static bool get_u32(json_object *o, const char *key, uint32_t *ret)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return false;
	x = json_object_get_int64(v);
	if (x < 0 || x > UINT32_MAX)
		return false;
	*ret = (uint32_t)x;
	return true;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool sk_alloc_valid_name(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > 255)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

bool sk_alloc_overlaps(uint32_t a, uint32_t an, uint32_t b, uint32_t bn)
{
	return (uint64_t)a < (uint64_t)b + bn && (uint64_t)b < (uint64_t)a + an;
}

/* The state version this code reads and writes. */
#define STATE_VERSION 1

/*
 * Every rule a block obeys when shift-alloc made it holds for every block
 * read: a state that breaks one was edited or corrupted, and handing out
 * blocks from it could give two containers the same ids, or host root.
 */
static int state_check(const struct alloc_state *s, struct shift_error *err)
{
	size_t i, j;

	for (i = 0; i < s->n; i++) {
		const struct shift_alloc *a = &s->a[i];

		for (int k = 0; k < 2; k++) {
			uint32_t st = k ? a->gid_start : a->uid_start;

			if ((uint64_t)st + a->size > (uint64_t)UINT32_MAX + 1)
				return state_bad(
				    err,
				    "allocation %zu ('%.60s'): %s block %u+%u "
				    "runs past the last id 4294967295",
				    i + 1, a->container, k ? "gid" : "uid", st,
				    a->size);
			if (st == 0)
				return state_bad(
				    err,
				    "allocation %zu ('%.60s'): %s block %u+%u "
				    "contains host id 0",
				    i + 1, a->container, k ? "gid" : "uid", st,
				    a->size);
		}
		for (j = 0; j < i; j++) {
			const struct shift_alloc *b = &s->a[j];

			if (!strcmp(a->container, b->container))
				return state_bad(err,
						 "allocations %zu and %zu: "
						 "container '%.60s' twice",
						 j + 1, i + 1, a->container);
			for (int k = 0; k < 2; k++)
				if (sk_alloc_overlaps(k ? a->gid_start : a->uid_start,
					     a->size,
					     k ? b->gid_start : b->uid_start,
					     b->size))
					return state_bad(
					    err,
					    "allocations %zu ('%.60s') and %zu "
					    "('%.60s'): their %s blocks "
					    "overlap",
					    j + 1, b->container, i + 1,
					    a->container, k ? "gid" : "uid");
		}
	}
	return 0;
}

static bool known_key(const char *key, const char *const *known)
{
	for (; *known; known++)
		if (!strcmp(key, *known))
			return true;
	return false;
}

/* Parse the state file's contents; an empty file is an empty state. */
static int state_parse(const char *text, size_t len, struct alloc_state *s,
		       struct shift_error *err)
{
	static const char *const top_keys[] = {"version", "allocations", NULL};
	static const char *const keys[] = {"container", "user", "uid_start",
					   "gid_start", "size", NULL};
	struct json_tokener *tok;
	json_object *root, *arr, *ver;
	size_t i, n;
	int r = 0;

	if (text[strspn(text, " \t\r\n")] == '\0')
		return 0;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	if (!root) {
		r = state_bad(
		    err, "not valid JSON at byte %zu: %s",
		    json_tokener_get_parse_end(tok),
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return r;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(root, json_type_object)) {
		r = state_bad(err, "not a JSON object");
		goto out;
	}
	/* a newer state may mean more than this code knows: never read it
	 * as version 1, nor rewrite it as one */
	if (!json_object_object_get_ex(root, "version", &ver) ||
	    !json_object_is_type(ver, json_type_int)) {
		r = state_bad(err, "no \"version\" number");
		goto out;
	}
	if (json_object_get_int64(ver) != STATE_VERSION) {
		r = state_bad(err,
			      "version %" PRId64
			      ", but this shift-alloc reads version %d only (a "
			      "newer shift-alloc wrote it?)",
			      json_object_get_int64(ver), STATE_VERSION);
		goto out;
	}
	json_object_object_foreach(root, key, val)
	{
		(void)val;
		if (!known_key(key, top_keys)) {
			r = state_bad(err, "unknown key \"%.60s\"",
				      key);
			goto out;
		}
	}
	if (!json_object_object_get_ex(root, "allocations", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		r = state_bad(err, "no \"allocations\" array");
		goto out;
	}
	n = json_object_array_length(arr);
	s->a = calloc(n ? n : 1, sizeof(*s->a));
	if (!s->a) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		struct shift_alloc *a = &s->a[s->n];
		const char *c, *u;

		if (!json_object_is_type(e, json_type_object)) {
			r = state_bad(err,
				      "allocation %zu: not an object", i + 1);
			goto out;
		}
		json_object_object_foreach(e, k2, v2)
		{
			(void)v2;
			if (!known_key(k2, keys)) {
				r = state_bad(
				    err,
				    "allocation %zu: unknown key \"%.60s\"",
				    i + 1, k2);
				goto out;
			}
		}
		c = get_str(e, "container");
		u = get_str(e, "user");
		if (!c || !u || !sk_alloc_valid_name(c) || !sk_alloc_valid_name(u)) {
			r = state_bad(
			    err,
			    "allocation %zu: \"container\" and \"user\" must "
			    "be names (strings without control characters)",
			    i + 1);
			goto out;
		}
		if (!get_u32(e, "uid_start", &a->uid_start) ||
		    !get_u32(e, "gid_start", &a->gid_start) ||
		    !get_u32(e, "size", &a->size) || a->size == 0) {
			r = state_bad(err,
				      "allocation %zu ('%.60s'): "
				      "\"uid_start\", \"gid_start\" and "
				      "\"size\" must be ids (size at least 1)",
				      i + 1, c);
			goto out;
		}
		a->container = strdup(c);
		a->user = strdup(u);
		s->n++;
		if (!a->container || !a->user) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = state_check(s, err);
out:
	json_object_put(root);
	if (r < 0)
		sk_alloc_state_clear(s);
	return r;
}

int sk_alloc_state_read(const char *path, struct alloc_state *s,
			struct shift_error *err)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	/* /dev/null would read as "no allocations", and writing the state
	 * back would replace the device: only a regular file is a state. */
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return sk_error_path(err, state_bad(err, "not a regular file"),
				     path);
	for (;;) {
		ssize_t k;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap += 65536;
		}
		k = read(fd, buf + len, cap - len - 1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	if (strlen(buf) != len)
		return sk_error_path(err, state_bad(err, "not a text file"),
				     path);
	return sk_error_path(err, state_parse(buf, len, s, err), path);
}

/* All of p[0..len) to fd, or a negative errno. */
int sk_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int sk_alloc_state_write(const char *path, const struct alloc_state *s)
{
	_cleanup_free_ char *tmp = NULL;
	json_object *root, *arr;
	const char *text;
	size_t i;
	int fd, r;

	root = json_object_new_object();
	arr = json_object_new_array();
	if (!root || !arr) {
		json_object_put(root);
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(root, "version",
			       json_object_new_int(STATE_VERSION));
	json_object_object_add(root, "allocations", arr);
	for (i = 0; i < s->n; i++) {
		json_object *e = json_object_new_object();

		if (!e) {
			json_object_put(root);
			return -ENOMEM;
		}
		json_object_object_add(e, "container",
				       json_object_new_string(s->a[i].container));
		json_object_object_add(e, "user",
				       json_object_new_string(s->a[i].user));
		json_object_object_add(e, "uid_start",
				       json_object_new_int64(s->a[i].uid_start));
		json_object_object_add(e, "gid_start",
				       json_object_new_int64(s->a[i].gid_start));
		json_object_object_add(e, "size",
				       json_object_new_int64(s->a[i].size));
		json_object_array_add(arr, e);
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_SPACED);
	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0) {
		tmp = NULL;
		json_object_put(root);
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		json_object_put(root);
		return r;
	}
	r = sk_write_all(fd, text, strlen(text));
	if (r >= 0)
		r = sk_write_all(fd, "\n", 1);
	json_object_put(root);
	if (r >= 0 && fchmod(fd, 0644) < 0)
		r = negative_errno();
	if (r >= 0 && fsync(fd) < 0)
		r = negative_errno();
	if (close(fd) < 0 && r >= 0)
		r = negative_errno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

/*
 * Lock the state: an exclusive flock on PATH.lock, created if missing
 * (with the state's directory when that is the default one).  Returns the
 * lock fd; closing it releases the lock.
 */
int sk_alloc_state_lock(const char *path)
{
	_cleanup_free_ char *lock = NULL;
	int fd;

	if (asprintf(&lock, "%s.lock", path) < 0)
		return -ENOMEM;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 && errno == ENOENT && strcmp(path, SHIFT_ALLOC_STATE) == 0) {
		char dir[sizeof(SHIFT_ALLOC_STATE)];
		char *slash;

		memcpy(dir, path, sizeof(dir));
		slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	}
	if (fd < 0)
		return negative_errno();
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = negative_errno();

			close(fd);
			return r;
		}
	}
	return fd;
}

/*
 * For --dry-run: a shared lock if the lock file exists, nothing created
 * (no lock file, no directory).  Returns the fd or a negative errno.
 */
int sk_alloc_state_lock_shared(const char *path)
{
	_cleanup_free_ char *lock = NULL;
	int fd;

	if (asprintf(&lock, "%s.lock", path) < 0)
		return -ENOMEM;
	fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return negative_errno();
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			int r = negative_errno();

			close(fd);
			return r;
		}
	}
	return fd;
}
