/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mount --fallback=reassemble: SOURCE is an overlayfs mount, which
 * can't be idmapped; its layers can.  Included once, by shift-mount.c
 * (the part of the tool about re-assembly, kept in its own file).
 */
#ifndef SHIFT_MOUNT_REASSEMBLE_H
#define SHIFT_MOUNT_REASSEMBLE_H

static void reassemble_check_args(const struct options *o)
{
	if (o->canonical_upper && o->fallback != FALLBACK_REASSEMBLE &&
	    o->mode != MODE_OVERLAY)
		cli_usage_error("--canonical-upper needs --overlay, or "
				"--fallback=reassemble (the default for an "
				"overlayfs SOURCE)");
	if (o->canonical_upper && !o->upper)
		cli_usage_error("--canonical-upper needs --upper and --work");
	if (o->canonical_upper && (o->flags & SHIFT_MOUNT_RECURSIVE))
		cli_usage_error(
		    "--recursive can't be used with --canonical-upper");
	if (o->replace && o->fallback != FALLBACK_REASSEMBLE)
		cli_usage_error("--replace needs --fallback=reassemble");
	if (o->fallback != FALLBACK_REASSEMBLE)
		return;
	if (o->replace && (o->upper || (o->flags & SHIFT_MOUNT_RDONLY)))
		cli_usage_error("--replace takes over the source's upper "
				"layer: not with --upper or --read-only");
	if (o->replace && o->canonical_upper)
		cli_usage_error("--replace always makes the upper canonical: "
				"drop --canonical-upper");
	if (!o->upper != !o->work)
		cli_usage_error("--upper and --work go together");
	if (o->upper && (o->flags & SHIFT_MOUNT_RDONLY))
		cli_usage_error(
		    "--read-only and --upper contradict each other (a "
		    "read-only re-assembly has no writable layer)");
}

/* A shifted copy of layer from in dir (made, or reused when it holds one
 * shifted with this map), as --fallback=copy makes one of SOURCE. */
static int copy_layer(struct options *o, const char *from,
		      const char *dir)
{
	struct shift_copy_result cr = {0};

	return copy_and_shift(o, "layer ", from, dir, &cr);
}

/*
 * The layers of src (its upper too when it becomes a lower one) whose
 * filesystem can't be idmapped: without --copy-dir, refused naming the
 * layer (exit 3); with it, a shifted copy each in DIR/layer-N, said so,
 * and *ret_pairs gets "layer", "copy", ..., NULL for the re-assembly.
 * Returns -1 to go on, or an exit status.
 */
static int copy_unidmappable(struct options *o,
			     const struct shift_overlay_source *src,
			     bool upper_as_lower, char ***ret_pairs)
{
	const char *layers[1024];
	char **pairs = NULL;
	size_t n = 0, np = 0, i;
	int r = -1;

	if (upper_as_lower && src->upper)
		layers[n++] = src->upper;
	for (i = 0; src->lower[i] && n < ARRAY_SIZE(layers); i++)
		layers[n++] = src->lower[i];
	for (i = 0; src->data && src->data[i] && n < ARRAY_SIZE(layers); i++)
		layers[n++] = src->data[i];
	for (i = 0; i < n && r < 0; i++) {
		_cleanup_free_ char *dir = NULL;
		char **np2;

		if (can_idmap(o, layers[i]))
			continue;
		if (!o->copy_dir) {
			_cleanup_free_ char *why =
			    shift_mount_strerror(-EINVAL, layers[i]);

			cli_error("Failed to idmap layer '%s' of the overlay "
				  "'%s': %s (give --copy-dir DIR to use a "
				  "shifted copy of that layer)",
				  q(layers[i]),
				  q(o->source),
				  why ? why : "not supported");
			r = EXIT_UNSUPPORTED;
			break;
		}
		if ((mkdir(o->copy_dir, 0700) < 0 && errno != EEXIST) ||
		    asprintf(&dir, "%s/layer-%zu", o->copy_dir, i) < 0) {
			cli_error(
			    "Failed to create the copy directory '%s': %m",
			    o->copy_dir);
			r = EXIT_FAIL;
			break;
		}
		r = copy_layer(o, layers[i], dir);
		if (r != EXIT_OK)
			break;
		r = -1;
		cli_error("layer '%s' of '%s' can't be idmapped: using its "
			  "shifted copy in '%s'",
			  q(layers[i]),
			  q(o->source), dir);
		np2 = realloc(pairs, (np + 3) * sizeof(char *));
		if (!np2 || !(np2[np] = strdup(layers[i]))) {
			pairs = np2 ? np2 : pairs;
			cli_error("out of memory");
			r = EXIT_FAIL;
			break;
		}
		pairs = np2;
		pairs[np + 1] = TAKE_PTR(dir);
		pairs[np + 2] = NULL;
		np += 2;
	}
	if (r >= 0) {
		for (i = 0; i < np; i++)
			free(pairs[i]);
		free(pairs);
		return r;
	}
	*ret_pairs = pairs;
	return -1;
}

