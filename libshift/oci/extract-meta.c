/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: an entry's metadata: owner, mode, ACLs, capabilities, xattrs,
 * times. (libshift/oci/layer-internal.h has the shared context; the whole
 * design is at the top of layer-internal.h and in docs/oci.md.)
 */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>

#include "oci/layer-internal.h"
#include "util/syscalls.h"

/*
 * The translators of the shift engine (libshift/core/acl.c, fcaps.c), so a
 * flat unpack shifts ACLs and capabilities exactly as shift-tree does.
 */
/* The first ACL qualifier the map can't represent, for the message. */
struct unmapped {
	bool any;
	enum shift_id_kind kind;
	uint32_t id;
};

static void note_unmapped(enum shift_id_kind kind, uint32_t id, void *userdata)
{
	struct unmapped *u = userdata;

	if (!u->any)
		*u = (struct unmapped){.any = true, .kind = kind, .id = id};
}

static int sk_layer_acl_shift(const void *in, size_t len, void *out,
			      const struct shift_idmap *map,
			      struct unmapped *unmapped)
{
	int r;

	memcpy(out, in, len);
	r = shift_acl_translate(out, len, map, true, SHIFT_UNMAPPED_ERROR,
				note_unmapped, unmapped);
	if (r < 0)
		return r;
	return unmapped->any ? -ERANGE : 0;
}

static int sk_layer_fcaps_shift(const void *in, size_t len, void *out,
				size_t *ret_len, const struct shift_idmap *map)
{
	int r = shift_fcaps_translate(in, len, out, SHIFT_FCAPS_MAX_SIZE, map,
				      true);

	if (r < 0)
		return r;
	*ret_len = (size_t)r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Metadata                                                            */

/* An xattr we never take from a layer (it would steer overlayfs). */
static bool xattr_forbidden(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) ||
	       !strncmp(name, "user.overlay.", 13);
}

/* POSIX.1e ACL entries of the tar (SCHILY.acl.*) as a kernel xattr value. */
static int acl_to_xattr(struct archive_entry *e, int type, unsigned char *out,
			size_t size, size_t *ret_len)
{
	struct {
		uint16_t tag, perm;
		uint32_t id;
	} ents[512];
	size_t n = 0, len;
	int etype, perm, tag, qual;
	const char *name;

	if (archive_entry_acl_reset(e, type) <= 0)
		return 0;
	while (archive_entry_acl_next(e, type, &etype, &perm, &tag, &qual,
				      &name) == ARCHIVE_OK) {
		uint16_t t;

		switch (tag) {
		case ARCHIVE_ENTRY_ACL_USER_OBJ:
			t = 0x01;
			break;
		case ARCHIVE_ENTRY_ACL_USER:
			t = 0x02;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP_OBJ:
			t = 0x04;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP:
			t = 0x08;
			break;
		case ARCHIVE_ENTRY_ACL_MASK:
			t = 0x10;
			break;
		case ARCHIVE_ENTRY_ACL_OTHER:
			t = 0x20;
			break;
		default:
			return -EINVAL;
		}
		if (n == ARRAY_SIZE(ents))
			return -E2BIG;
		ents[n].tag = t;
		ents[n].perm = (uint16_t)(perm & 7);
		ents[n].id =
		    (t == 0x02 || t == 0x08) ? (uint32_t)qual : SHIFT_ID_NONE;
		n++;
	}
	if (n == 0)
		return 0;
	/* Kernel order: by tag, then qualifier (insertion sort, n small). */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && (ents[j - 1].tag > ents[j].tag ||
					     (ents[j - 1].tag == ents[j].tag &&
					      ents[j - 1].id > ents[j].id));
		     j--) {
			__typeof__(ents[0]) t = ents[j];

			ents[j] = ents[j - 1];
			ents[j - 1] = t;
		}
	len = 4 + 8 * n;
	if (len > size)
		return -E2BIG;
	out[0] = 2;
	out[1] = out[2] = out[3] = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = out + 4 + 8 * i;

		p[0] = ents[i].tag & 0xff;
		p[1] = ents[i].tag >> 8;
		p[2] = ents[i].perm & 0xff;
		p[3] = ents[i].perm >> 8;
		p[4] = ents[i].id & 0xff;
		p[5] = (ents[i].id >> 8) & 0xff;
		p[6] = (ents[i].id >> 16) & 0xff;
		p[7] = ents[i].id >> 24;
	}
	*ret_len = len;
	return 1;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * Why the kernel would refuse a POSIX ACL xattr value (posix_acl_valid()
 * and posix_acl_from_xattr() say only EINVAL), or NULL when it is valid:
 * checked before it is translated or set, so both unpacks name the same
 * reason.
 */
