/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ownership manifests: record, write, read back (also with libarchive's own
 * mtree reader), the digest, and checking a tree under a map.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/macros.h"
#include "shift.h"
#include "verify/verify-internal.h"
#include "lib.h"

static char tmpl[] = "/tmp/test-manifest.XXXXXX";
static const char *base_dir;
static char top[300];	 /* base_dir/tree: the tree */
static char mpath[300]; /* base_dir/m: a manifest file */

/* Weird names: the mtree escapes and the canonical order must hold. */
static const char *const names[] = {
	"plain", "with space", "new\nline", "back\\slash", "hash#", "eq=ual",
	"\001ctl", "caf\303\251", "a-b", "a.b", "tab\there",
};

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

/* A raw ACL: user::rw- user:UID:r-- group::r-- group:GID:r-- mask::r-- other::--- */
static size_t make_acl(unsigned char *buf, uint32_t uid, uint32_t gid)
{
	static const uint16_t tags[] = { 1, 2, 4, 8, 0x10, 0x20 };
	static const uint16_t perms[] = { 6, 4, 4, 4, 4, 0 };
	size_t i;

	put_le32(buf, 2);
	for (i = 0; i < 6; i++) {
		put_le16(buf + 4 + 8 * i, tags[i]);
		put_le16(buf + 4 + 8 * i + 2, perms[i]);
		put_le32(buf + 4 + 8 * i + 4,
			 tags[i] == 2 ? uid : tags[i] == 8 ? gid : 0xffffffffu);
	}
	return 4 + 8 * 6;
}

/* cap_net_raw+ep, v2 or v3 with rootid */
static size_t make_caps(unsigned char *buf, int v, uint32_t rootid)
{
	memset(buf, 0, 24);
	put_le32(buf, (v == 3 ? 0x03000000u : 0x02000000u) | 1);
	put_le32(buf + 4, 1u << 13);
	if (v == 3)
		put_le32(buf + 20, rootid);
	return v == 3 ? 24 : 20;
}

static char *p(const char *rel)
{
	static char buf[4][512];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, 512, "%s/%s", top, rel);
	return b;
}

/* The tree, owned base+ids, ACL and fcaps ids base+... */
static int build_tree(uint32_t base)
{
	unsigned char buf[64];
	size_t i, len;
	int fd;

	if (mkdir(p("dir"), 0755) < 0 || mkdir(p("dir/sub"), 02775) < 0 ||
	    lchown(top, base, base) < 0 || lchown(p("dir"), base + 1, base) < 0 ||
	    lchown(p("dir/sub"), base, base + 2) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "dir/%s", names[i]);
		fd = open(p(rel), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		close(fd);
		if (lchown(p(rel), base + (uint32_t)i, base + 100 + (uint32_t)i) < 0)
			return -1;
	}
	fd = open(p("dir/sub/suid"), O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
	if (fd < 0)
		return -1;
	close(fd);
	if (chown(p("dir/sub/suid"), base, base) < 0 ||
	    chmod(p("dir/sub/suid"), 04755) < 0)
		return -1;
	if (symlink("plain", p("dir/link")) < 0 ||
	    lchown(p("dir/link"), base + 7, base + 8) < 0)
		return -1;
	if (mkfifo(p("dir/fifo"), 0600) < 0 || lchown(p("dir/fifo"), base, base) < 0)
		return -1;
	len = make_acl(buf, base + 1000, base + 1001);
	if (setxattr(p("dir/plain"), "system.posix_acl_access", buf, len, 0) < 0)
		return -1;
	len = make_acl(buf, base + 2000, base + 2001);
	if (setxattr(p("dir/sub"), "system.posix_acl_default", buf, len, 0) < 0)
		return -1;
	len = make_caps(buf, base ? 3 : 2, base);
	if (setxattr(p("dir/sub/suid"), "security.capability", buf, len, 0) < 0)
		return -1;
	len = make_caps(buf, 3, base + 1000);
	if (setxattr(p("dir/a.b"), "security.capability", buf, len, 0) < 0)
		return -1;
	/* the setxattr of a capability or chown clears setuid: set it last */
	return chmod(p("dir/sub/suid"), 04755);
}

static int rm_tree(void)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", top, top);
	return system(cmd);
}

