/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/core: the id map model: maps, /etc/subuid, user namespaces, ACL and file capability xattrs.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_CORE_H
#define LIBSHIFT_SHIFT_CORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Id maps (libshift/core/idmap.c)                                          */
/* ------------------------------------------------------------------ */

/* The kernel's limit of extents per uid_map/gid_map. */
#define SHIFT_IDMAP_MAX_EXTENTS 340
/* What the kernel shows for an id that has no image under a mount's map. */
#define SHIFT_OVERFLOW_ID 65534u
/* (uid_t)-1: "no id"; also what an unmappable ACL qualifier reads as. */
#define SHIFT_ID_NONE 4294967295u

enum shift_id_kind {
	SHIFT_UID = 0,
	SHIFT_GID = 1,
};

/*
 * One extent "A B N": on-disk ids A..A+N-1 are seen as B..B+N-1 (the
 * direction of a line "A B N" in /proc/PID/uid_map, and of util-linux
 * X-mount.idmap).
 */
struct shift_extent {
	uint32_t disk;
	uint32_t seen;
	uint32_t count;
};

/* Opaque: a uid map and a gid map. */
struct shift_idmap;

/* Flags for shift_idmap_validate(). */
enum {
	/* Refuse a map whose seen range contains host uid/gid 0 (mounts,
	 * containers).  A shift back to 0-based ownership on disk does not
	 * pass this flag. */
	SHIFT_VALIDATE_NO_HOST_ROOT = 1 << 0,
	/* Both a uid and a gid map are required (what the kernel needs for
	 * a user namespace). */
	SHIFT_VALIDATE_BOTH = 1 << 1,
	/* The map must fit a user namespace: the kernel takes each of
	 * uid_map/gid_map in one write of less than 4096 bytes. */
	SHIFT_VALIDATE_USERNS = 1 << 2,
};

/* An empty map.  Returns NULL on ENOMEM. */
struct shift_idmap *shift_idmap_new(void);
void shift_idmap_free(struct shift_idmap *map);
struct shift_idmap *shift_idmap_dup(const struct shift_idmap *map);

/*
 * Parse one map argument in the X-mount.idmap grammar and add it:
 *   [u:|g:|b:]A:B:N   (no prefix: both uid and gid)
 * Several extents may be given separated by spaces or commas.  On error
 * returns -EINVAL (syntax, zero count), -ERANGE (past 2^32-1), -EEXIST
 * (overlaps an extent already in the map), -E2BIG (more than 340 extents);
 * err (if non-NULL) gets the reason in why.
 */
int shift_idmap_parse(struct shift_idmap *map, const char *spec,
		      struct shift_error *err);

/* Add one extent; the same checks and errors as shift_idmap_parse(). */
int shift_idmap_add(struct shift_idmap *map, enum shift_id_kind kind,
		    uint32_t disk, uint32_t seen, uint32_t count,
		    struct shift_error *err);

/*
 * Whole-map checks beyond the per-extent ones: -EINVAL when a kind is
 * empty under SHIFT_VALIDATE_BOTH, -EPERM when the seen range contains 0
 * under SHIFT_VALIDATE_NO_HOST_ROOT.  err as above.
 */
int shift_idmap_validate(const struct shift_idmap *map, unsigned flags,
			 struct shift_error *err);

/* Number of extents of a kind, and extent i (0-based) into *ret. */
unsigned shift_idmap_count(const struct shift_idmap *map,
			   enum shift_id_kind kind);
int shift_idmap_extent(const struct shift_idmap *map, enum shift_id_kind kind,
		       unsigned i, struct shift_extent *ret);

/*
 * Apply the map: on-disk id -> seen id.  Returns 0 and sets *ret, or
 * -ERANGE when the id has no image (the kernel would show 65534).
 */
int shift_idmap_to_seen(const struct shift_idmap *map, enum shift_id_kind kind,
			uint32_t disk, uint32_t *ret);
/* The inverse: seen id -> on-disk id, -ERANGE when unmapped. */
int shift_idmap_to_disk(const struct shift_idmap *map, enum shift_id_kind kind,
			uint32_t seen, uint32_t *ret);

