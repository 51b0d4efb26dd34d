/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-layer: prepare an OCI image's layers for a container's id map,
 * either as a store of canonical layers mounted through idmapped overlays,
 * or as one flattened root filesystem shifted while it is extracted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "progress.h"

enum action {
	ACT_UNPACK,
	ACT_MOUNT,
	ACT_LIST,
	ACT_GC,
};

enum {
	OPT_STORE = 0x2000,
	OPT_FLAT,
	OPT_UPPER,
	OPT_COPY,
	OPT_NO_DEVICES,
	OPT_READ_ONLY,
	OPT_SELINUX_LABELS,
	OPT_KEEP,
	OPT_ALLOW_STACKED,
	OPT_CANONICAL_UPPER,
	OPT_HOST_UPPER,
};

struct options {
	enum action action;
	const char *verb;
	const char *store;
	const char *image;
	const char *dest;
	const char *upper;
	bool flat;
	bool json;
	bool quiet;
	bool verbose;
	bool allow_stacked; /* mount: TARGET may already be a mount point */
	unsigned flags;
	const char **keep; /* gc --keep IMAGE..., NULL-terminated */
	size_t n_keep;
	struct cli_map map;
};

_noreturn_ static void usage(void)
{
	printf("Usage:\n"
	       " %1$s unpack --store STORE [-n] IMAGE\n"
	       " %1$s unpack --flat [--map MAP...] [-n] IMAGE DEST\n"
	       " %1$s mount --store STORE --map MAP... IMAGE TARGET [--upper DIR]\n"
	       " %1$s list IMAGE\n"
	       " %1$s gc --store STORE [--keep IMAGE...] [-n]\n"
	       "\n"
	       "Prepare the layers of an OCI image layout for a container's id map.\n"
	       "IMAGE is LAYOUT_DIR[:TAG]; the tag may be left out when the layout\n"
	       "holds one image.  Layers are untrusted: anything escaping the root, a\n"
	       "digest mismatch or a corrupt archive is refused and nothing is left.\n"
	       "\n"
	       " unpack --store  each layer once into STORE, unshifted, whiteouts in\n"
	       "                 overlayfs form; the image is recorded in STORE/images\n"
	       " unpack --flat   one rootfs at DEST, shifted while extracting\n"
	       " mount           overlayfs over idmapped mounts of the stored layers\n"
	       "                 (shifted copies where the store can't be idmapped)\n"
	       " list            the image's layers\n"
	       " gc              remove stale temporaries, and layers no recorded (or,\n"
	       "                 with --keep, no kept) image uses\n"
	       "\n"
	       "Options:\n"
	       " -s, --store DIR         the layer store\n"
	       "     --flat              unpack into one flattened tree\n"
	       " -u, --upper DIR         mount: DIR/upper and DIR/work for writes\n"
	       "     --allow-stacked     mount: on a TARGET that is already a mount point\n"
	       "                           (without it the mount is read-only)\n"
	       "     --copy              mount: use shifted copies, don't idmap\n"
	       "     --canonical-upper   mount: DIR/upper stores the container's own ids\n"
	       "                           (root = 0), idmapped: the default for a new\n"
	       "                           upper whose filesystem can be idmapped\n"
	       "     --host-upper        mount: DIR/upper stores host ids (the map's)\n"
	       "     --no-devices        refuse device nodes in layers\n"
	       "     --selinux-labels    unpack --flat: apply the layers' security.selinux\n"
	       "                           labels (dropped by default: host policy)\n"
	       " -n, --dry-run           unpack: read and check, list the entries, write\n"
	       "                           nothing; gc: list what would be removed\n"
	       "     --keep IMAGE        gc: keep only these images' layers (repeatable)\n"
	       " -q, --quiet             no progress line, no summary\n"
	       " -v, --verbose           say which path is taken (as a normal user:\n"
	       "                           the rootless store, shift-mountd)\n"
	       CLI_MAP_HELP,
	       program_invocation_short_name);
	cli_help_footer(true,
			"an unpack stopped by SIGINT, SIGTERM or SIGHUP removes\n"
			"what it made and dies of the signal (128+N)",
			"shift-layer(1)");
	exit(EXIT_OK);
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "flat", no_argument, NULL, OPT_FLAT },
		{ "upper", required_argument, NULL, 'u' },
		{ "copy", no_argument, NULL, OPT_COPY },
		{ "no-devices", no_argument, NULL, OPT_NO_DEVICES },
		{ "selinux-labels", no_argument, NULL, OPT_SELINUX_LABELS },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "allow-stacked", no_argument, NULL, OPT_ALLOW_STACKED },
		{ "canonical-upper", no_argument, NULL, OPT_CANONICAL_UPPER },
		{ "host-upper", no_argument, NULL, OPT_HOST_UPPER },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		CLI_MAP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *verb;
	int c, npos;

	/* Options may come before or after the command (getopt permutes). */
	o->json = cli_json_begin(argc, argv);
	while ((c = getopt_long(argc, argv, "s:u:m:nqvJhV", longopts, NULL)) !=
	       -1) {
		if (cli_map_option(&o->map, c, optarg))
			continue;
		switch (c) {
		case 's':
			o->store = optarg;
			break;
		case OPT_FLAT:
			o->flat = true;
			break;
		case 'u':
			o->upper = optarg;
			break;
		case OPT_COPY:
			o->flags |= SHIFT_LAYER_FORCE_COPY;
			break;
		case OPT_NO_DEVICES:
			o->flags |= SHIFT_LAYER_NO_DEVICES;
			break;
		case OPT_SELINUX_LABELS:
			o->flags |= SHIFT_LAYER_SELINUX_LABELS;
			break;
		case 'n':
			o->flags |= SHIFT_LAYER_DRY_RUN;
			break;
		case OPT_KEEP: {
			const char **k = realloc(o->keep, (o->n_keep + 2) *
								  sizeof(*k));

			if (!k) {
				cli_error("out of memory");
				exit(EXIT_FAIL);
			}
			k[o->n_keep++] = optarg;
			k[o->n_keep] = NULL;
			o->keep = k;
			break;
		}
		case 'J':
			o->json = true;
			break;
		case OPT_ALLOW_STACKED:
			o->allow_stacked = true;
			break;
		case OPT_CANONICAL_UPPER:
			o->flags |= SHIFT_LAYER_CANONICAL_UPPER;
			break;
		case OPT_HOST_UPPER:
			o->flags |= SHIFT_LAYER_HOST_UPPER;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage();
		case 'V':
			cli_version();
		default:
			cli_option_error(argv);
		}
	}
	if (optind >= argc)
		cli_usage_error("no command given (unpack, mount, list or gc)");
	verb = o->verb = argv[optind++];
	npos = argc - optind;
	if (!strcmp(verb, "unpack")) {
		o->action = ACT_UNPACK;
		if (o->flat == !!o->store)
			cli_usage_error("unpack needs exactly one of --store STORE and --flat");
		if (o->flat && npos != 2)
			cli_usage_error("unpack --flat needs IMAGE and DEST");
		if (!o->flat && npos != 1)
			cli_usage_error("unpack --store needs IMAGE");
		if (!o->flat && o->map.sources)
			cli_usage_error("the store holds layers unshifted: give --map to mount or to unpack --flat");
		if (o->flat && o->map.sources)
			cli_map_finish(&o->map, SHIFT_VALIDATE_BOTH |
						       SHIFT_VALIDATE_NO_HOST_ROOT);
	} else if (!strcmp(verb, "mount")) {
		o->action = ACT_MOUNT;
		if (o->flat)
			cli_usage_error("--flat only goes with unpack (mount assembles the stored layers)");
		if (!o->store)
			cli_usage_error("mount needs --store STORE");
		if (npos != 2)
			cli_usage_error("mount needs IMAGE and TARGET");
		cli_map_finish(&o->map, SHIFT_VALIDATE_BOTH |
					       SHIFT_VALIDATE_NO_HOST_ROOT);
		if (!o->upper)
			o->flags |= SHIFT_LAYER_RDONLY;
	} else if (!strcmp(verb, "list")) {
		o->action = ACT_LIST;
		if (npos != 1)
			cli_usage_error("list needs IMAGE");
		if (o->map.sources || o->store || o->flat ||
		    (o->flags & SHIFT_LAYER_NO_DEVICES))
			cli_usage_error("list takes only IMAGE (no --map, --store, --flat or --no-devices)");
	} else if (!strcmp(verb, "gc")) {
		o->action = ACT_GC;
		/* "gc STORE" reads as well as "gc --store STORE". */
		if (!o->store && npos == 1) {
			o->store = argv[optind++];
			npos--;
		}
		if (!o->store || npos != 0)
			cli_usage_error("gc needs the store: gc --store STORE");
		if (o->map.sources || o->flat ||
		    (o->flags & SHIFT_LAYER_NO_DEVICES))
			cli_usage_error("gc takes only --store, --keep, --dry-run, --json and --quiet");
	} else {
		cli_usage_error("unknown command '%s' (unpack, mount, list or gc)",
				verb);
	}
	if (o->upper && o->action != ACT_MOUNT)
		cli_usage_error("--upper only goes with mount");
	if (o->allow_stacked && o->action != ACT_MOUNT)
		cli_usage_error("--allow-stacked only goes with mount");
	if ((o->flags & SHIFT_LAYER_FORCE_COPY) && o->action != ACT_MOUNT)
		cli_usage_error("--copy only goes with mount");
	if ((o->flags & SHIFT_LAYER_CANONICAL_UPPER) &&
	    (o->flags & SHIFT_LAYER_HOST_UPPER))
		cli_usage_error("--canonical-upper and --host-upper contradict each other");
	if ((o->flags & (SHIFT_LAYER_CANONICAL_UPPER | SHIFT_LAYER_HOST_UPPER)) &&
	    (o->action != ACT_MOUNT || !o->upper))
		cli_usage_error("--%s-upper only goes with mount --upper DIR",
				(o->flags & SHIFT_LAYER_CANONICAL_UPPER) ? "canonical" : "host");
	/* Stored layers are shared by every container and map. */
	if ((o->flags & SHIFT_LAYER_SELINUX_LABELS) &&
	    (o->action != ACT_UNPACK || !o->flat))
		cli_usage_error("--selinux-labels only goes with unpack --flat (stored layers are shared: label their mounts with context=)");
	if ((o->flags & SHIFT_LAYER_DRY_RUN) && o->action != ACT_UNPACK &&
	    o->action != ACT_GC)
		cli_usage_error("--dry-run only goes with unpack and gc");
	if (o->keep && o->action != ACT_GC)
		cli_usage_error("--keep only goes with gc");
	if (o->verbose && o->action != ACT_MOUNT &&
	    (o->action != ACT_UNPACK || o->flat))
		cli_usage_error("--verbose only goes with unpack --store and mount");
	o->image = o->action == ACT_GC ? NULL : argv[optind];
	o->dest = npos > 1 ? argv[optind + 1] : NULL;
}

