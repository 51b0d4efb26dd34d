#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/check-symbols.sh (make lint): libshift/libshift.sym lists every
# exported function by name, exactly those the public headers declare; a
# missing name, an extra one and a wildcard each fail the check.
# run-on: once

load ../lib/common

setup() {
	command -v gcc >/dev/null || skip "gcc is not installed (make deps)"
}

@test "symbols: the version script lists exactly the declared shift_* functions" {
	run bash "$SRCDIR/scripts/check-symbols.sh"
	assert_success
	assert_output --regexp '^check-symbols: [0-9]+ symbols in libshift/libshift.sym, each declared in a public header$'
}

@test "symbols: a missing, an undeclared and a wildcard entry are each named" {
	local d
	d=$(scratch symbols)
	sed -e '/^[[:space:]]*shift_idmap_new;/d' \
		-e 's/^\([[:space:]]*\)shift_idmap_free;/&\n\1shift_no_such_function;\n\1shift_*;/' \
		"$SRCDIR/libshift/libshift.sym" >"$d/libshift.sym"
	run env SYMBOLS_FILE="$d/libshift.sym" bash "$SRCDIR/scripts/check-symbols.sh"
	assert_failure 1
	assert_line "check-symbols: shift_idmap_new is declared in a public header but missing from $d/libshift.sym (it is not exported)"
	assert_line --partial "lists shift_no_such_function, which no public header declares"
	assert_line --partial "a wildcard in the global section (shift_*)"
}
