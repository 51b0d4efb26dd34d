/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/verify: range allocation, ownership manifests, container sets.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_VERIFY_H
#define LIBSHIFT_SHIFT_VERIFY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Range allocation (libshift/verify/alloc.c)                                 */
/* ------------------------------------------------------------------ */

/* The state file shift-alloc uses unless told otherwise. */
#define SHIFT_ALLOC_STATE "/var/lib/shiftkit/alloc.json"

/* One container's block: host uids uid_start.., gids gid_start.., size. */
struct shift_alloc {
	char *container;
	char *user;
	uint32_t uid_start;
	uint32_t gid_start;
	uint32_t size;
};

/*
 * Allocate (or return the existing) block of size ids for container from
 * user's /etc/subuid and /etc/subgid delegation (SHIFT_SUBUID/SHIFT_SUBGID
 * override them), recorded in the state file (NULL: SHIFT_ALLOC_STATE)
 * under an exclusive lock.  Blocks start at multiples of size from the
 * start of a delegated range, never contain host id 0 and never overlap
 * another allocation.  Returns 0 when newly allocated, 1 when the container
 * already had this block; -ENOENT (user has no delegation, or the
 * delegation file is missing), -EUCLEAN (the user's own line of a
 * delegation file is malformed), -ENOSPC (no free block), -EEXIST
 * (container allocated with another user or size), -EBADMSG (state file
 * corrupt or of another version), -EINVAL.  shift_alloc_get_ex() says why.
 * *ret's strings are malloc'd:
 * shift_alloc_clear() frees them.
 */
int shift_alloc_get(const char *state, const char *user, const char *container,
		    uint32_t size, struct shift_alloc *ret);
/* Free container's block.  -ENOENT when it has none. */
int shift_alloc_release(const char *state, const char *container);
/* All allocations, in allocation order; free with shift_alloc_list_free(). */
int shift_alloc_list(const char *state, struct shift_alloc **ret,
		     size_t *ret_n);
void shift_alloc_clear(struct shift_alloc *a);
void shift_alloc_list_free(struct shift_alloc *list, size_t n);
/* The block as a map "u:0:UID:SIZE g:0:GID:SIZE" (NULL on ENOMEM). */
struct shift_idmap *shift_alloc_idmap(const struct shift_alloc *a);

/* shift_alloc_*_ex(): what the caller wants beyond the plain calls. */
#define SHIFT_ALLOC_DRY_RUN (1u << 0) /* work it out, change nothing */
struct shift_alloc_opts {
	unsigned flags;
	/* malformed delegation lines of other users (NULL: not told) */
	shift_subid_warn_fn warn;
	void *userdata;
};
/*
 * As shift_alloc_get(), plus: the state is checked whole (-EBADMSG for a
 * block past the last id or holding host id 0, overlapping blocks, a
 * container twice, unknown keys, a version other than 1); the delegation
 * is read with shift_subid_read() (-ENOENT with a reason when the file is
 * missing, -EUCLEAN when the user's own line is malformed); with
 * SHIFT_ALLOC_DRY_RUN nothing is written and no lock file or directory is
 * created.  On failure err (if non-NULL) gets a one-line reason in why
 * naming the state's allocation or the delegation file and line, when
 * there is more to say than the errno (path: the state or delegation
 * file).  The plain calls are these with opts and err NULL.
 */
int shift_alloc_get_ex(const char *state, const char *user, const char *container,
		       uint32_t size, const struct shift_alloc_opts *opts,
		       struct shift_alloc *ret, struct shift_error *err);
/* As shift_alloc_release(); *ret (if non-NULL) gets the freed block. */
int shift_alloc_release_ex(const char *state, const char *container,
			   const struct shift_alloc_opts *opts,
			   struct shift_alloc *ret, struct shift_error *err);
int shift_alloc_list_ex(const char *state, const struct shift_alloc_opts *opts,
			struct shift_alloc **ret, size_t *ret_n,
			struct shift_error *err);

/* ------------------------------------------------------------------ */
/* Ownership manifests (libshift/verify/manifest.c)                           */
/* ------------------------------------------------------------------ */

