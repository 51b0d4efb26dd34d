/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/*
 * Every tool's output is checked when it exits (as coreutils' close_stdout
 * does): a report or a --help that could not be written is a failure, not
 * exit 0.  Registered before main() runs, so no tool can forget it.
 */
static void cli_close_stdout(void)
{
	int err = 0;

	if (fflush(stdout) != 0 || ferror(stdout))
		err = errno ? errno : EIO;
	if (fclose(stdout) != 0 && !err)
		err = errno;
	if (err) {
		fprintf(stderr, "%s: write error on standard output: %s\n",
			program_invocation_short_name, strerror(err));
		_exit(EXIT_FAIL);
	}
	if (fclose(stderr) != 0 && errno != EBADF)
		_exit(EXIT_FAIL);
}

__attribute__((constructor)) static void cli_setup(void)
{
	atexit(cli_close_stdout);
}

static void (*error_hook)(const char *msg, void *userdata);
static void *error_hook_data;

void cli_set_error_hook(void (*hook)(const char *msg, void *userdata),
			void *userdata)
{
	error_hook = hook;
	error_hook_data = userdata;
}

static void vmsg(const char *fmt, va_list ap)
{
	if (error_hook) {
		char *s = NULL;
		va_list aq;

		va_copy(aq, ap);
		if (vasprintf(&s, fmt, aq) >= 0) {
			error_hook(s, error_hook_data);
			free(s);
		}
		va_end(aq);
	}
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vmsg(fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "Try '%s --help' for more information.\n",
		program_invocation_short_name);
	exit(EXIT_USAGE);
}

void cli_option_error(char **argv)
{
	if (!opterr) {
		_cleanup_free_ char *e = shift_escape(argv[optind - 1]);

		cli_usage_error("invalid option '%s' (unknown, or its argument is missing)",
				e ? e : "?");
	}
	cli_usage_error(NULL);
}

int cli_exit_code(int r)
{
	if (r >= 0)
		return EXIT_OK;
	switch (-r) {
	case ENOSYS:
	case EOPNOTSUPP:
		return EXIT_UNSUPPORTED;
	default:
		return EXIT_FAIL;
	}
}

static void (*report_hook)(int r, const struct shift_error *err,
			   int exit_status);

void cli_set_report_hook(void (*hook)(int r, const struct shift_error *err,
				      int exit_status))
{
	report_hook = hook;
}

int cli_report(int r, const struct shift_error *err, const char *hint,
	       const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *path = NULL, *why = NULL;
	int rc = cli_exit_code(r);
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (err && err->path)
		path = shift_escape(err->path);
	why = shift_escape(shift_error_why(err, r));
	/* The path once: a message that names it already ('PATH') needs
	 * no second 'PATH':. */
	if (path && msg) {
		_cleanup_free_ char *quoted = NULL;

		if (asprintf(&quoted, "'%s'", path) >= 0 &&
		    strstr(msg, quoted)) {
			free(path);
			path = NULL;
		}
	}
	if (report_hook)
		report_hook(r, err, rc);
	cli_error("%s: %s%s%s%s%s%s", msg ? msg : "failed", path ? "'" : "",
		  path ? path : "", path ? "': " : "", why ? why : "?",
		  hint ? " " : "", hint ? hint : "");
	return rc;
}

void cli_help_footer(bool json, const char *note, const char *man)
{
	printf("%s"
	       " -h, --help              display this help\n"
	       " -V, --version           display version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error, 3 not supported\n"
	       "by this kernel or filesystem (the same in every shiftkit tool)%s%s.\n"
	       "See %s.\n",
	       json ? CLI_JSON_HELP : "", note ? ";\n" : "", note ? note : "",
	       man);
}

void cli_version(void)
{
	printf("%s from shiftkit %s\n", program_invocation_short_name,
	       PACKAGE_VERSION);
	exit(EXIT_OK);
}

pid_t cli_parse_pid(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || !*arg || *end || v <= 0 || v > 0x3fffffff)
		cli_usage_error("invalid pid '%s'", arg);
	return (pid_t)v;
}

