#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make lint: every reference to one of shiftkit's man pages, anywhere in the
# tree (man pages, docs, README, --help strings in the C sources, tests),
# names the section its page is in: shift-tree is in section 1, so a
# reference to it in section 8 is wrong.
# The pages are docs/NAME.SECTION; a reference is NAME(N), NAME (N), roff's
# ".BR NAME (N)" or "\fBNAME\fR(N)".  A reference to a shift-* page that
# does not exist fails too.  Prints "FILE:LINE: ..." for each and exits 1.
#   scripts/check-manrefs.sh [FILE...]   (default: every file git tracks)
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

declare -A section=()
for p in docs/*.[1-8]; do
	n=${p##*/}
	section[${n%.*}]=${n##*.}
done
[ ${#section[@]} -gt 0 ] || { echo "check-manrefs: no man pages in docs/" >&2; exit 1; }

if [ $# -eq 0 ]; then
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		mapfile -t files < <(git ls-files)
	else
		mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune \
			-o -path ./.git -prune -o -type f -print | sed 's|^\./||')
	fi
else
	files=("$@")
fi

# NAME, then a roff font change (\fX, \f(XX, \f[X]) or blanks, then (N).
re='(shift-[a-z][-a-z]*)(\\f([A-Z]|\([A-Z][A-Z]|\[[A-Z]*\]))?[[:space:]]*\(([0-9])\)'
bad=0
while IFS= read -r hit; do
	# FILE:LINE:MATCH (grep -o: one match a line)
	file=${hit%%:*}
	rest=${hit#*:}
	line=${rest%%:*}
	ref=${rest#*:}
	[[ $ref =~ $re ]] || continue
	name=${BASH_REMATCH[1]} sec=${BASH_REMATCH[4]}
	if [ -z "${section[$name]:-}" ]; then
		echo "$file:$line: $name($sec): there is no man page $name (docs/$name.*)"
		bad=1
	elif [ "${section[$name]}" != "$sec" ]; then
		echo "$file:$line: $name($sec): the page is $name(${section[$name]}) (docs/$name.${section[$name]})"
		bad=1
	fi
done < <(printf '%s\0' "${files[@]}" | xargs -0 grep -IHnoE -- "$re" 2>/dev/null || true)
exit "$bad"
