/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: one tar entry: whiteouts, files, directories, links, devices.
 * (libshift/oci/layer-internal.h has the shared context; the whole
 * design is at the top of layer-internal.h and in docs/oci.md.)
 */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>

#include "oci/layer-internal.h"
#include "util/syscalls.h"

/* ------------------------------------------------------------------ */
/* Entries                                                             */

/*
 * The entry's data into fd.  The archive's declared size is trusted only
 * as far as the data bears it out: a plain file must get exactly that many
 * bytes (fewer means a corrupt header, e.g. the old GNU "realsize" field
 * that libarchive < 3.8 takes for the size of any entry: Go's nil-uid.tar
 * would be zero-padded to 2176 bytes instead of its 14), and a sparse
 * file's data blocks must lie within it; only a sparse file may end in a
 * hole, which ftruncate() makes.
 */
static int write_data(struct xctx *x, struct archive *a, int fd,
		      struct archive_entry *e)
{
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	bool sparse = archive_entry_sparse_count(e) > 0;
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	int r;

	if (size < 0)
		return sk_layer_fail(x, -EBADMSG, x->path,
				     "corrupt archive (negative file size)");
	for (;;) {
		r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return sk_layer_fail(x, -EBADMSG, x->path,
					     "corrupt or truncated archive");
		if (off < 0 || (uint64_t)off + len > (uint64_t)size)
			return sk_layer_fail(
			    x, -EBADMSG, x->path,
			    "corrupt archive (file data beyond the size its "
			    "header declares)");
		if (x->cancel && *x->cancel)
			return sk_layer_fail(x, -ECANCELED, x->path,
					     "interrupted");
		if (fd < 0) { /* a dry run: checked, not written */
			off += (la_int64_t)len;
			len = 0;
		}
		while (len > 0) {
			ssize_t n = pwrite(fd, buf, len, off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return sk_layer_fail(
				    x, n < 0 ? negative_errno() : -EIO, x->path,
				    "cannot write the file");
			buf = (const char *)buf + n;
			len -= (size_t)n;
			off += n;
		}
		if (off > end)
			end = off;
	}
	if (end < size && !sparse)
		return sk_layer_fail(
		    x, -EBADMSG, x->path,
		    "corrupt archive (the file's data is shorter than the size "
		    "its header declares)");
	/* A sparse file may end in a hole. */
	if (size > end && fd >= 0 && ftruncate(fd, size) < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot write the file");
	return 0;
}

/* ------------------------------------------------------------------ */
/* The plan: what to do with one entry, decided from its header alone. */

static void split_path(const char *path, char *parent, const char **name)
{
	const char *slash = strrchr(path, '/');

	if (slash) {
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		*name = slash + 1;
	} else {
		parent[0] = '\0';
		*name = path;
	}
}

static void plan_refuse(struct sk_layer_plan *p, int err, const char *why)
{
	p->action = SK_ENTRY_REFUSE;
	p->err = err;
	p->why = why;
}

/* p->name is ".wh.something". */
static void plan_whiteout(struct sk_layer_plan *p)
{
	const char *victim = p->name + strlen(WH_PREFIX);

	if (!strcmp(p->name, WH_OPAQUE)) {
		p->action = SK_ENTRY_OPAQUE;
		return;
	}
	if (!strncmp(p->name, WH_META, strlen(WH_META))) {
		p->action = SK_ENTRY_IGNORE;
		return;
	}
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")) {
		plan_refuse(p, -EPERM, "whiteout of an invalid name");
		return;
	}
	p->action = SK_ENTRY_WHITEOUT;
	p->name = victim;
}

/* A device node or a FIFO (type is one of AE_IFCHR, AE_IFBLK, AE_IFIFO). */
static void plan_node(const struct sk_layer_entry_in *in,
		      struct sk_layer_plan *p)
{
	p->node_type = in->type == AE_IFCHR   ? S_IFCHR
		       : in->type == AE_IFBLK ? S_IFBLK
					      : S_IFIFO;
	if (in->type == AE_IFIFO) {
		p->action = SK_ENTRY_FIFO;
		return;
	}
	p->dev = in->rdev;
	if (in->type == AE_IFCHR && in->rdev == makedev(0, 0)) {
		plan_refuse(p, -EPERM,
			    "a 0/0 character device is an overlay whiteout, "
			    "not content (refusing it)");
		return;
	}
	if (in->flags & SHIFT_LAYER_NO_DEVICES) {
		plan_refuse(p, -EPERM,
			    "device nodes are not allowed (--no-devices)");
		return;
	}
	/*
	 * A normal user's store: the kernel lets no user namespace make a
	 * device node (a 0/0 whiteout only), and an image's /dev is the
	 * runtime's to fill.  Skipped, with an event the caller counts and
	 * warns about, rather than failing the image.
	 */
	if (in->flags & SK_LAYER_ROOTLESS) {
		p->action = SK_ENTRY_SKIP_DEVICE;
		return;
	}
	p->action = SK_ENTRY_DEVICE;
}

void sk_layer_plan_entry(const struct sk_layer_entry_in *in,
			 struct sk_layer_plan *p)
{
	const char *why = NULL;
	int r;

