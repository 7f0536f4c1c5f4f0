/*
 * Unit tests of registry/client.c through its public API, without a
 * registry: option checks, reply lifecycle, refusals that happen before any
 * I/O, and a refused loopback connection mapped to AM_ETRANSIENT. The real
 * HTTP exchanges are covered by the integration tests.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>

#include <curl/curl.h>

#include "registry/client/client.h"

static struct reg_client *
mk(const char *url, long timeout_ms, char *err, size_t errlen)
{
	struct reg_client_opts o;

	memset(&o, 0, sizeof(o));
	o.url = url;
	o.username = "u";
	o.password = "pw-sEcReT-42";
	o.timeout_ms = timeout_ms;
	return reg_client_new(&o, err, errlen);
}

static void
test_options(void)
{
	char err[256], longurl[700];
	struct reg_client *c;

	err[0] = '\0';
	CHECK(mk(NULL, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "https://") != NULL);
	CHECK(mk("ftp://127.0.0.1", 0, err, sizeof(err)) == NULL);
	CHECK(mk("127.0.0.1:5000", 0, err, sizeof(err)) == NULL);
	CHECK(mk("https://127.0.0.1:5000", -1, err, sizeof(err)) == NULL);
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "https://", 8);
	longurl[sizeof(longurl) - 1] = '\0';
	CHECK(mk(longurl, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "longer") != NULL);
	CHECK(reg_client_new(NULL, err, sizeof(err)) == NULL);

	c = mk("HTTPS://127.0.0.1:5000///", 0, err, sizeof(err));
	CHECK(c != NULL);
	reg_client_free(c);
	reg_client_free(NULL);
}

static void
test_reply(void)
{
	struct reg_reply r;

	reg_reply_init(&r);
	CHECK(r.length == -1 && r.retry_after_ms == -1 && r.body == NULL && r.status == 0);
	r.body = malloc(10);
	r.body_len = 10;
	r.status = 200;
	reg_reply_clear(&r);
	CHECK(r.body == NULL && r.body_len == 0 && r.length == -1 && r.status == 0);
}

static void
test_refusals(void)
{
	char err[256], repo[1100];
	struct reg_client *c;
	struct reg_reply r;
	struct reg_stats s;

	c = mk("https://127.0.0.1:1", 2000, err, sizeof(err));
	reg_reply_init(&r);

	/* Over the registry's manifest limit: refused before any request. */
	CHECK(reg_manifest_put(c, "a/b", "t", "application/vnd.oci.image.index.v1+json", "{}",
	    (size_t)REG_MAX_MANIFEST + 1, &r, err, sizeof(err)) == AM_EINVAL);
	/* A URL that would not fit is an error, not a truncated request. */
	memset(repo, 'a', sizeof(repo));
	repo[sizeof(repo) - 1] = '\0';
	CHECK(reg_manifest_head(c, repo, "t", &r, err, sizeof(err)) == AM_EINVAL);
	CHECK(reg_blob_get(c, repo, "sha256:00", 10, &r, err, sizeof(err)) == AM_EINVAL);
	reg_client_stats(c, &s);
	CHECK(s.requests == 0 && s.token_fetches == 0 && s.connects == 0);

	/* Nothing listens on port 1: a network error, worth retrying. */
	err[0] = '\0';
	CHECK(reg_ping(c, err, sizeof(err)) == AM_ETRANSIENT);
	CHECK(strncmp(err, "GET /v2/: ", 10) == 0);
	CHECK(reg_manifest_get(c, "a/b", "t", &r, err, sizeof(err)) == AM_ETRANSIENT);
	CHECK(strncmp(err, "GET /v2/a/b/manifests/t: ", 25) == 0);
	CHECK(r.body == NULL);
	CHECK(strstr(err, "sEcReT") == NULL);
	reg_client_stats(c, &s);
	CHECK(s.requests == 2 && s.token_fetches == 0);

	reg_reply_clear(&r);
	reg_client_free(c);
}

struct heard {
	int calls, tokens;
	long last_status;
	char last_method[8];
};

static void
hear(void *ctx, const struct reg_exchange *e)
{
	struct heard *h = ctx;

	h->calls++;
	h->tokens += e->token_fetch;
	h->last_status = e->status;
	(void)am_fmt(h->last_method, sizeof(h->last_method), "%s", e->method);
}

/* Each exchange reaches the hook in the options, also the ones that got no answer. */
static void
test_exchange_hook(void)
{
	struct reg_client_opts o;
	struct reg_client *c;
	struct reg_reply r;
	struct heard h;
	char err[256];

	memset(&h, 0, sizeof(h));
	memset(&o, 0, sizeof(o));
	o.url = "http://127.0.0.1:1";
	o.timeout_ms = 2000;
	o.on_exchange = hear;
	o.hook_ctx = &h;
	o.max_concurrent = 1;
	c = reg_client_new(&o, err, sizeof(err));
	CHECK(c != NULL);
	reg_reply_init(&r);
	CHECK(reg_manifest_head(c, "a/b", "t", &r, err, sizeof(err)) == AM_ETRANSIENT);
	CHECK(h.calls == 1 && h.tokens == 0 && h.last_status == 0);
	CHECK(strcmp(h.last_method, "HEAD") == 0);
	CHECK(reg_ping(c, err, sizeof(err)) == AM_ETRANSIENT);
	CHECK(h.calls == 2 && strcmp(h.last_method, "GET") == 0);
	reg_reply_clear(&r);
	reg_client_free(c);
}

TEST_MAIN("client")

static void
run_tests(void)
{
	/* main's job in the service; the client never calls it itself. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_options();
	test_reply();
	test_refusals();
	test_exchange_hook();
	curl_global_cleanup();
}
