/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Probe (probe.c): what this kernel can do, each feature tried once per
 * process on something throwaway (a detached tmpfs, a forked child).
 */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

/* What a file owned by 0 on disk must show through the probe's idmap
 * (PROBE_MAP, probe.c). */
#define PROBE_SEEN_ROOT 1000

/* ------------------------------------------------------------------ */
/* Small helpers for the feature tests                                 */
/* ------------------------------------------------------------------ */

/* A detached tmpfs mount; returns its fd. */
static int detached_tmpfs(void)
{
	_cleanup_close_ int fs = -EBADF;
	int mnt;

	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return negative_errno();
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return negative_errno();
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return negative_errno();
	return mnt;
}

/*
 * Run fn in a forked child and return what it _exit()s with, as a
 * negative errno (0 for success).  The child's result travels as the exit
 * code: 0 ok, 1..254 an errno.
 */
static int run_child(int (*fn)(void *), void *arg)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		int r = fn(arg);

		_exit(r < 0 ? (-r > 254 ? 254 : -r) : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	if (!WIFEXITED(status))
		return -ECHILD;
	return -WEXITSTATUS(status);
}

/* ------------------------------------------------------------------ */
/* Feature tests                                                       */
/* ------------------------------------------------------------------ */

struct feature_result {
	bool done;
	int result;
	const char *why;
};
static struct feature_result features[_SHIFT_FEATURE_MAX];

static const char *const feature_names[_SHIFT_FEATURE_MAX] = {
    [SHIFT_FEATURE_MOUNT_API] = "mount-api",
    [SHIFT_FEATURE_MOUNT_SETATTR] = "mount-setattr",
    [SHIFT_FEATURE_IDMAP_TMPFS] = "idmap-tmpfs",
    [SHIFT_FEATURE_IDMAP_OVERLAY_LOWER] = "idmap-overlay-lower",
    [SHIFT_FEATURE_OVERLAY_FD_LAYERS] = "overlay-fd-layers",
    [SHIFT_FEATURE_OPENAT2] = "openat2",
    [SHIFT_FEATURE_USERNS] = "userns",
    [SHIFT_FEATURE_USERNS_UNPRIV] = "userns-unprivileged",
    [SHIFT_FEATURE_IO_URING] = "io_uring",
};

const char *shift_feature_name(enum shift_feature f)
{
	if ((unsigned)f >= _SHIFT_FEATURE_MAX)
		return NULL;
	return feature_names[f];
}

static int probe_mount_api(const char **why)
{
	_cleanup_close_ int fs = -EBADF, tree = -EBADF;
	int r;

	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs >= 0) {
		*why = "fsopen(\"tmpfs\") works";
		return 1;
	}
	r = negative_errno();
	if (r == -ENOSYS) {
		*why = "kernel has no fsopen (Linux < 5.2)";
		return 0;
	}
	if (r != -EPERM)
		return r;
	/* Unprivileged: open_tree without a clone needs no capability. */
	tree = open_tree(AT_FDCWD, "/", OPEN_TREE_CLOEXEC);
	if (tree < 0 && errno == ENOSYS) {
		*why = "kernel has no open_tree (Linux < 5.2)";
		return 0;
	}
	*why = "present (fsopen needs CAP_SYS_ADMIN)";
	return 1;
}

static int probe_mount_setattr(const char **why)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};

	/* A bad fd tells "exists" (EBADF) from "doesn't" (ENOSYS). */
	if (mount_setattr(-1, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0)
		return -EIO; /* must not happen: nothing to change */
	switch (errno) {
	case ENOSYS:
		*why = "kernel has no mount_setattr (Linux < 5.12)";
		return 0;
	case EBADF:
	case EPERM:
	case EINVAL:
		*why = "mount_setattr(-1) fails with EBADF, not ENOSYS";
		return 1;
	default:
		return negative_errno();
	}
}

static int probe_idmap_tmpfs(const char **why)
{
	_cleanup_close_ int mnt = -EBADF;
	int userns, r;

	mnt = detached_tmpfs();
	if (mnt < 0) {
		if (mnt == -EPERM) {
			*why = "needs CAP_SYS_ADMIN";
			return 0;
		}
		if (mnt == -ENOSYS) {
			*why = "kernel has no fsopen (Linux < 5.2)";
			return 0;
		}
		return mnt;
	}
	userns = sk_probe_userns();
	if (userns < 0)
		return userns;
	r = sk_probe_idmap_tree(mnt, userns);
	switch (r) {
	case 0:
		*why = "a detached tmpfs was idmapped";
		return 1;
	case -EINVAL:
		*why = "filesystem 'tmpfs' does not support idmapped mounts "
		       "(Linux < 6.3)";
		return 0;
	case -ENOSYS:
		*why = "kernel has no mount_setattr (Linux < 5.12)";
		return 0;
	case -EPERM:
		*why = "needs CAP_SYS_ADMIN";
		return 0;
	default:
		return r;
	}
}

