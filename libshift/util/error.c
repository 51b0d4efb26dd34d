/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one error context of libshift (docs/design.md "Errors"): a negative
 * errno is the result; struct shift_error, when the caller passes one,
 * says what failed, where and why, as crun's libcrun_error_t does.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void shift_error_clear(struct shift_error *err)
{
	if (!err)
		return;
	free(err->path);
	free(err->why);
	*err = (struct shift_error){0};
}

const char *shift_error_why(const struct shift_error *err, int r)
{
	if (err && err->why)
		return err->why;
	if (err && err->error)
		r = err->error;
	return strerror(r < 0 ? -r : r);
}

static int error_vset(struct shift_error *err, int r, const char *fmt,
		      va_list ap)
{
	char *why = NULL;

	if (!err)
		return r;
	/* errno is the caller's result too: formatting must not change it. */
	int saved = errno;

	if (fmt && vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	shift_error_clear(err);
	err->error = r;
	err->why = why;
	errno = saved;
	return r;
}

int sk_error_setv(struct shift_error *err, int r, const char *fmt, va_list ap)
{
	return error_vset(err, r, fmt, ap);
}

int sk_error_set(struct shift_error *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, r, fmt, ap);
	va_end(ap);
	return r;
}

int sk_error_errno(struct shift_error *err, int r)
{
	if (err) {
		shift_error_clear(err);
		err->error = r;
	}
	return r;
}

int sk_error_set_path(struct shift_error *err, int r, const char *path,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, r, fmt, ap);
	va_end(ap);
	if (err && path) {
		int saved = errno;

		err->path = strdup(path);
		errno = saved;
	}
	return r;
}

int sk_error_set_line(struct shift_error *err, int r, unsigned line,
		      unsigned column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, r, fmt, ap);
	va_end(ap);
	if (err) {
		err->line = line;
		err->column = column;
	}
	return r;
}

int sk_error_path(struct shift_error *err, int r, const char *path)
{
	if (!err || r >= 0)
		return r;
	if (!err->error)
		sk_error_errno(err, r);
	if (!err->path && path) {
		int saved = errno;

		err->path = strdup(path);
		errno = saved;
	}
	return r;
}

int sk_error_why(struct shift_error *err, int r, const char *why)
{
	if (!err || r >= 0)
		return r;
	if (!err->error)
		err->error = r;
	if (!err->why && why) {
		int saved = errno;

		err->why = strdup(why);
		errno = saved;
	}
	return r;
}

int sk_error_first(struct shift_error *err, int r, const char *path,
		   const char *why)
{
	if (!err || r >= 0 || err->path || err->why)
		return r;
	sk_error_errno(err, r);
	sk_error_why(err, r, why);
	return sk_error_path(err, r, path);
}

int sk_error_what(struct shift_error *err, int r, const char *what)
{
	if (!err || r >= 0)
		return r;
	if (!err->error)
		sk_error_errno(err, r);
	if (!err->what)
		err->what = what;
	return r;
}

int sk_error_move(struct shift_error *err, struct shift_error *src, int r)
{
	if (!err) {
		shift_error_clear(src);
		return r;
	}
	shift_error_clear(err);
	if (src) {
		*err = *src;
		*src = (struct shift_error){0};
	}
	if (!err->error)
		err->error = r;
	return r;
}
