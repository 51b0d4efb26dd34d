/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: temporary directories committed by rename, and the flat unpack.
 * (libshift/oci/layer-internal.h has the shared context; the whole
 * design is at the top of layer-internal.h and in docs/oci.md.)
 */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>

#include "oci/layer-internal.h"
#include "util/fs.h"
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* Temporary directories, committed by rename                          */

/*
 * Temporaries are locked: the unpack that makes one holds flock(LOCK_EX)
 * on it until it is renamed into place or removed, so one that nobody
 * holds was left by an interrupted run (SIGKILL, a crash, a power loss)
 * and may go.  A cleaner may take a directory between our mkdtemp() and
 * our lock, so after locking we check that its name still leads to the
 * directory we hold, and try again with a new name if not.
 */
int sk_layer_mkdtemp_locked(char *templ, int *ret_fd)
{
	_cleanup_free_ char *pattern = strdup(templ);

	if (!pattern)
		return -ENOMEM;
	for (int tries = 0; tries < 8; tries++) {
		struct stat a, b;
		int fd;

		strcpy(templ, pattern);
		if (!mkdtemp(templ))
			return negative_errno();
		fd = open(templ,
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 &&
		    lstat(templ, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			*ret_fd = fd;
			return 0;
		}
		safe_close(fd);
	}
	return -EBUSY;
}

/*
 * Remove the stale temporaries in dir: entries starting with prefix
 * (all, for "") that are directories nobody holds locked.  Returns the
 * number removed (or, sk_layer_dry, that would be).
 */
int sk_layer_remove_stale(const char *dir, const char *prefix, bool dry_run,
			  void (*on_remove)(const struct shift_layer_gc_event *,
					    void *),
			  void *userdata)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	size_t plen = strlen(prefix);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		int fd, r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    strncmp(de->d_name, prefix, plen))
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			/* A running unpack's. */
			safe_close(fd);
			continue;
		}
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			safe_close(fd);
			return -ENOMEM;
		}
		if (on_remove)
			on_remove(
			    &(struct shift_layer_gc_event){.kind = "temporary",
							   .path = path},
			    userdata);
		sk_debug("removing the stale temporary '%s'", path);
		r = dry_run ? 0 : sk_rm_rf_at(dirfd(d), de->d_name);
		safe_close(fd);
		if (r < 0)
			return r;
		n++;
	}
	return n;
}

/*
 * "DIR/.NAME.shift-layer-XXXXXX" beside path, made and locked: the path
 * in *ret_tmp, the locked fd in *ret_fd.  Stale ones of earlier runs for
 * the same destination are removed first.
 */
static int temp_beside(const char *path, char **ret_tmp, int *ret_fd)
{
	_cleanup_free_ char *copy = strdup(path), *prefix = NULL;
	char *slash, *t = NULL;
	const char *dir, *base;
	int r;

	if (!copy)
		return -ENOMEM;
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		dir = *copy ? copy : "/";
		base = slash + 1;
	} else {
		dir = ".";
		base = copy;
	}
	if (asprintf(&prefix, ".%s.shift-layer-", base) < 0)
		return -ENOMEM;
	r = sk_layer_remove_stale(dir, prefix, false, NULL, NULL);
	if (r < 0)
		sk_debug("cannot remove stale temporaries in '%s': %s", dir,
			 strerror(-r));
	if (asprintf(&t, "%s/%sXXXXXX", dir, prefix) < 0)
		return -ENOMEM;
	r = sk_layer_mkdtemp_locked(t, ret_fd);
	if (r < 0) {
		free(t);
		return r;
	}
	*ret_tmp = t;
	return 0;
}

uint64_t sk_layer_blobs_total(const struct shift_oci_image *img)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < img->n_layers; i++)
		t += img->layers[i].size;
	return t;
}

int shift_layer_unpack_flat_opts(const struct shift_oci_image *img,
				 const char *dest,
				 const struct shift_idmap *map,
				 const struct shift_layer_opts *opts,
				 struct shift_error *diag)
{
	struct xctx x = {
	    .rootfd = -EBADF,
	    .pcache_fd = -EBADF,
	    .mode = XMODE_FLAT,
	    .map = map,
	    .diag = diag,
	};
	_cleanup_free_ char *tmp = NULL;
	struct stat st;
	int r = 0;

	if (!img || !dest)
		return -EINVAL;
	if (opts) {
		x.flags = opts->flags;
		x.cancel = opts->cancel;
		x.on_entry = opts->on_entry;
		x.userdata = opts->userdata;
	}
	x.bytes_total = sk_layer_blobs_total(img);
	if (stat(dest, &st) == 0 &&
	    (!S_ISDIR(st.st_mode) || sk_dir_is_empty(dest) != 1))
		return sk_layer_fail(
		    &x, -EEXIST, dest,
		    "destination exists and is not an empty directory");
	if (sk_layer_dry(&x)) {
		/* Nothing made: every layer read and checked. */
		for (unsigned i = 0; r >= 0 && i < img->n_layers; i++)
			r = sk_layer_extract_layer(&x, img, i);
		sk_layer_xctx_done(&x);
		return r < 0 ? r : 0;
	}
	r = temp_beside(dest, &tmp, &x.rootfd);
	if (r < 0)
		return sk_layer_fail(
		    &x, r, dest,
		    "cannot create a temporary directory beside it");
	r = sk_layer_init_root(&x);
	for (unsigned i = 0; r >= 0 && i < img->n_layers; i++)
		r = sk_layer_extract_layer(&x, img, i);
	if (r >= 0 && x.cancel && *x.cancel)
		r = sk_layer_fail(&x, -ECANCELED, dest, "interrupted");
	if (r >= 0 && rename(tmp, dest) < 0)
		r = sk_layer_fail(&x, negative_errno(), dest,
				  "cannot move the unpacked tree into place");
	sk_layer_xctx_done(&x);
	/* Removed while still locked: no cleaner takes it meanwhile. */
	if (r < 0)
		(void)sk_layer_rm_rf(tmp);
	safe_close(x.rootfd);
	return r < 0 ? r : 0;
}

int shift_layer_unpack_flat(const struct shift_oci_image *img, const char *dest,
			    const struct shift_idmap *map, unsigned flags,
			    struct shift_error *diag)
{
	struct shift_layer_opts o = {.flags = flags};

	return shift_layer_unpack_flat_opts(img, dest, map, &o, diag);
}
