/*
 * The Basic/Bearer flow: the per-scope token cache, fetching a token from
 * the realm a challenge names, and what to send before and after a 401.
 */
#include "registry/client/internal.h"
#include "registry/client/auth.h"
#include "server/base/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* ---- tokens ---- */

void
cl_token_slot_clear(struct token_entry *t)
{
	am_secret_free(t->token);
	memset(t, 0, sizeof(*t));
}

/*
 * Copy of a usable cached token for scope (caller wipes), its key in key, or
 * NULL. not_before: only a token whose fetch began at or after that
 * am_now_ms() (0: any). Under lock.
 */
char *
cl_token_find(struct reg_client *c, const char *scope, long long not_before, char *key,
    size_t keylen)
{
	char wider[SCOPE_LEN + 8];
	size_t n = strlen(scope);
	long long now = am_now_ms();
	int i, j;

	/* A pull,push token of a repository serves its pulls as well. */
	wider[0] = '\0';
	if (n >= 5 && strcmp(scope + n - 5, ":pull") == 0)
		(void)am_fmt(wider, sizeof(wider), "%s,push", scope);
	for (j = 0; j < 2; j++) {
		const char *want = j == 0 ? scope : wider;
		if (want[0] == '\0' && j == 1)
			break;
		for (i = 0; i < TOKENS_MAX; i++) {
			struct token_entry *t = &c->tokens[i];
			if (t->token != NULL && now < t->refresh_at && t->fetched_at >= not_before &&
			    strcmp(t->scope, want) == 0) {
				cl_copy_bounded(key, keylen, t->scope, strlen(t->scope));
				return xstrdup(t->token);
			}
		}
	}
	return NULL;
}

static void
token_store(struct reg_client *c, const char *scope, const char *token, long ttl_s, long long t0)
{
	long long life = (long long)ttl_s * 1000, margin;
	struct token_entry *slot = NULL;
	int i;

	/* Refresh when 30 s or 10 % of the lifetime is left, whichever is less. */
	margin = life / 10 < 30000 ? life / 10 : 30000;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < TOKENS_MAX && slot == NULL; i++)
		if (c->tokens[i].token != NULL && strcmp(c->tokens[i].scope, scope) == 0)
			slot = &c->tokens[i];
	for (i = 0; i < TOKENS_MAX && slot == NULL; i++)
		if (c->tokens[i].token == NULL)
			slot = &c->tokens[i];
	if (slot == NULL) {
		/* Full: evict the one closest to (or past) its refresh time. */
		slot = &c->tokens[0];
		for (i = 1; i < TOKENS_MAX; i++)
			if (c->tokens[i].refresh_at < slot->refresh_at)
				slot = &c->tokens[i];
	}
	cl_token_slot_clear(slot);
	cl_copy_bounded(slot->scope, sizeof(slot->scope), scope, strlen(scope));
	slot->token = xstrdup(token);
	slot->refresh_at = t0 + life - margin;
	slot->fetched_at = t0;
	pthread_mutex_unlock(&c->lock);
}

/* Forget a token the registry refused, unless another thread already replaced it. */
void
cl_token_drop(struct reg_client *c, const char *key, const char *token)
{
	int i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < TOKENS_MAX; i++) {
		struct token_entry *t = &c->tokens[i];
		if (t->token != NULL && strcmp(t->scope, key) == 0 && strcmp(t->token, token) == 0)
			cl_token_slot_clear(t);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * <realm>?service=..&scope=..[&scope=..] into url. Several scopes (a blob
 * mount needs two) travel as repeated scope= parameters.
 */
static enum am_err
token_url(const char *realm, const char *service, const char *scope, char *url, size_t len,
    char *err, size_t errlen)
{
	char *esc_service = curl_easy_escape(NULL, service, 0);
	char *esc_scope = curl_easy_escape(NULL, scope, 0);
	const char *sp, *nsp;
	char sep = strchr(realm, '?') != NULL ? '&' : '?';
	size_t off;
	enum am_err rc = AM_OK;

	if (esc_service == NULL || esc_scope == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "curl_easy_escape failed: out of memory"));
		abort();
	}
	if (am_fmt(url, len, "%s", realm) != 0)
		goto too_long;
	off = strlen(url);
	if (service[0] != '\0') {
		if (am_fmt(url + off, len - off, "%cservice=%s", sep, esc_service) != 0)
			goto too_long;
		off += strlen(url + off);
		sep = '&';
	}
	for (sp = esc_scope; scope[0] != '\0'; sp = nsp + 3) {
		nsp = strstr(sp, "%20");
		if (am_fmt(url + off, len - off, "%cscope=%.*s", sep,
		    (int)(nsp != NULL ? (size_t)(nsp - sp) : strlen(sp)), sp) != 0)
			goto too_long;
		off += strlen(url + off);
		sep = '&';
		if (nsp == NULL)
			break;
	}
	goto done;
too_long:
	rc = am_fail(err, errlen, AM_EINVAL, "token URL for realm %.200s is too long", realm);
