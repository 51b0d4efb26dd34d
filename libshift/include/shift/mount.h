/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshift/mount: idmapped mounts, overlays over idmapped layers, re-assembly, the probe, shift-mountd's policy, protocol and client.
 * One of the subsystem headers that <shift.h> gathers (docs/design.md).
 */
#ifndef LIBSHIFT_SHIFT_MOUNT_H
#define LIBSHIFT_SHIFT_MOUNT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Idmapped mounts (libshift/mount/mount.c)                                  */
/* ------------------------------------------------------------------ */

enum {
	SHIFT_MOUNT_RECURSIVE = 1 << 0, /* clone and idmap submounts too */
	SHIFT_MOUNT_RDONLY = 1 << 1,
	SHIFT_MOUNT_NOSUID = 1 << 2,
	SHIFT_MOUNT_NODEV = 1 << 3,
	SHIFT_MOUNT_NOEXEC = 1 << 4,
};

/*
 * A detached clone of the mount at path (relative to dfd; NULL or "" for
 * dfd itself), idmapped to userns_fd (a negative userns_fd: attributes
 * only, no idmap), with the attributes in flags.  Returns the tree fd
 * (caller closes; closing an unattached tree unmounts it).  -EINVAL from
 * the kernel for a filesystem that can't be idmapped is passed through;
 * see shift_mount_strerror().
 */
int shift_mount_clone_idmapped(int dfd, const char *path, int userns_fd,
			       unsigned flags);

/*
 * Attach a detached tree at target (atomic: visible only with its idmap).
 */
int shift_mount_attach(int tree_fd, int dfd, const char *target);

/*
 * The whole sequence for a path: a namespace for map, clone, idmap, attach.
 * Nothing stays mounted on failure.
 */
int shift_mount_idmapped(const char *source, const char *target,
			 const struct shift_idmap *map, unsigned flags);
/* The same with an existing user namespace fd (not consumed). */
int shift_mount_idmapped_userns(const char *source, const char *target,
				int userns_fd, unsigned flags);

/*
 * A fresh tmpfs (fsopen/fsmount), idmapped, attached at target.  options is
 * a comma-separated fsconfig list (e.g. "size=64m,mode=0755") or NULL.
 */
int shift_mount_tmpfs_idmapped(const char *target,
			       const struct shift_idmap *map,
			       const char *options, unsigned flags);
/* The same with an existing user namespace fd (not consumed). */
int shift_mount_tmpfs_idmapped_userns(const char *target, int userns_fd,
				      const char *options, unsigned flags);

struct shift_overlay {
	const char *const *lower; /* top-most first, NULL-terminated */
	const char *upper;	  /* NULL: read-only overlay */
	const char *work;	  /* required with upper */
	const char *options;	  /* extra overlay options or NULL */
};

/*
 * An overlayfs at target whose lower layers are idmapped mounts of the
 * given directories under map, with upper/work (if any) created and owned by
 * the map's image of 0:0.  The overlay is attached atomically.  On failure
 * err->path (err if non-NULL) is the path the error is about (one of
 * lower[i], upper, work, target), NULL when it is about no one path.
 */
int shift_mount_overlay(const struct shift_overlay *ovl, const char *target,
			const struct shift_idmap *map, unsigned flags,
			struct shift_error *err);
/*
 * The same with an existing user namespace fd (not consumed; e.g. from a
 * shift_userns_cache); map is still needed for the upper dir's owner and
 * must be the namespace's map.
 */
int shift_mount_overlay_userns(const struct shift_overlay *ovl,
			       const char *target,
			       const struct shift_idmap *map, int userns_fd,
			       unsigned flags, struct shift_error *err);

/*
 * After -EINVAL from a recursive idmap of path: the first mount at or
 * below path that can't be idmapped with userns_fd, found by trying each
 * on a throwaway detached clone.  Returns 0 with a malloc'd path in
 * *ret_path (caller frees), -ENOENT when every mount can be idmapped.
 */
int shift_mount_find_unsupported(const char *path, int userns_fd,
				 char **ret_path);

/*
 * Whether path (relative to dfd; "" for dfd itself; a trailing symlink is
 * not followed, no automount is triggered) is the root of a mount: 1 yes,
 * 0 no, negative errno.  Asks the kernel (STATX_ATTR_MOUNT_ROOT); before
 * Linux 5.8 compares mount ids with the parent directory.  Mounting on
 * such a path stacks a second mount over what is there (a running
 * container's root, say): tools refuse it unless asked.
 */
