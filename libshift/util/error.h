/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to libshift: filling the one error context, struct shift_error
 * (libshift/include/shift/util.h, util/error.c).  Each helper takes err
 * NULL (the caller did not ask) and returns r, so a failure reads
 *   return sk_error_set(err, -EINVAL, "unknown key");
 */
#ifndef LIBSHIFT_UTIL_ERROR_H
#define LIBSHIFT_UTIL_ERROR_H

#include <stdarg.h>

#include "shift/util.h"
#include "util/macros.h"

/*
 * Start err afresh: error = r, why = the formatted text; what, path, line
 * and column cleared.  Out of memory for the text leaves why NULL: the
 * errno still stands.
 */
int sk_error_set(struct shift_error *err, int r, const char *fmt, ...)
    _printf_(3, 4);
int sk_error_setv(struct shift_error *err, int r, const char *fmt, va_list ap)
    _printf_(3, 0);
/* As sk_error_set() without text: the errno says it. */
int sk_error_errno(struct shift_error *err, int r);
/* As sk_error_set(), about path (copied). */
int sk_error_set_path(struct shift_error *err, int r, const char *path,
		      const char *fmt, ...) _printf_(4, 5);
/* As sk_error_set(), at line and column (1-based; 0: unknown). */
int sk_error_set_line(struct shift_error *err, int r, unsigned line,
		      unsigned column, const char *fmt, ...) _printf_(5, 6);
/*
 * Add to an error already set (or set r without text when none is; r >= 0
 * changes nothing, so the result of a call can be passed through): the
 * path it is about when it names none yet (an inner failure's own path,
 * more precise, wins), and the step.  Return r.
 */
int sk_error_path(struct shift_error *err, int r, const char *path);
int sk_error_what(struct shift_error *err, int r, const char *what);
/* The reason (copied) when the error has none yet; returns r. */
int sk_error_why(struct shift_error *err, int r, const char *why);
/* The first failure wins: path and why (copied; either may be NULL) only
 * when err names neither yet.  Returns r. */
int sk_error_first(struct shift_error *err, int r, const char *path,
		   const char *why);
/* Move src's context into err (src is left cleared); returns r. */
int sk_error_move(struct shift_error *err, struct shift_error *src, int r);

#endif
