/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Idmapped mounts on the real kernel.  Every test runs in a forked child
 * with its own mount namespace (everything it mounts dies with it) on a
 * tmpfs over a fresh temp dir, which the parent removes afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shift.h"
#include "util/macros.h"
#include "lib.h"

extern bool sk_overlay_no_fd_layers;


#define PRIVATE_TEST(name)                                                     \
	static void body_##name(void);                                         \
	TEST(name)                                                             \
	{                                                                      \
		test_in_private_ns(body_##name, TEST_NS_TMPFS);                                    \
	}                                                                      \
	static void body_##name(void)

static int count_mounts(void)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* The mountinfo options of the mount at path (exact mount point). */
static bool mount_options(const char *path, char *opts, size_t size)
{
	char line[4096], abs[PATH_MAX], mp[PATH_MAX], o[1024];
	bool found = false;
	FILE *f;

	if (!realpath(path, abs))
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %*s %*s %4095s %1023s", mp, o) == 2 &&
		    !strcmp(mp, abs)) {
			snprintf(opts, size, "%s", o);
			found = true; /* keep the last (top) one */
		}
	fclose(f);
	return found;
}

static bool is_mountpoint(const char *path)
{
	char o[1024];

	return mount_options(path, o, sizeof(o));
}

static void make_file(const char *path, uid_t uid, gid_t gid,
		      const char *content)
{
	FILE *f = fopen(path, "we");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(content, f);
	fclose(f);
	CHECK_EQ_INT(chown(path, uid, gid), 0);
}

static void check_owner(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		printf("#   stat '%s': %m\n", path);
		test_failed_now = 1;
		return;
	}
	if (st.st_uid != uid || st.st_gid != gid) {
		printf("#   '%s' is %u:%u, expected %u:%u\n", path,
		       (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)uid,
		       (unsigned)gid);
		test_failed_now = 1;
	}
}

static void make_tree(void)
{
	CHECK_EQ_INT(mkdir("src", 0755), 0);
	CHECK_EQ_INT(mkdir("dst", 0755), 0);
	make_file("src/root", 0, 0, "r\n");
	make_file("src/user", 1000, 1001, "u\n");
	make_file("src/outside", 70000, 70000, "o\n");
}

PRIVATE_TEST(clone_shows_mapped_owners)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	char o[1024] = "";

	make_tree();
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m, 0), 0);
	check_owner("dst", 100000, 100000);
	check_owner("dst/root", 100000, 100000);
	check_owner("dst/user", 101000, 101001);
	check_owner("dst/outside", SHIFT_OVERFLOW_ID, SHIFT_OVERFLOW_ID);
	/* the original is unchanged */
	check_owner("src/user", 1000, 1001);
	CHECK(mount_options("dst", o, sizeof(o)));
	CHECK(strstr(o, "idmapped") != NULL);
	shift_idmap_free(m);
}

PRIVATE_TEST(split_uid_gid_maps)
{
	struct shift_idmap *m =
		map_of("u:0:100000:65536 g:0:300000:1000 g:1000:400000:10");

	make_tree();
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m, 0), 0);
	check_owner("dst/root", 100000, 300000);
	check_owner("dst/user", 101000, 400001);
	shift_idmap_free(m);
}

PRIVATE_TEST(create_through_mount_stores_inverse)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	int status, fd;
	pid_t pid;

	make_tree();
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m, 0), 0);
	/* host root (0) has no image under the map: EOVERFLOW (#17) */
	fd = open("dst/new-by-root", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK_EQ_INT(fd, -1);
	CHECK_EQ_INT(errno, EOVERFLOW);
	/* host uid 101000 creates: stored as 1000 on disk */
	CHECK_EQ_INT(chmod("src", 0777), 0);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(101000, 101000, 101000) < 0 ||
		    setresuid(101000, 101000, 101000) < 0)
			_exit(10);
		/* dst's root is seen as 100000: let others write */
		fd = open("dst/new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		_exit(fd < 0 ? 11 : 0);
	}
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_owner("src/new", 1000, 1000);
	check_owner("dst/new", 101000, 101000);
	shift_idmap_free(m);
}

