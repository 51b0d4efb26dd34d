/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inode-range passes: on ext4, for a journal too small for the tree, the
 * walk shifts the inodes in K ranges of inode numbers, one walk per range
 * (docs/shift-engine.md; docs/benchmarks.md, "The default journal").
 * Off unless LIBSHIFT_PASSES=K asks for it: measured, it cost more than
 * it saved.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/statfs.h>

#include "engine/engine-internal.h"

unsigned sk_walk_passes(const struct sk_engine *e, uint64_t *bounds)
{
	const char *v = secure_getenv("LIBSHIFT_PASSES");
	struct statfs sfs;
	unsigned k;

	if (!v || !e->ext4 || (e->opts->flags & SHIFT_DRY_RUN) ||
	    fstatfs(e->rootfd, &sfs) < 0)
		return 1;
	k = (unsigned)strtoul(v, NULL, 10);
	if (k <= 1)
		return 1;
	if (k > SK_PASSES_MAX)
		k = SK_PASSES_MAX;
	for (unsigned p = 0; p < k; p++)
		bounds[p] = 1 + (uint64_t)sfs.f_files * p / k;
	bounds[0] = 0;
	bounds[k] = UINT64_MAX;
	return k;
}