/* A new map with disk and seen swapped in every extent. */
struct shift_idmap *shift_idmap_invert(const struct shift_idmap *map);
/*
 * A new map equal to applying a, then b (disk --a--> x --b--> seen);
 * ids that fall in a hole of either become unmapped.  NULL on ENOMEM.
 */
struct shift_idmap *shift_idmap_compose(const struct shift_idmap *a,
					const struct shift_idmap *b);
/* Same extents (in any order) for both kinds. */
bool shift_idmap_equal(const struct shift_idmap *a,
		       const struct shift_idmap *b);

/*
 * Print in the grammar accepted by shift_idmap_parse(), canonical order,
 * "b:" for extents identical in both kinds.  Returns a malloc'd string
 * (caller frees) or NULL on ENOMEM.
 */
char *shift_idmap_to_string(const struct shift_idmap *map);
/*
 * Print one kind in /proc/PID/uid_map form ("A B N\n" per extent) into buf.
 * Returns the length, or -ENOSPC when it doesn't fit.
 */
int shift_idmap_format_proc(const struct shift_idmap *map,
			    enum shift_id_kind kind, char *buf, size_t size);

/* Read /proc/PID/uid_map and gid_map of a running process into map. */
int shift_idmap_from_pid(struct shift_idmap *map, pid_t pid);
/*
 * Read the maps of a user namespace given as a path (/proc/PID/ns/user or
 * a bind mount of one).  Needs to be able to setns() into it (root).
 */
int shift_idmap_from_userns_path(struct shift_idmap *map, const char *path);

/*
 * A user's subordinate ids from /etc/subuid and /etc/subgid (the files are
 * overridable via SHIFT_SUBUID / SHIFT_SUBGID for tests, read with
 * secure_getenv: not in a setuid or file-capability program).  The user matches
 * by name or by uid.  Ranges of a kind are returned as extents with
 * disk = 0-based offset into the delegation, seen = host id: exactly the map
 * a rootless container of that user gets.  -ENOENT when the user has no
 * delegation of a kind (or a file is missing); the files are read by
 * shift_subid_read(), so a malformed line of user's is -EBADMSG (call that
 * function to learn the file, line and why).
 */
int shift_idmap_from_subid(struct shift_idmap *map, const char *user);
/*
 * True when every seen id of the map (both kinds) lies in user's delegation.
 * Returns 1 inside, 0 outside (also when a file is missing), -EBADMSG for a
 * malformed line of user's, another negative errno on failure to read.
 */
int shift_idmap_within_subid(const struct shift_idmap *map, const char *user);

/*
 * One kind of user's delegation read as shadow's newuidmap reads it (lines
 * "NAME:START:COUNT", NAME a user name or uid, decimal numbers), added to
 * map as shift_idmap_from_subid() does.  Nothing is skipped silently: a
 * malformed line (CRLF, a wrong number of fields, a negative or too large
 * number) of another user is passed to warn (if non-NULL), and one that
 * names user is an error: newuidmap would ignore it, so its ids are not
 * delegated whatever was meant.  Returns the number of ranges (0: none),
 * -ENOENT when the file does not exist, -EBADMSG for a malformed line of
 * user's, another negative errno on read errors; on failure err->path is
 * the file read, with -EBADMSG err->line and err->why too.
 */
typedef void (*shift_subid_warn_fn)(const char *file, unsigned line,
				    const char *why, void *userdata);
int shift_subid_read(enum shift_id_kind kind, const char *user,
		     struct shift_idmap *map, shift_subid_warn_fn warn,
		     void *userdata, struct shift_error *err);
/* The file shift_subid_read() reads for kind: /etc/subuid, /etc/subgid
 * (or the test override, $SHIFT_SUBUID / $SHIFT_SUBGID), static. */
const char *shift_subid_file(enum shift_id_kind kind);

/* ------------------------------------------------------------------ */
/* User namespaces (libshift/core/userns.c)                                 */
/* ------------------------------------------------------------------ */

/*
 * A user namespace whose uid_map/gid_map are the map's extents, returned as
 * an O_CLOEXEC fd (caller closes).  As root the maps are written directly;
 * otherwise through newuidmap/newgidmap within the caller's delegation.
 * No process is left behind.  The map must have both kinds.
 */
