/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a manifest (manifest.c): the mtree text as a stream of
 * entries, its digest line checked, or whole into memory.
 */
#include "config.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "verify/verify-internal.h"

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

static int parse_mode(const char *s, size_t len, uint32_t *ret)
{
	uint32_t v = 0;
	size_t i;

	if (len == 0 || len > 6)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -EINVAL;
		v = v << 3 | (uint32_t)(s[i] - '0');
	}
	if (v > 07777)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_type(const char *s, size_t len, uint32_t *ret)
{
	static const struct {
		const char *name;
		uint32_t type;
	} types[] = {
		{ "dir", S_IFDIR },   { "file", S_IFREG }, { "link", S_IFLNK },
		{ "char", S_IFCHR },  { "block", S_IFBLK }, { "fifo", S_IFIFO },
		{ "socket", S_IFSOCK },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(types); i++)
		if (strlen(types[i].name) == len && !strncmp(s, types[i].name, len)) {
			*ret = types[i].type;
			return 0;
		}
	return -EINVAL;
}

/* Apply "key=value" words of a line to the defaults. */
static int parse_keywords(const char *s, size_t len, struct defaults *d,
			  bool unset, const char **err)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end, eq;
		const char *k;

		while (pos < len && (s[pos] == ' ' || s[pos] == '\t'))
			pos++;
		if (pos >= len)
			break;
		for (end = pos; end < len && s[end] != ' ' && s[end] != '\t'; end++)
			;
		k = s + pos;
		for (eq = pos; eq < end && s[eq] != '='; eq++)
			;
		if (unset) {
			size_t kl = end - pos;

			if (kl == 3 && !strncmp(k, "uid", 3))
				d->has_uid = false;
			else if (kl == 3 && !strncmp(k, "gid", 3))
				d->has_gid = false;
			else if (kl == 4 && !strncmp(k, "mode", 4))
				d->has_mode = false;
			else if (kl == 4 && !strncmp(k, "type", 4))
				d->has_type = false;
			else if (kl == 3 && !strncmp(k, "all", 3))
				d->has_uid = d->has_gid = d->has_mode = d->has_type = false;
			pos = end;
			continue;
		}
		if (eq == end) {
			pos = end; /* a flag keyword such as "nochange" */
			continue;
		}
		if (eq - pos == 3 && !strncmp(k, "uid", 3)) {
			if (sk_parse_u32(s + eq + 1, end - eq - 1, &d->uid) < 0) {
				*err = "bad uid";
				return -EBADMSG;
			}
			d->has_uid = true;
		} else if (eq - pos == 3 && !strncmp(k, "gid", 3)) {
			if (sk_parse_u32(s + eq + 1, end - eq - 1, &d->gid) < 0) {
				*err = "bad gid";
				return -EBADMSG;
			}
			d->has_gid = true;
		} else if (eq - pos == 4 && !strncmp(k, "mode", 4)) {
			if (parse_mode(s + eq + 1, end - eq - 1, &d->mode) < 0) {
				*err = "bad mode (octal, symbolic modes are not supported)";
				return -EBADMSG;
			}
			d->has_mode = true;
		} else if (eq - pos == 4 && !strncmp(k, "type", 4)) {
			if (parse_type(s + eq + 1, end - eq - 1, &d->type) < 0) {
				*err = "bad type";
				return -EBADMSG;
			}
			d->has_type = true;
		}
		/* other mtree keywords (size, time, link, digests...) are
		 * not ownership: ignored */
		pos = end;
	}
	return 0;
}

static int parse_extension(struct shift_manifest *m, struct mentry *e,
			   const char *s, size_t len, const char **err)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end, eq;
		const char *k;
		int r = 0;

		while (pos < len && s[pos] == ' ')
			pos++;
		if (pos >= len)
			break;
		for (end = pos; end < len && s[end] != ' '; end++)
			;
		k = s + pos;
		for (eq = pos; eq < end && s[eq] != '='; eq++)
			;
		if (eq - pos == 10 && !strncmp(k, "acl.access", 10)) {
			r = sk_acl_from_text(m, s + eq + 1, end - eq - 1, &e->acl_a);
			*err = "bad acl.access";
		} else if (eq - pos == 11 && !strncmp(k, "acl.default", 11)) {
			r = sk_acl_from_text(m, s + eq + 1, end - eq - 1, &e->acl_d);
			*err = "bad acl.default";
		} else if (eq - pos == 5 && !strncmp(k, "fcaps", 5)) {
			r = sk_caps_from_text(m, s + eq + 1, end - eq - 1, e);
			*err = "bad fcaps";
		} else if (eq - pos == 7 && !strncmp(k, "overlay", 7)) {
			*err = "bad overlay (whiteout, opaque)";
			if (end - eq - 1 == 8 &&
			    !strncmp(s + eq + 1, "whiteout", 8) &&
			    S_ISCHR(e->mode))
				e->flags |= ME_WHITEOUT;
			else if (end - eq - 1 == 6 &&
				 !strncmp(s + eq + 1, "opaque", 6) &&
				 S_ISDIR(e->mode))
				e->flags |= ME_OPAQUE;
			else
				r = -EINVAL;
		} else {
			*err = "unknown #shiftkit keyword";
			r = -EINVAL;
		}
		if (r < 0)
			return r == -ENOMEM ? r : -EBADMSG;
		pos = end;
	}
	*err = NULL;
	return 0;
}

