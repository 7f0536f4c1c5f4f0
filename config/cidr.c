/*
 * CIDR parsing for the client allow-list. inet_pton() does the address
 * syntax; the prefix is a plain decimal within the family's width. Host bits
 * set below the prefix ("10.0.0.1/8") are refused rather than silently
 * masked: they usually mean a typo in the prefix.
 */
#include "config/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

static int
host_bits_set(const struct cidr *c)
{
	int width = c->v6 ? 128 : 32, bit;

	for (bit = c->prefix; bit < width; bit++)
		if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
			return 1;
	return 0;
}

int
cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	const char *msg = NULL;
	char *end;
	long prefix = 0;

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad_addr;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	out->v6 = strchr(host, ':') != NULL;
	if (inet_pton(out->v6 ? AF_INET6 : AF_INET, host, out->addr) != 1)
		goto bad_addr;
	out->prefix = out->v6 ? 128 : 32;
	if (slash != NULL) {
		errno = 0;
		if (slash[1] >= '0' && slash[1] <= '9')
			prefix = strtol(slash + 1, &end, 10);
		if (!(slash[1] >= '0' && slash[1] <= '9') || errno != 0 || *end != '\0' ||
		    prefix > out->prefix) {
			(void)am_fail(why, whylen, AM_EINVAL, "has a prefix length that is not 0..%d",
			    out->prefix);
			return -1;
		}
		out->prefix = (int)prefix;
	}
	if (host_bits_set(out)) {
		(void)am_fail(why, whylen, AM_EINVAL, "has host bits set below the /%d prefix",
		    out->prefix);
		return -1;
	}
	return 0;
bad_addr:
	msg = "is not an IPv4 or IPv6 address, with an optional /prefix";
	(void)am_fail(why, whylen, AM_EINVAL, "%s", msg);
	return -1;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a)) == NULL)
		a[0] = '\0';
	(void)am_fmt(buf, len, "%s/%d", a, c->prefix);
}
