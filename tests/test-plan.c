/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sk_inode_plan(), the pure part of the shift of one inode
 * (libshift/engine/inode.c): from an inode's stat, ACL and capability
 * values, its progress record and the rules (map, options, journal), the
 * changes planned and the ids reported.  No files: one table.
 */
#include <endian.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine-internal.h"
#include "shift.h"
#include "lib.h"

/* A raw POSIX ACL value: header + n entries {tag, perm, id}. */
static size_t acl_build(unsigned char *buf, const uint32_t (*e)[3], size_t n)
{
	uint32_t v = htole32(2);

	memcpy(buf, &v, 4);
	for (size_t i = 0; i < n; i++) {
		uint16_t t = htole16((uint16_t)e[i][0]);
		uint16_t p = htole16((uint16_t)e[i][1]);
		uint32_t id = htole32(e[i][2]);

		memcpy(buf + 4 + i * 8, &t, 2);
		memcpy(buf + 6 + i * 8, &p, 2);
		memcpy(buf + 8 + i * 8, &id, 4);
	}
	return 4 + n * 8;
}

static uint32_t acl_id(const void *buf, size_t i)
{
	uint32_t v;

	memcpy(&v, (const char *)buf + 8 + i * 8, 4);
	return le32toh(v);
}

/* u:1000:rw g:1001:r u:U:rw (entry 4, U: the case's acl_extra) */
static size_t acl_sample(unsigned char *buf, uint32_t extra)
{
	const uint32_t e[][3] = {
	    {SHIFT_ACL_USER_OBJ, 7, SHIFT_ID_NONE},
	    {SHIFT_ACL_USER, 6, 1000},
	    {SHIFT_ACL_GROUP_OBJ, 5, SHIFT_ID_NONE},
	    {SHIFT_ACL_GROUP, 4, 1001},
	    {SHIFT_ACL_USER, 6, extra},
	    {SHIFT_ACL_MASK, 7, SHIFT_ID_NONE},
	    {SHIFT_ACL_OTHER, 5, SHIFT_ID_NONE},
	};

	return acl_build(buf, e, 7);
}

/* security.capability: v2 (20 bytes, rootid 0) or v3 (24, rootid). */
static size_t caps_build(unsigned char *b, int rev, uint32_t rootid)
{
	uint32_t v;

	memset(b, 0, 24);
	v = htole32(rev == 2 ? 0x02000001u : 0x03000001u);
	memcpy(b, &v, 4);
	v = htole32(1u << 13); /* cap_net_raw */
	memcpy(b + 4, &v, 4);
	if (rev == 2)
		return 20;
	v = htole32(rootid);
	memcpy(b + 20, &v, 4);
	return 24;
}

enum { NOACL = 0, ACL = 1 };
enum { ENGINE = 1, JOURNAL = 2, RESUMED = 4, DRY = 8, REVERSE = 16 };

struct plan_case {
	const char *name;
	const char *map;
	unsigned rules; /* ENGINE, JOURNAL, ... */
	enum shift_unmapped policy;
	uint32_t uid, gid, mode;
	int acl; /* ACL: the sample access ACL, acl_extra its 5th qualifier */
	uint32_t acl_extra;
	int caps; /* 0, or the revision */
	uint32_t caps_rootid;
	/* expected */
	enum sk_plan_kind kind;
	unsigned what;
	uint32_t new_uid, new_gid;
	uint32_t mode_after; /* mode_restore to this (0: none) */
	size_t n_unmapped;
	bool intent_write, by_name, keep;
	uint32_t acl_after[3];	    /* qualifiers 1000, 1001, acl_extra after */
	uint32_t caps_rootid_after; /* caps_len 24 with it, or 20 when 0 */
	int fail_err;
};

#define M "0:100000:65536"
#define OWN SHIFT_WHAT_OWNER
#define ACLA SHIFT_WHAT_ACL_ACCESS
#define FCAPS SHIFT_WHAT_FCAPS
#define MODE SHIFT_WHAT_MODE

