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

/* A whiteout entry ".wh.NAME" or the opaque marker, in parent pfd. */
static int do_whiteout(struct xctx *x, const char *parent, const char *name)
{
	bool opaque = !strcmp(name, WH_OPAQUE);
	const char *victim = name + strlen(WH_PREFIX);
	char victim_path[PATH_MAX];
	bool kept;
	int pfd, r;

	if (!opaque && !strncmp(name, WH_META, strlen(WH_META))) {
		sk_debug("%s: ignoring aufs metadata",
			 sk_layer_esc(x, x->path));
		return 0;
	}
	if (!opaque &&
	    (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")))
		return sk_layer_fail(x, -EPERM, x->path,
				     "whiteout of an invalid name");
	sk_layer_emit(x, opaque ? "opaque" : "whiteout", 0);
	if (sk_layer_dry(x))
		return 0;

	if (x->mode == XMODE_STORE) {
		pfd = sk_layer_open_parent(x, parent, true, x->path);
		if (pfd < 0)
			return pfd;
		if (opaque && (x->flags & SK_LAYER_ROOTLESS)) {
			/* A user namespace may set no trusted.* xattr, and
			 * its overlays read user.overlay.* ("userxattr"). */
			if (fsetxattr(pfd, OVL_OPAQUE_USER, "y", 1, 0) < 0)
				return sk_layer_fail(
				    x, negative_errno(), x->path,
				    "cannot mark the directory opaque (needs "
				    "user.* xattrs on the store's filesystem)");
			return 0;
		}
		if (opaque) {
			if (fsetxattr(pfd, OVL_OPAQUE, "y", 1, 0) < 0)
				return sk_layer_fail(
				    x, negative_errno(), x->path,
				    "cannot mark the directory opaque (needs "
				    "trusted.* xattrs: root, and a filesystem "
				    "with xattrs)");
			return 0;
		}
		r = sk_layer_make_room(x, pfd, victim, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
		if (mknodat(pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
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
	if (!opaque) {
		snprintf(victim_path, sizeof(victim_path), "%s%s%s", parent,
			 *parent ? "/" : "", victim);
		if (sk_strset_has(&x->layer_paths, victim_path))
			return 0;
		r = sk_layer_make_room(x, pfd, victim, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot apply the whiteout");
		return 0;
	} else {
		_cleanup_closedir_ DIR *d = NULL;
		struct dirent *de;
		int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return negative_errno();
		d = fdopendir(fd);
		if (!d) {
			safe_close(fd);
			return negative_errno();
		}
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(victim_path, sizeof(victim_path), "%s%s%s",
				 parent, *parent ? "/" : "", de->d_name);
			if (sk_strset_has(&x->layer_paths, victim_path))
				continue;
			r = sk_layer_rm_rf_at(dirfd(d), de->d_name);
			if (r < 0)
				return sk_layer_fail(
				    x, r, x->path,
				    "cannot apply the opaque whiteout");
		}
		/* Below the parent, nothing cached is valid any more. */
		sk_layer_pcache_drop(x);
	}
	return 0;
}

/*
 * A dry run's checks of one entry: what needs no tree (the tree-dependent
 * ones, symlinks on the way and hard link targets, can't be made without
 * building it).
 */
static int dry_entry(struct xctx *x, struct archive *a, struct archive_entry *e,
		     const char *hardlink, mode_t type)
{
	const char *why = NULL;
	int r;

	if (hardlink) {
		r = sk_layer_path_normalise(hardlink, x->link, sizeof(x->link),
					    &why);
		if (r < 0 || !*x->link)
			return sk_layer_fail(
			    x, r < 0 ? r : -EPERM, x->path,
			    r < 0 ? "hard link target outside the root"
				  : "hard link to the root");
		return 0;
	}
	switch (type) {
	case AE_IFREG:
		/* The data is read (sizes checked) and dropped. */
		r = write_data(x, a, -EBADF, e);
		if (r < 0)
			return r;
		break;
	case AE_IFDIR:
	case AE_IFIFO:
		break;
	case AE_IFLNK:
		if (!archive_entry_symlink(e) || !*archive_entry_symlink(e))
			return sk_layer_fail(x, -EINVAL, x->path,
					     "symbolic link without a target");
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		if (type == AE_IFCHR && archive_entry_rdevmajor(e) == 0 &&
		    archive_entry_rdevminor(e) == 0)
			return sk_layer_fail(
			    x, -EPERM, x->path,
			    "a 0/0 character device is an overlay whiteout, "
			    "not content (refusing it)");
		if (x->flags & SHIFT_LAYER_NO_DEVICES)
			return sk_layer_fail(
			    x, -EPERM, x->path,
			    "device nodes are not allowed (--no-devices)");
		if (x->flags & SK_LAYER_ROOTLESS) {
			/* As the real unpack would: skipped, said. */
			sk_layer_emit(x, "device-skipped", 0);
			return 0;
		}
		break;
	default:
		return sk_layer_fail(
		    x, -EOPNOTSUPP, x->path,
		    "unsupported entry type (sockets cannot be extracted)");
	}
	return sk_layer_apply_meta(x, e, -EBADF, -EBADF, NULL,
				   type == AE_IFDIR);
}

int sk_layer_do_entry(struct xctx *x, struct archive *a,
		      struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e), *why = NULL;
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	_cleanup_close_ int fd = -EBADF;
	char parent[PATH_MAX], *slash, *name;
	bool kept = false;
	int pfd, r;

	if (x->cancel && *x->cancel)
		return sk_layer_fail(x, -ECANCELED, raw ? raw : "(no name)",
				     "interrupted");
	r = sk_layer_path_normalise(raw, x->path, sizeof(x->path), &why);
	if (r < 0)
		return sk_layer_fail(x, r, raw ? raw : "(no name)", why);

	if (!*x->path) {
		/* The root itself: only its metadata. */
		if (type != AE_IFDIR)
			return sk_layer_fail(
			    x, -EINVAL, raw,
			    "the root entry is not a directory");
		sk_layer_emit(x, "dir", 0);
		if (sk_layer_dry(x))
			return sk_layer_apply_meta(x, e, -EBADF, -EBADF, NULL,
						   true);
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

	slash = strrchr(x->path, '/');
	if (slash) {
		memcpy(parent, x->path, (size_t)(slash - x->path));
		parent[slash - x->path] = '\0';
		name = slash + 1;
	} else {
		parent[0] = '\0';
		name = x->path;
	}

	if (!strncmp(name, WH_PREFIX, strlen(WH_PREFIX)))
		return do_whiteout(x, parent, name);

	if (x->mode == XMODE_FLAT &&
	    (r = sk_strset_add(&x->layer_paths, x->path)) < 0)
		return r;

	if (hardlink) {
		sk_layer_emit(x, "hardlink", 0);
	} else {
		sk_layer_emit(x,
			      type == AE_IFREG	 ? "file"
			      : type == AE_IFDIR ? "dir"
			      : type == AE_IFLNK ? "symlink"
			      : type == AE_IFIFO ? "fifo"
			      : type == AE_IFCHR ? "chardev"
			      : type == AE_IFBLK ? "blockdev"
						 : "other",
			      archive_entry_size(e));
	}
	if (sk_layer_dry(x))
		return dry_entry(x, a, e, hardlink, type);

	pfd = sk_layer_open_parent(x, parent, true, x->path);
	if (pfd < 0)
		return pfd;

	if (hardlink) {
		char tparent[PATH_MAX];
		_cleanup_close_ int tpfd = -EBADF;
		const char *tname;

		r = sk_layer_path_normalise(hardlink, x->link, sizeof(x->link),
					    &why);
		if (r < 0 || !*x->link)
			return sk_layer_fail(
			    x, r < 0 ? r : -EPERM, x->path,
			    r < 0 ? "hard link target outside the root"
				  : "hard link to the root");
		slash = strrchr(x->link, '/');
		if (slash) {
			memcpy(tparent, x->link, (size_t)(slash - x->link));
			tparent[slash - x->link] = '\0';
			tname = slash + 1;
		} else {
			tparent[0] = '\0';
			tname = x->link;
		}
		tpfd = sk_layer_open_beneath(x->rootfd, tparent,
					     O_RDONLY | O_DIRECTORY);
		if (tpfd == -ENOTDIR || tpfd == -ELOOP)
			tpfd = sk_layer_why_notdir(x->rootfd, tparent);
		if (tpfd < 0)
			return sk_layer_fail(
			    x, tpfd, x->path,
			    tpfd == -ELOOP ? "hard link target goes through a "
					     "symbolic link"
			    : tpfd == -ENOTDIR
				? "hard link target goes through a "
				  "non-directory"
				: "hard link target not found in the layer");
		if (!strcmp(x->link, x->path))
			return 0;
		r = sk_layer_make_room(x, pfd, name, false, &kept);
		if (r < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot replace an entry");
		/* flags 0: a symlink target is linked, not followed. */
		if (linkat(tpfd, tname, pfd, name, 0) < 0)
			return sk_layer_fail(
			    x, negative_errno(), x->path,
			    errno == ENOENT
				? "hard link target not found in the layer"
				: "cannot create the hard link");
		return 0;
	}

	switch (type) {
	case AE_IFREG:
		for (int tries = 0;; tries++) {
			fd = openat(pfd, name,
				    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					O_CLOEXEC | O_NOCTTY,
				    0600);
			if (fd >= 0 || errno != EEXIST || tries)
				break;
			r = sk_layer_make_room(x, pfd, name, false, &kept);
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
		return sk_layer_apply_meta(x, e, fd, pfd, name, false);

	case AE_IFDIR:
		if (mkdirat(pfd, name, 0700) < 0) {
			if (errno != EEXIST)
				return sk_layer_fail(
				    x, negative_errno(), x->path,
				    "cannot create the directory");
			r = sk_layer_make_room(x, pfd, name, true, &kept);
			if (r < 0)
				return sk_layer_fail(x, r, x->path,
						     "cannot replace an entry");
			if (!kept && mkdirat(pfd, name, 0700) < 0)
				return sk_layer_fail(
				    x, negative_errno(), x->path,
				    "cannot create the directory");
			/* make_room may have dropped the cached parent. */
			pfd = sk_layer_open_parent(x, parent, false, x->path);
			if (pfd < 0)
				return pfd;
		}
		fd = openat(pfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot open the new directory");
		if (kept && x->mode == XMODE_FLAT &&
		    (r = sk_layer_drop_lower_xattrs(x, fd)) < 0)
			return sk_layer_fail(x, r, x->path,
					     "cannot remove a lower layer's "
					     "extended attributes");
		return sk_layer_apply_meta(x, e, fd, pfd, name, true);

	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);

		if (!target || !*target)
			return sk_layer_fail(x, -EINVAL, x->path,
					     "symbolic link without a target");
		for (int tries = 0;; tries++) {
			r = symlinkat(target, pfd, name);
			if (r == 0 || errno != EEXIST || tries)
				break;
			r = sk_layer_make_room(x, pfd, name, false, &kept);
			if (r < 0)
				return sk_layer_fail(x, r, x->path,
						     "cannot replace an entry");
		}
		if (r < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot create the symbolic link");
		return sk_layer_apply_meta(x, e, -EBADF, pfd, name, false);
	}

	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO: {
		dev_t dev = 0;

		if (type != AE_IFIFO) {
			dev = makedev(archive_entry_rdevmajor(e),
				      archive_entry_rdevminor(e));
			if (type == AE_IFCHR && dev == makedev(0, 0))
				return sk_layer_fail(
				    x, -EPERM, x->path,
				    "a 0/0 character device is an overlay "
				    "whiteout, not content (refusing it)");
			if (x->flags & SHIFT_LAYER_NO_DEVICES)
				return sk_layer_fail(x, -EPERM, x->path,
						     "device nodes are not "
						     "allowed (--no-devices)");
			/*
			 * A normal user's store: the kernel lets no user
			 * namespace make a device node (a 0/0 whiteout
			 * only), and an image's /dev is the runtime's to
			 * fill.  Skipped, with an event the caller counts
			 * and warns about, rather than failing the image.
			 */
			if (x->flags & SK_LAYER_ROOTLESS) {
				sk_layer_emit(x, "device-skipped", 0);
				return 0;
			}
		}
		for (int tries = 0;; tries++) {
			r = mknodat(pfd, name,
				    (type == AE_IFCHR	? S_IFCHR
				     : type == AE_IFBLK ? S_IFBLK
							: S_IFIFO) |
					0600,
				    dev);
			if (r == 0 || errno != EEXIST || tries)
				break;
			r = sk_layer_make_room(x, pfd, name, false, &kept);
			if (r < 0)
				return sk_layer_fail(x, r, x->path,
						     "cannot replace an entry");
		}
		if (r < 0 && errno == EPERM && type != AE_IFIFO)
			return sk_layer_fail(
			    x, -EPERM, x->path,
			    "device node, and we may not create device nodes "
			    "here (unprivileged: needs CAP_MKNOD)");
		if (r < 0)
			return sk_layer_fail(x, negative_errno(), x->path,
					     "cannot create the node");
		return sk_layer_apply_meta(x, e, -EBADF, pfd, name, false);
	}

	default:
		return sk_layer_fail(
		    x, -EOPNOTSUPP, x->path,
		    "unsupported entry type (sockets cannot be extracted)");
	}
}
