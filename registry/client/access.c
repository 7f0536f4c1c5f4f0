/*
 * Access probe: GET /v2/ for the challenge, then the token service with a
 * pull,push scope and Basic credentials, then the grant read from the JWT's
 * "access" claim. Harbor answers wrong credentials with an anonymous token
 * (empty subject, no actions), so the claims tell both stories apart.
 */
#include "registry/client/access.h"

#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <jansson.h>

#include "registry/client/fetch.h"
#include "registry/client/auth.h"

/* base64url (padding optional) -> bytes; caller frees; NULL when malformed. */
static char *
b64url_decode(const char *in, size_t n, size_t *outlen)
{
	char *out = xmalloc(n * 3 / 4 + 4);
	unsigned int acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < n; i++) {
		char c = in[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-' || c == '+')
			v = 62;
		else if (c == '_' || c == '/')
			v = 63;
		else if (c == '=')
			break;
		else {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

int
reg_token_grants(const char *jwt, const char *repo, int *pull, int *push, int *anonymous)
{
	const char *p1 = strchr(jwt, '.'), *p2;
	json_t *claims = NULL, *access, *item, *act;
	const char *sub;
	char *payload;
	size_t len, i, j;

	*pull = *push = *anonymous = 0;
	if (p1 == NULL || (p2 = strchr(p1 + 1, '.')) == NULL)
		return -1;
	if ((payload = b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), &len)) == NULL)
		return -1;
	claims = json_loadb(payload, len, 0, NULL);
	free(payload);
	if (!json_is_object(claims)) {
		json_decref(claims);
		return -1;
	}
	sub = json_string_value(json_object_get(claims, "sub"));
	*anonymous = sub == NULL || sub[0] == '\0';
	access = json_object_get(claims, "access");
	json_array_foreach(access, i, item) {
		const char *type = json_string_value(json_object_get(item, "type"));
		const char *name = json_string_value(json_object_get(item, "name"));
		if (type == NULL || name == NULL || strcmp(type, "repository") != 0 || strcmp(name, repo) != 0)
			continue;
		json_array_foreach(json_object_get(item, "actions"), j, act) {
			const char *a = json_string_value(act);
			if (a == NULL)
				continue;
			if (strcmp(a, "pull") == 0 || strcmp(a, "*") == 0)
				*pull = 1;
			if (strcmp(a, "push") == 0 || strcmp(a, "*") == 0)
				*push = 1;
		}
	}
	json_decref(claims);
	return 0;
}

/* GET realm?service=..&scope=repository:<repo>:pull,push with Basic credentials. */
static enum am_err
token_for(const struct reg_access_opts *o, const struct auth_challenge *ch, const char *repo,
    char **token, char *err, size_t errlen)
{
	struct fetch_opts fo;
	struct fetch_reply r;
	char scope[600], url[2048];
	char *esc_scope = NULL, *esc_service = NULL;
	long ttl;
	enum am_err rc;

	*token = NULL;
	(void)am_fmt(scope, sizeof(scope), "repository:%s:pull,push", repo ? repo : "");
	esc_scope = curl_easy_escape(NULL, scope, 0);
	esc_service = curl_easy_escape(NULL, ch->service, 0);
	if (esc_scope == NULL || esc_service == NULL ||
	    am_fmt(url, sizeof(url), "%s%cservice=%s%s%s", ch->realm,
	    strchr(ch->realm, '?') ? '&' : '?', esc_service, repo ? "&scope=" : "",
	    repo ? esc_scope : "") != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "token URL for realm %.200s is too long", ch->realm);
		goto done;
	}
	memset(&fo, 0, sizeof(fo));
	fo.url = url;
	fo.ca_file = o->ca_file;
	fo.insecure = o->insecure;
	fo.username = o->username;
	fo.password = o->password;
	fo.timeout_ms = o->timeout_ms;
	if ((rc = fetch_get(&fo, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.status == 401 || r.status == 403)
		rc = am_fail(err, errlen, AM_EAUTH, "token service %.200s answered %ld: credentials of %s rejected",
		    ch->realm, r.status, o->username ? o->username : "anonymous");
	else if (r.status < 200 || r.status > 299)
		rc = am_fail(err, errlen, AM_EDENIED, "token service %.200s answered %ld", ch->realm, r.status);
	else
		rc = auth_parse_token_reply(r.body ? r.body : "", r.body_len, token, &ttl, err, errlen);
	fetch_reply_clear(&r);
done:
	curl_free(esc_scope);
	curl_free(esc_service);
	return rc;
}

enum am_err
reg_access_probe(const struct reg_access_opts *o, const char *repo, struct reg_access *out,
    char *err, size_t errlen)
{
	struct auth_challenge ch;
	struct fetch_opts fo;
	struct fetch_reply r;
	char url[1024], *token = NULL;
	enum am_err rc;

	memset(out, 0, sizeof(*out));
	if (am_fmt(url, sizeof(url), "%s/v2/", o->url) != 0)
		return am_fail(err, errlen, AM_EINVAL, "registry URL too long");
	memset(&fo, 0, sizeof(fo));
	fo.url = url;
	fo.ca_file = o->ca_file;
	fo.insecure = o->insecure;
	fo.timeout_ms = o->timeout_ms;
	if ((rc = fetch_get(&fo, &r, err, errlen)) != AM_OK)
		return rc;
	if (r.status >= 200 && r.status <= 299) {
		/* No authentication at all: anybody may pull and push. */
		out->pull = out->push = out->verified = 1;
		goto done;
	}
	if (r.status != 401 || auth_parse_challenge(r.www_authenticate, &ch, err, errlen) != AM_OK) {
		rc = am_fail(err, errlen, AM_EDENIED, "GET %s answered %ld without a usable challenge",
		    url, r.status);
		goto done;
	}
	if (ch.scheme == AUTH_BASIC) {
		/* Basic: the credentials can be tried, the permissions not read. */
		fetch_reply_clear(&r);
		fo.username = o->username;
		fo.password = o->password;
		if ((rc = fetch_get(&fo, &r, err, errlen)) != AM_OK)
			return rc;
		if (r.status == 401)
			rc = am_fail(err, errlen, AM_EAUTH, "Basic credentials of %s rejected by %s",
			    o->username ? o->username : "anonymous", o->url);
		goto done;
	}
	if ((rc = token_for(o, &ch, repo, &token, err, errlen)) != AM_OK)
		goto done;
	out->verified = 1;
	if (reg_token_grants(token, repo ? repo : "", &out->pull, &out->push, &out->anonymous) != 0) {
		/* Not a JWT we can read (some registries use opaque tokens). */
		out->verified = 0;
	}
	if (out->verified && out->anonymous && o->username != NULL)
		rc = am_fail(err, errlen, AM_EAUTH,
		    "credentials of %s were not accepted (the token service answered as for an anonymous user)",
		    o->username);
done:
	am_secret_free(token);
	fetch_reply_clear(&r);
	return rc;
}
