#!/usr/bin/env bats
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# overlayfs over idmapped lower layers (catalogue K39, as xfstests
# generic/699): the lower layer is an idmapped mount of the fixture on
# $FS (read-only ones too), the upper layer a plain tmpfs.  Ownership is
# the lower mount's view; a copy-up stores that view in the upper layer;
# the lower layer never changes.

load lib

setup_file() { sem_setup_file; }
teardown_file() { sem_teardown_file; }
setup() {
	sem_setup
	mkdir -p "$M/u" "$M/o"
	mount -t tmpfs -o size=16m,mode=0755 sem-upper "$M/u"
	mkdir "$M/u/up" "$M/u/wk"
	sem_idmap "$TREE" "$M/l"
	# What the lower layer looks like on disk before the test.
	BEFORE=$(cd "$TREE" && stat -c '%n %u:%g %a %s %Y' file-1000 file-root dir dir/file fifo)
	SUM=$(md5sum <"$TREE/file-1000")
}
teardown() { sem_teardown; }

# ovl [OPTS]: mount the overlay at $M/o, or skip when the kernel refuses
# idmapped lower layers.
ovl() {
	local o="lowerdir=$M/l,upperdir=$M/u/up,workdir=$M/u/wk${1:+,$1}"
	if ! mount -t overlay sem-ovl -o "$o" "$M/o" 2>/dev/null; then
		skip "overlayfs refuses an idmapped lower layer here (mount -o $o failed)"
	fi
}

lower_unchanged() {
	assert_equal "$(cd "$TREE" && stat -c '%n %u:%g %a %s %Y' file-1000 file-root dir dir/file fifo)" "$BEFORE"
	assert_equal "$(md5sum <"$TREE/file-1000")" "$SUM"
}

@test "[K39] overlay over an idmapped lower layer shows the lower mount's ownership" {
	ovl
	assert_equal "$(owner "$M/o/file-1000")" "11000:11000"
	assert_equal "$(owner "$M/o/file-root")" "10000:10000"
	assert_equal "$(owner "$M/o/dir/file")" "11000:11000"
	assert_equal "$(owner "$M/o/file-70000")" "65534:65534"
	assert_equal "$(owner "$M/o/fifo")" "11000:11000"
	lower_unchanged
}

@test "[K39] copy-up (metacopy off) stores the mapped owner in the upper layer" {
	ovl metacopy=off
	echo more >>"$M/o/file-1000"
	assert_equal "$(owner "$M/u/up/file-1000")" "11000:11000"
	assert_equal "$(owner "$M/o/file-1000")" "11000:11000"
	assert_equal "$(tail -n1 "$M/o/file-1000")" "more"
	# A chown through the overlay copies up and lands in the upper as is.
	chown 11005:11006 "$M/o/dir/file"
	assert_equal "$(owner "$M/u/up/dir/file")" "11005:11006"
	# The copied-up parent directory keeps its mapped owner too.
	assert_equal "$(owner "$M/u/up/dir")" "11000:11000"
	# A new file by an id of the mapped range.
	run sem_do --groups "" --fsgid 11008 --fsuid 11007 create "$M/o/dir/new" 0644
	assert_output "create: EACCES"
	chmod 0777 "$M/o/dir"
	run sem_do --groups "" --fsgid 11008 --fsuid 11007 create "$M/o/dir/new" 0644
	assert_output "create: OK"
	assert_equal "$(owner "$M/u/up/dir/new")" "11007:11008"
	lower_unchanged
}

@test "[K39] metadata-only copy-up (metacopy on) keeps data in the lower layer" {
	ovl metacopy=on,redirect_dir=on
	chown 11002:11003 "$M/o/file-1000"
	assert_equal "$(owner "$M/o/file-1000")" "11002:11003"
	assert_equal "$(owner "$M/u/up/file-1000")" "11002:11003"
	# Only metadata was copied: the upper file is marked and holds no data.
	run getfattr --absolute-names -n trusted.overlay.metacopy "$M/u/up/file-1000"
	assert_success
	assert_equal "$(stat -c %b "$M/u/up/file-1000")" 0
	assert_equal "$(md5sum <"$M/o/file-1000")" "$SUM"
	# Writing now copies the data up too.
	echo more >>"$M/o/file-1000"
	run getfattr --absolute-names -n trusted.overlay.metacopy "$M/u/up/file-1000"
	assert_failure
	assert_equal "$(owner "$M/u/up/file-1000")" "11002:11003"
	lower_unchanged
}

@test "[K39] overlay itself can't be idmapped; its idmapped lower is refused writes" {
	ovl
	# overlayfs has no FS_ALLOW_IDMAP (K5).
	run "$HELPER" idmap --map "$MAP" "$M/o"
	assert_output "idmap: EINVAL"
	# The lower layer stays a read-only path for the overlay: removing a
	# lower file through the overlay only whites it out.
	rm "$M/o/file-root"
	[ ! -e "$M/o/file-root" ]
	[ -e "$TREE/file-root" ]
	assert_equal "$(stat -c %t:%T "$M/u/up/file-root")" "0:0"
	lower_unchanged
}
