/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The id map model: parse, validate, apply, invert, compose, print; read
 * maps from /proc and delegations from /etc/subuid, /etc/subgid.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/core-internal.h"
#include "util/error.h"

struct shift_idmap {
	unsigned n[2];
	struct shift_extent ext[2][SHIFT_IDMAP_MAX_EXTENTS];
};

struct shift_idmap *shift_idmap_new(void)
{
	return calloc(1, sizeof(struct shift_idmap));
}

void shift_idmap_free(struct shift_idmap *map)
{
	free(map);
}

struct shift_idmap *shift_idmap_dup(const struct shift_idmap *map)
{
	struct shift_idmap *m = malloc(sizeof(*m));

	if (m)
		memcpy(m, map, sizeof(*m));
	return m;
}

static bool ranges_overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn)
{
	return (uint64_t)a < (uint64_t)b + bn && (uint64_t)b < (uint64_t)a + an;
}

int shift_idmap_add(struct shift_idmap *map, enum shift_id_kind kind,
		    uint32_t disk, uint32_t seen, uint32_t count,
		    struct shift_error *err)
{
	unsigned i;

	if (kind != SHIFT_UID && kind != SHIFT_GID)
		return -EINVAL;
	if (count == 0)
		return sk_error_set(err, -EINVAL, "an extent's count must not be zero");
	/* The kernel rejects ranges that end past 2^32-1 (the last id,
	 * 4294967295, is "no id" and never mapped either). */
	if ((uint64_t)disk + count > UINT32_MAX ||
	    (uint64_t)seen + count > UINT32_MAX)
		return sk_error_set(err, -ERANGE, "extent runs past the largest id (4294967294)");
	for (i = 0; i < map->n[kind]; i++) {
		const struct shift_extent *e = &map->ext[kind][i];

		if (ranges_overlap(e->disk, e->count, disk, count))
			return sk_error_set(err, -EEXIST, "extent overlaps another one's on-disk range");
		if (ranges_overlap(e->seen, e->count, seen, count))
			return sk_error_set(err, -EEXIST, "extent overlaps another one's seen range");
	}
	if (map->n[kind] >= SHIFT_IDMAP_MAX_EXTENTS)
		return sk_error_set(err, -E2BIG, "more than 340 extents (the kernel's limit)");
	map->ext[kind][map->n[kind]++] = (struct shift_extent){
		.disk = disk, .seen = seen, .count = count
	};
	return 0;
}

/* Strict unsigned 32-bit decimal: no sign, no spaces, no hex. */
static int parse_u32(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return len == 0 ? -EINVAL : -ERANGE;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_one(struct shift_idmap *map, const char *s, size_t len,
		     struct shift_error *err)
{
	bool kinds[2] = { true, true };
	uint32_t v[3];
	size_t i, start = 0;
	int field = 0, r;

	if (len >= 2 && s[1] == ':' && strchr("ugb", s[0])) {
		kinds[SHIFT_UID] = s[0] != 'g';
		kinds[SHIFT_GID] = s[0] != 'u';
		s += 2;
		len -= 2;
	}
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ':')
			continue;
		if (field >= 3)
			return sk_error_set(err, -EINVAL, "expected [u:|g:|b:]A:B:N");
		r = parse_u32(s + start, i - start, &v[field]);
		if (r == -ERANGE)
			return sk_error_set(err, r, "id past 4294967295");
		if (r < 0)
			return sk_error_set(err, r, "expected [u:|g:|b:]A:B:N with decimal ids");
		field++;
		start = i + 1;
	}
	if (field != 3)
		return sk_error_set(err, -EINVAL, "expected [u:|g:|b:]A:B:N");
	for (i = 0; i < 2; i++) {
		if (!kinds[i])
			continue;
		r = shift_idmap_add(map, (enum shift_id_kind)i, v[0], v[1], v[2],
				    err);
		if (r < 0)
			return r;
	}
	return 0;
}

