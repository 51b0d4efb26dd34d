/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The run's marker: an xattr on the tree's root (trusted.shiftkit.shift,
 * or user.shiftkit.shift where trusted.* can't be written) recording what
 * is being done to the tree -- state (running, cleanup, incomplete, done,
 * undone), the run's generation, direction, unmapped policy, when it was
 * written and the map -- so that a tree already shifted is left alone and a
 * half-shifted one (interrupted, or finished with problems) is resumed,
 * never shifted twice.  docs/shift-engine.md describes the states.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

#include "engine/engine-internal.h"

static const char *const state_names[] = {
	[SK_STATE_RUNNING] = "running",
	[SK_STATE_CLEANUP] = "cleanup",
	[SK_STATE_INCOMPLETE] = "incomplete",
	[SK_STATE_DONE] = "done",
	[SK_STATE_UNDONE] = "undone",
};

const char *sk_state_name(enum sk_state s)
{
	return s < ARRAY_SIZE(state_names) && state_names[s] ? state_names[s]
							      : "unknown";
}

/* A state this version doesn't know (a newer one's) is taken as
 * "running": never done, so a run neither skips nor restarts the tree. */
static enum sk_state state_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (state_names[i] && strcmp(s, state_names[i]) == 0)
			return (enum sk_state)i;
	return SK_STATE_UNKNOWN;
}

static enum sk_direction direction_parse(const char *s)
{
	if (strcmp(s, "forward") == 0)
		return SK_DIRECTION_FORWARD;
	if (strcmp(s, "reverse") == 0)
		return SK_DIRECTION_REVERSE;
	return SK_DIRECTION_UNKNOWN;
}

static enum shift_unmapped policy_parse(const char *s)
{
	static const enum shift_unmapped all[] = {
		SHIFT_UNMAPPED_ERROR,
		SHIFT_UNMAPPED_KEEP,
		SHIFT_UNMAPPED_OVERFLOW,
	};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (strcmp(s, sk_marker_policy(all[i])) == 0)
			return all[i];
	return SK_POLICY_UNKNOWN;
}

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

/* Parse one marker value: the fixed fields, then optional ones
 * ("journal=", "time=", unknown ones of newer versions skipped) up to
 * " map=", which takes the rest. */
static int marker_parse(char *buf, struct sk_marker *m, enum journal *ret_j)
{
	char journal[16] = "", *p, *mapp;
	int off = 0;

	if (sscanf(buf,
		   "shiftkit 1 state=%15s gen=%" SCNx64
		   " dir=%15s unmapped=%15s cleanup=%d%n",
		   m->state, &m->gen, m->dir, m->unmapped, &m->cleanup,
		   &off) < 5 ||
	    off == 0)
		return -EBADMSG;
	mapp = strstr(buf + off, " map=");
	if (!mapp)
		return -EBADMSG;
	*mapp = 0;
	for (p = buf + off; *p == ' ';) {
		char *end = strchr(p + 1, ' ');
		size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
		unsigned long long v;
		int n = 0;

		if (strncmp(p + 1, "journal=", 8) == 0 &&
		    len - 8 < sizeof(journal)) {
			memcpy(journal, p + 9, len - 8);
			journal[len - 8] = 0;
		} else if (sscanf(p + 1, "time=%llu%n", &v, &n) == 1 &&
			   (size_t)n == len) {
			m->time = (int64_t)v;
		}
		if (!end)
			break;
		p = end;
	}
	*mapp = ' ';
	*ret_j = strcmp(journal, "trusted") == 0  ? JOURNAL_TRUSTED
		 : strcmp(journal, "userns") == 0 ? JOURNAL_USERNS
						  : JOURNAL_HOST;
	m->userns = *ret_j == JOURNAL_USERNS;
	m->st = state_parse(m->state);
	if (m->st == SK_STATE_UNKNOWN)
		m->st = SK_STATE_RUNNING;
	m->direction = direction_parse(m->dir);
	m->policy = policy_parse(m->unmapped);
	m->map = strdup(mapp + 5);
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
	return m->st != SK_STATE_DONE && m->st != SK_STATE_UNDONE;
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
		      enum sk_state state)
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
		     " dir=%s unmapped=%s cleanup=%d%s time=%lld map=%s",
		     sk_state_name(state), e->journal.gen,
		     (e->opts->flags & SHIFT_REVERSE) ? "reverse" : "forward",
		     sk_marker_policy(e->opts->unmapped), e->cleanup ? 1 : 0,
		     fields[j], (long long)time(NULL), e->marker_map);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	if (fsetxattr(e->rootfd, name, buf, (size_t)n, 0) < 0)
		return negative_errno();
	return 0;
}

