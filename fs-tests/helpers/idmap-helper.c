/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * idmap-helper: the steps of the kernel-semantics suite that the shell can't
 * express.  It talks to the kernel directly (its own user namespaces, raw
 * mount API calls) so that the suite checks the kernel, not libshift; only
 * the map grammar comes from libshift.
 *
 *   idmap-helper idmap [OPTIONS] SRC
 *	clone SRC, idmap it, optionally attach it; prints one line per step,
 *	"STEP: OK" or "STEP: ERRNO" (e.g. "idmap: EPERM").
 *   idmap-helper userns [--map MAP]... [--mntns] [--uid N] [--gid N] -- CMD
 *	run CMD as the given ids (default 0) in a new user namespace.
 *   idmap-helper do [IDENTITY] OP ARGS [OP ARGS]...
 *	run file operations under a chosen identity; one result line per op.
 *
 * Exit status: 0 when every step ran (whatever the kernel answered: the
 * answers are the output), 1 when the helper itself failed, 2 on bad usage.
 */
#include "config.h"

#include <endian.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/btrfs.h>
#include <linux/capability.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "util/macros.h"
#include "shift.h"
#include "util/syscalls.h"

static const char *prog = "idmap-helper";

static void shift_idmap_freep(struct shift_idmap **m)
{
	shift_idmap_free(*m);
}

static _printf_(1, 2) _noreturn_ void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static _noreturn_ void usage_error(const char *what)
{
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n",
		prog, what, prog);
	exit(2);
}

/* "OK" or the errno's symbolic name: what the tests compare against. */
static const char *errname(int err)
{
	const char *n;

	if (err == 0)
		return "OK";
	n = strerrorname_np(err < 0 ? -err : err);
	return n ? n : "E?";
}

static void result(const char *step, int r)
{
	printf("%s: %s\n", step, errname(r < 0 ? errno : 0));
	fflush(stdout);
}

static uint32_t parse_id(const char *s)
{
	char *end;
	unsigned long long v;

	if (strcmp(s, "-1") == 0)
		return UINT32_MAX;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v > UINT32_MAX)
		usage_error("bad number");
	return (uint32_t)v;
}

static void add_map(struct shift_idmap *map, const char *spec)
{
	struct shift_error err = { 0 };

	if (shift_idmap_parse(map, spec, &err) < 0) {
		fprintf(stderr, "%s: bad map '%s': %s\n", prog, spec,
			err.why ? err.why : "invalid");
		exit(2);
	}
}

/* ------------------------------------------------------------------ */
/* User namespaces, made by hand                                       */
/* ------------------------------------------------------------------ */

static int write_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		return negative_errno();
	return 0;
}

enum { MAP_UID = 1, MAP_GID = 2 };

