/*
 * An in-memory registry behind struct reg_api for unit tests: manifests and
 * blobs by (repository, reference), request counters, cross-repository
 * mounts and copies, Harbor tag removal. Like distribution, a manifest PUT
 * needs its children and config in the same repository. Header-only: each
 * test includes it once.
 */
#ifndef AM_TEST_FAKE_REGISTRY_H
#define AM_TEST_FAKE_REGISTRY_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/plan.h"
#include "registry/assemble/api.h"
#include "registry/assemble/assemble.h"
#include "registry/oci/manifest.h"

struct obj {
	char repo[96], ref[80], media_type[96];
	char *body;
	size_t len;
};

struct fake {
	struct obj objs[256];
	size_t n;
	int gets, heads, puts, blob_gets, mounts, copies, deletes, tag_lists;
	int refuse_mounts;                /* answer 202 to every mount */
	enum am_err fail_put;             /* AM_OK, or what every manifest PUT fails with */
	long put_retry_after_ms;          /* Retry-After the failing PUT carries (> 0: a 429) */
	char deleted[8][256];             /* "repo ref tag" of tag_delete calls */
	char put_refs[32][128];           /* "repo:ref" of manifest PUTs */
	int get_delay_us;                 /* each manifest GET and HEAD takes this long (overlap tests) */
	int inflight, max_inflight;       /* manifest GETs and HEADs under way at once */
	int head_inflight, head_max_inflight;   /* manifest HEADs alone */
	void (*after_list)(void *arg);    /* once, after the next tag list answered (a run racing it) */
	void *after_list_arg;
	char refused[4][192];             /* "repo:ref" whose GET and HEAD the policy refuses (412) */
	char refused_msg[320];            /* ... with these words (GET only; a HEAD has no body) */
};

/* Harbor's project policy: 412 PROJECTPOLICYVIOLATION for a refused repo:ref, as the client reports it. */
static enum am_err
fake_policy(struct fake *f, const char *repo, const char *ref, int get, struct reg_reply *out,
    char *err, size_t errlen)
{
	char key[192];
	size_t i;

	(void)am_fmt(key, sizeof(key), "%s:%s", repo, ref);
	for (i = 0; i < sizeof(f->refused) / sizeof(f->refused[0]); i++)
		if (f->refused[i][0] != '\0' && strcmp(f->refused[i], key) == 0)
			break;
	if (i == sizeof(f->refused) / sizeof(f->refused[0]))
		return AM_OK;
	if (out != NULL) {
		reg_reply_clear(out);
		out->status = 412;
		if (get) {
			(void)am_fmt(out->error_code, sizeof(out->error_code), "PROJECTPOLICYVIOLATION");
			(void)am_fmt(out->error_message, sizeof(out->error_message), "%s", f->refused_msg);
		}
	}
	return am_fail(err, errlen, AM_EPOLICY, "%s /v2/%s/manifests/%s: 412 PROJECTPOLICYVIOLATION",
	    get ? "GET" : "HEAD", repo, ref);
}