int sk_marker_write(struct sk_engine *e, enum sk_state state)
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

/* The state and map of the marker of the tree at path; -ENODATA: none. */
static int tree_marker(const char *path, enum sk_state *ret_state,
		       char **ret_map)
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
	*ret_state = m.st;
	if (ret_map)
		*ret_map = m.map;
	else
		free(m.map);
	return 0;
}

int shift_tree_marker(const char *path, char **ret_state, char **ret_map)
{
	enum sk_state st;
	char *map = NULL;
	int r;

	r = tree_marker(path, &st, ret_map ? &map : NULL);
	if (r < 0)
		return r;
	if (ret_state) {
		*ret_state = strdup(sk_state_name(st));
		if (!*ret_state) {
			free(map);
			return -ENOMEM;
		}
	}
	if (ret_map)
		*ret_map = map;
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

/*
 * The run holding the tree's lock (sk_shift_tree() flocks the root: a
 * real run exclusively, a dry run shared): its pid from /proc/locks,
 * which lists every flock with the inode's device and number.  The
 * device there is the superblock's, which is not what stat shows on
 * Btrfs (a subvolume's anonymous device): the inode number alone is
 * taken when no line matches both.  1 and *ret_pid when held, 0 when not
 * (or when /proc is not mounted).
 */
int sk_tree_locker(int fd, pid_t *ret_pid)
{
	_cleanup_fclose_ FILE *f = NULL;
	pid_t by_ino = 0, exact = 0;
	char line[256];
	struct stat sb;

	/* Not by trying the lock: even a shared probe would make a run
	 * starting at that moment fail as if another one were running. */
	*ret_pid = 0;
	if (fstat(fd, &sb) < 0)
		return negative_errno();
	f = fopen("/proc/locks", "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno();
	while (fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		char type[16], kind[16], mode[16];
		int pid;

		if (strstr(line, "->"))
			continue; /* a blocked waiter */
		if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%llu", type,
			   kind, mode, &pid, &maj, &min, &ino) != 7 ||
		    strcmp(type, "FLOCK") != 0 ||
		    ino != (unsigned long long)sb.st_ino || pid == getpid())
			continue;
		if (makedev(maj, min) == sb.st_dev && !exact)
			exact = pid;
		else if (!by_ino)
			by_ino = pid;
	}
	*ret_pid = exact ? exact : by_ino;
	return *ret_pid ? 1 : 0;
}

