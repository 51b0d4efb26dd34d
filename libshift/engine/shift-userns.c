/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unprivileged shifting: shift_tree() run inside a user namespace made of
 * the caller's /etc/subuid and /etc/subgid delegation (through newuidmap
 * and newgidmap), with the map and the events translated between host ids
 * and namespace ids.
 */
#include "config.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine-internal.h"

/* What the child reports through the pipe: its result exactly (an exit
 * status can't carry a negative errno), its statistics, and the name of
 * the engine that ran as text (the stats' pointer points into the
 * child). */
struct ns_result {
	int r;
	struct shift_stats st;
	char engine[16];
};

struct ns_events {
	const struct shift_options *outer;
	const struct shift_idmap *ns;
	uint32_t overflow[2];
};

/* Whether host id has an image under the caller's map as the run applies
 * it (backwards for --reverse). */
static bool outer_maps(const struct shift_options *o, enum shift_id_kind k,
		       uint32_t id)
{
	uint32_t v;

	return (o->flags & SHIFT_REVERSE)
		       ? shift_idmap_to_disk(o->map, k, id, &v) == 0
		       : shift_idmap_to_seen(o->map, k, id, &v) == 0;
}

/* The kernel's overflow id of kind k: what a user namespace shows for an
 * id it doesn't map. */
static uint32_t kernel_overflow(enum shift_id_kind k)
{
	_cleanup_fclose_ FILE *f = fopen(k == SHIFT_UID ? "/proc/sys/kernel/overflowuid"
							: "/proc/sys/kernel/overflowgid",
					 "re");
	unsigned v;

	return f && fscanf(f, "%u", &v) == 1 ? v : SHIFT_OVERFLOW_ID;
}

/* A namespace id as the host's; the overflow id (which build_ns_map()
 * leaves unmapped) stands for an id outside the delegation: unknown. */
static uint32_t ns_to_host(const struct ns_events *n, enum shift_id_kind k,
			   uint32_t id)
{
	uint32_t v;

	if (id == n->overflow[k])
		return SHIFT_ID_UNKNOWN;
	return shift_idmap_to_seen(n->ns, k, id, &v) == 0 ? v : id;
}

static void ns_on_event(const struct shift_event *ev, void *userdata)
{
	const struct ns_events *n = userdata;
	struct shift_event x = *ev;

	/* Only the fields that hold ids for this type of event (id is a
	 * link count for EXTERNAL_LINK).  An id without a host image (the
	 * kernel's -1 for an ACL qualifier outside the delegation) stays. */
	if (ev->type == SHIFT_EVENT_UNMAPPED) {
		x.id = ns_to_host(n, ev->kind, ev->id);
		/* It has an image, but one the namespace can't store. */
		if (x.id != SHIFT_ID_UNKNOWN &&
		    outer_maps(n->outer, ev->kind, x.id))
			x.what |= SHIFT_WHAT_OUTSIDE;
	}
	if (ev->type == SHIFT_EVENT_CHANGE) {
		x.uid = ns_to_host(n, SHIFT_UID, ev->uid);
		x.gid = ns_to_host(n, SHIFT_GID, ev->gid);
		x.new_uid = ns_to_host(n, SHIFT_UID, ev->new_uid);
		x.new_gid = ns_to_host(n, SHIFT_GID, ev->new_gid);
	}
	n->outer->on_event(&x, n->outer->userdata);
}

/* The caller's own id of kind k, which newuidmap/newgidmap map for
 * anyone (one id): its uid, its primary group from passwd. */
static uint32_t own_id(const struct passwd *pw, enum shift_id_kind k)
{
	if (k == SHIFT_UID)
		return (uint32_t)getuid();
	return pw ? (uint32_t)pw->pw_gid : (uint32_t)getgid();
}

/*
 * The namespace: the caller's delegation from namespace id 0 (as before,
 * so that the intents of an interrupted run keep their meaning), then the
 * caller's own uid and gid after it -- newuidmap and newgidmap grant both,
 * and they are what the caller's own files are owned by.  The kernel's
 * overflow id stays unmapped (the ids above it move up by one), so that
 * inside the namespace it means "an id outside what the caller owns" and
 * nothing else.  -ENOKEY: no delegation.
 */
static int build_ns_map(struct shift_idmap *ns, const uint32_t overflow[2])
{
	struct passwd *pw = getpwuid(getuid());
	struct shift_idmap *sub = shift_idmap_new();
	unsigned k, i;
	int r;

	if (!sub)
		return -ENOMEM;
	r = pw ? shift_idmap_from_subid(sub, pw->pw_name) : -ENOENT;
	if (r < 0 && pw) {
		char uidstr[16];

		snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)getuid());
		r = shift_idmap_from_subid(sub, uidstr);
	}
	if (r == -ENOENT)
		r = -ENOKEY;
	if (r < 0)
		goto out;
	for (k = 0; k < 2 && r >= 0; k++) {
		uint32_t ov = overflow[k], up = 0, own = own_id(pw, k), v;
		uint64_t next = 0;

		for (i = 0; i < shift_idmap_count(sub, k) && r >= 0; i++) {
			struct shift_extent x;
			uint64_t start;

			shift_idmap_extent(sub, k, i, &x);
			start = (uint64_t)x.disk + up;
			if (!up && ov >= start && ov < start + x.count) {
				uint32_t below = ov - (uint32_t)start;

				if (below)
					r = shift_idmap_add(ns, k, (uint32_t)start,
							    x.seen, below, NULL);
				if (r >= 0)
					r = shift_idmap_add(ns, k, ov + 1,
							    x.seen + below,
							    x.count - below, NULL);
				up = 1;
				if (start + x.count + 1 > next)
					next = start + x.count + 1;
				continue;
			}
			if (start + x.count > UINT32_MAX) {
				r = -ERANGE;
				break;
			}
			r = shift_idmap_add(ns, k, (uint32_t)start, x.seen,
					    x.count, NULL);
			if (start + x.count > next)
				next = start + x.count;
		}
		/* the caller's own id, unless the delegation holds it */
		if (r < 0 || shift_idmap_to_disk(ns, k, own, &v) == 0)
			continue;
		if (next == ov)
			next++;
		if (next >= UINT32_MAX) {
			r = -ERANGE;
			break;
		}
		r = shift_idmap_add(ns, k, (uint32_t)next, own, 1, NULL);
	}
