/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The mount table: the one reader of /proc/PID/mountinfo in libshift.
 *
 * A line is "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] -
 * FSTYPE SOURCE SUPER-OPTIONS"; no field holds a space (the kernel writes
 * space, tab, newline and backslash as \ooo).  Iteration and field
 * splitting are done here rather than through libmount's table, for two
 * reasons recorded in docs/design.md: re-assembling an overlay needs the
 * super options raw (libmount 2.38 unescapes them as a whole, and then a
 * ',' inside a layer path can't be told from the separator), and
 * shift-mountd's worker reads the mountinfo of its own private namespace
 * through an fd it opened before, not by path.  libmount still parses
 * option strings (mnt_optstr_get_option) where an option is looked up.
 */
#include "config.h"

#include <fcntl.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "mount/mount-internal.h"

char *sk_unescape_octal(const char *s, size_t len)
{
	char *out = malloc(len + 1), *w = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' &&
		    s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
		    s[i + 3] >= '0' && s[i + 3] <= '7') {
			*w++ = (char)((s[i + 1] - '0') << 6 |
				      (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
			i += 3;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	return out;
}

void sk_mountinfo_clear(struct sk_mountinfo *mi)
{
	if (!mi)
		return;
	free(mi->root);
	free(mi->target);
	free(mi->fstype);
	free(mi->vfs_options);
	free(mi->super_raw);
	free(mi->optional);
	*mi = (struct sk_mountinfo){0};
}

/* One line (modified in place) into mi; -EBADMSG when it isn't one. */
static int parse_line(char *line, struct sk_mountinfo *mi)
{
	char *field[64], *save = NULL, *tok;
	unsigned long long id, parent;
	unsigned maj, min;
	size_t n = 0, dash, optlen = 0;

	line[strcspn(line, "\n")] = '\0';
	for (tok = strtok_r(line, " ", &save); tok && n < ARRAY_SIZE(field);
	     tok = strtok_r(NULL, " ", &save))
		field[n++] = tok;
	for (dash = 6; dash < n && strcmp(field[dash], "-"); dash++)
		;
	if (n < 6 || dash + 3 >= n || sscanf(field[0], "%llu", &id) != 1 ||
	    sscanf(field[1], "%llu", &parent) != 1 ||
	    sscanf(field[2], "%u:%u", &maj, &min) != 2)
		return -EBADMSG;
	*mi = (struct sk_mountinfo){
	    .id = id, .parent = parent, .devno = makedev(maj, min)};
	for (size_t i = 6; i < dash; i++)
		optlen += strlen(field[i]) + 1;
	mi->root = sk_unescape_octal(field[3], strlen(field[3]));
	mi->target = sk_unescape_octal(field[4], strlen(field[4]));
	mi->vfs_options = strdup(field[5]);
	mi->fstype = strdup(field[dash + 1]);
	mi->super_raw = strdup(field[dash + 3]);
	mi->optional = calloc(1, optlen + 1);
	if (!mi->root || !mi->target || !mi->vfs_options || !mi->fstype ||
	    !mi->super_raw || !mi->optional) {
		sk_mountinfo_clear(mi);
		return -ENOMEM;
	}
	for (size_t i = 6; i < dash; i++) {
		if (i > 6)
			strcat(mi->optional, " ");
		strcat(mi->optional, field[i]);
	}
	return 0;
}

int sk_mountinfo_foreach_fd(int fd, sk_mountinfo_fn fn, void *userdata)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int dfd, r;

	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return negative_errno();
	f = fdopen(dfd, "re");
	if (!f) {
		safe_close(dfd);
		return negative_errno();
	}
	while (getline(&line, &cap, f) > 0) {
		struct sk_mountinfo mi;

		r = parse_line(line, &mi);
		if (r == -EBADMSG)
			continue;
		if (r < 0)
			return r;
		r = fn(&mi, userdata);
		sk_mountinfo_clear(&mi);
		if (r != 0)
			return r;
	}
	return ferror(f) ? -EIO : 0;
}

int sk_mountinfo_foreach(const char *path, sk_mountinfo_fn fn, void *userdata)
{
	_cleanup_close_ int fd =
	    open(path ? path : "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	return sk_mountinfo_foreach_fd(fd, fn, userdata);
}

struct by_id {
	uint64_t id;
	struct sk_mountinfo *ret;
};

static int take_if_id(const struct sk_mountinfo *mi, void *userdata)
{
	struct by_id *b = userdata;

	if (mi->id != b->id)
		return 0;
	/* Hand the strings over: the caller clears them. */
	*b->ret = *mi;
	*(struct sk_mountinfo *)mi = (struct sk_mountinfo){0};
	return 1;
}

int sk_mountinfo_by_id(uint64_t id, struct sk_mountinfo *ret)
{
	struct by_id b = {.id = id, .ret = ret};
	int r;

	*ret = (struct sk_mountinfo){0};
	r = sk_mountinfo_foreach(NULL, take_if_id, &b);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -ENOENT;
}

bool sk_mount_option_has(const char *optstr, const char *name)
{
	return optstr && mnt_optstr_get_option(optstr, name, NULL, NULL) == 0;
}

const char *sk_fstype_by_magic(unsigned long magic)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} names[] = {
	    {0xEF53, "ext4"},	     {0x58465342, "xfs"},
	    {0x9123683E, "btrfs"},   {0x01021994, "tmpfs"},
	    {0x794c7630, "overlay"}, {0x73717368, "squashfs"},
	    {0xE0F5E1E2, "erofs"},   {0x858458f6, "ramfs"},
	    {0x6969, "nfs"},	     {0x65735546, "fuse"},
	    {0x4d44, "vfat"},	     {0xF2F52010, "f2fs"},
	    {0x2fc12fc1, "zfs"},     {0x9fa0, "proc"},
	    {0x62656572, "sysfs"},   {0x1373, "devfs"},
	    {0x63677270, "cgroup2"}, {0x27e0eb, "cgroup"},
	    {0x1cd1, "devpts"},	     {0x2011bab0, "exfat"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (magic == names[i].magic)
			return names[i].name;
	return NULL;
}

struct clone_facts {
	uint64_t id;
	bool found;
	struct shift_mountd_clone_facts *ret;
};

static int note_clone(const struct sk_mountinfo *mi, void *userdata)
{
	struct clone_facts *c = userdata;

	if (mi->id == c->id) {
		c->found = true;
		c->ret->idmapped =
		    sk_mount_option_has(mi->vfs_options, "idmapped");
		snprintf(c->ret->fstype, sizeof(c->ret->fstype), "%s",
			 mi->fstype[0] ? mi->fstype : "?");
	} else if (mi->parent == c->id) {
		c->ret->submounts = true;
	}
	return 0;
}

int shift_mountd_clone_facts(int mountinfo_fd, uint64_t mnt_id,
			     struct shift_mountd_clone_facts *ret)
{
	struct clone_facts c = {.id = mnt_id, .ret = ret};
	int r;

	if (mountinfo_fd < 0 || !ret)
		return -EINVAL;
	*ret = (struct shift_mountd_clone_facts){0};
	r = sk_mountinfo_foreach_fd(mountinfo_fd, note_clone, &c);
	if (r < 0)
		return r;
	return c.found ? 0 : -ENOENT;
}
