/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shift-probe: what this kernel and each mount can do for id shifting,
 * every answer found by trying (libshift's probe), printed as tables or
 * one JSON object.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json.h>
#include <limits.h>
#include <libmount.h>
#include <libsmartcols.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "util/syscalls.h"

enum {
	OPT_FEATURES_ONLY = 0x2000,
	OPT_MOUNTS_ONLY,
};

struct options {
	bool json;
	bool raw;
	bool pairs;
	bool noheadings;
	bool features; /* kernel features, userns, uidmap tools, delegation */
	bool mounts;
	char **paths;
	int npaths;
};

/* Where the tables go: text on stdout as they come, or one JSON object. */
struct output {
	const struct options *o;
	json_object *top;
	int printed;
	int sections;
};

/* clang-format off */
static void usage(void)
{
	printf("Usage:\n"
	       " %s [options] [PATH...]\n"
	       "\n"
	       "Report what this kernel can do for id shifting (the mount API,\n"
	       "idmapped mounts, overlayfs over idmapped layers, user namespaces,\n"
	       "io_uring), the sysctls that limit it, the newuidmap/newgidmap helpers,\n"
	       "the caller's subordinate id delegation, and whether each mount (or the\n"
	       "mount holding each PATH) can be idmapped.  Every answer is found by\n"
	       "trying, without side effects.\n"
	       "\n"
	       "Options:\n"
	       "     --raw               raw table output\n"
	       " -P, --pairs             KEY=\"value\" output\n"
	       "     --noheadings        no column headings and no section titles\n"
	       "     --features-only     only the kernel and user namespace sections\n"
	       "     --mounts-only       only the mounts section\n",
	       program_invocation_short_name);
	cli_help_footer(true,
			"lack of support is an answer (exit 0),\n"
			"a PATH that could not be probed a failure",
			"shift-probe(8)");
	exit(EXIT_OK);
}
/* clang-format on */

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"raw", no_argument, NULL, 'r'},
	    {"pairs", no_argument, NULL, 'P'},
	    {"noheadings", no_argument, NULL, 'n'},
	    {"features-only", no_argument, NULL, OPT_FEATURES_ONLY},
	    {"mounts-only", no_argument, NULL, OPT_MOUNTS_ONLY},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	bool features_only = false, mounts_only = false;
	int c;

	while ((c = getopt_long(argc, argv, "JPhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'J':
			o->json = true;
			break;
		case 'r':
			o->raw = true;
			break;
		case 'P':
			o->pairs = true;
			break;
		case 'n':
			o->noheadings = true;
			break;
		case OPT_FEATURES_ONLY:
			features_only = true;
			break;
		case OPT_MOUNTS_ONLY:
			mounts_only = true;
			break;
		case 'h':
			usage();
			break;
		case 'V':
			cli_version();
			break;
		default:
			cli_option_error(argv);
		}
	}
	if (o->json + o->raw + o->pairs > 1)
		cli_usage_error(
		    "--json, --raw and --pairs are mutually exclusive");
	if (features_only && mounts_only)
		cli_usage_error(
		    "--features-only and --mounts-only are mutually exclusive");
	o->paths = argv + optind;
	o->npaths = argc - optind;
	if (features_only && o->npaths)
		cli_usage_error("--features-only takes no PATH");
	for (int i = 0; i < o->npaths; i++)
		if (!*o->paths[i])
			cli_usage_error("empty PATH");
	o->features = !mounts_only;
	o->mounts = !features_only;
}

