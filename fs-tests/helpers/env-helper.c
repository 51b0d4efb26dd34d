/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * env-helper: what libshift takes from the environment, for the tests of
 * secure_getenv (shift/secure-env.bats): linked statically with libshift,
 * so it still runs when given file capabilities (the dynamic loader drops
 * the tools' $ORIGIN rpath in a secure-execution program).
 *
 *   env-helper USER
 *
 * prints "at_secure N", "subid MAP-or-error" (USER's delegation) and
 * "mountd_socket PATH", one per line.  Exit status 0, 2 on bad usage.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "shift.h"

int main(int argc, char **argv)
{
	struct shift_idmap *map;
	char *s = NULL;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: env-helper USER\n");
		return 2;
	}
	map = shift_idmap_new();
	if (!map)
		return 2;
	printf("at_secure %lu\n", getauxval(AT_SECURE));
	r = shift_idmap_from_subid(map, argv[1]);
	if (r == 0)
		s = shift_idmap_to_string(map);
	printf("subid %s\n", r < 0 ? strerror(-r) : s ? s : "?");
	printf("mountd_socket %s\n", shift_mountd_socket_path());
	free(s);
	shift_idmap_free(map);
	return 0;
}
