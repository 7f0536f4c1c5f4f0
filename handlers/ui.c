/*
 * Status page rendering: one growing buffer with a hard cap, raw markup and
 * escaped values kept apart by the two append verbs (raw() only ever gets
 * string literals; everything from the status document goes through esc()).
 * Tags, digests and registry messages are hostile: a tag may hold markup, a
 * registry error may be kilobytes of HTML.
 */
#include "handlers/ui.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "server/base/common.h"

#define TAIL_RESERVE 2048         /* room kept for the closing markup and script */
#define MIN_BYTES 4096
#define MAX_ITEMS 300             /* per section */

struct page {
	char *b;
	size_t len, cap, max;     /* max: bytes for content, the tail reserve excluded */
	size_t mark;              /* end of the last complete item: a cut goes back to it */
	int full;                 /* something was left out */
};

static void
put(struct page *p, const char *s, size_t n)
{
	size_t want;

	if (p->full || p->len + n + 1 > p->max) {
		p->full = 1;
		return;
	}
	want = p->len + n + 1;
	if (want > p->cap) {
		while (p->cap < want)
			p->cap *= 2;
		p->b = xrealloc(p->b, p->cap);
	}
	memcpy(p->b + p->len, s, n);
	p->len += n;
	p->b[p->len] = '\0';
}

static void
raw(struct page *p, const char *s)
{
	put(p, s, strlen(s));
}

/* Between two items: markup is balanced here. */
static void
mark(struct page *p)
{
	if (!p->full)
		p->mark = p->len;
}

static void
esc(struct page *p, const char *s)
{
	const char *run = s, *rep;

	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		put(p, run, (size_t)(s - run));
		raw(p, rep);
		run = s + 1;
	}
	if (s != NULL)
		put(p, run, (size_t)(s - run));
}

char *
ui_escape(const char *s)
{
	struct page p = { xmalloc(64), 0, 64, (size_t)-1 / 2, 0, 0 };

	p.b[0] = '\0';
	esc(&p, s);
	return p.b;
}

/* ---- reading the document: absent or mistyped fields read as empty ---- */

static const char *
str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}

static void
num(struct page *p, const json_t *v)
{
	char buf[32];

	if (json_is_integer(v))
		(void)am_fmt(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		(void)am_fmt(buf, sizeof(buf), "%g", json_real_value(v));
	else
		(void)am_fmt(buf, sizeof(buf), "-");
	raw(p, buf);
}

static void
duration(struct page *p, long long ms)
{
	char buf[48];

	if (ms < 10000)
		(void)am_fmt(buf, sizeof(buf), "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		(void)am_fmt(buf, sizeof(buf), "%lld min %lld s", ms / 60000, ms / 1000 % 60);
	else
		(void)am_fmt(buf, sizeof(buf), "%lld h %lld min", ms / 3600000, ms / 60000 % 60);
	raw(p, buf);
}

/* <div class="kv"><b>label</b> value</div>, value escaped; nothing when empty. */
static void
field(struct page *p, const char *label, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	raw(p, "<div class=\"kv\"><b>");
	raw(p, label);
	raw(p, "</b> <span>");
	esc(p, value);
	raw(p, "</span></div>\n");
}

/* Opening of one filterable item: data-key is what the filter box matches. */
static void
item_open(struct page *p, const char *cls, const json_t *o)
{
	mark(p);
	raw(p, "<div class=\"item ");
	raw(p, cls);
	raw(p, "\" data-key=\"");
	esc(p, str(o, "group"));
	raw(p, " ");
	esc(p, str(o, "target"));
	raw(p, "\"><div class=\"target\">");
	esc(p, str(o, "target")[0] ? str(o, "target") : str(o, "group"));
	raw(p, "</div>\n");
}

/* Architectures as a list: name, platform, digest and the tag they came from. */
static void
arch_list(struct page *p, const char *label, const json_t *a)
{
	size_t i;

	if (json_array_size(a) == 0)
		return;
	raw(p, "<div class=\"kv\"><b>");
	raw(p, label);
	raw(p, "</b><ul class=\"archs\">\n");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		const json_t *c = json_array_get(a, i);
		raw(p, json_is_true(json_object_get(c, "rejected")) ?
		    "<li class=\"rej\"><b>rejected</b> <span class=\"arch\">" : "<li><span class=\"arch\">");
		esc(p, str(c, "arch"));
		raw(p, "</span> <span class=\"plat\">");
		esc(p, str(c, "platform")[0] ? str(c, "platform") : "platform unknown");
		raw(p, "</span> <code>");
		esc(p, str(c, "digest"));
		raw(p, "</code>");
		if (str(c, "source")[0] != '\0') {
			raw(p, " <span class=\"src\">from ");
			esc(p, str(c, "source"));
			raw(p, "</span>");
		}
		raw(p, "</li>\n");
	}
	raw(p, "</ul></div>\n");
}

static void
missing_list(struct page *p, const json_t *a)
{
	size_t i;

	if (json_array_size(a) == 0)
		return;
	raw(p, "<div class=\"kv\"><b>missing</b> ");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		raw(p, "<span class=\"miss\">");
		esc(p, json_string_value(json_array_get(a, i)));
		raw(p, "</span> ");
	}
	raw(p, "</div>\n");
}