static _noreturn_ void oom(void)
{
	cli_error("out of memory");
	exit(EXIT_FAIL);
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

struct colspec {
	const char *name;
	double width;
	int flags;
	int json_type;
};

static struct libscols_table *new_table(const struct output *out,
					const char *name, const char *title,
					const struct colspec *cols, size_t n)
{
	struct libscols_table *tb = scols_new_table();

	if (!tb)
		oom();
	scols_table_set_name(tb, name);
	scols_table_enable_json(tb, out->o->json);
	scols_table_enable_raw(tb, out->o->raw);
	scols_table_enable_export(tb, out->o->pairs);
	scols_table_enable_noheadings(tb, out->o->noheadings);
	if (!out->o->json && !out->o->raw && !out->o->pairs &&
	    !out->o->noheadings && out->sections > 1) {
		struct libscols_cell *t = scols_table_get_title(tb);

		scols_cell_set_data(t, title);
	}
	for (size_t i = 0; i < n; i++) {
		struct libscols_column *cl = scols_table_new_column(
		    tb, cols[i].name, cols[i].width, cols[i].flags);
		if (!cl)
			oom();
		scols_column_set_json_type(cl, cols[i].json_type);
	}
	return tb;
}

static void set(struct libscols_line *ln, size_t col, const char *s)
{
	if (scols_line_set_data(ln, col, s ? s : "") < 0)
		oom();
}

static void set_num(struct libscols_line *ln, size_t col, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	set(ln, col, buf);
}

static struct libscols_line *new_line(struct libscols_table *tb)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);

	if (!ln)
		oom();
	return ln;
}

/*
 * Print a finished table: as text right away, or as one key of the JSON
 * object (libsmartcols renders the table; json-c composes the sections).
 */
static void emit(struct output *out, struct libscols_table *tb)
{
	char *data = NULL;
	json_object *obj, *val;

	if (!out->o->json) {
		if (out->printed++)
			fputc('\n', stdout);
		scols_print_table(tb);
		scols_unref_table(tb);
		return;
	}
	if (scols_print_table_to_string(tb, &data) < 0 || !data)
		oom();
	obj = json_tokener_parse(data);
	if (!obj ||
	    !json_object_object_get_ex(obj, scols_table_get_name(tb), &val)) {
		cli_error("Failed to compose the JSON output: libsmartcols "
			  "printed '%s'",
			  data);
		exit(EXIT_FAIL);
	}
	json_object_object_add(out->top, scols_table_get_name(tb),
			       json_object_get(val));
	json_object_put(obj);
	free(data);
	scols_unref_table(tb);
}

/* ------------------------------------------------------------------ */
/* Sections                                                            */
/* ------------------------------------------------------------------ */

static void features_section(struct output *out)
{
	static const struct colspec cols[] = {
	    {"NAME", 0.1, 0, SCOLS_JSON_STRING},
	    {"AVAILABLE", 0.1, 0, SCOLS_JSON_BOOLEAN},
	    {"DETAIL", 0.7, SCOLS_FL_WRAP, SCOLS_JSON_STRING},
	};
	struct libscols_table *tb = new_table(
	    out, "features", "Kernel features", cols, ARRAY_SIZE(cols));
	const char *name;
	int r;

	for (int f = 0; f < _SHIFT_FEATURE_MAX; f++) {
		struct libscols_line *ln = new_line(tb);
		_cleanup_(shift_error_clear) struct shift_error why = {0};
		char buf[256];

		r = shift_probe_feature((enum shift_feature)f, &why);
		set(ln, 0, shift_feature_name((enum shift_feature)f));
		set(ln, 1, r > 0 ? "yes" : "no");
		if (r < 0) {
			snprintf(buf, sizeof(buf), "the test failed: %s",
				 strerror(-r));
			set(ln, 2, buf);
		} else {
			set(ln, 2, why.why);
		}
	}
	/* The io_uring opcodes the engine may use, CHOWN (never) last. */
	for (unsigned i = 0;; i++) {
		struct libscols_line *ln;
		const char *note;
		char buf[64];

		r = shift_probe_uring_op(i, &name, &note);
		if (r == -ERANGE)
			break;
		ln = new_line(tb);
		snprintf(buf, sizeof(buf), "io_uring:%s", name);
		set(ln, 0, buf);
		set(ln, 1, r > 0 ? "yes" : "no");
		set(ln, 2, note);
	}
	emit(out, tb);
}

