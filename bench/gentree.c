// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * gentree: fill a directory with a layer-like tree, deterministically from a
 * seed (the same seed and size give the same names, owners, modes, xattrs,
 * contents and mtimes).
 *
 * The shape imitates a distribution layer: "packages" each drop a doc dir,
 * dpkg info files, binaries (a few setuid/setgid, a few with file
 * capabilities, a few hardlinked), man pages, libraries with .so symlinks,
 * translations, and a data subtree of heavy-tailed size.  So there are a few
 * huge directories (usr/bin, dpkg/info, man1), many small ones, symlinks
 * (relative, absolute, dangling), hardlinks, POSIX ACLs, fifos, device nodes,
 * user xattrs, and owners other than root, all inside 0..65535.
 *
 * srv/zoo always holds one inode of each special kind.
 *
 *   gentree [-s SEED] [-n INODES] [--data-max BYTES] [--foreign-ids] DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/macros.h"

struct gen {
	uint64_t rng;
	long target;
	long inodes;
	long links;
	long long bytes;
	unsigned data_max;
	int root;
	/* skeleton dirs */
	int usr_bin, usr_sbin, usr_lib, usr_share, doc, man[9], dpkg_info,
		etc, alternatives, locale[12], pydist, perl, include, run, var_lib;
};

static const char *const langs[] = { "de", "fr", "es", "it", "ja", "pt_BR",
				     "ru", "zh_CN", "pl", "nl", "sv", "cs" };
static const char *const syll[] = { "lib", "ex", "core", "utils", "x", "gtk",
				    "py", "perl", "net", "fs", "data", "tool",
				    "z", "ssl", "db", "gnu", "font", "doc" };

static uint64_t rnd(struct gen *g)
{
	/* splitmix64: small, fast, fully determined by the seed */
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(struct gen *g, unsigned n)
{
	return n ? (unsigned)(rnd(g) % n) : 0;
}

/* True with probability per/1000. */
static bool chance(struct gen *g, unsigned per_mille)
{
	return below(g, 1000) < per_mille;
}

/* Pareto-ish heavy tail: mostly small, sometimes large. */
static unsigned heavy(struct gen *g, unsigned xm, unsigned cap)
{
	double u = (double)(rnd(g) >> 11) / (double)(1ULL << 53);
	double v = xm / (u * 0.999 + 0.001);

	return v > cap ? cap : (unsigned)v;
}

_noreturn_ static void die(const char *what, const char *name, int err)
{
	fprintf(stderr, "gentree: Failed to %s '%s': %s\n", what, name,
		strerror(err));
	exit(1);
}

static unsigned char databuf[65536];

static void times_for(struct gen *g, struct timespec ts[2])
{
	/* 2015..2025, whole seconds plus a deterministic nsec part */
	ts[0].tv_sec = ts[1].tv_sec = 1420070400 + below(g, 315360000);
	ts[0].tv_nsec = ts[1].tv_nsec = below(g, 1000000000);
}

static void own(int dfd, const char *name, uid_t uid, gid_t gid)
{
	if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		die("chown", name, errno);
}

static void file(struct gen *g, int dfd, const char *name, mode_t mode,
		 uid_t uid, gid_t gid)
{
	struct timespec ts[2];
	unsigned len = 0;
	int fd;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				       O_NOFOLLOW, 0600);
	if (fd < 0)
		die("create", name, errno);
	if (g->data_max && !chance(g, 150)) {
		/* log-uniform 1..data_max */
		unsigned bits = 1 + below(g, 16);

		len = 1 + (unsigned)(rnd(g) & ((1u << bits) - 1));
		if (len > g->data_max)
			len = 1 + len % g->data_max;
		if (write(fd, databuf + below(g, sizeof(databuf) - len), len) !=
		    (ssize_t)len)
			die("write", name, errno ? errno : EIO);
	}
	/* chown before chmod: chown clears the setid bits */
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		die("chown", name, errno);
	if (chance(g, 5) && fsetxattr(fd, "user.gentree.note", name,
				      strlen(name), 0) < 0 && errno != ENOTSUP)
		die("set user xattr on", name, errno);
	times_for(g, ts);
	if (futimens(fd, ts) < 0)
		die("set times of", name, errno);
	close(fd);
	g->inodes++;
	g->bytes += len;
}

