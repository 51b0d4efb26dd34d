/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mountd's wire format (docs/mountd-protocol.md): one JSON object
 * per message, parsed strictly (unknown keys, wrong types, trailing bytes
 * and a wrong number of fds are errors), shared by daemon and client.
 */
#include "config.h"

#include <errno.h>
#include <json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mount/mount-internal.h"
#include "util/error.h"

static int bad(struct shift_error *err, const char *fmt, ...) _printf_(2, 3);
static int bad(struct shift_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sk_error_setv(err, -EBADMSG, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

/* The one JSON object in buf[0..len), or NULL (a reason in err). */
static json_object *parse_object(const void *buf, size_t len,
				 struct shift_error *err)
{
	json_tokener *tok;
	json_object *o;
	size_t used;

	if (len == 0 || len > SHIFT_MOUNTD_MAX_MSG) {
		bad(err, "message of %zu bytes (1 to %d)", len,
		    SHIFT_MOUNTD_MAX_MSG);
		return NULL;
	}
	if (memchr(buf, '\0', len)) {
		bad(err, "message contains a NUL byte");
		return NULL;
	}
	tok = json_tokener_new_ex(8);
	if (!tok) {
		bad(err, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	used = json_tokener_get_parse_end(tok);
	if (!o) {
		bad(err, "not JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return NULL;
	}
	json_tokener_free(tok);
	for (; used < len; used++)
		if (!strchr(" \t\r\n", ((const char *)buf)[used])) {
			json_object_put(o);
			bad(err, "bytes after the JSON object");
			return NULL;
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		bad(err, "not a JSON object");
		return NULL;
	}
	return o;
}

void shift_mountd_request_done(struct shift_mountd_request *r)
{
	free(r->map);
	r->map = NULL;
}

int shift_mountd_request_parse(const void *buf, size_t len, unsigned nfds,
			       struct shift_mountd_request *ret,
			       struct shift_error *err)
{
	_cleanup_(json_putp) json_object *o = NULL;
	struct shift_mountd_request r = {0};
	bool have_version = false, have_op = false;
	unsigned want_fds;

	*ret = r;
	o = parse_object(buf, len, err);
	if (!o)
		return -EBADMSG;
	json_object_object_foreach(o, key, v)
	{
		_cleanup_free_ char *ek = NULL;
		bool flag = false;
		unsigned bit = 0;

		if (!strcmp(key, "version")) {
			int64_t ver;

			if (!json_object_is_type(v, json_type_int))
				goto type;
			ver = json_object_get_int64(v);
			if (ver != SHIFT_MOUNTD_VERSION) {
				shift_mountd_request_done(&r);
				return bad(err,
					   "protocol version %lld is not "
					   "spoken here (version %d)",
					   (long long)ver,
					   SHIFT_MOUNTD_VERSION);
			}
			r.version = SHIFT_MOUNTD_VERSION;
			have_version = true;
			continue;
		}
		if (!strcmp(key, "op")) {
			if (!json_object_is_type(v, json_type_string))
				goto type;
			if (strcmp(json_object_get_string(v), "idmap")) {
				_cleanup_free_ char *e =
				    shift_escape(json_object_get_string(v));

				shift_mountd_request_done(&r);
				return bad(err,
					   "unknown op '%s' (only \"idmap\")",
					   e ? e : "?");
			}
			have_op = true;
			continue;
		}
		if (!strcmp(key, "map")) {
			if (!json_object_is_type(v, json_type_string))
				goto type;
			r.map = strdup(json_object_get_string(v));
			if (!r.map)
				return bad(err, "out of memory");
			continue;
		}
		if (!strcmp(key, "userns"))
			flag = true;
		else if (!strcmp(key, "read-only"))
			bit = SHIFT_MOUNT_RDONLY;
		else if (!strcmp(key, "nosuid"))
			bit = SHIFT_MOUNT_NOSUID;
		else if (!strcmp(key, "noexec"))
			bit = SHIFT_MOUNT_NOEXEC;
		if (flag || bit) {
			if (!json_object_is_type(v, json_type_boolean))
				goto type;
			if (flag)
				r.userns = json_object_get_boolean(v);
			else if (json_object_get_boolean(v))
				r.flags |= bit;
			continue;
		}
		ek = shift_escape(key);
		shift_mountd_request_done(&r);
		return bad(err, "unknown key '%s'", ek ? ek : "?");
	type:
		ek = shift_escape(key);
		shift_mountd_request_done(&r);
		return bad(err, "key '%s' has the wrong type",
			   ek ? ek : "?");
	}
	if (!have_version || !have_op) {
		shift_mountd_request_done(&r);
		return bad(err, "missing key '%s'",
			   have_version ? "op" : "version");
	}
	if (!r.map == !r.userns) {
		shift_mountd_request_done(&r);
		return bad(
		    err,
		    "exactly one of \"map\" and \"userns\": true is required");
	}
	want_fds = r.userns ? 2 : 1;
	if (nfds != want_fds) {
		shift_mountd_request_done(&r);
		return bad(err,
			   "%u file descriptors sent, %u expected (the source "
			   "directory%s)",
			   nfds, want_fds,
			   r.userns ? " and the user namespace" : "");
	}
	*ret = r;
	return 0;
}

char *shift_mountd_request_format(const struct shift_mountd_request *r)
{
	_cleanup_(json_putp) json_object *o = json_object_new_object();
	char *s;

	if (!o)
		return NULL;
	json_object_object_add(o, "version",
			       json_object_new_int(SHIFT_MOUNTD_VERSION));
	json_object_object_add(o, "op", json_object_new_string("idmap"));
	if (r->map)
		json_object_object_add(o, "map",
				       json_object_new_string(r->map));
	if (r->userns)
		json_object_object_add(o, "userns", json_object_new_boolean(1));
	if (r->flags & SHIFT_MOUNT_RDONLY)
		json_object_object_add(o, "read-only",
				       json_object_new_boolean(1));
	if (r->flags & SHIFT_MOUNT_NOSUID)
		json_object_object_add(o, "nosuid", json_object_new_boolean(1));
	if (r->flags & SHIFT_MOUNT_NOEXEC)
		json_object_object_add(o, "noexec", json_object_new_boolean(1));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	return s;
}

static const char *err_class(int err)
{
	switch (err) {
	case 0:
		return NULL;
	case -EBADMSG:
		return "protocol";
	case -EPERM:
	case -ENOTDIR:
		return "policy";
	case -EOPNOTSUPP:
	case -EINVAL:
	case -ENOSYS:
		return "unsupported";
	case -EAGAIN:
		return "busy";
	default:
		return "internal";
	}
}

char *shift_mountd_answer_format(int err, const char *message)
{
	_cleanup_(json_putp) json_object *o = json_object_new_object();
	const char *cls = err_class(err);

	if (!o)
		return NULL;
	json_object_object_add(o, "version",
			       json_object_new_int(SHIFT_MOUNTD_VERSION));
	json_object_object_add(o, "ok", json_object_new_boolean(err == 0));
	if (cls) {
		json_object_object_add(o, "error", json_object_new_string(cls));
		json_object_object_add(o, "errno", json_object_new_int(-err));
		json_object_object_add(
		    o, "message",
		    json_object_new_string(message ? message : "refused"));
	}
	return strdup(
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

int shift_mountd_answer_parse(const void *buf, size_t len,
			      struct shift_error *err)
{
	_cleanup_(json_putp) json_object *o = NULL;
	json_object *v;
	int64_t e;

	o = parse_object(buf, len, err);
	if (!o)
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "ok", &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return bad(err, "answer without \"ok\"");
	if (json_object_get_boolean(v))
		return 0;
	if (!json_object_object_get_ex(o, "errno", &v) ||
	    !json_object_is_type(v, json_type_int))
		return bad(err, "refusal without \"errno\"");
	e = json_object_get_int64(v);
	if (e <= 0 || e > 4095)
		return bad(err, "refusal with errno %lld",
			   (long long)e);
	if (json_object_object_get_ex(o, "message", &v) &&
	    json_object_is_type(v, json_type_string)) {
		_cleanup_free_ char *m =
		    shift_escape(json_object_get_string(v));

		return sk_error_set(err, -(int)e, "%s", m ? m : "?");
	}
	return sk_error_set(err, -(int)e, "%s", strerror((int)e));
}
