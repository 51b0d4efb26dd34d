/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One tar entry's plan (sk_layer_plan_entry): what the header alone says
 * to do with it, in each mode and with each flag, before any file system
 * is touched.  The steps themselves run in fs-tests/layer.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "oci/layer-internal.h"
#include "lib.h"

#define ROOTLESS SK_LAYER_ROOTLESS
#define NODEV SHIFT_LAYER_NO_DEVICES

struct row {
	const char *path;
	mode_t type;
	const char *hardlink;
	const char *symlink;
	unsigned major, minor;
	enum xmode mode;
	unsigned flags;
	/* expected */
	enum sk_layer_action action;
	bool content;
	const char *event; /* NULL: none */
	int err;	   /* SK_ENTRY_REFUSE */
	const char *why;   /* SK_ENTRY_REFUSE: a substring */
	const char *parent;
	const char *name;
	const char *tparent; /* SK_ENTRY_HARDLINK */
	const char *tname;
};

static const struct row rows[] = {
    /* The root. */
    {"", AE_IFDIR, .mode = XMODE_STORE, .action = SK_ENTRY_ROOT, .parent = "",
     .name = ""},
    {"", AE_IFDIR, .mode = XMODE_FLAT, .action = SK_ENTRY_ROOT, .parent = "",
     .name = ""},
    {"", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE,
     .err = -EINVAL, .why = "the root entry is not a directory"},
    {"", AE_IFREG, "x", .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE,
     .err = -EINVAL, .why = "the root entry is not a directory"},

    /* Whiteouts: decided before the type and any hard link. */
    {"a/b/.wh.c", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_WHITEOUT,
     .parent = "a/b", .name = "c"},
    {".wh.c", AE_IFREG, .mode = XMODE_FLAT, .action = SK_ENTRY_WHITEOUT,
     .parent = "", .name = "c"},
    {"a/.wh.c", AE_IFCHR, "x", .mode = XMODE_FLAT, .action = SK_ENTRY_WHITEOUT,
     .parent = "a", .name = "c"},
    {"a/.wh..wh..opq", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_OPAQUE,
     .parent = "a"},
    {".wh..wh..opq", AE_IFREG, .mode = XMODE_FLAT, .flags = ROOTLESS,
     .action = SK_ENTRY_OPAQUE, .parent = ""},
    {"a/.wh..wh.plnk", AE_IFREG, .mode = XMODE_STORE,
     .action = SK_ENTRY_IGNORE},
    {".wh..wh.aufs", AE_IFREG, .mode = XMODE_FLAT, .action = SK_ENTRY_IGNORE},
    {"a/.wh.", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE,
     .err = -EPERM, .why = "whiteout of an invalid name"},
    {"a/.wh..", AE_IFREG, .mode = XMODE_FLAT, .action = SK_ENTRY_REFUSE,
     .err = -EPERM, .why = "whiteout of an invalid name"},
    {".wh...", AE_IFREG, .mode = XMODE_FLAT, .action = SK_ENTRY_REFUSE,
     .err = -EPERM, .why = "whiteout of an invalid name"},
    /* Not whiteouts. */
    {"a/x.wh.c", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_FILE,
     .content = true, .event = "file", .parent = "a", .name = "x.wh.c"},
    {".wh", AE_IFDIR, .mode = XMODE_STORE, .action = SK_ENTRY_DIR,
     .content = true, .event = "dir", .parent = "", .name = ".wh"},

    /* Plain content. */
    {"etc/passwd", AE_IFREG, .mode = XMODE_STORE, .action = SK_ENTRY_FILE,
     .content = true, .event = "file", .parent = "etc", .name = "passwd"},
    {"etc", AE_IFDIR, .mode = XMODE_FLAT, .action = SK_ENTRY_DIR,
     .content = true, .event = "dir", .parent = "", .name = "etc"},
    {"a/b/c", AE_IFDIR, .mode = XMODE_STORE, .flags = ROOTLESS | NODEV,
     .action = SK_ENTRY_DIR, .content = true, .event = "dir", .parent = "a/b",
     .name = "c"},
    {"bin/sh", AE_IFLNK, NULL, "bash", .mode = XMODE_STORE,
     .action = SK_ENTRY_SYMLINK, .content = true, .event = "symlink",
     .parent = "bin", .name = "sh"},
    {"bin/sh", AE_IFLNK, NULL, "", .mode = XMODE_STORE,
     .action = SK_ENTRY_REFUSE, .content = true, .event = "symlink",
     .err = -EINVAL, .why = "symbolic link without a target", .parent = "bin",
     .name = "sh"},
    {"bin/sh", AE_IFLNK, NULL, NULL, .mode = XMODE_FLAT,
     .action = SK_ENTRY_REFUSE, .content = true, .event = "symlink",
     .err = -EINVAL, .why = "symbolic link without a target"},
    {"run/s", AE_IFSOCK, .mode = XMODE_FLAT, .action = SK_ENTRY_REFUSE,
     .content = true, .event = "other", .err = -EOPNOTSUPP,
     .why = "unsupported entry type", .parent = "run", .name = "s"},
    {"x", 0, .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE, .content = true,
     .event = "other", .err = -EOPNOTSUPP, .why = "unsupported entry type"},

    /* Hard links: decided before the type. */
    {"bin/b", AE_IFREG, "bin/a", .mode = XMODE_STORE,
     .action = SK_ENTRY_HARDLINK, .content = true, .event = "hardlink",
     .parent = "bin", .name = "b", .tparent = "bin", .tname = "a"},
    {"b", AE_IFCHR, "./a", .mode = XMODE_FLAT, .action = SK_ENTRY_HARDLINK,
     .content = true, .event = "hardlink", .parent = "", .name = "b",
     .tparent = "", .tname = "a"},
    {"x/b", AE_IFREG, "/etc/shadow", .mode = XMODE_STORE,
     .action = SK_ENTRY_REFUSE, .content = true, .event = "hardlink",
     .err = -EPERM, .why = "hard link target outside the root", .parent = "x",
     .name = "b"},
    {"x/b", AE_IFREG, "a/../../etc", .mode = XMODE_FLAT,
     .action = SK_ENTRY_REFUSE, .content = true, .event = "hardlink",
     .err = -EPERM, .why = "hard link target outside the root"},
    {"x/b", AE_IFREG, "", .mode = XMODE_FLAT, .action = SK_ENTRY_REFUSE,
     .content = true, .event = "hardlink", .err = -EINVAL,
     .why = "hard link target outside the root"},
    {"x/b", AE_IFREG, "./", .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE,
     .content = true, .event = "hardlink", .err = -EPERM,
     .why = "hard link to the root"},

    /* FIFOs: never devices, whatever the flags. */
    {"p", AE_IFIFO, .mode = XMODE_STORE, .flags = ROOTLESS | NODEV,
     .action = SK_ENTRY_FIFO, .content = true, .event = "fifo", .parent = "",
     .name = "p"},

    /* Devices. */
    {"dev/null", AE_IFCHR, .major = 1, .minor = 3, .mode = XMODE_STORE,
     .action = SK_ENTRY_DEVICE, .content = true, .event = "chardev",
     .parent = "dev", .name = "null"},
    {"dev/sda", AE_IFBLK, .major = 8, .mode = XMODE_FLAT,
     .action = SK_ENTRY_DEVICE, .content = true, .event = "blockdev"},
    {"dev/b0", AE_IFBLK, .mode = XMODE_FLAT, .action = SK_ENTRY_DEVICE,
     .content = true, .event = "blockdev"},
    {"dev/null", AE_IFCHR, .major = 1, .minor = 3, .mode = XMODE_STORE,
     .flags = ROOTLESS, .action = SK_ENTRY_SKIP_DEVICE, .content = true,
     .event = "chardev"},
    {"dev/null", AE_IFCHR, .major = 1, .minor = 3, .mode = XMODE_STORE,
     .flags = NODEV, .action = SK_ENTRY_REFUSE, .content = true,
     .event = "chardev", .err = -EPERM, .why = "(--no-devices)"},
    /* --no-devices wins over rootless: refused, not skipped. */
    {"dev/sda", AE_IFBLK, .major = 8, .mode = XMODE_STORE,
     .flags = ROOTLESS | NODEV, .action = SK_ENTRY_REFUSE, .content = true,
     .event = "blockdev", .err = -EPERM, .why = "(--no-devices)"},
    /* 0/0 is an overlay whiteout: refused before everything else. */
    {"w", AE_IFCHR, .mode = XMODE_STORE, .action = SK_ENTRY_REFUSE,
     .content = true, .event = "chardev", .err = -EPERM,
     .why = "0/0 character device is an overlay whiteout"},
    {"w", AE_IFCHR, .mode = XMODE_FLAT, .flags = ROOTLESS | NODEV,
     .action = SK_ENTRY_REFUSE, .content = true, .event = "chardev",
     .err = -EPERM, .why = "0/0 character device is an overlay whiteout"},
    {"w", AE_IFCHR, .minor = 1, .mode = XMODE_FLAT, .action = SK_ENTRY_DEVICE,
     .content = true, .event = "chardev"},
};

