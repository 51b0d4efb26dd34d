/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/engine: the in-place shift engine: options, events, the marker.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_ENGINE_H
#define LIBSHIFT_SHIFT_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mount.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * shift-tree's engine and shift-layer's shifted-copy fallback (the OCI
 * flat unpack and shift-verify's expectations use the same ACL and
 * capability translators, shift_acl_translate() and
 * shift_fcaps_translate(), not this): owner (lchown semantics),
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
/* Shift engine (libshift/engine/walk.c, shift.c)                             */
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


/* What shift_tree_source_state() found (strings malloc'd, NULL if none). */
struct shift_source_marker {
	char *root;  /* the directory carrying the marker: path or an ancestor */
	char *state; /* as shift_tree_marker(): "done", "running", ... */
	char *map;   /* the map it records, as shift_idmap_to_string() */
};

/* Results of shift_tree_source_state(). */
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
int shift_tree_source_state(const char *path, const struct shift_idmap *map,
			     struct shift_source_marker *ret);
void shift_source_marker_clear(struct shift_source_marker *m);

/* ------------------------------------------------------------------ */
/* Copy and shift (libshift/engine/copy.c)                             */
/* ------------------------------------------------------------------ */

/*
 * Copy the tree at src to dst, a new directory or an empty one (which the
 * copy replaces), keeping what "cp -a --preserve=xattr" keeps: owners,
 * modes with setuid bits, every xattr (ACLs, file capabilities,
 * trusted.*), hard links, holes, symlinks, fifos, sockets, devices, times;
 * file data by reflink where the filesystem can.  With a map, each inode
 * is shifted on the way by shift_inode() (an id without image under it
 * fails the copy: -ERANGE); without, the copy keeps the source's ids.
 * The copy's root does not take the source's engine marker nor its
 * shared-layer marker.  The copy is made in a temporary sibling of dst and
 * renamed into place (into dst itself when it is a mount point or its
 * directory can't be written): a failure leaves dst as it was.  flags: 0.
 * Returns 0 or a negative errno; then err (if non-NULL) says what failed
 * in err->why and names the entry, relative to src, in err->path (NULL:
 * the copy as a whole).
 */
int shift_copy_tree(const char *src, const char *dst,
		    const struct shift_idmap *map, unsigned flags,
		    struct shift_error *err);

/* The xattr (trusted.* or user.*) marking a directory as a layer shared
 * by several containers: shift-mount --fallback=shift leaves it alone
 * unless forced, a copy of it is private (docs/shift-mount.8). */
#define SHIFT_SHARED_XATTR_SUFFIX "shiftkit.shared"

/* The marker's name on path (static), NULL when it has none. */
const char *shift_tree_shared_marker(const char *path);

/* ------------------------------------------------------------------ */
/* Fallbacks of shift-mount (libshift/engine/fallback.c)               */
/* ------------------------------------------------------------------ */

/* shift_tree() as root, shift_tree_userns() for anyone else; a negative
 * errno names path in err (if non-NULL). */
int shift_tree_auto(const char *path, const struct shift_options *opts,
		    struct shift_stats *stats, struct shift_error *err);

enum shift_copy_step {
	SHIFT_COPY_STEP_MKDIR,	/* making the copy directory */
	SHIFT_COPY_STEP_MARKER, /* reading the engine's marker on it */
	SHIFT_COPY_STEP_DIR,	/* reading it (-ENOTEMPTY: not empty) */
	SHIFT_COPY_STEP_COPY,	/* shift_copy_tree() */
	SHIFT_COPY_STEP_SHIFT,	/* the engine on the copy */
};

struct shift_copy_result {
	/* in: called just before the copy starts (may be NULL); gets
	 * opts->userdata */
	void (*on_copy)(const char *src, const char *dir, void *userdata);
	/* out */
	bool copy;   /* a new copy was made (or would be, dry-run) */
	bool copied; /* ... and it is there */
	bool reused; /* dir held a shifted copy from an earlier run */
	enum shift_copy_step step; /* how far it came */
	const char *tree; /* set before the shift: the tree the engine walks
			   * (dir; src on a dry run without a copy) */
};

