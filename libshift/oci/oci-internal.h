/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift/oci/: blobs of an OCI image layout. */
#ifndef LIBSHIFT_OCI_INTERNAL_H
#define LIBSHIFT_OCI_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "shift/oci.h"
#include "mount/mount-internal.h"
#include "engine/engine-internal.h"

#define SK_SHA256_HEX 64

struct sk_oci_layer {
	char *digest;
	char *media_type;
	uint64_t size;
	char *diff_id;		/* rootfs.diff_ids[i], a sha256 (checked at open) */
};

struct shift_oci_image {
	char *layout;		/* the layout directory as given */
	int layout_fd;		/* O_PATH|O_DIRECTORY */
	char *manifest_digest;
	char *config_digest;
	struct sk_oci_layer *layers;
	unsigned n_layers;
};

/* A blob being read, hashed on the way (sha256). */
struct sk_blob {
	int fd;
	void *md;		/* EVP_MD_CTX */
	char expect[SK_SHA256_HEX + 1];
	uint64_t expect_size;	/* UINT64_MAX: unknown */
	uint64_t got_size;
	unsigned char buf[256 * 1024];
};

/* True for "sha256:" followed by 64 lowercase hex digits. */
bool sk_oci_digest_valid(const char *digest);

/*
 * Open blobs/sha256/HEX of the layout for streaming (digest "sha256:HEX",
 * size as the manifest says or UINT64_MAX).  *ret is freed by
 * sk_blob_free().
 */
int sk_blob_open(const struct shift_oci_image *img, const char *digest,
		 uint64_t size, struct sk_blob **ret);
/* Read up to the buffer's size into blob->buf, hashing it; 0 at the end. */
ssize_t sk_blob_read(struct sk_blob *blob);
/*
 * Read what is left (the consumer may stop before the end of the blob),
 * then compare size and digest: 0, or -EBADMSG on a mismatch.
 */
int sk_blob_finish(struct sk_blob *blob);
void sk_blob_free(struct sk_blob *blob);

/*
 * A layer entry's path, normalised into out: "." and empty components and
 * a leading "./" dropped, "" for the root ("/" alone is the root too).
 * -EPERM (with *why) for absolute paths and "..", -ENAMETOOLONG, -EINVAL
 * for an empty name.
 */
int sk_layer_path_normalise(const char *in, char *out, size_t size,
			    const char **why);

#endif
