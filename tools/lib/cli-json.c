/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-json.h"
#include "cli.h"

static struct {
	bool enabled;
	bool printed;
	json_object *messages; /* array of strings */
	json_object *detail;   /* more keys of "error" (cli_report, tools) */
} J;

bool cli_json_wanted(int argc, char **argv, bool short_j)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t n = strlen(a);

		if (strcmp(a, "--") == 0)
			break;
		/* getopt_long takes any unambiguous prefix: --js, --jso */
		if (n >= 4 && strncmp(a, "--json", n) == 0)
			return true;
		if (short_j && a[0] == '-' && a[1] != '-' && strchr(a, 'J'))
			return true;
	}
	return false;
}

static void on_message(const char *msg, void *userdata)
{
	json_object *s;

	if (!J.messages)
		J.messages = json_object_new_array();
	s = json_object_new_string(msg);
	if (J.messages && s)
		json_object_array_add(J.messages, s);
	else
		json_object_put(s);
}

void cli_json_error_add(const char *key, json_object *v)
{
	if (!J.detail)
		J.detail = json_object_new_object();
	if (J.detail && v)
		json_object_object_add(J.detail, key, v);
	else
		json_object_put(v);
}

/* cli_report(): what the error context says, as keys of "error". */
static void on_report(int r, const struct shift_error *err, int exit_status)
{
	(void)exit_status;
	if (err && err->path)
		cli_json_error_add("path", json_object_new_string(err->path));
	cli_json_error_add("reason",
			   json_object_new_string(shift_error_why(err, r)));
	if (err && err->line)
		cli_json_error_add("line", json_object_new_int64(err->line));
	if (err && err->column)
		cli_json_error_add("column",
				   json_object_new_int64(err->column));
}

json_object *cli_json_error_object(int exit_status)
{
	json_object *e = json_object_new_object();
	size_t n = J.messages ? json_object_array_length(J.messages) : 0;
	const char *last = n ? json_object_get_string(
				   json_object_array_get_idx(J.messages, n - 1))
			   : exit_status == EXIT_USAGE
			       ? "usage error (see --help)"
			       : "failed";

	if (!e)
		return NULL;
	json_object_object_add(e, "message", json_object_new_string(last));
	json_object_object_add(e, "messages",
			       J.messages ? json_object_get(J.messages)
					  : json_object_new_array());
	json_object_object_add(e, "exit_status",
			       json_object_new_int(exit_status));
	if (J.detail) {
		struct json_object_iterator it = json_object_iter_begin(J.detail),
					    end = json_object_iter_end(J.detail);

		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			json_object_object_add(
			    e, json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
	}
	return e;
}

void cli_json_print(json_object *doc, int exit_status)
{
	if (!doc) {
		cli_error("out of memory");
		return;
	}
	if (exit_status != 0)
		json_object_object_add(doc, "error",
				       cli_json_error_object(exit_status));
	puts(json_object_to_json_string_ext(
	    doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	J.printed = true;
}

static void on_exit_json(int status, void *arg)
{
	(void)arg;
	/* --help and --version exit 0 with their own text. */
	if (J.enabled && !J.printed && status != 0)
		cli_json_print(json_object_new_object(), status);
	json_object_put(J.messages);
	J.messages = NULL;
	json_object_put(J.detail);
	J.detail = NULL;
}

void cli_json_enable(void)
{
	if (J.enabled)
		return;
	J.enabled = true;
	cli_set_error_hook(on_message, NULL);
	cli_set_report_hook(on_report);
	/* Runs before the check of stdout (registered earlier, runs later). */
	on_exit(on_exit_json, NULL);
}

void cli_json_printed(void)
{
	J.printed = true;
}

bool cli_json_begin(int argc, char **argv)
{
	if (!cli_json_wanted(argc, argv, true))
		return false;
	opterr = 0;
	cli_json_enable();
	return true;
}

size_t cli_json_messages(void)
{
	return J.messages ? json_object_array_length(J.messages) : 0;
}
