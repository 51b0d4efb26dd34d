/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The library prints nothing, except debug lines behind LIBSHIFT_DEBUG. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

void sk_debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0) {
		const char *e = getenv("LIBSHIFT_DEBUG");

		enabled = e && *e && *e != '0';
	}
	if (!enabled)
		return;
	va_start(ap, fmt);
	fputs("libshift: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
