/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Re-assembling an overlayfs mount over idmapped layers.
 *
 * A merged overlayfs can't be idmapped (mount_setattr gives EINVAL), but
 * the layers beneath it usually can, and overlayfs (>= 5.19) takes
 * idmapped layers.  So: read the source overlay's layers and options from
 * its mount options (mountinfo), clone each layer
 * detached (open_tree OPEN_TREE_CLONE), idmap the clones, hand them to a
 * new overlay as file descriptors (fsconfig lowerdir+/datadir+/upperdir/
 * workdir with FSCONFIG_SET_FD, Linux >= 6.13) and attach only the new
 * overlay.  No intermediate mount ever reaches a mount table, nothing is
 * written to any layer, and the cost does not depend on the tree's size.
 *
 * The source's upper layer is never given to the new overlay as an upper:
 * the source is live, and overlayfs must not see two mounts over one
 * upper (it refuses with index=on and corrupts without).  It becomes the
 * top-most read-only lower layer instead, under a new upper if one is
 * given.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount/mount-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

/* At most this many root entries are checked against the layers. */
#define ROOT_CHECK_MAX 4096

/* ------------------------------------------------------------------ */
/* NULL-terminated string vectors                                      */

static void strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* Append s (taken over, freed on failure) to *v. */
static int strv_push(char ***v, char *s)
{
	size_t n = strv_len(*v);
	char **nv;

	if (!s)
		return -ENOMEM;
	nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[n] = s;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading the source overlay                                          */

/* overlayfs's own unescaping of upperdir, workdir and the legacy lowerdir
 * list: a backslash quotes the next character. */
static void unescape_backslash(char *s)
{
	char *d = s;

	for (;; s++, d++) {
		if (*s == '\\' && s[1])
			s++;
		*d = *s;
		if (!*s)
			break;
	}
}

/*
 * The legacy "lowerdir=a:b::d1::d2" list (after octal unescaping): ':'
 * separates lower layers, "::" starts the data-only layers; a backslash
 * quotes the next character (e.g. "\:" in a path).
 */
static int split_lowerdir(const char *s, char ***lower, char ***data)
{
	bool in_data = false;
	const char *start = s;
	int r;

	for (;;) {
		if (*s == '\\' && s[1]) {
			s += 2;
			continue;
		}
		if (*s && *s != ':') {
			s++;
			continue;
		}
		{
			char *p = strndup(start, (size_t)(s - start));

			if (!p)
				return -ENOMEM;
			unescape_backslash(p);
			if (!*p) {
				free(p);
				return -EBADMSG;
			}
			r = strv_push(in_data ? data : lower, p);
			if (r < 0)
				return r;
		}
		if (!*s)
			return 0;
		if (s[1] == ':') {
			in_data = true;
			s++;
		}
		start = ++s;
	}
}

void shift_overlay_source_free(struct shift_overlay_source *src)
{
	if (!src)
		return;
	strv_free(src->lower);
	strv_free(src->data);
	free(src->upper);
	free(src->work);
	strv_free(src->options);
	strv_free(src->raw);
	free(src);
}

int shift_overlay_is_mount(const char *path)
{
	_cleanup_close_ int fd = -EBADF;
	uint64_t id, parent;
	struct statfs sfs;
	int r;

	if (!path)
		return -EINVAL;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (fstatfs(fd, &sfs) < 0)
		return negative_errno();
	if (sfs.f_type != OVERLAYFS_SUPER_MAGIC)
		return 0;
	r = sk_mnt_id_of(fd, "", &id);
	if (r == -ENOENT || r == -EINVAL)
		r = sk_mnt_id_of(fd, ".", &id);
	if (r < 0)
		return r;
	r = sk_mnt_id_of(fd, "..", &parent);
	if (r < 0)
		return r;
	/* "/" is its own parent; an overlay root elsewhere has a parent on
	 * another mount. */
	if (id == parent) {
		struct stat a, b;

		if (fstatat(fd, ".", &a, 0) < 0 || fstatat(fd, "..", &b, 0) < 0)
			return negative_errno();
		if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			return -EISDIR;
	}
	return 1;
}

/* Parse the raw super options of an overlay (mountinfo's own escaping)
 * into src; -EBADMSG for what can't be an overlay's options. */
int sk_overlay_parse_options(const char *optstr,
			     struct shift_overlay_source *src)
{
	_cleanup_free_ char *copy = strdup(optstr);
	char *save = NULL, *tok;
	bool legacy = false;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	/* Raw mountinfo: a ',' inside a value is still escaped (\054). */
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		_cleanup_free_ char *v = NULL;
		char *eq = strchr(tok, '='), *key;

		key = eq ? strndup(tok, (size_t)(eq - tok)) : strdup(tok);
		if (!key)
			return -ENOMEM;
		if (eq) {
			v = sk_unescape_octal(eq + 1, strlen(eq + 1));
			if (!v) {
				free(key);
				return -ENOMEM;
			}
		}
		if (strcmp(key, "ro") && strcmp(key, "rw") &&
		    strcmp(key, "seclabel")) {
			r = strv_push(&src->raw,
				      sk_unescape_octal(tok, strlen(tok)));
			if (r < 0) {
				free(key);
				return r;
			}
		}
		if (!strcmp(key, "ro") || !strcmp(key, "rw")) {
			src->read_only = key[1] == 'o';
			free(key);
			continue;
		}
		if (!strcmp(key, "seclabel")) { /* an LSM's, not overlayfs's */
			free(key);
			continue;
		}
		if (!strcmp(key, "lowerdir")) {
			free(key);
			if (!v || legacy || src->lower)
				return -EBADMSG;
			legacy = true;
			r = split_lowerdir(v, &src->lower, &src->data);
		} else if (!strcmp(key, "lowerdir+") ||
			   !strcmp(key, "datadir+")) {
			bool data = key[0] == 'd';

			free(key);
			if (!v || legacy)
				return -EBADMSG;
			r = strv_push(data ? &src->data : &src->lower,
				      TAKE_PTR(v));
		} else if (!strcmp(key, "upperdir") ||
			   !strcmp(key, "workdir")) {
			char **slot = key[0] == 'u' ? &src->upper : &src->work;

			free(key);
			if (!v || *slot)
				return -EBADMSG;
			unescape_backslash(v);
			*slot = TAKE_PTR(v);
			r = 0;
		} else if (v) {
			char *kv = NULL;

			if (asprintf(&kv, "%s=%s", key, v) < 0)
				kv = NULL;
			free(key);
			r = strv_push(&src->options, kv);
		} else {
			r = strv_push(&src->options, key);
		}
		if (r < 0)
			return r;
	}
	if (!src->lower || !!src->upper != !!src->work)
		return -EBADMSG;
	return 0;
}

