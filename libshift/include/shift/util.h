/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/util: untrusted names.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_UTIL_H
#define LIBSHIFT_SHIFT_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Untrusted names (libshift/util/escape.c)                                 */
/* ------------------------------------------------------------------ */

/*
 * Every file name, tar entry name or user name that reaches a message,
 * a --dry-run or -v line goes through these: bytes outside printable
 * ASCII and the backslash become \n, \t, \\ or \ooo (as in mtree(5)).
 * shift_escape_to() writes at most SIZE bytes with the terminating NUL
 * (never half an escape) and returns the full escaped length;
 * shift_escape() returns a malloc'd copy (NULL when out of memory).
 */
size_t shift_escape_to(char *buf, size_t size, const char *s);
char *shift_escape(const char *s);

#ifdef __cplusplus
}
#endif

#endif
