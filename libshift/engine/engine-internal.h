/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to libshift: the shift engine's pieces, the walker interface and
 * the executor interface (docs/shift-engine.md).
 *
 * The engine is a parallel walk (walk.c) over a shared stack of tasks; the
 * walker knows nothing of shifting: it calls a visitor (struct sk_walk_ops)
 * per directory, per entry and per problem.  The engine's visitor (shift.c)
 * does the rest:
 *
 *   walkers (1: sync, N: threads, uring)   per entry (engine_entry, shift.c)
 *   getdents64 on a dir fd; push the  ---> mount and type checks, hard-link
 *   subdirectories as tasks, split        set (links.c), then the inode's
 *   big directories into chunks; statx    plan and its steps (inode.c)
 *   every entry by name (stat.c)
 *
 * Dependencies inside the engine, one way only:
 *   shift-userns.c -> shift.c -> walk.c, links.c, inode.c, marker.c,
 *   executors; links.c -> inode.c; walk.c, inode.c -> stat.c.
 *
 * An executor decides how many walkers run and may prefetch the inodes of
 * each chunk of entries before the walker handles them:
 *  - start() is called once before the walk (before anything is written to
 *    the tree: an executor that can't work here must fail there); it sets
 *    e->workers (walker 0 is the calling thread) and its state.
 *  - prefetch(state, w, dirfd, ents, n), optional: walker w is about to
 *    handle these entries of the directory dirfd.  The names live only
 *    during the call.
 *  - prefetch_done(state, w), optional: walker w has handled them; what
 *    prefetch() started with dirfd must be over when it returns (the
 *    directory may be closed next).
 *  - stop() frees everything; called once, also on failure.
 * Errors of single inodes are events, never the end of the walk.
 */
#ifndef LIBSHIFT_ENGINE_INTERNAL_H
#define LIBSHIFT_ENGINE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "shift/engine.h"
#include "core/core-internal.h"

/* What the engine needs of an inode's stat (from statx). */
struct sk_stat {
	uint64_t dev;
	uint64_t ino;
	uint64_t mnt_id;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
};

/* How an inode fd may be used. */
enum sk_fd_kind {
	SK_FD_FULL, /* a real open: f*xattr, fchown, fchmod work on it */
	SK_FD_PATH, /* O_PATH: xattrs via /proc/self/fd/N, fchownat(AT_EMPTY_PATH) */
};

/* A directory of the walk; shared with executors by reference count. */
struct sk_dir {
	int fd;
	unsigned refs;
	unsigned depth;
	size_t path_len;
	char *path; /* relative to the root; "." for the root */
};

struct sk_dentry {
	const char *name;
	uint64_t ino;
	unsigned char d_type;
};

/* The mount a walk stays on: its root's device and mount id. */
struct sk_root {
	uint64_t dev, mnt_id;
	bool overlay; /* overlayfs: see sk_other_mount() */
};

/* Whether the inode st is on another mount than the root r.  On overlayfs
 * by mount id alone: a non-directory shows the st_dev of the layer it
 * comes from when the layers are on different filesystems and xino is off. */
static inline bool sk_other_mount(const struct sk_root *r,
				  const struct sk_stat *st)
{
	if (st->mnt_id && r->mnt_id && st->mnt_id != r->mnt_id)
		return true;
	if (r->overlay && st->mnt_id && r->mnt_id && !S_ISDIR(st->mode))
		return false;
	return st->dev != r->dev;
}

/*
 * The walker (walk.c): what a visit does, called from any walker thread.
 * data is the visit's (sk_walk()'s argument); wst the walker's own state,
 * from walker(): one per walker thread, so a callback may use it without
 * locking.  Every callback but walker() is optional.
 *  - walker(data, idx): the state of walker idx (0: the calling thread,
 *    asked first); NULL fails the walk with -ENOMEM.
 *  - dir(data, wst, dir, st): the directory dir (dir->path; "." is the
 *    root), open as dir->fd and stat'ed as st, before its entries.
 *  - entry(data, wst, dir, name, st): the entry name of dir that the walk
 *    does not enter, stat'ed by name as st (no symlink followed).  st
 *    may show a directory: a non-directory replaced by one after the
 *    directory was read; the walk does not enter it.
 *  - batch(data, wst, idx, dir, ents, n) / batch_done(data, wst, idx):
 *    around the entry() calls for the chunk ents[0..n) of dir, handled by
 *    walker idx (prefetch, statistics, progress).
 *  - mount(data, wst, dir, name): dir/name is on another mount than the
 *    root (sk_other_mount()): not visited, not entered.
 *  - error(data, wst, dir, name, op, err): op failed with err on dir/name
 *    (name NULL: dir itself); the walk goes on without it.
 * Entries removed while the walk runs are skipped silently.
 */
struct sk_walk_ops {
	void *(*walker)(void *data, unsigned idx);
	void (*dir)(void *data, void *wst, const struct sk_dir *dir,
		    const struct sk_stat *st);
	void (*entry)(void *data, void *wst, const struct sk_dir *dir,
		      const char *name, const struct sk_stat *st);
	void (*batch)(void *data, void *wst, unsigned idx,
		      const struct sk_dir *dir, const struct sk_dentry *ents,
		      size_t n);
	void (*batch_done)(void *data, void *wst, unsigned idx);
	void (*mount)(void *data, void *wst, const char *dir,
		      const char *name);
	void (*error)(void *data, void *wst, const char *dir, const char *name,
		      const char *op, int err);
};

#define SK_PASSES_MAX 8
/* How to walk. */
struct sk_walk_params {
	int rootfd;	     /* the tree's root directory */
	struct sk_root root; /* its mount: the walk never leaves it */
	unsigned walkers;    /* threads (walker 0 the caller's); 0 means 1 */
	/* While the process keeps (nearly) every CPU busy, only this many
	 * walkers run (0: all of them, always). */
	unsigned busy_walkers;
	unsigned cpus;
	/* Directory readahead (dirahead.c): the block device, or -1. */
	int dirahead_fd;
	bool dirahead_always;
	/* Walks of inode-number ranges [bounds[p], bounds[p + 1]),
	 * p < passes; 0 or 1 pass: everything in one walk.  Directories are
	 * read in every pass, dir() and entry() called in the pass of their
	 * inode (an entry the directory doesn't number: in every pass). */
	unsigned passes;
	uint64_t bounds[SK_PASSES_MAX + 1];
};

/* Walk the tree; 0, or the walk's fatal error (-ENOMEM, or reading the
 * root failed). */
int sk_walk(const struct sk_walk_params *p, const struct sk_walk_ops *ops,
	    void *data);
void sk_dir_ref(struct sk_dir *dir);
void sk_dir_unref(struct sk_dir *dir);

struct sk_engine;

struct sk_executor {
	const char *name;
	int (*start)(struct sk_engine *e, void **ret_state);
	void (*prefetch)(void *state, unsigned w, int dirfd,
			 const struct sk_dentry *ents, size_t n);
	void (*prefetch_done)(void *state, unsigned w);
	void (*stop)(void *state);
};

/* The executors (strong references, so a static link pulls them in too;
 * io_uring only when configure found liburing). */
extern const struct sk_executor sk_executor_threads;
#ifdef HAVE_LIBURING
extern const struct sk_executor sk_executor_uring;
#endif
extern const struct sk_executor sk_executor_sync;

/* This library's name of the executor called name ("sync", "threads",
 * "uring": a string that lives as long as the process), NULL for any
 * other (shift.c). */
const char *sk_executor_name(const char *name);

/* Online CPUs, at least 1. */
unsigned sk_cpus(void);

/* Walkers for a parallel engine: opts->threads, or four per CPU and at
 * least 8 (a walker blocks on cold directory and inode reads and on the
 * journal: more keep more in flight; docs/benchmarks.md), at most 64. */
unsigned sk_walkers_default(const struct sk_engine *e);

enum sk_phase {
	SK_PHASE_SHIFT,	  /* shift every inode */
	SK_PHASE_CLEANUP, /* remove the per-inode intent records */
};

/* Per-inode crash record (xattr <prefix>.shiftkit.inode), host order. */
#define SK_INTENT_MAGIC 0x31494b53u /* "SKI1" */
enum {
	SK_INTENT_ACL_ACCESS = 1 << 0,
	SK_INTENT_ACL_DEFAULT = 1 << 1,
	SK_INTENT_CAPS = 1 << 2,
	/* Not an intent: the inode was left unchanged because an id of it
	 * has no image (--unmapped=error); uid, gid, mode are its ids then.
	 * A re-run takes the inode as it is now (docs/shift-engine.md). */
	SK_INTENT_PENDING = 1 << 3,
};
struct sk_intent {
	uint32_t magic;
	uint32_t flags;
	uint64_t gen;
	uint32_t uid, gid, mode;
	uint32_t caps_len;
	uint64_t acl_hash[2];
	uint8_t caps[SHIFT_FCAPS_MAX_SIZE];
};

/* The journal: what shift_inode needs to know about the run. */
struct sk_journal {
	bool active;	    /* write intents (a real run of the engine) */
	bool resumed;	    /* an interrupted run is being finished */
	uint64_t gen;	    /* this run's generation */
	char intent_name[32];
	/* Called once before the first intent that stays until cleanup. */
	int (*need_cleanup)(struct sk_engine *e);
	struct sk_engine *engine;
};

/*
 * inode.c: one inode's shift as a plan and its steps.  sk_inode_plan() is
 * pure: from what was read of the inode (its stat, ACL and capability
 * values, this run's record of it) and the rules (map, options, journal)
 * it computes every change -- new owner, setid bits to restore, new ACL
 * and capability values, the progress record to write and remove -- and
 * the ids it reports as unmapped.  The steps (inode_apply()) then perform
 * it with the race-safe syscalls of struct sk_target.
 */
struct sk_plan_rules {
	const struct shift_idmap *map; /* applied disk -> seen */
	enum shift_unmapped unmapped;
	uint32_t overflow[2];
	bool dry_run;
	/* In the engine (a journal): an id without image under
	 * --unmapped=error leaves the inode unchanged (SK_PLAN_PENDING); a
	 * lone shift_inode() shifts what it can. */
	bool engine;
	bool journal; /* progress records are written (a real run) */
	bool resumed; /* finishing an interrupted run */
	uint64_t gen; /* the run's generation, for the records */
};

/* What was read of the inode. */
struct sk_inode_facts {
	struct sk_stat st;
	bool has_acl[2]; /* access, default */
	const void *acl[2];
	size_t acl_len[2];
	bool has_caps;
	const void *caps;
	size_t caps_len;
	const struct sk_intent *intent; /* this run's record, or NULL */
};

struct sk_plan_unmapped {
	enum shift_id_kind kind;
	uint32_t id;
	unsigned what; /* SHIFT_WHAT_* where the id is */
};

enum sk_plan_kind {
	SK_PLAN_NONE,	 /* nothing changes (a record may go: intent_remove) */
	SK_PLAN_CHANGE,	 /* the changes below */
	SK_PLAN_PENDING, /* left unchanged: ids without image under
			  * --unmapped=error; intent_write: mark it so */
	SK_PLAN_FAIL,	 /* left unchanged: fail_op failed with fail_err */
};

struct sk_plan {
	enum sk_plan_kind kind;
	unsigned what;	   /* SHIFT_WHAT_* that change */
	uint32_t uid, gid; /* the owner after (the current one if unchanged) */
	bool chown;
	bool chown_by_name; /* the only write: by name, no fd needed */
	bool mode_restore;  /* chmod to mode: setuid/setgid after the chown */
	uint32_t mode;
	bool acl_change[2];
	char *acl[2]; /* the new values (the plan's buffers) */
	size_t acl_len[2];
	bool caps_write;
	uint8_t caps[SHIFT_FCAPS_MAX_SIZE];
	size_t caps_len;
	/* The result would be shifted again by a plan made from it: the
	 * record stays until the cleanup phase (docs/shift-engine.md). */
	bool keep;
	bool intent_write; /* before the first change (PENDING: the mark) */
	struct sk_intent intent;
	bool intent_remove; /* after the changes (NONE: at once) */
	struct sk_plan_unmapped *unmapped; /* ids reported, in order */
	size_t n_unmapped;
	const char *fail_op;
	int fail_err;
	/* buffers kept from one plan to the next */
	size_t acl_size[2], unmapped_size, scratch_size;
	char *scratch;
};

/* Plan the shift of one inode into p (zero it before the first use; its
 * buffers are reused).  0, or -ENOMEM (nothing planned). */
int sk_inode_plan(const struct sk_plan_rules *rules,
		  const struct sk_inode_facts *in, struct sk_plan *p);
void sk_plan_free(struct sk_plan *p);

struct shift_inode_ctx {
	struct shift_idmap *map; /* applied disk -> seen (inverted for reverse) */
	unsigned flags;
	enum shift_unmapped unmapped;
	uint32_t overflow[2];
	shift_event_fn on_event;
	void *userdata;
	pthread_mutex_t *event_lock; /* shared with the engine, or own */
	pthread_mutex_t own_lock;
	struct sk_journal *journal; /* NULL outside the engine */
	enum sk_phase phase;
	/* statistics of this context */
	uint64_t changed, unmapped_n, errors;
	uint64_t inodes; /* handled in the current chunk (shift.c) */
	/* naming the inode in events: dir + "/" + name, built when needed */
	const char *cur_dir;
	const char *cur_name;
	char *pathbuf;
	size_t pathbuf_size;
	/* buffers, allocated once */
	char *names;  /* listxattr */
	char *acl[2]; /* current ACL values */
	struct sk_plan plan;
};

/* Apply the map to one inode (inode.c); see shift_inode(). */
int sk_inode_process(struct shift_inode_ctx *ctx, int fd, enum sk_fd_kind kind,
		     const struct sk_stat *st, const char *dir,
		     const char *name);
/* The same for the inode dir/name relative to the directory fd dirfd,
 * stat'ed as st: opened only when needed (see struct sk_target). */
int sk_inode_process_at(struct shift_inode_ctx *ctx, int dirfd,
			const char *name, const struct sk_stat *st,
			const char *dir);
/* Report an error event for the current inode; returns err. */
int sk_inode_error(struct shift_inode_ctx *ctx, const char *dir,
		   const char *name, const char *op, int err);
void sk_inode_event(struct shift_inode_ctx *ctx, struct shift_event *ev,
		    const char *dir, const char *name);
/* stat.c: statx of fd (never following it) */
int sk_statx_fd(int fd, struct sk_stat *st);
/* statx of name in dirfd, not following a symlink or an automount. */
int sk_statx_at(int dirfd, const char *name, struct sk_stat *st);

/* The engine (shift.c / walk.c). */
struct sk_engine {
	const struct shift_options *opts;
	struct shift_options ctx_opts;
	int rootfd;
	struct sk_root root; /* the tree's mount */
	enum sk_phase phase;
	struct sk_journal journal;
	struct shift_inode_ctx *ctx; /* the walking thread's */
	struct sk_ctx_list *ctxs;    /* every context of the run (shift.c) */
	pthread_mutex_t lock;	     /* events, marker, hardlink set */
	char marker_name[32];
	char *marker_map;
	bool cleanup;	/* some intent stays until the cleanup phase */
	int marker_err; /* failing to persist the cleanup flag */
	/* hardlink set: (dev, ino) of inodes with nlink > 1 */
	struct sk_link *links;
	size_t links_n, links_size;
	bool ext4; /* the tree is on ext4 (shift.c; dirahead.c) */
	/* statistics (atomic adds) */
	struct shift_stats stats;
	uint64_t next_progress_ns;
	/* the walk */
	unsigned workers; /* walkers, set by the executor's start() */
	const struct sk_executor *exec;
	void *exec_state;
};

/* A further name of a hard-linked inode, kept on overlayfs only: a copy-up
 * of the first name may have broken the link (links.c). */
struct sk_link_name {
	struct sk_link_name *next;
	const char *name;
	char dir[]; /* dir \0 name \0 */
};

struct sk_link {
	uint64_t dev, ino;
	uint32_t seen, nlink;
	char *path; /* first path, for the external-link report */
	struct sk_link_name *deferred;
};

/* Whether the non-directory entry dir/name, stat'ed as st, may be shifted:
 * false when it became a directory meanwhile or is on another mount (both
 * reported with ctx).  The engine's visitor and links.c ask. */
static inline bool sk_engine_may_shift(struct sk_engine *e,
				       struct shift_inode_ctx *ctx,
				       const struct sk_stat *st,
				       const char *dir, const char *name)
{
	if (S_ISDIR(st->mode)) {
		sk_inode_error(ctx, dir, name,
			       "shift an entry that became a directory during the walk (re-run to finish)",
			       -EAGAIN);
		return false;
	}
	if (sk_other_mount(&e->root, st)) {
		struct shift_event ev = { .type = SHIFT_EVENT_MOUNTPOINT };

		__atomic_add_fetch(&e->stats.mountpoints, 1, __ATOMIC_RELAXED);
		sk_inode_event(ctx, &ev, dir, name);
		return false;
	}
	return true;
}
/* links.c: 1 when the inode was seen before in this phase (skip it), 0
 * when it is new, or a negative errno. */
int sk_links_seen(struct sk_engine *e, const struct sk_stat *st,
		  const char *dir, const char *name);
/* After a phase (single-threaded, e->ctx free to use): on overlayfs shift
 * the further names whose link a copy-up broke, report inodes with links
 * outside the tree, then empty the set. */
void sk_engine_links_report(struct sk_engine *e);

/* shift_tree() with the map the marker records and is compared with:
 * the host view of opts->map when the engine runs inside a user namespace
 * (shift-userns.c); NULL means opts->map. */
int sk_shift_tree(const char *path, const struct shift_options *opts,
		  const struct shift_idmap *marker_map,
		  struct shift_stats *ret_stats);

/* marker.c */
#define SK_MARKER_SUFFIX "shiftkit.shift"
#define SK_MARKER_MAX 8192
/* The marker's states (docs/shift-engine.md). */
enum sk_state {
	SK_STATE_UNKNOWN,
	SK_STATE_RUNNING,    /* a run is shifting, or was killed doing so */
	SK_STATE_CLEANUP,    /* every inode shifted; intents being removed */
	SK_STATE_INCOMPLETE, /* a run ended leaving problems: resumable */
	SK_STATE_DONE,	     /* shifted, nothing left */
	SK_STATE_UNDONE,     /* a --reverse finished */
};
const char *sk_state_name(enum sk_state s);
/* The marker's "dir=": what the run does to the ids. */
enum sk_direction {
	SK_DIRECTION_UNKNOWN, /* a newer version's: matches no run */
	SK_DIRECTION_FORWARD,
	SK_DIRECTION_REVERSE,
};
/* "unmapped=": the run's policy, or this for one this version doesn't
 * know (matches no run). */
#define SK_POLICY_UNKNOWN ((enum shift_unmapped) - 1)
struct sk_marker {
	bool found;
	enum sk_state st;
	enum sk_direction direction;
	enum shift_unmapped policy; /* or SK_POLICY_UNKNOWN */
	bool userns;  /* written in a user namespace ("journal=userns") */
	int64_t time; /* "time=", seconds since the epoch; 0: not recorded */
	uint64_t gen;
	int cleanup;
	char *map;
	/* the fields as written, for shift_tree_status() */
	char state[16];
	char dir[16];
	char unmapped[16];
};
const char *sk_marker_policy(enum shift_unmapped p);
/* Read the marker of the tree whose root is fd; its xattr name to
 * ret_name.  m->found is false when there is none. */
int sk_marker_read(int fd, char *ret_name, size_t name_size,
		   struct sk_marker *m);
/* Record the run's state on the root. */
int sk_marker_write(struct sk_engine *e, enum sk_state state);
/* The run holding the tree whose root is fd (its flock): 1 and its pid
 * (0 if /proc/locks doesn't tell), 0 when none, or -errno. */
int sk_tree_locker(int fd, pid_t *ret_pid);
bool sk_marker_same_map(const char *s, const struct shift_idmap *map);
/* In the child of shift_tree_userns(): this process's records are made in
 * the user namespace's view of the ids (see marker.c). */
void sk_marker_set_userns(void);

#define SK_STAT_ADD(e, field, n) \
	__atomic_add_fetch(&(e)->stats.field, (n), __ATOMIC_RELAXED)

/* dirahead.c: read a cold ext4 directory's blocks ahead through the
 * block device (-1: not here: another filesystem, or not permitted).
 * sk_dirahead() hints the blocks of the subdirectories subs of dirfd,
 * adds the read requests made to *requests and returns how many of the
 * subdirectories it found.  sk_dirahead_always(): LIBSHIFT_DIRAHEAD=always
 * asks for it on every directory, cold or not (tests). */
int sk_dirahead_open(const struct sk_engine *e);
bool sk_dirahead_always(void);
size_t sk_dirahead(int bdevfd, int dirfd, const struct sk_dentry *subs,
		   size_t n, unsigned long *requests);

/* passes.c: in how many walks of ranges of inode numbers to shift the
 * tree (1: one walk, everything); bounds[0..K] gets the K ranges'
 * limits, [bounds[p], bounds[p + 1]). */
unsigned sk_walk_passes(const struct sk_engine *e, uint64_t *bounds);

#endif
