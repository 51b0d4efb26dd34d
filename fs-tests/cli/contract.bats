#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The command-line contract every tool keeps, checked for all of them from
# one table: --help and --version, usage errors and their exit status
# (0 success, 1 failure, 2 usage error; docs/design.md), a standard output
# that can't be written.  bats 1.8 can't generate tests, so each rule is
# one test that runs every row and names each one that breaks it.
# Tool-specific options are checked in each area's cli.bats.
# run-on: once

load ../lib/common

TOOLS=(shift-mount shift-tree shift-verify shift-alloc shift-layer shift-probe)

# Subcommands (a tool's own options may follow them).
SUBCOMMANDS=(
	"shift-verify record" "shift-verify check" "shift-verify containers"
	"shift-layer unpack" "shift-layer mount" "shift-layer list"
)

# Command lines that lack a required argument: each is a usage error.
# (shift-probe takes none: without arguments it probes everything.)
NEEDS_ARGS=(
	"shift-mount"
	"shift-mount --map 0:100000:65536"
	"shift-mount --map 0:100000:65536 /"
	"shift-tree"
	"shift-tree --map 0:100000:65536"
	"shift-verify"
	"shift-verify record"
	"shift-verify check"
	"shift-verify containers"
	"shift-alloc"
	"shift-layer"
	"shift-layer unpack"
	"shift-layer mount"
	"shift-layer list"
)

# The version every tool reports: configure.ac's AC_INIT.
# The source tree's version; the installed suite's runner names it.
VERSION=${SHIFTKIT_VERSION:-$(sed -n 's/^AC_INIT(\[shiftkit\], *\[\([^]]*\)\].*/\1/p' "$SRCDIR/configure.ac")}