/*
 * --fallback=reassemble (given, or the default for an overlayfs SOURCE):
 * whether SOURCE is an overlay to re-assemble.  When it is not, options
 * only re-assembly uses are refused, and it is mounted as with
 * --fallback=none (no shift, no copy).
 */
static bool reassemble_applies(struct options *o)
{
	int r = shift_overlay_is_mount(o->source);

	if (r != 0 && r != -ENOENT && r != -ENOTDIR)
		return true; /* mount_reassemble() tells any other error */
	if (o->upper || o->copy_dir || o->replace)
		cli_usage_error("%s with --fallback=reassemble needs an "
				"overlayfs mount as SOURCE",
				o->upper      ? "--upper"
				: o->copy_dir ? "--copy-dir"
					      : "--replace");
	o->fallback = FALLBACK_NONE;
	return false;
}

/*
 * Returns an exit status, or -1 when SOURCE is not an overlayfs mount (the
 * caller then goes on as with --fallback=none).
 */
static int mount_reassemble(struct options *o)
{
	struct shift_overlay_source *src = NULL;
	struct shift_reassemble ra = {0};
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *failed;
	char **pairs = NULL;
	int r;

	r = shift_overlay_is_mount(o->source);
	if (r == 0 || r == -ENOENT || r == -ENOTDIR)
		return -1; /* not an overlay: run() asked reassemble_applies() */
	if (r == -EISDIR) {
		cli_error("Failed to re-assemble '%s': it lies inside an "
			  "overlayfs but is not the overlay's mount point "
			  "(give the mount point)",
			  q(o->source));
		return EXIT_FAIL;
	}
	if (o->flags & SHIFT_MOUNT_RECURSIVE)
		cli_usage_error("--recursive can't be used to re-assemble an "
				"overlay (mounts below it are not part of it)");
	r = shift_overlay_source_read(o->source, &src);
	if (r == -EBADMSG) {
		cli_error(
		    "Failed to re-assemble '%s': its mount options don't say "
		    "where its layers are (it was built from file descriptors, "
		    "in another mount namespace or chroot, or a layer was "
		    "moved since; set LIBSHIFT_DEBUG=1 for details)",
		    q(o->source));
		return EXIT_FAIL;
	}
	if (r < 0) {
		cli_error("Failed to read the overlay mounted at '%s': %s",
			  q(o->source), strerror(-r));
		return EXIT_FAIL;
	}

	if (o->replace && !src->upper) {
		cli_error("Failed to re-assemble '%s' in its place: it has no "
			  "upper layer to take over (use --read-only)",
			  q(o->source));
		shift_overlay_source_free(src);
		return EXIT_FAIL;
	}
	o->res.method = "reassemble";
	if (o->dry_run) {
		size_t n = 0;

		while (src->lower[n])
			n++;
		r = dry_target(o);
		if (r == EXIT_OK)
			would(o,
			      "would re-assemble the overlay '%s' at '%s' over "
			      "its %zu lower layer(s)%s idmapped with map '%s'%s",
			      q(o->source), q(o->target), n,
			      src->upper ? " and upper layer" : "", o->map_str,
			      o->replace ? ", taking its place" : "");
		shift_overlay_source_free(src);
		return r;
	}
	r = copy_unidmappable(
	    o, src, o->upper || (o->flags & SHIFT_MOUNT_RDONLY), &pairs);
	if (r >= 0) {
		shift_overlay_source_free(src);
		return r;
	}
	ra.plain_layers = (const char *const *)pairs;
	ra.src = src;
	ra.source = o->source;
	ra.upper = o->upper;
	ra.work = o->work;
	if (o->replace)
		ra.how |= SHIFT_REASSEMBLE_REPLACE;
	if (o->upper || (o->flags & SHIFT_MOUNT_RDONLY))
		ra.how |= SHIFT_REASSEMBLE_UPPER_AS_LOWER;
	if (o->canonical_upper)
		ra.how |= SHIFT_REASSEMBLE_CANONICAL_UPPER;
	r = shift_overlay_reassemble(&ra, o->target, o->map.map, o->userns_fd,
				     o->flags, &e);
	failed = e.path;
	if (r >= 0) {
		o->res.mounted = true;
		r = EXIT_OK;
	} else if (o->replace && is_what(&e, "restore")) {
		cli_error(
		    "Failed to re-assemble '%s' in its place, and to mount the "
		    "source again: it is unmounted now, its layers unchanged "
		    "(mount it again with the options it had)",
		    q(o->source));
		r = EXIT_FAIL;
	} else if (o->replace && is_what(&e, "unmount")) {
		cli_error("Failed to unmount '%s' to take its place: %s%s; "
			  "nothing changed",
			  q(o->source), strerror(-r),
			  r == -EBUSY ? " (it is in use: open files, a working "
					"directory or mounts below it)"
				      : "");
		r = EXIT_FAIL;
	} else if (r == -EBUSY && failed && src->upper &&
		   !strcmp(failed, src->upper)) {
		cli_error("Failed to re-assemble '%s': it is live with a "
			  "writable layer ('%s'), and overlayfs must never see "
			  "two mounts over one upper layer (use --read-only: "
			  "it becomes a read-only layer; or --upper DIR --work "
			  "DIR: a new writable layer above it)",
			  q(o->source),
			  q(src->upper));
		r = EXIT_FAIL;
	} else if (r == -EBUSY && !failed && src->upper) {
		cli_error("Failed to re-assemble '%s': overlayfs refuses its "
			  "writable layer ('%s') as a lower layer while the "
			  "source overlay uses it with index=on (use "
			  "--read-only, or mount the source with index=off)",
			  q(o->source),
			  q(src->upper));
		r = EXIT_FAIL;
	} else if (r == -EOPNOTSUPP) {
		cli_error(
		    "Failed to re-assemble '%s': this kernel lacks what "
		    "re-assembly needs (e.g. mount ids from statx, Linux "
		    ">= 5.8)",
		    q(o->source));
		r = EXIT_UNSUPPORTED;
	} else if (failed && !same_path(failed, o->target) && !same_path(failed, o->upper) &&
		   !same_path(failed, o->work)) {
		_cleanup_free_ char *why = shift_mount_strerror(r, failed);

		cli_error("Failed to idmap layer '%s' of the overlay '%s': %s",
			  q(failed),
			  q(o->source),
			  why ? why : strerror(-r));
		r = idmap_exit(r);
	} else if (failed) {
		r = report(o, r,
			   same_path(failed, o->target)
			       ? "attach the re-assembled overlay at"
			       : "prepare the writable layer",
			   failed);
	} else {
		cli_error("Failed to mount the re-assembled overlay of '%s' at "
			  "'%s': %s",
			  q(o->source), q(o->target),
			  strerror(-r));
		r = EXIT_FAIL;
	}
	shift_overlay_source_free(src);
	for (size_t i = 0; pairs && pairs[i]; i++)
		free(pairs[i]);
	free(pairs);
	return r;
}

