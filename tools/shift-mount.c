/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mount: attach an idmapped mount of a directory, a fresh idmapped
 * tmpfs, or an overlay over idmapped layers; with --fallback, a bind mount
 * of SOURCE (or of a copy) shifted in place when SOURCE can't be idmapped.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

enum mode {
	MODE_BIND,
	MODE_TMPFS,
	MODE_OVERLAY,
};

enum fallback {
	FALLBACK_NONE,
	FALLBACK_SHIFT,
	FALLBACK_COPY,
};

enum {
	OPT_TMPFS = 0x2000,
	OPT_OVERLAY,
	OPT_UPPER,
	OPT_WORK,
	OPT_OPTIONS,
	OPT_FALLBACK,
	OPT_COPY_DIR,
	OPT_FORCE,
	OPT_NOSUID,
	OPT_NODEV,
	OPT_NOEXEC,
};

struct options {
	struct cli_map map;
	enum mode mode;
	enum fallback fallback;
	unsigned flags;
	const char *source; /* MODE_OVERLAY: colon-separated layers */
	const char *target;
	const char *upper;
	const char *work;
	const char *fsoptions;
	const char *copy_dir; /* --fallback=copy: where the shifted copy lives */
	bool force;	      /* --fallback=shift: also a shared layer */
	int userns_fd; /* the namespace for the mount */
	bool verbose;  /* say which path was taken */
};

