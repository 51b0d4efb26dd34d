/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to libshift: small fd-relative filesystem helpers (util/fs.c).
 * All return 0 (or a count/bool as documented) on success and a negative
 * errno on failure; none follows a symlink in the name it is given.
 */
#ifndef LIBSHIFT_UTIL_FS_H
#define LIBSHIFT_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Remove name below dfd and, for a directory, everything in it; symlinks
 * are removed, never followed.  A missing name is success. */
int sk_rm_rf_at(int dfd, const char *name);
/* Everything in the directory name below dfd, the directory itself kept. */
int sk_rm_rf_children_at(int dfd, const char *name);

/* mkdir -p: create path (relative to dfd, or absolute) and its missing
 * parents with mode; existing directories are fine. */
int sk_mkdir_p_at(int dfd, const char *path, mode_t mode);
int sk_mkdir_p(const char *path, mode_t mode);

/* 1 if the directory name below dfd (NULL or "": dfd itself) holds no
 * entry besides . and .., 0 if it holds one, negative errno otherwise
 * (-ENOTDIR for a non-directory, -ELOOP for a symlink). */
int sk_dir_is_empty_at(int dfd, const char *name);
int sk_dir_is_empty(const char *path);

/*
 * One xattr of name below dfd, without following a symlink at name: through
 * /proc/self/fd/DFD/NAME, so it works for symlinks and special files that
 * can't be opened.  name NULL or "" means the file dfd refers to (an O_PATH
 * fd too).  name must be a single component (-EINVAL otherwise).
 * sk_xattr_get_at returns the value's size (buf NULL/size 0: just the size).
 */
ssize_t sk_xattr_get_at(int dfd, const char *name, const char *key, void *buf,
			size_t size);
int sk_xattr_set_at(int dfd, const char *name, const char *key,
		    const void *value, size_t len, int flags);
int sk_xattr_remove_at(int dfd, const char *name, const char *key);

#endif
