/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util/fs.c and util/le.h: the helpers every subsystem shares. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/le.h"
#include "util/macros.h"
#include "lib.h"

static char base[PATH_MAX];

static int scratch(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/test-fs.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		return -errno;
	return open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void scratch_done(int dfd)
{
	_cleanup_close_ int parent =
	    open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	safe_close(dfd);
	CHECK_EQ_INT(sk_rm_rf_at(parent, base + 1), 0);
}

TEST(le_codec_round_trip)
{
	unsigned char b[7] = {0};

	sk_put_le32(b + 1, 0x11223344u); /* unaligned on purpose */
	sk_put_le16(b + 5, 0xa1b2);
	CHECK_EQ_INT(b[1], 0x44);
	CHECK_EQ_INT(b[4], 0x11);
	CHECK_EQ_INT(b[5], 0xb2);
	CHECK_EQ_INT(sk_get_le32(b + 1), 0x11223344u);
	CHECK_EQ_INT(sk_get_le16(b + 5), 0xa1b2);
}

TEST(mkdir_p_dir_is_empty_rm_rf)
{
	int dfd = scratch();
	struct stat st;

	CHECK(dfd >= 0);
	if (dfd < 0)
		return;
	CHECK_EQ_INT(sk_mkdir_p_at(dfd, "a//b/c/", 0700), 0);
	CHECK_EQ_INT(sk_mkdir_p_at(dfd, "a/b/c", 0700), 0); /* exists: fine */
	CHECK_EQ_INT(fstatat(dfd, "a/b/c", &st, 0), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ_INT(sk_mkdir_p_at(dfd, "", 0700), -EINVAL);
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, "a/b/c"), 1);
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, "a"), 0);
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, NULL), 0);
	CHECK_EQ_INT(symlinkat("a", dfd, "link"), 0);
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, "link"), -ENOTDIR);
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, "missing"), -ENOENT);

	/* The symlink is removed, not followed: a/ survives. */
	CHECK_EQ_INT(symlinkat("../..", dfd, "a/b/up"), 0);
	CHECK_EQ_INT(sk_rm_rf_at(dfd, "link"), 0);
	CHECK_EQ_INT(fstatat(dfd, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
	CHECK_EQ_INT(sk_rm_rf_at(dfd, "a"), 0);
	CHECK_EQ_INT(fstatat(dfd, "a", &st, AT_SYMLINK_NOFOLLOW), -1);
	CHECK_EQ_INT(sk_rm_rf_at(dfd, "a"), 0); /* missing: success */
	CHECK_EQ_INT(sk_dir_is_empty_at(dfd, NULL), 1);
	scratch_done(dfd);
}

TEST(xattr_at_never_follows_the_name)
{
	int dfd = scratch();
	_cleanup_close_ int pfd = -EBADF;
	char v[16];
	ssize_t n;

	CHECK(dfd >= 0);
	if (dfd < 0)
		return;
	CHECK_EQ_INT(mkdirat(dfd, "d", 0700), 0);
	CHECK_EQ_INT(symlinkat("d", dfd, "l"), 0);
	n = sk_xattr_set_at(dfd, "d", "user.t", "on-d", 4, 0);
	if (n == -EOPNOTSUPP) {
		scratch_done(dfd);
		SKIP("no user xattrs on TMPDIR");
	}
	CHECK_EQ_INT(n, 0);
	n = sk_xattr_get_at(dfd, "d", "user.t", v, sizeof(v));
	CHECK_EQ_INT(n, 4);
	CHECK(n == 4 && !memcmp(v, "on-d", 4));
	CHECK_EQ_INT(sk_xattr_get_at(dfd, "d", "user.t", NULL, 0), 4);
	/* At the symlink: its own (absent) xattrs, never the target's. */
	CHECK_EQ_INT(sk_xattr_get_at(dfd, "l", "user.t", v, sizeof(v)),
		     -ENODATA);
	CHECK_EQ_INT(sk_xattr_get_at(dfd, "d/x", "user.t", v, sizeof(v)),
		     -EINVAL);
	CHECK_EQ_INT(sk_xattr_get_at(dfd, "..", "user.t", v, sizeof(v)),
		     -EINVAL);
	/* dfd itself, also as an O_PATH fd. */
	pfd = openat(dfd, "d", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	CHECK(pfd >= 0);
	CHECK_EQ_INT(sk_xattr_get_at(pfd, NULL, "user.t", v, sizeof(v)), 4);
	CHECK_EQ_INT(sk_xattr_remove_at(pfd, "", "user.t"), 0);
	CHECK_EQ_INT(sk_xattr_get_at(dfd, "d", "user.t", v, sizeof(v)),
		     -ENODATA);
	CHECK_EQ_INT(sk_xattr_get_at(-1, "d", "user.t", v, sizeof(v)), -EBADF);
	scratch_done(dfd);
}

TEST_MAIN()