static void userns_section(struct output *out)
{
	static const struct colspec cols[] = {
	    {"NAME", 0.1, 0, SCOLS_JSON_STRING},
	    {"VALUE", 0.1, SCOLS_FL_RIGHT, SCOLS_JSON_NUMBER},
	    {"MEANING", 0.7, SCOLS_FL_WRAP, SCOLS_JSON_STRING},
	};
	struct libscols_table *tb =
	    new_table(out, "userns", "User namespace and io_uring limits", cols,
		      ARRAY_SIZE(cols));
	const char *name, *meaning;
	long v;
	int r;

	for (unsigned i = 0;
	     (r = shift_probe_sysctl(i, &name, &v, &meaning)) != -ERANGE; i++) {
		struct libscols_line *ln = new_line(tb);

		set(ln, 0, name);
		if (r > 0)
			set_num(ln, 1, v);
		set(ln, 2, meaning);
	}
	emit(out, tb);
}

static void uidmap_section(struct output *out)
{
	static const struct colspec cols[] = {
	    {"TOOL", 0.1, 0, SCOLS_JSON_STRING},
	    {"PATH", 0.3, 0, SCOLS_JSON_STRING},
	    {"PRESENT", 0.1, 0, SCOLS_JSON_BOOLEAN},
	    {"SETUID", 0.1, 0, SCOLS_JSON_BOOLEAN},
	    {"FILECAPS", 0.3, 0, SCOLS_JSON_STRING},
	};
	static const char *const tools[] = {"newuidmap", "newgidmap"};
	struct libscols_table *tb =
	    new_table(out, "uidmap_tools", "newuidmap and newgidmap", cols,
		      ARRAY_SIZE(cols));

	for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
		struct libscols_line *ln = new_line(tb);
		_cleanup_free_ char *path = NULL, *caps = NULL;
		bool setuid_root = false;
		int r;

		r = shift_probe_uidmap_helper(tools[i], &path, &setuid_root,
					      &caps);
		set(ln, 0, tools[i]);
		set(ln, 1, path);
		set(ln, 2, r > 0 ? "yes" : "no");
		set(ln, 3, r > 0 && setuid_root ? "yes" : "no");
		set(ln, 4, caps);
	}
	/* The mount-side helper: the service for unprivileged idmapped
	 * mounts (shift-mountd(8)), reachable or not. */
	{
		struct libscols_line *ln = new_line(tb);

		set(ln, 0, "shift-mountd");
		set(ln, 1, shift_mountd_socket_path());
		set(ln, 2, shift_mountd_reachable(NULL) ? "yes" : "no");
		set(ln, 3, "no");
		set(ln, 4, "");
	}
	emit(out, tb);
}

