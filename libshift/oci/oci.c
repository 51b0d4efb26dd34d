/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI image layouts: index.json -> image manifest -> config and layers.
 *
 * Everything in a layout is untrusted.  Small documents (index, manifests,
 * config) are read whole with a size cap, their digests checked before
 * they are parsed; layer blobs are hashed while they stream (sk_blob) and
 * checked at their end, so a consumer must not publish what it extracted
 * before sk_blob_finish() said yes.
 */
#include "config.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "oci/oci-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

#define MAX_DOC_SIZE (4u << 20)
#define MAX_LAYERS 1024

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REF_NAME "org.opencontainers.image.ref.name"

/* Record where and why (first failure wins); returns err for chaining. */
static int diag_set(struct shift_error *diag, int err, const char *where,
		    const char *why)
{
	return sk_error_first(diag, err, where, why);
}

bool sk_oci_digest_valid(const char *digest)
{
	size_t i;

	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return false;
	digest += 7;
	for (i = 0; i < SK_SHA256_HEX; i++)
		if (!((digest[i] >= '0' && digest[i] <= '9') ||
		      (digest[i] >= 'a' && digest[i] <= 'f')))
			return false;
	return digest[i] == '\0';
}

static void hex(const unsigned char *md, unsigned len, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = x[md[i] >> 4];
		out[2 * i + 1] = x[md[i] & 15];
	}
	out[2 * len] = '\0';
}

static int blob_openat(const struct shift_oci_image *img, const char *digest)
{
	char path[16 + SK_SHA256_HEX];
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "blobs/sha256/%s", digest + 7);
	fd = sys_openat2(img->layout_fd, path, &how);
	if (fd < 0 && errno == ENOSYS)
		fd = openat(img->layout_fd, path,
			    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		safe_close(fd);
		return -EINVAL;
	}
	return fd;
}

int sk_blob_open(const struct shift_oci_image *img, const char *digest,
		 uint64_t size, struct sk_blob **ret)
{
	struct sk_blob *b;
	int fd;

	if (!sk_oci_digest_valid(digest))
		return -EINVAL;
	fd = blob_openat(img, digest);
	if (fd < 0)
		return fd;
	b = calloc(1, sizeof(*b));
	if (!b) {
		safe_close(fd);
		return -ENOMEM;
	}
	b->fd = fd;
	b->md = EVP_MD_CTX_new();
	if (!b->md || !EVP_DigestInit_ex(b->md, EVP_sha256(), NULL)) {
		sk_blob_free(b);
		return -ENOMEM;
	}
	memcpy(b->expect, digest + 7, SK_SHA256_HEX + 1);
	b->expect_size = size;
	*ret = b;
	return 0;
}

ssize_t sk_blob_read(struct sk_blob *b)
{
	ssize_t n;

	do
		n = read(b->fd, b->buf, sizeof(b->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if (n > 0) {
		b->got_size += (uint64_t)n;
		/* Stop early on a blob longer than the manifest says. */
		if (b->expect_size != UINT64_MAX && b->got_size > b->expect_size)
			return -EBADMSG;
		EVP_DigestUpdate(b->md, b->buf, (size_t)n);
	}
	return n;
}

int sk_blob_finish(struct sk_blob *b)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char got[2 * EVP_MAX_MD_SIZE + 1];
	unsigned len = 0;
	ssize_t n;

	while ((n = sk_blob_read(b)) > 0)
		;
	if (n < 0)
		return (int)n;
	if (b->expect_size != UINT64_MAX && b->got_size != b->expect_size)
		return -EBADMSG;
	if (!EVP_DigestFinal_ex(b->md, md, &len))
		return -EIO;
	hex(md, len, got);
	if (strcmp(got, b->expect) != 0) {
		sk_debug("blob sha256:%s hashes to sha256:%s", b->expect, got);
		return -EBADMSG;
	}
	return 0;
}

void sk_blob_free(struct sk_blob *b)
{
	if (!b)
		return;
	safe_close(b->fd);
	EVP_MD_CTX_free(b->md);
	free(b);
}

static void blob_freep(struct sk_blob **b)
{
	sk_blob_free(*b);
}

static void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* Parse a whole small document from a buffer into an object. */
static int parse_json(const char *buf, size_t len, struct json_object **ret)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)len ||
	    !json_object_is_type(o, json_type_object)) {
		/* Trailing whitespace is fine, anything else is not. */
		size_t off = (size_t)tok->char_offset;

		while (o && off < len && strchr(" \t\r\n", buf[off]))
			off++;
		if (!o || off != len ||
		    !json_object_is_type(o, json_type_object)) {
			if (o)
				json_object_put(o);
			json_tokener_free(tok);
			return -EBADMSG;
		}
	}
	json_tokener_free(tok);
	*ret = o;
	return 0;
}

