# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# fs-tests/verify/lib.bash: helpers of the shift-verify tests.
#
#   vwork               print a fresh directory on the filesystem under test
#                       (layers, upper and work dirs, shifted copies live there)
#   new_layer DIR       fill DIR with a copy of the fixture tree
#   start_container UIDMAP GIDMAP  a process in a new user and mount
#                       namespace with these maps ("A B N"); prints its pid;
#                       verify_teardown kills it
#   verify_teardown     kill the processes, unmount, remove the work dir
#   report ARGS...      shift-verify containers --json ARGS into this test's
#                       report file; its exit status
#   failed_checks       from the report: the distinct names of the failed
#                       checks, one per line
#   failures CHECK      the failed checks of CHECK as "subject path field",
#                       one line per difference listed ("subject - -" for a
#                       failure without differences)
#   differences JQ-EXPR JQ-EXPR applied to each difference listed
#   findings JQ-EXPR    JQ-EXPR applied to each finding of the report

vwork() {
	local w=$FS_MNT/verify-t$BATS_TEST_NUMBER

	rm -rf --one-file-system "$w"
	mkdir -p "$w"
	echo "$w" >>"$SK_TMP/t$BATS_TEST_NUMBER.vwork"
	echo "$w"
}

new_layer() {
	mkdir -p "$1"
	cp -a "${SHIFTKIT_IMAGES:?}/tree/." "$1/"
}

start_container() {
	local pid uidmap=$1 gidmap=$2
	unshare --user --mount --propagation private sleep 600 >/dev/null 2>&1 </dev/null &
	pid=$!
	echo "$pid" >>"$SK_TMP/t$BATS_TEST_NUMBER.pids"
	# wait for the namespaces, then write the maps from here (root in
	# the parent namespace may, once; unshare itself would want newuidmap)
	for _ in $(seq 1 100); do
		[ "$(readlink "/proc/$pid/ns/user" 2>/dev/null)" != \
			"$(readlink /proc/self/ns/user)" ] && break
		sleep 0.05
	done
	echo "$uidmap" >"/proc/$pid/uid_map"
	echo "$gidmap" >"/proc/$pid/gid_map"
	echo "$pid"
}

verify_teardown() {
	local f=$SK_TMP/t$BATS_TEST_NUMBER p w

	if [ -f "$f.pids" ]; then
		while read -r p; do
			kill "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		done <"$f.pids"
		rm -f "$f.pids" "$f.report"
	fi
	fs_test_teardown
	if [ -f "$f.vwork" ]; then
		while read -r w; do
			sk_umount_under "$w"
			rm -rf --one-file-system "$w"
		done <"$f.vwork"
		rm -f "$f.vwork"
	fi
}

report() {
	local rc=0
	"$SHIFT_VERIFY" containers --json "$@" >"$SK_TMP/t$BATS_TEST_NUMBER.report" || rc=$?
	return "$rc"
}

failed_checks() {
	jq -r '.findings[] | select(.status == "fail") | .check' \
		"$SK_TMP/t$BATS_TEST_NUMBER.report" | sort -u
}

failures() {
	jq -r --arg c "$1" '.findings[] | select(.status == "fail" and .check == $c) |
		. as $f | if (.differences // []) == [] then "\(.subject) - -"
		else .differences[] | "\($f.subject) \(.path) \(.field)" end' \
		"$SK_TMP/t$BATS_TEST_NUMBER.report"
}

# differences JQ-EXPR: JQ-EXPR applied to each listed difference of the
# report (with .subject and .check of the check that found it)
differences() {
	jq -r ".findings[] | . as \$f | (.differences // [])[] |
		. + { subject: \$f.subject, check: \$f.check } | $1" \
		"$SK_TMP/t$BATS_TEST_NUMBER.report"
}

# findings JQ-EXPR: run JQ-EXPR over each finding of the last report
findings() {
	jq -r ".findings[] | $1" "$SK_TMP/t$BATS_TEST_NUMBER.report"
}