static bool check_row(const struct row *t, struct sk_layer_plan *p)
{
	struct sk_layer_entry_in in = {
	    .path = t->path,
	    .type = t->type,
	    .hardlink = t->hardlink,
	    .symlink = t->symlink,
	    .rdev = makedev(t->major, t->minor),
	    .mode = t->mode,
	    .flags = t->flags,
	};
	int failed_before = test_failed_now;

	test_failed_now = 0;
	sk_layer_plan_entry(&in, p);
	CHECK_EQ_INT(p->action, t->action);
	CHECK_EQ_INT(p->content, t->content);
	CHECK_EQ_INT(p->record, t->content && t->mode == XMODE_FLAT);
	if (t->event)
		CHECK_EQ_STR(p->event, t->event);
	else
		CHECK(!p->event);
	if (t->action == SK_ENTRY_REFUSE) {
		CHECK_EQ_INT(p->err, t->err);
		CHECK(p->why && strstr(p->why, t->why));
	} else {
		CHECK_EQ_INT(p->err, 0);
		CHECK(!p->why);
	}
	if (t->parent)
		CHECK_EQ_STR(p->parent, t->parent);
	if (t->name)
		CHECK_EQ_STR(p->name, t->name);
	if (t->action == SK_ENTRY_HARDLINK) {
		CHECK_EQ_STR(p->tparent, t->tparent);
		CHECK_EQ_STR(p->tname, t->tname);
	}
	if (t->action == SK_ENTRY_SYMLINK)
		CHECK(p->target == t->symlink);
	if (t->action == SK_ENTRY_DEVICE) {
		CHECK_EQ_INT(p->node_type,
			     t->type == AE_IFCHR ? S_IFCHR : S_IFBLK);
		CHECK(p->dev == makedev(t->major, t->minor));
	}
	if (t->action == SK_ENTRY_FIFO)
		CHECK_EQ_INT(p->node_type, S_IFIFO);
	if (test_failed_now)
		printf("#   in the row for \"%s\" (type 0%o, mode %d, flags "
		       "0x%x)\n",
		       t->path, (unsigned)t->type, (int)t->mode, t->flags);
	test_failed_now |= failed_before;
	return true;
}

