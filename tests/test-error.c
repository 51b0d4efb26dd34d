/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one error context: struct shift_error and its helpers. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "shift.h"
#include "util/error.h"
#include "lib.h"

TEST(null_err_returns_r)
{
	CHECK_EQ_INT(sk_error_set(NULL, -EINVAL, "x %d", 1), -EINVAL);
	CHECK_EQ_INT(sk_error_set_path(NULL, -ENOENT, "/p", "gone"), -ENOENT);
	CHECK_EQ_INT(sk_error_set_line(NULL, -EBADMSG, 3, 4, "bad"), -EBADMSG);
	CHECK_EQ_INT(sk_error_path(NULL, -EIO, "/p"), -EIO);
	CHECK_EQ_INT(sk_error_what(NULL, -EIO, "open"), -EIO);
	CHECK_EQ_INT(sk_error_errno(NULL, -EIO), -EIO);
	shift_error_clear(NULL);
	CHECK_EQ_STR(shift_error_why(NULL, -ENOENT), strerror(ENOENT));
}

TEST(set_formats_and_replaces)
{
	struct shift_error e = {0};

	CHECK_EQ_INT(sk_error_set_path(&e, -ENOENT, "/a", "no %s", "file"),
		     -ENOENT);
	CHECK_EQ_INT(e.error, -ENOENT);
	CHECK_EQ_STR(e.path, "/a");
	CHECK_EQ_STR(e.why, "no file");
	CHECK_EQ_STR(shift_error_why(&e, 0), "no file");
	/* A second set starts afresh: no stale path or line. */
	sk_error_set_line(&e, -EBADMSG, 7, 2, "unexpected '%c'", '}');
	CHECK(e.path == NULL);
	CHECK_EQ_INT(e.line, 7);
	CHECK_EQ_INT(e.column, 2);
	CHECK_EQ_STR(e.why, "unexpected '}'");
	sk_error_errno(&e, -EPERM);
	CHECK(e.why == NULL && e.line == 0);
	CHECK_EQ_STR(shift_error_why(&e, 0), strerror(EPERM));
	shift_error_clear(&e);
	CHECK(e.error == 0 && !e.path && !e.why);
	shift_error_clear(&e);
}

TEST(inner_path_wins)
{
	struct shift_error e = {0};

	/* Nothing set yet: path and what add to a bare errno. */
	sk_error_path(&e, -EACCES, "/outer");
	CHECK_EQ_INT(e.error, -EACCES);
	CHECK_EQ_STR(e.path, "/outer");
	shift_error_clear(&e);
	sk_error_set_path(&e, -EIO, "/inner/file", "short read");
	sk_error_path(&e, -EIO, "/outer");
	sk_error_what(&e, -EIO, "copy");
	CHECK_EQ_STR(e.path, "/inner/file");
	CHECK_EQ_STR(e.what, "copy");
	CHECK_EQ_STR(e.why, "short read");
	shift_error_clear(&e);
}

TEST(errno_preserved_and_move)
{
	struct shift_error a = {0}, b = {0};

	errno = EXDEV;
	sk_error_set_path(&a, -EINVAL, "/x", "why %s", "not");
	CHECK_EQ_INT(errno, EXDEV);
	CHECK_EQ_INT(sk_error_move(&b, &a, -EINVAL), -EINVAL);
	CHECK(a.error == 0 && !a.path && !a.why);
	CHECK_EQ_STR(b.path, "/x");
	CHECK_EQ_STR(b.why, "why not");
	/* An empty source still leaves the errno. */
	CHECK_EQ_INT(sk_error_move(&b, &a, -ENOMEM), -ENOMEM);
	CHECK_EQ_INT(b.error, -ENOMEM);
	CHECK(!b.why);
	shift_error_clear(&b);
}

TEST(first_failure_wins)
{
	struct shift_error e = {0};

	CHECK_EQ_INT(sk_error_first(&e, -EIO, "blob", "short read"), -EIO);
	CHECK_EQ_INT(sk_error_first(&e, -EINVAL, "other", "later"), -EINVAL);
	CHECK_EQ_STR(e.path, "blob");
	CHECK_EQ_STR(e.why, "short read");
	CHECK_EQ_INT(e.error, -EIO);
	/* why only when there is none; a success changes nothing */
	CHECK_EQ_INT(sk_error_why(&e, -EIO, "ignored"), -EIO);
	CHECK_EQ_STR(e.why, "short read");
	CHECK_EQ_INT(sk_error_path(&e, 0, "x"), 0);
	CHECK_EQ_INT(sk_error_why(&e, 1, "x"), 1);
	CHECK_EQ_STR(e.path, "blob");
	shift_error_clear(&e);
	sk_error_why(&e, -ENOENT, "gone");
	CHECK_EQ_INT(e.error, -ENOENT);
	CHECK_EQ_STR(e.why, "gone");
	CHECK(e.path == NULL);
	shift_error_clear(&e);
	CHECK_EQ_INT(sk_error_first(NULL, -EIO, "p", "w"), -EIO);
}

TEST_MAIN()
