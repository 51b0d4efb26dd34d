// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The "uring" executor: all of libshift's io_uring code.
 *
 * io_uring has no chown opcode, so it cannot do the writes.  What it can do
 * is keep many inode reads in flight: before a walker handles the entries
 * it read from a directory, one IORING_OP_STATX per entry (relative to the
 * directory fd, never following a symlink) goes to the walker's own ring,
 * and the kernel's io-wq workers load those inodes while the walker works
 * through the entries one by one (walk.c: statx by name, xattrs, fchownat)
 * on inodes that are by then in the cache.  The statx results are only a
 * prefetch and are not used: the decisions are taken on the walker's own
 * statx, exactly as in the sync engine, so results are identical.
 *
 * On a warm cache the prefetch costs: the kernel punts every STATX to an
 * io-wq worker.  docs/benchmarks.md has the figures and why "auto" chooses
 * what it chooses.
 *
 * io_uring may be unusable: a kernel without it (ENOSYS), the
 * kernel.io_uring_disabled sysctl or a seccomp filter (EPERM or ENOSYS),
 * RLIMIT_MEMLOCK on old kernels (ENOMEM), or STATX missing from the probe
 * (EOPNOTSUPP).  start() then fails with -EOPNOTSUPP (the cause goes to the
 * debug log) and --engine=uring reports that the engine is not available
 * (exit status 3); "auto" does not try it (docs/benchmarks.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine-internal.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* Reads in flight per walker at most (and its SQ size). */
#define UR_DEPTH 256

struct ur_ring {
	struct io_uring ring;
	bool ok;
	unsigned inflight; /* submitted, not yet completed */
	struct statx sx;   /* where every prefetch writes; never read */
};

struct ur_state {
	unsigned n;
	struct ur_ring *rings;
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

/* Wait for every read of this ring. */
static void ur_wait_all(struct ur_ring *r)
{
	struct io_uring_cqe *cqe;

	while (r->inflight > 0) {
		int k = io_uring_wait_cqe(&r->ring, &cqe);

		if (k == -EINTR || k == -EAGAIN)
			continue;
		if (k < 0)
			break; /* the ring is broken: nothing more will come */
		io_uring_cqe_seen(&r->ring, cqe);
		r->inflight--;
	}
}

static void ur_free(struct ur_state *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->rings[i].ok)
			continue;
		ur_wait_all(&s->rings[i]);
		io_uring_queue_exit(&s->rings[i].ring);
	}
	free(s->rings);
	free(s);
}

static int ur_start(struct sk_engine *e, void **ret_state)
{
	struct io_uring_probe *probe;
	struct ur_state *s;
	unsigned n = sk_walkers_default(e);
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->rings = calloc(n, sizeof(*s->rings));
	if (!s->rings) {
		free(s);
		return -ENOMEM;
	}
	for (s->n = 0; s->n < n; s->n++) {
		r = io_uring_queue_init(UR_DEPTH, &s->rings[s->n].ring, 0);
		if (r < 0) {
			/* Whatever the cause (ENOSYS, EPERM, ENOMEM from
			 * memlock), to the engine it is one thing: this
			 * executor is not available here (the tool exits
			 * "not supported"). */
			sk_debug("uring executor: io_uring_setup: %s",
				 ur_why(r));
			ur_free(s);
			return -EOPNOTSUPP;
		}
		s->rings[s->n].ok = true;
	}
	probe = io_uring_get_probe_ring(&s->rings[0].ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_STATX)) {
		sk_debug("uring executor: %s", ur_why(-EOPNOTSUPP));
		if (probe)
			io_uring_free_probe(probe);
		ur_free(s);
		return -EOPNOTSUPP;
	}
	io_uring_free_probe(probe);
	e->workers = n;
	sk_debug("uring executor: %u walkers, %u statx in flight each", n,
		 UR_DEPTH);
	*ret_state = s;
	return 0;
}

static void ur_prefetch(void *state, unsigned w, int dirfd,
			const struct sk_dentry *ents, size_t n)
{
	struct ur_state *s = state;
	struct ur_ring *r = &s->rings[w];
	struct io_uring_sqe *sqe;
	unsigned queued = 0;

	for (size_t i = 0; i < n && r->inflight + queued < UR_DEPTH; i++) {
		sqe = io_uring_get_sqe(&r->ring);
		if (!sqe)
			break;
		io_uring_prep_statx(sqe, dirfd, ents[i].name,
				    AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
				    STATX_TYPE | STATX_MODE | STATX_UID |
					    STATX_GID | STATX_INO | STATX_NLINK,
				    &r->sx);
		queued++;
	}
	/* The kernel copies the names while submitting: the caller may
	 * reuse them when this returns.  A prefetch that can't be submitted
	 * is simply not done. */
	if (queued && io_uring_submit(&r->ring) >= 0)
		r->inflight += queued;
}

static void ur_prefetch_done(void *state, unsigned w)
{
	struct ur_state *s = state;

	ur_wait_all(&s->rings[w]);
}

static void ur_stop(void *state)
{
	ur_free(state);
}

const struct sk_executor sk_executor_uring = {
	.name = "uring",
	.start = ur_start,
	.prefetch = ur_prefetch,
	.prefetch_done = ur_prefetch_done,
	.stop = ur_stop,
};

#endif /* HAVE_LIBURING */
