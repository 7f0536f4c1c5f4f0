/*
 * rfc3339_parse: fixed-width fields through the one number parser
 * (server/base/num.h), which stops at a NUL and never reads past it.
 */
#include "server/base/rfc3339.h"

#include <string.h>
#include <time.h>

#include "server/base/num.h"

/* Exactly n digits at *p, advancing *p past them. */
static int
digits(const char **p, int n, int *val)
{
	long long v;

	if (am_parse_num(*p, (size_t)n, 0, 9999, &v) != 0)
		return -1;
	*val = (int)v;
	*p += n;
	return 0;
}

int
rfc3339_parse(const char *s, long long *sec, long *nsec)
{
	static const char seps[] = "--T::";
	struct tm tm;
	int v[6], i, oh, om, scale = 100000000;
	const char *p = s;
	char sign;

	*nsec = 0;
	for (i = 0; i < 6; i++) {
		if (digits(&p, i == 0 ? 4 : 2, &v[i]) != 0)
			return -1;
		if (i < 5 && *p != seps[i] && !(i == 2 && (*p == 't' || *p == ' ')))
			return -1;
		if (i < 5)
			p++;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			*nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*sec = (long long)timegm(&tm);
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 0;
	sign = *p;
	if ((sign == '+' || sign == '-') && (p++, digits(&p, 2, &oh) == 0) && *p++ == ':' &&
	    digits(&p, 2, &om) == 0 && *p == '\0') {
		*sec -= (sign == '+' ? 1 : -1) * (long long)(oh * 3600 + om * 60);
		return 0;
	}
	return -1;
}
