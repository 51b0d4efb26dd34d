#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make lint: libshift's subsystems depend on each other in one order only,
#   util -> core -> mount -> engine -> verify -> oci
# (docs/design.md).  A lower subsystem never includes a higher one's header
# and never calls into it.  Three checks, each failing with the offending
# file and what it reaches:
#   1. includes: a file of libshift/S/ (or the public header shift/S.h)
#      includes only "T/...", "shift/T.h" (or, in shift/S.h, "T.h") with T
#      at or below S;
#   2. symbols: an object of libshift/S/ leaves undefined no symbol that an
#      object of a higher subsystem defines (needs the build: BUILDDIR);
#   3. every public header compiles on its own.
#   scripts/check-layers.sh [BUILDDIR]
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
builddir=${1:-${BUILDDIR:-build}}
order=(util core mount engine verify oci)
fail=0

rank() {
	local i
	for i in "${!order[@]}"; do
		[ "${order[$i]}" = "$1" ] && { echo "$i"; return 0; }
	done
	echo -1
}

# 1. includes
check_includes() { # FILE SUBSYSTEM
	local f=$1 s=$2 rs inc t rt
	rs=$(rank "$s")
	while IFS= read -r inc; do
		case $inc in
		shift/*.h) t=${inc#shift/} t=${t%.h} ;;
		*/*) t=${inc%%/*} ;;
		*.h) # a public header's sibling: "core.h" in shift/mount.h
			[[ $f == libshift/include/shift/* ]] || continue
			t=${inc%.h} ;;
		*) continue ;;
		esac
		rt=$(rank "$t")
		[ "$rt" -ge 0 ] || continue
		if [ "$rt" -gt "$rs" ]; then
			echo "check-layers: $f ($s) includes \"$inc\" ($t is above $s)" >&2
			fail=1
		fi
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
}
for s in "${order[@]}"; do
	for f in libshift/"$s"/*.[ch]; do
		[ -e "$f" ] && check_includes "$f" "$s"
	done
	[ -e "libshift/include/shift/$s.h" ] &&
		check_includes "libshift/include/shift/$s.h" "$s"
done
for d in libshift/*/; do
	d=${d%/}
	d=${d#libshift/}
	[ "$d" = include ] && continue
	if [ "$(rank "$d")" -lt 0 ]; then
		echo "check-layers: libshift/$d/ is not a subsystem of the order (${order[*]})" >&2
		fail=1
	fi
done
if compgen -G 'libshift/*.c' >/dev/null; then
	echo "check-layers: C files directly in libshift/ belong in a subsystem folder:" \
		libshift/*.c >&2
	fail=1
fi

# 2. symbols
if ! compgen -G "$builddir/libshift/*/*.o" >/dev/null; then
	echo "check-layers: no objects under $builddir/libshift (run make first)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in "${order[@]}"; do
	for o in "$builddir"/libshift/"$s"/*.o; do
		[ -e "$o" ] || continue
		nm --defined-only "$o" | awk -v o="${o#"$builddir"/}" -v r="$(rank "$s")" \
			'$2 ~ /^[TDBRC]$/ {print $3, r, o}' >>"$tmp/defs"
	done
done
sort -k1,1 "$tmp/defs" >"$tmp/defs.sorted"
for s in "${order[@]}"; do
	rs=$(rank "$s")
	for o in "$builddir"/libshift/"$s"/*.o; do
		[ -e "$o" ] || continue
		nm -u "$o" | awk '{print $2}' | sort -u >"$tmp/undef"
		join "$tmp/undef" "$tmp/defs.sorted" |
			awk -v rs="$rs" -v o="${o#"$builddir"/}" \
				'$2 > rs {printf "check-layers: %s calls %s, defined in %s (a higher subsystem)\n", o, $1, $3; bad=1}
				 END {exit bad}' >&2 || fail=1
	done
done

# 3. self-contained public headers
for h in libshift/include/shift.h libshift/include/shift/*.h; do
	if ! echo "#include \"${h#libshift/include/}\"" |
		${CC:-cc} -std=c11 -Wall -Werror -Ilibshift/include -fsyntax-only -x c - 2>"$tmp/err"; then
		echo "check-layers: $h does not compile on its own:" >&2
		head -5 "$tmp/err" >&2
		fail=1
	fi
done

[ "$fail" -eq 0 ] && echo "check-layers: ${order[*]}: no dependency against the order"
exit "$fail"