#define MR_PIECE (256 << 10)
#define MR_MAX_LINE (16 << 20)

int sk_mr_init(struct mreader *r, int fd)
{
	*r = (struct mreader){.fd = fd};
	r->md = EVP_MD_CTX_new();
	r->store[0] = sk_manifest_new();
	r->store[1] = sk_manifest_new();
	r->buf = malloc(MR_PIECE);
	r->cap = MR_PIECE;
	if (!r->md || !r->store[0] || !r->store[1] || !r->buf ||
	    !EVP_DigestInit_ex(r->md, EVP_sha256(), NULL))
		return -ENOMEM;
	return 0;
}

void sk_mr_done(struct mreader *r)
{
	EVP_MD_CTX_free(r->md);
	shift_manifest_free(r->store[0]);
	shift_manifest_free(r->store[1]);
	free(r->buf);
	r->md = NULL;
	r->store[0] = r->store[1] = NULL;
	r->buf = NULL;
}

static int mr_digest_to(struct mreader *r, size_t pos)
{
	if (pos > r->dpos &&
	    !EVP_DigestUpdate(r->md, r->buf + r->dpos, pos - r->dpos))
		return -ENOMEM;
	r->dpos = pos;
	return 0;
}

/* The next line, without its newline, in line and len: 1; 0 at the end. */
static int mr_line(struct mreader *r, const char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		ssize_t k;

		if (nl || (r->eof && r->end > r->start)) {
			size_t l = nl ? (size_t)(nl - (r->buf + r->start))
				      : r->end - r->start;

			*line = r->buf + r->start;
			*len = l;
			r->start += l + (nl ? 1 : 0);
			if (memchr(*line, '\0', l)) {
				r->err = "not a text file";
				return -EBADMSG;
			}
			return 1;
		}
		if (r->eof)
			return 0;
		/* digest what was read, move the rest to the front */
		if (mr_digest_to(r, r->start) < 0)
			return -ENOMEM;
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = r->dpos = 0;
		if (r->cap - r->end < MR_PIECE / 2) {
			char *nb;

			if (r->cap >= MR_MAX_LINE) {
				r->err = "a line longer than 16 MiB";
				return -EBADMSG;
			}
			nb = realloc(r->buf, r->cap * 2);
			if (!nb)
				return -ENOMEM;
			r->buf = nb;
			r->cap *= 2;
		}
		k = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			r->eof = true;
		r->end += (size_t)k;
	}
}

/* An entry line into *e, its strings in store. */
static int parse_entry_line(struct mreader *r, struct shift_manifest *store,
			    const char *line, size_t llen, struct mentry *e)
{
	struct defaults ed = r->d;
	char path[PATH_MAX + 2];
	size_t plen;
	int q;

	for (plen = 0; plen < llen && line[plen] != ' ' && line[plen] != '\t';
	     plen++)
		;
	q = sk_mtree_unescape(line, plen, path, sizeof(path));
	if (q < 0) {
		r->err = "bad path";
		return -EBADMSG;
	}
	if (strcmp(path, ".") != 0 && strncmp(path, "./", 2) != 0) {
		r->err = "not a full-path mtree entry (paths start with '.')";
		return -EBADMSG;
	}
	q = parse_keywords(line + plen, llen - plen, &ed, false, &r->err);
	if (q < 0)
		return q;
	if (!ed.has_type || !ed.has_uid || !ed.has_gid || !ed.has_mode) {
		r->err = "entry lacks one of type, uid, gid, mode";
		return -EBADMSG;
	}
	*e = (struct mentry){0};
	e->path = sk_manifest_strndup(store, path, strlen(path));
	if (!e->path)
		return -ENOMEM;
	e->uid = ed.uid;
	e->gid = ed.gid;
	e->mode = ed.type | ed.mode;
	return 0;
}

/*
 * The next entry in *e, valid until the next call: 1; 0 after the last
 * one, once the digest line was found to match; negative errno (-EBADMSG
 * with r->err and r->err_line when malformed).
 */
