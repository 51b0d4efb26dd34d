/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One progress line for every long operation of every tool: on a terminal
 * only (stderr), never with --quiet or --json, at most four updates a
 * second.  "TOOL: WHAT 12345 of 67890 (18%), 4021/s, 00:14 left".
 * Print anything else on stderr or stdout only after cli_progress_clear().
 */
#ifndef SHIFTKIT_PROGRESS_H
#define SHIFTKIT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct cli_progress {
	bool enabled;
	bool shown;
	const char *what; /* "inodes", "entries", ... */
	uint64_t total;	  /* 0: not known */
	double t0, last;
};

/* Enabled when stderr is a terminal and not QUIET. */
void cli_progress_init(struct cli_progress *p, const char *what, bool quiet);
void cli_progress_set_total(struct cli_progress *p, uint64_t total);
/* Shows COUNT (rate-limited unless FORCE). */
void cli_progress_update(struct cli_progress *p, uint64_t count, bool force);
/* Erases the line, if one is shown. */
void cli_progress_clear(struct cli_progress *p);

#endif