static const char *acl_invalid(const unsigned char *v, size_t len)
{
	unsigned seen = 0, last_tag = 0;
	uint32_t last_id = 0;
	bool named = false;

	if (len < 4 || (len - 4) % 8)
		return "its length is not a header and whole entries";
	if (le32(v) != 2)
		return "unknown ACL version (not 2)";
	for (const unsigned char *p = v + 4; p < v + len; p += 8) {
		unsigned tag = (unsigned)p[0] | (unsigned)p[1] << 8;
		unsigned perm = (unsigned)p[2] | (unsigned)p[3] << 8;
		uint32_t id = le32(p + 4);

		switch (tag) {
		case SHIFT_ACL_USER:
		case SHIFT_ACL_GROUP:
			if (id == SHIFT_ID_NONE)
				return "a named user or group entry without a "
				       "numeric id";
			named = true;
			break;
		case SHIFT_ACL_USER_OBJ:
		case SHIFT_ACL_GROUP_OBJ:
		case SHIFT_ACL_MASK:
		case SHIFT_ACL_OTHER:
			if (seen & tag)
				return "a user::, group::, mask:: or other:: "
				       "entry given twice";
			break;
		default:
			return "an entry of unknown type";
		}
		if (perm & ~7u)
			return "permissions other than rwx";
		if (tag < last_tag ||
		    (tag == last_tag &&
		     (tag == SHIFT_ACL_USER || tag == SHIFT_ACL_GROUP) &&
		     id <= last_id))
			return "entries out of order or a named entry given "
			       "twice";
		seen |= tag;
		last_tag = tag;
		last_id = id;
	}
	if (len == 4)
		return NULL; /* empty: no ACL */
	if (!(seen & SHIFT_ACL_USER_OBJ) || !(seen & SHIFT_ACL_GROUP_OBJ) ||
	    !(seen & SHIFT_ACL_OTHER))
		return "no user::, group:: or other:: entry";
	if (named && !(seen & SHIFT_ACL_MASK))
		return "no mask entry (required with named user or group "
		       "entries)";
	return NULL;
}

/* A v3 file capability whose root id is no id at all (2^32-1). */
static bool fcaps_rootid_invalid(const unsigned char *v, size_t len)
{
	return len >= 24 && (le32(v) & 0xff000000u) == 0x03000000u &&
	       le32(v + 20) == SHIFT_ID_NONE;
}

/* Set one xattr on the new inode: by fd, or by name below pfd (symlinks). */
static int set_xattr(int fd, int pfd, const char *name, const char *key,
		     const void *value, size_t len)
{
	char proc[64 + NAME_MAX];

	if (fd >= 0)
		return fsetxattr(fd, key, value, len, 0) < 0 ? negative_errno()
							     : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", pfd, name);
	return lsetxattr(proc, key, value, len, 0) < 0 ? negative_errno() : 0;
}

/* Translate (flat with a map) and set one xattr value from the layer. */
static int apply_xattr(struct xctx *x, int fd, int pfd, const char *name,
		       const char *key, const void *value, size_t len)
{
	bool is_acl = !strcmp(key, "system.posix_acl_access") ||
		      !strcmp(key, "system.posix_acl_default");
	size_t out_len = len;
	char ekey[256];
	const char *why;
	int r;

	/* The name comes from the archive: escaped in messages. */
	shift_escape_to(ekey, sizeof(ekey), key);
	if (xattr_forbidden(key)) {
		sk_debug("%s: dropping xattr %s from the layer",
			 sk_layer_esc(x, x->path), ekey);
		return 0;
	}
	if (!strcmp(key, "security.selinux") &&
	    !(x->flags & SHIFT_LAYER_SELINUX_LABELS)) {
		sk_debug(
		    "%s: not applying the layer's SELinux label (host policy)",
		    sk_layer_esc(x, x->path));
		return 0;
	}
	if (is_acl && (why = acl_invalid(value, len)))
		return sk_layer_fail_fmt(x, -EINVAL, false, x->path,
					 "invalid POSIX ACL in %s: %s", key,
					 why);
	if (!strcmp(key, "security.capability") &&
	    fcaps_rootid_invalid(value, len))
		return sk_layer_fail_fmt(
		    x, -ERANGE, false, x->path,
		    "its file capability's root id is not a valid id: %" PRIu32,
		    SHIFT_ID_NONE);
	if (x->map && is_acl) {
		if (len > sizeof(x->xbuf))
			return sk_layer_fail(x, -E2BIG, x->path,
					     "ACL too large");
		struct unmapped um = {0};

		r = sk_layer_acl_shift(value, len, x->xbuf, x->map, &um);
		if (r == -ERANGE)
			return sk_layer_fail_fmt(
			    x, r, false, x->path,
			    "an ACL entry's uid/gid has no image under the "
			    "map: %s:%" PRIu32 " in %s",
			    um.kind == SHIFT_UID ? "user" : "group", um.id,
			    key);
		if (r < 0)
			return sk_layer_fail_fmt(x, r, false, x->path,
						 "invalid POSIX ACL in %s",
						 key);
		value = x->xbuf;
	} else if (x->map && !strcmp(key, "security.capability")) {
		r = sk_layer_fcaps_shift(value, len, x->xbuf, &out_len, x->map);
		if (r == -ERANGE)
			return sk_layer_fail_fmt(
			    x, r, false, x->path,
			    "the file capability's root id has no image under "
			    "the map: %" PRIu32,
			    len >= 24 &&
				    (le32(value) & 0xff000000u) == 0x03000000u
				? le32((const unsigned char *)value + 20)
				: 0);
		if (r < 0)
			return sk_layer_fail(
			    x, r, x->path,
			    "malformed security.capability xattr");
		value = x->xbuf;
	}
	if (sk_layer_dry(x))
		return 0;
	r = set_xattr(fd, pfd, name, key, value, out_len);
	if (r == -EOPNOTSUPP && strncmp(key, "system.", 7) &&
	    strcmp(key, "security.capability")) {
		sk_debug("%s: xattr %s not supported here, skipped",
			 sk_layer_esc(x, x->path), ekey);
		return 0;
	}
	if (r < 0)
		return sk_layer_fail_fmt(
		    x, r, false, x->path,
		    "cannot set the extended attribute %s: %s", ekey,
		    strerror(-r));
	return 0;
}

