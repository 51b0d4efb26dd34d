/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shift engine: what the run's marker (marker.c) says is to be done,
 * the phases (shift, then cleanup of progress records when needed),
 * executor selection and the synchronous executor.  The unprivileged
 * variant is in shift-userns.c.  docs/shift-engine.md explains why a crash
 * at any point and a re-run end as one run.
 */
#include "config.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>

#include "engine/engine-internal.h"

#define INTENT_SUFFIX "shiftkit.inode"

/* ------------------------------------------------------------------ */
/* The synchronous executor: the reference.                            */

static int sync_start(struct sk_engine *e, void **ret)
{
	e->workers = 1;
	*ret = e;
	return 0;
}

static void sync_stop(void *state)
{
}

const struct sk_executor sk_executor_sync = {
	.name = "sync",
	.start = sync_start,
	.stop = sync_stop,
};

/*
 * "auto" tries the executors fastest first and falls back when one can't
 * start.  docs/benchmarks.md: the parallel walk alone beats it with
 * io_uring STATX prefetch, warm and cold (every STATX goes to an io-wq
 * worker), so uring is there only when asked for.
 */
static const struct sk_executor *const auto_order[] = {
	&sk_executor_threads,
	&sk_executor_sync,
};

static bool engine_is_auto(const char *name)
{
	return !name || strcmp(name, "auto") == 0;
}

static const struct sk_executor *pick_executor(const char *name)
{
	if (engine_is_auto(name))
		return auto_order[0];
	if (strcmp(name, "sync") == 0)
		return &sk_executor_sync;
	if (strcmp(name, "threads") == 0)
		return &sk_executor_threads;
#ifdef HAVE_LIBURING
	if (strcmp(name, "uring") == 0)
		return &sk_executor_uring;
#endif
	return NULL;
}

const char *sk_executor_name(const char *name)
{
	const struct sk_executor *x = name && !engine_is_auto(name)
					      ? pick_executor(name)
					      : NULL;

	return x ? x->name : NULL;
}

/* ------------------------------------------------------------------ */
/* Worker contexts                                                     */

struct sk_ctx_list {
	struct shift_inode_ctx *ctx;
	struct sk_ctx_list *next;
};

static struct shift_inode_ctx *engine_ctx_new(struct sk_engine *e)
{
	struct shift_inode_ctx *ctx = shift_inode_ctx_new(&e->ctx_opts);
	struct sk_ctx_list *l;

	if (!ctx)
		return NULL;
	l = malloc(sizeof(*l));
	if (!l) {
		shift_inode_ctx_free(ctx);
		return NULL;
	}
	ctx->event_lock = &e->lock;
	ctx->journal = &e->journal;
	ctx->phase = e->phase;
	pthread_mutex_lock(&e->lock);
	l->ctx = ctx;
	l->next = e->ctxs;
	e->ctxs = l;
	pthread_mutex_unlock(&e->lock);
	return ctx;
}

static void ctxs_phase(struct sk_engine *e, enum sk_phase phase)
{
	struct sk_ctx_list *l;

	for (l = e->ctxs; l; l = l->next)
		l->ctx->phase = phase;
}

static void ctxs_collect(struct sk_engine *e, bool free_them)
{
	struct sk_ctx_list *l, *next;

	for (l = e->ctxs; l; l = next) {
		next = l->next;
		e->stats.changed += l->ctx->changed;
		e->stats.unmapped += l->ctx->unmapped_n;
		e->stats.errors += l->ctx->errors;
		l->ctx->changed = l->ctx->unmapped_n = l->ctx->errors = 0;
		if (free_them) {
			shift_inode_ctx_free(l->ctx);
			free(l);
		}
	}
	if (free_them)
		e->ctxs = NULL;
}

/* ------------------------------------------------------------------ */
/* The engine's visit of the tree (struct sk_walk_ops)                 */

