#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make check: the C unit tests, then the fs-tests suite; one summary line.
#   scripts/check.sh [--unit-only|--fs-only] [fs-tests/run options...]
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILDDIR=${BUILDDIR:-build}
mode=all
case "${1:-}" in
--unit-only) mode=unit; shift ;;
--fs-only) mode=fs; shift ;;
esac

passed=0 failed=0 skipped=0
if [ "$mode" != fs ]; then
	for t in "$BUILDDIR"/tests/test-*; do
		case "$t" in *.o) continue ;; esac
		[ -x "$t" ] || continue
		out=$("$t" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed "s|^|${t##*/}: |"
		p=$(printf '%s\n' "$out" | grep -c '^ok .*' )
		s=$(printf '%s\n' "$out" | grep -c '^ok .*# skip')
		f=$(printf '%s\n' "$out" | grep -c '^not ok')
		passed=$((passed + p - s)) skipped=$((skipped + s)) failed=$((failed + f))
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "$f" -eq 0 ]; then
			echo "${t##*/}: exited with status $rc" >&2
			failed=$((failed + 1))
		fi
	done
	echo "unit tests: $passed passed, $failed failed, $skipped skipped"
fi
if [ "$mode" != unit ]; then
	summary=$(mktemp)
	fs-tests/run --bindir "$BUILDDIR" --summary-file "$summary" "$@"
	read -r p f s < "$summary" || { p=0; f=1; s=0; }
	rm -f "$summary"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
