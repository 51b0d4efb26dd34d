/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-tree: rewrite the ownership of a tree in place so that it looks as
 * the original looks through an idmapped mount with the same map.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

enum {
	OPT_REVERSE = 0x2000,
	OPT_DRY_RUN,
	OPT_UNMAPPED,
	OPT_ENGINE,
	OPT_THREADS,
	OPT_JSON,
	OPT_FORCE,
	OPT_NO_PROGRESS,
};

struct options {
	struct cli_map map;
	struct shift_options so;
	const char *dir;
	bool json;
	bool progress;
	bool quiet;
	struct cli_progress bar;
	double t0;
};

static void usage(void)
{
	printf("Usage:\n"
	       " %s [options] MAP-OPTION DIR\n"
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
	       "     --json              print a JSON summary on stdout\n"
	       " -v, --verbose           list every changed inode\n"
	       " -q, --quiet             no summary line\n"
	       "     --no-progress       no progress on stderr even on a terminal\n"
	       " -h, --help              display this help\n"
	       " -V, --version           display version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure or problems found (see messages),\n"
	       "2 usage error, 3 not supported.  See shift-tree(1).\n",
	       program_invocation_short_name);
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
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned validate = SHIFT_VALIDATE_NO_HOST_ROOT;
	char *end;
	long v;
	int c;

	o->progress = true;
	while ((c = getopt_long(argc, argv, "m:nvqhV", longopts, NULL)) != -1) {
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
		case OPT_JSON:
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
			cli_usage_error(NULL);
		}
	}
	if (optind >= argc)
		cli_usage_error("no directory given");
	if (optind + 1 < argc)
		cli_usage_error("too many arguments: give one directory");
	o->dir = argv[optind];
	/* Undoing a shift stores the original (possibly 0-based) ids. */
	if (o->so.flags & SHIFT_REVERSE)
		validate &= ~(unsigned)SHIFT_VALIDATE_NO_HOST_ROOT;
	cli_map_finish(&o->map, validate);
	o->so.map = o->map.map;
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

