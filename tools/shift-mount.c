/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mount: attach an idmapped mount of a directory, a fresh idmapped
 * tmpfs, or an overlay over idmapped layers; with --fallback, a bind mount
 * of SOURCE (or of a copy) shifted in place when SOURCE can't be idmapped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libmount.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "progress.h"

enum mode {
	MODE_BIND,
	MODE_TMPFS,
	MODE_OVERLAY,
};

enum fallback {
	FALLBACK_NONE,
	FALLBACK_SHIFT,
	FALLBACK_COPY,
	FALLBACK_REASSEMBLE, /* SOURCE an overlayfs: idmap its layers */
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
	OPT_ALLOW_STACKED,
	OPT_ALLOW_SHIFTED,
	OPT_DRY_RUN,
	OPT_CANONICAL_UPPER,
	OPT_REPLACE,
};

/* What was done (or would be, --dry-run): for the --json document. */
struct result {
	const char *method; /* "idmapped", "plain_bind", "fallback_shift", ... */
	bool mounted;
	bool shifted;	    /* stats hold a run of the engine */
	bool copied;
	bool copy_reused;
	struct shift_stats st;
	struct shift_source_marker marker;
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
	bool allow_stacked;   /* mount over a TARGET that is a mount point */
	bool allow_shifted;   /* idmap a SOURCE shifted in place all the same */
	bool json;
	bool dry_run;
	bool quiet;
	char *map_str; /* the map, for messages */
	int userns_fd; /* the namespace for the mount */
	struct cli_progress bar;
	struct result res;
	bool canonical_upper; /* --fallback=reassemble: upper in container ids */
	bool replace;	      /* --fallback=reassemble: take the source's place */
	bool verbose;  /* say which path was taken */
	bool fallback_default; /* reassemble: no --fallback, SOURCE an overlay */
};

/*
 * Names for messages: file names from a tree and mount points from
 * mountinfo are untrusted (a container picks them), so every path goes
 * through shift_escape().  A few buffers in turn: enough for the
 * arguments of one message.
 */
static const char *q(const char *s)
{
	static char *ring[16];
	static unsigned i;

	i = (i + 1) % ARRAY_SIZE(ring);
	free(ring[i]);
	ring[i] = shift_escape(s ? s : "");
	return ring[i] ? ring[i] : "?";
}

/* Whether the step that failed (err.what) is this one. */
static bool is_what(const struct shift_error *e, const char *what)
{
	return e->what && strcmp(e->what, what) == 0;
}

/* Whether the path an error is about (err.path, a copy) is this one. */
static bool same_path(const char *failed, const char *path)
{
	return failed && path && strcmp(failed, path) == 0;
}

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
	       "                           (default), shift (SOURCE in place), copy, or\n"
	       "                           reassemble (SOURCE an overlayfs mount: a new\n"
	       "                           overlay over its idmapped layers; with -R or\n"
	       "                           --upper/--work when it has an upper layer;\n"
	       "                           the default for an overlayfs mount)\n"
	       "     --canonical-upper   --overlay or reassemble: the --upper stores the\n"
	       "                           container's own ids (root = 0), idmapped\n"
	       "     --replace           reassemble: unmount SOURCE (only if nothing\n"
	       "                           holds it) and take over its upper layer, in\n"
	       "                           the container's own ids\n"
	       "     --copy-dir DIR      where --fallback=copy keeps the shifted copy\n"
	       "                           (reassemble: of each layer that can't be\n"
	       "                           idmapped, in DIR/layer-N)\n"
	       "     --force             --fallback=shift: shift a shared layer too\n"
	       "     --allow-stacked     mount on a TARGET that is already a mount point\n"
	       "     --allow-shifted     idmap a SOURCE shifted in place all the same (the\n"
	       "                           map then applies to the shifted ids)\n"
	       " -n, --dry-run           say what would be done, change nothing\n"
	       " -q, --quiet             no progress line, no --dry-run summary\n",
	       program_invocation_short_name);
	cli_help_footer(true,
			"a bad map is a usage error; a filesystem that can't\n"
			"be idmapped is not supported.  A SOURCE already shifted in place with\n"
			"the same map (shift-tree) is bind-mounted without idmap; one shifted\n"
			"with another map, or whose shift is running or was interrupted, is\n"
			"refused",
			"shift-mount(8)");
	exit(EXIT_OK);
}

static void reassemble_check_args(const struct options *o);