/* Children the registry's policy keeps from being read: which, by which policy, in Harbor's words. */
static void
blocked_list(struct page *p, const json_t *a)
{
	size_t i;

	if (json_array_size(a) == 0)
		return;
	raw(p, "<div class=\"kv\"><b>blocked</b><ul>");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		const json_t *b = json_array_get(a, i);
		raw(p, "<li><span class=\"miss\">");
		esc(p, str(b, "arch"));
		raw(p, "</span> ");
		esc(p, str(b, "repo"));
		if (str(b, "tag")[0] != '\0') {
			raw(p, ":");
			esc(p, str(b, "tag"));
		}
		if (str(b, "digest")[0] != '\0') {
			raw(p, " <code>");
			esc(p, str(b, "digest"));
			raw(p, "</code>");
		}
		raw(p, " by Harbor's ");
		esc(p, str(b, "policy"));
		raw(p, " policy: ");
		esc(p, str(b, "message")[0] != '\0' ? str(b, "message") : "412 without a reason");
		raw(p, "</li>");
	}
	raw(p, "</ul></div>\n");
}

/* ---- sections ---- */

static int
by_since_desc(const void *a, const void *b)
{
	const char *x = str(*(const json_t *const *)a, "since");
	const char *y = str(*(const json_t *const *)b, "since");

	return strcmp(y, x);   /* ISO-8601 UTC sorts as text */
}

static void
waiting_section(struct page *p, const json_t *w)
{
	size_t i, n = json_array_size(w) < MAX_ITEMS ? json_array_size(w) : MAX_ITEMS;
	const json_t **v = xcalloc(n + 1, sizeof(*v));
	char checks[32];

	for (i = 0; i < n; i++)
		v[i] = json_array_get(w, i);
	qsort(v, n, sizeof(*v), by_since_desc);   /* newest first */
	mark(p);
	raw(p, "<section id=\"waiting\"><h2>Waiting</h2>\n");
	if (n == 0)
		raw(p, "<p class=\"none\">No group is waiting for an architecture.</p>\n");
	for (i = 0; i < n; i++) {
		item_open(p, "wait", v[i]);
		field(p, "group", str(v[i], "group"));
		field(p, "rule", str(v[i], "rule"));
		arch_list(p, "present", json_object_get(v[i], "present"));
		missing_list(p, json_object_get(v[i], "missing"));
		blocked_list(p, json_object_get(v[i], "blocked"));
		if (json_array_size(json_object_get(v[i], "missing")) == 0 &&
		    json_array_size(json_object_get(v[i], "blocked")) == 0)
			field(p, "detail", str(v[i], "detail"));
		field(p, "since", str(v[i], "since"));
		(void)am_fmt(checks, sizeof(checks), "%lld",
		    (long long)json_integer_value(json_object_get(v[i], "checks")));
		field(p, "last check", str(v[i], "last_check"));
		field(p, "checks", checks);
		raw(p, "</div>\n");
	}
	raw(p, "</section>\n");
	free(v);
}

/* Signing may add "signature" (a digest, or an object describing it). */
static void
signature(struct page *p, const json_t *sig)
{
	const char *k;
	const json_t *v;

	if (json_is_string(sig)) {
		field(p, "signature", json_string_value(sig));
	} else if (json_is_object(sig)) {
		raw(p, "<div class=\"kv\"><b>signature</b>");
		json_object_foreach((json_t *)sig, k, v) {
			if (!json_is_string(v))
				continue;
			raw(p, " <span>");
			esc(p, k);
			raw(p, ": <code>");
			esc(p, json_string_value(v));
			raw(p, "</code></span>");
		}
		raw(p, "</div>\n");
	} else if (json_is_true(sig)) {
		field(p, "signature", "made");
	}
}

