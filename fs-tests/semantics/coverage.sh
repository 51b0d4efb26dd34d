#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# coverage.sh [--check FILE] [--summary]: print which test of
# fs-tests/semantics checks each entry of the idmapped-mount semantics
# catalogue, as the Markdown table kept in docs/kernel-semantics.md.
#
# The table is read from the tests themselves, never kept by hand:
#   - a test's name starts with its catalogue tags: @test "[K9,K11] ...";
#   - a file's filesystems are those of its "# run-on: FS..." line (the
#     fs-tests/run convention; none: all of them);
#   - a line "# fs: btrfs" right above an @test narrows that one test
#     (for tests that skip elsewhere by design);
#   - a line "# note: TEXT" right above an @test goes to the status column
#     (say there when a test skips on some kernels, and why).
#
#   --check FILE  compare the table with FILE; exit 1 (and show the diff)
#                 when it is stale
#   --summary     print only "covered N of 40"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# The catalogue's entries, in short (see KERNEL-SEMANTICS.md beside the
# project for the full text and the xfstests cases each one comes from).
TITLES=(
	""
	"Only a detached clone can be idmapped (attached: EINVAL)"
	"An idmap can't be changed or re-idmapped (EPERM)"
	"Bad userns fd rejected; initial userns gives EPERM"
	"Userns without maps, or with a uid map only: EINVAL"
	"Filesystem without FS_ALLOW_IDMAP: EINVAL, also as a recursive submount"
	"mount_setattr with AT_RECURSIVE is all-or-nothing"
	"An attached idmapped mount shows 'idmapped' in mountinfo"
	"Recursive clone + recursive setattr maps submounts; plain clone has none"
	"stat through the mount gives map(disk id) for every inode type"
	"Two mounts of one tree with different maps, each its own view"
	"An on-disk id outside the map shows as 65534"
	"chown through the original mount shows in every view, mapped"
	"chown through the mount to an unmapped id: EOVERFLOW"
	"Permission checks and chown/chgrp rules use mapped ids"
	"Nested user namespaces compose; holes show as 65534"
	"Creation (open, mknod, symlink, mkdir, link, rename, O_TMPFILE) stores map^-1(fsuid/fsgid)"
	"Caller unmapped in the mount: creation EOVERFLOW, unlink/rmdir work"
	"Root in a userns can't mknod a char device through the mount"
	"ftruncate through the mount keeps the owner"
	"Quota is charged to the on-disk id"
	"setgid directory: new entries take its (mapped) gid"
	"S_ISGID stripped from new files unless in group or CAP_FSETID"
	"umask and default ACLs with S_ISGID as on a plain mount"
	"setuid/setgid binary through the mount runs as the mapped owner"
	"chown clears S_ISUID, S_ISGID (with g+x) and security.capability"
	"ACL_USER/ACL_GROUP qualifiers are translated"
	"An unmappable ACL qualifier reads as 4294967295"
	"ACL permission checks use mapped ids"
	"Setting and reading an ACL through the mount round-trips"
	"v2 capability reads back as v3 with rootid = map(0)"
	"v3 rootid translated; unmapped rootid: EOVERFLOW on getxattr"
	"Writing a v3 capability through the mount needs a mappable rootid"
	"link/rename across two mounts: EXDEV, even with the same map"
	"Sticky directories judged on mapped ids"
	"protected_symlinks judged on mapped ids"
	"lchown of a symlink changes only the link"
	"io_uring openat honours the idmap, also with personalities"
	"The suite on a tmpfs mounted inside a user namespace"
	"overlayfs over idmapped lower layers (copy-up, metacopy)"
	"btrfs subvolumes and snapshots through the mount"
)
ALL_FS="ext4 xfs btrfs tmpfs squashfs erofs"

# The rules of overlayfs over idmapped layers given as file descriptors
# that shift-mount --fallback=reassemble relies on, found on this project's
# kernel (6.18): tags [On], a second table.
OTITLES=(
	""
	"Idmapped detached clones given as fds (fsconfig lowerdir+/upperdir/workdir, FSCONFIG_SET_FD, Linux >= 6.13) make an overlay; mountinfo then names each layer relative to its clone ('lowerdir+=/'), so such an overlay can't be re-assembled from its options"
	"A layer's detached clone must stay open until FSCONFIG_CMD_CREATE: closing its fd dissolves it, and the create fails with EINVAL ('failed to clone lowerpath')"
	"upperdir and workdir must come from one mount: two clones give EINVAL; fds opened beneath one clone of their parent work"
	"Through an idmapped upper the overlay's creator must be representable: host root under a map without host 0 fails to make the work dir (EOVERFLOW) and the overlay comes up read-only"
	"Created with fsuid/fsgid = map(0) and its capabilities kept (SECBIT_NO_SETUID_FIXUP), the overlay over an idmapped upper is read-write: work dir, new files and copy-ups are stored in the container's ids (root = 0), setid bits kept"
	"The overlay can't be created inside the container's user namespace from layer clones made outside it (EPERM, 'failed to clone upperpath')"
	"One upper under two live overlays: EBUSY with index=on, accepted (undefined behaviour) with index=off; a live upper as another overlay's lower: refused (EBUSY) only when that overlay has an upper and index=on"
)

check=
summary_only=
while [ $# -gt 0 ]; do
	case "$1" in
	--check) check=${2:?--check needs a file}; shift 2 ;;
	--summary) summary_only=1; shift ;;
	-h | --help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "coverage.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

