/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: the layer store: one canonical directory per layer, images
 * recorded. (libshift/oci/layer-internal.h has the shared context; the whole
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
#include "util/error.h"
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* The layer store                                                     */

/* STORE/layers/sha256/HEX, or STORE/shifted/KEY/sha256/HEX. */
char *sk_layer_layer_dir(const char *store, const char *key, const char *digest)
{
	char *p = NULL;
	int r;

	if (key)
		r = asprintf(&p, "%s/shifted/%s/sha256/%s", store, key,
			     digest + 7);
	else
		r = asprintf(&p, "%s/layers/sha256/%s", store, digest + 7);
	return r < 0 ? NULL : p;
}

int sk_layer_write_layer_json(const char *dir, const struct sk_oci_layer *l,
			      const char *map_str, const char *manifest_digest)
{
	struct json_object *o = json_object_new_object();
	_cleanup_free_ char *path = NULL;
	const char *s;
	int r = 0;
	FILE *f;

	if (!o || asprintf(&path, "%s/layer.json", dir) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	json_object_object_add(o, "digest", json_object_new_string(l->digest));
	json_object_object_add(o, "mediaType",
			       json_object_new_string(l->media_type));
	json_object_object_add(o, "size",
			       json_object_new_int64((int64_t)l->size));
	if (l->diff_id)
		json_object_object_add(o, "diffID",
				       json_object_new_string(l->diff_id));
	if (map_str)
		json_object_object_add(o, "map",
				       json_object_new_string(map_str));
	if (manifest_digest)
		json_object_object_add(o, "manifest",
				       json_object_new_string(manifest_digest));
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n", s) < 0)
		r = -EIO;
	if (f && fclose(f) != 0)
		r = -EIO;
	json_object_put(o);
	return r;
}

/* shift-verify's manifest of rootfs into dir/manifest; its digest. */
static char *record_manifest(const char *dir)
{
	_cleanup_free_ char *rootfs = NULL, *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	char *digest = NULL, d[72];

	if (asprintf(&rootfs, "%s/rootfs", dir) < 0 ||
	    asprintf(&path, "%s/manifest", dir) < 0)
		return NULL;
	/* written as the tree is read (bounded memory); none if it fails */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return NULL;
	if (shift_manifest_record_to(rootfs, fd, NULL, d, NULL) < 0 ||
	    !(digest = strdup(d)))
		unlink(path);
	return digest;
}

/*
 * Make one layer of img present in the store, unshifted.  Returns 1 when
 * made, 0 when it was there.
 */
static int store_layer(const struct shift_oci_image *img, unsigned i,
		       const char *store, const struct shift_layer_opts *opts,
		       const struct shift_idmap *map, uint64_t bytes_before,
		       struct shift_error *diag)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_free_ char *final = sk_layer_layer_dir(store, NULL, l->digest);
	_cleanup_free_ char *tmpdir = NULL, *tmp = NULL, *rootfs = NULL;
	_cleanup_free_ char *mdigest = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct xctx x = {
	    .rootfd = -EBADF,
	    .pcache_fd = -EBADF,
	    .mode = XMODE_STORE,
	    .map = map,
	    .flags = opts->flags,
	    .cancel = opts->cancel,
	    .on_entry = opts->on_entry,
	    .userdata = opts->userdata,
	    .bytes_before = bytes_before,
	    .bytes_total = sk_layer_blobs_total(img),
	    .diag = diag,
	};
	struct stat st;
	int r;

	if (!final)
		return -ENOMEM;
	if (stat(final, &st) == 0)
		return sk_layer_check_stored_diff_id(&x, img, i, final);
	if (sk_layer_dry(&x)) {
		r = sk_layer_extract_layer(&x, img, i);
		sk_layer_xctx_done(&x);
		return r < 0 ? r : 1;
	}
	if (asprintf(&tmpdir, "%s/tmp", store) < 0)
		return -ENOMEM;
	r = sk_mkdir_p(tmpdir, 0700);
	if (r < 0)
		return sk_layer_fail(&x, r, tmpdir, "cannot create the store");
	if (asprintf(&tmp, "%s/%s.XXXXXX", tmpdir, l->digest + 7) < 0)
		return -ENOMEM;
	r = sk_layer_mkdtemp_locked(tmp, &lockfd);
	if (r < 0) {
		free(tmp);
		tmp = NULL;
		return sk_layer_fail(&x, r, tmpdir,
				     "cannot create a temporary directory");
	}
	if (asprintf(&rootfs, "%s/rootfs", tmp) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(rootfs, 0755) < 0) {
		r = negative_errno();
		goto out;
	}
	x.rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.rootfd < 0) {
		r = negative_errno();
		goto out;
	}
	r = sk_layer_init_root(&x);
	if (r >= 0)
		r = sk_layer_extract_layer(&x, img, i);
	if (r >= 0 && x.cancel && *x.cancel)
		r = sk_layer_fail(&x, -ECANCELED, l->digest, "interrupted");
	if (r < 0)
		goto out;
	mdigest = record_manifest(tmp);
	r = sk_layer_write_layer_json(tmp, l, NULL, mdigest);
	if (r < 0) {
		r = sk_layer_fail(&x, r, tmp, "cannot write layer.json");
		goto out;
	}
	/* A rootless store's layers are idmapped for the user's container
	 * namespaces, whose ids are not the store owner's: they must reach
	 * rootfs/ and read layer.json (mkdtemp made it 0700). */
	if ((opts->flags & SK_LAYER_ROOTLESS) && fchmod(lockfd, 0755) < 0) {
		r = sk_layer_fail(&x, negative_errno(), tmp,
				  "cannot make the layer readable");
		goto out;
	}
	{
		_cleanup_free_ char *parent = strdup(final);

		if (!parent) {
			r = -ENOMEM;
			goto out;
		}
		*strrchr(parent, '/') = '\0';
		r = sk_mkdir_p(parent, 0755);
		if (r < 0) {
			r = sk_layer_fail(&x, r, parent,
					  "cannot create the store");
			goto out;
		}
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		r = negative_errno();
		if (r == -EEXIST) /* someone else stored it meanwhile */
			r = 0;
		else
			r = sk_layer_fail(
			    &x, r, final,
			    "cannot move the layer into the store");
		goto out;
	}
	r = 1;
	free(tmp);
	tmp = NULL;
out:
	sk_layer_xctx_done(&x);
	safe_close(x.rootfd);
	/* Removed while still locked (lockfd closes after). */
	if (tmp)
		(void)sk_layer_rm_rf(tmp);
	return r;
}

