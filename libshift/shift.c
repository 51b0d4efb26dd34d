/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shift engine: the run's marker on the tree's root (what is being
 * done, resumable), the phases (shift, then cleanup of progress records
 * when needed), executor selection and the synchronous executor, and the
 * unprivileged variant through a user namespace.  docs/shift-engine.md
 * explains why a crash at any point and a re-run end as one run.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "shift-engine.h"

#define MARKER_SUFFIX "shiftkit.shift"
#define INTENT_SUFFIX "shiftkit.inode"
#define MARKER_MAX 8192

/* ------------------------------------------------------------------ */
/* The synchronous executor: the reference.                            */

static int sync_start(struct sk_engine *e, void **ret)
{
	*ret = e;
	return 0;
}

static int sync_submit(void *state, struct sk_dir *dir,
		       const struct sk_dentry *ents, size_t n)
{
	struct sk_engine *e = state;
	size_t i;

	for (i = 0; i < n; i++)
		sk_engine_entry(e, e->ctx, dir, ents[i].name, ents[i].d_type);
	return 0;
}

static int sync_drain(void *state)
{
	return 0;
}

static void sync_stop(void *state)
{
}

const struct sk_executor sk_executor_sync = {
	.name = "sync",
	.start = sync_start,
	.submit = sync_submit,
	.drain = sync_drain,
	.stop = sync_stop,
};

/*
 * "auto" tries the executors fastest first (docs/benchmarks.md: io_uring
 * STATX prefetch + the pool beat the pool alone, cold and warm) and falls
 * back when one can't start (io_uring disabled by sysctl or seccomp).
 */
static const struct sk_executor *const auto_order[] = {
#ifdef HAVE_LIBURING
	&sk_executor_uring,
#endif
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

/* ------------------------------------------------------------------ */
/* Worker contexts                                                     */

struct ctx_list {
	struct shift_inode_ctx *ctx;
	struct ctx_list *next;
};

static struct ctx_list *ctxs; /* guarded by the engine lock */

struct shift_inode_ctx *sk_engine_ctx_new(struct sk_engine *e)
{
	struct shift_inode_ctx *ctx = shift_inode_ctx_new(&e->ctx_opts);
	struct ctx_list *l;

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
	l->next = ctxs;
	ctxs = l;
	pthread_mutex_unlock(&e->lock);
	return ctx;
}

static void ctxs_phase(enum sk_phase phase)
{
	struct ctx_list *l;

	for (l = ctxs; l; l = l->next)
		l->ctx->phase = phase;
}

static void ctxs_collect(struct sk_engine *e, bool free_them)
{
	struct ctx_list *l, *next;

	for (l = ctxs; l; l = next) {
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
		ctxs = NULL;
}

/* ------------------------------------------------------------------ */
/* The marker                                                          */

struct marker {
	bool found;
	char state[16];
	uint64_t gen;
	char dir[16];
	char unmapped[16];
	int cleanup;
	char *map;
};

static const char *policy_name(enum shift_unmapped p)
{
	switch (p) {
	case SHIFT_UNMAPPED_KEEP:
		return "keep";
	case SHIFT_UNMAPPED_OVERFLOW:
		return "overflow";
	default:
		return "error";
	}
}

static int marker_read(int fd, char *ret_name, size_t name_size,
		       struct marker *m)
{
	static const char *const prefixes[] = { "trusted.", "user." };
	char buf[MARKER_MAX + 1];
	unsigned i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < ARRAY_SIZE(prefixes); i++) {
		char name[32];
		ssize_t n;
		int off = 0;

		snprintf(name, sizeof(name), "%s%s", prefixes[i], MARKER_SUFFIX);
		n = fgetxattr(fd, name, buf, MARKER_MAX);
		if (n < 0) {
			if (errno == ENODATA || errno == EOPNOTSUPP ||
			    errno == EPERM)
				continue;
			return negative_errno();
		}
		buf[n] = 0;
		if (sscanf(buf,
			   "shiftkit 1 state=%15s gen=%" SCNx64
			   " dir=%15s unmapped=%15s cleanup=%d map=%n",
			   m->state, &m->gen, m->dir, m->unmapped, &m->cleanup,
			   &off) < 5 ||
		    off == 0)
			return -EBADMSG;
		m->map = strdup(buf + off);
		if (!m->map)
			return -ENOMEM;
		m->found = true;
		snprintf(ret_name, name_size, "%s", name);
		return 0;
	}
	return 0;
}

static int marker_write(struct sk_engine *e, const char *state)
{
	char buf[MARKER_MAX];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "shiftkit 1 state=%s gen=%016" PRIx64
		     " dir=%s unmapped=%s cleanup=%d map=%s",
		     state, e->journal.gen,
		     (e->opts->flags & SHIFT_REVERSE) ? "reverse" : "forward",
		     policy_name(e->opts->unmapped), e->cleanup ? 1 : 0,
		     e->marker_map);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	if (fsetxattr(e->rootfd, e->marker_name, buf, (size_t)n, 0) < 0)
		return negative_errno();
	return 0;
}

