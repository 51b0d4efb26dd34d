/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The client side of shift-mountd (docs/mountd-protocol.md): open the
 * source with the caller's own permissions, send it with the request,
 * receive the detached idmapped mount.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

/* How long to wait for an answer, and to retry a busy service. */
#define CLIENT_TIMEOUT_MS 30000
#define BUSY_RETRY_MS 5000

const char *shift_mountd_socket_path(void)
{
	/* Not from the caller of a setuid/file-capability program: it
	 * would choose which service the privileged side trusts. */
	const char *e = secure_getenv("SHIFT_MOUNTD_SOCKET");

	return e && *e ? e : SHIFT_MOUNTD_SOCKET;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -EBADF;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

int shift_mountd_reachable(const char *socket_path)
{
	int fd =
	    connect_to(socket_path ? socket_path : shift_mountd_socket_path());

	if (fd < 0)
		return 0;
	/* Connected and closed without a request: the daemon's worker sees
	 * EOF and exits without an answer. */
	close(fd);
	return 1;
}

bool shift_mountd_needed(void)
{
	unsigned long a, b, c;
	char extra;
	FILE *f;
	int n;

	if (geteuid() != 0)
		return true;
	/* Root of a user namespace other than the initial one can't idmap
	 * a host filesystem either. */
	f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return false;
	n = fscanf(f, "%lu %lu %lu %c", &a, &b, &c, &extra);
	fclose(f);
	return n != 3 || !(a == 0 && b == 0 && c == 4294967295ul);
}

/* shift_mountd_answer_parse() with its reason (or the service's own
 * message) in msg. */
static int answer_parse(const void *buf, size_t len, char *msg,
			size_t msglen)
{
	struct shift_error e = { 0 };
	int r = shift_mountd_answer_parse(buf, len, &e);

	if (r < 0)
		snprintf(msg, msglen, "%s", e.why ? e.why : "");
	shift_error_clear(&e);
	return r;
}

static int one_request(const char *sock, const char *text, int src,
		       int userns_fd, char *msg, size_t msglen)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} cbuf;
	char ans[SHIFT_MOUNTD_MAX_MSG + 1];
	int fds[2] = {src, userns_fd}, nfds = userns_fd >= 0 ? 2 : 1;
	_cleanup_close_ int fd = -EBADF, mfd = -EBADF;
	struct iovec iov = {(void *)text, strlen(text)};
	struct msghdr mh = {0};
	struct cmsghdr *cm;
	struct pollfd p;
	ssize_t n;
	int r;

	fd = connect_to(sock);
	if (fd < 0) {
		snprintf(msg, msglen,
			 "shift-mountd is not reachable at '%s': %s", sock,
			 strerror(-fd));
		return fd;
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
		r = negative_errno();
		snprintf(msg, msglen,
			 "sending the request to shift-mountd failed: %s",
			 strerror(-r));
		return r;
	}
	p = (struct pollfd){fd, POLLIN, 0};
	r = poll(&p, 1, CLIENT_TIMEOUT_MS);
	if (r <= 0) {
		snprintf(msg, msglen, "shift-mountd did not answer within %d s",
			 CLIENT_TIMEOUT_MS / 1000);
		return -ETIMEDOUT;
	}
	iov = (struct iovec){ans, sizeof(ans) - 1};
	mh = (struct msghdr){0};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0) {
		r = negative_errno();
		snprintf(msg, msglen,
			 "reading shift-mountd's answer failed: %s",
			 strerror(-r));
		return r;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int got;

				memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(int));
				if (mfd < 0)
					mfd = got;
				else
					close(got);
			}
		}
	if (n == 0) {
		snprintf(msg, msglen,
			 "shift-mountd closed the connection without an answer "
			 "(see its log)");
		return -ECONNRESET;
	}
	r = answer_parse(ans, (size_t)n, msg, msglen);
	if (r < 0)
		return r;
	if (mfd < 0) {
		snprintf(msg, msglen, "shift-mountd answered without a mount");
		return -EBADMSG;
	}
	return TAKE_FD(mfd);
}

