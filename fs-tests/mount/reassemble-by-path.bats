#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Re-assembly on kernels whose overlayfs takes no layers as file
# descriptors (Linux < 6.13): the idmapped layer clones are attached in a
# child's private mount namespace, named to overlayfs by path there, and
# only the new overlay comes back (LIBSHIFT_NO_FD_LAYERS=1 forces this
# path on any kernel).  Both ways give the same view and the same upper,
# and the host's mountinfo gains exactly one line per overlay.

load ../lib/common

MAP=0:100000:65536

setup() {
	require_idmap
	TMPDIR=$(scratch tmp)
	export TMPDIR
}

# src_overlay: the source overlay at $S: lowerdir $TOP over the fixture,
# upper $UP, work $WK, index=off.
src_overlay() {
	TOP=$(scratch top)
	UP=$(scratch up)
	WK=$(scratch wk)
	S=$(scratch src)
	echo top >"$TOP/top-file"
	chown 2000:2000 "$TOP/top-file"
	echo up >"$UP/up-file"
	chown 7:7 "$UP/up-file"
	mount -t overlay sk-src -o "lowerdir=$TOP:$FS_TREE,upperdir=$UP,workdir=$WK,index=off" "$S"
}

# temps: the private temp dirs the by-path way made in $TMPDIR (a scratch
# dir of the test's own: none must be left).
temps() {
	find "$TMPDIR" -mindepth 1 -maxdepth 1 | sort
}

@test "layers by path or by fd: mountinfo gains exactly one line per overlay either way" {
	local m n out
	src_overlay
	m=$(scratch m)
	n=$(scratch new)
	mkdir "$n/h0" "$n/h1" "$n/c0" "$n/c1"
	# In a private mount namespace of its own, where no one else mounts:
	# read-only, a host-id upper and a canonical upper, each by fd and
	# by path.  Each time: how many mounts are new, the id of the one at
	# the target, the new ids, and how the overlay names its first layer.
	# shellcheck disable=SC2016 # expanded by the inner shell
	out=$(unshare -m --propagation private sh -c '
		for nofd in 0 1; do
			for args in "-R" "--upper $5/h$nofd/u --work $5/h$nofd/w" \
				"--canonical-upper --upper $5/c$nofd/u --work $5/c$nofd/w"; do
				cut -d" " -f1 /proc/self/mountinfo | sort >"$5.before"
				# shellcheck disable=SC2086
				LIBSHIFT_NO_FD_LAYERS=$nofd "$1" --fallback=reassemble $args \
					--map "$2" "$3" "$4" || exit 1
				cut -d" " -f1 /proc/self/mountinfo | sort >"$5.after"
				line=$(awk -v m="$4" "\$5 == m" /proc/self/mountinfo)
				case $line in
				*,lowerdir=0:1:2,*) kind=path ;;
				*lowerdir+=/,*) kind=fd ;;
				*) kind="?" ;;
				esac
				# Mount ids are reused (the target may get the id of
				# the overlay unmounted just before): what must not
				# appear is any new mount but the target, present.
				tid=$(echo "$line" | cut -d" " -f1)
				extra=$(comm -13 "$5.before" "$5.after" | grep -cvx "$tid")
				echo "$((extra + 1))" "${tid:-none}" "${tid:-none}" "$kind"
				umount "$4"
			done
		done' sh "$SHIFT_MOUNT" "$MAP" "$S" "$m" "$n")
	# One new mount each time, the one at the target (its id may be one
	# reused from the overlay unmounted before): by fd its layers
	# show as "/" (relative to the clones), by path relative to the
	# child's temp dir (0, 1, 2).
	local re='^1 ([0-9]+) ([0-9]+) (fd|path)$' i=0 l
	while IFS= read -r l; do
		[[ $l =~ $re ]] || fail "unexpected line '$l' in: $out"
		assert_equal "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
		assert_equal "${BASH_REMATCH[3]}" "$([ $i -lt 3 ] && echo fd || echo path)"
		i=$((i + 1))
	done <<<"$out"
	assert_equal "$i" 6
	assert_equal "$(temps)" ""
}

