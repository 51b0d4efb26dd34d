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
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

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
};

struct options {
	enum command cmd;
	struct cli_map map;
	const char *manifest;
	const char *output;
	const char *arg; /* DIR or FILE */
	unsigned check_flags;
	bool json;
	bool all; /* containers: also list passed checks */
};

static void usage(void)
{
	printf("Usage:\n"
	       " %1$s record [--output FILE] DIR\n"
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
	       "Map (check, at most one):\n"
	       CLI_MAP_HELP
	       "\n"
	       "Options:\n"
	       " -M, --manifest FILE     the manifest to check against\n"
	       " -o, --output FILE       record: write the manifest to FILE, not stdout\n"
	       "     --ignore-extra      check: entries not in the manifest are fine\n"
	       "     --ignore-missing    check: entries missing from DIR are fine\n"
	       " -a, --all               containers: list passed checks too\n"
	       " -J, --json              JSON output\n"
	       " -h, --help              display this help\n"
	       " -V, --version           display version\n"
	       "\n"
	       "Exit status: 0 all good, 1 differences or failed checks (or an error),\n"
	       "2 usage error.\n",
	       program_invocation_short_name);
	exit(EXIT_OK);
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_MAP_LONGOPTS,
		{ "manifest", required_argument, NULL, 'M' },
		{ "output", required_argument, NULL, 'o' },
		{ "ignore-extra", no_argument, NULL, OPT_IGNORE_EXTRA },
		{ "ignore-missing", no_argument, NULL, OPT_IGNORE_MISSING },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int c;

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
			cli_usage_error(c == '?' ? NULL :
				"options go after the command (record, check, containers)");
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

	while ((c = getopt_long(argc, argv, "m:M:o:aJhV", longopts, NULL)) != -1) {
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
		case 'J':
			o->json = true;
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
	if (o->cmd != CMD_CHECK && (o->manifest || o->check_flags))
		cli_usage_error("--manifest, --ignore-extra and --ignore-missing go with 'check' only");
	if (o->cmd != CMD_RECORD && o->output)
		cli_usage_error("--output goes with 'record' only");
	if (o->cmd == CMD_RECORD && o->json)
		cli_usage_error("'record' writes a manifest, not JSON");
	if (o->cmd != CMD_CONTAINERS && o->all)
		cli_usage_error("--all goes with 'containers' only");
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

static int do_record(const struct options *o)
{
	struct shift_manifest *m = NULL;
	_cleanup_free_ char *tmp = NULL;
	int fd = STDOUT_FILENO, r;

	r = shift_manifest_record(o->arg, &m);
	if (r < 0) {
		cli_error("Failed to record '%s': %s", o->arg, strerror(-r));
		return EXIT_FAIL;
	}
	if (o->output) {
		/* never leave a half-written manifest behind */
		if (asprintf(&tmp, "%s.tmpXXXXXX", o->output) < 0) {
			shift_manifest_free(m);
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			cli_error("Failed to create '%s': %m", o->output);
			shift_manifest_free(m);
			return EXIT_FAIL;
		}
	}
	r = shift_manifest_write(m, fd);
	shift_manifest_free(m);
	if (o->output) {
		if (r >= 0 && fchmod(fd, 0644) < 0)
			r = -errno;
		if (close(fd) < 0 && r >= 0)
			r = -errno;
		if (r >= 0 && rename(tmp, o->output) < 0)
			r = -errno;
		if (r < 0)
			unlink(tmp);
	}
	if (r < 0) {
		cli_error("Failed to write the manifest of '%s' to '%s': %s",
			  o->arg, o->output ? o->output : "stdout", strerror(-r));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

struct collect {
	struct libscols_table *tb;
	json_object *arr;
};

static int collect_diff(const struct shift_difference *d, void *userdata)
{
	struct collect *c = userdata;

	if (c->arr) {
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_object_object_add(o, "path", json_object_new_string(d->path));
		json_object_object_add(o, "field", json_object_new_string(d->field));
		json_object_object_add(o, "expected",
				       json_object_new_string(d->expected));
		json_object_object_add(o, "found", json_object_new_string(d->found));
		json_object_array_add(c->arr, o);
	} else {
		struct libscols_line *ln = scols_table_new_line(c->tb, NULL);

		if (!ln)
			return -ENOMEM;
		scols_line_set_data(ln, 0, d->path);
		scols_line_set_data(ln, 1, d->field);
		scols_line_set_data(ln, 2, d->expected);
		scols_line_set_data(ln, 3, d->found);
	}
	return 0;
}

static int do_check(const struct options *o)
{
	struct shift_manifest *m = NULL;
	struct collect c = { NULL, NULL };
	const char *why = NULL;
	unsigned line = 0;
	int r;

	r = shift_manifest_read(o->manifest, &m, &why, &line);
	if (r < 0) {
		if (r == -EBADMSG && line)
			cli_error("Failed to read manifest '%s': line %u: %s (record it again with 'shift-verify record')",
				  o->manifest, line, why);
		else if (r == -EBADMSG)
			cli_error("Failed to read manifest '%s': %s (record it again with 'shift-verify record')",
				  o->manifest, why ? why : "malformed");
		else
			cli_error("Failed to read manifest '%s': %s", o->manifest,
				  strerror(-r));
		return EXIT_FAIL;
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
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	r = shift_manifest_check(m, o->map.map, o->arg, o->check_flags,
				 collect_diff, &c);
	if (r < 0) {
		cli_error("Failed to check '%s' against '%s': %s", o->arg,
			  o->manifest, strerror(-r));
		r = EXIT_FAIL;
	} else if (o->json) {
		json_object *root = json_object_new_object();
		char *map = o->map.map ? shift_idmap_to_string(o->map.map) : NULL;

		json_object_object_add(root, "manifest",
				       json_object_new_string(o->manifest));
		json_object_object_add(root, "digest",
				       json_object_new_string(shift_manifest_digest(m)));
		json_object_object_add(root, "dir", json_object_new_string(o->arg));
		json_object_object_add(root, "map",
				       map ? json_object_new_string(map) : NULL);
		json_object_object_add(root, "entries",
				       json_object_new_int64((int64_t)shift_manifest_count(m)));
		json_object_object_add(root, "differences", c.arr);
		c.arr = NULL;
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
		free(map);
		r = r > 0 ? EXIT_FAIL : EXIT_OK;
	} else if (r > 0) {
		scols_print_table(c.tb);
		fprintf(stderr, "%s: '%s' differs from '%s' in %d place%s\n",
			program_invocation_short_name, o->arg, o->manifest, r,
			r == 1 ? "" : "s");
		r = EXIT_FAIL;
	} else {
		printf("%s: %zu entries match %s\n", o->arg,
		       shift_manifest_count(m), shift_manifest_digest(m));
		r = EXIT_OK;
	}
	json_object_put(c.arr);
	scols_unref_table(c.tb);
	shift_manifest_free(m);
	return r;
}

/* containers: a row per finding, passed checks only with --all */
struct report {
	struct libscols_table *tb;
	json_object *arr;
	bool all;
	unsigned fails, passes, skips;
};

static int collect_finding(const struct shift_verify_finding *f, void *userdata)
{
	struct report *rp = userdata;
	const char *status = shift_verify_status_name(f->status);
	const char *check = shift_verify_check_name(f->check);

	if (f->status == SHIFT_VERIFY_FAIL)
		rp->fails++;
	else if (f->status == SHIFT_VERIFY_PASS)
		rp->passes++;
	else if (f->status == SHIFT_VERIFY_SKIP)
		rp->skips++;
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
		if (f->diff) {
			json_object_object_add(o, "path",
					       json_object_new_string(f->diff->path));
			json_object_object_add(o, "field",
					       json_object_new_string(f->diff->field));
			json_object_object_add(o, "expected",
					       json_object_new_string(f->diff->expected));
			json_object_object_add(o, "found",
					       json_object_new_string(f->diff->found));
		}
		json_object_array_add(rp->arr, o);
	} else if (rp->all || f->status == SHIFT_VERIFY_FAIL ||
		   f->status == SHIFT_VERIFY_INFO || f->status == SHIFT_VERIFY_SKIP) {
		struct libscols_line *ln = scols_table_new_line(rp->tb, NULL);
		_cleanup_free_ char *msg = NULL;

		if (!ln)
			return -ENOMEM;
		if (f->diff && asprintf(&msg, "%s: %s %s, expected %s", f->diff->path,
					f->diff->field, f->diff->found,
					f->diff->expected) < 0)
			return -ENOMEM;
		scols_line_set_data(ln, 0, check);
		scols_line_set_data(ln, 1, status);
		scols_line_set_data(ln, 2, f->subject);
		scols_line_set_data(ln, 3, msg ? msg : f->message);
	}
	return 0;
}

static int do_containers(const struct options *o)
{
	struct report rp = { .all = o->all };
	char err[512] = "";
	int r;

	if (o->json) {
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
	if (!rp.arr && !rp.tb) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	r = shift_verify_containers(o->arg, collect_finding, &rp, err, sizeof(err));
	if (r == -EBADMSG) {
		cli_error("Failed to read container set '%s': %s (see shift-verify(1), CONTAINER SET)",
			  o->arg, err[0] ? err : "malformed");
		r = EXIT_FAIL;
	} else if (r < 0) {
		cli_error("Failed to check container set '%s': %s%s%s", o->arg,
			  err[0] ? err : "", err[0] ? ": " : "", strerror(-r));
		r = EXIT_FAIL;
	} else if (o->json) {
		json_object *root = json_object_new_object();

		json_object_object_add(root, "file", json_object_new_string(o->arg));
		json_object_object_add(root, "result",
				       json_object_new_string(rp.fails ? "fail" : "pass"));
		json_object_object_add(root, "failed", json_object_new_int((int)rp.fails));
		json_object_object_add(root, "passed", json_object_new_int((int)rp.passes));
		json_object_object_add(root, "skipped", json_object_new_int((int)rp.skips));
		json_object_object_add(root, "findings", rp.arr);
		rp.arr = NULL;
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
		r = rp.fails ? EXIT_FAIL : EXIT_OK;
	} else {
		if (scols_table_get_nlines(rp.tb) > 0)
			scols_print_table(rp.tb);
		printf("%s: %s: %u failed, %u passed, %u skipped\n", o->arg,
		       rp.fails ? "FAIL" : "PASS", rp.fails, rp.passes, rp.skips);
		r = rp.fails ? EXIT_FAIL : EXIT_OK;
	}
	json_object_put(rp.arr);
	scols_unref_table(rp.tb);
	return r;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int r;

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