/* The assembly reads from several threads at once: counters under one lock. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

static void
fake_count(int *counter, int delta)
{
	pthread_mutex_lock(&fake_lock);
	*counter += delta;
	pthread_mutex_unlock(&fake_lock);
}

static struct obj *
find(struct fake *f, const char *repo, const char *ref)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->objs[i].repo, repo) == 0 && strcmp(f->objs[i].ref, ref) == 0)
			return &f->objs[i];
	return NULL;
}

static void
store(struct fake *f, const char *repo, const char *ref, const char *mt, const char *body, size_t len)
{
	struct obj *o = find(f, repo, ref);

	if (o == NULL) {
		if (f->n >= sizeof(f->objs) / sizeof(f->objs[0]))
			abort();
		o = &f->objs[f->n++];
	} else {
		free(o->body);
	}
	(void)am_fmt(o->repo, sizeof(o->repo), "%s", repo);
	(void)am_fmt(o->ref, sizeof(o->ref), "%s", ref);
	(void)am_fmt(o->media_type, sizeof(o->media_type), "%s", mt);
	o->body = xstrndup(body, len);
	o->len = len;
}

static void
drop(struct fake *f, const char *repo, const char *ref)
{
	struct obj *o = find(f, repo, ref);

	if (o != NULL) {
		free(o->body);
		*o = f->objs[--f->n];
	}
}

static enum am_err
fill(struct obj *o, struct reg_reply *out, int with_body)
{
	if (o == NULL) {
		out->status = 404;
		return AM_ENOTFOUND;
	}
	out->status = 200;
	(void)am_fmt(out->media_type, sizeof(out->media_type), "%s", o->media_type);
	digest_sha256(o->body, o->len, out->digest, sizeof(out->digest));
	out->length = (long long)o->len;
	if (with_body) {
		out->body = xstrndup(o->body, o->len);
		out->body_len = o->len;
	}
	return AM_OK;
}

static enum am_err
f_get(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct fake *f = ctx;
	enum am_err prc;
	fake_count(&f->gets, 1);
	if ((prc = fake_policy(f, repo, ref, 1, out, err, errlen)) != AM_OK)
		return prc;
	if (f->get_delay_us > 0) {
		pthread_mutex_lock(&fake_lock);
		if (++f->inflight > f->max_inflight)
			f->max_inflight = f->inflight;
		pthread_mutex_unlock(&fake_lock);
		usleep((useconds_t)f->get_delay_us);
		fake_count(&f->inflight, -1);
	}
	reg_reply_clear(out);
	return fill(find(f, repo, ref), out, 1);
}

static enum am_err
f_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct fake *f = ctx;
	enum am_err prc;
	fake_count(&f->heads, 1);
	if ((prc = fake_policy(f, repo, ref, 0, out, err, errlen)) != AM_OK)
		return prc;
	if (f->get_delay_us > 0) {
		pthread_mutex_lock(&fake_lock);
		if (++f->inflight > f->max_inflight)
			f->max_inflight = f->inflight;
		if (++f->head_inflight > f->head_max_inflight)
			f->head_max_inflight = f->head_inflight;
		pthread_mutex_unlock(&fake_lock);
		usleep((useconds_t)f->get_delay_us);
		fake_count(&f->inflight, -1);
		fake_count(&f->head_inflight, -1);
	}
	reg_reply_clear(out);
	return fill(find(f, repo, ref), out, 0);
}

static enum am_err
f_put(void *ctx, const char *repo, const char *ref, const char *mt, const char *body, size_t len,
    struct reg_reply *out, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct manifest m;
	char d[80], perr[128];
	size_t i;

	if (f->fail_put != AM_OK) {
		f->puts++;
		out->status = f->put_retry_after_ms > 0 ? 429 : 400;
		out->retry_after_ms = f->put_retry_after_ms > 0 ? f->put_retry_after_ms : -1;
		return am_fail(err, errlen, f->fail_put, "PUT refused");
	}

	/* Like distribution: every child of an index, and every blob, must be in this repository. */
	if (manifest_parse(body, len, mt, &m, perr, sizeof(perr)) != AM_OK)
		return am_fail(err, errlen, AM_EDENIED, "PUT %s: %s", ref, perr);
	for (i = 0; i < m.n_children; i++)
		if (find(f, repo, m.children[i].digest) == NULL) {
			manifest_free(&m);
			return am_fail(err, errlen, AM_EDENIED, "MANIFEST_BLOB_UNKNOWN %s", m.children[i].digest);
		}
	if (m.kind == MANIFEST_IMAGE && find(f, repo, m.config.digest) == NULL) {
		manifest_free(&m);
		return am_fail(err, errlen, AM_EDENIED, "BLOB_UNKNOWN config");
	}
	manifest_free(&m);
	if (f->puts < 32)
		(void)am_fmt(f->put_refs[f->puts], sizeof(f->put_refs[0]), "%s:%s", repo, ref);
	f->puts++;
	store(f, repo, ref, mt, body, len);
	digest_sha256(body, len, d, sizeof(d));
	store(f, repo, d, mt, body, len);
	(void)am_fmt(out->digest, sizeof(out->digest), "%s", d);
	return AM_OK;
}