static int count_cb(const struct shift_difference *d, void *userdata)
{
	char *log = userdata;
	size_t len = strlen(log);

	printf("#   diff %s %s expected '%s' found '%s'\n", d->path, d->field,
	       d->expected, d->found);
	snprintf(log + len, 4096 - len, "%s|%s|%s|%s\n", d->path, d->field,
		 d->expected, d->found);
	return 0;
}

static struct shift_manifest *roundtrip(struct shift_manifest *m, int *memfd)
{
	struct shift_manifest *r = NULL;
	struct shift_error why = { 0 };
	char path[64];
	int fd = memfd_create("manifest", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ_INT(shift_manifest_write(m, fd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	CHECK_EQ_INT(shift_manifest_read(path, &r, &why), 0);
	if (why.error)
		printf("#   read: %s\n", shift_error_why(&why, 0));
	shift_error_clear(&why);
	*memfd = fd;
	return r;
}

TEST(record_write_read_check)
{
	struct shift_manifest *m = NULL, *r;
	char log[4096] = "";
	int fd = -1;

	if (geteuid() != 0)
		SKIP("needs root (chown, security.capability)");
	CHECK_EQ_INT(build_tree(0), 0);
	CHECK_EQ_INT(shift_manifest_record(top, &m, NULL), 0);
	if (!m)
		return;
	/* ., dir, dir/sub, 11 names, suid, link, fifo */
	CHECK_EQ_INT(shift_manifest_count(m), 3 + ARRAY_SIZE(names) + 3);
	r = roundtrip(m, &fd);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_INT(shift_manifest_count(r), shift_manifest_count(m));
		CHECK_EQ_STR(shift_manifest_digest(r), shift_manifest_digest(m));
		CHECK_EQ_INT(shift_manifest_check(r, NULL, top, 0, count_cb, log, NULL), 0);
		shift_manifest_free(r);
	}
	CHECK_EQ_INT(shift_manifest_check(m, NULL, top, 0, count_cb, log, NULL), 0);
	close(fd);
	shift_manifest_free(m);
	CHECK_EQ_INT(rm_tree(), 0);
}

/* libarchive's own mtree reader understands the body. */
TEST(libarchive_reads_it)
{
	struct shift_manifest *m = NULL;
	struct archive *a;
	struct archive_entry *ae;
	char path[64];
	int fd, n = 0, found_suid = 0;

	if (geteuid() != 0)
		SKIP("needs root (chown, security.capability)");
	CHECK_EQ_INT(build_tree(0), 0);
	CHECK_EQ_INT(shift_manifest_record(top, &m, NULL), 0);
	if (!m)
		return;
	fd = memfd_create("manifest", MFD_CLOEXEC);
	CHECK_EQ_INT(shift_manifest_write(m, fd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	a = archive_read_new();
	archive_read_support_format_mtree(a);
	CHECK_EQ_INT(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ae);

		n++;
		if (name && strstr(name, "sub/suid")) {
			found_suid = 1;
			CHECK_EQ_INT(archive_entry_perm(ae), 04755);
		}
		if (name && strstr(name, "new\nline"))
			CHECK_EQ_INT(archive_entry_uid(ae), 2);
	}
	CHECK_EQ_INT(n, (int)shift_manifest_count(m));
	CHECK(found_suid);
	archive_read_free(a);
	close(fd);
	shift_manifest_free(m);
	CHECK_EQ_INT(rm_tree(), 0);
}

/* What a random tree holds, for libarchive's writer. */
struct rent {
	char path[256];
	unsigned type; /* AE_IF* */
	unsigned perm, uid, gid;
};

static uint64_t rnd_state = 42;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rnd_state >> 33) % n;
}

/* A name of random bytes 1..255 but '/', not "." or "..". */
static void rnd_name(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned c = 1 + rnd(255);

		buf[i] = (char)(c == '/' ? 'x' : c);
	}
	buf[len] = '\0';
	if (buf[0] == '.')
		buf[0] = 'd';
}