static void parse_args(struct options *o, int argc, char **argv)
{
	bool fallback_given = false;
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
		{ "allow-stacked", no_argument, NULL, OPT_ALLOW_STACKED },
		{ "allow-shifted", no_argument, NULL, OPT_ALLOW_SHIFTED },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "canonical-upper", no_argument, NULL, OPT_CANONICAL_UPPER },
		{ "replace", no_argument, NULL, OPT_REPLACE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool tmpfs = false, overlay = false;
	int c, npos;

	while ((c = getopt_long(argc, argv, "m:rRvo:nqJhV", longopts, NULL)) != -1) {
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
			fallback_given = true;
			if (!strcmp(optarg, "none"))
				o->fallback = FALLBACK_NONE;
			else if (!strcmp(optarg, "shift"))
				o->fallback = FALLBACK_SHIFT;
			else if (!strcmp(optarg, "copy"))
				o->fallback = FALLBACK_COPY;
			else if (!strcmp(optarg, "reassemble"))
				o->fallback = FALLBACK_REASSEMBLE;
			else
				cli_usage_error("invalid --fallback '%s' (use none, shift, copy or reassemble)",
						optarg);
			break;
		case OPT_COPY_DIR:
			o->copy_dir = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_ALLOW_STACKED:
			o->allow_stacked = true;
			break;
		case OPT_ALLOW_SHIFTED:
			o->allow_shifted = true;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'J':
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_CANONICAL_UPPER:
			o->canonical_upper = true;
			break;
		case OPT_REPLACE:
			o->replace = true;
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

	if (tmpfs && overlay)
		cli_usage_error("--tmpfs and --overlay are mutually exclusive");
	o->mode = tmpfs ? MODE_TMPFS : overlay ? MODE_OVERLAY : MODE_BIND;
	/* The mount point of an overlayfs and no --fallback: re-assembly is
	 * the default (O(1), nothing written; a live upper still needs -R or
	 * --upper/--work).  An explicit --fallback is taken as it is. */
	if (!fallback_given && o->mode == MODE_BIND && !o->allow_shifted &&
	    argc - optind == 2 && shift_overlay_is_mount(argv[optind]) == 1) {
		o->fallback = FALLBACK_REASSEMBLE;
		o->fallback_default = true;
	}
	if (o->mode != MODE_OVERLAY && (o->upper || o->work) &&
	    o->fallback != FALLBACK_REASSEMBLE)
		cli_usage_error("--upper and --work need --overlay");
	reassemble_check_args(o);
	if (o->mode == MODE_OVERLAY && !o->upper != !o->work)
		cli_usage_error("--upper and --work go together");
	if (o->mode == MODE_BIND && o->fsoptions)
		cli_usage_error("--options needs --tmpfs or --overlay");
	if (o->fallback == FALLBACK_COPY && (!o->copy_dir || !*o->copy_dir))
		cli_usage_error("--fallback=copy needs --copy-dir DIR (an empty or new directory for the shifted copy)");
	if (o->copy_dir && o->fallback != FALLBACK_COPY &&
	    o->fallback != FALLBACK_REASSEMBLE)
		cli_usage_error("--copy-dir needs --fallback=copy or --fallback=reassemble");
	if (o->force && o->fallback != FALLBACK_SHIFT)
		cli_usage_error("--force needs --fallback=shift");
	if (o->fallback != FALLBACK_NONE && o->mode != MODE_BIND)
		cli_usage_error("--fallback works with a SOURCE directory, not with --tmpfs or --overlay");
	if (o->mode == MODE_TMPFS && (o->flags & SHIFT_MOUNT_RECURSIVE))
		cli_usage_error("--recursive makes no sense with --tmpfs");
	if (o->mode == MODE_TMPFS && o->allow_shifted)
		cli_usage_error("--allow-shifted needs a SOURCE, not --tmpfs");
	if (o->allow_shifted && o->fallback != FALLBACK_NONE)
		cli_usage_error("--allow-shifted can't be combined with --fallback (a fallback shifts in place: the tree would be shifted twice)");

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

/*
 * The exit status of a failed idmap (cli_exit_code()): the kernel answers
 * EINVAL for a filesystem that can't be idmapped, which here means "not
 * supported", not a bad argument.
 */
static int idmap_exit(int r)
{
	return cli_exit_code(r == -EINVAL ? -EOPNOTSUPP : r);
}

/* The kernel's own filesystems: neither an idmap nor a shift in place
 * nor a copy can give them other owners (and a shift of sysfs would
 * chown the host's). */
static const char *pseudo_fs(const char *path)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} fs[] = {
	    {0x9fa0, "proc"},		{0x62656572, "sysfs"},
	    {0x27e0eb, "cgroup"},	{0x63677270, "cgroup2"},
	    {0x64626720, "debugfs"},	{0x74726163, "tracefs"},
	    {0x73636673, "securityfs"}, {0x1cd1, "devpts"},
	    {0x62656570, "configfs"},	{0xcafe4a11, "bpf"},
	    {0x6165676c, "pstore"},	{0xde5e81e4, "efivarfs"},
	    {0x19800202, "mqueue"},	{0x42494e4d, "binfmt_misc"},
	    {0x6e736673, "nsfs"},
	};
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(fs); i++)
		if ((unsigned long)sfs.f_type == fs[i].magic)
			return fs[i].name;
	return NULL;
}

/* One line naming path, the reason and what the user can do. */
static int report(const struct options *o, int r, const char *what,
		  const char *path)
{
	_cleanup_free_ char *why = shift_mount_strerror(r, path);
	struct shift_error e = { .error = r, .why = why };
	const char *hint = NULL;

	/* (shift_mount_strerror() already says "run as root" for EPERM.)
	 * A fallback only where one is allowed and could help. */
	if (r == -EINVAL && o->fallback == FALLBACK_NONE &&
	    o->mode == MODE_BIND && !o->allow_shifted && !pseudo_fs(path) &&
	    shift_overlay_is_mount(path) == 1)
		hint = "(try --fallback=reassemble: a new overlay over its idmapped layers; or --fallback=shift or --fallback=copy)";
	else if (r == -EINVAL && o->fallback == FALLBACK_NONE &&
		 o->mode == MODE_BIND && !o->allow_shifted && !pseudo_fs(path))
		hint = "(try --fallback=shift or --fallback=copy)";
	else if (r == -ENOSYS)
		hint = o->mode == MODE_BIND ?
			       "(upgrade the kernel, or use --fallback=shift)" :
			       "(upgrade the kernel)";
	else if (r == -EPERM && geteuid() != 0 && o->mode == MODE_BIND)
		hint = "(or start shift-mountd: systemctl start shift-mountd.socket)";
	return cli_report(r == -EINVAL ? -EOPNOTSUPP : r, &e, hint,
			  "Failed to %s '%s'", what, q(path));
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
				  q(o->map.userns_path));
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
				  s ? s : "?", q(user), q(user));
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

