/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-mountd's policy (docs/security-mountd.md) as one pure function of
 * kernel facts, and its configuration file.  Nothing here reads a file,
 * a socket or the message: the daemon gathers the facts, this decides.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

/* Magic numbers no uapi header defines (the others: util/syscalls.h). */
#define CONFIGFS_MAGIC_ 0x62656570
#define FUSECTL_MAGIC_ 0x65735543
#define MQUEUE_MAGIC_ 0x19800202

static const struct {
	int64_t magic;
	const char *name;
} pseudo[] = {
    {PROC_SUPER_MAGIC, "proc"},	    {SYSFS_MAGIC, "sysfs"},
    {CGROUP_SUPER_MAGIC, "cgroup"}, {CGROUP2_SUPER_MAGIC, "cgroup2"},
    {DEVPTS_SUPER_MAGIC, "devpts"}, {DEBUGFS_MAGIC, "debugfs"},
    {TRACEFS_MAGIC, "tracefs"},	    {SECURITYFS_MAGIC, "securityfs"},
    {BPF_FS_MAGIC, "bpf"},	    {CONFIGFS_MAGIC_, "configfs"},
    {EFIVARFS_MAGIC, "efivarfs"},   {PSTOREFS_MAGIC, "pstore"},
    {MQUEUE_MAGIC_, "mqueue"},	    {NSFS_MAGIC, "nsfs"},
    {PIDFS_MAGIC, "pidfs"},	    {PIPEFS_MAGIC, "pipefs"},
    {SOCKFS_MAGIC, "sockfs"},	    {BINFMTFS_MAGIC, "binfmt_misc"},
    {AUTOFS_SUPER_MAGIC, "autofs"}, {FUSECTL_MAGIC_, "fusectl"},
    {SELINUX_MAGIC, "selinuxfs"},   {SMACK_MAGIC, "smackfs"},
    {HUGETLBFS_MAGIC, "hugetlbfs"}, {ANON_INODE_FS_MAGIC, "anon_inodefs"},
};

const char *shift_mountd_pseudo_fs(int64_t fs_type)
{
	for (size_t i = 0; i < ARRAY_SIZE(pseudo); i++)
		if (pseudo[i].magic == fs_type)
			return pseudo[i].name;
	return NULL;
}

static int refuse(int r, struct shift_error *err, const char *fmt, ...)
    _printf_(3, 4);
