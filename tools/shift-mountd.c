/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mountd: give unprivileged users detached idmapped mounts of the
 * directories they own, mapped only between ids they own (their uid/gid
 * and their /etc/subuid, /etc/subgid delegation).  docs/shift-mountd.8,
 * docs/security-mountd.md, docs/mountd-protocol.md.
 *
 * One single-threaded accept loop that never reads client data; one
 * worker process per connection that reads the request, gathers the
 * kernel's facts, asks libshift's policy, makes the mount in its own
 * private mount namespace, answers and exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/syscalls.h"

struct options {
	const char *socket_path;
	const char *config;
	bool check_config;
};

struct worker {
	pid_t pid;
	uid_t uid;
};

struct daemon {
	struct shift_mountd_conf conf;
	int listen_fd;
	int sig_fd;
	bool unlink_socket;
	const char *socket_path;
	struct worker *workers; /* conf.max_requests slots, pid 0: free */
};

/* clang-format off */
static void usage(void)
{
	printf("Usage:\n"
	       " %s [options]\n"
	       "\n"
	       "Serve idmapped mounts to unprivileged users: a user sends an fd of a\n"
	       "directory it owns and a map within the ids it owns (its uid/gid and its\n"
	       "/etc/subuid, /etc/subgid delegation) and gets back a detached idmapped\n"
	       "mount (nodev, its flags locked) to attach in its own mount namespace.\n"
	       "Runs in the foreground; under systemd, socket-activated.\n"
	       "\n"
	       "Options:\n"
	       "     --socket PATH       listen on PATH (default %s)\n"
	       " -c, --config FILE       configuration (default %s;\n"
	       "                           a missing file means the defaults)\n"
	       "     --check-config      parse the configuration and exit\n",
	       program_invocation_short_name, SHIFT_MOUNTD_SOCKET,
	       SHIFT_MOUNTD_CONF);
	cli_help_footer(false,
			"0 also when stopped by SIGTERM or\n"
			"SIGINT; a bad configuration is a usage error",
			"shift-mountd(8)");
	exit(EXIT_OK);
}
/* clang-format on */

enum {
	OPT_CHECK_CONFIG = 0x2000,
};

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				cli_usage_error("empty --socket");
			o->socket_path = optarg;
			break;
		case 'c':
			if (!*optarg)
				cli_usage_error("empty --config");
			o->config = optarg;
			break;
		case OPT_CHECK_CONFIG:
			o->check_config = true;
			break;
		case 'h':
			usage();
			break;
		case 'V':
			cli_version();
			break;
		default:
			cli_option_error(argv);
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
}

static void logmsg(const char *fmt, ...) _printf_(1, 2);
static void logmsg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line: workers log concurrently. */
	dprintf(STDERR_FILENO, "%s\n", line);
}