/* Stages of the overlay trial, reported with the errno. */
enum ovl_stage {
	OVL_OK = 0,
	OVL_NAMESPACE,
	OVL_TMPFS,
	OVL_CLONE,
	OVL_IDMAP,
	OVL_FSOPEN,
	OVL_CONFIG,
	OVL_CREATE,
	OVL_MOUNT,
	OVL_OWNER, /* mounted, but the idmap didn't show through */
};

struct ovl_report {
	int fd_stage, fd_err;	  /* layers given as fds ("lowerdir+") */
	int path_stage, path_err; /* layers given as /proc/self/fd paths */
};

struct ovl_child {
	int userns;
	int wfd;
};

/* Mount an overlay over the idmapped lower and check its owner. */
static int ovl_try(int lower, int base, bool by_fd, int *stage)
{
	_cleanup_close_ int fs = -EBADF, upper = -EBADF, work = -EBADF,
			    mnt = -EBADF;
	char lp[64], up[64], wp[64];
	struct stat st;

	*stage = OVL_FSOPEN;
	fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return negative_errno();
	*stage = OVL_CONFIG;
	if (by_fd) {
		upper = openat(base, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
		work = openat(base, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (upper < 0 || work < 0)
			return negative_errno();
		if (fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower) <
			0 ||
		    fsconfig(fs, FSCONFIG_SET_FD, "upperdir", NULL, upper) <
			0 ||
		    fsconfig(fs, FSCONFIG_SET_FD, "workdir", NULL, work) < 0)
			return negative_errno();
	} else {
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", lower);
		snprintf(up, sizeof(up), "/proc/self/fd/%d/upper", base);
		snprintf(wp, sizeof(wp), "/proc/self/fd/%d/work", base);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lp, 0) < 0 ||
		    fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", up, 0) < 0 ||
		    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", wp, 0) < 0)
			return negative_errno();
	}
	*stage = OVL_CREATE;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return negative_errno();
	*stage = OVL_MOUNT;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return negative_errno();
	*stage = OVL_OWNER;
	if (fstatat(mnt, "f", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return negative_errno();
	if (st.st_uid != PROBE_SEEN_ROOT || st.st_gid != PROBE_SEEN_ROOT)
		return -EINVAL;
	*stage = OVL_OK;
	return 0;
}

static int ovl_child_main(void *data)
{
	const struct ovl_child *c = data;
	struct ovl_report rep = {0};
	_cleanup_close_ int base = -EBADF, lower = -EBADF, fd = -EBADF;
	int r;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		rep.fd_stage = rep.path_stage = OVL_NAMESPACE;
		rep.fd_err = rep.path_err = errno;
		goto out;
	}
	base = detached_tmpfs();
	if (base < 0) {
		rep.fd_stage = rep.path_stage = OVL_TMPFS;
		rep.fd_err = rep.path_err = -base;
		goto out;
	}
	if (mkdirat(base, "lower", 0755) < 0 ||
	    mkdirat(base, "upper", 0755) < 0 ||
	    mkdirat(base, "work", 0755) < 0 ||
	    (fd = openat(base, "lower/f", O_CREAT | O_WRONLY | O_CLOEXEC,
			 0644)) < 0) {
		rep.fd_stage = rep.path_stage = OVL_TMPFS;
		rep.fd_err = rep.path_err = errno;
		goto out;
	}
	lower = open_tree(base, "lower", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (lower < 0) {
		rep.fd_stage = rep.path_stage = OVL_CLONE;
		rep.fd_err = rep.path_err = errno;
		goto out;
	}
	r = sk_probe_idmap_tree(lower, c->userns);
	if (r < 0) {
		rep.fd_stage = rep.path_stage = OVL_IDMAP;
		rep.fd_err = rep.path_err = -r;
		goto out;
	}
	r = ovl_try(lower, base, true, &rep.fd_stage);
	rep.fd_err = -r;
	r = ovl_try(lower, base, false, &rep.path_stage);
	rep.path_err = -r;
out:
	if (write(c->wfd, &rep, sizeof(rep)) != sizeof(rep))
		return -EIO;
	return 0;
}

static const char *ovl_stage_name(int stage)
{
	switch (stage) {
	case OVL_NAMESPACE:
		return "a private mount namespace";
	case OVL_TMPFS:
		return "the scratch tmpfs";
	case OVL_CLONE:
		return "cloning the lower layer";
	case OVL_IDMAP:
		return "idmapping the lower layer";
	case OVL_FSOPEN:
		return "fsopen(\"overlay\")";
	case OVL_CONFIG:
		return "passing the layers";
	case OVL_CREATE:
		return "creating the overlay";
	case OVL_MOUNT:
		return "fsmount of the overlay";
	case OVL_OWNER:
		return "the lower layer's idmap showing through";
	default:
		return "?";
	}
}

/* Both overlay features come from one child. */
static int probe_overlay(void)
{
	struct ovl_report rep = {0};
	struct ovl_child c;
	int pipefd[2], userns, r;
	const char *why_fd, *why_path;

	userns = sk_probe_userns();
	if (userns < 0)
		return userns;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return negative_errno();
	c.userns = userns;
	c.wfd = pipefd[1];
	r = run_child(ovl_child_main, &c);
	close(pipefd[1]);
	if (r == 0 && read(pipefd[0], &rep, sizeof(rep)) != sizeof(rep))
		r = -EIO;
	close(pipefd[0]);
	if (r < 0)
		return r;

	why_fd = rep.fd_stage == OVL_OK
		     ? "fsconfig(FSCONFIG_SET_FD, \"lowerdir+\") works"
		 : rep.fd_stage == OVL_NAMESPACE && rep.fd_err == EPERM
		     ? "needs CAP_SYS_ADMIN"
		     : sk_probe_internf("%s failed: %s",
					ovl_stage_name(rep.fd_stage),
					strerror(rep.fd_err));
	why_path = rep.path_stage == OVL_OK
		       ? "an overlay over an idmapped lower "
			 "layer shows the mapped owner"
		   : rep.path_stage == OVL_NAMESPACE && rep.path_err == EPERM
		       ? "needs CAP_SYS_ADMIN"
		   : rep.path_stage == OVL_OWNER && rep.path_err == EINVAL
		       ? "overlay mounted but ignores the lower layer's idmap"
		       : sk_probe_internf("%s failed: %s",
					  ovl_stage_name(rep.path_stage),
					  strerror(rep.path_err));

	features[SHIFT_FEATURE_OVERLAY_FD_LAYERS].result =
	    rep.fd_stage == OVL_OK;
	features[SHIFT_FEATURE_OVERLAY_FD_LAYERS].why = why_fd;
	features[SHIFT_FEATURE_OVERLAY_FD_LAYERS].done = true;
	/* Either way of passing layers will do for idmapped lowers. */
	if (rep.path_stage == OVL_OK || rep.fd_stage == OVL_OK) {
		features[SHIFT_FEATURE_IDMAP_OVERLAY_LOWER].result = 1;
		features[SHIFT_FEATURE_IDMAP_OVERLAY_LOWER].why =
		    sk_probe_internf(
			"an overlay over an idmapped lower layer shows the "
			"mapped owner (layers as paths: %s; as fds: %s)",
			rep.path_stage == OVL_OK ? "yes" : "no",
			rep.fd_stage == OVL_OK ? "yes" : "no");
	} else {
		features[SHIFT_FEATURE_IDMAP_OVERLAY_LOWER].result = 0;
		features[SHIFT_FEATURE_IDMAP_OVERLAY_LOWER].why = why_path;
	}
	features[SHIFT_FEATURE_IDMAP_OVERLAY_LOWER].done = true;
	return 0;
}

static int probe_openat2(const char **why)
{
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	fd = sys_openat2(AT_FDCWD, "/", &how);
	if (fd >= 0) {
		close(fd);
		*why = "openat2(RESOLVE_NO_SYMLINKS) works";
		return 1;
	}
	switch (errno) {
	case ENOSYS:
		*why = "kernel has no openat2 (Linux < 5.6)";
		return 0;
	case E2BIG:
	case EINVAL:
		*why = "openat2 rejects RESOLVE_NO_SYMLINKS";
		return 0;
	default:
		return negative_errno();
	}
}

static int userns_child(void *data)
{
	bool drop = *(bool *)data;
	char map[32];
	int fd, n;

	if (drop && geteuid() == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			return negative_errno();
		/* Changing creds made us non-dumpable: /proc/self would
		 * belong to root and uid_map be unwritable. */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			return negative_errno();
	}
	if (unshare(CLONE_NEWUSER) < 0)
		return negative_errno();
	if (!drop)
		return 0;
	/* Unprivileged: map ourselves, the one thing always allowed. */
	fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = (int)write(fd, "deny", 4);
		close(fd);
		if (n != 4)
			return -EACCES;
	}
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)geteuid());
	fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = (int)write(fd, map, strlen(map));
	if (n < 0) {
		n = negative_errno();
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}