/* --dry-run: say what would be done (stdout; not with --json or -q). */
static void would(const struct options *o, const char *fmt, ...) _printf_(2, 3);
static void would(const struct options *o, const char *fmt, ...)
{
	va_list ap;

	if (o->json || o->quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* --dry-run: the target must be there, as move_mount() would need it. */
static int dry_target(struct options *o)
{
	struct stat st;

	if (lstat(o->target, &st) < 0)
		return report(o, -errno, "attach the mount at", o->target);
	return EXIT_OK;
}

static int mount_bind(struct options *o)
{
	_cleanup_close_ int tree = -EBADF;
	int r;

	o->res.method = "idmapped";
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
	if (o->dry_run) {
		r = dry_target(o);
		if (r == EXIT_OK)
			would(o, "would mount '%s' at '%s' idmapped with map '%s'",
			      q(o->source), q(o->target), o->map_str);
		return r;
	}
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0)
		return report(o, r, "attach the idmapped mount at",
			      o->target);
	o->res.mounted = true;
	return EXIT_OK;
}

static int mount_tmpfs(struct options *o)
{
	int r;

	o->res.method = "idmapped";
	if (o->dry_run) {
		_cleanup_(shift_error_clear) struct shift_error why = { 0 };

		r = shift_probe_feature(SHIFT_FEATURE_IDMAP_TMPFS, &why);
		if (r <= 0) {
			cli_error("Failed to mount an idmapped tmpfs at '%s': %s",
				  q(o->target),
				  r < 0 ? strerror(-r) : why.why ? why.why : "not supported");
			return r < 0 ? EXIT_FAIL : EXIT_UNSUPPORTED;
		}
		r = dry_target(o);
		if (r == EXIT_OK)
			would(o, "would mount a tmpfs at '%s' idmapped with map '%s'",
			      q(o->target), o->map_str);
		return r;
	}
	r = shift_mount_tmpfs_idmapped_userns(o->target, o->userns_fd,
					      o->fsoptions, o->flags);
	if (r == -EINVAL) {
		cli_error("Failed to mount an idmapped tmpfs at '%s': invalid option in '%s' or the kernel can't idmap tmpfs (needs Linux >= 6.3)",
			  q(o->target), q(o->fsoptions ? o->fsoptions : ""));
		return EXIT_UNSUPPORTED;
	}
	if (r < 0)
		return report(o, r, "mount an idmapped tmpfs at", o->target);
	o->res.mounted = true;
	return EXIT_OK;
}

/* Split the colon-separated layers of SOURCE (a NULL-terminated array
 * pointing into *ret_buf). */
static int split_layers(const char *source, char **ret_buf,
			const char ***ret_lower)
{
	_cleanup_free_ char *layers = strdup(source);
	_cleanup_free_ const char **lower = NULL;
	size_t n = 1, i = 0;
	char *p, *save = NULL;

	if (!layers)
		return -ENOMEM;
	for (p = layers; *p; p++)
		n += *p == ':';
	lower = calloc(n + 1, sizeof(*lower));
	if (!lower)
		return -ENOMEM;
	for (p = strtok_r(layers, ":", &save); p;
	     p = strtok_r(NULL, ":", &save))
		lower[i++] = p;
	if (i == 0)
		cli_usage_error("no layer in '%s'", q(source));
	*ret_buf = TAKE_PTR(layers);
	*ret_lower = TAKE_PTR(lower);
	return 0;
}

static int mount_overlay(struct options *o)
{
	_cleanup_free_ const char **lower = NULL;
	_cleanup_free_ char *layers = NULL;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *failed;
	struct shift_overlay ovl = { 0 };
	size_t i;
	int r;

	o->res.method = "idmapped";
	if (split_layers(o->source, &layers, &lower) < 0) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	if (o->dry_run) {
		for (i = 0; lower[i]; i++) {
			_cleanup_close_ int fd = shift_mount_clone_idmapped(
				AT_FDCWD, lower[i], o->userns_fd,
				o->flags & SHIFT_MOUNT_RECURSIVE);

			if (fd < 0)
				return report(o, fd,
					      fd == -ENOENT ? "open layer" :
							      "idmap layer",
					      lower[i]);
		}
		r = dry_target(o);
		if (r != EXIT_OK)
			return r;
		would(o, "would mount an overlay of %zu idmapped layer(s) at '%s' with map '%s'%s",
		      i, q(o->target), o->map_str,
		      o->upper ? ", writable (upper and work created if missing)" :
				 ", read-only");
		return EXIT_OK;
	}

	ovl.lower = lower;
	ovl.upper = o->upper;
	ovl.work = o->work;
	ovl.options = o->fsoptions;
	r = shift_mount_overlay_userns(&ovl, o->target, o->map.map,
				       o->userns_fd, o->flags, &e);
	if (r >= 0) {
		o->res.mounted = true;
		return EXIT_OK;
	}
	failed = e.path;
	for (i = 0; lower[i]; i++)
		if (same_path(failed, lower[i]))
			return report(o, r, "idmap layer", failed);
	if (failed)
		return report(o, r, "mount the overlay at", failed);
	cli_error("Failed to mount the overlay at '%s': %s%s", q(o->target),
		  strerror(-r),
		  r == -EINVAL ? " (check --options and that upper and work are on one filesystem that supports overlayfs upper layers)" : "");
	return EXIT_FAIL;
}

struct shift_ctx {
	struct options *o;
	const char *root;
	bool recursive; /* submounts are part of the mount: each one matters */
	const struct shift_copy_result *copy; /* a copy's shift: its tree */
};

/* "root/path" escaped, for one message. */
static const char *in_tree(const char *root, const char *path)
{
	_cleanup_free_ char *s = NULL;

	if (asprintf(&s, "%s/%s", root, path) < 0)
		return "?";
	return q(s);
}

static void on_shift_event(const struct shift_event *ev, void *userdata)
{
	const struct shift_ctx *c = userdata;
	const char *root = c->copy && c->copy->tree ? c->copy->tree : c->root;

	switch (ev->type) {
	case SHIFT_EVENT_UNMAPPED:
		cli_progress_clear(&c->o->bar);
		if (ev->id == SHIFT_ID_UNKNOWN) {
			cli_error("'%s': its %s is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)",
				  in_tree(root, ev->path),
				  ev->kind == SHIFT_UID ? "uid" : "gid");
			break;
		}
		cli_error("'%s': %s %" PRIu32 " has no image under the map",
			  in_tree(root, ev->path),
			  ev->kind == SHIFT_UID ? "uid" : "gid", ev->id);
		break;
	case SHIFT_EVENT_ERROR:
		cli_progress_clear(&c->o->bar);
		cli_error("Failed to %s '%s': %s", ev->op ? ev->op : "shift",
			  in_tree(root, ev->path), strerror(-ev->error));
		break;
	case SHIFT_EVENT_MOUNTPOINT:
		cli_progress_clear(&c->o->bar);
		if (c->recursive)
			cli_error("'%s': another mount, not shifted",
				  in_tree(root, ev->path));
		break;
	default:
		break;
	}
}

/* The progress line, for on_shift_progress(): not through userdata, which
 * shift_tree_userns() hands its own event context when both are set. */
static struct cli_progress *progress_bar;

static void on_shift_progress(const struct shift_stats *st, void *userdata)
{
	(void)userdata;
	if (progress_bar)
		cli_progress_update(progress_bar, st->inodes, true);
}

/* The engine's options for a shift of the tree at root, reporting through
 * c. */
static struct shift_options shift_opts(struct options *o, struct shift_ctx *c,
				       const char *root)
{
	struct shift_options so = {
		.map = o->map.map,
		.flags = o->dry_run ? SHIFT_DRY_RUN : 0,
		.unmapped = SHIFT_UNMAPPED_ERROR,
		.on_event = on_shift_event,
		.userdata = c,
		.engine = "auto",
	};

	*c = (struct shift_ctx){
		.o = o,
		.root = root,
		.recursive = o->flags & SHIFT_MOUNT_RECURSIVE,
	};
	o->res.st = (struct shift_stats){ 0 };
	if (o->bar.enabled) {
		progress_bar = &o->bar;
		so.on_progress = on_shift_progress;
	}
	return so;
}

/* What the engine's run on path returned (r), told; EXIT_OK when the
 * mount can go on. */
static int shift_report(struct options *o, const struct shift_ctx *c,
			const char *path, int r)
{
	const struct shift_stats *st = &o->res.st;

	cli_progress_clear(&o->bar);
	if (r >= 0)
		o->res.shifted = true;
	if (r == 0)
		return EXIT_OK;
	/* Submounts are not shifted; without --recursive they are not part
	 * of the bind mount either. */
	if (r == 1 && !st->unmapped && !st->errors && !c->recursive)
		return EXIT_OK;
	if (r == 1) {
		cli_error("Failed to shift '%s': %s; nothing was mounted",
			  q(path),
			  st->unmapped ? "ids without image under the map (see above; use a map that covers every id)" :
			  st->errors ? "some inodes could not be shifted (see above)" :
			  "mounts below it can't be shifted (see above; drop --recursive or shift them separately)");
		return EXIT_FAIL;
	}
	if (r == -EOPNOTSUPP) {
		/* As shift-tree says it: exit 3, not supported here. */
		cli_error("Failed to shift '%s': the filesystem does not support extended attributes, needed to make the shift resumable (use --fallback=copy with a --copy-dir on another filesystem)",
			  q(path));
		return EXIT_UNSUPPORTED;
	}
	cli_error("Failed to shift '%s': %s%s", q(path), strerror(-r),
		  r == -EEXIST ? " (it is shifted by another map: undo that with shift-tree --reverse)" :
		  r == -EBUSY ? " (an interrupted shift with another map is pending: finish it with shift-tree)" :
		  r == -EROFS ? " (the filesystem is read-only: use --fallback=copy)" :
		  r == -EPERM && geteuid() != 0 ? " (run as root)" : "");
	return EXIT_FAIL;
}

/* Shift the tree at path in place with the engine, as root or through a
 * user namespace (only look, with --dry-run); prints what went wrong. */
static int shift_source(struct options *o, const char *path)
{
	struct shift_ctx c;
	struct shift_options so = shift_opts(o, &c, path);

	return shift_report(o, &c, path,
			    shift_tree_auto(path, &so, &o->res.st, NULL));
}

/* Bind-mount path at the target, without idmap, with the attributes. */
static int bind_plain(struct options *o, const char *path)
{
	_cleanup_close_ int tree = -EBADF;
	int r;

	tree = shift_mount_clone_idmapped(AT_FDCWD, path, -EBADF, o->flags);
	if (tree < 0)
		return report(o, tree, "bind-mount", path);
	if (o->dry_run) {
		r = dry_target(o);
		if (r == EXIT_OK)
			would(o, "would bind-mount '%s' at '%s' without idmap",
			      q(path), q(o->target));
		return r;
	}
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0)
		return report(o, r, "attach the mount at", o->target);
	o->res.mounted = true;
	return EXIT_OK;
}