# Keep a filesystem list in the order of ALL_FS, without repeats.
fs_union() {
	local have=" $1 $2 " out='' f
	for f in $ALL_FS; do
		case "$have" in *" $f "*) out+="${out:+ }$f" ;; esac
	done
	# "(any)": a filesystem-independent test, when nothing else is known.
	[ -n "$out" ] || out="(any)"
	echo "$out"
}

# One record per test: tags, name, filesystems, note; a test that calls
# sem_need_rw does not count for the read-only filesystems.
t_tags=() t_name=() t_fs=() t_note=() t_rw=()
for f in "$here"/*.bats; do
	[ -e "$f" ] || continue
	base=${f##*/}
	file_fs=$(sed -n 's/^# run-on: *//p' "$f" | head -n1)
	[ -n "$file_fs" ] || file_fs=$ALL_FS
	[ "$file_fs" != once ] || file_fs="(any)"
	test_fs='' note='' cur=-1
	while IFS= read -r line; do
		case "$line" in
		"# fs: "*) test_fs=${line#\# fs: } ;;
		"# note: "*) note=${line#\# note: } ;;
		"@test "*)
			name=${line#@test \"}
			name=${name%\" \{}
			tags=
			if [[ $name =~ ^\[([KO0-9,]+)\]\ (.*)$ ]]; then
				tags=${BASH_REMATCH[1]}
			fi
			cur=${#t_tags[@]}
			t_tags+=("$tags")
			t_name+=("${base%.bats}: ${name#\[*\] }")
			t_fs+=("${test_fs:-$file_fs}")
			t_note+=("$note")
			t_rw+=(0)
			test_fs='' note=''
			;;
		*sem_need_rw*) [ "$cur" -lt 0 ] || t_rw[cur]=1 ;;
		"") ;;
		*) [[ $line =~ ^# ]] || { test_fs=''; note=''; } ;;
		esac
	done <"$f"
done

declare -A tests=() fss=() notes=() otests=() ofss=()
for i in "${!t_tags[@]}"; do
	this_fs=${t_fs[i]}
	if [ "${t_rw[i]}" = 1 ]; then
		this_fs=$(echo " $this_fs " | sed 's/ squashfs / /; s/ erofs / /')
	fi
	IFS=, read -r -a nums <<<"${t_tags[i]}"
	for n in "${nums[@]}"; do
		if [[ $n =~ ^O([0-9]+)$ ]]; then
			n=${BASH_REMATCH[1]}
			otests[$n]+="${otests[$n]:+<br>}${t_name[i]}"
			ofss[$n]=$(fs_union "${ofss[$n]:-}" "$this_fs")
			continue
		fi
		n=${n#K}
		[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 40 ] || continue
		tests[$n]+="${tests[$n]:+<br>}${t_name[i]}"
		fss[$n]=$(fs_union "${fss[$n]:-}" "$this_fs")
		[ -z "${t_note[i]}" ] || notes[$n]+="${notes[$n]:+; }${t_note[i]}"
	done
done

covered=0
for n in $(seq 1 40); do
	[ -n "${tests[$n]:-}" ] && covered=$((covered + 1))
done

if [ -n "$summary_only" ]; then
	echo "covered $covered of 40"
	exit 0
fi

table() {
	cat <<'EOF'
# Kernel semantics of idmapped mounts: what fs-tests checks

Generated by `fs-tests/semantics/coverage.sh` from the tests' own names
(`@test "[K9,K11] ..."`); do not edit by hand, run
`fs-tests/semantics/coverage.sh > docs/kernel-semantics.md`.  The entries
are those of the project's catalogue of the behaviours the kernel's own
suites check (xfstests idmapped-mounts/vfstest, the mount_setattr
selftests).  A test that cannot run somewhere reports a skip naming the
missing feature; the filesystems listed are where it is meant to run.

| # | behaviour | test(s) | filesystems | status |
| --- | --- | --- | --- | --- |
EOF
	local n
	for n in $(seq 1 40); do
		if [ -n "${tests[$n]:-}" ]; then
			printf '| K%d | %s | %s | %s | covered%s |\n' "$n" \
				"${TITLES[$n]}" "${tests[$n]}" "${fss[$n]}" \
				"${notes[$n]:+ (${notes[$n]})}"
		else
			printf '| K%d | %s | - | - | not covered |\n' "$n" \
				"${TITLES[$n]}"
		fi
	done
	echo
	echo "Covered: $covered of 40 entries."
	cat <<'EOF'

## overlayfs over idmapped layers given as file descriptors

The rules `shift-mount --fallback=reassemble` and its canonical upper rely
on, as found on this project's kernel (6.18); tests tagged `[On]` check
each one (fs-tests/semantics/overlay-layers.bats, raw steps by
fs-tests/helpers/ovl-helper).

| # | rule | test(s) | filesystems | status |
| --- | --- | --- | --- | --- |
EOF
	for ((n = 1; n < ${#OTITLES[@]}; n++)); do
		printf '| O%d | %s | %s | %s | %s |\n' "$n" "${OTITLES[$n]}" \
			"${otests[$n]:--}" "${ofss[$n]:--}" \
			"$([ -n "${otests[$n]:-}" ] && echo covered || echo 'not covered')"
	done
}

if [ -n "$check" ]; then
	if ! diff -u "$check" <(table); then
		echo "coverage.sh: '$check' is stale (regenerate it: fs-tests/semantics/coverage.sh > $check)" >&2
		exit 1
	fi
	exit 0
fi
table