/*
 * The store's own lock: unpacks and mounts hold it shared while they add
 * and use layers, gc exclusively, so gc never takes a layer an unpack
 * has stored but not yet recorded its image for.  Returns the fd.
 */
int sk_layer_store_lock(const char *store, int op)
{
	int fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	while (flock(fd, op) < 0) {
		int r = negative_errno();

		if (r == -EINTR && !(op & LOCK_NB))
			continue;
		safe_close(fd);
		return r;
	}
	return fd;
}

/*
 * STORE/images/HEX.json: the image's layers, what shift_layer_gc()
 * counts as references.  Written whole, then renamed into place.
 */
int sk_layer_record_image(const char *store, const struct shift_oci_image *img)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *tmp = NULL;
	struct json_object *o = json_object_new_object();
	struct json_object *layers = json_object_new_array();
	const char *s;
	int r = 0;
	FILE *f;

	if (!o || !layers || asprintf(&dir, "%s/images", store) < 0 ||
	    asprintf(&path, "%s/%s.json", dir, img->manifest_digest + 7) < 0 ||
	    asprintf(&tmp, "%s/.%s.json.%d", dir, img->manifest_digest + 7,
		     (int)getpid()) < 0) {
		json_object_put(o);
		json_object_put(layers);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < img->n_layers; i++)
		json_object_array_add(
		    layers, json_object_new_string(img->layers[i].digest));
	json_object_object_add(o, "manifest",
			       json_object_new_string(img->manifest_digest));
	json_object_object_add(o, "layout",
			       json_object_new_string(img->layout));
	json_object_object_add(o, "layers", layers);
	r = sk_mkdir_p(dir, 0700);
	if (r >= 0) {
		s = json_object_to_json_string_ext(
		    o,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		f = fopen(tmp, "we");
		if (!f || fprintf(f, "%s\n", s) < 0)
			r = -EIO;
		if (f && fclose(f) != 0)
			r = -EIO;
		if (r >= 0 && rename(tmp, path) < 0)
			r = negative_errno();
		if (r < 0)
			(void)unlink(tmp);
	}
	json_object_put(o);
	return r;
}

