/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: what verify/ files share. */
#ifndef LIBSHIFT_VERIFY_INTERNAL_H
#define LIBSHIFT_VERIFY_INTERNAL_H

#include "shift/verify.h"
#include "core/core-internal.h"

/* ------------------------------------------------------------------ */
/* Manifests (manifest*.c): the types and functions its files share   */
/* ------------------------------------------------------------------ */

#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "util/macros.h"

#define CAPS_SZ_2 20
#define CAPS_SZ_3 SHIFT_FCAPS_MAX_SIZE
#define MAX_ACL_ENTRIES 1024

struct blob {
	uint32_t len;
	unsigned char *data;
};

enum {
	ME_CAPS_OVERFLOW = 1
			   << 0, /* getxattr said EOVERFLOW: rootid unmapped */
	ME_WHITEOUT = 1 << 1,	 /* a 0/0 character device */
	ME_OPAQUE = 1 << 2,	 /* a directory with overlay.opaque=y */
};
/* Merged layers (shift_manifest_check_layers): the layer an entry comes
 * from, in the flags' bits from here up. */
#define ME_LAYER_SHIFT 8

struct mentry {
	char *path; /* "." or "./a/b", unescaped */
	uint32_t uid, gid;
	uint32_t mode; /* st_mode: type and permission bits */
	uint32_t flags;
	struct blob acl_a, acl_d, caps;
};

/* Strings and blobs live in chunks that never move. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	unsigned char data[];
};

struct shift_manifest {
	struct mentry *e;
	size_t n, cap;
	struct arena_chunk *arena;
	char digest[8 + 64 + 1];
	/* shift_manifest_open(): the entries stay in the file, read again
	 * by each check (n counted, digest verified) */
	char *stream;
	size_t stream_n;
};

/* Free with the manifest at the end of the scope. */
static inline void sk_manifest_freep(struct shift_manifest **m)
{
	shift_manifest_free(*m);
}
#define _cleanup_manifest_ _cleanup_(sk_manifest_freep)

/*
 * A walk of the tree in the manifest's order (the order of libarchive's
 * mtree writer, which the format keeps): a directory, its non-directories
 * sorted by name (bytewise), then each subdirectory sorted by name with
 * its subtree.  Each directory's entries are read (readdir order, so the
 * statx and xattr calls go in the filesystem's order), sorted, handed to
 * visit() and forgotten: what is held is the listing of each directory on
 * the path from the top to the current one, never the tree.
 */
struct mwalk {
	uint64_t mnt_id;
	size_t count; /* entries visited */
	/* called per entry in order, its full path in path[0..plen) */
	int (*visit)(struct mwalk *w, const struct mentry *e, size_t plen);
	void *data;
	char path[PATH_MAX];
};

struct strbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

struct defaults {
	bool has_uid, has_gid, has_mode, has_type;
	uint32_t uid, gid, mode, type;
};

/*
 * Reading a manifest as a stream of entries: lines are read in pieces
 * from the file and digested as they go; an entry is handed out once the
 * line after it shows whether an extension line belongs to it.  What is
 * held is the current piece of the file and two entries.
 */
struct mreader {
	int fd;
	char *buf;
	size_t cap, start, end; /* unread bytes: buf[start..end) */
	size_t dpos;		/* buf[..dpos) went into the digest */
	bool eof, have_digest;
	EVP_MD_CTX *md;
	struct defaults d;
	unsigned lineno;
	char digest[8 + 64 + 1];
	/* the entry waiting for a possible extension line lives in
	 * store[cur], the one handed out before it in the other */
	struct shift_manifest *store[2];
	int cur;
	struct mentry pending;
	bool have_pending, pending_ext;
	const char *err;
	unsigned err_line;
};

struct diff_ctx {
	shift_difference_fn fn;
	void *userdata;
	int count;
	/* layered: who gets the differences, and the current entry's layer */
	shift_layer_difference_fn lfn;
	size_t layer;
};