int shift_userns_create(const struct shift_idmap *map);

/*
 * A small cache of user namespace fds keyed by map, so mounting many layers
 * with one map creates one namespace.
 */
struct shift_userns_cache;
struct shift_userns_cache *shift_userns_cache_new(void);
void shift_userns_cache_free(struct shift_userns_cache *cache);
/* Returns an fd owned by the cache (do not close it). */
int shift_userns_cache_get(struct shift_userns_cache *cache,
			   const struct shift_idmap *map);

/* ------------------------------------------------------------------ */
/* ACL and capability xattrs (libshift/core/acl.c, fcaps.c)           */
/* ------------------------------------------------------------------ */

#define SHIFT_XATTR_ACL_ACCESS "system.posix_acl_access"
#define SHIFT_XATTR_ACL_DEFAULT "system.posix_acl_default"
#define SHIFT_XATTR_CAPS "security.capability"

/* What to do with an id that has no image under the map. */
enum shift_unmapped {
	SHIFT_UNMAPPED_ERROR = 0, /* leave it, report it, fail at the end */
	SHIFT_UNMAPPED_KEEP,	  /* leave it, report it, succeed */
	SHIFT_UNMAPPED_OVERFLOW,  /* store the overflow id (65534) */
};

/* Called for every id (owner, ACL qualifier) that has no image. */
typedef void (*shift_unmapped_fn)(enum shift_id_kind kind, uint32_t id,
				  void *userdata);

/* ACL entry tags (the kernel's ACL_USER_OBJ ... ACL_OTHER). */
#define SHIFT_ACL_USER_OBJ 0x01
#define SHIFT_ACL_USER 0x02
#define SHIFT_ACL_GROUP_OBJ 0x04
#define SHIFT_ACL_GROUP 0x08
#define SHIFT_ACL_MASK 0x10
#define SHIFT_ACL_OTHER 0x20

/* One entry of a POSIX ACL xattr value, in host byte order. */
struct shift_acl_entry {
	uint16_t tag;
	uint16_t perm;
	uint32_t id; /* qualifier of SHIFT_ACL_USER / SHIFT_ACL_GROUP */
};

/* Number of entries of a raw ACL xattr value, or -EINVAL if malformed. */
int shift_acl_valid(const void *value, size_t len);
/*
 * Call fn for every entry in order; a non-zero return from fn stops and is
 * returned.  Returns the number of entries, or -EINVAL if malformed.
 */
int shift_acl_foreach(const void *value, size_t len,
		      int (*fn)(const struct shift_acl_entry *e, unsigned idx,
				void *userdata),
		      void *userdata);
/*
 * Translate every ACL_USER/ACL_GROUP qualifier of a raw ACL xattr value in
 * place, disk -> seen (to_seen) or seen -> disk.  An unmapped qualifier is
 * passed to on_unmapped (may be NULL) and left as it is, or set to 65534
 * under SHIFT_UNMAPPED_OVERFLOW.  Returns the number of qualifiers changed,
 * or -EINVAL if the value is malformed (then nothing is changed).
 */
int shift_acl_translate(void *value, size_t len, const struct shift_idmap *map,
			bool to_seen, enum shift_unmapped policy,
			shift_unmapped_fn on_unmapped, void *userdata);

/* Largest security.capability value (revision 3). */
#define SHIFT_FCAPS_MAX_SIZE 24
/*
 * The revision (2 or 3) of a raw security.capability value and its rootid
 * (0 for revision 2).  -EINVAL for anything else (revision 1, bad size).
 */
int shift_fcaps_rootid(const void *value, size_t len, uint32_t *ret_rootid);
/*
 * Translate a capability as the kernel shows it through an idmapped mount:
 * rootid (0 for v2) is mapped; a result of 0 is written as v2, anything
 * else as v3 with the new rootid.  out may be value.  Returns the new
 * length (20 or 24), -ERANGE when the rootid has no image (never invent
 * one), -EINVAL when malformed, -ENOSPC when out_size is too small.
 */
int shift_fcaps_translate(const void *value, size_t len, void *out,
			  size_t out_size, const struct shift_idmap *map,
			  bool to_seen);

#ifdef __cplusplus
}
#endif

#endif
