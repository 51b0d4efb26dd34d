// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The "uring" executor: all of libshift's io_uring code.
 *
 * io_uring has no chown opcode, so it cannot do the writes.  What it can do
 * is keep many inode reads in flight: for every batch of directory entries
 * the walker hands over, one IORING_OP_STATX per entry (relative to the
 * directory fd, never following a symlink) is queued, and when a batch's
 * reads are all complete it goes to the worker pool of the threads
 * executor, which does the real per-entry work (sk_engine_entry(): open by
 * fd, statx, xattrs, fchownat, fchmodat, fsetxattr) on inodes that are now
 * in the cache.  The statx results are only a prefetch and are not used:
 * the decisions are taken on the worker's own statx through the opened fd,
 * exactly as in the sync engine, so results are identical.
 *
 * On a warm cache this costs: the kernel punts every STATX to an io-wq
 * worker.  docs/benchmarks.md has the figures and why "auto" chooses what
 * it chooses.
 *
 * io_uring may be unusable: a kernel without it (ENOSYS), the
 * kernel.io_uring_disabled sysctl or a seccomp filter (EPERM or ENOSYS),
 * RLIMIT_MEMLOCK on old kernels (ENOMEM), or STATX missing from the probe
 * (EOPNOTSUPP).  start() then fails with -EOPNOTSUPP (the cause goes to the
 * debug log) and the engine falls back (auto) or reports that the engine
 * is not available (--engine=uring, exit status 3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "executor-threads.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* Reads in flight at most (and the SQ size). */
#define UR_DEPTH 256

struct ur_state {
	struct sk_engine *e;
	struct io_uring ring;
	bool ring_ok;
	unsigned inflight; /* STATX queued or submitted, not completed */
	unsigned unsubmitted;
	struct sk_pool *pool;
	int error;
};

/* What makes io_uring unusable here, in words, for the debug log. */
static const char *ur_why(int err)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	if (v == 2)
		return "disabled by sysctl kernel.io_uring_disabled=2";
	if (v == 1 && err == -EPERM)
		return "restricted by sysctl kernel.io_uring_disabled=1";
	if (err == -ENOSYS)
		return "not in this kernel, or blocked by seccomp";
	if (err == -EPERM)
		return "not permitted (seccomp or LSM)";
	if (err == -EOPNOTSUPP)
		return "no STATX opcode";
	return strerror(-err);
}

/* A batch whose reads are all done goes to the workers. */
static int ur_complete(struct ur_state *s, struct sk_batch *b)
{
	int r;

	if (--b->pending > 0)
		return 0;
	r = sk_pool_push(s->pool, b);
	if (r < 0 && !s->error)
		s->error = r;
	return r;
}

/* Reap completions: wait for at least `want` of them. */
static int ur_reap(struct ur_state *s, unsigned want)
{
	struct io_uring_cqe *cqe;
	unsigned got = 0;
	int r;

	if (s->unsubmitted) {
		r = io_uring_submit(&s->ring);
		if (r < 0)
			return r;
		s->unsubmitted = 0;
	}
	while (s->inflight > 0) {
		if (got < want)
			r = io_uring_wait_cqe(&s->ring, &cqe);
		else
			r = io_uring_peek_cqe(&s->ring, &cqe);
		if (r == -EAGAIN || r == -EINTR) {
			if (got >= want)
				break;
			continue;
		}
		if (r < 0)
			return r;
		/* cqe->res is only a prefetch result: the worker redoes the
		 * statx on the opened inode and reports errors itself. */
		struct sk_batch *b = io_uring_cqe_get_data(cqe);

		io_uring_cqe_seen(&s->ring, cqe);
		s->inflight--;
		got++;
		(void)ur_complete(s, b);
	}
	return s->error;
}

