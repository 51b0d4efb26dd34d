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
 *
 * alloc.c finds and hands out the blocks; alloc-state.c reads, checks,
 * locks and replaces the state file.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"
#include "verify/verify-internal.h"

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

	sk_alloc_state_clear(&s);
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

				if (sk_alloc_overlaps(cand, size, st, s->a[j].size) &&
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

/* user's delegation, both kinds, read as newuidmap reads it. */
static int read_delegation(const char *user, struct shift_idmap *deleg,
			   const struct shift_alloc_opts *o,
			   struct shift_error *err)
{
	for (int k = 0; k < 2; k++) {
		_cleanup_(shift_error_clear) struct shift_error e = { 0 };
		int r = shift_subid_read((enum shift_id_kind)k, user, deleg,
					 o ? o->warn : NULL,
					 o ? o->userdata : NULL, &e);
		const char *file = e.path ? e.path : "?";

		if (r == -ENOENT)
			return sk_error_set_path(
			    err, -ENOENT, e.path,
			    "%s does not exist, so no user has a "
			    "delegation (add one with usermod --add-%s)",
			    file, k ? "subgids" : "subuids");
		if (r == -EBADMSG) {
			sk_error_set_path(err, -EUCLEAN, e.path,
					  "%s: line %u: %s: the line of "
					  "'%.60s' is malformed, so it "
					  "delegates nothing (newuidmap "
					  "ignores it too): fix it",
					  file, e.line, shift_error_why(&e, r),
					  user);
			if (err)
				err->line = e.line;
			return -EUCLEAN;
		}
		if (r < 0)
			return sk_error_set_path(err, r, e.path,
						 "Failed to read %s: %s", file,
						 strerror(-r));
		if (r == 0)
			return -ENOENT; /* no range: the caller names both files
					 */
	}
	return 0;
}

int shift_alloc_get_ex(const char *state, const char *user,
		       const char *container, uint32_t size,
		       const struct shift_alloc_opts *opts,
		       struct shift_alloc *ret, struct shift_error *err)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	struct shift_idmap *deleg = NULL;
	struct shift_alloc *grown, a = { 0 };
	bool dry = opts && (opts->flags & SHIFT_ALLOC_DRY_RUN);
	size_t i;
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	if (!sk_alloc_valid_name(container) || !sk_alloc_valid_name(user) || size == 0)
		return -EINVAL;
	lock = dry ? sk_alloc_state_lock_shared(state) : sk_alloc_state_lock(state);
	if (lock < 0 && !(dry && lock == -ENOENT))
		return lock;
	r = sk_alloc_state_read(state, &s, err);
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
	r = read_delegation(user, deleg, opts, err);
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
	r = dry ? 0 : sk_alloc_state_write(state, &s);
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
	sk_debug("alloc: '%s' for '%s': uid %u gid %u size %u%s", container,
		 user, a.uid_start, a.gid_start, size, dry ? " (dry run)" : "");
out:
	shift_idmap_free(deleg);
	sk_alloc_state_clear(&s);
	return r;
}

int shift_alloc_get(const char *state, const char *user, const char *container,
		    uint32_t size, struct shift_alloc *ret)
{
	return shift_alloc_get_ex(state, user, container, size, NULL, ret, NULL);
}

int shift_alloc_release_ex(const char *state, const char *container,
			   const struct shift_alloc_opts *opts,
			   struct shift_alloc *ret, struct shift_error *err)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	bool dry = opts && (opts->flags & SHIFT_ALLOC_DRY_RUN);
	size_t i;
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	lock = dry ? sk_alloc_state_lock_shared(state) : sk_alloc_state_lock(state);
	if (lock < 0 && !(dry && lock == -ENOENT))
		return lock;
	r = sk_alloc_state_read(state, &s, err);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (i = 0; i < s.n; i++)
		if (strcmp(s.a[i].container, container) == 0) {
			struct shift_alloc gone = s.a[i];

			memmove(&s.a[i], &s.a[i + 1],
				(s.n - i - 1) * sizeof(*s.a));
			s.n--;
			r = dry ? 0 : sk_alloc_state_write(state, &s);
			if (r >= 0 && ret) {
				*ret = gone;
				gone.container = gone.user = NULL;
			}
			shift_alloc_clear(&gone);
			break;
		}
	sk_alloc_state_clear(&s);
	return r;
}

int shift_alloc_release(const char *state, const char *container)
{
	return shift_alloc_release_ex(state, container, NULL, NULL, NULL);
}

int shift_alloc_list_ex(const char *state, const struct shift_alloc_opts *opts,
			struct shift_alloc **ret, size_t *ret_n,
			struct shift_error *err)
{
	_cleanup_close_ int lock = -EBADF;
	struct alloc_state s = { NULL, 0 };
	int r;

	if (!state)
		state = SHIFT_ALLOC_STATE;
	/* a shared reader still takes the lock: never read a half-written
	 * state (the rename makes that impossible, but a missing lock file on a
	 * read-only system is fine too) */
	lock = sk_alloc_state_lock(state);
	if (lock < 0 && lock != -EROFS && lock != -EACCES && lock != -ENOENT)
		return lock;
	r = sk_alloc_state_read(state, &s, err);
	if (r < 0)
		return r;
	*ret = s.a;
	*ret_n = s.n;
	return 0;
}

int shift_alloc_list(const char *state, struct shift_alloc **ret, size_t *ret_n)
{
	return shift_alloc_list_ex(state, NULL, ret, ret_n, NULL);
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
