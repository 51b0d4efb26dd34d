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
/* A probe's 1/0 answer with its reason in err (probe-fs.c). */
int sk_probe_answer(struct shift_error *err, int r, const char *reason);
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

/*
 * The mount table (mountinfo.c, the one reader of mountinfo).  Strings are
 * malloc'd; root and target with the kernel's \ooo escapes undone,
 * super_raw exactly as the kernel wrote it (overlay layers keep their
 * escaped ','); optional: the optional fields, space-separated.
 */
struct sk_mountinfo {
	uint64_t id, parent;
	dev_t devno; /* the superblock's device (MAJ:MIN) */
	char *root, *target, *fstype, *vfs_options, *super_raw, *optional;
};
void sk_mountinfo_clear(struct sk_mountinfo *mi);
/* fn per mount, in table order; a non-zero return stops and is returned.
 * mi is valid during the call only. */
typedef int (*sk_mountinfo_fn)(const struct sk_mountinfo *mi, void *userdata);
/* path NULL: /proc/self/mountinfo. */
int sk_mountinfo_foreach(const char *path, sk_mountinfo_fn fn, void *userdata);
/* The same from an open mountinfo (fd not consumed; read from its offset). */
int sk_mountinfo_foreach_fd(int fd, sk_mountinfo_fn fn, void *userdata);
/* The mount with this id in /proc/self/mountinfo, or -ENOENT. */
int sk_mountinfo_by_id(uint64_t id, struct sk_mountinfo *ret);
/* Whether a comma-separated option string holds option name. */
bool sk_mount_option_has(const char *optstr, const char *name);
/* s[0..len) with \ooo escapes undone (malloc'd; NULL on ENOMEM). */
char *sk_unescape_octal(const char *s, size_t len);
/* A filesystem's name for its statfs magic, NULL when unknown. */
const char *sk_fstype_by_magic(unsigned long magic);

/* The raw super options of an overlay mount (as in /proc/self/mountinfo,
 * octal escapes and all) into src (zeroed by the caller; free it with
 * shift_overlay_source_free).  -EBADMSG for options no overlay shows
 * (no lower layer, upper without work, lowerdir mixed with lowerdir+,
 * an empty layer). */
int sk_overlay_parse_options(const char *optstr,
			     struct shift_overlay_source *src);

#endif
