/*
 * Unit tests: the Retry-After note is a field of the run (registry/assemble/
 * assemble.c, struct job_run). Two runs on two threads at once, each against
 * a registry answering its PUT with its own Retry-After, each report their
 * own; many threads noting into one run keep the longest, and into another
 * run nothing of it.
 */
#include "tests/unit/harness.h"

#include <pthread.h>

#include "registry/assemble/job.h"
#include "tests/unit/fake_registry.h"

#define ROUNDS 20
#define NOTERS 8
#define NOTES 2000

/* An image for arch under repo:tag (config blob + manifest, also by digest). */
static void
push_image(struct fake *f, const char *repo, const char *tag, const char *arch)
{
	char config[256], cd[80], manifest[512], md[80];

	(void)am_fmt(config, sizeof(config),
	    "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    arch);
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest),
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
	    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
	    MT_OCI_MANIFEST, cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), md, sizeof(md));
	store(f, repo, tag, MT_OCI_MANIFEST, manifest, strlen(manifest));
	store(f, repo, md, MT_OCI_MANIFEST, manifest, strlen(manifest));
}

/* library/app:1.0 from 1.0-amd64 and 1.0-arm64. */
static void
make_plan(struct plan *p, struct plan_arch *archs)
{
	static const char *const names[2] = { "amd64", "arm64" };
	char err[128];
	size_t i;

	memset(p, 0, sizeof(*p));
	memset(archs, 0, 2 * sizeof(*archs));
	(void)am_fmt(p->repo, sizeof(p->repo), "library/app");
	(void)am_fmt(p->version, sizeof(p->version), "1.0");
	(void)am_fmt(p->target_tag, sizeof(p->target_tag), "1.0");
	for (i = 0; i < 2; i++) {
		(void)am_fmt(archs[i].name, sizeof(archs[i].name), "%s", names[i]);
		CHECK(platform_parse(i == 0 ? "linux/amd64" : "linux/arm64", &archs[i].platform, err,
		    sizeof(err)) == AM_OK);
		(void)am_fmt(archs[i].src_repo, sizeof(archs[i].src_repo), "library/app");
		(void)am_fmt(archs[i].src_tag, sizeof(archs[i].src_tag), "1.0-%s", names[i]);
	}
	p->archs = archs;
	p->n_archs = 2;
	p->format = INDEX_AUTO;
}

struct worker {
	struct fake f;
	struct reg_api api;
	struct plan p;
	struct plan_arch archs[2];
	pthread_barrier_t *start;
	struct asm_result res;
};

static void *
run_one(void *ud)
{
	struct worker *w = ud;

	pthread_barrier_wait(w->start);
	assemble(&w->api, &w->p, 0, &w->res);
	return NULL;
}

/* Two runs at once, 3 s and 7 s: each reports its own, whatever the interleaving. */
static void
test_two_runs_at_once(void)
{
	static struct worker w[2];
	static const long after[2] = { 3000, 7000 };
	pthread_barrier_t start;
	pthread_t th[2];
	int round, i, own = 1, failed = 1, overlapped = 0;

	for (i = 0; i < 2; i++) {
		fake_api(&w[i].f, &w[i].api);
		push_image(&w[i].f, "library/app", "1.0-amd64", "amd64");
		push_image(&w[i].f, "library/app", "1.0-arm64", "arm64");
		w[i].f.fail_put = AM_ETRANSIENT;
		w[i].f.put_retry_after_ms = after[i];
		w[i].f.get_delay_us = 2000;       /* the reads take a while: the runs overlap */
		make_plan(&w[i].p, w[i].archs);
		w[i].start = &start;
	}
	for (round = 0; round < ROUNDS; round++) {
		pthread_barrier_init(&start, NULL, 2);
		for (i = 0; i < 2; i++)
			CHECK(pthread_create(&th[i], NULL, run_one, &w[i]) == 0);
		for (i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
		for (i = 0; i < 2; i++) {
			failed &= w[i].res.outcome == ASM_FAILED && w[i].res.err == AM_ETRANSIENT;
			if (w[i].res.retry_after_ms != after[i]) {
				own = 0;
				fprintf(stderr, "round %d run %d: Retry-After %ld ms, its registry said %ld\n",
				    round, i, w[i].res.retry_after_ms, after[i]);
			}
			asm_result_clear(&w[i].res);
		}
	}
	/* Both fakes had reads under way at once at some point (one lock counts both). */
	overlapped = w[0].f.max_inflight >= 2 && w[1].f.max_inflight >= 2;
	CHECK(failed);
	CHECK(own);
	CHECK(overlapped);
	for (i = 0; i < 2; i++)
		fake_free(&w[i].f);
}

struct noter {
	struct job_run *run;
	long base;
};

static void *
note_many(void *ud)
{
	struct noter *n = ud;
	struct reg_reply r;
	int i;

	reg_reply_init(&r);
	for (i = 0; i < NOTES; i++) {
		r.retry_after_ms = n->base + (i * 7919L) % NOTES;
		job_run_note(n->run, &r);
	}
	return NULL;
}

/* Many threads note into two runs at once: each run keeps the longest of its own. */
static void
test_note_is_per_run(void)
{
	struct reg_api inner;
	struct fake f;
	struct job_run a, b;
	struct noter n[NOTERS];
	pthread_t th[NOTERS];
	struct reg_reply none;
	int i;

	fake_api(&f, &inner);
	job_run_init(&a, &inner);
	job_run_init(&b, &inner);
	CHECK(atomic_load(&a.retry_after_ms) == -1);
	CHECK(a.api.ctx == &a && b.api.ctx == &b);
	CHECK(a.api.harbor == inner.harbor && a.api.tag_delete == inner.tag_delete);
	CHECK(a.api.blob_put == NULL);             /* absent verbs stay absent */
	for (i = 0; i < NOTERS; i++) {
		n[i].run = i % 2 == 0 ? &a : &b;
		n[i].base = i % 2 == 0 ? 10000L * (i + 1) : 100L * (i + 1);
		CHECK(pthread_create(&th[i], NULL, note_many, &n[i]) == 0);
	}
	for (i = 0; i < NOTERS; i++)
		pthread_join(th[i], NULL);
	/* a: bases 10000, 30000, 50000, 70000; b: 200, 400, 600, 800; each + up to NOTES-1. */
	CHECK(atomic_load(&a.retry_after_ms) == 70000L + NOTES - 1);
	CHECK(atomic_load(&b.retry_after_ms) == 800L + NOTES - 1);
	/* A reply without Retry-After (-1) or none at all changes nothing. */
	reg_reply_init(&none);
	job_run_note(&b, &none);
	job_run_note(&b, NULL);
	CHECK(atomic_load(&b.retry_after_ms) == 800L + NOTES - 1);
	fake_free(&f);
}

static void
run_tests(void)
{
	test_two_runs_at_once();
	test_note_is_per_run();
}

TEST_MAIN("retry_after")
