/*
 * The bench's floor probe (bench/floor.py builds and drives it): the fewest
 * steps a client can take to make one 2-arch index from two per-arch tags,
 * with exactly archmerge's requests. One libcurl multi handle in one thread,
 * three easy handles ("lanes") whose kept-alive connections are opened
 * before any timing; a bearer token given up front (archmerge caches one per
 * repository too). No checks beyond parsing what the next request needs.
 *
 *   floor_probe URL REPO TOKEN|- CAFILE|-
 * then one command per stdin line, one answer line (microseconds) each:
 *   s|p COLD(0|1 warm) VERSION TARGET RECHECK(0|1)
 * s: serial on lane 0; p: the two manifest->config chains and the target
 * HEAD at once, the PUT after them (and with RECHECK the two source HEADs at
 * once after the PUT, as archmerge re-checks its sources).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LIST_MT "application/vnd.docker.distribution.manifest.list.v2+json"
#define ACCEPT "Accept: application/vnd.oci.image.index.v1+json, " LIST_MT ", " \
	"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

struct lane {
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	size_t len, cap;
	char digest[128];
	int step;              /* parallel: 0 manifest, 1 config, 2 done */
	const char *arch;
	char kid_mt[128], kid_digest[128], os[32], cpu[32];
	size_t kid_size;
};

static const char *base_url, *repo, *token, *cafile;
static CURLM *multi;
static struct lane lanes[3];

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct lane *l = ud;
	size_t add = sz * n;

	if (l->len + add + 1 > l->cap) {
		l->cap = (l->len + add + 1) * 2;
		l->body = realloc(l->body, l->cap);
		if (l->body == NULL)
			abort();
	}
	memcpy(l->body + l->len, p, add);
	l->len += add;
	l->body[l->len] = '\0';
	return add;
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct lane *l = ud;
	size_t len = sz * n, k = strlen("docker-content-digest:");

	if (len > k && strncasecmp(p, "docker-content-digest:", k) == 0) {
		size_t i = k, j = 0;
		while (i < len && p[i] == ' ')
			i++;
		while (i < len && p[i] != '\r' && p[i] != '\n' && j + 1 < sizeof(l->digest))
			l->digest[j++] = p[i++];
		l->digest[j] = '\0';
	}
	return len;
}

