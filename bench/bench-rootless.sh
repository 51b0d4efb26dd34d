#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The rootless benchmark ("rootless" section of bench/run.sh): time to a
# ready root filesystem for an unprivileged user's container, from an
# image kept in a rootless store (owned by the user's uid and its
# /etc/subuid delegation, as rootless podman keeps it), by the two ways
# the user has:
#
#   service  shift-mount as the user, no capabilities on the host: an
#            idmapped mount of the image from shift-mountd, attached in
#            the container's own user and mount namespaces (namespace
#            creation included)
#   copy     what the user does without the service: in a user namespace
#            made through newuidmap (unshare --map-auto), cp -a the image,
#            then shift-tree the copy to the container's ids
#
# The store holds the image as container ids 0..65535 at the user's uid
# and delegated ids SUB..SUB+65534; the container gets the delegated ids
# SUB+65536..SUB+131071 (a second, distinct range, as podman's
# --userns=auto hands out).  The image is bench/gentree's tree without
# its device nodes (a rootless store can't hold them).
#
# The test user (skbench<PID>, uid 62000-62999) and its /etc/subuid and
# /etc/subgid lines are created here and removed on exit, and so is the
# shift-mountd this script starts on a private socket; nothing else on
# the host is touched.
#
# Each run is timed on the full command (untimed: removing the previous
# copy); the figure is the median wall time of BENCH_REPS runs, and the
# ratio copy/service.
#
# Environment:
#   BUILDDIR        binaries (default build)
#   BENCH_QUICK=1   10k inodes only, one repetition
#   BENCH_REPS      repetitions (default 3)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init bench-rootless
reps=${BENCH_REPS:-3}
sizes=(10000 100000)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	reps=1
	sizes=(10000)
fi
MOUNT=$B/bin/shift-mount
TREE=$B/bin/shift-tree
MOUNTD=$B/bin/shift-mountd
GENTREE=$B/bench/gentree

bench_need_root
bench_need "$MOUNT" "$TREE" "$MOUNTD" "$GENTREE"
command -v newuidmap >/dev/null || { echo "(skipped: no newuidmap (package uidmap))"; exit 0; }

user=skbench$$
user_made=0
mountd_pid=
bench_on_exit() {
	if [ -n "$mountd_pid" ] && grep -qa shift-mountd "/proc/$mountd_pid/cmdline" 2>/dev/null; then
		kill "$mountd_pid" 2>/dev/null || true
		wait "$mountd_pid" 2>/dev/null || true
	fi
	if [ "$user_made" = 1 ]; then
		for _ in $(seq 50); do
			userdel "$user" 2>/dev/null && break
			id "$user" >/dev/null 2>&1 || break
			sleep 0.2
		done
		groupdel "$user" 2>/dev/null || true
		sed -i "/^$user:/d" /etc/subuid /etc/subgid
	fi
}
bench_workdir "${TMPDIR:-/tmp}" bench-rootless
chmod 0755 "$work"
mount -t tmpfs -o size=2g,mode=0755 bench-rootless "$work"

# the user and its delegation: 65536 ids for the store, 65536 for the
# container (and a few spare: newuidmap maps count-1 after the uid)
useradd -M -U -s /usr/sbin/nologin -K UID_MIN=62000 -K UID_MAX=62999 \
	-K GID_MIN=62000 -K GID_MAX=62999 -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
user_made=1
uid=$(id -u "$user")
sub=$((80000000 + (uid - 62000) * 200000))
usermod --add-subuids "$sub-$((sub + 199999))" --add-subgids "$sub-$((sub + 199999))" "$user"
croot=$((sub + 65536))

"$MOUNTD" --socket "$work/sock" --config /dev/null </dev/null >"$work/mountd.log" 2>&1 &
mountd_pid=$!
for ((i = 0; i < 100; i++)); do
	[ -S "$work/sock" ] && break
	sleep 0.05
done
[ -S "$work/sock" ] || die "shift-mountd did not start: $(cat "$work/mountd.log")"

as_user() {
	setpriv --reuid "$uid" --regid "$uid" --clear-groups --inh-caps=-all -- "$@"
}

