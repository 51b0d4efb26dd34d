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

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Untrusted names (libshift/escape.c)                                 */
/* ------------------------------------------------------------------ */

/*
 * Every file name, tar entry name or user name that reaches a message,
 * a --dry-run or -v line goes through these: bytes outside printable
 * ASCII and the backslash become \n, \t, \\ or \ooo (as in mtree(5)).
 * shift_escape_to() writes at most SIZE bytes with the terminating NUL
 * (never half an escape) and returns the full escaped length;
 * shift_escape() returns a malloc'd copy (NULL when out of memory).
 */
size_t shift_escape_to(char *buf, size_t size, const char *s);
char *shift_escape(const char *s);
bool shift_needs_escape(const char *s);

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

/*
 * One kind of user's delegation read as shadow's newuidmap reads it (lines
 * "NAME:START:COUNT", NAME a user name or uid, decimal numbers), added to
 * map as shift_idmap_from_subid() does.  Nothing is skipped silently: a
 * malformed line (CRLF, a wrong number of fields, a negative or too large
 * number) of another user is passed to warn (if non-NULL), and one that
 * names user is an error: newuidmap would ignore it, so its ids are not
 * delegated whatever was meant.  Returns the number of ranges (0: none),
 * -ENOENT when the file does not exist, -EBADMSG for a malformed line of
 * user's, another negative errno on read errors; e->file is always set,
 * e->line and e->why with -EBADMSG.
 */
struct shift_subid_error {
	const char *file; /* the file read */
	unsigned line;	  /* 1-based */
	const char *why;  /* static */
};
typedef void (*shift_subid_warn_fn)(const char *file, unsigned line,
				    const char *why, void *userdata);
int shift_subid_read(enum shift_id_kind kind, const char *user,
		     struct shift_idmap *map, shift_subid_warn_fn warn,
		     void *userdata, struct shift_subid_error *e);

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
 * A detached clone of the mount at path (relative to dfd; NULL or "" for
 * dfd itself), idmapped to userns_fd (a negative userns_fd: attributes
 * only, no idmap), with the attributes in flags.  Returns the tree fd
 * (caller closes; closing an unattached tree unmounts it).  -EINVAL from
 * the kernel for a filesystem that can't be idmapped is passed through;
 * see shift_mount_strerror().
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
/* The same with an existing user namespace fd (not consumed). */
int shift_mount_idmapped_userns(const char *source, const char *target,
				int userns_fd, unsigned flags);

/*
 * A fresh tmpfs (fsopen/fsmount), idmapped, attached at target.  options is
 * a comma-separated fsconfig list (e.g. "size=64m,mode=0755") or NULL.
 */
int shift_mount_tmpfs_idmapped(const char *target,
			       const struct shift_idmap *map,
			       const char *options, unsigned flags);
/* The same with an existing user namespace fd (not consumed). */
int shift_mount_tmpfs_idmapped_userns(const char *target, int userns_fd,
				      const char *options, unsigned flags);

struct shift_overlay {
	const char *const *lower; /* top-most first, NULL-terminated */
	const char *upper;	  /* NULL: read-only overlay */
	const char *work;	  /* required with upper */
	const char *options;	  /* extra overlay options or NULL */
	/* Optional out: on failure, the path the error is about (one of
	 * lower[i], upper, target) or NULL when it is about no one path. */
	const char **failed_path;
};

/*
 * An overlayfs at target whose lower layers are idmapped mounts of the
 * given directories under map, with upper/work (if any) created and owned by
 * the map's image of 0:0.  The overlay is attached atomically.
 */
int shift_mount_overlay(const struct shift_overlay *ovl, const char *target,
			const struct shift_idmap *map, unsigned flags);
/*
 * The same with an existing user namespace fd (not consumed; e.g. from a
 * shift_userns_cache); map is still needed for the upper dir's owner and
 * must be the namespace's map.
 */
int shift_mount_overlay_userns(const struct shift_overlay *ovl,
			       const char *target,
			       const struct shift_idmap *map, int userns_fd,
			       unsigned flags);

/*
 * After -EINVAL from a recursive idmap of path: the first mount at or
 * below path that can't be idmapped with userns_fd, found by trying each
 * on a throwaway detached clone.  Returns 0 with a malloc'd path in
 * *ret_path (caller frees), -ENOENT when every mount can be idmapped.
 */
int shift_mount_find_unsupported(const char *path, int userns_fd,
				 char **ret_path);

/*
 * Whether path (relative to dfd; "" for dfd itself; a trailing symlink is
 * not followed, no automount is triggered) is the root of a mount: 1 yes,
 * 0 no, negative errno.  Asks the kernel (STATX_ATTR_MOUNT_ROOT); before
 * Linux 5.8 compares mount ids with the parent directory.  Mounting on
 * such a path stacks a second mount over what is there (a running
 * container's root, say): tools refuse it unless asked.
 */
int shift_mount_is_mountpoint(int dfd, const char *path);

/* What shift_mount_source_state() found (strings malloc'd, NULL if none). */
struct shift_source_marker {
	char *root;  /* the directory carrying the marker: path or an ancestor */
	char *state; /* as shift_tree_marker(): "done", "running", ... */
	char *map;   /* the map it records, as shift_idmap_to_string() */
};

/* Results of shift_mount_source_state(). */
enum {
	SHIFT_SOURCE_UNSHIFTED = 0, /* no marker, or undone: idmap it */
	SHIFT_SOURCE_SHIFTED = 1,   /* shifted by exactly map: its files
				     * already carry the ids an idmapped
				     * mount would show; bind it plain */
	SHIFT_SOURCE_OTHER_MAP = 2, /* shifted by another map */
	SHIFT_SOURCE_UNFINISHED = 3, /* a shift is running, or was left
				      * half-way (or a state this version
				      * does not know): ids are mixed */
};

/*
 * Before idmapping path with map: whether its files were already shifted
 * in place (shift_tree()), found from the engine's marker on path or on
 * the nearest marked ancestor on the same mount (a tree is marked at its
 * root only).  Returns one of SHIFT_SOURCE_* and fills *ret (the caller
 * frees it with shift_source_marker_clear()), or a negative errno when a
 * marker could not be read (a check that could not run: don't mount).
 * An idmapped mount of a tree shifted by the same map would shift its
 * ids a second time (files seen as 65534).
 */