static int rnd_fill(const char *rel, int depth, struct rent *ents, int *n,
		    int max)
{
	int k, count = depth ? 2 + (int)rnd(30) : 400;

	for (k = 0; k < count && *n < max; k++) {
		struct rent *e = &ents[*n];
		struct stat st;
		char name[8];
		bool dir = depth < 3 && rnd(3) == 0;

		/* short names over few bytes: shared prefixes, a file and
		 * a directory differing only in their last byte */
		rnd_name(name, 1 + rnd(3));
		if (rnd(2))
			name[0] = "aAb_"[rnd(4)];
		snprintf(e->path, sizeof(e->path), "%s/%s", rel, name);
		if (lstat(p(e->path + 2), &st) == 0)
			continue; /* drawn twice */
		e->perm = rnd(010000);
		e->uid = rnd(3) ? rnd(70000) : 0;
		e->gid = rnd(70000);
		if (dir) {
			e->type = AE_IFDIR;
			e->perm |= 0700; /* so the test can go on below it */
			if (mkdir(p(e->path + 2), 0700) < 0)
				return -1;
		} else if (rnd(5) == 0) {
			e->type = AE_IFLNK;
			e->perm = 0777;
			if (symlink("t", p(e->path + 2)) < 0)
				return -1;
		} else {
			int fd = open(p(e->path + 2), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

			e->type = AE_IFREG;
			if (fd < 0)
				return -1;
			close(fd);
		}
		if (lchown(p(e->path + 2), e->uid, e->gid) < 0 ||
		    (e->type != AE_IFLNK && chmod(p(e->path + 2), e->perm) < 0))
			return -1;
		(*n)++;
		if (dir && rnd_fill(e->path, depth + 1, ents, n, max) < 0)
			return -1;
	}
	return 0;
}

static ssize_t buf_write(struct archive *a, void *userdata, const void *buf,
			 size_t len)
{
	FILE *f = userdata;

	return (ssize_t)fwrite(buf, 1, len, f);
}

static char *read_fd(int fd, size_t *len)
{
	struct stat st;
	char *s;

	if (fstat(fd, &st) < 0)
		return NULL;
	s = calloc(1, (size_t)st.st_size + 1);
	if (s && pread(fd, s, (size_t)st.st_size, 0) != st.st_size) {
		free(s);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return s;
}

/*
 * The streaming writer's bytes are libarchive's mtree writer's (what
 * manifests were written with before): a random tree of names made of any
 * bytes, written by shift_manifest_record_to(, NULL), by shift_manifest_write()
 * of shift_manifest_record(, NULL), and its entries given to libarchive's writer
 * in a shuffled order ("#shiftkit" lines aside); the digests match, and a
 * streaming check finds what a whole-manifest check finds.
 */
TEST(same_bytes_as_libarchive)
{
	enum { MAX = 600 };
	struct rent *ents = calloc(MAX, sizeof(*ents));
	struct shift_manifest *m = NULL, *o = NULL, *r = NULL;
	struct archive *a = NULL;
	struct archive_entry *ae = NULL;
	char *t1 = NULL, *t2 = NULL, *lb = NULL, digest[72], path[64],
	     log[4096] = "", log2[4096] = "";
	size_t l1 = 0, l2 = 0, lbl = 0, count = 0;
	FILE *f = NULL;
	int n = 1, i, fd1 = -1, fd2 = -1;

	if (geteuid() != 0)
		SKIP("needs root (chown)");
	CHECK(ents != NULL);
	if (!ents)
		return;
	ents[0] = (struct rent){ ".", AE_IFDIR, 0755, 0, 0 };
	CHECK_EQ_INT(chmod(top, 0755) | lchown(top, 0, 0), 0);
	CHECK_EQ_INT(rnd_fill(".", 0, ents, &n, MAX), 0);
	fd1 = memfd_create("m1", MFD_CLOEXEC);
	fd2 = memfd_create("m2", MFD_CLOEXEC);
	CHECK_EQ_INT(shift_manifest_record_to(top, fd1, &count, digest, NULL), 0);
	CHECK_EQ_INT(count, n);
	CHECK_EQ_INT(shift_manifest_record(top, &m, NULL), 0);
	if (!m)
		goto out;
	CHECK_EQ_INT(shift_manifest_write(m, fd2), 0);
	CHECK_EQ_STR(shift_manifest_digest(m), digest);
	t1 = read_fd(fd1, &l1);
	t2 = read_fd(fd2, &l2);
	CHECK(t1 && t2 && l1 == l2 && !memcmp(t1, t2, l1));
	/* libarchive, the entries shuffled */
	for (i = n - 1; i > 0; i--) {
		int j = (int)rnd((unsigned)i + 1);
		struct rent tmp = ents[i];

		ents[i] = ents[j];
		ents[j] = tmp;
	}
	f = open_memstream(&lb, &lbl);
	a = archive_write_new();
	ae = archive_entry_new();
	CHECK(f && a && ae);
	if (!f || !a || !ae)
		goto out;
	CHECK_EQ_INT(archive_write_set_format_mtree(a), ARCHIVE_OK);
	CHECK_EQ_INT(archive_write_set_options(a, "!all,type,uid,gid,mode"), ARCHIVE_OK);
	CHECK_EQ_INT(archive_write_open(a, f, NULL, buf_write, NULL), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, ents[i].path);
		archive_entry_set_filetype(ae, ents[i].type);
		archive_entry_set_perm(ae, ents[i].perm);
		archive_entry_set_uid(ae, ents[i].uid);
		archive_entry_set_gid(ae, ents[i].gid);
		CHECK(archive_write_header(a, ae) >= ARCHIVE_WARN);
	}
	CHECK_EQ_INT(archive_write_close(a), ARCHIVE_OK);
	fclose(f);
	f = NULL;
	printf("#   %d entries, %zu bytes\n", n, l1);
	if (t1 && lb) {
		/* ours without the "#shiftkit" lines (none here but the digest) */
		char *end = t1 + l1 - 1;

		while (end > t1 && end[-1] != '\n')
			end--;
		CHECK_EQ_INT((size_t)(end - t1), lbl);
		CHECK(lbl == (size_t)(end - t1) && !memcmp(t1, lb, lbl));
	}
	/* streamed check == whole check, after some damage */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd1);
	CHECK_EQ_INT(shift_manifest_open(path, &o, NULL), 0);
	CHECK_EQ_INT(shift_manifest_read(path, &r, NULL), 0);
	if (!o || !r)
		goto out;
	CHECK_EQ_INT(shift_manifest_count(o), n);
	CHECK_EQ_STR(shift_manifest_digest(o), digest);
	CHECK_EQ_INT(shift_manifest_write(o, fd2), -EOPNOTSUPP);
	CHECK_EQ_INT(shift_manifest_check(o, NULL, top, 0, count_cb, log, NULL), 0);
	for (i = 1; i < n; i += 7) {
		struct rent *e = &ents[i];

		if (e->type == AE_IFREG)
			CHECK_EQ_INT(unlink(p(e->path + 2)), 0);
		else if (e->type == AE_IFLNK)
			CHECK_EQ_INT(lchown(p(e->path + 2), 1, 1), 0);
	}
	CHECK(shift_manifest_check(o, NULL, top, 0, count_cb, log, NULL) > 0);
	CHECK_EQ_INT(shift_manifest_check(r, NULL, top, 0, count_cb, log2, NULL),
		     shift_manifest_check(o, NULL, top, 0, NULL, NULL, NULL));
	/* a manifest file that changes after it was opened: -ESTALE */
	{
		struct shift_manifest *o2 = NULL;
		int mfd = open(mpath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);

		CHECK(mfd >= 0 && write(mfd, t1, l1) == (ssize_t)l1);
		if (mfd >= 0)
			close(mfd);
		CHECK_EQ_INT(shift_manifest_open(mpath, &o2, NULL), 0);
		mfd = open(mpath, O_TRUNC | O_WRONLY | O_CLOEXEC);
		CHECK(mfd >= 0);
		if (mfd >= 0) {
			CHECK_EQ_INT(shift_manifest_record_to(top, mfd, NULL, NULL, NULL), 0);
			close(mfd);
		}
		if (o2)
			CHECK_EQ_INT(shift_manifest_check(o2, NULL, top, 0, NULL, NULL, NULL),
				     -ESTALE);
		shift_manifest_free(o2);
		unlink(mpath);
	}
out:
	if (f)
		fclose(f);
	archive_entry_free(ae);
	archive_write_free(a);
	free(lb);
	free(t1);
	free(t2);
	free(ents);
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	shift_manifest_free(m);
	shift_manifest_free(o);
	shift_manifest_free(r);
	CHECK_EQ_INT(rm_tree(), 0);
}

