/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* security.capability values: revision, rootid, translation as the kernel
 * shows them through an idmapped mount. */
#include <string.h>

#include "shift.h"
#include "util/le.h"
#include "lib.h"


/* cap_net_raw+ep: permitted bit 13, effective flag set */
static size_t make_caps(unsigned char *buf, int rev, uint32_t rootid)
{
	memset(buf, 0, 24);
	sk_put_le32(buf, (rev == 3 ? 0x03000000u : 0x02000000u) | 1);
	sk_put_le32(buf + 4, 1u << 13);
	if (rev == 3) {
		sk_put_le32(buf + 20, rootid);
		return 24;
	}
	return 20;
}

TEST(rootid)
{
	unsigned char b[24];
	uint32_t r = 7;

	CHECK_EQ_INT(shift_fcaps_rootid(b, make_caps(b, 2, 0), &r), 2);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(shift_fcaps_rootid(b, make_caps(b, 3, 1000), &r), 3);
	CHECK_EQ_INT(r, 1000);
	/* wrong sizes, revision 1, nothing */
	CHECK_EQ_INT(shift_fcaps_rootid(b, 20, &r), -EINVAL);
	make_caps(b, 2, 0);
	CHECK_EQ_INT(shift_fcaps_rootid(b, 24, &r), -EINVAL);
	sk_put_le32(b, 0x01000000u);
	CHECK_EQ_INT(shift_fcaps_rootid(b, 12, &r), -EINVAL);
	CHECK_EQ_INT(shift_fcaps_rootid(NULL, 0, &r), -EINVAL);
}

TEST(v2_becomes_v3_with_mapped_root)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	unsigned char b[24], o[24];
	uint32_t r;

	CHECK_EQ_INT(shift_fcaps_translate(b, make_caps(b, 2, 0), o, sizeof(o), m,
					   true), 24);
	CHECK_EQ_INT(sk_get_le32(o) & 0xff000000u, 0x03000000u);
	CHECK_EQ_INT(sk_get_le32(o) & 1, 1); /* effective flag kept */
	CHECK_EQ_INT(sk_get_le32(o + 4), 1u << 13);
	CHECK_EQ_INT(shift_fcaps_rootid(o, 24, &r), 3);
	CHECK_EQ_INT(r, 100000);
	shift_idmap_free(m);
}

TEST(v3_rootid_mapped_and_back_to_v2)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	unsigned char b[24], o[24];
	uint32_t r;

	CHECK_EQ_INT(shift_fcaps_translate(b, make_caps(b, 3, 1000), o, sizeof(o),
					   m, true), 24);
	CHECK_EQ_INT(shift_fcaps_rootid(o, 24, &r), 3);
	CHECK_EQ_INT(r, 101000);
	/* reverse of a v3 whose rootid maps to 0: shown as v2 */
	CHECK_EQ_INT(shift_fcaps_translate(b, make_caps(b, 3, 100000), o,
					   sizeof(o), m, false), 20);
	CHECK_EQ_INT(shift_fcaps_rootid(o, 20, &r), 2);
	CHECK_EQ_INT(sk_get_le32(o + 4), 1u << 13);
	shift_idmap_free(m);
}

TEST(unmapped_rootid_is_an_error)
{
	struct shift_idmap *m = map_of("0:100000:1000");
	unsigned char b[24], o[24];

	memset(o, 0xaa, sizeof(o));
	CHECK_EQ_INT(shift_fcaps_translate(b, make_caps(b, 3, 5000), o, sizeof(o),
					   m, true), -ERANGE);
	CHECK_EQ_INT(o[0], 0xaa); /* nothing written */
	CHECK_EQ_INT(shift_fcaps_translate(b, make_caps(b, 2, 0), o, 20, m, true),
		     -ENOSPC);
	shift_idmap_free(m);
}

TEST(in_place)
{
	struct shift_idmap *m = map_of("0:100000:65536");
	unsigned char b[24];
	uint32_t r;

	make_caps(b, 2, 0);
	CHECK_EQ_INT(shift_fcaps_translate(b, 20, b, sizeof(b), m, true), 24);
	CHECK_EQ_INT(shift_fcaps_rootid(b, 24, &r), 3);
	CHECK_EQ_INT(r, 100000);
	shift_idmap_free(m);
}

TEST_MAIN()
