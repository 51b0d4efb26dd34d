/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The POSIX ACL xattr format (system.posix_acl_access/default): a
 * little-endian header {u32 version = 2} followed by entries
 * {u16 tag, u16 perm, u32 id}.  Only ACL_USER and ACL_GROUP entries carry
 * a qualifier; it is translated through the uid or gid map, as the kernel
 * does when it shows an ACL through an idmapped mount.
 */
#include "config.h"

#include <string.h>

#include "core/core-internal.h"
#include "util/le.h"

#define ACL_XATTR_VERSION 2
#define ACL_HEADER_SIZE 4
#define ACL_ENTRY_SIZE 8

int shift_acl_valid(const void *value, size_t len)
{
	const unsigned char *p = value;

	if (!value || len < ACL_HEADER_SIZE ||
	    (len - ACL_HEADER_SIZE) % ACL_ENTRY_SIZE != 0)
		return -EINVAL;
	if (sk_get_le32(p) != ACL_XATTR_VERSION)
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
			.tag = sk_get_le16(q),
			.perm = sk_get_le16(q + 2),
			.id = sk_get_le32(q + 4),
		};

		r = fn(&e, (unsigned)i, userdata);
		if (r != 0)
			return r;
	}
	return n;
}

/*
 * The result of one qualifier under the policy: 1 mapped, 0 unmapped
 * (nid: the overflow id, or the id itself when the policy keeps it).
 */
static int acl_map(const struct shift_idmap *map, bool to_seen,
		   enum shift_id_kind kind, uint32_t id,
		   enum shift_unmapped policy, const uint32_t overflow[2],
		   uint32_t *nid)
{
	int r = to_seen ? shift_idmap_to_seen(map, kind, id, nid)
			: shift_idmap_to_disk(map, kind, id, nid);

	if (r == 0)
		return 1;
	*nid = policy == SHIFT_UNMAPPED_OVERFLOW ? overflow[kind] : id;
	return 0;
}

static int acl_kind(uint16_t tag, enum shift_id_kind *kind)
{
	if (tag == SHIFT_ACL_USER)
		*kind = SHIFT_UID;
	else if (tag == SHIFT_ACL_GROUP)
		*kind = SHIFT_GID;
	else
		return 0;
	return 1;
}

int sk_acl_translate(void *value, size_t len, const struct shift_idmap *map,
		     bool to_seen, enum shift_unmapped policy,
		     const uint32_t overflow[2], bool unique,
		     shift_unmapped_fn on_unmapped, void *userdata)
{
	unsigned char *p = value;
	int n, i, changed = 0;

	n = shift_acl_valid(value, len);
	if (n < 0)
		return n;
	if (unique && policy == SHIFT_UNMAPPED_OVERFLOW) {
		/* A map is injective: only the overflow id can make two
		 * qualifiers of a kind equal (two unmapped ones, or one and
		 * a mapped one whose image is the overflow id). */
		unsigned over[2] = { 0, 0 }, hits[2] = { 0, 0 };

		for (i = 0; i < n; i++) {
			unsigned char *q = p + ACL_HEADER_SIZE +
					   (size_t)i * ACL_ENTRY_SIZE;
			enum shift_id_kind kind;
			uint32_t nid;

			if (!acl_kind(sk_get_le16(q), &kind))
				continue;
			if (!acl_map(map, to_seen, kind, sk_get_le32(q + 4),
				     policy, overflow, &nid))
				over[kind]++;
			if (nid == overflow[kind])
				hits[kind]++;
		}
		if ((over[SHIFT_UID] && hits[SHIFT_UID] > 1) ||
		    (over[SHIFT_GID] && hits[SHIFT_GID] > 1))
			return -ENOTUNIQ;
	}
	for (i = 0; i < n; i++) {
		unsigned char *q = p + ACL_HEADER_SIZE + (size_t)i * ACL_ENTRY_SIZE;
		enum shift_id_kind kind;
		uint32_t id, nid;

		if (!acl_kind(sk_get_le16(q), &kind))
			continue;
		id = sk_get_le32(q + 4);
		if (!acl_map(map, to_seen, kind, id, policy, overflow, &nid) &&
		    on_unmapped)
			on_unmapped(kind, id, userdata);
		if (nid != id) {
			sk_put_le32(q + 4, nid);
			changed++;
		}
	}
	return changed;
}

int shift_acl_translate(void *value, size_t len, const struct shift_idmap *map,
			bool to_seen, enum shift_unmapped policy,
			shift_unmapped_fn on_unmapped, void *userdata)
{
	static const uint32_t overflow[2] = { SHIFT_OVERFLOW_ID,
					      SHIFT_OVERFLOW_ID };

	return sk_acl_translate(value, len, map, to_seen, policy, overflow,
				false, on_unmapped, userdata);
}
