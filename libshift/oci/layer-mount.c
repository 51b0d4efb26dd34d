/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: mounting an image from the store as an overlay.
 * (libshift/oci/layer-internal.h has the shared context; the whole
 * design is at the top of layer-internal.h and in docs/oci.md.)
 */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
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
#include "util/error.h"
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

/*
 * The form of an existing upper directory, told by its root's owner: the
 * container's root is 0 on disk in a canonical upper and map(0) in a
 * host-id one.  New (missing or empty) takes the form asked for.
 */
enum upper_form { UPPER_NEW, UPPER_CANONICAL, UPPER_HOST, UPPER_UNKNOWN };

static int upper_form(const char *upper, uid_t ru, gid_t rg,
		      enum upper_form *ret, struct stat *ret_st)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	*ret = UPPER_NEW;
	d = opendir(upper);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	if (fstat(dirfd(d), ret_st) < 0)
		return negative_errno();
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	if (!de)
		return errno ? negative_errno() : 0;
	if (ret_st->st_uid == 0 && ret_st->st_gid == 0)
		*ret = UPPER_CANONICAL;
	else if (ret_st->st_uid == ru && ret_st->st_gid == rg)
		*ret = UPPER_HOST;
	else
		*ret = UPPER_UNKNOWN;
	return 0;
}

/*
 * Whether the writable layer is canonical (1) or in host ids (0), from
 * the flags, what upper already holds and whether upper_dir can be
 * idmapped; negative errno with diag->why when the two can't agree.
 */
static int choose_upper(const char *upper_dir, const char *upper, uid_t ru,
			gid_t rg, unsigned flags, bool idmap,
			struct shift_error *diag)
{
	bool want_c = flags & SHIFT_LAYER_CANONICAL_UPPER,
	     want_h = flags & SHIFT_LAYER_HOST_UPPER;
	enum upper_form form;
	const char *why = NULL;
	struct stat st;
	int r;

	r = upper_form(upper, ru, rg, &form, &st);
	if (r < 0)
		return r;
	if (form == UPPER_CANONICAL && want_h)
		why = "it holds the container's files in its own ids (root "
		      "owns it as 0): mount it without --host-upper, or "
		      "convert it with shift-tree and the map";
	else if (form == UPPER_HOST && want_c)
		why = "it holds the container's files in host ids (root "
		      "owns it as the map's image of 0): mount it without "
		      "--canonical-upper, or convert it with shift-tree "
		      "--reverse and the map";
	else if (form == UPPER_UNKNOWN && !want_c && !want_h)
		why = "its root is owned neither by 0 nor by the map's image "
		      "of 0, so whether it holds host ids or the container's "
		      "own can't be told: give --canonical-upper or "
		      "--host-upper";
	if (why) {
		sk_error_why(diag, -EMEDIUMTYPE, why);
		return sk_error_path(diag, -EMEDIUMTYPE, upper);
	}
	if (want_c || form == UPPER_CANONICAL)
		return 1;
	if (want_h || form != UPPER_NEW || !idmap)
		return 0;
	/* A new upper over idmapped layers: canonical wherever its
	 * filesystem can be idmapped (a failed probe: let the mount tell).
	 * Over shifted copies everything stays in host ids unless asked. */
	{
		/* upper_dir may not exist yet: its nearest existing
		 * ancestor, where it will be made. */
		_cleanup_free_ char *p = strdup(upper_dir);
		char *slash;

		if (!p)
			return -ENOMEM;
		while (access(p, F_OK) < 0 && (slash = strrchr(p, '/'))) {
			if (slash == p) {
				p[1] = '\0';
				break;
			}
			*slash = '\0';
		}
		_cleanup_(shift_error_clear) struct shift_error pe = {0};

		r = shift_probe_idmap(p, &pe);
		if (r == 0)
			sk_debug("'%s' can't be idmapped (%s): upper in host "
				 "ids",
				 p, pe.why ? pe.why : "?");
	}
	return r != 0;
}

/*
 * The overlay with a canonical upper: shift-mount's machinery
 * (libshift/mount/overlay-reassemble.c), the lower layers as they are
 * (plain clones) when they are shifted copies.
 */
static int mount_canonical(const char *const *lower, bool idmap,
			   const char *upper, const char *work,
			   const struct shift_idmap *map, const char *target,
			   struct shift_error *diag)
{
	struct shift_overlay_source src = {.lower = (char **)lower};
	_cleanup_free_ const char **plain = NULL;
	_cleanup_close_ int userns = -EBADF;
	_cleanup_(shift_error_clear) struct shift_error e = {0};
	const char *failed;
	struct shift_reassemble ra = {
	    .src = &src,
	    .upper = upper,
	    .work = work,
	    .how = SHIFT_REASSEMBLE_CANONICAL_UPPER,
	};
	size_t n = 0;
	int r;

	while (lower[n])
		n++;
	if (!idmap) {
		plain = calloc(2 * n + 1, sizeof(*plain));
		if (!plain)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			plain[2 * i] = plain[2 * i + 1] = lower[i];
		ra.plain_layers = plain;
	}
	userns = shift_userns_create(map);
	if (userns < 0)
		return userns;
	r = shift_overlay_reassemble(&ra, target, map, userns, 0, &e);
	failed = e.path;
	sk_error_path(diag, r, failed ? failed : target);
	if (r == -EINVAL && failed &&
	    ((upper && !strcmp(failed, upper)) ||
	     (work && !strcmp(failed, work)))) {
		r = -EOPNOTSUPP;
		sk_error_why(diag, r,
			     "its filesystem can't be idmapped, which a "
			     "canonical upper needs (use --host-upper)");
		if (diag)
			diag->error = r;
	}
	return r;
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
	int canonical = 0, r;

	if (!img || !store_dir || !map || !target)
		return -EINVAL;
	if ((flags & SHIFT_LAYER_CANONICAL_UPPER) &&
	    (flags & SHIFT_LAYER_HOST_UPPER))
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
		canonical =
		    choose_upper(upper_dir, upper, ru, rg, flags, idmap, diag);
		if (canonical < 0) {
			r = canonical;
			goto out;
		}
		/* A canonical upper holds real root-owned (setuid) files the
		 * container made: for root's eyes only (0700). */
		r = sk_mkdir_p(upper_dir, canonical ? 0700 : 0755);
		if (r >= 0 && canonical && chmod(upper_dir, 0700) < 0)
			r = negative_errno();
		if (r >= 0 && !canonical &&
		    (mkdir(upper, 0755) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 && !canonical &&
		    (mkdir(work, 0700) < 0 && errno != EEXIST))
			r = negative_errno();
		if (r >= 0 && !canonical &&
		    (chown(upper, ru, rg) < 0 || chown(work, ru, rg) < 0))
			r = negative_errno();
		if (r < 0) {
			sk_error_path(diag, r, upper_dir);
			goto out;
		}
	}

	if (canonical) {
		r = mount_canonical(lower, idmap, upper, work, map, target,
				    diag);
		if (r < 0)
			goto out;
		r = (idmap ? SHIFT_LAYER_MOUNTED_IDMAPPED : 0) |
		    SHIFT_LAYER_MOUNTED_CANONICAL;
	} else if (idmap) {
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
		r = SHIFT_LAYER_MOUNTED_IDMAPPED;
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