/* From any walker: at most one report per 250 ms. */
static void engine_progress(struct sk_engine *e)
{
	struct timespec ts;
	uint64_t t, next;

	if (!e->opts->on_progress ||
	    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return;
	t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	next = __atomic_load_n(&e->next_progress_ns, __ATOMIC_RELAXED);
	if (t < next ||
	    !__atomic_compare_exchange_n(&e->next_progress_ns, &next,
					 t + 250000000ull, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&e->lock);
	e->opts->on_progress(&e->stats, e->opts->userdata);
	pthread_mutex_unlock(&e->lock);
}

/* Walker idx's inode context: walker 0 (the calling thread) has e->ctx. */
static void *engine_walker(void *data, unsigned idx)
{
	struct sk_engine *e = data;

	return idx == 0 ? e->ctx : engine_ctx_new(e);
}

static void engine_dir(void *data, void *wst, const struct sk_dir *dir,
		       const struct sk_stat *st)
{
	struct sk_engine *e = data;

	if (e->phase == SK_PHASE_SHIFT) {
		SK_STAT_ADD(e, inodes, 1);
		SK_STAT_ADD(e, dirs, 1);
	}
	sk_inode_process(wst, dir->fd, SK_FD_FULL, st, dir->path, NULL);
}

/* One non-directory entry: check it, shift it once (hard links). */
static void engine_entry(void *data, void *wst, const struct sk_dir *dir,
			 const char *name, const struct sk_stat *st)
{
	struct sk_engine *e = data;
	struct shift_inode_ctx *ctx = wst;
	int r;

	if (!sk_engine_may_shift(e, ctx, st, dir->path, name))
		return;
	if (st->nlink > 1) {
		r = sk_links_seen(e, st, dir->path, name);
		if (r < 0) {
			sk_inode_error(ctx, dir->path, name,
				       "track hard links", r);
			return;
		}
		if (r > 0) {
			if (e->phase == SK_PHASE_SHIFT)
				SK_STAT_ADD(e, hardlinks, 1);
			return;
		}
	}
	if (e->phase == SK_PHASE_SHIFT)
		ctx->inodes++;
	(void)sk_inode_process_at(ctx, dir->fd, name, st, dir->path);
}

static void engine_batch(void *data, void *wst, unsigned idx,
			 const struct sk_dir *dir, const struct sk_dentry *ents,
			 size_t n)
{
	struct sk_engine *e = data;

	if (e->exec->prefetch)
		e->exec->prefetch(e->exec_state, idx, dir->fd, ents, n);
}

static void engine_batch_done(void *data, void *wst, unsigned idx)
{
	struct sk_engine *e = data;
	struct shift_inode_ctx *ctx = wst;

	if (e->exec->prefetch_done)
		e->exec->prefetch_done(e->exec_state, idx);
	if (ctx->inodes)
		SK_STAT_ADD(e, inodes, ctx->inodes);
	ctx->inodes = 0;
	engine_progress(e);
}

static void engine_mount(void *data, void *wst, const char *dir,
			 const char *name)
{
	struct sk_engine *e = data;
	struct shift_event ev = { .type = SHIFT_EVENT_MOUNTPOINT };

	SK_STAT_ADD(e, mountpoints, 1);
	sk_inode_event(wst, &ev, dir, name);
}

static void engine_error(void *data, void *wst, const char *dir,
			 const char *name, const char *op, int err)
{
	sk_inode_error(wst, dir, name, op, err);
}

static const struct sk_walk_ops engine_ops = {
	.walker = engine_walker,
	.dir = engine_dir,
	.entry = engine_entry,
	.batch = engine_batch,
	.batch_done = engine_batch_done,
	.mount = engine_mount,
	.error = engine_error,
};

/* One walk of the tree (or one per inode range: passes.c). */
static int engine_walk(struct sk_engine *e)
{
	struct sk_walk_params p = {
		.rootfd = e->rootfd,
		.root = e->root,
		.walkers = e->workers ? e->workers : 1,
		.cpus = sk_cpus(),
		.passes = 1,
	};
	int r;

	/* An explicit --threads N always runs N; else, CPU-bound, 2 per
	 * CPU (walk.c, adapt()). */
	if (!e->opts->threads)
		p.busy_walkers = 2 * p.cpus;
	if (e->phase == SK_PHASE_SHIFT)
		p.passes = sk_walk_passes(e, p.bounds);
	p.dirahead_fd = sk_dirahead_open(e);
	p.dirahead_always = p.dirahead_fd >= 0 && sk_dirahead_always();
	r = sk_walk(&p, &engine_ops, e);
	safe_close(p.dirahead_fd);
	return r;
}

/* The first intent that outlives its inode: record that a cleanup
 * phase is needed before it is written. */
static int need_cleanup(struct sk_engine *e)
{
	int r = 0;

	pthread_mutex_lock(&e->lock);
	if (!e->cleanup) {
		e->cleanup = true;
		r = sk_marker_write(e, SK_STATE_RUNNING);
		if (r < 0)
			e->cleanup = false;
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* ------------------------------------------------------------------ */
/* shift_tree                                                          */

static void engine_free(struct sk_engine *e)
{

	if (e->exec && e->exec_state)
		e->exec->stop(e->exec_state);
	ctxs_collect(e, true);
	e->ctx = NULL;
	sk_engine_links_report(e);
	free(e->marker_map);
	safe_close(e->rootfd);
	pthread_mutex_destroy(&e->lock);
}

static int run_phase(struct sk_engine *e, enum sk_phase phase)
{
	int r;

	e->phase = phase;
	ctxs_phase(e, phase);
	r = engine_walk(e);
	sk_engine_links_report(e);
	ctxs_collect(e, false);
	return r;
}

/* What a run leaves unfinished: the tree must not be marked done. */
static bool problems(const struct sk_engine *e)
{
	return e->stats.errors || e->stats.mountpoints ||
	       (e->stats.unmapped && e->opts->unmapped == SHIFT_UNMAPPED_ERROR);
}

int shift_tree(const char *path, const struct shift_options *opts,
	       struct shift_stats *ret_stats)
{
	return sk_shift_tree(path, opts, NULL, ret_stats);
}

/* What the marker says is to be done with the tree (engine_decide()). */
enum sk_decision {
	SK_RUN_FRESH,  /* a new run: a new generation, a marker "running" */
	SK_RUN_RESUME, /* finish the run the marker records */
	SK_RUN_SKIP,   /* nothing to do: stats.already */
};

/* Step 1: the executor (refused before the tree is touched). */
static int engine_pick(struct sk_engine *e)
{
	const char *name = e->opts->engine;

	e->exec = pick_executor(name);
	if (!e->exec)
		return name && (strcmp(name, "threads") == 0 ||
				strcmp(name, "uring") == 0)
			       ? -EOPNOTSUPP
			       : -EINVAL;
	e->stats.engine = e->exec->name;
	return 0;
}

/* Step 2: open the tree's root and lock it.  One run at a time: two would
 * take each other's changes for ids without image and fight over the
 * marker.  A dry run only reads: several may run, not beside a real one.
 * A filesystem without flock (ENOLCK, EOPNOTSUPP) runs unlocked. */
static int engine_lock(struct sk_engine *e, const char *path, bool dry)
{
	struct statfs sfs;
	struct sk_stat st;
	int r;

	e->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->rootfd < 0)
		return negative_errno();
	if (flock(e->rootfd, (dry ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return -EALREADY;
		sk_debug("Failed to lock '%s': %m; running unlocked", path);
	}
	r = sk_statx_fd(e->rootfd, &st);
	if (r < 0)
		return r;
	e->root.dev = st.dev;
	e->root.mnt_id = st.mnt_id;
	if (fstatfs(e->rootfd, &sfs) == 0) {
		e->root.overlay = sfs.f_type == OVERLAYFS_SUPER_MAGIC;
		e->ext4 = sfs.f_type == EXT4_SUPER_MAGIC;
	}
	return 0;
}

/*
 * Step 3: decide from the marker m (read with sk_marker_read()) what to
 * do.  A resumed run takes over the marker's generation, cleanup flag and
 * phase.  -EBUSY: an unfinished run with another map, direction or
 * policy; -EEXIST: done with another map (without SHIFT_FORCE).
 */
static int engine_decide(struct sk_engine *e, struct sk_marker *m,
			 const struct shift_idmap *marker_map,
			 enum sk_decision *ret)
{
	const struct shift_options *opts = e->opts;
	bool reverse = opts->flags & SHIFT_REVERSE;
	bool same, same_dir, same_policy;
	enum shift_unmapped want;

	*ret = SK_RUN_FRESH;
	if (!m->found)
		return 0;
	same = sk_marker_same_map(m->map, marker_map);
	same_dir = m->direction ==
		   (reverse ? SK_DIRECTION_REVERSE : SK_DIRECTION_FORWARD);
	switch (m->st) {
	case SK_STATE_UNDONE:
		/* A completed --reverse: the tree holds the original ids.
		 * The same undo again is a no-op; anything else starts
		 * afresh. */
		if (same && reverse)
			*ret = SK_RUN_SKIP;
		else
			m->found = false;
		return 0;
	case SK_STATE_DONE:
		if (same && !reverse)
			*ret = SK_RUN_SKIP;
		else if (!same && !(opts->flags & SHIFT_FORCE))
			return -EEXIST;
		return 0;
	case SK_STATE_UNKNOWN: /* not after sk_marker_read(): "running" */
	case SK_STATE_RUNNING:
	case SK_STATE_CLEANUP:
	case SK_STATE_INCOMPLETE:
		break;
	}
	/* Running, cleanup or incomplete: finish it.  After a run that left
	 * unmapped ids, keeping them is a way to finish it too (no id with
	 * an image is stored differently under keep than under error). */
	want = opts->unmapped == SHIFT_UNMAPPED_KEEP ||
			       opts->unmapped == SHIFT_UNMAPPED_OVERFLOW
		       ? opts->unmapped
		       : SHIFT_UNMAPPED_ERROR; /* as sk_marker_policy() */
	same_policy = m->policy == want ||
		      (m->st == SK_STATE_INCOMPLETE &&
		       m->policy == SHIFT_UNMAPPED_ERROR &&
		       want == SHIFT_UNMAPPED_KEEP);
	if (!same || !same_dir || !same_policy)
		return -EBUSY;
	*ret = SK_RUN_RESUME;
	e->journal.resumed = true;
	e->journal.gen = m->gen;
	e->cleanup = m->cleanup;
	if (m->st == SK_STATE_CLEANUP)
		e->phase = SK_PHASE_CLEANUP;
	e->stats.resumed = true;
	return 0;
}

/* Step 4: the generation, the walking thread's context and the executor:
 * one that can't start (io_uring disabled) must fail before anything is
 * recorded on the tree; "auto" falls back to the next. */
static int engine_start(struct sk_engine *e)
{
	int r;

	if (!e->journal.resumed &&
	    getrandom(&e->journal.gen, sizeof(e->journal.gen), 0) < 0)
		return negative_errno();
	e->ctx = engine_ctx_new(e);
	if (!e->ctx)
		return -ENOMEM;
	r = e->exec->start(e, &e->exec_state);
	for (size_t i = 1; r < 0 && engine_is_auto(e->opts->engine) &&
			   i < ARRAY_SIZE(auto_order);
	     i++) {
		sk_debug("engine '%s' can't start (%s), trying '%s'",
			 e->exec->name, strerror(-r), auto_order[i]->name);
		e->exec = auto_order[i];
		e->stats.engine = e->exec->name;
		r = e->exec->start(e, &e->exec_state);
	}
	if (r < 0)
		e->exec_state = NULL;
	return r;
}

/* Step 5: record the run before the first change ("running"); the
 * namespace of the record: trusted.* when we may, user.* inside a user
 * namespace.  Then the name of the per-inode records. */
static int engine_record(struct sk_engine *e, const struct sk_marker *m,
			 enum sk_decision d, bool dry)
{
	const char *ns;
	int r = 0;

	if (!dry && d == SK_RUN_RESUME) {
		/* The marker is right as it is: rewriting it as "running"
		 * would turn a half-done cleanup back into a shift phase.
		 * "incomplete" is a shift phase that ended: running again. */
		if (m->st == SK_STATE_INCOMPLETE)
			r = sk_marker_write(e, SK_STATE_RUNNING);
		if (r < 0)
			return r;
		e->journal.active = true;
	} else if (!dry) {
		if (!m->found)
			snprintf(e->marker_name, sizeof(e->marker_name),
				 "trusted." SK_MARKER_SUFFIX);
		r = sk_marker_write(e, SK_STATE_RUNNING);
		if (r == -EPERM && !m->found) {
			snprintf(e->marker_name, sizeof(e->marker_name),
				 "user." SK_MARKER_SUFFIX);
			r = sk_marker_write(e, SK_STATE_RUNNING);
		}
		if (r < 0)
			return r;
		e->journal.active = true;
	}
	ns = e->marker_name[0] ? e->marker_name : "trusted.";
	snprintf(e->journal.intent_name, sizeof(e->journal.intent_name),
		 "%.*s%s", (int)(strchr(ns, '.') - ns + 1), ns, INTENT_SUFFIX);
	e->journal.need_cleanup = need_cleanup;
	e->journal.engine = e;
	return 0;
}

/*
 * Step 6: run the phases, the marker following: the shift phase; with
 * problems left (failed inodes, inodes left unchanged for ids without
 * image, mounts not entered) the tree is "incomplete" -- not done, and no
 * cleanup either: the intents of inodes whose result is ambiguous must
 * stay for the re-run, which resumes this run and re-examines what was
 * reported (docs/shift-engine.md).  Then the cleanup phase when an intent
 * outlived its inode ("cleanup"; errors there leave it so: a re-run
 * finishes it), and last "done", or "undone" after a --reverse: running
 * the same --reverse again must not shift the ids further.
 */
static int engine_run(struct sk_engine *e, bool dry)
{
	int r;

	if (e->phase == SK_PHASE_SHIFT) {
		r = run_phase(e, SK_PHASE_SHIFT);
		if (r < 0)
			return r;
		if (problems(e))
			return dry ? 0 : sk_marker_write(e, SK_STATE_INCOMPLETE);
	}
	if (e->cleanup && !dry) {
		r = sk_marker_write(e, SK_STATE_CLEANUP);
		if (r < 0)
			return r;
		r = run_phase(e, SK_PHASE_CLEANUP);
		if (r < 0 || e->stats.errors)
			return r;
	}
	if (dry)
		return 0;
	e->cleanup = false;
	return sk_marker_write(e, (e->opts->flags & SHIFT_REVERSE)
					  ? SK_STATE_UNDONE
					  : SK_STATE_DONE);
}

int sk_shift_tree(const char *path, const struct shift_options *opts,
		  const struct shift_idmap *marker_map,
		  struct shift_stats *ret_stats)
{
	struct sk_engine e = { .rootfd = -EBADF, .phase = SK_PHASE_SHIFT };
	bool dry = opts && (opts->flags & SHIFT_DRY_RUN);
	struct sk_marker m = { 0 };
	enum sk_decision d;
	int r;

	if (!path || !opts || !opts->map)
		return -EINVAL;
	if (!marker_map)
		marker_map = opts->map;
	pthread_mutex_init(&e.lock, NULL);
	e.opts = opts;
	e.ctx_opts = *opts;
	r = engine_pick(&e);
	if (r < 0)
		goto out;
	r = engine_lock(&e, path, dry);
	if (r < 0)
		goto out;
	e.marker_map = shift_idmap_to_string(marker_map);
	if (!e.marker_map) {
		r = -ENOMEM;
		goto out;
	}
	r = sk_marker_read(e.rootfd, e.marker_name, sizeof(e.marker_name), &m);
	if (r < 0)
		goto out;
	r = engine_decide(&e, &m, marker_map, &d);
	if (r < 0)
		goto out;
	if (d == SK_RUN_SKIP) {
		e.stats.already = true;
		goto out;
	}
	r = engine_start(&e);
	if (r < 0)
		goto out;
	r = engine_record(&e, &m, d, dry);
	if (r < 0)
		goto out;
	r = engine_run(&e, dry);
	if (r >= 0)
		r = problems(&e) ? 1 : 0;
out:
	engine_free(&e);
	free(m.map);
	if (ret_stats)
		*ret_stats = e.stats;
	return r;
}
