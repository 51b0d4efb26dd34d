/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets (verify.c): for a running container, which of its
 * mounts are idmapped (information, from /proc/PID/mountinfo).
 */
#include "config.h"

#include <libmount.h>
#include <stdio.h>
#include <string.h>

#include "verify/verify-internal.h"

static bool has_option(const char *optstr, const char *name)
{
	return optstr && mnt_optstr_get_option(optstr, name, NULL, NULL) == 0;
}

/* For a running container: which of its mounts are idmapped. */
int sk_verify_mounts(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_MOUNTS;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		struct libmnt_table *tb;
		struct libmnt_iter *it;
		struct libmnt_fs *fs;
		char path[64];
		unsigned total = 0, idm = 0;

		if (c->pid <= 0)
			continue;
		run->subject = c->name;
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)c->pid);
		tb = mnt_new_table_from_file(path);
		if (!tb) {
			/* asked to look at this process: not being able to is
			 * a failure, never a pass */
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "Failed to read '%s' (the process is gone?)",
				 path);
			if (r < 0)
				return r;
			continue;
		}
		it = mnt_new_iter(MNT_ITER_FORWARD);
		if (!it) {
			mnt_unref_table(tb);
			return -ENOMEM;
		}
		r = 0;
		while (r >= 0 && mnt_table_next_fs(tb, it, &fs) == 0) {
			const char *target = mnt_fs_get_target(fs);
			bool idmapped = has_option(mnt_fs_get_vfs_options(fs), "idmapped");
			bool viewed = false;
			size_t j;

			total++;
			if (idmapped)
				idm++;
			/* a mount that holds a view, or any idmapped one */
			for (j = 0; j < c->nviews; j++)
				if (target && !strcmp(target, c->views[j].path))
					viewed = true;
			if (!idmapped && !viewed)
				continue;
			r = sk_verify_emit(run, SHIFT_VERIFY_INFO, NULL, "%s (%s) is %sidmapped",
				 target ? target : "?", mnt_fs_get_fstype(fs) ?: "?",
				 idmapped ? "" : "not ");
		}
		if (r >= 0)
			r = sk_verify_emit(run, SHIFT_VERIFY_INFO, NULL,
				 "%u of %u mounts of process %d are idmapped", idm,
				 total, (int)c->pid);
		mnt_free_iter(it);
		mnt_unref_table(tb);
		if (r < 0)
			return r;
	}
	return 0;
}
