#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The variables that point libshift at files and services (SHIFT_SUBUID,
# SHIFT_SUBGID, SHIFT_MOUNTD_SOCKET) are read with secure_getenv: honoured
# in an ordinary run, ignored in a program that gains privilege at exec
# (here: file capabilities), whose caller must not choose the delegation
# files or the service it trusts.
#
# run-on: once

load ../lib/common

@test "SHIFT_SUBUID/SUBGID and SHIFT_MOUNTD_SOCKET are ignored when exec gains privilege" {
	command -v setcap >/dev/null || skip "setcap is not installed"
	local d
	d=$(scratch senv)
	cp "$HELPERS/env-helper" "$d/plain"
	cp "$HELPERS/env-helper" "$d/caps"
	setcap cap_chown+p "$d/caps" ||
		skip "no file capabilities on the scratch filesystem"
	printf '65534:3500000:65536\n' >"$d/subuid"
	printf '65534:3600000:65536\n' >"$d/subgid"
	chmod 0644 "$d/subuid" "$d/subgid"

	export SHIFT_SUBUID="$d/subuid" SHIFT_SUBGID="$d/subgid" \
		SHIFT_MOUNTD_SOCKET="$d/sock"
	run as_user 65534 65534 "$d/plain" 65534
	assert_success
	assert_line "at_secure 0"
	assert_line --partial "subid u:0:3500000:65536"
	assert_line --partial "g:0:3600000:65536"
	assert_line "mountd_socket $d/sock"

	run as_user 65534 65534 "$d/caps" 65534
	assert_success
	assert_line "at_secure 1"
	refute_output --partial 3500000
	refute_output --partial 3600000
	refute_output --partial "$d/sock"
	assert_line --regexp '^mountd_socket /'
}
