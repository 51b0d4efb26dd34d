/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift (and its unit tests): what mount/ shares. */
#ifndef LIBSHIFT_MOUNT_INTERNAL_H
#define LIBSHIFT_MOUNT_INTERNAL_H

#include "shift/mount.h"
#include "core/core-internal.h"

/* probe.c, for tests: how many idmap trials ran (cache misses), and
 * forgetting every cached per-filesystem answer. */
unsigned sk_probe_idmap_trials(void);
void sk_probe_cache_flush(void);
/* SHIFT_MOUNT_* flags as MOUNT_ATTR_* bits (mount.c). */
uint64_t sk_mount_attrs(unsigned flags);
/* The kernel's messages from an fs context, as debug lines (mount.c). */
void sk_fs_log(int fsfd);
/* The mount id of path relative to dfd, from statx (mount.c). */
int sk_mnt_id_of(int dfd, const char *path, uint64_t *ret);
/* An overlay's upper or work dir: made 0755 uid:gid if missing, an empty
 * one given that owner and mode, a non-empty one left alone (mount.c).
 * follow: path may be a symlink to the directory. */
int sk_ensure_layer_dir(const char *path, uid_t uid, gid_t gid, bool follow);

/* The raw super options of an overlay mount (as in /proc/self/mountinfo,
 * octal escapes and all) into src (zeroed by the caller; free it with
 * shift_overlay_source_free).  -EBADMSG for options no overlay shows
 * (no lower layer, upper without work, lowerdir mixed with lowerdir+,
 * an empty layer). */
int sk_overlay_parse_options(const char *optstr,
			     struct shift_overlay_source *src);

#endif
