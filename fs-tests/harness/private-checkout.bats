#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# The harness itself: the suite passes from a checkout other users can't
# reach (a clone under /root, a "mktemp -d" directory: mode 0700), and with
# a TMPDIR they can't reach.  The unprivileged tests run the tools and the
# helpers as ordinary users (or as root of a user namespace); fs-tests/run
# then tests a world-searchable copy of the build's programs, removed on
# exit.  Checked by running fs-tests/run itself on a private copy of the
# build, with two tests that run programs unprivileged; and make demo
# (scripts/demo.sh), whose container user must reach its mount.
# run-on: once

load ../lib/common

# One test that runs shift-tree (and so libshift.so.0, through the tools'
# $ORIGIN/../lib rpath) as an ordinary user, one that runs the idmap
# helper as root of a user namespace.
NESTED_FILTER='unprivileged: shift within the delegation|\[K15\]'

setup() {
	command -v newuidmap >/dev/null || skip "newuidmap is not installed"
	PRIV=$(scratch priv)
	chmod 0700 "$PRIV"
	mkdir -m 0700 "$PRIV/build" "$PRIV/tmp"
	cp -a "$BUILDDIR/bin" "$BUILDDIR/lib" "$BUILDDIR/helpers" "$PRIV/build/"
}

# nested_run ARGS...: fs-tests/run on the private build (not on the tools
# this file was given), on tmpfs, one file at a time.
nested_run() {
	env -u SHIFT_MOUNT -u SHIFT_PROBE -u SHIFT_TREE -u SHIFT_VERIFY \
		-u SHIFT_LAYER -u SHIFT_ALLOC "$@" "$SRCDIR/fs-tests/run" \
		--bindir "$PRIV/build" --fs tmpfs --jobs 1 --filter "$NESTED_FILTER" \
		shift/unpriv.bats semantics/ownership.bats
}

@test "harness: the private build is out of other users' reach (what the copy is for)" {
	run nested_run SHIFTKIT_STAGE=never
	assert_failure
	assert_output --partial 'Permission denied'
	assert_line --regexp '^[0-9]+ passed, [1-9][0-9]* failed, [0-9]+ skipped$'
}

@test "harness: a build and TMPDIR other users can't reach: the suite tests a copy, removed after" {
	local stage
	run nested_run TMPDIR="$PRIV/tmp"
	assert_success
	assert_line "fs-tests/run: TMPDIR '$PRIV/tmp' is out of other users' reach: using /tmp"
	assert_line --regexp "^fs-tests/run: other users can't reach '$PRIV/build/.*': testing a copy of $PRIV/build in /tmp/shiftkit-build\.[^/]*$"
	# the K15 test may skip on a kernel without idmapped tmpfs (< 6.3)
	assert_line --regexp '^(2 passed, 0 failed, 0 skipped|1 passed, 0 failed, 1 skipped)$'
	stage=$(sed -n 's/^fs-tests\/run: .*: testing a copy of .* in //p' <<<"$output")
	[ -n "$stage" ]
	[ ! -e "$stage" ] || fail "the copy '$stage' was left behind"
	# nothing was written to the private TMPDIR
	assert_equal "$(ls -A "$PRIV/tmp")" ""
}

@test "harness: make demo from a build and TMPDIR other users can't reach" {
	run env BUILDDIR="$PRIV/build" TMPDIR="$PRIV/tmp" bash "$SRCDIR/scripts/demo.sh"
	assert_success
	# the container's uid created a file through the mount, in /tmp
	assert_line --regexp '^through the mount: 101000:101000 /tmp/shiftkit-demo\.[^/]*/container/dir/hello$'
	assert_line --regexp '^on disk: +1000:1000 /tmp/shiftkit-demo\.[^/]*/disk/dir/hello$'
	assert_line "done: nothing left mounted"
	assert_equal "$(ls -A "$PRIV/tmp")" ""
}
