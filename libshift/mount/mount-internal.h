/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift (and its unit tests): what mount/ shares. */
#ifndef LIBSHIFT_MOUNT_INTERNAL_H
#define LIBSHIFT_MOUNT_INTERNAL_H

#include <pthread.h>

#include "shift/mount.h"
#include "core/core-internal.h"

/* probe.c, for tests: how many idmap trials ran (cache misses), and
 * forgetting every cached per-filesystem answer. */
unsigned sk_probe_idmap_trials(void);
void sk_probe_cache_flush(void);
/* probe.c, for the other probe-*.c files: the lock of every cache, a
 * reason kept for the life of the process, the user namespace of
 * PROBE_MAP (created once, never closed), idmapping a detached mount
 * with it, and a number read from a /proc file. */
extern pthread_mutex_t sk_probe_lock;
const char *sk_probe_internf(const char *fmt, ...) _printf_(1, 2);
int sk_probe_userns(void);
int sk_probe_idmap_tree(int tree_fd, int userns_fd);
int sk_probe_read_long(const char *path, long *ret);
/* SHIFT_MOUNT_* flags as MOUNT_ATTR_* bits (mount.c). */
uint64_t sk_mount_attrs(unsigned flags);
/* The kernel's messages from an fs context, as debug lines (mount.c). */
void sk_fs_log(int fsfd);
/* The mount id of path relative to dfd, from statx (mount.c). */
int sk_mnt_id_of(int dfd, const char *path, uint64_t *ret);

/* The raw super options of an overlay mount (as in /proc/self/mountinfo,
 * octal escapes and all) into src (zeroed by the caller; free it with
 * shift_overlay_source_free).  -EBADMSG for options no overlay shows
 * (no lower layer, upper without work, lowerdir mixed with lowerdir+,
 * an empty layer). */
int sk_overlay_parse_options(const char *optstr,
			     struct shift_overlay_source *src);

#endif
