// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The "threads" executor: a pool of workers running the per-entry work
 * (open by fd, statx, xattrs, fchownat/fchmodat/fsetxattr) while the walker
 * keeps reading directories.  The syscalls are ~1-3 us each and block on
 * cold inode reads, so parallelism is what pays (docs/benchmarks.md).
 *
 * Everything a worker does goes through sk_engine_entry() with its own
 * context, exactly as the sync executor does in the walking thread, so the
 * result, the journal and the events are the same; only the order differs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor-threads.h"

/* Queue bound in entries: a few MB of names at most. */
#define POOL_QUEUE_MAX 16384

struct sk_pool {
	struct sk_engine *e;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a batch is queued, or stopping */
	pthread_cond_t idle; /* room in the queue, or a batch finished */
	struct sk_batch *head, *tail;
	size_t queued;	 /* entries in the queue */
	size_t busy;	 /* batches queued or being worked on */
	int error;	 /* first fatal error of a worker */
	bool stopping;
	unsigned n, started;
	pthread_t *tids;
	struct shift_inode_ctx **ctxs;
};

unsigned sk_pool_default_threads(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n;

	if (cpus < 1)
		cpus = 1;
	n = (unsigned)cpus * 2;
	if (n < 4)
		n = 4;
	return n > 64 ? 64 : n;
}

struct sk_batch *sk_batch_new(struct sk_dir *dir, const struct sk_dentry *ents,
			      size_t n, size_t extra_size)
{
	size_t names = 0, head, i, pos = 0;
	struct sk_batch *b;
	char *p;

	for (i = 0; i < n; i++)
		names += strlen(ents[i].name) + 1;
	/* header, extra (aligned), offsets, types, names */
	head = (sizeof(*b) + 15) & ~(size_t)15;
	b = malloc(head + n * extra_size + n * sizeof(uint32_t) + n + names);
	if (!b)
		return NULL;
	p = (char *)b + head;
	*b = (struct sk_batch){ .dir = dir, .n = n };
	b->extra = extra_size ? p : NULL;
	p += n * extra_size;
	b->off = (uint32_t *)(void *)p;
	p += n * sizeof(uint32_t);
	b->type = (unsigned char *)p;
	p += n;
	b->names = p;
	for (i = 0; i < n; i++) {
		size_t len = strlen(ents[i].name) + 1;

		b->off[i] = (uint32_t)pos;
		b->type[i] = ents[i].d_type;
		memcpy(b->names + pos, ents[i].name, len);
		pos += len;
	}
	sk_dir_ref(dir);
	return b;
}

void sk_batch_free(struct sk_batch *b)
{
	if (!b)
		return;
	sk_dir_unref(b->dir);
	free(b);
}

static void *worker(void *arg)
{
	struct sk_pool *p = arg;
	struct shift_inode_ctx *ctx;
	unsigned me;

	pthread_mutex_lock(&p->lock);
	me = p->started++;
	ctx = p->ctxs[me];
	for (;;) {
		struct sk_batch *b;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->head)
			break;
		b = p->head;
		p->head = b->next;
		if (!p->head)
			p->tail = NULL;
		p->queued -= b->n;
		pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->lock);

		/* As in the sync executor, an inode's failure is an event
		 * (sk_engine_entry reported it), never the end of the run. */
		for (size_t i = 0; i < b->n && !p->e->abort; i++)
			(void)sk_engine_entry(p->e, ctx, b->dir,
					      b->names + b->off[i],
					      b->type[i]);
		sk_batch_free(b);

		pthread_mutex_lock(&p->lock);
		p->busy--;
		pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

unsigned sk_pool_threads(const struct sk_pool *p)
{
	return p->n;
}

void sk_pool_free(struct sk_pool *p)
{
	struct sk_batch *b;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	/* Queued work is dropped: stop() after a failure must not wait for
	 * the rest of the tree. */
	while ((b = p->head)) {
		p->head = b->next;
		p->busy--;
		sk_batch_free(b);
	}
	p->tail = NULL;
	p->queued = 0;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->tids[i], NULL);
	/* The contexts belong to the engine (sk_engine_ctx_new), which sums
	 * their counters and frees them. */
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->tids);
	free(p->ctxs);
	free(p);
}

int sk_pool_new(struct sk_engine *e, unsigned threads, struct sk_pool **ret)
{
	struct sk_pool *p;
	unsigned i;
	int r = 0;

	if (threads == 0)
		threads = sk_pool_default_threads();
	if (threads > 1024)
		threads = 1024;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->e = e;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->tids = calloc(threads, sizeof(*p->tids));
	p->ctxs = calloc(threads, sizeof(*p->ctxs));
	if (!p->tids || !p->ctxs) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < threads; i++) {
		p->ctxs[i] = sk_engine_ctx_new(e);
		if (!p->ctxs[i]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	for (i = 0; i < threads; i++) {
		r = -pthread_create(&p->tids[i], NULL, worker, p);
		if (r < 0)
			break;
		p->n++;
	}
	/* Fewer threads than asked is still a pool; none is a failure. */
	if (p->n == 0)
		goto fail;
	sk_debug("threads executor: %u workers", p->n);
	*ret = p;
	return 0;
fail:
	if (p->n == 0) {
		free(p->tids);
		free(p->ctxs);
		pthread_cond_destroy(&p->work);
		pthread_cond_destroy(&p->idle);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return r < 0 ? r : -ENOMEM;
	}
	sk_pool_free(p);
	return r;
}

int sk_pool_push(struct sk_pool *p, struct sk_batch *b)
{
	int r;

	pthread_mutex_lock(&p->lock);
	while (p->queued >= POOL_QUEUE_MAX && !p->error)
		pthread_cond_wait(&p->idle, &p->lock);
	r = p->error;
	if (r == 0) {
		b->next = NULL;
		if (p->tail)
			p->tail->next = b;
		else
			p->head = b;
		p->tail = b;
		p->queued += b->n;
		p->busy++;
		pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		sk_batch_free(b);
	return r;
}

int sk_pool_drain(struct sk_pool *p)
{
	int r;

	pthread_mutex_lock(&p->lock);
	while (p->busy > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	r = p->error;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* ------------------------------------------------------------------ */
/* The executor                                                        */
/* ------------------------------------------------------------------ */

static int threads_start(struct sk_engine *e, void **ret_state)
{
	struct sk_pool *p;
	int r;

	r = sk_pool_new(e, e->opts ? e->opts->threads : 0, &p);
	if (r < 0)
		return r;
	*ret_state = p;
	return 0;
}

static int threads_submit(void *state, struct sk_dir *dir,
			  const struct sk_dentry *ents, size_t n)
{
	struct sk_pool *p = state;

	/* Spread a big getdents batch over several workers. */
	for (size_t i = 0; i < n; i += SK_BATCH_MAX) {
		size_t k = n - i < SK_BATCH_MAX ? n - i : SK_BATCH_MAX;
		struct sk_batch *b = sk_batch_new(dir, ents + i, k, 0);
		int r;

		if (!b)
			return -ENOMEM;
		r = sk_pool_push(p, b);
		if (r < 0)
			return r;
	}
	return 0;
}

static int threads_drain(void *state)
{
	return sk_pool_drain(state);
}

static void threads_stop(void *state)
{
	sk_pool_free(state);
}

const struct sk_executor sk_executor_threads = {
	.name = "threads",
	.start = threads_start,
	.submit = threads_submit,
	.drain = threads_drain,
	.stop = threads_stop,
};