TEST(plan_table)
{
	static struct sk_layer_plan p;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i], &p);
}

/* The plan's names point into its own buffers or the input's path: a
 * plan reused for the next entry keeps nothing of the last one. */
TEST(plan_reused)
{
	static struct sk_layer_plan p;
	struct sk_layer_entry_in link = {.path = "a/b",
					 .type = AE_IFREG,
					 .hardlink = "c/d/e",
					 .mode = XMODE_STORE};
	struct sk_layer_entry_in file = {
	    .path = "f", .type = AE_IFREG, .mode = XMODE_STORE};

	sk_layer_plan_entry(&link, &p);
	CHECK_EQ_INT(p.action, SK_ENTRY_HARDLINK);
	CHECK_EQ_STR(p.link, "c/d/e");
	CHECK_EQ_STR(p.tparent, "c/d");
	CHECK_EQ_STR(p.tname, "e");
	CHECK(p.name == link.path + 2);
	sk_layer_plan_entry(&file, &p);
	CHECK_EQ_INT(p.action, SK_ENTRY_FILE);
	CHECK_EQ_STR(p.parent, "");
	CHECK(p.name == file.path);
	CHECK_EQ_STR(p.link, "");
	CHECK_EQ_STR(p.tparent, "");
	CHECK(!p.target);
	CHECK_EQ_INT(p.dev, 0);
}

TEST_MAIN()
