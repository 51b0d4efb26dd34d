#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# The harness itself: an expected failure that passes is reported.
# run-on: once

load ../lib/common

@test "expect_failure: a command that fails as expected is not a failure" {
	run expect_failure "known bug" false
	assert_success
	refute_output --partial "unexpected pass"
}

@test "expect_failure: an unexpected pass fails the test and says so" {
	run expect_failure "known bug" true
	assert_failure
	assert_output --partial "unexpected pass of an expected failure (known bug)"
}
