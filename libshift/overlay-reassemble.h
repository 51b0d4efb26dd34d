/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift (and its unit tests): overlay-reassemble.c. */
#ifndef LIBSHIFT_OVERLAY_REASSEMBLE_H
#define LIBSHIFT_OVERLAY_REASSEMBLE_H

#include "shift.h"

/* The raw super options of an overlay mount (as in /proc/self/mountinfo,
 * octal escapes and all) into src (zeroed by the caller; free it with
 * shift_overlay_source_free).  -EBADMSG for options no overlay shows
 * (no lower layer, upper without work, lowerdir mixed with lowerdir+,
 * an empty layer). */
int sk_overlay_parse_options(const char *optstr,
			     struct shift_overlay_source *src);

#endif
