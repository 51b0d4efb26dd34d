/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A user namespace fd for an id map.
 *
 * The namespace needs a process to live in only until its maps are written
 * and /proc/PID/ns/user is opened.  That process is created with
 * clone(CLONE_NEWUSER | CLONE_VM) on a small private stack: sharing the
 * address space skips the page-table copy that makes fork() the expensive
 * part (~1 ms of ~1.5 ms).  The child only closes its copy of the pipe's
 * write end and blocks reading the pipe; it exits on EOF, so it also dies
 * when the caller dies (and we SIGKILL it once the namespace is open).  It
 * runs on a stack inside our frame and touches no libc state (raw syscalls
 * only, no errno).
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core-internal.h"

extern char **environ;

/* Enough for the child: it makes three syscalls. */
#define CHILD_STACK_SIZE (16 * 1024)

struct child_arg {
	int rfd;
	int wfd;
};

/*
 * Not instrumented: under ASan the child's frame would poison shadow
 * memory of the shared address space and never unpoison it (it leaves by
 * SYS_exit), which the caller would then trip over.
 */
__attribute__((no_sanitize_address)) static int userns_child(void *data)
{
	const struct child_arg *a = data;
	char c;

	/*
	 * Raw syscalls: with CLONE_VM we share the caller's TLS, so errno
	 * writes from libc wrappers would race with the caller.
	 */
	(void)syscall(SYS_close, a->wfd);
	(void)syscall(SYS_read, a->rfd, &c, 1);
	syscall(SYS_exit, 0);
	return 0;
}

static int write_file(const char *path, const char *buf, size_t len)
{
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	/* The kernel wants the whole map in one write. */
	n = write(fd, buf, len);
	if (n < 0)
		return negative_errno();
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

/* Run newuidmap/newgidmap PID A B N [A B N]... and check its status. */
static int run_newidmap(const char *helper, pid_t pid,
			const struct shift_idmap *map, enum shift_id_kind kind)
{
	unsigned n = shift_idmap_count(map, kind), i, k = 0;
	_cleanup_free_ char **argv = NULL;
	_cleanup_free_ char *nums = NULL;
	posix_spawn_file_actions_t fa;
	char pidbuf[16];
	pid_t child;
	int status, r;

	argv = calloc(3 + 3 * (size_t)n, sizeof(char *));
	nums = malloc((size_t)n * 3 * 12);
	if (!argv || !nums)
		return -ENOMEM;
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	argv[k++] = (char *)helper;
	argv[k++] = pidbuf;
	for (i = 0; i < n; i++) {
		struct shift_extent e;
		uint32_t v[3];

		r = shift_idmap_extent(map, kind, i, &e);
		if (r < 0)
			return r;
		/* uid_map order: id inside (disk) first, then outside (seen) */
		v[0] = e.disk;
		v[1] = e.seen;
		v[2] = e.count;
		for (unsigned j = 0; j < 3; j++) {
			char *s = nums + ((size_t)i * 3 + j) * 12;

			snprintf(s, 12, "%u", v[j]);
			argv[k++] = s;
		}
	}
	argv[k] = NULL;

	/* The library prints nothing: the helper's complaints go to the
	 * debug stream only. */
	r = posix_spawn_file_actions_init(&fa);
	if (r != 0)
		return -r;
	if (!sk_debug_enabled())
		r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO,
						     "/dev/null", O_WRONLY, 0);
	if (r == 0)
		r = posix_spawnp(&child, helper, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		sk_debug("Failed to run %s: %s", helper, strerror(r));
		return r == ENOENT ? -ENOENT : -r;
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		sk_debug("%s %d failed (status %d)", helper, (int)pid, status);
		return -EPERM;
	}
	return 0;
}

/* The caller's name for the /etc/subuid lookup (name or numeric uid). */
static void caller_name(char *buf, size_t size)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)getuid());
}

/* The caller's id that newuidmap/newgidmap map without a delegation:
 * its uid, and its primary group as passwd has it. */
static uint32_t own_id(unsigned kind)
{
	struct passwd *pw;

	if (kind == SHIFT_UID)
		return (uint32_t)getuid();
	pw = getpwuid(getuid());
	return pw ? (uint32_t)pw->pw_gid : (uint32_t)getgid();
}

static int write_maps(pid_t pid, const struct shift_idmap *map, bool direct)
{
	static const char *const files[2] = { "uid_map", "gid_map" };
	static const char *const helpers[2] = { "newuidmap", "newgidmap" };
	char path[64];
	unsigned k;
	int r;

	for (k = 0; k < 2; k++) {
		if (direct) {
			char buf[SHIFT_IDMAP_MAX_EXTENTS * 36 + 1];

			r = shift_idmap_format_proc(map, (enum shift_id_kind)k,
						    buf, sizeof(buf));
			if (r < 0)
				return r;
			snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid,
				 files[k]);
			r = write_file(path, buf, (size_t)r);
		} else {
			r = run_newidmap(helpers[k], pid, map,
					 (enum shift_id_kind)k);
		}
		if (r < 0) {
			sk_debug("Failed to write %s of %d: %s", files[k],
				 (int)pid, strerror(-r));
			return r;
		}
	}
	return 0;
}