static void
published_section(struct page *p, const json_t *a)
{
	size_t i;
	const json_t *o, *wt;
	char tags[24];

	mark(p);
	raw(p, "<section id=\"published\"><h2>Recent publications</h2>\n");
	if (json_array_size(a) == 0)
		raw(p, "<p class=\"none\">Nothing published since the start.</p>\n");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		o = json_array_get(a, i);
		item_open(p, "pub", o);
		field(p, "time", str(o, "time"));
		raw(p, "<div class=\"kv\"><b>digest</b> <code>");
		esc(p, str(o, "digest"));
		raw(p, "</code></div>\n");
		arch_list(p, "children", json_object_get(o, "children"));
		if ((wt = json_object_get(o, "webhook_to_publish_ms")) != NULL && json_is_integer(wt)) {
			raw(p, "<div class=\"kv\"><b>webhook to publish</b> ");
			duration(p, (long long)json_integer_value(wt));
			raw(p, "</div>\n");
		}
		(void)am_fmt(tags, sizeof(tags), "%lld",
		    (long long)json_integer_value(json_object_get(o, "tags_pushed")));
		field(p, "extra tags written", tags);
		signature(p, json_object_get(o, "signature"));
		field(p, "rule", str(o, "rule"));
		field(p, "detail", str(o, "detail"));
		raw(p, "</div>\n");
	}
	raw(p, "</section>\n");
}

static void
failures_section(struct page *p, const json_t *a)
{
	size_t i;
	const json_t *o;

	mark(p);
	raw(p, "<section id=\"failures\"><h2>Refusals and failures</h2>\n");
	if (json_array_size(a) == 0)
		raw(p, "<p class=\"none\">No refusal or failure since the start.</p>\n");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		o = json_array_get(a, i);
		item_open(p, strcmp(str(o, "outcome"), "refused") == 0 ? "ref" : "fail", o);
		raw(p, "<div class=\"kv\"><b>");
		esc(p, str(o, "outcome"));
		raw(p, "</b> <span class=\"reason\">");
		esc(p, str(o, "error"));
		raw(p, "</span></div>\n");
		field(p, "time", str(o, "time"));
		field(p, "group", str(o, "group"));
		field(p, "rule", str(o, "rule"));
		arch_list(p, "read", json_object_get(o, "present"));
		raw(p, "</div>\n");
	}
	raw(p, "</section>\n");
}

/* Background registry checks, when the status document carries them. */
static const char *
first_str(const json_t *o, const char *a, const char *b, const char *c)
{
	const char *v = str(o, a);

	if (v[0] == '\0')
		v = str(o, b);
	if (v[0] == '\0' && c != NULL)
		v = str(o, c);
	return v;
}

static void
yes_no(struct page *p, const char *label, const json_t *v)
{
	if (!json_is_boolean(v))
		return;
	raw(p, "<span class=\"");
	raw(p, json_is_true(v) ? "ok" : "bad");
	raw(p, "\">");
	raw(p, label);
	raw(p, json_is_true(v) ? " yes" : " no");
	raw(p, "</span> ");
}

static void
registries_section(struct page *p, const json_t *a)
{
	size_t i;
	const json_t *o, *cred;

	if (!json_is_array(a))
		return;
	mark(p);
	raw(p, "<section id=\"registries\"><h2>Registries</h2>\n");
	for (i = 0; i < json_array_size(a) && i < MAX_ITEMS; i++) {
		o = json_array_get(a, i);
		mark(p);
		raw(p, "<div class=\"item reg\"><div class=\"target\">");
		esc(p, first_str(o, "host", "name", "url"));
		raw(p, "</div><div class=\"kv\">");
		yes_no(p, "reachable", json_object_get(o, "reachable"));
		cred = json_object_get(o, "credentials");
		yes_no(p, "credentials accepted", json_is_boolean(cred) ? cred :
		    json_object_get(o, "credentials_ok"));
		raw(p, "</div>\n");
		field(p, "last error", first_str(o, "last_error", "error", NULL));
		field(p, "checked", first_str(o, "checked", "last_check", "time"));
		raw(p, "</div>\n");
	}
	raw(p, "</section>\n");
}

