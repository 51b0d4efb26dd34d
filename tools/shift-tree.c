/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-tree: rewrite the ownership of a tree in place so that it looks as
 * the original looks through an idmapped mount with the same map.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "progress.h"

enum {
	OPT_REVERSE = 0x2000,
	OPT_DRY_RUN,
	OPT_UNMAPPED,
	OPT_ENGINE,
	OPT_THREADS,
	OPT_FORCE,
	OPT_NO_PROGRESS,
	OPT_NO_PRESERVE_ROOT,
	OPT_STATUS,
};

/* shift-tree's own exit codes, beyond cli.h's 0-3 (shift-tree(1)). */
#define EXIT_INCOMPLETE 4 /* ran through; reported ids/mounts left as they are */
#define EXIT_BUSY 5	  /* another run is shifting the tree */
#define EXIT_NO_MARKER 6  /* --status: the tree carries no marker */

struct options {
	struct cli_map map;
	struct shift_options so;
	const char *dir;
	char *dir_esc; /* dir for text lines (shift_escape) */
	bool json;
	bool progress;
	bool quiet;
	bool status;
	bool no_preserve_root;
	struct cli_progress bar;
	double t0;
	unsigned long events; /* --json: events printed so far */
	char err[1024];	      /* the run's failure, for --json */
};