/* A tree shifted by hand equals the manifest of the unshifted tree under
 * the map; each kind of damage is reported as exactly that field. */
TEST(check_under_map)
{
	struct shift_manifest *m = NULL;
	struct shift_idmap *map = shift_idmap_new();
	unsigned char buf[64];
	char log[4096] = "";
	size_t len;

	if (geteuid() != 0)
		SKIP("needs root (chown, security.capability)");
	CHECK_EQ_INT(build_tree(0), 0);
	CHECK_EQ_INT(shift_manifest_record(top, &m, NULL), 0);
	CHECK_EQ_INT(rm_tree(), 0);
	CHECK_EQ_INT(build_tree(100000), 0);
	CHECK_EQ_INT(shift_idmap_parse(map, "b:0:100000:65536", NULL), 0);
	if (!m)
		return;
	CHECK_EQ_INT(shift_manifest_check(m, map, top, 0, count_cb, log, NULL), 0);
	/* without the map, everything differs */
	CHECK(shift_manifest_check(m, NULL, top, 0, NULL, NULL, NULL) > 10);

	/* an unshifted ACL entry */
	len = make_acl(buf, 1000, 101001);
	CHECK_EQ_INT(setxattr(p("dir/plain"), "system.posix_acl_access", buf, len, 0), 0);
	log[0] = '\0';
	CHECK_EQ_INT(shift_manifest_check(m, map, top, 0, count_cb, log, NULL), 1);
	CHECK_EQ_STR(log, "./dir/plain|acl.access|user::rw-,user:101000:r--,group::r--,group:101001:r--,mask::r--,other::---|user::rw-,user:1000:r--,group::r--,group:101001:r--,mask::r--,other::---\n");
	len = make_acl(buf, 101000, 101001);
	CHECK_EQ_INT(setxattr(p("dir/plain"), "system.posix_acl_access", buf, len, 0), 0);

	/* a stale fcaps rootid */
	len = make_caps(buf, 3, 1000);
	CHECK_EQ_INT(setxattr(p("dir/a.b"), "security.capability", buf, len, 0), 0);
	log[0] = '\0';
	CHECK_EQ_INT(shift_manifest_check(m, map, top, 0, count_cb, log, NULL), 1);
	CHECK_EQ_STR(log, "./dir/a.b|fcaps|v3,rootid=101000,permitted=0x2000,inheritable=0,effective|v3,rootid=1000,permitted=0x2000,inheritable=0,effective\n");
	len = make_caps(buf, 3, 101000);
	CHECK_EQ_INT(setxattr(p("dir/a.b"), "security.capability", buf, len, 0), 0);

	/* a lost setuid bit, a chowned file, a new file, a missing one */
	CHECK_EQ_INT(chmod(p("dir/sub/suid"), 0755), 0);
	CHECK_EQ_INT(lchown(p("dir/link"), 7, 100008), 0);
	CHECK_EQ_INT(mkdir(p("dir/new"), 0755), 0);
	CHECK_EQ_INT(unlink(p("dir/fifo")), 0);
	log[0] = '\0';
	CHECK_EQ_INT(shift_manifest_check(m, map, top, 0, count_cb, log, NULL), 4);
	CHECK_EQ_STR(log, "./dir/fifo|entry|present|absent\n"
			  "./dir/link|uid|100007|7\n"
			  "./dir/new|entry|absent|present\n"
			  "./dir/sub/suid|mode|4755|0755\n");
	CHECK_EQ_INT(shift_manifest_check(m, map, top,
					  SHIFT_CHECK_IGNORE_EXTRA |
						  SHIFT_CHECK_IGNORE_MISSING,
					  NULL, NULL, NULL), 2);
	shift_manifest_free(m);
	shift_idmap_free(map);
	CHECK_EQ_INT(rm_tree(), 0);
}