int shift_idmap_parse(struct shift_idmap *map, const char *spec,
		      struct shift_error *err)
{
	const char *p = spec;
	int n = 0;

	if (!spec)
		return sk_error_set(err, -EINVAL, "empty map");
	while (*p) {
		size_t len;
		int r;

		if (*p == ' ' || *p == ',' || *p == '\t') {
			p++;
			continue;
		}
		len = strcspn(p, " ,\t");
		r = parse_one(map, p, len, err);
		if (r < 0)
			return r;
		n++;
		p += len;
	}
	if (n == 0)
		return sk_error_set(err, -EINVAL, "empty map");
	return 0;
}

int shift_idmap_validate(const struct shift_idmap *map, unsigned flags,
			 struct shift_error *err)
{
	unsigned k, i;

	if (map->n[SHIFT_UID] == 0 && map->n[SHIFT_GID] == 0)
		return sk_error_set(err, -EINVAL, "empty map");
	if ((flags & SHIFT_VALIDATE_BOTH) && map->n[SHIFT_GID] == 0)
		return sk_error_set(err, -EINVAL, "a uid map needs a gid map too (use b: or add g:A:B:N)");
	if ((flags & SHIFT_VALIDATE_BOTH) && map->n[SHIFT_UID] == 0)
		return sk_error_set(err, -EINVAL, "a gid map needs a uid map too (use b: or add u:A:B:N)");
	if (flags & SHIFT_VALIDATE_USERNS)
		for (k = 0; k < 2; k++) {
			char buf[4096];

			if (shift_idmap_format_proc(map, (enum shift_id_kind)k,
						    buf, sizeof(buf)) < 0)
				return sk_error_set(err, -E2BIG, "map too long for a user namespace (its uid_map or gid_map text must stay under 4096 bytes): use fewer or wider extents");
		}
	if (flags & SHIFT_VALIDATE_NO_HOST_ROOT)
		for (k = 0; k < 2; k++)
			for (i = 0; i < map->n[k]; i++)
				if (map->ext[k][i].seen == 0)
					return sk_error_set(
						err, -EPERM, "%s",
						k == SHIFT_UID ?
							"map gives host uid 0 (real root) to the container; pass --allow-host-root if you really mean it" :
							"map gives host gid 0 (root group) to the container; pass --allow-host-root if you really mean it");
	return 0;
}

unsigned shift_idmap_count(const struct shift_idmap *map,
			   enum shift_id_kind kind)
{
	return kind <= SHIFT_GID ? map->n[kind] : 0;
}

int shift_idmap_extent(const struct shift_idmap *map, enum shift_id_kind kind,
		       unsigned i, struct shift_extent *ret)
{
	if (kind > SHIFT_GID || i >= map->n[kind])
		return -ENOENT;
	*ret = map->ext[kind][i];
	return 0;
}

int shift_idmap_to_seen(const struct shift_idmap *map, enum shift_id_kind kind,
			uint32_t disk, uint32_t *ret)
{
	unsigned i;

	for (i = 0; i < map->n[kind]; i++) {
		const struct shift_extent *e = &map->ext[kind][i];

		if (disk - e->disk < e->count) {
			*ret = e->seen + (disk - e->disk);
			return 0;
		}
	}
	return -ERANGE;
}

int shift_idmap_to_disk(const struct shift_idmap *map, enum shift_id_kind kind,
			uint32_t seen, uint32_t *ret)
{
	unsigned i;

	for (i = 0; i < map->n[kind]; i++) {
		const struct shift_extent *e = &map->ext[kind][i];

		if (seen - e->seen < e->count) {
			*ret = e->disk + (seen - e->seen);
			return 0;
		}
	}
	return -ERANGE;
}

struct shift_idmap *shift_idmap_invert(const struct shift_idmap *map)
{
	struct shift_idmap *m = shift_idmap_dup(map);
	unsigned k, i;

