/*
 * Fuzz target: the registry authentication parsers. The same bytes go to
 * auth_parse_challenge() (as a WWW-Authenticate value, a C string) and to
 * auth_parse_token_reply() (as a token service body, exact length).
 *
 * Properties: a chosen challenge is Basic or Bearer, a Bearer one has a
 * realm, and no parameter carries a control character (they end up in a URL
 * and in request headers); an accepted token is printable ASCII without
 * spaces, bounded, with a lifetime between 1 s and a day.
 */
#include "tests/fuzz/fuzz.h"

#include "registry/client/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
no_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_challenge ch;
	char err[256], *s, *token = NULL;
	long expires = -1;
	size_t i;

	s = fuzz_cstr(data, size);
	if (auth_parse_challenge(s, &ch, err, sizeof(err)) == AM_OK) {
		FUZZ_ASSERT(ch.scheme == AUTH_BASIC || ch.scheme == AUTH_BEARER);
		if (ch.scheme == AUTH_BEARER)
			FUZZ_ASSERT(ch.realm[0] != '\0');
		FUZZ_ASSERT(no_ctl(ch.realm) && no_ctl(ch.service) && no_ctl(ch.scope));
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	free(s);

	s = fuzz_bytes(data, size);
	if (auth_parse_token_reply(s, size, &token, &expires, err, sizeof(err)) == AM_OK) {
		FUZZ_ASSERT(token != NULL && token[0] != '\0' && strlen(token) <= 64 * 1024);
		for (i = 0; token[i] != '\0'; i++)
			FUZZ_ASSERT((unsigned char)token[i] > 0x20 && (unsigned char)token[i] < 0x7f);
		FUZZ_ASSERT(expires >= 1 && expires <= 24L * 3600);
	} else {
		FUZZ_ASSERT(token == NULL && err[0] != '\0');
	}
	free(token);
	free(s);
	return 0;
}