/* A layer path from the options must be an absolute path to a directory,
 * and not "/" (what an overlay built from detached mounts shows). */
static int check_layer_path(const char *path)
{
	struct stat st;

	if (path[0] != '/' || !path[1]) {
		sk_debug("overlay layer '%s' is not an absolute path", path);
		return -EBADMSG;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		sk_debug("overlay layer '%s' is not a directory", path);
		return -EBADMSG;
	}
	return 0;
}

/*
 * Every entry of the overlay's root directory must exist in the upper or
 * a lower layer (whiteouts hide, they don't add; data-only layers add no
 * names): otherwise the paths in the options are not the overlay's
 * layers.
 */
static int check_root_entries(const char *path,
			      const struct shift_overlay_source *src)
{
	_cleanup_closedir_ DIR *d = NULL;
	size_t n = strv_len(src->lower) + 1, i, seen = 0;
	int *fds = NULL, r = 0;
	struct dirent *de;

	d = opendir(path);
	if (!d)
		return negative_errno();
	fds = calloc(n, sizeof(int));
	if (!fds)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		fds[i] = -EBADF;
	for (i = 0; i < n; i++) {
		const char *l = i == 0 ? src->upper : src->lower[i - 1];

		fds[i] = l ? open(l, O_PATH | O_DIRECTORY | O_CLOEXEC) : -EBADF;
		if (l && fds[i] < 0) {
			r = -EBADMSG;
			goto out;
		}
	}
	errno = 0;
	while ((de = readdir(d)) && seen++ < ROOT_CHECK_MAX) {
		struct stat st;
		bool found = false;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (i = 0; i < n && !found; i++)
			found =
			    fds[i] >= 0 && fstatat(fds[i], de->d_name, &st,
						   AT_SYMLINK_NOFOLLOW) == 0;
		if (!found) {
			_cleanup_free_ char *e = shift_escape(de->d_name);

			sk_debug("'%s' in the overlay's root is in none of its "
				 "layers",
				 e ? e : "?");
			r = -EBADMSG;
			goto out;
		}
		errno = 0;
	}
	if (!de && errno)
		r = negative_errno();
out:
	for (i = 0; i < n; i++)
		safe_close(fds[i]);
	free(fds);
	return r;
}