static void ur_free(struct ur_state *s)
{
	struct io_uring_cqe *cqe;

	if (!s)
		return;
	if (s->ring_ok) {
		/* The kernel still writes into batches with reads in flight:
		 * wait for them before anything is freed. */
		if (s->unsubmitted)
			(void)io_uring_submit(&s->ring);
		while (s->inflight > 0) {
			int r = io_uring_wait_cqe(&s->ring, &cqe);

			if (r == -EINTR || r == -EAGAIN)
				continue;
			if (r < 0)
				break;
			struct sk_batch *b = io_uring_cqe_get_data(cqe);

			io_uring_cqe_seen(&s->ring, cqe);
			s->inflight--;
			if (--b->pending == 0)
				sk_batch_free(b);
		}
		io_uring_queue_exit(&s->ring);
	}
	sk_pool_free(s->pool);
	free(s);
}

static int ur_start(struct sk_engine *e, void **ret_state)
{
	struct io_uring_probe *probe;
	struct ur_state *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->e = e;
	r = io_uring_queue_init(UR_DEPTH, &s->ring, 0);
	if (r < 0) {
		/* Whatever the cause (ENOSYS, EPERM, ENOMEM from memlock), to
		 * the engine it is one thing: this executor is not available
		 * here (auto falls back, the tool exits "not supported"). */
		sk_debug("uring executor: io_uring_setup: %s", ur_why(r));
		free(s);
		return -EOPNOTSUPP;
	}
	s->ring_ok = true;
	probe = io_uring_get_probe_ring(&s->ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_STATX)) {
		sk_debug("uring executor: %s", ur_why(-EOPNOTSUPP));
		if (probe)
			io_uring_free_probe(probe);
		ur_free(s);
		return -EOPNOTSUPP;
	}
	io_uring_free_probe(probe);
	r = sk_pool_new(e, e->opts ? e->opts->threads : 0, &s->pool);
	if (r < 0) {
		ur_free(s);
		return r;
	}
	sk_debug("uring executor: %u statx in flight, %u workers", UR_DEPTH,
		 sk_pool_threads(s->pool));
	*ret_state = s;
	return 0;
}

static int ur_queue(struct ur_state *s, struct sk_batch *b)
{
	struct statx *sx = b->extra;

	b->pending = (unsigned)b->n;
	for (size_t i = 0; i < b->n; i++) {
		struct io_uring_sqe *sqe;
		int r;

		while (s->inflight >= UR_DEPTH ||
		       !(sqe = io_uring_get_sqe(&s->ring))) {
			r = ur_reap(s, 1);
			if (r < 0) {
				/* entries not queued are dropped with b, once
				 * the queued ones complete */
				b->pending -= (unsigned)(b->n - i);
				if (b->pending == 0)
					sk_batch_free(b);
				return r;
			}
		}
		io_uring_prep_statx(sqe, b->dir->fd, b->names + b->off[i],
				    AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
				    STATX_TYPE | STATX_MODE | STATX_UID |
					    STATX_GID | STATX_INO |
					    STATX_NLINK,
				    &sx[i]);
		io_uring_sqe_set_data(sqe, b);
		s->inflight++;
		s->unsubmitted++;
	}
	return 0;
}

static int ur_submit(void *state, struct sk_dir *dir,
		     const struct sk_dentry *ents, size_t n)
{
	struct ur_state *s = state;
	int r;

	if (s->error)
		return s->error;
	for (size_t i = 0; i < n; i += SK_BATCH_MAX) {
		size_t k = n - i < SK_BATCH_MAX ? n - i : SK_BATCH_MAX;
		struct sk_batch *b;

		b = sk_batch_new(dir, ents + i, k, sizeof(struct statx));
		if (!b)
			return -ENOMEM;
		r = ur_queue(s, b);
		if (r < 0)
			return r;
	}
	/* Hand the kernel this directory's reads now, and pass on whatever
	 * finished meanwhile, without waiting. */
	return ur_reap(s, 0);
}

static int ur_drain(void *state)
{
	struct ur_state *s = state;
	int r;

	r = ur_reap(s, s->inflight + s->unsubmitted);
	if (r < 0)
		return r;
	return sk_pool_drain(s->pool);
}

static void ur_stop(void *state)
{
	ur_free(state);
}

const struct sk_executor sk_executor_uring = {
	.name = "uring",
	.start = ur_start,
	.submit = ur_submit,
	.drain = ur_drain,
	.stop = ur_stop,
};

#endif /* HAVE_LIBURING */
