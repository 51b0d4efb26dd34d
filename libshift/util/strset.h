/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: a set of strings (open addressing, FNV-1a). */
#ifndef LIBSHIFT_UTIL_STRSET_H
#define LIBSHIFT_UTIL_STRSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strset {
	char **slot;
	size_t n, cap;
};

/* FNV-1a of a string. */
uint64_t sk_fnv1a(const char *s);
void sk_strset_clear(struct strset *s);
bool sk_strset_has(const struct strset *s, const char *k);
/* Adds a copy of k (once); -ENOMEM. */
int sk_strset_add(struct strset *s, const char *k);

#endif
