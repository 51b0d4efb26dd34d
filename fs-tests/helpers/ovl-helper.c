/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ovl-helper: build an overlayfs from layers given as file descriptors,
 * the raw steps the kernel-rule tests of overlay re-assembly need (so they
 * check the kernel, not libshift; only the map grammar and the user
 * namespace come from libshift).
 *
 *   ovl-helper [OPTIONS] LOWER... TARGET
 *
 *   --map MAP           idmap every layer clone with MAP ([u:|g:|b:]A:B:N)
 *   --upper DIR --work DIR
 *                       the writable layer (paths, or with --idmap-upper
 *                       idmapped clones as fds)
 *   --idmap-upper       upper and work as fds of one idmapped clone of
 *                       their common parent directory
 *   --separate-clones   ... of two clones, one each
 *   --close-early       close each layer fd right after handing it over
 *   --by-path           the lower layers as "lowerdir+" paths (no clones,
 *                       no idmap; up to 500 of them)
 *   --fsuid N           create the overlay with fsuid/fsgid N (a child
 *                       does FSCONFIG_CMD_CREATE), capabilities kept
 *                       (SECBIT_NO_SETUID_FIXUP)
 *   --in-userns         create it in a child inside a new user and mount
 *                       namespace with MAP (one extent A:B:N: the
 *                       namespace's id A is host id B), from the fds
 *                       made outside; only "create:" is printed
 *   -o KEY[=VALUE]      an overlay option (repeatable)
 *
 * Prints "create: OK" or "create: ERRNO", then (when created and
 * attached at TARGET) "mount: rw" or "mount: ro", and the kernel's own
 * messages as "log: ..." lines.  Exit 0 when every step ran, whatever
 * the kernel answered; 1 when the helper failed; 2 on bad usage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/macros.h"
#include "shift.h"
#include "util/syscalls.h"

static _noreturn_ void die(const char *what)
{
	fprintf(stderr, "ovl-helper: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void kernel_log(int fsfd)
{
	char buf[512];
	ssize_t n;

	while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		printf("log: %s\n", buf);
	}
}

static void shift_idmap_freep(struct shift_idmap **m)
{
	shift_idmap_free(*m);
}

static int clone_tree(const char *path, int userns)
{
	struct mount_attr attr = {
	    .attr_set = MOUNT_ATTR_IDMAP,
	    .userns_fd = (uint64_t)userns,
	};
	int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		die(path);
	if (userns >= 0 &&
	    mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		die("mount_setattr");
	return fd;
}

/* The result of a child's FSCONFIG_CMD_CREATE, as its exit status. */
static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"map", required_argument, NULL, 'm'},
	    {"upper", required_argument, NULL, 'u'},
	    {"work", required_argument, NULL, 'w'},
	    {"idmap-upper", no_argument, NULL, 'I'},
	    {"separate-clones", no_argument, NULL, 'S'},
	    {"close-early", no_argument, NULL, 'C'},
	    {"by-path", no_argument, NULL, 'P'},
	    {"fsuid", required_argument, NULL, 'F'},
	    {"in-userns", no_argument, NULL, 'N'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_(shift_idmap_freep) struct shift_idmap *map = NULL;
	const char *upper = NULL, *work = NULL, *opts[32];
	bool idmap_upper = false, separate = false, close_early = false;
	bool by_path = false;
	bool in_userns = false;
	long fsuid = -1;
	int nopts = 0, c, userns = -EBADF, fsfd, mfd, err = 0;
	int fds[64], nfds = 0, ufd = -EBADF, wfd = -EBADF, i;
	struct shift_error err_s = { 0 };
	const char *map_spec = NULL;

	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			map_spec = optarg;
			shift_idmap_free(map);
			map = shift_idmap_new();
			if (!map ||
			    shift_idmap_parse(map, optarg, &err_s) < 0) {
				fprintf(stderr,
					"ovl-helper: bad map '%s': %s\n",
					optarg, shift_error_why(&err_s, -EINVAL));
				return 2;
			}
			break;
		case 'u':
			upper = optarg;
			break;
		case 'w':
			work = optarg;
			break;
		case 'I':
			idmap_upper = true;
			break;
		case 'S':
			separate = true;
			break;
		case 'P':
			by_path = true;
			break;
		case 'C':
			close_early = true;
			break;
		case 'F':
			fsuid = strtol(optarg, NULL, 10);
			break;
		case 'N':
			in_userns = true;
			break;
		case 'o':
			if (nopts == (int)ARRAY_SIZE(opts))
				return 2;
			opts[nopts++] = optarg;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind < 2 || argc - optind > (by_path ? 501 : 64) ||
	    !upper != !work || (in_userns && !map))
		return 2;

	if (map) {
		userns = shift_userns_create(map);
		if (userns < 0) {
			errno = -userns;
			die("user namespace");
		}
	}
	for (i = optind; i < argc - 1 && !by_path; i++)
		fds[nfds++] = clone_tree(argv[i], userns);
	if (upper && idmap_upper) {
		if (separate) {
			int t1 = clone_tree(upper, userns),
			    t2 = clone_tree(work, userns);

			ufd = t1;
			wfd = t2;
		} else {
			/* upper and work are siblings: clone their parent. */
			char *p = strdup(upper),
			     *slash = p ? strrchr(p, '/') : NULL;
			int t;

			if (!slash)
				return 2;
			*slash = '\0';
			t = clone_tree(*p ? p : "/", userns);
			ufd = openat(t, slash + 1,
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			wfd = openat(t, strrchr(work, '/') + 1,
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (ufd < 0 || wfd < 0)
				die("open upper/work");
			free(p);
			/* t stays open: closing it would dissolve the clone. */
		}
	}

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		die("fsopen");
	for (i = optind; i < argc - 1 && by_path; i++)
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", argv[i],
			     0) < 0)
			die("lowerdir+");
	for (i = 0; i < nfds; i++) {
		if (fsconfig(fsfd, FSCONFIG_SET_FD, "lowerdir+", NULL, fds[i]) <
		    0)
			die("lowerdir+");
		if (close_early)
			close(fds[i]);
	}
	if (upper && idmap_upper) {
		if (fsconfig(fsfd, FSCONFIG_SET_FD, "upperdir", NULL, ufd) <
			0 ||
		    fsconfig(fsfd, FSCONFIG_SET_FD, "workdir", NULL, wfd) < 0)
			err = errno;
	} else if (upper) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) <
			0 ||
		    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
			err = errno;
	}
	for (i = 0; i < nopts && !err; i++) {
		char *kv = strdup(opts[i]), *eq = kv ? strchr(kv, '=') : NULL;

		if (!kv)
			die("strdup");
		if (eq)
			*eq = '\0';
		if ((eq ? fsconfig(fsfd, FSCONFIG_SET_STRING, kv, eq + 1, 0)
			: fsconfig(fsfd, FSCONFIG_SET_FLAG, kv, NULL, 0)) < 0)
			err = errno;
		free(kv);
	}
	if (err) {
		printf("config: %s\n", ename(err));
		kernel_log(fsfd);
		return 0;
	}

	if (in_userns) {
		/* The child unshares and waits for its maps; it only creates
		 * (a detached mount can't be handed back into a namespace it
		 * doesn't own anyway): its answer is the exit status. */
		int sync[2], ready[2];
		pid_t pid;
		char ok;

		if (pipe(sync) < 0 || pipe(ready) < 0)
			die("pipe");
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(sync[1]);
			close(ready[0]);
			if (unshare(CLONE_NEWUSER) < 0)
				_exit(errno);
			if (write(ready[1], "r", 1) != 1 ||
			    read(sync[0], &ok, 1) != 1)
				_exit(EIO);
			if (unshare(CLONE_NEWNS) < 0)
				_exit(errno);
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
				_exit(errno);
			if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) <
			    0)
				_exit(errno);
			_exit(0);
		}
		close(sync[0]);
		close(ready[1]);
		if (read(ready[0], &ok, 1) != 1)
			die("child");
		{
			/* MAP a:b:n is the namespace's own "a b n": its id a
			 * is host id b (one extent, for both kinds). */
			unsigned long x, y, n;
			char path[64];
			const char *spec = map_spec;
			FILE *f;
			int k;

			if (!strncmp(spec, "b:", 2))
				spec += 2;
			if (sscanf(spec, "%lu:%lu:%lu", &x, &y, &n) != 3)
				return 2;
			for (k = 0; k < 2; k++) {
				snprintf(path, sizeof(path), "/proc/%d/%s", pid,
					 k ? "gid_map" : "uid_map");
				f = fopen(path, "w");
				if (!f)
					die(path);
				fprintf(f, "%lu %lu %lu\n", x, y, n);
				if (fclose(f) != 0)
					die(path);
			}
		}
		if (write(sync[1], "x", 1) != 1)
			die("write");
		close(sync[1]);
		err = wait_child(pid);
		printf("create: %s\n", err ? ename(err) : "OK");
		kernel_log(fsfd);
		return 0;
	}

	if (fsuid >= 0) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

			if (bits < 0 ||
			    prctl(PR_SET_SECUREBITS,
				  (unsigned long)bits | SECBIT_NO_SETUID_FIXUP,
				  0, 0, 0) < 0)
				_exit(errno);
			setfsgid((gid_t)fsuid);
			setfsuid((uid_t)fsuid);
			if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) <
			    0)
				_exit(errno);
			_exit(0);
		}
		err = wait_child(pid);
	} else if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		err = errno;
	}
	printf("create: %s\n", err ? ename(err) : "OK");
	kernel_log(fsfd);
	if (err)
		return 0;
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		die("fsmount");
	if (move_mount(mfd, "", AT_FDCWD, argv[argc - 1],
		       MOVE_MOUNT_F_EMPTY_PATH) < 0)
		die("move_mount");
	{
		struct statvfs sv;

		if (statvfs(argv[argc - 1], &sv) < 0)
			die("statvfs");
		printf("mount: %s\n", sv.f_flag & ST_RDONLY ? "ro" : "rw");
	}
	return 0;
}
