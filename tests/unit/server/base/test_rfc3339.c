/* Unit tests: server/base/rfc3339.c, image configs' "created" to a point in time. */
#include "tests/unit/harness.h"

#include "server/base/rfc3339.h"

static int
at(const char *s, long long sec, long nsec)
{
	long long got_s = -1;
	long got_ns = -1;

	return rfc3339_parse(s, &got_s, &got_ns) == 0 && got_s == sec && got_ns == nsec;
}

static int
rejected(const char *s)
{
	long long sec;
	long nsec;

	return rfc3339_parse(s, &sec, &nsec) == -1;
}

static void
run_tests(void)
{
	CHECK(at("1970-01-01T00:00:00Z", 0, 0));
	CHECK(at("2026-01-01T08:00:00Z", 1767254400LL, 0));
	/* The same instant written with offsets, fractions, and the lenient separators. */
	CHECK(at("2026-01-01T10:00:00.5+02:00", 1767254400LL, 500000000L));
	CHECK(at("2026-01-01T03:30:00-04:30", 1767254400LL, 0));
	CHECK(at("2026-01-01t08:00:00z", 1767254400LL, 0));
	CHECK(at("2026-01-01 08:00:00Z", 1767254400LL, 0));
	CHECK(at("2024-02-29T23:59:59.123456789Z", 1709251199LL, 123456789L));
	CHECK(at("2024-02-29T23:59:59.1234567891234Z", 1709251199LL, 123456789L));  /* past ns: ignored */
	CHECK(at("2000-01-01T05:30:00+00:00", 946704600LL, 0));
	CHECK(at("2026-01-01T08:00:00.Z", 1767254400LL, 0));   /* empty fraction */
	/* Out-of-range fields carry over rather than fail (documented). */
	CHECK(at("2025-12-32T08:00:00Z", 1767254400LL, 0));

	CHECK(rejected(""));
	CHECK(rejected("2026-01-01T08:00:00"));                 /* no zone */
	CHECK(rejected("2026-01-01T08:00:00+0200"));            /* offset without ':' */
	CHECK(rejected("2026-01-01T08:00:00+02"));
	CHECK(rejected("2026-01-01T08:00:00Z "));               /* trailing bytes */
	CHECK(rejected("2026-01-01T08:00:00+02:00x"));
	CHECK(rejected("2026-1-01T08:00:00Z"));                 /* fields are fixed width */
	CHECK(rejected("2026/01/01T08:00:00Z"));
	CHECK(rejected("2026-01-01X08:00:00Z"));
	CHECK(rejected("2026-01-01T08-00-00Z"));
	CHECK(rejected("2026-01-01T08:00"));                    /* cut short: stops at the NUL */
	CHECK(rejected("-026-01-01T08:00:00Z"));
	CHECK(rejected("2026-01-01T08:00:00,5Z"));
}

TEST_MAIN("rfc3339")