out:
	shift_idmap_free(sub);
	return r < 0 ? r : 0;
}

/* In the child: enter the user namespace and run the engine with the
 * namespace's view of the map (inner) and of the overflow ids. */
static int ns_child(const char *path, const struct shift_options *opts,
		    int userns, const struct shift_idmap *ns,
		    const struct shift_idmap *inner, struct ns_events *ne,
		    struct shift_stats *ret_stats)
{
	struct shift_options o = *opts;
	uint32_t v;

	if (setns(userns, CLONE_NEWUSER) < 0)
		return negative_errno();
	o.map = inner;
	if (opts->unmapped == SHIFT_UNMAPPED_OVERFLOW) {
		if (shift_idmap_to_disk(ns, SHIFT_UID,
					opts->overflow_uid ? opts->overflow_uid
							   : SHIFT_OVERFLOW_ID,
					&v) < 0)
			return -ERANGE;
		o.overflow_uid = v ? v : SHIFT_OVERFLOW_ID;
		if (shift_idmap_to_disk(ns, SHIFT_GID,
					opts->overflow_gid ? opts->overflow_gid
							   : SHIFT_OVERFLOW_ID,
					&v) < 0)
			return -ERANGE;
		o.overflow_gid = v ? v : SHIFT_OVERFLOW_ID;
	}
	if (opts->on_event) {
		o.on_event = ns_on_event;
		o.userdata = ne;
	}
	/* progress keeps its userdata: no ids in it */
	if (opts->on_progress && !opts->on_event)
		o.userdata = opts->userdata;
	/* The marker records the host view of the map: a later run as root
	 * (or by this user) with the same map must see the same record. */
	sk_marker_set_userns();
	return sk_shift_tree(path, &o, opts->map, ret_stats);
}

int shift_tree_userns(const char *path, const struct shift_options *opts,
		      struct shift_stats *ret_stats)
{
	struct shift_idmap *ns = NULL, *inv = NULL, *t = NULL, *inner = NULL;
	_cleanup_close_ int userns = -EBADF;
	int pipefd[2] = { -1, -1 };
	struct ns_result res = { 0 };
	uint32_t ne_overflow[2] = { kernel_overflow(SHIFT_UID),
				    kernel_overflow(SHIFT_GID) };
	pid_t pid;
	bool got;
	int r, status;

	if (!path || !opts || !opts->map)
		return -EINVAL;
	ns = shift_idmap_new();
	if (!ns)
		return -ENOMEM;
	r = build_ns_map(ns, ne_overflow);
	if (r < 0)
		goto out;
	/* The map as the namespace sees it: the part of it between ids the
	 * caller owns.  The rest can't be done here: an id the caller
	 * doesn't own shows as the overflow id ("outside your delegation"),
	 * one whose image it doesn't own can't be stored (reported with
	 * SHIFT_WHAT_OUTSIDE).  Nothing left of a kind: refused. */
	inv = shift_idmap_invert(ns);
	t = inv ? shift_idmap_compose(ns, opts->map) : NULL;
	inner = t ? shift_idmap_compose(t, inv) : NULL;
	if (!inner) {
		r = -ENOMEM;
		goto out;
	}
	if (shift_idmap_count(inner, SHIFT_UID) == 0 ||
	    shift_idmap_count(inner, SHIFT_GID) == 0) {
		r = -EPERM;
		goto out;
	}
	/* Failing here is the helpers' doing (missing, not setuid, or
	 * refusing what /etc/subuid grants): not the map's. */
	userns = shift_userns_create(ns);
	if (userns < 0) {
		r = userns == -ENOMEM ? -ENOMEM : -ECHILD;
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = negative_errno();
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		goto out;
	}
	if (pid == 0) {
		struct ns_events ne = {
			.outer = opts,
			.ns = ns,
			.overflow = { ne_overflow[0], ne_overflow[1] },
		};

		close(pipefd[0]);
		res.r = ns_child(path, opts, userns, ns, inner, &ne, &res.st);
		/* The callbacks ran here: what they printed must not be
		 * lost with the buffers at _exit(). */
		fflush(NULL);
		if (res.st.engine)
			snprintf(res.engine, sizeof(res.engine), "%s",
				 res.st.engine);
		if (write(pipefd[1], &res, sizeof(res)) != sizeof(res))
			_exit(EXIT_FAILURE);
		_exit(res.r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	got = read(pipefd[0], &res, sizeof(res)) == sizeof(res);
	if (!got)
		memset(&res, 0, sizeof(res));
	res.engine[sizeof(res.engine) - 1] = '\0';
	res.st.engine = sk_executor_name(res.engine);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			r = negative_errno();
			goto out;
		}
	if (got)
		r = res.r;
	else if (!WIFEXITED(status))
		r = -EINTR; /* killed */
	else
		r = -EIO; /* ended without a result */
	if (ret_stats)
		*ret_stats = res.st;
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	shift_idmap_free(ns);
	shift_idmap_free(inv);
	shift_idmap_free(t);
	shift_idmap_free(inner);
	return r;
}
