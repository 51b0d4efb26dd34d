/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: mounting an image from the store as an overlay.
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
#include "util/syscalls.h"

/* A short key naming a map in STORE/shifted/. */
static int map_key(const struct shift_idmap *map, char out[17])
{
	_cleanup_free_ char *s = shift_idmap_to_string(map);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!s)
		return -ENOMEM;
	if (!EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL))
		return -EIO;
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* A plain overlay (lower layers already shifted), attached at target. */
static int mount_overlay_plain(const char *const *lower, const char *upper,
			       const char *work, const char *target)
{
	_cleanup_close_ int fsfd = -EBADF, mfd = -EBADF;

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return negative_errno();
	for (size_t i = 0; lower[i]; i++)
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lower[i],
			     0) < 0)
			return negative_errno();
	if (upper) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) <
			0 ||
		    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
			return negative_errno();
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return negative_errno();
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return negative_errno();
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return negative_errno();
	return 0;
}

int shift_layer_mount(const struct shift_oci_image *img, const char *store_dir,
		      const struct shift_idmap *map, const char *target,
		      const char *upper_dir, unsigned flags,
		      struct shift_error *diag)
{
	_cleanup_free_ char *upper = NULL, *work = NULL;
	_cleanup_free_ const char **lower = NULL;
	char **paths = NULL;
	char key[17];
	bool idmap = !(flags & SHIFT_LAYER_FORCE_COPY);
	_cleanup_close_ int lockfd = -EBADF;
	_cleanup_(shift_error_clear) struct shift_error why = {0};
	uid_t ru = 0;
	gid_t rg = 0;
	unsigned n;
	int r;

	if (!img || !store_dir || !map || !target)
		return -EINVAL;
	if (!upper_dir && !(flags & SHIFT_LAYER_RDONLY))
		flags |= SHIFT_LAYER_RDONLY;
	n = img->n_layers;
	if (n == 0)
		return sk_error_why(diag, -EINVAL, "the image has no layers");
	r = shift_layer_store_unpack(img, store_dir, flags, diag);
	if (r < 0)
		return r;
	/* Until the overlay holds its layers: not for gc meanwhile. */
	lockfd = sk_layer_store_lock(store_dir, LOCK_SH);
	if (lockfd < 0)
		return lockfd;
	if (idmap) {
		/* A failed probe: let the mount itself tell. */
		r = shift_probe_idmap(store_dir, &why);
		if (r == 0) {
			sk_debug(
			    "store '%s' can't be idmapped (%s): shifted copies",
			    store_dir, why.why ? why.why : "?");
			idmap = false;
		}
	}
	if (!idmap) {
		r = map_key(map, key);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < n; i++) {
			r = sk_layer_store_shifted(img, i, store_dir, map, key,
						   diag);
			if (r < 0)
				return r;
		}
	}

	lower = calloc(n + 1, sizeof(*lower));
	paths = calloc(n + 1, sizeof(*paths));
	if (!lower || !paths) {
		free(paths);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		_cleanup_free_ char *d = sk_layer_layer_dir(
		    store_dir, idmap ? NULL : key, img->layers[i].digest);

		/* Top-most first. */
		if (!d || asprintf(&paths[n - 1 - i], "%s/rootfs", d) < 0) {
			r = -ENOMEM;
			goto out;
		}
		lower[n - 1 - i] = paths[n - 1 - i];
	}

	if (!(flags & SHIFT_LAYER_RDONLY)) {
		if (asprintf(&upper, "%s/upper", upper_dir) < 0 ||
		    asprintf(&work, "%s/work", upper_dir) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (sk_layer_root_owner(&(struct xctx){.map = map}, &ru, &rg) <
		    0) {
			r = sk_error_why(diag, -ERANGE,
					 "uid/gid 0 has no image under the map "
					 "(needed for the upper directory)");
			goto out;
		}
		r = sk_layer_mkdir_p(upper_dir, 0755);
		if (r >= 0 && (mkdir(upper, 0755) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 && (mkdir(work, 0700) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 &&
		    (chown(upper, ru, rg) < 0 || chown(work, ru, rg) < 0))
			r = negative_errno();
		if (r < 0) {
			sk_error_path(diag, r, upper_dir);
			goto out;
		}
	}

	if (idmap) {
		struct shift_overlay ovl = {
		    .lower = lower,
		    .upper = upper,
		    .work = work,
		};

		r = shift_mount_overlay(&ovl, target, map, 0, NULL);
		if (r < 0) {
			sk_error_path(diag, r, target);
			goto out;
		}
		r = 1;
	} else {
		r = mount_overlay_plain(lower, upper, work, target);
		if (r < 0) {
			sk_error_path(diag, r, target);
			sk_error_why(diag, r, "cannot mount the overlay");
			goto out;
		}
		r = 0;
	}
out:
	for (unsigned i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}
