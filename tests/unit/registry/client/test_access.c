/*
 * Unit tests: registry/access.c reg_token_grants -- what a registry JWT
 * grants on one repository, and whether it is anonymous. Tokens are built
 * here (header.payload.signature, base64url without padding).
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <jansson.h>

#include "registry/client/access.h"

static void
b64url(const char *in, char *out, size_t outlen)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(in), i, o = 0;

	for (i = 0; i < n && o + 5 < outlen; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
}

static char *
token(json_t *claims)
{
	char *payload = json_dumps(claims, JSON_COMPACT);
	char enc[4096], *t = malloc(8192);

	b64url(payload, enc, sizeof(enc));
	(void)am_fmt(t, 8192, "eyJhbGciOiJSUzI1NiJ9.%s.c2lnbmF0dXJl", enc);
	free(payload);
	json_decref(claims);
	return t;
}

static void
run_tests(void)
{
	int pull, push, anon;
	char *t;

	t = token(json_pack("{s:s, s:[{s:s, s:s, s:[s,s]}, {s:s, s:s, s:[s]}]}", "sub", "robot$library+ci",
	    "access", "type", "repository", "name", "library/app", "actions", "pull", "push",
	    "type", "repository", "name", "library/other", "actions", "pull"));
	CHECK(reg_token_grants(t, "library/app", &pull, &push, &anon) == 0);
	CHECK(pull == 1 && push == 1 && anon == 0);
	CHECK(reg_token_grants(t, "library/other", &pull, &push, &anon) == 0);
	CHECK(pull == 1 && push == 0);
	CHECK(reg_token_grants(t, "library/none", &pull, &push, &anon) == 0);
	CHECK(pull == 0 && push == 0);
	free(t);

	/* Harbor's answer to wrong credentials: anonymous, nothing granted */
	t = token(json_pack("{s:s, s:[{s:s, s:s, s:[]}]}", "sub", "", "access", "type", "repository",
	    "name", "library/app", "actions"));
	CHECK(reg_token_grants(t, "library/app", &pull, &push, &anon) == 0);
	CHECK(pull == 0 && push == 0 && anon == 1);
	free(t);

	/* "*" grants everything; no subject at all is anonymous */
	t = token(json_pack("{s:[{s:s, s:s, s:[s]}]}", "access", "type", "repository", "name", "a/b",
	    "actions", "*"));
	CHECK(reg_token_grants(t, "a/b", &pull, &push, &anon) == 0);
	CHECK(pull == 1 && push == 1 && anon == 1);
	free(t);

	/* not tokens */
	CHECK(reg_token_grants("opaque-token", "a/b", &pull, &push, &anon) == -1);
	CHECK(reg_token_grants("a.!!!.c", "a/b", &pull, &push, &anon) == -1);
	CHECK(reg_token_grants("a.bm90IGpzb24.c", "a/b", &pull, &push, &anon) == -1);   /* "not json" */
	CHECK(pull == 0 && push == 0);
}

TEST_MAIN("access")