/* The change feed: shown when it runs; missed webhooks stand out with what to check. */
static void
feed_section(struct page *p, const json_t *f)
{
	const json_t *m, *recent = json_object_get(f, "recent_missed");
	char line[512];
	const char *repo, *tag, *when;
	size_t i;

	if (!json_is_true(json_object_get(f, "enabled")))
		return;
	mark(p);
	raw(p, "<section id=\"feed\"><h2>Change feed</h2>\n<div class=\"item");
	raw(p, json_integer_value(json_object_get(f, "missed_webhooks")) > 0 ? " fail" : "");
	raw(p, "\"><div class=\"kv\"><b>passes</b> ");
	num(p, json_object_get(f, "passes"));
	raw(p, " <b>queued</b> ");
	num(p, json_object_get(f, "queued"));
	raw(p, " <b>missed webhooks</b> ");
	num(p, json_object_get(f, "missed_webhooks"));
	raw(p, "</div>\n");
	field(p, "last pass", json_string_value(json_object_get(f, "last_pass")));
	field(p, "last error", json_string_value(json_object_get(f, "last_error")));
	field(p, "what to check", json_string_value(json_object_get(f, "hint")));
	for (i = 0; i < json_array_size(recent) && i < MAX_ITEMS; i++) {
		m = json_array_get(recent, i);
		repo = json_string_value(json_object_get(m, "repository"));
		tag = json_string_value(json_object_get(m, "tag"));
		when = json_string_value(json_object_get(m, "push_time"));
		(void)am_fmt(line, sizeof(line), "%s:%s (pushed %s)", repo ? repo : "?", tag ? tag : "?",
		    when ? when : "?");
		field(p, "missed", line);
	}
	raw(p, "</div>\n</section>\n");
}

/* ---- the page ---- */

static const char STYLE[] =
    "<style>\n"
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:0 .8em 2em;max-width:62em;"
    "color:#1b1f24;background:#f6f7f9}\n"
    "h1{font-size:1.3em;margin:.6em 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .4em;"
    "border-bottom:2px solid #d0d5dc}\n"
    ".meta span{display:inline-block;margin-right:1.2em}\n"
    ".item{background:#fff;border:1px solid #d0d5dc;border-left:5px solid #8a94a3;"
    "border-radius:4px;padding:.4em .7em;margin:.5em 0;overflow-wrap:anywhere}\n"
    ".wait{border-left-color:#d99a00}.pub{border-left-color:#2f8f46}"
    ".ref,.fail{border-left-color:#c62828}\n"
    ".target{font-weight:600;font-family:ui-monospace,monospace}\n"
    ".kv{margin:.15em 0}.kv b{color:#55606e;font-weight:600;margin-right:.3em}\n"
    "code{font:.85em ui-monospace,monospace;word-break:break-all}\n"
    "ul.archs{margin:.1em 0 .1em 1.2em;padding:0}.arch{font-weight:600}\n"
    ".plat{color:#2d5b9a}.src{color:#55606e}\n"
    ".miss{background:#fff1c9;border:1px solid #d99a00;border-radius:3px;padding:0 .3em}\n"
    ".reason{white-space:pre-wrap;color:#8e1b1b}li.rej,li.rej b{color:#8e1b1b}\n"
    ".ok{color:#2f8f46}.bad{color:#c62828;font-weight:600}.none{color:#55606e}\n"
    "#filter{width:100%;max-width:28em;padding:.3em;font:inherit;box-sizing:border-box}\n"
    ".hidden{display:none}.cut{background:#ffe0e0;padding:.5em}\n"
    "</style>\n";

/*
 * The filter survives the refresh in sessionStorage; "#q=text" in the address
 * sets it (a link to a filtered page). Values go in through .value only.
 */
static const char SCRIPT[] =
    "<script>\n"
    "(function(){var f=document.getElementById('filter');if(!f)return;\n"
    "function apply(){var q=f.value.toLowerCase();"
    "document.querySelectorAll('.item[data-key]').forEach(function(e){"
    "e.classList.toggle('hidden',q!==''&&e.getAttribute('data-key').toLowerCase().indexOf(q)<0);});}\n"
    "var m=/^#q=(.*)$/.exec(location.hash);\n"
    "try{f.value=m?decodeURIComponent(m[1]):(sessionStorage.getItem('archmerge-filter')||'');}catch(e){}\n"
    "f.addEventListener('input',function(){try{sessionStorage.setItem('archmerge-filter',f.value);}"
    "catch(e){}apply();});apply();})();\n"
    "</script>\n";

