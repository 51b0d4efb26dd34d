/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-verify: record a tree's ownership manifest, check a tree against a
 * manifest under a map, and check a set of containers that share layers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json.h>
#include <libsmartcols.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "progress.h"

enum command {
	CMD_RECORD,
	CMD_CHECK,
	CMD_CONTAINERS,
};

enum {
	OPT_MANIFEST = 0x2000,
	OPT_IGNORE_EXTRA,
	OPT_IGNORE_MISSING,
	OPT_JSON,
	OPT_OUTPUT,
	OPT_ALL,
	OPT_MAX_DIFFERENCES,
	OPT_NO_PROGRESS,
};

/* The default of --max-differences: enough to see the pattern. */
#define DEFAULT_MAX_DIFFERENCES 100
#define DEFAULT_MAX_DIFFERENCES_STR "100"

struct options {
	enum command cmd;
	struct cli_map map;
	const char *manifest;
	const char *output;
	const char *arg; /* DIR or FILE */
	unsigned check_flags;
	bool json;
	bool all; /* containers: also list passed checks */
	bool quiet;
	bool progress;
	bool max_given;
	size_t max_diffs; /* listed per check; SIZE_MAX: all */
	struct cli_progress bar;
};

static void usage(void)
{
	printf("Usage:\n"
	       " %1$s record [--output FILE [--json]] DIR\n"
	       " %1$s check --manifest FILE [MAP-OPTION] [options] DIR\n"
	       " %1$s containers [--json] [--all] FILE\n"
	       "\n"
	       "record      print the ownership manifest of the tree at DIR (an mtree spec\n"
	       "            with ACLs, file capabilities and a digest; manifest-format.md)\n"
	       "check       compare DIR with the manifest, every id mapped through the map\n"
	       "            (no map: compare as recorded); list each difference\n"
	       "containers  check a set of containers sharing layers, described in FILE\n"
	       "            (see shift-verify(1)): ranges, host root, delegations, layers,\n"
	       "            views, upper dirs, layers shifted in place\n"
	       "\n"
	       "Map (check, at most one; a map holding host root is fine, nothing changes):\n"
	       " -m, --map MAP           id map [u:|g:|b:]A:B:N (on-disk A..A+N-1 seen\n"
	       "                           as B..B+N-1; repeatable, no prefix = both)\n"
	       "     --userns PATH       take the map of a user namespace file\n"
	       "     --pid PID           take the map of a running process\n"
	       "     --subid USER        take USER's /etc/subuid and /etc/subgid range\n"
	       "\n"
	       "Options:\n"
	       " -M, --manifest FILE     the manifest to check against\n"
	       "     --output FILE       record: write the manifest to FILE, not stdout\n"
	       "     --ignore-extra      check: entries not in the manifest are fine\n"
	       "     --ignore-missing    check: entries missing from DIR are fine\n"
	       " -a, --all               containers: list passed checks too\n"
	       "     --max-differences N|all\n"
	       "                         check, containers: list at most N differences\n"
	       "                           per check (default " DEFAULT_MAX_DIFFERENCES_STR "), count the rest\n"
	       " -q, --quiet             no progress, nothing printed when all is well\n"
	       "     --no-progress       no progress on stderr even on a terminal\n",
	       program_invocation_short_name);
	cli_help_footer(true,
			"differences or failed checks\n"
			"exit 1 as well (record: -J with --output)",
			"shift-verify(1)");
	exit(EXIT_OK);
}