/*
 * A shifted copy of the tree src in dir (--fallback=copy): dir is made if
 * missing; a dir holding a copy shifted earlier (the engine's marker on
 * it) is reused (the engine decides: same map, nothing to do; another map,
 * -EEXIST); an empty dir gets a copy (shift_copy_tree(), ids as in src),
 * which the engine then shifts in place with opts as root or through a
 * user namespace (shift_tree_auto()), so the copy carries the marker a
 * later run reuses.  With SHIFT_DRY_RUN nothing is made and the engine
 * looks at src (or at the copy to reuse).  Returns what shift_tree()
 * returns for the shift step (0, 1 with problems), or a negative errno;
 * res->step says which step failed, err (if non-NULL) why (err->why) and
 * where (err->path: the copy directory, or the entry of src the copy
 * failed on).  A non-empty dir without a marker: -ENOTEMPTY.
 */
int shift_copy_and_shift(const char *src, const char *dir,
			 const struct shift_options *opts,
			 struct shift_stats *stats,
			 struct shift_copy_result *res,
			 struct shift_error *err);

enum shift_mount_kind {
	SHIFT_MOUNT_KIND_BIND,	  /* a SOURCE directory */
	SHIFT_MOUNT_KIND_TMPFS,	  /* a new tmpfs */
	SHIFT_MOUNT_KIND_OVERLAY, /* an overlay over idmapped layers */
};

enum shift_fallback {
	SHIFT_FALLBACK_NONE,
	SHIFT_FALLBACK_SHIFT,	   /* SOURCE in place */
	SHIFT_FALLBACK_COPY,	   /* a shifted copy of SOURCE */
	SHIFT_FALLBACK_REASSEMBLE, /* SOURCE an overlayfs: idmap its layers */
};

/* What is known about a request when the method is chosen. */
struct shift_mount_facts {
	enum shift_mount_kind kind;
	enum shift_fallback fallback;
	bool force;	    /* --fallback=shift of a shared layer all the same */
	bool allow_shifted; /* idmap a tree shifted in place all the same */
	bool service;	    /* no CAP_SYS_ADMIN, and shift-mountd reachable */
	int source_state;   /* SHIFT_SOURCE_* of SOURCE (bind) */
	bool resume;	    /* UNFINISHED: by this map, of SOURCE itself */
	bool overlay;	    /* SOURCE is (in) an overlayfs mount */
	bool idmappable;    /* every source can be idmapped (looked at only
			     * with a fallback other than reassemble) */
	const char *kernel_fs; /* SOURCE on proc, sysfs, ...: its type */
	bool shared;	       /* SOURCE carries the shared-layer marker */
};

enum shift_mount_method {
	SHIFT_METHOD_IDMAP,	 /* an idmapped mount (bind, tmpfs, overlay) */
	SHIFT_METHOD_SERVICE,	 /* asked of shift-mountd */
	SHIFT_METHOD_PLAIN_BIND, /* SOURCE shifted by this map already */
	SHIFT_METHOD_REASSEMBLE, /* an overlay over SOURCE's idmapped layers */
	SHIFT_METHOD_SHIFT,	 /* SOURCE shifted in place, bound plain */
	SHIFT_METHOD_COPY,	 /* a shifted copy of SOURCE, bound plain */
	SHIFT_METHOD_REFUSE_KERNEL_FS, /* no fallback changes owners there */
	SHIFT_METHOD_REFUSE_SHARED,    /* a shared layer without force */
};

/* shift-mount's policy, pure: which method serves the request.  A source
 * state other than UNSHIFTED/SHIFTED (or UNFINISHED with resume) is
 * refused before, by the caller, naming the marker. */
enum shift_mount_method shift_mount_choose(const struct shift_mount_facts *f);

#ifdef __cplusplus
}
#endif

#endif