static const struct plan_case cases[] = {
    {"plain file: chown by name, nothing else", M, 0, SHIFT_UNMAPPED_ERROR, 0,
     0, S_IFREG | 0644, .kind = SK_PLAN_CHANGE, .what = OWN, .new_uid = 100000,
     .new_gid = 100000, .by_name = true},
    {"plain file in the engine: no record for a lone chown", M,
     ENGINE | JOURNAL, SHIFT_UNMAPPED_ERROR, 1000, 1001, S_IFREG | 0600,
     .kind = SK_PLAN_CHANGE, .what = OWN, .new_uid = 101000, .new_gid = 101001,
     .by_name = true},
    {"setuid file: setid bits restored after the chown", M, ENGINE | JOURNAL,
     SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 04755, .kind = SK_PLAN_CHANGE,
     .what = OWN | MODE, .new_uid = 100000, .new_gid = 100000,
     .mode_after = 04755, .intent_write = true},
    {"setgid directory: no restore (a chown keeps a directory's bits)", M, 0,
     SHIFT_UNMAPPED_ERROR, 0, 1000, S_IFDIR | 02775, .kind = SK_PLAN_CHANGE,
     .what = OWN, .new_uid = 100000, .new_gid = 101000, .by_name = true},
    {"identity map: nothing to do", "0:0:65536", ENGINE | JOURNAL,
     SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 04755, ACL, 2000,
     .kind = SK_PLAN_NONE, .acl_after = {1000, 1001, 2000}},
    {"ACL: qualifiers translated", M, 0, SHIFT_UNMAPPED_ERROR, 0, 0,
     S_IFREG | 0644, ACL, 2000, .kind = SK_PLAN_CHANGE, .what = OWN | ACLA,
     .new_uid = 100000, .new_gid = 100000,
     .acl_after = {101000, 101001, 102000}},
    {"ACL, unmapped qualifier, error policy, lone inode: shifted, reported", M,
     0, SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 0644, ACL, 70000,
     .kind = SK_PLAN_CHANGE, .what = OWN | ACLA, .new_uid = 100000,
     .new_gid = 100000, .n_unmapped = 1, .acl_after = {101000, 101001, 70000}},
    {"ACL, unmapped qualifier, error policy, engine: left pending", M,
     ENGINE | JOURNAL, SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 0644, ACL, 70000,
     .kind = SK_PLAN_PENDING, .new_uid = 100000, .new_gid = 100000,
     .n_unmapped = 1, .intent_write = true,
     .acl_after = {101000, 101001, 70000}},
    {"ACL, unmapped qualifier, engine dry run: pending, nothing written", M,
     ENGINE | DRY, SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 0644, ACL, 70000,
     .kind = SK_PLAN_PENDING, .new_uid = 100000, .new_gid = 100000,
     .n_unmapped = 1, .acl_after = {101000, 101001, 70000}},
    {"ACL, unmapped qualifier, keep policy", M, ENGINE | JOURNAL,
     SHIFT_UNMAPPED_KEEP, 0, 0, S_IFREG | 0644, ACL, 70000,
     .kind = SK_PLAN_CHANGE, .what = OWN | ACLA, .new_uid = 100000,
     .new_gid = 100000, .n_unmapped = 1, .intent_write = true,
     .acl_after = {101000, 101001, 70000}},
    /* The overflow id lies in the map's domain: the result would shift
     * again, so the record stays until the cleanup phase. */
    {"ACL, unmapped qualifier, overflow policy", M, ENGINE | JOURNAL,
     SHIFT_UNMAPPED_OVERFLOW, 0, 0, S_IFREG | 0644, ACL, 70000,
     .kind = SK_PLAN_CHANGE, .what = OWN | ACLA, .new_uid = 100000,
     .new_gid = 100000, .n_unmapped = 1, .intent_write = true, .keep = true,
     .acl_after = {101000, 101001, 65534}},
    {"unmapped owner, overflow policy", M, 0, SHIFT_UNMAPPED_OVERFLOW, 70000, 0,
     S_IFREG | 0644, .kind = SK_PLAN_CHANGE, .what = OWN, .new_uid = 65534,
     .new_gid = 100000, .n_unmapped = 1, .by_name = true, .keep = true},
    {"unmapped owner, keep policy: the uid stays", M, 0, SHIFT_UNMAPPED_KEEP,
     70000, 0, S_IFREG | 0644, .kind = SK_PLAN_CHANGE, .what = OWN,
     .new_uid = 70000, .new_gid = 100000, .n_unmapped = 1, .by_name = true},
    {"v2 capability: becomes v3 with the new rootid", M, ENGINE | JOURNAL,
     SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 0755, .caps = 2,
     .kind = SK_PLAN_CHANGE, .what = OWN | FCAPS, .new_uid = 100000,
     .new_gid = 100000, .intent_write = true, .caps_rootid_after = 100000},
    {"v3 capability, rootid without image: failed, reported", M,
     ENGINE | JOURNAL, SHIFT_UNMAPPED_ERROR, 0, 0, S_IFREG | 0755, .caps = 3,
     .caps_rootid = 70000, .kind = SK_PLAN_FAIL, .new_uid = 100000,
     .new_gid = 100000, .n_unmapped = 1, .fail_err = -EOVERFLOW},
    {"reverse: the inverted map", M, REVERSE, SHIFT_UNMAPPED_ERROR, 100000,
     101000, S_IFREG | 06755, .kind = SK_PLAN_CHANGE, .what = OWN | MODE,
     .new_uid = 0, .new_gid = 1000, .mode_after = 06755},
    {"reverse, v3 capability back to v2", M, REVERSE, SHIFT_UNMAPPED_ERROR,
     100000, 100000, S_IFREG | 0755, .caps = 3, .caps_rootid = 100000,
     .kind = SK_PLAN_CHANGE, .what = OWN | FCAPS, .new_uid = 0, .new_gid = 0},
    {"dry run: planned, no record", M, ENGINE | DRY, SHIFT_UNMAPPED_ERROR, 0, 0,
     S_IFREG | 04755, .kind = SK_PLAN_CHANGE, .what = OWN | MODE,
     .new_uid = 100000, .new_gid = 100000, .mode_after = 04755},
    {"overlapping map: the result would shift again, record kept",
     "0:1000:65536", ENGINE | JOURNAL, SHIFT_UNMAPPED_ERROR, 0, 0,
     S_IFREG | 0644, .kind = SK_PLAN_CHANGE, .what = OWN, .new_uid = 1000,
     .new_gid = 1000, .intent_write = true, .keep = true},
    /* 1000 and 70000 both without image: one overflow id for two
     * ACL_USER entries is no valid ACL; the inode is left alone. */
    {"ACL, two qualifiers to one overflow id: failed, untouched",
     "0:100000:1000", ENGINE | JOURNAL, SHIFT_UNMAPPED_OVERFLOW, 0, 0,
     S_IFREG | 0644, ACL, 70000, .kind = SK_PLAN_FAIL, .new_uid = 100000,
     .new_gid = 100000, .fail_err = -EINVAL},
    /* Resumed without a record: ids in the map's image only are taken
     * for shifted ones -- no report, no change, not pending. */
    {"resumed, no record, owner already shifted: quiet, nothing", M,
     ENGINE | JOURNAL | RESUMED, SHIFT_UNMAPPED_ERROR, 100000, 100000,
     S_IFREG | 0644, .kind = SK_PLAN_NONE, .new_uid = 100000,
     .new_gid = 100000},
    {"not resumed, owner in the image only: reported, pending", M,
     ENGINE | JOURNAL, SHIFT_UNMAPPED_ERROR, 100000, 100000, S_IFREG | 0644,
     .kind = SK_PLAN_PENDING, .new_uid = 100000, .new_gid = 100000,
     .n_unmapped = 2, .intent_write = true},
};

