/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A minimal unit-test harness: each test-*.c defines TEST(name) functions
 * and ends with TEST_MAIN().  Output is TAP; exit 0 when all pass, 1 when
 * any fails, 77 when all were skipped (the automake/liburing convention).
 */
#ifndef SHIFTKIT_TEST_H
#define SHIFTKIT_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

#ifndef MAX_TESTS
#define MAX_TESTS 256
#endif
static struct test_case test_cases[MAX_TESTS];
static int test_n;
static int test_dropped; /* registered past MAX_TESTS: a failure, not silence */
static int test_failed_now;
static const char *test_skip_now;

#define TEST(name)                                                             \
	static void test_##name(void);                                         \
	__attribute__((constructor)) static void register_##name(void)         \
	{                                                                      \
		if (test_n < MAX_TESTS)                                        \
			test_cases[test_n++] =                                 \
				(struct test_case){ #name, test_##name };      \
		else                                                           \
			test_dropped++;                                        \
	}                                                                      \
	static void test_##name(void)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("#   %s:%d: check failed: %s\n", __FILE__,      \
			       __LINE__, #cond);                               \
			test_failed_now = 1;                                   \
		}                                                              \
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

#define CHECK_EQ_STR(a, b)                                                     \
	do {                                                                   \
		const char *_a = (a), *_b = (b);                               \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                       \
			printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n",   \
			       __FILE__, __LINE__, #a, _a ? _a : "(null)",     \
			       _b ? _b : "(null)");                            \
			test_failed_now = 1;                                   \
		}                                                              \
	} while (0)

#define SKIP(reason)                                                           \
	do {                                                                   \
		test_skip_now = (reason);                                      \
		return;                                                        \
	} while (0)

#define TEST_MAIN()                                                            \
	int main(void)                                                         \
	{                                                                      \
		int failed = 0, skipped = 0;                                   \
		if (test_dropped) {                                            \
			printf("Bail out! %d tests past MAX_TESTS (%d)\n",     \
			       test_dropped, MAX_TESTS);                       \
			return 1;                                              \
		}                                                              \
		printf("1..%d\n", test_n);                                     \
		for (int i = 0; i < test_n; i++) {                             \
			test_failed_now = 0;                                   \
			test_skip_now = NULL;                                  \
			test_cases[i].fn();                                    \
			if (test_skip_now) {                                   \
				skipped++;                                     \
				printf("ok %d %s # skip %s\n", i + 1,          \
				       test_cases[i].name, test_skip_now);     \
			} else if (test_failed_now) {                          \
				failed++;                                      \
				printf("not ok %d %s\n", i + 1,                \
				       test_cases[i].name);                    \
			} else {                                               \
				printf("ok %d %s\n", i + 1,                    \
				       test_cases[i].name);                    \
			}                                                      \
		}                                                              \
		fflush(stdout);                                                \
		if (failed)                                                    \
			return 1;                                              \
		return skipped == test_n && test_n ? 77 : 0;                   \
	}

#endif
