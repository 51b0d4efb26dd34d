/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layouts and layer extraction: digests, path normalisation, the
 * layout reader's refusals, and a flat unpack with a map built from an
 * archive made here with libarchive.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci-internal.h"
#include "lib.h"

static const char *norm(const char *in, int *ret)
{
	static char out[4096];
	const char *why = NULL;

	*ret = sk_layer_path_normalise(in, out, sizeof(out), &why);
	return *ret < 0 ? why : out;
}

TEST(digest_valid)
{
	CHECK(sk_oci_digest_valid("sha256:"
				  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!sk_oci_digest_valid("sha256:"
				   "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	CHECK(!sk_oci_digest_valid("sha256:e3b0"));
	CHECK(!sk_oci_digest_valid("sha512:"
				   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!sk_oci_digest_valid("sha256:../../../../etc/passwd"));
	CHECK(!sk_oci_digest_valid("sha256:"
				   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/"));
	CHECK(!sk_oci_digest_valid(NULL));
}

TEST(path_normalise)
{
	int r;

	CHECK_EQ_STR(norm("./usr/bin/", &r), "usr/bin");
	CHECK_EQ_STR(norm("a//b/./c", &r), "a/b/c");
	CHECK_EQ_STR(norm("./", &r), "");
	CHECK_EQ_STR(norm("/", &r), "");
	CHECK_EQ_STR(norm("..a/b..", &r), "..a/b..");
	norm("../x", &r);
	CHECK_EQ_INT(r, -EPERM);
	norm("a/../../x", &r);
	CHECK_EQ_INT(r, -EPERM);
	norm("a/..", &r);
	CHECK_EQ_INT(r, -EPERM);
	norm("/etc/passwd", &r);
	CHECK_EQ_INT(r, -EPERM);
	norm("", &r);
	CHECK_EQ_INT(r, -EINVAL);
}

TEST(not_a_layout)
{
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	char dir[] = "/tmp/test-oci.XXXXXX";

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ_INT(shift_oci_image_open(dir, &img, &d), -ENOENT);
	CHECK(d.why != NULL);
	CHECK_EQ_STR(d.path, "oci-layout");
	shift_error_clear(&d);
	CHECK(d.path == NULL);
	CHECK_EQ_INT(shift_oci_image_open("/nonexistent-layout", &img, &d),
		     -ENOENT);
	shift_error_clear(&d);
	rmdir(dir);
}

/* ---- a layout made here ---- */

struct mem {
	unsigned char *p;
	size_t len;
};

static la_ssize_t wcb(struct archive *a, void *data, const void *p, size_t n)
{
	struct mem *m = data;

	m->p = realloc(m->p, m->len + n);
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return (la_ssize_t)n;
}

static void put(const char *dir, const void *p, size_t n, char digest[72])
{
	static const char x[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned len = 0;
	char path[4096];
	FILE *f;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	strcpy(digest, "sha256:");
	for (int i = 0; i < 32; i++) {
		digest[7 + 2 * i] = x[md[i] >> 4];
		digest[8 + 2 * i] = x[md[i] & 15];
	}
	digest[71] = '\0';
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
	f = fopen(path, "we");
	fwrite(p, 1, n, f);
	fclose(f);
}

static void entry(struct archive *a, const char *path, mode_t type,
		  int64_t uid, const char *data)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, uid);
	archive_entry_set_size(e, data ? (int64_t)strlen(data) : 0);
	archive_write_header(a, e);
	if (data)
		archive_write_data(a, data, strlen(data));
	archive_entry_free(e);
}

/* The layer's tar: "d/" (uid 1000), "d/f", "evil" if bad. */
static void write_tar(struct mem *tar, bool bad)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	archive_write_open(a, tar, NULL, wcb, NULL);
	entry(a, "./", AE_IFDIR, 0, NULL);
	entry(a, "d", AE_IFDIR, 1000, NULL);
	entry(a, "d/f", AE_IFREG, 1000, "hello\n");
	if (bad)
		entry(a, "d/../../evil", AE_IFREG, 0, "x");
	archive_write_close(a);
	archive_write_free(a);
}

/* plain, gzip'ed byte for byte (no padding added) into gz. */
static void gzip_mem(const struct mem *plain, struct mem *gz)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, gz, NULL, wcb, NULL);
	archive_entry_set_pathname(e, "layer.tar");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (int64_t)plain->len);
	archive_write_header(a, e);
	archive_write_data(a, plain->p, plain->len);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

/* A one-layer layout in dir whose layer is write_tar(bad), gzip'ed; the
 * config's diff_id (the digest of the uncompressed tar) goes to diff. */
static void make_layout(const char *dir, bool bad, char diff[72])
{
	struct mem tar = { 0 }, plain = { 0 };
	char ld[72], cd[72], md[72], path[4096], *cfg, *man, *idx;
	int cl, ml;
	FILE *f;

	snprintf(path, sizeof(path), "%s/blobs", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	mkdir(path, 0755);
	write_tar(&plain, bad);
	put(dir, plain.p, plain.len, diff);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, diff + 7);
	unlink(path);
	gzip_mem(&plain, &tar);
	free(plain.p);
	put(dir, tar.p, tar.len, ld);
	cl = asprintf(&cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\","
			    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
		      diff);
	put(dir, cfg, (size_t)cl, cd);
	ml = asprintf(&man, "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
			    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
			    "\"size\":%d},\"layers\":[{\"mediaType\":"
			    "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":"
			    "\"%s\",\"size\":%zu}]}",
		      cd, cl, ld, tar.len);
	put(dir, man, (size_t)ml, md);
	if (asprintf(&idx, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			   "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
			   "\"%s\",\"size\":%d,\"annotations\":{"
			   "\"org.opencontainers.image.ref.name\":\"t\"}}]}",
		     md, ml) < 0)
		return;
	snprintf(path, sizeof(path), "%s/index.json", dir);
	f = fopen(path, "we");
	fputs(idx, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	f = fopen(path, "we");
	fputs("{\"imageLayoutVersion\":\"1.0.0\"}", f);
	fclose(f);
	free(tar.p);
	free(cfg);
	free(man);
	free(idx);
}

static void rm_tree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("#   cleanup of %s failed\n", dir);
}

TEST(layout_and_flat_unpack)
{
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	struct shift_oci_layer l;
	struct shift_idmap *map;
	char dir[] = "/tmp/test-oci.XXXXXX", image[64], dest[128], p[160], diff[72];
	struct stat st;

	if (geteuid() != 0)
		SKIP("needs root (chown of extracted files)");
	CHECK(mkdtemp(dir) != NULL);
	make_layout(dir, false, diff);
	snprintf(image, sizeof(image), "%s:t", dir);
	CHECK_EQ_INT(shift_oci_image_open(image, &img, &d), 0);
	CHECK_EQ_INT(shift_oci_layer_count(img), 1);
	CHECK_EQ_INT(shift_oci_layer_get(img, 0, &l), 0);
	CHECK(sk_oci_digest_valid(l.digest));
	CHECK(l.diff_id && !strcmp(l.diff_id, diff));
	CHECK(strcmp(l.diff_id, l.digest) != 0);
	CHECK_EQ_INT(shift_oci_layer_get(img, 1, &l), -ERANGE);

	map = shift_idmap_new();
	CHECK_EQ_INT(shift_idmap_parse(map, "0:100000:65536", NULL), 0);
	snprintf(dest, sizeof(dest), "%s/rootfs", dir);
	CHECK_EQ_INT(shift_layer_unpack_flat(img, dest, map, 0, &d), 0);
	snprintf(p, sizeof(p), "%s/d/f", dest);
	CHECK_EQ_INT(lstat(p, &st), 0);
	CHECK_EQ_INT(st.st_uid, 101000);
	CHECK_EQ_INT(st.st_gid, 101000);
	CHECK_EQ_INT(lstat(dest, &st), 0);
	CHECK_EQ_INT(st.st_uid, 100000);
	/* A second unpack into a non-empty DEST is refused. */
	CHECK_EQ_INT(shift_layer_unpack_flat(img, dest, map, 0, &d), -EEXIST);
	shift_error_clear(&d);
	shift_oci_image_free(img);
	shift_idmap_free(map);
	rm_tree(dir);
}

TEST(bad_entry_leaves_nothing)
{
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	char dir[] = "/tmp/test-oci.XXXXXX", dest[128], diff[72];
	struct stat st;

	if (geteuid() != 0)
		SKIP("needs root (chown of extracted files)");
	CHECK(mkdtemp(dir) != NULL);
	make_layout(dir, true, diff);
	CHECK_EQ_INT(shift_oci_image_open(dir, &img, &d), 0);
	snprintf(dest, sizeof(dest), "%s/rootfs", dir);
	CHECK_EQ_INT(shift_layer_unpack_flat(img, dest, NULL, 0, &d), -EPERM);
	CHECK_EQ_STR(d.path, "d/../../evil");
	CHECK(d.why && strstr(d.why, "'..'"));
	CHECK(lstat(dest, &st) < 0 && errno == ENOENT);
	shift_error_clear(&d);
	shift_oci_image_free(img);
	rm_tree(dir);
}

struct seen {
	unsigned n;
	char paths[8][64];
	uint64_t last_read, total;
};

static void on_entry(const struct shift_layer_event *ev, void *userdata)
{
	struct seen *s = userdata;

	if (s->n < 8)
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s %s",
			 ev->what, ev->path);
	s->n++;
	s->last_read = ev->bytes_read;
	s->total = ev->bytes_total;
}

TEST(opts_dry_run_and_cancel)
{
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	char dir[] = "/tmp/test-oci.XXXXXX", dest[128], store[128], diff[72];
	volatile sig_atomic_t cancel = 0;
	struct seen seen = { 0 };
	struct shift_layer_opts o = {
		.flags = SHIFT_LAYER_DRY_RUN,
		.cancel = &cancel,
		.on_entry = on_entry,
		.userdata = &seen,
	};
	struct stat st;

	if (geteuid() != 0)
		SKIP("needs root (chown of extracted files)");
	CHECK(mkdtemp(dir) != NULL);
	make_layout(dir, false, diff);
	CHECK_EQ_INT(shift_oci_image_open(dir, &img, &d), 0);
	snprintf(dest, sizeof(dest), "%s/rootfs", dir);
	snprintf(store, sizeof(store), "%s/store", dir);
	/* A dry run reports every entry and makes nothing. */
	CHECK_EQ_INT(shift_layer_unpack_flat_opts(img, dest, NULL, &o, &d), 0);
	CHECK_EQ_INT(seen.n, 3);
	CHECK_EQ_STR(seen.paths[0], "dir ");
	CHECK_EQ_STR(seen.paths[1], "dir d");
	CHECK_EQ_STR(seen.paths[2], "file d/f");
	CHECK(seen.total > 0 && seen.last_read <= seen.total);
	CHECK(lstat(dest, &st) < 0 && errno == ENOENT);
	CHECK_EQ_INT(shift_layer_store_unpack_opts(img, store, &o, &d), 1);
	CHECK(lstat(store, &st) < 0 && errno == ENOENT);
	/* Cancelled: -ECANCELED, nothing left, in both modes. */
	o.flags = 0;
	cancel = 1;
	CHECK_EQ_INT(shift_layer_unpack_flat_opts(img, dest, NULL, &o, &d),
		     -ECANCELED);
	CHECK(d.why && !strcmp(d.why, "interrupted"));
	shift_error_clear(&d);
	CHECK(lstat(dest, &st) < 0 && errno == ENOENT);
	CHECK_EQ_INT(shift_layer_store_unpack_opts(img, store, &o, &d),
		     -ECANCELED);
	shift_error_clear(&d);
	/* Then a real one, and gc keeps the recorded image's layer. */
	cancel = 0;
	CHECK_EQ_INT(shift_layer_store_unpack_opts(img, store, &o, &d), 1);
	CHECK_EQ_INT(shift_layer_gc(store, NULL, 0, NULL, NULL, &d), 0);
	CHECK_EQ_INT(shift_layer_store_unpack_opts(img, store, &o, &d), 0);
	shift_error_clear(&d);
	shift_oci_image_free(img);
	rm_tree(dir);
}

TEST_MAIN()
