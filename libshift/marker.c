/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The run's marker: an xattr on the tree's root (trusted.shiftkit.shift,
 * or user.shiftkit.shift where trusted.* can't be written) recording what
 * is being done to the tree -- state (running, cleanup, done, undone), the
 * run's generation, direction, unmapped policy and map -- so that a tree
 * already shifted is left alone and a half-shifted one is resumed, never
 * shifted twice.  docs/shift-engine.md describes the states.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "shift-engine.h"

const char *sk_marker_policy(enum shift_unmapped p)
{
	switch (p) {
	case SHIFT_UNMAPPED_KEEP:
		return "keep";
	case SHIFT_UNMAPPED_OVERFLOW:
		return "overflow";
	default:
		return "error";
	}
}

int sk_marker_read(int fd, char *ret_name, size_t name_size,
		       struct sk_marker *m)
{
	static const char *const prefixes[] = { "trusted.", "user." };
	char buf[SK_MARKER_MAX + 1];
	unsigned i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < ARRAY_SIZE(prefixes); i++) {
		char name[32];
		ssize_t n;
		int off = 0;

		snprintf(name, sizeof(name), "%s%s", prefixes[i], SK_MARKER_SUFFIX);
		n = fgetxattr(fd, name, buf, SK_MARKER_MAX);
		if (n < 0) {
			if (errno == ENODATA || errno == EOPNOTSUPP ||
			    errno == EPERM)
				continue;
			return negative_errno();
		}
		buf[n] = 0;
		if (sscanf(buf,
			   "shiftkit 1 state=%15s gen=%" SCNx64
			   " dir=%15s unmapped=%15s cleanup=%d map=%n",
			   m->state, &m->gen, m->dir, m->unmapped, &m->cleanup,
			   &off) < 5 ||
		    off == 0)
			return -EBADMSG;
		m->map = strdup(buf + off);
		if (!m->map)
			return -ENOMEM;
		m->found = true;
		snprintf(ret_name, name_size, "%s", name);
		return 0;
	}
	return 0;
}

int sk_marker_write(struct sk_engine *e, const char *state)
{
	char buf[SK_MARKER_MAX];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "shiftkit 1 state=%s gen=%016" PRIx64
		     " dir=%s unmapped=%s cleanup=%d map=%s",
		     state, e->journal.gen,
		     (e->opts->flags & SHIFT_REVERSE) ? "reverse" : "forward",
		     sk_marker_policy(e->opts->unmapped), e->cleanup ? 1 : 0,
		     e->marker_map);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	if (fsetxattr(e->rootfd, e->marker_name, buf, (size_t)n, 0) < 0)
		return negative_errno();
	return 0;
}

int shift_tree_marker(const char *path, char **ret_state, char **ret_map)
{
	_cleanup_close_ int fd = -EBADF;
	struct sk_marker m;
	char name[32];
	int r;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = sk_marker_read(fd, name, sizeof(name), &m);
	if (r < 0)
		return r;
	if (!m.found)
		return -ENODATA;
	if (ret_state) {
		*ret_state = strdup(m.state);
		if (!*ret_state) {
			free(m.map);
			return -ENOMEM;
		}
	}
	if (ret_map)
		*ret_map = m.map;
	else
		free(m.map);
	return 0;
}

bool sk_marker_same_map(const char *s, const struct shift_idmap *map)
{
	struct shift_idmap *m = shift_idmap_new();
	bool eq;

	if (!m)
		return false;
	eq = shift_idmap_parse(m, s, NULL) == 0 && shift_idmap_equal(m, map);
	shift_idmap_free(m);
	return eq;
}
