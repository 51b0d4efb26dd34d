/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift_copy_tree() and hard links in number: every further name of an
 * inode becomes a link to its copy, found through a hash index (a scan of
 * every link seen so far was quadratic in the number of linked inodes).
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shift.h"
#include "lib.h"

#define INODES 1000 /* past several growths of the index */

TEST(many_hard_links)
{
	const char *base = test_scratch("test-copy");
	char src[PATH_MAX], dst[PATH_MAX], a[PATH_MAX + 32], b[PATH_MAX + 32];
	struct shift_error err = {0};
	struct stat sa, sb;
	int r;

	CHECK(base != NULL);
	if (!base)
		return;
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	CHECK_EQ_INT(mkdir(src, 0755), 0);
	for (int i = 0; i < INODES; i++) {
		int fd;

		snprintf(a, sizeof(a), "%s/f%d", src, i);
		snprintf(b, sizeof(b), "%s/g%d", src, i);
		fd = open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		CHECK(fd >= 0 && dprintf(fd, "%d\n", i) > 0 && close(fd) == 0);
		CHECK_EQ_INT(link(a, b), 0);
	}
	r = shift_copy_tree(src, dst, NULL, 0, &err);
	if (r < 0)
		printf("#   copy: %s (%s): %d\n", err.why ? err.why : "?",
		       err.path ? err.path : "", r);
	shift_error_clear(&err);
	CHECK_EQ_INT(r, 0);
	for (int i = 0; r == 0 && i < INODES; i++) {
		snprintf(a, sizeof(a), "%s/f%d", dst, i);
		snprintf(b, sizeof(b), "%s/g%d", dst, i);
		CHECK(stat(a, &sa) == 0 && stat(b, &sb) == 0);
		/* one inode per pair, never one shared by two pairs */
		CHECK(sa.st_ino == sb.st_ino && sa.st_nlink == 2);
	}
}

TEST_MAIN()
