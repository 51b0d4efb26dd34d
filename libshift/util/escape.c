/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Untrusted names (file names from a tree or a tar archive, user names
 * from /etc/subuid) printed safely: a container must not be able to forge
 * log lines or drive the terminal with a crafted name.  Every byte outside
 * printable ASCII, and the backslash, becomes a C-style escape (\n, \t,
 * \\, or \ooo), the way mtree(5) and shift-verify's manifests write paths.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shift/util.h"
#include "util/log.h"

static size_t escape_one(unsigned char c, char out[5])
{
	if (c == '\\') {
		memcpy(out, "\\\\", 2);
		return 2;
	}
	if (c == '\n') {
		memcpy(out, "\\n", 2);
		return 2;
	}
	if (c == '\t') {
		memcpy(out, "\\t", 2);
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = (char)('0' + ((c >> 6) & 7));
	out[2] = (char)('0' + ((c >> 3) & 7));
	out[3] = (char)('0' + (c & 7));
	return 4;
}

size_t shift_escape_to(char *buf, size_t size, const char *s)
{
	size_t n = 0, w = 0; /* escaped length, bytes written */
	bool room = buf && size > 0;
	char tmp[5];

	if (!s)
		s = "(null)";
	for (; *s; s++) {
		size_t k = escape_one((unsigned char)*s, tmp);

		/* Never cut an escape in half: stop at the last whole one. */
		if (room && w + k < size) {
			memcpy(buf + w, tmp, k);
			w += k;
		} else
			room = false;
		n += k;
	}
	if (buf && size > 0)
		buf[w] = '\0';
	return n;
}

char *shift_escape(const char *s)
{
	size_t n = shift_escape_to(NULL, 0, s);
	char *r = malloc(n + 1);

	if (!r)
		return NULL;
	shift_escape_to(r, n + 1, s);
	return r;
}