int shift_overlay_source_read(const char *path,
			      struct shift_overlay_source **ret)
{
	_cleanup_free_ char *root = NULL, *type = NULL, *opts = NULL;
	struct shift_overlay_source *src = NULL;
	struct sk_mountinfo mi;
	uint64_t id;
	size_t i;
	int r;

	if (!path || !ret)
		return -EINVAL;
	r = shift_overlay_is_mount(path);
	if (r == 0)
		return -EMEDIUMTYPE;
	if (r < 0)
		return r;
	r = sk_mnt_id_of(AT_FDCWD, path, &id);
	if (r < 0)
		return r;
	r = sk_mountinfo_by_id(id, &mi);
	if (r < 0)
		return r;
	root = TAKE_PTR(mi.root);
	type = TAKE_PTR(mi.fstype);
	opts = TAKE_PTR(mi.super_raw);
	sk_mountinfo_clear(&mi);
	if (strcmp(type, "overlay") != 0)
		return -EMEDIUMTYPE;
	if (strcmp(root, "/") != 0)
		return -EISDIR; /* a bind mount of a directory inside an overlay
				 */
	src = calloc(1, sizeof(*src));
	if (!src)
		return -ENOMEM;
	r = sk_overlay_parse_options(opts, src);
	if (r < 0)
		goto out;
	for (i = 0; src->lower[i] && r >= 0; i++)
		r = check_layer_path(src->lower[i]);
	for (i = 0; src->data && src->data[i] && r >= 0; i++)
		r = check_layer_path(src->data[i]);
	if (r >= 0 && src->upper)
		r = check_layer_path(src->upper);
	if (r >= 0 && src->work)
		r = check_layer_path(src->work);
	if (r >= 0)
		r = check_root_entries(path, src);
out:
	if (r < 0) {
		shift_overlay_source_free(src);
		return r;
	}
	*ret = src;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Building the new overlay                                            */

/*
 * overlayfs wants upper and work from one mount: clone the deepest
 * directory holding both (on their mount) once, idmapped, and open the two
 * beneath it.
 */
static int open_upper_work(const char *upper, const char *work, int userns_fd,
			   int *ret_tree, int *ret_upper, int *ret_work,
			   char *ret_rel[2])
{
	_cleanup_free_ char *u = realpath(upper, NULL),
			    *w = realpath(work, NULL);
	_cleanup_free_ char *prefix = NULL;
	_cleanup_close_ int tree = -EBADF;
	uint64_t iu, iw, ip;
	size_t k = 0, plen;
	int r;

	if (!u || !w)
		return negative_errno();
	r = sk_mnt_id_of(AT_FDCWD, u, &iu);
	if (r >= 0)
		r = sk_mnt_id_of(AT_FDCWD, w, &iw);
	if (r < 0)
		return r;
	if (iu != iw)
		return -EXDEV;
	while (u[k] && u[k] == w[k])
		k++;
	if (!((u[k] == '\0' || u[k] == '/') && (w[k] == '\0' || w[k] == '/')))
		while (k > 0 && u[k - 1] != '/')
			k--;
	plen = k > 1 && u[k - 1] == '/' ? k - 1 : k;
	prefix = strndup(u, plen ? plen : 1);
	if (!prefix)
		return -ENOMEM;
	/* Both on one mount: so is the directory holding them (the mount's
	 * root at the highest). */
	r = sk_mnt_id_of(AT_FDCWD, prefix, &ip);
	if (r < 0)
		return r;
	if (ip != iu)
		return -EXDEV;
	tree = shift_mount_clone_idmapped(AT_FDCWD, prefix, userns_fd, 0);
	if (tree < 0)
		return tree;
	{
		const char *paths[2] = {u, w};
		int *rets[2] = {ret_upper, ret_work};
		size_t i, l = strlen(prefix);

		for (i = 0; i < 2; i++) {
			struct open_how how = {
			    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
			    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				       RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS,
			};
			const char *rel = paths[i] + (l > 1 ? l : 0);

			while (*rel == '/')
				rel++;
			*rets[i] = sys_openat2(tree, *rel ? rel : ".", &how);
			if (*rets[i] < 0)
				return negative_errno();
			/* For overlayfs without layer fds: the same, by
			 * path beneath the tree once it is attached. */
			ret_rel[i] = strdup(*rel ? rel : ".");
			if (!ret_rel[i])
				return -ENOMEM;
		}
	}
	/* Kept open by the caller: closing it unmounts the clone. */
	*ret_tree = TAKE_FD(tree);
	return 0;
}

/*
 * FSCONFIG_CMD_CREATE with fsuid/fsgid set to uid/gid: overlayfs keeps the
 * creating task's credentials for its work files and copy-ups, and through
 * an idmapped upper they must be representable (host root is not, under a
 * map without host 0: EOVERFLOW and a read-only overlay).  The
 * capabilities stay (SECBIT_NO_SETUID_FIXUP) so copy-up can still chown
 * and keep setid bits.  Done in a child: the caller's credentials are
 * never changed.  The child shares the fs context (the same open file).
 */
static int become_creator(uid_t uid, gid_t gid)
{
	int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	if (bits < 0 ||
	    prctl(PR_SET_SECUREBITS,
		  (unsigned long)bits | SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0)
		return errno ? errno : EPERM;
	(void)setfsgid(gid);
	(void)setfsuid(uid);
	if ((gid_t)setfsgid((gid_t)-1) != gid ||
	    (uid_t)setfsuid((uid_t)-1) != uid)
		return EPERM;
	return 0;
}

/* The child's exit status as a negative errno. */
static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	if (!WIFEXITED(status))
		return -EIO;
	return -WEXITSTATUS(status);
}

static int create_as(int fsfd, uid_t uid, gid_t gid)
{
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		int e = become_creator(uid, gid);

		if (e)
			_exit(e);
		if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
			_exit(errno ? errno : EIO);
		_exit(0);
	}
	return wait_child(pid);
}