static void slink(struct gen *g, int dfd, const char *name, const char *target,
		  uid_t uid, gid_t gid)
{
	struct timespec ts[2];

	if (symlinkat(target, dfd, name) < 0)
		die("symlink", name, errno);
	own(dfd, name, uid, gid);
	times_for(g, ts);
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		die("set times of", name, errno);
	g->inodes++;
}

static void hlink(struct gen *g, int dfd, const char *from, const char *to)
{
	if (linkat(dfd, from, dfd, to, 0) < 0)
		die("link", to, errno);
	g->links++;
}

static int dir(struct gen *g, int dfd, const char *name, mode_t mode,
	       uid_t uid, gid_t gid)
{
	int fd;

	if (mkdirat(dfd, name, 0700) < 0)
		die("mkdir", name, errno);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		die("open", name, errno);
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		die("chown", name, errno);
	g->inodes++;
	return fd;
}

static void node(struct gen *g, int dfd, const char *name, mode_t mode,
		 dev_t dev)
{
	struct timespec ts[2];

	if (mknodat(dfd, name, mode, dev) < 0)
		die("mknod", name, errno);
	times_for(g, ts);
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		die("set times of", name, errno);
	g->inodes++;
}

/* A POSIX ACL in the kernel's xattr format (version 2, sorted entries). */
struct acl_ent {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

static void acl(int fd, const char *xname, const struct acl_ent *e, size_t n)
{
	unsigned char buf[4 + 16 * sizeof(struct acl_ent)];
	uint32_t version = 2;

	memcpy(buf, &version, 4);
	memcpy(buf + 4, e, n * sizeof(*e));
	if (fsetxattr(fd, xname, buf, 4 + n * sizeof(*e), 0) < 0)
		die("set ACL", xname, errno);
}

#define ACL_UNDEF 0xffffffffu
static void dir_acl(int fd, uid_t u, gid_t gr)
{
	const struct acl_ent a[] = {
		{ 0x01, 7, ACL_UNDEF }, { 0x02, 7, u },	  { 0x04, 5, ACL_UNDEF },
		{ 0x08, 5, gr },	{ 0x10, 7, ACL_UNDEF }, { 0x20, 5, ACL_UNDEF },
	};

	acl(fd, "system.posix_acl_access", a, ARRAY_SIZE(a));
	acl(fd, "system.posix_acl_default", a, ARRAY_SIZE(a));
}

static void file_acl(int dfd, const char *name, uid_t u, gid_t gr)
{
	const struct acl_ent a[] = {
		{ 0x01, 6, ACL_UNDEF }, { 0x02, 6, u },	  { 0x04, 4, ACL_UNDEF },
		{ 0x08, 4, gr },	{ 0x10, 6, ACL_UNDEF }, { 0x20, 4, ACL_UNDEF },
	};
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC |
							  O_NOFOLLOW);

	if (fd < 0)
		die("open", name, errno);
	acl(fd, "system.posix_acl_access", a, ARRAY_SIZE(a));
}

/* File capabilities: v2 (no rootid) or v3 with a rootid. */
static void fcaps(int dfd, const char *name, bool v3, uint32_t rootid)
{
	uint32_t caps[6] = { 0 };
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC |
							  O_NOFOLLOW);

	if (fd < 0)
		die("open", name, errno);
	/* magic_etc: revision | effective; permitted cap_net_raw (13) and
	 * cap_net_bind_service (10) */
	caps[0] = (v3 ? 0x03000000u : 0x02000000u) | 0x1;
	caps[1] = (1u << 13) | (1u << 10);
	caps[5] = rootid;
	if (fsetxattr(fd, "security.capability", caps, v3 ? 24 : 20, 0) < 0)
		die("set capability on", name, errno);
}

static void pkg_owner(struct gen *g, uid_t *u, gid_t *gr)
{
	unsigned r = below(g, 1000);

	*u = 0;
	*gr = 0;
	if (r < 30) {
		*u = 100 + below(g, 900);
		*gr = 100 + below(g, 900);
	} else if (r < 35) {
		*u = 1000;
		*gr = 1000;
	} else if (r < 45) {
		*gr = 1 + below(g, 60);
	} else if (r < 47) {
		*u = 65534;
		*gr = 65534;
	}
}

