/*
 * The CloudEvents document of one outcome, built with Jansson, and its
 * signature. data carries what a deploy tool needs to act on the index
 * without asking the registry again.
 */
#include "server/outbox/cloudevent.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "config/config.h"

unsigned
cloudevent_kind(const struct asm_result *r)
{
	switch (r->outcome) {
	case ASM_PUBLISHED: return NOTIFY_PUBLISHED;
	case ASM_REFUSED: return NOTIFY_REFUSED;
	case ASM_UNCHANGED: return NOTIFY_UNCHANGED;
	/* Waiting on a child the registry's policy will not let be read yet. */
	case ASM_WAITING: return r->n_blocked > 0 ? NOTIFY_BLOCKED : 0;
	default: return 0;
	}
}

const char *
cloudevent_kind_name(unsigned kind)
{
	switch (kind) {
	case NOTIFY_PUBLISHED: return "published";
	case NOTIFY_REFUSED: return "refused";
	case NOTIFY_BLOCKED: return "blocked";
	case NOTIFY_UNCHANGED: return "unchanged";
	default: return NULL;
	}
}

/* "repo:tag" split at its last colon (a repository never holds one). */
static void
split_ref(const char *ref, char *repo, size_t rlen, char *tag, size_t tlen)
{
	const char *c = strrchr(ref, ':');

	repo[0] = tag[0] = '\0';
	if (c == NULL) {
		(void)am_fmt(repo, rlen, "%s", ref);
		return;
	}
	(void)am_fmt(repo, rlen, "%.*s", (int)(c - ref), ref);
	(void)am_fmt(tag, tlen, "%s", c + 1);
}

static json_t *
children(const struct asm_result *r)
{
	json_t *a = json_array(), *o;
	char repo[NAME_MAX_REPO], tag[NAME_MAX_TAG];
	size_t i;

	for (i = 0; i < r->n_present; i++) {
		const struct asm_present *p = &r->present[i];
		split_ref(p->source, repo, sizeof(repo), tag, sizeof(tag));
		o = json_pack("{s:s, s:s, s:s}", "architecture", p->arch, "platform", p->platform,
		    "digest", p->digest);
		/* "" when the child was taken back from the published index */
		json_object_set_new(o, "source_repository", json_string(repo));
		json_object_set_new(o, "source_tag", json_string(tag));
		if (p->rejected)
			json_object_set_new(o, "rejected", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

char *
cloudevent_build(const struct ce_input *in)
{
	const struct asm_result *r = in->res;
	char repo[NAME_MAX_REPO], tag[NAME_MAX_TAG], type[64], source[NAME_MAX_REPO + 300];
	json_t *ev, *data, *tags = json_array();
	char *out;
	size_t i;

	split_ref(r->target, repo, sizeof(repo), tag, sizeof(tag));
	(void)am_fmt(type, sizeof(type), "io.archmerge.index.%s", cloudevent_kind_name(in->kind));
	(void)am_fmt(source, sizeof(source), "//%s/%s", in->registry, repo);
	for (i = 0; in->tags != NULL && i < in->n_tags; i++)
		json_array_append_new(tags, json_string(in->tags[i]));
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}",
	    "outcome", cloudevent_kind_name(in->kind), "registry", in->registry, "repository", repo,
	    "tag", tag, "version", in->version, "rule", in->rule, "children", children(r), "tags", tags);
	if (r->digest[0] != '\0')
		json_object_set_new(data, "digest", json_string(r->digest));
	if (r->doc.media_type[0] != '\0')
		json_object_set_new(data, "media_type", json_string(r->doc.media_type));
	if (r->detail[0] != '\0')
		json_object_set_new(data, "detail", json_string(r->detail));
	if (in->since_first_ms >= 0)
		json_object_set_new(data, "since_first_webhook_ms", json_integer(in->since_first_ms));
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", in->id,
	    "source", source, "type", type, "subject", tag, "time", in->time,
	    "datacontenttype", "application/json", "data", data);
	out = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(ev);
	if (out == NULL)
		abort();   /* only on out of memory: the house aborts then (xmalloc) */
	return out;
}

void
cloudevent_sign(const char *key, size_t key_len, const char *body, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)body, len, md, &mdlen) == NULL)
		mdlen = 0;
	memcpy(out, "sha256=", 7);
	for (i = 0; i < mdlen && i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 2 * i] = '\0';
}

void
cloudevent_new_id(char *out, size_t len)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		abort();   /* no randomness: OpenSSL cannot sign or connect either */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	(void)am_fmt(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
}

void
cloudevent_now(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	(void)am_fmt(out, len, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}