/* ------------------------------------------------------------------ */
/* Overlayfs without layer fds (Linux < 6.13)                          */

/*
 * Before 6.13 overlayfs takes layers only by path, and only on mounts of
 * the creating task's mount namespace.  So a child makes a private mount
 * namespace (a copy of ours, propagation off), attaches the idmapped
 * clones under a temp dir there, names them to overlayfs and creates the
 * superblock in the shared fs context; the parent then makes the mount
 * (fsmount) and attaches only it.  The clones are attached in the child's
 * namespace alone and go with it: our mount table gains the overlay and
 * nothing else.  LIBSHIFT_NO_FD_LAYERS=1 takes this path on any kernel
 * (tests).
 */
struct by_path {
	const int *fds; /* layer trees: lowers first, then data-only */
	size_t n, nl;
	int utree;    /* canonical upper: the idmapped tree, or -EBADF */
	char *rel[2]; /* its upper and work beneath the tree */
	const char *upper, *work; /* else: upper and work by path, or NULL */
	bool as;		  /* create as uid:gid (canonical upper) */
	uid_t uid;
	gid_t gid;
	char dir[256]; /* the temp dir ("" none): 0, 1, ... and u */
};

static bool fd_layers_off(void)
{
	const char *e = secure_getenv("LIBSHIFT_NO_FD_LAYERS");

	return e && *e && strcmp(e, "0") != 0;
}

static void by_path_cleanup(struct by_path *bp)
{
	char p[320];

	if (!bp->dir[0])
		return;
	/* Mount points only in the child's namespace, gone with it. */
	for (size_t i = 0; i < bp->n; i++) {
		snprintf(p, sizeof(p), "%s/%zu", bp->dir, i);
		(void)rmdir(p);
	}
	snprintf(p, sizeof(p), "%s/u", bp->dir);
	(void)rmdir(p);
	if (rmdir(bp->dir) < 0)
		sk_debug("Failed to remove '%s': %m", bp->dir);
	bp->dir[0] = '\0';
}