static void run_case(const struct plan_case *c, struct sk_plan *p)
{
	struct shift_idmap *m = shift_idmap_new(), *applied;
	unsigned char acl[128], caps[24];
	struct sk_plan_rules rules = {
	    .unmapped = c->policy,
	    .overflow = {65534, 65534},
	    .dry_run = c->rules & DRY,
	    .engine = c->rules & ENGINE,
	    .journal = (c->rules & JOURNAL) && !(c->rules & DRY),
	    .resumed = c->rules & RESUMED,
	    .gen = 42,
	};
	struct sk_inode_facts in = {
	    .st = {.dev = 1,
		   .ino = 2,
		   .mode = c->mode,
		   .uid = c->uid,
		   .gid = c->gid,
		   .nlink = 1},
	};

	printf("# %s\n", c->name);
	CHECK_EQ_INT(shift_idmap_parse(m, c->map, NULL), 0);
	applied = (c->rules & REVERSE) ? shift_idmap_invert(m) : m;
	rules.map = applied;
	if (c->acl) {
		in.has_acl[0] = true;
		in.acl[0] = acl;
		in.acl_len[0] = acl_sample(acl, c->acl_extra);
	}
	if (c->caps) {
		in.has_caps = true;
		in.caps = caps;
		in.caps_len = caps_build(caps, c->caps, c->caps_rootid);
	}
	CHECK_EQ_INT(sk_inode_plan(&rules, &in, p), 0);
	CHECK_EQ_INT(p->kind, c->kind);
	CHECK_EQ_INT(p->uid, c->new_uid);
	CHECK_EQ_INT(p->gid, c->new_gid);
	CHECK_EQ_INT(p->n_unmapped, c->n_unmapped);
	CHECK_EQ_INT(p->intent_write, c->intent_write);
	if (c->kind == SK_PLAN_FAIL) {
		CHECK_EQ_INT(p->fail_err, c->fail_err);
		CHECK(p->fail_op != NULL);
	}
	if (c->kind == SK_PLAN_CHANGE || c->kind == SK_PLAN_NONE) {
		CHECK_EQ_INT(p->what, c->what);
		CHECK_EQ_INT(p->chown, (c->what & OWN) != 0);
		CHECK_EQ_INT(p->chown_by_name, c->by_name);
		CHECK_EQ_INT(p->keep, c->keep);
		CHECK_EQ_INT(p->mode_restore, c->mode_after != 0);
		if (c->mode_after)
			CHECK_EQ_INT(p->mode, c->mode_after);
		CHECK_EQ_INT(p->caps_write, (c->what & FCAPS) != 0);
		CHECK_EQ_INT(p->acl_change[0], (c->what & ACLA) != 0);
	}
	if (p->intent_write) {
		CHECK_EQ_INT(p->intent.magic, SK_INTENT_MAGIC);
		CHECK_EQ_INT(p->intent.gen, 42);
		if (c->kind == SK_PLAN_PENDING) {
			CHECK_EQ_INT(p->intent.flags, SK_INTENT_PENDING);
		} else {
			/* the originals, for a re-run after a crash */
			CHECK_EQ_INT(p->intent.uid, c->uid);
			CHECK_EQ_INT(p->intent.gid, c->gid);
			CHECK_EQ_INT(p->intent.mode, c->mode);
			CHECK_EQ_INT(p->intent_remove, !c->keep);
		}
	}
	if (c->acl && c->acl_after[0]) {
		const void *v = p->acl_change[0] ? (const void *)p->acl[0]
						 : (const void *)acl;

		CHECK_EQ_INT(acl_id(v, 1), c->acl_after[0]);
		CHECK_EQ_INT(acl_id(v, 3), c->acl_after[1]);
		CHECK_EQ_INT(acl_id(v, 4), c->acl_after[2]);
	}
	if (p->caps_write) {
		uint32_t rootid = 1;

		CHECK_EQ_INT(p->caps_len, c->caps_rootid_after ? 24 : 20);
		CHECK_EQ_INT(shift_fcaps_rootid(p->caps, p->caps_len, &rootid),
			     c->caps_rootid_after ? 3 : 2);
		CHECK_EQ_INT(rootid, c->caps_rootid_after);
	}
	if (applied != m)
		shift_idmap_free(applied);
	shift_idmap_free(m);
}

