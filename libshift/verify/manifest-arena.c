/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A manifest in memory: its entries, the arena their strings and blobs
 * live in, and the canonical path order (manifest.c).
 */
#include "config.h"

#include <string.h>

#include "verify/verify-internal.h"

static void *arena_alloc(struct shift_manifest *m, size_t size)
{
	struct arena_chunk *c = m->arena;

	size = (size + 7) & ~(size_t)7;
	if (!c || c->size - c->used < size) {
		size_t cs = size > 1 << 20 ? size : 1 << 20;

		c = malloc(sizeof(*c) + cs);
		if (!c)
			return NULL;
		c->next = m->arena;
		c->used = 0;
		c->size = cs;
		m->arena = c;
	}
	c->used += size;
	return c->data + c->used - size;
}

char *sk_manifest_strndup(struct shift_manifest *m, const char *s, size_t len)
{
	char *p = arena_alloc(m, len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

int sk_manifest_blob_set(struct shift_manifest *m, struct blob *b,
			 const void *data, size_t len)
{
	b->data = arena_alloc(m, len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = (uint32_t)len;
	return 0;
}

struct shift_manifest *sk_manifest_new(void)
{
	return calloc(1, sizeof(struct shift_manifest));
}

void shift_manifest_free(struct shift_manifest *m)
{
	struct arena_chunk *c, *next;

	if (!m)
		return;
	for (c = m->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	free(m->e);
	free(m->stream);
	free(m);
}

size_t shift_manifest_count(const struct shift_manifest *m)
{
	return m->stream ? m->stream_n : m->n;
}

struct mentry *sk_manifest_add(struct shift_manifest *m)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct mentry *e = realloc(m->e, cap * sizeof(*e));

		if (!e)
			return NULL;
		m->e = e;
		m->cap = cap;
	}
	memset(&m->e[m->n], 0, sizeof(m->e[0]));
	return &m->e[m->n++];
}

/*
 * The canonical order: path components compared bytewise, a parent before
 * its children ('/' sorts below every byte of a name).
 */
int sk_path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = *a == '/' ? 0 : (unsigned char)*a + 1;
		int y = *b == '/' ? 0 : (unsigned char)*b + 1;

		if (!*a || !*b)
			return !*a ? (!*b ? 0 : -1) : 1;
		if (x != y)
			return x < y ? -1 : 1;
	}
}

int sk_entry_cmp(const void *a, const void *b)
{
	return sk_path_cmp(((const struct mentry *)a)->path,
			((const struct mentry *)b)->path);
}

/* A copy of e (path included) in m. */
int sk_manifest_add_copy(struct shift_manifest *m, const struct mentry *e,
			 size_t plen)
{
	struct mentry *c = sk_manifest_add(m);
	int r;

	if (!c)
		return -ENOMEM;
	*c = *e;
	c->acl_a = c->acl_d = c->caps = (struct blob){0};
	c->path = sk_manifest_strndup(m, e->path, plen);
	if (!c->path)
		return -ENOMEM;
	if (e->acl_a.len &&
	    (r = sk_manifest_blob_set(m, &c->acl_a, e->acl_a.data, e->acl_a.len)) < 0)
		return r;
	if (e->acl_d.len &&
	    (r = sk_manifest_blob_set(m, &c->acl_d, e->acl_d.data, e->acl_d.len)) < 0)
		return r;
	if (e->caps.len &&
	    (r = sk_manifest_blob_set(m, &c->caps, e->caps.data, e->caps.len)) < 0)
		return r;
	return 0;
}

/* Empty a store for the next entry: keep its first chunk. */
void sk_manifest_reset(struct shift_manifest *m)
{
	struct arena_chunk *c = m->arena, *next;

	m->n = 0;
	if (!c)
		return;
	for (next = c->next; next; next = c->next) {
		c->next = next->next;
		free(next);
	}
	c->used = 0;
}

/* Is path below the directory dir[0..dlen) (its child if child)? */
bool sk_is_below(const char *path, const char *dir, size_t dlen, bool child)
{
	if (strncmp(path, dir, dlen) != 0 || path[dlen] != '/')
		return false;
	return !child || !strchr(path + dlen + 1, '/');
}

static int name_cmp(const void *key, const void *e)
{
	return strcmp(key, ((const struct mentry *)e)->path);
}

/* The entry named name among e[0..n), sorted by name (e may be NULL). */
struct mentry *sk_find_name(struct mentry *e, size_t n, const char *name)
{
	return n ? bsearch(name, e, n, sizeof(*e), name_cmp) : NULL;
}
