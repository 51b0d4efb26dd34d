/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A set of strings: open addressing over FNV-1a, linear probing, the
 * table kept at most half full (layer extraction's "paths this layer
 * made"). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/strset.h"

uint64_t sk_fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void sk_strset_clear(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	*s = (struct strset){0};
}

bool sk_strset_has(const struct strset *s, const char *k)
{
	if (!s->cap)
		return false;
	for (size_t i = sk_fnv1a(k) & (s->cap - 1);;
	     i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (!strcmp(s->slot[i], k))
			return true;
	}
}

int sk_strset_add(struct strset *s, const char *k)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct strset bigger = {.cap = s->cap ? 2 * s->cap : 1024};

		bigger.slot = calloc(bigger.cap, sizeof(char *));
		if (!bigger.slot)
			return -ENOMEM;
		for (i = 0; i < s->cap; i++) {
			size_t j;

			if (!s->slot[i])
				continue;
			for (j = sk_fnv1a(s->slot[i]) & (bigger.cap - 1);
			     bigger.slot[j]; j = (j + 1) & (bigger.cap - 1))
				;
			bigger.slot[j] = s->slot[i];
		}
		bigger.n = s->n;
		free(s->slot);
		*s = bigger;
	}
	for (i = sk_fnv1a(k) & (s->cap - 1); s->slot[i];
	     i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->slot[i], k))
			return 0;
	s->slot[i] = strdup(k);
	if (!s->slot[i])
		return -ENOMEM;
	s->n++;
	return 0;
}