/*
 * Writing a manifest as its entries come, in the manifest's order: the
 * text goes out in 64 KiB pieces and into the digest as it goes, so
 * nothing but the current piece is held.  fd < 0: only the digest.
 */
struct mwriter {
	int fd;
	EVP_MD_CTX *md;
	struct strbuf buf;
	size_t count;
	int err;
};

/* manifest-arena.c: the entries and the arena their strings and blobs
 * live in; the canonical path order; lookups in sorted entries */
struct shift_manifest *sk_manifest_new(void);
struct mentry *sk_manifest_add(struct shift_manifest *m);
int sk_manifest_add_copy(struct shift_manifest *m, const struct mentry *e,
			 size_t plen);
void sk_manifest_reset(struct shift_manifest *m);
char *sk_manifest_strndup(struct shift_manifest *m, const char *s, size_t len);
int sk_manifest_blob_set(struct shift_manifest *m, struct blob *b,
			 const void *data, size_t len);
int sk_path_cmp(const char *a, const char *b);
int sk_entry_cmp(const void *a, const void *b);
bool sk_is_below(const char *path, const char *dir, size_t dlen, bool child);
struct mentry *sk_find_name(struct mentry *e, size_t n, const char *name);

/* manifest-walk.c: the tree in the manifest's order; where it failed
 * (sk_mwalk_error puts it in err's path), who hears of progress */
int sk_mwalk_tree(struct mwalk *w, const char *dir);
int sk_mwalk_dir(struct mwalk *w, int dfd, size_t plen);
int sk_mwalk_listing(struct mwalk *w, DIR *d, size_t plen,
		     struct shift_manifest **ret, size_t *nfiles);
int sk_mwalk_fill_entry(struct shift_manifest *store, struct mentry *e,
			int dfd, const char *name, const struct statx *stx);
void sk_mwalk_set_err_path(const char *path, size_t len);
void sk_mwalk_err_reset(void);
int sk_mwalk_error(int r, struct shift_error *err);
const char *sk_mwalk_err_path(void);
void sk_mwalk_progress(size_t count);

/* manifest-codec.c: text forms of ACLs, capabilities and mtree paths */
void sk_sb_add(struct strbuf *b, const char *s);
_printf_(2, 3) void sk_sb_printf(struct strbuf *b, const char *fmt, ...);
int sk_acl_to_text(const struct blob *a, struct strbuf *b);
int sk_acl_from_text(struct shift_manifest *m, const char *s, size_t len,
		     struct blob *ret);
int sk_caps_to_text(const struct blob *c, uint32_t flags, struct strbuf *b);
int sk_caps_from_text(struct shift_manifest *m, const char *s, size_t len,
		      struct mentry *e);
int sk_parse_u32(const char *s, size_t len, uint32_t *ret);
const char *sk_mtree_type(uint32_t mode);
void sk_mtree_quote(struct strbuf *b, const char *s);
int sk_mtree_unescape(const char *s, size_t len, char *out, size_t size);

/* manifest-write.c */
int sk_mw_init(struct mwriter *o, int fd);
int sk_mw_entry(struct mwriter *o, const char *path, const struct mentry *e);
int sk_mw_finish(struct mwriter *o, char *digest);
void sk_mw_done(struct mwriter *o);

/* manifest-parse.c */
int sk_manifest_open_file(const char *path, struct shift_error *err);
int sk_mr_init(struct mreader *r, int fd);
int sk_mr_next(struct mreader *r, struct mentry *e);
void sk_mr_error(const struct mreader *r, int ret, const char *path,
		 struct shift_error *err);
void sk_mr_done(struct mreader *r);

/* manifest.c: a record without the public call's error context */
int sk_manifest_record(const char *dir, struct shift_manifest **ret);

/* manifest-check.c */
int sk_diff_report(struct diff_ctx *c, const char *path, const char *field,
		   const char *expected, const char *found);
