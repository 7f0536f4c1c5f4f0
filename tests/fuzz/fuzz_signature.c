/*
 * Fuzz target: what a registry returns as a signature. The bytes go to
 * sig_payload_parse() and sig_manifest_parse(); the payload with a fixed
 * test key to sig_verify() as a base64 signature.
 *
 * Properties: an accepted payload has a sha256 digest and builds back to a
 * payload that parses to the same fields; an accepted signature manifest,
 * with one more signature appended, builds and parses back with the same
 * layers (digests, sizes, signatures) in the same order; verification of
 * random bytes never succeeds and never crashes.
 */
#include "tests/fuzz/fuzz.h"

#include "registry/sign/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEST_KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKQHwx1718oGXSy2wo9ITYkNSyayH\n"
    "qYueP969Ts3zZV0M1TkU//1j3aU8CVLnCK/8rCUuzmXTzwTeSFsMAOwgpg==\n"
    "-----END PUBLIC KEY-----\n";

static void
payload_round_trip(const uint8_t *data, size_t size)
{
	struct sig_payload p, q;
	char err[256], *body = NULL;
	size_t len = 0;

	if (sig_payload_parse((const char *)data, size, &p, err, sizeof(err)) != AM_OK)
		return;
	FUZZ_ASSERT(strncmp(p.digest, "sha256:", 7) == 0 && strlen(p.digest) == 71);
	if (sig_payload_build(p.reference, p.digest, &body, &len, err, sizeof(err)) != AM_OK)
		return;   /* a reference that is not valid UTF-8 cannot be signed */
	FUZZ_ASSERT(sig_payload_parse(body, len, &q, err, sizeof(err)) == AM_OK);
	FUZZ_ASSERT(strcmp(p.reference, q.reference) == 0 && strcmp(p.digest, q.digest) == 0);
	free(body);
}

static void
manifest_round_trip(const uint8_t *data, size_t size)
{
	static struct sig_manifest m, back;
	char err[256], *cfg = NULL, *man = NULL;
	size_t clen, mlen, i;

	if (sig_manifest_parse((const char *)data, size, &m, err, sizeof(err)) != AM_OK)
		return;
	FUZZ_ASSERT(m.n_layers <= SIG_MAX_LAYERS);
	if (sig_manifest_append(&m, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
	    10, "c2ln", err, sizeof(err)) == AM_OK &&
	    sig_manifest_build(&m, &cfg, &clen, &man, &mlen, err, sizeof(err)) == AM_OK) {
		FUZZ_ASSERT(sig_manifest_parse(man, mlen, &back, err, sizeof(err)) == AM_OK);
		FUZZ_ASSERT(back.n_layers == m.n_layers);
		for (i = 0; i < m.n_layers; i++) {
			FUZZ_ASSERT(strcmp(back.layers[i].digest, m.layers[i].digest) == 0);
			FUZZ_ASSERT(back.layers[i].size == m.layers[i].size);
			FUZZ_ASSERT(strcmp(back.layers[i].signature, m.layers[i].signature) == 0);
		}
		sig_manifest_clear(&back);
	}
	free(cfg);
	free(man);
	sig_manifest_clear(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sig_key *key;
	char err[256];
	char *s;

	if (key == NULL && sig_key_from_pem(TEST_KEY, sizeof(TEST_KEY) - 1, 0, &key, err, sizeof(err)) != AM_OK)
		abort();
	payload_round_trip(data, size);
	manifest_round_trip(data, size);
	s = fuzz_cstr(data, size);
	FUZZ_ASSERT(!sig_verify(key, data, size, s));
	free(s);
	return 0;
}
