/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Little-endian fields at any alignment: the on-disk xattr formats (POSIX
 * ACLs, security.capability) are little-endian whatever the CPU, and their
 * fields need not be aligned in a buffer.  Header-only, so tools and tests
 * may use it too.
 */
#ifndef LIBSHIFT_UTIL_LE_H
#define LIBSHIFT_UTIL_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t sk_get_le16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t sk_get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline void sk_put_le16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void sk_put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

#endif
