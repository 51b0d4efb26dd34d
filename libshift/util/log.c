/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The library prints nothing, except debug lines behind LIBSHIFT_DEBUG. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

/* Debug output names files and ids: not for the caller of a setuid or
 * file-capability program (secure_getenv). */
bool sk_debug_enabled(void)
{
	const char *e = secure_getenv("LIBSHIFT_DEBUG");

	return e && *e && *e != '0';
}

void sk_debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0) {
		enabled = sk_debug_enabled();
	}
	if (!enabled)
		return;
	va_start(ap, fmt);
	fputs("libshift: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