	p->action = SK_ENTRY_REFUSE;
	p->content = false;
	p->record = false;
	p->event = NULL;
	p->err = 0;
	p->why = NULL;
	p->parent[0] = '\0';
	p->name = in->path;
	p->link[0] = '\0';
	p->tparent[0] = '\0';
	p->tname = p->link;
	p->target = NULL;
	p->node_type = 0;
	p->dev = 0;

	if (!*in->path) {
		/* The root itself: only its metadata. */
		if (in->type != AE_IFDIR)
			plan_refuse(p, -EINVAL,
				    "the root entry is not a directory");
		else
			p->action = SK_ENTRY_ROOT;
		return;
	}
	split_path(in->path, p->parent, &p->name);
	if (!strncmp(p->name, WH_PREFIX, strlen(WH_PREFIX))) {
		plan_whiteout(p);
		return;
	}

	p->content = true;
	p->record = in->mode == XMODE_FLAT;
	if (in->hardlink) {
		p->event = "hardlink";
		r = sk_layer_path_normalise(in->hardlink, p->link,
					    sizeof(p->link), &why);
		if (r < 0 || !*p->link) {
			plan_refuse(p, r < 0 ? r : -EPERM,
				    r < 0 ? "hard link target outside the root"
					  : "hard link to the root");
			return;
		}
		split_path(p->link, p->tparent, &p->tname);
		p->action = SK_ENTRY_HARDLINK;
		return;
	}
	p->event = in->type == AE_IFREG	  ? "file"
		   : in->type == AE_IFDIR ? "dir"
		   : in->type == AE_IFLNK ? "symlink"
		   : in->type == AE_IFIFO ? "fifo"
		   : in->type == AE_IFCHR ? "chardev"
		   : in->type == AE_IFBLK ? "blockdev"
					  : "other";
	switch (in->type) {
	case AE_IFREG:
		p->action = SK_ENTRY_FILE;
		break;
	case AE_IFDIR:
		p->action = SK_ENTRY_DIR;
		break;
	case AE_IFLNK:
		if (!in->symlink || !*in->symlink) {
			plan_refuse(p, -EINVAL,
				    "symbolic link without a target");
			break;
		}
		p->action = SK_ENTRY_SYMLINK;
		p->target = in->symlink;
		break;
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		plan_node(in, p);
		break;
	default:
		plan_refuse(
		    p, -EOPNOTSUPP,
		    "unsupported entry type (sockets cannot be extracted)");
		break;
	}
}

/* ------------------------------------------------------------------ */
/* The steps: one per action.                                          */

/* The root entry: its metadata on the root. */
static int do_root(struct xctx *x, struct archive_entry *e)
{
	_cleanup_close_ int fd = -EBADF;
	int r;

	sk_layer_emit(x, "dir", 0);
	if (sk_layer_dry(x))
		return sk_layer_apply_meta(x, e, -EBADF, -EBADF, NULL, true);
	fd = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return negative_errno();
	if (x->mode == XMODE_FLAT &&
	    (r = sk_strset_add(&x->layer_paths, "")) < 0)
		return r;
	if (x->mode == XMODE_FLAT &&
	    (r = sk_layer_drop_lower_xattrs(x, fd)) < 0)
		return sk_layer_fail(x, r, ".",
				     "cannot remove a lower layer's "
				     "extended attributes");
	return sk_layer_apply_meta(x, e, fd, -EBADF, NULL, true);
}

/*
 * A whiteout ".wh.NAME": NAME in the parent.  (Not inlined, as it was not
 * before the plan: inlined, gcc sees the plan's PATH_MAX buffers and warns
 * that parent + "/" + name might not fit victim_path, which it never
 * does: it is a part of the entry's path, itself shorter than PATH_MAX.)
 */
__attribute__((noinline)) static int
do_whiteout(struct xctx *x, const char *parent, const char *name)
{
	char victim_path[PATH_MAX];
	bool kept;
	int pfd, r;

	sk_layer_emit(x, "whiteout", 0);
	if (sk_layer_dry(x))
		return 0;

	if (x->mode == XMODE_STORE) {
		pfd = sk_layer_open_parent(x, parent, true, x->path);
		if (pfd < 0)
			return pfd;
		r = sk_layer_make_room(x, pfd, name, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
		if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot create the overlay "
					     "whiteout (needs CAP_MKNOD)");
		return 0;
	}

	/* Flat: delete what lower layers made. */
	pfd = sk_layer_open_parent(x, parent, false, x->path);
	if (pfd == -ENOENT) {
		shift_error_clear(x->diag);
		return 0;
	}
	if (pfd < 0)
		return pfd;
	snprintf(victim_path, sizeof(victim_path), "%s%s%s", parent,
		 *parent ? "/" : "", name);
	if (sk_strset_has(&x->layer_paths, victim_path))
		return 0;
	r = sk_layer_make_room(x, pfd, name, false, &kept);
	if (r < 0)
		return sk_layer_fail(x, r, x->path,
				     "cannot apply the whiteout");
	return 0;
}

/*
 * The opaque marker: the parent hides what lower layers have in it.  (Not
 * inlined: see do_whiteout().)
 */
__attribute__((noinline)) static int do_opaque(struct xctx *x,
					       const char *parent)
{
	_cleanup_closedir_ DIR *d = NULL;
	char victim_path[PATH_MAX];
	struct dirent *de;
	int pfd, fd, r;

	sk_layer_emit(x, "opaque", 0);
	if (sk_layer_dry(x))
		return 0;

	if (x->mode == XMODE_STORE) {
		pfd = sk_layer_open_parent(x, parent, true, x->path);
		if (pfd < 0)
			return pfd;
		if (x->flags & SK_LAYER_ROOTLESS) {
			/* A user namespace may set no trusted.* xattr, and
			 * its overlays read user.overlay.* ("userxattr"). */
			if (fsetxattr(pfd, OVL_OPAQUE_USER, "y", 1, 0) < 0)
				return sk_layer_fail(
				    x, negative_errno(), x->path,
				    "cannot mark the directory opaque (needs "
				    "user.* xattrs on the store's filesystem)");
			return 0;
		}
		if (fsetxattr(pfd, OVL_OPAQUE, "y", 1, 0) < 0)
			return sk_layer_fail(
			    x, negative_errno(), x->path,
			    "cannot mark the directory opaque (needs "
			    "trusted.* xattrs: root, and a filesystem "
			    "with xattrs)");
		return 0;
	}

	/* Flat: delete what lower layers made. */
	pfd = sk_layer_open_parent(x, parent, false, x->path);
	if (pfd == -ENOENT) {
		shift_error_clear(x->diag);
		return 0;
	}
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(victim_path, sizeof(victim_path), "%s%s%s", parent,
			 *parent ? "/" : "", de->d_name);
		if (sk_strset_has(&x->layer_paths, victim_path))
			continue;
		r = sk_rm_rf_at(dirfd(d), de->d_name);
		if (r < 0)
			return sk_layer_fail(
			    x, r, x->path, "cannot apply the opaque whiteout");
	}
	/* Below the parent, nothing cached is valid any more. */
	sk_layer_pcache_drop(x);
	return 0;
}

