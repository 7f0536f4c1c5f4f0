/*
 * Unit tests: handlers/ui.c -- the status page renders every section from a
 * /status document, escapes hostile values (markup in tags, quotes,
 * ampersands, registry messages) and never grows past its size limit.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "handlers/ui.h"

static const char *const EVIL = "<script>alert('x')</script>\"&amp;";

static json_t *
doc(const char *tag)
{
	json_t *child = json_pack("{s:s, s:s, s:s, s:s}", "arch", "amd64", "source", tag,
	    "digest", "sha256:aaa<b>", "platform", "linux/amd64");
	json_t *st = json_pack("{s:s, s:i, s:i, s:i}", "version", "1.2.3", "queue_depth", 3,
	    "journal_pending", 2, "uptime_seconds", 125);

	json_object_set_new(st, "waiting", json_pack("[{s:s, s:s, s:s, s:[s], s:[O], s:s, s:s, s:i}]",
	    "group", "h/library/app:3.8.5", "rule", tag, "target", tag, "missing", "arm64",
	    "present", child, "since", "2026-01-01T00:00:00Z", "last_check", "2026-01-01T00:01:00Z",
	    "checks", 4));
	json_object_set_new(st, "published", json_pack("[{s:s, s:s, s:s, s:[O], s:i, s:i, s:s}]",
	    "time", "2026-01-01T00:02:00Z", "target", "library/pub:1.0", "digest", "sha256:ddd",
	    "children", child, "tags_pushed", 2, "webhook_to_publish_ms", 1500,
	    "signature", "sha256:sig"));
	json_object_set_new(st, "failures", json_pack("[{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}]",
	    "time", "2026-01-01T00:03:00Z", "target", "library/bad:1.0", "outcome", "refused",
	    "error", EVIL, "present", "arch", "arm64", "digest", "sha256:liar", "rejected", 1));
	json_object_set_new(st, "registries", json_pack("[{s:s, s:b, s:b, s:s}]",
	    "host", "harbor<i>", "reachable", 1, "credentials", 0, "last_error", "401 <html>denied</html>"));
	json_decref(child);
	return st;
}

static void
test_escape(void)
{
	char *e = ui_escape(EVIL);

	CHECK_STR(e, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;amp;");
	free(e);
	e = ui_escape("");
	CHECK_STR(e, "");
	free(e);
}

/* The CSP's hash source for the text between open and close in page, as the test computes it. */
static void
expected_source(const char *page, const char *open, const char *close, char *out, size_t outlen)
{
	const char *a = strstr(page, open), *b;
	unsigned char md[32], b64[64];
	unsigned n = 0;

	out[0] = '\0';
	if (a == NULL || (b = strstr(a += strlen(open), close)) == NULL ||
	    EVP_Digest(a, (size_t)(b - a), md, &n, EVP_sha256(), NULL) != 1)
		return;
	(void)EVP_EncodeBlock(b64, md, (int)n);
	(void)snprintf(out, outlen, "'sha256-%s'", (const char *)b64);
}

/* No inline code runs but the page's own style and script (by hash); no framing, no <base>. */
static void
test_csp(void)
{
	json_t *st = doc(EVIL);
	char *page = ui_render(st, NULL, NULL);
	char csp[512], want[128];

	CHECK(ui_csp(csp, sizeof(csp)) == 0);
	CHECK(strstr(csp, "unsafe-inline") == NULL);
	CHECK(strstr(csp, "default-src 'none'") != NULL);
	CHECK(strstr(csp, "frame-ancestors 'none'") != NULL);
	CHECK(strstr(csp, "base-uri 'none'") != NULL);
	CHECK(strstr(csp, "form-action 'self'") != NULL);
	expected_source(page, "<script>", "</script>", want, sizeof(want));
	CHECK(want[0] != '\0' && strstr(csp, want) != NULL);
	CHECK(strstr(csp, "script-src ") != NULL && strstr(strstr(csp, "script-src "), want) != NULL);
	expected_source(page, "<style>", "</style>", want, sizeof(want));
	CHECK(want[0] != '\0' && strstr(csp, want) != NULL);
	CHECK(ui_csp(csp, 40) == -1);
	free(page);
	json_decref(st);
}

