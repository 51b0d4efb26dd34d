/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A test client for shift-mountd that can also misbehave: crafted or
 * oversized messages, wrong fds, a source swapped for a symlink after it
 * was opened, disconnects, many requests.  fs-tests/mountd/attacks.bats.
 *
 *   mountd-client SOCKET [--json TEXT | --map MAP | --userns-fd N]
 *                 [--source PATH | --source-fd N | --source-socket]
 *                 [--open path|dir|rdonly] [--swap TARGET] [--fds N]
 *                 [--raw-size N] [--disconnect] [--count N]
 *                 [--stat REL]... [--attach DIR]
 *
 * Prints "ok" or "refused: ERRNO: message" per request ("--count":
 * one summary line "ok=N busy=N refused=N", then each distinct "busy"
 * answer once as "busy: MESSAGE"); --stat prints "REL UID:GID"
 * as seen through the received mount; --attach DIR attaches it inside a
 * new user+mount namespace of the caller (root in it = the caller) and
 * prints what clearing nodev does there.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shift.h"
#include "util/syscalls.h"

static const char *name_of(int e)
{
	switch (e) {
	case EPERM:
		return "EPERM";
	case ENOTDIR:
		return "ENOTDIR";
	case EBADMSG:
		return "EBADMSG";
	case EAGAIN:
		return "EAGAIN";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case ECONNRESET:
		return "ECONNRESET";
	default:
		return strerrorname_np(e) ? strerrorname_np(e) : "E?";
	}
}

static int conn_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(3);
	}
	return fd;
}

/* One exchange; returns the mount fd or -errno with msg. */
static int exchange(const char *sock, const void *buf, size_t len,
		    const int *fds, int nfds, bool disconnect, char *msg,
		    size_t msglen)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 64)];
	char ans[8192];
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	int fd = conn_to(sock), mfd = -1, r;
	ssize_t n;

	memset(cbuf, 0, sizeof(cbuf));
	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
		r = -errno;
		snprintf(msg, msglen, "sendmsg: %s", strerror(errno));
		close(fd);
		return r;
	}
	if (disconnect) {
		close(fd);
		snprintf(msg, msglen, "disconnected");
		return -ECONNRESET;
	}
	iov = (struct iovec){ans, sizeof(ans)};
	mh = (struct msghdr){.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf)};
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	close(fd);
	if (n <= 0) {
		snprintf(msg, msglen, "no answer");
		return -ECONNRESET;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_type == SCM_RIGHTS)
			memcpy(&mfd, CMSG_DATA(cm), sizeof(int));
	{
		struct shift_error e = { 0 };

		r = shift_mountd_answer_parse(ans, (size_t)n, &e);
		if (r < 0)
			snprintf(msg, msglen, "%s", e.why ? e.why : "");
		shift_error_clear(&e);
	}
	if (r < 0) {
		if (mfd >= 0) {
			snprintf(msg, msglen,
				 "LEAK: an fd came with a refusal");
			return -EIO;
		}
		return r;
	}
	if (mfd < 0) {
		snprintf(msg, msglen, "ok without an fd");
		return -EIO;
	}
	return mfd;
}

static int wr(const char *p, const char *s)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

/* In a child: a user+mount namespace of the caller, the mount attached at
 * dir, its owners printed, then the attempt to lift nodev. */
