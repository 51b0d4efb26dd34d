// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * baseline-nftw: the naive shifter the benchmark compares against, the way
 * most tools do it: nftw(FTW_PHYS) (which lstat()s every entry) and lchown()
 * for every inode whose uid or gid lies in the range.  Single-threaded,
 * uid/gid only: no ACLs, no file capabilities, no setid restore, hardlinks
 * visited once per name (harmless for disjoint ranges).
 *
 *   baseline-nftw FROM TO COUNT DIR
 * maps ids FROM..FROM+COUNT-1 to TO..TO+COUNT-1 (uids and gids).
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t from, to, count;
static unsigned long changed, failed;

static uint32_t map(uint32_t id)
{
	return id - from < count ? id - from + to : id;
}

static int visit(const char *path, const struct stat *st, int type,
		 struct FTW *ftw)
{
	uid_t u = map(st->st_uid);
	gid_t g = map(st->st_gid);

	if (type == FTW_NS || type == FTW_DNR) {
		fprintf(stderr, "baseline-nftw: Failed to read '%s'\n", path);
		failed++;
		return 0;
	}
	if (u == st->st_uid && g == st->st_gid)
		return 0;
	if (lchown(path, u, g) < 0) {
		fprintf(stderr, "baseline-nftw: Failed to chown '%s': %s\n",
			path, strerror(errno));
		failed++;
		return 0;
	}
	changed++;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fputs("Usage: baseline-nftw FROM TO COUNT DIR\n", stderr);
		return 2;
	}
	from = (uint32_t)strtoul(argv[1], NULL, 0);
	to = (uint32_t)strtoul(argv[2], NULL, 0);
	count = (uint32_t)strtoul(argv[3], NULL, 0);
	if (nftw(argv[4], visit, 64, FTW_PHYS | FTW_MOUNT) < 0) {
		fprintf(stderr, "baseline-nftw: Failed to walk '%s': %s\n",
			argv[4], strerror(errno));
		return 1;
	}
	printf("changed %lu\n", changed);
	return failed ? 1 : 0;
}
