/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: debug logging (util/log.c). */
#ifndef LIBSHIFT_UTIL_LOG_H
#define LIBSHIFT_UTIL_LOG_H

#include <stdbool.h>

#include "util/macros.h"

/* Debug output on stderr when LIBSHIFT_DEBUG is set; never otherwise.
 * Internal symbols are named sk_*: the version script exports only shift_*. */
void sk_debug(const char *fmt, ...) _printf_(1, 2);
/* Whether LIBSHIFT_DEBUG asks for it (read anew on every call). */
bool sk_debug_enabled(void);

#endif