static size_t parse_max(const char *arg)
{
	char *end;
	unsigned long long v;

	if (!strcmp(arg, "all"))
		return SIZE_MAX;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || !*arg || *end || *arg == '-' || v >= SIZE_MAX)
		cli_usage_error(
		    "invalid --max-differences '%s' (a number, or 'all')", arg);
	return (size_t)v;
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_MAP_LONGOPTS,
	    {"manifest", required_argument, NULL, 'M'},
	    {"output", required_argument, NULL, 'o'},
	    {"ignore-extra", no_argument, NULL, OPT_IGNORE_EXTRA},
	    {"ignore-missing", no_argument, NULL, OPT_IGNORE_MISSING},
	    {"all", no_argument, NULL, 'a'},
	    {"max-differences", required_argument, NULL, OPT_MAX_DIFFERENCES},
	    {"json", no_argument, NULL, 'J'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd;
	int c;

	o->progress = true;
	o->max_diffs = DEFAULT_MAX_DIFFERENCES;
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
			break;
		case 'V':
			cli_version();
			break;
		default:
			/* options come after the command */
			if (c == '?')
				cli_option_error(argv);
			cli_usage_error("options go after the command (record, check, containers)");
		}
	}
	if (optind >= argc)
		cli_usage_error("no command given (record, check or containers)");
	cmd = argv[optind];
	/* the command's options: parse its own argv, permuting again */
	argc -= optind;
	argv += optind;
	optind = 0;
	if (!strcmp(cmd, "record"))
		o->cmd = CMD_RECORD;
	else if (!strcmp(cmd, "check"))
		o->cmd = CMD_CHECK;
	else if (!strcmp(cmd, "containers"))
		o->cmd = CMD_CONTAINERS;
	else
		cli_usage_error("unknown command '%s' (record, check or containers)",
				cmd);

	while ((c = getopt_long(argc, argv, "m:M:aJqhV", longopts, NULL)) !=
	       -1) {
		/* nothing is changed, so there is nothing to allow: an option
		 * that does nothing is refused rather than ignored */
		if (c == CLI_OPT_ALLOW_HOST_ROOT)
			cli_usage_error("--allow-host-root does nothing here: "
					"check accepts a map holding host "
					"root, it changes nothing");
		if (cli_map_option(&o->map, c, optarg)) {
			if (o->cmd != CMD_CHECK)
				cli_usage_error("map options go with 'check' only");
			continue;
		}
		switch (c) {
		case 'M':
			o->manifest = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_IGNORE_EXTRA:
			o->check_flags |= SHIFT_CHECK_IGNORE_EXTRA;
			break;
		case OPT_IGNORE_MISSING:
			o->check_flags |= SHIFT_CHECK_IGNORE_MISSING;
			break;
		case 'a':
			o->all = true;
			break;
		case OPT_MAX_DIFFERENCES:
			o->max_diffs = parse_max(optarg);
			o->max_given = true;
			break;
		case 'J':
			o->json = true;
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
	if (o->cmd != CMD_CHECK && (o->manifest || o->check_flags))
		cli_usage_error("--manifest, --ignore-extra and --ignore-missing go with 'check' only");
	if (o->cmd != CMD_RECORD && o->output)
		cli_usage_error("--output goes with 'record' only");
	if (o->cmd == CMD_RECORD && o->json && !o->output)
		cli_usage_error("'record --json' needs --output FILE (the "
				"manifest itself is not JSON)");
	if (o->cmd == CMD_RECORD && o->max_given)
		cli_usage_error(
		    "--max-differences goes with 'check' and 'containers'");
	if (o->cmd != CMD_CONTAINERS && o->all)
		cli_usage_error("--all goes with 'containers' only");
	if (o->all && o->quiet)
		cli_usage_error("--all and --quiet contradict each other");
	if (o->cmd == CMD_CHECK && !o->manifest)
		cli_usage_error("'check' needs --manifest FILE");
	if (argc - optind != 1)
		cli_usage_error(argc - optind < 1 ?
			(o->cmd == CMD_CONTAINERS ? "no FILE given" : "no DIR given") :
			"too many arguments");
	o->arg = argv[optind];
	if (o->map.sources)
		cli_map_finish(&o->map, 0);
}

/* ------------------------------------------------------------------ */

static void on_progress(size_t entries, void *userdata)
{
	struct options *o = userdata;

	cli_progress_update(&o->bar, entries, false);
}

static void start_progress(struct options *o, const char *what, uint64_t total)
{
	/* JSON goes to programs: no progress there either */
	cli_progress_init(&o->bar, what, !o->progress || o->quiet || o->json);
	cli_progress_set_total(&o->bar, total);
	shift_manifest_set_progress(on_progress, o);
}

static void stop_progress(struct options *o)
{
	shift_manifest_set_progress(NULL, NULL);
	cli_progress_clear(&o->bar);
}

/* A result (differences found are a result, not an error). */
static void print_json(json_object *root)
{
	cli_json_print(root, EXIT_OK);
}

/*
 * A failure before any result: one line on stderr (untrusted text
 * escaped) and, with --json, the one JSON document stdout promises, with
 * the error in it.
 */
_printf_(4, 5) static int fail(const struct options *o, json_object *root,
			       int err, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *esc = NULL;
	int rc = cli_exit_code(err);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		msg = NULL;
	esc = msg ? shift_escape(msg) : NULL;
	cli_error("%s", esc ? esc : "out of memory");
	if (o->json) {
		if (!root)
			root = json_object_new_object();
		json_object_object_add(root, "result",
				       json_object_new_string("error"));
		/* "error": the message, all messages, the exit status */
		cli_json_print(root, rc);
	} else
		json_object_put(root);
	return rc;
}

/* "at ./a/b: " when the library said where reading the tree failed (fail()
 * escapes the whole message) */
static const char *where(const struct shift_error *e, char *buf, size_t size)
{
	if (!e->path)
		return "";
	snprintf(buf, size, "at %s: ", e->path);
	return buf;
}

static int do_record(struct options *o)
{
	_cleanup_(shift_error_clear) struct shift_error e = {0};
	struct shift_output out = { .fd = -1 };
	char at[PATH_MAX + 8], digest[72];
	json_object *root = NULL;
	int fd = STDOUT_FILENO, r;
	size_t count = 0;

	if (o->json) {
		root = json_object_new_object();
		json_object_object_add(root, "dir",
				       json_object_new_string(o->arg));
		json_object_object_add(root, "output",
				       json_object_new_string(o->output));
	}
	if (o->output) {
		/* never leave a half-written manifest behind, never replace
		 * a device or a link (shift_output_open) */
		r = shift_output_open(o->output, &out);
		if (r < 0)
			return fail(o, root, r, "Failed to create '%s': %s",
				    o->output, strerror(-r));
		fd = out.fd;
	}
	/* the manifest goes out as the tree is read: bounded memory */
	start_progress(o, "entries", 0);
	r = shift_manifest_record_to(o->arg, fd, &count, digest, &e);
	stop_progress(o);
	if (o->output) {
		if (r >= 0)
			r = shift_output_commit(&out, 0644);
		else
			shift_output_discard(&out);
	}
	/* reading the tree or writing the manifest (then no path) */
	if (r < 0)
		return fail(o, root, r, "Failed to record '%s': %s%s", o->arg,
			    where(&e, at, sizeof(at)), strerror(-r));
	if (root) {
		json_object_object_add(root, "result",
				       json_object_new_string("recorded"));
		json_object_object_add(root, "entries",
				       json_object_new_int64((int64_t)count));
		json_object_object_add(root, "digest",
				       json_object_new_string(digest));
		print_json(root);
	}
	return EXIT_OK;
}

/* Differences of one check: the first max listed, the rest counted. */
struct difflist {
	size_t max;
	size_t total;
	json_object *arr;	   /* JSON: listed differences */
	struct libscols_table *tb; /* text (check): rows */
};

static json_object *diff_json(const struct shift_difference *d)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "path", json_object_new_string(d->path));
	json_object_object_add(o, "field", json_object_new_string(d->field));
	json_object_object_add(o, "expected",
			       json_object_new_string(d->expected));
	json_object_object_add(o, "found", json_object_new_string(d->found));
	return o;
}