static void usage(void)
{
	printf("Usage:\n"
	       " %1$s [options] MAP-OPTION SOURCE TARGET\n"
	       " %1$s [options] MAP-OPTION --tmpfs [--options OPTS] TARGET\n"
	       " %1$s [options] MAP-OPTION --overlay LAYER[:LAYER...] [--upper DIR --work DIR] TARGET\n"
	       "\n"
	       "Attach an idmapped mount of SOURCE at TARGET: files owned by on-disk id A\n"
	       "are seen as B through it, per the map.  The mount is attached atomically,\n"
	       "never visible without its idmap, and nothing stays mounted on failure.\n"
	       "\n"
	       "Map (exactly one):\n"
	       CLI_MAP_HELP
	       "                         (with --userns the namespace itself is used)\n"
	       "\n"
	       "Options:\n"
	       " -r, --recursive         also idmap the mounts below SOURCE\n"
	       " -R, --read-only         mount read-only\n"
	       " -v, --verbose           say how the mount was made (directly, or by\n"
	       "                           shift-mountd without CAP_SYS_ADMIN)\n"
	       "     --nosuid            ignore set-user/group-id bits\n"
	       "     --nodev             no device files\n"
	       "     --noexec            no execution\n"
	       "     --tmpfs             mount a fresh idmapped tmpfs at TARGET\n"
	       "     --overlay           SOURCE is a list of layer directories, top-most\n"
	       "                           first; each is idmapped, then overlaid\n"
	       "     --upper DIR         overlay upper directory (created if missing, owned\n"
	       "                           by the map's image of root); needs --work\n"
	       "     --work DIR          overlay work directory (same filesystem as --upper)\n"
	       " -o, --options OPTS      tmpfs or extra overlay options (k=v,flag,...)\n"
	       "     --fallback=HOW      when the filesystem can't be idmapped: none\n"
	       "                           (default), shift (SOURCE in place) or copy\n"
	       "     --copy-dir DIR      where --fallback=copy keeps the shifted copy\n"
	       "     --force             --fallback=shift: shift a shared layer too\n"
	       " -h, --help              display this help\n"
	       " -V, --version           display version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error or bad map,\n"
	       "3 not supported by this kernel or filesystem.\n",
	       program_invocation_short_name);
	exit(EXIT_OK);
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_MAP_LONGOPTS,
		{ "recursive", no_argument, NULL, 'r' },
		{ "read-only", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "nosuid", no_argument, NULL, OPT_NOSUID },
		{ "nodev", no_argument, NULL, OPT_NODEV },
		{ "noexec", no_argument, NULL, OPT_NOEXEC },
		{ "tmpfs", no_argument, NULL, OPT_TMPFS },
		{ "overlay", no_argument, NULL, OPT_OVERLAY },
		{ "upper", required_argument, NULL, OPT_UPPER },
		{ "work", required_argument, NULL, OPT_WORK },
		{ "options", required_argument, NULL, 'o' },
		{ "fallback", required_argument, NULL, OPT_FALLBACK },
		{ "copy-dir", required_argument, NULL, OPT_COPY_DIR },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool tmpfs = false, overlay = false;
	int c, npos;

	while ((c = getopt_long(argc, argv, "m:rRvo:hV", longopts, NULL)) != -1) {
		if (cli_map_option(&o->map, c, optarg))
			continue;
		switch (c) {
		case 'r':
			o->flags |= SHIFT_MOUNT_RECURSIVE;
			break;
		case 'R':
			o->flags |= SHIFT_MOUNT_RDONLY;
			break;
		case 'v':
			o->verbose = true;
			break;
		case OPT_NOSUID:
			o->flags |= SHIFT_MOUNT_NOSUID;
			break;
		case OPT_NODEV:
			o->flags |= SHIFT_MOUNT_NODEV;
			break;
		case OPT_NOEXEC:
			o->flags |= SHIFT_MOUNT_NOEXEC;
			break;
		case OPT_TMPFS:
			tmpfs = true;
			break;
		case OPT_OVERLAY:
			overlay = true;
			break;
		case OPT_UPPER:
			o->upper = optarg;
			break;
		case OPT_WORK:
			o->work = optarg;
			break;
		case 'o':
			o->fsoptions = optarg;
			break;
		case OPT_FALLBACK:
			if (!strcmp(optarg, "none"))
				o->fallback = FALLBACK_NONE;
			else if (!strcmp(optarg, "shift"))
				o->fallback = FALLBACK_SHIFT;
			else if (!strcmp(optarg, "copy"))
				o->fallback = FALLBACK_COPY;
			else
				cli_usage_error("invalid --fallback '%s' (use none, shift or copy)",
						optarg);
			break;
		case OPT_COPY_DIR:
			o->copy_dir = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case 'h':
			usage();
			break;
		case 'V':
			cli_version();
			break;
		default:
			cli_usage_error(NULL);
		}
	}

	if (tmpfs && overlay)
		cli_usage_error("--tmpfs and --overlay are mutually exclusive");
	o->mode = tmpfs ? MODE_TMPFS : overlay ? MODE_OVERLAY : MODE_BIND;
	if (o->mode != MODE_OVERLAY && (o->upper || o->work))
		cli_usage_error("--upper and --work need --overlay");
	if (o->mode == MODE_OVERLAY && !o->upper != !o->work)
		cli_usage_error("--upper and --work go together");
	if (o->mode == MODE_BIND && o->fsoptions)
		cli_usage_error("--options needs --tmpfs or --overlay");
	if (o->fallback == FALLBACK_COPY && (!o->copy_dir || !*o->copy_dir))
		cli_usage_error("--fallback=copy needs --copy-dir DIR (an empty or new directory for the shifted copy)");
	if (o->copy_dir && o->fallback != FALLBACK_COPY)
		cli_usage_error("--copy-dir needs --fallback=copy");
	if (o->force && o->fallback != FALLBACK_SHIFT)
		cli_usage_error("--force needs --fallback=shift");
	if (o->fallback != FALLBACK_NONE && o->mode != MODE_BIND)
		cli_usage_error("--fallback works with a SOURCE directory, not with --tmpfs or --overlay");
	if (o->mode == MODE_TMPFS && (o->flags & SHIFT_MOUNT_RECURSIVE))
		cli_usage_error("--recursive makes no sense with --tmpfs");

	npos = argc - optind;
	if (o->mode == MODE_TMPFS) {
		if (npos != 1)
			cli_usage_error(npos < 1 ? "no TARGET given" :
						   "--tmpfs takes only TARGET");
		o->target = argv[optind];
	} else {
		if (npos != 2)
			cli_usage_error(npos < 2 ? "SOURCE and TARGET are required" :
						   "too many arguments");
		o->source = argv[optind];
		o->target = argv[optind + 1];
		if (!*o->source)
			cli_usage_error("empty SOURCE");
	}
	if (!*o->target)
		cli_usage_error("empty TARGET");

	cli_map_finish(&o->map,
		       SHIFT_VALIDATE_BOTH | SHIFT_VALIDATE_NO_HOST_ROOT);
}

/* Errors that mean "can't be done here", not "went wrong": exit 3. */
static bool unsupported(int r)
{
	return r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP;
}

