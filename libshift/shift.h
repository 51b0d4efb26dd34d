/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift: give a container's files the right ownership for its user
 * namespace.  One model (the id map) serves three paths: idmapped mounts,
 * the in-place shift engine and verification.
 *
 * Error model: every function that can fail returns int, >= 0 on success
 * (possibly an fd) and a negative errno on failure.  The library prints
 * nothing; set LIBSHIFT_DEBUG=1 for debug output on stderr.
 */
#ifndef LIBSHIFT_SHIFT_H
#define LIBSHIFT_SHIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Id maps (libshift/idmap.c)                                          */
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
 * if err is non-NULL it receives a static description of the problem.
 */
int shift_idmap_parse(struct shift_idmap *map, const char *spec,
		      const char **err);

/* Add one extent; the same checks and errors as shift_idmap_parse(). */
int shift_idmap_add(struct shift_idmap *map, enum shift_id_kind kind,
		    uint32_t disk, uint32_t seen, uint32_t count,
		    const char **err);

/*
 * Whole-map checks beyond the per-extent ones: -EINVAL when a kind is
 * empty under SHIFT_VALIDATE_BOTH, -EPERM when the seen range contains 0
 * under SHIFT_VALIDATE_NO_HOST_ROOT.  err as above.
 */
int shift_idmap_validate(const struct shift_idmap *map, unsigned flags,
			 const char **err);

/* Number of extents of a kind, and extent i (0-based) into *ret. */
unsigned shift_idmap_count(const struct shift_idmap *map,
			   enum shift_id_kind kind);
int shift_idmap_extent(const struct shift_idmap *map, enum shift_id_kind kind,
		       unsigned i, struct shift_extent *ret);

/* True when no extent of either kind is set. */
bool shift_idmap_is_empty(const struct shift_idmap *map);

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
 * overridable via SHIFT_SUBUID / SHIFT_SUBGID for tests).  The user matches
 * by name or by uid.  Ranges of a kind are returned as extents with
 * disk = 0-based offset into the delegation, seen = host id: exactly the map
 * a rootless container of that user gets.  -ENOENT when the user has no
 * delegation of a kind.
 */
int shift_idmap_from_subid(struct shift_idmap *map, const char *user);
/*
 * True when every seen id of the map (both kinds) lies in user's delegation.
 * Returns 1 inside, 0 outside, negative errno on failure to read.
 */
int shift_idmap_within_subid(const struct shift_idmap *map, const char *user);

/* ------------------------------------------------------------------ */
/* User namespaces (libshift/userns.c)                                 */
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
/* Idmapped mounts (libshift/mount.c)                                  */
/* ------------------------------------------------------------------ */

enum {
	SHIFT_MOUNT_RECURSIVE = 1 << 0, /* clone and idmap submounts too */
	SHIFT_MOUNT_RDONLY = 1 << 1,
	SHIFT_MOUNT_NOSUID = 1 << 2,
	SHIFT_MOUNT_NODEV = 1 << 3,
	SHIFT_MOUNT_NOEXEC = 1 << 4,
};

/*
 * A detached clone of the mount at path, idmapped to userns_fd, with the
 * attributes in flags.  Returns the tree fd (caller closes; closing an
 * unattached tree unmounts it).  -EINVAL from the kernel for a filesystem
 * that can't be idmapped is passed through; see shift_strerror_idmap().
 */
int shift_mount_clone_idmapped(int dfd, const char *path, int userns_fd,
			       unsigned flags);

/*
 * Attach a detached tree at target (atomic: visible only with its idmap).
 */
int shift_mount_attach(int tree_fd, int dfd, const char *target);

/*
 * The whole sequence for a path: a namespace for map, clone, idmap, attach.
 * Nothing stays mounted on failure.
 */
int shift_mount_idmapped(const char *source, const char *target,
			 const struct shift_idmap *map, unsigned flags);

/*
 * A fresh tmpfs (fsopen/fsmount), idmapped, attached at target.  options is
 * a comma-separated fsconfig list (e.g. "size=64m,mode=0755") or NULL.
 */
int shift_mount_tmpfs_idmapped(const char *target,
			       const struct shift_idmap *map,
			       const char *options, unsigned flags);

struct shift_overlay {
	const char *const *lower; /* top-most first, NULL-terminated */
	const char *upper;	  /* NULL: read-only overlay */
	const char *work;	  /* required with upper */
	const char *options;	  /* extra overlay options or NULL */
};

/*
 * An overlayfs at target whose lower layers are idmapped mounts of the
 * given directories under map, with upper/work (if any) created and owned by
 * the map's image of 0:0.  The overlay is attached atomically.
 */
int shift_mount_overlay(const struct shift_overlay *ovl, const char *target,
			const struct shift_idmap *map, unsigned flags);

/*
 * A user-facing explanation of an error from the functions above for the
 * filesystem at path (e.g. "filesystem 'overlay' does not support idmapped
 * mounts").  Returns a malloc'd string (caller frees) or NULL.
 */
char *shift_mount_strerror(int err, const char *path);

/* ------------------------------------------------------------------ */
/* Probe (libshift/probe.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * Whether the mount at path can be idmapped, found by really trying on a
 * throwaway detached clone (no side effects).  Results are cached per
 * filesystem (st_dev).  Returns 1 supported, 0 not supported (with *why a
 * static reason if why is non-NULL), negative errno when the probe itself
 * failed.
 */
int shift_probe_idmap(const char *path, const char **why);

/* Run-time feature tests of the kernel, each by trying. */
enum shift_feature {
	SHIFT_FEATURE_MOUNT_API,      /* open_tree/move_mount/fsopen */
	SHIFT_FEATURE_MOUNT_SETATTR,  /* mount_setattr */
	SHIFT_FEATURE_IDMAP_TMPFS,    /* idmapped tmpfs */
	SHIFT_FEATURE_IDMAP_OVERLAY_LOWER, /* overlayfs over idmapped lowers */
	SHIFT_FEATURE_OVERLAY_FD_LAYERS,   /* overlay layers given as fds */
	SHIFT_FEATURE_OPENAT2,
	SHIFT_FEATURE_USERNS,	      /* can create a user namespace */
	SHIFT_FEATURE_IO_URING,	      /* io_uring usable (not disabled) */
	_SHIFT_FEATURE_MAX,
};

/* 1 available, 0 not (with *why), negative errno if the test failed. */
int shift_probe_feature(enum shift_feature f, const char **why);
const char *shift_feature_name(enum shift_feature f);

#ifdef __cplusplus
}
#endif

#endif