/*
 * In the child, in the temp dir: lowers and data-only layers by relative
 * path.  One "lowerdir=0:1::2" where it fits fsconfig's 256 bytes: every
 * overlayfs takes that, the legacy one (before 6.5, which accepts any key
 * and fails only at FSCONFIG_CMD_CREATE) included; else one
 * "lowerdir+"/"datadir+" each (6.8+).
 */
static int by_path_layers(int fsfd, const struct by_path *bp)
{
	char joined[256];
	size_t i, len = 0;
	char p[32];

	for (i = 0; i < bp->n && len < sizeof(joined); i++)
		len += (size_t)snprintf(joined + len, sizeof(joined) - len,
					"%s%zu",
					i == 0	     ? ""
					: i < bp->nl ? ":"
						     : "::",
					i);
	if (len < sizeof(joined))
		return fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", joined,
				0) < 0
			   ? negative_errno()
			   : 0;
	for (i = 0; i < bp->n; i++) {
		snprintf(p, sizeof(p), "%zu", i);
		if (fsconfig(fsfd, FSCONFIG_SET_STRING,
			     i < bp->nl ? "lowerdir+" : "datadir+", p, 0) < 0)
			return negative_errno();
	}
	return 0;
}

_noreturn_ static void by_path_child(int fsfd, const struct by_path *bp)
{
	char p[4096 + 32];
	int e;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    chdir(bp->dir) < 0)
		_exit(errno ? errno : EPERM);
	for (size_t i = 0; i < bp->n; i++) {
		snprintf(p, sizeof(p), "%zu", i);
		if (move_mount(bp->fds[i], "", AT_FDCWD, p,
			       MOVE_MOUNT_F_EMPTY_PATH) < 0)
			_exit(errno ? errno : EIO);
	}
	e = -by_path_layers(fsfd, bp);
	if (e)
		_exit(e);
	if (bp->utree >= 0) {
		if (move_mount(bp->utree, "", AT_FDCWD, "u",
			       MOVE_MOUNT_F_EMPTY_PATH) < 0)
			_exit(errno ? errno : EIO);
		for (int i = 0; i < 2; i++) {
			snprintf(p, sizeof(p), "u/%s", bp->rel[i]);
			if (fsconfig(fsfd, FSCONFIG_SET_STRING,
				     i ? "workdir" : "upperdir", p, 0) < 0)
				_exit(errno ? errno : EIO);
		}
	} else if (bp->upper && (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir",
					  bp->upper, 0) < 0 ||
				 fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir",
					  bp->work, 0) < 0)) {
		_exit(errno ? errno : EIO);
	}
	if (bp->as && (e = become_creator(bp->uid, bp->gid)))
		_exit(e);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		_exit(errno ? errno : EIO);
	_exit(0);
}

/* FSCONFIG_CMD_CREATE with the layers named by path, in a child. */
static int create_by_path(int fsfd, struct by_path *bp)
{
	const char *tmp = secure_getenv("TMPDIR");
	char p[320];
	pid_t pid;

	/* Only ever a mount point in the child's namespace. */
	if (!tmp || tmp[0] != '/' || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(bp->dir, sizeof(bp->dir), "%s/.shiftkit-ovl-XXXXXX", tmp);
	if (!mkdtemp(bp->dir)) {
		bp->dir[0] = '\0';
		return negative_errno();
	}
	for (size_t i = 0; i <= bp->n; i++) {
		if (i < bp->n)
			snprintf(p, sizeof(p), "%s/%zu", bp->dir, i);
		else if (bp->utree >= 0)
			snprintf(p, sizeof(p), "%s/u", bp->dir);
		else
			break;
		if (mkdir(p, 0700) < 0)
			return negative_errno();
	}
	pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0)
		by_path_child(fsfd, bp);
	return wait_child(pid);
}

/* Options that mean nothing (or are refused) without an upper layer. */
static bool upper_only(const char *opt)
{
	static const char *const names[] = {"index", "nfs_export", "volatile"};
	size_t i, l;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		l = strlen(names[i]);
		if (!strncmp(opt, names[i], l) && (!opt[l] || opt[l] == '='))
			return true;
	}
	return false;
}

/* The directory standing in for layer path, or NULL. */
static const char *plain_layer(const char *const *pairs, const char *path)
{
	size_t i;

	for (i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2)
		if (!strcmp(pairs[i], path))
			return pairs[i + 1];
	return NULL;
}

