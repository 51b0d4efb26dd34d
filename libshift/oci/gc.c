/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: garbage collection of the store.
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

/* ------------------------------------------------------------------ */
/* Garbage collection                                                  */

struct gcctx {
	const char *store;
	bool dry_run;
	void (*on_remove)(const struct shift_layer_gc_event *ev,
			  void *userdata);
	void *userdata;
	struct shift_error *diag;
	struct strset refs; /* "sha256:HEX" of referenced layers */
	int removed;
};

static int gc_fail(struct gcctx *g, int r, const char *where, const char *why)
{
	return sk_error_first(g->diag, r, where, why);
}

static bool is_hex64(const char *s)
{
	return strlen(s) == SK_SHA256_HEX &&
	       strspn(s, "0123456789abcdef") == SK_SHA256_HEX;
}

/*
 * Remove dir/name: renamed into STORE/tmp first (a half-removed layer is
 * never seen under its name, and what's left after a crash is a stale
 * temporary), then removed.
 */
static int gc_remove(struct gcctx *g, const char *kind, const char *dir,
		     const char *name, const char *digest)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (g->dry_run)
		goto done;
	if (asprintf(&tmp, "%s/tmp", g->store) < 0)
		return -ENOMEM;
	r = sk_mkdir_p(tmp, 0700);
	free(tmp);
	tmp = NULL;
	if (asprintf(&tmp, "%s/tmp/gc.XXXXXX", g->store) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	if (r >= 0)
		r = sk_layer_mkdtemp_locked(tmp, &lockfd);
	if (r < 0)
		return gc_fail(
		    g, r, path,
		    "cannot make a temporary directory in the store");
	/* Into the locked directory: no other cleaner takes it meanwhile. */
	if (renameat(AT_FDCWD, path, lockfd, "victim") < 0) {
		r = negative_errno();
		(void)rmdir(tmp);
		return gc_fail(g, r, path, "cannot remove it");
	}
	r = sk_layer_rm_rf(tmp);
	if (r < 0)
		return gc_fail(g, r, path, "cannot remove it");
done:
	if (g->on_remove)
		g->on_remove(&(struct shift_layer_gc_event){.kind = kind,
							    .path = path,
							    .name = digest},
			     g->userdata);
	g->removed++;
	return 0;
}

/* The image records in STORE/images: drop the unkept, collect the rest's
 * layers. */
static int gc_images(struct gcctx *g, const struct shift_oci_image *const *keep)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	if (asprintf(&dir, "%s/images", g->store) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d && errno != ENOENT)
		return gc_fail(g, negative_errno(), dir,
			       "cannot read the image records");
	if (!d && !keep) {
		_cleanup_free_ char *ldir = NULL;
		_cleanup_closedir_ DIR *ld = NULL;
		struct dirent *le;

		/* Layers and no records: made before records were kept. */
		if (asprintf(&ldir, "%s/layers/sha256", g->store) < 0)
			return -ENOMEM;
		ld = opendir(ldir);
		while (ld && (le = readdir(ld)))
			if (is_hex64(le->d_name))
				return gc_fail(
				    g, -ENOENT, NULL,
				    "the store holds layers but no image "
				    "records (images/): name the images to "
				    "keep with --keep");
	}
	for (unsigned k = 0; keep && keep[k]; k++) {
		for (unsigned i = 0; i < keep[k]->n_layers; i++) {
			r = sk_strset_add(&g->refs, keep[k]->layers[i].digest);
			if (r < 0)
				return r;
		}
		if (!g->dry_run) {
			r = sk_layer_record_image(g->store, keep[k]);
			if (r < 0)
				return gc_fail(
				    g, r, g->store,
				    "cannot record a kept image in the store");
		}
	}
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *hex = NULL, *path = NULL;
		_cleanup_close_ int fd = -EBADF;
		struct json_object *o = NULL, *layers;
		size_t n = strlen(de->d_name);
		bool kept = !keep;

		if (de->d_name[0] == '.' || n != SK_SHA256_HEX + 5 ||
		    strcmp(de->d_name + SK_SHA256_HEX, ".json"))
			continue;
		hex = strndup(de->d_name, SK_SHA256_HEX);
		if (!hex)
			return -ENOMEM;
		if (!is_hex64(hex))
			continue;
		for (unsigned k = 0; keep && keep[k]; k++)
			if (!strcmp(keep[k]->manifest_digest + 7, hex))
				kept = true;
		if (!kept) {
			r = gc_remove(g, "image", dir, de->d_name, NULL);
			if (r < 0)
				return r;
			continue;
		}
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			return -ENOMEM;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd >= 0)
			o = json_object_from_fd(fd);
		/* A record we can't read could reference anything: stop. */
		if (!o || !json_object_object_get_ex(o, "layers", &layers) ||
		    !json_object_is_type(layers, json_type_array)) {
			json_object_put(o);
			return gc_fail(g, -EBADMSG, path,
				       "unreadable image record (nothing "
				       "removed: fix or delete it)");
		}
		for (size_t i = 0; i < json_object_array_length(layers); i++) {
			const char *l = json_object_get_string(
			    json_object_array_get_idx(layers, i));

			if (l && (r = sk_strset_add(&g->refs, l)) < 0) {
				json_object_put(o);
				return r;
			}
		}
		json_object_put(o);
	}
	return 0;
}