PRIVATE_TEST(attributes)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	struct statvfs sv;
	char o[1024] = "";

	make_tree();
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m,
					  SHIFT_MOUNT_RDONLY | SHIFT_MOUNT_NOSUID |
						  SHIFT_MOUNT_NODEV |
						  SHIFT_MOUNT_NOEXEC),
		     0);
	CHECK_EQ_INT(statvfs("dst", &sv), 0);
	CHECK((sv.f_flag & ST_RDONLY) != 0);
	CHECK((sv.f_flag & ST_NOSUID) != 0);
	CHECK((sv.f_flag & ST_NODEV) != 0);
	CHECK((sv.f_flag & ST_NOEXEC) != 0);
	CHECK_EQ_INT(mkdir("dst/x", 0755), -1);
	CHECK_EQ_INT(errno, EROFS);
	CHECK(mount_options("dst", o, sizeof(o)));
	CHECK(strstr(o, "idmapped") != NULL);
	/* the source stays writable */
	CHECK_EQ_INT(mkdir("src/x", 0755), 0);
	shift_idmap_free(m);
}

PRIVATE_TEST(recursive)
{
	struct shift_idmap *m = map_of("0:100000:65536");

	make_tree();
	CHECK_EQ_INT(mkdir("src/sub", 0755), 0);
	CHECK_EQ_INT(mount("tmpfs", "src/sub", "tmpfs", 0, NULL), 0);
	make_file("src/sub/f", 5, 5, "s\n");
	CHECK_EQ_INT(mkdir("dst2", 0755), 0);

	/* without: the submount is not part of the clone */
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m, 0), 0);
	CHECK_EQ_INT(access("dst/sub/f", F_OK), -1);
	/* with: the whole subtree, idmapped */
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst2", m,
					  SHIFT_MOUNT_RECURSIVE),
		     0);
	check_owner("dst2/sub/f", 100005, 100005);
	check_owner("dst2/user", 101000, 101001);
	shift_idmap_free(m);
}

PRIVATE_TEST(recursive_all_or_nothing)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	char *sub = NULL, *want;
	int before, userns;

	make_tree();
	CHECK_EQ_INT(mkdir("src/a", 0755), 0);
	CHECK_EQ_INT(mkdir("src/b", 0755), 0);
	CHECK_EQ_INT(mount("tmpfs", "src/a", "tmpfs", 0, NULL), 0);
	/* ramfs can't be idmapped: the whole recursive call fails */
	CHECK_EQ_INT(mount("ramfs", "src/b", "ramfs", 0, NULL), 0);
	before = count_mounts();
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m,
					  SHIFT_MOUNT_RECURSIVE),
		     -EINVAL);
	CHECK_EQ_INT(count_mounts(), before);
	CHECK(!is_mountpoint("dst"));
	/* and the culprit can be named */
	userns = shift_userns_create(m);
	CHECK(userns >= 0);
	CHECK_EQ_INT(shift_mount_find_unsupported("src", userns, &sub), 0);
	want = realpath("src/b", NULL);
	CHECK_EQ_STR(sub, want);
	free(sub);
	free(want);
	CHECK_EQ_INT(shift_mount_find_unsupported("src/a", userns, &sub),
		     -ENOENT);
	close(userns);
	{
		char *why = shift_mount_strerror(-EINVAL, "src/b");

		CHECK_EQ_STR(why,
			     "filesystem 'ramfs' does not support idmapped mounts");
		free(why);
	}
	shift_idmap_free(m);
}

PRIVATE_TEST(clone_then_attach)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	int userns, tree;

	make_tree();
	userns = shift_userns_create(m);
	CHECK(userns >= 0);
	tree = shift_mount_clone_idmapped(AT_FDCWD, "src", userns, 0);
	CHECK(tree >= 0);
	/* detached: not visible anywhere yet, but usable by fd */
	CHECK(!is_mountpoint("dst"));
	{
		struct stat st;

		CHECK_EQ_INT(fstatat(tree, "user", &st, 0), 0);
		CHECK_EQ_INT(st.st_uid, 101000);
	}
	CHECK_EQ_INT(shift_mount_attach(tree, AT_FDCWD, "dst"), 0);
	check_owner("dst/user", 101000, 101001);
	close(tree);
	close(userns);
	/* attached mounts stay after the fd is closed */
	check_owner("dst/user", 101000, 101001);
	shift_idmap_free(m);
}