int shift_mount_is_mountpoint(int dfd, const char *path);


/*
 * A user-facing explanation of an error from the functions above for the
 * filesystem at path (e.g. "filesystem 'overlay' does not support idmapped
 * mounts").  Returns a malloc'd string (caller frees) or NULL.
 */
char *shift_mount_strerror(int err, const char *path);

/* ------------------------------------------------------------------ */
/* Re-assembling an overlayfs mount (libshift/mount/overlay-reassemble.c)    */
/* ------------------------------------------------------------------ */

/*
 * A merged overlayfs can't be idmapped, but its layers can: read the
 * layers of the overlay mounted at a path, idmap each one as a detached
 * clone and build a new overlay over them.  Nothing but the new overlay is
 * ever attached.
 */

/* The layers and options of an overlayfs mount, as its mount options
 * (mountinfo, read through libmount) give them. */
struct shift_overlay_source {
	char **lower;	/* top-most first, NULL-terminated, absolute */
	char **data;	/* data-only layers ("::", datadir+), NULL-terminated */
	char *upper;	/* NULL: the overlay has no writable layer */
	char *work;
	char **options; /* the others, "key" or "key=value", NULL-terminated */
	bool read_only; /* the overlay's superblock is read-only */
	/* Every option as overlayfs was given it ("key" or "key=value",
	 * mountinfo's escapes undone): to mount the source again. */
	char **raw;
};

/*
 * 1 when path is the root of an overlayfs mount, 0 when it is not an
 * overlayfs at all, -ENOTDIR... negative errno; -EISDIR when path lies
 * inside an overlayfs but is not the root of the mount.
 */
int shift_overlay_is_mount(const char *path);

/*
 * Read the overlay mounted at path (its root).  The layer paths are
 * checked: each must be an absolute path to a directory other than "/",
 * and every entry of the overlay's root directory must exist in one of
 * the upper and lower layers; otherwise -EBADMSG (the overlay was built
 * from file descriptors, in another mount namespace or chroot: its
 * options don't say where its layers are).  -EMEDIUMTYPE when path is
 * not an overlayfs mount, -EISDIR when it is not the mount's root.
 */
int shift_overlay_source_read(const char *path,
			      struct shift_overlay_source **ret);
void shift_overlay_source_free(struct shift_overlay_source *src);

enum {
	/* The source's upper layer becomes the top-most (read-only) lower
	 * layer.  Without it a source with an upper layer is refused
	 * (-EBUSY): overlayfs must never see two mounts over one upper. */
	SHIFT_REASSEMBLE_UPPER_AS_LOWER = 1 << 0,
	/* The new upper layer is idmapped too and stores the container's
	 * own ids (root = 0): the overlay is created with fsuid/fsgid set
	 * to the map's image of 0, so work files and copy-ups are
	 * representable.  Without it the new upper stores host ids. */
	SHIFT_REASSEMBLE_CANONICAL_UPPER = 1 << 1,
	/* Take the source's place: unmount the source (only when nothing
	 * holds it: -EBUSY otherwise, nothing changed), then build the new
	 * overlay with the source's own upper and work, canonical (implies
	 * SHIFT_REASSEMBLE_CANONICAL_UPPER; upper and work must be NULL).
	 * If the new overlay can't be made or attached, the source is
	 * mounted again where it was, with its options. */
	SHIFT_REASSEMBLE_REPLACE = 1 << 2,
};

struct shift_reassemble {
	const struct shift_overlay_source *src;
	const char *source; /* REPLACE: the source's mount point */
	/* Optional: layers to take as they are (plain clones, no idmap)
	 * from another directory, e.g. a shifted copy of a layer whose
	 * filesystem can't be idmapped: pairs "layer path", "directory",
	 * ..., NULL. */
	const char *const *plain_layers;
	const char *upper; /* a new writable layer (created if missing) or NULL */
	const char *work;  /* with upper: its work dir, on the same mount */
	unsigned how;	   /* SHIFT_REASSEMBLE_* */
};

