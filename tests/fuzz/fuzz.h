/*
 * Shared helpers of the libFuzzer targets in tests/fuzz/. Each target feeds
 * the fuzzer's bytes to a pure parser and then checks properties that must
 * hold for ANY input (what the parser accepts is valid by our own grammar,
 * round trips agree); FUZZ_ASSERT aborts so libFuzzer keeps the input.
 */
#ifndef AM_FUZZ_H
#define AM_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

#define FUZZ_ASSERT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* The input as a NUL-terminated heap copy (caller frees): NULs inside end it early. */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The input as an exactly sized heap copy, so ASan sees any read past the end. */
static inline char *
fuzz_bytes(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size ? size : 1);

	memcpy(s, data, size);
	return s;
}

/*
 * Split a NUL-terminated buffer in place at '\n' into at most n fields;
 * missing fields are "". Returns how many were present.
 */
static inline size_t
fuzz_fields(char *s, const char **out, size_t n)
{
	size_t i, got = 0;

	for (i = 0; i < n; i++)
		out[i] = "";
	for (i = 0; i < n && s != NULL; i++) {
		char *nl = strchr(s, '\n');
		out[i] = s;
		got++;
		if (nl != NULL)
			*nl = '\0';
		s = nl ? nl + 1 : NULL;
	}
	return got;
}

/* Printable ASCII only: what may reach a log line. */
static inline int
fuzz_log_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

#endif
