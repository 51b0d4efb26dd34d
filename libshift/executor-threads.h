/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to libshift: the worker pool behind the "threads" executor, also
 * used by the io_uring executor (uring.c) for the writes.
 *
 * Work is handed over in batches: the non-directory entries of (part of) one
 * getdents batch of one directory, names copied, the directory referenced.
 * Workers pull batches and run sk_engine_entry() on each entry with their
 * own inode context.  The queue is bounded (by entries), so memory stays
 * bounded however large the tree is: sk_pool_push() waits for room.
 */
#ifndef LIBSHIFT_EXECUTOR_THREADS_H
#define LIBSHIFT_EXECUTOR_THREADS_H

#include "shift-engine.h"

struct sk_batch {
	struct sk_batch *next;
	struct sk_dir *dir; /* referenced while the batch lives */
	size_t n;
	unsigned pending; /* executor-private (uring: statx in flight) */
	uint32_t *off;	  /* name offsets into names */
	unsigned char *type;
	char *names;
	void *extra; /* executor-private per-entry space (uring: statx) */
};

/*
 * One allocation holding the entries ents[0..n) of dir (names copied) and
 * extra_size bytes per entry for the caller.  The directory is referenced;
 * sk_batch_free() drops the reference.  NULL on ENOMEM.
 */
struct sk_batch *sk_batch_new(struct sk_dir *dir, const struct sk_dentry *ents,
			      size_t n, size_t extra_size);
void sk_batch_free(struct sk_batch *b);

struct sk_pool;

/* A pool of threads workers (0: automatic), each with its own context. */
int sk_pool_new(struct sk_engine *e, unsigned threads, struct sk_pool **ret);
/* Queue a batch (the pool owns it from now on); waits while the queue is
 * full.  Returns 0, or the first error a worker hit (then frees b). */
int sk_pool_push(struct sk_pool *p, struct sk_batch *b);
/* Wait until every batch pushed so far is done; returns the first fatal
 * error a worker hit, or 0. */
int sk_pool_drain(struct sk_pool *p);
/* Stop and join the workers, free any queued batches (the workers'
 * contexts stay with the engine, which frees them). */
void sk_pool_free(struct sk_pool *p);
unsigned sk_pool_threads(const struct sk_pool *p);

/* The default number of workers: twice the CPUs, at least 4, at most 64
 * (the walk blocks on cold inode reads: more threads keep more in flight). */
unsigned sk_pool_default_threads(void);

/* Largest batch handed to one worker: a huge directory is spread out. */
#define SK_BATCH_MAX 64

#endif