/* "'sha256-<base64>'" of the text between a tag's opening and closing: what a CSP hash source names. */
static int
hash_source(const char *element, const char *open, const char *close, char *out, size_t outlen)
{
	const char *start = strstr(element, open), *end;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

	if (start == NULL || (end = strstr(start += strlen(open), close)) == NULL ||
	    EVP_Digest(start, (size_t)(end - start), md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	(void)EVP_EncodeBlock(b64, md, (int)mdlen);
	return am_fmt(out, outlen, "'sha256-%s'", (const char *)b64);
}

int
ui_csp(char *buf, size_t len)
{
	char style[80], script[80];

	if (hash_source(STYLE, "<style>", "</style>", style, sizeof(style)) != 0 ||
	    hash_source(SCRIPT, "<script>", "</script>", script, sizeof(script)) != 0)
		return -1;
	return am_fmt(buf, len, "default-src 'none'; style-src %s; script-src %s; img-src 'self'; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'", style, script);
}

static void
head(struct page *p, const struct ui_opts *o)
{
	char buf[64];

	raw(p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
	if (o->refresh_s > 0) {
		(void)am_fmt(buf, sizeof(buf), "<meta http-equiv=\"refresh\" content=\"%d\">\n",
		    o->refresh_s);
		raw(p, buf);
	}
	raw(p, "<title>archmerge status</title>\n");
	raw(p, STYLE);
	raw(p, "</head><body>\n");
}

static void
summary(struct page *p, const json_t *st, const struct ui_opts *o)
{
	const json_t *up = json_object_get(st, "uptime_seconds");

	raw(p, "<h1>archmerge</h1>\n<div class=\"meta\"><span>version <b>");
	esc(p, str(st, "version"));
	raw(p, "</b></span><span>up <b>");
	if (json_is_integer(up))
		duration(p, (long long)json_integer_value(up) * 1000);
	else
		raw(p, "-");
	raw(p, "</b></span><span>queue depth <b id=\"queue-depth\">");
	num(p, json_object_get(st, "queue_depth"));
	raw(p, "</b></span><span>journal pending <b id=\"journal-pending\">");
	num(p, json_object_get(st, "journal_pending"));
	raw(p, "</b></span><span><a href=\"");
	esc(p, o->json_href);
	raw(p, "\">as JSON</a></span></div>\n");
	raw(p, "<p><input id=\"filter\" type=\"search\" placeholder=\"filter by repository or tag\" "
	    "aria-label=\"filter by repository or tag\"></p>\n");
}

char *
ui_render(const json_t *st, const struct ui_opts *o, size_t *len)
{
	struct ui_opts d = { "/status", UI_REFRESH_S, UI_MAX_BYTES };
	struct page p;

	if (o == NULL)
		o = &d;
	memset(&p, 0, sizeof(p));
	p.max = (o->max_bytes == 0 ? UI_MAX_BYTES : o->max_bytes < MIN_BYTES ? MIN_BYTES :
	    o->max_bytes) - TAIL_RESERVE;
	p.cap = 16384;
	p.b = xmalloc(p.cap);
	p.b[0] = '\0';
	head(&p, o);
	summary(&p, st, o);
	waiting_section(&p, json_object_get(st, "waiting"));
	published_section(&p, json_object_get(st, "published"));
	failures_section(&p, json_object_get(st, "failures"));
	registries_section(&p, json_object_get(st, "registries"));
	feed_section(&p, json_object_get(st, "feed"));
	/* The tail always fits: the reserve is released for it. */
	p.max += TAIL_RESERVE;
	if (p.full) {
		p.full = 0;
		p.len = p.mark;       /* drop the half-written item */
		p.b[p.len] = '\0';
		raw(&p, "\n<p class=\"cut\">This page was cut at its size limit: the JSON has everything.</p>\n");
	}
	raw(&p, SCRIPT);
	raw(&p, "</body></html>\n");
	if (len != NULL)
		*len = p.len;
	return p.b;
}
