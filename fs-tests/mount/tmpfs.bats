#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-mount --tmpfs: a fresh idmapped tmpfs, with options.
# run-on: once

load ../lib/common

@test "--tmpfs mounts an idmapped tmpfs that stores the caller's mapped-back ids" {
	local m
	m=$(scratch m)
	idmap_mount --tmpfs --options size=8m,mode=0777 --map 0:100000:65536 "$m"
	assert_equal "$(findmnt -no FSTYPE --mountpoint "$m")" tmpfs
	grep -F " $m " /proc/self/mountinfo | grep -q idmapped
	as_user 101000 101000 touch "$m/by-1000"
	assert_equal "$(owner "$m/by-1000")" 101000:101000
	run touch "$m/by-host-root"
	assert_failure
	assert_output --partial "Value too large for defined data type"
	findmnt -no OPTIONS --mountpoint "$m" | grep -q 'size=8192k'
}

@test "--tmpfs refuses bad tmpfs options" {
	local m
	m=$(scratch m)
	run "$SHIFT_MOUNT" --tmpfs --options no-such-option=1 --map 0:100000:65536 "$m"
	assert_failure
	assert_output --partial "shift-mount:"
	run mountpoint -q "$m"
	assert_failure
}
