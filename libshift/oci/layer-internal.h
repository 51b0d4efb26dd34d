/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layer extraction: tar (libarchive, read side only) into a directory,
 * everything fd-relative.
 *
 * A layer is untrusted.  libarchive parses; we create every inode ourselves
 * with *at() calls below a root fd: parents are opened with openat2()
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (a symlink extracted earlier is never
 * followed), the last component is created O_EXCL/O_NOFOLLOW after
 * removing whatever was there, hard link targets resolve the same way.
 * Paths are normalised up front: absolute paths and ".." are refused.
 * Trees are built in a temporary directory and renamed into place only
 * after the layer blob's digest is verified at its end.
 *
 * Two modes share the entry code:
 *  store: one directory per layer, ownership as in the tar (or shifted, for
 *         the per-map copies), OCI whiteouts turned into overlayfs ones;
 *  flat:  all layers into one tree, whiteouts applied (they delete what
 *         lower layers made), ownership shifted on the way.
 */
#ifndef LIBSHIFT_OCI_LAYER_INTERNAL_H
#define LIBSHIFT_OCI_LAYER_INTERNAL_H

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <signal.h>
#include <time.h>

#include "oci/oci-internal.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/strset.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_META ".wh..wh."
#define OVL_OPAQUE "trusted.overlay.opaque"
/* A rootless store's opaque marker: what an overlay mounted with
 * "userxattr" (the only kind a user namespace may mount) reads. */
#define OVL_OPAQUE_USER "user.overlay.opaque"

/*
 * Internal flag (beside the public SHIFT_LAYER_*): the store unpack runs
 * inside the user namespace of a normal user's delegation (store-user.c):
 * opaque directories get OVL_OPAQUE_USER, device nodes (which the user
 * may not make) are skipped with a "device-skipped" event.
 */
#define SK_LAYER_ROOTLESS (1u << 30)

#define RESOLVE_SAFE                                                     \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | \
	 RESOLVE_NO_XDEV)

/* ------------------------------------------------------------------ */
/* The extraction context.                                             */

enum xmode {
	XMODE_STORE,
	XMODE_FLAT,
};

struct dirtime {
	char *path;
	struct timespec ts[2];
};

struct xctx {
	int rootfd;
	enum xmode mode;
	const struct shift_idmap *map; /* NULL: ids as in the tar */
	unsigned flags;
	const volatile sig_atomic_t *cancel; /* set: stop, -ECANCELED */
	void (*on_entry)(const struct shift_layer_event *ev, void *userdata);
	void *userdata;
	unsigned layer; /* being extracted */
	const char *layer_digest;
	struct sk_blob *blob; /* its blob, for bytes_read */
	uint64_t bytes_before, bytes_total;
	struct shift_error *diag;
	struct strset layer_paths; /* flat: what this layer made */
	struct dirtime *dirs;
	size_t n_dirs, cap_dirs;
	char *pcache_path; /* last parent opened */
	int pcache_fd;
	char path[PATH_MAX];	   /* normalised entry path */
	unsigned char xbuf[65536]; /* translated xattr values */
	char ebuf[4 * PATH_MAX];   /* an escaped name, for debug lines */
};

/* extract.c: the extraction context: failures, escaping, paths, parents beneath
 * the root */
int sk_layer_drop_inherited_acls(int fd, int pfd, const char *name,
				 bool is_dir);
int sk_layer_drop_lower_xattrs(struct xctx *x, int fd);
bool sk_layer_dry(const struct xctx *x);
void sk_layer_emit(struct xctx *x, const char *what, int64_t size);
const char *sk_layer_esc(struct xctx *x, const char *s);
int sk_layer_fail(struct xctx *x, int err, const char *where, const char *why);
_printf_(5, 6) int sk_layer_fail_fmt(struct xctx *x, int err, bool replace,
				     const char *where, const char *fmt, ...);
int sk_layer_fail_id(struct xctx *x, const char *what, int64_t id, int r);
int sk_layer_make_room(struct xctx *x, int pfd, const char *name, bool want_dir,
		       bool *ret_kept);
int sk_layer_map_id(const struct xctx *x, enum shift_id_kind kind, int64_t id,
		    uint32_t *ret);
int sk_layer_open_beneath(int rootfd, const char *path, int flags);
int sk_layer_open_parent(struct xctx *x, const char *parent, bool create,
			 const char *entry);
void sk_layer_pcache_drop(struct xctx *x);
int sk_layer_rm_rf(const char *path);
int sk_layer_root_owner(const struct xctx *x, uid_t *uid, gid_t *gid);
int sk_layer_why_notdir(int rootfd, const char *path);
void sk_layer_xctx_done(struct xctx *x);

/* extract-meta.c: an entry's metadata */
int sk_layer_apply_meta(struct xctx *x, struct archive_entry *e, int fd,
			int pfd, const char *name, bool is_dir);
int sk_layer_set_dir_times(struct xctx *x);

/* extract-entry.c: one tar entry */
int sk_layer_do_entry(struct xctx *x, struct archive *a,
		      struct archive_entry *e);

/*
 * extract-entry.c: what to do with one tar entry, decided from its header
 * alone (no file system, no context: tests/test-entry.c), then done by
 * one step per action.
 */
