/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/util: the error model, untrusted names.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 *
 * Errors, one model for every public function (docs/design.md "Errors"):
 * a function returns a negative errno (a constructor: NULL with errno set)
 * and, where it can say more than the errno, fills an optional
 * struct shift_error * (its last parameter; NULL: not told) with what
 * failed, where (a path, file, layer entry or key), why (one line of text)
 * and, for parsers, the line and column.  Only the failing call fills it;
 * a caller owns it and frees it with shift_error_clear().  This is the
 * one channel: no function takes a char buffer, a static string
 * out-pointer or a struct of its own for its error.
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
/* Errors (libshift/util/error.c)                                     */
/* ------------------------------------------------------------------ */

struct shift_error {
	int error;	  /* the negative errno returned; 0: nothing was set */
	const char *what; /* static: the step that failed ("open", "parse"),
			     or NULL */
	char *path;	  /* malloc'd: the file, path, entry or key concerned,
			     or NULL; untrusted: escape before printing */
	char *why;	  /* malloc'd one-line reason, or NULL: strerror(-error)
			     says it all */
	unsigned line;	  /* parsers: 1-based line of the input, 0: none */
	unsigned column;  /* parsers: 1-based column, 0: none */
};
/* Free what err holds and zero it (err may be NULL; safe to repeat). */
void shift_error_clear(struct shift_error *err);
/*
 * The reason as one line: "why" when set, else strerror(-error) (or of r
 * when error is 0).  Static or owned by err: valid until it is cleared.
 */
const char *shift_error_why(const struct shift_error *err, int r);

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

/* ------------------------------------------------------------------ */
/* Files the user names (libshift/util/output.c)                       */
/* ------------------------------------------------------------------ */

/*
 * Writing a file the user named: shift_output_open() gives an fd to write;
 * shift_output_commit() makes it the file, shift_output_discard() drops
 * it.  A regular file or a free name is written atomically (a temporary
 * beside it, fsync'ed and renamed over it with mode); a device, FIFO or
 * socket is written in place and never replaced (/dev/null stays a
 * device); a symbolic link is followed (the link stays).  -EISDIR for a
 * directory, -ENOLINK for a link to nothing.
 */
struct shift_output {
	int fd;
	bool direct; /* written in place: a device, FIFO or socket */
	char *tmp;   /* the temporary (atomic case) */
	char *path;  /* what is written: the link's target when followed */
};
int shift_output_open(const char *path, struct shift_output *out);
int shift_output_commit(struct shift_output *out, mode_t mode);
void shift_output_discard(struct shift_output *out);

#ifdef __cplusplus
}
#endif

#endif
