# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# What every bench/*.sh section repeated: where the tree and the binaries
# are, how to fail, the root check, and a scratch directory that is
# unmounted and removed on exit whatever happens.  Source it first:
#   . "$(dirname "$0")/lib.sh"; bench_init NAME
# Sets: here (bench/), top (the source tree), B (the build directory,
# absolute; $BUILDDIR or build).

# bench_init NAME: the prefix of die()'s messages.
bench_init() {
	bench_name=$1
	here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
	top=$(cd "$here/.." && pwd)
	B=${BUILDDIR:-build}
	case "$B" in /*) ;; *) B="$top/$B" ;; esac
	# Read by the scripts that source this file.
	export here top B
}

die() {
	echo "$bench_name: $*" >&2
	exit 1
}

# Not root: print why the section is skipped and end it (exit 0).
bench_need_root() {
	[ "$(id -u)" -eq 0 ] || { echo "(skipped: needs root)"; exit 0; }
}

# bench_need FILE...: every FILE an executable of the build.
bench_need() {
	local x
	for x in "$@"; do
		[ -x "$x" ] || die "Failed to find '$x' (make BUILDDIR=$B)"
	done
}

# bench_workdir BASE PREFIX: work=$(mktemp -d BASE/PREFIX.XXXXXX), and an
# EXIT trap that runs bench_on_exit (when the script defines one), then
# unmounts everything at or below $work (deepest first) and removes it.
bench_workdir() {
	work=$(mktemp -d "$1/$2.XXXXXX")
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local m
	if declare -F bench_on_exit >/dev/null; then
		bench_on_exit || true
	fi
	[ -n "${work:-}" ] && [ -d "$work" ] || return 0
	while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
		awk -v d="$work" '$5 == d || index($5, d "/") == 1 { print $5 }' \
			/proc/self/mountinfo | sort -r)
	rm -rf --one-file-system "$work"
}