TEST(range_check)
{
	struct shift_idmap *map = shift_idmap_new();
	char log[4096] = "";

	if (geteuid() != 0)
		SKIP("needs root (chown, security.capability)");
	CHECK_EQ_INT(build_tree(100000), 0);
	CHECK_EQ_INT(shift_idmap_parse(map, "b:0:100000:65536", NULL), 0);
	CHECK_EQ_INT(shift_tree_check_range(top, map, count_cb, log), 0);
	/* a whiteout (0/0 char device owned by root) is fine */
	CHECK_EQ_INT(mknod(p("dir/whiteout"), S_IFCHR | 0, 0), 0);
	CHECK_EQ_INT(shift_tree_check_range(top, map, count_cb, log), 0);
	CHECK_EQ_INT(lchown(p("dir/plain"), 0, 100000), 0);
	CHECK_EQ_INT(shift_tree_check_range(top, map, count_cb, log), 1);
	CHECK_EQ_STR(log, "./dir/plain|uid|in 100000-165535|0\n");
	shift_idmap_free(map);
	CHECK_EQ_INT(rm_tree(), 0);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

TEST(read_errors)
{
	struct shift_manifest *m = NULL;
	struct shift_error why = { 0 };

	if (geteuid() != 0)
		SKIP("needs root (chown, security.capability)");
	CHECK_EQ_INT(build_tree(0), 0);
	CHECK_EQ_INT(shift_manifest_record(top, &m, NULL), 0);
	{
		int fd = open(mpath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);

		CHECK_EQ_INT(shift_manifest_write(m, fd), 0);
		close(fd);
	}
	shift_manifest_free(m);
	m = NULL;
	/* flip one uid: the digest catches it */
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "sed -i 's/uid=5 /uid=6 /' '%s'", mpath);
		CHECK_EQ_INT(system(cmd), 0);
	}
	CHECK_EQ_INT(shift_manifest_read(mpath, &m, &why), -EBADMSG);
	CHECK(why.why && strstr(why.why, "digest"));
	/* no digest at all */
	CHECK_EQ_INT(write_file(mpath, "#mtree\n. type=dir uid=0 gid=0 mode=755\n"), 0);
	CHECK_EQ_INT(shift_manifest_read(mpath, &m, &why), -EBADMSG);
	CHECK(why.why && strstr(why.why, "digest"));
	/* a missing keyword, reported with its line */
	CHECK_EQ_INT(write_file(mpath, "#mtree\n. type=dir uid=0 mode=755\n"), 0);
	CHECK_EQ_INT(shift_manifest_read(mpath, &m, &why), -EBADMSG);
	CHECK_EQ_INT(why.line, 2);
	CHECK_EQ_STR(why.path, mpath);
	CHECK_EQ_INT(shift_manifest_read("/nonexistent/manifest", &m, &why), -ENOENT);
	CHECK_EQ_STR(why.path, "/nonexistent/manifest");
	CHECK_EQ_INT(why.error, -ENOENT);
	shift_error_clear(&why);
	CHECK_EQ_INT(rm_tree(), 0);
}