static int refuse(int r, struct shift_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sk_error_setv(err, r, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * The first id of [lo, lo+count) the caller does not own, or -1 when it
 * owns them all: its own id, its delegation (the seen side of subid) and,
 * for on-disk ids when allowed, the foreign range.  Delegation lines may
 * be adjacent, so coverage is walked range by range.
 */
static int64_t first_unowned(const struct shift_mountd_caller *c,
			     enum shift_id_kind kind, uint64_t lo,
			     uint64_t count, bool disk)
{
	uint64_t pos = lo, end = lo + count;
	uint32_t own = kind == SHIFT_UID ? c->uid : c->gid;

	while (pos < end) {
		uint64_t next = pos;

		if (pos == own)
			next = pos + 1;
		if (disk && c->foreign_range && pos >= SHIFT_FOREIGN_UID_BASE &&
		    pos < (uint64_t)SHIFT_FOREIGN_UID_BASE +
			      SHIFT_FOREIGN_UID_COUNT)
			next = (uint64_t)SHIFT_FOREIGN_UID_BASE +
			       SHIFT_FOREIGN_UID_COUNT;
		if (c->subid) {
			unsigned n = shift_idmap_count(c->subid, kind);

			for (unsigned i = 0; i < n && next == pos; i++) {
				struct shift_extent e;

				if (shift_idmap_extent(c->subid, kind, i, &e) <
				    0)
					continue;
				if (pos >= e.seen &&
				    pos < (uint64_t)e.seen + e.count)
					next = (uint64_t)e.seen + e.count;
			}
		}
		if (next == pos)
			return (int64_t)pos;
		pos = next;
	}
	return -1;
}

static bool owns(const struct shift_mountd_caller *c, enum shift_id_kind kind,
		 uint32_t id, bool disk)
{
	return id != 0 && first_unowned(c, kind, id, 1, disk) < 0;
}

int shift_mountd_policy(const struct shift_mountd_caller *c,
			const struct shift_idmap *map,
			const struct shift_mountd_source *s,
			struct shift_error *why)
{
	const char *fs;

	if (!S_ISDIR(s->mode))
		return refuse(-ENOTDIR, why,
			      "the source is not a directory");
	fs = shift_mountd_pseudo_fs(s->fs_type);
	if (fs)
		return refuse(-EPERM, why,
			      "the source is on a '%s' filesystem, a kernel "
			      "interface the service never idmaps",
			      fs);
	if (s->idmapped)
		return refuse(-EPERM, why,
			      "the source is already an idmapped mount (ask "
			      "for a mount of the directory it shows)");
	if (s->submounts)
		return refuse(-EPERM, why,
			      "the source has mounts below it (the service "
			      "clones exactly one mount, non-recursively: ask "
			      "for each mount separately)");
	if (!owns(c, SHIFT_UID, s->uid, true))
		return refuse(-EPERM, why,
			      "the source directory is owned by uid %" PRIu32
			      ", which is neither yours (%" PRIu32
			      ") nor in your /etc/subuid delegation",
			      s->uid, c->uid);

	for (unsigned k = 0; k < 2; k++) {
		enum shift_id_kind kind = (enum shift_id_kind)k;
		const char *kn = kind == SHIFT_UID ? "uid" : "gid";
		unsigned n = shift_idmap_count(map, kind);

		if (n == 0)
			return refuse(-EPERM, why,
				      "the map has no %s extent (both kinds "
				      "are required)",
				      kn);
		for (unsigned i = 0; i < n; i++) {
			struct shift_extent e;
			int64_t bad;

			if (shift_idmap_extent(map, kind, i, &e) < 0)
				return refuse(-EINVAL, why,
					      "the map can't be read");
			if (e.disk == 0 || e.seen == 0)
				return refuse(
				    -EPERM, why,
				    "the map's %s side of %s extent %" PRIu32
				    ":%" PRIu32 ":%" PRIu32
				    " contains host %s 0 (the service never "
				    "maps host root)",
				    e.disk == 0 ? "on-disk" : "seen", kn,
				    e.disk, e.seen, e.count, kn);
			bad = first_unowned(c, kind, e.disk, e.count, true);
			if (bad >= 0)
				return refuse(
				    -EPERM, why,
				    "the map's on-disk %s %" PRId64
				    " is not yours (neither your %s %" PRIu32
				    " nor in your /etc/sub%s delegation)",
				    kn, bad, kn,
				    kind == SHIFT_UID ? c->uid : c->gid, kn);
			bad = first_unowned(c, kind, e.seen, e.count, false);
			if (bad >= 0)
				return refuse(
				    -EPERM, why,
				    "the map's seen %s %" PRId64
				    " is not yours (neither your %s %" PRIu32
				    " nor in your /etc/sub%s delegation)",
				    kn, bad, kn,
				    kind == SHIFT_UID ? c->uid : c->gid, kn);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* mountd.conf                                                         */
/* ------------------------------------------------------------------ */

void shift_mountd_conf_done(struct shift_mountd_conf *c)
{
	for (char **p = c->users; p && *p; p++)
		free(*p);
	for (char **p = c->groups; p && *p; p++)
		free(*p);
	free(c->users);
	free(c->groups);
	c->users = c->groups = NULL;
}

static char **split_list(const char *v)
{
	char *dup = strdup(v), **list, *tok, *save = NULL;
	size_t n = 0;

	if (!dup)
		return NULL;
	list = calloc(strlen(v) / 2 + 2, sizeof(*list));
	if (!list) {
		free(dup);
		return NULL;
	}
	for (tok = strtok_r(dup, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save)) {
		list[n] = strdup(tok);
		if (!list[n]) {
			while (n)
				free(list[--n]);
			free(list);
			free(dup);
			return NULL;
		}
		n++;
	}
	free(dup);
	return list;
}

static int conf_bool(const char *v, bool *ret)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true"))
		*ret = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

static int conf_uint(const char *v, unsigned lo, unsigned hi, unsigned *ret)
{
	char *end;
	unsigned long u;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	u = strtoul(v, &end, 10);
	if (errno || *end || u < lo || u > hi)
		return -EINVAL;
	*ret = (unsigned)u;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int shift_mountd_conf_parse(const char *text, struct shift_mountd_conf *c,
			    struct shift_error *err)
{
	static const char *const keys[] = {
	    "allow-users",  "allow-groups",	     "foreign-range",
	    "force-nosuid", "max-requests-per-user", "max-requests",
	    "timeout",
	};
	_cleanup_free_ char *dup = NULL;
	bool seen[ARRAY_SIZE(keys)] = {false};
	char *line, *save = NULL;
	unsigned lineno = 0;
	int r = 0;

	*c = (struct shift_mountd_conf){
	    .max_per_user = 8,
	    .max_requests = 64,
	    .timeout = 10,
	};
	c->users = split_list("*");
	c->groups = split_list("");
	if (!c->users || !c->groups) {
		shift_mountd_conf_done(c);
		return -ENOMEM;
	}
	if (!text)
		return 0;
	dup = strdup(text);
	if (!dup) {
		shift_mountd_conf_done(c);
		return -ENOMEM;
	}
	/* strsep keeps empty lines, so line numbers stay right. */
	save = dup;
	while ((line = strsep(&save, "\n"))) {
		char *eq, *key, *val;
		size_t k;

		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			r = refuse(-EINVAL, err,
				   "line %u: expected KEY = VALUE", lineno);
			break;
		}
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (!strcmp(key, keys[k]))
				break;
		if (k == ARRAY_SIZE(keys)) {
			_cleanup_free_ char *e = shift_escape(key);

			r = refuse(-EINVAL, err,
				   "line %u: unknown key '%s'", lineno,
				   e ? e : "?");
			break;
		}
		if (seen[k]) {
			r = refuse(-EINVAL, err,
				   "line %u: '%s' given twice", lineno, key);
			break;
		}
		seen[k] = true;
		switch (k) {
		case 0:
		case 1: {
			char **list = split_list(val), ***dst;

			if (!list) {
				r = -ENOMEM;
				break;
			}
			dst = k == 0 ? &c->users : &c->groups;
			for (char **p = *dst; *p; p++)
				free(*p);
			free(*dst);
			*dst = list;
			break;
		}
		case 2:
			r = conf_bool(val, &c->foreign_range);
			break;
		case 3:
			r = conf_bool(val, &c->force_nosuid);
			break;
		case 4:
			r = conf_uint(val, 1, 1024, &c->max_per_user);
			break;
		case 5:
			r = conf_uint(val, 1, 4096, &c->max_requests);
			break;
		case 6:
			r = conf_uint(val, 1, 3600, &c->timeout);
			break;
		}
		if (r == -EINVAL) {
			_cleanup_free_ char *e = shift_escape(val);

			refuse(r, err,
			       "line %u: invalid value '%s' for '%s'%s", lineno,
			       e ? e : "?", key,
			       k == 2 || k == 3 ? " (use yes or no)"
			       : k >= 4		? " (a number in range)"
						: "");
		}
		if (r < 0)
			break;
	}
	if (r < 0)
		shift_mountd_conf_done(c);
	return r;
}
