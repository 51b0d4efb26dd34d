/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: a normal user's mount of an image from its rootless store,
 * through shift-mountd.
 *
 * The kernel makes an idmapped mount only for a caller with CAP_SYS_ADMIN
 * over the filesystem's user namespace; shift-mountd makes it for a user
 * within the ids the user owns (docs/security-mountd.md).  The store's
 * layers are owned within the user's delegation (store-user.c), so each
 * layer is one request to the service with the container's map composed
 * with the store's record, and the overlay is assembled by the caller in
 * its own user and mount namespaces (shift_mountd_overlay: "userxattr",
 * which is what the rootless store marks opaque directories for).
 */
#include "config.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "oci/layer-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

static void idmap_freep(struct shift_idmap **m)
{
	shift_idmap_free(*m);
}

/* diag with a formatted reason, unless it says something already. */
_printf_(4, 5) static int fail(struct shift_error *diag, int err,
			       const char *where, const char *fmt, ...)
{
	va_list ap;

	if (!diag || diag->path || diag->why)
		return err;
	va_start(ap, fmt);
	sk_error_setv(diag, err, fmt, ap);
	va_end(ap);
	return sk_error_path(diag, err, where);
}

/* The diffID layer.json recorded for the stored layer dir, or NULL. */
static char *stored_diff_id(const char *dir)
{
	_cleanup_free_ char *path = NULL;
	struct json_object *o, *v;
	char *s = NULL;

	if (asprintf(&path, "%s/layer.json", dir) < 0)
		return NULL;
	o = json_object_from_file(path);
	if (o && json_object_object_get_ex(o, "diffID", &v) &&
	    json_object_is_type(v, json_type_string))
		s = strdup(json_object_get_string(v));
	json_object_put(o);
	return s;
}

int shift_layer_mount_user(const struct shift_oci_image *img,
			   const char *store_dir, const struct shift_idmap *map,
			   const char *target, const char *upper_dir,
			   unsigned flags, const char *socket_path,
			   struct shift_error *diag)
{
	_cleanup_(idmap_freep) struct shift_idmap *rec = NULL, *inv = NULL,
						  *svc = NULL;
	_cleanup_free_ char *upper = NULL, *work = NULL;
	_cleanup_free_ const char **lower = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct shift_overlay ovl = {0};
	_cleanup_(shift_error_clear) struct shift_error e = {0};
	const char *failed, *msg;
	char **paths = NULL;
	uid_t owner = 0;
	unsigned n;
	int r;

	if (!img || !store_dir || !map || !target)
		return -EINVAL;
	if (!socket_path)
		socket_path = shift_mountd_socket_path();
	if (flags & SHIFT_LAYER_FORCE_COPY)
		return fail(diag, -EOPNOTSUPP, store_dir,
			    "shifted copies are not available without "
			    "CAP_SYS_ADMIN (the layers are idmapped by "
			    "shift-mountd)");
	if (!upper_dir)
		flags |= SHIFT_LAYER_RDONLY;
	n = img->n_layers;
	if (n == 0)
		return fail(diag, -EINVAL, store_dir,
			    "the image has no layers");

	r = sk_layer_store_read_delegation(store_dir, &rec, &owner);
	if (r == -ENOENT)
		return fail(diag, r, store_dir,
			    "not a normal user's layer store (no %s): "
			    "unpack the image into it first as yourself, "
			    "outside the container's namespaces "
			    "(shift-layer unpack --store STORE IMAGE)",
			    SK_LAYER_DELEGATION_FILE);
	if (r < 0)
		return fail(diag, r, store_dir, "cannot read its %s: %s",
			    SK_LAYER_DELEGATION_FILE, strerror(-r));
	/* Until the overlay holds its layers: not for gc meanwhile. */
	lockfd = sk_layer_store_lock(store_dir, LOCK_SH);
	if (lockfd < 0)
		return fail(diag, lockfd, store_dir,
			    "cannot lock the store: %s", strerror(-lockfd));

