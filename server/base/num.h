/*
 * The one number parser: every number archmerge reads (HTTP status lines,
 * Content-Length, Retry-After, ports, ...) goes through it. Whole input or
 * nothing: decimal digits only (a '-' first only when min < 0), no spaces,
 * no '+', no hex, bounded to [min, max] without overflow.
 */
#ifndef AM_NUM_H
#define AM_NUM_H

#include <stddef.h>

/* Parse the n bytes at s; 0 and *out set, or -1 (out untouched). */
int am_parse_num(const char *s, size_t n, long long min, long long max, long long *out);

/* The same for a NUL-terminated string. */
int am_parse_numz(const char *s, long long min, long long max, long long *out);

#endif
