#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# make install into a DESTDIR: the tools run from there, bash-completion
# finds their completion, and a program
# links libshift statically with what pkg-config --static names
# (libshift.pc's Requires.private/Libs.private); make uninstall removes
# every file it installed.
# run-on: once

load ../lib/common

# The build to install: fs-tests/run's --bindir (BUILDDIR may be a copy of
# its programs only, see fs-tests/run).
BUILD=${SHIFTKIT_BUILDDIR:-$BUILDDIR}

setup_file() {
	fs_setup
	DEST=$SK_TMP/dest
	export DEST
	sk_make install >"$SK_TMP/install.log" 2>&1 || {
		cat "$SK_TMP/install.log" >&2
		return 1
	}
}

# sk_make ARGS...: make ARGS in the source tree, for this build, into
# $DEST with PREFIX=/usr (not the jobserver of a make check around us).
sk_make() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$SRCDIR" \
		BUILDDIR="$BUILD" DESTDIR="$DEST" PREFIX=/usr "$@"
}

# pc ARGS...: pkg-config on the installed libshift.pc.
pc() {
	PKG_CONFIG_SYSROOT_DIR=$DEST PKG_CONFIG_PATH=$DEST/usr/lib/pkgconfig \
		pkg-config "$@"
}

# A program using libshift (only API that stays: shift_escape, id maps).
write_prog() {
	cat >"$1" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <libshift/shift.h>

int main(void)
{
	struct shift_idmap *m = shift_idmap_new();
	char *s = shift_escape("a\nb");

	if (!m || !s)
		return 1;
	printf("%s\n", s);
	free(s);
	shift_idmap_free(m);
	return 0;
}
EOF
}

# The sanitizers libshift.a was built with (make SANITIZE=1), for the link.
san_flags() {
	if nm "$DEST/usr/lib/libshift.a" 2>/dev/null | grep -q ' U __asan_'; then
		echo -fsanitize=address,undefined
	fi
}

@test "install: the tools run from DESTDIR (rpath \$ORIGIN/../lib)" {
	local t
	for t in shift-mount shift-tree shift-verify shift-alloc shift-layer shift-probe; do
		[ -x "$DEST/usr/bin/$t" ] || fail "$t is not installed"
		run env -u LD_LIBRARY_PATH "$DEST/usr/bin/$t" --version
		assert_success
		assert_output --partial "$t from shiftkit"
		run ldd "$DEST/usr/bin/$t"
		assert_line --regexp "^[[:space:]]libshift\.so\.0 => $DEST/usr/bin/\.\./lib/libshift\.so\.0 "
	done
	[ -f "$DEST/usr/include/libshift/shift.h" ]
	[ -f "$DEST/usr/lib/libshift.a" ] || fail "libshift.a is not installed"
	# The daemon is a system binary: sbin, where its unit starts it.
	[ ! -e "$DEST/usr/bin/shift-mountd" ] || fail "shift-mountd is installed in bin/"
	run env -u LD_LIBRARY_PATH "$DEST/usr/sbin/shift-mountd" --version
	assert_success
	assert_output --partial "shift-mountd from shiftkit"
	run grep -x 'ExecStart=/usr/sbin/shift-mountd' "$DEST/usr/lib/systemd/system/shift-mountd.service"
	assert_success
	[ "$(readlink "$DEST/usr/lib/libshift.so")" = libshift.so.0 ]
}

@test "install: bash-completion finds the completion of every tool" {
	local t out
	[ -f /usr/share/bash-completion/bash_completion ] ||
		skip "bash-completion is not installed (make deps)"
	for t in shift-mount shift-tree shift-verify shift-alloc shift-layer shift-probe; do
		[ -e "$DEST/usr/share/bash-completion/completions/$t" ] ||
			fail "no completion installed for $t"
		# its lazy loader, looking in DESTDIR's completions only
		out=$(BASH_COMPLETION_USER_DIR=$DEST/usr/share/bash-completion \
			XDG_DATA_DIRS=/nonexistent bash --norc --noprofile -c '
			source /usr/share/bash-completion/bash_completion
			__load_completion "$1" && complete -p "$1"' sh "$t")
		assert_equal "$out" "complete -F _shiftkit $t"
	done
}

@test "install: libshift.pc names what a static link of libshift.a needs" {
	run pc --print-requires-private libshift
	assert_success
	for r in mount blkid libcap smartcols json-c libarchive libcrypto; do
		assert_line "$r"
	done
	run pc --static --libs libshift
	assert_success
	assert_output --partial -pthread
	assert_output --partial -lmount
	assert_output --partial -larchive
}

@test "install: a program links libshift.a statically with pkg-config --static" {
	local d prog san
	d=$(scratch link)
	write_prog "$d/p.c"
	san=$(san_flags)
	# libshift itself static (Debian ships no libmount.a, so the
	# dependencies stay shared), every object of the archive pulled in:
	# whatever any of them needs must be named by pkg-config --static.
	# (--as-needed: the -lshift of Libs, which would find libshift.so
	# too, is then left out; gcc -fsanitize turns it off otherwise.)
	# shellcheck disable=SC2046,SC2086
	run cc $san -o "$d/p" "$d/p.c" $(pc --cflags libshift) -Wl,--as-needed \
		-Wl,--whole-archive -Wl,-Bstatic -lshift -Wl,-Bdynamic -Wl,--no-whole-archive \
		$(pc --static --libs libshift)
	assert_success
	run readelf -d "$d/p"
	assert_success
	refute_output --partial libshift.so
	run env -u LD_LIBRARY_PATH "$d/p"
	assert_success
	assert_output 'a\nb'
	# the same link with the shared library's flags only fails: the
	# test sees what Requires.private adds
	# shellcheck disable=SC2046,SC2086
	run cc $san -o "$d/q" "$d/p.c" $(pc --cflags libshift) \
		-Wl,--whole-archive -Wl,-Bstatic -lshift -Wl,-Bdynamic -Wl,--no-whole-archive \
		$(pc --libs libshift)
	assert_failure
	assert_output --partial 'undefined reference'
}

@test "install: a program links the shared libshift with pkg-config" {
	local d san
	d=$(scratch link)
	write_prog "$d/p.c"
	san=$(san_flags)
	# shellcheck disable=SC2046,SC2086
	run cc $san -o "$d/p" "$d/p.c" $(pc --cflags --libs libshift)
	assert_success
	run env LD_LIBRARY_PATH="$DEST/usr/lib" "$d/p"
	assert_success
	assert_output 'a\nb'
}

@test "uninstall: every installed file is removed" {
	run sk_make uninstall
	assert_success
	run find "$DEST" ! -type d
	assert_success
	assert_output ""
}
