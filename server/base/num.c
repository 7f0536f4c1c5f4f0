#include "server/base/num.h"

#include <limits.h>
#include <string.h>

int
am_parse_num(const char *s, size_t n, long long min, long long max, long long *out)
{
	unsigned long long v = 0, limit;
	int neg = 0;
	size_t i = 0;

	if (s == NULL || n == 0 || min > max)
		return -1;
	if (s[0] == '-') {
		if (min >= 0)
			return -1;
		neg = 1;
		i = 1;
	}
	if (i == n)
		return -1;
	/* The magnitude may reach LLONG_MAX, or LLONG_MAX + 1 for a negative number. */
	limit = neg ? (unsigned long long)LLONG_MAX + 1ULL : (unsigned long long)LLONG_MAX;
	for (; i < n; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	{
		long long r = neg ? (v == (unsigned long long)LLONG_MAX + 1ULL ? LLONG_MIN : -(long long)v)
		    : (long long)v;
		if (r < min || r > max)
			return -1;
		*out = r;
	}
	return 0;
}

int
am_parse_numz(const char *s, long long min, long long max, long long *out)
{
	return s == NULL ? -1 : am_parse_num(s, strlen(s), min, max, out);
}