	if (!m)
		return NULL;
	for (k = 0; k < 2; k++)
		for (i = 0; i < m->n[k]; i++) {
			uint32_t t = m->ext[k][i].disk;

			m->ext[k][i].disk = m->ext[k][i].seen;
			m->ext[k][i].seen = t;
		}
	return m;
}

/*
 * Composition of two piecewise-linear maps: for every pair of extents the
 * intersection of a's seen range with b's disk range is one extent.  The
 * result can have up to n*m pieces; beyond the kernel's 340 the excess is
 * dropped (treated as unmapped), which callers never hit with real maps.
 */
struct shift_idmap *shift_idmap_compose(const struct shift_idmap *a,
					const struct shift_idmap *b)
{
	struct shift_idmap *m = shift_idmap_new();
	unsigned k, i, j;

	if (!m)
		return NULL;
	for (k = 0; k < 2; k++)
		for (i = 0; i < a->n[k]; i++)
			for (j = 0; j < b->n[k]; j++) {
				const struct shift_extent *x = &a->ext[k][i];
				const struct shift_extent *y = &b->ext[k][j];
				uint64_t lo = x->seen > y->disk ? x->seen : y->disk;
				uint64_t hx = (uint64_t)x->seen + x->count;
				uint64_t hy = (uint64_t)y->disk + y->count;
				uint64_t hi = hx < hy ? hx : hy;

				if (lo >= hi || m->n[k] >= SHIFT_IDMAP_MAX_EXTENTS)
					continue;
				m->ext[k][m->n[k]++] = (struct shift_extent){
					.disk = (uint32_t)(x->disk + (lo - x->seen)),
					.seen = (uint32_t)(y->seen + (lo - y->disk)),
					.count = (uint32_t)(hi - lo),
				};
			}
	return m;
}

static int extent_cmp(const void *a, const void *b)
{
	const struct shift_extent *x = a, *y = b;

	if (x->disk != y->disk)
		return x->disk < y->disk ? -1 : 1;
	if (x->seen != y->seen)
		return x->seen < y->seen ? -1 : 1;
	return x->count < y->count ? -1 : x->count > y->count;
}

static void sorted(const struct shift_idmap *map, enum shift_id_kind k,
		   struct shift_extent *out)
{
	memcpy(out, map->ext[k], map->n[k] * sizeof(*out));
	qsort(out, map->n[k], sizeof(*out), extent_cmp);
}

bool shift_idmap_equal(const struct shift_idmap *a,
		       const struct shift_idmap *b)
{
	struct shift_extent x[SHIFT_IDMAP_MAX_EXTENTS], y[SHIFT_IDMAP_MAX_EXTENTS];
	unsigned k;

	for (k = 0; k < 2; k++) {
		if (a->n[k] != b->n[k])
			return false;
		sorted(a, (enum shift_id_kind)k, x);
		sorted(b, (enum shift_id_kind)k, y);
		if (memcmp(x, y, a->n[k] * sizeof(*x)) != 0)
			return false;
	}
	return true;
}

char *shift_idmap_to_string(const struct shift_idmap *map)
{
	struct shift_extent u[SHIFT_IDMAP_MAX_EXTENTS], g[SHIFT_IDMAP_MAX_EXTENTS];
	bool gused[SHIFT_IDMAP_MAX_EXTENTS] = { false };
	char *buf, *p;
	size_t size = (size_t)(map->n[0] + map->n[1]) * 40 + 1;
	unsigned i, j;

	buf = malloc(size);
	if (!buf)
		return NULL;
	p = buf;
	*p = '\0';
	sorted(map, SHIFT_UID, u);
	sorted(map, SHIFT_GID, g);
	for (i = 0; i < map->n[SHIFT_UID]; i++) {
		const char *pre = "u:";

		for (j = 0; j < map->n[SHIFT_GID]; j++)
			if (!gused[j] && extent_cmp(&u[i], &g[j]) == 0) {
				gused[j] = true;
				pre = "b:";
				break;
			}
		p += sprintf(p, "%s%s%" PRIu32 ":%" PRIu32 ":%" PRIu32,
			     p == buf ? "" : " ", pre, u[i].disk, u[i].seen,
			     u[i].count);
	}
	for (j = 0; j < map->n[SHIFT_GID]; j++)
		if (!gused[j])
			p += sprintf(p, "%sg:%" PRIu32 ":%" PRIu32 ":%" PRIu32,
				     p == buf ? "" : " ", g[j].disk, g[j].seen,
				     g[j].count);
	return buf;
}

