/* ECDSA P-256 keys, signing and verifying through OpenSSL's EVP interface. */
#include "registry/sign/sign.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

struct sig_key {
	EVP_PKEY *pkey;
};

static enum am_err
check_p256(EVP_PKEY *pk, char *err, size_t errlen)
{
	char group[64] = "";
	size_t glen = 0;

	if (!EVP_PKEY_is_a(pk, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
	    strcmp(group, "prime256v1") != 0)
		return am_fail(err, errlen, AM_EINVAL, "key is not an ECDSA P-256 (prime256v1) key%s%s",
		    group[0] ? " but " : "", group);
	return AM_OK;
}

enum am_err
sig_key_from_pem(const char *pem, size_t len, int private_, struct sig_key **out,
    char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk;
	enum am_err rc;

	*out = NULL;
	if (b == NULL)
		return am_fail(err, errlen, AM_EIO, "out of memory");
	/* No passphrase callback: an encrypted key fails instead of prompting. */
	pk = private_ ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") :
	    PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pk == NULL)
		return am_fail(err, errlen, AM_EINVAL, "no unencrypted %s key in PEM",
		    private_ ? "private" : "public");
	if ((rc = check_p256(pk, err, errlen)) != AM_OK) {
		EVP_PKEY_free(pk);
		return rc;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->pkey = pk;
	return AM_OK;
}

static enum am_err
load(const char *path, int private_, struct sig_key **out, char *err, size_t errlen)
{
	char *text = NULL, msg[256];
	size_t len = 0;
	enum am_err rc;

	*out = NULL;
	rc = private_ ? am_read_secret(path, &text, err, errlen) :
	    am_read_file(path, 64 * 1024, &text, &len, err, errlen);
	if (rc != AM_OK)
		return rc;
	if (private_)
		len = strlen(text);
	if ((rc = sig_key_from_pem(text, len, private_, out, msg, sizeof(msg))) != AM_OK)
		rc = am_fail(err, errlen, rc, "%s: %s", path, msg);
	if (private_)
		am_secret_free(text);
	else
		free(text);
	return rc;
}

enum am_err
sig_key_load_private(const char *path, struct sig_key **out, char *err, size_t errlen)
{
	return load(path, 1, out, err, errlen);
}

enum am_err
sig_key_load_public(const char *path, struct sig_key **out, char *err, size_t errlen)
{
	return load(path, 0, out, err, errlen);
}

void
sig_key_free(struct sig_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum am_err
sig_sign(const struct sig_key *k, const void *data, size_t len, char *b64, size_t b64len,
    char *err, size_t errlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[160];
	size_t dlen = sizeof(der);
	enum am_err rc = AM_OK;

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, der, &dlen, data, len) != 1)
		rc = am_fail(err, errlen, AM_EINVAL, "signing failed (not a private key?)");
	else if (b64len < 4 * ((dlen + 2) / 3) + 1)
		rc = am_fail(err, errlen, AM_EINVAL, "signature buffer too small");
	else
		(void)EVP_EncodeBlock((unsigned char *)b64, der, (int)dlen);
	EVP_MD_CTX_free(md);
	return rc;
}

int
sig_verify(const struct sig_key *k, const void *data, size_t len, const char *b64)
{
	unsigned char der[SIG_B64_MAX];
	size_t n = strlen(b64), pad = 0;
	EVP_MD_CTX *md;
	int dlen, ok;

	if (n == 0 || n % 4 != 0 || n >= sizeof(der))
		return 0;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	if ((dlen = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)n)) < 0 || dlen < (int)pad)
		return 0;
	dlen -= (int)pad;   /* EVP_DecodeBlock counts the padding as zero bytes */
	if ((md = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)dlen, data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}
