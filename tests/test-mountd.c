/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shift-mountd's pure parts: the policy, the configuration, the protocol. */
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "shift.h"
#include "lib.h"

/* A caller 1000:1000 with subuid/subgid 200000..265535. */
static struct shift_idmap *deleg(void)
{
	struct shift_idmap *m = shift_idmap_new();

	CHECK_EQ_INT(shift_idmap_parse(m, "b:0:200000:65536", NULL), 0);
	return m;
}


static const struct shift_mountd_source good_src = {
    .mode = S_IFDIR | 0755,
    .uid = 1000,
    .gid = 1000,
    .fs_type = EXT4_SUPER_MAGIC,
};

/*
 * The calls with their reason (err->why) copied into a buffer, "" when
 * none: the checks below compare text.
 */
static int why_buf(int r, struct shift_error *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s", e->why ? e->why : "");
	shift_error_clear(e);
	return r;
}

static int policy_buf(const struct shift_mountd_caller *c,
		      const struct shift_idmap *m,
		      const struct shift_mountd_source *s, char *why, size_t n)
{
	struct shift_error e = { 0 };

	return why_buf(shift_mountd_policy(c, m, s, &e), &e, why, n);
}

static int conf_buf(const char *text, struct shift_mountd_conf *c, char *err,
		    size_t n)
{
	struct shift_error e = { 0 };

	return why_buf(shift_mountd_conf_parse(text, c, &e), &e, err, n);
}

static int request_buf(const void *buf, size_t len, unsigned nfds,
		       struct shift_mountd_request *r, char *err, size_t n)
{
	struct shift_error e = { 0 };

	return why_buf(shift_mountd_request_parse(buf, len, nfds, r, &e), &e,
		       err, n);
}

static int answer_buf(const void *buf, size_t len, char *msg, size_t n)
{
	struct shift_error e = { 0 };

	return why_buf(shift_mountd_answer_parse(buf, len, &e), &e, msg, n);
}

static int check(const char *spec, const struct shift_mountd_source *s,
		 bool foreign, char *why, size_t n)
{
	struct shift_idmap *d = deleg(), *m = map_of(spec);
	struct shift_mountd_caller c = {1000, 1000, d, foreign};
	int r = policy_buf(&c, m, s, why, n);

	shift_idmap_free(d);
	shift_idmap_free(m);
	return r;
}

TEST(policy_allows_within_delegation)
{
	char why[256];

	CHECK_EQ_INT(check("b:1000:200000:1 b:200001:200001:65535", &good_src,
			   false, why, sizeof(why)),
		     0);
	CHECK_EQ_STR(why, "");
	/* own id on both sides */
	CHECK_EQ_INT(check("b:1000:1000:1", &good_src, false, why, sizeof(why)),
		     0);
}

TEST(policy_refuses_host_root)
{
	char why[256];

	CHECK_EQ_INT(check("b:0:200000:10", &good_src, false, why, sizeof(why)),
		     -EPERM);
	CHECK(strstr(why, "on-disk side") && strstr(why, "host uid 0"));
	CHECK_EQ_INT(check("u:200000:0:1 g:200000:200000:1", &good_src, false,
			   why, sizeof(why)),
		     -EPERM);
	CHECK(strstr(why, "seen side") != NULL);
}

TEST(policy_refuses_either_side_outside)
{
	char why[256];

	/* seen side leaves the delegation by one id */
	CHECK_EQ_INT(
	    check("b:200000:200001:65536", &good_src, false, why, sizeof(why)),
	    -EPERM);
	CHECK_EQ_STR(why, "the map's seen uid 265536 is not yours (neither "
			  "your uid 1000 nor in your /etc/subuid delegation)");
	/* on-disk side: another user's ids */
	CHECK_EQ_INT(
	    check("b:1001:200000:1", &good_src, false, why, sizeof(why)),
	    -EPERM);
	CHECK_EQ_STR(why, "the map's on-disk uid 1001 is not yours (neither "
			  "your uid 1000 nor in your /etc/subuid delegation)");
	/* gid side only */
	CHECK_EQ_INT(check("u:1000:200000:1 g:5:200000:1", &good_src, false,
			   why, sizeof(why)),
		     -EPERM);
	CHECK(strstr(why, "on-disk gid 5") != NULL);
	/* a range spanning own id and a gap */
	CHECK_EQ_INT(
	    check("b:999:200000:2", &good_src, false, why, sizeof(why)),
	    -EPERM);
	CHECK(strstr(why, "on-disk uid 999") != NULL);
}

