/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container sets (verify.c): the checks the maps alone decide: overlap,
 * host root, the ranges inside the owner's subid delegation, and layers
 * shifted in place used with one map only.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <pwd.h>
#include <string.h>

#include "verify/verify-internal.h"
#include "util/error.h"

/* The first overlapping host id range of kind k between two maps. */
static bool maps_overlap(const struct shift_idmap *a, const struct shift_idmap *b,
			 enum shift_id_kind k, uint32_t *lo, uint32_t *hi)
{
	unsigned i, j;

	for (i = 0; i < shift_idmap_count(a, k); i++)
		for (j = 0; j < shift_idmap_count(b, k); j++) {
			struct shift_extent x, y;
			uint64_t l, h;

			shift_idmap_extent(a, k, i, &x);
			shift_idmap_extent(b, k, j, &y);
			l = x.seen > y.seen ? x.seen : y.seen;
			h = (uint64_t)x.seen + x.count < (uint64_t)y.seen + y.count ?
				    (uint64_t)x.seen + x.count :
				    (uint64_t)y.seen + y.count;
			if (l < h) {
				*lo = (uint32_t)l;
				*hi = (uint32_t)(h - 1);
				return true;
			}
		}
	return false;
}

/* 1: no two containers' host ranges overlap, uids and gids separately. */
int sk_verify_overlap(struct vset *s, struct vrun *run)
{
	size_t i, j;
	int r;

	run->check = SHIFT_VERIFY_OVERLAP;
	for (i = 0; i < s->ncs; i++)
		for (j = i + 1; j < s->ncs; j++) {
			_cleanup_free_ char *subject = NULL;
			bool any = false;

			if (asprintf(&subject, "%s,%s", s->cs[i].name, s->cs[j].name) < 0)
				return -ENOMEM;
			run->subject = subject;
			for (int k = 0; k < 2; k++) {
				uint32_t lo, hi;

				if (!maps_overlap(s->cs[i].map, s->cs[j].map,
						  (enum shift_id_kind)k, &lo, &hi))
					continue;
				any = true;
				r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "'%s' and '%s' share host %s %" PRIu32 "-%" PRIu32 ": each one's root can %s the other's processes and files, and per-%s limits (RLIMIT_NPROC, inotify, keyrings) are shared, so one can exhaust them for the other",
					 s->cs[i].name, s->cs[j].name,
					 k ? "gids" : "uids", lo, hi,
					 k ? "read and write (by group)" :
					     "signal, ptrace, read and write",
					 k ? "group" : "user");
				if (r < 0)
					return r;
			}
			if (!any) {
				r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
					 "host ranges are disjoint");
				if (r < 0)
					return r;
			}
		}
	return 0;
}

/* 2: no container maps host uid or gid 0. */
int sk_verify_host_root(struct vset *s, struct vrun *run)
{
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_HOST_ROOT;
	for (i = 0; i < s->ncs; i++) {
		bool any = false;

		run->subject = s->cs[i].name;
		for (int k = 0; k < 2; k++) {
			uint32_t inside;

			if (shift_idmap_to_disk(s->cs[i].map, (enum shift_id_kind)k, 0,
						&inside) < 0)
				continue;
			any = true;
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "host %s 0 is mapped (as %" PRIu32 " inside): the container can own and change host root's files",
				 k ? "gid" : "uid", inside);
			if (r < 0)
				return r;
		}
		if (!any && (r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				      "host uid 0 and gid 0 are not mapped")) < 0)
			return r;
	}
	return 0;
}

/* Append "lo-hi" to buf (comma-separated). */
static void range_append(char *buf, size_t size, uint64_t lo, uint64_t end)
{
	size_t len = strlen(buf);

	if (len < size)
		snprintf(buf + len, size - len, "%s%" PRIu64 "-%" PRIu64,
			 len ? "," : "", lo, end - 1);
}

/*
 * The sub-ranges of the map's host ids of kind k covered neither by the
 * delegation's ranges nor by the owner's own id (own, when has_own), into
 * out as "lo-hi,...".  Returns how many ids are outside.
 */
static uint64_t outside_ranges(const struct shift_idmap *map,
			       const struct shift_idmap *deleg,
			       enum shift_id_kind k, bool has_own, uint32_t own,
			       char *out, size_t size)
{
	unsigned i, j, nd = shift_idmap_count(deleg, k);
	uint64_t total = 0;

	out[0] = '\0';
	for (i = 0; i < shift_idmap_count(map, k); i++) {
		struct shift_extent e;
		uint64_t cur, end;

		shift_idmap_extent(map, k, i, &e);
		cur = e.seen;
		end = (uint64_t)e.seen + e.count;
		while (cur < end) {
			uint64_t covered = cur, next = end;

			/* the furthest end of a range holding cur, and the
			 * nearest start of a range above cur */
			for (j = 0; j <= nd; j++) {
				uint64_t lo, hi;

				if (j < nd) {
					struct shift_extent d;

					shift_idmap_extent(deleg, k, j, &d);
					lo = d.seen;
					hi = (uint64_t)d.seen + d.count;
				} else if (has_own) {
					lo = own;
					hi = (uint64_t)own + 1;
				} else
					break;
				if (lo <= cur && hi > covered)
					covered = hi;
				else if (lo > cur && lo < next)
					next = lo;
			}
			if (covered > cur) {
				cur = covered;
				continue;
			}
			range_append(out, size, cur, next);
			total += next - cur;
			cur = next;
		}
	}
	return total;
}

struct subid_warn {
	struct vrun *run;
	int r;
};

