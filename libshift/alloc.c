/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Range allocation for containers: each container gets its own block of
 * host uids and gids from its owner's /etc/subuid and /etc/subgid
 * delegation, never overlapping another container's, never containing host
 * id 0.  The allocations live in a small JSON state file; every change
 * happens under an exclusive flock on a sibling lock file (never renamed, so
 * every waiter locks the same inode) and the state is replaced atomically
 * (write a temporary file, fsync, rename), so concurrent callers serialise
 * and a crash leaves either the old or the new state.
 */
#include "config.h"

#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "internal.h"

struct alloc_state {
	struct shift_alloc *a;
	size_t n;
};

static void state_clear(struct alloc_state *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		shift_alloc_clear(&s->a[i]);
	free(s->a);
	s->a = NULL;
	s->n = 0;
}

void shift_alloc_clear(struct shift_alloc *a)
{
	if (!a)
		return;
	free(a->container);
	free(a->user);
	a->container = NULL;
	a->user = NULL;
}

void shift_alloc_list_free(struct shift_alloc *list, size_t n)
{
	struct alloc_state s = { list, n };

	state_clear(&s);
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

/* Parse the state file's contents; an empty file is an empty state. */
static int state_parse(const char *text, struct alloc_state *s)
{
	json_object *root, *arr;
	size_t i, n;
	int r = 0;

	if (text[strspn(text, " \t\r\n")] == '\0')
		return 0;
	root = json_tokener_parse(text);
	if (!root)
		return -EBADMSG;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "allocations", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		r = -EBADMSG;
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
		const char *c = get_str(e, "container"), *u = get_str(e, "user");

		if (!c || !u || !get_u32(e, "uid_start", &a->uid_start) ||
		    !get_u32(e, "gid_start", &a->gid_start) ||
		    !get_u32(e, "size", &a->size) || a->size == 0) {
			r = -EBADMSG;
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
out:
	json_object_put(root);
	if (r < 0)
		state_clear(s);
	return r;
}

static int state_read(const char *path, struct alloc_state *s)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
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
		return -EBADMSG;
	return state_parse(buf, s);
}

static int write_all(int fd, const char *p, size_t len)
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

static int state_write(const char *path, const struct alloc_state *s)
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
	json_object_object_add(root, "version", json_object_new_int(1));
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
	r = write_all(fd, text, strlen(text));
	if (r >= 0)
		r = write_all(fd, "\n", 1);
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
static int state_lock(const char *path)
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

static bool overlaps(uint32_t a, uint32_t an, uint32_t b, uint32_t bn)
{
	return (uint64_t)a < (uint64_t)b + bn && (uint64_t)b < (uint64_t)a + an;
}

static int extent_seen_cmp(const void *a, const void *b)
{
	const struct shift_extent *x = a, *y = b;

	return x->seen < y->seen ? -1 : x->seen > y->seen;
}

/*
 * The lowest free block of size ids in the user's delegation of one kind:
 * blocks start at multiples of size from the start of each delegated range,
 * never contain host id 0 and overlap no existing allocation.
 */
static int find_free(const struct shift_idmap *deleg, enum shift_id_kind kind,
		     const struct alloc_state *s, uint32_t size, uint32_t *ret)
{
	struct shift_extent ext[SHIFT_IDMAP_MAX_EXTENTS] = { { 0, 0, 0 } };
	unsigned n = shift_idmap_count(deleg, kind), i;
	size_t j;

	for (i = 0; i < n; i++)
		shift_idmap_extent(deleg, kind, i, &ext[i]);
	qsort(ext, n, sizeof(ext[0]), extent_seen_cmp);
	for (i = 0; i < n; i++) {
		uint64_t off = 0;

		while (off + size <= ext[i].count) {
			uint32_t cand = (uint32_t)(ext[i].seen + off);
			uint64_t skip_to = 0;

			if (cand == 0) {
				off += size;
				continue;
			}
			for (j = 0; j < s->n; j++) {
				uint32_t st = kind == SHIFT_UID ? s->a[j].uid_start :
								  s->a[j].gid_start;
				uint64_t end = (uint64_t)st + s->a[j].size;

				if (overlaps(cand, size, st, s->a[j].size) &&
				    end > skip_to)
					skip_to = end;
			}
			if (!skip_to) {
				*ret = cand;
				return 0;
			}
			/* next aligned block past the furthest conflict */
			off = skip_to - ext[i].seen;
			off = (off + size - 1) / size * size;
		}
	}
	return -ENOSPC;
}

static bool valid_name(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > 255)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

int shift_alloc_get(const char *state, const char *user, const char *container,
		    uint32_t size, struct shift_alloc *ret)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	struct shift_idmap *deleg = NULL;
	struct shift_alloc *grown, a = { 0 };
	size_t i;
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	if (!valid_name(container) || !valid_name(user) || size == 0)
		return -EINVAL;
	lock = state_lock(state);
	if (lock < 0)
		return lock;
	r = state_read(state, &s);
	if (r < 0)
		return r;
	for (i = 0; i < s.n; i++)
		if (strcmp(s.a[i].container, container) == 0) {
			/* idempotent for the same request, refused otherwise */
			if (strcmp(s.a[i].user, user) != 0 || s.a[i].size != size) {
				r = -EEXIST;
				goto out;
			}
			*ret = s.a[i];
			s.a[i].container = s.a[i].user = NULL;
			r = 1;
			goto out;
		}
	deleg = shift_idmap_new();
	if (!deleg) {
		r = -ENOMEM;
		goto out;
	}
	r = shift_idmap_from_subid(deleg, user);
	if (r < 0)
		goto out;
	r = find_free(deleg, SHIFT_UID, &s, size, &a.uid_start);
	if (r < 0)
		goto out;
	r = find_free(deleg, SHIFT_GID, &s, size, &a.gid_start);
	if (r < 0)
		goto out;
	a.size = size;
	a.container = strdup(container);
	a.user = strdup(user);
	grown = realloc(s.a, (s.n + 1) * sizeof(*s.a));
	if (!a.container || !a.user || !grown) {
		if (grown)
			s.a = grown;
		shift_alloc_clear(&a);
		r = -ENOMEM;
		goto out;
	}
	s.a = grown;
	s.a[s.n++] = a;
	r = state_write(state, &s);
	if (r < 0)
		goto out;
	ret->container = strdup(container);
	ret->user = strdup(user);
	ret->uid_start = a.uid_start;
	ret->gid_start = a.gid_start;
	ret->size = size;
	if (!ret->container || !ret->user) {
		shift_alloc_clear(ret);
		r = -ENOMEM;
	}
	sk_debug("alloc: '%s' for '%s': uid %u gid %u size %u", container, user,
		 a.uid_start, a.gid_start, size);
out:
	shift_idmap_free(deleg);
	state_clear(&s);
	return r;
}

