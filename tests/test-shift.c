/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-inode function and the tree engine on real files (a temporary
 * directory under $TMPDIR or /var/tmp, which must support ACLs, trusted.*
 * and security.* xattrs: skipped otherwise).  Needs root.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shift.h"
#include "util/le.h"
#include "lib.h"

static char base[256];


static const char *p(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, name);
	return buf[i];
}

static int mkfile(const char *name, uid_t u, gid_t g, mode_t mode)
{
	int fd = open(p(name), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fchown(fd, u, g) < 0 || fchmod(fd, mode) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

static void caps_v2(unsigned char *b)
{
	memset(b, 0, 20);
	sk_put_le32(b, 0x02000001u);
	sk_put_le32(b + 4, 1u << 13);
}

static bool setup(void)
{
	const char *tmp = getenv("TMPDIR");
	unsigned char c[20];

	if (geteuid() != 0)
		return false;
	snprintf(base, sizeof(base), "%s/test-shift.XXXXXX",
		 tmp ? tmp : "/var/tmp");
	if (!mkdtemp(base))
		return false;
	/* probe the xattrs we need */
	caps_v2(c);
	if (mkfile("probe", 0, 0, 0755) < 0 ||
	    setxattr(p("probe"), "security.capability", c, 20, 0) < 0 ||
	    setxattr(p("probe"), "trusted.x", "1", 1, 0) < 0)
		return false;
	unlink(p("probe"));
	return true;
}

static void cleanup(void)
{
	char cmd[600];

	if (base[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			printf("# failed to remove %s\n", base);
	}
}

static int events;
static struct shift_event last;

static void on_event(const struct shift_event *ev, void *u)
{
	events++;
	last = *ev;
}

static int shift_path(const char *name, const char *spec, unsigned flags,
		      enum shift_unmapped pol, int open_flags)
{
	struct shift_idmap *m = map_of(spec);
	struct shift_options o = {
		.map = m, .flags = flags, .unmapped = pol, .on_event = on_event,
	};
	struct shift_inode_ctx *ctx = shift_inode_ctx_new(&o);
	int fd = open(p(name), open_flags | O_CLOEXEC);
	int r;

	CHECK(ctx != NULL);
	CHECK(fd >= 0);
	r = shift_inode(ctx, fd, NULL, name);
	close(fd);
	shift_inode_ctx_free(ctx);
	shift_idmap_free(m);
	return r;
}

TEST(inode_setuid_and_caps)
{
	unsigned char c[24];
	struct stat st;
	uint32_t root;
	ssize_t n;

	if (!setup())
		SKIP("needs root and a /var/tmp with security/trusted xattrs");
	CHECK_EQ_INT(mkfile("suid", 0, 0, 04755), 0);
	caps_v2(c);
	CHECK_EQ_INT(setxattr(p("suid"), "security.capability", c, 20, 0), 0);
	CHECK_EQ_INT(shift_path("suid", "0:100000:65536", 0, 0, O_RDONLY), 1);
	CHECK_EQ_INT(lstat(p("suid"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 100000);
	CHECK_EQ_INT(st.st_gid, 100000);
	CHECK_EQ_INT(st.st_mode & 07777, 04755);
	n = getxattr(p("suid"), "security.capability", c, sizeof(c));
	CHECK_EQ_INT(n, 24);
	CHECK_EQ_INT(shift_fcaps_rootid(c, (size_t)n, &root), 3);
	CHECK_EQ_INT(root, 100000);
	/* no progress record left behind outside the engine */
	CHECK(getxattr(p("suid"), "trusted.shiftkit.inode", c, sizeof(c)) < 0);
	/* reverse: back to v2, 0:0, setuid */
	CHECK_EQ_INT(shift_path("suid", "0:100000:65536", SHIFT_REVERSE, 0,
				O_PATH), 1);
	CHECK_EQ_INT(lstat(p("suid"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 0);
	CHECK_EQ_INT(st.st_mode & 07777, 04755);
	CHECK_EQ_INT(getxattr(p("suid"), "security.capability", c, sizeof(c)), 20);
	/* again: the v2 capability's root (0) has no image under the
	 * inverse map, as through an idmapped mount (EOVERFLOW) */
	CHECK_EQ_INT(shift_path("suid", "0:100000:65536", SHIFT_REVERSE, 0,
				O_RDONLY), -EOVERFLOW);
}

TEST(inode_symlink_not_followed)
{
	struct stat st;

	if (!base[0])
		SKIP("no scratch directory");
	CHECK_EQ_INT(mkfile("target", 0, 0, 0644), 0);
	CHECK_EQ_INT(symlink("target", p("link")), 0);
	CHECK_EQ_INT(lchown(p("link"), 1000, 1000), 0);
	CHECK_EQ_INT(shift_path("link", "0:100000:65536", 0, 0,
				O_PATH | O_NOFOLLOW), 1);
	CHECK_EQ_INT(lstat(p("link"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 101000);
	CHECK_EQ_INT(stat(p("target"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 0);
}

TEST(inode_dry_run_and_unmapped)
{
	struct stat st;

	if (!base[0])
		SKIP("no scratch directory");
	CHECK_EQ_INT(mkfile("dry", 5, 70000, 0644), 0);
	events = 0;
	CHECK_EQ_INT(shift_path("dry", "0:100000:65536", SHIFT_DRY_RUN, 0,
				O_RDONLY), 1);
	CHECK_EQ_INT(lstat(p("dry"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 5);
	CHECK_EQ_INT(events, 2); /* unmapped gid, change */
	CHECK_EQ_INT(last.type, SHIFT_EVENT_CHANGE);
	CHECK_EQ_INT(last.new_uid, 100005);
	CHECK_EQ_INT(last.new_gid, 70000);
	/* error/keep leave the unmapped gid, overflow stores 65534 */
	CHECK_EQ_INT(shift_path("dry", "0:100000:65536", 0, SHIFT_UNMAPPED_KEEP,
				O_RDONLY), 1);
	CHECK_EQ_INT(lstat(p("dry"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 100005);
	CHECK_EQ_INT(st.st_gid, 70000);
	CHECK_EQ_INT(mkfile("ovf", 5, 70000, 0644), 0);
	CHECK_EQ_INT(shift_path("ovf", "0:100000:65536", 0,
				SHIFT_UNMAPPED_OVERFLOW, O_RDONLY), 1);
	CHECK_EQ_INT(lstat(p("ovf"), &st), 0);
	CHECK_EQ_INT(st.st_gid, 65534);
}

TEST(inode_unmapped_rootid_left_alone)
{
	unsigned char c[24];
	struct stat st;

	if (!base[0])
		SKIP("no scratch directory");
	CHECK_EQ_INT(mkfile("cap", 0, 0, 0755), 0);
	caps_v2(c);
	sk_put_le32(c, 0x03000001u);
	sk_put_le32(c + 20, 5000);
	CHECK_EQ_INT(setxattr(p("cap"), "security.capability", c, 24, 0), 0);
	events = 0;
	CHECK_EQ_INT(shift_path("cap", "0:100000:1000", 0, 0, O_RDONLY),
		     -EOVERFLOW);
	CHECK_EQ_INT(lstat(p("cap"), &st), 0);
	CHECK_EQ_INT(st.st_uid, 0);
	CHECK_EQ_INT(getxattr(p("cap"), "security.capability", c, sizeof(c)), 24);
	CHECK_EQ_INT(last.type, SHIFT_EVENT_ERROR);
}

/* The marker's states and fields: incomplete after problems, time and
 * unknown fields of newer versions read, an unknown state never "done". */
TEST(tree_marker_states)
{
	static const char newer[] =
		"shiftkit 1 state=frobbing gen=2 dir=forward unmapped=error cleanup=0 time=1700000000 color=blue map=b:0:300000:10";
	struct shift_idmap *m = map_of("0:100000:65536");
	struct shift_options o = { .map = m, .engine = "sync" };
	struct shift_tree_status ts;
	struct shift_stats st;
	struct stat sb;
	pid_t pid;

	if (!base[0])
		SKIP("no scratch directory");
	CHECK_EQ_INT(mkdir(p("states"), 0755), 0);
	CHECK_EQ_INT(shift_tree_status(p("states"), &ts), -ENODATA);
	CHECK_EQ_INT(mkfile("states/bad", 70000, 3, 0644), 0);
	CHECK_EQ_INT(mkfile("states/good", 1, 2, 0644), 0);
	CHECK_EQ_INT(shift_tree(p("states"), &o, &st), 1);
	CHECK_EQ_INT(st.unmapped, 1);
	CHECK_EQ_INT(shift_tree_status(p("states"), &ts), 0);
	CHECK_EQ_STR(ts.state, "incomplete");
	CHECK_EQ_STR(ts.map, "b:0:100000:65536");
	CHECK(ts.time > 0);
	CHECK_EQ_INT(ts.pid, 0);
	shift_tree_status_clear(&ts);
	/* left whole: its mapped gid is not shifted either */
	CHECK_EQ_INT(lstat(p("states/bad"), &sb), 0);
	CHECK_EQ_INT(sb.st_gid, 3);
	CHECK_EQ_INT(shift_tree_locker(p("states"), &pid), 0);
	/* fixed: the same call finishes it */
	CHECK_EQ_INT(chown(p("states/bad"), 4, 5), 0);
	CHECK_EQ_INT(shift_tree(p("states"), &o, &st), 0);
	CHECK(st.resumed);
	CHECK_EQ_INT(lstat(p("states/bad"), &sb), 0);
	CHECK_EQ_INT(sb.st_uid, 100004);
	CHECK_EQ_INT(sb.st_gid, 100005);
	CHECK_EQ_INT(lstat(p("states/good"), &sb), 0);
	CHECK_EQ_INT(sb.st_uid, 100001);
	/* a newer version's marker: fields skipped, its state unfinished */
	CHECK_EQ_INT(setxattr(p("states"), "trusted.shiftkit.shift", newer,
			      sizeof(newer) - 1, 0), 0);
	CHECK_EQ_INT(shift_tree_status(p("states"), &ts), 0);
	CHECK_EQ_STR(ts.state, "running");
	CHECK_EQ_INT(ts.time, 1700000000);
	CHECK_EQ_STR(ts.map, "b:0:300000:10");
	shift_tree_status_clear(&ts);
	CHECK_EQ_INT(shift_tree(p("states"), &o, &st), -EBUSY);
	shift_idmap_free(m);
}

TEST(tree_marker_roundtrip)
{
	struct shift_idmap *m = map_of("0:100000:65536"), *m2 = map_of("0:200000:65536");
	struct shift_options o = { .map = m, .engine = "sync" };
	struct shift_stats st;
	char *state = NULL, *map = NULL;
	struct stat sb;

	if (!base[0])
		SKIP("no scratch directory");
	CHECK_EQ_INT(mkdir(p("tree"), 0755), 0);
	CHECK_EQ_INT(mkdir(p("tree/sub"), 0755), 0);
	CHECK_EQ_INT(mkfile("tree/sub/f", 7, 8, 02755), 0);
	CHECK_EQ_INT(link(p("tree/sub/f"), p("tree/hl")), 0);
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), 0);
	CHECK_EQ_INT(st.inodes, 3);
	CHECK_EQ_INT(st.hardlinks, 1);
	CHECK_EQ_INT(st.changed, 3);
	CHECK_EQ_INT(lstat(p("tree/hl"), &sb), 0);
	CHECK_EQ_INT(sb.st_uid, 100007);
	CHECK_EQ_INT(sb.st_mode & 07777, 02755);
	CHECK_EQ_INT(shift_tree_marker(p("tree"), &state, &map), 0);
	CHECK_EQ_STR(state, "done");
	free(state);
	free(map);
	/* again: already shifted, nothing touched */
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), 0);
	CHECK(st.already);
	/* another map: refused unless forced */
	o.map = m2;
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), -EEXIST);
	/* reverse: back, marker gone */
	o.map = m;
	o.flags = SHIFT_REVERSE;
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), 0);
	CHECK_EQ_INT(lstat(p("tree/sub/f"), &sb), 0);
	CHECK_EQ_INT(sb.st_uid, 7);
	CHECK_EQ_INT(sb.st_gid, 8);
	CHECK_EQ_INT(shift_tree_marker(p("tree"), &state, NULL), 0);
	CHECK_EQ_STR(state, "undone");
	free(state);
	/* the same undo again changes nothing */
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), 0);
	CHECK(st.already);
	CHECK_EQ_INT(lstat(p("tree/sub/f"), &sb), 0);
	CHECK_EQ_INT(sb.st_uid, 7);
	/* a pending run with another map blocks */
	CHECK_EQ_INT(setxattr(p("tree"), "trusted.shiftkit.shift",
			      "shiftkit 1 state=running gen=1 dir=forward unmapped=error cleanup=0 map=b:0:300000:10",
			      84, 0), 0);
	o.flags = 0;
	CHECK_EQ_INT(shift_tree(p("tree"), &o, &st), -EBUSY);
	shift_idmap_free(m);
	shift_idmap_free(m2);
	cleanup();
}

TEST(bad_arguments)
{
	struct shift_options o = { 0 };

	CHECK_EQ_INT(shift_tree("/", &o, NULL), -EINVAL);
	CHECK(shift_inode_ctx_new(&o) == NULL);
	CHECK_EQ_INT(shift_inode(NULL, 0, NULL, NULL), -EINVAL);
}

TEST_MAIN()