done:
	curl_free(esc_service);
	curl_free(esc_scope);
	return rc;
}

/* A realm we may ask: http(s), and no password in clear text when the registry uses TLS. */
static enum am_err
check_realm(const struct reg_client *c, const char *realm, char *err, size_t errlen)
{
	if (!cl_is_http_url(realm))
		return am_fail(err, errlen, AM_EINVAL, "token realm \"%.200s\" is not an http(s) URL", realm);
	if (c->username != NULL && strncasecmp(realm, "http://", 7) == 0 &&
	    strncasecmp(c->url, "https://", 8) == 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "token realm %.200s is plain http while the registry uses https: refusing to send credentials",
		    realm);
	return AM_OK;
}

/* GET <realm>?service=..&scope=.. and cache the answer. *token: caller wipes. */
static enum am_err
fetch_token(struct reg_client *c, const char *realm, const char *service, const char *scope,
    char **token, char *err, size_t errlen)
{
	char url[URL_MAX], what[URL_MAX + 8], perr[256], who[300];
	struct req rq;
	struct send sd;
	struct resp rs;
	long ttl = 0;
	long long t0 = am_now_ms();
	enum am_err rc;

	*token = NULL;
	cl_resp_init(&rs, TOKEN_REPLY_MAX, 1);
	if ((rc = check_realm(c, realm, err, errlen)) != AM_OK ||
	    (rc = token_url(realm, service, scope, url, sizeof(url), err, errlen)) != AM_OK)
		goto done;
	(void)am_fmt(what, sizeof(what), "GET %s", url);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.keep_body = 1;
	rq.max = TOKEN_REPLY_MAX;
	memset(&sd, 0, sizeof(sd));
	sd.url = url;
	sd.what = what;
	sd.auth = c->username != NULL ? SEND_BASIC : SEND_NONE;
	sd.token_fetch = 1;
	if ((rc = cl_exchange(c, &rq, &sd, &rs, err, errlen)) != AM_OK)
		goto done;
	if (rs.status == 401 || rs.status == 403) {
		cl_describe_rejection(c, scope, who, sizeof(who));
		rc = am_fail(err, errlen, AM_EAUTH, "token service %.200s answered %ld: %s",
		    realm, rs.status, who);
	} else if (!cl_is_2xx(rs.status)) {
		rc = cl_status_to_err(rs.status) == AM_ETRANSIENT ? AM_ETRANSIENT : AM_EDENIED;
		rc = am_fail(err, errlen, rc, "token service %.200s answered %ld for scope \"%s\"",
		    realm, rs.status, scope);
	} else if ((rc = auth_parse_token_reply(rs.body ? rs.body : "", rs.body_len, token, &ttl,
	    perr, sizeof(perr))) != AM_OK) {
		rc = am_fail(err, errlen, rc, "token service %.200s: %s", realm, perr);
	} else {
		token_store(c, scope, *token, ttl, t0);
	}
done:
	cl_resp_free(&rs);
	return rc;
}

/*
 * A token for scope: the cached one if another thread fetched it meanwhile
 * (its fetch begun at or after not_before), else a new one. key gets the
 * cache key of what was returned.
 */
enum am_err
cl_token_get(struct reg_client *c, const char *realm, const char *service, const char *scope,
    long long not_before, char **token, char *key, size_t keylen, char *err, size_t errlen)
{
	enum am_err rc = AM_OK;

	pthread_mutex_lock(&c->fetch_lock);
	pthread_mutex_lock(&c->lock);
	*token = cl_token_find(c, scope, not_before, key, keylen);
	pthread_mutex_unlock(&c->lock);
	if (*token == NULL) {
		rc = fetch_token(c, realm, service, scope, token, err, errlen);
		cl_copy_bounded(key, keylen, scope, strlen(scope));
	}
	pthread_mutex_unlock(&c->fetch_lock);
	return rc;
}


int
cl_is_push(const struct req *rq)
{
	return strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0;
}

/* The scope this request needs when no challenge said otherwise. */
enum am_err
cl_own_scope(const struct reg_client *c, const struct req *rq, char *scope, size_t len,
    char *err, size_t errlen)
{
	scope[0] = '\0';
	if (rq->repo == NULL)
		return AM_OK;     /* /v2/: any valid token will do */
	/* With credentials, ask for pull,push at once: one token per repository
	 * serves both the reads and the index PUT (token services grant the
	 * subset the account has, so a pull-only account still reads). */
	if (am_fmt(scope, len, "repository:%s:%s", rq->repo,
	    cl_is_push(rq) || c->username != NULL ? "pull,push" : "pull") != 0)
		return am_fail(err, errlen, AM_EINVAL, "repository name too long for a token scope");
	/* One token for both sides of a mount: distribution and Harbor check pull on the source. */
	if (rq->extra_scope != NULL &&
	    am_fmt(scope + strlen(scope), len - strlen(scope), " repository:%s:pull", rq->extra_scope) != 0)
		return am_fail(err, errlen, AM_EINVAL, "repository names too long for a token scope");
	return AM_OK;
}


