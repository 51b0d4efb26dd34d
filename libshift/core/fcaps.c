/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File capabilities (security.capability, struct vfs_ns_cap_data): a
 * little-endian magic_etc word (revision in the top byte, the effective
 * flag in bit 0), two {permitted, inheritable} pairs and, in revision 3
 * only, the rootid: the uid that is root for these capabilities.  A
 * revision 2 capability belongs to the host root (rootid 0).
 *
 * Read through an idmapped mount, the kernel maps the rootid and shows a
 * v3 capability unless the result is 0, which it shows as v2 (see
 * cap_inode_getsecurity()); an unmappable rootid is an error (EOVERFLOW).
 * The translation below does exactly that.
 */
#include "config.h"

#include <string.h>

#include "core/core-internal.h"
#include "util/le.h"

#define VFS_CAP_REVISION_MASK 0xFF000000u
#define VFS_CAP_FLAGS_MASK 0x00FFFFFFu
#define VFS_CAP_REVISION_2 0x02000000u
#define VFS_CAP_REVISION_3 0x03000000u
#define XATTR_CAPS_SZ_2 20
#define XATTR_CAPS_SZ_3 24

int shift_fcaps_rootid(const void *value, size_t len, uint32_t *ret_rootid)
{
	const unsigned char *p = value;
	uint32_t rev;

	if (!value || len < 4)
		return -EINVAL;
	rev = sk_get_le32(p) & VFS_CAP_REVISION_MASK;
	if (rev == VFS_CAP_REVISION_2 && len == XATTR_CAPS_SZ_2) {
		if (ret_rootid)
			*ret_rootid = 0;
		return 2;
	}
	if (rev == VFS_CAP_REVISION_3 && len == XATTR_CAPS_SZ_3) {
		if (ret_rootid)
			*ret_rootid = sk_get_le32(p + 20);
		return 3;
	}
	return -EINVAL;
}

int shift_fcaps_translate(const void *value, size_t len, void *out,
			  size_t out_size, const struct shift_idmap *map,
			  bool to_seen)
{
	const unsigned char *p = value;
	unsigned char *o = out;
	uint32_t rootid, nroot, magic;
	int r;

	r = shift_fcaps_rootid(value, len, &rootid);
	if (r < 0)
		return r;
	r = to_seen ? shift_idmap_to_seen(map, SHIFT_UID, rootid, &nroot)
		    : shift_idmap_to_disk(map, SHIFT_UID, rootid, &nroot);
	if (r < 0)
		return -ERANGE;
	magic = sk_get_le32(p) & VFS_CAP_FLAGS_MASK;
	if (nroot == 0) {
		if (out_size < XATTR_CAPS_SZ_2)
			return -ENOSPC;
		memmove(o, p, XATTR_CAPS_SZ_2);
		sk_put_le32(o, magic | VFS_CAP_REVISION_2);
		return XATTR_CAPS_SZ_2;
	}
	if (out_size < XATTR_CAPS_SZ_3)
		return -ENOSPC;
	memmove(o, p, XATTR_CAPS_SZ_2);
	sk_put_le32(o, magic | VFS_CAP_REVISION_3);
	sk_put_le32(o + 20, nroot);
	return XATTR_CAPS_SZ_3;
}