/* Text cells: untrusted names escaped (a tree's file names can hold
 * terminal escapes and newlines). */
static int set_cell(struct libscols_line *ln, size_t col, const char *s)
{
	_cleanup_free_ char *e = shift_escape(s);

	if (!e)
		return -ENOMEM;
	return scols_line_set_data(ln, col, e) < 0 ? -ENOMEM : 0;
}

static int collect_diff(const struct shift_difference *d, void *userdata)
{
	struct difflist *c = userdata;
	struct libscols_line *ln;

	if (c->total++ >= c->max)
		return 0;
	if (c->arr) {
		json_object *o = diff_json(d);

		if (!o)
			return -ENOMEM;
		json_object_array_add(c->arr, o);
		return 0;
	}
	ln = scols_table_new_line(c->tb, NULL);
	if (!ln || set_cell(ln, 0, d->path) < 0 ||
	    set_cell(ln, 1, d->field) < 0 || set_cell(ln, 2, d->expected) < 0 ||
	    set_cell(ln, 3, d->found) < 0)
		return -ENOMEM;
	return 0;
}

static int do_check(struct options *o)
{
	struct shift_manifest *m = NULL;
	struct difflist c = {.max = o->max_diffs};
	json_object *root = NULL;
	char at[PATH_MAX + 8];
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	int r;

	if (o->json) {
		_cleanup_free_ char *map =
		    o->map.map ? shift_idmap_to_string(o->map.map) : NULL;

		root = json_object_new_object();
		json_object_object_add(root, "manifest",
				       json_object_new_string(o->manifest));
		json_object_object_add(root, "dir",
				       json_object_new_string(o->arg));
		json_object_object_add(
		    root, "map", map ? json_object_new_string(map) : NULL);
	}
	/* validated now, compared with the tree as it is read again */
	r = shift_manifest_open(o->manifest, &m, &e);
	if (r < 0) {
		if (r == -EBADMSG && e.line)
			return fail(
			    o, root, r,
			    "Failed to read manifest '%s': line %u: %s (record "
			    "it again with 'shift-verify record')",
			    o->manifest, e.line, shift_error_why(&e, r));
		if (r == -EBADMSG)
			return fail(o, root, r,
				    "Failed to read manifest '%s': %s (record "
				    "it again with 'shift-verify record')",
				    o->manifest, e.why ? e.why : "malformed");
		return fail(o, root, r, "Failed to read manifest '%s': %s",
			    o->manifest, strerror(-r));
	}
	if (o->json) {
		c.arr = json_object_new_array();
	} else {
		c.tb = scols_new_table();
		if (c.tb) {
			scols_table_new_column(c.tb, "PATH", 0.5, 0);
			scols_table_new_column(c.tb, "FIELD", 0.1, 0);
			scols_table_new_column(c.tb, "EXPECTED", 0.2, 0);
			scols_table_new_column(c.tb, "FOUND", 0.2, 0);
		}
	}
	if (!c.arr && !c.tb) {
		shift_manifest_free(m);
		return fail(o, root, -ENOMEM, "out of memory");
	}
	start_progress(o, "entries", shift_manifest_count(m));
	shift_error_clear(&e);
	r = shift_manifest_check(m, o->map.map, o->arg, o->check_flags,
				 collect_diff, &c, &e);
	stop_progress(o);
	if (r < 0) {
		/* differences found before the error still go out */
		if (root) {
			json_object_object_add(root, "differences", c.arr);
			c.arr = NULL;
		}
		r = fail(o, root, r, "Failed to check '%s' against '%s': %s%s",
			 o->arg, o->manifest, where(&e, at, sizeof(at)),
			 r == -ESTALE && !e.path
			     ? "the manifest changed while it was read"
			     : strerror(-r));
	} else if (o->json) {
		json_object_object_add(
		    root, "result",
		    json_object_new_string(r ? "fail" : "pass"));
		json_object_object_add(
		    root, "digest",
		    json_object_new_string(shift_manifest_digest(m)));
		json_object_object_add(root, "entries",
				       json_object_new_int64((int64_t)shift_manifest_count(m)));
		json_object_object_add(root, "differences", c.arr);
		json_object_object_add(root, "differences_total",
				       json_object_new_int64((int64_t)c.total));
		c.arr = NULL;
		print_json(root);
		r = r > 0 ? EXIT_FAIL : EXIT_OK;
	} else if (r > 0) {
		if (scols_table_get_nlines(c.tb) > 0)
			scols_print_table(c.tb);
		if (c.total > c.max)
			printf("... and %zu more (--max-differences)\n",
			       c.total - c.max);
		fflush(stdout);
		fprintf(stderr, "%s: '%s' differs from '%s' in %d place%s\n",
			program_invocation_short_name, o->arg, o->manifest, r,
			r == 1 ? "" : "s");
		r = EXIT_FAIL;
	} else {
		if (!o->quiet)
			printf("%s: %zu entries match %s\n", o->arg,
			       shift_manifest_count(m),
			       shift_manifest_digest(m));
		r = EXIT_OK;
	}
	json_object_put(c.arr);
	scols_unref_table(c.tb);
	shift_manifest_free(m);
	return r;
}