static int probe_userns_feature(bool unpriv, const char **why)
{
	long v;
	int r;

	r = run_child(userns_child, &unpriv);
	if (r == 0) {
		*why = unpriv ? "an unprivileged process (uid 65534 when run "
				"as root) created one and mapped itself"
			      : "unshare(CLONE_NEWUSER) works";
		return 1;
	}
	if (r == -EINVAL) {
		*why = "kernel built without user namespaces";
		return 0;
	}
	if (sk_probe_read_long("/proc/sys/user/max_user_namespaces", &v) == 0 &&
	    v == 0) {
		*why = "disabled: user.max_user_namespaces is 0";
		return 0;
	}
	if (unpriv &&
	    sk_probe_read_long("/proc/sys/kernel/unprivileged_userns_clone",
			       &v) == 0 &&
	    v == 0) {
		*why = "disabled: kernel.unprivileged_userns_clone is 0";
		return 0;
	}
	if (unpriv &&
	    sk_probe_read_long(
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &v) ==
		0 &&
	    v != 0) {
		*why = sk_probe_internf(
		    "restricted by AppArmor "
		    "(kernel.apparmor_restrict_unprivileged_userns is 1): %s",
		    strerror(-r));
		return 0;
	}
	*why =
	    sk_probe_internf("unshare(CLONE_NEWUSER) failed: %s", strerror(-r));
	return 0;
}