int shift_userns_create(const struct shift_idmap *map)
{
	/* 16-byte alignment is what every ABI wants of a stack pointer. */
	char stack[CHILD_STACK_SIZE] __attribute__((aligned(16)));
	_cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
	struct child_arg arg;
	int pfd[2], status, fd = -EBADF, r;
	char path[64];
	bool direct;
	pid_t pid;

	if (!map)
		return -EINVAL;
	if (shift_idmap_count(map, SHIFT_UID) == 0 ||
	    shift_idmap_count(map, SHIFT_GID) == 0)
		return -EINVAL;

	direct = geteuid() == 0;
	if (!direct) {
		_cleanup_free_ struct shift_idmap *sub = shift_idmap_new();
		char user[64];

		if (!sub)
			return -ENOMEM;
		caller_name(user, sizeof(user));
		/* The caller's own uid and gid need no delegation: the
		 * helpers map them for anyone, one id each. */
		for (unsigned k = 0; k < 2; k++)
			for (unsigned i = 0; i < shift_idmap_count(map, k); i++) {
				struct shift_extent x;

				shift_idmap_extent(map, k, i, &x);
				if (x.count == 1 && x.seen == own_id(k))
					continue;
				r = shift_idmap_add(sub, k, x.disk, x.seen,
						    x.count, NULL);
				if (r < 0)
					return r;
			}
		r = shift_idmap_within_subid(sub, user);
		if (r < 0)
			return r;
		if (r == 0) {
			sk_debug("map is not within the subordinate ids of '%s'",
				 user);
			return -EPERM;
		}
	}

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return negative_errno();
	rfd = pfd[0];
	wfd = pfd[1];
	arg.rfd = rfd;
	arg.wfd = wfd;

	/*
	 * No exit signal: the caller's SIGCHLD handling never sees this
	 * child; we reap it with __WALL.
	 */
	pid = clone(userns_child, stack + sizeof(stack),
		    CLONE_NEWUSER | CLONE_VM, &arg);
	if (pid < 0)
		return negative_errno();

	r = write_maps(pid, map, direct);
	if (r >= 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = negative_errno();
	}

	/*
	 * EOF on the pipe ends the child.  Kill it as well: a fork() in
	 * another thread may hold a copy of the write end until it execs.
	 * The pid can't be reused before we reap it.
	 */
	wfd = safe_close(wfd);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR) {
			if (r >= 0)
				fd = safe_close(fd);
			return negative_errno();
		}
	if (r < 0)
		return r;
	return fd;
}

/* ------------------------------------------------------------------ */

struct cache_entry {
	struct shift_idmap *map;
	int fd;
};

struct shift_userns_cache {
	pthread_mutex_t lock;
	struct cache_entry *entries;
	size_t n, cap;
};

struct shift_userns_cache *shift_userns_cache_new(void)
{
	struct shift_userns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void shift_userns_cache_free(struct shift_userns_cache *cache)
{
	size_t i;

	if (!cache)
		return;
	for (i = 0; i < cache->n; i++) {
		shift_idmap_free(cache->entries[i].map);
		safe_close(cache->entries[i].fd);
	}
	free(cache->entries);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

int shift_userns_cache_get(struct shift_userns_cache *cache,
			   const struct shift_idmap *map)
{
	struct shift_idmap *copy;
	size_t i;
	int fd, r;

	if (!cache || !map)
		return -EINVAL;
	pthread_mutex_lock(&cache->lock);
	for (i = 0; i < cache->n; i++)
		if (shift_idmap_equal(cache->entries[i].map, map)) {
			fd = cache->entries[i].fd;
			pthread_mutex_unlock(&cache->lock);
			return fd;
		}
	if (cache->n == cache->cap) {
		size_t cap = cache->cap ? cache->cap * 2 : 4;
		struct cache_entry *e =
			realloc(cache->entries, cap * sizeof(*e));

		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		cache->entries = e;
		cache->cap = cap;
	}
	copy = shift_idmap_dup(map);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	fd = shift_userns_create(map);
	if (fd < 0) {
		shift_idmap_free(copy);
		r = fd;
		goto out;
	}
	cache->entries[cache->n].map = copy;
	cache->entries[cache->n].fd = fd;
	cache->n++;
	r = fd;
out:
	pthread_mutex_unlock(&cache->lock);
	return r;
}
