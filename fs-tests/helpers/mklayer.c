/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mklayer: craft OCI image layouts from text specs, including the hostile
 * ones shift-layer must refuse (paths with "..", absolute paths, links
 * out of the root, devices, truncated archives).  Nothing here is checked:
 * what the spec says goes into the tar as it is.
 *
 *   mklayer [--tag T] [--compress gzip|zstd|none] [--truncate N] [--pad N]
 *           [--diff-id STRING | --no-diff-ids] LAYOUT SPEC...
 *
 * Each SPEC file (or "-" for stdin) becomes one layer, bottom first ("@TAR"
 * takes the file TAR as the layer's tar stream as it is); the
 * image is added to LAYOUT's index.json (created if missing) under tag T
 * (default "latest").  --truncate N cuts the last layer's tar to N bytes
 * before compressing it (digests are of what is written: only the archive
 * is damaged).  --pad N appends N zero bytes to the last layer's tar
 * after its end-of-archive blocks (as tar's blocking does; the diff_id
 * covers them).  --diff-id writes STRING verbatim as the last layer's
 * diff_id in the config, --no-diff-ids leaves rootfs.diff_ids out.
 * Spec lines, "#" starts a comment:
 *
 *   dir PATH [UID GID MODE]
 *   file PATH [UID GID MODE [CONTENT]]       CONTENT: one word, "\n" added
 *   big PATH SIZE [UID GID MODE]             SIZE bytes of 'x'
 *   symlink PATH TARGET [UID GID]
 *   hardlink PATH TARGET
 *   chr|blk PATH MAJOR MINOR [UID GID MODE]
 *   fifo PATH [UID GID MODE]
 *   xattr NAME HEX                           on the entry before
 *   acl access|default TEXT                  POSIX.1e text, on the entry before
 *
 * Prints the manifest digest.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct buf {
	unsigned char *p;
	size_t len, cap;
};

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mklayer: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("%s", "out of memory");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static la_ssize_t wcb(struct archive *a, void *data, const void *p, size_t n)
{
	buf_add(data, p, n);
	return (la_ssize_t)n;
}

static void sha256(const void *p, size_t n, char out[72])
{
	static const char x[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < 32; i++) {
		out[7 + 2 * i] = x[md[i] >> 4];
		out[8 + 2 * i] = x[md[i] & 15];
	}
	out[71] = '\0';
}

static void put_blob(const char *layout, const void *p, size_t n,
		     char digest[72])
{
	char path[4096];
	FILE *f;

	sha256(p, n, digest);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, digest + 7);
	f = fopen(path, "we");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die("Failed to write '%s'", path);
}