/* Read a small blob whole, verify its digest, parse it. */
static int read_doc(const struct shift_oci_image *img, const char *digest,
		    uint64_t size, struct json_object **ret,
		    struct shift_error *diag)
{
	_cleanup_(blob_freep) struct sk_blob *b = NULL;
	_cleanup_free_ char *doc = NULL;
	size_t len = 0;
	ssize_t n;
	int r;

	if (!sk_oci_digest_valid(digest))
		return diag_set(diag, -EINVAL, digest,
				"not a sha256 digest (only sha256 is supported)");
	r = sk_blob_open(img, digest, size, &b);
	if (r < 0)
		return diag_set(diag, r, digest, "cannot open the blob");
	doc = malloc(MAX_DOC_SIZE);
	if (!doc)
		return -ENOMEM;
	while ((n = sk_blob_read(b)) > 0) {
		if (len + (size_t)n > MAX_DOC_SIZE)
			return diag_set(diag, -EFBIG, digest,
					"document larger than 4 MiB");
		memcpy(doc + len, b->buf, (size_t)n);
		len += (size_t)n;
	}
	if (n == -EBADMSG)
		return diag_set(diag, (int)n, digest,
				"size differs from its descriptor");
	if (n < 0)
		return diag_set(diag, (int)n, digest, NULL);
	r = sk_blob_finish(b);
	if (r < 0)
		return diag_set(diag, r, digest,
				b->got_size != size && size != UINT64_MAX
					? "size differs from its descriptor"
					: "digest mismatch");
	r = parse_json(doc, len, ret);
	if (r < 0)
		return diag_set(diag, r, digest, "not a JSON object");
	return 0;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static struct json_object *jget(struct json_object *o, const char *key,
				enum json_type type)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* A descriptor's "size", or UINT64_MAX when absent (then unchecked). */
static uint64_t jsize(struct json_object *d)
{
	struct json_object *v = jget(d, "size", json_type_int);

	if (!v || json_object_get_int64(v) < 0)
		return UINT64_MAX;
	return (uint64_t)json_object_get_int64(v);
}

static const char *go_arch(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "";
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	return u.machine;
}

/*
 * Choose a manifest descriptor from an index's "manifests": by tag when
 * given, else the only one; nested indexes pick this machine's platform.
 */
static int pick_manifest(const struct shift_oci_image *img,
			 struct json_object *index, const char *tag,
			 unsigned depth, char **ret_digest, uint64_t *ret_size,
			 struct shift_error *diag)
{
	struct json_object *list = jget(index, "manifests", json_type_array);
	struct json_object *pick = NULL;
	const char *digest, *mt;
	size_t n, i, matches = 0;

	if (!list)
		return diag_set(diag, -EBADMSG, "index.json",
				"no \"manifests\" array");
	n = json_object_array_length(list);
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(list, i);
		struct json_object *ann = jget(d, "annotations",
					       json_type_object);
		struct json_object *plat = jget(d, "platform", json_type_object);
		const char *name = jstr(ann, REF_NAME);