static int write_maps(pid_t pid, const struct shift_idmap *map, int which)
{
	char path[64], buf[8192];
	int r;

	if (which & MAP_UID) {
		r = shift_idmap_format_proc(map, SHIFT_UID, buf, sizeof(buf));
		if (r < 0)
			return r;
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		r = write_file(path, buf);
		if (r < 0)
			return r;
	}
	if (which & MAP_GID) {
		r = shift_idmap_format_proc(map, SHIFT_GID, buf, sizeof(buf));
		if (r < 0)
			return r;
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		r = write_file(path, buf);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * A child unshares a user namespace and waits; we write the maps asked for
 * (which: MAP_UID|MAP_GID, 0 for none), keep an fd to the namespace and
 * let the child go.  Returns the fd or a negative errno.
 */
static int make_userns(const struct shift_idmap *map, int which)
{
	int ready[2], go[2], r;
	_cleanup_close_ int fd = -EBADF;
	char path[64], c = 0;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return negative_errno();
	pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		/* Parent closes its end when done. */
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	r = read(ready[0], &c, 1) == 1 ? 0 : -ECHILD;
	close(ready[0]);
	if (r == 0)
		r = write_maps(pid, map, which);
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = negative_errno();
	}
	close(go[1]);
	(void)waitpid(pid, NULL, 0);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

/* ------------------------------------------------------------------ */
/* idmap: clone, idmap, attach, and the edge cases of mount_setattr     */
/* ------------------------------------------------------------------ */

static const struct option idmap_opts[] = {
	{ "map", required_argument, NULL, 'm' },
	{ "userns", required_argument, NULL, 'u' },
	{ "attached", no_argument, NULL, 'a' },
	{ "clone-recursive", no_argument, NULL, 'C' },
	{ "recursive", no_argument, NULL, 'R' },
	{ "rdonly", no_argument, NULL, 'r' },
	{ "nosuid", no_argument, NULL, 's' },
	{ "again", no_argument, NULL, 'g' },
	{ "reclone", no_argument, NULL, 'c' },
	{ "attach", required_argument, NULL, 't' },
	{ "attach-always", no_argument, NULL, 'A' },
	{}
};

static int cmd_idmap(int argc, char **argv)
{
	_cleanup_(shift_idmap_freep) struct shift_idmap *map = shift_idmap_new();
	_cleanup_close_ int tree = -EBADF, ns = -EBADF;
	const char *kind = "map", *attach = NULL, *src;
	bool attached = false, clone_rec = false, rec = false, again = false;
	bool reclone = false, attach_always = false;
	uint64_t extra = 0;
	struct mount_attr attr = {};
	int c, r;

	if (!map)
		die("out of memory");
	while ((c = getopt_long(argc, argv, "+m:", idmap_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			add_map(map, optarg);
			break;
		case 'u':
			kind = optarg;
			break;
		case 'a':
			attached = true;
			break;
		case 'C':
			clone_rec = true;
			break;
		case 'R':
			rec = true;
			break;
		case 'r':
			extra |= MOUNT_ATTR_RDONLY;
			break;
		case 's':
			extra |= MOUNT_ATTR_NOSUID;
			break;
		case 'g':
			again = true;
			break;
		case 'c':
			reclone = true;
			break;
		case 't':
			attach = optarg;
			break;
		case 'A':
			attach_always = true;
			break;
		default:
			usage_error("bad option to 'idmap'");
		}
	}
	if (optind + 1 != argc)
		usage_error("'idmap' takes one source path");
	src = argv[optind];

	/* The namespace: a real one, or one of the broken kinds to test. */
	if (strcmp(kind, "map") == 0) {
		r = make_userns(map, MAP_UID | MAP_GID);
		if (r < 0)
			die("Failed to create a user namespace: %s", strerror(-r));
		ns = r;
	} else if (strcmp(kind, "nomaps") == 0 ||
		   strcmp(kind, "uidonly") == 0) {
		r = make_userns(map, kind[0] == 'u' ? MAP_UID : 0);
		if (r < 0)
			die("Failed to create a user namespace: %s", strerror(-r));
		ns = r;
	} else if (strcmp(kind, "initial") == 0) {
		ns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			die("Failed to open '/proc/self/ns/user': %m");
	} else if (strcmp(kind, "negative") == 0) {
		attr.userns_fd = (uint64_t)-1;
	} else if (strcmp(kind, "huge") == 0) {
		attr.userns_fd = (uint64_t)INT32_MAX + 10;
	} else if (strcmp(kind, "closed") == 0) {
		/* An fd number that is certainly not open. */
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			die("Failed to open '/dev/null': %m");
		close(fd);
		attr.userns_fd = (uint64_t)fd;
	} else if (strcmp(kind, "notuserns") == 0) {
		/* An open fd that is not a user namespace. */
		ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			die("Failed to open '/proc/self/ns/mnt': %m");
	} else {
		usage_error("--userns takes map, nomaps, uidonly, initial, negative, huge, closed or notuserns");
	}
	if (ns >= 0)
		attr.userns_fd = (uint64_t)ns;
	attr.attr_set = MOUNT_ATTR_IDMAP | extra;

	if (attached) {
		/* mount_setattr on a mount that is already in the tree. */
		r = mount_setattr(AT_FDCWD, src, rec ? AT_RECURSIVE : 0, &attr,
				  sizeof(attr));
		result("idmap", r);
		return 0;
	}

	tree = open_tree(AT_FDCWD, src,
			 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				 (clone_rec ? AT_RECURSIVE : 0));
	if (tree < 0)
		die("Failed to clone '%s': %m", src);
	r = mount_setattr(tree, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0),
			  &attr, sizeof(attr));
	result("idmap", r);
	if (r < 0 && !attach_always)
		return 0;

	if (again) {
		struct mount_attr a2 = attr;
		_cleanup_close_ int ns2 = make_userns(map, MAP_UID | MAP_GID);

		if (ns2 < 0)
			die("Failed to create a user namespace: %s",
			    strerror(-ns2));
		a2.userns_fd = (uint64_t)ns2;
		a2.attr_set = MOUNT_ATTR_IDMAP;
		r = mount_setattr(tree, "", AT_EMPTY_PATH, &a2, sizeof(a2));
		result("again", r);
	}
	if (reclone) {
		struct mount_attr a2 = attr;
		_cleanup_close_ int ns2 = make_userns(map, MAP_UID | MAP_GID);
		_cleanup_close_ int t2 = -EBADF;

		if (ns2 < 0)
			die("Failed to create a user namespace: %s",
			    strerror(-ns2));
		t2 = open_tree(tree, "", AT_EMPTY_PATH | OPEN_TREE_CLONE |
						 OPEN_TREE_CLOEXEC);
		if (t2 < 0)
			die("Failed to clone the idmapped tree: %m");
		a2.userns_fd = (uint64_t)ns2;
		a2.attr_set = MOUNT_ATTR_IDMAP;
		r = mount_setattr(t2, "", AT_EMPTY_PATH, &a2, sizeof(a2));
		result("reclone", r);
	}
	if (attach) {
		r = move_mount(tree, "", AT_FDCWD, attach,
			       MOVE_MOUNT_F_EMPTY_PATH);
		result("attach", r);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* userns: run a command in a new user namespace                       */
/* ------------------------------------------------------------------ */

static const struct option userns_opts[] = {
	{ "map", required_argument, NULL, 'm' },
	{ "mntns", no_argument, NULL, 'n' },
	{ "uid", required_argument, NULL, 'u' },
	{ "gid", required_argument, NULL, 'g' },
	{}
};

static int cmd_userns(int argc, char **argv)
{
	_cleanup_(shift_idmap_freep) struct shift_idmap *map = shift_idmap_new();
	uid_t uid = 0;
	gid_t gid = 0;
	bool mntns = false;
	int ready[2], go[2], c, status, r;
	char ch = 0;
	pid_t pid;

	if (!map)
		die("out of memory");
	while ((c = getopt_long(argc, argv, "+m:", userns_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			add_map(map, optarg);
			break;
		case 'n':
			mntns = true;
			break;
		case 'u':
			uid = parse_id(optarg);
			break;
		case 'g':
			gid = parse_id(optarg);
			break;
		default:
			usage_error("bad option to 'userns'");
		}
	}
	if (optind >= argc)
		usage_error("'userns' needs a command");
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		die("Failed to create a pipe: %m");
	pid = fork();
	if (pid < 0)
		die("Failed to fork: %m");
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (unshare(CLONE_NEWUSER | (mntns ? CLONE_NEWNS : 0)) < 0)
			die("Failed to unshare: %m");
		if (write(ready[1], &ch, 1) != 1)
			_exit(1);
		if (read(go[0], &ch, 1) != 1)
			die("Failed to get the maps written");
		if (mntns && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			die("Failed to make '/' private: %m");
		if (setgroups(0, NULL) < 0)
			die("Failed to drop supplementary groups: %m");
		if (setresgid(gid, gid, gid) < 0)
			die("Failed to become gid %u: %m", (unsigned)gid);
		if (setresuid(uid, uid, uid) < 0)
			die("Failed to become uid %u: %m", (unsigned)uid);
		execvp(argv[optind], argv + optind);
		die("Failed to run '%s': %m", argv[optind]);
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &ch, 1) != 1) {
		(void)waitpid(pid, &status, 0);
		exit(1);
	}
	r = write_maps(pid, map, MAP_UID | MAP_GID);
	if (r < 0) {
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		die("Failed to write the maps: %s", strerror(-r));
	}
	if (write(go[1], &ch, 1) != 1)
		die("Failed to start the child: %m");
	close(go[1]);
	if (waitpid(pid, &status, 0) < 0)
		die("Failed to wait: %m");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ------------------------------------------------------------------ */
/* do: file operations under a chosen identity                         */
/* ------------------------------------------------------------------ */

static void drop_caps(const char *list)
{
	cap_t caps = cap_get_proc();
	_cleanup_free_ char *copy = strdup(list);
	char *tok, *save = NULL;

	if (!caps || !copy)
		die("Failed to read capabilities: %m");
	if (strcmp(list, "all") == 0) {
		if (cap_clear(caps) < 0)
			die("Failed to clear capabilities: %m");
	} else {
		for (tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			cap_value_t v;

			if (cap_from_name(tok, &v) < 0)
				usage_error("unknown capability");
			if (cap_set_flag(caps, CAP_EFFECTIVE, 1, &v,
					 CAP_CLEAR) < 0 ||
			    cap_set_flag(caps, CAP_PERMITTED, 1, &v,
					 CAP_CLEAR) < 0 ||
			    cap_set_flag(caps, CAP_INHERITABLE, 1, &v,
					 CAP_CLEAR) < 0)
				die("Failed to edit capabilities: %m");
		}
	}
	if (cap_set_proc(caps) < 0)
		die("Failed to set capabilities: %m");
	cap_free(caps);
}

static void set_groups(const char *list)
{
	gid_t g[64];
	size_t n = 0;
	_cleanup_free_ char *copy = strdup(list);
	char *tok, *save = NULL;

	if (!copy)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && n < ARRAY_SIZE(g);
	     tok = strtok_r(NULL, ",", &save))
		g[n++] = parse_id(tok);
	if (setgroups(n, g) < 0)
		die("Failed to set groups: %m");
}

static int op_stat(const char *path, bool follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);

	if (r < 0)
		return r;
	printf("%u:%u:%o\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
	       (unsigned)(st.st_mode & 07777));
	return 0;
}

static int op_tmpfile(const char *dir, mode_t mode, const char *name)
{
	_cleanup_close_ int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	char proc[64];

	if (fd < 0)
		return -1;
	/* Link through /proc: AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
}

static int op_truncate(const char *path, off_t len)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return ftruncate(fd, len);
}

static int op_write(const char *path)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return write(fd, "x", 1) == 1 ? 0 : -1;
}

static int op_read(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -1 : 0;
}

static int split_dir(const char *path, char *dir, size_t size,
		     const char **name)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		snprintf(dir, size, ".");
		*name = path;
	} else {
		if ((size_t)(slash - path) + 1 > size)
			return -1;
		memcpy(dir, path, slash - path);
		dir[slash - path] = '\0';
		if (dir[0] == '\0')
			snprintf(dir, size, "/");
		*name = slash + 1;
	}
	if (strlen(*name) >= BTRFS_PATH_NAME_MAX)
		return -1;
	return 0;
}

static int op_subvol_create(const char *path)
{
	struct btrfs_ioctl_vol_args args = {};
	char dir[4096];
	const char *name;
	_cleanup_close_ int fd = -EBADF;

	if (split_dir(path, dir, sizeof(dir), &name) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	strncpy(args.name, name, sizeof(args.name) - 1);
	return ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args);
}

static int op_snapshot(const char *src, const char *dst, bool rdonly)
{
	struct btrfs_ioctl_vol_args_v2 args = {};
	char dir[4096];
	const char *name;
	_cleanup_close_ int fd = -EBADF, sfd = -EBADF;

	if (split_dir(dst, dir, sizeof(dir), &name) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	args.fd = sfd;
	args.flags = rdonly ? BTRFS_SUBVOL_RDONLY : 0;
	strncpy(args.name, name, sizeof(args.name) - 1);
	return ioctl(fd, BTRFS_IOC_SNAP_CREATE_V2, &args);
}

static int op_subvol_delete(const char *path)
{
	struct btrfs_ioctl_vol_args args = {};
	char dir[4096];
	const char *name;
	_cleanup_close_ int fd = -EBADF;

	if (split_dir(path, dir, sizeof(dir), &name) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	strncpy(args.name, name, sizeof(args.name) - 1);
	return ioctl(fd, BTRFS_IOC_SNAP_DESTROY, &args);
}

static int op_subvol_ro(const char *path, bool ro)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t flags;

	if (fd < 0)
		return -1;
	if (ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0)
		return -1;
	flags = ro ? (flags | BTRFS_SUBVOL_RDONLY) :
		     (flags & ~(uint64_t)BTRFS_SUBVOL_RDONLY);
	return ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags);
}

/* security.capability: print "v2" or "v3:ROOTID" as the caller reads it. */
static int op_getcap(const char *path)
{
	struct vfs_ns_cap_data cap = {};
	ssize_t n = getxattr(path, "security.capability", &cap, sizeof(cap));
	uint32_t magic;

	if (n < 0)
		return -1;
	magic = le32toh(cap.magic_etc) & VFS_CAP_REVISION_MASK;
	if (magic == VFS_CAP_REVISION_2 && n == XATTR_CAPS_SZ_2)
		printf("v2\n");
	else if (magic == VFS_CAP_REVISION_3 && n == XATTR_CAPS_SZ_3)
		printf("v3:%u\n", (unsigned)le32toh(cap.rootid));
	else
		printf("unknown:%zd\n", n);
	return 0;
}

/* Write a cap_net_raw+ep capability, v2 or v3 with the given rootid. */
static int op_setcap(const char *path, const char *version, uint32_t rootid)
{
	struct vfs_ns_cap_data cap = {};
	size_t size;

	cap.data[0].permitted = htole32(1u << CAP_NET_RAW);
	if (strcmp(version, "v2") == 0) {
		cap.magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE);
		size = XATTR_CAPS_SZ_2;
	} else if (strcmp(version, "v3") == 0) {
		cap.magic_etc = htole32(VFS_CAP_REVISION_3 | VFS_CAP_FLAGS_EFFECTIVE);
		cap.rootid = htole32(rootid);
		size = XATTR_CAPS_SZ_3;
	} else {
		usage_error("setcap takes v2 or v3");
	}
	return setxattr(path, "security.capability", &cap, size, 0);
}

/* Quota usage of one id on a block device: "inodes:N space:N". */
static int op_quota(const char *dev, const char *kind, uint32_t id)
{
	struct dqblk dq = {};
	int type = strcmp(kind, "g") == 0 ? GRPQUOTA : USRQUOTA;

	if (quotactl(QCMD(Q_GETQUOTA, type), dev, (int)id, (caddr_t)&dq) < 0)
		return -1;
	printf("inodes:%llu space:%llu\n", (unsigned long long)dq.dqb_curinodes,
	       (unsigned long long)dq.dqb_curspace);
	return 0;
}

#ifdef HAVE_LIBURING
/*
 * Create path with io_uring openat.  With as_uid/as_gid != -1 the request
 * carries a personality registered while running as those ids (effective
 * and fs ids), after which we are root again: the file must get the
 * personality's ids, not ours.
 */
static int op_uring_create(const char *path, mode_t mode, uint32_t as_uid,
			   uint32_t as_gid)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int r, personality = 0, res;

	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	if (as_uid != UINT32_MAX) {
		if (setresgid(-1, as_gid, -1) < 0 ||
		    setresuid(-1, as_uid, -1) < 0)
			die("Failed to switch to %u:%u: %m", as_uid, as_gid);
		personality = io_uring_register_personality(&ring);
		if (setresuid(-1, 0, -1) < 0 || setresgid(-1, 0, -1) < 0)
			die("Failed to switch back to root: %m");
		if (personality < 0) {
			io_uring_queue_exit(&ring);
			errno = -personality;
			return -1;
		}
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_openat(sqe, AT_FDCWD, path,
			     O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
	if (as_uid != UINT32_MAX)
		sqe->personality = (uint16_t)personality;
	r = io_uring_submit(&ring);
	if (r < 0) {
		io_uring_queue_exit(&ring);
		errno = -r;
		return -1;
	}
	r = io_uring_wait_cqe(&ring, &cqe);
	if (r < 0) {
		io_uring_queue_exit(&ring);
		errno = -r;
		return -1;
	}
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	close(res);
	return 0;
}
#endif

static const struct option do_opts[] = {
	{ "uid", required_argument, NULL, 'u' },
	{ "gid", required_argument, NULL, 'g' },
	{ "groups", required_argument, NULL, 'G' },
	{ "fsuid", required_argument, NULL, 'U' },
	{ "fsgid", required_argument, NULL, 'F' },
	{ "drop-caps", required_argument, NULL, 'd' },
	{ "umask", required_argument, NULL, 'k' },
	{}
};

/* Number of arguments each op takes. */
static const struct {
	const char *name;
	int nargs;
} ops[] = {
	{ "create", 2 },  { "mkdir", 2 },	  { "mknod", 5 },
	{ "symlink", 2 }, { "link", 2 },	  { "rename", 2 },
	{ "unlink", 1 },  { "rmdir", 1 },	  { "tmpfile", 3 },
	{ "chown", 3 },	  { "lchown", 3 },	  { "chmod", 2 },
	{ "truncate", 2 }, { "write", 1 },	  { "read", 1 },
	{ "stat", 1 },	  { "lstat", 1 },	  { "subvol-create", 1 },
	{ "snapshot", 3 }, { "subvol-delete", 1 }, { "subvol-ro", 2 },
	{ "getcap", 1 },  { "setcap", 3 },	  { "uring-create", 4 },
	{ "quota", 3 },	  { "ids", 0 },
};

static mode_t parse_mode(const char *s)
{
	return (mode_t)strtoul(s, NULL, 8);
}

static int run_op(const char *op, char **a)
{
	if (strcmp(op, "create") == 0) {
		int fd = open(a[0], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
			      parse_mode(a[1]));

		if (fd >= 0)
			close(fd);
		return fd < 0 ? -1 : 0;
	}
	if (strcmp(op, "mkdir") == 0)
		return mkdir(a[0], parse_mode(a[1]));
	if (strcmp(op, "mknod") == 0) {
		/* mknod PATH TYPE MODE MAJOR MINOR, TYPE one of c b p f s */
		mode_t t = a[1][0] == 'c' ? S_IFCHR :
			   a[1][0] == 'b' ? S_IFBLK :
			   a[1][0] == 'p' ? S_IFIFO :
			   a[1][0] == 's' ? S_IFSOCK : S_IFREG;

		return mknod(a[0], t | parse_mode(a[2]),
			     makedev(parse_id(a[3]), parse_id(a[4])));
	}
	if (strcmp(op, "symlink") == 0)
		return symlink(a[0], a[1]);
	if (strcmp(op, "link") == 0)
		return link(a[0], a[1]);
	if (strcmp(op, "rename") == 0)
		return rename(a[0], a[1]);
	if (strcmp(op, "unlink") == 0)
		return unlink(a[0]);
	if (strcmp(op, "rmdir") == 0)
		return rmdir(a[0]);
	if (strcmp(op, "tmpfile") == 0)
		return op_tmpfile(a[0], parse_mode(a[1]), a[2]);
	if (strcmp(op, "chown") == 0)
		return chown(a[0], parse_id(a[1]), parse_id(a[2]));
	if (strcmp(op, "lchown") == 0)
		return lchown(a[0], parse_id(a[1]), parse_id(a[2]));
	if (strcmp(op, "chmod") == 0)
		return chmod(a[0], parse_mode(a[1]));
	if (strcmp(op, "truncate") == 0)
		return op_truncate(a[0], (off_t)parse_id(a[1]));
	if (strcmp(op, "write") == 0)
		return op_write(a[0]);
	if (strcmp(op, "read") == 0)
		return op_read(a[0]);
	if (strcmp(op, "stat") == 0)
		return op_stat(a[0], true);
	if (strcmp(op, "lstat") == 0)
		return op_stat(a[0], false);
	if (strcmp(op, "subvol-create") == 0)
		return op_subvol_create(a[0]);
	if (strcmp(op, "snapshot") == 0)
		return op_snapshot(a[0], a[1], strcmp(a[2], "ro") == 0);
	if (strcmp(op, "subvol-delete") == 0)
		return op_subvol_delete(a[0]);
	if (strcmp(op, "subvol-ro") == 0)
		return op_subvol_ro(a[0], strcmp(a[1], "1") == 0);
	if (strcmp(op, "getcap") == 0)
		return op_getcap(a[0]);
	if (strcmp(op, "setcap") == 0)
		return op_setcap(a[0], a[1], parse_id(a[2]));
	if (strcmp(op, "uring-create") == 0) {
#ifdef HAVE_LIBURING
		return op_uring_create(a[0], parse_mode(a[1]), parse_id(a[2]),
				       parse_id(a[3]));
#else
		errno = ENOSYS;
		return -1;
#endif
	}
	if (strcmp(op, "quota") == 0)
		return op_quota(a[0], a[1], parse_id(a[2]));
	if (strcmp(op, "ids") == 0) {
		printf("%u:%u:%u:%u\n", (unsigned)geteuid(), (unsigned)getegid(),
		       (unsigned)setfsuid(-1), (unsigned)setfsgid(-1));
		return 0;
	}
	usage_error("unknown op");
}

static int cmd_do(int argc, char **argv)
{
	const char *groups = NULL, *caps = NULL;
	uint32_t uid = UINT32_MAX, gid = UINT32_MAX;
	uint32_t fsuid = UINT32_MAX, fsgid = UINT32_MAX;
	int c;

	while ((c = getopt_long(argc, argv, "+", do_opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			uid = parse_id(optarg);
			break;
		case 'g':
			gid = parse_id(optarg);
			break;
		case 'G':
			groups = optarg;
			break;
		case 'U':
			fsuid = parse_id(optarg);
			break;
		case 'F':
			fsgid = parse_id(optarg);
			break;
		case 'd':
			caps = optarg;
			break;
		case 'k':
			umask(parse_mode(optarg));
			break;
		default:
			usage_error("bad option to 'do'");
		}
	}

	/* Order matters: groups and gid need privilege, uid drops it. */
	if (groups)
		set_groups(*groups ? groups : "");
	else if (uid != UINT32_MAX || gid != UINT32_MAX)
		set_groups("");
	if (gid != UINT32_MAX && setresgid(gid, gid, gid) < 0)
		die("Failed to become gid %u: %m", gid);
	if (caps)
		drop_caps(caps);
	if (uid != UINT32_MAX && setresuid(uid, uid, uid) < 0)
		die("Failed to become uid %u: %m", uid);
	/* setfsuid() reports nothing useful; check by reading back. */
	if (fsgid != UINT32_MAX) {
		setfsgid(fsgid);
		if ((uint32_t)setfsgid(-1) != fsgid)
			die("Failed to set fsgid %u", fsgid);
	}
	if (fsuid != UINT32_MAX) {
		setfsuid(fsuid);
		if ((uint32_t)setfsuid(-1) != fsuid)
			die("Failed to set fsuid %u", fsuid);
	}

	while (optind < argc) {
		const char *op = argv[optind];
		int nargs = -1, r;
		size_t i;

		for (i = 0; i < ARRAY_SIZE(ops); i++)
			if (strcmp(ops[i].name, op) == 0)
				nargs = ops[i].nargs;
		if (nargs < 0)
			usage_error("unknown op");
		if (optind + 1 + nargs > argc)
			usage_error("too few arguments for an op");
		errno = 0;
		r = run_op(op, argv + optind + 1);
		if (r < 0 || (strcmp(op, "stat") != 0 &&
			      strcmp(op, "lstat") != 0 &&
			      strcmp(op, "getcap") != 0 &&
			      strcmp(op, "quota") != 0 &&
			      strcmp(op, "ids") != 0))
			result(op, r);
		optind += 1 + nargs;
	}
	return 0;
}

static void help(void)
{
	printf("Usage: %s idmap [--map MAP]... [--userns KIND] [--attached]\n"
	       "                  [--clone-recursive] [--recursive] [--rdonly] [--nosuid]\n"
	       "                  [--again] [--reclone] [--attach DIR [--attach-always]] SRC\n"
	       "       %s userns [--map MAP]... [--mntns] [--uid N] [--gid N] -- CMD...\n"
	       "       %s do [--uid N] [--gid N] [--groups L] [--fsuid N] [--fsgid N]\n"
	       "             [--drop-caps LIST|all] [--umask M] OP ARGS [OP ARGS]...\n"
	       "\n"
	       "The kernel-semantics suite's helper.  MAP is [u:|g:|b:]DISK:SEEN:COUNT.\n"
	       "KIND: map (default), nomaps, uidonly, initial, negative, huge, closed,\n"
	       "notuserns.  Each step prints 'STEP: OK' or 'STEP: ERRNO'.\n"
	       "Ops: create P MODE, mkdir P MODE, mknod P c|b|p|s|f MODE MAJ MIN,\n"
	       "symlink T P, link A B, rename A B, unlink P, rmdir P, tmpfile DIR MODE P,\n"
	       "chown P U G, lchown P U G, chmod P MODE, truncate P LEN, write P, read P,\n"
	       "stat P, lstat P (print UID:GID:MODE), subvol-create P, snapshot SRC P ro|rw,\n"
	       "subvol-delete P, subvol-ro P 0|1, getcap P, setcap P v2|v3 ROOTID,\n"
	       "uring-create P MODE AS_UID AS_GID (-1 -1: no personality),\n"
	       "quota DEV u|g ID (print inodes:N space:N), ids.\n",
	       prog, prog, prog);
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
		usage_error("missing command");
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		help();
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("%s from shiftkit %s\n", prog, PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "idmap") == 0)
		return cmd_idmap(argc - 1, argv + 1);
	if (strcmp(cmd, "userns") == 0)
		return cmd_userns(argc - 1, argv + 1);
	if (strcmp(cmd, "do") == 0)
		return cmd_do(argc - 1, argv + 1);
	usage_error("unknown command");
}