/* ------------------------------------------------------------------ */
/* io_uring                                                            */
/* ------------------------------------------------------------------ */

struct uring_op {
	const char *name;
	int op; /* -1: no such opcode */
	const char *note;
};

static const struct uring_op uring_ops[] = {
#ifdef HAVE_LIBURING
    {"STATX", IORING_OP_STATX, "metadata reads in the walk"},
    {"OPENAT", IORING_OP_OPENAT, "opening entries"},
    {"OPENAT2", IORING_OP_OPENAT2,
     "opening entries without following symlinks"},
    {"CLOSE", IORING_OP_CLOSE, "closing entries"},
    {"GETXATTR", IORING_OP_GETXATTR,
     "reading ACLs and file capabilities by path"},
    {"FGETXATTR", IORING_OP_FGETXATTR, "reading ACLs and file capabilities"},
    {"SETXATTR", IORING_OP_SETXATTR,
     "writing translated ACLs and capabilities by path"},
    {"FSETXATTR", IORING_OP_FSETXATTR,
     "writing translated ACLs and capabilities"},
    {"READ", IORING_OP_READ, "layer extraction"},
    {"WRITE", IORING_OP_WRITE, "layer extraction"},
    {"MKDIRAT", IORING_OP_MKDIRAT, "layer extraction"},
    {"SYMLINKAT", IORING_OP_SYMLINKAT, "layer extraction"},
    {"LINKAT", IORING_OP_LINKAT, "layer extraction"},
    {"UNLINKAT", IORING_OP_UNLINKAT, "whiteouts"},
    {"RENAMEAT", IORING_OP_RENAMEAT, "the resume marker"},
    {"FSYNC", IORING_OP_FSYNC, "the resume marker"},
#else
    {"STATX", -1, "built without liburing"},
#endif
    {"CHOWN", -1,
     "no such opcode in any kernel: ownership changes run as fchownat on "
     "worker threads"},
};

static bool uring_done;
static int uring_result; /* 1, or negative errno making io_uring unusable */
static bool uring_supported[ARRAY_SIZE(uring_ops)];

/* Call with sk_probe_lock held. */
static void probe_uring_locked(void)
{
#ifdef HAVE_LIBURING
	struct io_uring ring;
	struct io_uring_probe *p;
	int r;

	if (uring_done)
		return;
	uring_done = true;
	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		uring_result = r;
		return;
	}
	p = io_uring_get_probe_ring(&ring);
	if (!p) {
		uring_result = -EOPNOTSUPP;
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(uring_ops); i++)
			uring_supported[i] =
			    uring_ops[i].op >= 0 &&
			    io_uring_opcode_supported(p, uring_ops[i].op);
		io_uring_free_probe(p);
		uring_result = 1;
	}
	io_uring_queue_exit(&ring);