static void usage(void)
{
	printf("Usage:\n"
	       " %s [options] MAP-OPTION DIR\n"
	       " %s --status [--json] DIR\n"
	       "\n"
	       "Rewrite the ownership of DIR in place (owners, ACLs, file capabilities)\n"
	       "so that it looks as DIR looks through an idmapped mount with MAP.\n"
	       "\n"
	       "Options:\n"
	       CLI_MAP_HELP
	       "     --reverse           undo a shift made with MAP\n"
	       " -n, --dry-run           report what would change, change nothing\n"
	       "     --unmapped=POLICY   ids outside the map: error (default: leave,\n"
	       "                           report, fail), keep (leave, report, succeed),\n"
	       "                           overflow (store 65534)\n"
	       "     --engine=ENGINE     auto (default), sync, threads, uring\n"
	       "     --threads N         worker threads of the threads/uring engines\n"
	       "     --force             shift a tree marked as shifted by another map\n"
	       "     --no-preserve-root  allow DIR to be the root of the host's filesystem\n"
	       "     --status            print DIR's shift marker (no map needed)\n"
	       " -v, --verbose           list every changed inode\n"
	       " -q, --quiet             no summary line\n"
	       "     --no-progress       no progress on stderr even on a terminal\n",
	       program_invocation_short_name, program_invocation_short_name);
	cli_help_footer(true,
			"on a failure nothing or part of the tree changed (see the\n"
			"messages); 4 shifted but for the reported ids without image or\n"
			"mounts, left as they are (fix them and run the same command again);\n"
			"5 another run is shifting DIR; 6 --status: DIR has no marker",
			"shift-tree(1)");
	exit(EXIT_OK);
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_MAP_LONGOPTS,
		{ "reverse", no_argument, NULL, OPT_REVERSE },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "unmapped", required_argument, NULL, OPT_UNMAPPED },
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "no-preserve-root", no_argument, NULL, OPT_NO_PRESERVE_ROOT },
		{ "status", no_argument, NULL, OPT_STATUS },
		{ "json", no_argument, NULL, 'J' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned validate = SHIFT_VALIDATE_NO_HOST_ROOT;
	const char *other = NULL; /* an option --status has no use for */
	char *end;
	long v;
	int c;

	o->progress = true;
	o->json = cli_json_begin(argc, argv);
	while ((c = getopt_long(argc, argv, "m:nvqJhV", longopts, NULL)) != -1) {
		if (c != OPT_STATUS && c != 'J' && c != 'h' && c != 'V' &&
		    c != '?' && c != ':')
			other = argv[optind - 1];
		if (cli_map_option(&o->map, c, optarg))
			continue;
		switch (c) {
		case OPT_REVERSE:
			o->so.flags |= SHIFT_REVERSE;
			break;
		case 'n':
			o->so.flags |= SHIFT_DRY_RUN;
			break;
		case OPT_UNMAPPED:
			if (strcmp(optarg, "error") == 0)
				o->so.unmapped = SHIFT_UNMAPPED_ERROR;
			else if (strcmp(optarg, "keep") == 0)
				o->so.unmapped = SHIFT_UNMAPPED_KEEP;
			else if (strcmp(optarg, "overflow") == 0)
				o->so.unmapped = SHIFT_UNMAPPED_OVERFLOW;
			else
				cli_usage_error("invalid --unmapped '%s' (error, keep or overflow)",
						optarg);
			break;
		case OPT_ENGINE:
			if (strcmp(optarg, "auto") && strcmp(optarg, "sync") &&
			    strcmp(optarg, "threads") && strcmp(optarg, "uring"))
				cli_usage_error("invalid --engine '%s' (auto, sync, threads or uring)",
						optarg);
			o->so.engine = optarg;
			break;
		case OPT_THREADS:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || !*optarg || *end || v < 1 || v > 1024)
				cli_usage_error("invalid --threads '%s' (1..1024)",
						optarg);
			o->so.threads = (unsigned)v;
			break;
		case OPT_FORCE:
			o->so.flags |= SHIFT_FORCE;
			break;
		case OPT_NO_PRESERVE_ROOT:
			o->no_preserve_root = true;
			break;
		case OPT_STATUS:
			o->status = true;
			break;
		case 'J':
			o->json = true;
			break;
		case 'v':
			o->so.flags |= SHIFT_VERBOSE;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_NO_PROGRESS:
			o->progress = false;
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
	if (optind >= argc)
		cli_usage_error("no directory given");
	if (optind + 1 < argc)
		cli_usage_error("too many arguments: give one directory");
	o->dir = argv[optind];
	o->dir_esc = shift_escape(o->dir);
	if (!o->dir_esc) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	if (o->status) {
		if (other)
			cli_usage_error("--status takes no option but --json ('%s' given)",
					other);
		return;
	}
	/* One walker is what sync is: a thread count would do nothing. */
	if (o->so.threads && o->so.engine && strcmp(o->so.engine, "sync") == 0)
		cli_usage_error("--threads does not apply to --engine=sync (one thread): drop one of them");
	/* Undoing a shift stores the original (possibly 0-based) ids. */
	if (o->so.flags & SHIFT_REVERSE)
		validate &= ~(unsigned)SHIFT_VALIDATE_NO_HOST_ROOT;
	cli_map_finish(&o->map, validate);
	o->so.map = o->map.map;
	/* A map of one kind only would leave every inode's other id
	 * without image: one report per inode.  Say it once. */
	if (shift_idmap_count(o->so.map, SHIFT_UID) == 0 ||
	    shift_idmap_count(o->so.map, SHIFT_GID) == 0)
		cli_usage_error("the map has no %s extents: every inode's %s would have no image (add b: or %s extents)",
				shift_idmap_count(o->so.map, SHIFT_UID) ? "gid" : "uid",
				shift_idmap_count(o->so.map, SHIFT_UID) ? "group" : "owner",
				shift_idmap_count(o->so.map, SHIFT_UID) ? "g:" : "u:");
}

static const char *kind_name(const struct shift_event *ev)
{
	bool uid = ev->kind == SHIFT_UID;

	if (ev->what & SHIFT_WHAT_FCAPS)
		return "file capability rootid";
	if (ev->what & (SHIFT_WHAT_ACL_ACCESS | SHIFT_WHAT_ACL_DEFAULT))
		return uid ? "ACL user" : "ACL group";
	return uid ? "uid" : "gid";
}

static const char *hint(int err)
{
	switch (-err) {
	case EPERM:
		return " (immutable or append-only? check with lsattr; or not permitted)";
	case EROFS:
		return " (remount it read-write)";
	case ENOSPC:
	case EDQUOT:
		return " (no room for the xattr: free space or grow the filesystem)";
	case EMFILE:
		return " (the walk keeps one fd per pending directory level: raise the hard limit, ulimit -Hn, and re-run)";
	case EAGAIN:
		return "";
	default:
		return "";
	}
}

static void clear_progress(struct options *o)
{
	cli_progress_clear(&o->bar);
}

/* Whether s is valid UTF-8 (JSON text must be): no overlong forms,
 * surrogates or code points past U+10FFFF. */
static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned n, cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 1, cp = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, cp = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 3, cp = *p & 0x07;
		else
			return false;
		p++;
		for (unsigned i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*p & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* A name for JSON: as it is when it is UTF-8; else escaped as in the text
 * lines (shift_escape) and key_escaped set to true, so that the document
 * stays valid JSON and the name can still be told exactly. */
static void json_add_name(json_object *j, const char *key,
			  const char *key_escaped, const char *name)
{
	char *e;

	if (utf8_valid(name)) {
		json_object_object_add(j, key, json_object_new_string(name));
		return;
	}
	e = shift_escape(name);
	json_object_object_add(j, key, json_object_new_string(e ? e : "?"));
	json_object_object_add(j, key_escaped, json_object_new_boolean(true));
	free(e);
}

/* --json: one event as an element of the "events" array (printed as it
 * comes: a dry run of a big tree lists millions). */
static void json_event(struct options *o, const struct shift_event *ev)
{
	json_object *j = json_object_new_object();
	static const char *const types[] = {
	    [SHIFT_EVENT_CHANGE] = "change",
	    [SHIFT_EVENT_UNMAPPED] = "unmapped",
	    [SHIFT_EVENT_ERROR] = "error",
	    [SHIFT_EVENT_MOUNTPOINT] = "mountpoint",
	    [SHIFT_EVENT_EXTERNAL_LINK] = "external_link",
	};
	json_object *what;

	if (!j)
		return;
	json_object_object_add(j, "type",
			       json_object_new_string(types[ev->type]));
	json_add_name(j, "path", "path_escaped", ev->path);
	switch (ev->type) {
	case SHIFT_EVENT_CHANGE:
		json_object_object_add(j, "uid",
				       json_object_new_int64(ev->uid));
		json_object_object_add(j, "gid",
				       json_object_new_int64(ev->gid));
		json_object_object_add(j, "new_uid",
				       json_object_new_int64(ev->new_uid));
		json_object_object_add(j, "new_gid",
				       json_object_new_int64(ev->new_gid));
		what = json_object_new_array();
		if (ev->what & SHIFT_WHAT_OWNER)
			json_object_array_add(what,
					      json_object_new_string("owner"));
		if (ev->what & SHIFT_WHAT_ACL_ACCESS)
			json_object_array_add(
			    what, json_object_new_string("access_acl"));
		if (ev->what & SHIFT_WHAT_ACL_DEFAULT)
			json_object_array_add(
			    what, json_object_new_string("default_acl"));
		if (ev->what & SHIFT_WHAT_FCAPS)
			json_object_array_add(
			    what, json_object_new_string("file_capability"));
		if (ev->what & SHIFT_WHAT_MODE)
			json_object_array_add(
			    what, json_object_new_string("setid_kept"));
		json_object_object_add(j, "what", what);
		break;
	case SHIFT_EVENT_UNMAPPED:
		json_object_object_add(j, "kind",
				       json_object_new_string(kind_name(ev)));
		json_object_object_add(j, "id",
				       ev->id == SHIFT_ID_UNKNOWN
					   ? NULL
					   : json_object_new_int64(ev->id));
		json_object_object_add(
		    j, "outside_delegation",
		    json_object_new_boolean(ev->id == SHIFT_ID_UNKNOWN));
		json_object_object_add(
		    j, "image_outside_delegation",
		    json_object_new_boolean(ev->what & SHIFT_WHAT_OUTSIDE));
		json_object_object_add(
		    j, "action",
		    json_object_new_string(
			(ev->what & (SHIFT_WHAT_FCAPS | SHIFT_WHAT_OUTSIDE)) ||
				ev->id == SHIFT_ID_UNKNOWN ||
				o->so.unmapped != SHIFT_UNMAPPED_OVERFLOW
			    ? "left"
			    : "overflow"));
		break;
	case SHIFT_EVENT_ERROR:
		json_object_object_add(j, "operation",
				       json_object_new_string(ev->op));
		json_object_object_add(
		    j, "error", json_object_new_string(strerror(-ev->error)));
		json_object_object_add(j, "errno",
				       json_object_new_int(-ev->error));
		break;
	case SHIFT_EVENT_MOUNTPOINT:
		break;
	case SHIFT_EVENT_EXTERNAL_LINK:
		json_object_object_add(j, "links",
				       json_object_new_int64(ev->id));
		break;
	}
	printf(
	    "%s\n  %s", o->events++ ? "," : "",
	    json_object_to_json_string_ext(
		j, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

static void on_event(const struct shift_event *ev, void *userdata)
{
	struct options *o = userdata;
	bool dry = o->so.flags & SHIFT_DRY_RUN;
	_cleanup_free_ char *path = NULL;

	clear_progress(o);
	if (o->json) {
		json_event(o, ev);
		return;
	}
	/* A name in the tree is the container's to choose: escaped, it
	 * can't forge a line or reach the terminal as a control sequence. */
	path = shift_escape(ev->path);
	if (!path)
		return;
	switch (ev->type) {
	case SHIFT_EVENT_CHANGE:
		printf("%s: uid %" PRIu32 " -> %" PRIu32 ", gid %" PRIu32
		       " -> %" PRIu32 "%s%s%s%s\n",
		       path, ev->uid, ev->new_uid, ev->gid, ev->new_gid,
		       (ev->what & SHIFT_WHAT_ACL_ACCESS) ? ", access ACL" : "",
		       (ev->what & SHIFT_WHAT_ACL_DEFAULT) ? ", default ACL" : "",
		       (ev->what & SHIFT_WHAT_FCAPS) ? ", file capability" : "",
		       (ev->what & SHIFT_WHAT_MODE) ? ", setuid/setgid kept" : "");
		break;
	case SHIFT_EVENT_UNMAPPED:
		if (ev->id == SHIFT_ID_UNKNOWN) {
			cli_error("'%s': its %s is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)",
				  path, kind_name(ev));
			break;
		}
		if (ev->what & SHIFT_WHAT_OUTSIDE) {
			cli_error("'%s': %s %" PRIu32 " would be stored as an id you don't own (neither your uid or gid nor in your delegation in /etc/subuid or /etc/subgid; left as is: only root can shift it)",
				  path, kind_name(ev), ev->id);
			break;
		}
		if (ev->what & SHIFT_WHAT_FCAPS) {
			cli_error("'%s': %s %" PRIu32 " has no image under the map",
				  path, kind_name(ev), ev->id);
			break;
		}
		cli_error("'%s': %s %" PRIu32 " has no image under the map (%s)",
			  path, kind_name(ev), ev->id,
			  o->so.unmapped == SHIFT_UNMAPPED_OVERFLOW
				  ? (dry ? "would store 65534" : "stored as 65534")
				  : "left as is");
		break;
	case SHIFT_EVENT_ERROR:
		cli_error("Failed to %s '%s': %s%s", ev->op, path,
			  strerror(-ev->error), hint(ev->error));
		break;
	case SHIFT_EVENT_MOUNTPOINT:
		cli_error("'%s' is another mount: not entered (shift it separately or unmount it)",
			  path);
		break;
	case SHIFT_EVENT_EXTERNAL_LINK:
		cli_error("'%s' has %" PRIu32 " hard link(s) outside the tree: they show the new owner too",
			  path, ev->id);
		break;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_progress(const struct shift_stats *st, void *userdata)
{
	struct options *o = userdata;

	cli_progress_update(&o->bar, st->inodes, true);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	/* One fd per directory level of the walk. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}


/* The message of a run that could not run (into o->err) and its exit
 * status. */
static int fail(struct options *o, int r)
{
	_cleanup_free_ char *state = NULL, *map = NULL, *map_esc = NULL;
	const char *d = o->dir_esc;
	int code = cli_exit_code(r);
	pid_t pid = 0;

#define MSG(...) snprintf(o->err, sizeof(o->err), __VA_ARGS__)
	switch (-r) {
	case EEXIST:
	case EBUSY:
	case EACCES:
		if (shift_tree_marker(o->dir, &state, &map) == 0)
			map_esc = shift_escape(map);
		break;
	default:
		break;
	}
	switch (-r) {
	case EALREADY:
		if (shift_tree_locker(o->dir, &pid) > 0 && pid > 0)
			MSG("'%s' is already being shifted by pid %d (wait for it, or stop it and re-run)",
			    d, (int)pid);
		else
			MSG("'%s' is already being shifted by another process (wait for it, or stop it and re-run)",
			    d);
		code = EXIT_BUSY;
		break;
	case EEXIST:
		MSG("Failed to shift '%s': it was shifted with map '%s' (undo that with --reverse first, or use --force)",
		    d, map_esc ? map_esc : "?");
		break;
	case EBUSY:
		if (state && strcmp(state, "incomplete") == 0)
			MSG("Failed to shift '%s': a shift with map '%s' is unfinished: it left problems (fix them and re-run that command, with the same options, to finish it; shift-tree --status shows it)",
			    d, map_esc ? map_esc : "?");
		else
			MSG("Failed to shift '%s': an interrupted shift with map '%s' is pending (re-run that command, with the same options, to finish it)",
			    d, map_esc ? map_esc : "?");
		break;
	case EACCES:
		if (state && (strcmp(state, "running") == 0 ||
			      strcmp(state, "cleanup") == 0 ||
			      strcmp(state, "incomplete") == 0)) {
			if (geteuid() != 0)
				MSG("Failed to shift '%s': an interrupted shift with map '%s' was started by root and can't be finished without privilege (re-run that command as root)",
				    d, map_esc ? map_esc : "?");
			else
				MSG("Failed to shift '%s': an interrupted shift with map '%s' was started by an unprivileged user in its user namespace (re-run that command as that user)",
				    d, map_esc ? map_esc : "?");
			break;
		}
		MSG("Failed to shift '%s': %s", d, strerror(-r));
		break;
	case EROFS:
		MSG("Failed to shift '%s': read-only file system (remount it read-write)",
		    d);
		break;
	case EOPNOTSUPP:
		code = EXIT_UNSUPPORTED;
		if (o->so.engine && strcmp(o->so.engine, "auto") != 0 &&
		    strcmp(o->so.engine, "sync") != 0) {
			MSG("Failed to shift '%s': engine '%s' is not available here (try --engine=sync)",
			    d, o->so.engine);
			break;
		}
		MSG("Failed to shift '%s': the filesystem does not support extended attributes, needed to make the shift resumable",
		    d);
		break;
	case ERANGE:
		if (geteuid() != 0 && o->so.unmapped == SHIFT_UNMAPPED_OVERFLOW) {
			MSG("Failed to shift '%s': --unmapped=overflow stores host id %u, which is outside your delegation in /etc/subuid or /etc/subgid, so your user namespace can't write it (use --unmapped=keep, or run as root)",
			    d, SHIFT_OVERFLOW_ID);
			break;
		}
		MSG("Failed to shift '%s': %s%s", d, strerror(-r), hint(r));
		break;
	case EPERM:
		if (geteuid() != 0) {
			MSG("Failed to shift '%s': the map stores ids outside what you own (your uid and gid, and your delegation in /etc/subuid and /etc/subgid): only root can store them",
			    d);
			break;
		}
		MSG("Failed to shift '%s': %s%s", d, strerror(-r), hint(r));
		break;
	case ECHILD:
		if (geteuid() != 0) {
			MSG("Failed to shift '%s': the user namespace could not be set up: newuidmap or newgidmap refused the map or failed (is the uidmap package installed and setuid? LIBSHIFT_DEBUG=1 shows their messages)",
			    d);
			break;
		}
		MSG("Failed to shift '%s': %s%s", d, strerror(-r), hint(r));
		break;
	case ENOKEY:
		if (geteuid() != 0) {
			MSG("Failed to shift '%s': you have no delegation in /etc/subuid and /etc/subgid (ask root to add one, e.g. usermod --add-subuids)",
			    d);
			break;
		}
		/* fall through */
	default:
		MSG("Failed to shift '%s': %s%s", d, strerror(-r), hint(r));
	}
#undef MSG
	return code;
}

/* --json: the summary closes the document opened before the run. */
static void json_finish(struct options *o, const struct shift_stats *st,
			int code, double secs)
{
	json_object *j = json_object_new_object();
	const char *s;
	char num[32];

	if (!j)
		return;
	json_add_name(j, "directory", "directory_escaped", o->dir);
	/* null when no engine ran (the run stopped before one was picked) */
	json_object_object_add(
	    j, "engine", st->engine ? json_object_new_string(st->engine) : NULL);
	json_object_object_add(
	    j, "dry_run", json_object_new_boolean(o->so.flags & SHIFT_DRY_RUN));
	json_object_object_add(
	    j, "reverse", json_object_new_boolean(o->so.flags & SHIFT_REVERSE));
	json_object_object_add(j, "already_shifted",
			       json_object_new_boolean(st->already));
	json_object_object_add(j, "resumed",
			       json_object_new_boolean(st->resumed));
	json_object_object_add(j, "inodes",
			       json_object_new_int64((int64_t)st->inodes));
	json_object_object_add(j, "directories",
			       json_object_new_int64((int64_t)st->dirs));
	json_object_object_add(j, "changed",
			       json_object_new_int64((int64_t)st->changed));
	json_object_object_add(j, "hardlinks",
			       json_object_new_int64((int64_t)st->hardlinks));
	json_object_object_add(j, "unmapped",
			       json_object_new_int64((int64_t)st->unmapped));
	json_object_object_add(j, "errors",
			       json_object_new_int64((int64_t)st->errors));
	json_object_object_add(j, "mountpoints",
			       json_object_new_int64((int64_t)st->mountpoints));
	snprintf(num, sizeof(num), "%.3f", secs);
	json_object_object_add(j, "seconds",
			       json_object_new_double_s(secs, num));
	json_object_object_add(j, "ok",
			       json_object_new_boolean(code == EXIT_OK));
	json_object_object_add(j, "exit_status", json_object_new_int(code));
	/* the run's failure: message, messages, exit status (cli-json.h) */
	json_object_object_add(
	    j, "error", o->err[0] ? cli_json_error_object(code) : NULL);
	cli_json_printed();
	/* the object's members after the "events" array already printed */
	s = json_object_to_json_string_ext(
	    j, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	printf("%s],\n %s\n", o->events ? "\n " : "", s + 1);
	json_object_put(j);
}

/* --status: the marker in words or as a JSON object. */
static int show_status(struct options *o)
{
	struct shift_tree_status st;
	_cleanup_free_ char *map_esc = NULL;
	char when[64] = "";
	const char *what;
	int r;

	r = shift_tree_status(o->dir, &st);
	if (r == -ENODATA) {
		if (o->json) {
			json_object *j = json_object_new_object();

			json_add_name(j, "directory", "directory_escaped",
				      o->dir);
			json_object_object_add(j, "state", NULL);
			/* exit 6 is an answer, not an error */
			cli_json_print(j, EXIT_OK);
		} else {
			printf("%s: no shift marker (never shifted by shift-tree, or by shiftkit before it kept one)\n",
			       o->dir_esc);
		}
		return EXIT_NO_MARKER;
	}
	if (r < 0)
		return cli_report(r, NULL, NULL,
				  "Failed to read the shift marker of '%s'",
				  o->dir_esc);
	if (st.time > 0) {
		time_t t = (time_t)st.time;
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (strcmp(st.state, "done") == 0)
		what = "shifted";
	else if (strcmp(st.state, "undone") == 0)
		what = "undone (a --reverse finished)";
	else if (strcmp(st.state, "incomplete") == 0)
		what = "incomplete: the last run left problems (ids without "
		       "image, failed inodes or mounts inside); fix them and "
		       "run the same command again";
	else if (st.pid > 0)
		what = "being shifted now";
	else
		what = "interrupted: run the same command again to finish it";
	if (o->json) {
		json_object *j = json_object_new_object();
		char gen[20];

		snprintf(gen, sizeof(gen), "%016" PRIx64, st.generation);
		json_add_name(j, "directory", "directory_escaped", o->dir);
		json_object_object_add(j, "state",
				       json_object_new_string(st.state));
		json_add_name(j, "map", "map_escaped", st.map);
		json_object_object_add(j, "direction",
				       json_object_new_string(st.direction));
		json_object_object_add(j, "unmapped",
				       json_object_new_string(st.unmapped));
		json_object_object_add(
		    j, "time",
		    st.time > 0 ? json_object_new_int64(st.time) : NULL);
		json_object_object_add(j, "time_utc",
				       when[0] ? json_object_new_string(when)
					       : NULL);
		json_object_object_add(j, "running_pid",
				       st.pid > 0 ? json_object_new_int(st.pid)
						  : NULL);
		json_object_object_add(
		    j, "interrupted",
		    json_object_new_boolean(
			st.pid <= 0 && (strcmp(st.state, "running") == 0 ||
					strcmp(st.state, "cleanup") == 0)));
		json_object_object_add(
		    j, "problems",
		    json_object_new_boolean(strcmp(st.state, "incomplete") ==
					    0));
		json_object_object_add(j, "unprivileged",
				       json_object_new_boolean(st.userns));
		json_object_object_add(j, "xattr",
				       json_object_new_string(st.xattr));
		json_object_object_add(j, "generation",
				       json_object_new_string(gen));
		cli_json_print(j, EXIT_OK);
	} else {
		map_esc = shift_escape(st.map);
		printf("%s: %s\n", o->dir_esc, what);
		printf("  state:    %s\n", st.state);
		printf("  map:      %s%s\n", map_esc ? map_esc : "?",
		       strcmp(st.direction, "reverse") == 0 ? " (--reverse)"
							    : "");
		printf("  unmapped: %s\n", st.unmapped);
		printf("  written:  %s\n",
		       when[0] ? when : "unknown (by an older shift-tree)");
		if (st.pid > 0)
			printf("  run:      pid %d\n", (int)st.pid);
		printf("  by:       %s (%s)\n",
		       st.userns ? "an unprivileged user in its user namespace"
				 : "root",
		       st.xattr);
	}
	shift_tree_status_clear(&st);
	return EXIT_OK;
}

/* The root of the host's filesystem ("/", or pid 1's root when we run
 * chrooted): a mistyped or empty variable must not shift the host. */
static bool is_host_root(const char *dir)
{
	static const char *const roots[] = {"/", "/proc/1/root"};
	struct stat a, b;

	if (stat(dir, &a) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
		if (stat(roots[i], &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct shift_stats st = { 0 };
	double secs;
	int r, code;

	parse_args(&o, argc, argv);
	if (o.status) {
		code = show_status(&o);
		free(o.dir_esc);
		return code;
	}
	if (!o.no_preserve_root && is_host_root(o.dir)) {
		cli_error("refusing to shift '%s': it is the root of the host's filesystem (use --no-preserve-root if you mean it)",
			  o.dir_esc);
		cli_map_free(&o.map);
		free(o.dir_esc);
		return EXIT_USAGE;
	}
	o.so.on_event = on_event;
	o.so.userdata = &o;
	cli_progress_init(&o.bar, "inodes", !o.progress || o.quiet);
	if (o.bar.enabled)
		o.so.on_progress = on_progress;
	raise_nofile();
	if (o.json) {
		/* The events go into the document as they come. */
		printf("{\"events\": [");
		fflush(stdout);
	}
	o.t0 = now();
	r = shift_tree_auto(o.dir, &o.so, &st, NULL);
	secs = now() - o.t0;
	clear_progress(&o);
	if (r < 0) {
		code = fail(&o, r);
		cli_error("%s", o.err);
	} else if (r > 0) {
		/* Failed inodes: part of the tree is changed.  Only ids
		 * without image or mounts: all the rest is. */
		code = st.errors ? EXIT_FAIL : EXIT_INCOMPLETE;
	} else {
		code = EXIT_OK;
	}
	if (o.json) {
		json_finish(&o, &st, code, secs);
	} else if (r >= 0 && !o.quiet) {
		if (st.already)
			printf("%s: already %s with this map, nothing to do\n",
			       o.dir_esc, (o.so.flags & SHIFT_REVERSE) ? "undone"
								       : "shifted");
		else
			printf("%s: %" PRIu64 " inodes, %" PRIu64 " %s%s%s\n",
			       o.dir_esc, st.inodes, st.changed,
			       (o.so.flags & SHIFT_DRY_RUN) ? "would change"
							    : "changed",
			       st.resumed ? " (resumed an unfinished shift)" : "",
			       r ? "; problems reported above" : "");
	}
	if (r > 0 && !(o.so.flags & SHIFT_DRY_RUN)) {
		if (st.errors)
			cli_error("'%s' is partially shifted: fix the problems above and re-run the same command to finish",
				  o.dir_esc);
		else
			cli_error("'%s' is shifted except for what is reported above, which is left as it is: fix it (or accept ids without image with --unmapped=keep) and re-run the same command to finish",
				  o.dir_esc);
	}
	cli_map_free(&o.map);
	free(o.dir_esc);
	return code;
}