int shift_idmap_format_proc(const struct shift_idmap *map,
			    enum shift_id_kind kind, char *buf, size_t size)
{
	size_t len = 0;
	unsigned i;

	if (size)
		buf[0] = '\0';
	for (i = 0; i < map->n[kind]; i++) {
		const struct shift_extent *e = &map->ext[kind][i];
		int n = snprintf(buf + len, size - len,
				 "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n",
				 e->disk, e->seen, e->count);

		if (n < 0 || (size_t)n >= size - len)
			return -ENOSPC;
		len += (size_t)n;
	}
	return (int)len;
}

/* Parse the contents of a /proc/PID/[ug]id_map file. */
static int parse_proc_map(struct shift_idmap *map, enum shift_id_kind kind,
			  FILE *f)
{
	unsigned long long a, b, n;
	int r;

	while ((r = fscanf(f, "%llu %llu %llu", &a, &b, &n)) == 3) {
		if (a > UINT32_MAX || b > UINT32_MAX || n > UINT32_MAX)
			return -ERANGE;
		r = shift_idmap_add(map, kind, (uint32_t)a, (uint32_t)b,
				    (uint32_t)n, NULL);
		if (r < 0)
			return r;
	}
	return r == EOF ? 0 : -EINVAL;
}

/* The same, from text in memory. */
static int parse_proc_map_text(struct shift_idmap *map, enum shift_id_kind kind,
			       char *text)
{
	FILE *f = fmemopen(text, strlen(text), "r");
	int r;

	if (!f)
		return negative_errno();
	r = parse_proc_map(map, kind, f);
	fclose(f);
	return r;
}

static int read_proc_maps(struct shift_idmap *map, const char *dir)
{
	static const char *const names[2] = { "uid_map", "gid_map" };
	unsigned k;

	for (k = 0; k < 2; k++) {
		_cleanup_fclose_ FILE *f = NULL;
		char path[256];
		int r;

		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		f = fopen(path, "re");
		if (!f)
			return negative_errno();
		r = parse_proc_map(map, (enum shift_id_kind)k, f);
		if (r < 0)
			return r;
	}
	return 0;
}

int shift_idmap_from_pid(struct shift_idmap *map, pid_t pid)
{
	char dir[64];

	if (pid <= 0)
		return -EINVAL;
	snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
	return read_proc_maps(map, dir);
}

/*
 * A namespace file that isn't /proc/PID/ns/user: a child joins it and
 * sends its own uid_map/gid_map (which it reads relative to its parent
 * namespace, i.e. as "A B N" lines) back through a pipe.
 */