/*
 * A dry run's checks of one entry: what needs no tree (the tree-dependent
 * ones, symlinks on the way and hard link targets, can't be made without
 * building it).
 */
static int dry_entry(struct xctx *x, struct archive *a, struct archive_entry *e,
		     const struct sk_layer_plan *p)
{
	int r;

	switch (p->action) {
	case SK_ENTRY_HARDLINK:
		return 0;
	case SK_ENTRY_FILE:
		/* The data is read (sizes checked) and dropped. */
		r = write_data(x, a, -EBADF, e);
		if (r < 0)
			return r;
		break;
	case SK_ENTRY_SKIP_DEVICE:
		/* As the real unpack would: skipped, said. */
		sk_layer_emit(x, "device-skipped", 0);
		return 0;
	case SK_ENTRY_DIR:
	case SK_ENTRY_SYMLINK:
	case SK_ENTRY_DEVICE:
	case SK_ENTRY_FIFO:
		break;
	default:
		return sk_layer_fail(x, p->err, x->path, p->why);
	}
	return sk_layer_apply_meta(x, e, -EBADF, -EBADF, NULL,
				   p->action == SK_ENTRY_DIR);
}

static int do_hardlink(struct xctx *x, const struct sk_layer_plan *p, int pfd)
{
	_cleanup_close_ int tpfd = -EBADF;
	bool kept = false;
	int r;

	tpfd = sk_layer_open_beneath(x->rootfd, p->tparent,
				     O_RDONLY | O_DIRECTORY);
	if (tpfd == -ENOTDIR || tpfd == -ELOOP)
		tpfd = sk_layer_why_notdir(x->rootfd, p->tparent);
	if (tpfd < 0)
		return sk_layer_fail(
		    x, tpfd, x->path,
		    tpfd == -ELOOP ? "hard link target goes through a "
				     "symbolic link"
		    : tpfd == -ENOTDIR
			? "hard link target goes through a "
			  "non-directory"
			: "hard link target not found in the layer");
	if (!strcmp(p->link, x->path))
		return 0;
	r = sk_layer_make_room(x, pfd, p->name, false, &kept);
	if (r < 0)
		return sk_layer_fail(x, r, x->path, "cannot replace an entry");
	/* flags 0: a symlink target is linked, not followed. */
	if (linkat(tpfd, p->tname, pfd, p->name, 0) < 0)
		return sk_layer_fail(
		    x, negative_errno(), x->path,
		    errno == ENOENT ? "hard link target not found in the layer"
				    : "cannot create the hard link");
	return 0;
}