/* method: GET, HEAD or PUT (body); path under /v2/REPO/. */
static void
prepare(struct lane *l, const char *method, const char *path, const char *body)
{
	char url[1024], auth[4096];

	curl_easy_reset(l->h);
	curl_slist_free_all(l->hdrs);
	l->hdrs = NULL;
	l->len = 0;
	l->digest[0] = '\0';
	snprintf(url, sizeof(url), "%s/v2/%s/%s", base_url, repo, path);
	curl_easy_setopt(l->h, CURLOPT_URL, url);
	curl_easy_setopt(l->h, CURLOPT_USERAGENT, "floor-probe/1");
	curl_easy_setopt(l->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(l->h, CURLOPT_NOSIGNAL, 1L);
	if (cafile != NULL)
		curl_easy_setopt(l->h, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(l->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(l->h, CURLOPT_WRITEDATA, l);
	curl_easy_setopt(l->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(l->h, CURLOPT_HEADERDATA, l);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		l->hdrs = curl_slist_append(l->hdrs, auth);
	}
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(l->h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(l->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(l->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		l->hdrs = curl_slist_append(l->hdrs, "Content-Type: " LIST_MT);
		l->hdrs = curl_slist_append(l->hdrs, "Expect:");
	} else {
		l->hdrs = curl_slist_append(l->hdrs, ACCEPT);
		if (strcmp(method, "HEAD") == 0)
			curl_easy_setopt(l->h, CURLOPT_NOBODY, 1L);
	}
	curl_easy_setopt(l->h, CURLOPT_HTTPHEADER, l->hdrs);
	curl_multi_add_handle(multi, l->h);
}

static struct lane *
lane_of(CURL *h)
{
	int i;

	for (i = 0; i < 3; i++)
		if (lanes[i].h == h)
			return &lanes[i];
	return NULL;
}

/* Run until every added transfer is done; on_done may add the next one. */
static int
run(int (*on_done)(struct lane *, int), int warm)
{
	int running = 1, left, bad = 0;
	CURLMsg *m;

	while (running) {
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			struct lane *l;
			long st = 0;
			if (m->msg != CURLMSG_DONE)
				continue;
			l = lane_of(m->easy_handle);
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &st);
			bad |= m->data.result != CURLE_OK || st == 0 || (st >= 400 && st != 404);
			curl_multi_remove_handle(multi, m->easy_handle);
			if (on_done != NULL && on_done(l, warm))
				running = 1;
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	return bad;
}

/* A manifest answered: keep what the index needs, start its config GET unless warm. */
static int
manifest_done(struct lane *l, int warm)
{
	json_t *j, *cfg;
	char path[256];

	if (l->step == 0) {
		j = json_loadb(l->body, l->len, 0, NULL);
		snprintf(l->kid_mt, sizeof(l->kid_mt), "%s", json_string_value(json_object_get(j, "mediaType")));
		snprintf(l->kid_digest, sizeof(l->kid_digest), "%s", l->digest);
		l->kid_size = l->len;
		snprintf(l->os, sizeof(l->os), "linux");
		snprintf(l->cpu, sizeof(l->cpu), "%s", l->arch);
		cfg = json_object_get(j, "config");
		if (!warm) {
			snprintf(path, sizeof(path), "blobs/%s", json_string_value(json_object_get(cfg, "digest")));
			json_decref(j);
			l->step = 1;
			prepare(l, "GET", path, NULL);
			return 1;
		}
		json_decref(j);
	} else if (l->step == 1) {
		j = json_loadb(l->body, l->len, 0, NULL);
		snprintf(l->os, sizeof(l->os), "%s", json_string_value(json_object_get(j, "os")));
		snprintf(l->cpu, sizeof(l->cpu), "%s", json_string_value(json_object_get(j, "architecture")));
		json_decref(j);
	}
	l->step = 2;
	return 0;
}

static int
manifest_done_any(struct lane *l, int warm)
{
	return l == &lanes[2] ? 0 : manifest_done(l, warm);
}

static char *
index_body(void)
{
	json_t *list = json_array(), *doc;
	char *s;
	int i;

	for (i = 0; i < 2; i++)
		json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:{s:s,s:s}}", "mediaType", lanes[i].kid_mt,
		    "digest", lanes[i].kid_digest, "size", (json_int_t)lanes[i].kid_size, "platform",
		    "architecture", lanes[i].cpu, "os", lanes[i].os));
	doc = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", LIST_MT, "manifests", list);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

static int
one_index(char shape, int warm, const char *version, const char *target, int recheck)
{
	char path[256];
	char *body;
	int i, bad = 0;
	const char *archs[2] = { "amd64", "arm64" };

	for (i = 0; i < 2; i++) {
		lanes[i].step = 0;
		lanes[i].arch = archs[i];
	}
	if (shape == 's') {
		/* One transfer at a time: the multi handle's cache hands each the same idle connection. */
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "manifests/%s-%s", version, archs[i]);
			prepare(&lanes[i], "GET", path, NULL);
			bad |= run(manifest_done, warm);   /* the config GET follows */
		}
		snprintf(path, sizeof(path), "manifests/%s", target);
		prepare(&lanes[0], "HEAD", path, NULL);
		bad |= run(NULL, warm);
	} else {
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "manifests/%s-%s", version, archs[i]);
			prepare(&lanes[i], "GET", path, NULL);
		}
		snprintf(path, sizeof(path), "manifests/%s", target);
		prepare(&lanes[2], "HEAD", path, NULL);
		bad |= run(manifest_done_any, warm);
	}
	body = index_body();
	snprintf(path, sizeof(path), "manifests/%s", target);
	prepare(&lanes[0], "PUT", path, body);
	bad |= run(NULL, warm);
	free(body);
	if (recheck) {
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "manifests/%s-%s", version, archs[i]);
			prepare(&lanes[shape == 's' ? 0 : i], "HEAD", path, NULL);
			if (shape == 's')
				bad |= run(NULL, warm);
		}
		if (shape != 's')
			bad |= run(NULL, warm);
	}
	return bad;
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int
main(int argc, char **argv)
{
	char line[512], shape[4], version[128], target[128];
	int i, warm, recheck;

	if (argc != 5) {
		fprintf(stderr, "usage: floor_probe URL REPO TOKEN|- CAFILE|-\n");
		return 2;
	}
	base_url = argv[1];
	repo = argv[2];
	token = strcmp(argv[3], "-") ? argv[3] : NULL;
	cafile = strcmp(argv[4], "-") ? argv[4] : NULL;
	curl_global_init(CURL_GLOBAL_ALL);
	multi = curl_multi_init();
	for (i = 0; i < 3; i++)
		lanes[i].h = curl_easy_init();
	/* three kept-alive connections before any timing */
	for (i = 0; i < 3; i++)
		prepare(&lanes[i], "HEAD", "manifests/warm-up", NULL);
	run(NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		long long t0;
		int bad;
		if (sscanf(line, "%3s %d %127s %127s %d", shape, &warm, version, target, &recheck) != 5) {
			printf("ERR bad command\n");
			continue;
		}
		t0 = now_us();
		bad = one_index(shape[0], warm, version, target, recheck);
		printf(bad ? "ERR %lld\n" : "%lld\n", now_us() - t0);
	}
	return 0;
}
