#include "tests/unit/harness.h"
#include "config/cidr.h"

static void
ok(const char *in, const char *canon)
{
	struct cidr c;
	char why[128], out[80];

	CHECK(cidr_parse(in, &c, why, sizeof(why)) == 0);
	cidr_format(&c, out, sizeof(out));
	CHECK_STR(out, canon);
}

static void
bad(const char *in, const char *msg_part)
{
	struct cidr c;
	char why[128] = "";

	CHECK(cidr_parse(in, &c, why, sizeof(why)) == -1);
	CHECK(strstr(why, msg_part) != NULL);
}

static void
run_tests(void)
{
	ok("127.0.0.1", "127.0.0.1/32");
	ok("10.0.0.0/8", "10.0.0.0/8");
	ok("0.0.0.0/0", "0.0.0.0/0");
	ok("fd00::/8", "fd00::/8");
	ok("::1", "::1/128");
	bad("10.0.0.1/8", "host bits");
	bad("fd00::1/8", "host bits");
	bad("300.1.1.1", "not an IPv4 or IPv6");
	bad("", "not an IPv4 or IPv6");
	bad("/8", "not an IPv4 or IPv6");
	bad("1.2.3.4/33", "0..32");
	bad("::/129", "0..128");
	bad("1.2.3.4/", "0..32");
	bad("1.2.3.4/-1", "0..32");
	bad("1.2.3.4/+8", "0..32");
	bad("1.2.3.4/8x", "0..32");
	bad("example.com", "not an IPv4 or IPv6");
}

TEST_MAIN("cidr")