PRIVATE_TEST(attach_failure_leaves_nothing)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	int before;

	make_tree();
	before = count_mounts();
	CHECK_EQ_INT(shift_mount_idmapped("src", "missing", m, 0), -ENOENT);
	CHECK_EQ_INT(count_mounts(), before);
	CHECK_EQ_INT(shift_mount_idmapped("missing", "dst", m, 0), -ENOENT);
	CHECK_EQ_INT(count_mounts(), before);
	/* a directory over a file */
	CHECK_EQ_INT(shift_mount_idmapped("src", "src/user", m, 0), -ENOTDIR);
	/* an idmapped tmpfs over a file */
	CHECK_EQ_INT(shift_mount_tmpfs_idmapped("src/user", m, NULL, 0),
		     -ENOTDIR);
	CHECK_EQ_INT(count_mounts(), before);
	CHECK(!is_mountpoint("dst"));
	shift_idmap_free(m);
}

PRIVATE_TEST(already_idmapped_refused)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	char *why;
	int before;

	make_tree();
	CHECK_EQ_INT(mkdir("dst2", 0755), 0);
	CHECK_EQ_INT(shift_mount_idmapped("src", "dst", m, 0), 0);
	before = count_mounts();
	CHECK_EQ_INT(shift_mount_idmapped("dst", "dst2", m, 0), -EPERM);
	CHECK_EQ_INT(count_mounts(), before);
	why = shift_mount_strerror(-EPERM, "dst");
	CHECK(why && strstr(why, "already idmapped"));
	free(why);
	shift_idmap_free(m);
}

/* A plain overlay mount (old API) to use as a source. */
static bool make_overlay(const char *at)
{
	CHECK_EQ_INT(mkdir("ol1", 0755), 0);
	CHECK_EQ_INT(mkdir("ol2", 0755), 0);
	CHECK_EQ_INT(mkdir(at, 0755), 0);
	make_file("ol1/a", 0, 0, "a\n");
	if (mount("overlay", at, "overlay", 0, "lowerdir=ol1:ol2") < 0) {
		printf("#   overlay: %m\n");
		return false;
	}
	return true;
}

PRIVATE_TEST(overlay_source_refused)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	char *why;
	int before;

	CHECK_EQ_INT(mkdir("dst", 0755), 0);
	if (!make_overlay("ovl")) {
		test_skip_now = "overlayfs not available";
		return;
	}
	before = count_mounts();
	CHECK_EQ_INT(shift_mount_idmapped("ovl", "dst", m, 0), -EINVAL);
	CHECK_EQ_INT(count_mounts(), before);
	CHECK(!is_mountpoint("dst"));
	why = shift_mount_strerror(-EINVAL, "ovl");
	CHECK(why != NULL);
	if (why)
		CHECK_EQ_STR(why,
			     "filesystem 'overlay' does not support idmapped mounts");
	free(why);
	shift_idmap_free(m);
}

PRIVATE_TEST(strerror_messages)
{
	char *s;

	s = shift_mount_strerror(-EINVAL, ".");
	CHECK_EQ_STR(s, "filesystem 'tmpfs' does not support idmapped mounts");
	free(s);
	s = shift_mount_strerror(-ENOSYS, ".");
	CHECK(s && strstr(s, "5.12"));
	free(s);
	s = shift_mount_strerror(-EOVERFLOW, NULL);
	CHECK(s && strstr(s, "not mapped"));
	free(s);
	s = shift_mount_strerror(-ENOENT, "/nonexistent/x");
	CHECK_EQ_STR(s, "no such file or directory");
	free(s);
}

PRIVATE_TEST(tmpfs_idmapped)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	struct statfs sfs;
	struct stat st;
	char o[1024] = "";
	int before;

	CHECK_EQ_INT(mkdir("t", 0755), 0);
	CHECK_EQ_INT(shift_mount_tmpfs_idmapped("t", m, "size=1m,mode=0750", 0),
		     0);
	check_owner("t", 100000, 100000);
	CHECK_EQ_INT(stat("t", &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0750);
	CHECK_EQ_INT(statfs("t", &sfs), 0);
	CHECK_EQ_INT((long long)sfs.f_blocks * sfs.f_bsize, 1024 * 1024);
	CHECK(mount_options("t", o, sizeof(o)));
	CHECK(strstr(o, "idmapped") != NULL);

	/* a bad option: an error, and nothing mounted */
	CHECK_EQ_INT(mkdir("t2", 0755), 0);
	before = count_mounts();
	CHECK(shift_mount_tmpfs_idmapped("t2", m, "nosuchoption=1", 0) < 0);
	CHECK_EQ_INT(count_mounts(), before);
	shift_idmap_free(m);
}

