/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libshift: what verify/ files share. */
#ifndef LIBSHIFT_VERIFY_INTERNAL_H
#define LIBSHIFT_VERIFY_INTERNAL_H

#include "shift/verify.h"
#include "core/core-internal.h"

#endif