/* A package's data subtree: heavy-tailed number of files, some depth. */
static void subtree(struct gen *g, int dfd, unsigned files, unsigned depth,
		    uid_t u, gid_t gr)
{
	char name[64];
	unsigned here, sub, i;

	here = files;
	sub = 0;
	if (depth < 5 && files > 12) {
		sub = 1 + below(g, files / 12 < 8 ? files / 12 : 8);
		here = files / 3 + below(g, files / 3 + 1);
	}
	for (i = 0; i < here && g->inodes < g->target; i++) {
		snprintf(name, sizeof(name), "%s%u.%s", syll[below(g, 18)], i,
			 chance(g, 500) ? "py" : "dat");
		file(g, dfd, name, chance(g, 50) ? 0755 : 0644, u, gr);
		if (chance(g, 5)) {
			char alias[80];

			snprintf(alias, sizeof(alias), "%s.link", name);
			hlink(g, dfd, name, alias);
		}
		if (chance(g, 30)) {
			char ln[80];

			snprintf(ln, sizeof(ln), "%s.lnk", name);
			slink(g, dfd, ln, name, u, gr);
		}
	}
	for (i = 0; i < sub && g->inodes < g->target; i++) {
		_cleanup_close_ int fd = -EBADF;

		snprintf(name, sizeof(name), "%s-%u", syll[below(g, 18)], i);
		fd = dir(g, dfd, name, 0755, u, gr);
		subtree(g, fd, (files - here) / sub, depth + 1, u, gr);
	}
}

