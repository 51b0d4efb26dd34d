/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The map model: grammar, validation, application, inversion, printing. */
#include <stdio.h>
#include <sched.h>
#include <unistd.h>
#include <sys/stat.h>

#include "shift.h"
#include "lib.h"

static struct shift_idmap *parse_ok(const char *spec)
{
	struct shift_idmap *m = shift_idmap_new();
	struct shift_error why = { 0 };
	int r = shift_idmap_parse(m, spec, &why);

	if (r < 0)
		printf("#   parse '%s': %s\n", spec, shift_error_why(&why, r));
	CHECK_EQ_INT(r, 0);
	shift_error_clear(&why);
	return m;
}

static int parse_err(const char *spec, struct shift_error *why)
{
	struct shift_idmap *m = shift_idmap_new();
	int r = shift_idmap_parse(m, spec, why);

	shift_idmap_free(m);
	return r;
}

TEST(parse_both)
{
	struct shift_idmap *m = parse_ok("0:100000:65536");
	uint32_t v;

	CHECK_EQ_INT(shift_idmap_count(m, SHIFT_UID), 1);
	CHECK_EQ_INT(shift_idmap_count(m, SHIFT_GID), 1);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_UID, 0, &v), 0);
	CHECK_EQ_INT(v, 100000);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_GID, 65535, &v), 0);
	CHECK_EQ_INT(v, 165535);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_UID, 65536, &v), -ERANGE);
	CHECK_EQ_INT(shift_idmap_to_disk(m, SHIFT_UID, 100005, &v), 0);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(shift_idmap_to_disk(m, SHIFT_UID, 99999, &v), -ERANGE);
	shift_idmap_free(m);
}

TEST(parse_prefixes_and_lists)
{
	struct shift_idmap *m = parse_ok("u:0:1000:10 g:0:2000:10,b:100:5000:1");
	uint32_t v;

	CHECK_EQ_INT(shift_idmap_count(m, SHIFT_UID), 2);
	CHECK_EQ_INT(shift_idmap_count(m, SHIFT_GID), 2);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_UID, 3, &v), 0);
	CHECK_EQ_INT(v, 1003);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_GID, 3, &v), 0);
	CHECK_EQ_INT(v, 2003);
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_GID, 100, &v), 0);
	CHECK_EQ_INT(v, 5000);
	shift_idmap_free(m);
}

