/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/oci: OCI image layouts, layer extraction, the store.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_OCI_H
#define LIBSHIFT_SHIFT_OCI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "verify.h"
#include "mount.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* OCI image layouts and layers (libshift/oci/)                               */
/* ------------------------------------------------------------------ */

/*
 * What went wrong, for the tool's one-line message, goes into the one error
 * context (shift/util.h): err->path the layer entry, blob or file concerned
 * (untrusted: a tar entry name), err->why the reason (NULL: strerror of the
 * return).  The first failure met is the one kept.
 */

/* One image of an OCI image layout: its manifest, config and layers. */
struct shift_oci_image;

struct shift_oci_layer {
	const char *digest;	/* "sha256:<64 hex>" of the blob */
	const char *media_type;
	uint64_t size;		/* blob size from the manifest */
	const char *diff_id;	/* the config's, checked against the uncompressed layer */
};

/*
 * Open IMAGE = LAYOUT_DIR[:TAG] (the tag matches the index's
 * org.opencontainers.image.ref.name; without one the layout must hold one
 * image).  index.json, the manifest and the config are parsed and their
 * digests verified.  Returns 0 and *ret (free with shift_oci_image_free()).
 */
int shift_oci_image_open(const char *image, struct shift_oci_image **ret,
			 struct shift_error *err);
void shift_oci_image_free(struct shift_oci_image *img);
/* Layers, bottom-most first. */
unsigned shift_oci_layer_count(const struct shift_oci_image *img);
int shift_oci_layer_get(const struct shift_oci_image *img, unsigned i,
			struct shift_oci_layer *ret);
/* "sha256:..." of the image manifest. */
const char *shift_oci_image_digest(const struct shift_oci_image *img);

enum {
	/* Flat unpack: refuse device nodes even when we could create them. */
	SHIFT_LAYER_NO_DEVICES = 1 << 0,
	/* Mount: don't idmap, use (cached) shifted copies of the layers. */
	SHIFT_LAYER_FORCE_COPY = 1 << 1,
	/* Mount: read-only overlay (no upper). */
	SHIFT_LAYER_RDONLY = 1 << 2,
	/*
	 * Unpack: apply security.selinux from the layers (by default they
	 * are dropped: a label is the host's policy, not image content).
	 */
	SHIFT_LAYER_SELINUX_LABELS = 1 << 3,
	/*
	 * Unpack, gc: read and check, change nothing.  An unpack reads every
	 * layer it would extract (digests, diff_ids, entry names, ids, ACLs,
	 * capabilities, device policy) and reports each entry; what depends
	 * on the tree being built (a path through a symlink, a hard link's
	 * target) is not checked.
	 */
	SHIFT_LAYER_DRY_RUN = 1 << 4,
	/*
	 * Mount with an upper: its writable layer is stored in the
	 * container's own ids (root = 0, like the stored layers) and
	 * idmapped, or in host ids (the map's image).  Neither: what an
	 * existing upper holds, told by its root's owner; a new one is
	 * canonical where its filesystem can be idmapped.
	 */
	SHIFT_LAYER_CANONICAL_UPPER = 1 << 5,
	SHIFT_LAYER_HOST_UPPER = 1 << 6,
};

/* What shift_layer_mount() made (its non-negative return value). */
enum {
	SHIFT_LAYER_MOUNTED_IDMAPPED = 1 << 0, /* else over shifted copies */
	SHIFT_LAYER_MOUNTED_CANONICAL = 1 << 1, /* the upper is canonical */
};

/* One entry of a layer, as an unpack meets it (progress, dry runs). */
struct shift_layer_event {
	unsigned layer;		/* index in the image, bottom-most 0 */
	const char *digest;	/* the layer blob's */
	const char *path;	/* normalised entry path, "" the root: untrusted */
	const char *what;	/* "file", "dir", "symlink", "hardlink", "fifo",
				   "chardev", "blockdev", "whiteout", "opaque";
				   "device-skipped" after a device node's
				   event when a normal user's store skips it */
	uint64_t size;		/* a file's declared size */
	uint64_t bytes_read;	/* blob bytes read so far, over all layers */
	uint64_t bytes_total;	/* the layers' blob sizes added up */
};

struct shift_layer_opts {
	unsigned flags;				/* SHIFT_LAYER_* */
	/* When *cancel becomes non-zero (a signal handler sets it), the
	 * unpack stops, removes what it made and returns -ECANCELED. */
	const volatile sig_atomic_t *cancel;
	/* Called for each entry (NULL: not called). */
	void (*on_entry)(const struct shift_layer_event *ev, void *userdata);
	void *userdata;
};

/*
 * shift_layer_store_unpack() and shift_layer_unpack_flat() with options.
 * Both remove their own stale temporaries first: those of interrupted
 * runs (the directory of a running unpack is flock()ed by it; one nobody
 * holds is stale).  The store also records the image in
 * STORE/images/HEX.json (HEX: the manifest's digest), which is what
 * shift_layer_gc() counts as a reference.
 */