static void package(struct gen *g, unsigned idx)
{
	char name[64], buf[128], buf2[128];
	_cleanup_close_ int docfd = -EBADF;
	unsigned nbin, i;
	uid_t u;
	gid_t gr;

	snprintf(name, sizeof(name), "%s%s%u", syll[below(g, 18)],
		 syll[below(g, 18)], idx);
	pkg_owner(g, &u, &gr);

	docfd = dir(g, g->doc, name, 0755, 0, 0);
	file(g, docfd, "copyright", 0644, 0, 0);
	file(g, docfd, "changelog.Debian.gz", 0644, 0, 0);
	if (chance(g, 300))
		file(g, docfd, "README.gz", 0644, 0, 0);
	if (chance(g, 100)) {
		snprintf(buf, sizeof(buf), "../%s%u", syll[below(g, 18)], idx);
		slink(g, docfd, "NEWS.gz", buf, 0, 0); /* dangling */
	}

	snprintf(buf, sizeof(buf), "%s.list", name);
	file(g, g->dpkg_info, buf, 0644, 0, 0);
	snprintf(buf, sizeof(buf), "%s.md5sums", name);
	file(g, g->dpkg_info, buf, 0644, 0, 0);
	if (chance(g, 300)) {
		snprintf(buf, sizeof(buf), "%s.postinst", name);
		file(g, g->dpkg_info, buf, 0755, 0, 0);
	}

	nbin = chance(g, 400) ? heavy(g, 1, 40) : 0;
	for (i = 0; i < nbin && g->inodes < g->target; i++) {
		bool sbin = chance(g, 100);
		int bfd = sbin ? g->usr_sbin : g->usr_bin;
		mode_t mode = 0755;
		gid_t bg = 0;
		uid_t bu = 0;

		snprintf(buf, sizeof(buf), "%s-%u", name, i);
		if (chance(g, 8)) {
			mode = 04755;
		} else if (chance(g, 8)) {
			mode = 02755;
			bg = 42;
		} else if (chance(g, 3)) {
			bu = u;
			bg = gr;
		}
		file(g, bfd, buf, mode, bu, bg);
		if (chance(g, 6))
			fcaps(bfd, buf, chance(g, 300), 1000);
		if (chance(g, 10)) {
			snprintf(buf2, sizeof(buf2), "%s-%u.real", name, i);
			hlink(g, bfd, buf, buf2);
		}
		if (chance(g, 700)) {
			snprintf(buf2, sizeof(buf2), "%s-%u.1.gz", name, i);
			file(g, g->man[sbin ? 8 : 1], buf2, 0644, 0, 0);
		}
		if (chance(g, 80)) {
			/* the alternatives dance: absolute links both ways */
			snprintf(buf2, sizeof(buf2), "/usr/bin/%s-%u", name, i);
			snprintf(buf, sizeof(buf), "%s-%u", name, i);
			slink(g, g->alternatives, buf, buf2, 0, 0);
			snprintf(buf2, sizeof(buf2), "/etc/alternatives/%s-%u",
				 name, i);
			snprintf(buf, sizeof(buf), "%s-%u.alt", name, i);
			slink(g, g->usr_bin, buf, buf2, 0, 0);
		}
	}

	if (chance(g, 300)) {
		snprintf(buf, sizeof(buf), "lib%s.so.1.%u.0", name, idx % 7);
		file(g, g->usr_lib, buf, 0644, 0, 0);
		snprintf(buf2, sizeof(buf2), "lib%s.so.1", name);
		slink(g, g->usr_lib, buf2, buf, 0, 0);
		if (chance(g, 300)) {
			snprintf(buf, sizeof(buf), "lib%s.so", name);
			slink(g, g->usr_lib, buf, buf2, 0, 0);
		}
	}

	if (chance(g, 150)) {
		unsigned n = 3 + below(g, ARRAY_SIZE(langs) - 3);

		snprintf(buf, sizeof(buf), "%s.mo", name);
		for (i = 0; i < n; i++)
			file(g, g->locale[i], buf, 0644, 0, 0);
	}

	if (chance(g, 200)) {
		snprintf(buf, sizeof(buf), "%s.conf", name);
		file(g, g->etc, buf, chance(g, 100) ? 0640 : 0644, 0, gr);
	} else if (chance(g, 60)) {
		_cleanup_close_ int efd = dir(g, g->etc, name, 0755, 0, 0);

		file(g, efd, "main.conf", 0644, 0, 0);
		file(g, efd, "secret", 0600, u, gr);
		if (chance(g, 200))
			file_acl(efd, "secret", 1000 + below(g, 10), 4);
	}

	if (chance(g, 4)) {
		snprintf(buf, sizeof(buf), "%s.fifo", name);
		node(g, g->run, buf, S_IFIFO | 0620, 0);
		own(g->run, buf, u, gr);
	}
	if (chance(g, 2)) {
		snprintf(buf, sizeof(buf), "%s.sock", name);
		node(g, g->run, buf, S_IFSOCK | 0666, 0);
		own(g->run, buf, u, gr);
	}

	if (chance(g, 600) && g->inodes < g->target) {
		static const int which[] = { 0, 0, 0, 1, 2, 3 };
		int parent;
		_cleanup_close_ int fd = -EBADF;

		switch (which[below(g, ARRAY_SIZE(which))]) {
		case 0:
			parent = g->usr_share;
			break;
		case 1:
			parent = g->pydist;
			break;
		case 2:
			parent = g->perl;
			break;
		default:
			parent = g->include;
			break;
		}
		fd = dir(g, parent, name, 0755, u, gr);
		if (chance(g, 20))
			dir_acl(fd, 1000 + below(g, 10), 4);
		if (chance(g, 10) && fchmod(fd, 02775) < 0)
			die("chmod", name, errno);
		subtree(g, fd, heavy(g, 4, 6000), 0, u, gr);
	}
}

/*
 * One of each kind the shift must get right, whatever the size and seed:
 * srv/zoo.  With foreign, also owners and an ACL qualifier outside
 * 0..65535 (for tests of unmapped ids).
 */