enum sk_layer_action {
	SK_ENTRY_REFUSE,      /* fail with err, why */
	SK_ENTRY_ROOT,	      /* the root directory: its metadata */
	SK_ENTRY_IGNORE,      /* aufs metadata (".wh..wh.*"): nothing */
	SK_ENTRY_WHITEOUT,    /* ".wh.NAME": name in parent whited out */
	SK_ENTRY_OPAQUE,      /* ".wh..wh..opq": parent made opaque */
	SK_ENTRY_DIR,	      /* make the directory name in parent */
	SK_ENTRY_FILE,	      /* make the file and write its data */
	SK_ENTRY_SYMLINK,     /* to target */
	SK_ENTRY_HARDLINK,    /* to link (tname in tparent) */
	SK_ENTRY_DEVICE,      /* mknod node_type, dev */
	SK_ENTRY_FIFO,	      /* mknod node_type (S_IFIFO) */
	SK_ENTRY_SKIP_DEVICE, /* rootless: a "device-skipped" event only */
};

struct sk_layer_entry_in {
	const char *path;     /* normalised; "" is the root */
	mode_t type;	      /* archive_entry_filetype() */
	const char *hardlink; /* archive_entry_hardlink(): raw, or NULL */
	const char *symlink;  /* archive_entry_symlink(), or NULL */
	dev_t rdev;	      /* devices: makedev(rdevmajor, rdevminor) */
	enum xmode mode;
	unsigned flags; /* SHIFT_LAYER_NO_DEVICES, SK_LAYER_ROOTLESS */
};

struct sk_layer_plan {
	enum sk_layer_action action;
	/* An entry of the layer's content (refused ones included): recorded
	 * (flat), announced with event, and refused only after its parent
	 * is made; the others are done or refused right away. */
	bool content;
	/* Flat: a content entry's path is recorded as this layer's, which
	 * the layer's own whiteouts must spare. */
	bool record;
	const char *event;
	int err; /* SK_ENTRY_REFUSE: a negative errno and the reason */
	const char *why;
	char parent[PATH_MAX]; /* "" is the root */
	const char *name;      /* in parent; points into the input's path */
	char link[PATH_MAX];   /* hard link target, normalised */
	char tparent[PATH_MAX];
	const char *tname;  /* in tparent; points into link */
	const char *target; /* symlink target: the input's */
	mode_t node_type;   /* S_IFCHR, S_IFBLK or S_IFIFO */
	dev_t dev;
};

void sk_layer_plan_entry(const struct sk_layer_entry_in *in,
			 struct sk_layer_plan *p);

/* layer-blob.c: one layer blob */
int sk_layer_check_stored_diff_id(struct xctx *x,
				  const struct shift_oci_image *img, unsigned i,
				  const char *dir);
int sk_layer_extract_layer(struct xctx *x, const struct shift_oci_image *img,
			   unsigned i);
int sk_layer_init_root(struct xctx *x);

/* unpack.c: temporary directories, the flat unpack */
uint64_t sk_layer_blobs_total(const struct shift_oci_image *img);
int sk_layer_mkdtemp_locked(char *templ, int *ret_fd);
int sk_layer_remove_stale(const char *dir, const char *prefix, bool dry_run,
			  void (*on_remove)(const struct shift_layer_gc_event *,
					    void *),
			  void *userdata);

/* store.c: the store */
char *sk_layer_layer_dir(const char *store, const char *key,
			 const char *digest);
int sk_layer_record_image(const char *store, const struct shift_oci_image *img);
int sk_layer_store_lock(const char *store, int op);
int sk_layer_write_layer_json(const char *dir, const struct sk_oci_layer *l,
			      const char *map_str, const char *manifest_digest);

/* store.c: the store unpack proper, in this process (map: NULL, or the
 * identity over the ids a rootless store may hold) */
int sk_layer_store_unpack_here(const struct shift_oci_image *img,
			       const char *store_dir,
			       const struct shift_layer_opts *opts,
			       const struct shift_idmap *map,
			       struct shift_error *diag);

/* store-user.c: the rootless store (a normal user's, keyed by its
 * delegation) */
#define SK_LAYER_DELEGATION_FILE "delegation.json"
int sk_layer_store_unpack_userns(const struct shift_oci_image *img,
				 const char *store_dir,
				 const struct shift_layer_opts *opts,
				 struct shift_error *diag);
int sk_layer_store_read_delegation(const char *store_dir,
				   struct shift_idmap **ret_map,
				   uid_t *ret_uid);
/* Whether store_dir records a delegation (a normal user's store). */
bool sk_layer_store_is_rootless(const char *store_dir);
/* shift_layer_gc() of a normal user's store, run inside the user
 * namespace of its delegation (files below directories owned by
 * delegated ids can be removed only there). */
int sk_layer_gc_userns(const char *store_dir,
		       const struct shift_oci_image *const *keep,
		       unsigned flags,
		       void (*on_remove)(const struct shift_layer_gc_event *ev,
					 void *userdata),
		       void *userdata, struct shift_error *diag);

/* layer-copy.c: shifted copies */
int sk_layer_store_shifted(const struct shift_oci_image *img, unsigned i,
			   const char *store, const struct shift_idmap *map,
			   const char *key, struct shift_error *diag);

#endif