/* --dry-run: what the engine found. */
static void would_shift(const struct options *o, const char *what,
			const char *path)
{
	const struct shift_stats *st = &o->res.st;

	if (st->already)
		would(o,
		      "'%s' is already shifted with map '%s': nothing to shift",
		      q(path), o->map_str);
	else
		would(o,
		      "would %s '%s' with map '%s': %" PRIu64
		      " inodes, %" PRIu64 " would change%s",
		      what, q(path), o->map_str, st->inodes, st->changed,
		      st->resumed ? " (finishing an interrupted shift)" : "");
}

static int fallback_shift(struct options *o)
{
	int r;

	o->res.method = "fallback_shift";
	r = shift_source(o, o->source);
	if (o->dry_run && o->res.shifted)
		would_shift(o, "shift in place", o->source);
	if (r != EXIT_OK)
		return r;
	return bind_plain(o, o->source);
}

/* --dry-run of the copy fallback: the copy would be bind-mounted. */
static int dry_bind_copy(struct options *o, const char *dir)
{
	int r = dry_target(o);

	if (r == EXIT_OK)
		would(o, "would bind-mount the copy '%s' at '%s' without idmap",
		      q(dir), q(o->target));
	return r;
}

/* On a terminal, before the copy (which counts nothing): one status line;
 * the shift after it counts its inodes. */
static void on_copy(const char *src, const char *dir, void *userdata)
{
	struct shift_ctx *c = userdata;

	if (c->o->bar.enabled) {
		fprintf(stderr, "%s: copying '%s' into '%s'",
			program_invocation_short_name, q(src), q(dir));
		c->o->bar.shown = true;
	}
}

/*
 * A shifted copy of src in dir, made or reused (shift_copy_and_shift());
 * what failed before the shift is told here, with what (SOURCE or "layer
 * ..."), the shift's problems by shift_report().
 */
static int copy_and_shift(struct options *o, const char *what,
			  const char *src, const char *dir,
			  struct shift_copy_result *cr)
{
	struct shift_ctx c;
	struct shift_options so = shift_opts(o, &c, dir);
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *where;
	int r;

	c.copy = cr;
	cr->on_copy = on_copy;
	r = shift_copy_and_shift(src, dir, &so, &o->res.st, cr, &e);
	if (cr->step == SHIFT_COPY_STEP_SHIFT)
		return shift_report(o, &c, cr->tree, r);
	cli_progress_clear(&o->bar);
	switch (cr->step) {
	case SHIFT_COPY_STEP_MKDIR:
		return cli_report(r, NULL, NULL,
				  "Failed to create the copy directory '%s'",
				  q(dir));
	case SHIFT_COPY_STEP_MARKER:
		return cli_report(r, NULL, NULL,
				  "Failed to read the shift marker of '%s'",
				  q(dir));
	case SHIFT_COPY_STEP_DIR:
		if (r != -ENOTEMPTY)
			return cli_report(r, NULL, NULL,
					  "Failed to read the copy directory '%s'",
					  q(dir));
		cli_error("Failed to copy %s'%s' into '%s': the directory is not empty and holds no shifted copy (give an empty or new --copy-dir)",
			  what, q(src), q(dir));
		break;
	default:
		/* Nothing of it is left: the copy is made aside and renamed
		 * into place, removed on failure. */
		where = e.path;
		cli_error("Failed to copy %s'%s' into '%s': %s%s%s%s%s%s",
			  what, q(src), q(dir), e.why ? e.why : "cannot copy",
			  where ? " '" : "", where ? q(where) : "",
			  where ? "'" : "", r == -ELOOP ? "" : ": ",
			  r == -ELOOP ? "" : strerror(-r));
		break;
	}
	return EXIT_FAIL;
}