int shift_mount_source_state(const char *path, const struct shift_idmap *map,
			     struct shift_source_marker *ret);
void shift_source_marker_clear(struct shift_source_marker *m);

/*
 * A user-facing explanation of an error from the functions above for the
 * filesystem at path (e.g. "filesystem 'overlay' does not support idmapped
 * mounts").  Returns a malloc'd string (caller frees) or NULL.
 */
char *shift_mount_strerror(int err, const char *path);

/* ------------------------------------------------------------------ */
/* Re-assembling an overlayfs mount (libshift/overlay-reassemble.c)    */
/* ------------------------------------------------------------------ */

/*
 * A merged overlayfs can't be idmapped, but its layers can: read the
 * layers of the overlay mounted at a path, idmap each one as a detached
 * clone and build a new overlay over them.  Nothing but the new overlay is
 * ever attached.
 */

/* The layers and options of an overlayfs mount, as its mount options
 * (mountinfo, read through libmount) give them. */
struct shift_overlay_source {
	char **lower;	/* top-most first, NULL-terminated, absolute */
	char **data;	/* data-only layers ("::", datadir+), NULL-terminated */
	char *upper;	/* NULL: the overlay has no writable layer */
	char *work;
	char **options; /* the others, "key" or "key=value", NULL-terminated */
	bool read_only; /* the overlay's superblock is read-only */
	/* Every option as overlayfs was given it ("key" or "key=value",
	 * mountinfo's escapes undone): to mount the source again. */
	char **raw;
};

/*
 * 1 when path is the root of an overlayfs mount, 0 when it is not an
 * overlayfs at all, -ENOTDIR... negative errno; -EISDIR when path lies
 * inside an overlayfs but is not the root of the mount.
 */
int shift_overlay_is_mount(const char *path);

/*
 * Read the overlay mounted at path (its root).  The layer paths are
 * checked: each must be an absolute path to a directory other than "/",
 * and every entry of the overlay's root directory must exist in one of
 * the upper and lower layers; otherwise -EBADMSG (the overlay was built
 * from file descriptors, in another mount namespace or chroot: its
 * options don't say where its layers are).  -EMEDIUMTYPE when path is
 * not an overlayfs mount, -EISDIR when it is not the mount's root.
 */
int shift_overlay_source_read(const char *path,
			      struct shift_overlay_source **ret);
void shift_overlay_source_free(struct shift_overlay_source *src);

enum {
	/* The source's upper layer becomes the top-most (read-only) lower
	 * layer.  Without it a source with an upper layer is refused
	 * (-EBUSY): overlayfs must never see two mounts over one upper. */
	SHIFT_REASSEMBLE_UPPER_AS_LOWER = 1 << 0,
	/* The new upper layer is idmapped too and stores the container's
	 * own ids (root = 0): the overlay is created with fsuid/fsgid set
	 * to the map's image of 0, so work files and copy-ups are
	 * representable.  Without it the new upper stores host ids. */
	SHIFT_REASSEMBLE_CANONICAL_UPPER = 1 << 1,
	/* Take the source's place: unmount the source (only when nothing
	 * holds it: -EBUSY otherwise, nothing changed), then build the new
	 * overlay with the source's own upper and work, canonical (implies
	 * SHIFT_REASSEMBLE_CANONICAL_UPPER; upper and work must be NULL).
	 * If the new overlay can't be made or attached, the source is
	 * mounted again where it was, with its options. */
	SHIFT_REASSEMBLE_REPLACE = 1 << 2,
};

struct shift_reassemble {
	const struct shift_overlay_source *src;
	const char *source; /* REPLACE: the source's mount point */
	/* Optional: layers to take as they are (plain clones, no idmap)
	 * from another directory, e.g. a shifted copy of a layer whose
	 * filesystem can't be idmapped: pairs "layer path", "directory",
	 * ..., NULL. */
	const char *const *plain_layers;
	const char *upper; /* a new writable layer (created if missing) or NULL */
	const char *work;  /* with upper: its work dir, on the same mount */
	unsigned how;	   /* SHIFT_REASSEMBLE_* */
	/* Optional out: on failure, the path the error is about (a layer,
	 * the new upper or work dir, the target) or NULL. */
	const char **failed_path;
};

/*
 * Build an overlay over idmapped detached clones of the source's layers
 * (layers as file descriptors: fsconfig lowerdir+/datadir+/upperdir/
 * workdir with FSCONFIG_SET_FD) with the source's options and attach it
 * at target.  Without a new upper the overlay is read-only (options that
 * need an upper, index, nfs_export and volatile, are left out).  Returns
 * 0; -EINVAL (with *failed_path a layer) when a layer's filesystem can't
 * be idmapped, -EOPNOTSUPP when overlayfs takes no layers as file
 * descriptors (Linux < 6.13), -EBUSY for a source upper without
 * SHIFT_REASSEMBLE_UPPER_AS_LOWER, or another negative errno.
 */
int shift_overlay_reassemble(const struct shift_reassemble *ra,
			     const char *target,
			     const struct shift_idmap *map, int userns_fd,
			     unsigned flags);

/* ------------------------------------------------------------------ */
/* Probe (libshift/probe.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * Whether the mount holding path can be idmapped, found by really trying:
 * a user namespace with map b:0:1000:1 (created once per process), a
 * detached clone of the mount (open_tree OPEN_TREE_CLONE), mount_setattr
 * MOUNT_ATTR_IDMAP on the clone, then the clone is closed (no side
 * effects; no automount is triggered).  Results are cached per filesystem
 * (the superblock's device number); an already idmapped or unbindable
 * mount is tried on its own.  Returns 1 supported, 0 not supported (with
 * *why a reason such as "filesystem 'overlay' does not support idmapped
 * mounts", "kernel has no mount_setattr (Linux < 5.12)", "already
 * idmapped", "needs CAP_SYS_ADMIN"), negative errno when the probe itself
 * failed (-ENOENT for a missing path).  Reasons are owned by the library
 * and live as long as the process.
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
	SHIFT_FEATURE_USERNS_UNPRIV,  /* ... also without privileges */
	SHIFT_FEATURE_IO_URING,	      /* io_uring usable (not disabled) */
	_SHIFT_FEATURE_MAX,
};