static void close_all(int *fds, size_t n)
{
	size_t i;

	if (!fds)
		return;
	for (i = 0; i < n; i++)
		safe_close(fds[i]);
	free(fds);
}

/*
 * Mount the source overlay again at path with the options it had (by
 * path, as it was made), after a failed --replace.
 */
static int restore_source(const struct shift_overlay_source *src,
			  const char *path)
{
	_cleanup_close_ int fsfd = -EBADF, mfd = -EBADF;
	size_t i;

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return negative_errno();
	for (i = 0; src->raw && src->raw[i]; i++) {
		_cleanup_free_ char *kv = strdup(src->raw[i]);
		char *eq;

		if (!kv)
			return -ENOMEM;
		eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		if ((eq ? fsconfig(fsfd, FSCONFIG_SET_STRING, kv, eq + 1, 0)
			: fsconfig(fsfd, FSCONFIG_SET_FLAG, kv, NULL, 0)) < 0) {
			int r = negative_errno();

			sk_fs_log(fsfd);
			return r;
		}
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int r = negative_errno();

		sk_fs_log(fsfd);
		return r;
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC,
		      src->read_only ? MOUNT_ATTR_RDONLY : 0);
	if (mfd < 0)
		return negative_errno();
	return shift_mount_attach(mfd, AT_FDCWD, path);
}

/* One re-assembly being built by shift_overlay_reassemble(), step by step. */
struct ra_build {
	const struct shift_reassemble *ra;
	const struct shift_overlay_source *src;
	int userns_fd;
	const char *upper, *work; /* the new overlay's, or NULL */
	bool canonical, upper_low, replace, unmounted, by_fd;
	uint32_t uid, gid;  /* the map's image of root */
	const char **paths; /* lower layers, then data layers */
	int *fds;	    /* their detached clones */
	size_t nl, n;
	int fsfd, mfd, ufd, wfd, utree;
	char *au, *aw; /* absolute upper and work (host-id upper) */
	struct by_path bp;
	const char *failed, *what;
};

/* What the request asks for, checked before anything is touched. */
static int ra_plan(struct ra_build *b, const struct shift_idmap *map)
{
	const struct shift_reassemble *ra = b->ra;

	b->src = ra->src;
	b->upper = ra->upper;
	b->work = ra->work;
	b->replace = ra->how & SHIFT_REASSEMBLE_REPLACE;
	b->canonical =
	    b->replace || (ra->how & SHIFT_REASSEMBLE_CANONICAL_UPPER);
	b->upper_low = !b->replace && b->src->upper &&
		       (ra->how & SHIFT_REASSEMBLE_UPPER_AS_LOWER);
	if (b->replace) {
		if (!b->src->upper || b->upper || !ra->source)
			return -EINVAL;
		b->upper = b->src->upper;
		b->work = b->src->work;
	}
	if (b->canonical && !b->upper)
		return -EINVAL;
	if (b->src->upper && !b->upper_low && !b->replace) {
		b->failed = b->src->upper;
		return -EBUSY;
	}
	if (shift_idmap_to_seen(map, SHIFT_UID, 0, &b->uid) < 0 ||
	    shift_idmap_to_seen(map, SHIFT_GID, 0, &b->gid) < 0)
		return -EINVAL; /* no image of root: nothing could own the upper
				 */
	return 0;
}

/* Each layer, as it is, cloned and idmapped (plain layers unmapped): no
 * submounts (overlayfs does not cross mounts inside a layer either). */
static int ra_clone_layers(struct ra_build *b)
{
	const struct shift_overlay_source *src = b->src;
	size_t i = 0;

	b->nl = strv_len(src->lower) + (b->upper_low ? 1 : 0);
	b->n = b->nl + strv_len(src->data);
	b->paths = calloc(b->n, sizeof(*b->paths));
	b->fds = calloc(b->n, sizeof(int));
	if (!b->paths || !b->fds) {
		free(b->fds);
		b->fds = NULL;
		return -ENOMEM;
	}
	for (size_t j = 0; j < b->n; j++)
		b->fds[j] = -EBADF;
	if (b->upper_low)
		b->paths[i++] = src->upper;
	for (size_t j = 0; src->lower[j]; j++)
		b->paths[i++] = src->lower[j];
	for (size_t j = 0; src->data && src->data[j]; j++)
		b->paths[i++] = src->data[j];
	for (i = 0; i < b->n; i++) {
		const char *plain =
		    plain_layer(b->ra->plain_layers, b->paths[i]);

		b->fds[i] = shift_mount_clone_idmapped(
		    AT_FDCWD, plain ? plain : b->paths[i],
		    plain ? -EBADF : b->userns_fd, 0);
		if (b->fds[i] < 0) {
			b->failed = b->paths[i];
			return b->fds[i];
		}
	}
	return 0;
}