static int fallback_copy(struct options *o)
{
	struct shift_copy_result cr = {0};
	const char *dir = o->copy_dir;
	int r;

	o->res.method = "fallback_copy";
	r = copy_and_shift(o, "", o->source, dir, &cr);
	o->res.copied = cr.copied;
	o->res.copy_reused = cr.reused;
	if (o->dry_run && o->res.shifted) {
		if (cr.copy) {
			would(o, "would copy '%s' into '%s'", q(o->source),
			      q(dir));
			would_shift(o, "shift the copy of", o->source);
		} else {
			would_shift(o, "shift the copy", dir);
		}
	}
	if (r != EXIT_OK)
		return r;
	return o->dry_run && cr.copy ? dry_bind_copy(o, dir)
				     : bind_plain(o, dir);
}

/* Whether the filesystem of path can be idmapped: tried on a throwaway
 * detached clone, so nothing is mounted. */
static bool can_idmap(const struct options *o, const char *path)
{
	_cleanup_close_ int fd = shift_mount_clone_idmapped(
		AT_FDCWD, path, o->userns_fd, o->flags & SHIFT_MOUNT_RECURSIVE);

	return fd >= 0 || !unsupported(fd);
}

/* Whether path is the directory root (as shift_tree_source_state() names
 * it). */
static bool same_tree(const char *path, const char *root)
{
	_cleanup_free_ char *abs = realpath(path, NULL);

	return abs && root && strcmp(abs, root) == 0;
}

/*
 * TARGET already a mount point (a running container's root, say): a new
 * mount would hide it from everyone who opens the path from now on, while
 * whoever holds it open keeps the old one.  Refused unless asked.
 */
