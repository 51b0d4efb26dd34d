/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * layer-mount: time shift_layer_mount() in-process (no exec, no dynamic
 * linking in the figure): open the image, assemble the idmapped overlay
 * over the stored layers, unmount; RUNS times.  Prints
 * "open+mount ms: min median max" and the same for the mount alone.
 *
 *   layer-mount STORE IMAGE MAP RUNS [--copy]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "shift.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%s ms: min %.2f median %.2f max %.2f\n", what, v[0], v[n / 2],
	       v[n - 1]);
}

int main(int argc, char **argv)
{
	struct shift_idmap *map = shift_idmap_new();
	unsigned flags = SHIFT_LAYER_RDONLY;
	double *total, *mount_only;
	char target[] = "/tmp/layer-mount.XXXXXX";
	struct shift_error why = { 0 };
	int runs, r;

	if (argc < 5) {
		fprintf(stderr, "usage: layer-mount STORE IMAGE MAP RUNS [--copy]\n");
		return 2;
	}
	if (argc > 5 && !strcmp(argv[5], "--copy"))
		flags |= SHIFT_LAYER_FORCE_COPY;
	runs = atoi(argv[4]);
	if (runs < 1 || !map || shift_idmap_parse(map, argv[3], &why) < 0) {
		fprintf(stderr, "layer-mount: bad map or runs (%s)\n",
			why.why ? why.why : "");
		return 2;
	}
	if (!mkdtemp(target)) {
		perror("layer-mount: mkdtemp");
		return 1;
	}
	total = calloc((size_t)runs, sizeof(double));
	mount_only = calloc((size_t)runs, sizeof(double));
	for (int i = 0; i < runs; i++) {
		struct shift_error d = { 0 };
		struct shift_oci_image *img = NULL;
		double t0 = now_ms(), t1;

		r = shift_oci_image_open(argv[2], &img, &d);
		if (r < 0) {
			fprintf(stderr, "layer-mount: open '%s': %s\n", argv[2],
				d.why ? d.why : strerror(-r));
			return 1;
		}
		t1 = now_ms();
		r = shift_layer_mount(img, argv[1], map, target, NULL, flags,
				      &d);
		if (r < 0) {
			fprintf(stderr, "layer-mount: mount: %s %s\n",
				d.path ? d.path : "", d.why ? d.why : strerror(-r));
			return 1;
		}
		total[i] = now_ms() - t0;
		mount_only[i] = now_ms() - t1;
		umount2(target, MNT_DETACH);
		shift_oci_image_free(img);
		shift_error_clear(&d);
	}
	rmdir(target);
	report("open+mount", total, runs);
	report("mount", mount_only, runs);
	free(total);
	free(mount_only);
	shift_idmap_free(map);
	return 0;
}