/* Unreferenced layer directories (HEX) below dir: removed. */
static int gc_layers(struct gcctx *g, const char *dir, const char *kind)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int r;

	if (!d)
		return errno == ENOENT ? 0
				       : gc_fail(g, negative_errno(), dir,
						 "cannot read the store");
	while ((de = readdir(d))) {
		char digest[8 + SK_SHA256_HEX];

		if (!is_hex64(de->d_name))
			continue;
		snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
		if (sk_strset_has(&g->refs, digest))
			continue;
		r = gc_remove(g, kind, dir, de->d_name, digest);
		if (r < 0)
			return r;
	}
	return 0;
}

int shift_layer_gc(const char *store_dir,
		   const struct shift_oci_image *const *keep, unsigned flags,
		   void (*on_remove)(const struct shift_layer_gc_event *ev,
				     void *userdata),
		   void *userdata, struct shift_error *diag)
{
	struct gcctx g = {
	    .store = store_dir,
	    .dry_run = flags & SHIFT_LAYER_DRY_RUN,
	    .on_remove = on_remove,
	    .userdata = userdata,
	    .diag = diag,
	};
	_cleanup_free_ char *p = NULL;
	_cleanup_closedir_ DIR *sh = NULL;
	_cleanup_close_ int lockfd = -EBADF;
	struct dirent *de;
	struct stat st;
	int r;

	if (!store_dir)
		return -EINVAL;
	/* A normal user's store: in the namespace of its delegation. */
	if (geteuid() != 0 && sk_layer_store_is_rootless(store_dir))
		return sk_layer_gc_userns(store_dir, keep, flags, on_remove,
					  userdata, diag);
	/* Only what looks like a store: never rm -rf a mistyped path. */
	if (asprintf(&p, "%s/layers", store_dir) < 0)
		return -ENOMEM;
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/tmp", store_dir) < 0)
			return -ENOMEM;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			return gc_fail(
			    &g, -ENOENT, NULL,
			    "not a layer store (no layers/ or tmp/)");
	}
	lockfd = sk_layer_store_lock(store_dir, LOCK_EX | LOCK_NB);
	if (lockfd == -EWOULDBLOCK)
		return gc_fail(&g, -EBUSY, NULL,
			       "the store is in use by an unpack or a mount "
			       "(try again when it is done)");
	if (lockfd < 0)
		return gc_fail(&g, lockfd, NULL, "cannot lock the store");
	free(p);
	p = NULL;
	if (asprintf(&p, "%s/tmp", store_dir) < 0)
		return -ENOMEM;
	r = sk_layer_remove_stale(p, "", g.dry_run, on_remove, userdata);
	if (r < 0)
		return gc_fail(&g, r, p, "cannot remove stale temporaries");
	g.removed += r;
	r = gc_images(&g, keep);
	if (r >= 0) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/layers/sha256", store_dir) < 0)
			r = -ENOMEM;
	}
	if (r >= 0)
		r = gc_layers(&g, p, "layer");
	/* STORE/shifted/KEY/sha256/HEX: copies of layers per map. */
	if (r >= 0) {
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/shifted", store_dir) < 0)
			r = -ENOMEM;
		else
			sh = opendir(p);
	}
	while (r >= 0 && sh && (de = readdir(sh))) {
		_cleanup_free_ char *q = NULL;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&q, "%s/%s/sha256", p, de->d_name) < 0)
			r = -ENOMEM;
		else
			r = gc_layers(&g, q, "shifted");
	}
	sk_strset_clear(&g.refs);
	return r < 0 ? r : g.removed;
}
