/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layers: a normal user's (rootless) layer store.
 *
 * Root's store keeps layers with the image's ids on disk (canonical).  A
 * normal user may own only its uid and its /etc/subuid, /etc/subgid
 * delegation, so its store keeps container id 0 as its own uid (gid: its
 * primary group) and container id k >= 1 as the k-th id of its
 * delegation (in the files' order): the layers are extracted inside a
 * user namespace with exactly that map, made through newuidmap and
 * newgidmap (shift_userns_create), by the same code as root's store, so
 * nothing is chowned afterwards and file capabilities and ACLs are
 * translated by the kernel.  In that namespace no trusted.* xattr can be
 * set and no device node made: opaque directories are marked with
 * user.overlay.opaque (what an overlay mounted with "userxattr" reads:
 * the only kind a user namespace may mount), whiteouts stay 0/0 character
 * devices (the kernel lets a user namespace make those, since 5.8),
 * device nodes are skipped with an event.
 *
 * The store is keyed by that map: STORE/delegation.json records it when
 * the store is made, and a store of another user or delegation (or root's
 * canonical one) is refused, so two delegations never share layers whose
 * on-disk ids mean different things to each.  shift_layer_mount_user()
 * (layer-mount-user.c) reads the record to turn a container map into the
 * map of the store's on-disk ids.
 */
#include "config.h"
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <json-c/json.h>

#include "oci/layer-internal.h"
#include "util/error.h"
#include "util/syscalls.h"

static void idmap_freep(struct shift_idmap **m)
{
	shift_idmap_free(*m);
}

/* diag with a formatted reason, unless it says something already. */
_printf_(4, 5) static int diag_fmt(struct shift_error *diag, int err,
				   const char *where, const char *fmt, ...)
{
	va_list ap;

	if (!diag || diag->path || diag->why)
		return err;
	va_start(ap, fmt);
	sk_error_setv(diag, err, fmt, ap);
	va_end(ap);
	return sk_error_path(diag, err, where);
}

/*
 * The store's map, as a user namespace's (disk = container id, seen =
 * host id): 0 is the caller's own uid and primary gid, 1.. its delegation.
 * -ENOKEY: no delegation of a kind.
 */
static int store_ns_map(struct shift_idmap *ns)
{
	struct passwd *pw = getpwuid(getuid());
	_cleanup_(idmap_freep) struct shift_idmap *sub = shift_idmap_new();
	int r;

	if (!sub)
		return -ENOMEM;
	r = pw ? shift_idmap_from_subid(sub, pw->pw_name) : -ENOENT;
	if (r == -ENOENT) {
		char uidstr[16];

		snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)getuid());
		r = shift_idmap_from_subid(sub, uidstr);
	}
	if (r == -ENOENT)
		return -ENOKEY;
	if (r < 0)
		return r;
	for (unsigned k = 0; k < 2; k++) {
		uint32_t own = k == SHIFT_UID ? (uint32_t)getuid()
			       : pw	      ? (uint32_t)pw->pw_gid
					      : (uint32_t)getgid();
		uint64_t next = 1;

		r = shift_idmap_add(ns, k, 0, own, 1, NULL);
		for (unsigned i = 0; r >= 0 && i < shift_idmap_count(sub, k);
		     i++) {
			struct shift_extent x;

			shift_idmap_extent(sub, k, i, &x);
			if (next + x.count > UINT32_MAX)
				return -ERANGE;
			r = shift_idmap_add(ns, k, (uint32_t)next, x.seen,
					    x.count, NULL);
			next += x.count;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

bool sk_layer_store_is_rootless(const char *store_dir)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/" SK_LAYER_DELEGATION_FILE, store_dir) < 0)
		return false;
	return access(path, F_OK) == 0;
}

int sk_layer_store_read_delegation(const char *store_dir,
				   struct shift_idmap **ret_map, uid_t *ret_uid)
{
	_cleanup_free_ char *path = NULL;
	struct json_object *o, *m = NULL, *u = NULL;
	struct shift_idmap *map;
	int r;

	if (asprintf(&path, "%s/" SK_LAYER_DELEGATION_FILE, store_dir) < 0)
		return -ENOMEM;
	o = json_object_from_file(path);
	/* Missing (-ENOENT) is not unreadable (-EACCES: a store the
	 * caller's ids can't reach) nor malformed. */
	if (!o)
		return access(path, R_OK) == 0 ? -EBADMSG : negative_errno();
	if (!json_object_object_get_ex(o, "map", &m) ||
	    !json_object_is_type(m, json_type_string) ||
	    !json_object_object_get_ex(o, "uid", &u) ||
	    !json_object_is_type(u, json_type_int)) {
		json_object_put(o);
		return -EBADMSG;
	}
	map = shift_idmap_new();
	if (!map) {
		json_object_put(o);
		return -ENOMEM;
	}
	r = shift_idmap_parse(map, json_object_get_string(m), NULL);
	if (r >= 0 && (shift_idmap_count(map, SHIFT_UID) == 0 ||
		       shift_idmap_count(map, SHIFT_GID) == 0))
		r = -EBADMSG;
	if (r < 0) {
		shift_idmap_free(map);
		json_object_put(o);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	*ret_uid = (uid_t)json_object_get_int64(u);
	*ret_map = map;
	json_object_put(o);
	return 0;
}

static int write_delegation(const char *store_dir, const struct shift_idmap *ns)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL, *s = NULL;
	struct json_object *o = json_object_new_object();
	const char *text;
	int fd, r = 0;

	s = shift_idmap_to_string(ns);
	if (!o || !s ||
	    asprintf(&path, "%s/" SK_LAYER_DELEGATION_FILE, store_dir) < 0 ||
	    asprintf(&tmp, "%s/.delegation.json.%d", store_dir, (int)getpid()) <
		0) {
		json_object_put(o);
		return -ENOMEM;
	}
	json_object_object_add(o, "uid", json_object_new_int64(getuid()));
	json_object_object_add(o, "map", json_object_new_string(s));
	text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		r = negative_errno();
	else {
		if (dprintf(fd, "%s\n", text) < 0)
			r = -EIO;
		if (close(fd) < 0 && r >= 0)
			r = negative_errno();
	}
	/* The first unpack into the store makes it; a racing one may have
	 * made the same record meanwhile (then checked by the caller). */
	if (r >= 0 &&
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 &&
	    errno != EEXIST)
		r = negative_errno();
	(void)unlink(tmp);
	json_object_put(o);
	return r;
}

/*
 * The store must be this delegation's: made now (an empty or new
 * directory), or recorded with the same map.
 */
static int check_store(const char *store_dir, const struct shift_idmap *ns,
		       struct shift_error *diag)
{
	_cleanup_(idmap_freep) struct shift_idmap *have = NULL;
	_cleanup_free_ char *mine = NULL, *theirs = NULL, *layers = NULL;
	uid_t uid = 0;
	int r;

	for (int tries = 0; tries < 2; tries++) {
		r = sk_layer_store_read_delegation(store_dir, &have, &uid);
		if (r != -ENOENT)
			break;
		if (asprintf(&layers, "%s/layers", store_dir) < 0)
			return -ENOMEM;
		if (access(layers, F_OK) == 0)
			return diag_fmt(diag, -EXDEV, store_dir,
					"it is a store of canonical layers "
					"(root's, no %s): a normal user "
					"keeps a store of its own",
					SK_LAYER_DELEGATION_FILE);
		free(layers);
		layers = NULL;
		r = write_delegation(store_dir, ns);
		if (r < 0)
			return diag_fmt(diag, r, store_dir,
					"cannot record the store's delegation "
					"(%s)",
					SK_LAYER_DELEGATION_FILE);
	}
	if (r == -EBADMSG)
		return diag_fmt(diag, r, store_dir,
				"its %s is not a delegation record",
				SK_LAYER_DELEGATION_FILE);
	if (r < 0)
		return diag_fmt(diag, r, store_dir, "cannot read its %s: %s",
				SK_LAYER_DELEGATION_FILE, strerror(-r));
	if (uid == getuid() && shift_idmap_equal(have, ns))
		return 0;
	mine = shift_idmap_to_string(ns);
	theirs = shift_idmap_to_string(have);
	return diag_fmt(diag, -EXDEV, store_dir,
			"it is the store of uid %u with the ids '%s', and "
			"this run is uid %u with '%s' (another user, or a "
			"changed /etc/subuid or /etc/subgid delegation): the "
			"on-disk ids would mean something else; use a store "
			"of your own",
			(unsigned)uid, theirs ? theirs : "?",
			(unsigned)getuid(), mine ? mine : "?");
}

/* ------------------------------------------------------------------ */
/* Work in the namespace: events and the result sent back               */

enum { MSG_EVENT = 1, MSG_GC = 2, MSG_RESULT = 3 };

struct msg_hdr {
	uint32_t type;
	int32_t r;	/* MSG_RESULT */
	uint32_t layer; /* MSG_EVENT, below too */
	uint32_t has_a, has_b, has_c;
	uint64_t size, bytes_read, bytes_total;
};

#define MSG_MAX (sizeof(struct msg_hdr) + 3 * PATH_MAX + 4096)

static void send_msg(int fd, const struct msg_hdr *h, const char *a,
		     const char *b, const char *c)
{
	struct iovec iov[4] = {
	    {.iov_base = (void *)h, .iov_len = sizeof(*h)},
	    {.iov_base = (void *)(a ? a : ""),
	     .iov_len = strlen(a ? a : "") + 1},
	    {.iov_base = (void *)(b ? b : ""),
	     .iov_len = strlen(b ? b : "") + 1},
	    {.iov_base = (void *)(c ? c : ""),
	     .iov_len = strlen(c ? c : "") + 1},
	};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 4};

	while (sendmsg(fd, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* One job for the namespace: run there (fd: the socket back), and each
 * event it sent handled here. */
struct ns_job {
	int (*run)(struct ns_job *j, const struct shift_idmap *ns, int fd,
		   struct shift_error *d);
	void (*on_msg)(struct ns_job *j, const struct msg_hdr *h, const char *a,
		       const char *b, const char *c);
	const volatile sig_atomic_t *cancel;
	/* unpack */
	const struct shift_oci_image *img;
	const char *store;
	const struct shift_layer_opts *opts;
	/* gc */
	const struct shift_oci_image *const *keep;
	unsigned flags;
	void (*on_remove)(const struct shift_layer_gc_event *ev,
			  void *userdata);
	void *userdata;
};

static void forward_event(const struct shift_layer_event *ev, void *userdata)
{
	int fd = *(int *)userdata;
	struct msg_hdr h = {
	    .type = MSG_EVENT,
	    .layer = ev->layer,
	    .size = ev->size,
	    .bytes_read = ev->bytes_read,
	    .bytes_total = ev->bytes_total,
	};

	send_msg(fd, &h, ev->what, ev->path, NULL);
}

static int unpack_run(struct ns_job *j, const struct shift_idmap *ns, int fd,
		      struct shift_error *d)
{
	_cleanup_(idmap_freep) struct shift_idmap *ident = shift_idmap_new();
	struct shift_layer_opts o = *j->opts;
	int r = ident ? 0 : -ENOMEM;

	/* The ids the store may hold, as the namespace sees them: an id
	 * outside is refused naming the entry, before any syscall fails. */
	for (unsigned k = 0; r >= 0 && k < 2; k++)
		for (unsigned i = 0; r >= 0 && i < shift_idmap_count(ns, k);
		     i++) {
			struct shift_extent x;

			shift_idmap_extent(ns, k, i, &x);
			r = shift_idmap_add(ident, k, x.disk, x.disk, x.count,
					    NULL);
		}
	if (r < 0)
		return r;
	/* layers/, layer.json, manifest: see sk_layer_store_unpack_userns */
	umask(022);
	o.flags |= SK_LAYER_ROOTLESS;
	if (j->opts->on_entry) {
		o.on_entry = forward_event;
		o.userdata = &fd;
	}
	return sk_layer_store_unpack_here(j->img, j->store, &o, ident, d);
}

static void unpack_msg(struct ns_job *j, const struct msg_hdr *h, const char *a,
		       const char *b, const char *c)
{
	struct shift_layer_event ev = {
	    .layer = h->layer,
	    .path = b,
	    .what = a,
	    .size = h->size,
	    .bytes_read = h->bytes_read,
	    .bytes_total = h->bytes_total,
	};

	if (h->type != MSG_EVENT || !j->opts->on_entry ||
	    h->layer >= j->img->n_layers)
		return;
	ev.digest = j->img->layers[h->layer].digest;
	j->opts->on_entry(&ev, j->opts->userdata);
}

static void forward_gc(const struct shift_layer_gc_event *ev, void *userdata)
{
	int fd = *(int *)userdata;
	struct msg_hdr h = {
	    .type = MSG_GC,
	    .has_c = !!ev->name,
	};

	send_msg(fd, &h, ev->kind, ev->path, ev->name);
}

static int gc_run(struct ns_job *j, const struct shift_idmap *ns, int fd,
		  struct shift_error *d)
{
	return shift_layer_gc(j->store, j->keep, j->flags,
			      j->on_remove ? forward_gc : NULL, &fd, d);
}

static void gc_msg(struct ns_job *j, const struct msg_hdr *h, const char *a,
		   const char *b, const char *c)
{
	if (h->type == MSG_GC && j->on_remove)
		j->on_remove(
		    &(struct shift_layer_gc_event){
			.kind = a, .path = b, .name = h->has_c ? c : NULL},
		    j->userdata);
}

_noreturn_ static void child(struct ns_job *j, const struct shift_idmap *ns,
			     int userns, int fd)
{
	struct shift_error d = {0};
	struct msg_hdr h = {.type = MSG_RESULT};
	int r;

	if (setns(userns, CLONE_NEWUSER) < 0)
		r = sk_error_set(&d, negative_errno(),
				 "cannot enter the user namespace of your "
				 "delegation");
	else
		r = j->run(j, ns, fd, &d);
	h.r = r;
	h.has_a = !!d.path;
	h.has_b = !!d.why;
	send_msg(fd, &h, d.path, d.why, NULL);
	_exit(0);
}

/*
 * Run j in a child process inside a user namespace of the caller's
 * delegation (ns, a store's map), passing its events on as they come.
 */
static int run_in_userns(struct ns_job *j, const struct shift_idmap *ns,
			 const char *store_dir, struct shift_error *diag)
{
	_cleanup_close_ int userns = -EBADF, sfd = -EBADF;
	char buf[MSG_MAX];
	bool got = false, killed = false;
	int sv[2], r, status;
	pid_t pid, parent;

	userns = shift_userns_create(ns);
	if (userns < 0)
		return diag_fmt(diag, userns == -ENOMEM ? -ENOMEM : -EPERM,
				store_dir,
				"cannot make a user namespace of your "
				"delegation through newuidmap and newgidmap "
				"(are they installed setuid root, and does "
				"/etc/subuid and /etc/subgid grant you the "
				"ids?): %s",
				strerror(-userns));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return negative_errno();
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		/* The caller killed (SIGKILL): stop as if asked to, leaving
		 * no half layer; a parent already gone is the same. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(1);
		child(j, ns, userns, sv[1]);
	}
	close(sv[1]);
	sfd = sv[0];
	r = -EIO;
	for (;;) {
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		struct msg_hdr h;
		const char *a, *b, *c;
		ssize_t n;

		/* A signal for us (SIGTERM to this pid) is the child's too:
		 * it stops at its next entry and cleans up. */
		if (j->cancel && *j->cancel && !killed) {
			(void)kill(pid, SIGTERM);
			killed = true;
		}
		if (poll(&p, 1, 200) <= 0)
			continue;
		n = recv(sfd, buf, MSG_MAX - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf[n] = '\0';
		if ((size_t)n < sizeof(h) + 3)
			continue;
		memcpy(&h, buf, sizeof(h));
		a = buf + sizeof(h);
		b = a + strlen(a) + 1;
		c = b < buf + n ? b + strlen(b) + 1 : b;
		if (c >= buf + n)
			continue;
		if (h.type != MSG_RESULT) {
			j->on_msg(j, &h, a, b, c);
			continue;
		}
		got = true;
		r = h.r;
		if (r < 0 && h.has_b)
			(void)diag_fmt(diag, r, h.has_a ? a : store_dir, "%s",
				       b);
		else if (r < 0 && h.has_a)
			sk_error_path(diag, r, a);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	if (!got) {
		if (WIFSIGNALED(status) && j->cancel && *j->cancel)
			return -ECANCELED;
		return diag_fmt(diag, -EIO, store_dir,
				"the work in the user namespace ended "
				"without a result (status %d)",
				status);
	}
	return r;
}

/* The store's map for this caller, -ENOKEY etc. with diag set. */
static int caller_ns_map(struct shift_idmap *ns, const char *store_dir,
			 struct shift_error *diag)
{
	int r = store_ns_map(ns);

	if (r == -ENOKEY)
		return diag_fmt(diag, r, store_dir,
				"a normal user's store keeps layers within "
				"its /etc/subuid and /etc/subgid delegation, "
				"and uid %u has none of a kind (ask the "
				"administrator: usermod --add-subuids, "
				"--add-subgids)",
				(unsigned)getuid());
	if (r < 0)
		return diag_fmt(diag, r, store_dir,
				"cannot read your delegation from /etc/subuid "
				"and /etc/subgid: %s",
				strerror(-r));
	return 0;
}

int sk_layer_store_unpack_userns(const struct shift_oci_image *img,
				 const char *store_dir,
				 const struct shift_layer_opts *opts,
				 struct shift_error *diag)
{
	_cleanup_(idmap_freep) struct shift_idmap *ns = shift_idmap_new();
	struct ns_job j = {
	    .run = unpack_run,
	    .on_msg = unpack_msg,
	    .cancel = opts->cancel,
	    .img = img,
	    .store = store_dir,
	    .opts = opts,
	};
	int r;

	if (!ns)
		return -ENOMEM;
	r = caller_ns_map(ns, store_dir, diag);
	if (r < 0)
		return r;
	if (!(opts->flags & SHIFT_LAYER_DRY_RUN)) {
		/* The store's own directories and files must be reachable
		 * by the user's container namespaces whatever the user's
		 * umask (the child sets it too). */
		mode_t old = umask(022);

		r = sk_mkdir_p(store_dir, 0755);
		if (r < 0)
			r = diag_fmt(diag, r, store_dir,
				     "cannot create the store: %s",
				     strerror(-r));
		else
			r = check_store(store_dir, ns, diag);
		umask(old);
		if (r < 0)
			return r;
	}
	return run_in_userns(&j, ns, store_dir, diag);
}

int sk_layer_gc_userns(const char *store_dir,
		       const struct shift_oci_image *const *keep,
		       unsigned flags,
		       void (*on_remove)(const struct shift_layer_gc_event *ev,
					 void *userdata),
		       void *userdata, struct shift_error *diag)
{
	_cleanup_(idmap_freep) struct shift_idmap *ns = shift_idmap_new();
	struct ns_job j = {
	    .run = gc_run,
	    .on_msg = gc_msg,
	    .store = store_dir,
	    .keep = keep,
	    .flags = flags,
	    .on_remove = on_remove,
	    .userdata = userdata,
	};
	int r;

	if (!ns)
		return -ENOMEM;
	r = caller_ns_map(ns, store_dir, diag);
	if (r < 0)
		return r;
	r = check_store(store_dir, ns, diag);
	if (r < 0)
		return r;
	return run_in_userns(&j, ns, store_dir, diag);
}
