/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --json: exactly one JSON document on stdout, also when the tool fails.
 * Every message of cli_error() and cli_usage_error() is kept (and still
 * printed on stderr); a document printed with a non-zero exit status gets
 * them as
 *   "error": {"message": LAST, "messages": [ALL...], "exit_status": N,
 *             "path": ..., "reason": ..., "line": N, "column": N, ...}
 * (the keys after exit_status only when there is a context to give)
 * and a tool that exits with a non-zero status before printing its
 * document (a usage error, say) prints one holding only "error".  Keys are
 * snake_case.
 */
#ifndef SHIFTKIT_CLI_JSON_H
#define SHIFTKIT_CLI_JSON_H

#include <json.h>
#include <stdbool.h>

/* Whether argv asks for --json (or one of its abbreviations, or -J when
 * short_j): call before parsing, so usage errors end up in JSON too. */
bool cli_json_wanted(int argc, char **argv, bool short_j);
/* Start collecting messages; print {"error": ...} on a failing exit. */
void cli_json_enable(void);
/*
 * Call first in main: when argv asks for --json or -J, getopt is made quiet
 * (cli_option_error() then says what it would have, into the document) and
 * cli_json_enable() runs.  Returns whether JSON is wanted.
 */
bool cli_json_begin(int argc, char **argv);
/* Print doc (consumed) as the one document, with "error" when
 * exit_status != 0. */
void cli_json_print(json_object *doc, int exit_status);
/*
 * For a tool that prints its document itself (shift-tree streams its
 * events): the "error" object cli_json_print() would add, and the call
 * that tells the channel the one document is out (no second one on exit).
 */
json_object *cli_json_error_object(int exit_status);
void cli_json_printed(void);
/* One more key of the document's "error" (v consumed): the context of a
 * failure beyond its message (cli_report() adds path, reason, line and
 * column). */
void cli_json_error_add(const char *key, json_object *v);
/* Messages collected so far (0 when none). */
size_t cli_json_messages(void);

#endif