# sk CMDLINE...: run a table row ("TOOL ARGS...", words split on blanks)
# with the tool under test (SHIFT_TREE etc.), no input, at most 20 s.
sk() {
	local -a w
	local v
	read -ra w <<<"$1"
	shift
	v=${w[0]#shift-}
	v=SHIFT_${v^^}
	w[0]=${!v}
	timeout 20 "${w[@]}" "$@" </dev/null
}

# The rule's failures so far, one "ROW: what" a line; check_done fails the
# test listing all of them (not only the first).
BAD=()
bad() {
	BAD+=("$*")
}
check_done() {
	[ ${#BAD[@]} -eq 0 ] || fail "$(printf '%s\n' "${BAD[@]}")"
}

# result ROW ARGS...: run the row; sets rc, out, err.
result() {
	local row=$1 f=$SK_TMP/cli.$BATS_TEST_NUMBER
	shift
	rc=0
	sk "$row" "$@" >"$f.out" 2>"$f.err" || rc=$?
	out=$(cat "$f.out")
	err=$(cat "$f.err")
	rm -f "$f.out" "$f.err"
}

@test "contract: --help and -h exit 0 with a Usage line and the exit statuses on stdout, nothing on stderr" {
	local t o row
	[ -n "$VERSION" ] || fail "no version in configure.ac"
	for row in "${TOOLS[@]}" "${SUBCOMMANDS[@]}"; do
		t=${row%% *}
		for o in --help -h; do
			result "$row" "$o"
			[ "$rc" -eq 0 ] || bad "$row $o: exit $rc"
			[ -z "$err" ] || bad "$row $o: stderr: $err"
			grep -q "^Usage:" <<<"$out" || bad "$row $o: no 'Usage:' line on stdout"
			grep -q "^ *$t" <<<"$out" || bad "$row $o: the usage does not name $t"
			grep -q "^Exit status:" <<<"$out" || bad "$row $o: no 'Exit status:' line"
		done
	done
	check_done
}

@test "contract: --version and -V print 'TOOL from shiftkit VERSION' and exit 0" {
	local t o
	for t in "${TOOLS[@]}"; do
		for o in --version -V; do
			result "$t" "$o"
			[ "$rc" -eq 0 ] || bad "$t $o: exit $rc"
			[ -z "$err" ] || bad "$t $o: stderr: $err"
			[ "$out" = "$t from shiftkit $VERSION" ] ||
				bad "$t $o: printed '$out', not '$t from shiftkit $VERSION'"
		done
	done
	check_done
}

@test "contract: an unknown option exits 2 with \"Try 'TOOL --help'\" on stderr, nothing on stdout" {
	local t row o
	for row in "${TOOLS[@]}" "${SUBCOMMANDS[@]}"; do
		t=${row%% *}
		for o in --no-such-option -0 --help=x; do
			result "$row" "$o"
			[ "$rc" -eq 2 ] || bad "$row $o: exit $rc, not 2"
			[ -z "$out" ] || bad "$row $o: stdout: $out"
			grep -qF "Try '$t --help' for more information." <<<"$err" ||
				bad "$row $o: no \"Try '$t --help'\" line on stderr: $err"
		done
	done
	check_done
}

@test "contract: an unknown subcommand exits 2 with \"Try 'TOOL --help'\" on stderr" {
	local t
	for t in shift-verify shift-layer; do
		result "$t" no-such-command
		[ "$rc" -eq 2 ] || bad "$t no-such-command: exit $rc, not 2"
		[ -z "$out" ] || bad "$t no-such-command: stdout: $out"
		grep -q "^$t: .*'no-such-command'" <<<"$err" ||
			bad "$t no-such-command: no '$t: ...' line naming it: $err"
		grep -qF "Try '$t --help' for more information." <<<"$err" ||
			bad "$t no-such-command: no \"Try '$t --help'\" line: $err"
	done
	check_done
}

@test "contract: a missing required argument exits 2 with '<tool>: reason' and \"Try 'TOOL --help'\" on stderr" {
	local t row
	for row in "${NEEDS_ARGS[@]}"; do
		t=${row%% *}
		result "$row"
		[ "$rc" -eq 2 ] || bad "'$row': exit $rc, not 2"
		[ -z "$out" ] || bad "'$row': stdout: $out"
		grep -q "^$t: ." <<<"$err" || bad "'$row': no '$t: reason' line on stderr: $err"
		grep -qF "Try '$t --help' for more information." <<<"$err" ||
			bad "'$row': no \"Try '$t --help'\" line on stderr: $err"
	done
	check_done
}

@test "contract: --help and --version to a full standard output (/dev/full) exit 1 and say so" {
	local t o rc err f=$SK_TMP/cli.err
	[ -w /dev/full ] || skip "no /dev/full"
	for t in "${TOOLS[@]}"; do
		for o in --help --version; do
			rc=0
			sk "$t" "$o" >/dev/full 2>"$f" || rc=$?
			err=$(cat "$f")
			[ "$rc" -eq 1 ] || bad "$t $o >/dev/full: exit $rc, not 1"
			grep -q "^$t: .*No space left on device" <<<"$err" ||
				bad "$t $o >/dev/full: no '$t: ... No space left on device' on stderr: $err"
		done
	done
	check_done
}

# Command lines that take --json (-J), one per tool: a usage error there is
# one JSON document too, with the error object every tool shares.
JSON_ROWS=(
	"shift-mount" "shift-tree" "shift-verify check" "shift-verify containers"
	"shift-alloc" "shift-layer list" "shift-probe"
)

@test "contract: with --json or -J a usage error is one JSON document: error.message, error.messages, error.exit_status 2" {
	local row o
	command -v jq >/dev/null || skip "no jq"
	for row in "${JSON_ROWS[@]}"; do
		for o in --json -J; do
			result "$row" "$o" --no-such-option
			[ "$rc" -eq 2 ] || bad "$row $o --no-such-option: exit $rc, not 2"
			[ "$(jq -s length <<<"$out" 2>/dev/null)" = 1 ] ||
				{ bad "$row $o --no-such-option: stdout is not one JSON document: $out"; continue; }
			jq -e '.error.exit_status == 2 and (.error.message | contains("--no-such-option")) and
				(.error.messages | length) >= 1' <<<"$out" >/dev/null ||
				bad "$row $o --no-such-option: no shared error object: $out"
			grep -qF "Try '${row%% *} --help' for more information." <<<"$err" ||
				bad "$row $o --no-such-option: no \"Try\" line on stderr: $err"
		done
	done
	check_done
}

# help_options TOOL: the options TOOL --help lists, one a line:
# "-s --long ARG" (- for no short form, ARG empty for no argument).
help_options() {
	sk "$1" --help | sed -nE \
		's/^[[:space:]]+(-([[:alnum:]]),[[:space:]]+)?(--[a-z][-a-z]*)([= ]([A-Z][A-Z_]*)(\|[a-z]+)?)?([[:space:]].*)?$/-\2 \3 \5/p' |
		sed 's/^- /-- /'
}

@test "contract: every option --help lists is one the tool takes, with or without an argument as listed" {
	local t s long arg subs sub o ok why
	for t in "${TOOLS[@]}"; do
		# the subcommands first: shift-verify takes options only after one
		subs=$(printf '%s\n' "${SUBCOMMANDS[@]}" | sed -n "s/^$t //p")
		while read -r s long arg; do
			[ "$long" != --help ] || continue
			o=$long
			[ -z "$arg" ] || o=$long=x
			ok=0 why=
			for sub in $subs ""; do
				# --help last: nothing runs.  Taken means --help
				# answers, or the tool refuses the value x itself
				# (a usage error naming it).
				result "$t${sub:+ $sub}" "$o" --help
				if [ "$rc" -eq 0 ] || { [ -n "$arg" ] && [ "$rc" -eq 2 ] &&
					grep -q "^$t: .*'x'" <<<"$err"; }; then
					ok=1
					break
				fi
				why="exit $rc: $err"
			done
			[ "$ok" = 1 ] || bad "$t $o --help: $why"
		done < <(help_options "$t")
	done
	check_done
}

# Short options that still mean different things in different tools:
# none (issue 17: one meaning each, docs/design.md).  Any letter with two
# meanings fails.
SHORT_CONFLICTS_KNOWN=()

@test "contract: a short option means the same long option in every tool; -J is --json" {
	local t s long arg
	local -A meaning=() where=()
	for t in "${TOOLS[@]}"; do
		while read -r s long arg; do
			[ "$s" != -- ] || continue
			if [ "$long" = --json ] && [ "$s" != -J ]; then
				bad "$t: --json's short form is $s, not -J"
			fi
			if [ -z "${meaning[$s]:-}" ]; then
				meaning[$s]=$long where[$s]=$t
			elif [ "${meaning[$s]}" != "$long" ] &&
				[[ " ${SHORT_CONFLICTS_KNOWN[*]} " != *" $s "* ]]; then
				bad "$t: $s is $long, but ${meaning[$s]} in ${where[$s]}"
			fi
		done < <(help_options "$t")
	done
	[ ${#meaning[@]} -gt 5 ] || bad "found only ${#meaning[@]} short options: is help_options broken?"
	check_done
}
