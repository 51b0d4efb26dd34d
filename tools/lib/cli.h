/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every shiftkit tool shares: messages, exit codes, --version, and the
 * map options (--map, --userns, --pid, --subid, --allow-host-root).
 */
#ifndef SHIFTKIT_CLI_H
#define SHIFTKIT_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/macros.h"
#include "shift.h"

/* Exit status, the same in every tool (documented in every man page). */
#define EXIT_OK 0
#define EXIT_FAIL 1	   /* the operation failed, or a check found problems */
#define EXIT_USAGE 2	   /* bad option, bad argument, bad map */
#define EXIT_UNSUPPORTED 3 /* the kernel or filesystem lacks the feature */

/* "TOOL: message\n" on stderr. */
void cli_error(const char *fmt, ...) _printf_(1, 2);
/*
 * getopt_long's '?': an unknown option or one missing its argument.  With
 * getopt quiet (opterr 0, --json) says so itself, naming argv[optind - 1];
 * then as cli_usage_error().
 */
_noreturn_ void cli_option_error(char **argv);
/* "Try 'TOOL --help' for more information." and exit(EXIT_USAGE). */
_noreturn_ void cli_usage_error(const char *fmt, ...) _printf_(1, 2);
/* Also hand every message of cli_error() and cli_usage_error() (without
 * "TOOL: " and newline) to hook, e.g. to carry it into --json output
 * (tools/lib/cli-json.h); NULL: no hook. */
void cli_set_error_hook(void (*hook)(const char *msg, void *userdata),
			void *userdata);
/*
 * The one mapping from a result to the exit status, used by every tool
 * (docs/design.md "Exit status"): 0 and above EXIT_OK; -ENOSYS and
 * -EOPNOTSUPP (the kernel or filesystem lacks the feature) EXIT_UNSUPPORTED;
 * any other negative errno EXIT_FAIL.  EXIT_USAGE is never an errno's: a
 * tool finds usage errors itself (cli_usage_error).  A tool whose errno
 * means more in its context says so before asking (shift-mount: EINVAL
 * from idmapping a mount is "this filesystem can't be idmapped").
 */
int cli_exit_code(int r);
/*
 * One line for a failed call, "TOOL: MESSAGE: 'PATH': WHY HINT" (MESSAGE
 * formatted from fmt; 'PATH': only when err names a path MESSAGE does not
 * already name; WHY err->why or strerror(-r); path and why escaped; HINT
 * if non-NULL), also into the --json document's "error" (with path,
 * reason, line, column).  Returns cli_exit_code(r).  err may be NULL.
 */
int cli_report(int r, const struct shift_error *err, const char *hint,
	       const char *fmt, ...) _printf_(4, 5);
/* Also hand each cli_report() (before its message) to hook; NULL: none. */
void cli_set_report_hook(void (*hook)(int r, const struct shift_error *err,
				      int exit_status));
/*
 * The common tail of every --help (stdout): -J/--json (with json), -h and
 * -V, the exit statuses every tool shares ("Exit status: 0 success, 1
 * failure, 2 usage error, 3 not supported ...") with note (NULL: none)
 * after them, and the manual page.
 */
void cli_help_footer(bool json, const char *note, const char *man);
#define CLI_JSON_HELP " -J, --json              one JSON document on stdout (errors included)\n"

/* "TOOL from shiftkit VERSION" and exit(0). */
_noreturn_ void cli_version(void);

/* getopt_long values for the map options; use CLI_MAP_LONGOPTS. */
enum {
	CLI_OPT_MAP = 0x1000,
	CLI_OPT_USERNS,
	CLI_OPT_PID,
	CLI_OPT_SUBID,
	CLI_OPT_ALLOW_HOST_ROOT,
};

#define CLI_MAP_LONGOPTS                                                       \
	{ "map", required_argument, NULL, 'm' },                               \
	{ "userns", required_argument, NULL, CLI_OPT_USERNS },                 \
	{ "pid", required_argument, NULL, CLI_OPT_PID },                       \
	{ "subid", required_argument, NULL, CLI_OPT_SUBID },                   \
	{ "allow-host-root", no_argument, NULL, CLI_OPT_ALLOW_HOST_ROOT }

#define CLI_MAP_HELP                                                           \
	" -m, --map MAP           id map [u:|g:|b:]A:B:N (on-disk A..A+N-1 seen\n" \
	"                           as B..B+N-1; repeatable, no prefix = both)\n" \
	"     --userns PATH       take the map of a user namespace file\n"     \
	"     --pid PID           take the map of a running process\n"         \
	"     --subid USER        take USER's /etc/subuid and /etc/subgid range\n" \
	"     --allow-host-root   allow a map that gives away host uid/gid 0\n"

struct cli_map {
	struct shift_idmap *map;
	const char *userns_path;
	pid_t pid;
	const char *subid_user;
	bool allow_host_root;
	int sources; /* how many of --map/--userns/--pid/--subid were given */
};

/*
 * Handle one getopt result if it is a map option: returns 1 if consumed,
 * 0 if not a map option.  Exits with EXIT_USAGE on a bad map.
 */
int cli_map_option(struct cli_map *m, int opt, const char *arg);

/*
 * Resolve the map from the options given and validate it; validate_flags
 * as for shift_idmap_validate() (SHIFT_VALIDATE_NO_HOST_ROOT is dropped
 * with --allow-host-root).  Exits with EXIT_USAGE on a bad or missing map.
 */
void cli_map_finish(struct cli_map *m, unsigned validate_flags);
void cli_map_free(struct cli_map *m);

/* Parse a decimal pid; exits with EXIT_USAGE on garbage. */
pid_t cli_parse_pid(const char *arg);

#endif