static unsigned long num(const char *s, unsigned long def)
{
	return s ? strtoul(s, NULL, 0) : def;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

/* Build one layer's tar from a spec file. */
static void make_tar(FILE *in, struct buf *out)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = NULL;
	char line[8192];
	struct buf data = { 0 };

	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, out, NULL, wcb, NULL) != ARCHIVE_OK)
		die("%s", archive_error_string(a));

	for (;;) {
		char *tok[10] = { 0 }, *save = NULL, *p;
		bool more = fgets(line, sizeof(line), in) != NULL;
		int n = 0;

		if (more) {
			line[strcspn(line, "\n")] = '\0';
			if ((p = strchr(line, '#')) && (p == line || p[-1] == ' '))
				*p = '\0';
			for (p = strtok_r(line, " \t", &save); p && n < 10;
			     p = strtok_r(NULL, " \t", &save))
				tok[n++] = p;
			if (n == 0)
				continue;
		}
		/* Attributes modify the pending entry. */
		if (more && e && !strcmp(tok[0], "xattr") && n == 3) {
			size_t len = strlen(tok[2]) / 2;
			unsigned char *v = malloc(len + 1);

			for (size_t i = 0; i < len; i++)
				v[i] = (unsigned char)(unhex(tok[2][2 * i]) << 4 |
						       unhex(tok[2][2 * i + 1]));
			archive_entry_xattr_add_entry(e, tok[1], v, len);
			free(v);
			continue;
		}
		if (more && e && !strcmp(tok[0], "acl") && n == 3) {
			int t = !strcmp(tok[1], "default")
					? ARCHIVE_ENTRY_ACL_TYPE_DEFAULT
					: ARCHIVE_ENTRY_ACL_TYPE_ACCESS;

			if (archive_entry_acl_from_text(e, tok[2], t) != ARCHIVE_OK)
				die("bad acl '%s'", tok[2]);
			continue;
		}
		/* Flush the pending entry. */
		if (e) {
			if (archive_write_header(a, e) < ARCHIVE_WARN)
				die("%s", archive_error_string(a));
			if (data.len)
				archive_write_data(a, data.p, data.len);
			archive_entry_free(e);
			e = NULL;
			data.len = 0;
		}
		if (!more)
			break;
		if (n < 2)
			die("bad line starting '%s'", tok[0]);
		e = archive_entry_new();
		archive_entry_set_pathname(e, tok[1]);
		archive_entry_set_mtime(e, 1700000000, 0);
		if (!strcmp(tok[0], "dir")) {
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_uid(e, (la_int64_t)num(tok[2], 0));
			archive_entry_set_gid(e, (la_int64_t)num(tok[3], 0));
			archive_entry_set_perm(e, (mode_t)num(tok[4], 0755));
		} else if (!strcmp(tok[0], "file") || !strcmp(tok[0], "big")) {
			archive_entry_set_filetype(e, AE_IFREG);
			if (!strcmp(tok[0], "big")) {
				unsigned long size = num(tok[2], 0);

				for (unsigned long i = 0; i < size; i++)
					buf_add(&data, "x", 1);
				tok[2] = tok[3];
				tok[3] = tok[4];
				tok[4] = tok[5];
				tok[5] = NULL;
			} else if (tok[5]) {
				buf_add(&data, tok[5], strlen(tok[5]));
				buf_add(&data, "\n", 1);
			} else {
				buf_add(&data, tok[1], strlen(tok[1]));
				buf_add(&data, "\n", 1);
			}
			archive_entry_set_size(e, (la_int64_t)data.len);
			archive_entry_set_uid(e, (la_int64_t)num(tok[2], 0));
			archive_entry_set_gid(e, (la_int64_t)num(tok[3], 0));
			archive_entry_set_perm(e, (mode_t)num(tok[4], 0644));
		} else if (!strcmp(tok[0], "symlink") && n >= 3) {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, tok[2]);
			archive_entry_set_uid(e, (la_int64_t)num(tok[3], 0));
			archive_entry_set_gid(e, (la_int64_t)num(tok[4], 0));
			archive_entry_set_perm(e, 0777);
		} else if (!strcmp(tok[0], "hardlink") && n >= 3) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, tok[2]);
			archive_entry_set_perm(e, 0644);
		} else if ((!strcmp(tok[0], "chr") || !strcmp(tok[0], "blk")) &&
			   n >= 4) {
			archive_entry_set_filetype(e, tok[0][0] == 'c' ? AE_IFCHR
								       : AE_IFBLK);
			archive_entry_set_rdevmajor(e, (dev_t)num(tok[2], 0));
			archive_entry_set_rdevminor(e, (dev_t)num(tok[3], 0));
			archive_entry_set_uid(e, (la_int64_t)num(tok[4], 0));
			archive_entry_set_gid(e, (la_int64_t)num(tok[5], 0));
			archive_entry_set_perm(e, (mode_t)num(tok[6], 0600));
		} else if (!strcmp(tok[0], "fifo")) {
			archive_entry_set_filetype(e, AE_IFIFO);
			archive_entry_set_uid(e, (la_int64_t)num(tok[2], 0));
			archive_entry_set_gid(e, (la_int64_t)num(tok[3], 0));
			archive_entry_set_perm(e, (mode_t)num(tok[4], 0644));
		} else {
			die("bad line starting '%s'", tok[0]);
		}
	}
	archive_write_close(a);
	archive_write_free(a);
	free(data.p);
}

