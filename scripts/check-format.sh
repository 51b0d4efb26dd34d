#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make lint: the C files listed in scripts/format-clean.txt stay exactly as
# clang-format (the repo's .clang-format, kernel style) formats them, so
# their style is mechanical.  The list only grows: format a file whole
# (clang-format -i, in a commit of its own), then add it.
#   scripts/check-format.sh              check the listed files
#   scripts/check-format.sh --candidates print the C files git tracks that
#                                        are clean but not listed yet
# $FORMAT_LIST names another list (the tests use it).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
list=${FORMAT_LIST:-scripts/format-clean.txt}
style=--style=file:$PWD/.clang-format

command -v clang-format >/dev/null || {
	echo "check-format: clang-format is not installed (make deps)" >&2
	exit 1
}
mapfile -t listed < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$list")

if [ "${1:-}" = --candidates ]; then
	git ls-files '*.c' '*.h' | while IFS= read -r f; do
		printf '%s\n' "${listed[@]}" | grep -qxF -- "$f" && continue
		clang-format "$style" --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"
	done
	exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--candidates]" >&2; exit 2; }

bad=0
for f in "${listed[@]}"; do
	if [ ! -f "$f" ]; then
		echo "$list: '$f' does not exist (moved? update the list)"
		bad=1
	elif ! clang-format "$style" --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "$f: differs from what clang-format makes of it (fix: clang-format -i $f):"
		clang-format "$style" "$f" | diff -u "$f" - | head -20 || true
		bad=1
	fi
done
exit "$bad"
