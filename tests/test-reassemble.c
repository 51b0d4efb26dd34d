/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading an overlay's layers from its mount options: mountinfo's octal
 * escapes, overlayfs's own backslash quoting in the legacy lowerdir list,
 * "::" data-only layers, lowerdir+/datadir+, and what can't be an overlay.
 */
#include "config.h"

#include "mount/mount-internal.h"
#include "shift.h"
#include "lib.h"

static struct shift_overlay_source *parse(const char *opts, int *r)
{
	struct shift_overlay_source *src = calloc(1, sizeof(*src));

	*r = src ? sk_overlay_parse_options(opts, src) : -ENOMEM;
	return src;
}

TEST(legacy_list_with_upper_and_options)
{
	int r;
	struct shift_overlay_source *s =
	    parse("rw,lowerdir=/a:/b,upperdir=/u,workdir=/"
		  "w,index=on,xino=auto,volatile",
		  &r);

	CHECK_EQ_INT(r, 0);
	CHECK_EQ_STR(s->lower[0], "/a");
	CHECK_EQ_STR(s->lower[1], "/b");
	CHECK(s->lower[2] == NULL);
	CHECK(s->data == NULL);
	CHECK_EQ_STR(s->upper, "/u");
	CHECK_EQ_STR(s->work, "/w");
	CHECK(!s->read_only);
	CHECK_EQ_STR(s->options[0], "index=on");
	CHECK_EQ_STR(s->options[1], "xino=auto");
	CHECK_EQ_STR(s->options[2], "volatile");
	CHECK(s->options[3] == NULL);
	shift_overlay_source_free(s);
}

TEST(escapes_space_comma_colon_backslash)
{
	int r;
	/* "/sp ace\,co\:lon" and "/back\\slash" as overlayfs got them,
	 * octal-escaped by mountinfo. */
	struct shift_overlay_source *s = parse(
	    "ro,lowerdir=/sp\\040ace\\134\\054co\\134:lon:/back\\134\\134slash,"
	    "upperdir=/u\\134\\054p,workdir=/w\\040k",
	    &r);

	CHECK_EQ_INT(r, 0);
	CHECK(s->read_only);
	CHECK_EQ_STR(s->lower[0], "/sp ace,co:lon");
	CHECK_EQ_STR(s->lower[1], "/back\\slash");
	CHECK(s->lower[2] == NULL);
	CHECK_EQ_STR(s->upper, "/u,p");
	CHECK_EQ_STR(s->work, "/w k");
	shift_overlay_source_free(s);
}

TEST(data_only_layers)
{
	int r;
	struct shift_overlay_source *s = parse(
	    "ro,lowerdir=/a:/b::/d1::/d2,redirect_dir=on,metacopy=on", &r);

	CHECK_EQ_INT(r, 0);
	CHECK_EQ_STR(s->lower[0], "/a");
	CHECK_EQ_STR(s->lower[1], "/b");
	CHECK(s->lower[2] == NULL);
	CHECK_EQ_STR(s->data[0], "/d1");
	CHECK_EQ_STR(s->data[1], "/d2");
	CHECK(s->data[2] == NULL);
	CHECK_EQ_STR(s->options[0], "redirect_dir=on");
	shift_overlay_source_free(s);
}

TEST(lowerdir_plus_and_datadir_plus_are_taken_literally)
{
	int r;
	/* Layers added one by one are not backslash-unquoted by overlayfs. */
	struct shift_overlay_source *s =
	    parse("rw,lowerdir+=/a\\134:b,lowerdir+=/c\\054d,datadir+=/"
		  "d,upperdir=/u,workdir=/w",
		  &r);

	CHECK_EQ_INT(r, 0);
	CHECK_EQ_STR(s->lower[0], "/a\\:b");
	CHECK_EQ_STR(s->lower[1], "/c,d");
	CHECK_EQ_STR(s->data[0], "/d");
	shift_overlay_source_free(s);
}

TEST(what_no_overlay_shows_is_refused)
{
	static const char *const bad[] = {
	    "rw,upperdir=/u,workdir=/w",      /* no lower layer */
	    "rw,lowerdir=/a,upperdir=/u",     /* upper without work */
	    "rw,lowerdir=/a,lowerdir+=/b",    /* both ways */
	    "rw,lowerdir=/a::",		      /* an empty layer */
	    "rw,lowerdir=/a::/d,lowerdir=/b", /* two lists */
	    "rw,lowerdir",		      /* no value */
	    "rw,lowerdir=/a,upperdir=/u,upperdir=/v,workdir=/w",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;
		struct shift_overlay_source *s = parse(bad[i], &r);

		if (r != -EBADMSG)
			printf("#   '%s' gave %d\n", bad[i], r);
		CHECK_EQ_INT(r, -EBADMSG);
		shift_overlay_source_free(s);
	}
}

TEST(not_an_overlay_mount)
{
	struct shift_overlay_source *s = NULL;

	CHECK_EQ_INT(shift_overlay_is_mount("/proc"), 0);
	CHECK_EQ_INT(shift_overlay_source_read("/proc", &s), -EMEDIUMTYPE);
	CHECK(s == NULL);
	CHECK_EQ_INT(shift_overlay_is_mount("/nonexistent-shiftkit"), -ENOENT);
}

TEST_MAIN()
