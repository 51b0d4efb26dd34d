/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mount's policy (shift_mount_choose(): which method for which
 * request, one row per case) and the one tree copy (shift_copy_tree():
 * what it keeps, that it shifts with a map, that a failure leaves nothing
 * behind and that it never copies into a directory with entries), and what
 * shift_copy_and_shift() reports when it refuses.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shift.h"
/* The harness: tests/lib.h since it became a library, tests/test.h
 * before. */
#if __has_include("lib.h")
#include "lib.h"
#else
#include "test.h"
#endif

#define B SHIFT_MOUNT_KIND_BIND
#define N SHIFT_FALLBACK_NONE
#define S SHIFT_FALLBACK_SHIFT
#define C SHIFT_FALLBACK_COPY
#define R SHIFT_FALLBACK_REASSEMBLE

TEST(choose_each_method)
{
	static const struct {
		struct shift_mount_facts f;
		enum shift_mount_method want;
	} rows[] = {
	    /* no CAP_SYS_ADMIN, service there: the service, whatever */
	    {{.kind = B, .fallback = C, .service = true}, SHIFT_METHOD_SERVICE},
	    {{.kind = SHIFT_MOUNT_KIND_OVERLAY, .service = true},
	     SHIFT_METHOD_SERVICE},
	    /* plain idmapped mounts */
	    {{.kind = B, .fallback = N, .idmappable = false},
	     SHIFT_METHOD_IDMAP},
	    {{.kind = SHIFT_MOUNT_KIND_TMPFS}, SHIFT_METHOD_IDMAP},
	    {{.kind = SHIFT_MOUNT_KIND_OVERLAY}, SHIFT_METHOD_IDMAP},
	    {{.kind = B, .fallback = S, .idmappable = true},
	     SHIFT_METHOD_IDMAP},
	    {{.kind = B, .fallback = C, .idmappable = true},
	     SHIFT_METHOD_IDMAP},
	    /* shifted by this map already: plain, whatever the fallback */
	    {{.kind = B, .fallback = C, .source_state = SHIFT_SOURCE_SHIFTED},
	     SHIFT_METHOD_PLAIN_BIND},
	    {{.kind = B,
	      .fallback = R,
	      .overlay = true,
	      .source_state = SHIFT_SOURCE_SHIFTED},
	     SHIFT_METHOD_PLAIN_BIND},
	    /* ... unless asked to idmap it all the same */
	    {{.kind = B,
	      .allow_shifted = true,
	      .source_state = SHIFT_SOURCE_SHIFTED},
	     SHIFT_METHOD_IDMAP},
	    /* an overlayfs SOURCE: re-assembled; not one: idmapped */
	    {{.kind = B, .fallback = R, .overlay = true},
	     SHIFT_METHOD_REASSEMBLE},
	    {{.kind = B, .fallback = R, .overlay = false}, SHIFT_METHOD_IDMAP},
	    /* can't be idmapped: the fallback asked for */
	    {{.kind = B, .fallback = S}, SHIFT_METHOD_SHIFT},
	    {{.kind = B, .fallback = C}, SHIFT_METHOD_COPY},
	    {{.kind = B, .fallback = C, .shared = true}, SHIFT_METHOD_COPY},
	    {{.kind = B, .fallback = S, .shared = true},
	     SHIFT_METHOD_REFUSE_SHARED},
	    {{.kind = B, .fallback = S, .shared = true, .force = true},
	     SHIFT_METHOD_SHIFT},
	    {{.kind = B, .fallback = S, .kernel_fs = "proc"},
	     SHIFT_METHOD_REFUSE_KERNEL_FS},
	    {{.kind = B, .fallback = C, .kernel_fs = "sysfs"},
	     SHIFT_METHOD_REFUSE_KERNEL_FS},
	    /* its own interrupted shift: finished, even where it could be
	     * idmapped (an idmap would show the mix of ids) */
	    {{.kind = B,
	      .fallback = S,
	      .idmappable = true,
	      .resume = true,
	      .source_state = SHIFT_SOURCE_UNFINISHED},
	     SHIFT_METHOD_SHIFT},
	    {{.kind = B,
	      .fallback = S,
	      .idmappable = true,
	      .resume = true,
	      .shared = true,
	      .source_state = SHIFT_SOURCE_UNFINISHED},
	     SHIFT_METHOD_REFUSE_SHARED},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum shift_mount_method m = shift_mount_choose(&rows[i].f);

		if (m != rows[i].want)
			printf("#   row %zu\n", i);
		CHECK_EQ_INT(m, rows[i].want);
	}
}

