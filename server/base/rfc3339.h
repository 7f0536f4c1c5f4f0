/*
 * RFC 3339 timestamps ("2026-01-01T10:00:00.5+02:00", what image configs
 * carry as "created") to a point in time, for ordering them.
 */
#ifndef AM_RFC3339_H
#define AM_RFC3339_H

/*
 * Parse s to seconds since the epoch (UTC) and nanoseconds: 0, or -1 when s
 * is not "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t' or ' ' may stand
 * for 'T', 'z' for 'Z'). Fields are not range-checked: an out-of-range one
 * carries over (timegm's normalisation). Digits of frac past the ninth are
 * ignored. *sec and *nsec are undefined on -1.
 */
int rfc3339_parse(const char *s, long long *sec, long *nsec);

#endif
