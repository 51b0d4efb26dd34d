/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets (verify.c): for a running container, which of its
 * mounts are idmapped (information, from /proc/PID/mountinfo, read by
 * mount/mountinfo.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mount/mount-internal.h"
#include "verify/verify-internal.h"

struct mounts_of {
	struct vrun *run;
	const struct vcontainer *c;
	unsigned total, idmapped;
};

static int one_mount(const struct sk_mountinfo *mi, void *userdata)
{
	struct mounts_of *m = userdata;
	bool idmapped = sk_mount_option_has(mi->vfs_options, "idmapped");
	bool viewed = false;
	int r;

	m->total++;
	if (idmapped)
		m->idmapped++;
	/* a mount that holds a view, or any idmapped one */
	for (size_t j = 0; j < m->c->nviews; j++)
		if (!strcmp(mi->target, m->c->views[j].path))
			viewed = true;
	if (!idmapped && !viewed)
		return 0;
	r = sk_verify_emit(m->run, SHIFT_VERIFY_INFO, NULL,
			   "%s (%s) is %sidmapped", mi->target,
			   mi->fstype[0] ? mi->fstype : "?",
			   idmapped ? "" : "not ");
	return r < 0 ? r : 0;
}

/* For a running container: which of its mounts are idmapped. */
int sk_verify_mounts(struct vset *s, struct vrun *run)
{
	int r;

	run->check = SHIFT_VERIFY_MOUNTS;
	for (size_t i = 0; i < s->ncs; i++) {
		struct mounts_of m = { .run = run, .c = &s->cs[i] };
		char path[64];

		if (m.c->pid <= 0)
			continue;
		run->subject = m.c->name;
		snprintf(path, sizeof(path), "/proc/%d/mountinfo",
			 (int)m.c->pid);
		r = sk_mountinfo_foreach(path, one_mount, &m);
		if (r == -ENOMEM)
			return r;
		if (r < 0 && !m.total) {
			/* asked to look at this process: not being able to is
			 * a failure, never a pass */
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
					   "Failed to read '%s' (the process is gone?)",
					   path);
			if (r < 0)
				return r;
			continue;
		}
		if (r < 0)
			return r;
		r = sk_verify_emit(run, SHIFT_VERIFY_INFO, NULL,
				   "%u of %u mounts of process %d are idmapped",
				   m.idmapped, m.total, (int)m.c->pid);
		if (r < 0)
			return r;
	}
	return 0;
}
