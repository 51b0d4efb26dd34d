/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-alloc: give a container its own block of host uids and gids from
 * its owner's subordinate delegation, never overlapping another's.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json.h>
#include <libsmartcols.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"

enum action {
	ACT_GET,
	ACT_RELEASE,
	ACT_LIST,
};

enum {
	OPT_STATE = 0x2000,
	OPT_RELEASE,
	OPT_LIST,
	OPT_JSON,
	OPT_NOHEADINGS,
};

struct options {
	enum action action;
	const char *user;
	const char *state;
	const char *container;
	uint32_t size;
	bool json;
	bool noheadings;
	bool dry_run;
};

static void usage(void)
{
	printf(
	    "Usage:\n"
	    " %1$s [options] [--user NAME] [--size N] CONTAINER\n"
	    " %1$s [options] --release CONTAINER\n"
	    " %1$s [options] --list\n"
	    "\n"
	    "Allocate a block of host uids and gids for CONTAINER from NAME's\n"
	    "/etc/subuid and /etc/subgid delegation, never overlapping "
	    "another\n"
	    "container's block and never containing host id 0, and print it as "
	    "a\n"
	    "map for --map.  Asking again for the same CONTAINER returns the "
	    "same block.\n"
	    "\n"
	    "Options:\n"
	    "     --user NAME         owner of the delegation (default: the "
	    "caller)\n"
	    "     --size N            ids per block (default 65536)\n"
	    " -f, --state FILE        state file (default " SHIFT_ALLOC_STATE
	    ")\n"
	    "     --release           free CONTAINER's block\n"
	    " -l, --list              list all blocks\n"
	    " -n, --dry-run           show the block that would be allocated "
	    "or\n"
	    "                           released, change nothing\n"
	    "     --noheadings        no table headings with --list\n",
	    program_invocation_short_name);
	cli_help_footer(true, NULL, "shift-alloc(1)");
	exit(EXIT_OK);
}

