/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift: give a container's files the right ownership for its user
 * namespace.  One model (the id map) serves three paths: idmapped mounts,
 * the in-place shift engine and verification.
 *
 * Error model: every function that can fail returns int, >= 0 on success
 * (possibly an fd) and a negative errno on failure.  The library prints
 * nothing; set LIBSHIFT_DEBUG=1 for debug output on stderr.
 */
#ifndef LIBSHIFT_SHIFT_H
#define LIBSHIFT_SHIFT_H

#include "shift/util.h"
#include "shift/core.h"
#include "shift/mount.h"
#include "shift/engine.h"
#include "shift/verify.h"
#include "shift/oci.h"

#endif
