#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount's command line: --help, --version, usage errors and their
# exit codes (0 ok, 1 failure, 2 usage, 3 not supported).
# run-on: once

load ../lib/common

@test "--help prints the usage to stdout and exits 0" {
	run --separate-stderr "$SHIFT_MOUNT" --help
	assert_success
	assert_output --partial "Usage:"
	assert_output --partial "--map"
	assert_output --partial "--recursive"
	assert_output --partial "--overlay"
	assert_output --partial "--tmpfs"
	assert_output --partial "--allow-stacked"
	assert_output --partial "--dry-run"
	assert_output --partial "--json"
	assert_output --partial "--quiet"
	[ -z "$stderr" ]
	run "$SHIFT_MOUNT" -h
	assert_success
	assert_output --partial "Usage:"
}

@test "--version prints the version and exits 0" {
	run "$SHIFT_MOUNT" --version
	assert_success
	assert_output --regexp '^shift-mount from shiftkit [0-9]'
	run "$SHIFT_MOUNT" -V
	assert_success
}

@test "an unknown option exits 2 and points to --help" {
	run --separate-stderr "$SHIFT_MOUNT" --no-such-option
	assert_failure 2
	[ -z "$output" ]
	[[ "$stderr" == *"Try 'shift-mount --help' for more information."* ]]
}

@test "missing map, source or target exits 2" {
	local m
	m=$(scratch m)
	run "$SHIFT_MOUNT" "$FS_TREE" "$m"
	assert_failure 2
	run "$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE"
	assert_failure 2
	run "$SHIFT_MOUNT" --map 0:100000:65536
	assert_failure 2
	run "$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE" "$m" extra
	assert_failure 2
	run "$SHIFT_MOUNT"
	assert_failure 2
}

@test "two map sources at once exit 2" {
	local m
	m=$(scratch m)
	run "$SHIFT_MOUNT" --map 0:100000:65536 --pid 1 "$FS_TREE" "$m"
	assert_failure 2
	run mountpoint -q "$m"
	assert_failure
}

@test "a missing source or target exits 1 naming the path" {
	local m
	m=$(scratch m)
	run "$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE/no-such-dir" "$m"
	assert_failure 1
	assert_output --partial "'$FS_TREE/no-such-dir'"
	run "$SHIFT_MOUNT" --map 0:100000:65536 "$FS_TREE" "$m/no-such-dir"
	assert_failure 1
	assert_output --partial "'$m/no-such-dir'"
}

@test "--pid takes the map of a running process" {
	require_idmap
	local m pid
	m=$(scratch m)
	pid=$(userns_process "0 200000 65536")
	idmap_mount --pid "$pid" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000")" 201000:201000
	assert_equal "$(owner "$m/file-root")" 200000:200000
}

@test "--userns takes the map of a user namespace file" {
	require_idmap
	local m pid
	m=$(scratch m)
	pid=$(userns_process "0 200000 65536" "0 300000 65536")
	idmap_mount --userns "/proc/$pid/ns/user" "$FS_TREE" "$m"
	assert_equal "$(owner "$m/file-1000")" 201000:301000
}

@test "--pid of a process without a user namespace of its own is refused" {
	local m
	m=$(scratch m)
	# Init's namespace maps everything to itself, host root included.
	run "$SHIFT_MOUNT" --pid 1 "$FS_TREE" "$m"
	assert_failure 2
	assert_output --partial "--allow-host-root"
}

@test "without privilege the error says 'run as root' once" {
	local s t
	s=$(scratch s)
	t=$(scratch t)
	# A user namespace of the caller's own: shift-mount gets as far as
	# mount_setattr(), which needs CAP_SYS_ADMIN over the mount.
	run as_user 1000 1000 bash -c '
		unshare -U -r sleep 60 </dev/null >/dev/null 2>&1 &
		p=$!
		for i in $(seq 100); do
			[ "$(readlink /proc/$p/ns/user)" != "$(readlink /proc/self/ns/user)" ] && break
			sleep 0.05
		done
		"$0" --userns /proc/$p/ns/user "$1" "$2"
		rc=$?
		kill $p
		exit $rc' "$SHIFT_MOUNT" "$s" "$t"
	assert_failure 1
	assert_output --partial "'$s'"
	assert_output --partial "run as root"
	assert_equal "$(grep -o 'run as root' <<<"$output" | wc -l)" 1
	run mountpoint -q "$t"
	assert_failure
}