int shift_idmap_from_userns_path(struct shift_idmap *map, const char *path)
{
	_cleanup_close_ int fd = -EBADF;
	int pfd[2], status;
	char buf[2 * 340 * 36 + 64];
	ssize_t len = 0, n;
	pid_t pid;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return negative_errno();
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		static const char *const files[2] = { "/proc/self/uid_map",
						      "/proc/self/gid_map" };
		close(pfd[0]);
		if (setns(fd, CLONE_NEWUSER) < 0)
			_exit(1);
		for (int k = 0; k < 2; k++) {
			char b[340 * 36 + 1];
			int mfd = open(files[k], O_RDONLY | O_CLOEXEC);
			ssize_t m;

			if (mfd < 0)
				_exit(2);
			m = read(mfd, b, sizeof(b) - 1);
			if (m < 0)
				_exit(2);
			/* separator between the two files */
			if (write(pfd[1], b, (size_t)m) != m ||
			    write(pfd[1], "#\n", 2) != 2)
				_exit(3);
			close(mfd);
		}
		_exit(0);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0)
		return negative_errno();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) && WEXITSTATUS(status) == 1 ? -EPERM : -EIO;
	buf[len] = '\0';
	{
		/* "UIDMAP#\nGIDMAP#\n", as the child wrote it */
		char *gids = strstr(buf, "#\n"), *end;

		if (!gids)
			return -EIO;
		*gids = '\0';
		gids += 2;
		end = strstr(gids, "#\n");
		if (end)
			*end = '\0';
		r = parse_proc_map_text(map, SHIFT_UID, buf);
		if (r < 0)
			return r;
		r = parse_proc_map_text(map, SHIFT_GID, gids);
	}
	return r;
}

/* The override is for tests: a setuid or file-capability program must not
 * let its caller choose the delegation files (secure_getenv). */
static const char *subid_file(enum shift_id_kind kind)
{
	const char *e = secure_getenv(kind == SHIFT_UID ? "SHIFT_SUBUID"
							: "SHIFT_SUBGID");

	if (e && *e)
		return e;
	return kind == SHIFT_UID ? "/etc/subuid" : "/etc/subgid";
}

const char *sk_subid_file(enum shift_id_kind kind)
{
	return subid_file(kind);
}

const char *shift_subid_file(enum shift_id_kind kind)
{
	return subid_file(kind);
}

struct subid_build {
	struct shift_idmap *map;
	enum shift_id_kind kind;
	uint32_t next;
};

static int subid_add(uint32_t start, uint32_t count, void *data)
{
	struct subid_build *b = data;
	int r;

	if ((uint64_t)b->next + count > UINT32_MAX)
		return -ERANGE;
	r = shift_idmap_add(b->map, b->kind, b->next, start, count, NULL);
	if (r == -EEXIST)
		return 0; /* duplicate line: ignore, like shadow-utils */
	if (r < 0)
		return r;
	b->next += count;
	return 0;
}

/*
 * shift_subid_read(): the delegation file read line by line the way
 * shadow's newuidmap(1) reads it (subordinate_parse(): exactly three
 * colon-separated fields, numbers that parse whole), so that what we
 * call a user's delegation is what newuidmap will grant.  shadow skips a
 * line it can't parse without a word; here such a line is never skipped
 * silently: it is the caller's error when it names the user (its ids are
 * not delegated, whatever the author meant), a warning otherwise.
 */
static const char *subid_line_problem(char *line, char **owner, uint32_t *start,
				      uint32_t *count)
{
	char *c1, *c2;
	size_t len = strlen(line);
	bool cr = len && line[len - 1] == '\r';

	c1 = strchr(line, ':');
	if (c1)
		*c1 = '\0';
	*owner = line;
	if (cr)
		return "ends in CR (a DOS line end)";
	if (!c1)
		return "not NAME:START:COUNT";
	c2 = strchr(c1 + 1, ':');
	if (!c2 || strchr(c2 + 1, ':'))
		return "not NAME:START:COUNT (three fields)";
	if (!*line)
		return "empty user name";
	/* older shadow reads numbers with strtoul(..., 0): "010" is 8 there */
	if ((c1[1] == '0' && c1 + 2 != c2) || (c2[1] == '0' && c2[2]))
		return "a number with a leading 0 (newuidmap may read it as octal)";
	if (parse_u32(c1 + 1, (size_t)(c2 - c1 - 1), start) < 0)
		return "START is not a number from 0 to 4294967295";
	if (parse_u32(c2 + 1, strlen(c2 + 1), count) < 0 || *count == 0)
		return "COUNT is not a number from 1 to 4294967295";
	if ((uint64_t)*start + *count > (uint64_t)UINT32_MAX + 1)
		return "START+COUNT is past the last id";
	return NULL;
}