	/* The service's map: on-disk id -> container id -> seen id. */
	inv = shift_idmap_invert(rec);
	svc = inv ? shift_idmap_compose(inv, map) : NULL;
	if (!svc)
		return -ENOMEM;
	if (shift_idmap_count(svc, SHIFT_UID) == 0 ||
	    shift_idmap_count(svc, SHIFT_GID) == 0)
		return fail(diag, -ERANGE, store_dir,
			    "the map gives none of the store's ids (container "
			    "uids or gids 0 and up) an image");

	lower = calloc(n + 1, sizeof(*lower));
	paths = calloc(n + 1, sizeof(*paths));
	if (!lower || !paths) {
		free(paths);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct sk_oci_layer *l = &img->layers[i];
		_cleanup_free_ char *d =
		    sk_layer_layer_dir(store_dir, NULL, l->digest);
		_cleanup_free_ char *have = NULL;
		struct stat st;

		/* Top-most first. */
		if (!d || asprintf(&paths[n - 1 - i], "%s/rootfs", d) < 0) {
			r = -ENOMEM;
			goto out;
		}
		lower[n - 1 - i] = paths[n - 1 - i];
		if (stat(paths[n - 1 - i], &st) < 0) {
			r = fail(diag, negative_errno(), l->digest,
				 "the layer is not in the store '%s' (%s): "
				 "unpack the image first as its owner, "
				 "outside the container's namespaces "
				 "(shift-layer unpack --store STORE IMAGE)",
				 store_dir, strerror(errno));
			goto out;
		}
		have = stored_diff_id(d);
		if (l->diff_id && (!have || strcmp(have, l->diff_id))) {
			r = fail(diag, -EBADMSG, l->digest,
				 "the stored layer's diff_id is %s, the "
				 "image's config says %s: unpack the image "
				 "again as the store's owner",
				 have ? have : "(none)", l->diff_id);
			goto out;
		}
	}

	if (!(flags & SHIFT_LAYER_RDONLY)) {
		/* With the caller's own ids, in its namespace: the upper is
		 * the container's, nothing chowned. */
		if (asprintf(&upper, "%s/upper", upper_dir) < 0 ||
		    asprintf(&work, "%s/work", upper_dir) < 0) {
			r = -ENOMEM;
			goto out;
		}
		r = sk_mkdir_p(upper_dir, 0755);
		if (r < 0) {
			r = fail(diag, r, upper_dir,
				 "cannot create the directory for the "
				 "upper layer: %s",
				 strerror(-r));
			goto out;
		}
	}

	if (shift_mountd_reachable(socket_path) != 1) {
		r = fail(diag, -ECONNREFUSED, target,
			 "no CAP_SYS_ADMIN for idmapped mounts, and "
			 "shift-mountd is not reachable at '%s': start it "
			 "(systemctl start shift-mountd.socket), or set "
			 "SHIFT_MOUNTD_SOCKET to its socket",
			 socket_path);
		goto out;
	}
	ovl.lower = lower;
	ovl.upper = upper;
	ovl.work = work;
	r = shift_mountd_overlay(socket_path, &ovl, target, svc, -1, 0, &e);
	if (r < 0) {
		bool layer = false;

		failed = e.path;
		msg = e.why ? e.why : "";
		for (unsigned i = 0; i < n; i++)
			layer |= failed && !strcmp(failed, lower[i]);
		if (layer)
			r = fail(diag, r, failed,
				 "shift-mountd did not idmap the layer: %s",
				 msg[0] ? msg : strerror(-r));
		else
			r = fail(diag, r, failed ? failed : target,
				 "cannot mount the overlay over the layers "
				 "from shift-mountd: %s%s%s%s",
				 msg[0] ? msg : strerror(-r),
				 msg[0] ? ": " : "", msg[0] ? strerror(-r) : "",
				 r == -EPERM
				     ? " (mount it in a mount namespace you "
				       "own: run shift-layer inside 'unshare "
				       "--user --map-root-user --mount' or "
				       "your container's namespaces)"
				     : "");
		goto out;
	}
	r = 1;
out:
	for (unsigned i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}
