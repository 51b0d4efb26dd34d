/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Probe (probe.c): what the host allows a caller, read rather than
 * tried: the sysctls that gate user namespaces and io_uring, and the
 * newuidmap/newgidmap helpers.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* Sysctls                                                             */
/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	const char *path;
} sysctls[] = {
    {"user.max_user_namespaces", "/proc/sys/user/max_user_namespaces"},
    {"user.max_mnt_namespaces", "/proc/sys/user/max_mnt_namespaces"},
    {"kernel.unprivileged_userns_clone",
     "/proc/sys/kernel/unprivileged_userns_clone"},
    {"kernel.apparmor_restrict_unprivileged_userns",
     "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"},
    {"kernel.io_uring_disabled", "/proc/sys/kernel/io_uring_disabled"},
    {"kernel.io_uring_group", "/proc/sys/kernel/io_uring_group"},
};

static const char *sysctl_meaning(unsigned idx, bool present, long v)
{
	switch (idx) {
	case 0:
		return !present ? "kernel without user namespaces"
		       : v == 0 ? "user namespaces disabled"
				: "user namespaces allowed (limit per user)";
	case 1:
		return !present ? "kernel without mount namespaces"
		       : v == 0 ? "mount namespaces disabled"
				: "mount namespaces allowed (limit per user)";
	case 2:
		return !present ? "not in this kernel (upstream allows "
				  "unprivileged user namespaces)"
		       : v == 0 ? "unprivileged user namespaces disabled"
				: "unprivileged user namespaces allowed";
	case 3:
		return !present ? "not in this kernel (no AppArmor restriction)"
		       : v == 0
			   ? "AppArmor does not restrict unprivileged user "
			     "namespaces"
			   : "AppArmor restricts unprivileged user namespaces";
	case 4:
		return !present ? "not in this kernel (io_uring, if built, is "
				  "open to all)"
		       : v == 0 ? "io_uring enabled for all"
		       : v == 1 ? "io_uring only for CAP_SYS_ADMIN and "
				  "kernel.io_uring_group"
				: "io_uring disabled for all";
	case 5:
		return !present ? "not in this kernel"
		       : v < 0
			   ? "no group may use io_uring when restricted"
			   : "group allowed to use io_uring when restricted";
	default:
		return NULL;
	}
}

int shift_probe_sysctl(unsigned idx, const char **ret_name, long *ret_value,
		       const char **ret_meaning)
{
	long v = -1;
	bool present;

	if (idx >= ARRAY_SIZE(sysctls))
		return -ERANGE;
	present = sk_probe_read_long(sysctls[idx].path, &v) == 0;
	if (ret_name)
		*ret_name = sysctls[idx].name;
	if (ret_value)
		*ret_value = present ? v : -1;
	if (ret_meaning)
		*ret_meaning = sysctl_meaning(idx, present, v);
	return present;
}

/* ------------------------------------------------------------------ */
/* newuidmap / newgidmap                                               */
/* ------------------------------------------------------------------ */

static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *dirs = NULL;
	char *saveptr = NULL, *d, *full;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	/* Also where distributions put them, whatever PATH says. */
	if (asprintf(&dirs, "%s:/usr/bin:/bin:/usr/sbin:/sbin", path) < 0)
		return NULL;
	for (d = strtok_r(dirs, ":", &saveptr); d;
	     d = strtok_r(NULL, ":", &saveptr)) {
		struct stat st;

		if (*d != '/')
			continue;
		if (asprintf(&full, "%s/%s", d, name) < 0)
			return NULL;
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
			return full;
		free(full);
	}
	return NULL;
}

int shift_probe_uidmap_helper(const char *name, char **ret_path,
			      bool *ret_setuid, char **ret_caps)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	cap_t caps;

	if (!name || strchr(name, '/'))
		return -EINVAL;
	path = find_in_path(name);
	if (!path)
		return 0;
	if (stat(path, &st) < 0)
		return negative_errno();
	if (ret_setuid)
		*ret_setuid = (st.st_mode & S_ISUID) && st.st_uid == 0;
	if (ret_caps) {
		*ret_caps = NULL;
		caps = cap_get_file(path);
		if (caps) {
			char *text = cap_to_text(caps, NULL);

			/* "=" is libcap's way of saying "no capabilities" */
			if (text && strcmp(text, "=") != 0)
				*ret_caps = strdup(text);
			cap_free(text);
			cap_free(caps);
		}
	}
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	return 1;
}