		if (tag && depth == 0 && (!name || strcmp(name, tag) != 0))
			continue;
		if (!tag && depth > 0 && plat &&
		    (!jstr(plat, "architecture") ||
		     strcmp(jstr(plat, "architecture"), go_arch()) != 0))
			continue;
		if (!pick)
			pick = d;
		matches++;
	}
	if (!pick && tag && depth == 0)
		return diag_set(diag, -ENOENT, tag,
				"no image with this tag in the layout");
	if (!pick)
		return diag_set(diag, -ENOENT, "index.json",
				"no image for this machine in the index");
	if (matches > 1 && depth == 0)
		return diag_set(diag, -ENOTUNIQ, img->layout,
				tag ? "several images carry this tag"
				    : "the layout holds several images (give IMAGE as LAYOUT:TAG)");
	digest = jstr(pick, "digest");
	mt = jstr(pick, "mediaType");
	if (!sk_oci_digest_valid(digest))
		return diag_set(diag, -EINVAL, digest ? digest : "index.json",
				"not a sha256 digest (only sha256 is supported)");
	if (mt && (!strcmp(mt, MT_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) {
		_cleanup_json_ struct json_object *sub = NULL;
		int r;

		if (depth >= 4)
			return diag_set(diag, -ELOOP, digest,
					"indexes nested too deep");
		r = read_doc(img, digest, jsize(pick), &sub, diag);
		if (r < 0)
			return r;
		return pick_manifest(img, sub, NULL, depth + 1, ret_digest,
				     ret_size, diag);
	}
	if (mt && strcmp(mt, MT_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST))
		return diag_set(diag, -EOPNOTSUPP, mt,
				"not an image manifest media type");
	*ret_size = jsize(pick);
	*ret_digest = strdup(digest);
	return *ret_digest ? 0 : -ENOMEM;
}

static bool layer_type_known(const char *mt)
{
	static const char *const known[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.diff.tar",
	};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(mt, known[i]))
			return true;
	return false;
}

/*
 * A config's diff_id: 0 for sha256, -EOPNOTSUPP for another well-formed
 * algorithm (the image spec's "algorithm:encoded"), else -EBADMSG.
 */
static int diff_id_check(const char *diff)
{
	size_t alg;

	if (sk_oci_digest_valid(diff))
		return 0;
	if (!diff)
		return -EBADMSG;
	alg = strspn(diff, "abcdefghijklmnopqrstuvwxyz0123456789+._-");
	if (alg > 0 && diff[alg] == ':' && diff[alg + 1] &&
	    strncmp(diff, "sha256:", 7) != 0)
		return -EOPNOTSUPP;
	return -EBADMSG;
}

static int load_manifest(struct shift_oci_image *img, uint64_t size,
			 struct shift_error *diag)
{
	_cleanup_json_ struct json_object *man = NULL, *cfg = NULL;
	struct json_object *config, *layers, *diffs = NULL, *rootfs;
	const char *cd;
	size_t n, i;
	int r;

	r = read_doc(img, img->manifest_digest, size, &man, diag);
	if (r < 0)
		return r;
	config = jget(man, "config", json_type_object);
	layers = jget(man, "layers", json_type_array);
	cd = jstr(config, "digest");
	if (!config || !layers || !cd)
		return diag_set(diag, -EBADMSG, img->manifest_digest,
				"manifest lacks \"config\" or \"layers\"");
	img->config_digest = strdup(cd);
	if (!img->config_digest)
		return -ENOMEM;
	r = read_doc(img, cd, jsize(config), &cfg, diag);
	if (r < 0)
		return r;
	rootfs = jget(cfg, "rootfs", json_type_object);
	diffs = jget(rootfs, "diff_ids", json_type_array);

	n = json_object_array_length(layers);
	if (n > MAX_LAYERS)
		return diag_set(diag, -E2BIG, img->manifest_digest,
				"more than 1024 layers");
	/* Required by the image spec: every layer is checked against it. */
	if (!diffs && n > 0)
		return diag_set(diag, -EBADMSG, cd,
				"config has no rootfs.diff_ids");
	if (diffs && json_object_array_length(diffs) != n)
		return diag_set(diag, -EBADMSG, cd,
				"config's diff_ids don't match the layers");
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!img->layers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(layers, i);
		struct json_object *sz = jget(d, "size", json_type_int);
		struct sk_oci_layer *l = &img->layers[i];
		const char *digest = jstr(d, "digest"), *mt = jstr(d, "mediaType");
		struct json_object *dv = json_object_array_get_idx(diffs, i);
		const char *diff = json_object_is_type(dv, json_type_string)
					   ? json_object_get_string(dv)
					   : NULL;
		int rd;

		img->n_layers = (unsigned)i + 1;
		if (!sk_oci_digest_valid(digest))
			return diag_set(diag, -EINVAL,
					digest ? digest : img->manifest_digest,
					"layer digest is not sha256");
		if (!mt || !layer_type_known(mt))
			return diag_set(diag, -EOPNOTSUPP,
					mt ? mt : img->manifest_digest,
					"unsupported layer media type");
		if (!sz || json_object_get_int64(sz) < 0)
			return diag_set(diag, -EBADMSG, digest,
					"layer descriptor without a size");
		rd = diff_id_check(diff);
		if (rd < 0)
			return diag_set(diag, rd, digest,
					rd == -EOPNOTSUPP
						? "the config's diff_id for this layer uses an unsupported algorithm (only sha256 is supported)"
						: "the config's diff_id for this layer is malformed (want \"sha256:\" and 64 lowercase hex digits)");
		l->digest = strdup(digest);
		l->media_type = strdup(mt);
		l->size = (uint64_t)json_object_get_int64(sz);
		l->diff_id = strdup(diff);
		if (!l->digest || !l->media_type || !l->diff_id)
			return -ENOMEM;
	}
	img->n_layers = (unsigned)n;
	return 0;
}