# make_image N: $work/image, N inodes, in the store's ids
make_image() {
	rm -rf "$work/image"
	mkdir "$work/image"
	"$GENTREE" -n "$1" --data-max 64 "$work/image" >/dev/null
	find "$work/image" \( -type b -o -type c \) -delete
	"$TREE" -q --no-progress --map "b:0:$uid:1" --map "b:1:$sub:65535" "$work/image" >/dev/null
	# a store's image carries no marker of that set-up shift
	setfattr -x trusted.shiftkit.shift "$work/image" 2>/dev/null || true
	setfattr -x user.shiftkit.shift "$work/image" 2>/dev/null || true
	rm -rf "$work/u"
	mkdir "$work/u" "$work/u/t"
	chown "$uid:$uid" "$work/u" "$work/u/t"
}

# timed CMD...: the wall seconds of CMD (as given; it fails: die)
timed() {
	local t
	t=$( { TIMEFORMAT='%R'; time "$@" >/dev/null 2>"$work/err"; } 2>&1 ) ||
		die "$* failed: $(cat "$work/err")"
	echo "$t"
}

service() {
	as_user env SHIFT_MOUNTD_SOCKET="$work/sock" unshare --user \
		--map-users="$croot,0,65536" --map-groups="$croot,0,65536" \
		--mount --setuid 0 --setgid 0 "$MOUNT" --map "b:$uid:$croot:1" \
		--map "b:$sub:$((croot + 1)):65535" "$work/image" "$work/u/t"
}

# service_check FILE: the service's mount, as the container sees it: the
# image's root and a delegated-id file at their container ids
service_check() {
	local f=$1
	as_user env SHIFT_MOUNTD_SOCKET="$work/sock" unshare --user \
		--map-users="$croot,0,65536" --map-groups="$croot,0,65536" \
		--mount --setuid 0 --setgid 0 sh -c '
		"$0" -q --map "b:$1:$3:1" --map "b:$2:$(($3 + 1)):65535" "$4" "$5" &&
		stat -c %u "$5" "$5/${6#"$4"/}"' "$MOUNT" "$uid" "$sub" "$croot" \
		"$work/image" "$work/u/t" "$f"
}

# in the newuidmap namespace, the store's ids are 0..65535 and the
# container's are 65537..131072
copy() {
	as_user unshare --map-auto --map-root-user sh -c \
		'cp -a "$1" "$2" && "$3" -q --no-progress --map b:0:65537:65536 "$2"' \
		sh "$work/image" "$work/u/copy" "$TREE"
}

median() {
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf '%-9s %12s %12s %14s\n' inodes service copy copy/service
for n in "${sizes[@]}"; do
	make_image "$n"
	: >"$work/service.times"
	: >"$work/copy.times"
	for ((i = 0; i < reps; i++)); do
		timed service >>"$work/service.times"
		rm -rf "$work/u/copy"
		timed copy >>"$work/copy.times"
	done
	f=$(find "$work/image" -mindepth 1 -uid +"$((sub - 1))" -print -quit)
	[ -n "$f" ] || die "the image has no file of a delegated id"
	want="0 $(($(stat -c %u "$f") - sub + 1)) "
	[ "$(service_check "$f" | tr '\n' ' ')" = "$want" ] ||
		die "the service's mount does not show the container's ids ($want): $(service_check "$f" 2>&1 | tr '\n' ' ')"
	# the copy is right: the container's root is the container range's first id
	[ "$(stat -c %u:%g "$work/u/copy")" = "$croot:$croot" ] ||
		die "the shifted copy is owned by $(stat -c %u:%g "$work/u/copy"), not $croot:$croot"
	rm -rf "$work/u/copy"
	awk -v n="$n" -v s="$(median <"$work/service.times")" -v c="$(median <"$work/copy.times")" 'BEGIN {
		if (s <= 0) s = 0.0005 # below time(1)'"'"'s resolution
		printf "%-9s %11.3fs %11.3fs %13.0fx\n", n, s, c, c / s
	}'
done
