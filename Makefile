# SPDX-License-Identifier: LGPL-2.1-or-later
#
# shiftkit: one non-recursive Makefile.  From a fresh clone, "make"
# bootstraps: the build packages (scripts/deps.sh ensure-build: installed
# when root, named otherwise), autoreconf (configure.ac -> configure), then
# configure (config.mk.in -> config.mk, config.h), then builds.
# "make demo" and "make check" first install missing Debian packages
# (scripts/deps.sh) when run as root.
#
# Out-of-tree objects: make BUILDDIR=/tmp/b  (default: build/)
# Sanitizers:          make SANITIZE=1        (ASan + UBSan)

BUILDDIR ?= build
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
# System daemons (shift-mountd) go to sbin, as the FHS and Debian place them.
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DATADIR ?= $(PREFIX)/share
# The build tree's tools find build/lib; a distribution package empties it
# (the library is on the system path there).
TOOL_RPATH ?= $$ORIGIN/../lib
# The regression suite's compiled helpers (install-tests).
TESTLIBEXECDIR ?= $(LIBDIR)/shiftkit
# shift-mountd's systemd units (units/).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
comma := ,
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

# Goals that must work before configure can run.
NOCONF_GOALS := deps clean distclean
ifeq ($(filter-out $(NOCONF_GOALS),$(MAKECMDGOALS)),)
ifneq ($(MAKECMDGOALS),)
SKIP_CONFIG := 1
endif
endif
ifndef SKIP_CONFIG
include config.mk
endif

SANITIZE ?= $(CONF_SANITIZE)
SOVERSION := 0
LIBSO := libshift.so.$(SOVERSION)

WARN := -Wall -Wextra $(WERROR) -Wshadow -Wformat=2 -Wvla \
	-Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS_ALL := -include config.h -I. -Ilibshift/include -Ilibshift -Itools/lib $(CPPFLAGS)
CFLAGS ?= -O2 -g
CFLAGS_ALL := $(CFLAGS) -std=gnu11 -fPIC -pthread $(WARN) -fno-strict-aliasing \
	$(filter-out -O2 -g,$(CONF_CFLAGS))
LDFLAGS_ALL := $(LDFLAGS) -pthread
ifeq ($(SANITIZE),1)
CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
endif

LIB_DEPS := $(LIBS_MOUNT) $(LIBS_BLKID) $(LIBS_CAP) $(LIBS_SMARTCOLS) \
	$(LIBS_URING) $(LIBS_JSONC) $(LIBS_ARCHIVE) $(LIBS_CRYPTO)

# The same, as pkg-config names (configure.ac's PKG_CHECK_MODULES), for
# libshift.pc's Requires.private: what a static link of libshift.a needs.
PC_REQUIRES_PRIVATE := mount blkid libcap smartcols json-c libarchive libcrypto \
	$(if $(filter yes,$(HAVE_URING)),liburing)