/* Differences of a layered check as "LAYER:PATH:FIELD;". */
static int layer_cb(const struct shift_difference *d, size_t layer,
		    void *userdata)
{
	char *log = userdata;
	size_t len = strlen(log);

	snprintf(log + len, 1024 - len, "%zu:%s:%s;", layer, d->path, d->field);
	return 0;
}

/* mk "l0/a" 'f'|'d'|'w' (whiteout) UID: an entry under top, mode fixed */
static int mk(const char *rel, char type, uid_t uid)
{
	const char *path = p(rel);
	int r;

	if (type == 'd')
		r = mkdir(path, 0755) < 0 ? -1 : chmod(path, 0755);
	else if (type == 'w')
		r = mknod(path, S_IFCHR | 0600, 0);
	else {
		int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		r = fd < 0 ? -1 : close(fd);
	}
	return r < 0 ? -1 : lchown(path, uid, uid);
}

/* manifest-codec.c on its own: each text form back to the same text. */
TEST(codec_round_trip)
{
	static const char *const acls[] = {
	    "user::rw-,group::r--,other::---",
	    "user::rwx,user:1000:r-x,group::r-x,group:4294967295:-w-,"
	    "mask::r-x,other::r--",
	};
	static const char *const bad_acls[] = {
	    "",		 "bogus::rwx",		"user:x:rwx", "mask:5:rwx",
	    "user::rwz", "user:4294967296:r--", "user::rw",
	};
	static const char *const caps[] = {
	    "v2,permitted=0x2000,inheritable=0,effective",
	    "v3,rootid=1000,permitted=0x300000002000,inheritable=0x1",
	    "unmapped",
	};
	static const char *const bad_caps[] = {
	    "v3,permitted=0x1", "v2,rootid=5", "v4",
	    "v2,permitted=12",	"v2,size=1",
	};
	static const char *const order[] = {
	    ".", "./a", "./a/b", "./a/b/c", "./a b", "./ab", "./b",
	};
	struct shift_manifest *m = sk_manifest_new();
	size_t i, j;

	CHECK(m != NULL);
	if (!m)
		return;
	for (i = 0; i < ARRAY_SIZE(acls); i++) {
		struct strbuf b = {0};
		struct blob a = {0};

		CHECK_EQ_INT(sk_acl_from_text(m, acls[i], strlen(acls[i]), &a),
			     0);
		CHECK_EQ_INT(sk_acl_to_text(&a, &b), 0);
		CHECK_EQ_STR(b.s, acls[i]);
		free(b.s);
	}
	for (i = 0; i < ARRAY_SIZE(bad_acls); i++) {
		struct blob a = {0};

		CHECK_EQ_INT(
		    sk_acl_from_text(m, bad_acls[i], strlen(bad_acls[i]), &a),
		    -EINVAL);
	}
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		struct mentry e = {0};
		struct strbuf b = {0};

		CHECK_EQ_INT(sk_caps_from_text(m, caps[i], strlen(caps[i]), &e),
			     0);
		CHECK_EQ_INT(sk_caps_to_text(&e.caps, e.flags, &b), 0);
		CHECK_EQ_STR(b.s, caps[i]);
		free(b.s);
	}
	for (i = 0; i < ARRAY_SIZE(bad_caps); i++) {
		struct mentry e = {0};

		CHECK_EQ_INT(
		    sk_caps_from_text(m, bad_caps[i], strlen(bad_caps[i]), &e),
		    -EINVAL);
	}
	/* every byte of a name survives the mtree escapes, and the quoted
	 * form is one word without '#' or '=' */
	for (i = 1; i < 256; i++) {
		char name[4] = {'a', (char)i, 'b', 0}, back[16];
		struct strbuf b = {0};

		sk_mtree_quote(&b, name);
		CHECK(b.s && !strpbrk(b.s, " \t\n#="));
		CHECK_EQ_INT(sk_mtree_unescape(b.s, b.len, back, sizeof(back)),
			     3);
		CHECK(!memcmp(back, name, 4));
		free(b.s);
	}
	/* the canonical order: a parent first, '/' below every byte */
	for (i = 0; i < ARRAY_SIZE(order); i++)
		for (j = 0; j < ARRAY_SIZE(order); j++) {
			int c = sk_path_cmp(order[i], order[j]);

			CHECK(i < j ? c < 0 : i > j ? c > 0 : c == 0);
		}
	shift_manifest_free(m);
}