static void on_event(const struct shift_event *ev, void *userdata)
{
	struct options *o = userdata;
	bool dry = o->so.flags & SHIFT_DRY_RUN;

	clear_progress(o);
	switch (ev->type) {
	case SHIFT_EVENT_CHANGE:
		printf("%s: uid %" PRIu32 " -> %" PRIu32 ", gid %" PRIu32
		       " -> %" PRIu32 "%s%s%s%s\n",
		       ev->path, ev->uid, ev->new_uid, ev->gid, ev->new_gid,
		       (ev->what & SHIFT_WHAT_ACL_ACCESS) ? ", access ACL" : "",
		       (ev->what & SHIFT_WHAT_ACL_DEFAULT) ? ", default ACL" : "",
		       (ev->what & SHIFT_WHAT_FCAPS) ? ", file capability" : "",
		       (ev->what & SHIFT_WHAT_MODE) ? ", setuid/setgid kept" : "");
		break;
	case SHIFT_EVENT_UNMAPPED:
		if (ev->id == SHIFT_ID_UNKNOWN) {
			cli_error("'%s': its %s is outside your delegation in /etc/subuid or /etc/subgid (left as is: only root can shift it)",
				  ev->path, kind_name(ev));
			break;
		}
		if (ev->what & SHIFT_WHAT_FCAPS) {
			cli_error("'%s': %s %" PRIu32 " has no image under the map",
				  ev->path, kind_name(ev), ev->id);
			break;
		}
		cli_error("'%s': %s %" PRIu32 " has no image under the map (%s)",
			  ev->path, kind_name(ev), ev->id,
			  o->so.unmapped == SHIFT_UNMAPPED_OVERFLOW
				  ? (dry ? "would store 65534" : "stored as 65534")
				  : "left as is");
		break;
	case SHIFT_EVENT_ERROR:
		cli_error("Failed to %s '%s': %s%s", ev->op, ev->path,
			  strerror(-ev->error), hint(ev->error));
		break;
	case SHIFT_EVENT_MOUNTPOINT:
		cli_error("'%s' is another mount: not entered (shift it separately or unmount it)",
			  ev->path);
		break;
	case SHIFT_EVENT_EXTERNAL_LINK:
		cli_error("'%s' has %" PRIu32 " hard link(s) outside the tree: they show the new owner too",
			  ev->path, ev->id);
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

static int fail(struct options *o, int r)
{
	char *state = NULL, *map = NULL;

	switch (-r) {
	case EEXIST:
		shift_tree_marker(o->dir, &state, &map);
		cli_error("Failed to shift '%s': it was shifted with map '%s' (undo that with --reverse first, or use --force)",
			  o->dir, map ? map : "?");
		break;
	case EBUSY:
		shift_tree_marker(o->dir, &state, &map);
		cli_error("Failed to shift '%s': an interrupted shift with map '%s' is pending (re-run that command, with the same options, to finish it)",
			  o->dir, map ? map : "?");
		break;
	case EACCES:
		if (shift_tree_marker(o->dir, &state, &map) == 0 &&
		    (strcmp(state, "running") == 0 ||
		     strcmp(state, "cleanup") == 0)) {
			if (geteuid() != 0)
				cli_error("Failed to shift '%s': an interrupted shift with map '%s' was started by root and can't be finished without privilege (re-run that command as root)",
					  o->dir, map ? map : "?");
			else
				cli_error("Failed to shift '%s': an interrupted shift with map '%s' was started by an unprivileged user in its user namespace (re-run that command as that user)",
					  o->dir, map ? map : "?");
			break;
		}
		cli_error("Failed to shift '%s': %s", o->dir, strerror(-r));
		break;
	case EROFS:
		cli_error("Failed to shift '%s': read-only file system (remount it read-write)",
			  o->dir);
		break;
	case EOPNOTSUPP:
		if (o->so.engine && strcmp(o->so.engine, "auto") != 0 &&
		    strcmp(o->so.engine, "sync") != 0) {
			cli_error("Failed to shift '%s': engine '%s' is not available here (try --engine=sync)",
				  o->dir, o->so.engine);
			free(state);
			free(map);
			return EXIT_UNSUPPORTED;
		}
		cli_error("Failed to shift '%s': the filesystem does not support extended attributes, needed to make the shift resumable",
			  o->dir);
		free(state);
		free(map);
		return EXIT_UNSUPPORTED;
	case ERANGE:
		if (geteuid() != 0 && o->so.unmapped == SHIFT_UNMAPPED_OVERFLOW) {
			cli_error("Failed to shift '%s': --unmapped=overflow stores host id %u, which is outside your delegation in /etc/subuid or /etc/subgid, so your user namespace can't write it (use --unmapped=keep, or run as root)",
				  o->dir, SHIFT_OVERFLOW_ID);
			break;
		}
		cli_error("Failed to shift '%s': %s%s", o->dir, strerror(-r),
			  hint(r));
		break;
	case EPERM:
		if (geteuid() != 0) {
			cli_error("Failed to shift '%s': the map leaves your delegation in /etc/subuid and /etc/subgid, or the user namespace could not be set up (check newuidmap/newgidmap)",
				  o->dir);
			break;
		}
		/* fall through */
	default:
		cli_error("Failed to shift '%s': %s%s", o->dir, strerror(-r),
			  hint(r));
	}
	free(state);
	free(map);
	return EXIT_FAIL;
}

static void print_json(const struct options *o, const struct shift_stats *st,
		       int r, double secs)
{
	printf("{\"directory\": \"");
	for (const char *p = o->dir; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", (unsigned char)*p);
		else
			putchar(*p);
	}
	printf("\", \"engine\": \"%s\", \"dry_run\": %s, \"reverse\": %s, "
	       "\"already_shifted\": %s, \"resumed\": %s, "
	       "\"inodes\": %" PRIu64 ", \"directories\": %" PRIu64
	       ", \"changed\": %" PRIu64 ", \"hardlinks\": %" PRIu64
	       ", \"unmapped\": %" PRIu64 ", \"errors\": %" PRIu64
	       ", \"mountpoints\": %" PRIu64 ", \"seconds\": %.3f, \"ok\": %s}\n",
	       st->engine ? st->engine : "sync",
	       (o->so.flags & SHIFT_DRY_RUN) ? "true" : "false",
	       (o->so.flags & SHIFT_REVERSE) ? "true" : "false",
	       st->already ? "true" : "false", st->resumed ? "true" : "false",
	       st->inodes, st->dirs, st->changed, st->hardlinks, st->unmapped,
	       st->errors, st->mountpoints, secs, r == 0 ? "true" : "false");
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct shift_stats st = { 0 };
	double secs;
	int r;

	parse_args(&o, argc, argv);
	o.so.on_event = on_event;
	o.so.userdata = &o;
	cli_progress_init(&o.bar, "inodes", !o.progress || o.quiet);
	if (o.bar.enabled)
		o.so.on_progress = on_progress;
	raise_nofile();
	o.t0 = now();
	if (geteuid() != 0)
		r = shift_tree_userns(o.dir, &o.so, &st);
	else
		r = shift_tree(o.dir, &o.so, &st);
	secs = now() - o.t0;
	clear_progress(&o);
	if (r < 0) {
		if (o.json)
			print_json(&o, &st, r, secs);
		r = fail(&o, r);
		cli_map_free(&o.map);
		return r;
	}
	if (o.json) {
		print_json(&o, &st, r, secs);
	} else if (!o.quiet) {
		if (st.already)
			printf("%s: already %s with this map, nothing to do\n",
			       o.dir, (o.so.flags & SHIFT_REVERSE) ? "undone"
								   : "shifted");
		else
			printf("%s: %" PRIu64 " inodes, %" PRIu64 " %s%s%s\n",
			       o.dir, st.inodes, st.changed,
			       (o.so.flags & SHIFT_DRY_RUN) ? "would change"
							    : "changed",
			       st.resumed ? " (resumed an interrupted shift)" : "",
			       r ? "; problems reported above" : "");
	}
	if (r > 0 && st.errors && !(o.so.flags & SHIFT_DRY_RUN))
		cli_error("'%s' is partially shifted: fix the problems above and re-run the same command to finish",
			  o.dir);
	cli_map_free(&o.map);
	return r ? EXIT_FAIL : EXIT_OK;
}
