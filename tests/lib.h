/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The unit tests' library: a minimal harness (each test-*.c defines
 * TEST(name) functions and ends with TEST_MAIN(); output is TAP; exit 0
 * when all pass, 1 when any fails, 77 when all were skipped, the
 * automake/liburing convention) and the helpers several test files need.
 * Every registered test runs: the table grows as needed.
 */
#ifndef SHIFTKIT_TESTS_LIB_H
#define SHIFTKIT_TESTS_LIB_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The harness's state, in tests/lib.c. */
extern int test_failed_now;
extern const char *test_skip_now;
void test_register(const char *name, void (*fn)(void));
/* Runs every test (after each, test_after_each when set): the exit status. */
int test_main(void);
extern void (*test_after_each)(void);

#define TEST(name)                                                     \
	static void test_##name(void);                                 \
	__attribute__((constructor)) static void register_##name(void) \
	{                                                              \
		test_register(#name, test_##name);                     \
	}                                                              \
	static void test_##name(void)

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			printf("#   %s:%d: check failed: %s\n", __FILE__, \
			       __LINE__, #cond);                          \
			test_failed_now = 1;                              \
		}                                                         \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                     \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a != _b) {                                                \
			printf("#   %s:%d: %s == %lld, expected %s == %lld\n", \
			       __FILE__, __LINE__, #a, _a, #b, _b);            \
			test_failed_now = 1;                                   \
		}                                                              \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                   \
	do {                                                                 \
		const char *_a = (a), *_b = (b);                             \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                     \
			printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", \
			       __FILE__, __LINE__, #a, _a ? _a : "(null)",   \
			       _b ? _b : "(null)");                          \
			test_failed_now = 1;                                 \
		}                                                            \
	} while (0)

#define SKIP(reason)                      \
	do {                              \
		test_skip_now = (reason); \
		return;                   \
	} while (0)

#define TEST_MAIN()                 \
	int main(void)              \
	{                           \
		return test_main(); \
	}

/*
 * Helpers more than one test file needs (tests/lib.c).
 */
struct shift_idmap;

/* A map parsed from spec; a failed parse is a failed check (and NULL). */
struct shift_idmap *map_of(const char *spec);

/*
 * Run fn in a child in a private mount namespace (mounts made there die
 * with it); the child's failed checks fail the test and its SKIP reason
 * becomes the test's.  With TEST_NS_TMPFS, a tmpfs is mounted on a fresh
 * directory under /tmp and the child's cwd is it; a caller that is not
 * root skips ("needs root (mounts)").
 */
enum { TEST_NS_TMPFS = 1 << 0 };
void test_in_private_ns(void (*fn)(void), unsigned flags);

/* A scratch directory under /tmp named after prefix, made on first use
 * and removed with everything in it when the test program exits. */
const char *test_scratch(const char *prefix);

#endif