static int load_config(struct daemon *d, const char *path)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_(shift_error_clear) struct shift_error err = { 0 };
	size_t cap = 0;
	ssize_t n;
	int r;

	f = fopen(path, "re");
	if (!f && errno != ENOENT) {
		cli_error("Failed to read '%s': %m", path);
		return EXIT_FAIL;
	}
	if (f) {
		n = getdelim(&text, &cap, '\0', f);
		if (n < 0 && ferror(f)) {
			cli_error("Failed to read '%s': %m", path);
			return EXIT_FAIL;
		}
		if (n < 0) {
			free(text); /* empty file: the defaults */
			text = NULL;
		} else if ((size_t)n != strlen(text)) {
			cli_error("'%s': contains a NUL byte", path);
			return EXIT_USAGE;
		}
	}
	r = shift_mountd_conf_parse(text, &d->conf, &err);
	if (r == -EINVAL) {
		cli_error("'%s': %s", path, shift_error_why(&err, r));
		return EXIT_USAGE;
	}
	if (r < 0) {
		cli_error("Failed to parse '%s': %s", path, strerror(-r));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* The worker: one connection, one request                            */
/* ------------------------------------------------------------------ */

struct request_ctx {
	int conn;
	struct ucred cred;
	const struct shift_mountd_conf *conf;
	int pidfd; /* of the peer (SO_PEERPIDFD), or -EBADF */
	uid_t
	    ns_uid; /* the peer's host uid when it acts for its userns owner */
	char user[64]; /* name, or the uid in decimal */
	char msg[512];
};

/* shift_mountd_request_parse() with the reason in msg (the answer's). */
static int request_parse(const void *buf, size_t len, unsigned nfds,
			 struct shift_mountd_request *req, char *msg,
			 size_t msglen)
{
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	int r = shift_mountd_request_parse(buf, len, nfds, req, &e);

	if (r < 0)
		snprintf(msg, msglen, "%s", shift_error_why(&e, r));
	return r;
}

static int fail(struct request_ctx *c, int err, const char *fmt, ...)
    _printf_(3, 4);
static int fail(struct request_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return err;
}

static bool list_has(char *const *list, const char *name, unsigned long id)
{
	char num[24];

	snprintf(num, sizeof(num), "%lu", id);
	for (; list && *list; list++)
		if (!strcmp(*list, "*") || (name && !strcmp(*list, name)) ||
		    !strcmp(*list, num))
			return true;
	return false;
}

/* allow-users / allow-groups: the user by name or uid, any of its groups
 * (primary from SO_PEERCRED, supplementary from the group database). */
static bool allowed(struct request_ctx *c, const struct passwd *pw)
{
	gid_t groups[256];
	int n = ARRAY_SIZE(groups);

	if (list_has(c->conf->users, pw ? pw->pw_name : NULL, c->cred.uid))
		return true;
	if (!c->conf->groups || !c->conf->groups[0])
		return false;
	groups[0] = c->cred.gid;
	if (!pw || getgrouplist(pw->pw_name, c->cred.gid, groups, &n) < 0)
		n = 1;
	for (int i = 0; i < n; i++) {
		struct group *gr = getgrgid(groups[i]);

		if (list_has(c->conf->groups, gr ? gr->gr_name : NULL,
			     groups[i]))
			return true;
	}
	return false;
}

/*
 * The daemon's own /proc, opened before the worker may join the client's
 * mount namespace: from then on no path of that namespace is trusted.
 */
static int proc_fd = -EBADF;

static int write_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = openat(proc_fd, path, O_WRONLY | O_CLOEXEC);
	ssize_t len = (ssize_t)strlen(s);

	if (fd < 0)
		return negative_errno();
	if (write(fd, s, (size_t)len) != len)
		return negative_errno();
	return 0;
}

/*
 * The maps of a received user namespace, in host ids: a child joins it and
 * waits; this process, in the initial user namespace, reads the child's
 * /proc/PID/uid_map (the kernel prints maps relative to the reader, so a
 * nested namespace shows its real host ids).
 */
