#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/check-manrefs.sh (make lint): a reference to a shiftkit man page
# in the wrong section, or to one that does not exist, is found in every
# spelling (text, roff .BR, roff font escapes); the tree has none.
# run-on: once

load ../lib/common

@test "manrefs: the tree references every shiftkit man page in its section" {
	run bash "$SRCDIR/scripts/check-manrefs.sh"
	assert_success
	assert_output ""
}

@test "manrefs: wrong sections and missing pages are named with file and line" {
	local d f
	d=$(scratch manrefs)
	f=$d/page.8
	# (the wrong sections through variables: this file is checked too)
	local one=1 eight=8
	cat >"$f" <<TXT
See shift-tree(1), shift-mount(8) and shift-probe (8).
.BR shift-verify (1),
Wrong: shift-tree($eight) here.
.BR shift-verify ($eight),
\fBshift-alloc\fR($eight) and \fBshift-layer\fP(1)
Also "shift-mount($one)" in a --help string, and shift-nothing($one).
TXT
	run bash "$SRCDIR/scripts/check-manrefs.sh" "$f"
	assert_failure 1
	assert_output "$f:3: shift-tree($eight): the page is shift-tree(1) (docs/shift-tree.1)
$f:4: shift-verify($eight): the page is shift-verify(1) (docs/shift-verify.1)
$f:5: shift-alloc($eight): the page is shift-alloc(1) (docs/shift-alloc.1)
$f:6: shift-mount($one): the page is shift-mount(8) (docs/shift-mount.8)
$f:6: shift-nothing($one): there is no man page shift-nothing (docs/shift-nothing.*)"
}