/*
 * containers: one row (or JSON object) per check result; the differences
 * a check found come as findings before its result and are kept, up to
 * --max-differences, until it arrives.
 */
struct pending {
	enum shift_verify_check check;
	char *subject;
	struct difflist dl;
	char **rows; /* text: "PATH: FIELD is FOUND, expected EXPECTED" */
};

struct report {
	const struct options *o;
	struct libscols_table *tb;
	json_object *arr;
	unsigned fails, passes, skips;
	size_t diffs;
	struct pending *pend;
	size_t npend;
};

static void pending_free(struct pending *p)
{
	size_t i;

	free(p->subject);
	json_object_put(p->dl.arr);
	for (i = 0; p->rows && i < p->dl.max && i < p->dl.total; i++)
		free(p->rows[i]);
	free(p->rows);
}

static struct pending *pending_find(struct report *rp,
				    enum shift_verify_check check,
				    const char *subject, bool create)
{
	struct pending *p;
	size_t i;

	for (i = 0; i < rp->npend; i++)
		if (rp->pend[i].check == check &&
		    !strcmp(rp->pend[i].subject, subject))
			return &rp->pend[i];
	if (!create)
		return NULL;
	p = realloc(rp->pend, (rp->npend + 1) * sizeof(*p));
	if (!p)
		return NULL;
	rp->pend = p;
	p = &rp->pend[rp->npend];
	*p = (struct pending){.check = check, .dl.max = rp->o->max_diffs};
	p->subject = strdup(subject);
	if (!p->subject)
		return NULL;
	if (rp->arr) {
		p->dl.arr = json_object_new_array();
		if (!p->dl.arr) {
			free(p->subject);
			return NULL;
		}
	}
	rp->npend++;
	return p;
}

