/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* User namespaces for a map: the maps are right, no process is left. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shift.h"
#include "lib.h"


/* Children of this process, from /proc/self/task/ * /children. */
static int count_children(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], buf[4096];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%4095s", buf) == 1)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* SIGKILL and reap every child of ours (after a failure only). */
static void kill_children(void)
{
	FILE *f;
	char path[64];
	int pid;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
		 (int)getpid());
	f = fopen(path, "re");
	if (!f)
		return;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 0)
			kill(pid, SIGKILL);
	fclose(f);
	while (waitpid(-1, NULL, __WALL) > 0)
		;
}

/*
 * The maps of the namespace fd as seen from inside it: a child joins it and
 * sends /proc/self/uid_map and gid_map back.  (Independent of
 * shift_idmap_from_userns_path(), to check the library against the kernel.)
 */
static int fd_userns_maps(int fd, struct shift_idmap *out)
{
	static const char *const files[2] = { "/proc/self/uid_map",
					      "/proc/self/gid_map" };
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(pfd[0]);
		if (setns(fd, CLONE_NEWUSER) < 0)
			_exit(1);
		for (int k = 0; k < 2; k++) {
			char buf[16384];
			int f = open(files[k], O_RDONLY);
			ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf));

			if (n < 0)
				_exit(2);
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] == '\n')
					buf[i] = k ? 'G' : 'U';
			if (write(pfd[1], buf, (size_t)n) != n)
				_exit(3);
		}
		_exit(0);
	}
	close(pfd[1]);
	{
		char buf[32768], *p;
		ssize_t len = 0, n;
		unsigned long a, b, c;
		char kind;
		int used;

		while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
			len += n;
		close(pfd[0]);
		buf[len] = '\0';
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			return -EIO;
		for (p = buf; sscanf(p, "%lu %lu %lu%c%n", &a, &b, &c, &kind,
				     &used) == 4; p += used) {
			int r = shift_idmap_add(out, kind == 'U' ? SHIFT_UID : SHIFT_GID,
						(uint32_t)a, (uint32_t)b,
						(uint32_t)c, NULL);
			if (r < 0)
				return r;
		}
		if (*p)
			return -EINVAL;
	}
	return 0;
}

TEST(create_has_maps)
{
	struct shift_idmap *m, *got;
	int fd;

	if (geteuid() != 0)
		SKIP("needs root");
	m = map_of("u:0:100000:65536 g:0:200000:1000 g:1000:300000:5");
	got = shift_idmap_new();
	fd = shift_userns_create(m);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ_INT(fd_userns_maps(fd, got), 0);
		CHECK(shift_idmap_equal(m, got));
		CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		close(fd);
	}
	shift_idmap_free(m);
	shift_idmap_free(got);
}

/* The library's own reader agrees with the kernel (what --userns uses). */
TEST(read_back_with_from_userns_path)
{
	struct shift_idmap *m, *got;
	char path[64];
	int fd;

	if (geteuid() != 0)
		SKIP("needs root");
	m = map_of("u:0:100000:65536 g:0:200000:1000 g:1000:300000:5");
	got = shift_idmap_new();
	fd = shift_userns_create(m);
	CHECK(fd >= 0);
	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		CHECK_EQ_INT(shift_idmap_from_userns_path(got, path), 0);
		CHECK(shift_idmap_equal(m, got));
		close(fd);
	}
	shift_idmap_free(m);
	shift_idmap_free(got);
}

TEST(create_is_a_new_userns)
{
	struct shift_idmap *m;
	struct stat a, b;
	int fd;

	if (geteuid() != 0)
		SKIP("needs root");
	m = map_of("0:100000:65536");
	fd = shift_userns_create(m);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ_INT(fstat(fd, &a), 0);
		CHECK_EQ_INT(stat("/proc/self/ns/user", &b), 0);
		CHECK(a.st_ino != b.st_ino);
		close(fd);
	}
	shift_idmap_free(m);
}