static void
test_hostile_values_escaped(void)
{
	json_t *st = doc(EVIL);
	size_t len = 0;
	char *page = ui_render(st, NULL, &len);
	const char *s;
	int scripts = 0;

	CHECK(page != NULL && len == strlen(page));
	CHECK(strstr(page, "<script>alert") == NULL);
	CHECK(strstr(page, "'x'") == NULL);
	CHECK(strstr(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;amp;") != NULL);
	CHECK(strstr(page, "sha256:aaa&lt;b&gt;") != NULL);
	CHECK(strstr(page, "harbor&lt;i&gt;") != NULL);
	CHECK(strstr(page, "401 &lt;html&gt;denied&lt;/html&gt;") != NULL);
	for (s = page; (s = strstr(s, "<script")) != NULL; s++)
		scripts++;
	CHECK(scripts == 1);   /* only the page's own filter script */
	/* Every section with its values. */
	CHECK(strstr(page, "id=\"waiting\"") && strstr(page, "id=\"published\"") &&
	    strstr(page, "id=\"failures\"") && strstr(page, "id=\"registries\""));
	CHECK(strstr(page, "<span class=\"miss\">arm64</span>") != NULL);
	CHECK(strstr(page, "linux/amd64") != NULL && strstr(page, "library/pub:1.0") != NULL);
	CHECK(strstr(page, "1.5 s") != NULL && strstr(page, "sha256:sig") != NULL);
	CHECK(strstr(page, "<b>rejected</b> <span class=\"arch\">arm64</span>") != NULL);
	CHECK(strstr(page, "reachable yes") && strstr(page, "credentials accepted no"));
	CHECK(strstr(page, "http-equiv=\"refresh\"") != NULL && strstr(page, "href=\"/status\"") != NULL);
	CHECK(strstr(page, "http://") == NULL && strstr(page, "https://") == NULL);   /* nothing external */
	free(page);
	json_decref(st);
}

static void
test_long_tags_bounded(void)
{
	size_t n = 200000, i, len;
	char *tag = malloc(n + 1);
	json_t *st, *w;
	struct ui_opts o = { "/status", 5, 64 * 1024 };
	char *page;

	for (i = 0; i < n; i++)
		tag[i] = "<&\"'a"[i % 5];
	tag[n] = '\0';
	st = doc(tag);
	w = json_object_get(st, "waiting");
	for (i = 0; i < 200; i++)
		json_array_append(w, json_array_get(w, 0));
	page = ui_render(st, &o, &len);
	CHECK(len < 64 * 1024 && strlen(page) == len);
	CHECK(strstr(page, "cut at its size limit") != NULL);
	CHECK(strstr(page, "</body></html>\n") != NULL);
	CHECK(strstr(page, "<&") == NULL && strstr(page, "'a<") == NULL);
	free(page);
	/* The default limit holds too. */
	page = ui_render(st, NULL, &len);
	CHECK(len < UI_MAX_BYTES && strstr(page, "cut at its size limit") != NULL);
	free(page);
	json_decref(st);
	free(tag);
}

static void
test_empty_and_mistyped(void)
{
	json_t *st = json_pack("{s:i, s:s, s:[i], s:{}}", "version", 7, "waiting", "no",
	    "published", 1, "failures");
	char *page = ui_render(st, NULL, NULL);

	CHECK(strstr(page, "No group is waiting") != NULL);
	CHECK(strstr(page, "id=\"registries\"") == NULL);   /* absent: no section */
	CHECK(strstr(page, "No refusal or failure") != NULL);
	free(page);
	json_decref(st);
}

/* Waiting groups newest first, whatever order the document has. */
static void
test_waiting_newest_first(void)
{
	json_t *st = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "waiting",
	    "target", "old:1", "since", "2026-01-01T00:00:00Z",
	    "target", "new:1", "since", "2026-03-01T00:00:00Z",
	    "target", "mid:1", "since", "2026-02-01T00:00:00Z");
	char *page = ui_render(st, NULL, NULL);
	const char *a = strstr(page, "new:1"), *b = strstr(page, "mid:1"), *c = strstr(page, "old:1");

	CHECK(a != NULL && b != NULL && c != NULL && a < b && b < c);
	free(page);
	json_decref(st);
}

/* A child blocked by Harbor's policy: named with its policy and Harbor's words (escaped). */
static void
test_blocked(void)
{
	json_t *st = json_pack("{s:[{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}]}", "waiting",
	    "target", "library/app:1.0", "since", "2026-01-01T00:00:00Z", "blocked",
	    "arch", "arm64", "policy", "vulnerability", "repo", "library/app", "tag", "1.0-arm64",
	    "digest", "", "message", "current image with \"Running\" status of vulnerability scanning <b>");
	char *page = ui_render(st, NULL, NULL);

	CHECK(strstr(page, "<b>blocked</b>") != NULL);
	CHECK(strstr(page, "library/app:1.0-arm64 by Harbor&#39;s vulnerability policy") != NULL ||
	    strstr(page, "library/app:1.0-arm64 by Harbor's vulnerability policy") != NULL);
	CHECK(strstr(page, "&quot;Running&quot; status") != NULL || strstr(page, "&#34;Running&#34;") != NULL);
	CHECK(strstr(page, "scanning <b>") == NULL);
	free(page);
	json_decref(st);
}

static void
run_tests(void)
{
	test_escape();
	test_hostile_values_escaped();
	test_csp();
	test_long_tags_bounded();
	test_empty_and_mistyped();
	test_waiting_newest_first();
	test_blocked();
}

TEST_MAIN("ui")