/* One line naming path, the reason and what the user can do. */
static int report(const struct options *o, int r, const char *what,
		  const char *path)
{
	_cleanup_free_ char *why = shift_mount_strerror(r, path);
	const char *hint = "";

	if (r == -EINVAL && o->fallback == FALLBACK_NONE)
		hint = " (try --fallback=shift or --fallback=copy)";
	else if (r == -ENOSYS)
		hint = " (upgrade the kernel, or use --fallback=shift)";
	else if (r == -EPERM && geteuid() != 0)
		hint = " (or start shift-mountd: systemctl start shift-mountd.socket)";
	cli_error("Failed to %s '%s': %s%s", what, path,
		  why ? why : strerror(-r), hint);
	return unsupported(r) ? EXIT_UNSUPPORTED : EXIT_FAIL;
}

static int get_userns(struct options *o)
{
	char user[64];
	struct passwd *pw;
	int r;

	if (o->map.userns_path) {
		o->userns_fd = open(o->map.userns_path, O_RDONLY | O_CLOEXEC);
		if (o->userns_fd < 0) {
			cli_error("Failed to open user namespace '%s': %m",
				  o->map.userns_path);
			return EXIT_FAIL;
		}
		return EXIT_OK;
	}

	if (geteuid() != 0) {
		pw = getpwuid(getuid());
		snprintf(user, sizeof(user), "%s",
			 pw ? pw->pw_name : "?");
		r = shift_idmap_within_subid(o->map.map, user);
		if (r == 0) {
			_cleanup_free_ char *s = shift_idmap_to_string(o->map.map);

			cli_error("Failed to create a user namespace for map '%s': it is not within the subordinate ids of user '%s' in /etc/subuid and /etc/subgid (use --subid %s, or ask the administrator for a delegation)",
				  s ? s : "?", user, user);
			return EXIT_FAIL;
		}
	}
	o->userns_fd = shift_userns_create(o->map.map);
	if (o->userns_fd < 0) {
		_cleanup_free_ char *s = shift_idmap_to_string(o->map.map);

		r = o->userns_fd;
		cli_error("Failed to create a user namespace for map '%s': %s%s",
			  s ? s : "?", strerror(-r),
			  r == -ENOENT ? " (install newuidmap/newgidmap, or run as root)" :
			  r == -ENOSPC ? " (raise /proc/sys/user/max_user_namespaces)" :
			  "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int mount_bind(struct options *o)
{
	_cleanup_close_ int tree = -EBADF;
	int r;

	tree = shift_mount_clone_idmapped(AT_FDCWD, o->source, o->userns_fd,
					  o->flags);
	if (tree == -EINVAL && (o->flags & SHIFT_MOUNT_RECURSIVE)) {
		/* Name the submount that spoiled it, not the source. */
		_cleanup_free_ char *sub = NULL;

		if (shift_mount_find_unsupported(o->source, o->userns_fd,
						 &sub) >= 0)
			return report(o, tree, "idmap the submount", sub);
	}
	if (tree < 0)
		return tree == -ENOENT || tree == -ENOTDIR ?
			       report(o, tree, "open", o->source) :
			       report(o, tree, "idmap", o->source);
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0)
		return report(o, r, "attach the idmapped mount at",
			      o->target);
	return EXIT_OK;
}

static int mount_tmpfs(struct options *o)
{
	int r;

	r = shift_mount_tmpfs_idmapped_userns(o->target, o->userns_fd,
					      o->fsoptions, o->flags);
	if (r == -EINVAL) {
		cli_error("Failed to mount an idmapped tmpfs at '%s': invalid option in '%s' or the kernel can't idmap tmpfs (needs Linux >= 6.3)",
			  o->target, o->fsoptions ? o->fsoptions : "");
		return EXIT_UNSUPPORTED;
	}
	if (r < 0)
		return report(o, r, "mount an idmapped tmpfs at", o->target);
	return EXIT_OK;
}

static int mount_overlay(struct options *o)
{
	_cleanup_free_ const char **lower = NULL;
	_cleanup_free_ char *layers = NULL;
	const char *failed = NULL;
	struct shift_overlay ovl = { 0 };
	size_t n = 1, i = 0;
	char *p, *save = NULL;
	int r;

	layers = strdup(o->source);
	if (!layers) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	for (p = layers; *p; p++)
		n += *p == ':';
	lower = calloc(n + 1, sizeof(*lower));
	if (!lower) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	for (p = strtok_r(layers, ":", &save); p; p = strtok_r(NULL, ":", &save))
		lower[i++] = p;
	if (i == 0)
		cli_usage_error("no layer in '%s'", o->source);

	ovl.lower = lower;
	ovl.upper = o->upper;
	ovl.work = o->work;
	ovl.options = o->fsoptions;
	ovl.failed_path = &failed;
	r = shift_mount_overlay_userns(&ovl, o->target, o->map.map,
				       o->userns_fd, o->flags);
	if (r >= 0)
		return EXIT_OK;
	for (i = 0; lower[i]; i++)
		if (failed == lower[i])
			return report(o, r, "idmap layer", failed);
	if (failed)
		return report(o, r, "mount the overlay at", failed);
	cli_error("Failed to mount the overlay at '%s': %s%s", o->target,
		  strerror(-r),
		  r == -EINVAL ? " (check --options and that upper and work are on one filesystem that supports overlayfs upper layers)" : "");
	return EXIT_FAIL;
}

/* The xattrs marking a directory as a layer shared by several containers:
 * --fallback=shift refuses to change it without --force. */
#define SHARED_XATTR_TRUSTED "trusted.shiftkit.shared"
#define SHARED_XATTR_USER "user.shiftkit.shared"

static const char *shared_marker(const char *path)
{
	if (lgetxattr(path, SHARED_XATTR_TRUSTED, NULL, 0) >= 0)
		return SHARED_XATTR_TRUSTED;
	if (lgetxattr(path, SHARED_XATTR_USER, NULL, 0) >= 0)
		return SHARED_XATTR_USER;
	return NULL;
}

struct shift_ctx {
	const char *root;
	bool recursive; /* submounts are part of the mount: each one matters */
};

static void on_shift_event(const struct shift_event *ev, void *userdata)
{
	const struct shift_ctx *c = userdata;
	const char *root = c->root;

	switch (ev->type) {
	case SHIFT_EVENT_UNMAPPED:
		if (ev->id == SHIFT_ID_UNKNOWN) {
			cli_error("'%s/%s': its %s is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)",
				  root, ev->path,
				  ev->kind == SHIFT_UID ? "uid" : "gid");
			break;
		}
		cli_error("'%s/%s': %s %" PRIu32 " has no image under the map",
			  root, ev->path, ev->kind == SHIFT_UID ? "uid" : "gid",
			  ev->id);
		break;
	case SHIFT_EVENT_ERROR:
		cli_error("Failed to %s '%s/%s': %s", ev->op ? ev->op : "shift",
			  root, ev->path, strerror(-ev->error));
		break;
	case SHIFT_EVENT_MOUNTPOINT:
		if (c->recursive)
			cli_error("'%s/%s': another mount, not shifted", root,
				  ev->path);
		break;
	default:
		break;
	}
}

/* Shift the tree at path in place with the engine; prints what went wrong. */
static int shift_source(const struct options *o, const char *path)
{
	struct shift_ctx c = {
		.root = path,
		.recursive = o->flags & SHIFT_MOUNT_RECURSIVE,
	};
	struct shift_options so = {
		.map = o->map.map,
		.unmapped = SHIFT_UNMAPPED_ERROR,
		.on_event = on_shift_event,
		.userdata = &c,
		.engine = "auto",
	};
	struct shift_stats st = { 0 };
	int r;

	r = geteuid() == 0 ? shift_tree(path, &so, &st) :
			     shift_tree_userns(path, &so, &st);
	if (r == 0)
		return EXIT_OK;
	/* Submounts are not shifted; without --recursive they are not part
	 * of the bind mount either. */
	if (r == 1 && !st.unmapped && !st.errors && !c.recursive)
		return EXIT_OK;
	if (r == 1) {
		cli_error("Failed to shift '%s': %s; nothing was mounted",
			  path,
			  st.unmapped ? "ids without image under the map (see above; use a map that covers every id)" :
			  st.errors ? "some inodes could not be shifted (see above)" :
			  "mounts below it can't be shifted (see above; drop --recursive or shift them separately)");
		return EXIT_FAIL;
	}
	cli_error("Failed to shift '%s': %s%s", path, strerror(-r),
		  r == -EEXIST ? " (it is shifted by another map: undo that with shift-tree --reverse)" :
		  r == -EBUSY ? " (an interrupted shift with another map is pending: finish it with shift-tree)" :
		  r == -EROFS ? " (the filesystem is read-only: use --fallback=copy)" :
		  r == -EPERM && geteuid() != 0 ? " (run as root)" : "");
	return EXIT_FAIL;
}

/* Bind-mount path at the target, without idmap, with the attributes. */
static int bind_plain(struct options *o, const char *path)
{
	_cleanup_close_ int tree = -EBADF;
	int r;

	tree = shift_mount_clone_idmapped(AT_FDCWD, path, -EBADF, o->flags);
	if (tree < 0)
		return report(o, tree, "bind-mount", path);
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0)
		return report(o, r, "attach the mount at", o->target);
	return EXIT_OK;
}

static int fallback_shift(struct options *o)
{
	const char *marker = shared_marker(o->source);
	int r;

	if (marker && !o->force) {
		cli_error("Failed to shift '%s' in place: it is marked as a shared layer (%s) (use --fallback=copy, or --force if no one else uses it)",
			  o->source, marker);
		return EXIT_FAIL;
	}
	r = shift_source(o, o->source);
	if (r != EXIT_OK)
		return r;
	return bind_plain(o, o->source);
}

/* Whether dir holds nothing. */
static int dir_is_empty(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return -errno;
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return 0;
	return errno ? -errno : 1;
}

/*
 * GNU cp does the copy: -a (recursive, symlinks as symlinks, special files
 * recreated, hard links kept, mode, owners, timestamps, ACLs) and
 * --preserve=xattr explicitly, so a failure to copy an xattr (file
 * capabilities, trusted.*) is an error rather than ignored as under -a
 * alone; --reflink=auto clones extents where the filesystem can.
 */
static int copy_tree(const char *from, const char *to)
{
	_cleanup_free_ char *src = NULL, *dst = NULL;
	int status;
	pid_t pid;

	if (asprintf(&src, "%s/.", from) < 0 || asprintf(&dst, "%s/", to) < 0)
		return -ENOMEM;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("cp", "cp", "-a", "--reflink=auto", "--preserve=xattr",
		       "--", src, dst, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -EIO;
}

static int fallback_copy(struct options *o)
{
	_cleanup_free_ char *state = NULL, *map = NULL;
	const char *dir = o->copy_dir;
	int r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("Failed to create the copy directory '%s': %m", dir);
		return EXIT_FAIL;
	}
	/* A shifted copy from an earlier run: the engine's marker tells. */
	r = shift_tree_marker(dir, &state, &map);
	if (r == -ENODATA) {
		r = dir_is_empty(dir);
		if (r < 0) {
			cli_error("Failed to read the copy directory '%s': %s",
				  dir, strerror(-r));
			return EXIT_FAIL;
		}
		if (r == 0) {
			cli_error("Failed to copy '%s' into '%s': the directory is not empty and holds no shifted copy (give an empty or new --copy-dir)",
				  o->source, dir);
			return EXIT_FAIL;
		}
		r = copy_tree(o->source, dir);
		if (r < 0) {
			cli_error("Failed to copy '%s' into '%s': %s (remove '%s' and retry)",
				  o->source, dir,
				  r == -ENOENT ? "cp not found" :
				  "cp failed, see its messages", dir);
			return EXIT_FAIL;
		}
		/* The copy is private: drop a shared-layer marker it took along. */
		(void)lremovexattr(dir, SHARED_XATTR_TRUSTED);
		(void)lremovexattr(dir, SHARED_XATTR_USER);
	} else if (r < 0) {
		cli_error("Failed to read the shift marker of '%s': %s", dir,
			  strerror(-r));
		return EXIT_FAIL;
	}
	r = shift_source(o, dir);
	if (r != EXIT_OK)
		return r;
	return bind_plain(o, dir);
}

/*
 * The filesystem of SOURCE can't be idmapped: shift SOURCE in place, or a
 * copy of it, and bind-mount the result without idmap.
 */
static int run_fallback(struct options *o)
{
	return o->fallback == FALLBACK_SHIFT ? fallback_shift(o) :
					       fallback_copy(o);
}

/* Whether the filesystem of path can be idmapped: tried on a throwaway
 * detached clone, so nothing is mounted. */
static bool can_idmap(const struct options *o, const char *path)
{
	_cleanup_close_ int fd = shift_mount_clone_idmapped(
		AT_FDCWD, path, o->userns_fd, o->flags & SHIFT_MOUNT_RECURSIVE);

	return fd >= 0 || !unsupported(fd);
}

static bool can_idmap_all(const struct options *o)
{
	_cleanup_free_ char *layers = NULL;
	char *p, *save = NULL;

	if (o->mode == MODE_BIND)
		return can_idmap(o, o->source);
	if (o->mode != MODE_OVERLAY)
		return true;
	layers = strdup(o->source);
	if (!layers)
		return true; /* the mount itself will report */
	for (p = strtok_r(layers, ":", &save); p; p = strtok_r(NULL, ":", &save))
		if (!can_idmap(o, p))
			return false;
	return true;
}

/*
 * Without CAP_SYS_ADMIN the kernel makes no idmapped mount: shift-mountd
 * makes it within the ids the caller owns and hands back a detached
 * mount, attached here in the caller's own mount namespace
 * (docs/shift-mountd.8).  Returns -1 when the service is not there: the
 * direct path then runs and reports.
 */
static int mount_via_service(struct options *o)
{
	const char *sock = shift_mountd_socket_path();
	_cleanup_close_ int ns = -EBADF, tree = -EBADF;
	char msg[512];
	int r;

	if (!shift_mountd_reachable(sock)) {
		if (o->verbose)
			fprintf(stderr, "%s: no CAP_SYS_ADMIN, and shift-mountd is not reachable at '%s': trying directly\n",
				program_invocation_short_name, sock);
		return -1;
	}
	if (o->flags & SHIFT_MOUNT_RECURSIVE) {
		cli_error("Failed to idmap '%s': --recursive is not available through shift-mountd (it clones exactly one mount; mount each submount separately, or run as root)",
			  o->source);
		return EXIT_FAIL;
	}
	if (o->fallback != FALLBACK_NONE) {
		cli_error("Failed to idmap '%s': --fallback is not available through shift-mountd (run as root)",
			  o->source);
		return EXIT_FAIL;
	}
	if (o->map.userns_path) {
		ns = open(o->map.userns_path, O_RDONLY | O_CLOEXEC);
		if (ns < 0) {
			cli_error("Failed to open user namespace '%s': %m",
				  o->map.userns_path);
			return EXIT_FAIL;
		}
	}
	if (o->verbose)
		fprintf(stderr, "%s: no CAP_SYS_ADMIN: asking shift-mountd at '%s' (the mount is nodev)\n",
			program_invocation_short_name, sock);
	tree = shift_mountd_clone_idmapped(sock, AT_FDCWD, o->source,
					   ns >= 0 ? NULL : o->map.map, ns,
					   o->flags, msg, sizeof(msg));
	if (tree < 0) {
		cli_error("Failed to idmap '%s' through shift-mountd: %s",
			  o->source, msg[0] ? msg : strerror(-tree));
		return tree == -EOPNOTSUPP ? EXIT_UNSUPPORTED : EXIT_FAIL;
	}
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0) {
		cli_error("Failed to attach the idmapped mount from shift-mountd at '%s': %s%s",
			  o->target, strerror(-r),
			  r == -EPERM ? " (attach it in a mount namespace you own: run shift-mount inside 'unshare --user --map-root-user --mount' or your container's namespaces)" : "");
		return EXIT_FAIL;
	}
	if (o->verbose)
		fprintf(stderr, "%s: attached the idmapped mount made by shift-mountd at '%s'\n",
			program_invocation_short_name, o->target);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct options o = { .userns_fd = -EBADF };
	int r;

	parse_args(&o, argc, argv);

	if (o.mode == MODE_BIND && shift_mountd_needed()) {
		r = mount_via_service(&o);
		if (r >= 0)
			goto out;
	} else if (o.verbose) {
		fprintf(stderr, "%s: making the idmapped mount directly\n",
			program_invocation_short_name);
	}

	r = get_userns(&o);
	if (r != EXIT_OK)
		goto out;

	/* The hook: decide up front, so no partial idmapped mount exists. */
	if (o.fallback != FALLBACK_NONE && !can_idmap_all(&o)) {
		r = run_fallback(&o);
		goto out;
	}

	switch (o.mode) {
	case MODE_BIND:
		r = mount_bind(&o);
		break;
	case MODE_TMPFS:
		r = mount_tmpfs(&o);
		break;
	case MODE_OVERLAY:
		r = mount_overlay(&o);
		break;
	}
out:
	safe_close(o.userns_fd);
	cli_map_free(&o.map);
	return r;
}
