/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: one layer blob: decompression, digests, extraction of a whole
 * layer. (libshift/oci/layer-internal.h has the shared context; the whole
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
/* One layer blob                                                      */

static la_ssize_t blob_read_cb(struct archive *a, void *data, const void **buf)
{
	struct sk_blob *b = data;
	ssize_t n = sk_blob_read(b);

	if (n < 0) {
		archive_set_error(a, (int)-n, "%s",
				  n == -EBADMSG
				      ? "blob larger than its descriptor says"
				      : strerror((int)-n));
		return -1;
	}
	*buf = b->buf;
	return n;
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void blob_freep(struct sk_blob **b)
{
	sk_blob_free(*b);
}

/*
 * The uncompressed stream of a layer, hashed for the config's diff_id in
 * the same pass as the extraction.  Two archive readers are chained:
 * "outer" reads the blob (which sk_blob hashes for the layer digest),
 * undoes the compression the media type names and hands the result out
 * through libarchive's raw format; the tar reader takes outer's data
 * blocks through unz_read_cb(), which hashes them.  So every byte the tar
 * reader sees is hashed exactly once, without a copy, and what follows
 * the tar's end-of-archive blocks is hashed by unz_drain() at the end.
 */
struct unz {
	struct archive *outer;
	EVP_MD_CTX *md;
	uint64_t size;	 /* uncompressed bytes hashed so far */
	int err;	 /* outer's failure, or 0 */
	const char *why; /* why unz_open() failed */
	bool eof;
};

static void unz_done(struct unz *u)
{
	if (u->outer)
		archive_read_free(u->outer);
	EVP_MD_CTX_free(u->md);
	*u = (struct unz){0};
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * Set up outer over blob b: the one decompression filter the media type
 * names ("+gzip", Docker's ".tar.gzip", "+zstd"), none for plain tar.
 * -ENOMEM, or -EBADMSG when the blob doesn't start as that compression.
 */
static int unz_open(struct unz *u, struct sk_blob *b, const char *media_type)
{
	struct archive_entry *e;
	bool compressed = true;
	int ar;

	u->md = EVP_MD_CTX_new();
	if (!u->md || !EVP_DigestInit_ex(u->md, EVP_sha256(), NULL))
		return -ENOMEM;
	u->outer = archive_read_new();
	if (!u->outer)
		return -ENOMEM;
	if (has_suffix(media_type, "+gzip") || has_suffix(media_type, ".gzip"))
		archive_read_support_filter_gzip(u->outer);
	else if (has_suffix(media_type, "+zstd"))
		archive_read_support_filter_zstd(u->outer);
	else
		compressed = false;
	archive_read_support_format_raw(u->outer);
	if (archive_read_open(u->outer, b, NULL, blob_read_cb, NULL) !=
	    ARCHIVE_OK) {
		sk_debug("decompressing: %s", archive_error_string(u->outer));
		u->why = "corrupt or truncated archive";
		return (u->err = -EBADMSG);
	}
	/* Without a matching filter libarchive passes the bytes through. */
	if (compressed && archive_filter_count(u->outer) < 2) {
		u->why =
		    "corrupt archive (not compressed as its media type says)";
		return (u->err = -EBADMSG);
	}
	ar = archive_read_next_header(u->outer, &e);
	if (ar == ARCHIVE_EOF)
		u->eof = true; /* an empty stream */
	else if (ar < ARCHIVE_WARN) {
		sk_debug("decompressing: %s", archive_error_string(u->outer));
		u->why = "corrupt or truncated archive";
		return (u->err = -EBADMSG);
	}
	return 0;
}

/* The next block of uncompressed bytes, hashed; 0 at the end. */
static la_ssize_t unz_next(struct unz *u, const void **buf)
{
	size_t len = 0;
	la_int64_t off;
	int ar;

	if (u->err)
		return -1;
	while (!u->eof) {
		ar = archive_read_data_block(u->outer, buf, &len, &off);
		if (ar == ARCHIVE_EOF) {
			u->eof = true;
			break;
		}
		if (ar < ARCHIVE_WARN) {
			int e = archive_errno(u->outer);

			sk_debug("decompressing: %s",
				 archive_error_string(u->outer));
			u->err = e == ENOMEM || e == EIO ? -e : -EBADMSG;
			return -1;
		}
		if (len > 0) {
			EVP_DigestUpdate(u->md, *buf, len);
			u->size += len;
			return (la_ssize_t)len;
		}
	}
	return 0;
}

static la_ssize_t unz_read_cb(struct archive *a, void *data, const void **buf)
{
	struct unz *u = data;
	la_ssize_t n = unz_next(u, buf);

	if (n < 0)
		archive_set_error(a, -u->err, "%s",
				  archive_error_string(u->outer)
				      ? archive_error_string(u->outer)
				      : "cannot decompress the layer");
	return n;
}

/* Hash what the tar reader left of the stream: 0, or outer's error. */
static int unz_drain(struct unz *u)
{
	const void *buf;
	la_ssize_t n;

	while ((n = unz_next(u, &buf)) > 0)
		;
	return n < 0 ? u->err : 0;
}

/* The diff_id mismatch, with both digests (replaces any entry error). */
static int fail_diff_id(struct xctx *x, const struct sk_oci_layer *l,
			const char *got)
{
	return sk_layer_fail_fmt(
	    x, -EBADMSG, true, l->digest,
	    "diff_id mismatch: the uncompressed layer hashes to sha256:%s, the "
	    "config's diff_id is %s",
	    got, l->diff_id);
}

/*
 * After the tar reader is done with result r: hash the rest of the
 * uncompressed stream, check the blob against its digest, then the
 * stream against the config's diff_id.  A damaged blob or a diff_id
 * mismatch explains a failure best, so either replaces what r reported.
 * Returns r when both check out.
 */
static int verify_layer(struct xctx *x, const struct sk_oci_layer *l,
			struct unz *u, struct sk_blob *b, int r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char got[2 * EVP_MAX_MD_SIZE + 1];
	unsigned len = 0;
	int rz, rb;

	rz = unz_drain(u);
	rb = sk_blob_finish(b);
	if (rb == -EBADMSG) {
		shift_error_clear(x->diag);
		return sk_layer_fail(x, rb, l->digest, "digest mismatch");
	}
	if (rb < 0)
		return r < 0 ? r
			     : sk_layer_fail(x, rb, l->digest,
					     "cannot read the blob");
	if (rz < 0)
		return r < 0 ? r
			     : sk_layer_fail(x, rz, l->digest,
					     "corrupt or truncated archive "
					     "(after the end of the tar)");
	/* Refused when the image was opened; a library user may differ. */
	if (!sk_oci_digest_valid(l->diff_id))
		return r < 0 ? r
			     : sk_layer_fail(x, -EOPNOTSUPP, l->digest,
					     "no sha256 diff_id for this layer "
					     "in the config");
	if (!EVP_DigestFinal_ex(u->md, md, &len))
		return r < 0 ? r : -EIO;
	for (unsigned i = 0; i < len; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, l->diff_id + 7) != 0) {
		sk_debug("%s: %" PRIu64
			 " uncompressed bytes hash to sha256:%s, diff_id %s",
			 l->digest, u->size, got, l->diff_id);
		return fail_diff_id(x, l, got);
	}
	return r;
}

/* Open layer l's blob and its uncompressed stream: 0, or the failure,
 * reported (a blob that isn't what its media type says is checked against
 * its digest first: verify_layer()). */
static int layer_stream_open(struct xctx *x, const struct shift_oci_image *img,
			     const struct sk_oci_layer *l, struct sk_blob **b,
			     struct unz *u)
{
	int r;

	r = sk_blob_open(img, l->digest, l->size, b);
	if (r < 0)
		return sk_layer_fail(x, r, l->digest,
				     "cannot open the layer blob");
	r = unz_open(u, *b, l->media_type);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return verify_layer(x, l, u, *b,
				    sk_layer_fail(x, r, l->digest, u->why));
	return 0;
}

/* Extract layer i of img below x->rootfd. */
int sk_layer_extract_layer(struct xctx *x, const struct shift_oci_image *img,
			   unsigned i)
{
	_cleanup_(blob_freep) struct sk_blob *b = NULL;
	_cleanup_(unz_done) struct unz u = {0};
	_cleanup_(archive_freep) struct archive *a = NULL;
	const struct sk_oci_layer *l = &img->layers[i];
	struct archive_entry *e;
	int r, ar;

	r = layer_stream_open(x, img, l, &b, &u);
	if (r < 0)
		return r;
	x->layer = i;
	x->layer_digest = l->digest;
	x->blob = b;
	a = archive_read_new();
	if (!a)
		return -ENOMEM;
	/* Only what OCI layers use: tar (the compression is outer's). */
	archive_read_support_format_tar(a);
	if (archive_read_open(a, &u, NULL, unz_read_cb, NULL) != ARCHIVE_OK)
		return verify_layer(
		    x, l, &u, b,
		    sk_layer_fail(
			x, -EBADMSG, l->digest,
			"corrupt or truncated archive (not a tar stream)"));
	sk_strset_clear(&x->layer_paths);
	for (;;) {
		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			sk_debug("%s: %s", l->digest,
				 sk_layer_esc(x, archive_error_string(a)));
			return verify_layer(
			    x, l, &u, b,
			    sk_layer_fail(x, -EBADMSG, l->digest,
					  "corrupt or truncated archive"));
		}
		r = sk_layer_do_entry(x, a, e);
		if (r < 0)
			return verify_layer(x, l, &u, b, r);
	}
	r = verify_layer(x, l, &u, b, 0);
	x->blob = NULL;
	x->bytes_before += l->size;
	if (r < 0)
		return r;
	return sk_layer_dry(x) ? 0 : sk_layer_set_dir_times(x);
}

/*
 * A layer already in the store was verified when it was made, against
 * the diff_id its layer.json records.  Another image may name the same
 * blob with another diff_id: then hash the blob's uncompressed stream
 * again (no extraction) and refuse the image if it doesn't match.
 */
int sk_layer_check_stored_diff_id(struct xctx *x,
				  const struct shift_oci_image *img, unsigned i,
				  const char *dir)
{
	const struct sk_oci_layer *l = &img->layers[i];
	_cleanup_(blob_freep) struct sk_blob *b = NULL;
	_cleanup_(unz_done) struct unz u = {0};
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct json_object *o = NULL, *v;
	bool same = false;
	int r;

	if (asprintf(&path, "%s/layer.json", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd >= 0)
		o = json_object_from_fd(fd);
	if (o && json_object_object_get_ex(o, "diffID", &v) &&
	    json_object_is_type(v, json_type_string) && l->diff_id &&
	    !strcmp(json_object_get_string(v), l->diff_id))
		same = true;
	if (o)
		json_object_put(o);
	if (same)
		return 0;
	sk_debug("%s: stored layer records another diff_id, hashing the blob",
		 l->digest);
	r = layer_stream_open(x, img, l, &b, &u);
	if (r < 0)
		return r;
	return verify_layer(x, l, &u, b, 0);
}

/* The root directory's defaults when the layer has no "./" entry. */
int sk_layer_init_root(struct xctx *x)
{
	uid_t u;
	gid_t g;
	int r;

	if (sk_layer_root_owner(x, &u, &g) < 0)
		return sk_layer_fail(x, -ERANGE, ".",
				     "uid/gid 0 has no image under the map");
	/* The temporary root is made below DEST's parent or STORE/tmp. */
	r = sk_layer_drop_inherited_acls(x->rootfd, -EBADF, NULL, true);
	if (r < 0)
		return sk_layer_fail(x, r, ".",
				     "cannot remove the ACLs inherited from "
				     "the parent directory");
	if (fchown(x->rootfd, u, g) < 0 || fchmod(x->rootfd, 0755) < 0)
		return sk_layer_fail(x, negative_errno(), ".",
				     "cannot set the owner of the root");
	return 0;
}
