/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets: the checks that say whether a set of containers sharing
 * layers is safe and right.  Maps alone decide checks 1-3 and 7; manifests
 * and the trees decide 4-6 (manifest.c).  The description is a JSON file
 * (docs/shift-verify.1, CONTAINER SET).
 *
 * The files, one job each (what they share in verify-internal.h):
 *   verify.c         the checks in order, names, findings (emit)
 *   verify-set.c     the description: read, parsed, every key placed
 *   verify-maps.c    checks 1-3, 7: overlap, host root, subid, in place
 *   verify-trees.c   checks 4-6: layers, views, upper directories
 *   verify-mounts.c  a running container's mounts, idmapped or not
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "verify/verify-internal.h"
#include "util/error.h"

static const char *const check_names[] = {
	[SHIFT_VERIFY_OVERLAP] = "overlap",
	[SHIFT_VERIFY_HOST_ROOT] = "host-root",
	[SHIFT_VERIFY_SUBID] = "subid",
	[SHIFT_VERIFY_LAYER] = "layer",
	[SHIFT_VERIFY_VIEW] = "view",
	[SHIFT_VERIFY_UPPER] = "upper",
	[SHIFT_VERIFY_IN_PLACE] = "in-place",
	[SHIFT_VERIFY_MOUNTS] = "mounts",
};

const char *shift_verify_check_name(enum shift_verify_check c)
{
	if ((unsigned)c >= ARRAY_SIZE(check_names) || !check_names[c])
		return "unknown";
	return check_names[c];
}

const char *shift_verify_status_name(enum shift_verify_status s)
{
	switch (s) {
	case SHIFT_VERIFY_PASS:
		return "pass";
	case SHIFT_VERIFY_FAIL:
		return "fail";
	case SHIFT_VERIFY_SKIP:
		return "skip";
	default:
		return "info";
	}
}

_printf_(4, 5) int sk_verify_emit(struct vrun *run, enum shift_verify_status st,
				  const struct shift_difference *d,
				  const char *fmt, ...)
{
	struct shift_verify_finding f = {
		.check = run->check, .status = st, .subject = run->subject,
		.diff = d,
	};
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	f.message = msg;
	/* a check fails once, however many differences it lists */
	if (st == SHIFT_VERIFY_FAIL && !d)
		run->fails++;
	return run->fn ? run->fn(&f, run->userdata) : 0;
}

int shift_verify_containers(const char *path, shift_verify_fn fn,
			    void *userdata, struct shift_error *err)
{
	struct vset s = { 0 };
	struct vrun run = { .fn = fn, .userdata = userdata };
	char why[512] = "";
	int r;

	/* The parser builds its reason in a buffer, "line L, column C: ..."
	 * where it knows the place: handed over whole as why, with the
	 * place also as line and column. */
	r = sk_vset_load(&s, path, why, sizeof(why));
	if (r < 0) {
		unsigned line = 0, col = 0;

		if (sscanf(why, "line %u, column %u: ", &line, &col) != 2)
			line = col = 0;
		if (why[0])
			sk_error_set_line(err, r, line, col, "%s", why);
		else
			sk_error_errno(err, r);
		sk_error_path(err, r, path);
	}
	if (r >= 0)
		r = sk_verify_overlap(&s, &run);
	if (r >= 0)
		r = sk_verify_host_root(&s, &run);
	if (r >= 0)
		r = sk_verify_subid(&s, &run);
	if (r >= 0)
		r = sk_verify_layers(&s, &run);
	if (r >= 0)
		r = sk_verify_views(&s, &run);
	if (r >= 0)
		r = sk_verify_uppers(&s, &run);
	if (r >= 0)
		r = sk_verify_in_place(&s, &run);
	if (r >= 0)
		r = sk_verify_mounts(&s, &run);
	sk_vset_free(&s);
	return r < 0 ? r : run.fails;
}
