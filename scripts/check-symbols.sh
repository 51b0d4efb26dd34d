#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make lint: libshift's version script (libshift/libshift.sym) lists every
# exported function by name, and exactly those the public headers declare:
#   1. a shift_* function declared in libshift/include/ is missing from the
#      .sym (it would not be exported: a link error for every user);
#   2. the .sym lists a name that no public header declares (an export
#      nobody can call without declaring it himself);
#   3. the .sym's global section has a wildcard (it would export whatever
#      happens to be named shift_*).
# The declarations come from the compiler (gcc -aux-info), not from
# grepping the headers, so comments and typedefs don't count.
#   [SYMBOLS_FILE=FILE] scripts/check-symbols.sh
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
gcc=${GCC:-gcc}
sym=${SYMBOLS_FILE:-libshift/libshift.sym} # tests give a copy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

if ! "$gcc" -Ilibshift/include -aux-info "$tmp/aux" -fsyntax-only -x c \
	libshift/include/shift.h; then
	echo "check-symbols: Failed to compile libshift/include/shift.h with $gcc" >&2
	exit 1
fi
# "/* libshift/include/shift/core.h:66:NC */ extern struct shift_idmap *shift_idmap_new (void);"
sed -n 's|^/\* libshift/include/[^ ]* \*/ \(.*\)$|\1|p' "$tmp/aux" |
	grep -v '^static ' |
	sed -n 's/^.*[ *]\(shift_[A-Za-z0-9_]*\) (.*$/\1/p' | sort -u >"$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
	echo "check-symbols: found no shift_* declaration in libshift/include/ (is $gcc GCC?)" >&2
	exit 1
fi

# The names between "global:" and "local:", comments and blanks aside.
sed -e 's|/\*.*\*/||g' "$sym" |
	awk '/^[[:space:]]*global:/ { g = 1; next }
	     /^[[:space:]]*local:/ { g = 0 }
	     g { gsub(/[[:space:];]/, ""); if ($0 != "") print }' >"$tmp/listed.raw"
if grep -n '[*?[]' "$tmp/listed.raw" >/dev/null; then
	echo "check-symbols: $sym: a wildcard in the global section ($(grep '[*?[]' "$tmp/listed.raw" | head -1)): list every symbol by name" >&2
	fail=1
fi
sort -u "$tmp/listed.raw" >"$tmp/listed"

while read -r f; do
	echo "check-symbols: $f is declared in a public header but missing from $sym (it is not exported)" >&2
	fail=1
done < <(comm -23 "$tmp/declared" "$tmp/listed")
while read -r f; do
	echo "check-symbols: $sym lists $f, which no public header declares (declare it in libshift/include/shift/*.h, or drop it)" >&2
	fail=1
done < <(comm -13 "$tmp/declared" "$tmp/listed")

if [ "$fail" = 0 ]; then
	echo "check-symbols: $(wc -l <"$tmp/listed") symbols in $sym, each declared in a public header"
fi
exit "$fail"
