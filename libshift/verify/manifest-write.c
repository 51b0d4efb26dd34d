/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writing a manifest (manifest.c): the mtree text in libarchive's form
 * and order, its extension lines and its sha256 digest line.
 */
#include "config.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#include "verify/verify-internal.h"

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* "#shiftkit acl.access=... acl.default=... fcaps=..." or nothing. */
static int extension_line(const struct mentry *e, struct strbuf *out)
{
	if (!e->acl_a.len && !e->acl_d.len && !e->caps.len &&
	    !(e->flags & (ME_CAPS_OVERFLOW | ME_WHITEOUT | ME_OPAQUE)))
		return 0;
	sk_sb_add(out, "#shiftkit");
	if (e->flags & ME_WHITEOUT)
		sk_sb_add(out, " overlay=whiteout");
	if (e->flags & ME_OPAQUE)
		sk_sb_add(out, " overlay=opaque");
	if (e->acl_a.len) {
		sk_sb_add(out, " acl.access=");
		sk_acl_to_text(&e->acl_a, out);
	}
	if (e->acl_d.len) {
		sk_sb_add(out, " acl.default=");
		sk_acl_to_text(&e->acl_d, out);
	}
	if (e->caps.len || (e->flags & ME_CAPS_OVERFLOW)) {
		sk_sb_add(out, " fcaps=");
		sk_caps_to_text(&e->caps, e->flags, out);
	}
	sk_sb_add(out, "\n");
	return out->oom ? -ENOMEM : 0;
}

static int mw_flush(struct mwriter *o)
{
	int r;

	if (o->buf.oom && !o->err)
		o->err = -ENOMEM;
	if (o->err)
		return o->err;
	if (!EVP_DigestUpdate(o->md, o->buf.s, o->buf.len))
		return o->err = -ENOMEM;
	if (o->fd >= 0 && (r = sk_write_all(o->fd, o->buf.s, o->buf.len)) < 0)
		return o->err = r;
	o->buf.len = 0;
	return 0;
}

int sk_mw_init(struct mwriter *o, int fd)
{
	*o = (struct mwriter){.fd = fd};
	o->md = EVP_MD_CTX_new();
	if (!o->md || !EVP_DigestInit_ex(o->md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(o->md);
		o->md = NULL;
		return -ENOMEM;
	}
	sk_sb_add(&o->buf, "#mtree\n");
	return 0;
}

void sk_mw_done(struct mwriter *o)
{
	EVP_MD_CTX_free(o->md);
	free(o->buf.s);
	o->md = NULL;
	o->buf.s = NULL;
}

/* The entry line as libarchive writes it ("!all,type,uid,gid,mode"), and
 * its extension line. */
int sk_mw_entry(struct mwriter *o, const char *path, const struct mentry *e)
{
	sk_mtree_quote(&o->buf, path);
	sk_sb_printf(&o->buf, " mode=%o gid=%" PRIu32 " uid=%" PRIu32 " type=%s\n",
		  e->mode & 07777, e->gid, e->uid, sk_mtree_type(e->mode));
	extension_line(e, &o->buf);
	o->count++;
	if (o->buf.len >= 65536 || o->buf.oom)
		return mw_flush(o);
	return o->err;
}

/* The digest line; digest: "sha256:HEX" (72 bytes). */
int sk_mw_finish(struct mwriter *o, char *digest)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	char hex[65];
	int r;

	r = mw_flush(o);
	if (r < 0)
		return r;
	if (!EVP_DigestFinal_ex(o->md, md, &mdlen) || mdlen != 32)
		return -ENOMEM;
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[64] = '\0';
	snprintf(digest, 72, "sha256:%s", hex);
	sk_sb_printf(&o->buf, "#shiftkit sha256=%s\n", hex);
	/* the digest line is not part of what it digests: write it raw */
	if (o->buf.oom)
		return -ENOMEM;
	if (o->fd >= 0 && (r = sk_write_all(o->fd, o->buf.s, o->buf.len)) < 0)
		return r;
	o->buf.len = 0;
	return 0;
}

/*
 * The manifest's order on full paths (mentry.mode says which are
 * directories): a directory before what is below it; among the entries
 * of one directory, non-directories before directories, each sorted by
 * name bytewise.  An entry with more components below the point where two
 * paths part is, at that point, a directory.
 */
static int mtree_order_cmp(const struct mentry *x, const struct mentry *y)
{
	const char *a = x->path, *b = y->path;

	for (;;) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		bool da, db;
		int c;

		if (la == lb && !memcmp(a, b, la)) {
			if (!a[la] || !b[lb])
				return !a[la] ? (!b[lb] ? 0 : -1) : 1;
			a += la + 1;
			b += lb + 1;
			continue;
		}
		da = a[la] || S_ISDIR(x->mode);
		db = b[lb] || S_ISDIR(y->mode);
		if (da != db)
			return da ? 1 : -1;
		c = memcmp(a, b, la < lb ? la : lb);
		if (c)
			return c;
		return la < lb ? -1 : 1;
	}
}

static int mtree_order_qcmp(const void *a, const void *b)
{
	return mtree_order_cmp(*(const struct mentry *const *)a,
			       *(const struct mentry *const *)b);
}

/* Write m in the manifest format (fd < 0: only its digest). */
static int manifest_render(const struct shift_manifest *m, int fd,
			   char *digest /* 72 */)
{
	_cleanup_free_ const struct mentry **order = NULL;
	struct mwriter o;
	size_t i;
	int r;

	order = calloc(m->n ? m->n : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < m->n; i++)
		order[i] = &m->e[i];
	qsort(order, m->n, sizeof(*order), mtree_order_qcmp);
	r = sk_mw_init(&o, fd);
	for (i = 0; r >= 0 && i < m->n; i++)
		r = sk_mw_entry(&o, order[i]->path, order[i]);
	if (r >= 0)
		r = sk_mw_finish(&o, digest);
	sk_mw_done(&o);
	return r;
}

int shift_manifest_write(const struct shift_manifest *m, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (m->stream)
		return -EOPNOTSUPP;
	return manifest_render(m, fd, ((struct shift_manifest *)m)->digest);
}

const char *shift_manifest_digest(const struct shift_manifest *m)
{
	struct shift_manifest *mm = (struct shift_manifest *)m;

	if (!mm->digest[0] && manifest_render(m, -1, mm->digest) < 0)
		mm->digest[0] = '\0';
	return mm->digest[0] ? mm->digest : NULL;
}