TEST(policy_adjacent_delegation_lines)
{
	struct shift_idmap *d = map_of("b:0:200000:100 b:100:200100:100");
	struct shift_idmap *m = map_of("b:200050:200000:100");
	struct shift_mountd_caller c = {1000, 1000, d, false};
	char why[256];

	CHECK_EQ_INT(policy_buf(&c, m, &good_src, why, sizeof(why)),
		     0);
	shift_idmap_free(d);
	shift_idmap_free(m);
}

TEST(policy_no_delegation_only_own_id)
{
	struct shift_idmap *m = map_of("b:1000:1000:1");
	struct shift_mountd_caller c = {1000, 1000, NULL, false};
	char why[256];

	CHECK_EQ_INT(policy_buf(&c, m, &good_src, why, sizeof(why)),
		     0);
	shift_idmap_free(m);
	m = map_of("b:1000:1001:1");
	CHECK_EQ_INT(policy_buf(&c, m, &good_src, why, sizeof(why)),
		     -EPERM);
	shift_idmap_free(m);
}

TEST(policy_source_rules)
{
	struct shift_mountd_source s = good_src;
	const char *ok = "b:1000:200000:1";
	char why[256];

	s.mode = S_IFREG | 0644;
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -ENOTDIR);
	s = good_src;
	s.fs_type = PROC_SUPER_MAGIC;
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "'proc'") != NULL);
	s.fs_type = 0x63677270; /* cgroup2 */
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "'cgroup2'") != NULL);
	s = good_src;
	s.idmapped = true;
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "already an idmapped mount") != NULL);
	s = good_src;
	s.submounts = true;
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "mounts below it") != NULL);
	s = good_src;
	s.uid = 0; /* /etc */
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	CHECK_EQ_STR(why,
		     "the source directory is owned by uid 0, which is neither "
		     "yours (1000) nor in your /etc/subuid delegation");
	s.uid = 1001; /* another user's */
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), -EPERM);
	s.uid = 200005; /* a delegated id */
	CHECK_EQ_INT(check(ok, &s, false, why, sizeof(why)), 0);
	CHECK(shift_mountd_pseudo_fs(EXT4_SUPER_MAGIC) == NULL);
	CHECK(shift_mountd_pseudo_fs(TMPFS_MAGIC) == NULL);
	CHECK_EQ_STR(shift_mountd_pseudo_fs(SYSFS_MAGIC), "sysfs");
}

TEST(policy_foreign_range)
{
	struct shift_mountd_source s = good_src;
	char spec[64], why[256];

	snprintf(spec, sizeof(spec), "b:%u:200000:65536",
		 SHIFT_FOREIGN_UID_BASE);
	s.uid = SHIFT_FOREIGN_UID_BASE;
	CHECK_EQ_INT(check(spec, &s, false, why, sizeof(why)), -EPERM);
	CHECK_EQ_INT(check(spec, &s, true, why, sizeof(why)), 0);
	/* only on disk: never as the seen side */
	snprintf(spec, sizeof(spec), "b:200000:%u:1", SHIFT_FOREIGN_UID_BASE);
	CHECK_EQ_INT(check(spec, &good_src, true, why, sizeof(why)), -EPERM);
	/* and not one past it */
	snprintf(spec, sizeof(spec), "b:%u:200000:65537",
		 SHIFT_FOREIGN_UID_BASE);
	CHECK_EQ_INT(check(spec, &s, true, why, sizeof(why)), -EPERM);
}