TEST(parse_errors)
{
	struct shift_error why = { 0 };

	CHECK_EQ_INT(parse_err("", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("0:1", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("0:1:2:3", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("x:0:1:2", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("0:-1:2", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("0:0x10:2", &why), -EINVAL);
	CHECK_EQ_INT(parse_err("0:100000:0", &why), -EINVAL);
	CHECK_EQ_STR(why.why, "an extent's count must not be zero");
	CHECK_EQ_INT(parse_err("0:4294967295:1", &why), -ERANGE);
	CHECK_EQ_INT(parse_err("0:4294967000:1000", &why), -ERANGE);
	CHECK_EQ_INT(parse_err("0:99999999999:1", &why), -ERANGE);
	CHECK_EQ_INT(parse_err("0:100000:100 50:200000:100", &why), -EEXIST);
	CHECK_EQ_INT(parse_err("0:100000:100 500:100050:100", &why), -EEXIST);
	/* u and g extents are independent: no overlap between kinds */
	CHECK_EQ_INT(parse_err("u:0:100000:100 g:0:100000:100", &why), 0);
	shift_error_clear(&why);
}

TEST(extent_limit)
{
	struct shift_idmap *m = shift_idmap_new();
	struct shift_error why = { 0 };
	int r = 0;

	for (uint32_t i = 0; i < 340; i++)
		r |= shift_idmap_add(m, SHIFT_UID, i, 1000 + i, 1, &why);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(shift_idmap_add(m, SHIFT_UID, 400, 2000, 1, &why), -E2BIG);
	shift_error_clear(&why);
	shift_idmap_free(m);
}

TEST(validate)
{
	struct shift_idmap *m = parse_ok("u:0:100000:65536");
	struct shift_error why = { 0 };

	CHECK_EQ_INT(shift_idmap_validate(m, SHIFT_VALIDATE_BOTH, &why), -EINVAL);
	CHECK(why.why && strstr(why.why, "gid map"));
	shift_idmap_free(m);

	m = parse_ok("100000:0:65536");
	CHECK_EQ_INT(shift_idmap_validate(m, SHIFT_VALIDATE_BOTH, &why), 0);
	CHECK_EQ_INT(shift_idmap_validate(m, SHIFT_VALIDATE_NO_HOST_ROOT, &why), -EPERM);
	CHECK(why.why && strstr(why.why, "--allow-host-root"));
	shift_error_clear(&why);
	shift_idmap_free(m);
}

TEST(validate_userns_length)
{
	struct shift_idmap *m = shift_idmap_new();
	struct shift_error why = { 0 };
	int r = 0;

	/* 340 extents of 7-digit ids: ~8 KB of uid_map text, too long */
	for (uint32_t i = 0; i < 340; i++)
		r |= shift_idmap_add(m, SHIFT_UID, 1000000 + i, 2000000 + i, 1, NULL);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(shift_idmap_parse(m, "g:0:100000:10", NULL), 0);
	CHECK_EQ_INT(shift_idmap_validate(m, SHIFT_VALIDATE_BOTH, &why), 0);
	CHECK_EQ_INT(shift_idmap_validate(m, SHIFT_VALIDATE_USERNS, &why), -E2BIG);
	CHECK(why.why && strstr(why.why, "4096"));
	shift_error_clear(&why);
	shift_idmap_free(m);
}

TEST(invert_compose_equal)
{
	struct shift_idmap *m = parse_ok("0:100000:65536");
	struct shift_idmap *i = shift_idmap_invert(m);
	struct shift_idmap *id, *want;
	uint32_t v;

	CHECK_EQ_INT(shift_idmap_to_seen(i, SHIFT_UID, 100007, &v), 0);
	CHECK_EQ_INT(v, 7);
	id = shift_idmap_compose(m, i);
	want = parse_ok("0:0:65536");
	CHECK(shift_idmap_equal(id, want));
	shift_idmap_free(id);
	shift_idmap_free(want);

	/* composition with a hole: only 0..9 survive */
	{
		struct shift_idmap *b = parse_ok("100000:200000:10");
		struct shift_idmap *c = shift_idmap_compose(m, b);

		want = parse_ok("0:200000:10");
		CHECK(shift_idmap_equal(c, want));
		CHECK_EQ_INT(shift_idmap_to_seen(c, SHIFT_UID, 10, &v), -ERANGE);
		shift_idmap_free(c);
		shift_idmap_free(b);
		shift_idmap_free(want);
	}
	shift_idmap_free(i);
	shift_idmap_free(m);
}

TEST(to_string_roundtrip)
{
	struct shift_idmap *m = parse_ok("g:20:6:7 u:0:100000:10 b:10:300:1");
	struct shift_idmap *m2;
	char *s = shift_idmap_to_string(m);

	CHECK_EQ_STR(s, "u:0:100000:10 b:10:300:1 g:20:6:7");
	m2 = parse_ok(s);
	CHECK(shift_idmap_equal(m, m2));
	free(s);
	shift_idmap_free(m2);
	shift_idmap_free(m);
}

TEST(format_proc)
{
	struct shift_idmap *m = parse_ok("0:100000:65536 u:70000:1000:1");
	char buf[128], small[8];

	CHECK(shift_idmap_format_proc(m, SHIFT_UID, buf, sizeof(buf)) > 0);
	CHECK_EQ_STR(buf, "0 100000 65536\n70000 1000 1\n");
	CHECK_EQ_INT(shift_idmap_format_proc(m, SHIFT_GID, small, sizeof(small)),
		     -ENOSPC);
	shift_idmap_free(m);
}

TEST(from_pid_self)
{
	struct shift_idmap *m = shift_idmap_new();
	uint32_t v;

	CHECK_EQ_INT(shift_idmap_from_pid(m, getpid()), 0);
	/* the initial namespace maps everything to itself */
	CHECK_EQ_INT(shift_idmap_to_seen(m, SHIFT_UID, 1234, &v), 0);
	CHECK_EQ_INT(v, 1234);
	shift_idmap_free(m);
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "we");

	if (f) {
		fputs(s, f);
		fclose(f);
	}
}

TEST(subid)
{
	char dir[] = "/tmp/test-idmap-XXXXXX", u[64], g[64];
	struct shift_idmap *m = shift_idmap_new(), *want;

	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	snprintf(u, sizeof(u), "%s/subuid", dir);
	snprintf(g, sizeof(g), "%s/subgid", dir);
	write_file(u, "# comment\nalice:100000:65536\nbob:165536:65536\nalice:300000:10\n");
	write_file(g, "alice:200000:65536\n");
	setenv("SHIFT_SUBUID", u, 1);
	setenv("SHIFT_SUBGID", g, 1);

	CHECK_EQ_INT(shift_idmap_from_subid(m, "alice"), 0);
	want = parse_ok("u:0:100000:65536 u:65536:300000:10 g:0:200000:65536");
	CHECK(shift_idmap_equal(m, want));
	shift_idmap_free(want);
	CHECK_EQ_INT(shift_idmap_within_subid(m, "alice"), 1);
	CHECK_EQ_INT(shift_idmap_within_subid(m, "bob"), 0);
	shift_idmap_free(m);

	m = shift_idmap_new();
	CHECK_EQ_INT(shift_idmap_from_subid(m, "bob"), -ENOENT); /* no gids */
	CHECK_EQ_INT(shift_idmap_from_subid(m, "nobody-here"), -ENOENT);
	shift_idmap_free(m);

	unsetenv("SHIFT_SUBUID");
	unsetenv("SHIFT_SUBGID");
	unlink(u);
	unlink(g);
	rmdir(dir);
}

/*
 * shift_idmap_from_subid() and shift_idmap_within_subid() read the files
 * with shift_subid_read(): a malformed line of the user's is an error
 * (newuidmap ignores it), not skipped; another user's is not; a missing
 * file delegates nothing.
 */
TEST(subid_one_parser)
{
	char dir[] = "/tmp/test-idmap-XXXXXX", u[64], g[64];
	struct shift_idmap *m = shift_idmap_new(), *want;
	struct shift_error e = {0};

	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	snprintf(u, sizeof(u), "%s/subuid", dir);
	snprintf(g, sizeof(g), "%s/subgid", dir);
	write_file(u, "carol:0100000:65536\nalice:100000:65536\nbob:1:2:3\n");
	write_file(g, "alice:200000:65536\r\n");
	setenv("SHIFT_SUBUID", u, 1);
	setenv("SHIFT_SUBGID", g, 1);
	/* the files it reads, named for a "no range" answer */
	CHECK_EQ_STR(shift_subid_file(SHIFT_UID), u);
	CHECK_EQ_STR(shift_subid_file(SHIFT_GID), g);

	/* carol's only line has a leading 0: not skipped, an error */
	CHECK_EQ_INT(shift_idmap_from_subid(m, "carol"), -EBADMSG);
	CHECK_EQ_INT(shift_subid_read(SHIFT_UID, "carol", m, NULL, NULL, &e),
		     -EBADMSG);
	CHECK_EQ_STR(e.path, u);
	CHECK_EQ_INT(e.line, 1);
	CHECK(e.why && strstr(e.why, "leading 0"));
	shift_error_clear(&e);
	/* alice's uids are fine, her gid line ends in CR */
	CHECK_EQ_INT(shift_idmap_from_subid(m, "alice"), -EBADMSG);
	shift_idmap_free(m);
	want = parse_ok("u:0:100000:65536 g:0:200000:65536");
	CHECK_EQ_INT(shift_idmap_within_subid(want, "alice"), -EBADMSG);
	shift_idmap_free(want);

	write_file(g, "alice:200000:65536\n");
	m = shift_idmap_new();
	CHECK_EQ_INT(shift_idmap_from_subid(m, "alice"), 0);
	want = parse_ok("u:0:100000:65536 g:0:200000:65536");
	CHECK(shift_idmap_equal(m, want));
	CHECK_EQ_INT(shift_idmap_within_subid(want, "alice"), 1);
	shift_idmap_free(want);
	shift_idmap_free(m);

	/* no files: no delegation, and nothing is within one */
	unlink(u);
	unlink(g);
	m = shift_idmap_new();
	CHECK_EQ_INT(shift_idmap_from_subid(m, "alice"), -ENOENT);
	want = parse_ok("u:0:100000:1 g:0:200000:1");
	CHECK_EQ_INT(shift_idmap_within_subid(want, "alice"), 0);
	shift_idmap_free(want);
	shift_idmap_free(m);

	unsetenv("SHIFT_SUBUID");
	unsetenv("SHIFT_SUBGID");
	rmdir(dir);
}

TEST_MAIN()