# libshift by subsystem, lowest first (docs/design.md; make lint checks the
# order: scripts/check-layers.sh).
LIB_SUBSYSTEMS := util core mount engine verify oci
LIB_SRCS := $(sort $(foreach s,$(LIB_SUBSYSTEMS),$(wildcard libshift/$(s)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILDDIR)/%.o)
TOOLLIB_SRCS := $(sort $(wildcard tools/lib/*.c))
TOOLLIB_OBJS := $(TOOLLIB_SRCS:%.c=$(BUILDDIR)/%.o)
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOLS := $(TOOL_SRCS:tools/%.c=$(BUILDDIR)/bin/%)
# Built into bin/ with the tools (the suite runs them from there); installed
# to SBINDIR.
DAEMONS := $(BUILDDIR)/bin/shift-mountd
USER_TOOLS := $(filter-out $(DAEMONS),$(TOOLS))
TEST_SRCS := $(sort $(wildcard tests/test-*.c))
TESTS := $(TEST_SRCS:tests/%.c=$(BUILDDIR)/tests/%)
HELPER_SRCS := $(sort $(wildcard fs-tests/helpers/*.c))
HELPERS := $(HELPER_SRCS:fs-tests/helpers/%.c=$(BUILDDIR)/helpers/%)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCHES := $(BENCH_SRCS:bench/%.c=$(BUILDDIR)/bench/%)
MANPAGES := $(sort $(wildcard docs/*.[1-8]))

.SECONDARY:

.PHONY: all lib tools clean distclean install install-tests uninstall check check-unit \
	check-fs check-asan demo bench deps cppcheck shellcheck manrefs format-check layers symbols lint

all: lib tools $(TESTS) $(HELPERS) $(BENCHES)
lib: $(BUILDDIR)/lib/$(LIBSO) $(BUILDDIR)/libshift.a
tools: $(TOOLS)

config.mk: configure config.mk.in
	./configure --prefix=$(PREFIX) $(CONFIGURE_FLAGS)

config.h: config.mk

# A fresh clone on a fresh machine: the build packages first (as root they
# are installed; otherwise deps.sh names them), then autoconf.
configure: configure.ac
	bash scripts/deps.sh ensure-build
	autoreconf -fi

$(BUILDDIR)/%.o: %.c config.h $(wildcard libshift/include/*.h libshift/include/shift/*.h libshift/*/*.h tools/lib/*.h tools/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(BUILDDIR)/lib/$(LIBSO): $(LIB_OBJS) libshift/libshift.sym
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,$(LIBSO) -Wl,--version-script=libshift/libshift.sym \
		-Wl,--no-undefined -o $@ $(LIB_OBJS) $(LDFLAGS_ALL) $(LIB_DEPS)
	ln -sf $(LIBSO) $(BUILDDIR)/lib/libshift.so

$(BUILDDIR)/libshift.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Tools link the shared library (only the exported shift_* API: thin tools).
$(BUILDDIR)/bin/%: $(BUILDDIR)/tools/%.o $(TOOLLIB_OBJS) $(BUILDDIR)/lib/$(LIBSO)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TOOLLIB_OBJS) $(LDFLAGS_ALL) -L$(BUILDDIR)/lib -lshift \
		$(if $(TOOL_RPATH),-Wl$(comma)-rpath$(comma)'$(TOOL_RPATH)') $(LIB_DEPS)

# Unit tests, test helpers and benchmarks may use internals: static archive.
$(BUILDDIR)/tests/%: $(BUILDDIR)/tests/%.o $(BUILDDIR)/tests/lib.o $(BUILDDIR)/libshift.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILDDIR)/tests/lib.o $(BUILDDIR)/libshift.a $(LDFLAGS_ALL) $(LIB_DEPS)

$(BUILDDIR)/helpers/%: $(BUILDDIR)/fs-tests/helpers/%.o $(BUILDDIR)/libshift.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILDDIR)/libshift.a $(LDFLAGS_ALL) $(LIB_DEPS)

$(BUILDDIR)/bench/%: $(BUILDDIR)/bench/%.o $(BUILDDIR)/libshift.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILDDIR)/libshift.a $(LDFLAGS_ALL) $(LIB_DEPS)

deps:
	bash scripts/deps.sh ensure

check: deps all
	BUILDDIR=$(BUILDDIR) bash scripts/check.sh

check-unit: all
	BUILDDIR=$(BUILDDIR) bash scripts/check.sh --unit-only

check-fs: all
	BUILDDIR=$(BUILDDIR) bash scripts/check.sh --fs-only

# The suite again, built with ASan/UBSan in its own build directory: every
# unit test, and every fs-test on ext4 and tmpfs (the code paths do not
# depend on the filesystem; ASAN_FS=all for the whole matrix).
ASAN_FS ?= ext4,tmpfs
check-asan: deps
	$(MAKE) BUILDDIR=build-asan SANITIZE=1 all
	BUILDDIR=build-asan bash scripts/check.sh $(if $(filter all,$(ASAN_FS)),,--fs $(ASAN_FS))

demo: deps all
	BUILDDIR=$(BUILDDIR) bash scripts/demo.sh

# libFuzzer target for the OCI layer reader (tests/fuzz-layer.c), only on
# request: clang with -fsanitize=fuzzer (Debian's clang has it).
FUZZ_CC ?= clang
.PHONY: fuzz
fuzz: $(BUILDDIR)/fuzz/fuzz-layer $(BUILDDIR)/fuzz/fuzz-mountd
$(BUILDDIR)/fuzz/fuzz-layer: tests/fuzz-layer.c $(LIB_SRCS) config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
		$(CPPFLAGS_ALL) $(filter-out -O2 -g,$(CONF_CFLAGS)) -o $@ \
		tests/fuzz-layer.c $(LIB_SRCS) -pthread $(LIB_DEPS)
# shift-mountd's request parser (tests/fuzz-mountd.c), the same way.
$(BUILDDIR)/fuzz/fuzz-mountd: tests/fuzz-mountd.c $(LIB_SRCS) config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
		$(CPPFLAGS_ALL) $(filter-out -O2 -g,$(CONF_CFLAGS)) -o $@ \
		tests/fuzz-mountd.c $(LIB_SRCS) -pthread $(LIB_DEPS)

bench: deps all
	BUILDDIR=$(BUILDDIR) bash bench/run.sh

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem -D__linux__ \
		-Ilibshift/include -Ilibshift --std=c11 libshift tools tests fs-tests/helpers bench

shellcheck:
	shellcheck -x -S warning scripts/*.sh images/*.sh fs-tests/run bench/*.sh \
		completion/shiftkit

# Every reference to a shiftkit man page names its section (docs/NAME.N).
manrefs:
	bash scripts/check-manrefs.sh

# The C files of scripts/format-clean.txt stay as clang-format formats them.
format-check:
	bash scripts/check-format.sh

# libshift's subsystems depend on each other in one order (docs/design.md).
layers: lib
	CC="$(CC)" bash scripts/check-layers.sh $(BUILDDIR)

# libshift.sym lists exactly the shift_* functions the public headers declare.
symbols:
	bash scripts/check-symbols.sh

lint: cppcheck shellcheck manrefs format-check layers symbols

# libshift.pc's directories relative to ${prefix} where they are below it,
# as autotools writes them (so pkg-config --define-prefix can move them).
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# The bash completion is one script (completion/shiftkit), installed once
# and linked under each tool's name, where bash-completion looks for it.
install: lib tools
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/libshift/shift \
		$(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 $(USER_TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(DAEMONS) $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(BUILDDIR)/lib/$(LIBSO) $(DESTDIR)$(LIBDIR)/
	install -m 0644 $(BUILDDIR)/libshift.a $(DESTDIR)$(LIBDIR)/
	ln -sf $(LIBSO) $(DESTDIR)$(LIBDIR)/libshift.so
	install -m 0644 libshift/include/shift.h $(DESTDIR)$(INCLUDEDIR)/libshift/
	install -m 0644 libshift/include/shift/*.h $(DESTDIR)$(INCLUDEDIR)/libshift/shift/
	sed -e 's|@prefix@|$(PREFIX)|; s|@libdir@|$(PC_LIBDIR)|; s|@includedir@|$(PC_INCLUDEDIR)|; s|@VERSION@|$(VERSION)|; s|@REQUIRES_PRIVATE@|$(strip $(PC_REQUIRES_PRIVATE))|' \
		libshift/libshift.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libshift.pc
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 completion/shiftkit $(DESTDIR)$(BASHCOMPDIR)/shiftkit
	for t in $(TOOLS:$(BUILDDIR)/bin/%=%); do \
		ln -sf shiftkit $(DESTDIR)$(BASHCOMPDIR)/$$t; done
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 units/shift-mountd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|' units/shift-mountd.service \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/shift-mountd.service

# The regression suite, installed (the shiftkit-tests package): fs-tests and
# images/ as data, the compiled helpers in TESTLIBEXECDIR, and the
# shiftkit-fs-tests runner, which finds both relative to its own place so
# an unpacked (not installed) package can be tested too.
# Not installed: the helpers' sources, and the areas that test a source
# tree (its build, install, lint and packages), not the installed tools.
TESTS_NOT_INSTALLED := helpers package install lint harness/private-checkout
TEST_HELPER_BINS := $(HELPERS) $(BUILDDIR)/bench/gentree $(BUILDDIR)/bench/no-uring
install-tests: $(TEST_HELPER_BINS)
	install -d $(DESTDIR)$(DATADIR)/shiftkit $(DESTDIR)$(TESTLIBEXECDIR)/helpers \
		$(DESTDIR)$(TESTLIBEXECDIR)/bench $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	cd $(CURDIR) && find fs-tests images -type d $(TESTS_NOT_INSTALLED:%=-not -path 'fs-tests/%*') \
		-exec install -d -m 0755 '$(DESTDIR)$(DATADIR)/shiftkit/{}' ';'
	cd $(CURDIR) && find fs-tests images -type f $(TESTS_NOT_INSTALLED:%=-not -path 'fs-tests/%*') \
		-not -name '*.8' -not -name '*.in' -exec sh -c 'install -m "$$(case "$$1" in *.bats) echo 0755 ;; *) if [ -x "$$1" ]; then echo 0755; else echo 0644; fi ;; esac)" "$$1" "$$2/$$1"' \
		sh '{}' '$(DESTDIR)$(DATADIR)/shiftkit' ';'
	install -m 0755 $(HELPERS) $(DESTDIR)$(TESTLIBEXECDIR)/helpers/
	install -m 0755 $(BUILDDIR)/bench/gentree $(BUILDDIR)/bench/no-uring \
		$(DESTDIR)$(TESTLIBEXECDIR)/bench/
	sed -e 's|@DATADIR_REL@|$(patsubst $(PREFIX)/%,%,$(DATADIR))|; s|@TESTLIBEXECDIR_REL@|$(patsubst $(PREFIX)/%,%,$(TESTLIBEXECDIR))|; s|@LIBDIR_REL@|$(patsubst $(PREFIX)/%,%,$(LIBDIR))|; s|@BINDIR_REL@|$(patsubst $(PREFIX)/%,%,$(BINDIR))|; s|@SBINDIR_REL@|$(patsubst $(PREFIX)/%,%,$(SBINDIR))|; s|@VERSION@|$(VERSION)|' \
		fs-tests/shiftkit-fs-tests.in > $(DESTDIR)$(BINDIR)/shiftkit-fs-tests
	chmod 0755 $(DESTDIR)$(BINDIR)/shiftkit-fs-tests
	install -m 0644 fs-tests/shiftkit-fs-tests.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(USER_TOOLS:$(BUILDDIR)/bin/%=$(DESTDIR)$(BINDIR)/%) \
		$(DAEMONS:$(BUILDDIR)/bin/%=$(DESTDIR)$(SBINDIR)/%) \
		$(DESTDIR)$(LIBDIR)/$(LIBSO) $(DESTDIR)$(LIBDIR)/libshift.so \
		$(DESTDIR)$(LIBDIR)/libshift.a \
		$(DESTDIR)$(INCLUDEDIR)/libshift/shift.h $(DESTDIR)$(PKGCONFIGDIR)/libshift.pc \
		$(patsubst libshift/include/%,$(DESTDIR)$(INCLUDEDIR)/libshift/%,$(wildcard libshift/include/shift/*.h)) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shift-mountd.socket \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shift-mountd.service
	for m in $(MANPAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	rm -f $(DESTDIR)$(BASHCOMPDIR)/shiftkit \
		$(TOOLS:$(BUILDDIR)/bin/%=$(DESTDIR)$(BASHCOMPDIR)/%)

clean:
	rm -rf build build-asan $(BUILDDIR)

distclean: clean
	rm -rf config.mk config.h config.h.in config.log config.status configure \
		autom4te.cache aclocal.m4 config.h.in~ configure~