int shift_layer_store_unpack_opts(const struct shift_oci_image *img,
				  const char *store_dir,
				  const struct shift_layer_opts *opts,
				  struct shift_error *diag)
{
	struct shift_layer_opts none = {0};
	_cleanup_free_ char *rec = NULL;
	struct stat st;

	if (!img || !store_dir)
		return -EINVAL;
	if (!opts)
		opts = &none;
	/* A normal user: the rootless store, made inside a user namespace
	 * of its delegation (store-user.c). */
	if (geteuid() != 0)
		return sk_layer_store_unpack_userns(img, store_dir, opts, diag);
	/* Root never mixes canonical layers into a user's store. */
	if (asprintf(&rec, "%s/" SK_LAYER_DELEGATION_FILE, store_dir) < 0)
		return -ENOMEM;
	if (lstat(rec, &st) == 0) {
		return sk_error_first(diag, -EXDEV, store_dir,
				      "it is a normal user's rootless store "
				      "(its layers are owned within that "
				      "user's delegation): use it as that "
				      "user, or give root a store of its own");
	}
	return sk_layer_store_unpack_here(img, store_dir, opts, NULL, diag);
}

int sk_layer_store_unpack_here(const struct shift_oci_image *img,
			       const char *store_dir,
			       const struct shift_layer_opts *opts,
			       const struct shift_idmap *map,
			       struct shift_error *diag)
{
	_cleanup_free_ char *tmpdir = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	uint64_t done = 0;
	int made = 0, r;

	if (!(opts->flags & SHIFT_LAYER_DRY_RUN)) {
		r = sk_mkdir_p(store_dir, 0700);
		if (r < 0)
			return r;
		lockfd = sk_layer_store_lock(store_dir, LOCK_SH);
		if (lockfd < 0)
			return lockfd;
		if (asprintf(&tmpdir, "%s/tmp", store_dir) < 0)
			return -ENOMEM;
		r = sk_layer_remove_stale(tmpdir, "", false, NULL, NULL);
		if (r < 0)
			sk_debug("cannot remove stale temporaries in '%s': %s",
				 tmpdir, strerror(-r));
		/* images/ says the store keeps records (see shift_layer_gc). */
		free(tmpdir);
		if (asprintf(&tmpdir, "%s/images", store_dir) < 0) {
			tmpdir = NULL;
			return -ENOMEM;
		}
		r = sk_mkdir_p(tmpdir, 0700);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < img->n_layers; i++) {
		if (opts->cancel && *opts->cancel) {
			return sk_error_first(diag, -ECANCELED,
					      img->layers[i].digest,
					      "interrupted");
		}
		r = store_layer(img, i, store_dir, opts, map, done, diag);
		if (r < 0)
			return r;
		made += r;
		done += img->layers[i].size;
	}
	if (!(opts->flags & SHIFT_LAYER_DRY_RUN)) {
		r = sk_layer_record_image(store_dir, img);
		if (r < 0) {
			return sk_error_first(diag, r, store_dir,
					      "cannot record the image in "
					      "the store (images/)");
		}
	}
	return made;
}

int shift_layer_store_unpack(const struct shift_oci_image *img,
			     const char *store_dir, unsigned flags,
			     struct shift_error *diag)
{
	struct shift_layer_opts o = {.flags = flags};

	return shift_layer_store_unpack_opts(img, store_dir, &o, diag);
}