/*
 * 1 available, 0 not, negative errno if the test itself failed.  *why (if
 * non-NULL) gets a one-line detail either way: what worked, or why not.
 * Each feature is tested once per process.  The overlay tests run in a
 * forked child in a private mount namespace on detached tmpfs mounts.
 */
int shift_probe_feature(enum shift_feature f, const char **why);
/* "mount-api", "idmap-tmpfs", ...; NULL for an unknown feature. */
const char *shift_feature_name(enum shift_feature f);

/*
 * The sysctls that decide whether user namespaces and io_uring are usable
 * (user.max_user_namespaces, user.max_mnt_namespaces,
 * kernel.unprivileged_userns_clone,
 * kernel.apparmor_restrict_unprivileged_userns, kernel.io_uring_disabled,
 * kernel.io_uring_group), by index from 0.  Returns 1 present (value in
 * *ret_value), 0 absent from this kernel (*ret_value = -1), -ERANGE past
 * the last.  *ret_name and *ret_meaning (what the value means) are static.
 */
int shift_probe_sysctl(unsigned idx, const char **ret_name, long *ret_value,
		       const char **ret_meaning);

/*
 * The io_uring opcodes libshift may use, by index from 0: *ret_name
 * ("STATX", "OPENAT2", "FGETXATTR", ...) and *ret_note (what for), both
 * static.  The last entry is "CHOWN", which no kernel has: ownership
 * changes always run synchronously.  Returns 1 supported, 0 not, -ERANGE
 * past the last, or the error that makes io_uring unusable here (-ENOSYS,
 * -EPERM, -EOPNOTSUPP when built without liburing).
 */
int shift_probe_uring_op(unsigned idx, const char **ret_name,
			 const char **ret_note);

/*
 * Where newuidmap or newgidmap (name) is and how it gets its privilege:
 * the first regular file in $PATH, /usr/bin, /bin, /usr/sbin, /sbin.
 * *ret_path (caller frees), *ret_setuid (setuid root), *ret_caps (its file
 * capabilities in cap_to_text(3) form, caller frees; NULL when none).
 * Returns 1 found, 0 not found (nothing set), negative errno.
 */
int shift_probe_uidmap_helper(const char *name, char **ret_path,
			      bool *ret_setuid, char **ret_caps);

/* ------------------------------------------------------------------ */
/* shift-mountd: policy, protocol, client (libshift/mountd-*.c)        */
/* ------------------------------------------------------------------ */

/* docs/mountd-protocol.md, docs/security-mountd.md */
#define SHIFT_MOUNTD_VERSION 1
#define SHIFT_MOUNTD_SOCKET "/run/shiftkit/mountd.sock"
#define SHIFT_MOUNTD_CONF "/etc/shiftkit/mountd.conf"
/* Largest request or answer, and most fds in one message. */
#define SHIFT_MOUNTD_MAX_MSG 4096
#define SHIFT_MOUNTD_MAX_FDS 4
/* systemd's "foreign" UID range (nspawn --private-users=managed). */
#define SHIFT_FOREIGN_UID_BASE 0x7FFE0000u
#define SHIFT_FOREIGN_UID_COUNT 65536u

/* Who asks: kernel facts, and the delegation the daemon read itself. */
struct shift_mountd_caller {
	uint32_t uid, gid;		 /* SO_PEERCRED */
	const struct shift_idmap *subid; /* seen = the delegated host ids
					    (shift_idmap_from_subid); NULL:
					    none */
	bool foreign_range; /* the foreign range counts as on-disk ids */
};

/* What the source fd is: fstat, fstatfs and the daemon's own clone. */
struct shift_mountd_source {
	uint32_t mode, uid, gid;
	int64_t fs_type;  /* statfs f_type */
	bool idmapped;	  /* already an idmapped mount */
	bool submounts;	  /* mounts below it */
};

/*
 * The service's whole policy, pure: may this caller have an idmapped
 * mount of this source with this map (on-disk -> seen, host ids)?
 * Returns 0 allowed; -EPERM, -ENOTDIR or -EINVAL refused, with one line
 * naming the rule in why (size whylen).
 */
int shift_mountd_policy(const struct shift_mountd_caller *c,
			const struct shift_idmap *map,
			const struct shift_mountd_source *s, char *why,
			size_t whylen);
/* The name of a pseudo-filesystem the service refuses ("proc", ...), or
 * NULL for any other f_type. */
const char *shift_mountd_pseudo_fs(int64_t fs_type);

/* /etc/shiftkit/mountd.conf, parsed (shift-mountd(8)). */
struct shift_mountd_conf {
	char **users;	 /* names or uids; "*" everyone; NULL-terminated */
	char **groups;	 /* names or gids; NULL-terminated */
	bool foreign_range;
	bool force_nosuid;
	unsigned max_per_user; /* requests in flight per user */
	unsigned max_requests; /* in total */
	unsigned timeout;      /* seconds per request */
};
/*
 * Parse the text of a configuration (NULL: defaults only) into *c (free
 * with shift_mountd_conf_done).  -EINVAL with "line N: ..." in err for an
 * unknown key, a bad value or a repeated key.
 */
int shift_mountd_conf_parse(const char *text, struct shift_mountd_conf *c,
			    char *err, size_t errlen);
void shift_mountd_conf_done(struct shift_mountd_conf *c);

/* A request as sent on the wire. */
struct shift_mountd_request {
	unsigned version;
	char *map;   /* map text, or NULL with userns */
	bool userns; /* fd 2 is a user namespace */
	unsigned flags; /* SHIFT_MOUNT_RDONLY | _NOSUID | _NOEXEC */
};
/*
 * Parse one received request of len bytes that came with nfds fds.
 * Returns 0, or -EBADMSG with the reason in err.  Free with
 * shift_mountd_request_done.
 */
int shift_mountd_request_parse(const void *buf, size_t len, unsigned nfds,
			       struct shift_mountd_request *ret, char *err,
			       size_t errlen);