static int check_target(struct options *o)
{
	int r;

	if (o->allow_stacked)
		return EXIT_OK;
	/* --replace onto the source overlay's own mount point: it is
	 * unmounted first (only when nothing holds it), nothing is hidden. */
	if (o->replace && same_tree(o->target, o->source))
		return EXIT_OK;
	r = shift_mount_is_mountpoint(AT_FDCWD, o->target);
	if (r == -ENOENT || r == -ENOTDIR)
		return EXIT_OK; /* the mount itself names the missing path */
	if (r < 0)
		return cli_report(r, NULL, NULL,
				  "Failed to check whether '%s' is a mount point",
				  q(o->target));
	if (r > 0) {
		cli_error(
		    "Failed to mount on '%s': it is already a mount point, and a mount on top would hide it (unmount it first, or use --allow-stacked to mount over it)",
		    q(o->target));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}


static bool same_map(const struct options *o, const char *s)
{
	struct shift_idmap *m = shift_idmap_new();
	bool eq;

	if (!m)
		return false;
	eq = s && shift_idmap_parse(m, s, NULL) == 0 &&
	     shift_idmap_equal(m, o->map.map);
	shift_idmap_free(m);
	return eq;
}

/*
 * A SOURCE (or overlay layer) shifted in place by shift-tree: an idmapped
 * mount of it would apply the map a second time (files seen as 65534).
 * Returns EXIT_OK with *shifted set when it carries exactly this map
 * (then a plain bind mount shows the right owners), with *resume set when
 * --fallback=shift is to finish its unfinished shift with this map,
 * EXIT_OK when it is not shifted, or reports and fails.
 */
static int check_source(struct options *o, const char *path, bool layer,
			bool *shifted, bool *resume)
{
	struct shift_source_marker *m = &o->res.marker;
	const char *what = layer ? "idmap layer" : "mount";
	int r;

	*shifted = false;
	*resume = false;
	shift_source_marker_clear(m);
	r = shift_tree_source_state(path, o->map.map, m);
	if (r == -ENOENT || r == -ENOTDIR)
		return EXIT_OK; /* the mount itself names the missing path */
	if (r < 0) {
		cli_error(
		    "Failed to %s '%s': could not read its shift marker: %s (nothing mounted)",
		    what, q(path), strerror(-r));
		return EXIT_FAIL;
	}
	switch (r) {
	case SHIFT_SOURCE_UNSHIFTED:
		return EXIT_OK;
	case SHIFT_SOURCE_SHIFTED:
		if (!layer) {
			*shifted = true;
			return EXIT_OK;
		}
		cli_error(
		    "Failed to idmap layer '%s': '%s' is already shifted in place with map '%s' (marker state '%s'), and an idmapped layer would shift its ids a second time (undo it with 'shift-tree --reverse --map %s %s', or use --allow-shifted with a map from its ids)",
		    q(path), q(m->root), q(m->map), q(m->state), q(m->map),
		    q(m->root));
		return EXIT_FAIL;
	case SHIFT_SOURCE_OTHER_MAP:
		cli_error(
		    "Failed to %s '%s': '%s' is shifted in place with map '%s' (marker state '%s'), and an idmapped mount with map '%s' would shift its ids a second time (undo it with 'shift-tree --reverse --map %s %s', mount it with --map %s, or use --allow-shifted with a map from its ids)",
		    what, q(path), q(m->root), q(m->map), q(m->state),
		    o->map_str, q(m->map), q(m->root), q(m->map));
		return EXIT_FAIL;
	default:
		/* --fallback=shift of this very tree with this map: the
		 * engine finishes what was left, as a re-run does. */
		if (!layer && o->fallback == FALLBACK_SHIFT &&
		    same_tree(path, m->root) && same_map(o, m->map)) {
			*resume = true;
			return EXIT_OK;
		}
		cli_error(
		    "Failed to %s '%s': a shift in place of '%s' with map '%s' is running or was interrupted (marker state '%s'), so its files hold a mix of ids (finish it with 'shift-tree --map %s %s', or undo it with 'shift-tree --reverse --map %s %s', then retry)",
		    what, q(path), q(m->root), q(m->map), q(m->state),
		    q(m->map), q(m->root), q(m->map), q(m->root));
		return EXIT_FAIL;
	}
}

/*
 * The first mount strictly below path (malloc'd), NULL when none (or when
 * mountinfo can't be read: *err then).  A tree shifted in place does not
 * reach into them: with --recursive they would be mounted unshifted.
 */
static char *mount_below(const char *path, int *err)
{
	_cleanup_free_ char *abs = realpath(path, NULL);
	struct libmnt_table *mt = NULL;
	struct libmnt_iter *it = NULL;
	struct libmnt_fs *fs;
	char *found = NULL;
	size_t n;

	*err = 0;
	if (!abs) {
		*err = -errno;
		return NULL;
	}
	n = strlen(abs);
	mt = mnt_new_table_from_file("/proc/self/mountinfo");
	it = mnt_new_iter(MNT_ITER_FORWARD);
	if (!mt || !it) {
		*err = -EIO;
		goto out;
	}
	while (!found && mnt_table_next_fs(mt, it, &fs) == 0) {
		const char *t = mnt_fs_get_target(fs);

		if (!t || strncmp(t, abs, n) != 0)
			continue;
		if (n == 1 ? t[1] != '\0' : t[n] == '/' && t[n + 1] != '\0')
			found = strdup(t);
	}
out:
	mnt_free_iter(it);
	mnt_unref_table(mt);
	return found;
}

/* A plain bind of a shifted SOURCE with --recursive: the mounts below it
 * were not shifted with it, and would show their raw ids. */
static int check_plain_recursive(struct options *o)
{
	_cleanup_free_ char *sub = NULL;
	int err;

	if (!(o->flags & SHIFT_MOUNT_RECURSIVE))
		return EXIT_OK;
	sub = mount_below(o->source, &err);
	if (err < 0) {
		cli_error("Failed to list the mounts below '%s': %s",
			  q(o->source), strerror(-err));
		return EXIT_FAIL;
	}
	if (sub) {
		cli_error("Failed to mount '%s': it is shifted in place, but '%s' below it is another mount, which --recursive would show unshifted (drop --recursive, or mount it separately)",
			  q(o->source), q(sub));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/*
 * --overlay without CAP_SYS_ADMIN: one request to shift-mountd per layer,
 * the overlay assembled here in the caller's namespaces
 * (shift_mountd_overlay).
 */
static int overlay_via_service(struct options *o, const char *sock, int ns)
{
	_cleanup_free_ const char **lower = NULL;
	_cleanup_free_ char *layers = NULL;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *failed, *msg;
	struct shift_overlay ovl = { 0 };
	size_t i;
	int r;

	if (o->canonical_upper) {
		cli_error("Failed to mount the overlay at '%s': --canonical-upper is not available through shift-mountd (run as root)",
			  q(o->target));
		return EXIT_FAIL;
	}
	if (split_layers(o->source, &layers, &lower) < 0) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	for (i = 0; lower[i]; i++)
		;
	if (o->dry_run) {
		would(o, "would ask shift-mountd at '%s' for %zu idmapped layer(s) with map '%s' (nodev) and mount an overlay of them at '%s'%s",
		      q(sock), i, o->map_str, q(o->target),
		      o->upper ? ", writable (upper and work created if missing)" :
				 ", read-only");
		return EXIT_OK;
	}
	if (o->verbose)
		fprintf(stderr, "%s: no CAP_SYS_ADMIN: asking shift-mountd at '%s' for %zu idmapped layer(s) (nodev)\n",
			program_invocation_short_name, q(sock), i);
	ovl.lower = lower;
	ovl.upper = o->upper;
	ovl.work = o->work;
	ovl.options = o->fsoptions;
	r = shift_mountd_overlay(sock, &ovl, o->target,
				 ns >= 0 ? NULL : o->map.map, ns, o->flags, &e);
	failed = e.path;
	msg = e.why ? e.why : "";
	if (r >= 0) {
		o->res.mounted = true;
		if (o->verbose)
			fprintf(stderr, "%s: mounted an overlay of the idmapped layers made by shift-mountd at '%s'\n",
				program_invocation_short_name, q(o->target));
		return EXIT_OK;
	}
	for (i = 0; lower[i]; i++)
		if (same_path(failed, lower[i]))
			return cli_report(r, &e, NULL,
					  "Failed to idmap layer '%s' through shift-mountd",
					  q(failed));
	cli_error("Failed to mount the overlay at '%s' over layers from shift-mountd: %s%s%s",
		  q(failed ? failed : o->target), msg[0] ? q(msg) : strerror(-r),
		  msg[0] ? ": " : "", msg[0] ? strerror(-r) : "");
	return EXIT_FAIL;
}

/*
 * Without CAP_SYS_ADMIN the kernel makes no idmapped mount: shift-mountd
 * makes it within the ids the caller owns and hands back a detached
 * mount, attached here in the caller's own mount namespace
 * (docs/shift-mountd.8); run() has found it reachable.
 */
static int mount_via_service(struct options *o)
{
	const char *sock = shift_mountd_socket_path();
	_cleanup_close_ int ns = -EBADF, tree = -EBADF;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	int r;

	if (o->flags & SHIFT_MOUNT_RECURSIVE) {
		cli_error("Failed to idmap '%s': --recursive is not available through shift-mountd (it clones exactly one mount; mount each submount separately, or run as root)",
			  q(o->source));
		return EXIT_FAIL;
	}
	if (o->fallback_default) {
		cli_error("Failed to idmap '%s': it is an overlayfs mount, and re-assembling it over its idmapped layers is not available through shift-mountd (run as root)",
			  q(o->source));
		return EXIT_FAIL;
	}
	if (o->fallback != FALLBACK_NONE) {
		cli_error("Failed to idmap '%s': --fallback is not available through shift-mountd (run as root)",
			  q(o->source));
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
	o->res.method = "shift_mountd";
	if (o->mode == MODE_OVERLAY)
		return overlay_via_service(o, sock, ns);
	if (o->dry_run) {
		would(o, "would ask shift-mountd at '%s' for an idmapped mount of '%s' with map '%s' (nodev) and attach it at '%s'",
		      q(sock), q(o->source), o->map_str, q(o->target));
		return EXIT_OK;
	}
	if (o->verbose)
		fprintf(stderr, "%s: no CAP_SYS_ADMIN: asking shift-mountd at '%s' (the mount is nodev)\n",
			program_invocation_short_name, q(sock));
	tree = shift_mountd_clone_idmapped(sock, AT_FDCWD, o->source,
					   ns >= 0 ? NULL : o->map.map, ns,
					   o->flags, &e);
	if (tree < 0)
		return cli_report(tree, &e, NULL,
				  "Failed to idmap '%s' through shift-mountd",
				  q(o->source));
	r = shift_mount_attach(tree, AT_FDCWD, o->target);
	if (r < 0)
		return cli_report(r, NULL,
				  r == -EPERM ? "(attach it in a mount namespace you own: run shift-mount inside 'unshare --user --map-root-user --mount' or your container's namespaces)" : NULL,
				  "Failed to attach the idmapped mount from shift-mountd at '%s'",
				  q(o->target));
	o->res.mounted = true;
	if (o->verbose)
		fprintf(stderr, "%s: attached the idmapped mount made by shift-mountd at '%s'\n",
			program_invocation_short_name, q(o->target));
	return EXIT_OK;
}

#include "shift-mount-reassemble.h"

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static void print_json(const struct options *o, int r)
{
	static const char *const modes[] = {
	    [MODE_BIND] = "bind",
	    [MODE_TMPFS] = "tmpfs",
	    [MODE_OVERLAY] = "overlay",
	};
	static const char *const fallbacks[] = {
	    [FALLBACK_NONE] = "none",
	    [FALLBACK_SHIFT] = "shift",
	    [FALLBACK_COPY] = "copy",
	    [FALLBACK_REASSEMBLE] = "reassemble",
	};
	const struct result *res = &o->res;
	json_object *doc = json_object_new_object();
	json_object *m = NULL;

	if (!doc) {
		cli_error("out of memory");
		return;
	}
	json_object_object_add(doc, "source", jstr(o->source));
	json_object_object_add(doc, "target", jstr(o->target));
	json_object_object_add(doc, "mode", jstr(modes[o->mode]));
	json_object_object_add(doc, "map", jstr(o->map_str));
	json_object_object_add(doc, "fallback", jstr(fallbacks[o->fallback]));
	json_object_object_add(doc, "method", jstr(res->method));
	json_object_object_add(doc, "dry_run",
			       json_object_new_boolean(o->dry_run));
	json_object_object_add(doc, "mounted",
			       json_object_new_boolean(res->mounted));
	json_object_object_add(
	    doc, "read_only",
	    json_object_new_boolean(o->flags & SHIFT_MOUNT_RDONLY));
	json_object_object_add(
	    doc, "recursive",
	    json_object_new_boolean(o->flags & SHIFT_MOUNT_RECURSIVE));
	json_object_object_add(
	    doc, "already_shifted",
	    json_object_new_boolean(
		(res->method && !strcmp(res->method, "plain_bind")) ||
		(res->shifted && res->st.already)));
	if (res->marker.state) {
		m = json_object_new_object();
		json_object_object_add(m, "directory", jstr(res->marker.root));
		json_object_object_add(m, "state", jstr(res->marker.state));
		json_object_object_add(m, "map", jstr(res->marker.map));
	}
	json_object_object_add(doc, "marker", m);
	if (o->fallback == FALLBACK_COPY) {
		json_object_object_add(doc, "copy_dir", jstr(o->copy_dir));
		json_object_object_add(doc, "copied",
				       json_object_new_boolean(res->copied));
		json_object_object_add(
		    doc, "copy_reused",
		    json_object_new_boolean(res->copy_reused));
	}
	if (res->shifted) {
		const struct shift_stats *st = &res->st;

		m = json_object_new_object();
		json_object_object_add(m, "engine", jstr(st->engine));
		json_object_object_add(m, "inodes",
				       json_object_new_uint64(st->inodes));
		json_object_object_add(m, "directories",
				       json_object_new_uint64(st->dirs));
		json_object_object_add(m, "changed",
				       json_object_new_uint64(st->changed));
		json_object_object_add(m, "hardlinks",
				       json_object_new_uint64(st->hardlinks));
		json_object_object_add(m, "unmapped",
				       json_object_new_uint64(st->unmapped));
		json_object_object_add(m, "errors",
				       json_object_new_uint64(st->errors));
		json_object_object_add(m, "mountpoints",
				       json_object_new_uint64(st->mountpoints));
		json_object_object_add(m, "already_shifted",
				       json_object_new_boolean(st->already));
		json_object_object_add(m, "resumed",
				       json_object_new_boolean(st->resumed));
		json_object_object_add(doc, "shift", m);
	}
	cli_json_print(doc, r);
}

/*
 * SOURCE a block device or an image file holding a filesystem (libblkid),
 * TARGET a directory: what is meant is the filesystem in it, which has to
 * be mounted first.  Binding the device node or the file itself would fail
 * with a misleading error, or with --fallback=shift change the owner of
 * the node.  (Onto a file TARGET, a file is bound as before.)
 */
static int check_source_kind(const struct options *o)
{
	struct stat st;
	char type[64];
	bool blk;

	if (stat(o->target, &st) < 0 || !S_ISDIR(st.st_mode))
		return EXIT_OK;
	if (shift_probe_fstype(o->source, type, sizeof(type)) <= 0 ||
	    stat(o->source, &st) < 0)
		return EXIT_OK; /* a tree, or unreadable: the mount decides */
	blk = S_ISBLK(st.st_mode);
	cli_error("Failed to mount '%s': it is %s holding %s, not a directory tree (mount it first, e.g. 'mount %s%s DIR', and give DIR as SOURCE)",
		  q(o->source), blk ? "a block device" : "an image file",
		  type, blk ? "" : "-o loop ", q(o->source));
	return EXIT_FAIL;
}

/* Whether shift-mountd answers (the caller has no CAP_SYS_ADMIN). */
static bool service_reachable(const struct options *o)
{
	const char *sock = shift_mountd_socket_path();

	if (shift_mountd_reachable(sock))
		return true;
	if (o->verbose)
		fprintf(stderr, "%s: no CAP_SYS_ADMIN, and shift-mountd is not reachable at '%s': trying directly\n",
			program_invocation_short_name, q(sock));
	return false;
}

/*
 * What is known about SOURCE decides the method (shift_mount_choose(),
 * libshift's policy); each fact is looked at where it can matter, in the
 * order the messages of its failures are expected.
 */
static int run(struct options *o)
{
	static const enum shift_fallback fallbacks[] = {
	    [FALLBACK_NONE] = SHIFT_FALLBACK_NONE,
	    [FALLBACK_SHIFT] = SHIFT_FALLBACK_SHIFT,
	    [FALLBACK_COPY] = SHIFT_FALLBACK_COPY,
	    [FALLBACK_REASSEMBLE] = SHIFT_FALLBACK_REASSEMBLE,
	};
	static const enum shift_mount_kind kinds[] = {
	    [MODE_BIND] = SHIFT_MOUNT_KIND_BIND,
	    [MODE_TMPFS] = SHIFT_MOUNT_KIND_TMPFS,
	    [MODE_OVERLAY] = SHIFT_MOUNT_KIND_OVERLAY,
	};
	struct shift_mount_facts f = {
	    .kind = kinds[o->mode],
	    .fallback = fallbacks[o->fallback],
	    .force = o->force,
	    .allow_shifted = o->allow_shifted,
	    .source_state = SHIFT_SOURCE_UNSHIFTED,
	};
	bool shifted = false, resume = false;
	int r;

	if (o->mode == MODE_BIND) {
		r = check_source_kind(o);
		if (r != EXIT_OK)
			return r;
	}

	if ((o->mode == MODE_BIND || o->mode == MODE_OVERLAY) &&
	    shift_mountd_needed()) {
		r = check_target(o);
		if (r != EXIT_OK)
			return r;
		f.service = service_reachable(o);
		if (shift_mount_choose(&f) == SHIFT_METHOD_SERVICE)
			return mount_via_service(o);
	} else if (o->verbose) {
		fprintf(stderr, "%s: making the idmapped mount directly\n",
			program_invocation_short_name);
	}

	r = get_userns(o);
	if (r != EXIT_OK)
		return r;
	r = check_target(o);
	if (r != EXIT_OK)
		return r;

	if (o->allow_shifted) {
		/* Asked for: the map applies on top of whatever the tree
		 * holds (e.g. a map composed with the one it was shifted
		 * with). */
	} else if (o->mode == MODE_BIND) {
		r = check_source(o, o->source, false, &shifted, &resume);
		if (r != EXIT_OK)
			return r;
		f.source_state = shifted  ? SHIFT_SOURCE_SHIFTED
				 : resume ? SHIFT_SOURCE_UNFINISHED
					  : SHIFT_SOURCE_UNSHIFTED;
		f.resume = resume;
	} else if (o->mode == MODE_OVERLAY) {
		_cleanup_free_ const char **lower = NULL;
		_cleanup_free_ char *layers = NULL;

		if (split_layers(o->source, &layers, &lower) < 0) {
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		for (size_t i = 0; lower[i]; i++) {
			r = check_source(o, lower[i], true, &shifted, &resume);
			if (r != EXIT_OK)
				return r;
		}
	}

	if (o->mode == MODE_BIND && !shifted && !resume) {
		if (o->fallback == FALLBACK_REASSEMBLE)
			f.overlay = reassemble_applies(o);
		f.fallback = fallbacks[o->fallback];
		/* The hook: decided up front, so no partial idmapped mount
		 * exists (a fallback is for a SOURCE directory only:
		 * parse_args). */
		if (!f.overlay && o->fallback != FALLBACK_NONE)
			f.idmappable = can_idmap(o, o->source);
	}
	if (o->mode == MODE_BIND && o->fallback != FALLBACK_NONE) {
		f.kernel_fs = pseudo_fs(o->source);
		f.shared = shift_tree_shared_marker(o->source) != NULL;
	}

	switch (shift_mount_choose(&f)) {
	case SHIFT_METHOD_PLAIN_BIND:
		/* Its files already carry the ids the container needs: the
		 * plain view is the right one, whatever --fallback says
		 * (nothing to shift or copy). */
		o->res.method = "plain_bind";
		r = check_plain_recursive(o);
		if (r != EXIT_OK)
			return r;
		return bind_plain(o, o->source);
	case SHIFT_METHOD_REASSEMBLE:
		if (o->fallback_default && o->verbose)
			fprintf(stderr, "%s: '%s' is an overlayfs mount: re-assembling it over its idmapped layers (the default; --fallback=none refuses)\n",
				program_invocation_short_name, q(o->source));
		r = mount_reassemble(o);
		return r >= 0 ? r : mount_bind(o);
	case SHIFT_METHOD_REFUSE_KERNEL_FS:
		cli_error("Failed to mount '%s': filesystem '%s' can't be idmapped, and neither --fallback=shift nor --fallback=copy can change owners on a kernel filesystem",
			  q(o->source), f.kernel_fs);
		return EXIT_UNSUPPORTED;
	case SHIFT_METHOD_REFUSE_SHARED:
		o->res.method = "fallback_shift";
		cli_error("Failed to shift '%s' in place: it is marked as a shared layer (%s) (use --fallback=copy, or --force if no one else uses it)",
			  q(o->source), shift_tree_shared_marker(o->source));
		return EXIT_FAIL;
	case SHIFT_METHOD_SHIFT:
		return fallback_shift(o);
	case SHIFT_METHOD_COPY:
		return fallback_copy(o);
	case SHIFT_METHOD_SERVICE: /* not with the facts known here */
	case SHIFT_METHOD_IDMAP:
		break;
	}
	switch (o->mode) {
	case MODE_BIND:
		return mount_bind(o);
	case MODE_TMPFS:
		return mount_tmpfs(o);
	case MODE_OVERLAY:
		return o->canonical_upper ? mount_overlay_canonical(o) :
					    mount_overlay(o);
	}
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	struct options o = {.userns_fd = -EBADF};
	int r;

	cli_json_begin(argc, argv);
	parse_args(&o, argc, argv);
	o.map_str = shift_idmap_to_string(o.map.map);
	if (!o.map_str) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	cli_progress_init(&o.bar, "inodes", o.quiet || o.json);

	r = run(&o);
	cli_progress_clear(&o.bar);
	if (o.json)
		print_json(&o, r);
	shift_source_marker_clear(&o.res.marker);
	safe_close(o.userns_fd);
	free(o.map_str);
	cli_map_free(&o.map);
	return r;
}