int shift_layer_store_unpack_opts(const struct shift_oci_image *img,
				  const char *store_dir,
				  const struct shift_layer_opts *opts,
				  struct shift_error *err);
int shift_layer_unpack_flat_opts(const struct shift_oci_image *img,
				 const char *dest,
				 const struct shift_idmap *map,
				 const struct shift_layer_opts *opts,
				 struct shift_error *err);

/* What shift_layer_gc() removes (or would, with SHIFT_LAYER_DRY_RUN). */
struct shift_layer_gc_event {
	const char *kind;	/* "temporary", "image", "layer", "shifted" */
	const char *path;
	const char *name;	/* digest of an image or layer, else NULL */
};

/*
 * Garbage-collect a layer store: stale temporaries (see above); with
 * keep (a NULL-terminated list of opened images), the image records of
 * every other image; then every layer (and its shifted copies) that no
 * remaining image record lists.  Layers of images mounted by running
 * containers are referenced by their records: keep those images.
 * Returns the number of items removed (or that would be).
 */
int shift_layer_gc(const char *store_dir,
		   const struct shift_oci_image *const *keep, unsigned flags,
		   void (*on_remove)(const struct shift_layer_gc_event *ev,
				     void *userdata),
		   void *userdata, struct shift_error *err);

/*
 * Unpack the image's layers into the content-addressed store at store_dir
 * (created if missing): STORE/layers/sha256/HEX/rootfs in the image's own
 * (unshifted) ownership, OCI whiteouts turned into overlayfs whiteouts
 * (0:0 character devices, trusted.overlay.opaque=y), with a layer.json
 * recording the digests.  Layers already in the store are not unpacked
 * again.  Each layer is extracted into a temporary directory and renamed
 * into place only when complete and its digest verified.  Returns the
 * number of layers newly unpacked.  Run by a normal user (euid not 0):
 * the rootless store (libshift/oci/store-user.c, docs/oci.md): extracted
 * in a user namespace of the user's /etc/subuid delegation (newuidmap),
 * opaque directories as user.overlay.opaque=y, device nodes skipped
 * (event "device-skipped"), the store keyed by that delegation.
 */
int shift_layer_store_unpack(const struct shift_oci_image *img,
			     const char *store_dir, unsigned flags,
			     struct shift_error *err);

/*
 * Unpack all layers into one new tree at dest (which must not exist, or be
 * an empty directory), ownership, ACL qualifiers and file capability root
 * ids shifted through map (on-disk image id -> seen id, the direction of
 * an idmapped mount) while extracting, whiteouts applied.  map NULL: no
 * shift.  The tree is built beside dest and renamed into place on success;
 * on failure nothing is left.
 */
int shift_layer_unpack_flat(const struct shift_oci_image *img,
			    const char *dest, const struct shift_idmap *map,
			    unsigned flags, struct shift_error *err);

/*
 * Mount the image at target: an overlayfs over idmapped mounts of its
 * layers in the store (unpacking missing ones first), or, where the store
 * can't be idmapped or with SHIFT_LAYER_FORCE_COPY, over shifted copies
 * of the layers kept in STORE/shifted/ per map and reused.  upper_dir
 * (NULL with SHIFT_LAYER_RDONLY) receives upper/ and work/: canonical
 * (root = 0 on disk, upper_dir made 0700) or in host ids, owned by the
 * map's image of 0:0 (see SHIFT_LAYER_CANONICAL_UPPER); an existing upper
 * of the other form is refused (-EMEDIUMTYPE).  Returns the
 * SHIFT_LAYER_MOUNTED_* bits: 0 over copies with a host-id upper.
 */
int shift_layer_mount(const struct shift_oci_image *img, const char *store_dir,
		      const struct shift_idmap *map, const char *target,
		      const char *upper_dir, unsigned flags,
		      struct shift_error *err);

/*
 * A normal user's mount of the image from its rootless store (the one
 * shift_layer_store_unpack() makes when run by a normal user: container
 * id 0 on disk as the user's uid, ids 1.. as its delegation, recorded in
 * STORE/delegation.json), for a caller without CAP_SYS_ADMIN inside its
 * own user and mount namespaces: each layer an idmapped mount made by
 * shift-mountd at socket_path (NULL: shift_mountd_socket_path()), the
 * overlay ("userxattr", nodev) assembled and attached here.  map is the
 * container's, as for shift_layer_mount() (image id -> seen host id);
 * the service gets it composed with the store's record.  The layers must
 * be in the store already (a namespace whose ids aren't the store
 * owner's can't add them).  upper_dir (NULL with SHIFT_LAYER_RDONLY)
 * receives upper/ and work/, created with the caller's ids.  Returns 1,
 * or a negative errno with diag set: -ECONNREFUSED when the service
 * isn't there.
 */
int shift_layer_mount_user(const struct shift_oci_image *img,
			   const char *store_dir,
			   const struct shift_idmap *map, const char *target,
			   const char *upper_dir, unsigned flags,
			   const char *socket_path,
			   struct shift_error *diag);

#ifdef __cplusplus
}
#endif

#endif