void shift_mountd_request_done(struct shift_mountd_request *r);
/* The wire form of a request or an answer (malloc'd); NULL on ENOMEM. */
char *shift_mountd_request_format(const struct shift_mountd_request *r);
char *shift_mountd_answer_format(int err, const char *message);
/*
 * Parse an answer: returns 0 for "ok", the negative errno of a refusal
 * with its message in msg, or -EBADMSG for a malformed answer.
 */
int shift_mountd_answer_parse(const void *buf, size_t len, char *msg,
			      size_t msglen);

/* The socket the client uses: $SHIFT_MOUNTD_SOCKET or the default. */
const char *shift_mountd_socket_path(void);
/* Whether a service listens there: 1 yes, 0 no (refused, missing). */
int shift_mountd_reachable(const char *socket_path);
/*
 * Ask the service for a detached idmapped mount of the directory at path
 * (relative to dfd; opened here, O_PATH, with the caller's permissions)
 * with map, or with the user namespace userns_fd (>= 0; map NULL), and
 * flags SHIFT_MOUNT_RDONLY/NOSUID/NOEXEC (nodev is always set).  Returns
 * the mount fd (caller closes; attach with shift_mount_attach in a mount
 * namespace the caller owns), or a negative errno with one line in msg:
 * -ENOENT/-ECONNREFUSED no service, -EPERM refused, -EAGAIN busy, ...
 */
int shift_mountd_clone_idmapped(const char *socket_path, int dfd,
				const char *path,
				const struct shift_idmap *map, int userns_fd,
				unsigned flags, char *msg, size_t msglen);
/* True when this process can't make idmapped mounts itself (no
 * CAP_SYS_ADMIN in the initial user namespace): the service's case. */
bool shift_mountd_needed(void);
/*
 * An overlay at target over the layers ovl->lower (top-most first), each
 * an idmapped mount from the service (one request per layer, map or
 * userns_fd as for shift_mountd_clone_idmapped), assembled by the caller
 * in its own user and mount namespaces ("userxattr", nodev); upper and
 * work, if given, are created if missing with the caller's ids.  0, or a
 * negative errno with ovl->failed_path set when it is about one path and
 * msg holding the service's answer when the service refused.
 */
int shift_mountd_overlay(const char *socket_path,
			 const struct shift_overlay *ovl, const char *target,
			 const struct shift_idmap *map, int userns_fd,
			 unsigned flags, char *msg, size_t msglen);

/* ------------------------------------------------------------------ */
/* OCI image layouts and layers (libshift/oci.c, libshift/layer.c)     */
/* ------------------------------------------------------------------ */

/*
 * What went wrong, for the tool's one-line message: the layer entry, blob
 * or file concerned and a static reason.  Functions taking one fill it on
 * failure when non-NULL; clear it with shift_oci_diag_clear().
 */
struct shift_oci_diag {
	char *where;	 /* malloc'd, or NULL */
	const char *why; /* static, or NULL (then strerror of the return) */
};
void shift_oci_diag_clear(struct shift_oci_diag *diag);

/* One image of an OCI image layout: its manifest, config and layers. */
struct shift_oci_image;

struct shift_oci_layer {
	const char *digest;	/* "sha256:<64 hex>" of the blob */
	const char *media_type;
	uint64_t size;		/* blob size from the manifest */
	const char *diff_id;	/* the config's, checked against the uncompressed layer */
};

/*
 * Open IMAGE = LAYOUT_DIR[:TAG] (the tag matches the index's
 * org.opencontainers.image.ref.name; without one the layout must hold one
 * image).  index.json, the manifest and the config are parsed and their
 * digests verified.  Returns 0 and *ret (free with shift_oci_image_free()).
 */
int shift_oci_image_open(const char *image, struct shift_oci_image **ret,
			 struct shift_oci_diag *diag);
void shift_oci_image_free(struct shift_oci_image *img);
/* Layers, bottom-most first. */
unsigned shift_oci_layer_count(const struct shift_oci_image *img);
int shift_oci_layer_get(const struct shift_oci_image *img, unsigned i,
			struct shift_oci_layer *ret);
/* "sha256:..." of the image manifest. */
const char *shift_oci_image_digest(const struct shift_oci_image *img);

enum {
	/* Flat unpack: refuse device nodes even when we could create them. */
	SHIFT_LAYER_NO_DEVICES = 1 << 0,
	/* Mount: don't idmap, use (cached) shifted copies of the layers. */
	SHIFT_LAYER_FORCE_COPY = 1 << 1,
	/* Mount: read-only overlay (no upper). */
	SHIFT_LAYER_RDONLY = 1 << 2,
	/*
	 * Unpack: apply security.selinux from the layers (by default they
	 * are dropped: a label is the host's policy, not image content).
	 */
	SHIFT_LAYER_SELINUX_LABELS = 1 << 3,
	/*
	 * Unpack, gc: read and check, change nothing.  An unpack reads every
	 * layer it would extract (digests, diff_ids, entry names, ids, ACLs,
	 * capabilities, device policy) and reports each entry; what depends
	 * on the tree being built (a path through a symlink, a hard link's
	 * target) is not checked.
	 */
	SHIFT_LAYER_DRY_RUN = 1 << 4,
};

/* One entry of a layer, as an unpack meets it (progress, dry runs). */
struct shift_layer_event {
	unsigned layer;		/* index in the image, bottom-most 0 */
	const char *digest;	/* the layer blob's */
	const char *path;	/* normalised entry path, "" the root: untrusted */
	const char *what;	/* "file", "dir", "symlink", "hardlink", "fifo",
				   "chardev", "blockdev", "whiteout", "opaque" */
	uint64_t size;		/* a file's declared size */
	uint64_t bytes_read;	/* blob bytes read so far, over all layers */
	uint64_t bytes_total;	/* the layers' blob sizes added up */
};

struct shift_layer_opts {
	unsigned flags;				/* SHIFT_LAYER_* */
	/* When *cancel becomes non-zero (a signal handler sets it), the
	 * unpack stops, removes what it made and returns -ECANCELED. */
	const volatile sig_atomic_t *cancel;
	/* Called for each entry (NULL: not called). */
	void (*on_entry)(const struct shift_layer_event *ev, void *userdata);
	void *userdata;
};