TEST(no_child_left)
{
	struct shift_idmap *m;
	int before, i, fd;

	if (geteuid() != 0)
		SKIP("needs root");
	m = map_of("0:100000:65536");
	before = count_children();
	CHECK_EQ_INT(before, 0);
	for (i = 0; i < 20; i++) {
		fd = shift_userns_create(m);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
	CHECK_EQ_INT(count_children(), before);
	/* nothing to reap either: no zombie was left */
	CHECK_EQ_INT(waitpid(-1, NULL, WNOHANG | __WALL), -1);
	CHECK_EQ_INT(errno, ECHILD);
	shift_idmap_free(m);
}

/*
 * Kill a process at random points while it creates namespaces: its helper
 * children must still go away (they would be reparented to us, a
 * subreaper, if they survived).
 */
TEST(helper_dies_with_caller)
{
	struct shift_idmap *m;
	struct timespec ts = { 0, 0 };
	int i, left = -1;

	if (geteuid() != 0)
		SKIP("needs root");
	m = map_of("0:100000:65536");
	CHECK_EQ_INT(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	srand((unsigned)getpid());
	for (i = 0; i < 30; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			for (;;) {
				int fd = shift_userns_create(m);

				if (fd < 0)
					_exit(1);
				close(fd);
			}
		}
		CHECK(pid > 0);
		ts.tv_nsec = (rand() % 3000) * 1000L;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
	}
	/* reap everything; a survivor would block forever on its pipe */
	for (i = 0; i < 200; i++) {
		while (waitpid(-1, NULL, __WALL | WNOHANG) > 0)
			;
		left = count_children();
		if (left == 0)
			break;
		ts.tv_nsec = 10 * 1000 * 1000L;
		nanosleep(&ts, NULL);
	}
	CHECK_EQ_INT(left, 0);
	if (left != 0)
		kill_children(); /* don't leave the survivors hanging */
	CHECK_EQ_INT(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
	shift_idmap_free(m);
}

TEST(refuses_half_map)
{
	struct shift_idmap *m = map_of("u:0:100000:65536");

	CHECK_EQ_INT(shift_userns_create(m), -EINVAL);
	CHECK_EQ_INT(shift_userns_create(NULL), -EINVAL);
	shift_idmap_free(m);
}

/*
 * Unprivileged, inside the (test) delegation, but newuidmap checks the real
 * /etc/subuid and refuses: the error comes back and no child is left.
 */
TEST(unprivileged_newuidmap_failure_leaves_nothing)
{
	struct shift_idmap *m;
	char dir[] = "/tmp/test-userns.XXXXXX", sub[300];
	pid_t pid;
	int status;
	FILE *f;

	if (geteuid() != 0)
		SKIP("needs root to switch to an unprivileged uid");
	/* run as nobody so newuidmap finds a user name, then refuses */
	if (access("/usr/bin/newuidmap", X_OK) < 0)
		SKIP("newuidmap is not installed");
	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ_INT(chmod(dir, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/subid", dir);
	f = fopen(sub, "we");
	CHECK(f != NULL);
	if (!f)
		return;
	/* a delegation that exists only in our test file */
	fprintf(f, "65534:3000000000:65536\n");
	fclose(f);
	m = map_of("0:3000000000:65536");
	pid = fork();
	if (pid == 0) {
		int r;

		setenv("SHIFT_SUBUID", sub, 1);
		setenv("SHIFT_SUBGID", sub, 1);
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		r = shift_userns_create(m);
		if (r >= 0)
			_exit(11);
		if (count_children() != 0)
			_exit(12);
		_exit(r == -EPERM ? 0 : 13);
	}
	CHECK(pid > 0);
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	unlink(sub);
	rmdir(dir);
	shift_idmap_free(m);
}

TEST(unprivileged_outside_subid_refused)
{
	struct shift_idmap *m;
	char dir[] = "/tmp/test-userns.XXXXXX", sub[300];
	pid_t pid;
	int status;
	FILE *f;

	if (geteuid() != 0)
		SKIP("needs root to switch to an unprivileged uid");
	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ_INT(chmod(dir, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/subid", dir);
	f = fopen(sub, "we");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f, "65533:500000:65536\n");
	fclose(f);
	m = map_of("0:100000:65536");
	pid = fork();
	if (pid == 0) {
		setenv("SHIFT_SUBUID", sub, 1);
		setenv("SHIFT_SUBGID", sub, 1);
		if (setgid(65533) < 0 || setuid(65533) < 0)
			_exit(10);
		_exit(shift_userns_create(m) == -EPERM ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	unlink(sub);
	rmdir(dir);
	shift_idmap_free(m);
}

TEST(cache_returns_same_fd)
{
	struct shift_userns_cache *c;
	struct shift_idmap *a, *a2, *b;
	int fa, fa2, fb;

	if (geteuid() != 0)
		SKIP("needs root");
	a = map_of("0:100000:65536");
	a2 = map_of("u:0:100000:65536 g:0:100000:65536");
	b = map_of("0:200000:65536");
	c = shift_userns_cache_new();
	CHECK(c != NULL);
	fa = shift_userns_cache_get(c, a);
	fa2 = shift_userns_cache_get(c, a2);
	fb = shift_userns_cache_get(c, b);
	CHECK(fa >= 0);
	CHECK(fb >= 0);
	CHECK_EQ_INT(fa, fa2);
	CHECK(fa != fb);
	CHECK_EQ_INT(count_children(), 0);
	shift_userns_cache_free(c);
	/* the cache owned the fds: they are closed now */
	CHECK_EQ_INT(fcntl(fa, F_GETFD), -1);
	CHECK_EQ_INT(fcntl(fb, F_GETFD), -1);
	shift_idmap_free(a);
	shift_idmap_free(a2);
	shift_idmap_free(b);
}

TEST_MAIN()
