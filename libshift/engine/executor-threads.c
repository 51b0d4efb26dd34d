// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The "threads" executor: the parallel walk (walk.c) with several walkers,
 * each handling the entries it reads or takes from the shared task stack
 * with its own inode context, exactly as the sync executor's single walker
 * does, so results, journal and events are the same; only the order
 * differs.  The syscalls are ~1-3 us each and block on cold inode reads,
 * so parallelism is what pays (docs/benchmarks.md).
 */
#include <unistd.h>

#include "engine/engine-internal.h"

unsigned sk_cpus(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return cpus < 1 ? 1 : (unsigned)cpus;
}

unsigned sk_walkers_default(const struct sk_engine *e)
{
	unsigned n;

	if (e->opts && e->opts->threads)
		return e->opts->threads > 1024 ? 1024 : e->opts->threads;
	n = sk_cpus() * 4;
	if (n < 8)
		n = 8;
	return n > 64 ? 64 : n;
}

static int threads_start(struct sk_engine *e, void **ret_state)
{
	e->workers = sk_walkers_default(e);
	sk_debug("threads executor: %u walkers", e->workers);
	*ret_state = e;
	return 0;
}

static void threads_stop(void *state)
{
}

const struct sk_executor sk_executor_threads = {
	.name = "threads",
	.start = threads_start,
	.stop = threads_stop,
};