/*
 * shift_layer_store_unpack() and shift_layer_unpack_flat() with options.
 * Both remove their own stale temporaries first: those of interrupted
 * runs (the directory of a running unpack is flock()ed by it; one nobody
 * holds is stale).  The store also records the image in
 * STORE/images/HEX.json (HEX: the manifest's digest), which is what
 * shift_layer_gc() counts as a reference.
 */
int shift_layer_store_unpack_opts(const struct shift_oci_image *img,
				  const char *store_dir,
				  const struct shift_layer_opts *opts,
				  struct shift_oci_diag *diag);
int shift_layer_unpack_flat_opts(const struct shift_oci_image *img,
				 const char *dest,
				 const struct shift_idmap *map,
				 const struct shift_layer_opts *opts,
				 struct shift_oci_diag *diag);

/* What shift_layer_gc() removes (or would, with SHIFT_LAYER_DRY_RUN). */
struct shift_layer_gc_event {
	const char *kind;	/* "temporary", "image", "layer", "shifted" */
	const char *path;
	const char *name;	/* digest of an image or layer, else NULL */
};

/*
 * Garbage-collect a layer store: stale temporaries (see above); with
 * keep (a NULL-terminated list of opened images), the image records of
 * every other image; then every layer (and its shifted copies) that no
 * remaining image record lists.  Layers of images mounted by running
 * containers are referenced by their records: keep those images.
 * Returns the number of items removed (or that would be).
 */
int shift_layer_gc(const char *store_dir,
		   const struct shift_oci_image *const *keep, unsigned flags,
		   void (*on_remove)(const struct shift_layer_gc_event *ev,
				     void *userdata),
		   void *userdata, struct shift_oci_diag *diag);

/*
 * Unpack the image's layers into the content-addressed store at store_dir
 * (created if missing): STORE/layers/sha256/HEX/rootfs in the image's own
 * (unshifted) ownership, OCI whiteouts turned into overlayfs whiteouts
 * (0:0 character devices, trusted.overlay.opaque=y), with a layer.json
 * recording the digests.  Layers already in the store are not unpacked
 * again.  Each layer is extracted into a temporary directory and renamed
 * into place only when complete and its digest verified.  Returns the
 * number of layers newly unpacked.
 */
int shift_layer_store_unpack(const struct shift_oci_image *img,
			     const char *store_dir, unsigned flags,
			     struct shift_oci_diag *diag);

/*
 * Unpack all layers into one new tree at dest (which must not exist, or be
 * an empty directory), ownership, ACL qualifiers and file capability root
 * ids shifted through map (on-disk image id -> seen id, the direction of
 * an idmapped mount) while extracting, whiteouts applied.  map NULL: no
 * shift.  The tree is built beside dest and renamed into place on success;
 * on failure nothing is left.
 */
int shift_layer_unpack_flat(const struct shift_oci_image *img,
			    const char *dest, const struct shift_idmap *map,
			    unsigned flags, struct shift_oci_diag *diag);

/*
 * Mount the image at target: an overlayfs over idmapped mounts of its
 * layers in the store (unpacking missing ones first), or, where the store
 * can't be idmapped or with SHIFT_LAYER_FORCE_COPY, over shifted copies
 * of the layers kept in STORE/shifted/ per map and reused.  upper_dir
 * (NULL with SHIFT_LAYER_RDONLY) receives upper/ and work/, owned by the
 * map's image of 0:0.  Returns 1 when idmapped, 0 when over copies.
 */
int shift_layer_mount(const struct shift_oci_image *img, const char *store_dir,
		      const struct shift_idmap *map, const char *target,
		      const char *upper_dir, unsigned flags,
		      struct shift_oci_diag *diag);

/* ------------------------------------------------------------------ */
/* Range allocation (libshift/alloc.c)                                 */
/* ------------------------------------------------------------------ */

/* The state file shift-alloc uses unless told otherwise. */
#define SHIFT_ALLOC_STATE "/var/lib/shiftkit/alloc.json"

/* One container's block: host uids uid_start.., gids gid_start.., size. */
struct shift_alloc {
	char *container;
	char *user;
	uint32_t uid_start;
	uint32_t gid_start;
	uint32_t size;
};

/*
 * Allocate (or return the existing) block of size ids for container from
 * user's /etc/subuid and /etc/subgid delegation (SHIFT_SUBUID/SHIFT_SUBGID
 * override them), recorded in the state file (NULL: SHIFT_ALLOC_STATE)
 * under an exclusive lock.  Blocks start at multiples of size from the
 * start of a delegated range, never contain host id 0 and never overlap
 * another allocation.  Returns 0 when newly allocated, 1 when the container
 * already had this block; -ENOENT (user has no delegation, or the
 * delegation file is missing), -EUCLEAN (the user's own line of a
 * delegation file is malformed), -ENOSPC (no free block), -EEXIST
 * (container allocated with another user or size), -EBADMSG (state file
 * corrupt or of another version), -EINVAL.  shift_alloc_get_ex() says why.  *ret's strings are malloc'd:
 * shift_alloc_clear() frees them.
 */
int shift_alloc_get(const char *state, const char *user, const char *container,
		    uint32_t size, struct shift_alloc *ret);
/* Free container's block.  -ENOENT when it has none. */
int shift_alloc_release(const char *state, const char *container);
/* All allocations, in allocation order; free with shift_alloc_list_free(). */
int shift_alloc_list(const char *state, struct shift_alloc **ret,
		     size_t *ret_n);
void shift_alloc_clear(struct shift_alloc *a);
void shift_alloc_list_free(struct shift_alloc *list, size_t n);
/* The block as a map "u:0:UID:SIZE g:0:GID:SIZE" (NULL on ENOMEM). */
struct shift_idmap *shift_alloc_idmap(const struct shift_alloc *a);

