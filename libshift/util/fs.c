/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filesystem helpers shared by every subsystem: one recursive remove, one
 * mkdir -p, one "is this directory empty" and one xattr-at (util/fs.h).
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "util/fs.h"
#include "util/macros.h"

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]));
}

int sk_rm_rf_children_at(int dfd, const char *name)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd, r;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (dot_or_dotdot(de->d_name))
			continue;
		r = sk_rm_rf_at(dirfd(d), de->d_name);
		if (r < 0)
			return r;
		errno = 0;
	}
	return errno ? negative_errno() : 0;
}

int sk_rm_rf_at(int dfd, const char *name)
{
	int r;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return negative_errno();
	r = sk_rm_rf_children_at(dfd, name);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
		return negative_errno();
	return 0;
}

int sk_mkdir_p_at(int dfd, const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		if (mkdirat(dfd, buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	if (mkdirat(dfd, buf, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

int sk_mkdir_p(const char *path, mode_t mode)
{
	return sk_mkdir_p_at(AT_FDCWD, path, mode);
}

int sk_dir_is_empty_at(int dfd, const char *name)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;

	/* A new open description: reading dfd itself would move its offset. */
	fd = openat(dfd, name && *name ? name : ".",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	errno = 0;
	while ((de = readdir(d)))
		if (!dot_or_dotdot(de->d_name))
			return 0;
	return errno ? negative_errno() : 1;
}

int sk_dir_is_empty(const char *path)
{
	return sk_dir_is_empty_at(AT_FDCWD, path);
}

/* /proc/self/fd/DFD[/NAME] into buf; whether the final component must be
 * followed (the magic link of dfd itself lands on the file, even a
 * symlink, without following it further). */
static int proc_path(char *buf, size_t size, int dfd, const char *name,
		     bool *follow)
{
	int n;

	if (dfd < 0)
		return -EBADF;
	*follow = !name || !*name;
	if (*follow)
		n = snprintf(buf, size, "/proc/self/fd/%d", dfd);
	else if (strchr(name, '/') || dot_or_dotdot(name))
		return -EINVAL;
	else
		n = snprintf(buf, size, "/proc/self/fd/%d/%s", dfd, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

ssize_t sk_xattr_get_at(int dfd, const char *name, const char *key, void *buf,
			size_t size)
{
	char p[32 + NAME_MAX];
	bool follow;
	ssize_t n;
	int r;

	r = proc_path(p, sizeof(p), dfd, name, &follow);
	if (r < 0)
		return r;
	n = follow ? getxattr(p, key, buf, size) : lgetxattr(p, key, buf, size);
	return n < 0 ? negative_errno() : n;
}

int sk_xattr_set_at(int dfd, const char *name, const char *key,
		    const void *value, size_t len, int flags)
{
	char p[32 + NAME_MAX];
	bool follow;
	int r;

	r = proc_path(p, sizeof(p), dfd, name, &follow);
	if (r < 0)
		return r;
	r = follow ? setxattr(p, key, value, len, flags)
		   : lsetxattr(p, key, value, len, flags);
	return r < 0 ? negative_errno() : 0;
}

int sk_xattr_remove_at(int dfd, const char *name, const char *key)
{
	char p[32 + NAME_MAX];
	bool follow;
	int r;

	r = proc_path(p, sizeof(p), dfd, name, &follow);
	if (r < 0)
		return r;
	r = follow ? removexattr(p, key) : lremovexattr(p, key);
	return r < 0 ? negative_errno() : 0;
}