/*
 * The one parser of the delegation files: fn is called for every range of
 * user's (its return value, when negative, ends the read); the result is
 * shift_subid_read()'s.
 */
static int subid_parse(enum shift_id_kind kind, const char *user,
		       int (*fn)(uint32_t start, uint32_t count, void *data),
		       void *data, shift_subid_warn_fn warn, void *userdata,
		       struct shift_error *err)
{
	const char *file = subid_file(kind);
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	char uidbuf[16] = "";
	const char *name = user;
	unsigned lineno = 0;
	size_t cap = 0;
	int ranges = 0;
	struct passwd *pw;

	f = fopen(file, "re");
	if (!f)
		return sk_error_set_path(err, negative_errno(), file, NULL);
	pw = getpwnam(user);
	if (pw) {
		snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)pw->pw_uid);
	} else {
		char *end;
		unsigned long u;

		errno = 0;
		u = strtoul(user, &end, 10);
		if (*user && !*end && !errno && u <= UINT32_MAX) {
			snprintf(uidbuf, sizeof(uidbuf), "%lu", u);
			pw = getpwuid((uid_t)u);
			if (pw)
				name = pw->pw_name;
		}
	}
	while (errno = 0, getline(&line, &cap, f) > 0) {
		char *owner = line, *nl = strchr(line, '\n');
		const char *why;
		uint32_t start = 0, count = 0;
		bool own;
		int r;

		lineno++;
		if (nl)
			*nl = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		why = subid_line_problem(line, &owner, &start, &count);
		own =
		    !strcmp(owner, name) || (*uidbuf && !strcmp(owner, uidbuf));
		if (why && own) {
			sk_error_set_line(err, -EBADMSG, lineno, 0, "%s", why);
			return sk_error_path(err, -EBADMSG, file);
		}
		if (why) {
			if (warn)
				warn(file, lineno, why, userdata);
			continue;
		}
		if (!own)
			continue;
		r = fn(start, count, data);
		if (r < 0)
			return sk_error_set_path(err, r, file, NULL);
		ranges++;
	}
	if (errno && !feof(f))
		return sk_error_set_path(err, negative_errno(), file, NULL);
	return ranges;
}

int shift_subid_read(enum shift_id_kind kind, const char *user,
		     struct shift_idmap *map, shift_subid_warn_fn warn,
		     void *userdata, struct shift_error *err)
{
	struct subid_build b = { map, kind, 0 };

	return subid_parse(kind, user, subid_add, &b, warn, userdata, err);
}

int shift_idmap_from_subid(struct shift_idmap *map, const char *user)
{
	unsigned k;

	for (k = 0; k < 2; k++) {
		int r = shift_subid_read((enum shift_id_kind)k, user, map, NULL,
					 NULL, NULL);

		if (r < 0)
			return r;
		if (r == 0)
			return -ENOENT;
	}
	return 0;
}

struct subid_cover {
	uint32_t lo;
	uint32_t count;
	bool inside;
};

static int subid_check(uint32_t start, uint32_t count, void *data)
{
	struct subid_cover *c = data;

	if (c->lo >= start && (uint64_t)c->lo + c->count <= (uint64_t)start + count)
		c->inside = true;
	return 0;
}

int shift_idmap_within_subid(const struct shift_idmap *map, const char *user)
{
	unsigned k, i;

	for (k = 0; k < 2; k++)
		for (i = 0; i < map->n[k]; i++) {
			struct subid_cover c = { map->ext[k][i].seen,
						 map->ext[k][i].count, false };
			int r = subid_parse((enum shift_id_kind)k, user,
					    subid_check, &c, NULL, NULL, NULL);

			if (r == -ENOENT)
				return 0; /* no file: nobody has a delegation */
			if (r < 0)
				return r;
			if (!c.inside)
				return 0;
		}
	return 1;
}

