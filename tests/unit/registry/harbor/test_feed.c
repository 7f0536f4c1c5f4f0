/*
 * The change feed's page parsers, on pages shaped like Harbor's answers
 * (api/v2.0/swagger.yaml: Repository.update_time, Artifact.push_time,
 * Artifact.digest, Artifact.tags[].name).
 */
#include "tests/unit/harness.h"
#include "registry/harbor/feed.h"

#include <limits.h>

static void
test_time(void)
{
	CHECK(harbor_time_ms("1970-01-01T00:00:00Z") == 0);
	CHECK(harbor_time_ms("2026-01-01T00:00:00.000Z") == 1767225600000LL);
	CHECK(harbor_time_ms("2026-01-01T00:00:00.5Z") == 1767225600500LL);
	CHECK(harbor_time_ms("2026-01-01T00:00:00.123456Z") == 1767225600123LL);
	CHECK(harbor_time_ms("2026-01-01T02:00:00+02:00") == 1767225600000LL);
	CHECK(harbor_time_ms("2025-12-31T23:00:00.250-01:00") == 1767225600250LL);
	CHECK(harbor_time_ms("2026-01-01 00:00:00Z") == 1767225600000LL);
	CHECK(harbor_time_ms(NULL) == -1);
	CHECK(harbor_time_ms("") == -1);
	CHECK(harbor_time_ms("2026-01-01T00:00:00") == -1);       /* no zone */
	CHECK(harbor_time_ms("2026-13-01T00:00:00Z") == -1);
	CHECK(harbor_time_ms("2026-01-01T00:00:00Zjunk") == -1);
	CHECK(harbor_time_ms("20x6-01-01T00:00:00Z") == -1);
}

static void
test_repos(void)
{
	struct harbor_repo r[2];
	char err[256];
	json_t *page = json_loads("[{\"id\":3,\"project_id\":1,\"name\":\"library/app\",\"artifact_count\":4,"
	    "\"pull_count\":0,\"creation_time\":\"2026-01-01T00:00:00.000Z\",\"update_time\":\"2026-01-01T00:00:02.000Z\"},"
	    "{\"id\":2,\"name\":\"library/team/tool\",\"update_time\":\"2026-01-01T00:00:01.000Z\"},"
	    "{\"id\":1,\"name\":\"library/old\",\"update_time\":\"2025-01-01T00:00:00Z\"}]", 0, NULL);

	CHECK(harbor_repos_parse(page, r, 2, err, sizeof(err)) == 3);   /* the count, beyond max too */
	CHECK_STR(r[0].name, "library/app");
	CHECK(r[0].update_ms == 1767225602000LL);
	CHECK_STR(r[1].name, "library/team/tool");
	json_decref(page);

	page = json_loads("[]", 0, NULL);
	CHECK(harbor_repos_parse(page, r, 2, err, sizeof(err)) == 0);
	json_decref(page);
	page = json_loads("{\"errors\":[]}", 0, NULL);
	CHECK(harbor_repos_parse(page, r, 2, err, sizeof(err)) == -1);
	json_decref(page);
	page = json_loads("[{\"name\":\"library/app\"}]", 0, NULL);     /* no update_time */
	CHECK(harbor_repos_parse(page, r, 2, err, sizeof(err)) == -1);
	json_decref(page);
	page = json_loads("[{\"name\":\"Library/App\",\"update_time\":\"2026-01-01T00:00:00Z\"}]", 0, NULL);
	CHECK(harbor_repos_parse(page, r, 2, err, sizeof(err)) == -1);
	json_decref(page);
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void
test_artifacts(void)
{
	struct harbor_tagged t[3];
	long long oldest;
	size_t n;
	char err[256];
	json_t *page = json_loads("[{\"id\":9,\"type\":\"IMAGE\",\"digest\":\"" D1 "\","
	    "\"push_time\":\"2026-01-01T00:00:03.000Z\",\"pull_time\":\"0001-01-01T00:00:00.000Z\","
	    "\"tags\":[{\"id\":1,\"name\":\"1.0-amd64\",\"push_time\":\"2026-01-01T00:00:03.000Z\",\"immutable\":false},"
	    "{\"id\":2,\"name\":\"latest\"}]},"
	    "{\"id\":8,\"digest\":\"" D2 "\",\"push_time\":\"2026-01-01T00:00:01.000Z\",\"tags\":null},"
	    "{\"id\":7,\"digest\":\"" D2 "\",\"push_time\":\"2026-01-01T00:00:02.000Z\","
	    "\"tags\":[{\"name\":\"1.0-arm64\"},{\"name\":\"bad tag\"}]}]", 0, NULL);

	CHECK(harbor_artifacts_parse(page, t, 3, &n, &oldest, err, sizeof(err)) == 3);
	CHECK(n == 3);
	CHECK_STR(t[0].tag, "1.0-amd64");
	CHECK_STR(t[0].digest, D1);
	CHECK(t[0].push_ms == 1767225603000LL);
	CHECK_STR(t[1].tag, "latest");
	CHECK_STR(t[2].tag, "1.0-arm64");            /* the untagged artifact gives none; "bad tag" is skipped */
	CHECK(t[2].push_ms == 1767225602000LL);
	CHECK(oldest == 1767225601000LL);
	/* max bounds what is kept, not what is counted */
	CHECK(harbor_artifacts_parse(page, t, 1, &n, &oldest, err, sizeof(err)) == 3);
	CHECK(n == 1);
	json_decref(page);

	page = json_loads("[]", 0, NULL);
	CHECK(harbor_artifacts_parse(page, t, 3, &n, &oldest, err, sizeof(err)) == 0);
	CHECK(n == 0 && oldest == LLONG_MAX);
	json_decref(page);
	page = json_loads("[{\"digest\":\"md5:x\",\"push_time\":\"2026-01-01T00:00:00Z\"}]", 0, NULL);
	CHECK(harbor_artifacts_parse(page, t, 3, &n, &oldest, err, sizeof(err)) == -1);
	json_decref(page);
	page = json_loads("[{\"digest\":\"" D1 "\"}]", 0, NULL);      /* no push_time */
	CHECK(harbor_artifacts_parse(page, t, 3, &n, &oldest, err, sizeof(err)) == -1);
	json_decref(page);
	page = json_loads("[{\"digest\":\"" D1 "\",\"push_time\":\"2026-01-01T00:00:00Z\",\"tags\":\"x\"}]", 0, NULL);
	CHECK(harbor_artifacts_parse(page, t, 3, &n, &oldest, err, sizeof(err)) == -1);
	json_decref(page);
}

TEST_MAIN("harbor feed")
static void
run_tests(void)
{
	test_time();
	test_repos();
	test_artifacts();
}
