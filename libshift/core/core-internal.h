/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: what core/ shares with the subsystems above it. */
#ifndef LIBSHIFT_CORE_INTERNAL_H
#define LIBSHIFT_CORE_INTERNAL_H

#include "shift/core.h"
#include "util/log.h"

/* acl.c: shift_acl_translate() with the overflow ids ([SHIFT_UID],
 * [SHIFT_GID]) of SHIFT_UNMAPPED_OVERFLOW.  With unique, -ENOTUNIQ and
 * nothing changed (nor reported) when the overflow id would give two
 * ACL_USER or two ACL_GROUP entries the same qualifier: an ACL no tool
 * accepts back (setfacl, acl_valid), and ambiguous. */
int sk_acl_translate(void *value, size_t len, const struct shift_idmap *map,
		     bool to_seen, enum shift_unmapped policy,
		     const uint32_t overflow[2], bool unique,
		     shift_unmapped_fn on_unmapped, void *userdata);

/* idmap.c: the delegation file shift_subid_read() reads for kind
 * ($SHIFT_SUBUID/$SHIFT_SUBGID or /etc/subuid, /etc/subgid). */
const char *sk_subid_file(enum shift_id_kind kind);

#endif