int shift_oci_image_open(const char *image, struct shift_oci_image **ret,
			 struct shift_error *diag)
{
	_cleanup_json_ struct json_object *index = NULL, *layout = NULL;
	_cleanup_free_ char *dir = NULL, *buf = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct shift_oci_image *img;
	const char *tag = NULL, *ver;
	uint64_t msize = UINT64_MAX;
	struct stat st;
	ssize_t n;
	char *colon;
	int r;

	if (!image || !*image)
		return -EINVAL;
	dir = strdup(image);
	if (!dir)
		return -ENOMEM;
	/* LAYOUT:TAG, unless the whole argument names a directory. */
	colon = strrchr(dir, ':');
	if (colon && !strchr(colon, '/') &&
	    !(stat(dir, &st) == 0 && S_ISDIR(st.st_mode))) {
		*colon = '\0';
		tag = colon + 1;
		if (!*tag)
			tag = NULL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->layout_fd = -EBADF;
	img->layout = strdup(dir);
	if (!img->layout) {
		shift_oci_image_free(img);
		return -ENOMEM;
	}
	img->layout_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (img->layout_fd < 0) {
		r = negative_errno();
		shift_oci_image_free(img);
		return diag_set(diag, r, dir, "cannot open the image layout");
	}

	/* oci-layout and index.json: small regular files at the top. */
	buf = malloc(MAX_DOC_SIZE + 1);
	if (!buf) {
		shift_oci_image_free(img);
		return -ENOMEM;
	}
	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass ? "index.json" : "oci-layout";
		struct json_object **o = pass ? &index : &layout;
		size_t len = 0;

		fd = openat(img->layout_fd, name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			r = fd < 0 ? negative_errno() : -EINVAL;
			fd = safe_close(fd);
			shift_oci_image_free(img);
			/* The real reason: umoci writes index.json 0600. */
			return diag_set(diag, r, name,
					r == -ENOENT ? "not an OCI image layout (missing)"
					: r == -EACCES ? "cannot read it: permission denied (umoci makes it mode 0600: run as its owner or root)"
					: r == -ELOOP ? "not an OCI image layout (a symbolic link)"
					: r == -EINVAL ? "not an OCI image layout (not a regular file)"
						       : "cannot open it");
		}
		while ((n = read(fd, buf + len, MAX_DOC_SIZE + 1 - len)) > 0)
			len += (size_t)n;
		fd = safe_close(fd);
		r = n < 0 ? -EIO : len > MAX_DOC_SIZE ? -EFBIG
						      : parse_json(buf, len, o);
		if (r < 0) {
			shift_oci_image_free(img);
			return diag_set(diag, r, name, "not a JSON object");
		}
	}
	ver = jstr(layout, "imageLayoutVersion");
	if (!ver || strncmp(ver, "1.", 2) != 0) {
		shift_oci_image_free(img);
		return diag_set(diag, -EOPNOTSUPP, "oci-layout",
				"unsupported imageLayoutVersion (want 1.x)");
	}
	r = pick_manifest(img, index, tag, 0, &img->manifest_digest, &msize,
			  diag);
	if (r >= 0)
		r = load_manifest(img, msize, diag);
	if (r < 0) {
		shift_oci_image_free(img);
		return r;
	}
	*ret = img;
	return 0;
}

void shift_oci_image_free(struct shift_oci_image *img)
{
	if (!img)
		return;
	for (unsigned i = 0; i < img->n_layers; i++) {
		free(img->layers[i].digest);
		free(img->layers[i].media_type);
		free(img->layers[i].diff_id);
	}
	free(img->layers);
	free(img->manifest_digest);
	free(img->config_digest);
	free(img->layout);
	safe_close(img->layout_fd);
	free(img);
}

unsigned shift_oci_layer_count(const struct shift_oci_image *img)
{
	return img ? img->n_layers : 0;
}

int shift_oci_layer_get(const struct shift_oci_image *img, unsigned i,
			struct shift_oci_layer *ret)
{
	if (!img || i >= img->n_layers)
		return -ERANGE;
	ret->digest = img->layers[i].digest;
	ret->media_type = img->layers[i].media_type;
	ret->size = img->layers[i].size;
	ret->diff_id = img->layers[i].diff_id;
	return 0;
}

const char *shift_oci_image_digest(const struct shift_oci_image *img)
{
	return img ? img->manifest_digest : NULL;
}
