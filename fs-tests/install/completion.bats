#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion (completion/shiftkit): options, their values and the
# subcommands come from each tool's --help; arguments complete as
# directories, files, user names or pids.  Run through bash-completion
# itself, as an interactive shell would.
# run-on: once

load ../lib/common

COMPLETION=$SRCDIR/completion/shiftkit
TOOLS=(shift-mount shift-tree shift-verify shift-alloc shift-layer shift-probe)

setup() {
	[ -f /usr/share/bash-completion/bash_completion ] ||
		skip "bash-completion is not installed (make deps)"
	D=$(scratch comp)
	mkdir "$D/dir1" "$D/dir2"
	touch "$D/file1"
	# the tools under test, by name (SHIFT_TREE etc. may name installed ones)
	mkdir "$D/bin"
	local t v
	for t in "${TOOLS[@]}"; do
		v=${t#shift-}
		v=SHIFT_${v^^}
		ln -s "${!v}" "$D/bin/$t"
	done
	PATH=$D/bin:$PATH
}

# comp LINE: what completing LINE (the cursor at its end) offers, one a
# line, sorted; "<nospace>" when no space is to follow.  The line is split
# into words as readline does (blanks, and "=" as a word of its own).
comp() {
	bash --norc --noprofile -c '
		source /usr/share/bash-completion/bash_completion
		source "$1"
		compopt() { [[ " $* " != *" -o nospace "* ]] || echo "<nospace>"; }
		line=$2
		COMP_LINE=$line COMP_POINT=${#line}
		read -ra w <<<"${line//=/ = }"
		[[ $line == *[\ =] ]] && w+=("")
		COMP_WORDS=("${w[@]}")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_shiftkit "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" \
			"${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' comp "$COMPLETION" "$1" | sort
}

@test "completion: every tool completes every long option its --help lists" {
	local t want got sub subs
	for t in "${TOOLS[@]}"; do
		want=$("$t" --help | grep -oE -- '^[[:space:]]+(-[[:alnum:]],[[:space:]]+)?--[a-z][-a-z]*=?' |
			grep -o -- '--.*' | sort -u)
		[ -n "$want" ] || fail "$t --help lists no options"
		# tools with subcommands: after each of them (together)
		subs=
		case $t in shift-verify | shift-layer) subs=$(comp "$t ") ;; esac
		got=$(for sub in "" $subs; do
			comp "$t${sub:+ $sub} --"
		done | grep -v '^<nospace>$' | sort -u)
		assert_equal "$t: $got" "$t: $want"
	done
}

@test "completion: options complete after the subcommand, those for it where --help says so" {
	# shift-verify takes options only after the command
	run comp "shift-verify --"
	assert_output "--help
--version"
	run comp "shift-verify record --"
	assert_line --output
	refute_line --ignore-extra
	refute_line --map
	run comp "shift-verify check --"
	assert_line --map
	assert_line --ignore-extra
	assert_line --manifest
	refute_line --output
	refute_line --all
	run comp "shift-verify containers --"
	assert_line --all
	assert_line --json
	refute_line --map
	run comp "shift-layer mount --"
	assert_line --upper
	assert_line --copy
	assert_line --map
	run comp "shift-layer unpack --"
	refute_line --upper
	assert_line --flat
}

@test "completion: an option spelled --opt=VALUE completes with '=' and no space" {
	run comp "shift-tree --eng"
	assert_output "--engine=
<nospace>"
}

@test "completion: an option's listed values (after '=' or a space)" {
	run comp "shift-tree --engine="
	assert_output "auto
sync
threads
uring"
	run comp "shift-tree --engine th"
	assert_output threads
	run comp "shift-mount --fallback="
	assert_output "copy
none
reassemble
shift"
	run comp "shift-tree --unmapped=o"
	assert_output overflow
}

@test "completion: subcommands of shift-verify and shift-layer, from their Usage lines" {
	run comp "shift-verify "
	assert_line record
	assert_line check
	assert_line containers
	run comp "shift-verify --json c"
	assert_output "check
containers"
	run comp "shift-layer "
	assert_line unpack
	assert_line mount
	assert_line list
	# no duplicates (shift-layer has two unpack lines)
	assert_equal "$(comp "shift-layer " | uniq -d)" ""
	# tools without subcommands complete files
	run comp "shift-tree $D/fi"
	assert_output "$D/file1"
}

@test "completion: after the subcommand, files; options' arguments skipped" {
	run comp "shift-verify check $D/f"
	assert_output "$D/file1"
	# the word after --manifest is its argument, not the subcommand
	run comp "shift-verify --manifest $D/file1 "
	assert_line check
	refute_line "$D/file1"
	run comp "shift-verify -M $D/file1 c"
	assert_output "check
containers"
}

@test "completion: --subid and shift-alloc --user complete user names" {
	run comp "shift-tree --subid roo"
	assert_output root
	run comp "shift-mount --subid=roo"
	assert_output root
	run comp "shift-alloc --user roo"
	assert_output root
}

@test "completion: --pid completes process ids" {
	local pid
	sleep 60 &
	pid=$!
	echo "$pid" >>"$SK_TMP/t$BATS_TEST_NUMBER.pids"
	run comp "shift-tree --pid $pid"
	assert_line "$pid"
	run comp "shift-tree --pid x"
	assert_output ""
}

@test "completion: directory arguments offer directories only" {
	run comp "shift-layer unpack --store $D/"
	assert_line "$D/dir1"
	assert_line "$D/dir2"
	refute_line "$D/file1"
	run comp "shift-verify check --manifest $D/fi"
	assert_output "$D/file1"
}

@test "completion: arguments that are not names complete nothing" {
	run comp "shift-tree --map "
	assert_output ""
	run comp "shift-alloc --size "
	assert_output ""
}
