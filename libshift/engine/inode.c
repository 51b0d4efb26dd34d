/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one function that applies a map to one inode's metadata: owner, ACL
 * qualifiers, file capability rootid, setuid/setgid restored after chown.
 * Used by the shift engine (sk_inode_process*) and, through shift_inode(),
 * shift-layer's shifted-copy fallback (libshift/oci/layer.c).  The OCI
 * flat unpack and the manifests translate with the same ACL and capability
 * translators (libshift/core/acl.c, fcaps.c), not through here.  Every
 * change goes through the fd of the inode that was stat'ed, or, in the
 * engine's common case (nothing but the owner changes), by one name
 * relative to a directory fd without following a symlink (struct
 * sk_target).
 *
 * Inside the engine each inode is also crash-safe (docs/shift-engine.md):
 * an intent record (xattr <ns>.shiftkit.inode) holding the original owner,
 * mode, ACL hashes and capability is written before a change whose
 * progress could not be told from the inode afterwards, and removed when
 * done -- or at the end of the run when the result itself is ambiguous
 * (a shifted id that the map would shift again).
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "engine/engine-internal.h"

#ifndef XATTR_SIZE_MAX
#define XATTR_SIZE_MAX 65536
#endif
#ifndef XATTR_LIST_MAX
#define XATTR_LIST_MAX 65536
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

static const char *const acl_names[2] = {
	SHIFT_XATTR_ACL_ACCESS,
	SHIFT_XATTR_ACL_DEFAULT,
};

struct shift_inode_ctx *shift_inode_ctx_new(const struct shift_options *opts)
{
	struct shift_inode_ctx *ctx;

