#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/check-format.sh (make lint): the C files listed in
# scripts/format-clean.txt are exactly as clang-format formats them; a
# listed file that drifted, or that no longer exists, fails the check.
# run-on: once

load ../lib/common

setup() {
	command -v clang-format >/dev/null || skip "clang-format is not installed (make deps)"
}

@test "format: every listed file is as clang-format formats it" {
	run bash "$SRCDIR/scripts/check-format.sh"
	assert_success
	assert_output ""
	# the list is not empty
	[ "$(grep -cv '^#' "$SRCDIR/scripts/format-clean.txt")" -gt 0 ]
}

@test "format: a listed file that drifted, or is gone, is named" {
	local d
	d=$(scratch format)
	printf 'int main(void)\n{\n\treturn 0;\n}\n' >"$d/good.c"
	printf 'int  main( void ){\n    return 0;\n}\n' >"$d/bad.c"
	printf '# comment\n%s\n\n%s\n%s\n' "$d/good.c" "$d/bad.c" "$d/gone.c" >"$d/list"
	run env FORMAT_LIST="$d/list" bash "$SRCDIR/scripts/check-format.sh"
	assert_failure 1
	assert_line "$d/bad.c: differs from what clang-format makes of it (fix: clang-format -i $d/bad.c):"
	assert_line "$d/list: '$d/gone.c' does not exist (moved? update the list)"
	refute_output --partial "good.c"
}
