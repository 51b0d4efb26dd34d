/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_init(struct cli_progress *p, const char *what, bool quiet)
{
	*p = (struct cli_progress){
		.enabled = !quiet && isatty(STDERR_FILENO),
		.what = what,
	};
	p->t0 = now();
}

void cli_progress_set_total(struct cli_progress *p, uint64_t total)
{
	p->total = total;
}

void cli_progress_update(struct cli_progress *p, uint64_t count, bool force)
{
	double t, rate;

	if (!p->enabled)
		return;
	t = now();
	if (!force && p->shown && t - p->last < 0.25)
		return;
	p->last = t;
	rate = t - p->t0 > 0 ? (double)count / (t - p->t0) : 0.0;
	fprintf(stderr, "\r\033[K%s: %s %" PRIu64, program_invocation_short_name,
		p->what, count);
	if (p->total && count <= p->total) {
		fprintf(stderr, " of %" PRIu64 " (%d%%)", p->total,
			(int)(count * 100 / p->total));
	}
	fprintf(stderr, ", %.0f/s", rate);
	if (p->total && count <= p->total && rate > 0) {
		unsigned long left = (unsigned long)((double)(p->total - count) / rate);

		fprintf(stderr, ", %02lu:%02lu left", left / 60, left % 60);
	}
	p->shown = true;
}

void cli_progress_clear(struct cli_progress *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		p->shown = false;
	}
}