static enum am_err
f_blob(void *ctx, const char *repo, const char *digest, size_t max, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct fake *f = ctx;
	(void)max; (void)err; (void)errlen;
	fake_count(&f->blob_gets, 1);
	reg_reply_clear(out);
	return fill(find(f, repo, digest), out, 1);
}

static enum am_err
f_mount(void *ctx, const char *dst, const char *src, const char *digest, int *mounted,
    char *location, size_t loclen, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct obj *o = find(f, src, digest);
	(void)err; (void)errlen;
	f->mounts++;
	*mounted = 0;
	if (o == NULL || f->refuse_mounts) {
		(void)am_fmt(location, loclen, "/v2/%s/blobs/uploads/1234", dst);
		return AM_OK;
	}
	store(f, dst, digest, o->media_type, o->body, o->len);
	*mounted = 1;
	return AM_OK;
}

static enum am_err
f_copy(void *ctx, const char *dst, const char *src, const char *digest, long long size,
    const char *location, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct obj *o = find(f, src, digest);

	f->copies++;
	if (o == NULL || (long long)o->len != size || location == NULL || strstr(location, dst) == NULL)
		return am_fail(err, errlen, AM_EDENIED, "copy %s failed", digest);
	store(f, dst, digest, o->media_type, o->body, o->len);
	return AM_OK;
}

/* tags/list: every reference of repo that is not a digest, in store order. */
static enum am_err
f_tags(void *ctx, const char *repo, int (*cb)(void *cbctx, const char *tag), void *cbctx,
    char *err, size_t errlen)
{
	struct fake *f = ctx;
	void (*after)(void *) = f->after_list;
	size_t i;

	(void)err; (void)errlen;
	f->tag_lists++;
	for (i = 0; i < f->n; i++)
		if (strcmp(f->objs[i].repo, repo) == 0 && strchr(f->objs[i].ref, ':') == NULL &&
		    cb(cbctx, f->objs[i].ref) != 0)
			break;
	if (after != NULL) {
		f->after_list = NULL;
		after(f->after_list_arg);
	}
	return AM_OK;
}

static enum am_err
f_tag_delete(void *h, const char *repo, const char *reference, const char *tag, char *err, size_t errlen)
{
	struct fake *f = h;
	struct obj *o = find(f, repo, tag);
	char d[80];

	(void)err; (void)errlen;
	if (f->deletes < 8)
		(void)am_fmt(f->deleted[f->deletes], sizeof(f->deleted[0]), "%s %s %s", repo, reference, tag);
	f->deletes++;
	if (o == NULL)
		return AM_ENOTFOUND;
	digest_sha256(o->body, o->len, d, sizeof(d));
	if (strcmp(d, reference) != 0)
		return AM_ENOTFOUND;   /* the tag moved to other content meanwhile: left alone */
	drop(f, repo, tag);
	return AM_OK;
}

static void
fake_api(struct fake *f, struct reg_api *api)
{
	memset(f, 0, sizeof(*f));
	memset(api, 0, sizeof(*api));
	api->ctx = f;
	api->manifest_get = f_get;
	api->manifest_head = f_head;
	api->manifest_put = f_put;
	api->blob_get = f_blob;
	api->blob_mount = f_mount;
	api->blob_copy = f_copy;
	api->tags_list = f_tags;
	api->harbor = f;
	api->tag_delete = f_tag_delete;
}

static void
fake_free(struct fake *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->objs[i].body);
	f->n = 0;
}

/* The service's path: the rule's plan for (repo, version), then the assembly. */
static void
assemble_rule_as(const struct reg_api *api, const struct rule *r, const char *repo,
    const char *version, int dry_run, int replicas, struct asm_result *out)
{
	struct plan p;

	rule_plan(r, repo, version, &p);
	p.recheck_sources = replicas > 1;     /* 1: server.single_writer = true; above: the re-check (the default) */
	assemble(api, &p, dry_run, out);
	plan_clear(&p);
}

/* A declared single writer (server.single_writer = true): no re-check. */
static inline void
assemble_rule(const struct reg_api *api, const struct rule *r, const char *repo, const char *version,
    int dry_run, struct asm_result *out)
{
	assemble_rule_as(api, r, repo, version, dry_run, 1, out);
}

#endif
