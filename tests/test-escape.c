/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Untrusted names are escaped before they reach a terminal or a log. */
#include "config.h"

#include "shift.h"
#include "lib.h"

TEST(plain_names_unchanged)
{
	char *s = shift_escape("etc/passwd with spaces");

	CHECK_EQ_STR(s, "etc/passwd with spaces");
	free(s);
}

TEST(controls_newlines_and_backslash)
{
	char *s = shift_escape("a\nb\tc\\d\033[31m\x7f\xc3\xa9");

	CHECK_EQ_STR(s, "a\\nb\\tc\\\\d\\033[31m\\177\\303\\251");
	free(s);
}

TEST(truncation_keeps_whole_escapes)
{
	char buf[6];
	size_t n = shift_escape_to(buf, sizeof(buf), "ab\033cd");

	/* "ab\033cd" escapes to 8 bytes; 5 fit, but "\033" would be cut. */
	CHECK_EQ_INT(n, 8);
	CHECK_EQ_STR(buf, "ab");
	n = shift_escape_to(NULL, 0, "x\n");
	CHECK_EQ_INT(n, 3);
}

TEST_MAIN()