static void make_layers(void)
{
	CHECK_EQ_INT(mkdir("l1", 0755), 0);
	CHECK_EQ_INT(mkdir("l2", 0755), 0);
	CHECK_EQ_INT(mkdir("merged", 0755), 0);
	make_file("l1/top", 1000, 1000, "top\n");
	make_file("l2/top", 0, 0, "hidden\n");
	make_file("l2/bottom", 2000, 2000, "bottom\n");
	CHECK_EQ_INT(mkdir("l2/dir", 0700), 0);
	make_file("l2/dir/deep", 3, 3, "deep\n");
}

static void read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static void overlay_copy_up(void)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	const char *lower[] = { "l1", "l2", NULL };
	_cleanup_(shift_error_clear) struct shift_error failed = { 0 };
	struct shift_overlay ovl = {
		.lower = lower,
		.upper = "up",
		.work = "work",
	};
	char buf[64];
	struct stat st;
	FILE *f;

	make_layers();
	CHECK_EQ_INT(shift_mount_overlay(&ovl, "merged", m, 0, &failed), 0);
	CHECK(failed.error == 0 && failed.path == NULL);
	/* upper/work created, owned by the container's root, 0755 */
	check_owner("up", 100000, 100000);
	CHECK_EQ_INT(stat("up", &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0755);
	check_owner("merged", 100000, 100000);
	/* the merged view: top-most layer wins, owners mapped */
	read_file("merged/top", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "top\n");
	check_owner("merged/top", 101000, 101000);
	check_owner("merged/bottom", 102000, 102000);
	check_owner("merged/dir/deep", 100003, 100003);

	/* copy-up: a write lands in upper with the mapped owner */
	f = fopen("merged/bottom", "ae");
	CHECK(f != NULL);
	if (f) {
		fputs("more\n", f);
		fclose(f);
	}
	read_file("merged/bottom", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "bottom\nmore\n");
	check_owner("up/bottom", 102000, 102000);
	read_file("up/bottom", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "bottom\nmore\n");
	/* copy-up of a nested file copies its parent dir, mapped */
	CHECK_EQ_INT(chmod("merged/dir/deep", 0600), 0);
	check_owner("up/dir", 100000, 100000);
	check_owner("up/dir/deep", 100003, 100003);

	/* the lower layers are unchanged on disk */
	read_file("l2/bottom", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "bottom\n");
	check_owner("l2/bottom", 2000, 2000);
	check_owner("l2/dir/deep", 3, 3);
	CHECK_EQ_INT(stat("l2/dir/deep", &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0644);
	CHECK_EQ_INT(access("l1/bottom", F_OK), -1);

	/* no helper mount left behind */
	{
		char line[4096];
		FILE *mi = fopen("/proc/self/mountinfo", "re");

		char mp[4096];

		/* (the overlay's own options may name the old temp paths) */
		while (mi && fgets(line, sizeof(line), mi))
			if (sscanf(line, "%*u %*u %*s %*s %4095s", mp) == 1)
				CHECK(strstr(mp, ".shiftkit-ovl") == NULL);
		if (mi)
			fclose(mi);
	}
	shift_idmap_free(m);
}

PRIVATE_TEST(overlay_copy_up_fd_layers)
{
	overlay_copy_up();
}

PRIVATE_TEST(overlay_copy_up_path_layers)
{
	sk_overlay_no_fd_layers = true;
	overlay_copy_up();
}

PRIVATE_TEST(overlay_read_only)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	const char *lower[] = { "l1", "l2", NULL };
	const char *one[] = { "l2", NULL };
	struct shift_overlay ovl = { .lower = lower };
	struct statvfs sv;

	make_layers();
	CHECK_EQ_INT(shift_mount_overlay(&ovl, "merged", m, 0, NULL), 0);
	check_owner("merged/bottom", 102000, 102000);
	CHECK_EQ_INT(open("merged/new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644),
		     -1);
	CHECK_EQ_INT(errno, EROFS);

	/* one layer: the kernel wants two, we give the read-only clone */
	CHECK_EQ_INT(mkdir("m1", 0755), 0);
	ovl.lower = one;
	CHECK_EQ_INT(shift_mount_overlay(&ovl, "m1", m, 0, NULL), 0);
	check_owner("m1/bottom", 102000, 102000);
	CHECK_EQ_INT(statvfs("m1", &sv), 0);
	CHECK((sv.f_flag & ST_RDONLY) != 0);
	shift_idmap_free(m);
}

PRIVATE_TEST(overlay_refuses_overlay_layer)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	const char *lower[] = { "l1", "ovl", NULL };
	_cleanup_(shift_error_clear) struct shift_error failed = { 0 };
	struct shift_overlay ovl = {
		.lower = lower,
		.upper = "up",
		.work = "work",
	};
	int before;

	make_layers();
	if (!make_overlay("ovl")) {
		test_skip_now = "overlayfs not available";
		return;
	}
	before = count_mounts();
	CHECK_EQ_INT(shift_mount_overlay(&ovl, "merged", m, 0, &failed),
		     -EINVAL);
	CHECK_EQ_STR(failed.path, lower[1]);
	CHECK_EQ_INT(count_mounts(), before);
	CHECK(!is_mountpoint("merged"));
	/* nothing was created either: the layers are checked first */
	CHECK_EQ_INT(access("up", F_OK), -1);
	shift_idmap_free(m);
}