/* A malformed line of another user: said once, as information. */
static void subid_warn(const char *file, unsigned line, const char *why,
		       void *userdata)
{
	struct subid_warn *w = userdata;

	if (w->r >= 0)
		w->r =
		    sk_verify_emit(w->run, SHIFT_VERIFY_INFO, NULL,
			 "%s: line %u: %s: ignored (newuidmap ignores it too)",
			 file, line, why);
}

/*
 * 3: each range inside the owner's delegation.  The owner's own uid and
 * primary gid count as its own: newuidmap(1) and newgidmap(1) let a user
 * map them, and the standard rootless layout maps container root to them.
 */
int sk_verify_subid(struct vset *s, struct vrun *run)
{
	bool warned = false;
	size_t i;
	int r;

	run->check = SHIFT_VERIFY_SUBID;
	for (i = 0; i < s->ncs; i++) {
		struct vcontainer *c = &s->cs[i];
		struct passwd *pw;
		bool any = false, has_uid = false, has_gid = false;
		uint32_t own_uid = 0, own_gid = 0;

		run->subject = c->name;
		if (!c->owner) {
			r = sk_verify_emit(run, SHIFT_VERIFY_SKIP, NULL, "no \"owner\" given");
			if (r < 0)
				return r;
			continue;
		}
		errno = 0;
		pw = getpwnam(c->owner);
		if (pw) {
			own_uid = pw->pw_uid;
			own_gid = pw->pw_gid;
			has_uid = has_gid = true;
		} else {
			char *end;
			unsigned long u;

			errno = 0;
			u = strtoul(c->owner, &end, 10);
			if (!*end && !errno && u < UINT32_MAX &&
			    isdigit((unsigned char)c->owner[0])) {
				own_uid = (uint32_t)u;
				has_uid = true;
				pw = getpwuid((uid_t)u);
				if (pw) {
					own_gid = pw->pw_gid;
					has_gid = true;
				}
			}
		}
		if (!has_uid) {
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "owner '%s': no such user", c->owner);
			if (r < 0)
				return r;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct shift_idmap *deleg = shift_idmap_new();
			_cleanup_(shift_error_clear) struct shift_error e = { 0 };
			struct subid_warn w = {run, 0};
			char out[256];
			bool missing;
			uint64_t n;

			if (!deleg)
				return -ENOMEM;
			r = shift_subid_read((enum shift_id_kind)k, c->owner,
					     deleg, warned ? NULL : subid_warn,
					     &w, &e);
			if (w.r < 0) {
				shift_idmap_free(deleg);
				return w.r;
			}
			missing = r == -ENOENT;
			if (missing)
				r = 0; /* no file: no delegation, said below */
			if (r < 0) {
				shift_idmap_free(deleg);
				any = true;
				if (r == -EBADMSG)
					r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
						 "%s: line %u: %s: the line of "
						 "'%s' is malformed, so it "
						 "delegates nothing",
						 e.path ? e.path : "?", e.line,
						 shift_error_why(&e, r),
						 c->owner);
				else
					r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
						 "Failed to read '%s': %s",
						 e.path ? e.path : "?",
						 strerror(-r));
				if (r < 0)
					return r;
				continue;
			}
			n = outside_ranges(c->map, deleg, (enum shift_id_kind)k,
					   k ? has_gid : has_uid,
					   k ? own_gid : own_uid, out,
					   sizeof(out));
			shift_idmap_free(deleg);
			if (!n)
				continue;
			any = true;
			r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
				 "host %s %s not inside the %s delegation of "
				 "'%s' (%s%s)",
				 k ? "gids" : "uids", out,
				 k ? "subgid" : "subuid", c->owner,
				 sk_subid_file((enum shift_id_kind)k),
				 missing ? ": no such file" : "");
			if (r < 0)
				return r;
		}
		warned = true;
		if (!any && (r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				      "ranges inside the delegation of '%s'",
				      c->owner)) < 0)
			return r;
	}
	return 0;
}

/* 7: a layer shifted in place is used only by containers with its map. */
int sk_verify_in_place(struct vset *s, struct vrun *run)
{
	size_t i, j, k;
	int r;

	run->check = SHIFT_VERIFY_IN_PLACE;
	for (i = 0; i < s->nlayers; i++) {
		struct vlayer *l = &s->layers[i];
		_cleanup_free_ char *lmap = NULL;
		bool any = false;

		if (!l->shifted)
			continue;
		run->subject = l->name;
		lmap = shift_idmap_to_string(l->shifted);
		if (!lmap)
			return -ENOMEM;
		for (j = 0; j < s->ncs; j++)
			for (k = 0; k < s->cs[j].nviews; k++) {
				_cleanup_free_ char *cmap = NULL;

				if (s->cs[j].views[k].layer != l || s->cs[j].views[k].copy ||
				    shift_idmap_equal(l->shifted, s->cs[j].map))
					continue;
				cmap = shift_idmap_to_string(s->cs[j].map);
				any = true;
				r = sk_verify_emit(run, SHIFT_VERIFY_FAIL, NULL,
					 "layer '%s' is shifted in place for map %s, but container '%s' uses it with map %s: it sees ids of another container (use an idmapped mount of an unshifted layer, or a shifted copy)",
					 l->name, lmap, s->cs[j].name,
					 cmap ? cmap : "?");
				if (r < 0)
					return r;
			}
		if (!any && (r = sk_verify_emit(run, SHIFT_VERIFY_PASS, NULL,
				      "every container using it has its map %s",
				      lmap)) < 0)
			return r;
	}
	return 0;
}
