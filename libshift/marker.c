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

/* Where the run's progress records are, and in which view of the ids
 * (the "journal=" field; none: JOURNAL_HOST). */
enum journal {
	JOURNAL_HOST,	 /* this xattr's namespace, host ids */
	JOURNAL_TRUSTED, /* a mirror: the record is in trusted.* */
	JOURNAL_USERNS,	 /* user.*, ids of the user namespace of the run */
};

static bool in_userns;

void sk_marker_set_userns(void)
{
	in_userns = true;
}

/* Parse one marker value and its "journal=" field. */
static int marker_parse(char *buf, struct sk_marker *m, enum journal *ret_j)
{
	char journal[16] = "";
	int off = 0, off2 = 0;

	if (sscanf(buf,
		   "shiftkit 1 state=%15s gen=%" SCNx64
		   " dir=%15s unmapped=%15s cleanup=%d%n",
		   m->state, &m->gen, m->dir, m->unmapped, &m->cleanup,
		   &off) < 5 ||
	    off == 0)
		return -EBADMSG;
	if (sscanf(buf + off, " journal=%15s%n", journal, &off2) == 1 &&
	    off2 > 0)
		off += off2;
	*ret_j = strcmp(journal, "trusted") == 0  ? JOURNAL_TRUSTED
		 : strcmp(journal, "userns") == 0 ? JOURNAL_USERNS
						  : JOURNAL_HOST;
	if (strncmp(buf + off, " map=", 5) != 0)
		return -EBADMSG;
	m->map = strdup(buf + off + 5);
	return m->map ? 0 : -ENOMEM;
}

/* One marker xattr: 1 found, 0 absent or unreadable here, or -errno. */
static int marker_get(int fd, const char *name, struct sk_marker *m,
		      enum journal *ret_j)
{
	char buf[SK_MARKER_MAX + 1];
	ssize_t n;
	int r;

	memset(m, 0, sizeof(*m));
	n = fgetxattr(fd, name, buf, SK_MARKER_MAX);
	if (n < 0) {
		if (errno == ENODATA || errno == EOPNOTSUPP || errno == EPERM)
			return 0;
		return negative_errno();
	}
	buf[n] = 0;
	r = marker_parse(buf, m, ret_j);
	if (r < 0)
		return r;
	m->found = true;
	return 1;
}

static bool unfinished(const struct sk_marker *m)
{
	return strcmp(m->state, "done") != 0 && strcmp(m->state, "undone") != 0;
}

/*
 * A privileged run keeps its record in trusted.* (which only it can change)
 * and a mirror of it in user.* marked "journal=trusted", so that the
 * owner of a delegation, who can't see trusted.* at all, still finds that
 * the tree is shifted.  A run without privilege writes user.* alone, which
 * makes that record newer than the trusted.* one.  So:
 *  - user.* not a mirror: the latest record (its intents in user.*);
 *  - user.* mirror: the trusted.* record counts (the mirror is written
 *    first: where trusted.* is missing, the run died between the two
 *    writes, before any change); without privilege the mirror stands for
 *    it.
 * An interrupted run can only be finished in the view of the ids its
 * progress records were made in: a run in a user namespace
 * ("journal=userns": ids, ACLs and capabilities as the namespace shows
 * them) by the same user, a privileged one (trusted.*, or user.* in host
 * ids) by root.  Otherwise -EACCES, nothing done.
 */
static int marker_read(int fd, char *ret_name, size_t name_size,
		       struct sk_marker *m, bool refuse_foreign)
{
	struct sk_marker t;
	enum journal j = JOURNAL_HOST, tj;
	int r;

	r = marker_get(fd, "user." SK_MARKER_SUFFIX, m, &j);
	if (r < 0)
		return r;
	if (r > 0 && j != JOURNAL_TRUSTED) {
		if (refuse_foreign && unfinished(m) &&
		    in_userns != (j == JOURNAL_USERNS))
			goto foreign;
		snprintf(ret_name, name_size, "user." SK_MARKER_SUFFIX);
		return 0;
	}
	r = marker_get(fd, "trusted." SK_MARKER_SUFFIX, &t, &tj);
	if (r < 0) {
		free(m->map);
		m->map = NULL;
		m->found = false;
		return r;
	}
	if (r > 0) {
		free(m->map);
		*m = t;
		snprintf(ret_name, name_size, "trusted." SK_MARKER_SUFFIX);
		return 0;
	}
	if (!m->found)
		return 0;
	/* A mirror alone: is trusted.* invisible, or really missing? */
	if (in_userns ||
	    (fgetxattr(fd, "trusted." SK_MARKER_SUFFIX, NULL, 0) < 0 &&
	     errno == ENODATA &&
	     fsetxattr(fd, "trusted.shiftkit.probe", "", 0, XATTR_REPLACE) < 0 &&
	     errno == EPERM)) {
		/* unprivileged: the mirror stands for the record */
		if (refuse_foreign && unfinished(m))
			goto foreign;
		snprintf(ret_name, name_size, "user." SK_MARKER_SUFFIX);
		return 0;
	}
	snprintf(ret_name, name_size, "trusted." SK_MARKER_SUFFIX);
	return 0;
foreign:
	free(m->map);
	m->map = NULL;
	m->found = false;
	return -EACCES;
}

int sk_marker_read(int fd, char *ret_name, size_t name_size,
		   struct sk_marker *m)
{
	return marker_read(fd, ret_name, name_size, m, true);
}

static int marker_set(struct sk_engine *e, const char *name, enum journal j,
		      const char *state)
{
	static const char *const fields[] = {
		[JOURNAL_HOST] = "",
		[JOURNAL_TRUSTED] = " journal=trusted",
		[JOURNAL_USERNS] = " journal=userns",
	};
	char buf[SK_MARKER_MAX];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "shiftkit 1 state=%s gen=%016" PRIx64
		     " dir=%s unmapped=%s cleanup=%d%s map=%s",
		     state, e->journal.gen,
		     (e->opts->flags & SHIFT_REVERSE) ? "reverse" : "forward",
		     sk_marker_policy(e->opts->unmapped), e->cleanup ? 1 : 0,
		     fields[j], e->marker_map);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	if (fsetxattr(e->rootfd, name, buf, (size_t)n, 0) < 0)
		return negative_errno();
	return 0;
}

int sk_marker_write(struct sk_engine *e, const char *state)
{
	int r;

	if (strncmp(e->marker_name, "trusted.", 8) != 0)
		return marker_set(e, e->marker_name,
				  in_userns ? JOURNAL_USERNS : JOURNAL_HOST,
				  state);
	/* The user.* mirror first (see marker_read); a filesystem without
	 * user.* xattrs only keeps the trusted.* record, and in a user
	 * namespace the trusted.* write fails (the engine takes user.*). */
	if (!in_userns) {
		r = marker_set(e, "user." SK_MARKER_SUFFIX, JOURNAL_TRUSTED,
			       state);
		if (r < 0 && r != -EOPNOTSUPP && r != -EPERM)
			return r;
	}
	return marker_set(e, e->marker_name, JOURNAL_HOST, state);
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
	r = marker_read(fd, name, sizeof(name), &m, false);
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