int sk_manifest_compare_trees(struct diff_ctx *c,
			      const struct shift_manifest *m,
			      const size_t *origin,
			      const struct shift_idmap *map,
			      const struct shift_manifest *t, unsigned flags);
int sk_manifest_check_mem(const struct shift_manifest *m,
			  const struct shift_idmap *map, const char *dir,
			  unsigned flags, struct diff_ctx *c,
			  size_t extra_layer);

/* ------------------------------------------------------------------ */
/* Container sets (verify*.c)                                          */
/* ------------------------------------------------------------------ */

#include <json.h>

struct vlayer {
	const char *name;
	const char *path;
	const char *manifest_path;
	struct shift_idmap *shifted; /* shifted in place with this map */
	struct shift_manifest *manifest;
	bool changed; /* check 4 found differences */
	bool unreadable;
};

struct vview {
	struct vlayer *layer;
	const char *path;
	bool merged; /* an overlay's merged dir: extra entries are fine */
	bool copy;   /* a shifted copy, not the layer itself */
};

struct vcontainer {
	const char *name;
	const char *owner;
	pid_t pid;
	struct shift_idmap *map;
	struct vview *views;
	size_t nviews;
	const char *upper;
	bool canonical_upper; /* upper stores the container's own ids */
};

/* Where a key or array element of the description is (see scan_value). */
struct jloc {
	const json_object *parent;
	char *key; /* NULL for an array element */
	size_t idx;
	size_t off;
};

struct vset {
	json_object *root; /* owns every string above */
	char *text;	   /* the description, for positions */
	size_t len;
	struct jloc *locs;
	size_t nlocs, caplocs;
	struct vlayer *layers;
	size_t nlayers;
	struct vcontainer *cs;
	size_t ncs;
};

struct vrun {
	shift_verify_fn fn;
	void *userdata;
	int fails;
	/* the finding being built: its check and subject */
	enum shift_verify_check check;
	const char *subject;
	int diffs; /* differences passed on so far for this subject */
	int cb_err; /* what fn returned when it failed */
};

/* verify-set.c: the description */
int sk_vset_load(struct vset *s, const char *path, char *err, size_t errlen);
void sk_vset_free(struct vset *s);
/* verify.c: a finding of run->check about run->subject, passed on */
_printf_(4, 5) int sk_verify_emit(struct vrun *run,
				  enum shift_verify_status st,
				  const struct shift_difference *d,
				  const char *fmt, ...);
/* the checks (shift_verify_containers() runs them in enum order):
 * verify-maps.c */
int sk_verify_overlap(struct vset *s, struct vrun *run);
int sk_verify_host_root(struct vset *s, struct vrun *run);
int sk_verify_subid(struct vset *s, struct vrun *run);
int sk_verify_in_place(struct vset *s, struct vrun *run);
/* verify-trees.c */
int sk_verify_layers(struct vset *s, struct vrun *run);
int sk_verify_views(struct vset *s, struct vrun *run);
int sk_verify_uppers(struct vset *s, struct vrun *run);
/* verify-mounts.c */
int sk_verify_mounts(struct vset *s, struct vrun *run);


/* ------------------------------------------------------------------ */
/* The range allocator (alloc*.c)                                      */
/* ------------------------------------------------------------------ */

struct alloc_state {
	struct shift_alloc *a;
	size_t n;
};

/* alloc-state.c */
void sk_alloc_state_clear(struct alloc_state *s);
int sk_alloc_state_read(const char *path, struct alloc_state *s,
			struct shift_error *err);
int sk_alloc_state_write(const char *path, const struct alloc_state *s);
int sk_alloc_state_lock(const char *path);
int sk_alloc_state_lock_shared(const char *path);
bool sk_alloc_valid_name(const char *name);
bool sk_alloc_overlaps(uint32_t a, uint32_t an, uint32_t b, uint32_t bn);
/* also for manifest-write.c (util/ could own it) */
int sk_write_all(int fd, const char *p, size_t len);

#endif