/* shift_alloc_*_ex(): what the caller wants beyond the plain calls. */
#define SHIFT_ALLOC_DRY_RUN (1u << 0) /* work it out, change nothing */
struct shift_alloc_opts {
	unsigned flags;
	/* malformed delegation lines of other users (NULL: not told) */
	shift_subid_warn_fn warn;
	void *userdata;
	/* on failure, a one-line reason naming the state's allocation or
	 * the delegation file and line, when there is more to say than the
	 * errno ("" otherwise) */
	char *err;
	size_t errlen;
};
/*
 * As shift_alloc_get(), plus: the state is checked whole (-EBADMSG for a
 * block past the last id or holding host id 0, overlapping blocks, a
 * container twice, unknown keys, a version other than 1); the delegation
 * is read with shift_subid_read() (-ENOENT with a reason when the file is
 * missing, -EUCLEAN when the user's own line is malformed); with
 * SHIFT_ALLOC_DRY_RUN nothing is written and no lock file or directory is
 * created.  The plain calls are these with opts NULL.
 */
int shift_alloc_get_ex(const char *state, const char *user, const char *container,
		       uint32_t size, const struct shift_alloc_opts *opts,
		       struct shift_alloc *ret);
/* As shift_alloc_release(); *ret (if non-NULL) gets the freed block. */
int shift_alloc_release_ex(const char *state, const char *container,
			   const struct shift_alloc_opts *opts,
			   struct shift_alloc *ret);
int shift_alloc_list_ex(const char *state, const struct shift_alloc_opts *opts,
			struct shift_alloc **ret, size_t *ret_n);

/* ------------------------------------------------------------------ */
/* Ownership manifests (libshift/manifest.c)                           */
/* ------------------------------------------------------------------ */

/*
 * A tree's ownership metadata, one entry per path (sorted): type, uid,
 * gid, mode, POSIX ACLs, file capability.  Written as an mtree(5) spec
 * (libarchive's form) plus "#shiftkit" extension lines for ACLs and file
 * capabilities and a sha256 digest line; docs/manifest-format.md.
 */
struct shift_manifest;

/*
 * Record the tree at dir (read-only; symlinks not followed, other mounts
 * not entered).  Returns 0 and a manifest the caller frees.
 */
int shift_manifest_record(const char *dir, struct shift_manifest **ret);
/* Write in the manifest format to fd.  Returns 0 (-EOPNOTSUPP for a
 * manifest from shift_manifest_open() that was left in its file). */
int shift_manifest_write(const struct shift_manifest *m, int fd);
/*
 * Record the tree at dir straight to fd in the manifest format, in bounded
 * memory (the walk goes in the file's order; what is held is the listing
 * of each directory from the top to the current one).  The same bytes as
 * shift_manifest_write() of shift_manifest_record().  Returns 0, the
 * number of entries in *count and "sha256:HEX" in digest (72 bytes), each
 * if non-NULL.
 */
int shift_manifest_record_to(const char *dir, int fd, size_t *count,
			     char *digest);
/*
 * Open a manifest file for checking in bounded memory: read once to
 * validate it (as shift_manifest_read: syntax, digest) and count its
 * entries, which stay in the file; shift_manifest_check() reads it again
 * alongside the tree (-ESTALE then if the file changed in between).  A
 * manifest not in the order shift-verify writes (another mtree writer's)
 * is read whole, as by shift_manifest_read().
 * shift_manifest_check_layers() needs manifests read whole.
 */
int shift_manifest_open(const char *path, struct shift_manifest **ret,
			const char **err, unsigned *err_line);
/*
 * Read a manifest file.  -EBADMSG when malformed or when its digest does
 * not match (with a static reason and the 1-based line in err/err_line if
 * non-NULL).
 */
int shift_manifest_read(const char *path, struct shift_manifest **ret,
			const char **err, unsigned *err_line);
void shift_manifest_free(struct shift_manifest *m);
size_t shift_manifest_count(const struct shift_manifest *m);
/* "sha256:HEX" of the written form (valid after record or read). */
const char *shift_manifest_digest(const struct shift_manifest *m);

/* One difference between a tree and what was expected. */
struct shift_difference {
	const char *path;     /* "./usr/bin/ping" */
	const char *field;    /* "entry", "type", "uid", "gid", "mode",
				 "acl.access", "acl.default", "fcaps" */
	const char *expected; /* as in the manifest; "absent" */
	const char *found;
};
/* Called per difference; a negative return stops the check with it. */
typedef int (*shift_difference_fn)(const struct shift_difference *d,
				   void *userdata);

enum {
	/* Entries in the tree but not in the manifest are fine (a merged
	 * overlay view holds the container's own files too). */
	SHIFT_CHECK_IGNORE_EXTRA = 1 << 0,
	/* Entries in the manifest but not in the tree are fine. */
	SHIFT_CHECK_IGNORE_MISSING = 1 << 1,
};

/*
 * Compare the tree at dir with the manifest with map (disk -> seen; NULL:
 * none) applied to every uid, gid, ACL qualifier and file capability root
 * id, as the shift engine applies it.  Returns the number of differences
 * (each passed to fn if non-NULL), or a negative errno.
 */
int shift_manifest_check(const struct shift_manifest *m,
			 const struct shift_idmap *map, const char *dir,
			 unsigned flags, shift_difference_fn fn,
			 void *userdata);

/* Called per difference with the index of the layer the expected entry
 * comes from (extra entries: the top layer). */
typedef int (*shift_layer_difference_fn)(const struct shift_difference *d,
					 size_t layer, void *userdata);
/*
 * Compare dir, an overlay's merged directory of layers[0..n) (bottom layer
 * first, as an image manifest lists them), with what overlayfs shows of
 * them: each path as in the highest layer that has it; a whiteout (a 0/0
 * character device, "overlay=whiteout" in the manifest) hides the path and
 * its subtree in the lower layers, as does a non-directory; an opaque
 * directory ("overlay=opaque") hides the lower layers' entries below it.
 * Returns the number of differences or a negative errno.
 */
int shift_manifest_check_layers(const struct shift_manifest *const *layers,
				size_t n, const struct shift_idmap *map,
				const char *dir, unsigned flags,
				shift_layer_difference_fn fn, void *userdata);
/*
 * After a record or check of this thread failed reading the tree: the
 * entry it failed on ("./a/b"), or NULL (the top directory itself).
 */
