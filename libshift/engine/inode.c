/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one function that applies a map to one inode's metadata: owner, ACL
 * qualifiers, file capability rootid, setuid/setgid restored after chown.
 * Used by the shift engine, the OCI flat unpack and verify.  Every change
 * goes through the fd of the inode that was stat'ed, or, in the engine's
 * common case (nothing but the owner changes), by one name relative to a
 * directory fd without following a symlink (struct sk_target).
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
static const unsigned acl_what[2] = {
	SHIFT_WHAT_ACL_ACCESS,
	SHIFT_WHAT_ACL_DEFAULT,
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
	ctx->scratch = malloc(XATTR_SIZE_MAX);
	ctx->pathbuf_size = 256;
	ctx->pathbuf = malloc(ctx->pathbuf_size);
	if (!ctx->map || !ctx->names || !ctx->acl[0] || !ctx->acl[1] ||
	    !ctx->scratch || !ctx->pathbuf) {
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
	free(ctx->scratch);
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
/* id mapping under the unmapped policy                                */

/* F(id) into *ret; false when id has no image (ret: the policy's value). */
static bool map_id(const struct shift_inode_ctx *ctx, enum shift_id_kind kind,
		   uint32_t id, uint32_t *ret)
{
	if (shift_idmap_to_seen(ctx->map, kind, id, ret) == 0)
		return true;
	*ret = ctx->unmapped == SHIFT_UNMAPPED_OVERFLOW ? ctx->overflow[kind]
						       : id;
	return false;
}

static bool fixed_id(const struct shift_inode_ctx *ctx,
		     enum shift_id_kind kind, uint32_t id)
{
	uint32_t v;

	map_id(ctx, kind, id, &v);
	return v == id;
}

/* Could id be the result of a shift (it lies in the map's seen range)? */
static bool in_image(const struct shift_inode_ctx *ctx,
		     enum shift_id_kind kind, uint32_t id)
{
	uint32_t v;

	return shift_idmap_to_disk(ctx->map, kind, id, &v) == 0;
}

struct unmapped_data {
	struct shift_inode_ctx *ctx;
	const char *dir, *name;
	unsigned what;
	bool quiet_image; /* resumed, no intent: ids in the image are done */
	unsigned reported; /* ids of this inode reported as unmapped */
};

static void on_unmapped(enum shift_id_kind kind, uint32_t id, void *userdata)
{
	struct unmapped_data *u = userdata;
	struct shift_event ev = {
		.type = SHIFT_EVENT_UNMAPPED,
		.kind = kind,
		.id = id,
		.what = u->what,
	};

	if (u->quiet_image && in_image(u->ctx, kind, id))
		return;
	u->reported++;
	u->ctx->unmapped_n++;
	sk_inode_event(u->ctx, &ev, u->dir, u->name);
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

static bool is_setid_kept(const struct sk_stat *st, mode_t orig_mode)
{
	return !S_ISDIR(st->mode) && (orig_mode & (S_ISUID | S_ISGID));
}

/* ------------------------------------------------------------------ */

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

static int inode_process(struct shift_inode_ctx *ctx, struct sk_target *t,
			 const struct sk_stat *st, const char *dir,
			 const char *name)
{
	struct sk_journal *j = ctx->journal;
	bool journal = j && j->active && !(ctx->flags & SHIFT_DRY_RUN);
	bool has_acl[2] = { false, false }, acl_change[2] = { false, false };
	bool has_caps = false, has_intent = false, caps_write = false;
	bool do_chown, mode_restore, keep, multi, wrote_intent = false;
	bool pending = false;
	size_t acl_len[2] = { 0, 0 }, caps_src_len = 0;
	uint64_t acl_hash[2] = { 0, 0 };
	uint8_t caps_cur[SHIFT_FCAPS_MAX_SIZE], caps_new[SHIFT_FCAPS_MAX_SIZE];
	const uint8_t *caps_src = NULL;
	ssize_t caps_cur_len = -1;
	int caps_new_len = 0;
	struct sk_intent in;
	uint32_t ouid, ogid, omode, tu, tg;
	struct unmapped_data ud = {
		.ctx = ctx, .dir = dir, .name = name,
		.quiet_image = j && j->resumed,
	};
	unsigned what = 0;
	ssize_t n;
	int r, i;

	if (ctx->phase == SK_PHASE_CLEANUP)
		return inode_cleanup(ctx, t, st, dir, name);

	/* Which of the xattrs we care about does the inode have?  One
	 * listxattr; symlinks carry neither ACLs nor capabilities. */
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
				has_acl[0] = true;
			else if (strcmp(s, SHIFT_XATTR_ACL_DEFAULT) == 0)
				has_acl[1] = true;
			else if (strcmp(s, SHIFT_XATTR_CAPS) == 0)
				has_caps = true;
			else if (j && strcmp(s, j->intent_name) == 0)
				has_intent = true;
		}
	} else if (j && j->resumed) {
		has_intent = true;
	}
	if (has_intent) {
		n = x_get(t, j->intent_name, &in, sizeof(in));
		if (n == -ENODATA || n == -EOPNOTSUPP ||
		    (S_ISLNK(st->mode) && n == -EPERM)) {
			has_intent = false;
		} else if (n < 0) {
			return sk_inode_error(ctx, dir, name,
					      "read the progress record", (int)n);
		} else if (n != sizeof(in) || in.magic != SK_INTENT_MAGIC ||
			   in.gen != j->gen) {
			return sk_inode_error(ctx, dir, name,
					      "use the progress record left by another shift (remove the xattr after checking the owner)",
					      -ESTALE);
		}
	}
	if (has_intent && (in.flags & SK_INTENT_PENDING)) {
		/* Left unchanged by this run before for an id without image:
		 * the inode as it is now is unshifted (its ids may have been
		 * fixed since), and no id of it is a shifted one. */
		pending = true;
		has_intent = false;
		ud.quiet_image = false;
	}
	if (has_intent) {
		ud.quiet_image = false;
		ouid = in.uid;
		ogid = in.gid;
		omode = in.mode;
	} else {
		ouid = st->uid;
		ogid = st->gid;
		omode = st->mode;
	}

	/* Owner. */
	ud.what = SHIFT_WHAT_OWNER;
	if (!map_id(ctx, SHIFT_UID, ouid, &tu))
		on_unmapped(SHIFT_UID, ouid, &ud);
	if (!map_id(ctx, SHIFT_GID, ogid, &tg))
		on_unmapped(SHIFT_GID, ogid, &ud);

	/* ACLs: translate; with an intent only when still the original. */
	for (i = 0; i < 2; i++) {
		uint64_t h;

		if (!has_acl[i])
			continue;
		n = x_get(t, acl_names[i], ctx->acl[i], XATTR_SIZE_MAX);
		if (n == -ENODATA) {
			has_acl[i] = false;
			continue;
		}
		if (n < 0)
			return sk_inode_error(ctx, dir, name, "read the ACL",
					      (int)n);
		acl_len[i] = (size_t)n;
		h = hash_bytes(ctx->acl[i], acl_len[i]);
		if (has_intent && (!(in.flags & (1u << i)) ||
				   h != in.acl_hash[i]))
			continue; /* translated before the crash */
		acl_hash[i] = h;
		ud.what = acl_what[i];
		r = sk_acl_translate(ctx->acl[i], acl_len[i], ctx->map, true,
				     ctx->unmapped, ctx->overflow, true,
				     on_unmapped, &ud);
		if (r == -ENOTUNIQ)
			return sk_inode_error(ctx, dir, name,
					      i ? "translate the default ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep)"
						: "translate the access ACL (two of its entries would get the same overflow id; the inode is left unchanged: map those ids, or use --unmapped=keep)",
					      -EINVAL);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      "parse the ACL", r);
		acl_change[i] = r > 0;
	}

	/* File capability: from the intent if one was recorded (the chown
	 * may have dropped it), else the current value. */
	if (has_intent && (in.flags & SK_INTENT_CAPS)) {
		caps_src = in.caps;
		caps_src_len = in.caps_len;
	}
	if (has_caps) {
		caps_cur_len = x_get(t, SHIFT_XATTR_CAPS, caps_cur,
				     sizeof(caps_cur));
		if (caps_cur_len == -ENODATA)
			has_caps = false;
		else if (caps_cur_len < 0)
			return sk_inode_error(ctx, dir, name,
					      "read the file capability",
					      caps_cur_len == -ERANGE ? -EINVAL
								      : (int)caps_cur_len);
		else if (!caps_src) {
			caps_src = caps_cur;
			caps_src_len = (size_t)caps_cur_len;
		}
	}
	if (caps_src) {
		uint32_t rootid = 0;

		caps_new_len = shift_fcaps_translate(caps_src, caps_src_len,
						     caps_new, sizeof(caps_new),
						     ctx->map, true);
		if (caps_new_len == -ERANGE &&
		    shift_fcaps_rootid(caps_src, caps_src_len, &rootid) >= 0 &&
		    ud.quiet_image && in_image(ctx, SHIFT_UID, rootid) &&
		    tu == st->uid && tg == st->gid) {
			/* Resumed, the owner needs nothing (a plan that still
			 * chowns means "not done": see the intent rule) and
			 * the rootid is a shifted one: done before. */
			caps_src = NULL;
		} else if (caps_new_len < 0) {
			if (caps_new_len == -ERANGE) {
				ud.what = SHIFT_WHAT_FCAPS;
				on_unmapped(SHIFT_UID, rootid, &ud);
				return sk_inode_error(ctx, dir, name,
						      "map the file capability's rootid (it has no image under the map; the inode is left unchanged)",
						      -EOVERFLOW);
			}
			return sk_inode_error(ctx, dir, name,
					      "parse the file capability",
					      caps_new_len);
		}
	}

	/*
	 * An id without image under --unmapped=error, in the engine (a
	 * lone shift_inode() keeps shifting what it can): the inode is left
	 * unchanged (the run fails and the tree stays "incomplete"), so
	 * that it stays in one view of the ids, and is marked so that a
	 * re-run takes it as unshifted -- also where its ids lie in the
	 * map's image, which a resumed run otherwise takes for shifted
	 * ones.  (An intent in the works is an inode being changed: its
	 * originals had images, or it would not have been started.)
	 */
	if (j && ud.reported && ctx->unmapped == SHIFT_UNMAPPED_ERROR &&
	    !has_intent) {
		if (!journal || pending)
			return 0;
		memset(&in, 0, sizeof(in));
		in.magic = SK_INTENT_MAGIC;
		in.flags = SK_INTENT_PENDING;
		in.gen = j->gen;
		in.uid = st->uid;
		in.gid = st->gid;
		in.mode = st->mode;
		r = x_set(t, j->intent_name, &in, sizeof(in));
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
	}

	/* What changes. */
	do_chown = tu != st->uid || tg != st->gid;
	mode_restore = is_setid_kept(st, omode) &&
		       (do_chown || (st->mode & 07777) != (omode & 07777));
	if (caps_src)
		caps_write = do_chown || caps_cur_len != caps_new_len ||
			     memcmp(caps_cur, caps_new, (size_t)caps_new_len);

	/* Would a plan made from the result change it again?  Then a crash
	 * after this inode could not be told from "not yet done": keep the
	 * intent until the whole tree is done. */
	keep = !fixed_id(ctx, SHIFT_UID, tu) || !fixed_id(ctx, SHIFT_GID, tg);
	for (i = 0; i < 2 && !keep; i++) {
		if (!has_acl[i])
			continue;
		memcpy(ctx->scratch, ctx->acl[i], acl_len[i]);
		if (sk_acl_translate(ctx->scratch, acl_len[i], ctx->map, true,
				     ctx->unmapped, ctx->overflow, false, NULL,
				     NULL) != 0)
			keep = true;
	}
	if (caps_src && !keep) {
		uint8_t again[SHIFT_FCAPS_MAX_SIZE];
		uint32_t rootid = 0;
		int l = shift_fcaps_translate(caps_new, (size_t)caps_new_len,
					      again, sizeof(again), ctx->map,
					      true);

		if (l == -ERANGE)
			keep = !(shift_fcaps_rootid(caps_new, (size_t)caps_new_len,
						    &rootid) >= 0 &&
				 in_image(ctx, SHIFT_UID, rootid));
		else
			keep = l != caps_new_len ||
			       memcmp(again, caps_new, (size_t)l) != 0;
	}

	if (!do_chown && !acl_change[0] && !acl_change[1] && !caps_write &&
	    !mode_restore) {
		if (journal && (has_intent || pending) && !keep) {
			r = x_remove(t, j->intent_name);
			if (r < 0 && r != -ENODATA)
				return sk_inode_error(ctx, dir, name,
						      "remove the progress record", r);
		}
		return 0;
	}

	if (do_chown)
		what |= SHIFT_WHAT_OWNER;
	for (i = 0; i < 2; i++)
		if (acl_change[i])
			what |= acl_what[i];
	if (caps_write)
		what |= SHIFT_WHAT_FCAPS;
	if (mode_restore)
		what |= SHIFT_WHAT_MODE;
	if (ctx->flags & (SHIFT_DRY_RUN | SHIFT_VERBOSE)) {
		struct shift_event ev = {
			.type = SHIFT_EVENT_CHANGE,
			.what = what,
			.uid = st->uid,
			.gid = st->gid,
			.new_uid = tu,
			.new_gid = tg,
		};

		sk_inode_event(ctx, &ev, dir, name);
	}
	if (ctx->flags & SHIFT_DRY_RUN) {
		ctx->changed++;
		return 1;
	}

	multi = acl_change[0] || acl_change[1] || caps_src || mode_restore;
	/* A pending mark is replaced by an intent before the first change:
	 * a crash after it must not leave the changed inode marked as
	 * unshifted. */
	if (journal && !has_intent && (multi || keep || pending)) {
		if (keep && j->need_cleanup) {
			r = j->need_cleanup(j->engine);
			if (r < 0)
				return sk_inode_error(ctx, dir, name,
						      "record progress on the tree's root", r);
		}
		in.magic = SK_INTENT_MAGIC;
		in.flags = (has_acl[0] ? SK_INTENT_ACL_ACCESS : 0) |
			   (has_acl[1] ? SK_INTENT_ACL_DEFAULT : 0) |
			   (caps_src ? SK_INTENT_CAPS : 0);
		in.gen = j->gen;
		in.uid = ouid;
		in.gid = ogid;
		in.mode = omode;
		in.acl_hash[0] = acl_hash[0];
		in.acl_hash[1] = acl_hash[1];
		in.caps_len = (uint32_t)caps_src_len;
		memset(in.caps, 0, sizeof(in.caps));
		if (caps_src)
			memcpy(in.caps, caps_src, caps_src_len);
		r = x_set(t, j->intent_name, &in, sizeof(in));
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      "record progress (xattr)", r);
		wrote_intent = true;
	}

	for (i = 0; i < 2; i++) {
		if (!acl_change[i])
			continue;
		r = x_set(t, acl_names[i], ctx->acl[i], acl_len[i]);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      i ? "set the default ACL"
						: "set the access ACL", r);
	}
	if (do_chown) {
		r = set_owner(t, tu != st->uid ? tu : (uid_t)-1,
			      tg != st->gid ? tg : (gid_t)-1,
			      !multi && !wrote_intent && !has_intent);
		if (r < 0)
			return sk_inode_error(ctx, dir, name, "change owner", r);
	}
	if (caps_write) {
		r = x_set(t, SHIFT_XATTR_CAPS, caps_new,
			  (size_t)caps_new_len);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      "set the file capability", r);
	}
	if (mode_restore) {
		r = set_mode(t, omode & 07777);
		if (r < 0)
			return sk_inode_error(ctx, dir, name,
					      "restore setuid/setgid", r);
	}
	if ((wrote_intent || has_intent) && !keep) {
		r = x_remove(t, j->intent_name);
		if (r < 0 && r != -ENODATA)
			return sk_inode_error(ctx, dir, name,
					      "remove the progress record", r);
	}
	ctx->changed++;
	return 1;
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