TEST(plan_table)
{
	struct sk_plan p = {0};

	/* One plan for all: its buffers are reused, as in the engine. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], &p);
	sk_plan_free(&p);
}

/* A change in the works (its record says the original was root's, setuid)
 * and the chown done before a crash: only the setid bits remain, then
 * the record goes. */
TEST(plan_resumes_from_the_record)
{
	struct shift_idmap *m = shift_idmap_new();
	struct sk_intent it = {
	    .magic = SK_INTENT_MAGIC,
	    .gen = 7,
	    .uid = 0,
	    .gid = 0,
	    .mode = S_IFREG | 04755,
	};
	struct sk_plan_rules rules = {
	    .unmapped = SHIFT_UNMAPPED_ERROR,
	    .overflow = {65534, 65534},
	    .engine = true,
	    .journal = true,
	    .resumed = true,
	    .gen = 7,
	};
	struct sk_inode_facts in = {
	    .st = {.mode = S_IFREG | 0755, .uid = 100000, .gid = 100000},
	    .intent = &it,
	};
	struct sk_plan p = {0};

	CHECK_EQ_INT(shift_idmap_parse(m, M, NULL), 0);
	rules.map = m;
	CHECK_EQ_INT(sk_inode_plan(&rules, &in, &p), 0);
	CHECK_EQ_INT(p.kind, SK_PLAN_CHANGE);
	CHECK_EQ_INT(p.what, MODE);
	CHECK_EQ_INT(p.chown, false);
	CHECK_EQ_INT(p.mode, 04755);
	CHECK_EQ_INT(p.intent_write, false);
	CHECK_EQ_INT(p.intent_remove, true);

	/* done meanwhile: nothing but the record's removal */
	in.st.mode = S_IFREG | 04755;
	CHECK_EQ_INT(sk_inode_plan(&rules, &in, &p), 0);
	CHECK_EQ_INT(p.kind, SK_PLAN_NONE);
	CHECK_EQ_INT(p.intent_remove, true);

	/* a pending mark: the inode as it is now is unshifted */
	it.flags = SK_INTENT_PENDING;
	in.st = (struct sk_stat){.mode = S_IFREG | 0644, .uid = 0, .gid = 0};
	CHECK_EQ_INT(sk_inode_plan(&rules, &in, &p), 0);
	CHECK_EQ_INT(p.kind, SK_PLAN_CHANGE);
	CHECK_EQ_INT(p.uid, 100000);
	CHECK_EQ_INT(p.intent_write, true); /* replaces the mark first */
	CHECK_EQ_INT(p.intent_remove, true);
	sk_plan_free(&p);
	shift_idmap_free(m);
}

TEST_MAIN()