static int userns_map(struct request_ctx *c, int ns_fd,
		      const struct shift_idmap *subid, struct shift_idmap *map)
{
	int type, pfd[2], r;
	uint32_t dummy;
	uid_t owner;
	pid_t pid;
	char b;

	type = ioctl(ns_fd, NS_GET_NSTYPE);
	if (type < 0 || type != CLONE_NEWUSER)
		return fail(
		    c, -EPERM,
		    "the second file descriptor is not a user namespace");
	if (ioctl(ns_fd, NS_GET_OWNER_UID, &owner) < 0)
		return fail(c, -EPERM,
			    "the owner of the user namespace can't be read: %s",
			    strerror(errno));
	/* Made by the caller, or by a process of its own namespaces. */
	if (owner != c->cred.uid &&
	    (!subid || owner == 0 ||
	     shift_idmap_to_disk(subid, SHIFT_UID, owner, &dummy) < 0))
		return fail(
		    c, -EPERM,
		    "the user namespace belongs to uid %u, not to you (%u)",
		    (unsigned)owner, (unsigned)c->cred.uid);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return fail(c, negative_errno(), "pipe: %m");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return fail(c, negative_errno(), "fork: %m");
	}
	if (pid == 0) {
		/* Gone with the worker, also when its timeout kills it. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (setns(ns_fd, CLONE_NEWUSER) < 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	r = read(pfd[0], &b, 1) == 1 ? shift_idmap_from_pid(map, pid) : -EIO;
	close(pfd[0]);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return fail(c, r,
			    "the maps of the user namespace can't be read: %s",
			    strerror(-r));
	return 0;
}

/* What the kernel says about the mount tree the source fd designates. */
/*
 * Attach the recursive clone of the source at dir (in this worker's
 * private mount namespace) and read that namespace's mountinfo: whether the
 * clone is idmapped and whether any mount hangs below it.
 */
static int tree_facts(struct request_ctx *c, int tree, const char *dir,
		      struct shift_mountd_clone_facts *ret)
{
	_cleanup_close_ int fd = -EBADF;
	struct statx stx;
	int r;

	if (move_mount(tree, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fail(c, negative_errno(),
			    "the source can't be examined: %m");
	/* The clone by its mount id: no mount point string to trust. */
	if (statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return fail(c, -EIO, "the source's clone has no mount id");
	fd = openat(proc_fd, "self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, -EIO, "mountinfo can't be read");
	r = shift_mountd_clone_facts(fd, stx.stx_mnt_id, ret);
	if (r == -ENOENT)
		return fail(c, -EIO, "the source's clone is not in mountinfo");
	if (r < 0)
		return fail(c, -EIO, "mountinfo can't be read");
	return 0;
}

/*
 * The worker's private mount namespace: a copy of the one it is in, with
 * a fresh tmpfs mounted over its root and made the worker's root, so the
 * paths it uses (/r, /m) are its own whatever the namespace holds (it may
 * be the client's).
 */
static int private_root(struct request_ctx *c)
{
	_cleanup_close_ int fs = -EBADF, mnt = -EBADF;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(c, negative_errno(),
			    "the worker's mount namespace: %m");
	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return fail(c, negative_errno(), "the worker's tmpfs: %m");
	mnt =
	    fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
	if (mnt < 0 || mkdirat(mnt, "r", 0700) < 0 ||
	    mkdirat(mnt, "m", 0700) < 0 ||
	    move_mount(mnt, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
	    fchdir(mnt) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return fail(c, negative_errno(), "the worker's root: %m");
	return 0;
}

/*
 * The mount handed out: the idmapped clone, attached at dir in this
 * worker's mount namespace, cloned once more from a mount namespace of a
 * throwaway user namespace.  That copy carries MNT_LOCK_NODEV (and the
 * locks of the source's ro, nosuid, noexec): the caller, root in its own
 * namespaces, can't clear them (docs/security-mountd.md, rule 9).
 * Runs last: this process has no privileges left afterwards.
 */
static int lock_and_clone(struct request_ctx *c, int tree, const char *dir)
{
	struct mount_attr clr = {.attr_clr = MOUNT_ATTR_NODEV};
	_cleanup_close_ int locked = -EBADF;

	if (move_mount(tree, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fail(c, negative_errno(), "attach in the worker: %m");
	if (unshare(CLONE_NEWUSER) < 0)
		return fail(c, negative_errno(), "unshare(CLONE_NEWUSER): %m");
	if (write_file("self/uid_map", "0 0 1\n") < 0 ||
	    write_file("self/setgroups", "deny") < 0 ||
	    write_file("self/gid_map", "0 0 1\n") < 0)
		return fail(c, negative_errno(),
			    "the locking namespace's maps: %m");
	if (unshare(CLONE_NEWNS) < 0)
		return fail(c, negative_errno(), "unshare(CLONE_NEWNS): %m");
	locked = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (locked < 0)
		return fail(c, negative_errno(),
			    "clone of the locked mount: %m");
	/* Never hand out a mount whose nodev could be lifted. */
	if (mount_setattr(locked, "", AT_EMPTY_PATH, &clr, sizeof(clr)) == 0)
		return fail(c, -EIO, "nodev of the mount is not locked");
	return TAKE_FD(locked);
}

/* The recursive clone (for the facts) and the one handed out. */
static int clone_source(int src, int *rtree, int *tree)
{
	*rtree = open_tree(src, "",
			   OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH |
			       OPEN_TREE_CLOEXEC);
	if (*rtree < 0)
		return negative_errno();
	*tree = open_tree(src, "",
			  OPEN_TREE_CLONE | AT_EMPTY_PATH | OPEN_TREE_CLOEXEC);
	if (*tree < 0) {
		int r = negative_errno();

		*rtree = safe_close(*rtree);
		return r;
	}
	return 0;
}

static void idmap_freep(struct shift_idmap **m)
{
	shift_idmap_free(*m);
}

/*
 * A process inside a user's own user namespace (root of a rootless
 * container) connects with host ids of that user's delegation.  It acts
 * for the user owning the topmost user namespace it lives in (below the
 * initial one) when its uid and gid are that user's own ids: that user
 * created the namespace and controls everything in it already.  The
 * namespace comes from the peer's pidfd, not from a pid or the message.
 */
/*
 * The owner of the topmost user namespace (below the initial one) the
 * process of pidfd lives in, or -ENOENT when it lives in the initial one
 * (or the kernel can't tell: before Linux 6.11).  ioctls only: the accept
 * loop uses it too.
 */
static int top_owner(int pidfd, uid_t *ret)
{
	_cleanup_close_ int ns = -EBADF;

	if (pidfd < 0)
		return -ENOENT;
	ns = ioctl(pidfd, PIDFD_GET_USER_NAMESPACE, 0);
	if (ns < 0)
		return -ENOENT;
	for (;;) {
		int parent = ioctl(ns, NS_GET_PARENT), grand;

		if (parent < 0)
			return -ENOENT; /* the initial namespace */
		grand = ioctl(parent, NS_GET_PARENT);
		if (grand < 0) {
			close(parent);
			break; /* ns is a child of the initial namespace */
		}
		close(grand);
		close(ns);
		ns = parent;
	}
	return ioctl(ns, NS_GET_OWNER_UID, ret) < 0 ? -ENOENT : 0;
}

static void namespace_owner(struct request_ctx *c)
{
	_cleanup_(idmap_freep) struct shift_idmap *subid = NULL;
	struct passwd *pw;
	uint32_t dummy;
	uid_t owner;

	if (top_owner(c->pidfd, &owner) < 0 || owner == c->cred.uid)
		return;
	pw = getpwuid(owner);
	subid = shift_idmap_new();
	if (!pw || !subid || shift_idmap_from_subid(subid, pw->pw_name) < 0)
		return;
	if ((c->cred.uid != owner &&
	     shift_idmap_to_disk(subid, SHIFT_UID, c->cred.uid, &dummy) < 0) ||
	    (c->cred.gid != pw->pw_gid &&
	     shift_idmap_to_disk(subid, SHIFT_GID, c->cred.gid, &dummy) < 0))
		return;
	c->ns_uid = c->cred.uid;
	c->cred.uid = owner;
	c->cred.gid = pw->pw_gid;
}

static int handle(struct request_ctx *c, const struct shift_mountd_request *req,
		  const int *fds)
{
	_cleanup_(idmap_freep) struct shift_idmap *map = NULL;
	_cleanup_(idmap_freep) struct shift_idmap *subid = NULL;
	_cleanup_close_ int own_ns = -EBADF, tree = -EBADF, rtree = -EBADF;
	struct shift_mountd_source s = {0};
	struct shift_mountd_clone_facts facts = {0};
	struct shift_mountd_caller caller;
	struct passwd *pw;
	struct stat st;
	struct statfs sf;
	struct mount_attr attr = {0};
	_cleanup_(shift_error_clear) struct shift_error why = { 0 };
	int src = fds[0], ns = -EBADF, r;

	namespace_owner(c);
	pw = getpwuid(c->cred.uid);
	if (pw)
		shift_escape_to(c->user, sizeof(c->user), pw->pw_name);
	else
		snprintf(c->user, sizeof(c->user), "%u", (unsigned)c->cred.uid);
	if (!allowed(c, pw))
		return fail(c, -EPERM,
			    "user '%s' may not use shift-mountd (allow-users, "
			    "allow-groups in %s)",
			    c->user, SHIFT_MOUNTD_CONF);

	if (fstat(src, &st) < 0 || fstatfs(src, &sf) < 0)
		return fail(c, negative_errno(),
			    "the source can't be examined: %m");
	s.mode = st.st_mode;
	s.uid = st.st_uid;
	s.gid = st.st_gid;
	s.fs_type = (int64_t)sf.f_type;
	/* Type and filesystem before anything is cloned. */
	if (!S_ISDIR(st.st_mode) || shift_mountd_pseudo_fs(s.fs_type)) {
		struct shift_mountd_caller none = {c->cred.uid, c->cred.gid,
						   NULL, false};

		r = shift_mountd_policy(&none, NULL, &s, &why);
		return fail(c, r, "%s", shift_error_why(&why, r));
	}

	subid = shift_idmap_new();
	map = shift_idmap_new();
	if (!subid || !map)
		return fail(c, -ENOMEM, "out of memory");
	r = shift_idmap_from_subid(subid, pw ? pw->pw_name : c->user);
	if (r == -ENOENT) {
		shift_idmap_free(subid);
		subid = NULL;
	} else if (r < 0) {
		return fail(c, r,
			    "/etc/subuid or /etc/subgid can't be read: %s",
			    strerror(-r));
	}

	if (req->map) {
		struct shift_error perr = { 0 };

		r = shift_idmap_parse(map, req->map, &perr);
		if (r >= 0)
			r = shift_idmap_validate(
			    map, SHIFT_VALIDATE_BOTH | SHIFT_VALIDATE_USERNS,
			    &perr);
		if (r < 0) {
			_cleanup_free_ char *e = shift_escape(req->map);

			r = fail(c, -EBADMSG, "bad map '%s': %s", e ? e : "?",
				 shift_error_why(&perr, r));
			shift_error_clear(&perr);
			return r;
		}
	} else {
		ns = fds[1];
		r = userns_map(c, ns, subid, map);
		if (r < 0)
			return r;
	}

	/* Everything the map alone decides, before any mount is touched. */
	caller = (struct shift_mountd_caller){c->cred.uid, c->cred.gid, subid,
					      c->conf->foreign_range};
	r = shift_mountd_policy(&caller, map, &s, &why);
	if (r < 0)
		return fail(c, r, "%s", shift_error_why(&why, r));
	if (ns < 0) {
		own_ns = shift_userns_create(map);
		if (own_ns < 0)
			return fail(c, own_ns,
				    "a user namespace for the map: %s",
				    strerror(-own_ns));
		ns = own_ns;
	}

	/*
	 * Both clones now: the kernel clones only mounts of the caller's own
	 * mount namespace.  A source of the client's own mount namespace
	 * (opened inside "unshare --mount") is cloned from there: the worker
	 * joins the namespace of the connecting process (a pidfd from
	 * SO_PEERPIDFD, no pid to race) and resolves no path in it.
	 */
	r = clone_source(src, &rtree, &tree);
	if (r == -EINVAL && c->pidfd >= 0) {
		if (setns(c->pidfd, CLONE_NEWNS) < 0)
			return fail(c, -EPERM,
				    "your mount namespace can't be joined: %m");
		r = clone_source(src, &rtree, &tree);
	}
	if (r < 0)
		return fail(c, r == -EINVAL ? -EPERM : r,
			    r == -EINVAL ? "the source is in neither the "
					   "service's mount namespace nor yours"
					 : "the source can't be cloned: %s",
			    strerror(-r));

	r = private_root(c);
	if (r < 0)
		return r;
	r = tree_facts(c, rtree, "/r", &facts);
	if (r < 0)
		return r;
	s.idmapped = facts.idmapped;
	s.submounts = facts.submounts;

	r = shift_mountd_policy(&caller, map, &s, &why);
	if (r < 0)
		return fail(c, r, "%s", shift_error_why(&why, r));

	attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV;
	if (req->flags & SHIFT_MOUNT_RDONLY)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	if ((req->flags & SHIFT_MOUNT_NOSUID) || c->conf->force_nosuid)
		attr.attr_set |= MOUNT_ATTR_NOSUID;
	if (req->flags & SHIFT_MOUNT_NOEXEC)
		attr.attr_set |= MOUNT_ATTR_NOEXEC;
	attr.userns_fd = (uint64_t)ns;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		if (errno == EINVAL || errno == EOPNOTSUPP)
			return fail(
			    c, -EOPNOTSUPP,
			    "filesystem '%s' does not support idmapped mounts",
			    facts.fstype);
		return fail(c, negative_errno(), "mount_setattr: %m");
	}
	return lock_and_clone(c, tree, "/m");
}

static void answer(int conn, int err, const char *msg, int fd)
{
	_cleanup_free_ char *s = shift_mountd_answer_format(err, msg);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov;
	struct msghdr mh = {0};

	if (!s)
		return;
	iov.iov_base = s;
	iov.iov_len = strlen(s);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	(void)sendmsg(conn, &mh, MSG_NOSIGNAL);
}

_noreturn_ static void worker(int conn, const struct ucred *cred,
			      const struct shift_mountd_conf *conf)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SHIFT_MOUNTD_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct request_ctx c = {.conn = conn,
				.cred = *cred,
				.conf = conf,
				.pidfd = -EBADF,
				.ns_uid = cred->uid};
	socklen_t plen = sizeof(c.pidfd);
	struct shift_mountd_request req = {0};
	char buf[SHIFT_MOUNTD_MAX_MSG + 1];
	int fds[SHIFT_MOUNTD_MAX_FDS];
	unsigned nfds = 0;
	bool other_cmsg = false;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {0};
	struct cmsghdr *cm;
	ssize_t n;
	int r, mfd = -EBADF;

	proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &c.pidfd, &plen) < 0)
		c.pidfd = -EBADF;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	do
		n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(0); /* gone before asking: nothing to answer */
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(int));
				if (nfds < SHIFT_MOUNTD_MAX_FDS)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		} else {
			other_cmsg = true;
		}
	}
	if (mh.msg_flags & MSG_TRUNC || (size_t)n > SHIFT_MOUNTD_MAX_MSG)
		r = fail(&c, -EBADMSG, "message larger than %d bytes",
			 SHIFT_MOUNTD_MAX_MSG);
	else if (mh.msg_flags & MSG_CTRUNC)
		r = fail(&c, -EBADMSG, "more than %d file descriptors",
			 SHIFT_MOUNTD_MAX_FDS);
	else if (other_cmsg)
		r = fail(&c, -EBADMSG, "ancillary data other than SCM_RIGHTS");
	else
		r = request_parse(buf, (size_t)n, nfds, &req, c.msg,
				  sizeof(c.msg));
	if (r >= 0)
		r = mfd = handle(&c, &req, fds);
	/* Nothing of the client's is held once it has the answer: its
	 * directory's mount can be unmounted right away. */
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	if (c.pidfd >= 0)
		close(c.pidfd);
	if (r >= 0) {
		logmsg("uid %u pid %d: granted an idmapped mount%s",
		       (unsigned)c.cred.uid, (int)cred->pid,
		       c.ns_uid != c.cred.uid
			   ? " (asked from its user namespace)"
			   : "");
		answer(conn, 0, NULL, mfd);
	} else {
		logmsg("uid %u pid %d: refused: %s", (unsigned)c.cred.uid,
		       (int)cred->pid, c.msg);
		answer(conn, r, c.msg, -EBADF);
	}
	_exit(r >= 0 ? 0 : 1);
}

/* ------------------------------------------------------------------ */
/* The accept loop                                                     */
/* ------------------------------------------------------------------ */

/* The socket systemd passes (LISTEN_PID/LISTEN_FDS, fd 3), or -EBADF. */
static int activated_socket(void)
{
	const char *e_pid = secure_getenv("LISTEN_PID"),
		   *e_fds = secure_getenv("LISTEN_FDS");
	int type = 0, listening = 0, fd = 3;
	socklen_t len = sizeof(int);

	if (!e_pid || !e_fds || strtol(e_pid, NULL, 10) != getpid())
		return -EBADF;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strcmp(e_fds, "1")) {
		cli_error("socket activation with LISTEN_FDS=%s: exactly one "
			  "socket is expected",
			  e_fds);
		exit(EXIT_USAGE);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    !listening) {
		cli_error(
		    "socket activation: fd 3 is not a listening SOCK_SEQPACKET "
		    "socket (ListenSequentialPacket= in the .socket unit)");
		exit(EXIT_USAGE);
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static int listen_on(struct daemon *d, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	char *slash;

	if (!dir || strlen(path) >= sizeof(sa.sun_path)) {
		cli_error("Failed to listen on '%s': path too long", path);
		return -ENAMETOOLONG;
	}
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			cli_error("Failed to create '%s': %m", dir);
			return negative_errno();
		}
	}
	/* A stale socket of an earlier run goes; anything else stays. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			cli_error("Failed to listen on '%s': exists and is not "
				  "a socket",
				  path);
			return -EEXIST;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		cli_error("Failed to create a socket: %m");
		return negative_errno();
	}
	memcpy(sa.sun_path, path, strlen(path));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
		cli_error("Failed to listen on '%s': %m", path);
		return negative_errno();
	}
	d->unlink_socket = true;
	return TAKE_FD(fd);
}

static unsigned in_flight(const struct daemon *d, uid_t uid, unsigned *total)
{
	unsigned n = 0;

	*total = 0;
	for (unsigned i = 0; i < d->conf.max_requests; i++) {
		if (!d->workers[i].pid)
			continue;
		(*total)++;
		n += d->workers[i].uid == uid;
	}
	return n;
}

static void reap(struct daemon *d)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < d->conf.max_requests; i++)
			if (d->workers[i].pid == pid) {
				if (WIFSIGNALED(status))
					logmsg("uid %u: worker %d ended by "
					       "signal %d%s",
					       (unsigned)d->workers[i].uid,
					       (int)pid, WTERMSIG(status),
					       WTERMSIG(status) == SIGALRM
						   ? " (timeout)"
						   : "");
				d->workers[i].pid = 0;
			}
	}
}

/*
 * A connection refused as busy is answered only after its request has
 * arrived (or after a second): closing a Unix socket with unread data
 * resets it, and the client would see the reset instead of the answer.
 * The parent never parses it: the request is drained unread (fds sent
 * with it are closed by the kernel, no control buffer is given).
 */
#define MAX_BUSY 256

struct busy {
	int fd;
	struct timespec deadline;
	char msg[160];
};

static bool expired(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	       (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void busy_finish(struct busy *b)
{
	char drain[SHIFT_MOUNTD_MAX_MSG];

	while (recv(b->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	answer(b->fd, -EAGAIN, b->msg, -EBADF);
	b->fd = safe_close(b->fd);
}

static void accept_one(struct daemon *d, struct busy *busy,
		       const sigset_t *oldmask)
{
	_cleanup_close_ int conn = -EBADF, pidfd = -EBADF;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	unsigned mine, total, slot;
	uid_t key;
	pid_t pid;

	conn = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (conn < 0) {
		/* Out of fds: the listener stays readable, so don't spin. */
		if (errno == EMFILE || errno == ENFILE)
			nanosleep(&(struct timespec){0, 50 * 1000 * 1000},
				  NULL);
		return;
	}
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	/* A process of a user's own user namespace counts for that user:
	 * otherwise each delegated uid would have its own share. */
	key = cred.uid;
	len = sizeof(pidfd);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
		uid_t owner;

		if (top_owner(pidfd, &owner) == 0)
			key = owner;
		pidfd = safe_close(pidfd);
	}
	mine = in_flight(d, key, &total);
	if (mine >= d->conf.max_per_user || total >= d->conf.max_requests) {
		for (slot = 0; slot < MAX_BUSY; slot++)
			if (busy[slot].fd < 0)
				break;
		if (slot == MAX_BUSY)
			return; /* flooded: closed unanswered */
		snprintf(busy[slot].msg, sizeof(busy[slot].msg),
			 mine >= d->conf.max_per_user
			     ? "busy: %u requests of yours in flight "
			       "(max-requests-per-user), retry later"
			     : "busy: %u requests in flight (max-requests), "
			       "retry later",
			 mine >= d->conf.max_per_user ? mine : total);
		clock_gettime(CLOCK_MONOTONIC, &busy[slot].deadline);
		busy[slot].deadline.tv_sec += 1;
		busy[slot].fd = TAKE_FD(conn);
		return;
	}
	for (slot = 0; slot < d->conf.max_requests; slot++)
		if (!d->workers[slot].pid)
			break;
	pid = fork();
	if (pid < 0) {
		answer(conn, -EAGAIN, "busy: can't start a worker, retry later",
		       -EBADF);
		return;
	}
	if (pid == 0) {
		int fl = fcntl(conn, F_GETFL);

		(void)fcntl(conn, F_SETFL, fl & ~O_NONBLOCK);
		close(d->listen_fd);
		close(d->sig_fd);
		for (unsigned i = 0; i < MAX_BUSY; i++)
			safe_close(busy[i].fd);
		signal(SIGPIPE, SIG_DFL);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		alarm(d->conf.timeout);
		worker(TAKE_FD(conn), &cred, &d->conf);
	}
	d->workers[slot] = (struct worker){pid, key};
}

static int serve(struct daemon *d)
{
	static struct busy busy[MAX_BUSY];
	struct pollfd p[2 + MAX_BUSY];
	unsigned idx[MAX_BUSY];
	sigset_t mask, old;
	int r = EXIT_OK;

	for (unsigned i = 0; i < MAX_BUSY; i++)
		busy[i].fd = -EBADF;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &old);
	signal(SIGPIPE, SIG_IGN);
	d->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0) {
		cli_error("Failed to create a signalfd: %m");
		return EXIT_FAIL;
	}
	logmsg("shift-mountd: serving on %s (max %u requests, %u per user, "
	       "timeout %us)",
	       d->socket_path, d->conf.max_requests, d->conf.max_per_user,
	       d->conf.timeout);
	for (;;) {
		struct signalfd_siginfo si;
		unsigned n = 2, nb = 0, total;
		int timeout = -1;

		p[0] = (struct pollfd){d->sig_fd, POLLIN, 0};
		/* At the global limit, new clients wait in the backlog. */
		(void)in_flight(d, (uid_t)-1, &total);
		p[1] = (struct pollfd){
		    total < d->conf.max_requests ? d->listen_fd : -1, POLLIN,
		    0};
		for (unsigned i = 0; i < MAX_BUSY; i++) {
			if (busy[i].fd < 0)
				continue;
			idx[nb++] = i;
			p[n++] = (struct pollfd){busy[i].fd, POLLIN, 0};
			timeout = 100;
		}
		if (poll(p, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			cli_error("poll: %m");
			r = EXIT_FAIL;
			break;
		}
		for (unsigned k = 0; k < nb; k++)
			if (p[2 + k].revents || expired(&busy[idx[k]].deadline))
				busy_finish(&busy[idx[k]]);
		if (p[0].revents & POLLIN) {
			bool stop = false;

			while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si))
				stop |= si.ssi_signo != SIGCHLD;
			reap(d);
			if (stop)
				break;
		}
		if (p[1].revents & POLLIN)
			accept_one(d, busy, &old);
	}
	for (unsigned i = 0; i < MAX_BUSY; i++)
		busy[i].fd = safe_close(busy[i].fd);
	logmsg("shift-mountd: stopping");
	return r;
}

int main(int argc, char **argv)
{
	struct options o = {.config = SHIFT_MOUNTD_CONF};
	struct daemon d = {.listen_fd = -EBADF, .sig_fd = -EBADF};
	int r;

	parse_args(&o, argc, argv);
	r = load_config(&d, o.config);
	if (r != EXIT_OK || o.check_config)
		goto out;
	if (geteuid() != 0) {
		cli_error(
		    "must run as root (it makes idmapped mounts for others)");
		r = EXIT_FAIL;
		goto out;
	}
	d.workers = calloc(d.conf.max_requests, sizeof(*d.workers));
	if (!d.workers) {
		cli_error("out of memory");
		r = EXIT_FAIL;
		goto out;
	}
	d.listen_fd = activated_socket();
	if (d.listen_fd >= 0) {
		if (o.socket_path)
			cli_usage_error(
			    "--socket is not used under socket activation (set "
			    "ListenSequentialPacket= in the unit instead)");
		d.socket_path = "the activation socket";
	} else {
		d.socket_path =
		    o.socket_path ? o.socket_path : SHIFT_MOUNTD_SOCKET;
		d.listen_fd = listen_on(&d, d.socket_path);
		if (d.listen_fd < 0) {
			r = EXIT_FAIL;
			goto out;
		}
	}
	r = serve(&d);
	if (d.unlink_socket)
		(void)unlink(d.socket_path);
out:
	safe_close(d.listen_fd);
	safe_close(d.sig_fd);
	free(d.workers);
	shift_mountd_conf_done(&d.conf);
	return r;
}
