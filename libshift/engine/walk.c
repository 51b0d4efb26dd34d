/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The race-safe parallel tree walk.  It knows nothing of shifting: what is
 * done per directory, per entry and per problem is its caller's visitor
 * (struct sk_walk_ops, engine-internal.h; the engine's is in shift.c).
 *
 * Directories are read with getdents64 on an fd; every child is reached
 * relative to its parent's fd and never through a symlink: subdirectories
 * are opened O_DIRECTORY|O_NOFOLLOW, other entries are stat'ed and changed
 * by name with AT_SYMLINK_NOFOLLOW (one path component, relative to a
 * directory fd) or, when more than the owner changes, through an O_PATH fd
 * checked against that stat (the engine: inode.c, struct sk_target).  So
 * nothing outside the tree is ever reached, whatever is renamed or swapped
 * for a symlink meanwhile.  A child on another mount (st_dev or mount id
 * differ from the root's) is reported (ops->mount), not entered.
 *
 * Parallelism: the work is a stack of tasks shared by the walkers -- "walk
 * this subdirectory" and, for big directories, "handle these entries".  A
 * walker reading a directory pushes its subdirectories, splits a long run
 * of entries into chunks others may take, and handles the rest itself.
 * The stack (last in, first out) keeps the walk depth first, so pending
 * work grows with depth times fan-out, not with the size of the tree.  The
 * synchronous engine is the same walk with one walker, in the calling
 * thread.  The visitor's batch() may prefetch the inodes of each chunk
 * (the engine's executors: uring.c).
 *
 * Memory per walker: one getdents buffer and one entry array; per pending
 * task: a name; per open directory: a small struct.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/engine-internal.h"

#define DENTS_BUF_SIZE (32 * 1024)
/* Entries a walker hands out as one task of a big directory. */
#define CHUNK 64
/* A directory's first getdents slept (waited for the disk): the tree is
 * cold, and directory readahead (dirahead.c) runs for this long.  Outside
 * such a time, one directory in DIRAHEAD_SAMPLE is checked (a warm tree
 * then costs nearly nothing, a cold one is found soon). */
#define DIRAHEAD_HOLD_NS 100000000ull
#define DIRAHEAD_SAMPLE 16

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* A unit of work: walk the subdirectory names[0] of dir (n == 0), or
 * handle the n non-directory entries of dir. */
struct task {
	struct task *next;
	struct sk_dir *dir; /* referenced while the task lives */
	unsigned n;
	uint32_t *off;
	unsigned char *type;
	char *names;
};

struct walker;

struct walk {
	const struct sk_walk_params *p;
	const struct sk_walk_ops *ops;
	void *data;
	bool abort; /* a fatal error: every walker stops */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a task was pushed, or the walk ended */
	pthread_cond_t park; /* more walkers allowed, or the walk ended */
	struct task *top;
	unsigned active; /* walkers running a task */
	int error;	 /* first fatal error */
	struct walker *walkers;
	unsigned n;
	/* Walkers idx >= allowed wait (park) between tasks; see adapt(). */
	unsigned allowed, lo, cpus;
	uint64_t next_adapt_ns, last_ns, last_cpu_ns;
	/* Directory readahead until then (CLOCK_MONOTONIC_COARSE ns): a
	 * directory read waited for the disk not long before; read_dir(). */
	uint64_t cold_until;
	int dirahead_fd; /* the block device, for sk_dirahead(), or -1 */
	bool ahead_always; /* LIBSHIFT_DIRAHEAD=always (tests) */
	struct sk_stat root_st;
	/* This pass shifts the inodes numbered [ino_lo, ino_hi) (see
	 * sk_walk_passes(); one pass: everything). */
	uint64_t ino_lo, ino_hi;
};

struct walker {
	struct walk *w;
	unsigned idx;
	pthread_t tid;
	void *wst; /* the visitor's state of this walker */
	unsigned long dirs; /* directories read, for DIRAHEAD_SAMPLE */
	unsigned long ahead_dirs, ahead_reqs; /* read ahead: sk_dirahead() */
	char dents[DENTS_BUF_SIZE];
	struct sk_dentry ents[DENTS_BUF_SIZE / 24];
	struct sk_dentry subs[DENTS_BUF_SIZE / 24];
};

void sk_dir_ref(struct sk_dir *dir)
{
	__atomic_add_fetch(&dir->refs, 1, __ATOMIC_RELAXED);
}

void sk_dir_unref(struct sk_dir *dir)
{
	if (!dir || __atomic_sub_fetch(&dir->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	safe_close(dir->fd);
	free(dir->path);
	free(dir);
}

static struct sk_dir *dir_new(int fd, const struct sk_dir *parent,
			      const char *name)
{
	struct sk_dir *d = calloc(1, sizeof(*d));
	size_t nl = strlen(name);

	if (!d)
		return NULL;
	d->fd = fd;
	d->refs = 1;
	if (!parent) {
		d->path = strdup(name);
		d->path_len = nl;
	} else if (strcmp(parent->path, ".") == 0) {
		d->path = strdup(name);
		d->path_len = nl;
		d->depth = 1;
	} else {
		d->path_len = parent->path_len + 1 + nl;
		d->path = malloc(d->path_len + 1);
		if (d->path) {
			memcpy(d->path, parent->path, parent->path_len);
			d->path[parent->path_len] = '/';
			memcpy(d->path + parent->path_len + 1, name, nl + 1);
		}
		d->depth = parent->depth + 1;
	}
	if (!d->path) {
		free(d);
		return NULL;
	}
	return d;
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

static void walk_error(struct walker *wk, const char *dir, const char *name,
		       const char *op, int err)
{
	struct walk *w = wk->w;

	if (w->ops->error)
		w->ops->error(w->data, wk->wst, dir, name, op, err);
}

static void walk_mount(struct walker *wk, const char *dir, const char *name)
{
	struct walk *w = wk->w;

	if (w->ops->mount)
		w->ops->mount(w->data, wk->wst, dir, name);
}

/* One entry of dir the walk does not enter: stat it by name, check that it
 * is on the root's mount, visit it. */
static void walk_entry(struct walker *wk, struct sk_dir *dir, const char *name)
{
	struct walk *w = wk->w;
	struct sk_stat st;
	int r;

	r = sk_statx_at(dir->fd, name, &st);
	if (r == -ENOENT)
		return; /* removed meanwhile */
	if (r < 0) {
		walk_error(wk, dir->path, name, "stat", r);
		return;
	}
	if (sk_other_mount(&w->p->root, &st)) {
		walk_mount(wk, dir->path, name);
		return;
	}
	if (w->ops->entry)
		w->ops->entry(w->data, wk->wst, dir, name, &st);
}

/* ------------------------------------------------------------------ */
/* The task stack                                                      */

static struct task *task_new(struct sk_dir *dir, const struct sk_dentry *ents,
			     size_t n, bool subdir)
{
	size_t names = 0, head, i, pos = 0;
	struct task *t;
	char *p;

	for (i = 0; i < n; i++)
		names += strlen(ents[i].name) + 1;
	head = (sizeof(*t) + 7) & ~(size_t)7;
	t = malloc(head + n * sizeof(uint32_t) + n + names);
	if (!t)
		return NULL;
	p = (char *)t + head;
	*t = (struct task){ .dir = dir, .n = subdir ? 0 : (unsigned)n };
	t->off = (uint32_t *)(void *)p;
	p += n * sizeof(uint32_t);
	t->type = (unsigned char *)p;
	p += n;
	t->names = p;
	for (i = 0; i < n; i++) {
		size_t len = strlen(ents[i].name) + 1;

		t->off[i] = (uint32_t)pos;
		t->type[i] = ents[i].d_type;
		memcpy(t->names + pos, ents[i].name, len);
		pos += len;
	}
	sk_dir_ref(dir);
	return t;
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	sk_dir_unref(t->dir);
	free(t);
}

static void walk_fail(struct walk *w, int err)
{
	pthread_mutex_lock(&w->lock);
	if (!w->error)
		w->error = err;
	w->abort = true;
	pthread_cond_broadcast(&w->cond);
	pthread_cond_broadcast(&w->park);
	pthread_mutex_unlock(&w->lock);
}

static int push(struct walk *w, struct sk_dir *dir,
		const struct sk_dentry *ents, size_t n, bool subdir)
{
	struct task *t = task_new(dir, ents, n, subdir);

	if (!t) {
		walk_fail(w, -ENOMEM);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->lock);
	t->next = w->top;
	w->top = t;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/*
 * How many walkers may run, under w->lock.  Walkers that wait for reads
 * (cold cache) want many more walkers than CPUs, to keep reads in flight;
 * walkers that only burn CPU (warm cache) lose to their own number
 * (context switches, contention on the journal and dentry locks).  So
 * every 50 ms: the process busy on (nearly) every CPU -> only `lo` (2 per
 * CPU) run; clearly less -> all of them.  An explicit --threads N always
 * runs N.  (Whether to read directories ahead is decided by whether
 * directory reads sleep, in read_dir(): CPU time says nothing about it
 * once readahead works, as the walk is then CPU-bound cold too.)
 */
static void adapt(struct walk *w)
{
	uint64_t t = now_ns(), c, util;

	if (w->lo >= w->n || t < w->next_adapt_ns)
		return;
	c = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (w->last_ns && t > w->last_ns && c >= w->last_cpu_ns) {
		util = (c - w->last_cpu_ns) * 100 / ((t - w->last_ns) * w->cpus);
		if (util >= 90) {
			w->allowed = w->lo;
		} else if (util < 75) {
			if (w->allowed != w->n) {
				w->allowed = w->n;
				pthread_cond_broadcast(&w->park);
			}
		}
	}
	w->last_ns = t;
	w->last_cpu_ns = c;
	w->next_adapt_ns = t + 50000000ull;
}

static bool walk_over(const struct walk *w)
{
	return w->error || (!w->top && w->active == 0);
}

/* The next task for walker idx, or NULL when the walk is over: nothing
 * left and no walker running a task that could push more, or a fatal
 * error. */
static struct task *pop(struct walk *w, unsigned idx, bool finished_one)
{
	struct task *t = NULL;

	pthread_mutex_lock(&w->lock);
	if (finished_one)
		w->active--;
	adapt(w);
	while (idx >= w->allowed && !walk_over(w))
		pthread_cond_wait(&w->park, &w->lock);
	for (;;) {
		if (w->error)
			break;
		if (w->top) {
			t = w->top;
			w->top = t->next;
			w->active++;
			break;
		}
		if (w->active == 0)
			break;
		pthread_cond_wait(&w->cond, &w->lock);
	}
	if (!t) {
		pthread_cond_broadcast(&w->cond);
		pthread_cond_broadcast(&w->park);
	}
	pthread_mutex_unlock(&w->lock);
	return t;
}

/* ------------------------------------------------------------------ */
/* Walking                                                             */

/* Whether this pass shifts the inode numbered ino.  Subdirectories are
 * read in every pass; an entry the walk could not number (0) in each. */
static bool in_pass(const struct walk *w, uint64_t ino)
{
	return ino == 0 || (ino >= w->ino_lo && ino < w->ino_hi);
}

static void handle_entries(struct walker *wk, struct sk_dir *dir,
			   const struct sk_dentry *ents, size_t n)
{
	struct walk *w = wk->w;
	const struct sk_walk_ops *ops = w->ops;

	if (ops->batch)
		ops->batch(w->data, wk->wst, wk->idx, dir, ents, n);
	for (size_t i = 0; i < n && !w->abort; i++)
		walk_entry(wk, dir, ents[i].name);
	if (ops->batch_done)
		ops->batch_done(w->data, wk->wst, wk->idx);
}

/* How often the calling thread has slept (voluntary context switches):
 * a syscall that made it sleep waited, for the disk nearly always.  Wall
 * time would also count being preempted. */
static long thread_sleeps(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) < 0 ? 0 : ru.ru_nvcsw;
}

static int dentry_cmp(const void *a, const void *b)
{
	const struct sk_dentry *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void read_dir(struct walker *wk, struct sk_dir *dir)
{
	struct walk *w = wk->w;

	/* Is the tree cold?  Checked on the directory's first read; its
	 * subdirectories are then read ahead (every batch of them). */
	bool ahead = w->ahead_always;
	bool check = !ahead && w->dirahead_fd >= 0 &&
		     (wk->dirs++ % DIRAHEAD_SAMPLE == 0 ||
		      now_ns() < __atomic_load_n(&w->cold_until,
						 __ATOMIC_RELAXED));

	for (;;) {
		size_t nb = 0, ns = 0, first;
		long n, off, sleeps = 0;

		if (check)
			sleeps = thread_sleeps();
		n = syscall(SYS_getdents64, dir->fd, wk->dents,
			    sizeof(wk->dents));
		if (check) {
			uint64_t t = now_ns();

			if (thread_sleeps() != sleeps)
				__atomic_store_n(&w->cold_until,
						 t + DIRAHEAD_HOLD_NS,
						 __ATOMIC_RELAXED);
			ahead = t < __atomic_load_n(&w->cold_until,
						    __ATOMIC_RELAXED);
			check = false;
		}
		if (n < 0) {
			walk_error(wk, dir->path, NULL, "read directory",
				   negative_errno());
			return;
		}
		if (n == 0)
			return;
		for (off = 0; off < n;) {
			struct linux_dirent64 *d =
				(struct linux_dirent64 *)(wk->dents + off);
			struct sk_dentry de;

			off += d->d_reclen;
			if (d->d_name[0] == '.' &&
			    (d->d_name[1] == 0 ||
			     (d->d_name[1] == '.' && d->d_name[2] == 0)))
				continue;
			if (d->d_type == DT_UNKNOWN) {
				struct stat sb;

				if (fstatat(dir->fd, d->d_name, &sb,
					    AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISDIR(sb.st_mode))
					d->d_type = DT_DIR;
			}
			de = (struct sk_dentry){
				.name = d->d_name,
				.ino = d->d_ino,
				.d_type = d->d_type,
			};
			if (d->d_type == DT_DIR)
				wk->subs[ns++] = de;
			else if (in_pass(w, de.ino))
				wk->ents[nb++] = de;
		}
		/* Subdirectories first, so that others may start on them
		 * while we go on; the lowest inode on top of the stack. */
		qsort(wk->subs, ns, sizeof(wk->subs[0]), dentry_cmp);
		if (ahead && ns > 0)
			wk->ahead_dirs += sk_dirahead(w->dirahead_fd, dir->fd,
						      wk->subs, ns,
						      &wk->ahead_reqs);
		while (ns > 0)
			if (push(w, dir, &wk->subs[--ns], 1, true) < 0)
				return;
		/* In inode order: on a cold cache the inode table is then
		 * read front to back (ext4, XFS), and the inode blocks the
		 * chowns dirty are journaled and written back in order. */
		qsort(wk->ents, nb, sizeof(wk->ents[0]), dentry_cmp);
		/* A long run of entries: chunks for idle walkers (pushed
		 * last first, so they are taken in inode order), the first
		 * one for us. */
		first = nb;
		if (w->n > 1 && nb > CHUNK) {
			first = CHUNK;
			for (size_t i = (nb - 1) / CHUNK * CHUNK; i >= CHUNK;
			     i -= CHUNK)
				if (push(w, dir, wk->ents + i,
					 nb - i < CHUNK ? nb - i : CHUNK,
					 false) < 0)
					return;
		}
		if (first)
			handle_entries(wk, dir, wk->ents, first);
		if (w->abort)
			return;
	}
}

/*
 * A directory to read.  O_NOATIME: reading it must not touch its atime
 * (the shift leaves timestamps alone) -- nor cost a journaled inode
 * update per directory.  Refused (EPERM) where the caller may not use it,
 * e.g. a directory owned by an id outside a user namespace's map.
 */
static int dir_open(int dirfd, const char *name, int flags)
{
	int fd;

	flags |= O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	fd = openat(dirfd, name, flags | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags);
	return fd;
}

static void walk_subdir(struct walker *wk, struct sk_dir *parent,
			const char *name)
{
	struct walk *w = wk->w;
	_cleanup_close_ int fd = -EBADF;
	struct sk_dir *dir;
	struct sk_stat st;
	int r;

	fd = dir_open(parent->fd, name, O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		if (errno == ELOOP || errno == ENOTDIR) { /* swapped meanwhile */
			struct sk_dentry de = { .name = name,
						.d_type = DT_UNKNOWN };

			handle_entries(wk, parent, &de, 1);
			return;
		}
		walk_error(wk, parent->path, name, "open directory",
			   negative_errno());
		return;
	}
	r = sk_statx_fd(fd, &st);
	if (r < 0) {
		walk_error(wk, parent->path, name, "stat", r);
		return;
	}
	if (sk_other_mount(&w->p->root, &st)) {
		walk_mount(wk, parent->path, name);
		return;
	}
	dir = dir_new(fd, parent, name);
	if (!dir) {
		walk_fail(w, -ENOMEM);
		return;
	}
	TAKE_FD(fd);
	if (in_pass(w, st.ino) && w->ops->dir)
		w->ops->dir(w->data, wk->wst, dir, &st);
	read_dir(wk, dir);
	sk_dir_unref(dir);
}

static void run_task(struct walker *wk, struct task *t)
{
	if (t->n == 0) {
		walk_subdir(wk, t->dir, t->names);
	} else {
		struct sk_dentry ents[CHUNK];

		for (unsigned i = 0; i < t->n; i++)
			ents[i] = (struct sk_dentry){
				.name = t->names + t->off[i],
				.d_type = t->type[i],
			};
		handle_entries(wk, t->dir, ents, t->n);
	}
	task_free(t);
}

/* Run tasks until the walk is over; finished: the walker has just done
 * one (counted in w->active). */
static void walker_loop(struct walker *wk, bool finished)
{
	struct task *t;

	while ((t = pop(wk->w, wk->idx, finished))) {
		run_task(wk, t);
		finished = true;
	}
}

static void *walker_main(void *arg)
{
	walker_loop(arg, false);
	return NULL;
}

/* The walkers and their visitor states; walker 0 is the calling thread. */
static int walkers_new(struct walk *w, unsigned n)
{
	w->walkers = calloc(n, sizeof(*w->walkers));
	if (!w->walkers)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct walker *wk = &w->walkers[i];

		wk->w = w;
		wk->idx = i;
		wk->wst = w->ops->walker(w->data, i);
		if (!wk->wst)
			return -ENOMEM;
	}
	w->n = n;
	w->allowed = n;
	w->lo = n;
	w->cpus = w->p->cpus ? w->p->cpus : 1;
	if (w->p->busy_walkers && w->p->busy_walkers < n)
		w->lo = w->p->busy_walkers;
	return 0;
}

/* One walk over the tree, shifting the inodes of [w->ino_lo, w->ino_hi). */
static int walk_pass(struct walk *w, struct sk_dir *root)
{
	unsigned started = 1;

	if (lseek(root->fd, 0, SEEK_SET) < 0)
		return negative_errno();
	if (in_pass(w, w->root_st.ino) && w->ops->dir)
		w->ops->dir(w->data, w->walkers[0].wst, root, &w->root_st);

	/* The root's entries are read by walker 0 as a task of its own:
	 * every walker then runs the same loop. */
	w->active = 1;
	for (unsigned i = 1; i < w->n; i++) {
		if (pthread_create(&w->walkers[i].tid, NULL, walker_main,
				   &w->walkers[i]) != 0)
			break;
		started++;
	}
	read_dir(&w->walkers[0], root);
	walker_loop(&w->walkers[0], true);
	for (unsigned i = 1; i < started; i++)
		pthread_join(w->walkers[i].tid, NULL);
	return w->error;
}

int sk_walk(const struct sk_walk_params *p, const struct sk_walk_ops *ops,
	    void *data)
{
	struct walk w = {
		.p = p,
		.ops = ops,
		.data = data,
		.dirahead_fd = p->dirahead_fd,
		.ahead_always = p->dirahead_fd >= 0 && p->dirahead_always,
	};
	struct sk_dir *root;
	unsigned passes = p->passes > 1 ? p->passes : 1;
	int fd, r;

	if (passes > SK_PASSES_MAX)
		return -EINVAL;
	r = sk_statx_fd(p->rootfd, &w.root_st);
	if (r < 0)
		return r;
	fd = dir_open(p->rootfd, ".", 0);
	if (fd < 0)
		return negative_errno();
	root = dir_new(fd, NULL, ".");
	if (!root) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	pthread_cond_init(&w.park, NULL);
	r = walkers_new(&w, p->walkers ? p->walkers : 1);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < passes && r == 0 && !w.abort; i++) {
		w.ino_lo = passes > 1 ? p->bounds[i] : 0;
		w.ino_hi = passes > 1 ? p->bounds[i + 1] : UINT64_MAX;
		r = walk_pass(&w, root);
	}
	if (w.dirahead_fd >= 0) {
		unsigned long d = 0, q = 0;

		for (unsigned i = 0; i < w.n; i++) {
			d += w.walkers[i].ahead_dirs;
			q += w.walkers[i].ahead_reqs;
		}
		sk_debug("directory readahead: %lu directories in %lu requests",
			 d, q);
	}
	sk_debug("walk: %u pass(es)", passes);
out:
	/* Tasks left after a failure hold directory references. */
	while (w.top) {
		struct task *t = w.top;

		w.top = t->next;
		task_free(t);
	}
	free(w.walkers);
	pthread_cond_destroy(&w.cond);
	pthread_cond_destroy(&w.park);
	pthread_mutex_destroy(&w.lock);
	sk_dir_unref(root);
	return r;
}