const char *shift_manifest_error_path(void);
/* Called with the number of entries read so far while this thread
 * records a tree (every 1024 entries and at the end); NULL: nobody. */
typedef void (*shift_manifest_progress_fn)(size_t entries, void *userdata);
void shift_manifest_set_progress(shift_manifest_progress_fn fn, void *userdata);

/*
 * Every uid, gid, ACL qualifier and file capability root id in the tree at
 * dir lies in map's seen ranges (an overlay upper dir: only the container's
 * ids).  Whiteouts (0/0 character devices, created by overlayfs with the
 * mounter's credentials) are exempt.  Returns the number of offending
 * entries (each passed to fn), or a negative errno.
 */
int shift_tree_check_range(const char *dir, const struct shift_idmap *map,
			   shift_difference_fn fn, void *userdata);

/* ------------------------------------------------------------------ */
/* Container sets (libshift/verify.c)                                  */
/* ------------------------------------------------------------------ */

enum shift_verify_check {
	SHIFT_VERIFY_OVERLAP = 1,  /* host ranges of two containers overlap */
	SHIFT_VERIFY_HOST_ROOT,	   /* a container maps host uid/gid 0 */
	SHIFT_VERIFY_SUBID,	   /* range outside the owner's delegation */
	SHIFT_VERIFY_LAYER,	   /* layer on disk differs from its manifest */
	SHIFT_VERIFY_VIEW,	   /* a container's view of a layer differs */
	SHIFT_VERIFY_UPPER,	   /* upper dir holds ids outside the range */
	SHIFT_VERIFY_IN_PLACE,	   /* in-place shifted layer, other map */
	SHIFT_VERIFY_MOUNTS,	   /* (report) idmapped mounts of a pid */
};

enum shift_verify_status {
	SHIFT_VERIFY_PASS,
	SHIFT_VERIFY_FAIL,
	SHIFT_VERIFY_SKIP,
	SHIFT_VERIFY_INFO,
};

struct shift_verify_finding {
	enum shift_verify_check check;
	enum shift_verify_status status;
	const char *subject;  /* "c1", "c1,c2", "base", "c1:base", "c1:upper" */
	const char *message;  /* one line */
	const struct shift_difference *diff; /* a file difference, or NULL */
};

typedef int (*shift_verify_fn)(const struct shift_verify_finding *f,
			       void *userdata);

/* "overlap", "host-root", "subid", "layer", "view", "upper", "in-place",
 * "mounts". */
const char *shift_verify_check_name(enum shift_verify_check c);
const char *shift_verify_status_name(enum shift_verify_status s);

/*
 * Run every check on the container set described in the JSON file at path
 * (docs/shift-verify.1), passing each finding to fn.  A check that compares
 * a tree passes each difference as a finding with diff set (status FAIL),
 * then, later, its own result: a finding of the same check and subject
 * with diff NULL (differences of the merged views of one path may
 * interleave).  Returns the number of failed checks (findings with diff
 * NULL; 0: all good) or a negative errno; on -EBADMSG (a bad description:
 * unknown or duplicate key, wrong type, no containers, not strict JSON) a
 * one-line reason with the line and column goes into err (size errlen).
 */
