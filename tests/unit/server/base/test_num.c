/* Unit tests: server/base/num.c, the one bounded number parser. */
#include "tests/unit/harness.h"

#include <limits.h>

#include "server/base/num.h"

static void
run_tests(void)
{
	long long v = 7;

	CHECK(am_parse_numz("0", 0, 10, &v) == 0 && v == 0);
	CHECK(am_parse_numz("65535", 1, 65535, &v) == 0 && v == 65535);
	CHECK(am_parse_numz("65536", 1, 65535, &v) == -1 && v == 65535);   /* out untouched */
	CHECK(am_parse_numz("0", 1, 65535, &v) == -1);
	CHECK(am_parse_numz("", 0, 10, &v) == -1);
	CHECK(am_parse_numz(NULL, 0, 10, &v) == -1);
	CHECK(am_parse_numz(" 1", 0, 10, &v) == -1);
	CHECK(am_parse_numz("1 ", 0, 10, &v) == -1);
	CHECK(am_parse_numz("+1", 0, 10, &v) == -1);
	CHECK(am_parse_numz("0x10", 0, 100, &v) == -1);
	CHECK(am_parse_numz("-1", 0, 10, &v) == -1);                    /* no sign when min >= 0 */
	CHECK(am_parse_numz("-1", -5, 10, &v) == 0 && v == -1);
	CHECK(am_parse_numz("-", -5, 10, &v) == -1);
	CHECK(am_parse_numz("9223372036854775807", 0, LLONG_MAX, &v) == 0 && v == LLONG_MAX);
	CHECK(am_parse_numz("9223372036854775808", 0, LLONG_MAX, &v) == -1);   /* overflow */
	CHECK(am_parse_numz("-9223372036854775808", LLONG_MIN, 0, &v) == 0 && v == LLONG_MIN);
	CHECK(am_parse_numz("-9223372036854775809", LLONG_MIN, 0, &v) == -1);
	CHECK(am_parse_numz("99999999999999999999999", 0, LLONG_MAX, &v) == -1);
	/* n bytes, not NUL terminated: a status line "200 OK" */
	CHECK(am_parse_num("200 OK", 3, 100, 999, &v) == 0 && v == 200);
	CHECK(am_parse_num("2\0" "00", 3, 0, 999, &v) == -1);          /* stops at the NUL */
	CHECK(am_parse_num("5", 0, 0, 9, &v) == -1);
	CHECK(am_parse_num("5", 1, 9, 0, &v) == -1);                     /* empty range */
}

TEST_MAIN("num")