int shift_alloc_release(const char *state, const char *container)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	size_t i;
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	lock = state_lock(state);
	if (lock < 0)
		return lock;
	r = state_read(state, &s);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (i = 0; i < s.n; i++)
		if (strcmp(s.a[i].container, container) == 0) {
			shift_alloc_clear(&s.a[i]);
			memmove(&s.a[i], &s.a[i + 1],
				(s.n - i - 1) * sizeof(*s.a));
			s.n--;
			r = state_write(state, &s);
			break;
		}
	state_clear(&s);
	return r;
}

int shift_alloc_list(const char *state, struct shift_alloc **ret, size_t *ret_n)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	/* a shared reader still takes the lock: never read a half-written
	 * state (the rename makes that impossible, but a missing lock file on a
	 * read-only system is fine too) */
	lock = state_lock(state);
	if (lock < 0 && lock != -EROFS && lock != -EACCES && lock != -ENOENT)
		return lock;
	r = state_read(state, &s);
	if (r < 0)
		return r;
	*ret = s.a;
	*ret_n = s.n;
	return 0;
}

struct shift_idmap *shift_alloc_idmap(const struct shift_alloc *a)
{
	struct shift_idmap *m = shift_idmap_new();

	if (!m)
		return NULL;
	if (shift_idmap_add(m, SHIFT_UID, 0, a->uid_start, a->size, NULL) < 0 ||
	    shift_idmap_add(m, SHIFT_GID, 0, a->gid_start, a->size, NULL) < 0) {
		shift_idmap_free(m);
		return NULL;
	}
	return m;
}