void
cl_auth_state_clear(struct auth_state *st)
{
	am_secret_free(st->token);
	st->token = NULL;
}

/* Known registry: authenticate up front instead of collecting a 401 first. */
enum am_err
cl_auth_start(struct reg_client *c, struct auth_state *st, char *err, size_t errlen)
{
	int basic_mode;
	enum am_err rc = AM_OK;

	pthread_mutex_lock(&c->lock);
	basic_mode = c->basic_mode;
	memcpy(st->realm, c->realm, sizeof(st->realm));
	memcpy(st->service, c->service, sizeof(st->service));
	if (!basic_mode && st->realm[0] != '\0')
		st->token = cl_token_find(c, st->scope, 0, st->key, sizeof(st->key));
	pthread_mutex_unlock(&c->lock);

	if (basic_mode && c->username != NULL) {
		st->kind = SEND_BASIC;
	} else if (st->realm[0] != '\0') {
		if (st->token == NULL) {
			rc = cl_token_get(c, st->realm, st->service, st->scope, 0, &st->token, st->key,
			    sizeof(st->key), err, errlen);
			st->fresh = 1;
		}
		st->kind = SEND_BEARER;
	}
	return rc;
}

/*
 * The registry answered 401 to the first try: work out what it wants. Sets
 * *retry when st now holds something new worth one more try; returns an
 * error only when there is nothing to try.
 */
enum am_err
cl_auth_after_401(struct reg_client *c, const struct req *rq, const struct resp *rs,
    struct auth_state *st, const char *what, int *retry, char *err, size_t errlen)
{
	struct auth_challenge ch;
	char perr[256], nscope[SCOPE_LEN];
	long long refused_at = am_now_ms();
	int have_ch;

	*retry = 0;
	if (st->kind == SEND_BASIC)
		return AM_OK;             /* Basic credentials refused: final */
	perr[0] = '\0';
	have_ch = !rs->www_overflow &&
	    auth_parse_challenge(rs->www_auth, &ch, perr, sizeof(perr)) == AM_OK;
	if (rs->www_overflow)
		(void)am_fmt(perr, sizeof(perr), "WWW-Authenticate longer than %d bytes", WWWAUTH_MAX);

	if (have_ch && ch.scheme == AUTH_BASIC && st->kind == SEND_NONE) {
		if (c->username == NULL)
			return am_fail(err, errlen, AM_EAUTH,
			    "%s: 401: the registry wants Basic credentials and none are configured", what);
		pthread_mutex_lock(&c->lock);
		c->basic_mode = 1;
		pthread_mutex_unlock(&c->lock);
		st->kind = SEND_BASIC;
		*retry = 1;
		return AM_OK;
	}
	if (have_ch && ch.scheme == AUTH_BEARER) {
		/* Push rights are ours to ask for (see cl_own_scope); anonymous reads take
		 * the scope the registry names. */
		if (cl_is_push(rq) || c->username != NULL || ch.scope[0] == '\0')
			memcpy(nscope, st->scope, sizeof(nscope));
		else
			memcpy(nscope, ch.scope, sizeof(nscope));
		if (st->kind == SEND_BEARER && st->fresh && strcmp(ch.realm, st->realm) == 0 &&
		    strcmp(ch.service, st->service) == 0 && strcmp(nscope, st->key) == 0)
			return AM_OK;     /* a fresh token for exactly this was refused: final */
		memcpy(st->realm, ch.realm, sizeof(st->realm));
		memcpy(st->service, ch.service, sizeof(st->service));
		memcpy(st->scope, nscope, sizeof(st->scope));
		pthread_mutex_lock(&c->lock);
		memcpy(c->realm, st->realm, sizeof(c->realm));
		memcpy(c->service, st->service, sizeof(c->service));
		pthread_mutex_unlock(&c->lock);
	} else if (st->kind == SEND_NONE) {
		return am_fail(err, errlen, AM_EAUTH, "%s: 401 without a usable challenge: %s",
		    what, perr);
	} else if (st->fresh) {
		return AM_OK;             /* Harbor answers a useless token with Basic realm="harbor" */
	}
	/* A cached token was refused (revoked, expired early): forget it, one fresh try. */
	if (st->kind == SEND_BEARER) {
		cl_token_drop(c, st->key, st->token);
		cl_auth_state_clear(st);
	}
	/*
	 * The retry's token is fetched after this 401: one another request cached
	 * meanwhile (a read racing this one while no realm was known) may be the
	 * very token the registry already holds expired.
	 */
	st->kind = SEND_BEARER;
	st->fresh = 1;                    /* obtained after the refusal */
	*retry = 1;
	return cl_token_get(c, st->realm, st->service, st->scope, refused_at, &st->token, st->key,
	    sizeof(st->key), err, errlen);
}

/* The err line of a final non-2xx answer, in the registry's own words where it gave some. */
