# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2034 # MAP2, M, TREE...: used by the bats files
#
# The kernel-semantics suite's additions to fs-tests/lib/common.bash.
#
# common.bash gives each file a fresh $FS with the fixture (FS_MNT,
# FS_TREE, FS_RO, SK_TMP) and unmounts a test's scratch dirs.  On top:
#
#   sem_setup_file / sem_teardown_file / sem_setup / sem_teardown
#   $T        this test's own directory on the filesystem (0755, owned by
#             disk 0:0; unset on read-only filesystems)
#   $M        this test's scratch directory for mount points
#   $TREE     the fixture (read-only for tests)
#   $HELPER   the idmap-helper binary (fs-tests/helpers/idmap-helper.c)
#   sem_idmap SRC DST [OPTS]    an attached idmapped mount (default $MAP)
#   sem_users_create N          real test users with subuid delegations
#   sem_as USER CMD...          run CMD as that user, no capabilities

load ../lib/common

HELPER=$HELPERS/idmap-helper

# The suite's standard maps: on-disk 0..1999 seen as 10000..11999 (or
# 20000..21999); everything else on disk is unmapped (65534).
MAP=b:0:10000:2000
MAP2=b:0:20000:2000

# Skip a test that has to write on a read-only filesystem.
sem_need_rw() {
	[ "${FS_RO:-0}" = 0 ] || skip "filesystem $FS: read-only (this check writes)"
}

sem_setup_file() {
	[ -x "$HELPER" ] || {
		echo "semantics: '$HELPER' is missing (build it: make)" >&2
		return 1
	}
	fs_setup
}

sem_teardown_file() {
	sem_users_remove
	fs_teardown
}

sem_setup() {
	require_idmap
	M=$(scratch m)
	TREE=$FS_TREE
	T=
	if [ "${FS_RO:-0}" = 0 ]; then
		T=$FS_TREE/sem.t$BATS_TEST_NUMBER
		rm -rf --one-file-system "$T"
		mkdir "$T"
		chown 0:0 "$T"
		chmod 0755 "$T"
	fi
}

sem_teardown() {
	fs_test_teardown
	# Tests mount only below $M; $T just goes.
	if [ -n "${T:-}" ]; then
		rm -rf --one-file-system "$T"
	fi
}

# sem_idmap SRC DST [idmap-helper idmap options]: attach an idmapped
# mount of SRC at DST (created).  Without --map the suite's $MAP is used.
sem_idmap() {
	local src=$1 dst=$2 out
	shift 2
	mkdir -p "$dst"
	case " $* " in
	*" --map "* | *" -m "*) ;;
	*) set -- --map "$MAP" "$@" ;;
	esac
	out=$("$HELPER" idmap "$@" --attach "$dst" "$src" 2>&1) || {
		echo "sem_idmap $src: $out" >&2
		return 1
	}
	if [ "$out" != "$(printf 'idmap: OK\nattach: OK')" ]; then
		echo "sem_idmap $src: $out" >&2
		return 1
	fi
}

# sem_do ARGS...: idmap-helper do ARGS (file operations under an identity).
sem_do() {
	"$HELPER" "do" "$@"
}

# ---------------------------------------------------------------------
# Test users: real unprivileged identities with a subordinate id range
# ---------------------------------------------------------------------

# sem_users_create N: create N users named sksem<PID><letter> (uids and
# gids from 60000-60999, each its own group) with a 65536-id subuid and
# subgid delegation each; exports SEM_USERi, SEM_UIDi, SEM_GIDi, SEM_SUBi
# (first delegated id).  Call from setup_file; teardown_file removes them
# (sem_teardown_file), also after failures.  $UHELPER is a copy of the
# helper the users can surely reach (the build tree may not be).
sem_users_create() {
	local n=$1 i name letters=abcdefgh start uid
	mkdir -p "$SK_TMP/bin"
	chmod 0755 "$SK_TMP/bin"
	install -m 0755 "$HELPER" "$SK_TMP/bin/idmap-helper"
	export UHELPER=$SK_TMP/bin/idmap-helper
	for ((i = 1; i <= n; i++)); do
		name=sksem$$${letters:i-1:1}
		# Recorded first, so a half-made user is removed too.
		echo "$name" >>"$SK_TMP/.sem-users"
		useradd -M -U -s /usr/sbin/nologin -K UID_MIN=60000 \
			-K UID_MAX=60999 -K GID_MIN=60000 -K GID_MAX=60999 \
			-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$name"
		uid=$(id -u "$name")
		start=$((400000 + (uid - 60000) * 65536))
		usermod --add-subuids "$start-$((start + 65535))" \
			--add-subgids "$start-$((start + 65535))" "$name"
		export "SEM_USER$i=$name" "SEM_UID$i=$uid" \
			"SEM_GID$i=$(id -g "$name")" "SEM_SUB$i=$start"
	done
}

sem_users_remove() {
	local name
	[ -n "${SK_TMP:-}" ] && [ -s "$SK_TMP/.sem-users" ] || return 0
	while read -r name; do
		# Only the exact names this file created.
		[[ $name =~ ^sksem[0-9]+[a-h]$ ]] || continue
		userdel "$name" 2>/dev/null || true
		groupdel "$name" 2>/dev/null || true
		sed -i "/^$name:/d" /etc/subuid /etc/subgid
	done <"$SK_TMP/.sem-users"
	rm -f "$SK_TMP/.sem-users"
}

# sem_as USER CMD...: run CMD as USER (real, effective and saved ids, the
# user's own group only, no capabilities).
sem_as() {
	local user=$1
	shift
	setpriv --reuid "$user" --regid "$(id -g "$user")" --clear-groups \
		--inh-caps=-all -- "$@"
}
