/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: debug logging and helpers shared across modules. */
#ifndef LIBSHIFT_INTERNAL_H
#define LIBSHIFT_INTERNAL_H

#include "macros.h"
#include "shift.h"

/* Debug output on stderr when LIBSHIFT_DEBUG is set; never otherwise.
 * Internal symbols are named sk_*: the version script exports only shift_*. */
void sk_debug(const char *fmt, ...) _printf_(1, 2);

/* acl.c: shift_acl_translate() with the overflow ids ([SHIFT_UID],
 * [SHIFT_GID]) of SHIFT_UNMAPPED_OVERFLOW.  With unique, -ENOTUNIQ and
 * nothing changed (nor reported) when the overflow id would give two
 * ACL_USER or two ACL_GROUP entries the same qualifier: an ACL no tool
 * accepts back (setfacl, acl_valid), and ambiguous. */
int sk_acl_translate(void *value, size_t len, const struct shift_idmap *map,
		     bool to_seen, enum shift_unmapped policy,
		     const uint32_t overflow[2], bool unique,
		     shift_unmapped_fn on_unmapped, void *userdata);

/* probe.c, for tests: how many idmap trials ran (cache misses), and
 * forgetting every cached per-filesystem answer. */
unsigned sk_probe_idmap_trials(void);
void sk_probe_cache_flush(void);
/* SHIFT_MOUNT_* flags as MOUNT_ATTR_* bits (libshift/mount.c). */
uint64_t sk_mount_attrs(unsigned flags);
/* The kernel's messages from an fs context, as debug lines (mount.c). */
void sk_fs_log(int fsfd);
/* The mount id of path relative to dfd, from statx (mount.c). */
int sk_mnt_id_of(int dfd, const char *path, uint64_t *ret);

#endif