/* The first intent that outlives its inode: record that a cleanup
 * phase is needed before it is written. */
static int need_cleanup(struct sk_engine *e)
{
	int r = 0;

	pthread_mutex_lock(&e->lock);
	if (!e->cleanup) {
		e->cleanup = true;
		r = marker_write(e, "running");
		if (r < 0)
			e->cleanup = false;
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

int shift_tree_marker(const char *path, char **ret_state, char **ret_map)
{
	_cleanup_close_ int fd = -EBADF;
	struct marker m;
	char name[32];
	int r;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = marker_read(fd, name, sizeof(name), &m);
	if (r < 0)
		return r;
	if (!m.found)
		return -ENODATA;
	if (ret_state) {
		*ret_state = strdup(m.state);
		if (!*ret_state) {
			free(m.map);
			return -ENOMEM;
		}
	}
	if (ret_map)
		*ret_map = m.map;
	else
		free(m.map);
	return 0;
}

static bool same_map(const char *s, const struct shift_idmap *map)
{
	struct shift_idmap *m = shift_idmap_new();
	bool eq;

	if (!m)
		return false;
	eq = shift_idmap_parse(m, s, NULL) == 0 && shift_idmap_equal(m, map);
	shift_idmap_free(m);
	return eq;
}

/* ------------------------------------------------------------------ */
/* shift_tree                                                          */

static void engine_free(struct sk_engine *e)
{
	size_t i;

	if (e->exec && e->exec_state)
		e->exec->stop(e->exec_state);
	ctxs_collect(e, true);
	e->ctx = NULL;
	for (i = 0; i < e->bufs_n; i++)
		free(e->bufs[i]);
	free(e->bufs);
	sk_engine_links_report(e);
	free(e->marker_map);
	safe_close(e->rootfd);
	pthread_mutex_destroy(&e->lock);
}

static int run_phase(struct sk_engine *e, enum sk_phase phase)
{
	int r;

	e->phase = phase;
	ctxs_phase(phase);
	r = sk_walk(e);
	sk_engine_links_report(e);
	ctxs_collect(e, false);
	return r;
}

int shift_tree(const char *path, const struct shift_options *opts,
	       struct shift_stats *ret_stats)
{
	struct sk_engine e = { .rootfd = -EBADF };
	bool dry = opts && (opts->flags & SHIFT_DRY_RUN);
	bool reverse = opts && (opts->flags & SHIFT_REVERSE);
	struct marker m = { 0 };
	struct sk_stat st;
	int r;

	if (!path || !opts || !opts->map)
		return -EINVAL;
	pthread_mutex_init(&e.lock, NULL);
	e.opts = opts;
	e.ctx_opts = *opts;
	e.exec = pick_executor(opts->engine);
	if (!e.exec) {
		r = opts->engine && (strcmp(opts->engine, "threads") == 0 ||
				     strcmp(opts->engine, "uring") == 0)
			    ? -EOPNOTSUPP
			    : -EINVAL;
		goto out;
	}
	e.stats.engine = e.exec->name;
	e.rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e.rootfd < 0) {
		r = negative_errno();
		goto out;
	}
	r = sk_statx_fd(e.rootfd, &st);
	if (r < 0)
		goto out;
	e.root_dev = st.dev;
	e.root_mnt_id = st.mnt_id;
	e.marker_map = shift_idmap_to_string(opts->map);
	if (!e.marker_map) {
		r = -ENOMEM;
		goto out;
	}

	r = marker_read(e.rootfd, e.marker_name, sizeof(e.marker_name), &m);
	if (r < 0)
		goto out;
	e.phase = SK_PHASE_SHIFT;
	if (m.found) {
		bool same = same_map(m.map, opts->map);
		bool same_dir = strcmp(m.dir, reverse ? "reverse" : "forward") == 0;

		if (strcmp(m.state, "undone") == 0) {
			/* A completed --reverse: the tree holds the original
			 * ids.  The same undo again is a no-op; anything else
			 * starts afresh. */
			if (same && reverse) {
				e.stats.already = true;
				r = 0;
				goto out;
			}
			m.found = false;
		} else if (strcmp(m.state, "done") != 0) {
			if (!same || !same_dir ||
			    strcmp(m.unmapped, policy_name(opts->unmapped)) != 0) {
				r = -EBUSY;
				goto out;
			}
			e.journal.resumed = true;
			e.journal.gen = m.gen;
			e.cleanup = m.cleanup;
			if (strcmp(m.state, "cleanup") == 0)
				e.phase = SK_PHASE_CLEANUP;
			e.stats.resumed = true;
		} else if (same && !reverse) {
			e.stats.already = true;
			r = 0;
			goto out;
		} else if (!same && !(opts->flags & SHIFT_FORCE)) {
			r = -EEXIST;
			goto out;
		}
	}
	if (!e.journal.resumed && getrandom(&e.journal.gen,
					    sizeof(e.journal.gen), 0) < 0) {
		r = negative_errno();
		goto out;
	}

	/* The executor first: one that can't start (io_uring disabled)
	 * must fail before anything is recorded on the tree. */
	e.ctx = sk_engine_ctx_new(&e);
	if (!e.ctx) {
		r = -ENOMEM;
		goto out;
	}
	r = e.exec->start(&e, &e.exec_state);
	for (size_t i = 1; r < 0 && engine_is_auto(opts->engine) &&
			   i < ARRAY_SIZE(auto_order);
	     i++) {
		sk_debug("engine '%s' can't start (%s), trying '%s'",
			 e.exec->name, strerror(-r), auto_order[i]->name);
		e.exec = auto_order[i];
		e.stats.engine = e.exec->name;
		r = e.exec->start(&e, &e.exec_state);
	}
	if (r < 0) {
		e.exec_state = NULL;
		goto out;
	}

	/* Record the run before the first change; the namespace of the
	 * record: trusted.* when we may, user.* inside a user namespace. */
	if (!dry && e.journal.resumed) {
		/* The marker is right as it is: rewriting it as "running"
		 * would turn a half-done cleanup back into a shift phase. */
		e.journal.active = true;
	} else if (!dry) {
		if (!m.found)
			snprintf(e.marker_name, sizeof(e.marker_name),
				 "trusted." MARKER_SUFFIX);
		r = marker_write(&e, "running");
		if (r == -EPERM && !m.found) {
			snprintf(e.marker_name, sizeof(e.marker_name),
				 "user." MARKER_SUFFIX);
			r = marker_write(&e, "running");
		}
		if (r < 0)
			goto out;
		e.journal.active = true;
	}
	snprintf(e.journal.intent_name, sizeof(e.journal.intent_name), "%.*s%s",
		 (int)(strchr(e.marker_name[0] ? e.marker_name : "trusted.",
			      '.') -
		       (e.marker_name[0] ? e.marker_name : "trusted.") + 1),
		 e.marker_name[0] ? e.marker_name : "trusted.", INTENT_SUFFIX);
	e.journal.need_cleanup = need_cleanup;
	e.journal.engine = &e;

	if (e.phase == SK_PHASE_SHIFT) {
		r = run_phase(&e, SK_PHASE_SHIFT);
		if (r < 0)
			goto out;
		if (e.stats.errors)
			goto done; /* stays "running": a re-run finishes it */
	}
	if (e.cleanup && !dry) {
		r = marker_write(&e, "cleanup");
		if (r < 0)
			goto out;
		r = run_phase(&e, SK_PHASE_CLEANUP);
		if (r < 0)
			goto out;
		if (e.stats.errors)
			goto done;
	}
	if (!dry) {
		/* A finished undo stays recorded too ("undone"): running
		 * the same --reverse again must not shift the ids further. */
		e.cleanup = false;
		r = marker_write(&e, reverse ? "undone" : "done");
		if (r < 0)
			goto out;
	}
done:
	r = (e.stats.errors || e.stats.mountpoints ||
	     (e.stats.unmapped && opts->unmapped == SHIFT_UNMAPPED_ERROR))
		    ? 1
		    : 0;
out:
	engine_free(&e);
	free(m.map);
	if (ret_stats)
		*ret_stats = e.stats;
	return r;
}

/* ------------------------------------------------------------------ */
/* Unprivileged: inside a user namespace made of the caller's delegation */

static bool range_within(const struct shift_idmap *ns, enum shift_id_kind k,
			 uint32_t start, uint32_t count)
{
	uint64_t id = start, end = (uint64_t)start + count;

	/* walk the range extent by extent of the namespace map */
	while (id < end) {
		unsigned i, n = shift_idmap_count(ns, k);
		bool found = false;

		for (i = 0; i < n; i++) {
			struct shift_extent x;

			shift_idmap_extent(ns, k, i, &x);
			if (id >= x.seen && id < (uint64_t)x.seen + x.count) {
				id = (uint64_t)x.seen + x.count;
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

static bool map_within(const struct shift_idmap *ns,
		       const struct shift_idmap *map)
{
	unsigned k, i;

	for (k = 0; k < 2; k++)
		for (i = 0; i < shift_idmap_count(map, k); i++) {
			struct shift_extent x;

			shift_idmap_extent(map, k, i, &x);
			if (!range_within(ns, k, x.disk, x.count) ||
			    !range_within(ns, k, x.seen, x.count))
				return false;
		}
	return true;
}

struct ns_events {
	const struct shift_options *outer;
	const struct shift_idmap *ns;
};

static uint32_t ns_to_host(const struct shift_idmap *ns, enum shift_id_kind k,
			   uint32_t id)
{
	uint32_t v;

	return shift_idmap_to_seen(ns, k, id, &v) == 0 ? v : id;
}

static void ns_on_event(const struct shift_event *ev, void *userdata)
{
	const struct ns_events *n = userdata;
	struct shift_event x = *ev;

	x.id = ns_to_host(n->ns, ev->kind, ev->id);
	x.uid = ns_to_host(n->ns, SHIFT_UID, ev->uid);
	x.gid = ns_to_host(n->ns, SHIFT_GID, ev->gid);
	x.new_uid = ns_to_host(n->ns, SHIFT_UID, ev->new_uid);
	x.new_gid = ns_to_host(n->ns, SHIFT_GID, ev->new_gid);
	if (ev->type != SHIFT_EVENT_UNMAPPED)
		x.id = ev->id;
	n->outer->on_event(&x, n->outer->userdata);
}

static int build_ns_map(struct shift_idmap *ns)
{
	struct passwd *pw = getpwuid(getuid());
	struct shift_idmap *sub = shift_idmap_new();
	unsigned k, i;
	int r;

	if (!sub)
		return -ENOMEM;
	r = pw ? shift_idmap_from_subid(sub, pw->pw_name) : -ENOENT;
	if (r < 0 && pw) {
		char uidstr[16];

		snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)getuid());
		r = shift_idmap_from_subid(sub, uidstr);
	}
	if (r < 0)
		goto out;
	/* The delegation only (namespace id 0 = its first id): what
	 * shift_userns_create() accepts without privilege. */
	for (k = 0; k < 2 && r >= 0; k++)
		for (i = 0; i < shift_idmap_count(sub, k) && r >= 0; i++) {
			struct shift_extent x;

			shift_idmap_extent(sub, k, i, &x);
			r = shift_idmap_add(ns, k, x.disk, x.seen, x.count,
					    NULL);
		}
out:
	shift_idmap_free(sub);
	return r < 0 ? r : 0;
}

int shift_tree_userns(const char *path, const struct shift_options *opts,
		      struct shift_stats *ret_stats)
{
	struct shift_idmap *ns = NULL, *inv = NULL, *t = NULL, *inner = NULL;
	_cleanup_close_ int userns = -EBADF;
	int pipefd[2] = { -1, -1 };
	struct shift_stats st = { 0 };
	pid_t pid;
	int r, status;

	if (!path || !opts || !opts->map)
		return -EINVAL;
	ns = shift_idmap_new();
	if (!ns)
		return -ENOMEM;
	r = build_ns_map(ns);
	if (r < 0)
		goto out;
	if (!map_within(ns, opts->map)) {
		r = -EPERM;
		goto out;
	}
	inv = shift_idmap_invert(ns);
	t = inv ? shift_idmap_compose(ns, opts->map) : NULL;
	inner = t ? shift_idmap_compose(t, inv) : NULL;
	if (!inner) {
		r = -ENOMEM;
		goto out;
	}
	userns = shift_userns_create(ns);
	if (userns < 0) {
		r = userns;
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = negative_errno();
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		goto out;
	}
	if (pid == 0) {
		struct shift_options o = *opts;
		struct ns_events ne = { .outer = opts, .ns = ns };
		uint32_t v;
		int rr;

		close(pipefd[0]);
		if (setns(userns, CLONE_NEWUSER) < 0)
			_exit(100 + (errno & 0x7f));
		o.map = inner;
		if (opts->unmapped == SHIFT_UNMAPPED_OVERFLOW) {
			if (shift_idmap_to_disk(ns, SHIFT_UID,
						opts->overflow_uid ? opts->overflow_uid
								   : SHIFT_OVERFLOW_ID,
						&v) < 0)
				_exit(100 + ERANGE);
			o.overflow_uid = v ? v : SHIFT_OVERFLOW_ID;
			if (shift_idmap_to_disk(ns, SHIFT_GID,
						opts->overflow_gid ? opts->overflow_gid
								   : SHIFT_OVERFLOW_ID,
						&v) < 0)
				_exit(100 + ERANGE);
			o.overflow_gid = v ? v : SHIFT_OVERFLOW_ID;
		}
		if (opts->on_event) {
			o.on_event = ns_on_event;
			o.userdata = &ne;
		}
		/* progress keeps its userdata: no ids in it */
		if (opts->on_progress && !opts->on_event)
			o.userdata = opts->userdata;
		rr = shift_tree(path, &o, &st);
		if (write(pipefd[1], &st, sizeof(st)) != sizeof(st))
			_exit(99);
		if (rr < 0)
			_exit(100 + ((-rr) & 0x7f));
		_exit(rr);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	if (read(pipefd[0], &st, sizeof(st)) != sizeof(st))
		memset(&st, 0, sizeof(st));
	st.engine = NULL;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			r = negative_errno();
			goto out;
		}
	if (!WIFEXITED(status))
		r = -EINTR;
	else if (WEXITSTATUS(status) >= 100)
		r = -(WEXITSTATUS(status) - 100);
	else if (WEXITSTATUS(status) == 99)
		r = -EIO;
	else
		r = WEXITSTATUS(status);
	if (ret_stats)
		*ret_stats = st;
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	shift_idmap_free(ns);
	shift_idmap_free(inv);
	shift_idmap_free(t);
	shift_idmap_free(inner);
	return r;
}