/*
 * Build an overlay over idmapped detached clones of the source's layers
 * (layers as file descriptors: fsconfig lowerdir+/datadir+/upperdir/
 * workdir with FSCONFIG_SET_FD) with the source's options and attach it
 * at target.  Without a new upper the overlay is read-only (options that
 * need an upper, index, nfs_export and volatile, are left out).  Returns
 * 0; -EINVAL (with err->path a layer) when a layer's filesystem can't
 * be idmapped (before Linux 6.13, where overlayfs takes no layers as
 * file descriptors, the layers are named by path from a child's private
 * mount namespace instead), -EBUSY for a source upper without
 * SHIFT_REASSEMBLE_UPPER_AS_LOWER, or another negative errno.  On
 * failure err->path is the path the error is about (a layer, the new
 * upper or work dir, the target) or NULL, and err->what "unmount" (the
 * source could not be unmounted for SHIFT_REASSEMBLE_REPLACE), "restore"
 * (-ENOTRECOVERABLE: nor mounted again after a failure) or "attach" (the
 * target; with REPLACE often the same path as the source).
 */
int shift_overlay_reassemble(const struct shift_reassemble *ra,
			     const char *target,
			     const struct shift_idmap *map, int userns_fd,
			     unsigned flags, struct shift_error *err);

/* ------------------------------------------------------------------ */
/* Probe (libshift/mount/probe.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * Whether the mount holding path can be idmapped, found by really trying:
 * a user namespace with map b:0:1000:1 (created once per process), a
 * detached clone of the mount (open_tree OPEN_TREE_CLONE), mount_setattr
 * MOUNT_ATTR_IDMAP on the clone, then the clone is closed (no side
 * effects; no automount is triggered).  Results are cached per filesystem
 * (the superblock's device number); an already idmapped or unbindable
 * mount is tried on its own.  Returns 1 supported, 0 not supported (with
 * why->why a reason such as "filesystem 'overlay' does not support
 * idmapped mounts", "kernel has no mount_setattr (Linux < 5.12)", "already
 * idmapped", "needs CAP_SYS_ADMIN", and why->error -EOPNOTSUPP), negative
 * errno when the probe itself failed (-ENOENT for a missing path).  The
 * reason of a "no" is a result, not an error, but travels in the one
 * error context all the same (docs/design.md "Errors").
 */
int shift_probe_idmap(const char *path, struct shift_error *why);

/* Run-time feature tests of the kernel, each by trying. */
enum shift_feature {
	SHIFT_FEATURE_MOUNT_API,      /* open_tree/move_mount/fsopen */
	SHIFT_FEATURE_MOUNT_SETATTR,  /* mount_setattr */
	SHIFT_FEATURE_IDMAP_TMPFS,    /* idmapped tmpfs */
	SHIFT_FEATURE_IDMAP_OVERLAY_LOWER, /* overlayfs over idmapped lowers */
	SHIFT_FEATURE_OVERLAY_FD_LAYERS,   /* overlay layers given as fds */
	SHIFT_FEATURE_OPENAT2,
	SHIFT_FEATURE_USERNS,	      /* can create a user namespace */
	SHIFT_FEATURE_USERNS_UNPRIV,  /* ... also without privileges */
	SHIFT_FEATURE_IO_URING,	      /* io_uring usable (not disabled) */
	_SHIFT_FEATURE_MAX,
};

/*
 * 1 available, 0 not, negative errno if the test itself failed.  why (if
 * non-NULL) gets a one-line detail in why->why either way: what worked
 * (why->error 0), or why not (why->error -EOPNOTSUPP).
 * Each feature is tested once per process.  The overlay tests run in a
 * forked child in a private mount namespace on detached tmpfs mounts.
 */
int shift_probe_feature(enum shift_feature f, struct shift_error *why);
/* "mount-api", "idmap-tmpfs", ...; NULL for an unknown feature. */
const char *shift_feature_name(enum shift_feature f);

/*
 * The sysctls that decide whether user namespaces and io_uring are usable
 * (user.max_user_namespaces, user.max_mnt_namespaces,
 * kernel.unprivileged_userns_clone,
 * kernel.apparmor_restrict_unprivileged_userns, kernel.io_uring_disabled,
 * kernel.io_uring_group), by index from 0.  Returns 1 present (value in
 * *ret_value), 0 absent from this kernel (*ret_value = -1), -ERANGE past
 * the last.  *ret_name and *ret_meaning (what the value means) are static.
 */
