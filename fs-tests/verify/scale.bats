#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shift-verify record and check hold a bounded amount of memory, not the
# tree: on a generated 200,000-inode tree (bench/gentree, on a tmpfs of
# the test's own) each stays under 32 MiB of peak RSS.  The whole-tree
# writer before it took 180 MiB for record and 60 MiB for check there.
#
# run-on: tmpfs

load ../lib/common

GENTREE=$BUILDDIR/bench/gentree
MAX_KIB=$((32 * 1024))

setup() {
	[ -x "$SHIFT_VERIFY" ] || fail "'$SHIFT_VERIFY' is not built"
	[ -x "$GENTREE" ] || fail "'$GENTREE' is not built"
	[ -x /usr/bin/time ] || skip "no /usr/bin/time (apt-get install time)"
	! ldd "$SHIFT_VERIFY" 2>/dev/null | grep -q libasan ||
		skip "a sanitizer build: its peak RSS is the sanitizer's"
	S=$SK_TMP/scale-t$BATS_TEST_NUMBER
	mkdir -p "$S"
	mount -t tmpfs -o mode=0755,size=1g,nr_inodes=400k shiftkit-scale "$S"
}

teardown() {
	if [ -n "${S:-}" ]; then
		umount "$S" 2>/dev/null || umount -l "$S" 2>/dev/null || true
		rmdir "$S" 2>/dev/null || true
	fi
	fs_test_teardown
}

# rss_kib CMD...: run CMD (status 0 expected), print its peak RSS in KiB
rss_kib() {
	/usr/bin/time -f %M -o "$S/.rss" "$@" >/dev/null
	cat "$S/.rss"
}

@test "record and check of a 200k-inode tree stay under 32 MiB of peak RSS" {
	local n rss
	mkdir "$S/t"
	"$GENTREE" -n 200000 --data-max 0 -s 5 "$S/t" >/dev/null
	n=$(find "$S/t" | wc -l)
	[ "$n" -ge 200000 ]
	rss=$(rss_kib "$SHIFT_VERIFY" record --output "$S/m" "$S/t")
	echo "record: $n entries, peak RSS $rss KiB"
	[ "$(grep -c '^\.' "$S/m")" -eq "$n" ]
	[ "$rss" -lt "$MAX_KIB" ]
	rss=$(rss_kib "$SHIFT_VERIFY" check -M "$S/m" "$S/t")
	echo "check: peak RSS $rss KiB"
	[ "$rss" -lt "$MAX_KIB" ]
}
