/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: the hash of an inode's identity, for the open
 * addressing tables keyed by (st_dev, st_ino) (the engine's hard-link set,
 * the copy's link index). */
#ifndef LIBSHIFT_UTIL_HASH_H
#define LIBSHIFT_UTIL_HASH_H

#include <stdint.h>

static inline uint64_t sk_hash_dev_ino(uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ dev;

	return h ^ (h >> 29);
}

#endif