static void zoo(struct gen *g, int zfd, bool foreign)
{
	_cleanup_close_ int dfd = -EBADF;

	file(g, zfd, "setuid", 04755, 0, 0);
	file(g, zfd, "setgid", 02755, 0, 42);
	file(g, zfd, "setuid-user", 04750, 1000, 1000);
	file(g, zfd, "fcaps-v2", 0755, 0, 0);
	fcaps(zfd, "fcaps-v2", false, 0);
	file(g, zfd, "fcaps-v3", 0755, 1000, 1000);
	fcaps(zfd, "fcaps-v3", true, 1000);
	file(g, zfd, "fcaps-setuid", 04755, 0, 0);
	fcaps(zfd, "fcaps-setuid", false, 0);
	file(g, zfd, "acl-file", 0640, 1000, 100);
	file_acl(zfd, "acl-file", 1001, 4);
	dfd = dir(g, zfd, "acl-dir", 02775, 0, 50);
	dir_acl(dfd, 1002, 50);
	file(g, dfd, "inherits", 0664, 0, 50); /* default ACL inherited */
	node(g, zfd, "fifo", S_IFIFO | 0644, 0);
	own(zfd, "fifo", 7, 7);
	node(g, zfd, "socket", S_IFSOCK | 0755, 0);
	own(zfd, "socket", 1000, 1000);
	node(g, zfd, "chardev", S_IFCHR | 0600, makedev(1, 7));
	own(zfd, "chardev", 0, 6);
	file(g, zfd, "hardlink-a", 0644, 1000, 1000);
	hlink(g, zfd, "hardlink-a", "hardlink-b");
	hlink(g, zfd, "hardlink-a", "hardlink-c");
	slink(g, zfd, "symlink", "hardlink-a", 1000, 1000);
	slink(g, zfd, "dangling", "/nonexistent/target", 0, 0);
	slink(g, zfd, "escape", "../../../../../../../etc", 0, 0);
	file(g, zfd, "nobody", 0644, 65534, 65534);
	file(g, zfd, "xattr-user", 0644, 0, 0);
	{
		_cleanup_close_ int fd = openat(zfd, "xattr-user",
						O_RDONLY | O_CLOEXEC);

		if (fd < 0 || (fsetxattr(fd, "user.gentree.zoo", "kept", 4,
					 0) < 0 && errno != ENOTSUP))
			die("set user xattr on", "xattr-user", errno);
	}
	if (foreign) {
		file(g, zfd, "foreign-70000", 0644, 70000, 70000);
		file(g, zfd, "foreign-uid", 0644, 1000000, 0);
		file(g, zfd, "foreign-acl", 0644, 0, 0);
		file_acl(zfd, "foreign-acl", 200000, 4);
	}
}

static int mkpath(struct gen *g, const char *path, mode_t mode, uid_t u,
		  gid_t gr)
{
	char buf[256], *p, *slash;
	int fd = fcntl(g->root, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		die("dup", path, errno);
	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; p && *p; p = slash) {
		int nfd;

		slash = strchr(p, '/');
		if (slash)
			*slash++ = '\0';
		nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
					    O_NOFOLLOW);
		if (nfd < 0 && errno == ENOENT)
			nfd = dir(g, fd, p, slash ? 0755 : mode, slash ? 0 : u,
				  slash ? 0 : gr);
		if (nfd < 0)
			die("open", p, errno);
		close(fd);
		fd = nfd;
	}
	return fd;
}

static size_t root_len;

static int set_dir_times(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	struct timespec ts[2];
	uint64_t h = 1469598103934665603ULL;
	const char *c;

	if (type != FTW_DP)
		return 0;
	/* hash the path relative to DIR: the same wherever DIR is */
	for (c = path + root_len; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	ts[0].tv_sec = ts[1].tv_sec = 1420070400 + (time_t)(h % 315360000);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)((h >> 32) % 1000000000);
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		die("set times of", path, errno);
	return 0;
}

