#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Debian packages shiftkit builds and tests with (docs/dependencies.md
# says why each one is there).
#   deps.sh list     print them
#   deps.sh missing  print those not installed
#   deps.sh ensure   install the missing ones (root, apt-get), or say which
#   deps.sh ensure-build  the same for what building alone needs
set -euo pipefail

BUILD_PKGS=(
	gcc make autoconf automake pkg-config
	libmount-dev libblkid-dev libcap-dev libsmartcols-dev liburing-dev
	libjson-c-dev libarchive-dev libssl-dev
)
PKGS=(
	# build
	"${BUILD_PKGS[@]}"
	# tests: runner, filesystems, metadata tools, namespaces
	bats bats-support bats-assert
	util-linux mount e2fsprogs xfsprogs btrfs-progs squashfs-tools erofs-utils
	acl attr libcap2-bin uidmap passwd kmod
	# OCI layouts and reference images
	umoci skopeo debootstrap systemd-container jq
	# real containers on shiftkit's mounts (fs-tests/mount/runtime-overlay.bats)
	crun lxc
	# test helpers written in Python (fs-tests/shift, fs-tests/mountd)
	python3
	# the Debian packages (fs-tests/package)
	dpkg-dev debhelper lintian
	# lint
	cppcheck shellcheck clang-format
	# install/install.bats links libshift.a statically: libarchive.pc's
	# Libs.private names -lacl -lzstd -llz4, which libarchive-dev
	# does not pull in
	libacl1-dev libzstd-dev liblz4-dev
	# install/completion.bats: the completion scripts run with it
	bash-completion
)

missing() {
	local p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			echo "$p"
		fi
	done
}

set -- "${1:-ensure}"
case "$1" in
list) printf '%s\n' "${PKGS[@]}" ;;
missing) missing "${PKGS[@]}" ;;
ensure | ensure-build)
	if [ "$1" = ensure-build ]; then
		mapfile -t need < <(missing "${BUILD_PKGS[@]}")
	else
		mapfile -t need < <(missing "${PKGS[@]}")
	fi
	[ "${#need[@]}" -eq 0 ] && exit 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "shiftkit: missing Debian packages: ${need[*]}" >&2
		echo "shiftkit: install them as root: apt-get install ${need[*]}" >&2
		exit 1
	fi
	echo "shiftkit: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
	;;
*)
	echo "usage: $0 list|missing|ensure|ensure-build" >&2
	exit 2
	;;
esac
