/*
 * Minimal unit test harness: CHECK records a failure and goes on, each
 * test binary prints "name: N passed, N failed" and exits non-zero on failure.
 */
#ifndef AM_TEST_HARNESS_H
#define AM_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed;

#define CHECK(cond) do { \
	if (cond) { t_passed++; } else { t_failed++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0) { t_passed++; } else { t_failed++; \
		fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", \
		    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } \
} while (0)

#define TEST_MAIN(name) \
	static void run_tests(void); \
	int main(void) { run_tests(); \
		printf("%s: %d passed, %d failed\n", name, t_passed, t_failed); \
		return t_failed ? 1 : 0; }

#endif