/* The JSON document being built (--json), printed once at the end. */
static struct json_object *doc;

static void jadd(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

/*
 * "shift-layer: Failed to ACTION 'OBJ': 'PATH': WHY HINT" on stderr
 * (cli_report); with --json also the action, object and hint in the
 * document's "error".
 */
static int report(const struct options *o, const char *action,
		  const char *obj, const struct shift_error *d, int r,
		  const char *hint)
{
	/* obj is a path or an image name: escaped. */
	_cleanup_free_ char *eobj = shift_escape(obj);

	if (o->json) {
		cli_json_error_add("action", json_object_new_string(action));
		cli_json_error_add("object", json_object_new_string(obj));
		if (hint)
			cli_json_error_add("hint", json_object_new_string(hint));
	}
	return cli_report(r, d, hint, "Failed to %s '%s'", action,
			  eobj ? eobj : "?");
}

/* SIGINT, SIGTERM, SIGHUP during an unpack: stop, clean up, then die of it. */
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	/* No SA_RESTART: a blocked read returns and the unpack notices. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		struct sigaction old;

		/* Ignored on entry (nohup, a background job): stays so. */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

static void die_of_signal(void)
{
	int sig = got_signal;

	if (!sig)
		return;
	fflush(stdout);
	signal(sig, SIG_DFL);
	raise(sig);
	exit(128 + sig);
}

struct unpack_state {
	const struct options *o;
	struct cli_progress bar;
	struct json_object *entries; /* dry run, --json */
	uint64_t n_entries;
	uint64_t n_devices_skipped; /* a normal user's store */
	unsigned layers_seen; /* layers an entry came from, +1 */
};

static void on_entry(const struct shift_layer_event *ev, void *userdata)
{
	struct unpack_state *u = userdata;

	/* Follows the device node's own event: not an entry of its own. */
	if (!strcmp(ev->what, "device-skipped")) {
		_cleanup_free_ char *p = shift_escape(ev->path);

		u->n_devices_skipped++;
		cli_progress_clear(&u->bar);
		fprintf(stderr, "%s: warning: skipping the device node '%s' of layer %u: a normal user's store can't hold device nodes (the container's runtime provides /dev)\n",
			program_invocation_short_name, p ? p : "?", ev->layer);
		return;
	}
	u->n_entries++;
	if (ev->layer + 1 > u->layers_seen)
		u->layers_seen = ev->layer + 1;
	cli_progress_update(&u->bar, ev->bytes_read, false);
	if (!(u->o->flags & SHIFT_LAYER_DRY_RUN))
		return;
	if (u->entries) {
		struct json_object *e = json_object_new_object();

		jadd(e, "layer", json_object_new_int64(ev->layer));
		jadd(e, "type", json_object_new_string(ev->what));
		jadd(e, "path", json_object_new_string(*ev->path ? ev->path : "."));
		if (!strcmp(ev->what, "file"))
			jadd(e, "size", json_object_new_int64((int64_t)ev->size));
		json_object_array_add(u->entries, e);
	} else if (!u->o->json) {
		_cleanup_free_ char *p = shift_escape(*ev->path ? ev->path : ".");

		cli_progress_clear(&u->bar);
		printf("%u %s %s\n", ev->layer, ev->what, p ? p : "?");
	}
}

static int do_unpack(const struct options *o, struct shift_oci_image *img)
{
	struct shift_error d = { 0 };
	struct unpack_state u = { .o = o };
	struct shift_layer_opts lo = {
		.flags = o->flags,
		.cancel = &got_signal,
		.on_entry = on_entry,
		.userdata = &u,
	};
	bool dry = o->flags & SHIFT_LAYER_DRY_RUN;
	unsigned n = shift_oci_layer_count(img);
	int r, rc = EXIT_OK;

	cli_progress_init(&u.bar, "layer bytes", o->quiet || o->json);
	{
		uint64_t total = 0;

		for (unsigned i = 0; i < n; i++) {
			struct shift_oci_layer l;

			shift_oci_layer_get(img, i, &l);
			total += l.size;
		}
		cli_progress_set_total(&u.bar, total);
	}
	if (o->json && dry)
		u.entries = json_object_new_array();
	if (o->verbose && !o->flat && geteuid() != 0)
		fprintf(stderr, "%s: not root: a rootless store, unpacked inside a user namespace of your /etc/subuid and /etc/subgid delegation (newuidmap, newgidmap); device nodes are skipped\n",
			program_invocation_short_name);
	else if (o->verbose && !o->flat)
		fprintf(stderr, "%s: root: a store of canonical layers\n",
			program_invocation_short_name);
	catch_signals();
	if (o->flat)
		r = shift_layer_unpack_flat_opts(img, o->dest, o->map.map, &lo,
						 &d);
	else
		r = shift_layer_store_unpack_opts(img, o->store, &lo, &d);
	cli_progress_clear(&u.bar);
	if (o->json) {
		jadd(doc, "image", json_object_new_string(shift_oci_image_digest(img)));
		jadd(doc, o->flat ? "dest" : "store",
		     json_object_new_string(o->flat ? o->dest : o->store));
		jadd(doc, "dry_run", json_object_new_boolean(dry));
		jadd(doc, "layers", json_object_new_int64(n));
		if (!o->flat && r >= 0)
			jadd(doc, dry ? "layers_to_unpack" : "layers_unpacked",
			     json_object_new_int64(r));
		jadd(doc, "entries", json_object_new_int64((int64_t)u.n_entries));
		if (!o->flat)
			jadd(doc, "rootless", json_object_new_boolean(geteuid() != 0));
		jadd(doc, "devices_skipped",
		     json_object_new_int64((int64_t)u.n_devices_skipped));
		if (u.entries)
			jadd(doc, "entry_list", u.entries);
	}
	if (r == -ECANCELED && got_signal) {
		report(o, "unpack", o->image, &d, r,
		       o->flat ? "(interrupted by a signal: nothing was left at the destination)"
			       : "(interrupted by a signal: the store holds only complete layers)");
		if (o->json) {
			cli_json_print(doc, EXIT_FAIL);
			doc = NULL;
		}
		shift_error_clear(&d);
		die_of_signal();
	}
	if (r < 0)
		rc = report(o, "unpack", o->image, &d, r,
			    dry ? "(dry run: nothing was written)"
			    : o->flat ? "(nothing was left at the destination)"
				      : "(the store holds only complete layers)");
	else if (o->json || o->quiet)
		;
	else if (dry && o->flat)
		printf("dry run: %" PRIu64 " entries in %u layers checked, nothing written\n",
		       u.n_entries, n);
	else if (dry)
		printf("dry run: %d of %u layers would be unpacked into '%s' (%" PRIu64 " entries checked), nothing written\n",
		       r, n, o->store, u.n_entries);
	else if (!o->flat && u.n_devices_skipped)
		printf("%d of %u layers unpacked into '%s' (%" PRIu64 " device node%s skipped)\n",
		       r, n, o->store, u.n_devices_skipped,
		       u.n_devices_skipped == 1 ? "" : "s");
	else if (!o->flat)
		printf("%d of %u layers unpacked into '%s'\n", r, n, o->store);
	shift_error_clear(&d);
	return rc;
}

static void on_gc(const struct shift_layer_gc_event *ev, void *userdata)
{
	const struct options *o = userdata;

	if (o->json) {
		struct json_object *a, *e = json_object_new_object();

		jadd(e, "kind", json_object_new_string(ev->kind));
		jadd(e, "path", json_object_new_string(ev->path));
		if (ev->name)
			jadd(e, "digest", json_object_new_string(ev->name));
		json_object_object_get_ex(doc, "removed", &a);
		json_object_array_add(a, e);
	} else if (!o->quiet) {
		_cleanup_free_ char *p = shift_escape(ev->path);

		printf("%s %s %s\n",
		       o->flags & SHIFT_LAYER_DRY_RUN ? "would remove"
						      : "removing",
		       ev->kind, p ? p : "?");
	}
}

static int do_gc(const struct options *o)
{
	struct shift_error d = { 0 };
	struct shift_oci_image **keep = NULL;
	int r, rc = EXIT_OK;

	if (o->json) {
		jadd(doc, "store", json_object_new_string(o->store));
		jadd(doc, "dry_run", json_object_new_boolean(o->flags & SHIFT_LAYER_DRY_RUN));
		jadd(doc, "removed", json_object_new_array());
	}
	if (o->keep) {
		keep = calloc(o->n_keep + 1, sizeof(*keep));
		if (!keep) {
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		for (size_t i = 0; i < o->n_keep; i++) {
			r = shift_oci_image_open(o->keep[i], &keep[i], &d);
			if (r < 0) {
				rc = report(o, "open image", o->keep[i], &d, r,
					    "(nothing was removed)");
				goto out;
			}
		}
	}
	r = shift_layer_gc(o->store, (const struct shift_oci_image *const *)keep,
			   o->flags & SHIFT_LAYER_DRY_RUN, on_gc, (void *)o, &d);
	if (r < 0)
		rc = report(o, "collect garbage in", o->store, &d, r, NULL);
	else if (o->json)
		jadd(doc, "count", json_object_new_int(r));
	else if (!o->quiet)
		printf("%s%d item%s %s\n",
		       o->flags & SHIFT_LAYER_DRY_RUN ? "dry run: " : "", r,
		       r == 1 ? "" : "s",
		       o->flags & SHIFT_LAYER_DRY_RUN ? "would be removed"
						      : "removed");
out:
	for (size_t i = 0; keep && i < o->n_keep; i++)
		shift_oci_image_free(keep[i]);
	free(keep);
	shift_error_clear(&d);
	return rc;
}

static void do_list(const struct options *o, struct shift_oci_image *img)
{
	struct json_object *layers = NULL;

	if (o->json) {
		jadd(doc, "image", json_object_new_string(shift_oci_image_digest(img)));
		layers = json_object_new_array();
		jadd(doc, "layers", layers);
	} else {
		printf("image %s\n", shift_oci_image_digest(img));
	}
	for (unsigned i = 0; i < shift_oci_layer_count(img); i++) {
		struct shift_oci_layer l;

		shift_oci_layer_get(img, i, &l);
		if (layers) {
			struct json_object *e = json_object_new_object();

			jadd(e, "index", json_object_new_int64(i));
			jadd(e, "digest", json_object_new_string(l.digest));
			jadd(e, "size", json_object_new_int64((int64_t)l.size));
			jadd(e, "media_type", json_object_new_string(l.media_type));
			if (l.diff_id)
				jadd(e, "diff_id", json_object_new_string(l.diff_id));
			json_object_array_add(layers, e);
		} else {
			/* From the manifest: untrusted, escaped. */
			_cleanup_free_ char *mt = shift_escape(l.media_type);

			printf("%u %s %" PRIu64 " %s\n", i, l.digest, l.size,
			       mt ? mt : "?");
		}
	}
}

/*
 * mount: directly with CAP_SYS_ADMIN; without it (a normal user in its
 * own user and mount namespaces), each layer of the rootless store an
 * idmapped mount from shift-mountd (shift_layer_mount_user).
 */
static int do_mount(const struct options *o, struct shift_oci_image *img)
{
	_cleanup_(shift_error_clear) struct shift_error d = { 0 };
	bool service = shift_mountd_needed();
	const char *sock = shift_mountd_socket_path();
	int r, rc = EXIT_OK;

	if (service && o->verbose) {
		_cleanup_free_ char *es = shift_escape(sock);

		fprintf(stderr, "%s: no CAP_SYS_ADMIN: asking shift-mountd at '%s' for %u idmapped layer(s) of the rootless store (nodev)\n",
			program_invocation_short_name, es ? es : "?",
			shift_oci_layer_count(img));
	} else if (o->verbose) {
		fprintf(stderr, "%s: making the idmapped mounts directly\n",
			program_invocation_short_name);
	}
	if (service)
		r = shift_layer_mount_user(img, o->store, o->map.map, o->dest,
					   o->upper, o->flags, sock, &d);
	else
		r = shift_layer_mount(img, o->store, o->map.map, o->dest,
				      o->upper, o->flags, &d);
	if (r >= 0 && service && o->verbose) {
		_cleanup_free_ char *et = shift_escape(o->dest);

		fprintf(stderr, "%s: mounted an overlay of the idmapped layers made by shift-mountd at '%s'\n",
			program_invocation_short_name, et ? et : "?");
	}
	/* The service path returns 1: idmapped layers, its upper in the
	 * caller's own ids. */
	if (r > 0 && service)
		r = SHIFT_LAYER_MOUNTED_IDMAPPED;
	if (r < 0) {
		rc = report(o, "mount", o->image, &d, r, NULL);
	} else if (o->json) {
		jadd(doc, "image", json_object_new_string(
					   shift_oci_image_digest(img)));
		jadd(doc, "target", json_object_new_string(o->dest));
		jadd(doc, "idmapped", json_object_new_boolean(
					      r & SHIFT_LAYER_MOUNTED_IDMAPPED));
		jadd(doc, "via", json_object_new_string(service ? "shift-mountd"
								: "direct"));
		jadd(doc, "read_only", json_object_new_boolean(!o->upper));
		if (o->upper)
			jadd(doc, "canonical_upper",
			     json_object_new_boolean(
				 r & SHIFT_LAYER_MOUNTED_CANONICAL));
	} else if (!o->quiet) {
		printf("mounted '%s' at '%s' (%s%s)\n", o->image, o->dest,
		       service ? "idmapped layers from shift-mountd"
		       : (r & SHIFT_LAYER_MOUNTED_IDMAPPED) ? "idmapped layers"
							: "shifted copies",
		       !o->upper || service ? ""
		       : (r & SHIFT_LAYER_MOUNTED_CANONICAL)
			   ? ", canonical upper"
			   : ", upper in host ids");
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct shift_error d = { 0 };
	struct shift_oci_image *img = NULL;
	int r, rc = EXIT_OK;

	parse_args(&o, argc, argv);
	if (o.json)
		doc = json_object_new_object();

	if (o.action == ACT_GC) {
		rc = do_gc(&o);
		goto out;
	}
	r = shift_oci_image_open(o.image, &img, &d);
	if (r < 0) {
		rc = report(&o, "open image", o.image, &d, r, NULL);
		goto out;
	}

	switch (o.action) {
	case ACT_LIST:
		do_list(&o, img);
		break;
	case ACT_UNPACK:
		rc = do_unpack(&o, img);
		break;
	case ACT_MOUNT:
		/* TARGET already a mount point (a running container's root):
		 * a mount on top would hide it.  Refused unless asked. */
		r = o.allow_stacked ? 0 : shift_mount_is_mountpoint(AT_FDCWD, o.dest);
		if (r > 0 || (r < 0 && r != -ENOENT && r != -ENOTDIR)) {
			char stacked[] = "it is already a mount point, and a mount on top would hide it";
			struct shift_error td = { .why = r > 0 ? stacked : NULL };

			rc = report(&o, "mount on", o.dest, &td, r > 0 ? -EBUSY : r,
				    r > 0 ? "(unmount it first, or use --allow-stacked to mount over it)" : NULL);
			break;
		}
		rc = do_mount(&o, img);
		break;
	case ACT_GC:
		break;
	}
out:
	if (doc)
		cli_json_print(doc, rc);
	shift_error_clear(&d);
	shift_oci_image_free(img);
	cli_map_free(&o.map);
	free(o.keep);
	return rc;
}
