/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: shifted copies of a stored layer (where its filesystem can't be
 * idmapped). (libshift/oci/layer-internal.h has the shared context; the whole
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
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* Mounting                                                            */

/*
 * Shifted copies: the canonical layer copied inode by inode and shifted on
 * the way by the engine (shift_copy_tree(), the copy shift-mount
 * --fallback=copy makes too).
 */
static int copy_shifted(const char *src, const char *dst,
			const struct shift_idmap *map, struct shift_error *diag)
{
	_cleanup_(shift_error_clear) struct shift_error e = {0};
	int r;

	r = shift_copy_tree(src, dst, map, 0, &e);
	sk_error_path(diag, r, e.path ? e.path : ".");
	sk_error_why(diag, r,
		     r == -ERANGE
			 ? "an id in the layer has no image under the map"
			 : e.why);
	return r;
}

/* STORE/shifted/KEY/sha256/HEX from the canonical layer, if missing. */
int sk_layer_store_shifted(const struct shift_oci_image *img, unsigned i,
			   const char *store, const struct shift_idmap *map,
			   const char *key, struct shift_error *diag)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_free_ char *final = sk_layer_layer_dir(store, key, l->digest);
	_cleanup_free_ char *canon = sk_layer_layer_dir(store, NULL, l->digest);
	_cleanup_free_ char *tmp = NULL, *src = NULL, *dst = NULL;
	_cleanup_free_ char *mstr = shift_idmap_to_string(map);
	_cleanup_free_ char *parent = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct stat st;
	int r;

	if (!final || !canon || !mstr)
		return -ENOMEM;
	if (stat(final, &st) == 0)
		return 0;
	if (asprintf(&tmp, "%s/tmp/%s.XXXXXX", store, l->digest + 7) < 0 ||
	    asprintf(&src, "%s/rootfs", canon) < 0)
		return -ENOMEM;
	{
		_cleanup_free_ char *t = NULL;

		if (asprintf(&t, "%s/tmp", store) < 0)
			return -ENOMEM;
		r = sk_mkdir_p(t, 0700);
		if (r < 0)
			return r;
	}
	r = sk_layer_mkdtemp_locked(tmp, &lockfd);
	if (r < 0) {
		free(tmp);
		tmp = NULL;
		return r;
	}
	if (asprintf(&dst, "%s/rootfs", tmp) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = copy_shifted(src, dst, map, diag);
	if (r < 0)
		goto out;
	r = sk_layer_write_layer_json(tmp, l, mstr, NULL);
	if (r < 0)
		goto out;
	parent = strdup(final);
	if (!parent) {
		r = -ENOMEM;
		goto out;
	}
	*strrchr(parent, '/') = '\0';
	r = sk_mkdir_p(parent, 0755);
	if (r < 0)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		r = errno == EEXIST ? 0 : negative_errno();
		goto out;
	}
	free(tmp);
	tmp = NULL;
	r = 1;
out:
	if (tmp)
		(void)sk_layer_rm_rf(tmp);
	return r;
}