/* What overlayfs shows of two layers: whiteouts, opaque dirs, shadowing. */
TEST(merged_layers)
{
	struct shift_manifest *l[2] = { NULL, NULL };
	char log[1024] = "", path[400], man[400];
	struct shift_manifest *back = NULL;
	int fd;

	if (geteuid() != 0)
		SKIP("needs root (mknod, chown)");
	/* l0: a, d/x, o/y, r (uid 5); l1 above it: deletes a, adds d/w,
	 * makes o opaque with o/z, replaces r (uid 7) */
	CHECK_EQ_INT(mk("l0", 'd', 0) | mk("l0/a", 'f', 0) | mk("l0/d", 'd', 0) |
			     mk("l0/d/x", 'f', 0) | mk("l0/o", 'd', 0) |
			     mk("l0/o/y", 'f', 0) | mk("l0/r", 'f', 5),
		     0);
	CHECK_EQ_INT(mk("l1", 'd', 0) | mk("l1/a", 'w', 0) | mk("l1/d", 'd', 0) |
			     mk("l1/d/w", 'f', 0) | mk("l1/o", 'd', 0) |
			     mk("l1/o/z", 'f', 0) | mk("l1/r", 'f', 7),
		     0);
	if (setxattr(p("l1/o"), "user.overlay.opaque", "y", 1, 0) < 0 &&
	    setxattr(p("l1/o"), "trusted.overlay.opaque", "y", 1, 0) < 0)
		SKIP("no user or trusted xattrs on /tmp");
	/* the merged directory, made by hand */
	CHECK_EQ_INT(mk("m", 'd', 0) | mk("m/d", 'd', 0) | mk("m/d/x", 'f', 0) |
			     mk("m/d/w", 'f', 0) | mk("m/o", 'd', 0) |
			     mk("m/o/z", 'f', 0) | mk("m/r", 'f', 7),
		     0);
	snprintf(path, sizeof(path), "%s", p("l0"));
	CHECK_EQ_INT(shift_manifest_record(path, &l[0], NULL), 0);
	snprintf(path, sizeof(path), "%s", p("l1"));
	CHECK_EQ_INT(shift_manifest_record(path, &l[1], NULL), 0);
	if (!l[0] || !l[1])
		goto out;
	/* the whiteout and the opaque dir survive writing and reading */
	snprintf(man, sizeof(man), "%s", p("l1.mtree"));
	fd = open(man, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	CHECK_EQ_INT(shift_manifest_write(l[1], fd), 0);
	close(fd);
	CHECK_EQ_INT(shift_manifest_read(man, &back, NULL), 0);
	if (back) {
		shift_manifest_free(l[1]);
		l[1] = back;
	}
	snprintf(path, sizeof(path), "%s", p("m"));
	CHECK_EQ_INT(shift_manifest_check_layers((const struct shift_manifest *const *)l,
						 2, NULL, path, 0, layer_cb, log, NULL),
		     0);
	CHECK_EQ_STR(log, "");
	/* a deleted entry that shows up, one of l0 that is missing */
	CHECK_EQ_INT(mk("m/a", 'f', 0) | unlink(p("m/d/x")), 0);
	CHECK_EQ_INT(shift_manifest_check_layers((const struct shift_manifest *const *)l,
						 2, NULL, path, 0, layer_cb, log, NULL),
		     2);
	CHECK_EQ_STR(log, "1:./a:entry;0:./d/x:entry;");
out:
	shift_manifest_free(l[0]);
	shift_manifest_free(l[1]);
}

static void after_each(void)
{
	(void)rm_tree();
}

int main(void)
{
	int r;

	base_dir = mkdtemp(tmpl);
	if (!base_dir) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(top, sizeof(top), "%s/tree", base_dir);
	snprintf(mpath, sizeof(mpath), "%s/m", base_dir);
	if (mkdir(top, 0755) < 0) {
		perror("mkdir");
		return 1;
	}
	test_after_each = after_each;
	r = test_main();
	unlink(mpath);
	rmdir(top);
	rmdir(base_dir);
	return r;
}
