/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: debug logging and helpers shared across modules. */
#ifndef LIBSHIFT_INTERNAL_H
#define LIBSHIFT_INTERNAL_H

#include "macros.h"
#include "shift.h"

/* Debug output on stderr when LIBSHIFT_DEBUG is set; never otherwise.
 * Internal symbols are named sk_*: the version script exports only shift_*. */
void sk_debug(const char *fmt, ...) _printf_(1, 2);

/* probe.c, for tests: how many idmap trials ran (cache misses), and
 * forgetting every cached per-filesystem answer. */
unsigned sk_probe_idmap_trials(void);
void sk_probe_cache_flush(void);

#endif