/*
 * A tree's ownership metadata, one entry per path (sorted): type, uid,
 * gid, mode, POSIX ACLs, file capability.  Written as an mtree(5) spec
 * (libarchive's form) plus "#shiftkit" extension lines for ACLs and file
 * capabilities and a sha256 digest line; docs/manifest-format.md.
 */
struct shift_manifest;

/*
 * Record the tree at dir (read-only; symlinks not followed, other mounts
 * not entered).  Returns 0 and a manifest the caller frees.
 */
int shift_manifest_record(const char *dir, struct shift_manifest **ret,
			  struct shift_error *err);
/* Write in the manifest format to fd.  Returns 0 (-EOPNOTSUPP for a
 * manifest from shift_manifest_open() that was left in its file). */
int shift_manifest_write(const struct shift_manifest *m, int fd);
/*
 * Record the tree at dir straight to fd in the manifest format, in bounded
 * memory (the walk goes in the file's order; what is held is the listing
 * of each directory from the top to the current one).  The same bytes as
 * shift_manifest_write() of shift_manifest_record().  Returns 0, the
 * number of entries in *count and "sha256:HEX" in digest (72 bytes), each
 * if non-NULL.
 */
int shift_manifest_record_to(const char *dir, int fd, size_t *count,
			     char *digest, struct shift_error *err);
/*
 * Open a manifest file for checking in bounded memory: read once to
 * validate it (as shift_manifest_read: syntax, digest) and count its
 * entries, which stay in the file; shift_manifest_check() reads it again
 * alongside the tree (-ESTALE then if the file changed in between).  A
 * manifest not in the order shift-verify writes (another mtree writer's)
 * is read whole, as by shift_manifest_read().
 * shift_manifest_check_layers() needs manifests read whole.
 */
int shift_manifest_open(const char *path, struct shift_manifest **ret,
			struct shift_error *err);
/*
 * Read a manifest file.  -EBADMSG when malformed or when its digest does
 * not match (with the reason in err->why and the 1-based line in
 * err->line, 0 when about no one line); err->path is the file.
 */
int shift_manifest_read(const char *path, struct shift_manifest **ret,
			struct shift_error *err);
void shift_manifest_free(struct shift_manifest *m);
size_t shift_manifest_count(const struct shift_manifest *m);
/* "sha256:HEX" of the written form (valid after record or read). */
const char *shift_manifest_digest(const struct shift_manifest *m);

/* One difference between a tree and what was expected. */
struct shift_difference {
	const char *path;     /* "./usr/bin/ping" */
	const char *field;    /* "entry", "type", "uid", "gid", "mode",
				 "acl.access", "acl.default", "fcaps" */
	const char *expected; /* as in the manifest; "absent" */
	const char *found;
};
/* Called per difference; a negative return stops the check with it. */
typedef int (*shift_difference_fn)(const struct shift_difference *d,
				   void *userdata);

enum {
	/* Entries in the tree but not in the manifest are fine (a merged
	 * overlay view holds the container's own files too). */
	SHIFT_CHECK_IGNORE_EXTRA = 1 << 0,
	/* Entries in the manifest but not in the tree are fine. */
	SHIFT_CHECK_IGNORE_MISSING = 1 << 1,
};

/*
 * Compare the tree at dir with the manifest with map (disk -> seen; NULL:
 * none) applied to every uid, gid, ACL qualifier and file capability root
 * id, as the shift engine applies it.  Returns the number of differences
 * (each passed to fn if non-NULL), or a negative errno.
 */
int shift_manifest_check(const struct shift_manifest *m,
			 const struct shift_idmap *map, const char *dir,
			 unsigned flags, shift_difference_fn fn,
			 void *userdata, struct shift_error *err);

/* Called per difference with the index of the layer the expected entry
 * comes from (extra entries: the top layer). */
typedef int (*shift_layer_difference_fn)(const struct shift_difference *d,
					 size_t layer, void *userdata);
