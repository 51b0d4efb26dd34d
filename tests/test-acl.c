/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POSIX ACL xattr values: parsing, iteration, qualifier translation. */
#include <string.h>

#include "shift.h"
#include "util/le.h"
#include "lib.h"


/* Build a raw value: header + n entries {tag, perm, id}. */
static size_t build(unsigned char *buf, const uint32_t (*e)[3], size_t n)
{
	size_t i;

	sk_put_le32(buf, 2);
	for (i = 0; i < n; i++) {
		sk_put_le16(buf + 4 + i * 8, (uint16_t)e[i][0]);
		sk_put_le16(buf + 6 + i * 8, (uint16_t)e[i][1]);
		sk_put_le32(buf + 8 + i * 8, e[i][2]);
	}
	return 4 + n * 8;
}

static uint32_t id_at(const unsigned char *buf, size_t i)
{
	return sk_get_le32(buf + 8 + i * 8);
}

static const uint32_t sample[][3] = {
	{ SHIFT_ACL_USER_OBJ, 7, SHIFT_ID_NONE },
	{ SHIFT_ACL_USER, 6, 1000 },
	{ SHIFT_ACL_GROUP_OBJ, 5, SHIFT_ID_NONE },
	{ SHIFT_ACL_GROUP, 4, 1001 },
	{ SHIFT_ACL_USER, 6, 70000 },
	{ SHIFT_ACL_MASK, 7, SHIFT_ID_NONE },
	{ SHIFT_ACL_OTHER, 5, SHIFT_ID_NONE },
};

TEST(valid_and_malformed)
{
	unsigned char buf[128];
	size_t len = build(buf, sample, 7);

	CHECK_EQ_INT(shift_acl_valid(buf, len), 7);
	CHECK_EQ_INT(shift_acl_valid(buf, 4), 0);
	CHECK_EQ_INT(shift_acl_valid(buf, len - 1), -EINVAL);
	CHECK_EQ_INT(shift_acl_valid(buf, 3), -EINVAL);
	CHECK_EQ_INT(shift_acl_valid(NULL, 0), -EINVAL);
	buf[0] = 1; /* version 1 */
	CHECK_EQ_INT(shift_acl_valid(buf, len), -EINVAL);
}

struct seen {
	unsigned n;
	uint32_t ids[8];
	uint16_t tags[8];
};

static int collect(const struct shift_acl_entry *e, unsigned idx, void *u)
{
	struct seen *s = u;

	s->ids[idx] = e->id;
	s->tags[idx] = e->tag;
	s->n++;
	return 0;
}

static int stop_at_two(const struct shift_acl_entry *e, unsigned idx, void *u)
{
	return idx == 2 ? 42 : 0;
}

TEST(foreach)
{
	unsigned char buf[128];
	size_t len = build(buf, sample, 7);
	struct seen s = { 0 };

	CHECK_EQ_INT(shift_acl_foreach(buf, len, collect, &s), 7);
	CHECK_EQ_INT(s.n, 7);
	CHECK_EQ_INT(s.tags[1], SHIFT_ACL_USER);
	CHECK_EQ_INT(s.ids[1], 1000);
	CHECK_EQ_INT(s.ids[3], 1001);
	CHECK_EQ_INT(shift_acl_foreach(buf, len, stop_at_two, NULL), 42);
	CHECK_EQ_INT(shift_acl_foreach(buf, 5, collect, &s), -EINVAL);
}

struct unm {
	unsigned n;
	uint32_t id;
	enum shift_id_kind kind;
};

static void note_unmapped(enum shift_id_kind kind, uint32_t id, void *u)
{
	struct unm *x = u;

	x->n++;
	x->id = id;
	x->kind = kind;
}

TEST(translate_uid_and_gid_maps)
{
	struct shift_idmap *m = map_of("u:0:100000:65536 g:0:200000:65536");
	unsigned char buf[128];
	size_t len = build(buf, sample, 7);
	struct unm u = { 0 };

	CHECK_EQ_INT(shift_acl_translate(buf, len, m, true, SHIFT_UNMAPPED_KEEP,
					 note_unmapped, &u), 2);
	CHECK_EQ_INT(id_at(buf, 1), 101000);
	CHECK_EQ_INT(id_at(buf, 3), 201001);
	CHECK_EQ_INT(id_at(buf, 4), 70000); /* left as is */
	CHECK_EQ_INT(id_at(buf, 0), SHIFT_ID_NONE); /* no qualifier */
	CHECK_EQ_INT(u.n, 1);
	CHECK_EQ_INT(u.id, 70000);
	CHECK_EQ_INT(u.kind, SHIFT_UID);
	/* and back */
	CHECK_EQ_INT(shift_acl_translate(buf, len, m, false, SHIFT_UNMAPPED_KEEP,
					 NULL, NULL), 2);
	CHECK_EQ_INT(id_at(buf, 1), 1000);
	CHECK_EQ_INT(id_at(buf, 3), 1001);
	shift_idmap_free(m);
}

TEST(translate_overflow)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	unsigned char buf[128];
	size_t len = build(buf, sample, 7);

	CHECK_EQ_INT(shift_acl_translate(buf, len, m, true,
					 SHIFT_UNMAPPED_OVERFLOW, NULL, NULL), 3);
	CHECK_EQ_INT(id_at(buf, 4), SHIFT_OVERFLOW_ID);
	shift_idmap_free(m);
}

TEST(translate_malformed_changes_nothing)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	unsigned char buf[128], copy[128];
	size_t len = build(buf, sample, 7);

	memcpy(copy, buf, len);
	CHECK_EQ_INT(shift_acl_translate(buf, len - 2, m, true,
					 SHIFT_UNMAPPED_KEEP, NULL, NULL), -EINVAL);
	CHECK(memcmp(buf, copy, len) == 0);
	shift_idmap_free(m);
}

TEST(translate_identity_reports_zero)
{
	struct shift_idmap *m = map_of("0:0:4294967295");
	unsigned char buf[128];
	size_t len = build(buf, sample, 7);

	CHECK_EQ_INT(shift_acl_translate(buf, len, m, true, SHIFT_UNMAPPED_ERROR,
					 NULL, NULL), 0);
	shift_idmap_free(m);
}

TEST_MAIN()
