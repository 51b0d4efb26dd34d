/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How long an idmapped mount takes, namespace creation included:
 *   baseline  fork + unshare(CLONE_NEWUSER) + write maps + open ns,
 *             then open_tree + mount_setattr + move_mount (written here)
 *   ours      shift_mount_idmapped() (clone(CLONE_VM) namespace)
 *   overlay   a 10-layer overlay via shift_mount_overlay_userns() with one
 *             cached namespace
 * Median and p90 over N runs (default 200), in a private mount namespace on
 * a tmpfs under a temp dir; each mount is detached again outside the timing.
 *
 *   bench-mount [N]
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/macros.h"
#include "shift.h"
#include "util/syscalls.h"

#define LAYERS 10
static const char *const MAP = "0:100000:65536";

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double median, p90;
};

static struct stats stats_of(double *v, int n)
{
	struct stats s;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	s.p90 = v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	return s;
}

static _noreturn_ void die(const char *what)
{
	fprintf(stderr, "bench-mount: %s: %m\n", what);
	exit(1);
}

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die(path);
	close(fd);
}

/* The textbook sequence: fork a child that unshares its user namespace. */
static int baseline_userns(void)
{
	int ready[2], release[2], fd;
	char path[64], c;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(release, O_CLOEXEC) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		close(release[1]);
		(void)!read(release[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	if (read(ready[0], &c, 1) != 1)
		die("child");
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	write_str(path, "0 100000 65536\n");
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	write_str(path, "0 100000 65536\n");
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	close(release[1]);
	close(ready[0]);
	if (waitpid(pid, NULL, 0) != pid)
		die("waitpid");
	return fd;
}

static void baseline_mount(const char *src, const char *dst)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };
	int userns = baseline_userns(), tree;

	tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		die("open_tree");
	attr.userns_fd = (uint64_t)userns;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		die("mount_setattr");
	if (move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		die("move_mount");
	close(tree);
	close(userns);
}

static void unmount(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0)
		die("umount");
}

static void report(const char *name, double *v, int n, struct stats *ret)
{
	*ret = stats_of(v, n);
	printf("%-34s median %8.1f us   p90 %8.1f us\n", name, ret->median,
	       ret->p90);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench-mount.XXXXXX", path[64];
	const char *lower[LAYERS + 1];
	char names[LAYERS][16];
	struct shift_userns_cache *cache;
	struct shift_idmap *map;
	struct stats base, ours, ovl_s, ns_s;
	double *t;
	int n = argc > 1 ? atoi(argv[1]) : 200, i, r, userns;

	if (n < 1)
		n = 200;
	if (geteuid() != 0) {
		fprintf(stderr, "bench-mount: needs root (skipped)\n");
		return 77;
	}
	map = shift_idmap_new();
	if (!map || shift_idmap_parse(map, MAP, NULL) < 0)
		die("map");
	t = calloc((size_t)n, sizeof(*t));
	if (!t)
		die("calloc");
	if (!mkdtemp(dir))
		die("mkdtemp");
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, NULL) < 0 || chdir(dir) < 0)
		die("private mount namespace");
	if (mkdir("src", 0755) < 0 || mkdir("dst", 0755) < 0 ||
	    mkdir("merged", 0755) < 0)
		die("mkdir");
	for (i = 0; i < LAYERS; i++) {
		snprintf(names[i], sizeof(names[i]), "L%d", i);
		if (mkdir(names[i], 0755) < 0)
			die("mkdir");
		snprintf(path, sizeof(path), "L%d/f%d", i, i);
		close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
		lower[i] = names[i];
	}
	lower[LAYERS] = NULL;

	printf("idmapped mounts, %d runs each, map %s\n", n, MAP);

	for (i = 0; i < n; i++) {
		double t0 = now_us();

		baseline_mount("src", "dst");
		t[i] = now_us() - t0;
		unmount("dst");
	}
	report("baseline (fork+unshare, mount)", t, n, &base);

	for (i = 0; i < n; i++) {
		double t0 = now_us();

		userns = shift_userns_create(map);
		t[i] = now_us() - t0;
		if (userns < 0)
			die("shift_userns_create");
		close(userns);
	}
	report("  shift_userns_create alone", t, n, &ns_s);

	for (i = 0; i < n; i++) {
		double t0 = now_us();

		r = shift_mount_idmapped("src", "dst", map, 0);
		t[i] = now_us() - t0;
		if (r < 0) {
			errno = -r;
			die("shift_mount_idmapped");
		}
		unmount("dst");
	}
	report("shift_mount_idmapped", t, n, &ours);

	cache = shift_userns_cache_new();
	userns = cache ? shift_userns_cache_get(cache, map) : -ENOMEM;
	if (userns < 0)
		die("userns cache");
	for (i = 0; i < n; i++) {
		struct shift_overlay ovl = { .lower = lower };
		double t0 = now_us();

		r = shift_mount_overlay_userns(&ovl, "merged", map, userns, 0,
					       NULL);
		t[i] = now_us() - t0;
		if (r < 0) {
			errno = -r;
			die("shift_mount_overlay_userns");
		}
		unmount("merged");
	}
	report("10-layer overlay (cached userns)", t, n, &ovl_s);
	shift_userns_cache_free(cache);

	printf("ratio baseline/ours (median)       %8.2fx\n",
	       base.median / ours.median);
	printf("target: shift_mount_idmapped median <= 500 us: %s\n",
	       ours.median <= 500 ? "met" : "MISSED");

	free(t);
	shift_idmap_free(map);
	/* Leaving the namespace would drop the mounts; the dir is ours. */
	if (chdir("/") < 0 || umount2(dir, MNT_DETACH) < 0 || rmdir(dir) < 0)
		die("cleanup");
	return 0;
}