static char base[PATH_MAX - 64];

static const char *p(const char *name)
{
	static char buf[4][PATH_MAX];
	static unsigned i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, name);
	return buf[i];
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		printf("# failed to remove %s\n", base);
}

static bool setup(void)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	if (geteuid() != 0)
		return false;
	snprintf(base, sizeof(base), "%s/test-fallback.XXXXXX",
		 tmp ? tmp : "/var/tmp");
	if (!mkdtemp(base))
		return false;
	if (mkdir(p("src"), 0755) < 0 || mkdir(p("src/d"), 02750) < 0)
		return false;
	fd = open(p("src/d/f"), O_WRONLY | O_CREAT, 04755);
	if (fd < 0)
		return false;
	/* 1 MiB, data only in its last block */
	if (pwrite(fd, "x", 1, (1 << 20) - 1) != 1 || close(fd) < 0)
		return false;
	if (chown(p("src/d/f"), 1000, 1001) < 0 ||
	    chmod(p("src/d/f"), 04755) < 0 || chown(p("src/d"), 7, 8) < 0 ||
	    chmod(p("src/d"), 02750) < 0 ||
	    link(p("src/d/f"), p("src/link")) < 0 ||
	    symlink("d/f", p("src/sym")) < 0 ||
	    lchown(p("src/sym"), 5, 5) < 0 ||
	    mknod(p("src/fifo"), S_IFIFO | 0600, 0) < 0 ||
	    mknod(p("src/null"), S_IFCHR | 0666, makedev(1, 3)) < 0 ||
	    setxattr(p("src/d/f"), "user.k", "v", 1, 0) < 0 ||
	    setxattr(p("src"), "trusted.shiftkit.shift", "m", 1, 0) < 0)
		return false;
	return true;
}