int shift_tree_status(const char *path, struct shift_tree_status *ret)
{
	_cleanup_close_ int fd = -EBADF;
	struct sk_marker m;
	char name[32];
	int r;

	if (!path || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = marker_read(fd, name, sizeof(name), &m, false);
	if (r < 0)
		return r;
	if (!m.found)
		return -ENODATA;
	snprintf(ret->state, sizeof(ret->state), "%s", sk_state_name(m.st));
	snprintf(ret->direction, sizeof(ret->direction), "%s", m.dir);
	snprintf(ret->unmapped, sizeof(ret->unmapped), "%s", m.unmapped);
	snprintf(ret->xattr, sizeof(ret->xattr), "%s", name);
	ret->generation = m.gen;
	ret->time = m.time;
	ret->userns = m.userns;
	ret->map = m.map;
	r = sk_tree_locker(fd, &ret->pid);
	if (r < 0)
		ret->pid = 0;
	return 0;
}

void shift_tree_status_clear(struct shift_tree_status *st)
{
	if (!st)
		return;
	free(st->map);
	st->map = NULL;
}

int shift_tree_locker(const char *path, pid_t *ret_pid)
{
	_cleanup_close_ int fd = -EBADF;

	if (!path || !ret_pid)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	return sk_tree_locker(fd, ret_pid);
}

/* ------------------------------------------------------------------ */
/* Was a mount source shifted in place? (shift-mount asks first)       */

void shift_source_marker_clear(struct shift_source_marker *m)
{
	if (!m)
		return;
	free(m->root);
	free(m->state);
	free(m->map);
	*m = (struct shift_source_marker){0};
}

static int marker_state_of(enum sk_state state, const char *mapstr,
			   const struct shift_idmap *map)
{
	struct shift_idmap *m;
	bool same;

	if (state == SK_STATE_UNDONE)
		return SHIFT_SOURCE_UNSHIFTED;
	/* Only a finished shift is known to hold the map's ids; running,
	 * cleanup and any state this version does not know mean "changing
	 * or left half-way": its ids are neither the original nor the
	 * shifted ones. */
	if (state != SK_STATE_DONE)
		return SHIFT_SOURCE_UNFINISHED;
	m = shift_idmap_new();
	if (!m)
		return -ENOMEM;
	same = mapstr && shift_idmap_parse(m, mapstr, NULL) == 0 &&
	       shift_idmap_equal(m, map);
	shift_idmap_free(m);
	return same ? SHIFT_SOURCE_SHIFTED : SHIFT_SOURCE_OTHER_MAP;
}

int shift_tree_source_state(const char *path, const struct shift_idmap *map,
			     struct shift_source_marker *ret)
{
	_cleanup_free_ char *cur = NULL;
	struct shift_source_marker m = {0};
	enum sk_state st;
	struct statx stx;
	uint64_t mnt_id = 0;
	bool have_id = false;
	int r;

	if (!path || !map || !ret)
		return -EINVAL;
	*ret = (struct shift_source_marker){0};
	cur = realpath(path, NULL);
	if (!cur)
		return negative_errno();
	if (statx(AT_FDCWD, cur, AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) < 0)
		return negative_errno();
	if (stx.stx_mask & STATX_MNT_ID) {
		mnt_id = stx.stx_mnt_id;
		have_id = true;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		/* A file: the tree it lies in. */
		char *slash = strrchr(cur, '/');

		if (slash == cur)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
	}
	/*
	 * The engine shifts a whole tree on one mount and marks its root
	 * only: a directory below a shifted root is shifted too.  So the
	 * nearest marker on the way up to the root of the mount decides.
	 */
	for (;;) {
		char *slash;

		r = tree_marker(cur, &st, &m.map);
		if (r == 0) {
			m.state = strdup(sk_state_name(st));
			r = m.state ? marker_state_of(st, m.map, map) : -ENOMEM;
			if (r < 0) {
				shift_source_marker_clear(&m);
				return r;
			}
			m.root = TAKE_PTR(cur);
			*ret = m;
			return r;
		}
		if (r != -ENODATA && r != -EOPNOTSUPP) {
			sk_debug("Failed to read the marker of '%s': %s", cur,
				 strerror(-r));
			return r;
		}
		r = shift_mount_is_mountpoint(AT_FDCWD, cur);
		if (r < 0)
			return r;
		if (r > 0 || strcmp(cur, "/") == 0)
			return SHIFT_SOURCE_UNSHIFTED;
		slash = strrchr(cur, '/');
		if (!slash)
			return SHIFT_SOURCE_UNSHIFTED;
		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
		/* Belt and braces: never look past the source's mount. */
		if (have_id && (statx(AT_FDCWD, cur, AT_NO_AUTOMOUNT,
				      STATX_MNT_ID, &stx) < 0 ||
				!(stx.stx_mask & STATX_MNT_ID) ||
				stx.stx_mnt_id != mnt_id))
			return SHIFT_SOURCE_UNSHIFTED;
	}
}
