/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The probe on the real kernel: a tmpfs can be idmapped, an overlayfs
 * can't (and says so), answers are cached per filesystem, an idmapped
 * mount is judged on its own, and the feature tests give sane answers.
 * Mounts are made in a forked child's private mount namespace, so they
 * vanish with the child whatever happens.
 */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/syscalls.h"
#include "lib.h"

static const char *scratch(void)
{
	return test_scratch("test-probe");
}

static int mkdir_p2(const char *base, const char *sub, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s/%s", base, sub) >= size)
		return -ENAMETOOLONG;
	if (mkdir(out, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void tmpfs_and_overlay(void)
{
	const char *base = scratch();
	_cleanup_(shift_error_clear) struct shift_error why = {0};
	char t[128], d[128], ovl[128], merged[128], opts[512], f[160];
	unsigned before;
	int fd;

	CHECK(base != NULL);
	if (!base)
		return;
	CHECK_EQ_INT(mkdir_p2(base, "t", t, sizeof(t)), 0);
	CHECK_EQ_INT(mount("probe-tmpfs", t, "tmpfs", 0, "size=4m"), 0);

	sk_probe_cache_flush();
	before = sk_probe_idmap_trials();
	CHECK_EQ_INT(shift_probe_idmap(t, &why), 1);
	CHECK(why.why == NULL);
	CHECK_EQ_INT(sk_probe_idmap_trials(), before + 1);

	/* Cached: the same mount, and another path on it, cost no trial. */
	CHECK_EQ_INT(shift_probe_idmap(t, &why), 1);
	CHECK_EQ_INT(mkdir_p2(t, "d", d, sizeof(d)), 0);
	CHECK_EQ_INT(shift_probe_idmap(d, &why), 1);
	CHECK_EQ_INT(sk_probe_idmap_trials(), before + 1);

	/* An overlay built from directories on that tmpfs. */
	CHECK_EQ_INT(mkdir_p2(base, "ovl", ovl, sizeof(ovl)), 0);
	CHECK_EQ_INT(mkdir_p2(ovl, "merged", merged, sizeof(merged)), 0);
	CHECK_EQ_INT(mkdir_p2(t, "lower", d, sizeof(d)), 0);
	CHECK_EQ_INT(mkdir_p2(t, "upper", d, sizeof(d)), 0);
	CHECK_EQ_INT(mkdir_p2(t, "work", d, sizeof(d)), 0);
	snprintf(f, sizeof(f), "%s/lower/file", t);
	fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	snprintf(opts, sizeof(opts),
		 "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", t, t,
		 t);
	if (mount("probe-ovl", merged, "overlay", 0, opts) < 0) {
		if (errno == ENODEV)
			SKIP("kernel has no overlayfs");
		printf("#   mount overlay: %m\n");
		test_failed_now = 1;
		return;
	}
	shift_error_clear(&why);
	CHECK_EQ_INT(shift_probe_idmap(merged, &why), 0);
	CHECK(why.why && strstr(why.why, "'overlay'"));
	CHECK_EQ_STR(why.why,
		     "filesystem 'overlay' does not support idmapped mounts");
	CHECK_EQ_INT(sk_probe_idmap_trials(), before + 2);

	/*
	 * A file in the overlay reports the lower layer's st_dev (the
	 * tmpfs): the cache must still answer for the overlay.
	 */
	snprintf(f, sizeof(f), "%s/file", merged);
	shift_error_clear(&why);
	CHECK_EQ_INT(shift_probe_idmap(f, &why), 0);
	CHECK_EQ_STR(why.why,
		     "filesystem 'overlay' does not support idmapped mounts");
	CHECK_EQ_INT(sk_probe_idmap_trials(), before + 2);
	/* And the tmpfs answer is still its own. */
	CHECK_EQ_INT(shift_probe_idmap(t, &why), 1);

	umount2(merged, MNT_DETACH);
	umount2(t, MNT_DETACH);
}

TEST(tmpfs_supported_overlay_not_cached)
{
	if (geteuid() != 0)
		SKIP("needs root");
	CHECK(scratch() != NULL);
	test_in_private_ns(tmpfs_and_overlay, 0);
}

static void idmapped_mount(void)
{
	const char *base = scratch();
	_cleanup_(shift_error_clear) struct shift_error why = {0};
	struct shift_idmap *map = shift_idmap_new();
	char t[128], idm[128];
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP};
	int userns, tree;

	CHECK(base && map);
	if (!base || !map)
		return;
	CHECK_EQ_INT(mkdir_p2(base, "t", t, sizeof(t)), 0);
	CHECK_EQ_INT(mkdir_p2(base, "idm", idm, sizeof(idm)), 0);
	CHECK_EQ_INT(mount("probe-tmpfs", t, "tmpfs", 0, "size=4m"), 0);
	CHECK_EQ_INT(shift_idmap_parse(map, "b:0:2000:100", NULL), 0);
	userns = shift_userns_create(map);
	CHECK(userns >= 0);
	tree = open_tree(AT_FDCWD, t, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	CHECK(tree >= 0);
	attr.userns_fd = (uint64_t)userns;
	CHECK_EQ_INT(
	    mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)), 0);
	CHECK_EQ_INT(
	    move_mount(tree, "", AT_FDCWD, idm, MOVE_MOUNT_F_EMPTY_PATH), 0);
	close(tree);
	close(userns);
	shift_idmap_free(map);

	sk_probe_cache_flush();
	/* The idmapped mount first: its answer must not stick to the fs. */
	CHECK_EQ_INT(shift_probe_idmap(idm, &why), 0);
	CHECK_EQ_STR(why.why, "already idmapped");
	CHECK_EQ_INT(shift_probe_idmap(t, &why), 1);
	CHECK_EQ_INT(shift_probe_idmap(idm, &why), 0);
	CHECK_EQ_STR(why.why, "already idmapped");

	umount2(idm, MNT_DETACH);
	umount2(t, MNT_DETACH);
}

TEST(already_idmapped)
{
	if (geteuid() != 0)
		SKIP("needs root");
	CHECK(scratch() != NULL);
	test_in_private_ns(idmapped_mount, 0);
}

static void unprivileged(void)
{
	_cleanup_(shift_error_clear) struct shift_error why = {0};

	sk_probe_cache_flush();
	CHECK_EQ_INT(setgroups(0, NULL), 0);
	CHECK_EQ_INT(setresgid(65534, 65534, 65534), 0);
	CHECK_EQ_INT(setresuid(65534, 65534, 65534), 0);
	CHECK_EQ_INT(shift_probe_idmap("/", &why), 0);
	CHECK_EQ_STR(why.why, "needs CAP_SYS_ADMIN");
}

TEST(unprivileged_needs_cap_sys_admin)
{
	if (geteuid() != 0)
		SKIP("needs root (to drop to nobody)");
	CHECK(scratch() != NULL);
	test_in_private_ns(unprivileged, 0);
}

TEST(missing_path)
{
	_cleanup_(shift_error_clear) struct shift_error why = {0};

	CHECK_EQ_INT(shift_probe_idmap("/nonexistent-shiftkit/x", &why),
		     -ENOENT);
	CHECK(why.why == NULL);
	CHECK_EQ_STR(why.path, "/nonexistent-shiftkit/x");
	CHECK_EQ_INT(shift_probe_idmap("", &why), -EINVAL);
}

static long sysctl_or(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

TEST(features)
{
	_cleanup_(shift_error_clear) struct shift_error why = {0}, why2 = {0};
	long uring_off;
	int r;

	if (geteuid() != 0)
		SKIP("needs root");
	for (int f = 0; f < _SHIFT_FEATURE_MAX; f++) {
		shift_error_clear(&why);
		r = shift_probe_feature((enum shift_feature)f, &why);
		printf("#   %-22s %d %s\n",
		       shift_feature_name((enum shift_feature)f), r,
		       why.why ? why.why : "(null)");
		CHECK(r == 0 || r == 1);
		CHECK(why.why != NULL && *why.why);
		CHECK(shift_feature_name((enum shift_feature)f) != NULL);
		/* Once per process: the same answer, the same reason. */
		CHECK_EQ_INT(shift_probe_feature((enum shift_feature)f, &why2),
			     r);
		CHECK_EQ_STR(why2.why, why.why);
	}
	CHECK(shift_feature_name(_SHIFT_FEATURE_MAX) == NULL);
	CHECK_EQ_INT(shift_probe_feature(_SHIFT_FEATURE_MAX, NULL), -EINVAL);

	/* The mount API and idmapped tmpfs: what the other tests rely on. */
	CHECK_EQ_INT(shift_probe_feature(SHIFT_FEATURE_MOUNT_API, NULL), 1);
	CHECK_EQ_INT(shift_probe_feature(SHIFT_FEATURE_MOUNT_SETATTR, NULL), 1);
	CHECK_EQ_INT(shift_probe_feature(SHIFT_FEATURE_USERNS, NULL), 1);
	CHECK_EQ_INT(shift_probe_feature(SHIFT_FEATURE_OPENAT2, NULL), 1);
	CHECK_EQ_STR(shift_feature_name(SHIFT_FEATURE_IDMAP_TMPFS),
		     "idmap-tmpfs");

	/* io_uring agrees with the sysctl that switches it off. */
	uring_off = sysctl_or("/proc/sys/kernel/io_uring_disabled", 0);
	r = shift_probe_feature(SHIFT_FEATURE_IO_URING, &why);
	if (uring_off == 2)
		CHECK_EQ_INT(r, 0);
#ifdef HAVE_LIBURING
	else if (uring_off == 0 &&
		 access("/proc/sys/kernel/io_uring_disabled", F_OK) == 0)
		CHECK_EQ_INT(r, 1);
#endif
}

TEST(sysctls)
{
	const char *name = NULL, *meaning = NULL;
	long v = 0;
	int r;

	r = shift_probe_sysctl(0, &name, &v, &meaning);
	CHECK_EQ_STR(name, "user.max_user_namespaces");
	CHECK(meaning != NULL);
	CHECK_EQ_INT(r,
		     access("/proc/sys/user/max_user_namespaces", F_OK) == 0);
	CHECK_EQ_INT(v, sysctl_or("/proc/sys/user/max_user_namespaces", -1));
	for (unsigned i = 0; i < 6; i++) {
		r = shift_probe_sysctl(i, &name, &v, &meaning);
		CHECK(r == 0 || r == 1);
		CHECK(name && meaning);
		if (r == 0)
			CHECK_EQ_INT(v, -1);
	}
	CHECK_EQ_INT(shift_probe_sysctl(6, &name, &v, &meaning), -ERANGE);
}

TEST(uring_ops)
{
	const char *name = NULL, *note = NULL, *last = NULL;
	unsigned i;
	int r, statx = -2;

	for (i = 0; (r = shift_probe_uring_op(i, &name, &note)) != -ERANGE;
	     i++) {
		CHECK(name && note);
		if (name && strcmp(name, "STATX") == 0)
			statx = r;
		last = name;
		if (r < 0)
			CHECK(r == -ENOSYS || r == -EPERM || r == -EOPNOTSUPP ||
			      r == -EACCES);
	}
	CHECK(i >= 2);
	/* No kernel has a chown opcode; the list says so last. */
	CHECK_EQ_STR(last, "CHOWN");
	CHECK(shift_probe_uring_op(i - 1, NULL, NULL) <= 0);
	/* STATX (5.6) comes with any io_uring that works. */
	if (shift_probe_feature(SHIFT_FEATURE_IO_URING, NULL) == 1)
		CHECK_EQ_INT(statx, 1);
}

TEST(uidmap_helpers)
{
	char *path = NULL, *caps = NULL;
	bool setuid_root = false;
	int r;

	CHECK_EQ_INT(shift_probe_uidmap_helper("shiftkit-no-such-helper", &path,
					       &setuid_root, &caps),
		     0);
	CHECK(path == NULL);
	CHECK_EQ_INT(shift_probe_uidmap_helper("a/b", &path, NULL, NULL),
		     -EINVAL);

	r = shift_probe_uidmap_helper("newuidmap", &path, &setuid_root, &caps);
	CHECK(r == 0 || r == 1);
	if (r == 1) {
		struct stat st;

		CHECK(path && path[0] == '/');
		CHECK(path && stat(path, &st) == 0);
		if (path && stat(path, &st) == 0)
			CHECK_EQ_INT(setuid_root,
				     (st.st_mode & S_ISUID) && st.st_uid == 0);
		/* It needs its privilege from somewhere. */
		CHECK(setuid_root || caps);
	} else {
		CHECK(access("/usr/bin/newuidmap", F_OK) != 0);
	}
	free(path);
	free(caps);
}

/* shift_probe_fstype reads only block devices and regular files: a fifo
 * is never opened (that would block), plain files hold no filesystem. */
TEST(fstype_only_reads_devices_and_files)
{
	char dir[] = "/tmp/test-probe-XXXXXX", p[64], t[32] = "x";
	int fd;

	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	CHECK_EQ_INT(shift_probe_fstype(dir, t, sizeof(t)), 0);
	CHECK_EQ_STR(t, "");
	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK_EQ_INT(mkfifo(p, 0600), 0);
	CHECK_EQ_INT(shift_probe_fstype(p, t, sizeof(t)), 0);
	unlink(p);
	snprintf(p, sizeof(p), "%s/file", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, "not a filesystem\n", 17) == 17);
	if (fd >= 0)
		close(fd);
	CHECK_EQ_INT(shift_probe_fstype(p, t, sizeof(t)), 0);
	unlink(p);
	CHECK_EQ_INT(shift_probe_fstype(p, t, sizeof(t)), -ENOENT);
	CHECK_EQ_INT(shift_probe_fstype(p, t, 0), -EINVAL);
	rmdir(dir);
}

TEST_MAIN()