static void compress(const struct buf *in, const char *how, struct buf *out)
{
	struct archive *a;
	struct archive_entry *e;

	if (!strcmp(how, "none")) {
		buf_add(out, in->p, in->len);
		return;
	}
	a = archive_write_new();
	archive_write_set_format_raw(a);
	if (!strcmp(how, "gzip")) {
		archive_write_add_filter_gzip(a);
		/* Same input, same blob: no time stamp in the gzip header. */
		archive_write_set_options(a, "gzip:!timestamp");
	}
	else if (!strcmp(how, "zstd"))
		archive_write_add_filter_zstd(a);
	else
		die("unknown compression '%s'", how);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, out, NULL, wcb, NULL);
	e = archive_entry_new();
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "layer");
	archive_entry_set_size(e, (la_int64_t)in->len);
	archive_write_header(a, e);
	archive_write_data(a, in->p, in->len);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "compress", required_argument, NULL, 'c' },
		{ "truncate", required_argument, NULL, 'T' },
		{ "pad", required_argument, NULL, 'P' },
		{ "diff-id", required_argument, NULL, 'D' },
		{ "no-diff-ids", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tag = "latest", *how = "gzip", *layout;
	long truncate_to = -1, pad = 0;
	const char *diff_id = NULL;
	bool no_diff_ids = false;
	char path[4096], digest[72], mdigest[72];
	struct buf layers = { 0 }, diffs = { 0 }, doc = { 0 };
	int c, nl;

	while ((c = getopt_long(argc, argv, "t:c:T:P:D:N", opts, NULL)) != -1) {
		switch (c) {
		case 't': tag = optarg; break;
		case 'c': how = optarg; break;
		case 'T': truncate_to = strtol(optarg, NULL, 0); break;
		case 'P': pad = strtol(optarg, NULL, 0); break;
		case 'D': diff_id = optarg; break;
		case 'N': no_diff_ids = true; break;
		default: return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: mklayer [--tag T] [--compress gzip|zstd|none] [--truncate N] [--pad N] [--diff-id STRING | --no-diff-ids] LAYOUT SPEC...\n");
		return 2;
	}
	layout = argv[optind++];
	mkdir(layout, 0755);
	snprintf(path, sizeof(path), "%s/blobs", layout);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256", layout);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/oci-layout", layout);
	{
		FILE *f = fopen(path, "we");

		if (!f)
			die("Failed to create '%s'", path);
		fputs("{\"imageLayoutVersion\":\"1.0.0\"}", f);
		fclose(f);
	}

	nl = argc - optind;
	for (int i = 0; i < nl; i++) {
		const char *spec = argv[optind + i];
		FILE *in = spec[0] == '@'	  ? NULL
			   : strcmp(spec, "-") ? fopen(spec, "re")
					       : stdin;
		struct buf tar = { 0 }, z = { 0 };
		char diff[512], line[1024];
		const char *mt;

		if (spec[0] == '@') {
			/* "@FILE": FILE is the layer's tar, byte for byte. */
			char chunk[65536];
			size_t got;

			in = fopen(spec + 1, "re");
			if (!in)
				die("Failed to open '%s'", spec + 1);
			while ((got = fread(chunk, 1, sizeof(chunk), in)) > 0)
				buf_add(&tar, chunk, got);
			fclose(in);
		} else {
			if (!in)
				die("Failed to open '%s'", spec);
			make_tar(in, &tar);
			if (in != stdin)
				fclose(in);
		}
		if (i == nl - 1 && truncate_to >= 0 &&
		    (size_t)truncate_to < tar.len)
			tar.len = (size_t)truncate_to;
		for (long j = 0; i == nl - 1 && j < pad; j++)
			buf_add(&tar, "", 1);
		sha256(tar.p, tar.len, diff);
		if (i == nl - 1 && diff_id)
			snprintf(diff, sizeof(diff), "%s", diff_id);
		compress(&tar, how, &z);
		put_blob(layout, z.p, z.len, digest);
		mt = !strcmp(how, "gzip") ? "application/vnd.oci.image.layer.v1.tar+gzip"
		     : !strcmp(how, "zstd") ? "application/vnd.oci.image.layer.v1.tar+zstd"
					    : "application/vnd.oci.image.layer.v1.tar";
		snprintf(line, sizeof(line),
			 "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
			 i ? "," : "", mt, digest, z.len);
		buf_add(&layers, line, strlen(line));
		snprintf(line, sizeof(line), "%s\"%s\"", i ? "," : "", diff);
		buf_add(&diffs, line, strlen(line));
		free(tar.p);
		free(z.p);
	}
	buf_add(&layers, "", 1);
	buf_add(&diffs, "", 1);

	/* config, manifest */
	{
		char *cfg = NULL, *man = NULL, cdigest[72];
		int len;

		len = no_diff_ids
			      ? asprintf(&cfg,
					 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
					 "\"rootfs\":{\"type\":\"layers\"}}")
			      : asprintf(&cfg,
					 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
					 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
					 (char *)diffs.p);
		put_blob(layout, cfg, (size_t)len, cdigest);
		len = asprintf(&man,
			       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			       "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			       "\"digest\":\"%s\",\"size\":%d},\"layers\":[%s]}",
			       cdigest, (int)strlen(cfg), (char *)layers.p);
		put_blob(layout, man, (size_t)len, mdigest);
		printf("%s\n", mdigest);

		/* index.json: keep other tags' entries (one per line). */
		snprintf(path, sizeof(path), "%s/index.json.entries", layout);
		{
			FILE *f = fopen(path, "ae");

			fprintf(f,
				"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
				"\"digest\":\"%s\",\"size\":%d,\"annotations\":"
				"{\"org.opencontainers.image.ref.name\":\"%s\"}}\n",
				mdigest, len, tag);
			fclose(f);
		}
		{
			FILE *f = fopen(path, "re");
			char line[1024];
			int first = 1;

			buf_add(&doc, "{\"schemaVersion\":2,\"manifests\":[", 32);
			while (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\n")] = '\0';
				if (!first)
					buf_add(&doc, ",", 1);
				buf_add(&doc, line, strlen(line));
				first = 0;
			}
			fclose(f);
			buf_add(&doc, "]}", 2);
		}
		snprintf(path, sizeof(path), "%s/index.json", layout);
		{
			FILE *f = fopen(path, "we");

			fwrite(doc.p, 1, doc.len, f);
			fclose(f);
		}
		free(cfg);
		free(man);
	}
	free(layers.p);
	free(diffs.p);
	free(doc.p);
	return 0;
}