int shift_probe_sysctl(unsigned idx, const char **ret_name, long *ret_value,
		       const char **ret_meaning);

/*
 * The io_uring opcodes libshift may use, by index from 0: *ret_name
 * ("STATX", "OPENAT2", "FGETXATTR", ...) and *ret_note (what for), both
 * static.  The last entry is "CHOWN", which no kernel has: ownership
 * changes always run synchronously.  Returns 1 supported, 0 not, -ERANGE
 * past the last, or the error that makes io_uring unusable here (-ENOSYS,
 * -EPERM, -EOPNOTSUPP when built without liburing).
 */
int shift_probe_uring_op(unsigned idx, const char **ret_name,
			 const char **ret_note);

/*
 * Where newuidmap or newgidmap (name) is and how it gets its privilege:
 * the first regular file in $PATH, /usr/bin, /bin, /usr/sbin, /sbin.
 * *ret_path (caller frees), *ret_setuid (setuid root), *ret_caps (its file
 * capabilities in cap_to_text(3) form, caller frees; NULL when none).
 * Returns 1 found, 0 not found (nothing set), negative errno.
 */
int shift_probe_uidmap_helper(const char *name, char **ret_path,
			      bool *ret_setuid, char **ret_caps);

/*
 * The filesystem libblkid finds in path when it is a block device or a
 * regular file (a filesystem image), as mount(8) would detect it
 * (libshift/mount/fstype.c).  Returns 1 with its type ("ext4", "squashfs")
 * in type (size bytes, truncated), 0 when path is neither (a directory, a
 * fifo: never opened) or holds no filesystem libblkid knows, negative errno
 * when it can't be read.  Symlinks are followed (/dev/disk/by-label/...).
 */
int shift_probe_fstype(const char *path, char *type, size_t size);

/* ------------------------------------------------------------------ */
/* shift-mountd: policy, protocol, client (libshift/mount/mountd-*.c)        */
/* ------------------------------------------------------------------ */

/* docs/mountd-protocol.md, docs/security-mountd.md */
#define SHIFT_MOUNTD_VERSION 1
#define SHIFT_MOUNTD_SOCKET "/run/shiftkit/mountd.sock"
#define SHIFT_MOUNTD_CONF "/etc/shiftkit/mountd.conf"
/* Largest request or answer, and most fds in one message. */
#define SHIFT_MOUNTD_MAX_MSG 4096
#define SHIFT_MOUNTD_MAX_FDS 4
/* systemd's "foreign" UID range (nspawn --private-users=managed). */
#define SHIFT_FOREIGN_UID_BASE 0x7FFE0000u
#define SHIFT_FOREIGN_UID_COUNT 65536u

/* Who asks: kernel facts, and the delegation the daemon read itself. */
struct shift_mountd_caller {
	uint32_t uid, gid;		 /* SO_PEERCRED */
	const struct shift_idmap *subid; /* seen = the delegated host ids
					    (shift_idmap_from_subid); NULL:
					    none */
	bool foreign_range; /* the foreign range counts as on-disk ids */
};

/* What the source fd is: fstat, fstatfs and the daemon's own clone. */
struct shift_mountd_source {
	uint32_t mode, uid, gid;
	int64_t fs_type;  /* statfs f_type */
	bool idmapped;	  /* already an idmapped mount */
	bool submounts;	  /* mounts below it */
};

/*
 * The service's whole policy, pure: may this caller have an idmapped
 * mount of this source with this map (on-disk -> seen, host ids)?
 * Returns 0 allowed; -EPERM, -ENOTDIR or -EINVAL refused, with one line
 * naming the rule in why->why.
 */
int shift_mountd_policy(const struct shift_mountd_caller *c,
			const struct shift_idmap *map,
			const struct shift_mountd_source *s,
			struct shift_error *why);
/* The name of a pseudo-filesystem the service refuses ("proc", ...), or
 * NULL for any other f_type. */
const char *shift_mountd_pseudo_fs(int64_t fs_type);

/*
 * What the daemon's worker reads of a clone it attached in its private
 * mount namespace, from that namespace's mountinfo (an fd it opened, read
 * from its offset): whether the mount with id mnt_id is idmapped, whether
 * any mount hangs below it, and its filesystem type ("?" when not shown).
 * -ENOENT when no mount has that id.
 */