	if (!opts || !opts->map) {
		errno = EINVAL;
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->map = (opts->flags & SHIFT_REVERSE) ? shift_idmap_invert(opts->map)
						 : shift_idmap_dup(opts->map);
	ctx->flags = opts->flags;
	ctx->unmapped = opts->unmapped;
	ctx->overflow[SHIFT_UID] =
		opts->overflow_uid ? opts->overflow_uid : SHIFT_OVERFLOW_ID;
	ctx->overflow[SHIFT_GID] =
		opts->overflow_gid ? opts->overflow_gid : SHIFT_OVERFLOW_ID;
	ctx->on_event = opts->on_event;
	ctx->userdata = opts->userdata;
	pthread_mutex_init(&ctx->own_lock, NULL);
	ctx->event_lock = &ctx->own_lock;
	ctx->names = malloc(XATTR_LIST_MAX);
	ctx->acl[0] = malloc(XATTR_SIZE_MAX);
	ctx->acl[1] = malloc(XATTR_SIZE_MAX);
	ctx->pathbuf_size = 256;
	ctx->pathbuf = malloc(ctx->pathbuf_size);
	if (!ctx->map || !ctx->names || !ctx->acl[0] || !ctx->acl[1] ||
	    !ctx->pathbuf) {
		shift_inode_ctx_free(ctx);
		errno = ENOMEM;
		return NULL;
	}
	return ctx;
}

void shift_inode_ctx_free(struct shift_inode_ctx *ctx)
{
	if (!ctx)
		return;
	shift_idmap_free(ctx->map);
	pthread_mutex_destroy(&ctx->own_lock);
	free(ctx->names);
	free(ctx->acl[0]);
	free(ctx->acl[1]);
	sk_plan_free(&ctx->plan);
	free(ctx->pathbuf);
	free(ctx);
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static const char *ctx_path(struct shift_inode_ctx *ctx, const char *dir,
			    const char *name)
{
	size_t dl, nl;

	if (!name)
		return dir ? dir : "?";
	if (!dir || strcmp(dir, ".") == 0)
		return name;
	dl = strlen(dir);
	nl = strlen(name);
	if (dl + nl + 2 > ctx->pathbuf_size) {
		size_t sz = (dl + nl + 2) * 2;
		char *p = realloc(ctx->pathbuf, sz);

		if (!p)
			return name;
		ctx->pathbuf = p;
		ctx->pathbuf_size = sz;
	}
	memcpy(ctx->pathbuf, dir, dl);
	ctx->pathbuf[dl] = '/';
	memcpy(ctx->pathbuf + dl + 1, name, nl + 1);
	return ctx->pathbuf;
}

void sk_inode_event(struct shift_inode_ctx *ctx, struct shift_event *ev,
		    const char *dir, const char *name)
{
	if (!ctx->on_event)
		return;
	ev->path = ctx_path(ctx, dir, name);
	pthread_mutex_lock(ctx->event_lock);
	ctx->on_event(ev, ctx->userdata);
	pthread_mutex_unlock(ctx->event_lock);
}

int sk_inode_error(struct shift_inode_ctx *ctx, const char *dir,
		   const char *name, const char *op, int err)
{
	struct shift_event ev = {
		.type = SHIFT_EVENT_ERROR,
		.op = op,
		.error = err,
	};

	ctx->errors++;
	sk_inode_event(ctx, &ev, dir, name);
	return err;
}

/* ------------------------------------------------------------------ */
/* The inode's xattrs and mode: by name or through an fd of either kind */

/*
 * The inode being processed.  The engine hands over a name relative to the
 * directory fd (fd < 0): reading the xattr list and a chown that is the only
 * change go by name (AT_SYMLINK_NOFOLLOW, one component, relative to a
 * directory opened without following symlinks, so they never leave the
 * tree).  Everything else -- reading ACLs, capabilities and progress
 * records, and every write but that chown -- needs the fd: sk_target_fd()
 * opens it O_PATH and checks that it is still the inode that was stat'ed.
 */
struct sk_target {
	int fd;
	enum sk_fd_kind kind;
	bool own_fd;
	int dirfd;
	const char *name;
	const struct sk_stat *st;
};

#ifndef __NR_listxattrat
#define __NR_listxattrat 465
#endif

/* listxattrat(2) (Linux 6.13): 1 works, 0 missing, -1 not tried yet. */
static int listxattrat_state = -1;

static int target_fd(struct sk_target *t)
{
	struct sk_stat now;
	int fd, r;

	if (t->fd >= 0)
		return t->fd;
	fd = openat(t->dirfd, t->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -EAGAIN : negative_errno();
	r = sk_statx_fd(fd, &now);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (now.dev != t->st->dev || now.ino != t->st->ino ||
	    now.uid != t->st->uid || now.gid != t->st->gid ||
	    now.mode != t->st->mode) {
		close(fd);
		return -EAGAIN; /* replaced or changed meanwhile */
	}
	t->fd = fd;
	t->own_fd = true;
	t->kind = SK_FD_PATH;
	return fd;
}

static void proc_fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static ssize_t x_list_sized(struct sk_target *t, char *buf, size_t size)
{
	char p[40];
	ssize_t n;
	int fd;

	if (t->fd < 0 &&
	    __atomic_load_n(&listxattrat_state, __ATOMIC_RELAXED) != 0) {
		n = syscall(__NR_listxattrat, t->dirfd, t->name,
			    AT_SYMLINK_NOFOLLOW, buf, size);
		if (n >= 0 || errno != ENOSYS) {
			__atomic_store_n(&listxattrat_state, 1,
					 __ATOMIC_RELAXED);
			return n < 0 ? negative_errno() : n;
		}
		__atomic_store_n(&listxattrat_state, 0, __ATOMIC_RELAXED);
	}
	fd = target_fd(t);
	if (fd < 0)
		return fd;
	if (t->kind == SK_FD_FULL) {
		n = flistxattr(fd, buf, size);
	} else {
		proc_fd_path(p, sizeof(p), fd);
		n = listxattr(p, buf, size);
	}
	return n < 0 ? negative_errno() : n;
}

/* The names of the inode's xattrs into buf (XATTR_LIST_MAX bytes).  The
 * kernel allocates a buffer of the size it is given: ask for a small one
 * first, which nearly every inode's list fits. */
static ssize_t x_list(struct sk_target *t, char *buf)
{
	ssize_t n = x_list_sized(t, buf, 512);

	if (n == -ERANGE)
		n = x_list_sized(t, buf, XATTR_LIST_MAX);
	return n;
}

static ssize_t x_get_sized(int fd, enum sk_fd_kind kind, const char *name,
			   void *buf, size_t size)
{
	char p[40];
	ssize_t n;

	if (kind == SK_FD_FULL) {
		n = fgetxattr(fd, name, buf, size);
	} else {
		proc_fd_path(p, sizeof(p), fd);
		n = getxattr(p, name, buf, size);
	}
	return n < 0 ? negative_errno() : n;
}

/* The value of name into buf (size bytes); like x_list(), a small read
 * first when buf is big (an ACL is rarely more than a few entries). */
static ssize_t x_get(struct sk_target *t, const char *name, void *buf,
		     size_t size)
{
	int fd = target_fd(t);
	ssize_t n;

	if (fd < 0)
		return fd;
	if (size <= 512)
		return x_get_sized(fd, t->kind, name, buf, size);
	n = x_get_sized(fd, t->kind, name, buf, 512);
	if (n == -ERANGE)
		n = x_get_sized(fd, t->kind, name, buf, size);
	return n;
}

static int x_set(struct sk_target *t, const char *name, const void *value,
		 size_t size)
{
	char p[40];
	int r, fd = target_fd(t);

	if (fd < 0)
		return fd;
	if (t->kind == SK_FD_FULL) {
		r = fsetxattr(fd, name, value, size, 0);
	} else {
		proc_fd_path(p, sizeof(p), fd);
		r = setxattr(p, name, value, size, 0);
	}
	return r < 0 ? negative_errno() : 0;
}

static int x_remove(struct sk_target *t, const char *name)
{
	char p[40];
	int r, fd = target_fd(t);

	if (fd < 0)
		return fd;
	if (t->kind == SK_FD_FULL) {
		r = fremovexattr(fd, name);
	} else {
		proc_fd_path(p, sizeof(p), fd);
		r = removexattr(p, name);
	}
	return r < 0 ? negative_errno() : 0;
}

static int set_mode(struct sk_target *t, mode_t mode)
{
	char p[40];
	int fd = target_fd(t);

	if (fd < 0)
		return fd;
	if (t->kind == SK_FD_FULL)
		return fchmod(fd, mode) < 0 ? negative_errno() : 0;
	if (syscall(__NR_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return negative_errno();
	proc_fd_path(p, sizeof(p), fd);
	return chmod(p, mode) < 0 ? negative_errno() : 0;
}

/* The owner; by name when nothing else is written (see struct sk_target). */
static int set_owner(struct sk_target *t, uid_t uid, gid_t gid, bool by_name)
{
	int r;

	if (t->fd < 0 && by_name)
		r = fchownat(t->dirfd, t->name, uid, gid, AT_SYMLINK_NOFOLLOW);
	else {
		int fd = target_fd(t);

		if (fd < 0)
			return fd;
		r = fchownat(fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	return r < 0 ? negative_errno() : 0;
}

/* FNV-1a: tells an ACL value from its translation after a crash. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= *c++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* The plan: pure, from what was read and the rules                    */

/* F(id) into *ret; false when id has no image (ret: the policy's value). */
static bool map_id(const struct sk_plan_rules *rules, enum shift_id_kind kind,
		   uint32_t id, uint32_t *ret)
{
	if (shift_idmap_to_seen(rules->map, kind, id, ret) == 0)
		return true;
	*ret = rules->unmapped == SHIFT_UNMAPPED_OVERFLOW ? rules->overflow[kind]
							  : id;
	return false;
}

static bool fixed_id(const struct sk_plan_rules *rules,
		     enum shift_id_kind kind, uint32_t id)
{
	uint32_t v;

	map_id(rules, kind, id, &v);
	return v == id;
}

/* Could id be the result of a shift (it lies in the map's seen range)? */
static bool in_image(const struct sk_plan_rules *rules,
		     enum shift_id_kind kind, uint32_t id)
{
	uint32_t v;

	return shift_idmap_to_disk(rules->map, kind, id, &v) == 0;
}

/* Grow a plan buffer to at least size bytes. */
static int plan_buf(char **buf, size_t *cur, size_t size)
{
	char *n;

	if (size <= *cur)
		return 0;
	n = realloc(*buf, size);
	if (!n)
		return -ENOMEM;
	*buf = n;
	*cur = size;
	return 0;
}

struct plan_report {
	const struct sk_plan_rules *rules;
	struct sk_plan *p;
	unsigned what;
	bool quiet_image; /* resumed, no intent: ids in the image are done */
	unsigned reported; /* ids of this inode reported as unmapped */
	int err;
};

static void plan_unmapped(enum shift_id_kind kind, uint32_t id, void *userdata)
{
	struct plan_report *u = userdata;
	struct sk_plan *p = u->p;

	if (u->quiet_image && in_image(u->rules, kind, id))
		return;
	u->reported++;
	if (p->n_unmapped == p->unmapped_size) {
		size_t n = p->unmapped_size ? p->unmapped_size * 2 : 8;
		struct sk_plan_unmapped *a =
			realloc(p->unmapped, n * sizeof(*a));

		if (!a) {
			u->err = -ENOMEM;
			return;
		}
		p->unmapped = a;
		p->unmapped_size = n;
	}
	p->unmapped[p->n_unmapped++] = (struct sk_plan_unmapped){
		.kind = kind, .id = id, .what = u->what,
	};
}

static int plan_fail(struct sk_plan *p, const char *op, int err)
{
	p->kind = SK_PLAN_FAIL;
	p->fail_op = op;
	p->fail_err = err;
	return 0;
}

/* Empty the plan, keeping its buffers. */
static void plan_reset(struct sk_plan *p)
{
	struct sk_plan old = *p;

	*p = (struct sk_plan){
		.acl = { old.acl[0], old.acl[1] },
		.acl_size = { old.acl_size[0], old.acl_size[1] },
		.unmapped = old.unmapped,
		.unmapped_size = old.unmapped_size,
		.scratch = old.scratch,
		.scratch_size = old.scratch_size,
	};
}

void sk_plan_free(struct sk_plan *p)
{
	free(p->acl[0]);
	free(p->acl[1]);
	free(p->unmapped);
	free(p->scratch);
	memset(p, 0, sizeof(*p));
}

/* Would a plan made from the result change it again?  Then a crash after
 * this inode could not be told from "not yet done". */
static int plan_keep(const struct sk_plan_rules *rules, struct sk_plan *p,
		     const void *const acl_after[2], const size_t acl_len[2],
		     bool caps)
{
	if (!fixed_id(rules, SHIFT_UID, p->uid) ||
	    !fixed_id(rules, SHIFT_GID, p->gid))
		return 1;
	for (int i = 0; i < 2; i++) {
		if (!acl_after[i])
			continue;
		if (plan_buf(&p->scratch, &p->scratch_size, acl_len[i]) < 0)
			return -ENOMEM;
		memcpy(p->scratch, acl_after[i], acl_len[i]);
		if (sk_acl_translate(p->scratch, acl_len[i], rules->map, true,
				     rules->unmapped, rules->overflow, false,
				     NULL, NULL) != 0)
			return 1;
	}
	if (caps) {
		uint8_t again[SHIFT_FCAPS_MAX_SIZE];
		uint32_t rootid = 0;
		int l = shift_fcaps_translate(p->caps, p->caps_len, again,
					      sizeof(again), rules->map, true);

		if (l == -ERANGE)
			return !(shift_fcaps_rootid(p->caps, p->caps_len,
						    &rootid) >= 0 &&
				 in_image(rules, SHIFT_UID, rootid));
		return l != (int)p->caps_len ||
		       memcmp(again, p->caps, (size_t)l) != 0;
	}
	return 0;
}

/* One plan in the making. */
struct planner {
	const struct sk_plan_rules *rules;
	const struct sk_inode_facts *in;
	struct sk_plan *p;
	struct plan_report u;
	const struct sk_intent *intent; /* an intent in the works, or NULL */
	bool pending;			/* marked unchanged by this run */
	uint32_t ouid, ogid, omode;	/* the original ids and mode */
	const void *acl_after[2];	/* each ACL's value after the plan */
	uint64_t acl_hash[2];		/* of the originals translated */
	const uint8_t *caps_src;	/* the original capability */
	size_t caps_src_len;
};

/* ACLs: translate; with an intent only when still the original. */
static int plan_acls(struct planner *pl)
{
	static const unsigned acl_what[2] = {
		SHIFT_WHAT_ACL_ACCESS,
		SHIFT_WHAT_ACL_DEFAULT,
	};
	const struct sk_inode_facts *in = pl->in;
	const struct sk_intent *it = pl->intent;
	struct sk_plan *p = pl->p;
	int r;

	for (int i = 0; i < 2; i++) {
		size_t len = in->acl_len[i];
		uint64_t h;

		if (!in->has_acl[i])
			continue;
		pl->acl_after[i] = in->acl[i];
		h = hash_bytes(in->acl[i], len);
		if (it && (!(it->flags & (1u << i)) || h != it->acl_hash[i]))
			continue; /* translated before the crash */
		pl->acl_hash[i] = h;
		if (plan_buf(&p->acl[i], &p->acl_size[i], len ? len : 1) < 0)
			return -ENOMEM;
		memcpy(p->acl[i], in->acl[i], len);
		p->acl_len[i] = len;
		pl->acl_after[i] = p->acl[i];
		pl->u.what = acl_what[i];
		r = sk_acl_translate(p->acl[i], len, pl->rules->map, true,
				     pl->rules->unmapped, pl->rules->overflow,
				     true, plan_unmapped, &pl->u);
		if (pl->u.err)
			return pl->u.err;
		if (r == -ENOTUNIQ)
			return plan_fail(p,
					 i ? "translate the default ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep)"
					   : "translate the access ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep)",
					 -EINVAL);
		if (r < 0)
			return plan_fail(p, "parse the ACL", r);
		p->acl_change[i] = r > 0;
		if (r > 0)
			p->what |= acl_what[i];
	}
	return 0;
}

/* File capability: from the intent if one was recorded (the chown may
 * have dropped it), else the current value. */
static int plan_caps(struct planner *pl)
{
	const struct sk_inode_facts *in = pl->in;
	const struct sk_intent *it = pl->intent;
	struct sk_plan *p = pl->p;
	uint32_t rootid = 0;
	int r;

	if (it && (it->flags & SK_INTENT_CAPS)) {
		pl->caps_src = it->caps;
		pl->caps_src_len = it->caps_len;
	} else if (in->has_caps) {
		pl->caps_src = in->caps;
		pl->caps_src_len = in->caps_len;
	}
	if (!pl->caps_src)
		return 0;
	r = shift_fcaps_translate(pl->caps_src, pl->caps_src_len, p->caps,
				  sizeof(p->caps), pl->rules->map, true);
	if (r >= 0) {
		p->caps_len = (size_t)r;
		return 0;
	}
	if (r != -ERANGE)
		return plan_fail(p, "parse the file capability", r);
	if (shift_fcaps_rootid(pl->caps_src, pl->caps_src_len, &rootid) >= 0 &&
	    pl->u.quiet_image && in_image(pl->rules, SHIFT_UID, rootid) &&
	    p->uid == in->st.uid && p->gid == in->st.gid) {
		/* Resumed, the owner needs nothing (a plan that still chowns
		 * means "not done": see the intent rule) and the rootid is a
		 * shifted one: done before. */
		pl->caps_src = NULL;
		return 0;
	}
	pl->u.what = SHIFT_WHAT_FCAPS;
	plan_unmapped(SHIFT_UID, rootid, &pl->u);
	if (pl->u.err)
		return pl->u.err;
	return plan_fail(p,
			 "map the file capability's rootid (it has no image under the map; the inode is left unchanged)",
			 -EOVERFLOW);
}

/*
 * An id without image under --unmapped=error, in the engine (a lone
 * shift_inode() keeps shifting what it can): the inode is left unchanged
 * (the run fails and the tree stays "incomplete"), so that it stays in one
 * view of the ids, and is marked so that a re-run takes it as unshifted --
 * also where its ids lie in the map's image, which a resumed run otherwise
 * takes for shifted ones.  (An intent in the works is an inode being
 * changed: its originals had images, or it would not have been started.)
 */
static bool plan_pending(struct planner *pl)
{
	const struct sk_plan_rules *rules = pl->rules;
	struct sk_plan *p = pl->p;

	if (!rules->engine || !pl->u.reported ||
	    rules->unmapped != SHIFT_UNMAPPED_ERROR || pl->intent)
		return false;
	p->kind = SK_PLAN_PENDING;
	if (!rules->journal || pl->pending)
		return true;
	p->intent_write = true;
	p->intent = (struct sk_intent){
		.magic = SK_INTENT_MAGIC,
		.flags = SK_INTENT_PENDING,
		.gen = rules->gen,
		.uid = pl->in->st.uid,
		.gid = pl->in->st.gid,
		.mode = pl->in->st.mode,
	};
	return true;
}

/* The progress record of a change: written first when the change takes
 * several writes, is to be kept (p->keep), or replaces a pending mark (a
 * crash after the first change must not leave the inode marked as
 * unshifted); removed at the end unless kept. */
static void plan_record(struct planner *pl)
{
	const struct sk_inode_facts *in = pl->in;
	struct sk_plan *p = pl->p;
	bool multi = p->acl_change[0] || p->acl_change[1] || pl->caps_src ||
		     p->mode_restore;

	if (pl->rules->journal && !pl->intent &&
	    (multi || p->keep || pl->pending)) {
		p->intent_write = true;
		p->intent = (struct sk_intent){
			.magic = SK_INTENT_MAGIC,
			.flags = (in->has_acl[0] ? SK_INTENT_ACL_ACCESS : 0) |
				 (in->has_acl[1] ? SK_INTENT_ACL_DEFAULT : 0) |
				 (pl->caps_src ? SK_INTENT_CAPS : 0),
			.gen = pl->rules->gen,
			.uid = pl->ouid,
			.gid = pl->ogid,
			.mode = pl->omode,
			.acl_hash = { pl->acl_hash[0], pl->acl_hash[1] },
			.caps_len = (uint32_t)pl->caps_src_len,
		};
		if (pl->caps_src)
			memcpy(p->intent.caps, pl->caps_src, pl->caps_src_len);
	}
	p->chown_by_name = !multi && !p->intent_write && !pl->intent;
	p->intent_remove = (p->intent_write || pl->intent) && !p->keep;
}

int sk_inode_plan(const struct sk_plan_rules *rules,
		  const struct sk_inode_facts *in, struct sk_plan *p)
{
	const struct sk_stat *st = &in->st;
	struct planner pl = {
		.rules = rules,
		.in = in,
		.p = p,
		.u = { .rules = rules, .p = p, .quiet_image = rules->resumed },
		.intent = in->intent,
		.ouid = st->uid,
		.ogid = st->gid,
		.omode = st->mode,
	};
	int r;

	plan_reset(p);
	if (pl.intent && (pl.intent->flags & SK_INTENT_PENDING)) {
		/* Left unchanged by this run before for an id without image:
		 * the inode as it is now is unshifted (its ids may have been
		 * fixed since), and no id of it is a shifted one. */
		pl.pending = true;
		pl.intent = NULL;
		pl.u.quiet_image = false;
	}
	if (pl.intent) {
		pl.u.quiet_image = false;
		pl.ouid = pl.intent->uid;
		pl.ogid = pl.intent->gid;
		pl.omode = pl.intent->mode;
	}

	/* Owner. */
	pl.u.what = SHIFT_WHAT_OWNER;
	if (!map_id(rules, SHIFT_UID, pl.ouid, &p->uid))
		plan_unmapped(SHIFT_UID, pl.ouid, &pl.u);
	if (!map_id(rules, SHIFT_GID, pl.ogid, &p->gid))
		plan_unmapped(SHIFT_GID, pl.ogid, &pl.u);
	if (pl.u.err)
		return pl.u.err;
	r = plan_acls(&pl);
	if (r < 0 || p->kind == SK_PLAN_FAIL)
		return r;
	r = plan_caps(&pl);
	if (r < 0 || p->kind == SK_PLAN_FAIL)
		return r;
	if (plan_pending(&pl)) {
		p->what = 0;
		return 0;
	}

	/* What changes. */
	p->chown = p->uid != st->uid || p->gid != st->gid;
	p->mode = pl.omode & 07777;
	p->mode_restore = !S_ISDIR(st->mode) &&
			  (pl.omode & (S_ISUID | S_ISGID)) &&
			  (p->chown || (st->mode & 07777) != p->mode);
	if (pl.caps_src)
		p->caps_write = p->chown || !in->has_caps ||
				in->caps_len != p->caps_len ||
				memcmp(in->caps, p->caps, p->caps_len) != 0;
	if (p->chown)
		p->what |= SHIFT_WHAT_OWNER;
	if (p->caps_write)
		p->what |= SHIFT_WHAT_FCAPS;
	if (p->mode_restore)
		p->what |= SHIFT_WHAT_MODE;

	r = plan_keep(rules, p, pl.acl_after, in->acl_len, pl.caps_src);
	if (r < 0)
		return r;
	p->keep = r > 0;

	if (!p->what) {
		p->kind = SK_PLAN_NONE;
		p->intent_remove = rules->journal &&
				   (in->intent != NULL) && !p->keep;
		return 0;
	}
	p->kind = SK_PLAN_CHANGE;
	plan_record(&pl);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading the inode, applying the plan                                */

static int inode_cleanup(struct shift_inode_ctx *ctx, struct sk_target *t,
			 const struct sk_stat *st, const char *dir,
			 const char *name)
{
	const char *iname = ctx->journal->intent_name;
	bool found = false;
	ssize_t n;
	int r;

	if (!S_ISLNK(st->mode)) {
		n = x_list(t, ctx->names);
		if (n < 0)
			return n == -EOPNOTSUPP ? 0 :
			       sk_inode_error(ctx, dir, name, "listxattr", (int)n);
		for (char *s = ctx->names; s < ctx->names + n; s += strlen(s) + 1)
			if (strcmp(s, iname) == 0)
				found = true;
		if (!found)
			return 0;
	}
	r = x_remove(t, iname);
	if (r == -ENODATA || (S_ISLNK(st->mode) && (r == -EPERM ||
						    r == -EOPNOTSUPP)))
		return 0;
	if (r < 0)
		return sk_inode_error(ctx, dir, name,
				      "remove the progress record", r);
	return 1;
}


/* What the plan needs of the inode: one listxattr (symlinks carry neither
 * ACLs nor capabilities), then the values of the xattrs it has.  Errors
 * are reported; the inode is left alone. */
static int inode_read(struct shift_inode_ctx *ctx, struct sk_target *t,
		      struct sk_inode_facts *in, struct sk_intent *intent,
		      uint8_t *caps, const char *dir, const char *name)
{
	const struct sk_stat *st = &in->st;
	struct sk_journal *j = ctx->journal;
	bool has_intent = false;
	ssize_t n;

	if (!S_ISLNK(st->mode)) {
		n = x_list(t, ctx->names);
		if (n == -EOPNOTSUPP)
			n = 0;
		if (n < 0)
			return sk_inode_error(ctx, dir, name, "list xattrs",
					      (int)n);
		for (char *s = ctx->names; s < ctx->names + n;
		     s += strlen(s) + 1) {
			if (strcmp(s, SHIFT_XATTR_ACL_ACCESS) == 0)
				in->has_acl[0] = true;
			else if (strcmp(s, SHIFT_XATTR_ACL_DEFAULT) == 0)
				in->has_acl[1] = true;
			else if (strcmp(s, SHIFT_XATTR_CAPS) == 0)
				in->has_caps = true;
			else if (j && strcmp(s, j->intent_name) == 0)
				has_intent = true;
		}
	} else if (j && j->resumed) {
		has_intent = true;
	}
	if (has_intent) {
		n = x_get(t, j->intent_name, intent, sizeof(*intent));
		if (n == -ENODATA || n == -EOPNOTSUPP ||
		    (S_ISLNK(st->mode) && n == -EPERM)) {
			has_intent = false;
		} else if (n < 0) {
			return sk_inode_error(ctx, dir, name,
					      "read the progress record", (int)n);
		} else if (n != sizeof(*intent) ||
			   intent->magic != SK_INTENT_MAGIC ||
			   intent->gen != j->gen ||
			   intent->caps_len > sizeof(intent->caps)) {
			return sk_inode_error(ctx, dir, name,
					      "use the progress record left by another shift (remove the xattr after checking the owner)",
					      -ESTALE);
		}
	}
	in->intent = has_intent ? intent : NULL;
	for (int i = 0; i < 2; i++) {
		if (!in->has_acl[i])
			continue;
		n = x_get(t, acl_names[i], ctx->acl[i], XATTR_SIZE_MAX);
		if (n == -ENODATA) {
			in->has_acl[i] = false;
			continue;
		}
		if (n < 0)
			return sk_inode_error(ctx, dir, name, "read the ACL",
					      (int)n);
		in->acl[i] = ctx->acl[i];
		in->acl_len[i] = (size_t)n;
	}
	if (in->has_caps) {
		n = x_get(t, SHIFT_XATTR_CAPS, caps, SHIFT_FCAPS_MAX_SIZE);
		if (n == -ENODATA)
			in->has_caps = false;
		else if (n < 0)
			return sk_inode_error(ctx, dir, name,
					      "read the file capability",
					      n == -ERANGE ? -EINVAL : (int)n);
		else {
			in->caps = caps;
			in->caps_len = (size_t)n;
		}
	}
	return 0;
}

static void plan_rules_of(const struct shift_inode_ctx *ctx,
			  struct sk_plan_rules *rules)
{
	const struct sk_journal *j = ctx->journal;

	*rules = (struct sk_plan_rules){
		.map = ctx->map,
		.unmapped = ctx->unmapped,
		.overflow = { ctx->overflow[0], ctx->overflow[1] },
		.dry_run = ctx->flags & SHIFT_DRY_RUN,
		.engine = j != NULL,
		.journal = j && j->active && !(ctx->flags & SHIFT_DRY_RUN),
		.resumed = j && j->resumed,
		.gen = j ? j->gen : 0,
	};
}

/* The steps of a SK_PLAN_CHANGE, in the order that keeps a crash at any
 * point resumable (docs/shift-engine.md): the record, the ACLs, the
 * owner, the capability (a chown drops it), the setid bits (a chown drops
 * them), the record's removal. */
static int apply_record(struct shift_inode_ctx *ctx, struct sk_target *t,
			const struct sk_plan *p, const char *dir,
			const char *name)
{
	struct sk_journal *j = ctx->journal;
	int r;

	if (p->keep && j->need_cleanup) {
		r = j->need_cleanup(j->engine);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      "record progress on the tree's root", r);
	}
	r = x_set(t, j->intent_name, &p->intent, sizeof(p->intent));
	if (r < 0)
		return sk_inode_error(ctx, dir, name, "record progress (xattr)",
				      r);
	return 0;
}

static int apply_acls(struct shift_inode_ctx *ctx, struct sk_target *t,
		      const struct sk_plan *p, const char *dir,
		      const char *name)
{
	int r;

	for (int i = 0; i < 2; i++) {
		if (!p->acl_change[i])
			continue;
		r = x_set(t, acl_names[i], p->acl[i], p->acl_len[i]);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      i ? "set the default ACL"
						: "set the access ACL", r);
	}
	return 0;
}

static int apply_owner(struct shift_inode_ctx *ctx, struct sk_target *t,
		       const struct sk_plan *p, const char *dir,
		       const char *name)
{
	const struct sk_stat *st = t->st;
	int r = set_owner(t, p->uid != st->uid ? p->uid : (uid_t)-1,
			  p->gid != st->gid ? p->gid : (gid_t)-1,
			  p->chown_by_name);

	return r < 0 ? sk_inode_error(ctx, dir, name, "change owner", r) : 0;
}

static int apply_caps(struct shift_inode_ctx *ctx, struct sk_target *t,
		      const struct sk_plan *p, const char *dir,
		      const char *name)
{
	int r = x_set(t, SHIFT_XATTR_CAPS, p->caps, p->caps_len);

	return r < 0 ? sk_inode_error(ctx, dir, name,
				      "set the file capability", r)
		     : 0;
}

static int apply_mode(struct shift_inode_ctx *ctx, struct sk_target *t,
		      const struct sk_plan *p, const char *dir,
		      const char *name)
{
	int r = set_mode(t, p->mode);

	return r < 0 ? sk_inode_error(ctx, dir, name,
				      "restore setuid/setgid", r)
		     : 0;
}

static int apply_unrecord(struct shift_inode_ctx *ctx, struct sk_target *t,
			  const char *dir, const char *name)
{
	int r = x_remove(t, ctx->journal->intent_name);

	if (r < 0 && r != -ENODATA)
		return sk_inode_error(ctx, dir, name,
				      "remove the progress record", r);
	return 0;
}

/* The ids the plan found unmapped, as events. */
static void report_unmapped(struct shift_inode_ctx *ctx,
			    const struct sk_plan *p, const char *dir,
			    const char *name)
{
	for (size_t i = 0; i < p->n_unmapped; i++) {
		struct shift_event ev = {
			.type = SHIFT_EVENT_UNMAPPED,
			.kind = p->unmapped[i].kind,
			.id = p->unmapped[i].id,
			.what = p->unmapped[i].what,
		};

		ctx->unmapped_n++;
		sk_inode_event(ctx, &ev, dir, name);
	}
}

/* Perform the plan: 1 changed (or would, in a dry run), 0 nothing to do,
 * or a negative errno (reported). */
static int inode_apply(struct shift_inode_ctx *ctx, struct sk_target *t,
		       const struct sk_plan *p, const char *dir,
		       const char *name)
{
	const struct sk_stat *st = t->st;
	int r;

	report_unmapped(ctx, p, dir, name);
	switch (p->kind) {
	case SK_PLAN_FAIL:
		return sk_inode_error(ctx, dir, name, p->fail_op, p->fail_err);
	case SK_PLAN_PENDING:
		if (!p->intent_write)
			return 0;
		r = x_set(t, ctx->journal->intent_name, &p->intent,
			  sizeof(p->intent));
		/* Not permitted: user.* xattrs on a symlink, an inode the
		 * caller's namespace doesn't map (it can't change it either:
		 * reported as outside the delegation, it is reported again),
		 * an immutable one.  Then a re-run may take an id of it in
		 * the map's image for a shifted one. */
		if (r < 0 && r != -EPERM && r != -EACCES &&
		    !(S_ISLNK(st->mode) && r == -EOPNOTSUPP))
			return sk_inode_error(ctx, dir, name,
					      "record the ids left unmapped (xattr)",
					      r);
		return 0;
	case SK_PLAN_NONE:
		return p->intent_remove ? apply_unrecord(ctx, t, dir, name) : 0;
	case SK_PLAN_CHANGE:
		break;
	}

	if (ctx->flags & (SHIFT_DRY_RUN | SHIFT_VERBOSE)) {
		struct shift_event ev = {
			.type = SHIFT_EVENT_CHANGE,
			.what = p->what,
			.uid = st->uid,
			.gid = st->gid,
			.new_uid = p->uid,
			.new_gid = p->gid,
		};

		sk_inode_event(ctx, &ev, dir, name);
	}
	if (ctx->flags & SHIFT_DRY_RUN) {
		ctx->changed++;
		return 1;
	}
	if ((p->intent_write && (r = apply_record(ctx, t, p, dir, name)) < 0) ||
	    (r = apply_acls(ctx, t, p, dir, name)) < 0 ||
	    (p->chown && (r = apply_owner(ctx, t, p, dir, name)) < 0) ||
	    (p->caps_write && (r = apply_caps(ctx, t, p, dir, name)) < 0) ||
	    (p->mode_restore && (r = apply_mode(ctx, t, p, dir, name)) < 0) ||
	    (p->intent_remove && (r = apply_unrecord(ctx, t, dir, name)) < 0))
		return r;
	ctx->changed++;
	return 1;
}

static int inode_process(struct shift_inode_ctx *ctx, struct sk_target *t,
			 const struct sk_stat *st, const char *dir,
			 const char *name)
{
	uint8_t caps[SHIFT_FCAPS_MAX_SIZE];
	struct sk_intent intent;
	struct sk_inode_facts in = { .st = *st };
	struct sk_plan_rules rules;
	int r;

	if (ctx->phase == SK_PHASE_CLEANUP)
		return inode_cleanup(ctx, t, st, dir, name);
	r = inode_read(ctx, t, &in, &intent, caps, dir, name);
	if (r < 0)
		return r;
	plan_rules_of(ctx, &rules);
	r = sk_inode_plan(&rules, &in, &ctx->plan);
	if (r < 0)
		return sk_inode_error(ctx, dir, name, "plan the changes", r);
	return inode_apply(ctx, t, &ctx->plan, dir, name);
}

int sk_inode_process(struct shift_inode_ctx *ctx, int fd, enum sk_fd_kind kind,
		     const struct sk_stat *st, const char *dir,
		     const char *name)
{
	struct sk_target t = {
		.fd = fd, .kind = kind, .dirfd = -EBADF, .st = st,
	};

	return inode_process(ctx, &t, st, dir, name);
}

int sk_inode_process_at(struct shift_inode_ctx *ctx, int dirfd,
			const char *name, const struct sk_stat *st,
			const char *dir)
{
	struct sk_target t = {
		.fd = -EBADF, .dirfd = dirfd, .name = name, .st = st,
	};
	int r = inode_process(ctx, &t, st, dir, name);

	if (t.own_fd)
		close(t.fd);
	return r;
}

int shift_inode(struct shift_inode_ctx *ctx, int fd, const struct stat *st,
		const char *path)
{
	struct sk_stat s;
	int fl, r;

	if (!ctx || fd < 0)
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return negative_errno();
	if (st) {
		s = (struct sk_stat){
			.dev = st->st_dev,
			.ino = st->st_ino,
			.mode = st->st_mode,
			.uid = st->st_uid,
			.gid = st->st_gid,
			.nlink = (uint32_t)st->st_nlink,
		};
	} else {
		r = sk_statx_fd(fd, &s);
		if (r < 0)
			return r;
	}
	return sk_inode_process(ctx, fd, (fl & O_PATH) ? SK_FD_PATH : SK_FD_FULL,
				&s, path ? path : "?", NULL);
}
