/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-layer: prepare an OCI image's layers for a container's id map,
 * either as a store of canonical layers mounted through idmapped overlays,
 * or as one flattened root filesystem shifted while it is extracted.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum action {
	ACT_UNPACK,
	ACT_MOUNT,
	ACT_LIST,
};

enum {
	OPT_STORE = 0x2000,
	OPT_FLAT,
	OPT_UPPER,
	OPT_COPY,
	OPT_NO_DEVICES,
	OPT_READ_ONLY,
	OPT_SELINUX_LABELS,
};

struct options {
	enum action action;
	const char *store;
	const char *image;
	const char *dest;
	const char *upper;
	bool flat;
	unsigned flags;
	struct cli_map map;
};

_noreturn_ static void usage(void)
{
	printf("Usage:\n"
	       " %1$s unpack --store STORE IMAGE\n"
	       " %1$s unpack --flat [--map MAP...] IMAGE DEST\n"
	       " %1$s mount --store STORE --map MAP... IMAGE TARGET [--upper DIR]\n"
	       " %1$s list IMAGE\n"
	       "\n"
	       "Prepare the layers of an OCI image layout for a container's id map.\n"
	       "IMAGE is LAYOUT_DIR[:TAG]; the tag may be left out when the layout\n"
	       "holds one image.  Layers are untrusted: anything escaping the root, a\n"
	       "digest mismatch or a corrupt archive is refused and nothing is left.\n"
	       "\n"
	       " unpack --store  each layer once into STORE, unshifted, whiteouts in\n"
	       "                 overlayfs form\n"
	       " unpack --flat   one rootfs at DEST, shifted while extracting\n"
	       " mount           overlayfs over idmapped mounts of the stored layers\n"
	       "                 (shifted copies where the store can't be idmapped)\n"
	       " list            the image's layers\n"
	       "\n"
	       "Options:\n"
	       " -s, --store DIR         the layer store\n"
	       "     --flat              unpack into one flattened tree\n"
	       " -u, --upper DIR         mount: DIR/upper and DIR/work for writes\n"
	       "                           (without it the mount is read-only)\n"
	       "     --copy              mount: use shifted copies, don't idmap\n"
	       "     --no-devices        refuse device nodes in layers\n"
	       "     --selinux-labels    unpack --flat: apply the layers' security.selinux\n"
	       "                           labels (dropped by default: host policy)\n"
	       CLI_MAP_HELP
	       " -h, --help              display this help\n"
	       " -V, --version           display version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error, 3 not supported.\n",
	       program_invocation_short_name);
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		CLI_MAP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *verb;
	int c, npos;

	/* Options may come before or after the command (getopt permutes). */
	while ((c = getopt_long(argc, argv, "s:u:m:hV", longopts, NULL)) != -1) {
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
		case 'h':
			usage();
		case 'V':
			cli_version();
		default:
			cli_usage_error(NULL);
		}
	}
	if (optind >= argc)
		cli_usage_error("no command given (unpack, mount or list)");
	verb = argv[optind++];
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
	} else {
		cli_usage_error("unknown command '%s' (unpack, mount or list)",
				verb);
	}
	if (o->upper && o->action != ACT_MOUNT)
		cli_usage_error("--upper only goes with mount");
	if ((o->flags & SHIFT_LAYER_FORCE_COPY) && o->action != ACT_MOUNT)
		cli_usage_error("--copy only goes with mount");
	/* Stored layers are shared by every container and map. */
	if ((o->flags & SHIFT_LAYER_SELINUX_LABELS) &&
	    (o->action != ACT_UNPACK || !o->flat))
		cli_usage_error("--selinux-labels only goes with unpack --flat (stored layers are shared: label their mounts with context=)");
	o->image = argv[optind];
	o->dest = npos > 1 ? argv[optind + 1] : NULL;
}

static int exit_code(int r)
{
	switch (r) {
	case -EOPNOTSUPP:
	case -ENOSYS:
		return EXIT_UNSUPPORTED;
	default:
		return EXIT_FAIL;
	}
}

/* "shift-layer: Failed to ACTION 'OBJ': 'WHERE': WHY" */
static int report(const char *action, const char *obj,
		  const struct shift_oci_diag *d, int r, const char *hint)
{
	/* where is a tar entry name or a path: untrusted, escaped. */
	_cleanup_free_ char *eobj = shift_escape(obj);
	_cleanup_free_ char *ewhere = d->where ? shift_escape(d->where) : NULL;

	cli_error("Failed to %s '%s': %s%s%s%s%s%s", action, eobj ? eobj : "?",
		  d->where ? "'" : "", ewhere ? ewhere : d->where ? "?" : "",
		  d->where ? "': " : "", d->why ? d->why : strerror(-r),
		  hint ? " " : "", hint ? hint : "");
	return exit_code(r);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct shift_oci_diag d = { 0 };
	struct shift_oci_image *img = NULL;
	int r, rc = EXIT_OK;

	parse_args(&o, argc, argv);

	r = shift_oci_image_open(o.image, &img, &d);
	if (r < 0) {
		rc = report("open image", o.image, &d, r, NULL);
		goto out;
	}

	switch (o.action) {
	case ACT_LIST:
		printf("image %s\n", shift_oci_image_digest(img));
		for (unsigned i = 0; i < shift_oci_layer_count(img); i++) {
			struct shift_oci_layer l;

			shift_oci_layer_get(img, i, &l);
			printf("%u %s %" PRIu64 " %s\n", i, l.digest, l.size,
			       l.media_type);
		}
		break;
	case ACT_UNPACK:
		if (o.flat) {
			r = shift_layer_unpack_flat(img, o.dest, o.map.map,
						    o.flags, &d);
			if (r < 0)
				rc = report("unpack", o.image, &d, r,
					    "(nothing was left at the destination)");
		} else {
			r = shift_layer_store_unpack(img, o.store, o.flags, &d);
			if (r < 0)
				rc = report("unpack", o.image, &d, r,
					    "(the store holds only complete layers)");
			else
				printf("%d of %u layers unpacked into '%s'\n",
				       r, shift_oci_layer_count(img), o.store);
		}
		break;
	case ACT_MOUNT:
		r = shift_layer_mount(img, o.store, o.map.map, o.dest, o.upper,
				      o.flags, &d);
		if (r < 0)
			rc = report("mount", o.image, &d, r, NULL);
		else
			printf("mounted '%s' at '%s' (%s)\n", o.image, o.dest,
			       r ? "idmapped layers" : "shifted copies");
		break;
	}
out:
	shift_oci_diag_clear(&d);
	shift_oci_image_free(img);
	cli_map_free(&o.map);
	return rc;
}
