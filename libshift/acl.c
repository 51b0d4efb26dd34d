/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The POSIX ACL xattr format (system.posix_acl_access/default): a
 * little-endian header {u32 version = 2} followed by entries
 * {u16 tag, u16 perm, u32 id}.  Only ACL_USER and ACL_GROUP entries carry
 * a qualifier; it is translated through the uid or gid map, as the kernel
 * does when it shows an ACL through an idmapped mount.
 */
#include "config.h"

#include <endian.h>
#include <string.h>

#include "internal.h"

#define ACL_XATTR_VERSION 2
#define ACL_HEADER_SIZE 4
#define ACL_ENTRY_SIZE 8

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint16_t get_le16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

int shift_acl_valid(const void *value, size_t len)
{
	const unsigned char *p = value;

	if (!value || len < ACL_HEADER_SIZE ||
	    (len - ACL_HEADER_SIZE) % ACL_ENTRY_SIZE != 0)
		return -EINVAL;
	if (get_le32(p) != ACL_XATTR_VERSION)
		return -EINVAL;
	if ((len - ACL_HEADER_SIZE) / ACL_ENTRY_SIZE > INT32_MAX)
		return -E2BIG;
	return (int)((len - ACL_HEADER_SIZE) / ACL_ENTRY_SIZE);
}

int shift_acl_foreach(const void *value, size_t len,
		      int (*fn)(const struct shift_acl_entry *e, unsigned idx,
				void *userdata),
		      void *userdata)
{
	const unsigned char *p = value;
	int n, i, r;

	n = shift_acl_valid(value, len);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		const unsigned char *q = p + ACL_HEADER_SIZE + (size_t)i * ACL_ENTRY_SIZE;
		struct shift_acl_entry e = {
			.tag = get_le16(q),
			.perm = get_le16(q + 2),
			.id = get_le32(q + 4),
		};

		r = fn(&e, (unsigned)i, userdata);
		if (r != 0)
			return r;
	}
	return n;
}

int shift_acl_translate(void *value, size_t len, const struct shift_idmap *map,
			bool to_seen, enum shift_unmapped policy,
			shift_unmapped_fn on_unmapped, void *userdata)
{
	unsigned char *p = value;
	int n, i, changed = 0;

	n = shift_acl_valid(value, len);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		unsigned char *q = p + ACL_HEADER_SIZE + (size_t)i * ACL_ENTRY_SIZE;
		uint16_t tag = get_le16(q);
		enum shift_id_kind kind;
		uint32_t id, nid;
		int r;

		if (tag == SHIFT_ACL_USER)
			kind = SHIFT_UID;
		else if (tag == SHIFT_ACL_GROUP)
			kind = SHIFT_GID;
		else
			continue;
		id = get_le32(q + 4);
		r = to_seen ? shift_idmap_to_seen(map, kind, id, &nid)
			    : shift_idmap_to_disk(map, kind, id, &nid);
		if (r < 0) {
			if (on_unmapped)
				on_unmapped(kind, id, userdata);
			if (policy != SHIFT_UNMAPPED_OVERFLOW)
				continue;
			nid = SHIFT_OVERFLOW_ID;
		}
		if (nid != id) {
			put_le32(q + 4, nid);
			changed++;
		}
	}
	return changed;
}