static int add_row(struct report *rp, const char *check, const char *status,
		   const char *subject, const char *detail)
{
	struct libscols_line *ln = scols_table_new_line(rp->tb, NULL);

	if (!ln || set_cell(ln, 0, check) < 0 || set_cell(ln, 1, status) < 0 ||
	    set_cell(ln, 2, subject) < 0 || set_cell(ln, 3, detail) < 0)
		return -ENOMEM;
	return 0;
}

static int pending_diff(struct report *rp, const struct shift_verify_finding *f)
{
	struct pending *p = pending_find(rp, f->check, f->subject, true);
	size_t n;

	if (!p)
		return -ENOMEM;
	rp->diffs++;
	n = p->dl.total++;
	if (n >= p->dl.max)
		return 0;
	if (p->dl.arr) {
		json_object *o = diff_json(f->diff);

		if (!o)
			return -ENOMEM;
		json_object_array_add(p->dl.arr, o);
		return 0;
	}
	if (n % 64 == 0) {
		char **rows = realloc(p->rows, (n + 64) * sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		p->rows = rows;
	}
	if (asprintf(&p->rows[n], "%s: %s is %s, expected %s", f->diff->path,
		     f->diff->field, f->diff->found, f->diff->expected) < 0) {
		p->dl.total--;
		return -ENOMEM;
	}
	return 0;
}

static int collect_finding(const struct shift_verify_finding *f, void *userdata)
{
	struct report *rp = userdata;
	const char *status = shift_verify_status_name(f->status);
	const char *check = shift_verify_check_name(f->check);
	struct pending *p;
	size_t i;
	int r = 0;

	if (f->diff)
		return pending_diff(rp, f);
	if (f->status == SHIFT_VERIFY_FAIL)
		rp->fails++;
	else if (f->status == SHIFT_VERIFY_PASS)
		rp->passes++;
	else if (f->status == SHIFT_VERIFY_SKIP)
		rp->skips++;
	p = pending_find(rp, f->check, f->subject, false);
	if (rp->arr) {
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_object_object_add(o, "check", json_object_new_string(check));
		json_object_object_add(o, "status", json_object_new_string(status));
		json_object_object_add(o, "subject",
				       json_object_new_string(f->subject));
		json_object_object_add(o, "message",
				       json_object_new_string(f->message));
		if (p) {
			json_object_object_add(o, "differences", p->dl.arr);
			json_object_object_add(
			    o, "differences_total",
			    json_object_new_int64((int64_t)p->dl.total));
			p->dl.arr = NULL;
		}
		json_object_array_add(rp->arr, o);
	} else if (rp->o->all || f->status == SHIFT_VERIFY_FAIL ||
		   f->status == SHIFT_VERIFY_INFO ||
		   f->status == SHIFT_VERIFY_SKIP) {
		r = add_row(rp, check, status, f->subject, f->message);
		for (i = 0; p && r >= 0 && i < p->dl.total && i < p->dl.max;
		     i++)
			r = add_row(rp, check, "diff", f->subject, p->rows[i]);
		if (p && r >= 0 && p->dl.total > p->dl.max) {
			_cleanup_free_ char *more = NULL;

			if (asprintf(&more,
				     "... and %zu more (--max-differences)",
				     p->dl.total - p->dl.max) < 0)
				return -ENOMEM;
			r = add_row(rp, check, "diff", f->subject, more);
		}
	}
	if (p) {
		pending_free(p);
		*p = rp->pend[--rp->npend];
	}
	return r;
}

static int do_containers(struct options *o)
{
	struct report rp = {.o = o};
	json_object *root = NULL;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	int r;

	if (o->json) {
		root = json_object_new_object();
		json_object_object_add(root, "file",
				       json_object_new_string(o->arg));
		rp.arr = json_object_new_array();
	} else {
		rp.tb = scols_new_table();
		if (rp.tb) {
			scols_table_new_column(rp.tb, "CHECK", 0.1, 0);
			scols_table_new_column(rp.tb, "STATUS", 0.05, 0);
			scols_table_new_column(rp.tb, "SUBJECT", 0.15, 0);
			scols_table_new_column(rp.tb, "DETAIL", 0.7, SCOLS_FL_WRAP);
		}
	}
	if (!rp.arr && !rp.tb)
		return fail(o, root, -ENOMEM, "out of memory");
	start_progress(o, "entries", 0);
	r = shift_verify_containers(o->arg, collect_finding, &rp, &e);
	stop_progress(o);
	while (rp.npend)
		pending_free(&rp.pend[--rp.npend]);
	free(rp.pend);
	if (r == -EBADMSG) {
		json_object_put(rp.arr);
		r = fail(o, root, r,
			 "Failed to read container set '%s': %s (see "
			 "shift-verify(1), CONTAINER SET)",
			 o->arg, e.why ? e.why : "malformed");
	} else if (r < 0) {
		json_object_put(rp.arr);
		r = fail(o, root, r, "Failed to check container set '%s': %s%s%s",
			 o->arg, e.why ? e.why : "", e.why ? ": " : "",
			 strerror(-r));
	} else if (o->json) {
		json_object_object_add(root, "result",
				       json_object_new_string(rp.fails ? "fail" : "pass"));
		json_object_object_add(root, "failed", json_object_new_int((int)rp.fails));
		json_object_object_add(root, "passed", json_object_new_int((int)rp.passes));
		json_object_object_add(root, "skipped", json_object_new_int((int)rp.skips));
		json_object_object_add(
		    root, "differences",
		    json_object_new_int64((int64_t)rp.diffs));
		json_object_object_add(root, "findings", rp.arr);
		print_json(root);
		r = rp.fails ? EXIT_FAIL : EXIT_OK;
	} else {
		if (scols_table_get_nlines(rp.tb) > 0 &&
		    (rp.fails || !o->quiet))
			scols_print_table(rp.tb);
		if (rp.fails || !o->quiet) {
			_cleanup_free_ char *file = shift_escape(o->arg);

			printf("%s: %s: %u failed, %u passed, %u skipped",
			       file ? file : o->arg, rp.fails ? "FAIL" : "PASS",
			       rp.fails, rp.passes, rp.skips);
			if (rp.diffs)
				printf(" (%zu difference%s)", rp.diffs,
				       rp.diffs == 1 ? "" : "s");
			putchar('\n');
		}
		r = rp.fails ? EXIT_FAIL : EXIT_OK;
	}
	scols_unref_table(rp.tb);
	return r;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int r;

	o.json = cli_json_begin(argc, argv);
	parse_args(&o, argc, argv);
	switch (o.cmd) {
	case CMD_RECORD:
		r = do_record(&o);
		break;
	case CMD_CHECK:
		r = do_check(&o);
		break;
	default:
		r = do_containers(&o);
	}
	cli_map_free(&o.map);
	return r;
}