static uint32_t parse_size(const char *arg)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || !*arg || *end || *arg == '-' || v == 0 || v > UINT32_MAX)
		cli_usage_error("invalid --size '%s' (a positive number of ids)",
				arg);
	return (uint32_t)v;
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"size", required_argument, NULL, 's'},
	    {"state", required_argument, NULL, 'f'},
	    {"release", no_argument, NULL, 'r'},
	    {"list", no_argument, NULL, 'l'},
	    {"json", no_argument, NULL, 'J'},
	    {"noheadings", no_argument, NULL, OPT_NOHEADINGS},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	bool release = false, list = false;
	int c, npos;

	while ((c = getopt_long(argc, argv, "f:lJnhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o->user = optarg;
			break;
		case 's':
			o->size = parse_size(optarg);
			break;
		case 'f':
			o->state = optarg;
			break;
		case 'r':
			release = true;
			break;
		case 'l':
			list = true;
			break;
		case 'J':
			o->json = true;
			break;
		case OPT_NOHEADINGS:
			o->noheadings = true;
			break;
		case 'n':
			o->dry_run = true;
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
	if (release && list)
		cli_usage_error("--release and --list are mutually exclusive");
	o->action = release ? ACT_RELEASE : list ? ACT_LIST : ACT_GET;
	npos = argc - optind;
	if (o->action == ACT_LIST) {
		if (npos != 0)
			cli_usage_error("--list takes no CONTAINER");
		if (o->user)
			cli_usage_error("--user makes no sense with --list");
		if (o->dry_run)
			cli_usage_error("--dry-run makes no sense with --list "
					"(it changes nothing)");
		return;
	}
	if (npos != 1)
		cli_usage_error(npos < 1 ? "no CONTAINER given" :
					   "too many arguments");
	o->container = argv[optind];
	if (!*o->container)
		cli_usage_error("empty CONTAINER name");
	if (o->action == ACT_RELEASE && o->user)
		cli_usage_error("--user makes no sense with --release");
	if (o->noheadings)
		cli_usage_error("--noheadings goes with --list only");
}

static const char *state_name(const struct options *o)
{
	return o->state ? o->state : SHIFT_ALLOC_STATE;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static json_object *json_alloc(const struct shift_alloc *a, const char *map)
{
	json_object *o = json_object_new_object();

	if (!o) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	json_object_object_add(o, "container", json_object_new_string(a->container));
	json_object_object_add(o, "user", json_object_new_string(a->user));
	json_object_object_add(o, "uid_start", json_object_new_int64(a->uid_start));
	json_object_object_add(o, "gid_start", json_object_new_int64(a->gid_start));
	json_object_object_add(o, "size", json_object_new_int64(a->size));
	json_object_object_add(o, "map", json_object_new_string(map));
	return o;
}

/* With --json, the document of a failure (printed by main). */
static json_object *fail_doc;

/*
 * A failure: one line on stderr (untrusted names escaped) and, with
 * --json, the one JSON document stdout promises, with the error in it
 * (tools/lib/cli-json.h: "error" holds the message and exit status).
 */
_printf_(2, 3) static void fail(const struct options *o, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *esc = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		msg = NULL;
	esc = msg ? shift_escape(msg) : NULL;
	cli_error("%s", esc ? esc : "out of memory");
	if (o->json && !fail_doc) {
		fail_doc = json_object_new_object();
		json_object_object_add(fail_doc, "result",
				       json_object_new_string("error"));
		if (o->container)
			json_object_object_add(
			    fail_doc, "container",
			    json_object_new_string(o->container));
	}
}

/* A malformed line of another user's in a delegation file. */
static void warn_subid(const char *file, unsigned line, const char *why,
		       void *userdata)
{
	_cleanup_free_ char *f = shift_escape(file);

	cli_error(
	    "warning: %s: line %u: %s: ignored (newuidmap ignores it too)",
	    f ? f : file, line, why);
}

static char *alloc_map(const struct shift_alloc *a)
{
	struct shift_idmap *m = shift_alloc_idmap(a);
	char *s = m ? shift_idmap_to_string(m) : NULL;

	shift_idmap_free(m);
	if (!s) {
		cli_error("out of memory");
		exit(EXIT_FAIL);
	}
	return s;
}

static int do_get(const struct options *o)
{
	struct shift_alloc a = { 0 };
	_cleanup_free_ char *map = NULL;
	const char *user = o->user;
	char uidbuf[32];
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	struct shift_alloc_opts ao = {
	    .flags = o->dry_run ? SHIFT_ALLOC_DRY_RUN : 0,
	    .warn = warn_subid,
	};
	const char *why;
	int r;

	if (!user) {
		struct passwd *pw = getpwuid(getuid());

		if (pw)
			user = pw->pw_name;
		else {
			snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)getuid());
			user = uidbuf;
		}
	}
	r = shift_alloc_get_ex(o->state, user, o->container, o->size, &ao, &a,
			       &e);
	why = e.why ? e.why : "";
	if (r < 0) {
		switch (r) {
		case -ENOENT:
			if (why[0])
				fail(o, "Failed to allocate ids for '%s': %s",
				     o->container, why);
			else
				fail(
				    o,
				    "Failed to allocate ids for '%s': user "
				    "'%s' has no range in %s and %s (add one "
				    "with usermod --add-subuids/--add-subgids)",
				    o->container, user,
				    secure_getenv("SHIFT_SUBUID") ?: "/etc/subuid",
				    secure_getenv("SHIFT_SUBGID") ?: "/etc/subgid");
			break;
		case -EUCLEAN:
			fail(o, "Failed to allocate ids for '%s': %s",
			     o->container, why);
			break;
		case -ENOSPC:
			fail(o,
			     "Failed to allocate ids for '%s': no free block "
			     "of %" PRIu32
			     " ids left in the delegation of '%s' (release one "
			     "with --release, or delegate more ids)",
			     o->container, o->size, user);
			break;
		case -EEXIST:
			fail(o,
			     "Failed to allocate ids for '%s': it already has "
			     "a block for another user or size (see --list; "
			     "--release it first)",
			     o->container);
			break;
		case -EBADMSG:
			fail(o,
			     "Failed to read state file '%s': %s (not a "
			     "shift-alloc state as this version writes it: fix "
			     "it, move it away or pass another --state)",
			     state_name(o), why[0] ? why : "malformed");
			break;
		case -EINVAL:
			fail(o,
			     "Failed to allocate ids for '%s': invalid "
			     "container or user name",
			     o->container);
			return EXIT_USAGE;
		default:
			fail(o,
			     "Failed to allocate ids for '%s' in '%s': %s%s%s",
			     o->container, state_name(o), why,
			     why[0] ? ": " : "", strerror(-r));
		}
		return cli_exit_code(r);
	}
	map = alloc_map(&a);
	if (o->json) {
		json_object *j = json_alloc(&a, map);

		json_object_object_add(
		    j, "result",
		    json_object_new_string(r == 1	? "existing"
					   : o->dry_run ? "would_allocate"
							: "allocated"));
		json_object_object_add(j, "dry_run",
				       json_object_new_boolean(o->dry_run));
		print_json(j);
	} else if (o->dry_run) {
		_cleanup_free_ char *c = shift_escape(o->container);

		/* the map still goes alone on stdout, for scripts */
		fprintf(stderr, "%s: --dry-run: %s '%s'; nothing changed\n",
			program_invocation_short_name,
			r == 1 ? "already allocated to"
			       : "would allocate this block to",
			c ? c : "?");
		printf("%s\n", map);
	} else
		printf("%s\n", map);
	shift_alloc_clear(&a);
	return EXIT_OK;
}

static int do_release(const struct options *o)
{
	struct shift_alloc a = {0};
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	struct shift_alloc_opts ao = {
	    .flags = o->dry_run ? SHIFT_ALLOC_DRY_RUN : 0,
	};
	int r = shift_alloc_release_ex(o->state, o->container, &ao, &a, &e);
	const char *why = e.why ? e.why : "";

	if (r == -ENOENT) {
		fail(o,
		     "Failed to release '%s': it has no block in '%s' (see "
		     "--list)",
		     o->container, state_name(o));
		return EXIT_FAIL;
	}
	if (r < 0) {
		fail(
		    o, "Failed to release '%s' in '%s': %s%s", o->container,
		    state_name(o),
		    r == -EBADMSG ? (why[0] ? why : "malformed") : strerror(-r),
		    r == -EBADMSG
			? " (not a shift-alloc state as this version writes it)"
			: "");
		return cli_exit_code(r);
	}
	if (o->json || o->dry_run) {
		_cleanup_free_ char *map = alloc_map(&a);

		if (o->json) {
			json_object *j = json_alloc(&a, map);

			json_object_object_add(
			    j, "result",
			    json_object_new_string(o->dry_run ? "would_release"
							      : "released"));
			json_object_object_add(
			    j, "dry_run", json_object_new_boolean(o->dry_run));
			print_json(j);
		} else {
			_cleanup_free_ char *c = shift_escape(o->container);

			printf("would release %s of '%s'; nothing changed\n",
			       map, c ? c : "?");
		}
	}
	shift_alloc_clear(&a);
	return EXIT_OK;
}

static int do_list(const struct options *o)
{
	struct shift_alloc *list = NULL;
	struct libscols_table *tb;
	size_t n = 0, i;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *why;
	int r;

	r = shift_alloc_list_ex(o->state, NULL, &list, &n, &e);
	why = e.why ? e.why : "";
	if (r < 0) {
		fail(
		    o, "Failed to read state file '%s': %s%s", state_name(o),
		    r == -EBADMSG ? (why[0] ? why : "malformed") : strerror(-r),
		    r == -EBADMSG
			? " (not a shift-alloc state as this version writes it)"
			: "");
		return EXIT_FAIL;
	}
	tb = scols_new_table();
	if (!tb) {
		cli_error("out of memory");
		return cli_exit_code(r);
	}
	scols_table_enable_json(tb, o->json);
	scols_table_set_name(tb, "allocations");
	scols_table_enable_noheadings(tb, o->noheadings);
	scols_table_new_column(tb, "CONTAINER", 0.3, 0);
	scols_table_new_column(tb, "USER", 0.1, 0);
	scols_table_new_column(tb, "UID_START", 0.1, SCOLS_FL_RIGHT);
	scols_table_new_column(tb, "GID_START", 0.1, SCOLS_FL_RIGHT);
	scols_table_new_column(tb, "SIZE", 0.1, SCOLS_FL_RIGHT);
	scols_table_new_column(tb, "MAP", 0.3, 0);
	if (o->json) {
		for (i = 2; i < 5; i++)
			scols_column_set_json_type(scols_table_get_column(tb, i),
						   SCOLS_JSON_NUMBER);
	}
	for (i = 0; i < n; i++) {
		struct libscols_line *ln = scols_table_new_line(tb, NULL);
		_cleanup_free_ char *map = alloc_map(&list[i]);
		char num[16];

		if (!ln) {
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		scols_line_set_data(ln, 0, list[i].container);
		scols_line_set_data(ln, 1, list[i].user);
		snprintf(num, sizeof(num), "%" PRIu32, list[i].uid_start);
		scols_line_set_data(ln, 2, num);
		snprintf(num, sizeof(num), "%" PRIu32, list[i].gid_start);
		scols_line_set_data(ln, 3, num);
		snprintf(num, sizeof(num), "%" PRIu32, list[i].size);
		scols_line_set_data(ln, 4, num);
		scols_line_set_data(ln, 5, map);
	}
	scols_print_table(tb);
	scols_unref_table(tb);
	shift_alloc_list_free(list, n);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct options o = { .size = 65536 };
	int rc;

	o.json = cli_json_begin(argc, argv);
	parse_args(&o, argc, argv);
	switch (o.action) {
	case ACT_RELEASE:
		rc = do_release(&o);
		break;
	case ACT_LIST:
		rc = do_list(&o);
		break;
	default:
		rc = do_get(&o);
	}
	if (fail_doc)
		cli_json_print(fail_doc, rc);
	return rc;
}