#else
	uring_done = true;
	uring_result = -EOPNOTSUPP;
#endif
}

int shift_probe_uring_op(unsigned idx, const char **ret_name,
			 const char **ret_note)
{
	int r;

	if (idx >= ARRAY_SIZE(uring_ops))
		return -ERANGE;
	if (ret_name)
		*ret_name = uring_ops[idx].name;
	if (ret_note)
		*ret_note = uring_ops[idx].note;
	pthread_mutex_lock(&sk_probe_lock);
	probe_uring_locked();
	r = uring_result < 0 ? uring_result : uring_supported[idx];
	pthread_mutex_unlock(&sk_probe_lock);
	return r;
}

static int probe_io_uring(const char **why)
{
	unsigned n = 0, have = 0;
	long v = -1;
	int r;

	pthread_mutex_lock(&sk_probe_lock);
	probe_uring_locked();
	r = uring_result;
	for (size_t i = 0; i < ARRAY_SIZE(uring_ops); i++) {
		if (uring_ops[i].op < 0)
			continue;
		n++;
		have += uring_supported[i];
	}
	pthread_mutex_unlock(&sk_probe_lock);

	if (r > 0) {
		*why = sk_probe_internf(
		    "%u of the %u opcodes libshift can use are "
		    "supported; there is no chown opcode",
		    have, n);
		return 1;
	}
	(void)sk_probe_read_long("/proc/sys/kernel/io_uring_disabled", &v);
	switch (r) {
	case -ENOSYS:
		*why = "kernel built without io_uring";
		return 0;
	case -EPERM:
	case -EACCES:
		*why = v > 0
			   ? sk_probe_internf(
				 "disabled: kernel.io_uring_disabled is %ld", v)
			   : "not permitted for this process";
		return 0;
	case -EOPNOTSUPP:
		*why = "built without liburing";
		return 0;
	case -ENOMEM:
		*why = "cannot allocate a ring (RLIMIT_MEMLOCK?)";
		return 0;
	default:
		return r;
	}
}

static int run_feature(enum shift_feature f, const char **why)
{
	switch (f) {
	case SHIFT_FEATURE_MOUNT_API:
		return probe_mount_api(why);
	case SHIFT_FEATURE_MOUNT_SETATTR:
		return probe_mount_setattr(why);
	case SHIFT_FEATURE_IDMAP_TMPFS:
		return probe_idmap_tmpfs(why);
	case SHIFT_FEATURE_OPENAT2:
		return probe_openat2(why);
	case SHIFT_FEATURE_USERNS:
		return probe_userns_feature(false, why);
	case SHIFT_FEATURE_USERNS_UNPRIV:
		return probe_userns_feature(true, why);
	case SHIFT_FEATURE_IO_URING:
		return probe_io_uring(why);
	default:
		return -EINVAL;
	}
}

static pthread_mutex_t feature_lock = PTHREAD_MUTEX_INITIALIZER;

int shift_probe_feature(enum shift_feature f, struct shift_error *why)
{
	const char *reason = NULL;
	int r;

	if ((unsigned)f >= _SHIFT_FEATURE_MAX)
		return sk_error_errno(why, -EINVAL);
	/* One test at a time: they share the child and the userns. */
	pthread_mutex_lock(&feature_lock);
	if (!features[f].done) {
		if (f == SHIFT_FEATURE_IDMAP_OVERLAY_LOWER ||
		    f == SHIFT_FEATURE_OVERLAY_FD_LAYERS) {
			r = probe_overlay();
			if (r < 0 && (r == -EPERM || r == -EACCES)) {
				/* No userns to idmap with: not a probe failure.
				 */
				features[f].result = 0;
				features[f].why = "needs CAP_SYS_ADMIN";
				features[f].done = true;
			} else if (r < 0) {
				pthread_mutex_unlock(&feature_lock);
				return sk_error_errno(why, r);
			}
		} else {
			r = run_feature(f, &reason);
			if (r < 0) {
				pthread_mutex_unlock(&feature_lock);
				return sk_error_errno(why, r);
			}
			features[f].result = r;
			features[f].why = reason;
			features[f].done = true;
		}
	}
	r = sk_probe_answer(why, features[f].result, features[f].why);
	pthread_mutex_unlock(&feature_lock);
	return r;
}
