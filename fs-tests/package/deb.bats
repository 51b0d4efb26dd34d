#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian packages (debian/): dpkg-buildpackage builds shiftkit,
# libshift0, libshift-dev and shiftkit-tests from a copy of this source
# tree, lintian finds nothing to warn about, each package holds what it
# should, a program links statically through libshift-dev's pkg-config
# file, and the packaged suite's quick subset passes against the packaged
# tools.  The packages are unpacked (dpkg -x) into a scratch root, never
# installed on the machine.
# run-on: once

load ../lib/common

setup_file() {
	fs_setup
	export PKG=$SK_TMP/pkg ROOT=$SK_TMP/root
	mkdir -p "$PKG/src" "$ROOT"
	chmod 0755 "$PKG" "$ROOT"
	# The source as git knows it (tracked and new files, no build output),
	# or, outside a checkout, everything but the build directories.
	if git -C "$SRCDIR" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$SRCDIR" && git ls-files -co --exclude-standard -z |
			tar --null -cf - -T - --ignore-failed-read) |
			tar -xf - -C "$PKG/src"
	else
		tar -C "$SRCDIR" --exclude=./build --exclude=./build-asan -cf - . |
			tar -xf - -C "$PKG/src"
	fi
	# Nothing of this suite's environment (BUILDDIR, the outer make's
	# jobserver) may reach the package's own build.
	(cd "$PKG/src" && env -u BUILDDIR -u SRCDIR -u HELPERS -u SANITIZE \
		-u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SHIFTKIT_BUILDDIR -u SHIFT_MOUNT -u SHIFT_PROBE \
		-u SHIFT_TREE -u SHIFT_VERIFY -u SHIFT_LAYER -u SHIFT_ALLOC \
		dpkg-buildpackage -us -uc -b -j2) >"$PKG/build.log" 2>&1 ||
		echo $? >"$PKG/build.failed"
	local d
	for d in "$PKG"/*.deb; do
		[ -e "$d" ] && dpkg -x "$d" "$ROOT"
	done
	return 0
}

teardown_file() {
	fs_teardown
}

built() {
	if [ -e "$PKG/build.failed" ]; then
		tail -40 "$PKG/build.log" >&2
		fail "dpkg-buildpackage failed (status $(cat "$PKG/build.failed"))"
	fi
}

@test "dpkg-buildpackage builds shiftkit, libshift0, libshift-dev and shiftkit-tests" {
	built
	local p
	for p in shiftkit libshift0 libshift-dev shiftkit-tests; do
		compgen -G "$PKG/${p}_*.deb" >/dev/null || fail "no $p package"
	done
}

@test "lintian: no errors or warnings" {
	built
	run lintian --tag-display-limit 0 "$PKG"/shiftkit_*.changes
	# Only informational tags (I:) may remain.
	if grep -E '^[EWX]: ' <<<"$output"; then
		fail "lintian complains"
	fi
}

@test "each package holds its files" {
	built
	local t arch c
	arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	# has PACKAGE PATH: PACKAGE's .deb holds PATH (a file, or a link).
	has() {
		dpkg -c "$PKG/$1"_*.deb >"$BATS_TEST_TMPDIR/list" || return 1
		grep -Eq "\./$2( -> .*)?\$" "$BATS_TEST_TMPDIR/list"
	}
	for t in mount tree verify alloc layer probe; do
		has shiftkit "usr/bin/shift-$t" || fail "shiftkit lacks shift-$t"
		has shiftkit "usr/share/bash-completion/completions/shift-$t" ||
			fail "shiftkit lacks the completion of shift-$t"
	done
	has shiftkit usr/sbin/shift-mountd || fail "shiftkit lacks usr/sbin/shift-mountd"
	has shiftkit usr/share/man/man1/shift-tree.1.gz || fail "shiftkit lacks the man pages"
	has libshift0 "usr/lib/$arch/libshift.so.0" || fail "libshift0 lacks libshift.so.0"
	for c in usr/include/libshift/shift.h "usr/lib/$arch/libshift.a" \
		"usr/lib/$arch/pkgconfig/libshift.pc" "usr/lib/$arch/libshift.so"; do
		has libshift-dev "$c" || fail "libshift-dev lacks $c"
	done
	for c in usr/bin/shiftkit-fs-tests usr/share/shiftkit/fs-tests/run \
		"usr/lib/$arch/shiftkit/helpers/idmap-helper" \
		usr/share/man/man8/shiftkit-fs-tests.8.gz; do
		has shiftkit-tests "$c" || fail "shiftkit-tests lacks $c"
	done
	# The source tree's own checks are not part of the installed suite.
	! has shiftkit-tests usr/share/shiftkit/fs-tests/package/deb.bats ||
		fail "shiftkit-tests ships the packaging test"
	# The packaged tools carry no build-tree search path.
	run readelf -d "$ROOT/usr/bin/shift-tree"
	refute_output --partial RUNPATH
	refute_output --partial RPATH
}

@test "a program links statically against libshift through pkg-config" {
	built
	local arch d
	arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	d=$(scratch cc)
	cat >"$d/p.c" <<'C'
#include <stdio.h>
#include <libshift/shift.h>
int main(void)
{
	struct shift_idmap *m = shift_idmap_new();
	const char *why = NULL;

	if (!m || shift_idmap_parse(m, "b:0:100000:65536", &why) < 0)
		return 1;
	puts("ok");
	shift_idmap_free(m);
	return 0;
}
C
	# libshift.pc as unpacked, pointed at the scratch root; the libraries
	# it requires come from the machine.
	mkdir "$d/pc"
	sed "s|^prefix=.*|prefix=$ROOT/usr|; s|^libdir=/usr|libdir=$ROOT/usr|; s|^includedir=/usr|includedir=$ROOT/usr|" \
		"$ROOT/usr/lib/$arch/pkgconfig/libshift.pc" >"$d/pc/libshift.pc"
	export PKG_CONFIG_PATH=$d/pc
	run pkg-config --static --cflags --libs libshift
	assert_success
	assert_output --partial "-L$ROOT/usr/lib/$arch"
	# shellcheck disable=SC2046 # pkg-config's words
	run cc -o "$d/p" "$d/p.c" $(pkg-config --static --cflags libshift) \
		-Wl,-Bstatic -lshift -Wl,-Bdynamic -Wl,--as-needed \
		$(pkg-config --static --libs libshift | sed 's/-lshift//')
	assert_success
	run "$d/p"
	assert_success
	assert_output ok
	run ldd "$d/p"
	refute_output --partial libshift
}

@test "the packaged suite's quick subset passes against the packaged tools" {
	built
	run "$ROOT/usr/bin/shiftkit-fs-tests" --quick
	echo "$output" | tail -20
	assert_success
	assert_line --regexp '^[1-9][0-9]* passed, 0 failed'
}