PRIVATE_TEST(overlay_many_layers_cached_userns)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	struct shift_userns_cache *c = shift_userns_cache_new();
	const char *lower[11];
	char names[10][16];
	int fd, i;
	struct shift_overlay ovl = { .lower = lower };

	for (i = 0; i < 10; i++) {
		snprintf(names[i], sizeof(names[i]), "L%d", i);
		CHECK_EQ_INT(mkdir(names[i], 0755), 0);
		char f[32];

		snprintf(f, sizeof(f), "L%d/f%d", i, i);
		make_file(f, (uid_t)i, (gid_t)i, "x\n");
		lower[i] = names[i];
	}
	lower[10] = NULL;
	CHECK_EQ_INT(mkdir("merged", 0755), 0);
	fd = shift_userns_cache_get(c, m);
	CHECK(fd >= 0);
	CHECK_EQ_INT(shift_mount_overlay_userns(&ovl, "merged", m, fd, 0, NULL), 0);
	check_owner("merged/f0", 100000, 100000);
	check_owner("merged/f9", 100009, 100009);
	CHECK_EQ_INT(shift_userns_cache_get(c, m), fd);
	shift_userns_cache_free(c);
	shift_idmap_free(m);
}

/* chattr +i / -i */
static int set_immutable(const char *path, bool on)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), flags = 0, r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		r = -errno;
	if (on)
		flags |= FS_IMMUTABLE_FL;
	else
		flags &= ~FS_IMMUTABLE_FL;
	if (r == 0 && ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* The kernel's answer, not st_dev: a bind mount of a directory of the
 * same filesystem is a mount point; a directory inside a mount is not. */
PRIVATE_TEST(is_mountpoint)
{
	CHECK_EQ_INT(mkdir("a", 0755), 0);
	CHECK_EQ_INT(mkdir("b", 0755), 0);
	CHECK_EQ_INT(mkdir("a/sub", 0755), 0);
	make_file("f", 0, 0, "x\n");
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "."), 1);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "/"), 1);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "a"), 0);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "f"), 0);
	CHECK_EQ_INT(mount("a", "b", NULL, MS_BIND, NULL), 0);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "b"), 1);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "b/sub"), 0);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, "missing"), -ENOENT);
	CHECK_EQ_INT(shift_mount_is_mountpoint(AT_FDCWD, NULL), -EINVAL);
}

/* A tree shifted by the engine, its subdirectories, another map, a
 * reverse, and a marker of the copy kind: what each means for a mount. */