static int attach(int mfd, const char *dir, char **stats, int nstats)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();

	if (pid == 0) {
		char m[64];
		uid_t uid = getuid();
		gid_t gid = getgid();
		struct mount_attr clr = {.attr_clr = MOUNT_ATTR_NODEV};

		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
			perror("unshare");
			_exit(1);
		}
		snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)uid);
		wr("/proc/self/uid_map", m);
		wr("/proc/self/setgroups", "deny");
		snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)gid);
		wr("/proc/self/gid_map", m);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			perror("make-rprivate");
			_exit(1);
		}
		if (move_mount(mfd, "", AT_FDCWD, dir,
			       MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			printf("attach: %s\n", name_of(errno));
			_exit(1);
		}
		printf("attach: OK\n");
		for (int i = 0; i < nstats; i++) {
			char p[4096];
			struct stat st;

			snprintf(p, sizeof(p), "%s/%s", dir, stats[i]);
			if (lstat(p, &st) < 0)
				printf("ns %s %s\n", stats[i], name_of(errno));
			else
				printf("ns %s %u:%u\n", stats[i],
				       (unsigned)st.st_uid,
				       (unsigned)st.st_gid);
		}
		if (mount_setattr(AT_FDCWD, dir, 0, &clr, sizeof(clr)) < 0)
			printf("clear-nodev: %s\n", name_of(errno));
		else
			printf("clear-nodev: OK\n");
		fflush(stdout);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	const char *sock, *json = NULL, *map = NULL, *source = NULL,
			  *open_how = "dir", *swap = NULL, *attach_dir = NULL;
	char *stats[32];
	int nstats = 0, userns_fd = -1, source_fd = -1, nfds_override = -1,
	    count = 1, raw = -1;
	bool source_socket = false, disconnect = false;
	int fds[64], nfds = 0, ok = 0, busy = 0, refused = 0, rc = 0;
	char busy_msgs[8][1024];
	int nbusy_msgs = 0;
	char *buf = NULL;

	if (argc < 2)
		return 2;
	sock = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(s) (!strcmp(a, s) && v && (i++, 1))
		if (ARG("--json"))
			json = v;
		else if (ARG("--map"))
			map = v;
		else if (ARG("--userns-fd"))
			userns_fd = atoi(v);
		else if (ARG("--source"))
			source = v;
		else if (ARG("--source-fd"))
			source_fd = atoi(v);
		else if (!strcmp(a, "--source-socket"))
			source_socket = true;
		else if (ARG("--open"))
			open_how = v;
		else if (ARG("--swap"))
			swap = v;
		else if (ARG("--fds"))
			nfds_override = atoi(v);
		else if (ARG("--raw-size"))
			raw = atoi(v);
		else if (!strcmp(a, "--disconnect"))
			disconnect = true;
		else if (ARG("--count"))
			count = atoi(v);
		else if (ARG("--stat") && nstats < 32)
			stats[nstats++] = (char *)v;
		else if (ARG("--attach"))
			attach_dir = v;
		else {
			fprintf(stderr, "mountd-client: bad argument '%s'\n",
				a);
			return 2;
		}
	}
	if (source) {
		int fl = !strcmp(open_how, "path")     ? O_PATH
			 : !strcmp(open_how, "rdonly") ? O_RDONLY
						       : O_PATH | O_DIRECTORY;

		source_fd = open(source, fl | O_CLOEXEC);
		if (source_fd < 0) {
			fprintf(stderr, "open %s: %m\n", source);
			return 3;
		}
		if (swap) {
			char old[4096];

			snprintf(old, sizeof(old), "%s.orig", source);
			if (rename(source, old) < 0 ||
			    symlink(swap, source) < 0) {
				perror("swap");
				return 3;
			}
		}
	}
	if (source_socket) {
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			return 3;
		source_fd = sp[0];
	}
	if (source_fd >= 0)
		fds[nfds++] = source_fd;
	if (userns_fd >= 0)
		fds[nfds++] = userns_fd;
	if (nfds_override >= 0) {
		while (nfds < nfds_override && nfds < 64)
			fds[nfds] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0), nfds++;
		if (nfds_override < nfds)
			nfds = nfds_override;
	}
	if (raw >= 0) {
		buf = malloc((size_t)raw + 1);
		memset(buf, 'x', (size_t)raw);
		buf[raw] = 0;
	} else if (json) {
		buf = strdup(json);
	} else {
		struct shift_mountd_request r = {.version =
						     SHIFT_MOUNTD_VERSION,
						 .map = (char *)map,
						 .userns = userns_fd >= 0};

		buf = shift_mountd_request_format(&r);
	}
	for (int k = 0; k < count; k++) {
		char msg[1024];
		int mfd =
		    exchange(sock, buf, raw >= 0 ? (size_t)raw : strlen(buf),
			     fds, nfds, disconnect, msg, sizeof(msg));

		if (mfd >= 0) {
			ok++;
			if (count == 1)
				printf("ok\n");
			for (int i = 0; i < nstats; i++) {
				struct stat st;

				if (fstatat(mfd, stats[i], &st,
					    AT_SYMLINK_NOFOLLOW |
						AT_EMPTY_PATH) < 0)
					printf("%s %s\n", stats[i],
					       name_of(errno));
				else
					printf("%s %u:%u\n", stats[i],
					       (unsigned)st.st_uid,
					       (unsigned)st.st_gid);
			}
			if (attach_dir)
				rc = attach(mfd, attach_dir, stats, nstats);
			close(mfd);
			continue;
		}
		if (mfd == -EAGAIN) {
			/* --count: each distinct "busy" answer once, so a
			 * flood test can check they are the documented ones */
			bool seen = false;

			for (int i = 0; i < nbusy_msgs; i++)
				seen |= !strcmp(busy_msgs[i], msg);
			if (!seen && nbusy_msgs < 8 && count > 1)
				snprintf(busy_msgs[nbusy_msgs++],
					 sizeof(busy_msgs[0]), "%s", msg);
			busy++;
		} else
			refused++;
		if (count == 1) {
			printf("refused: %s: %s\n", name_of(-mfd), msg);
			rc = 1;
		}
		if (mfd == -EIO) {
			printf("error: %s\n", msg);
			rc = 4;
		}
	}
	if (count > 1)
		printf("ok=%d busy=%d refused=%d\n", ok, busy, refused);
	for (int i = 0; i < nbusy_msgs; i++)
		printf("busy: %s\n", busy_msgs[i]);
	free(buf);
	return rc;
}
