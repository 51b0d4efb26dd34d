/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Probe (probe.c): can this mount be idmapped?  Tried on a detached
 * clone of it, the answer cached per filesystem.
 */
#include "config.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

#ifndef AT_NO_AUTOMOUNT
#define AT_NO_AUTOMOUNT 0x800
#endif

/* ------------------------------------------------------------------ */
/* Facts about a mount                                                 */
/* ------------------------------------------------------------------ */

struct mount_facts {
	bool found;
	bool idmapped;
	bool unbindable;
	dev_t devno;
	char fstype[64];
};

/* 0 when the kernel doesn't report mount ids (Linux < 5.8). */
static uint64_t statx_mnt_id(const struct statx *stx)
{
	if (!(stx->stx_mask & STATX_MNT_ID))
		return 0;
	return stx->stx_mnt_id;
}

/* Look a mount up by id in /proc/self/mountinfo. */
static void mount_facts(uint64_t mnt_id, struct mount_facts *ret)
{
	struct sk_mountinfo mi;

	if (!mnt_id || sk_mountinfo_by_id(mnt_id, &mi) < 0)
		return;
	ret->found = true;
	ret->devno = mi.devno;
	ret->idmapped = sk_mount_option_has(mi.vfs_options, "idmapped");
	ret->unbindable = strstr(mi.optional, "unbindable") != NULL;
	snprintf(ret->fstype, sizeof(ret->fstype), "%s", mi.fstype);
	sk_mountinfo_clear(&mi);
}

/* ------------------------------------------------------------------ */
/* Idmap support per filesystem                                        */
/* ------------------------------------------------------------------ */

struct fs_entry {
	struct fs_entry *next;
	dev_t dev;
	int result;
	const char *why;
};
static struct fs_entry *fs_cache;
static unsigned idmap_trials;

unsigned sk_probe_idmap_trials(void)
{
	unsigned n;

	pthread_mutex_lock(&sk_probe_lock);
	n = idmap_trials;
	pthread_mutex_unlock(&sk_probe_lock);
	return n;
}

void sk_probe_cache_flush(void)
{
	struct fs_entry *e;

	pthread_mutex_lock(&sk_probe_lock);
	while ((e = fs_cache)) {
		fs_cache = e->next;
		free(e);
	}
	pthread_mutex_unlock(&sk_probe_lock);
}

static bool cache_get(dev_t dev, int *result, const char **why)
{
	bool hit = false;

	pthread_mutex_lock(&sk_probe_lock);
	for (struct fs_entry *e = fs_cache; e; e = e->next)
		if (e->dev == dev) {
			*result = e->result;
			*why = e->why;
			hit = true;
			break;
		}
	pthread_mutex_unlock(&sk_probe_lock);
	return hit;
}

static void cache_put(dev_t dev, int result, const char *why)
{
	struct fs_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return; /* no cache, no harm */
	e->dev = dev;
	e->result = result;
	e->why = why;
	pthread_mutex_lock(&sk_probe_lock);
	e->next = fs_cache;
	fs_cache = e;
	pthread_mutex_unlock(&sk_probe_lock);
}

static bool have_cap_sys_admin(void)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (!caps)
		return geteuid() == 0;
	if (cap_get_flag(caps, CAP_SYS_ADMIN, CAP_EFFECTIVE, &v) < 0)
		v = CAP_CLEAR;
	cap_free(caps);
	return v == CAP_SET;
}

/*
 * The trial itself: a detached clone of the mount holding fd, idmapped.
 * Returns 1 / 0 with *why / negative errno like shift_probe_idmap().
 */