static void usage(FILE *f)
{
	fputs("Usage: gentree [-s SEED] [-n INODES] [--data-max BYTES] [--foreign-ids] DIR\n"
	      "Fill DIR (existing, empty) with a deterministic layer-like tree.\n"
	      " -s, --seed N        seed (default 1)\n"
	      " -n, --inodes N      about N inodes (default 200000)\n"
	      "     --data-max N    largest file content (default 4096, 0 = empty files)\n"
	      "     --foreign-ids   also owners and ACL ids outside 0..65535 (srv/zoo)\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "inodes", required_argument, NULL, 'n' },
		{ "data-max", required_argument, NULL, 'D' },
		{ "foreign-ids", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct gen g = { .target = 200000, .data_max = 4096 };
	uint64_t seed = 1;
	bool foreign = false;
	unsigned idx, i;
	int c;

	while ((c = getopt_long(argc, argv, "s:n:h", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			g.target = strtol(optarg, NULL, 0);
			break;
		case 'D':
			g.data_max = (unsigned)strtoul(optarg, NULL, 0);
			if (g.data_max > sizeof(databuf) / 2)
				g.data_max = sizeof(databuf) / 2;
			break;
		case 'F':
			foreign = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || g.target <= 0) {
		usage(stderr);
		return 2;
	}
	umask(0);
	g.root = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g.root < 0)
		die("open", argv[optind], errno);

	g.rng = seed * 0x2545f4914f6cdd1dULL;
	for (i = 0; i < sizeof(databuf); i++)
		databuf[i] = (unsigned char)rnd(&g);
	g.rng = seed;

	/* The skeleton of a merged-/usr Debian tree. */
	g.usr_bin = mkpath(&g, "usr/bin", 0755, 0, 0);
	g.usr_sbin = mkpath(&g, "usr/sbin", 0755, 0, 0);
	g.usr_lib = mkpath(&g, "usr/lib/x86_64-linux-gnu", 0755, 0, 0);
	g.usr_share = mkpath(&g, "usr/share", 0755, 0, 0);
	g.doc = mkpath(&g, "usr/share/doc", 0755, 0, 0);
	for (i = 1; i < ARRAY_SIZE(g.man); i++) {
		char p[64];

		snprintf(p, sizeof(p), "usr/share/man/man%u", i);
		g.man[i] = mkpath(&g, p, 0755, 0, 0);
	}
	for (i = 0; i < ARRAY_SIZE(langs); i++) {
		char p[64];

		snprintf(p, sizeof(p), "usr/share/locale/%s/LC_MESSAGES",
			 langs[i]);
		g.locale[i] = mkpath(&g, p, 0755, 0, 0);
	}
	g.pydist = mkpath(&g, "usr/lib/python3/dist-packages", 0755, 0, 0);
	g.perl = mkpath(&g, "usr/share/perl5", 0755, 0, 0);
	g.include = mkpath(&g, "usr/include", 0755, 0, 0);
	g.dpkg_info = mkpath(&g, "var/lib/dpkg/info", 0755, 0, 0);
	g.etc = mkpath(&g, "etc", 0755, 0, 0);
	g.alternatives = mkpath(&g, "etc/alternatives", 0755, 0, 0);
	g.run = mkpath(&g, "run/pkg", 0755, 0, 0);
	close(mkpath(&g, "tmp", 01777, 0, 0));
	close(mkpath(&g, "root", 0700, 0, 0));
	close(mkpath(&g, "home/user", 0750, 1000, 1000));
	close(mkpath(&g, "var/mail", 02775, 0, 8));
	close(mkpath(&g, "var/local", 02775, 0, 50));
	{
		_cleanup_close_ int fd = mkpath(&g, "var/log/journal", 02755, 0,
						101);

		dir_acl(fd, 0, 4);
	}
	{
		_cleanup_close_ int fd = mkpath(&g, "dev", 0755, 0, 0);

		node(&g, fd, "null", S_IFCHR | 0666, makedev(1, 3));
		node(&g, fd, "zero", S_IFCHR | 0666, makedev(1, 5));
		node(&g, fd, "tty", S_IFCHR | 0666, makedev(5, 0));
		own(fd, "tty", 0, 5);
		node(&g, fd, "loop0", S_IFBLK | 0660, makedev(7, 0));
		own(fd, "loop0", 0, 6);
	}
	slink(&g, g.root, "bin", "usr/bin", 0, 0);
	slink(&g, g.root, "sbin", "usr/sbin", 0, 0);
	slink(&g, g.root, "lib", "usr/lib", 0, 0);

	{
		_cleanup_close_ int fd = mkpath(&g, "srv/zoo", 0755, 0, 0);

		zoo(&g, fd, foreign);
	}
	for (idx = 0; g.inodes < g.target; idx++)
		package(&g, idx);

	root_len = strlen(argv[optind]);
	if (nftw(argv[optind], set_dir_times, 64, FTW_PHYS | FTW_DEPTH) < 0)
		die("walk", argv[optind], errno);

	printf("inodes %ld links %ld bytes %lld packages %u\n", g.inodes,
	       g.links, g.bytes, idx);
	return 0;
}