int sk_mr_next(struct mreader *r, struct mentry *e)
{
	for (;;) {
		const char *line;
		size_t llen;
		int k = mr_line(r, &line, &llen);

		if (k < 0) {
			r->err_line = r->lineno + 1;
			return k;
		}
		if (k == 0) {
			if (r->have_pending) {
				*e = r->pending;
				r->have_pending = false;
				return 1;
			}
			if (!r->have_digest) {
				r->err = "no digest line (#shiftkit "
					 "sha256=...): truncated?";
				r->err_line = 0;
				return -EBADMSG;
			}
			return 0;
		}
		r->lineno++;
		r->err_line = r->lineno;
		if (r->have_digest) {
			r->err = "text after the digest line";
			return -EBADMSG;
		}
		if (llen > 17 && !strncmp(line, "#shiftkit sha256=", 17)) {
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned mdlen = 0, i;
			char hex[65];

			if (mr_digest_to(r, (size_t)(line - r->buf)) < 0 ||
			    !EVP_DigestFinal_ex(r->md, md, &mdlen) ||
			    mdlen != 32)
				return -ENOMEM;
			for (i = 0; i < 32; i++)
				sprintf(hex + 2 * i, "%02x", md[i]);
			if (llen != 17 + 64 ||
			    strncmp(line + 17, hex, 64) != 0) {
				r->err = "digest does not match: the manifest "
					 "was changed or truncated";
				return -EBADMSG;
			}
			snprintf(r->digest, sizeof(r->digest), "sha256:%s",
				 hex);
			r->have_digest = true;
		} else if (llen > 10 && !strncmp(line, "#shiftkit ", 10)) {
			if (!r->have_pending || r->pending_ext) {
				r->err = "#shiftkit line before any entry";
				return -EBADMSG;
			}
			k = parse_extension(r->store[r->cur], &r->pending,
					    line + 10, llen - 10, &r->err);
			if (k < 0)
				return k;
			r->pending_ext =
			    true; /* one extension line per entry */
		} else if (llen == 0 || line[0] == '#') {
			/* comment */
		} else if (llen >= 4 && !strncmp(line, "/set", 4)) {
			k = parse_keywords(line + 4, llen - 4, &r->d, false,
					   &r->err);
			if (k < 0)
				return k;
		} else if (llen >= 6 && !strncmp(line, "/unset", 6)) {
			parse_keywords(line + 6, llen - 6, &r->d, true,
				       &r->err);
		} else if (line[llen - 1] == '\\') {
			r->err = "continued lines are not supported";
			return -EBADMSG;
		} else {
			struct shift_manifest *st = r->store[!r->cur];
			struct mentry n;

			sk_manifest_reset(st);
			k = parse_entry_line(r, st, line, llen, &n);
			if (k < 0)
				return k;
			r->cur = !r->cur;
			r->pending_ext = false;
			if (r->have_pending) {
				*e = r->pending;
				r->pending = n;
				return 1;
			}
			r->pending = n;
			r->have_pending = true;
		}
	}
}

int sk_manifest_open_file(const char *path, struct shift_error *err)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? sk_error_set_path(err, negative_errno(), path, NULL)
		      : fd;
}

void sk_mr_error(const struct mreader *r, int ret, const char *path,
		 struct shift_error *err)
{
	if (ret >= 0)
		return;
	if (ret == -EBADMSG && r->err)
		sk_error_set_line(err, ret, r->err_line, 0, "%s", r->err);
	sk_error_path(err, ret, path);
}

int shift_manifest_read(const char *path, struct shift_manifest **ret,
			struct shift_error *err)
{
	_cleanup_manifest_ struct shift_manifest *m = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct mreader r;
	struct mentry e;
	size_t i;
	int k;

	fd = sk_manifest_open_file(path, err);
	if (fd < 0)
		return fd;
	m = sk_manifest_new();
	if (!m)
		return -ENOMEM;
	k = sk_mr_init(&r, fd);
	while (k >= 0 && (k = sk_mr_next(&r, &e)) > 0)
		k = sk_manifest_add_copy(m, &e, strlen(e.path));
	sk_mr_error(&r, k, path, err);
	if (k == 0)
		memcpy(m->digest, r.digest, sizeof(m->digest));
	sk_mr_done(&r);
	if (k < 0)
		return k;
	if (m->n)
		qsort(m->e, m->n, sizeof(m->e[0]), sk_entry_cmp);
	for (i = 1; i < m->n; i++)
		if (sk_path_cmp(m->e[i - 1].path, m->e[i].path) == 0)
			return sk_error_set_path(err, -EBADMSG, path,
						 "a path appears twice");
	*ret = TAKE_PTR(m);
	return 0;
}