static int try_idmap(int fd, const struct mount_facts *mf, const char *fstype,
		     const char **why)
{
	_cleanup_close_ int tree = -EBADF;
	int userns, r;

	pthread_mutex_lock(&sk_probe_lock);
	idmap_trials++;
	pthread_mutex_unlock(&sk_probe_lock);

	tree = open_tree(fd, "",
			 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
			     AT_NO_AUTOMOUNT);
	if (tree < 0) {
		r = negative_errno();
		sk_debug("probe: open_tree(OPEN_TREE_CLONE): %s", strerror(-r));
		switch (r) {
		case -ENOSYS:
			*why = "kernel has no open_tree (Linux < 5.2)";
			return 0;
		case -EPERM:
			*why = "needs CAP_SYS_ADMIN";
			return 0;
		case -EINVAL:
			if (mf->unbindable) {
				*why =
				    "mount is unbindable and cannot be cloned";
				return 0;
			}
			*why =
			    sk_probe_internf("cannot clone the '%s' mount: %s",
					     fstype, strerror(EINVAL));
			return 0;
		default:
			return r;
		}
	}

	userns = sk_probe_userns();
	if (userns < 0)
		return userns;

	r = sk_probe_idmap_tree(tree, userns);
	sk_debug("probe: mount_setattr(MOUNT_ATTR_IDMAP) on %s: %s", fstype,
		 r < 0 ? strerror(-r) : "ok");
	switch (r) {
	case 0:
		*why = NULL;
		return 1;
	case -EINVAL:
		*why = sk_probe_internf(
		    "filesystem '%s' does not support idmapped mounts", fstype);
		return 0;
	case -ENOSYS:
		*why = "kernel has no mount_setattr (Linux < 5.12)";
		return 0;
	case -EPERM:
		if (mf->idmapped)
			*why = "already idmapped";
		else if (!have_cap_sys_admin())
			*why = "needs CAP_SYS_ADMIN";
		else
			*why = sk_probe_internf(
			    "filesystem '%s' belongs to a user "
			    "namespace the caller is not privileged in",
			    fstype);
		return 0;
	case -EOPNOTSUPP:
		*why = sk_probe_internf(
		    "filesystem '%s' does not support idmapped mounts", fstype);
		return 0;
	default:
		return r;
	}
}

/* A probe's answer with its detail: err->error -EOPNOTSUPP for a "no",
 * 0 for a "yes" (docs/design.md "Errors"). */
int sk_probe_answer(struct shift_error *err, int r, const char *reason)
{
	if (reason && r >= 0)
		sk_error_set(err, r == 0 ? -EOPNOTSUPP : 0, "%s", reason);
	return r;
}

int shift_probe_idmap(const char *path, struct shift_error *why)
{
	_cleanup_close_ int fd = -EBADF;
	struct mount_facts mf = {0};
	const char *fstype, *reason = NULL;
	struct statx stx;
	struct statfs sfs;
	dev_t dev;
	int r;

	if (!path || !*path)
		return sk_error_errno(why, -EINVAL);
	/* O_PATH: no automount is triggered, no device is opened. */
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return sk_error_set_path(why, negative_errno(), path, NULL);
	if (statx(fd, "", AT_EMPTY_PATH | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) <
	    0)
		return sk_error_set_path(why, negative_errno(), path, NULL);
	mount_facts(statx_mnt_id(&stx), &mf);
	/*
	 * The superblock's device from mountinfo, not st_dev of the path: a
	 * file inside an overlay reports its lower layer's device.
	 */
	dev =
	    mf.found ? mf.devno : makedev(stx.stx_dev_major, stx.stx_dev_minor);
	if (mf.fstype[0])
		fstype = mf.fstype;
	else if (fstatfs(fd, &sfs) == 0 &&
		 sk_fstype_by_magic((unsigned long)sfs.f_type))
		fstype = sk_fstype_by_magic((unsigned long)sfs.f_type);
	else
		fstype = "unknown";

	/* An idmapped or unbindable mount answers for itself only. */
	if (mf.idmapped || mf.unbindable)
		r = try_idmap(fd, &mf, fstype, &reason);
	else if (!cache_get(dev, &r, &reason)) {
		r = try_idmap(fd, &mf, fstype, &reason);
		if (r >= 0)
			cache_put(dev, r, reason);
	}
	if (r < 0)
		return sk_error_set_path(why, r, path, NULL);
	return sk_probe_answer(why, r, r == 0 ? reason : NULL);
}