static void delegation_section(struct output *out)
{
	static const struct colspec cols[] = {
	    {"USER", 0.1, 0, SCOLS_JSON_STRING},
	    {"KIND", 0.1, 0, SCOLS_JSON_STRING},
	    {"START", 0.1, SCOLS_FL_RIGHT, SCOLS_JSON_NUMBER},
	    {"COUNT", 0.1, SCOLS_FL_RIGHT, SCOLS_JSON_NUMBER},
	    {"DETAIL", 0.5, 0, SCOLS_JSON_STRING},
	};
	struct libscols_table *tb =
	    new_table(out, "delegation", "Subordinate ids of the caller", cols,
		      ARRAY_SIZE(cols));
	struct passwd *pw = getpwuid(getuid());
	char user[64];

	if (pw)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%u", (unsigned)getuid());
	/* Each kind read on its own, as newuidmap reads it: a malformed line
	 * of the user's is named (file, line, why), not taken as no range. */
	for (unsigned k = 0; k < 2; k++) {
		const char *kind = k == SHIFT_UID ? "uid" : "gid";
		struct shift_idmap *map = shift_idmap_new();
		_cleanup_(shift_error_clear) struct shift_error se = {0};
		const char *file = shift_subid_file((enum shift_id_kind)k);
		unsigned n = 0;
		char buf[PATH_MAX + 128];
		int r;

		if (!map)
			oom();
		r = shift_subid_read((enum shift_id_kind)k, user, map, NULL,
				     NULL, &se);
		if (r > 0)
			n = shift_idmap_count(map, (enum shift_id_kind)k);
		for (unsigned i = 0; i < n; i++) {
			struct libscols_line *ln = new_line(tb);
			struct shift_extent e;

			if (shift_idmap_extent(map, (enum shift_id_kind)k, i,
					       &e) < 0)
				continue;
			set(ln, 0, user);
			set(ln, 1, kind);
			set_num(ln, 2, e.seen);
			set_num(ln, 3, e.count);
			snprintf(buf, sizeof(buf), "container %ss %u-%llu",
				 kind, e.disk,
				 (unsigned long long)e.disk + e.count - 1);
			set(ln, 4, buf);
		}
		if (n == 0) {
			struct libscols_line *ln = new_line(tb);

			set(ln, 0, user);
			set(ln, 1, kind);
			if (r == -EBADMSG)
				snprintf(buf, sizeof(buf),
					 "%s line %u: %s (newuidmap ignores "
					 "it: no range)",
					 file, se.line,
					 shift_error_why(&se, r));
			else if (r < 0 && r != -ENOENT)
				snprintf(buf, sizeof(buf), "cannot read %s: %s",
					 file, strerror(-r));
			else
				snprintf(buf, sizeof(buf), "no range in %s",
					 file);
			set(ln, 4, buf);
		}
		shift_idmap_free(map);
	}
	emit(out, tb);
}

/* The mount id of what path resolves to, 0 if unknown. */
static uint64_t mount_id_of(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

static struct libmnt_fs *find_by_id(struct libmnt_table *mt, uint64_t id)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_BACKWARD);
	struct libmnt_fs *fs = NULL, *found = NULL;

	if (!it)
		oom();
	while (id && mnt_table_next_fs(mt, it, &fs) == 0)
		if ((uint64_t)mnt_fs_get_id(fs) == id) {
			found = fs;
			break;
		}
	mnt_free_iter(it);
	return found;
}

/* supported: "yes", "no" or NULL for unknown (null in JSON). */
static void mount_row(struct libscols_table *tb, struct libmnt_fs *fs,
		      const char *target, const char *supported,
		      const char *why)
{
	struct libscols_line *ln = new_line(tb);
	const char *opts = fs ? mnt_fs_get_vfs_options(fs) : NULL;
	bool idmapped =
	    opts && mnt_optstr_get_option(opts, "idmapped", NULL, NULL) == 0;

	set(ln, 0, fs ? mnt_fs_get_target(fs) : target);
	set(ln, 1, fs ? mnt_fs_get_fstype(fs) : NULL);
	set(ln, 2, fs ? mnt_fs_get_source(fs) : NULL);
	set(ln, 3, fs ? (idmapped ? "yes" : "no") : NULL);
	set(ln, 4, supported);
	set(ln, 5, why);
}

/*
 * A PATH that is a block device or an image file holding a filesystem
 * (libblkid): a row naming what it holds, instead of the answer for the
 * mount that holds the device node or the file, which is not what an
 * idmapped mount of its contents would be.  Returns 1 when one was added;
 * 0 otherwise (not such a PATH, or unreadable: the mount row follows).
 */
static int image_row(struct libscols_table *tb, struct libmnt_table *mt,
		     const char *path)
{
	struct libscols_line *ln;
	struct libmnt_fs *fs = NULL;
	char type[64], why[PATH_MAX + 160];
	struct stat st;
	bool blk;

	if (shift_probe_fstype(path, type, sizeof(type)) <= 0 ||
	    stat(path, &st) < 0)
		return 0;
	blk = S_ISBLK(st.st_mode);
	if (blk)
		fs = mnt_table_find_srcpath(mt, path, MNT_ITER_FORWARD);
	if (fs)
		snprintf(why, sizeof(why),
			 "block device holding %s, mounted at '%s': probe "
			 "that path",
			 type, mnt_fs_get_target(fs));
	else if (blk)
		snprintf(why, sizeof(why),
			 "block device holding %s, not mounted: mount it, "
			 "then probe the mount point",
			 type);
	else
		snprintf(why, sizeof(why),
			 "%s image: mount it (mount -o loop), then probe the "
			 "mount point",
			 type);
	ln = new_line(tb);
	set(ln, 0, path);
	set(ln, 1, type);
	set(ln, 2, path);
	set(ln, 5, why);
	return 1;
}