TEST(conf_defaults_and_keys)
{
	struct shift_mountd_conf c;
	char err[256];

	CHECK_EQ_INT(conf_buf(NULL, &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.users[0], "*");
	CHECK(c.users[1] == NULL && c.groups[0] == NULL);
	CHECK(!c.foreign_range && !c.force_nosuid);
	CHECK_EQ_INT(c.max_per_user, 8);
	shift_mountd_conf_done(&c);

	CHECK_EQ_INT(
	    conf_buf("# c\n\nallow-users = alice, 1001\n"
				    "allow-groups=ctr\nforeign-range = yes\n"
				    "timeout = 3\n",
				    &c, err, sizeof(err)),
	    0);
	CHECK_EQ_STR(c.users[0], "alice");
	CHECK_EQ_STR(c.users[1], "1001");
	CHECK(c.users[2] == NULL);
	CHECK_EQ_STR(c.groups[0], "ctr");
	CHECK(c.foreign_range);
	CHECK_EQ_INT(c.timeout, 3);
	shift_mountd_conf_done(&c);

	CHECK_EQ_INT(
	    conf_buf("timeout = 3\nallow-everything = yes\n", &c,
				    err, sizeof(err)),
	    -EINVAL);
	CHECK_EQ_STR(err, "line 2: unknown key 'allow-everything'");
	CHECK_EQ_INT(conf_buf("foreign-range = maybe\n", &c, err,
					     sizeof(err)),
		     -EINVAL);
	CHECK_EQ_STR(err, "line 1: invalid value 'maybe' for 'foreign-range' "
			  "(use yes or no)");
	CHECK_EQ_INT(
	    conf_buf("timeout = 0\n", &c, err, sizeof(err)),
	    -EINVAL);
	CHECK_EQ_INT(conf_buf("timeout = 1\ntimeout = 2\n", &c,
					     err, sizeof(err)),
		     -EINVAL);
	CHECK_EQ_INT(
	    conf_buf("just words\n", &c, err, sizeof(err)),
	    -EINVAL);
}

static int req(const char *s, unsigned nfds, struct shift_mountd_request *r,
	       char *err, size_t n)
{
	return request_buf(s, strlen(s), nfds, r, err, n);
}

TEST(request_roundtrip)
{
	struct shift_mountd_request in = {SHIFT_MOUNTD_VERSION,
					  (char *)"b:1000:200000:1", false,
					  SHIFT_MOUNT_RDONLY};
	struct shift_mountd_request out;
	char *s = shift_mountd_request_format(&in), err[256];

	CHECK(s != NULL);
	CHECK_EQ_INT(req(s, 1, &out, err, sizeof(err)), 0);
	CHECK_EQ_STR(out.map, "b:1000:200000:1");
	CHECK_EQ_INT(out.flags, SHIFT_MOUNT_RDONLY);
	CHECK(!out.userns);
	shift_mountd_request_done(&out);
	/* the fd count is part of the message */
	CHECK_EQ_INT(req(s, 0, &out, err, sizeof(err)), -EBADMSG);
	CHECK_EQ_INT(req(s, 2, &out, err, sizeof(err)), -EBADMSG);
	free(s);
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"userns\":true}", 2,
			 &out, err, sizeof(err)),
		     0);
	CHECK(out.userns && !out.map);
	shift_mountd_request_done(&out);
}

TEST(request_refusals)
{
	struct shift_mountd_request r;
	char err[256];

	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"map\":\"b:1:1:1\","
			 "\"uid\":0}",
			 1, &r, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_STR(err, "unknown key 'uid'");
	CHECK_EQ_INT(req("{\"version\":2,\"op\":\"idmap\",\"map\":\"x\"}", 1,
			 &r, err, sizeof(err)),
		     -EBADMSG);
	CHECK(strstr(err, "version 2") != NULL);
	CHECK_EQ_INT(
	    req("{\"version\":1,\"op\":\"idmap\"}", 1, &r, err, sizeof(err)),
	    -EBADMSG);
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"map\":\"x\","
			 "\"userns\":true}",
			 2, &r, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"map\":5}", 1, &r,
			 err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_STR(err, "key 'map' has the wrong type");
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"map\":\"x\"} x", 1,
			 &r, err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"idmap\",\"map\":\"x\"", 1, &r,
			 err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(req("[1,2]", 1, &r, err, sizeof(err)), -EBADMSG);
	CHECK_EQ_INT(req("", 1, &r, err, sizeof(err)), -EBADMSG);
	CHECK_EQ_INT(req("{\"version\":1,\"op\":\"rm\",\"map\":\"x\"}", 1, &r,
			 err, sizeof(err)),
		     -EBADMSG);
	CHECK_EQ_INT(
	    request_buf("{\"a\0", 4, 1, &r, err, sizeof(err)),
	    -EBADMSG);
}

TEST(answer_roundtrip)
{
	char *s = shift_mountd_answer_format(-EPERM, "no\nway"), msg[128];

	CHECK_EQ_INT(answer_buf(s, strlen(s), msg, sizeof(msg)),
		     -EPERM);
	/* escaped: the client prints it on one line */
	CHECK_EQ_STR(msg, "no\\nway");
	free(s);
	s = shift_mountd_answer_format(0, NULL);
	CHECK_EQ_INT(answer_buf(s, strlen(s), msg, sizeof(msg)),
		     0);
	free(s);
	CHECK_EQ_INT(answer_buf("{\"ok\":false,\"errno\":-3}",
					       23, msg, sizeof(msg)),
		     -EBADMSG);
}

TEST_MAIN()