/*
 * Owner, mode, xattrs, ACLs, times of the inode just made: by fd when we
 * have one (files, directories), else by name below pfd.
 */
int sk_layer_apply_meta(struct xctx *x, struct archive_entry *e, int fd,
			int pfd, const char *name, bool is_dir)
{
	mode_t type = archive_entry_filetype(e);
	const char *key;
	const void *value;
	size_t len;
	uint32_t uid, gid;
	struct timespec ts[2];
	int r;

	/* What the parent passed on, before the archive's metadata. */
	if (type != AE_IFLNK && !sk_layer_dry(x)) {
		r = sk_layer_drop_inherited_acls(fd, pfd, name, is_dir);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot remove the ACLs inherited "
					     "from the parent directory");
	}
	r = sk_layer_map_id(x, SHIFT_UID, archive_entry_uid(e), &uid);
	if (r < 0)
		return sk_layer_fail_id(x, "uid", archive_entry_uid(e), r);
	r = sk_layer_map_id(x, SHIFT_GID, archive_entry_gid(e), &gid);
	if (r < 0)
		return sk_layer_fail_id(x, "gid", archive_entry_gid(e), r);
	if (sk_layer_dry(x))
		r = 0;
	else if (fd >= 0)
		r = fchown(fd, uid, gid);
	else
		r = fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot set the owner");
	/* After chown, which clears setuid/setgid. */
	if (type != AE_IFLNK && !sk_layer_dry(x)) {
		mode_t mode = archive_entry_perm(e) & 07777;

		r = fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, name, mode, 0);
		if (r < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot set the mode");
	}
	/* Then xattrs: chown would drop security.capability. */
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &value, &len) == ARCHIVE_OK) {
		r = apply_xattr(x, fd, pfd, name, key, value, len);
		if (r < 0)
			return r;
	}
	for (int pass = 0; pass < 2 && type != AE_IFLNK; pass++) {
		unsigned char acl[4 + 8 * 512];
		int t = pass ? ARCHIVE_ENTRY_ACL_TYPE_DEFAULT
			     : ARCHIVE_ENTRY_ACL_TYPE_ACCESS;

		if (pass && !is_dir)
			break;
		r = acl_to_xattr(e, t, acl, sizeof(acl), &len);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "unusable ACL in the layer");
		if (r == 0)
			continue;
		r = apply_xattr(x, fd, pfd, name,
				pass ? "system.posix_acl_default"
				     : "system.posix_acl_access",
				acl, len);
		if (r < 0)
			return r;
	}
	if (sk_layer_dry(x))
		return 0;
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
	if (is_dir) {
		/* Later entries would change it: set at the end. */
		if (x->n_dirs == x->cap_dirs) {
			size_t cap = x->cap_dirs ? 2 * x->cap_dirs : 256;
			struct dirtime *d = realloc(x->dirs, cap * sizeof(*d));

			if (!d)
				return -ENOMEM;
			x->dirs = d;
			x->cap_dirs = cap;
		}
		x->dirs[x->n_dirs].path = strdup(x->path);
		if (!x->dirs[x->n_dirs].path)
			return -ENOMEM;
		memcpy(x->dirs[x->n_dirs].ts, ts, sizeof(ts));
		x->n_dirs++;
		return 0;
	}
	r = fd >= 0 ? futimens(fd, ts)
		    : utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot set the times");
	return 0;
}

int sk_layer_set_dir_times(struct xctx *x)
{
	/* Deepest last-made first does not matter: times only. */
	for (size_t i = x->n_dirs; i-- > 0;) {
		int fd = sk_layer_open_beneath(x->rootfd, x->dirs[i].path,
					       O_RDONLY | O_DIRECTORY);

		/* Replaced or whited out later in the layer: skip. */
		if (fd < 0)
			continue;
		if (futimens(fd, x->dirs[i].ts) < 0) {
			int r = negative_errno();

			safe_close(fd);
			return sk_layer_fail(x, r, x->dirs[i].path,
					     "cannot set the times");
		}
		safe_close(fd);
	}
	for (size_t i = 0; i < x->n_dirs; i++)
		free(x->dirs[i].path);
	x->n_dirs = 0;
	return 0;
}
