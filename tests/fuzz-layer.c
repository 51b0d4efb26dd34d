/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the layer reader: each input becomes the one layer
 * blob of a fresh OCI layout (with a matching digest, so the input reaches
 * libarchive and the extraction code), unpacked flat with a map into a
 * scratch directory that is removed afterwards.  An input that starts as
 * gzip or zstd is declared as such, so the decompressors are fuzzed too
 * (its diff_id, the blob's digest, then mismatches: checked at the end).  Whatever the input, the
 * unpack must not crash, leak, or write outside its temp directory.
 *
 *   make fuzz && build/fuzz/fuzz-layer -max_total_time=60 CORPUS_DIR
 *
 * Built only by "make fuzz" (clang -fsanitize=fuzzer,address,undefined).
 * Run it as root in a throwaway VM or container: it creates device nodes
 * and files owned by arbitrary ids in $TMPDIR.
 */
#include "config.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static struct shift_idmap *map;

static void put(const char *dir, const void *p, size_t n, char digest[72])
{
	static const char x[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned len = 0;
	char path[256];
	int fd;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	strcpy(digest, "sha256:");
	for (int i = 0; i < 32; i++) {
		digest[7 + 2 * i] = x[md[i] >> 4];
		digest[8 + 2 * i] = x[md[i] & 15];
	}
	digest[71] = '\0';
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

static void put_file(const char *dir, const char *name, const char *s)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f)
		abort();
	fputs(s, f);
	fclose(f);
}

static void setup(void)
{
	char path[128];

	snprintf(root, sizeof(root), "%s/fuzz-layer.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root))
		abort();
	snprintf(path, sizeof(path), "%s/blobs", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256", root);
	mkdir(path, 0755);
	put_file(root, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	map = shift_idmap_new();
	if (!map || shift_idmap_parse(map, "0:100000:65536", NULL) < 0)
		abort();
}

/* The layer media type the input's first bytes claim. */
static const char *media_type(const uint8_t *data, size_t size)
{
	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
		return "application/vnd.oci.image.layer.v1.tar+gzip";
	if (size >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f &&
	    data[3] == 0xfd)
		return "application/vnd.oci.image.layer.v1.tar+zstd";
	return "application/vnd.oci.image.layer.v1.tar";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	char ld[72], cd[72], md[72], *cfg, *man, *idx, dest[128], cmd[200];
	int cl, ml;

	if (!root[0])
		setup();
	put(root, data, size, ld);
	cl = asprintf(&cfg, "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", ld);
	put(root, cfg, (size_t)cl, cd);
	ml = asprintf(&man, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":%d},"
			    "\"layers\":[{\"mediaType\":\"%s\","
			    "\"digest\":\"%s\",\"size\":%zu}]}",
		      cd, cl, media_type(data, size), ld, size);
	put(root, man, (size_t)ml, md);
	if (asprintf(&idx, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":%d}]}",
		     md, ml) < 0)
		abort();
	put_file(root, "index.json", idx);

	if (shift_oci_image_open(root, &img, &d) == 0) {
		snprintf(dest, sizeof(dest), "%s/rootfs", root);
		(void)shift_layer_unpack_flat(img, dest, map, 0, &d);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dest);
		if (system(cmd) != 0)
			abort();
	}
	shift_error_clear(&d);
	shift_oci_image_free(img);
	/* Keep the layout small: drop this input's blobs. */
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/blobs/sha256/*", root);
	if (system(cmd) != 0)
		abort();
	free(cfg);
	free(man);
	free(idx);
	return 0;
}
