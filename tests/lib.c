/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The unit tests' library (tests/lib.h): the harness's state and runner,
 * and the helpers several test files share.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib.h"
#include "shift.h"

#define CHILD_SKIP 77

struct test_case {
	const char *name;
	void (*fn)(void);
};

static struct test_case *cases;
static size_t n_cases, cap_cases;
static size_t dropped; /* could not be registered: a failure, not silence */
int test_failed_now;
void (*test_after_each)(void);
const char *test_skip_now;

void test_register(const char *name, void (*fn)(void))
{
	if (n_cases == cap_cases) {
		size_t cap = cap_cases ? 2 * cap_cases : 64;
		struct test_case *c = realloc(cases, cap * sizeof(*c));

		if (!c) {
			dropped++;
			return;
		}
		cases = c;
		cap_cases = cap;
	}
	cases[n_cases++] = (struct test_case){name, fn};
}

int test_main(void)
{
	size_t failed = 0, skipped = 0;

	if (dropped) {
		printf("Bail out! %zu tests could not be registered\n",
		       dropped);
		return 1;
	}
	printf("1..%zu\n", n_cases);
	for (size_t i = 0; i < n_cases; i++) {
		test_failed_now = 0;
		test_skip_now = NULL;
		cases[i].fn();
		if (test_after_each)
			test_after_each();
		if (test_skip_now) {
			skipped++;
			printf("ok %zu %s # skip %s\n", i + 1, cases[i].name,
			       test_skip_now);
		} else if (test_failed_now) {
			failed++;
			printf("not ok %zu %s\n", i + 1, cases[i].name);
		} else {
			printf("ok %zu %s\n", i + 1, cases[i].name);
		}
	}
	fflush(stdout);
	free(cases);
	if (failed)
		return 1;
	return skipped == n_cases && n_cases ? 77 : 0;
}

struct shift_idmap *map_of(const char *spec)
{
	struct shift_idmap *m = shift_idmap_new();
	struct shift_error why = {0};

	CHECK(m != NULL);
	if (m && shift_idmap_parse(m, spec, &why) < 0) {
		printf("#   parse '%s': %s\n", spec, shift_error_why(&why, 0));
		test_failed_now = 1;
		shift_idmap_free(m);
		m = NULL;
	}
	shift_error_clear(&why);
	return m;
}

void test_in_private_ns(void (*fn)(void), unsigned flags)
{
	static char skip[256];
	char dir[] = "/tmp/shiftkit-unit.XXXXXX";
	bool tmpfs = flags & TEST_NS_TMPFS;
	int status, pipefd[2];
	ssize_t n;
	pid_t pid;

	if (tmpfs && geteuid() != 0) {
		test_skip_now = "needs root (mounts)";
		return;
	}
	if (tmpfs && !mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		CHECK(!"pipe2");
		return;
	}
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    (tmpfs &&
		     (mount("tmpfs", dir, "tmpfs", 0, "mode=0755") < 0 ||
		      chdir(dir) < 0))) {
			printf("#   private mount namespace: %m\n");
			fflush(stdout);
			_exit(1);
		}
		fn();
		fflush(stdout);
		if (test_skip_now &&
		    write(pipefd[1], test_skip_now, strlen(test_skip_now)) < 0)
			_exit(1);
		_exit(test_skip_now ? CHILD_SKIP : test_failed_now ? 1 : 0);
	}
	close(pipefd[1]);
	if (pid > 0) {
		n = read(pipefd[0], skip, sizeof(skip) - 1);
		skip[n > 0 ? n : 0] = '\0';
		CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP)
			test_skip_now = skip[0] ? skip : "skipped in the child";
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			test_failed_now = 1;
	}
	close(pipefd[0]);
	if (tmpfs)
		CHECK_EQ_INT(rmdir(dir), 0);
}

static char scratch_dir[PATH_MAX];

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void scratch_cleanup(void)
{
	/* Only ever below /tmp, on our own mount: nothing is mounted there
	 * any more (the mounts died with the children that made them). */
	if (scratch_dir[0])
		(void)nftw(scratch_dir, rm_one, 16,
			   FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

const char *test_scratch(const char *prefix)
{
	if (!scratch_dir[0]) {
		snprintf(scratch_dir, sizeof(scratch_dir), "/tmp/%s.XXXXXX",
			 prefix);
		if (!mkdtemp(scratch_dir)) {
			scratch_dir[0] = '\0';
			return NULL;
		}
		atexit(scratch_cleanup);
	}
	return scratch_dir;
}
