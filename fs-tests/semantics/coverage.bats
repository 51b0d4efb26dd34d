#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The semantics suite describes itself: docs/kernel-semantics.md is what
# coverage.sh prints from the tests' [Kn] tags, every test carries a tag,
# and at least 35 of the catalogue's 40 entries are covered.
# run-on: once

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

SRC=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
COV=$BATS_TEST_DIRNAME/coverage.sh

@test "docs/kernel-semantics.md is the table coverage.sh prints" {
	run "$COV" --check "$SRC/docs/kernel-semantics.md"
	assert_success
}

@test "every semantics test names the catalogue entries it checks" {
	local f untagged='' n=0
	for f in "$BATS_TEST_DIRNAME"/*.bats; do
		[ "$f" != "$BATS_TEST_FILENAME" ] || continue
		n=$((n + $(grep -c '^@test ' "$f")))
		untagged+=$(grep '^@test ' "$f" | grep -Ev '^@test "\[[KO][0-9]+(,[KO][0-9]+)*\] ' || true)
	done
	assert_equal "$untagged" ""
	[ "$n" -ge 40 ]
}

@test "at least 35 of the 40 catalogue entries are covered" {
	run "$COV" --summary
	assert_success
	[[ $output =~ ^covered\ ([0-9]+)\ of\ 40$ ]]
	[ "${BASH_REMATCH[1]}" -ge 35 ]
}

@test "coverage.sh: --help, and a bad argument is a usage error" {
	run "$COV" --help
	assert_success
	assert_output --partial "coverage.sh [--check FILE]"
	run "$COV" --bogus
	assert_failure 2
	assert_output --partial "unknown argument '--bogus'"
}
