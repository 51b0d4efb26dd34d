/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Probe: what this kernel and each mount can do, found by trying.
 *
 * Nothing here looks at the kernel version.  Every answer comes from doing
 * the real thing on something throwaway: a detached clone of a mount (gone
 * when its fd is closed), a detached tmpfs, a forked child in a private
 * mount namespace.  The idmap answer is cached per filesystem (the device
 * number of the superblock), the kernel features once per process.
 *
 * Reasons handed out are never freed: they are "static" to the caller for
 * the life of the process (an interned, deduplicated list).
 *
 * The files, one job each (what they share in mount-internal.h):
 *   probe.c           the lock, interned reasons, the probe's user
 *                     namespace, reading a number from /proc
 *   probe-fs.c        idmapped mounts per filesystem, found by trying
 *   probe-features.c  kernel features, found by trying (once)
 *   probe-host.c      what the host allows a caller: sysctls, the
 *                     newuidmap/newgidmap helpers
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mount/mount-internal.h"
#include "util/syscalls.h"

/* The map xfstests probes with: container root is host uid/gid 1000. */
#define PROBE_MAP "b:0:1000:1"

pthread_mutex_t sk_probe_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ */
/* Interned reasons                                                    */
/* ------------------------------------------------------------------ */

struct reason {
	struct reason *next;
	char text[];
};
static struct reason *reasons;

/* Call with sk_probe_lock held. */
static const char *intern_locked(const char *s)
{
	struct reason *r;
	size_t len = strlen(s);

	for (r = reasons; r; r = r->next)
		if (strcmp(r->text, s) == 0)
			return r->text;
	r = malloc(sizeof(*r) + len + 1);
	if (!r)
		return "out of memory";
	memcpy(r->text, s, len + 1);
	r->next = reasons;
	reasons = r;
	return r->text;
}

const char *sk_probe_internf(const char *fmt, ...)
{
	char buf[512];
	const char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&sk_probe_lock);
	s = intern_locked(buf);
	pthread_mutex_unlock(&sk_probe_lock);
	return s;
}

/* ------------------------------------------------------------------ */
/* The probe's user namespace                                          */
/* ------------------------------------------------------------------ */

static int probe_userns_fd = -EBADF;

/* The namespace for PROBE_MAP, created once per process (not closed). */
int sk_probe_userns(void)
{
	struct shift_idmap *map;
	int fd;

	pthread_mutex_lock(&sk_probe_lock);
	if (probe_userns_fd >= 0) {
		fd = probe_userns_fd;
		goto out;
	}
	map = shift_idmap_new();
	if (!map) {
		fd = -ENOMEM;
		goto out;
	}
	fd = shift_idmap_parse(map, PROBE_MAP, NULL);
	if (fd >= 0)
		fd = shift_userns_create(map);
	shift_idmap_free(map);
	if (fd >= 0)
		probe_userns_fd = fd;
	else
		sk_debug("probe: cannot create the probe user namespace: %s",
			 strerror(-fd));
out:
	pthread_mutex_unlock(&sk_probe_lock);
	return fd;
}

int sk_probe_idmap_tree(int tree_fd, int userns_fd)
{
	struct mount_attr attr = {
	    .attr_set = MOUNT_ATTR_IDMAP,
	    .userns_fd = (uint64_t)userns_fd,
	};

	if (mount_setattr(tree_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		return negative_errno();
	return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers for the feature tests                                 */
/* ------------------------------------------------------------------ */

int sk_probe_read_long(const char *path, long *ret)
{
	FILE *f;
	long v;
	int n;

	f = fopen(path, "re");
	if (!f)
		return negative_errno();
	n = fscanf(f, "%ld", &v);
	fclose(f);
	if (n != 1)
		return -EIO;
	*ret = v;
	return 0;
}
