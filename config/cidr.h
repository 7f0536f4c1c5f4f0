/*
 * Client address ranges (server.allowed_clients): "a.b.c.d/n" or
 * "x:y::z/n"; a bare address means one host (/32, /128).
 */
#ifndef AM_CIDR_H
#define AM_CIDR_H

#include <stddef.h>

struct cidr {
	int v6;                    /* 0: IPv4 */
	unsigned char addr[16];    /* network byte order, host bits cleared */
	int prefix;
};

/* 0 and *out on success; -1 with why (one line, no input echoed beyond s) otherwise. */
int cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen);

/* Canonical text "a.b.c.d/n" or "x::y/n" (len >= 64). */
void cidr_format(const struct cidr *c, char *buf, size_t len);

#endif