/* Split s at sep into a NULL-terminated vector (empty items refused). */
static char **split_list(const char *s, const char *sep)
{
	_cleanup_free_ char *copy = strdup(s);
	char **v = NULL, *tok, *save = NULL;
	size_t n = 0;

	if (!copy)
		return NULL;
	v = calloc(strlen(s) + 2, sizeof(char *));
	if (!v)
		return NULL;
	for (tok = strtok_r(copy, sep, &save); tok;
	     tok = strtok_r(NULL, sep, &save))
		if (!(v[n++] = strdup(tok))) {
			while (n > 0)
				free(v[--n]);
			free(v);
			return NULL;
		}
	return v;
}

/*
 * --overlay --canonical-upper: the layers of SOURCE and -o options as a
 * source of the re-assembly code, without an upper of their own, and the
 * new upper canonical.
 */
static int mount_overlay_canonical(struct options *o)
{
	struct shift_overlay_source *src = calloc(1, sizeof(*src));
	struct shift_reassemble ra = {0};
	_cleanup_(shift_error_clear) struct shift_error e = { 0 };
	const char *failed;
	int r;

	if (!src || !(src->lower = split_list(o->source, ":")) ||
	    (o->fsoptions && !(src->options = split_list(o->fsoptions, ",")))) {
		shift_overlay_source_free(src);
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	if (!src->lower[0])
		cli_usage_error("no layer in '%s'", o->source);
	ra.src = src;
	ra.upper = o->upper;
	ra.work = o->work;
	ra.how = SHIFT_REASSEMBLE_CANONICAL_UPPER;
	r = shift_overlay_reassemble(&ra, o->target, o->map.map, o->userns_fd,
				     o->flags, &e);
	failed = e.path;
	if (r >= 0) {
		r = EXIT_OK;
	} else if (r == -EOPNOTSUPP) {
		cli_error(
		    "Failed to mount the overlay at '%s': this kernel lacks "
		    "what a canonical upper needs (e.g. mount ids from "
		    "statx, Linux >= 5.8)",
		    o->target);
		r = EXIT_UNSUPPORTED;
	} else if (failed && !same_path(failed, o->target) && !same_path(failed, o->upper) &&
		   !same_path(failed, o->work)) {
		r = report(o, r, "idmap layer", failed);
	} else if (failed) {
		r = report(o, r,
			   same_path(failed, o->target) ? "attach the overlay at"
					       : "prepare the writable layer",
			   failed);
	} else {
		cli_error(
		    "Failed to mount the overlay at '%s': %s%s", o->target,
		    strerror(-r),
		    r == -EINVAL
			? " (check --options and that upper and work are on "
			  "one filesystem that supports overlayfs upper layers)"
			: "");
		r = EXIT_FAIL;
	}
	shift_overlay_source_free(src);
	return r;
}

#endif