TEST(copy_keeps_and_shifts)
{
	struct shift_idmap *map = shift_idmap_new();
	struct shift_error e = {0};
	char v[8];
	struct stat a, b;
	int r;

	if (!setup()) {
		cleanup();
		shift_idmap_free(map);
		SKIP("needs root and a TMPDIR with user and trusted xattrs");
	}
	/* without a map: the ids as they are */
	r = shift_copy_tree(p("src"), p("same"), NULL, 0, &e);
	CHECK_EQ_INT(r, 0);
	CHECK(stat(p("same/d/f"), &a) == 0 && a.st_uid == 1000 &&
	      a.st_gid == 1001 && (a.st_mode & 07777) == 04755 &&
	      a.st_size == 1 << 20 && a.st_blocks < 64);
	CHECK(stat(p("same/link"), &b) == 0 && a.st_ino == b.st_ino);
	CHECK(lstat(p("same/sym"), &a) == 0 && S_ISLNK(a.st_mode) &&
	      a.st_uid == 5);
	CHECK(lstat(p("same/null"), &a) == 0 && S_ISCHR(a.st_mode) &&
	      a.st_rdev == makedev(1, 3));
	CHECK(lstat(p("same/fifo"), &a) == 0 && S_ISFIFO(a.st_mode));
	CHECK(stat(p("same/d"), &a) == 0);
	CHECK_EQ_INT(a.st_mode & 07777, 02750);
	CHECK_EQ_INT(a.st_uid, 7);
	CHECK(getxattr(p("same/d/f"), "user.k", v, sizeof(v)) == 1);
	/* the source's marker stays behind */
	CHECK(getxattr(p("same"), "trusted.shiftkit.shift", v, sizeof(v)) < 0);

	/* with a map: shifted on the way */
	CHECK(shift_idmap_parse(map, "0:100000:65536", NULL) == 0);
	r = shift_copy_tree(p("src"), p("shifted"), map, 0, &e);
	CHECK_EQ_INT(r, 0);
	CHECK(stat(p("shifted/d/f"), &a) == 0 && a.st_uid == 101000 &&
	      a.st_gid == 101001 && (a.st_mode & 07777) == 04755);
	CHECK(lstat(p("shifted/sym"), &a) == 0 && a.st_uid == 100005);
	CHECK(stat(p("shifted"), &a) == 0 && a.st_uid == 100000);

	/* an id without image: fails naming it, nothing left behind */
	CHECK(lchown(p("src/sym"), 70000, 5) == 0);
	r = shift_copy_tree(p("src"), p("bad"), map, 0, &e);
	CHECK_EQ_INT(r, -ERANGE);
	CHECK(e.why != NULL);
	CHECK(e.path && !strcmp(e.path, "sym"));
	shift_error_clear(&e);
	CHECK(lstat(p("bad"), &a) < 0 && errno == ENOENT);
	/* ... also when the destination was an empty directory: it stays */
	CHECK(mkdir(p("empty"), 0700) == 0);
	r = shift_copy_tree(p("src"), p("empty"), map, 0, &e);
	CHECK_EQ_INT(r, -ERANGE);
	shift_error_clear(&e);
	CHECK(rmdir(p("empty")) == 0);

	/* a relative destination with a trailing slash: made in "." */
	{
		char cwd[PATH_MAX];

		CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
		CHECK(chdir(base) == 0);
		r = shift_copy_tree("src", "rel/", NULL, 0, &e);
		CHECK_EQ_INT(r, 0);
		CHECK(chdir(cwd) == 0);
		CHECK(stat(p("rel/d/f"), &a) == 0 && a.st_uid == 1000);
	}

	/* never into itself: a copy inside the source is refused */
	r = shift_copy_tree(p("src"), p("src/d/in"), NULL, 0, &e);
	CHECK_EQ_INT(r, -ELOOP);
	CHECK(lstat(p("src/d/in"), &a) < 0 && errno == ENOENT);
	shift_error_clear(&e);

	/* never into a directory with entries */
	r = shift_copy_tree(p("src"), p("same"), NULL, 0, &e);
	CHECK_EQ_INT(r, -ENOTEMPTY);
	shift_error_clear(&e);
	/* no temporary copy left next to any of them */
	{
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd),
			 "test -z \"$(ls -A '%s' | grep copy-)\"", base);
		CHECK(system(cmd) == 0);
	}
	shift_idmap_free(map);
	cleanup();
}

/*
 * shift_copy_and_shift() says which step failed in its result and why,
 * about which path, in err: a directory with entries and no shifted copy
 * is refused before anything is copied.
 */
TEST(copy_and_shift_reports_in_err)
{
	char dir[] = "/tmp/test-fallback-XXXXXX", src[64], cd[64], f[80];
	struct shift_idmap *map = shift_idmap_new();
	struct shift_options opts = {.map = map};
	struct shift_copy_result res = {0};
	struct shift_error e = {0};
	int fd;

	if (!map || !mkdtemp(dir)) {
		shift_idmap_free(map);
		SKIP("mkdtemp failed");
	}
	CHECK(shift_idmap_parse(map, "0:100000:65536", NULL) == 0);
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(cd, sizeof(cd), "%s/copy", dir);
	snprintf(f, sizeof(f), "%s/copy/f", dir);
	CHECK(mkdir(src, 0755) == 0 && mkdir(cd, 0755) == 0);
	fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK_EQ_INT(shift_copy_and_shift(src, cd, &opts, NULL, &res, &e),
		     -ENOTEMPTY);
	CHECK_EQ_INT(res.step, SHIFT_COPY_STEP_DIR);
	CHECK(!res.copy && !res.copied);
	CHECK_EQ_INT(e.error, -ENOTEMPTY);
	CHECK(e.path && !strcmp(e.path, cd));
	CHECK(e.why && strstr(e.why, "not empty"));
	shift_error_clear(&e);
	unlink(f);
	rmdir(cd);
	rmdir(src);
	rmdir(dir);
	shift_idmap_free(map);
}

TEST_MAIN()