/* The new upper and work: made (canonical: root's files are 0 on disk,
 * as in the image; the source's own are used as they are), then opened
 * idmapped (canonical) or named by absolute path (host ids). */
static int ra_upper(struct ra_build *b)
{
	uint32_t uid = b->canonical ? 0 : b->uid,
		 gid = b->canonical ? 0 : b->gid;
	int r;

	if (!b->upper)
		return 0;
	r = b->replace ? 0 : sk_ensure_layer_dir(b->upper, uid, gid, true);
	if (r < 0) {
		b->failed = b->upper;
		return r;
	}
	r = b->replace ? 0 : sk_ensure_layer_dir(b->work, uid, gid, true);
	if (r < 0) {
		b->failed = b->work;
		return r;
	}
	if (b->canonical) {
		r = open_upper_work(b->upper, b->work, b->userns_fd, &b->utree,
				    &b->ufd, &b->wfd, b->bp.rel);
		if (r < 0)
			b->failed = b->upper;
		return r;
	}
	b->au = realpath(b->upper, NULL);
	b->aw = realpath(b->work, NULL);
	if (!b->au || !b->aw) {
		b->failed = b->upper;
		return negative_errno();
	}
	return 0;
}

/* The layers as fds (lowerdir+/datadir+, 6.13+); before 6.13 overlayfs
 * takes none: then by path, from a private mount namespace (b->by_fd
 * false, a fresh fs context). */
static int ra_layers_by_fd(struct ra_build *b)
{
	for (size_t i = 0; b->by_fd && i < b->n; i++) {
		int r;

		if (fsconfig(b->fsfd, FSCONFIG_SET_FD,
			     i < b->nl ? "lowerdir+" : "datadir+", NULL,
			     b->fds[i]) >= 0)
			continue;
		/* The fds stay open until the overlay exists: closing a
		 * detached tree unmounts it, and overlayfs clones the
		 * layers' mounts only at FSCONFIG_CMD_CREATE. */
		r = negative_errno();
		sk_fs_log(b->fsfd);
		if (i == 0 && r == -EINVAL &&
		    shift_probe_feature(SHIFT_FEATURE_OVERLAY_FD_LAYERS,
					NULL) == 0) {
			sk_debug("overlay layers as fds refused: by path, in a "
				 "private mount namespace");
			b->by_fd = false;
			b->fsfd = safe_close(b->fsfd);
			b->fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
			return b->fsfd < 0 ? negative_errno() : 0;
		}
		b->failed = b->paths[i];
		return r;
	}
	return 0;
}

/* The upper and work (by fd: canonical, or by path) and the source's
 * options. */
static int ra_options(struct ra_build *b)
{
	const struct shift_overlay_source *src = b->src;
	int r = 0;

	if (b->upper && b->by_fd) {
		if (b->canonical)
			r = fsconfig(b->fsfd, FSCONFIG_SET_FD, "upperdir", NULL,
				     b->ufd) < 0 ||
				    fsconfig(b->fsfd, FSCONFIG_SET_FD,
					     "workdir", NULL, b->wfd) < 0
				? negative_errno()
				: 0;
		else
			r = fsconfig(b->fsfd, FSCONFIG_SET_STRING, "upperdir",
				     b->au, 0) < 0 ||
				    fsconfig(b->fsfd, FSCONFIG_SET_STRING,
					     "workdir", b->aw, 0) < 0
				? negative_errno()
				: 0;
		if (r < 0) {
			sk_fs_log(b->fsfd);
			b->failed = b->upper;
			return r;
		}
	}
	for (size_t i = 0; src->options && src->options[i]; i++) {
		_cleanup_free_ char *kv = strdup(src->options[i]);
		char *eq;

		if (!kv)
			return -ENOMEM;
		if (!b->upper && upper_only(kv))
			continue;
		eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		if ((eq ? fsconfig(b->fsfd, FSCONFIG_SET_STRING, kv, eq + 1, 0)
			: fsconfig(b->fsfd, FSCONFIG_SET_FLAG, kv, NULL, 0)) <
		    0) {
			r = negative_errno();
			sk_debug("overlay option '%s' refused: %s",
				 src->options[i], strerror(-r));
			sk_fs_log(b->fsfd);
			return r;
		}
	}
	return 0;
}