int cli_map_option(struct cli_map *m, int opt, const char *arg)
{
	struct shift_error why = { 0 };
	int r;

	switch (opt) {
	case 'm':
	case CLI_OPT_MAP:
		if (!m->map) {
			m->map = shift_idmap_new();
			if (!m->map) {
				cli_error("out of memory");
				exit(EXIT_FAIL);
			}
			m->sources++;
		}
		r = shift_idmap_parse(m->map, arg, &why);
		if (r < 0) {
			cli_error("invalid map '%s': %s", arg,
				  shift_error_why(&why, r));
			exit(EXIT_USAGE);
		}
		return 1;
	case CLI_OPT_USERNS:
		m->userns_path = arg;
		m->sources++;
		return 1;
	case CLI_OPT_PID:
		m->pid = cli_parse_pid(arg);
		m->sources++;
		return 1;
	case CLI_OPT_SUBID:
		m->subid_user = arg;
		m->sources++;
		return 1;
	case CLI_OPT_ALLOW_HOST_ROOT:
		m->allow_host_root = true;
		return 1;
	default:
		return 0;
	}
}

void cli_map_finish(struct cli_map *m, unsigned validate_flags)
{
	struct shift_error why = { 0 };
	char *s;
	int r = 0;

	if (m->sources == 0)
		cli_usage_error("no id map given (use --map, --userns, --pid or --subid)");
	if (m->sources > 1)
		cli_usage_error("give the map one way only: --map, --userns, --pid or --subid");
	if (!m->map) {
		m->map = shift_idmap_new();
		if (!m->map) {
			cli_error("out of memory");
			exit(EXIT_FAIL);
		}
		if (m->userns_path) {
			r = shift_idmap_from_userns_path(m->map, m->userns_path);
			if (r < 0) {
				cli_error("Failed to read the id map of user namespace '%s': %s",
					  m->userns_path, strerror(-r));
				exit(EXIT_FAIL);
			}
		} else if (m->pid) {
			r = shift_idmap_from_pid(m->map, m->pid);
			if (r < 0) {
				cli_error("Failed to read the id map of process %d: %s",
					  (int)m->pid, strerror(-r));
				exit(EXIT_FAIL);
			}
		} else if (m->subid_user) {
			for (unsigned k = 0; k < 2; k++) {
				_cleanup_(shift_error_clear) struct shift_error e = {0};
				const char *file =
				    shift_subid_file((enum shift_id_kind)k);

				r = shift_subid_read((enum shift_id_kind)k,
						     m->subid_user, m->map,
						     NULL, NULL, &e);
				if (r == -EBADMSG) {
					cli_error("Failed to read the delegation of user '%s': %s: line %u: %s (newuidmap ignores the line, so it delegates nothing)",
						  m->subid_user, file, e.line,
						  shift_error_why(&e, r));
					exit(EXIT_USAGE);
				}
				if (r <= 0) {
					cli_error("Failed to read the delegation of user '%s' from %s: %s",
						  m->subid_user, file,
						  r >= 0 || r == -ENOENT ? "no range for this user" : strerror(-r));
					exit(EXIT_USAGE);
				}
			}
		}
	}
	/* a map for a namespace must also be writable as one */
	if (validate_flags & SHIFT_VALIDATE_BOTH)
		validate_flags |= SHIFT_VALIDATE_USERNS;
	if (m->allow_host_root)
		validate_flags &= ~(unsigned)SHIFT_VALIDATE_NO_HOST_ROOT;
	r = shift_idmap_validate(m->map, validate_flags, &why);
	if (r < 0) {
		s = shift_idmap_to_string(m->map);
		if (s && strlen(s) <= 120)
			cli_error("invalid map '%s': %s", s,
				  shift_error_why(&why, r));
		else
			cli_error("invalid map (%u uid and %u gid extents): %s",
				  shift_idmap_count(m->map, SHIFT_UID),
				  shift_idmap_count(m->map, SHIFT_GID),
				  shift_error_why(&why, r));
		free(s);
		exit(EXIT_USAGE);
	}
}

void cli_map_free(struct cli_map *m)
{
	shift_idmap_free(m->map);
	m->map = NULL;
}