@test "LIBSHIFT_NO_FD_LAYERS=1: the overlay names its layers by path, and they are idmapped" {
	local m opts
	src_overlay
	m=$(scratch m)
	LIBSHIFT_NO_FD_LAYERS=1 idmap_mount --fallback=reassemble -R --map "$MAP" "$S" "$m"
	opts=$(awk -v m="$m" '$5 == m' /proc/self/mountinfo)
	[[ $opts == *",lowerdir=0:1:2,"* ]] ||
		fail "not layers by path: $opts"
	assert_equal "$(owner "$m/file-1000")" 101000:101000
	assert_equal "$(owner "$m/top-file")" 102000:102000
	assert_equal "$(owner "$m/up-file")" 100007:100007
	run getcap -n "$m/fcap-v3"
	assert_output "$m/fcap-v3 cap_net_raw=ep [rootid=101000]"
	# The clones went with the child's namespace; the temp dir is gone.
	assert_equal "$(temps)" ""
	run grep -c "shiftkit-ovl" <(cut -d" " -f5 /proc/self/mountinfo)
	assert_output 0
}

@test "LIBSHIFT_NO_FD_LAYERS=1: host-id and canonical uppers get what they get by fd" {
	local f p b o d
	src_overlay
	f=$(scratch fd)
	p=$(scratch path)
	for b in "$f" "$p"; do
		mkdir "$b/mh" "$b/mc" "$b/h" "$b/c"
		if [ "$b" = "$p" ]; then export LIBSHIFT_NO_FD_LAYERS=1; fi
		idmap_mount --fallback=reassemble --map "$MAP" --upper "$b/h/u" --work "$b/h/w" "$S" "$b/mh"
		idmap_mount --fallback=reassemble --canonical-upper --map "$MAP" --upper "$b/c/u" --work "$b/c/w" "$S" "$b/mc"
		unset LIBSHIFT_NO_FD_LAYERS
		for o in mh mc; do
			as_user 100000 100000 sh -c "echo new >'$b/$o/new-by-root'"
			echo more >>"$b/$o/file-1000"
			chmod 4755 "$b/$o/up-file"
		done
	done
	[[ $(awk -v m="$p/mc" '$5 == m' /proc/self/mountinfo) == *",lowerdir=0:1:2,upperdir=u/u,workdir=u/w,"* ]] ||
		fail "not layers by path: $(awk -v m="$p/mc" '$5 == m' /proc/self/mountinfo)"
	for d in h c; do
		run diff <(cd "$f/$d/u" && stat -c '%n %u:%g %a' new-by-root file-1000 up-file) \
			<(cd "$p/$d/u" && stat -c '%n %u:%g %a' new-by-root file-1000 up-file)
		assert_success
	done
	assert_equal "$(owner "$p/h/u/new-by-root")" 100000:100000
	assert_equal "$(owner "$p/h/u/file-1000")" 101000:101000
	assert_equal "$(owner "$p/c/u/new-by-root")" 0:0
	assert_equal "$(owner "$p/c/u/file-1000")" 1000:1000
	assert_equal "$(owner "$p/c/u/up-file")" 7:7
	assert_equal "$(stat -c %a "$p/c/u/up-file")" 4755
	assert_equal "$(owner "$p/c/w/work")" 0:0
}

@test "LIBSHIFT_NO_FD_LAYERS=1: 120 layers (over fsconfig's 256 bytes as one lowerdir=) go one lowerdir+ each" {
	local d m s i layers=()
	d=$(scratch many)
	m=$(scratch m)
	s=$(scratch src)
	for ((i = 0; i < 120; i++)); do
		mkdir "$d/$i"
		echo "$i" >"$d/$i/f$i"
		layers+=("$d/$i")
	done
	chown 9:9 "$d/119/f119"
	run "$HELPERS/ovl-helper" --by-path "${layers[@]}" "$s"
	assert_output "create: OK
mount: ro"
	LIBSHIFT_NO_FD_LAYERS=1 idmap_mount --fallback=reassemble --map "$MAP" "$s" "$m"
	[[ $(awk -v m="$m" '$5 == m' /proc/self/mountinfo) == *",lowerdir+=0,lowerdir+=1,"*",lowerdir+=119,"* ]] ||
		fail "not one lowerdir+ per layer: $(awk -v m="$m" '$5 == m' /proc/self/mountinfo)"
	assert_equal "$(cat "$m/f0")" 0
	assert_equal "$(owner "$m/f119")" 100009:100009
	assert_equal "$(find "$m" -mindepth 1 | wc -l)" 120
	assert_equal "$(temps)" ""
}