int shift_verify_containers(const char *path, shift_verify_fn fn,
			    void *userdata, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Per-inode metadata (libshift/acl.c, fcaps.c, inode.c)               */
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

/* Flags of struct shift_options. */
enum {
	SHIFT_REVERSE = 1 << 0, /* apply the map backwards: undo a shift */
	SHIFT_DRY_RUN = 1 << 1, /* compute and report, change nothing */
	SHIFT_VERBOSE = 1 << 2, /* report SHIFT_EVENT_CHANGE for each change */
	SHIFT_FORCE = 1 << 3,	/* shift a tree marked as shifted by another map */
};

/* Bits of shift_event.what: which parts of an inode an event is about. */
enum {
	SHIFT_WHAT_OWNER = 1 << 0,
	SHIFT_WHAT_ACL_ACCESS = 1 << 1,
	SHIFT_WHAT_ACL_DEFAULT = 1 << 2,
	SHIFT_WHAT_FCAPS = 1 << 3,
	SHIFT_WHAT_MODE = 1 << 4, /* setuid/setgid restored after chown */
	/* UNMAPPED in shift_tree_userns(): the id has an image, but one
	 * outside the ids the caller owns (only root can store it). */
	SHIFT_WHAT_OUTSIDE = 1 << 5,
};

enum shift_event_type {
	SHIFT_EVENT_CHANGE,	   /* an inode changes (SHIFT_VERBOSE/DRY_RUN) */
	SHIFT_EVENT_UNMAPPED,	   /* an id without image: kind, id, what */
	SHIFT_EVENT_ERROR,	   /* an operation failed: op, error */
	SHIFT_EVENT_MOUNTPOINT,	   /* another mount in the tree: not entered */
	SHIFT_EVENT_EXTERNAL_LINK, /* an inode has hard links outside the tree */
};

struct shift_event {
	enum shift_event_type type;
	const char *path;	 /* relative to the tree; "." is its root */
	unsigned what;		 /* SHIFT_WHAT_* */
	enum shift_id_kind kind; /* UNMAPPED */
	uint32_t id;		 /* UNMAPPED; SHIFT_ID_UNKNOWN: see below */
	uint32_t uid, gid;	 /* CHANGE: before */
	uint32_t new_uid, new_gid; /* CHANGE: after */
	int error;		 /* ERROR: negative errno */
	const char *op;		 /* ERROR: what failed ("chown", "open", ...) */
};

/* The id of an UNMAPPED (or CHANGE) event that can't be known: an
 * unprivileged run (shift_tree_userns()) met an id outside the caller's
 * delegation, which its user namespace shows only as the overflow id. */
#define SHIFT_ID_UNKNOWN UINT32_MAX

/* Events may come from several threads, never concurrently. */
typedef void (*shift_event_fn)(const struct shift_event *ev, void *userdata);

struct shift_stats {
	uint64_t inodes;     /* inodes looked at (each hard-linked inode once) */
	uint64_t dirs;
	uint64_t changed;    /* inodes changed (or that would be, dry-run) */
	uint64_t hardlinks;  /* further links of an inode already seen */
	uint64_t unmapped;   /* ids without image (each occurrence) */
	uint64_t errors;     /* failed operations (SHIFT_EVENT_ERROR) */
	uint64_t mountpoints;
	bool already;	     /* tree already shifted by this map: nothing done */
	bool resumed;	     /* an interrupted run was resumed */
	const char *engine;  /* the executor that ran ("sync", ...) */
};

struct shift_options {
	const struct shift_idmap *map; /* on-disk A seen as B: B is stored */
	unsigned flags;		       /* SHIFT_REVERSE, SHIFT_DRY_RUN, ... */
	enum shift_unmapped unmapped;
	uint32_t overflow_uid, overflow_gid; /* 0: SHIFT_OVERFLOW_ID */
	shift_event_fn on_event;	     /* may be NULL */
	/* Called about every 250 ms from the walking thread; may be NULL. */
	void (*on_progress)(const struct shift_stats *st, void *userdata);
	void *userdata;
	const char *engine; /* "auto" or NULL, "sync", "threads", "uring" */
	unsigned threads;   /* worker threads for "threads"; 0: automatic */
};

/*
 * The one function that applies a map to one inode's metadata, shared by
 * shift-tree, the OCI flat unpack and verify: owner (lchown semantics),
 * ACL qualifiers, file capability rootid, setuid/setgid restored after the
 * chown, everything else untouched.  A context holds the map (inverted for
 * SHIFT_REVERSE) and buffers; one per thread.  NULL on ENOMEM/EINVAL.
 */
struct stat;
struct shift_inode_ctx;
struct shift_inode_ctx *shift_inode_ctx_new(const struct shift_options *opts);
void shift_inode_ctx_free(struct shift_inode_ctx *ctx);
/*
 * Shift the inode fd refers to (any fd, also O_PATH; a symlink is never
 * followed).  st is its fstat() through fd (NULL: done here).  path only
 * names it in events.  Returns 1 changed (would change, dry-run), 0
 * nothing to do, or a negative errno (also reported as SHIFT_EVENT_ERROR).
 * Unmapped ids are events, not failures.
 */
int shift_inode(struct shift_inode_ctx *ctx, int fd, const struct stat *st,
		const char *path);

/* ------------------------------------------------------------------ */
/* Shift engine (libshift/walk.c, shift.c)                             */
/* ------------------------------------------------------------------ */

/*
 * Shift the tree at path in place (docs/shift-engine.md): every inode
 * below it on the same mount, by fd, never following a symlink, each inode
 * once.  Crash-safe: an interrupted run is recorded in an xattr on the
 * root (trusted.shiftkit.shift, user.shiftkit.shift without privilege) and
 * the same call finishes it.  A tree already shifted by the same map is
 * left alone (stats->already).  Returns 0 when every inode was shifted,
 * 1 when the run completed with problems (unmapped ids under
 * SHIFT_UNMAPPED_ERROR, failed inodes, mount points: see the events; the
 * tree is then marked "incomplete", an inode with an unmapped id is left
 * unchanged, and the same call re-examines what was reported), or
 * a negative errno when it could not run: -EEXIST the tree is marked as
 * shifted by another map (SHIFT_FORCE), -EBUSY an interrupted shift with
 * another map is pending, -EALREADY another run is shifting the tree now
 * (it holds a flock on the root), -EROFS, -ENOTDIR, ...
 */
int shift_tree(const char *path, const struct shift_options *opts,
	       struct shift_stats *ret_stats);

/*
 * The same for an unprivileged caller: a user namespace mapping the
 * caller's /etc/subuid, /etc/subgid delegation (from id 0) and its own uid
 * and gid is created (newuidmap/newgidmap), a child process joins it and
 * runs shift_tree() with opts->map translated into the namespace.
 * Callbacks run in the child.  Ids the caller doesn't own, or whose image
 * it doesn't own, are reported (SHIFT_ID_UNKNOWN, SHIFT_WHAT_OUTSIDE) and
 * left.  -EPERM when no part of the map (of uids or of gids) lies between
 * ids the caller owns, -ENOKEY when it has no delegation, -ECHILD when the
 * user namespace could not be set up (newuidmap/newgidmap missing or
 * failing).
 * The marker records opts->map (host ids), as a run as root does; an
 * interrupted run of root can't be finished here, nor one of this function
 * by shift_tree() (-EACCES: the progress records are in another view).
 */
int shift_tree_userns(const char *path, const struct shift_options *opts,
		      struct shift_stats *ret_stats);

/*
 * Read the marker of a tree: returns 0 and the state ("running",
 * "cleanup", "incomplete", "done", "undone" after a --reverse) and map string (malloc'd, caller frees) when the tree
 * carries one, -ENODATA when not.
 */
int shift_tree_marker(const char *path, char **ret_state, char **ret_map);

/* A tree's marker in full (shift-tree --status). */
struct shift_tree_status {
	char state[16];	    /* running, cleanup, incomplete, done, undone */
	char direction[16]; /* forward, reverse */
	char unmapped[16];  /* error, keep, overflow */
	char xattr[32];	    /* the xattr it was read from */
	uint64_t generation;
	int64_t time; /* last written, seconds since the epoch; 0: unknown */
	pid_t pid;    /* a run shifting the tree now (0: none) */
	bool userns;  /* recorded by an unprivileged run */
	char *map;    /* malloc'd: shift_tree_status_clear() */
};
/*
 * Read the marker of the tree at path and whether a run holds the tree.
 * "incomplete": the last run finished leaving problems (unmapped ids,
 * failed inodes, mounts inside); the same command re-examines them.
 * -ENODATA when the tree carries no marker.
 */
int shift_tree_status(const char *path, struct shift_tree_status *ret);
void shift_tree_status_clear(struct shift_tree_status *st);
/*
 * Whether a run is shifting the tree at path now (shift_tree() holds a
 * flock on its root; -EALREADY for a second run): 1 and its pid (0 when
 * it can't be told), 0 when none, or a negative errno.
 */
int shift_tree_locker(const char *path, pid_t *ret_pid);

#ifdef __cplusplus
}
#endif

#endif
