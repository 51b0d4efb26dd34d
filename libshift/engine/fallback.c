/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What shift-mount does when a SOURCE can't simply be idmapped, as library
 * calls the tool only feeds and reports: the policy (shift_mount_choose(),
 * pure), the shift as root or through a user namespace
 * (shift_tree_auto()), the shared-layer marker (shift_tree_shared_marker())
 * and the copy-and-shift of --fallback=copy and of re-assembled layers
 * (shift_copy_and_shift()).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/engine-internal.h"
#include "util/error.h"

int shift_tree_auto(const char *path, const struct shift_options *opts,
		    struct shift_stats *stats, struct shift_error *err)
{
	/* Root changes owners itself; anyone else through a user namespace
	 * of their delegated ids (docs/shift-engine.md). */
	int r = geteuid() == 0 ? shift_tree(path, opts, stats)
			       : shift_tree_userns(path, opts, stats);

	return sk_error_path(err, r, path);
}

const char *shift_tree_shared_marker(const char *path)
{
	static const char *const names[] = {
	    "trusted." SHIFT_SHARED_XATTR_SUFFIX,
	    "user." SHIFT_SHARED_XATTR_SUFFIX,
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (lgetxattr(path, names[i], NULL, 0) >= 0)
			return names[i];
	return NULL;
}

/* Whether dir holds nothing: 1, 0, or a negative errno. */
static int is_empty(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return negative_errno();
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return 0;
	return errno ? negative_errno() : 1;
}

int shift_copy_and_shift(const char *src, const char *dir,
			 const struct shift_options *opts,
			 struct shift_stats *stats,
			 struct shift_copy_result *res, struct shift_error *err)
{
	_cleanup_free_ char *state = NULL, *map = NULL;
	bool dry = opts->flags & SHIFT_DRY_RUN;
	struct stat st;
	int r;

	void (*on_copy)(const char *, const char *, void *) = res->on_copy;

	*res = (struct shift_copy_result){
	    .on_copy = on_copy,
	    .step = SHIFT_COPY_STEP_MKDIR,
	};
	if (dry && lstat(dir, &st) < 0 && errno == ENOENT)
		goto twin;
	if (!dry && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		return sk_error_set_path(err, negative_errno(), dir,
					 "cannot create the copy directory");
	}
	/* A shifted copy from an earlier run: the engine's marker tells
	 * (also one whose shift was interrupted: the engine finishes it). */
	res->step = SHIFT_COPY_STEP_MARKER;
	r = shift_tree_marker(dir, &state, &map);
	if (r >= 0) {
		res->reused = true;
		res->step = SHIFT_COPY_STEP_SHIFT;
		res->tree = dir;
		return shift_tree_auto(dir, opts, stats, err);
	}
	if (r != -ENODATA)
		return sk_error_set_path(err, r, dir,
					 "cannot read the shift marker");
	res->step = SHIFT_COPY_STEP_DIR;
	r = is_empty(dir);
	if (r < 0)
		return sk_error_set_path(err, r, dir,
					 "cannot read the copy directory");
	if (r == 0)
		return sk_error_set_path(
		    err, -ENOTEMPTY, dir,
		    "the directory is not empty and holds no shifted copy");
	if (dry) {
	twin:
		/* Nothing to reuse: the copy would be the source's twin, so
		 * the source is what the engine looks at. */
		res->copy = true;
		res->step = SHIFT_COPY_STEP_SHIFT;
		res->tree = src;
		return shift_tree_auto(src, opts, stats, err);
	}
	res->copy = true;
	res->step = SHIFT_COPY_STEP_COPY;
	if (res->on_copy)
		res->on_copy(src, dir, opts->userdata);
	/* The copy keeps the source's ids; the engine shifts it next, with
	 * its marker on the copy (what a later run reuses) and its journal
	 * (an interrupted shift of the copy is finished, never redone). */
	r = shift_copy_tree(src, dir, NULL, 0, err);
	if (r < 0)
		return r;
	res->copied = true;
	res->step = SHIFT_COPY_STEP_SHIFT;
	res->tree = dir;
	return shift_tree_auto(dir, opts, stats, err);
}

enum shift_mount_method shift_mount_choose(const struct shift_mount_facts *f)
{
	/* Without CAP_SYS_ADMIN the kernel makes no idmapped mount of a
	 * directory: the service does, when it is there. */
	if (f->service)
		return SHIFT_METHOD_SERVICE;
	if (f->kind == SHIFT_MOUNT_KIND_TMPFS)
		return SHIFT_METHOD_IDMAP;
	if (f->kind == SHIFT_MOUNT_KIND_BIND && !f->allow_shifted) {
		/* Shifted by this very map: its files already carry the ids
		 * the container needs, whatever the fallback. */
		if (f->source_state == SHIFT_SOURCE_SHIFTED)
			return SHIFT_METHOD_PLAIN_BIND;
		/* --fallback=shift finishes its own interrupted shift. */
		if (f->source_state == SHIFT_SOURCE_UNFINISHED &&
		    f->fallback == SHIFT_FALLBACK_SHIFT && f->resume)
			goto fallback;
	}
	if (f->kind == SHIFT_MOUNT_KIND_BIND &&
	    f->fallback == SHIFT_FALLBACK_REASSEMBLE && f->overlay)
		return SHIFT_METHOD_REASSEMBLE;
	/* Decided up front, so no partial idmapped mount exists. */
	if (f->fallback == SHIFT_FALLBACK_NONE ||
	    f->fallback == SHIFT_FALLBACK_REASSEMBLE || f->idmappable)
		return SHIFT_METHOD_IDMAP;
fallback:
	if (f->kernel_fs)
		return SHIFT_METHOD_REFUSE_KERNEL_FS;
	if (f->fallback == SHIFT_FALLBACK_COPY)
		return SHIFT_METHOD_COPY;
	if (f->shared && !f->force)
		return SHIFT_METHOD_REFUSE_SHARED;
	return SHIFT_METHOD_SHIFT;
}
