/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The text forms of a manifest (manifest.c, docs/manifest-format.md):
 * POSIX ACLs and file capabilities to and from their "#shiftkit" text,
 * mtree's type names and path escapes, and the string buffer they fill.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "verify/verify-internal.h"

/* ------------------------------------------------------------------ */
/* Text forms of ACLs and capabilities                                 */
/* ------------------------------------------------------------------ */

static void sb_addn(struct strbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sk_sb_add(struct strbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

_printf_(2, 3) void sk_sb_printf(struct strbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_addn(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char *acl_tag_name(uint16_t tag)
{
	switch (tag) {
	case SHIFT_ACL_USER_OBJ:
	case SHIFT_ACL_USER:
		return "user";
	case SHIFT_ACL_GROUP_OBJ:
	case SHIFT_ACL_GROUP:
		return "group";
	case SHIFT_ACL_MASK:
		return "mask";
	case SHIFT_ACL_OTHER:
		return "other";
	default:
		return NULL;
	}
}

static int acl_entry_text(const struct shift_acl_entry *e, unsigned idx,
			  void *userdata)
{
	struct strbuf *b = userdata;
	const char *t = acl_tag_name(e->tag);

	if (idx)
		sk_sb_add(b, ",");
	if (!t) {
		sk_sb_printf(b, "tag%u:%" PRIu32 ":", e->tag, e->id);
	} else if (e->tag == SHIFT_ACL_USER || e->tag == SHIFT_ACL_GROUP)
		sk_sb_printf(b, "%s:%" PRIu32 ":", t, e->id);
	else
		sk_sb_printf(b, "%s::", t);
	sk_sb_printf(b, "%c%c%c", e->perm & 4 ? 'r' : '-', e->perm & 2 ? 'w' : '-',
		  e->perm & 1 ? 'x' : '-');
	if (e->perm & ~7u)
		sk_sb_printf(b, "+%#x", e->perm & ~7u);
	return 0;
}

/* "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r--" */
int sk_acl_to_text(const struct blob *a, struct strbuf *b)
{
	int r = shift_acl_foreach(a->data, a->len, acl_entry_text, b);

	if (r < 0)
		sk_sb_add(b, "invalid");
	return b->oom ? -ENOMEM : 0;
}

static uint32_t le32_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32_at(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_le16_at(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* "v3,rootid=100000,permitted=0x2000,inheritable=0x0,effective" */
int sk_caps_to_text(const struct blob *c, uint32_t flags, struct strbuf *b)
{
	uint32_t rootid = 0;
	int v;

	if (flags & ME_CAPS_OVERFLOW) {
		sk_sb_add(b, "unmapped");
		return b->oom ? -ENOMEM : 0;
	}
	v = shift_fcaps_rootid(c->data, c->len, &rootid);
	if (v < 0) {
		sk_sb_add(b, "invalid");
		return b->oom ? -ENOMEM : 0;
	}
	sk_sb_printf(b, "v%d", v);
	if (v == 3)
		sk_sb_printf(b, ",rootid=%" PRIu32, rootid);
	sk_sb_printf(b, ",permitted=%#" PRIx64 ",inheritable=%#" PRIx64,
		  (uint64_t)le32_at(c->data + 4) |
			  (uint64_t)le32_at(c->data + 12) << 32,
		  (uint64_t)le32_at(c->data + 8) |
			  (uint64_t)le32_at(c->data + 16) << 32);
	if (le32_at(c->data) & 1)
		sk_sb_add(b, ",effective");
	return b->oom ? -ENOMEM : 0;
}

static int parse_perm(const char *s, size_t len, uint16_t *ret)
{
	if (len != 3)
		return -EINVAL;
	*ret = 0;
	if (s[0] == 'r')
		*ret |= 4;
	else if (s[0] != '-')
		return -EINVAL;
	if (s[1] == 'w')
		*ret |= 2;
	else if (s[1] != '-')
		return -EINVAL;
	if (s[2] == 'x')
		*ret |= 1;
	else if (s[2] != '-')
		return -EINVAL;
	return 0;
}

int sk_parse_u32(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* The inverse of sk_acl_to_text(), into the kernel's xattr format. */
int sk_acl_from_text(struct shift_manifest *m, const char *s, size_t len,
		     struct blob *ret)
{
	unsigned char buf[4 + 8 * MAX_ACL_ENTRIES];
	size_t n = 0, pos = 0;

	put_le32_at(buf, 2);
	while (pos < len) {
		size_t end = pos, c1, c2;
		uint16_t tag, perm;
		uint32_t id = SHIFT_ID_NONE;
		bool qual;

		while (end < len && s[end] != ',')
			end++;
		for (c1 = pos; c1 < end && s[c1] != ':'; c1++)
			;
		for (c2 = c1 + 1; c2 < end && s[c2] != ':'; c2++)
			;
		if (c1 >= end || c2 >= end || n >= MAX_ACL_ENTRIES)
			return -EINVAL;
		qual = c2 > c1 + 1;
		if (c1 - pos == 4 && !strncmp(s + pos, "user", 4))
			tag = qual ? SHIFT_ACL_USER : SHIFT_ACL_USER_OBJ;
		else if (c1 - pos == 5 && !strncmp(s + pos, "group", 5))
			tag = qual ? SHIFT_ACL_GROUP : SHIFT_ACL_GROUP_OBJ;
		else if (c1 - pos == 4 && !strncmp(s + pos, "mask", 4) && !qual)
			tag = SHIFT_ACL_MASK;
		else if (c1 - pos == 5 && !strncmp(s + pos, "other", 5) && !qual)
			tag = SHIFT_ACL_OTHER;
		else
			return -EINVAL;
		if (qual && sk_parse_u32(s + c1 + 1, c2 - c1 - 1, &id) < 0)
			return -EINVAL;
		if (parse_perm(s + c2 + 1, end - c2 - 1, &perm) < 0)
			return -EINVAL;
		put_le16_at(buf + 4 + 8 * n, tag);
		put_le16_at(buf + 4 + 8 * n + 2, perm);
		put_le32_at(buf + 4 + 8 * n + 4, id);
		n++;
		pos = end + 1;
	}
	if (n == 0)
		return -EINVAL;
	return sk_manifest_blob_set(m, ret, buf, 4 + 8 * n);
}

static int parse_hex64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len < 3 || s[0] != '0' || s[1] != 'x' || len > 18)
		return len == 1 && s[0] == '0' ? (*ret = 0, 0) : -EINVAL;
	for (i = 2; i < len; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*ret = v;
	return 0;
}

/* The inverse of sk_caps_to_text(). */
int sk_caps_from_text(struct shift_manifest *m, const char *s, size_t len,
		      struct mentry *e)
{
	unsigned char buf[CAPS_SZ_3] = { 0 };
	uint64_t perm = 0, inh = 0;
	uint32_t rootid = 0, magic;
	bool eff = false, have_root = false;
	int version;
	size_t pos, end;

	if (len == 8 && !strncmp(s, "unmapped", 8)) {
		e->flags |= ME_CAPS_OVERFLOW;
		return 0;
	}
	if (len >= 2 && !strncmp(s, "v2", 2))
		version = 2;
	else if (len >= 2 && !strncmp(s, "v3", 2))
		version = 3;
	else
		return -EINVAL;
	for (pos = 2; pos < len; pos = end) {
		const char *k;
		size_t klen;

		if (s[pos] != ',')
			return -EINVAL;
		k = s + ++pos;
		for (end = pos; end < len && s[end] != ','; end++)
			;
		klen = end - pos;
		if (klen == 9 && !strncmp(k, "effective", 9))
			eff = true;
		else if (klen > 7 && !strncmp(k, "rootid=", 7)) {
			if (sk_parse_u32(k + 7, klen - 7, &rootid) < 0)
				return -EINVAL;
			have_root = true;
		} else if (klen > 10 && !strncmp(k, "permitted=", 10)) {
			if (parse_hex64(k + 10, klen - 10, &perm) < 0)
				return -EINVAL;
		} else if (klen > 12 && !strncmp(k, "inheritable=", 12)) {
			if (parse_hex64(k + 12, klen - 12, &inh) < 0)
				return -EINVAL;
		} else
			return -EINVAL;
	}
	if (have_root != (version == 3))
		return -EINVAL;
	magic = (version == 3 ? 0x03000000u : 0x02000000u) | (eff ? 1u : 0u);
	put_le32_at(buf, magic);
	put_le32_at(buf + 4, (uint32_t)perm);
	put_le32_at(buf + 8, (uint32_t)inh);
	put_le32_at(buf + 12, (uint32_t)(perm >> 32));
	put_le32_at(buf + 16, (uint32_t)(inh >> 32));
	if (version == 3)
		put_le32_at(buf + 20, rootid);
	return sk_manifest_blob_set(m, &e->caps, buf, version == 3 ? CAPS_SZ_3 : CAPS_SZ_2);
}

const char *sk_mtree_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "dir";
	case S_IFREG:
		return "file";
	case S_IFLNK:
		return "link";
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown";
	}
}

/* mtree's escapes: \ooo (what libarchive writes) and \\ \s \t \n. */
int sk_mtree_unescape(const char *s, size_t len, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '\\' && i + 1 < len) {
			char n = s[i + 1];

			if (i + 3 < len && n >= '0' && n <= '3' &&
			    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
			    s[i + 3] <= '7') {
				c = (char)((n - '0') << 6 | (s[i + 2] - '0') << 3 |
					   (s[i + 3] - '0'));
				i += 3;
			} else if (n == '\\' || n == 's' || n == 't' || n == 'n') {
				c = n == 's' ? ' ' : n == 't' ? '\t' : n == 'n' ? '\n' : '\\';
				i++;
			}
		}
		if (o + 1 >= size || c == '\0')
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

/*
 * The bytes libarchive's mtree writer puts for a path: every byte but the
 * printable ASCII ones other than '#', '=' and '\' as \ooo.
 */
void sk_mtree_quote(struct strbuf *b, const char *s)
{
	const char *start = s;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4];

		if (c > ' ' && c < 0x7f && c != '#' && c != '=' && c != '\\')
			continue;
		sb_addn(b, start, (size_t)(s - start));
		esc[0] = '\\';
		esc[1] = (char)('0' + c / 64);
		esc[2] = (char)('0' + c / 8 % 8);
		esc[3] = (char)('0' + c % 8);
		sb_addn(b, esc, 4);
		start = s + 1;
	}
	sb_addn(b, start, (size_t)(s - start));
}