/* The service's message (or ours) goes into msg; the public calls hand it
 * over as the error's why. */
static int clone_idmapped(const char *socket_path, int dfd, const char *path,
			  const struct shift_idmap *map, int userns_fd,
			  unsigned flags, char *msg, size_t msglen)
{
	struct shift_mountd_request req = {.version = SHIFT_MOUNTD_VERSION};
	_cleanup_free_ char *text = NULL, *mapstr = NULL;
	_cleanup_close_ int src = -EBADF;
	const char *sock =
	    socket_path ? socket_path : shift_mountd_socket_path();
	char dummy[8];
	int r, waited = 0;

	if (!msg || !msglen) {
		msg = dummy;
		msglen = sizeof(dummy);
	}
	msg[0] = '\0';
	if (!map == (userns_fd < 0))
		return -EINVAL;
	/* Resolved here, with the caller's permissions: the daemon never
	 * sees a path. */
	src = openat(dfd, path && *path ? path : ".",
		     O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (src < 0) {
		r = negative_errno();
		snprintf(msg, msglen, "%s", strerror(-r));
		return r;
	}
	if (map) {
		mapstr = shift_idmap_to_string(map);
		if (!mapstr)
			return -ENOMEM;
		req.map = mapstr;
	} else {
		req.userns = true;
	}
	req.flags = flags & (SHIFT_MOUNT_RDONLY | SHIFT_MOUNT_NOSUID |
			     SHIFT_MOUNT_NOEXEC);
	text = shift_mountd_request_format(&req);
	if (!text)
		return -ENOMEM;
	for (;;) {
		r = one_request(sock, text, src, userns_fd, msg, msglen);
		if (r != -EAGAIN || waited >= BUSY_RETRY_MS)
			return r;
		/* Busy: the daemon's in-flight limits; back off a little. */
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		waited += 20;
	}
}

/*
 * An overlay of layers idmapped by the service, assembled by the caller.
 *
 * overlayfs takes a private clone of each layer at FSCONFIG_CMD_CREATE,
 * and the kernel clones only a mount of a mount namespace whose owner the
 * caller has CAP_SYS_ADMIN over: the service's detached mounts belong to
 * an anonymous namespace of the initial user namespace (EPERM, "failed to
 * clone lowerpath").  So each layer is first attached, stacked on target
 * in the caller's own mount namespace, and handed to overlayfs by an
 * O_PATH fd of that attached mount; once the overlay is created the
 * stack is unmounted and the overlay attached in its place.  Inside a
 * user namespace overlayfs needs "userxattr" (trusted.* can't be written
 * there); the overlay's superblock belongs to the caller's namespace,
 * which makes it nodev on its own, and nodev is asked for as well.
 */
static int mountd_overlay(const char *socket_path,
			  const struct shift_overlay *ovl, const char *target,
			  const struct shift_idmap *map, int userns_fd,
			  unsigned flags, char *msg, size_t msglen,
			  const char **failed)
{
	_cleanup_close_ int fsfd = -EBADF, mfd = -EBADF;
	_cleanup_free_ char *opts = NULL;
	size_t n = 0, stacked = 0, i;
	char dummy[8];
	int r;

	if (!msg || !msglen) {
		msg = dummy;
		msglen = sizeof(dummy);
	}
	msg[0] = '\0';
	if (failed)
		*failed = NULL;
	while (ovl->lower && ovl->lower[n])
		n++;
	if (n == 0 || !target || !ovl->upper != !ovl->work)
		return -EINVAL;
	if (ovl->upper) {
		/* Created with the caller's own ids, as it is in its user
		 * namespace: nothing to chown. */
		if (mkdir(ovl->upper, 0755) < 0 && errno != EEXIST) {
			r = negative_errno();
			if (failed)
				*failed = ovl->upper;
			return r;
		}
		if (mkdir(ovl->work, 0755) < 0 && errno != EEXIST) {
			r = negative_errno();
			if (failed)
				*failed = ovl->work;
			return r;
		}
	}
	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return negative_errno();
	for (i = 0; i < n; i++) {
		_cleanup_close_ int tree = -EBADF, at = -EBADF;

		tree = clone_idmapped(
		    socket_path, AT_FDCWD, ovl->lower[i], map, userns_fd,
		    flags & (SHIFT_MOUNT_RDONLY | SHIFT_MOUNT_NOSUID |
			     SHIFT_MOUNT_NOEXEC),
		    msg, msglen);
		if (tree < 0) {
			r = tree;
			if (failed)
				*failed = ovl->lower[i];
			goto unstack;
		}
		if (move_mount(tree, "", AT_FDCWD, target,
			       MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			r = negative_errno();
			if (failed)
				*failed = target;
			goto unstack;
		}
		stacked++;
		at = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (at < 0 || fsconfig(fsfd, FSCONFIG_SET_FD, "lowerdir+", NULL,
				       at) < 0) {
			r = negative_errno();
			if (failed)
				*failed = ovl->lower[i];
			goto unstack;
		}
	}
	if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
	    (ovl->upper && (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir",
				     ovl->upper, 0) < 0 ||
			    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir",
				     ovl->work, 0) < 0))) {
		r = negative_errno();
		goto unstack;
	}
	if (ovl->options && *ovl->options) {
		char *kv, *save = NULL;

		opts = strdup(ovl->options);
		if (!opts) {
			r = -ENOMEM;
			goto unstack;
		}
		for (kv = strtok_r(opts, ",", &save); kv;
		     kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');

			if (eq)
				*eq = '\0';
			if ((eq ? fsconfig(fsfd, FSCONFIG_SET_STRING, kv,
					   eq + 1, 0)
				: fsconfig(fsfd, FSCONFIG_SET_FLAG, kv, NULL,
					   0)) < 0) {
				r = negative_errno();
				snprintf(msg, msglen, "overlay option '%s'",
					 kv);
				goto unstack;
			}
		}
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		r = negative_errno();
		goto unstack;
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_NODEV |
			  (flags & SHIFT_MOUNT_RDONLY ? MOUNT_ATTR_RDONLY : 0) |
			  (flags & SHIFT_MOUNT_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
			  (flags & SHIFT_MOUNT_NOEXEC ? MOUNT_ATTR_NOEXEC : 0));
	if (mfd < 0) {
		r = negative_errno();
		goto unstack;
	}
	r = 0;
unstack:
	/* The overlay holds its own clones: the stacked layers go. */
	for (; stacked > 0; stacked--)
		if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && r == 0)
			r = negative_errno();
	if (r < 0)
		return r;
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) <
	    0) {
		r = negative_errno();
		if (failed)
			*failed = target;
		return r;
	}
	return 0;
}

/* The service's message, or ours, as the error's why. */
static int msg_error(struct shift_error *err, int r, const char *msg,
		     const char *path)
{
	if (msg[0])
		sk_error_set_path(err, r, path, "%s", msg);
	else
		sk_error_set_path(err, r, path, NULL);
	return r;
}

int shift_mountd_clone_idmapped(const char *socket_path, int dfd,
				const char *path, const struct shift_idmap *map,
				int userns_fd, unsigned flags,
				struct shift_error *err)
{
	char msg[512] = "";
	int r = clone_idmapped(socket_path, dfd, path, map, userns_fd, flags,
			       msg, sizeof(msg));

	return r < 0 ? msg_error(err, r, msg, NULL) : r;
}

int shift_mountd_overlay(const char *socket_path,
			 const struct shift_overlay *ovl, const char *target,
			 const struct shift_idmap *map, int userns_fd,
			 unsigned flags, struct shift_error *err)
{
	const char *failed = NULL;
	char msg[512] = "";
	int r = mountd_overlay(socket_path, ovl, target, map, userns_fd, flags,
			       msg, sizeof(msg), &failed);

	return r < 0 ? msg_error(err, r, msg, failed) : r;
}