PRIVATE_TEST(source_state)
{
	struct shift_idmap *m = map_of("b:0:100000:65536");
	struct shift_idmap *other = map_of("b:0:200000:65536");
	struct shift_options so = {.map = m};
	struct shift_source_marker mk = {0};
	char abs[PATH_MAX];

	CHECK_EQ_INT(mkdir("t", 0755), 0);
	CHECK_EQ_INT(mkdir("t/sub", 0755), 0);
	make_file("t/sub/f", 1000, 1000, "x\n");
	make_file("plain", 0, 0, "x\n");
	CHECK(realpath("t", abs) != NULL);

	CHECK_EQ_INT(shift_tree_source_state("t", m, &mk),
		     SHIFT_SOURCE_UNSHIFTED);
	CHECK(mk.root == NULL && mk.state == NULL && mk.map == NULL);
	CHECK_EQ_INT(shift_tree_source_state("plain", m, &mk),
		     SHIFT_SOURCE_UNSHIFTED);
	CHECK_EQ_INT(shift_tree_source_state("missing", m, &mk), -ENOENT);

	CHECK_EQ_INT(shift_tree("t", &so, NULL), 0);
	CHECK_EQ_INT(shift_tree_source_state("t", m, &mk),
		     SHIFT_SOURCE_SHIFTED);
	CHECK_EQ_STR(mk.root, abs);
	CHECK_EQ_STR(mk.state, "done");
	CHECK_EQ_STR(mk.map, "b:0:100000:65536");
	shift_source_marker_clear(&mk);
	CHECK(mk.root == NULL);
	/* below the marked root, a file too */
	CHECK_EQ_INT(shift_tree_source_state("t/sub", m, &mk),
		     SHIFT_SOURCE_SHIFTED);
	CHECK_EQ_STR(mk.root, abs);
	shift_source_marker_clear(&mk);
	CHECK_EQ_INT(shift_tree_source_state("t/sub/f", m, &mk),
		     SHIFT_SOURCE_SHIFTED);
	shift_source_marker_clear(&mk);
	CHECK_EQ_INT(shift_tree_source_state("t/sub", other, &mk),
		     SHIFT_SOURCE_OTHER_MAP);
	CHECK_EQ_STR(mk.map, "b:0:100000:65536");
	shift_source_marker_clear(&mk);

	/* the marker stops at the mount: a bind mount of t/sub elsewhere
	 * starts a tree of its own (its root is unmarked) */
	CHECK_EQ_INT(mkdir("bound", 0755), 0);
	CHECK_EQ_INT(mount("t/sub", "bound", NULL, MS_BIND, NULL), 0);
	CHECK_EQ_INT(shift_tree_source_state("bound", m, &mk),
		     SHIFT_SOURCE_UNSHIFTED);
	CHECK_EQ_INT(umount("bound"), 0);

	/* shifted, then undone: as good as never shifted */
	so.flags = SHIFT_REVERSE;
	CHECK_EQ_INT(shift_tree("t", &so, NULL), 0);
	check_owner("t/sub/f", 1000, 1000);
	CHECK_EQ_INT(shift_tree_source_state("t", m, &mk),
		     SHIFT_SOURCE_UNSHIFTED);
	CHECK_EQ_STR(mk.state, "undone");
	shift_source_marker_clear(&mk);

	/* a shift left half-way (an immutable file it could not chown) is
	 * unfinished, whatever the engine calls that state */
	so.flags = 0;
	CHECK_EQ_INT(mkdir("h", 0755), 0);
	make_file("h/a", 0, 0, "x\n");
	make_file("h/stuck", 0, 0, "x\n");
	CHECK_EQ_INT(set_immutable("h/stuck", true), 0);
	CHECK_EQ_INT(shift_tree("h", &so, NULL), 1);
	CHECK_EQ_INT(set_immutable("h/stuck", false), 0);
	CHECK_EQ_INT(shift_tree_source_state("h", m, &mk),
		     SHIFT_SOURCE_UNFINISHED);
	CHECK(mk.state && strcmp(mk.state, "done") != 0);
	CHECK_EQ_STR(mk.map, "b:0:100000:65536");
	shift_source_marker_clear(&mk);

	shift_idmap_free(m);
	shift_idmap_free(other);
}

TEST_MAIN()