/* The superblock: by path in a child, as map(0) (canonical), or plain. */
static int ra_create(struct ra_build *b)
{
	int r;

	if (!b->by_fd) {
		b->bp.fds = b->fds;
		b->bp.n = b->n;
		b->bp.nl = b->nl;
		b->bp.utree = b->utree;
		b->bp.upper = b->au;
		b->bp.work = b->aw;
		b->bp.as = b->canonical;
		b->bp.uid = b->uid;
		b->bp.gid = b->gid;
		r = create_by_path(b->fsfd, &b->bp);
	} else if (b->canonical) {
		r = create_as(b->fsfd, b->uid, b->gid);
	} else {
		r = fsconfig(b->fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0
			? negative_errno()
			: 0;
	}
	if (r < 0)
		sk_fs_log(b->fsfd);
	return r;
}

int shift_overlay_reassemble(const struct shift_reassemble *ra,
			     const char *target, const struct shift_idmap *map,
			     int userns_fd, unsigned flags,
			     struct shift_error *err)
{
	struct ra_build b = {
	    .ra = ra,
	    .userns_fd = userns_fd,
	    .by_fd = !fd_layers_off(),
	    .fsfd = -EBADF,
	    .mfd = -EBADF,
	    .ufd = -EBADF,
	    .wfd = -EBADF,
	    .utree = -EBADF,
	    .bp = {.utree = -EBADF},
	};
	int r;

	if (!ra || !ra->src || !ra->src->lower || !target || !map ||
	    userns_fd < 0 || !ra->upper != !ra->work)
		return -EINVAL;
	r = ra_plan(&b, map);
	if (r >= 0)
		r = ra_clone_layers(&b);
	if (r >= 0)
		r = ra_upper(&b);
	if (r < 0)
		goto out;
	b.fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	r = b.fsfd < 0 ? negative_errno() : ra_layers_by_fd(&b);
	if (r >= 0)
		r = ra_options(&b);
	if (r < 0)
		goto out;
	/* Taking the source's place: only when nothing holds it (no lazy
	 * unmount), and never two overlays over its upper at once. */
	if (b.replace) {
		if (umount2(ra->source, UMOUNT_NOFOLLOW) < 0) {
			r = negative_errno();
			b.failed = ra->source;
			b.what = "unmount";
			goto out;
		}
		b.unmounted = true;
	}
	r = ra_create(&b);
	if (r < 0)
		goto out;
	b.mfd = fsmount(b.fsfd, FSMOUNT_CLOEXEC,
			(unsigned)sk_mount_attrs(
			    b.upper ? flags : flags | SHIFT_MOUNT_RDONLY));
	if (b.mfd < 0) {
		r = negative_errno();
		goto out;
	}
	r = shift_mount_attach(b.mfd, AT_FDCWD, target);
	if (r < 0) {
		b.failed = target;
		b.what = "attach";
	}
out:
	if (r < 0 && b.unmounted) {
		/* Back where it was: the new overlay's fs context and clones
		 * go first, so the upper is free again. */
		b.fsfd = safe_close(b.fsfd);
		b.mfd = safe_close(b.mfd);
		if (restore_source(b.src, ra->source) < 0) {
			r = -ENOTRECOVERABLE;
			b.failed = ra->source;
			b.what = "restore";
		}
	}
	by_path_cleanup(&b.bp);
	free(b.bp.rel[0]);
	free(b.bp.rel[1]);
	close_all(b.fds, b.fds ? b.n : 0);
	free(b.paths);
	free(b.au);
	free(b.aw);
	safe_close(b.fsfd);
	safe_close(b.mfd);
	safe_close(b.ufd);
	safe_close(b.wfd);
	safe_close(b.utree);
	if (r < 0)
		sk_error_what(err, sk_error_set_path(err, r, b.failed, NULL),
			      b.what);
	return r;
}