/*
 * Compare dir, an overlay's merged directory of layers[0..n) (bottom layer
 * first, as an image manifest lists them), with what overlayfs shows of
 * them: each path as in the highest layer that has it; a whiteout (a 0/0
 * character device, "overlay=whiteout" in the manifest) hides the path and
 * its subtree in the lower layers, as does a non-directory; an opaque
 * directory ("overlay=opaque") hides the lower layers' entries below it.
 * Returns the number of differences or a negative errno.
 */
int shift_manifest_check_layers(const struct shift_manifest *const *layers,
				size_t n, const struct shift_idmap *map,
				const char *dir, unsigned flags,
				shift_layer_difference_fn fn, void *userdata,
				struct shift_error *err);
/*
 * (The record and check calls above: when one failed reading the tree,
 * err->path is the entry it failed on, "./a/b", or NULL for the top
 * directory itself.)
 */
/* Called with the number of entries read so far while this thread
 * records a tree (every 1024 entries and at the end); NULL: nobody. */
typedef void (*shift_manifest_progress_fn)(size_t entries, void *userdata);
void shift_manifest_set_progress(shift_manifest_progress_fn fn, void *userdata);

/*
 * Every uid, gid, ACL qualifier and file capability root id in the tree at
 * dir lies in map's seen ranges (an overlay upper dir: only the container's
 * ids).  Whiteouts (0/0 character devices, created by overlayfs with the
 * mounter's credentials) are exempt.  Returns the number of offending
 * entries (each passed to fn), or a negative errno.
 */
int shift_tree_check_range(const char *dir, const struct shift_idmap *map,
			   shift_difference_fn fn, void *userdata);

/* ------------------------------------------------------------------ */
/* Container sets (libshift/verify/verify.c)                                  */
/* ------------------------------------------------------------------ */

enum shift_verify_check {
	SHIFT_VERIFY_OVERLAP = 1,  /* host ranges of two containers overlap */
	SHIFT_VERIFY_HOST_ROOT,	   /* a container maps host uid/gid 0 */
	SHIFT_VERIFY_SUBID,	   /* range outside the owner's delegation */
	SHIFT_VERIFY_LAYER,	   /* layer on disk differs from its manifest */
	SHIFT_VERIFY_VIEW,	   /* a container's view of a layer differs */
	SHIFT_VERIFY_UPPER,	   /* upper dir holds ids outside the range */
	SHIFT_VERIFY_IN_PLACE,	   /* in-place shifted layer, other map */
	SHIFT_VERIFY_MOUNTS,	   /* (report) idmapped mounts of a pid */
};

enum shift_verify_status {
	SHIFT_VERIFY_PASS,
	SHIFT_VERIFY_FAIL,
	SHIFT_VERIFY_SKIP,
	SHIFT_VERIFY_INFO,
};

struct shift_verify_finding {
	enum shift_verify_check check;
	enum shift_verify_status status;
	const char *subject;  /* "c1", "c1,c2", "base", "c1:base", "c1:upper" */
	const char *message;  /* one line */
	const struct shift_difference *diff; /* a file difference, or NULL */
};

typedef int (*shift_verify_fn)(const struct shift_verify_finding *f,
			       void *userdata);

/* "overlap", "host-root", "subid", "layer", "view", "upper", "in-place",
 * "mounts". */
const char *shift_verify_check_name(enum shift_verify_check c);
const char *shift_verify_status_name(enum shift_verify_status s);

/*
 * Run every check on the container set described in the JSON file at path
 * (docs/shift-verify.1), passing each finding to fn.  A check that compares
 * a tree passes each difference as a finding with diff set (status FAIL),
 * then, later, its own result: a finding of the same check and subject
 * with diff NULL (differences of the merged views of one path may
 * interleave).  Returns the number of failed checks (findings with diff
 * NULL; 0: all good) or a negative errno; on -EBADMSG (a bad description:
 * unknown or duplicate key, wrong type, no containers, not strict JSON)
 * err gets a one-line reason ("line L, column C: ...") in why and the
 * place in line and column.
 */
int shift_verify_containers(const char *path, shift_verify_fn fn,
			    void *userdata, struct shift_error *err);

#ifdef __cplusplus
}
#endif

#endif
