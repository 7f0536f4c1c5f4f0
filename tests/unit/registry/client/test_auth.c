/*
 * Unit tests of registry/auth.c: the WWW-Authenticate challenge parser and
 * the token service reply parser, on the shapes Harbor and distribution send
 * and on malformed, truncated and oversized input.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>

#include "registry/client/auth.h"

static enum am_err
chal(const char *hdr, struct auth_challenge *ch)
{
	char err[256];

	return auth_parse_challenge(hdr, ch, err, sizeof(err));
}

static void
test_challenge_shapes(void)
{
	struct auth_challenge ch;

	/* Harbor, repository request. */
	CHECK(chal("Bearer realm=\"https://h/service/token\",service=\"harbor-registry\","
	    "scope=\"repository:a/b:pull,push\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	CHECK_STR(ch.realm, "https://h/service/token");
	CHECK_STR(ch.service, "harbor-registry");
	CHECK_STR(ch.scope, "repository:a/b:pull,push");

	/* Harbor, GET /v2/: no scope. */
	CHECK(chal("Bearer realm=\"https://h/service/token\",service=\"harbor-registry\"", &ch) == AM_OK);
	CHECK_STR(ch.scope, "");

	/* distribution's token auth, with an error parameter we do not use. */
	CHECK(chal("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	    "scope=\"repository:library/alpine:pull\",error=\"insufficient_scope\"", &ch) == AM_OK);
	CHECK_STR(ch.realm, "https://auth.docker.io/token");
	CHECK_STR(ch.service, "registry.docker.io");
	CHECK_STR(ch.scope, "repository:library/alpine:pull");

	/* Basic, any case; the realm is kept. */
	CHECK(chal("Basic realm=\"harbor\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BASIC);
	CHECK_STR(ch.realm, "harbor");
	CHECK(chal("bAsIc realm=\"Registry Realm\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BASIC);
	CHECK_STR(ch.realm, "Registry Realm");
	CHECK(chal("BEARER REALM=\"https://x/t\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	CHECK_STR(ch.realm, "https://x/t");
	CHECK(chal("Basic", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BASIC);
	CHECK_STR(ch.realm, "");
}

static void
test_challenge_syntax(void)
{
	struct auth_challenge ch;

	/* Unquoted values, whitespace everywhere, unknown params. */
	CHECK(chal("  Bearer   realm = https://h:5001/token ,  service=reg , foo=\"x,y\" ,"
	    " scope=\"repository:a:pull\"  ", &ch) == AM_OK);
	CHECK_STR(ch.realm, "https://h:5001/token");
	CHECK_STR(ch.service, "reg");
	CHECK_STR(ch.scope, "repository:a:pull");

	/* Escapes inside quotes; commas inside quotes. */
	CHECK(chal("Bearer realm=\"https://h/t\\\"x\\\\y\",scope=\"repository:a/b:pull,push,delete\"",
	    &ch) == AM_OK);
	CHECK_STR(ch.realm, "https://h/t\"x\\y");
	CHECK_STR(ch.scope, "repository:a/b:pull,push,delete");

	/* Empty list elements and a tab. */
	CHECK(chal("Bearer ,,realm=\"https://h/t\",\t,service=s", &ch) == AM_OK);
	CHECK_STR(ch.realm, "https://h/t");
	CHECK_STR(ch.service, "s");

	/* Several challenges in one value: Bearer preferred whatever the order. */
	CHECK(chal("Basic realm=\"harbor\", Bearer realm=\"https://h/t\",service=\"s\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	CHECK_STR(ch.realm, "https://h/t");
	CHECK_STR(ch.service, "s");
	CHECK(chal("Bearer realm=\"https://h/t\", Basic realm=\"r\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	CHECK_STR(ch.realm, "https://h/t");
	CHECK(chal("Basic, Bearer realm=\"https://h/t\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	/* Schemes we do not speak are skipped, token68 included. */
	CHECK(chal("Negotiate abc+/def==, Basic realm=\"r\"", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BASIC);
	CHECK_STR(ch.realm, "r");
	CHECK(chal("Negotiate, Basic realm=r", &ch) == AM_OK);
	CHECK(ch.scheme == AUTH_BASIC);
	CHECK(chal("Digest realm=\"x\", nonce=\"abc\", qop=\"auth\", Bearer realm=\"https://h/t\"", &ch)
	    == AM_OK);
	CHECK(ch.scheme == AUTH_BEARER);
	CHECK_STR(ch.realm, "https://h/t");
}

static void
test_challenge_malformed(void)
{
	struct auth_challenge ch;
	char big[2048];
	char err[256];

	CHECK(chal("", &ch) == AM_EINVAL);
	CHECK(ch.scheme == AUTH_NONE);
	CHECK(chal("   ", &ch) == AM_EINVAL);
	CHECK(chal(NULL, &ch) == AM_EINVAL);
	CHECK(chal("Negotiate abc", &ch) == AM_EINVAL);          /* nothing we speak */
	CHECK(chal("Bearer service=\"s\"", &ch) == AM_EINVAL);   /* no realm */
	CHECK(chal("Bearer", &ch) == AM_EINVAL);
	CHECK(chal("Bearer realm=\"https://h/t", &ch) == AM_EINVAL);        /* unterminated */
	CHECK(chal("Bearer realm=\"https://h/t\\", &ch) == AM_EINVAL);      /* trailing backslash */
	CHECK(chal("Bearer realm=\"https://h/t\"x", &ch) == AM_EINVAL);     /* junk after quote */
	CHECK(chal("Bearer realm=\"a\rb\"", &ch) == AM_EINVAL);             /* control char */
	CHECK(chal("Bearer realm=a\nb", &ch) == AM_EINVAL);
	CHECK(chal("\"Bearer\" realm=x", &ch) == AM_EINVAL);
	CHECK(chal("Bearer realm=\"https://h/t\", (", &ch) == AM_EINVAL);
	CHECK(ch.scheme == AUTH_NONE);                               /* nothing half filled */
	CHECK(chal("Bearer realm=", &ch) == AM_EINVAL);              /* empty value: no realm */

	/* Every prefix of a valid header parses or fails cleanly (ASan watches). */
	{
		const char *full = "Bearer realm=\"https://h/service/token\",service=\"harbor-registry\","
		    "scope=\"repository:a/b:pull,push\"";
		size_t i, n = strlen(full);
		char buf[256];
		int ok = 0;
		for (i = 0; i <= n; i++) {
			memcpy(buf, full, i);
			buf[i] = '\0';
			if (auth_parse_challenge(buf, &ch, err, sizeof(err)) == AM_OK)
				ok++;
		}
		CHECK(ok > 0);
		CHECK(chal(full, &ch) == AM_OK);
	}

	/* Values that do not fit are refused, never cut short. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "Bearer realm=\"", 14);
	big[14 + 511] = '"';
	big[14 + 512] = '\0';
	CHECK(chal(big, &ch) == AM_OK);                      /* 511 bytes: fits */
	CHECK(strlen(ch.realm) == 511);
	big[14 + 511] = 'a';
	big[14 + 512] = '"';
	big[14 + 513] = '\0';
	CHECK(auth_parse_challenge(big, &ch, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "realm") != NULL);
	CHECK(ch.realm[0] == '\0');
	CHECK(chal("Bearer realm=\"https://h/t\",service=\""
	    "sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
	    "sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
	    "sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\"",
	    &ch) == AM_EINVAL);
	/* An oversized parameter nobody stores is fine. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "Bearer realm=\"https://h/t\",junk=\"", 33);
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	CHECK(chal(big, &ch) == AM_OK);
	CHECK_STR(ch.realm, "https://h/t");
	/* err is optional. */
	CHECK(auth_parse_challenge("junk(", &ch, NULL, 0) == AM_EINVAL);
}

/* Cheap fuzz: random bytes from the alphabet that matters; ASan does the judging. */
static void
test_challenge_random(void)
{
	static const char alphabet[] = "BearBasic rlm=\"\\,\t\x01\xff:/s";
	struct auth_challenge ch;
	char buf[64], err[128];
	unsigned seed = 12345;
	int i, j, n, survived = 0;

	for (i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		n = (int)((seed >> 16) % (sizeof(buf) - 1));
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf[n] = '\0';
		if (auth_parse_challenge(buf, &ch, err, sizeof(err)) == AM_OK)
			CHECK(ch.scheme == AUTH_BASIC || ch.realm[0] != '\0');
		survived++;
	}
	CHECK(survived == 20000);
}

static enum am_err
reply(const char *json, char **tok, long *exp)
{
	char err[256];

	return auth_parse_token_reply(json, strlen(json), tok, exp, err, sizeof(err));
}

static void
test_token_reply(void)
{
	char *tok = NULL;
	long exp = 0;
	char err[256];

	/* Harbor: token plus an empty access_token. */
	CHECK(reply("{\"token\":\"eyJ.a.b\",\"access_token\":\"\",\"expires_in\":1800,"
	    "\"issued_at\":\"2026-01-01T00:00:00Z\"}", &tok, &exp) == AM_OK);
	CHECK_STR(tok, "eyJ.a.b");
	CHECK(exp == 1800);
	free(tok);

	/* OAuth2 style: only access_token. */
	CHECK(reply("{\"access_token\":\"abc\",\"expires_in\":300}", &tok, &exp) == AM_OK);
	CHECK_STR(tok, "abc");
	CHECK(exp == 300);
	free(tok);

	/* Empty token falls back to access_token; both set: token wins. */
	CHECK(reply("{\"token\":\"\",\"access_token\":\"def\"}", &tok, &exp) == AM_OK);
	CHECK_STR(tok, "def");
	CHECK(exp == 60);                              /* default when absent */
	free(tok);
	CHECK(reply("{\"token\":\"t1\",\"access_token\":\"t2\"}", &tok, &exp) == AM_OK);
	CHECK_STR(tok, "t1");
	free(tok);
	CHECK(reply("{\"token\":null,\"access_token\":\"t2\",\"expires_in\":null}", &tok, &exp) == AM_OK);
	CHECK_STR(tok, "t2");
	CHECK(exp == 60);
	free(tok);

	/* expires_in edge values. */
	CHECK(reply("{\"token\":\"t\",\"expires_in\":0}", &tok, &exp) == AM_OK);
	CHECK(exp == 60);
	free(tok);
	CHECK(reply("{\"token\":\"t\",\"expires_in\":90.5}", &tok, &exp) == AM_OK);
	CHECK(exp == 90);
	free(tok);
	CHECK(reply("{\"token\":\"t\",\"expires_in\":99999999999}", &tok, &exp) == AM_OK);
	CHECK(exp == 86400);                           /* capped */
	free(tok);
	tok = NULL;
	CHECK(reply("{\"token\":\"t\",\"expires_in\":-5}", &tok, &exp) == AM_EINVAL);
	CHECK(tok == NULL);
	CHECK(reply("{\"token\":\"t\",\"expires_in\":\"300\"}", &tok, &exp) == AM_EINVAL);
	CHECK(tok == NULL);

	/* No usable token. */
	CHECK(reply("{\"token\":\"\",\"access_token\":\"\"}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"expires_in\":300}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":42}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"\",\"access_token\":[]}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"a b\"}", &tok, &exp) == AM_EINVAL);          /* space */
	CHECK(reply("{\"token\":\"a\\r\\nX-Evil: 1\"}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"a\\u0000b\"}", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"caf\\u00e9\"}", &tok, &exp) == AM_EINVAL);   /* non-ASCII */
	CHECK(tok == NULL);

	/* Not JSON, not an object, truncated, duplicate keys. */
	CHECK(reply("", &tok, &exp) == AM_EINVAL);
	CHECK(reply("<html>502</html>", &tok, &exp) == AM_EINVAL);
	CHECK(reply("[\"token\"]", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"abc\"", &tok, &exp) == AM_EINVAL);
	CHECK(reply("{\"token\":\"a\",\"token\":\"b\"}", &tok, &exp) == AM_EINVAL);
	CHECK(auth_parse_token_reply(NULL, 0, &tok, &exp, err, sizeof(err)) == AM_EINVAL);
	/* The length given is honoured: no reading past it. */
	CHECK(auth_parse_token_reply("{\"token\":\"abc\"}garbage", 15, &tok, &exp, err, sizeof(err))
	    == AM_OK);
	CHECK_STR(tok, "abc");
	free(tok);

	/* Tokens over 64 KiB are refused; 64 KiB exactly is accepted. */
	{
		size_t n = 64 * 1024, len;
		char *body = malloc(n + 64);
		memcpy(body, "{\"token\":\"", 10);
		memset(body + 10, 'x', n);
		memcpy(body + 10 + n, "\"}", 3);
		len = strlen(body);
		CHECK(auth_parse_token_reply(body, len, &tok, &exp, err, sizeof(err)) == AM_OK);
		CHECK(tok != NULL && strlen(tok) == n);
		free(tok);
		free(body);
		body = malloc(n + 65);
		memcpy(body, "{\"token\":\"", 10);
		memset(body + 10, 'x', n + 1);
		memcpy(body + 11 + n, "\"}", 3);
		len = strlen(body);
		tok = NULL;
		CHECK(auth_parse_token_reply(body, len, &tok, &exp, err, sizeof(err)) == AM_EINVAL);
		CHECK(tok == NULL);
		free(body);
	}
	/* Error messages never carry the token. */
	CHECK(reply("{\"token\":\"secret value\"}", &tok, &exp) == AM_EINVAL);
	CHECK(auth_parse_token_reply("{\"token\":\"secret value\"}", 24, &tok, &exp, err, sizeof(err))
	    == AM_EINVAL);
	CHECK(strstr(err, "secret") == NULL);
}

TEST_MAIN("auth")

static void
run_tests(void)
{
	test_challenge_shapes();
	test_challenge_syntax();
	test_challenge_malformed();
	test_challenge_random();
	test_token_reply();
}
