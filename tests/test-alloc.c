/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Range allocation: blocks from the delegation, aligned, never host 0,
 * never overlapping, idempotent, released, and safe under concurrency.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shift.h"
#include "util/macros.h"
#include "lib.h"

static char dir[] = "/tmp/test-alloc.XXXXXX";
static char state[300], subuid[300], subgid[300];

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void reset(const char *uids, const char *gids)
{
	char lock[320];

	snprintf(lock, sizeof(lock), "%s.lock", state);
	unlink(state);
	unlink(lock);
	CHECK_EQ_INT(write_file(subuid, uids), 0);
	CHECK_EQ_INT(write_file(subgid, gids), 0);
}

TEST(allocate_idempotent_release)
{
	struct shift_alloc a = { 0 }, b = { 0 }, *list = NULL;
	size_t n = 0;

	reset("alice:100000:196608\n", "alice:100000:196608\n");
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c1", 65536, &a), 0);
	CHECK_EQ_INT(a.uid_start, 100000);
	CHECK_EQ_INT(a.gid_start, 100000);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c2", 65536, &b), 0);
	CHECK_EQ_INT(b.uid_start, 165536);
	shift_alloc_clear(&b);
	/* the same request again: the same block */
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c1", 65536, &b), 1);
	CHECK_EQ_INT(b.uid_start, 100000);
	shift_alloc_clear(&b);
	/* the same name with another size or user: refused */
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c1", 1000, &b), -EEXIST);
	CHECK_EQ_INT(shift_alloc_get(state, "bob", "c1", 65536, &b), -EEXIST);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c3", 65536, &b), 0);
	shift_alloc_clear(&b);
	/* full */
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c4", 65536, &b), -ENOSPC);
	CHECK_EQ_INT(shift_alloc_list(state, &list, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3)
		CHECK_EQ_STR(list[1].container, "c2");
	shift_alloc_list_free(list, n);
	/* released blocks are reused, lowest first */
	CHECK_EQ_INT(shift_alloc_release(state, "c1"), 0);
	CHECK_EQ_INT(shift_alloc_release(state, "c1"), -ENOENT);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c4", 65536, &b), 0);
	CHECK_EQ_INT(b.uid_start, 100000);
	shift_alloc_clear(&b);
	shift_alloc_clear(&a);
}

TEST(map_of_allocation)
{
	struct shift_alloc a = { .container = NULL, .uid_start = 100000,
				 .gid_start = 200000, .size = 10 };
	struct shift_idmap *m = shift_alloc_idmap(&a);
	char *s = m ? shift_idmap_to_string(m) : NULL;

	CHECK_EQ_STR(s, "u:0:100000:10 g:0:200000:10");
	free(s);
	shift_idmap_free(m);
}

TEST(never_host_root_and_aligned)
{
	struct shift_alloc a = { 0 };

	/* a delegation starting at 0: the first block holds host 0 */
	reset("root:0:131072\n", "root:0:131072\n");
	CHECK_EQ_INT(shift_alloc_get(state, "root", "r1", 65536, &a), 0);
	CHECK_EQ_INT(a.uid_start, 65536);
	CHECK_EQ_INT(a.gid_start, 65536);
	shift_alloc_clear(&a);
	CHECK_EQ_INT(shift_alloc_get(state, "root", "r2", 65536, &a), -ENOSPC);
	/* blocks are aligned to the size from the range start; uid and gid
	 * delegations are allocated separately */
	reset("u:1000:100\nu:5000:250\n", "u:7000:100\n");
	CHECK_EQ_INT(shift_alloc_get(state, "u", "a", 100, &a), 0);
	CHECK_EQ_INT(a.uid_start, 1000);
	CHECK_EQ_INT(a.gid_start, 7000);
	shift_alloc_clear(&a);
	CHECK_EQ_INT(shift_alloc_get(state, "u", "b", 60, &a), -ENOSPC);
	reset("u:1000:100\nu:5000:250\n", "u:7000:300\n");
	CHECK_EQ_INT(shift_alloc_get(state, "u", "a", 100, &a), 0);
	shift_alloc_clear(&a);
	CHECK_EQ_INT(shift_alloc_get(state, "u", "b", 60, &a), 0);
	CHECK_EQ_INT(a.uid_start, 5000);
	CHECK_EQ_INT(a.gid_start, 7120);
	shift_alloc_clear(&a);
	CHECK_EQ_INT(shift_alloc_get(state, "nobody-here", "x", 10, &a), -ENOENT);
	CHECK_EQ_INT(shift_alloc_get(state, "u", "", 10, &a), -EINVAL);
	CHECK_EQ_INT(shift_alloc_get(state, "u", "x", 0, &a), -EINVAL);
}

TEST(corrupt_state)
{
	struct shift_alloc a = { 0 };

	reset("alice:100000:65536\n", "alice:100000:65536\n");
	CHECK_EQ_INT(write_file(state, "{\"allocations\": [{\"container\": 1}]}"), 0);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c", 10, &a), -EBADMSG);
	CHECK_EQ_INT(write_file(state, "not json"), 0);
	CHECK_EQ_INT(shift_alloc_release(state, "c"), -EBADMSG);
	/* an empty file is an empty state */
	CHECK_EQ_INT(write_file(state, ""), 0);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c", 10, &a), 0);
	shift_alloc_clear(&a);
}

/* A state that breaks the rules of a block is refused, with a reason. */
TEST(state_rules)
{
	struct shift_alloc a = {0}, *list = NULL;
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	struct shift_alloc_opts o = { 0 };
	size_t n = 0;

	reset("alice:100000:65536\n", "alice:100000:65536\n");
	/* past the last id: used to end as "out of memory" */
	CHECK_EQ_INT(
	    write_file(state,
		       "{\"version\": 1, \"allocations\": [{\"container\": "
		       "\"a\", \"user\": \"alice\", \"uid_start\": 4294967295, "
		       "\"gid_start\": 100000, \"size\": 2}]}"),
	    0);
	CHECK_EQ_INT(shift_alloc_list_ex(state, &o, &list, &n, &e), -EBADMSG);
	CHECK_EQ_STR(e.why, "allocation 1 ('a'): uid block 4294967295+2 runs "
			  "past the last id 4294967295");
	CHECK_EQ_INT(
	    write_file(state,
		       "{\"version\": 1, \"allocations\": [{\"container\": "
		       "\"a\", \"user\": \"alice\", \"uid_start\": 0, "
		       "\"gid_start\": 100000, \"size\": 2}]}"),
	    0);
	CHECK_EQ_INT(shift_alloc_get_ex(state, "alice", "c", 10, &o, &a, &e),
		     -EBADMSG);
	CHECK_EQ_STR(e.why,
		     "allocation 1 ('a'): uid block 0+2 contains host id 0");
	CHECK_EQ_INT(
	    write_file(state,
		       "{\"version\": 1, \"allocations\": [{\"container\": "
		       "\"a\", \"user\": \"alice\", \"uid_start\": 100000, "
		       "\"gid_start\": 100000, \"size\": 2}, {\"container\": "
		       "\"b\", \"user\": \"alice\", \"uid_start\": 200000, "
		       "\"gid_start\": 100001, \"size\": 2}]}"),
	    0);
	CHECK_EQ_INT(shift_alloc_release_ex(state, "a", &o, NULL, &e), -EBADMSG);
	CHECK_EQ_STR(
	    e.why, "allocations 1 ('a') and 2 ('b'): their gid blocks overlap");
	CHECK_EQ_INT(write_file(state, "{\"version\": 2, \"allocations\": []}"),
		     0);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c", 10, &a), -EBADMSG);
	CHECK_EQ_INT(
	    write_file(state, "{\"version\": 1, \"allocations\": [],}"), 0);
	CHECK_EQ_INT(shift_alloc_get(state, "alice", "c", 10, &a), -EBADMSG);
}

/* The delegation as newuidmap reads it: missing file, malformed lines. */
TEST(delegation_lines)
{
	struct shift_alloc a = {0};
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	struct shift_alloc_opts o = { 0 };

	reset("alice:100000:65536\r\n", "alice:100000:65536\n");
	CHECK_EQ_INT(shift_alloc_get_ex(state, "alice", "c", 10, &o, &a, &e),
		     -EUCLEAN);
	CHECK(e.why && strstr(e.why, ": line 1: ends in CR") != NULL);
	reset("bob:x\nalice:100000:65536\n", "alice:100000:65536\n");
	CHECK_EQ_INT(shift_alloc_get_ex(state, "alice", "c", 10, &o, &a, &e), 0);
	shift_alloc_clear(&a);
	unlink(subuid);
	CHECK_EQ_INT(shift_alloc_get_ex(state, "alice", "d", 10, &o, &a, &e),
		     -ENOENT);
	CHECK(e.why && strstr(e.why, "does not exist") != NULL);
	/* --dry-run: nothing written */
	reset("alice:100000:65536\n", "alice:100000:65536\n");
	o.flags = SHIFT_ALLOC_DRY_RUN;
	CHECK_EQ_INT(shift_alloc_get_ex(state, "alice", "c", 10, &o, &a, &e), 0);
	CHECK_EQ_INT(a.uid_start, 100000);
	shift_alloc_clear(&a);
	CHECK_EQ_INT(access(state, F_OK), -1);
}

/* 20 processes at once: all distinct, none overlapping. */
TEST(concurrent)
{
	struct shift_alloc *list = NULL;
	size_t n = 0, i, j;
	pid_t pids[20];
	int k, status, bad = 0;

	reset("alice:100000:6553600\n", "alice:100000:6553600\n");
	for (k = 0; k < 20; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			struct shift_alloc a = { 0 };
			char name[16];

			snprintf(name, sizeof(name), "c%d", k);
			_exit(shift_alloc_get(state, "alice", name, 65536, &a) == 0 ? 0 : 1);
		}
	}
	for (k = 0; k < 20; k++) {
		CHECK(waitpid(pids[k], &status, 0) == pids[k]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(shift_alloc_list(state, &list, &n), 0);
	CHECK_EQ_INT(n, 20);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++) {
			CHECK(list[i].uid_start != list[j].uid_start);
			CHECK(strcmp(list[i].container, list[j].container) != 0);
		}
	shift_alloc_list_free(list, n);
}

int main(void)
{
	char lock[320];
	int r;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/alloc.json", dir);
	snprintf(subuid, sizeof(subuid), "%s/subuid", dir);
	snprintf(subgid, sizeof(subgid), "%s/subgid", dir);
	setenv("SHIFT_SUBUID", subuid, 1);
	setenv("SHIFT_SUBGID", subgid, 1);
	r = test_main();
	snprintf(lock, sizeof(lock), "%s.lock", state);
	unlink(state);
	unlink(lock);
	unlink(subuid);
	unlink(subgid);
	rmdir(dir);
	return r;
}