struct shift_mountd_clone_facts {
	bool idmapped;
	bool submounts;
	char fstype[64];
};
int shift_mountd_clone_facts(int mountinfo_fd, uint64_t mnt_id,
			     struct shift_mountd_clone_facts *ret);

/* /etc/shiftkit/mountd.conf, parsed (shift-mountd(8)). */
struct shift_mountd_conf {
	char **users;	 /* names or uids; "*" everyone; NULL-terminated */
	char **groups;	 /* names or gids; NULL-terminated */
	bool foreign_range;
	bool force_nosuid;
	unsigned max_per_user; /* requests in flight per user */
	unsigned max_requests; /* in total */
	unsigned timeout;      /* seconds per request */
};
/*
 * Parse the text of a configuration (NULL: defaults only) into *c (free
 * with shift_mountd_conf_done).  -EINVAL with "line N: ..." in err->why
 * for an unknown key, a bad value or a repeated key.
 */
int shift_mountd_conf_parse(const char *text, struct shift_mountd_conf *c,
			    struct shift_error *err);
void shift_mountd_conf_done(struct shift_mountd_conf *c);

/* A request as sent on the wire. */
struct shift_mountd_request {
	unsigned version;
	char *map;   /* map text, or NULL with userns */
	bool userns; /* fd 2 is a user namespace */
	unsigned flags; /* SHIFT_MOUNT_RDONLY | _NOSUID | _NOEXEC */
};
/*
 * Parse one received request of len bytes that came with nfds fds.
 * Returns 0, or -EBADMSG with the reason in err->why.  Free with
 * shift_mountd_request_done.
 */
int shift_mountd_request_parse(const void *buf, size_t len, unsigned nfds,
			       struct shift_mountd_request *ret,
			       struct shift_error *err);
void shift_mountd_request_done(struct shift_mountd_request *r);
/* The wire form of a request or an answer (malloc'd); NULL on ENOMEM. */
char *shift_mountd_request_format(const struct shift_mountd_request *r);
char *shift_mountd_answer_format(int err, const char *message);
/*
 * Parse an answer: returns 0 for "ok", the negative errno of a refusal
 * with its message (escaped) in err->why, or -EBADMSG for a malformed
 * answer (the reason in err->why).
 */
int shift_mountd_answer_parse(const void *buf, size_t len,
			      struct shift_error *err);

/* The socket the client uses: $SHIFT_MOUNTD_SOCKET or the default. */
const char *shift_mountd_socket_path(void);
/* Whether a service listens there: 1 yes, 0 no (refused, missing). */
int shift_mountd_reachable(const char *socket_path);
/*
 * Ask the service for a detached idmapped mount of the directory at path
 * (relative to dfd; opened here, O_PATH, with the caller's permissions)
 * with map, or with the user namespace userns_fd (>= 0; map NULL), and
 * flags SHIFT_MOUNT_RDONLY/NOSUID/NOEXEC (nodev is always set).  Returns
 * the mount fd (caller closes; attach with shift_mount_attach in a mount
 * namespace the caller owns), or a negative errno with one line in
 * err->why (the service's answer, escaped, or what failed on the way):
 * -ENOENT/-ECONNREFUSED no service, -EPERM refused, -EAGAIN busy, ...
 */
int shift_mountd_clone_idmapped(const char *socket_path, int dfd,
				const char *path,
				const struct shift_idmap *map, int userns_fd,
				unsigned flags, struct shift_error *err);
/* True when this process can't make idmapped mounts itself (no
 * CAP_SYS_ADMIN in the initial user namespace): the service's case. */
bool shift_mountd_needed(void);
/*
 * An overlay at target over the layers ovl->lower (top-most first), each
 * an idmapped mount from the service (one request per layer, map or
 * userns_fd as for shift_mountd_clone_idmapped), assembled by the caller
 * in its own user and mount namespaces ("userxattr", nodev); upper and
 * work, if given, are created if missing with the caller's ids.  0, or a
 * negative errno with err->path set when it is about one path and
 * err->why holding the service's answer when the service refused.
 */
int shift_mountd_overlay(const char *socket_path,
			 const struct shift_overlay *ovl, const char *target,
			 const struct shift_idmap *map, int userns_fd,
			 unsigned flags, struct shift_error *err);

#ifdef __cplusplus
}
#endif

#endif