static int do_file(struct xctx *x, struct archive *a, struct archive_entry *e,
		   const struct sk_layer_plan *p, int pfd)
{
	_cleanup_close_ int fd = -EBADF;
	bool kept = false;
	int r;

	for (int tries = 0;; tries++) {
		fd = openat(pfd, p->name,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC | O_NOCTTY,
			    0600);
		if (fd >= 0 || errno != EEXIST || tries)
			break;
		r = sk_layer_make_room(x, pfd, p->name, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
	}
	if (fd < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot create the file");
	r = write_data(x, a, fd, e);
	if (r < 0)
		return r;
	return sk_layer_apply_meta(x, e, fd, pfd, p->name, false);
}

static int do_dir(struct xctx *x, struct archive_entry *e,
		  const struct sk_layer_plan *p, int pfd)
{
	_cleanup_close_ int fd = -EBADF;
	bool kept = false;
	int r;

	if (mkdirat(pfd, p->name, 0700) < 0) {
		if (errno != EEXIST)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot create the directory");
		r = sk_layer_make_room(x, pfd, p->name, true, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
		if (!kept && mkdirat(pfd, p->name, 0700) < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot create the directory");
		/* make_room may have dropped the cached parent. */
		pfd = sk_layer_open_parent(x, p->parent, false, x->path);
		if (pfd < 0)
			return pfd;
	}
	fd = openat(pfd, p->name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot open the new directory");
	if (kept && x->mode == XMODE_FLAT &&
	    (r = sk_layer_drop_lower_xattrs(x, fd)) < 0)
		return sk_layer_fail(x, r, x->path,
				     "cannot remove a lower layer's "
				     "extended attributes");
	return sk_layer_apply_meta(x, e, fd, pfd, p->name, true);
}

static int do_symlink(struct xctx *x, struct archive_entry *e,
		      const struct sk_layer_plan *p, int pfd)
{
	bool kept = false;
	int r;

	for (int tries = 0;; tries++) {
		r = symlinkat(p->target, pfd, p->name);
		if (r == 0 || errno != EEXIST || tries)
			break;
		r = sk_layer_make_room(x, pfd, p->name, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
	}
	if (r < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot create the symbolic link");
	return sk_layer_apply_meta(x, e, -EBADF, pfd, p->name, false);
}

/* A device node or a FIFO. */
static int do_node(struct xctx *x, struct archive_entry *e,
		   const struct sk_layer_plan *p, int pfd)
{
	bool kept = false;
	int r;

	for (int tries = 0;; tries++) {
		r = mknodat(pfd, p->name, p->node_type | 0600, p->dev);
		if (r == 0 || errno != EEXIST || tries)
			break;
		r = sk_layer_make_room(x, pfd, p->name, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
	}
	if (r < 0 && errno == EPERM && p->action == SK_ENTRY_DEVICE)
		return sk_layer_fail(
		    x, -EPERM, x->path,
		    "device node, and we may not create device nodes "
		    "here (unprivileged: needs CAP_MKNOD)");
	if (r < 0)
		return sk_layer_fail(x, negative_errno(), x->path,
				     "cannot create the node");
	return sk_layer_apply_meta(x, e, -EBADF, pfd, p->name, false);
}

int sk_layer_do_entry(struct xctx *x, struct archive *a,
		      struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e), *why = NULL;
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	struct sk_layer_entry_in in;
	struct sk_layer_plan p;
	int pfd, r;

	if (x->cancel && *x->cancel)
		return sk_layer_fail(x, -ECANCELED, raw ? raw : "(no name)",
				     "interrupted");
	r = sk_layer_path_normalise(raw, x->path, sizeof(x->path), &why);
	if (r < 0)
		return sk_layer_fail(x, r, raw ? raw : "(no name)", why);

	in = (struct sk_layer_entry_in){
	    .path = x->path,
	    .type = type,
	    .hardlink = hardlink,
	    .symlink = type == AE_IFLNK ? archive_entry_symlink(e) : NULL,
	    .rdev =
		makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e)),
	    .mode = x->mode,
	    .flags = x->flags,
	};
	sk_layer_plan_entry(&in, &p);

	/* What is not content is done (or refused) right away. */
	switch (p.action) {
	case SK_ENTRY_ROOT:
		return do_root(x, e);
	case SK_ENTRY_IGNORE:
		sk_debug("%s: ignoring aufs metadata",
			 sk_layer_esc(x, x->path));
		return 0;
	case SK_ENTRY_WHITEOUT:
		return do_whiteout(x, p.parent, p.name);
	case SK_ENTRY_OPAQUE:
		return do_opaque(x, p.parent);
	case SK_ENTRY_REFUSE:
		/* The root's normalised name is "": its raw one is said. */
		if (!p.content)
			return sk_layer_fail(x, p.err, *x->path ? x->path : raw,
					     p.why);
		break;
	default:
		break;
	}

	/* Content, refused or not: recorded, announced, its parent made. */
	if (p.record && (r = sk_strset_add(&x->layer_paths, x->path)) < 0)
		return r;
	sk_layer_emit(x, p.event, hardlink ? 0 : archive_entry_size(e));
	if (sk_layer_dry(x))
		return dry_entry(x, a, e, &p);

	pfd = sk_layer_open_parent(x, p.parent, true, x->path);
	if (pfd < 0)
		return pfd;

	switch (p.action) {
	case SK_ENTRY_HARDLINK:
		return do_hardlink(x, &p, pfd);
	case SK_ENTRY_FILE:
		return do_file(x, a, e, &p, pfd);
	case SK_ENTRY_DIR:
		return do_dir(x, e, &p, pfd);
	case SK_ENTRY_SYMLINK:
		return do_symlink(x, e, &p, pfd);
	case SK_ENTRY_DEVICE:
	case SK_ENTRY_FIFO:
		return do_node(x, e, &p, pfd);
	case SK_ENTRY_SKIP_DEVICE:
		sk_layer_emit(x, "device-skipped", 0);
		return 0;
	default:
		return sk_layer_fail(x, p.err, x->path, p.why);
	}
}