static int mounts_section(struct output *out)
{
	static const struct colspec cols[] = {
	    {"TARGET", 0.3, SCOLS_FL_NOEXTREMES, SCOLS_JSON_STRING},
	    {"FSTYPE", 0.1, 0, SCOLS_JSON_STRING},
	    {"SOURCE", 0.2, SCOLS_FL_NOEXTREMES, SCOLS_JSON_STRING},
	    {"IDMAPPED", 0.1, 0, SCOLS_JSON_BOOLEAN_OPTIONAL},
	    {"SUPPORTED", 0.1, 0, SCOLS_JSON_BOOLEAN_OPTIONAL},
	    {"WHY", 0.3, SCOLS_FL_WRAP, SCOLS_JSON_STRING},
	};
	struct libscols_table *tb =
	    new_table(out, "mounts", "Mounts", cols, ARRAY_SIZE(cols));
	struct libmnt_table *mt =
	    mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	int ret = EXIT_OK;

	if (!mt) {
		cli_error("Failed to read '/proc/self/mountinfo': %s",
			  strerror(errno ? errno : EIO));
		exit(EXIT_FAIL);
	}
	if (!it)
		oom();

	if (out->o->npaths == 0) {
		while (mnt_table_next_fs(mt, it, &fs) == 0) {
			const char *target = mnt_fs_get_target(fs);
			_cleanup_(shift_error_clear) struct shift_error why = {
			    0};
			char buf[256];
			int r;

			/*
			 * A mount covered by a later one can't be reached by
			 * its path: don't report the cover's answer for it.
			 */
			if (mount_id_of(target) !=
			    (uint64_t)mnt_fs_get_id(fs)) {
				mount_row(
				    tb, fs, target, NULL,
				    "covered by another mount; not probed");
				continue;
			}
			r = shift_probe_idmap(target, &why);
			if (r < 0) {
				snprintf(buf, sizeof(buf), "cannot probe: %s",
					 strerror(-r));
				mount_row(tb, fs, target, NULL, buf);
			} else {
				mount_row(tb, fs, target, r ? "yes" : "no",
					  why.why);
			}
		}
	}
	for (int i = 0; i < out->o->npaths; i++) {
		const char *path = out->o->paths[i];
		_cleanup_(shift_error_clear) struct shift_error why = {0};
		int r;

		if (image_row(tb, mt, path))
			continue;
		r = shift_probe_idmap(path, &why);
		if (r < 0) {
			_cleanup_free_ char *e = shift_escape(path);

			ret = cli_report(r, &why, NULL, "Failed to probe '%s'",
					 e ? e : "?");
			continue;
		}
		mount_row(tb, find_by_id(mt, mount_id_of(path)), path,
			  r ? "yes" : "no", why.why);
	}
	mnt_free_iter(it);
	mnt_unref_table(mt);
	emit(out, tb);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct output out = {.o = &o};
	int ret = EXIT_OK;

	cli_json_begin(argc, argv);
	parse_args(&o, argc, argv);
	out.sections = (o.features ? 4 : 0) + (o.mounts ? 1 : 0);
	if (o.json) {
		out.top = json_object_new_object();
		if (!out.top)
			oom();
	}
	if (o.features) {
		features_section(&out);
		userns_section(&out);
		uidmap_section(&out);
		delegation_section(&out);
	}
	if (o.mounts)
		ret = mounts_section(&out);
	/* One document, a PATH that could not be probed in its "error". */
	if (o.json)
		cli_json_print(out.top, ret);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("Failed to write the output: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return ret;
}
