/*
 * The change feed's REST calls and their parsers. Parsing is kept apart from
 * fetching so the unit tests feed it Harbor-shaped pages directly.
 */
#include "registry/harbor/feed.h"

#include <limits.h>
#include <string.h>
#include <time.h>

static const char *const by_name[] = { "X-Is-Resource-Name: true", NULL };

/* n digits at s into *v; -1 when one is not a digit. */
static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

long long
harbor_time_ms(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, ms = 0, oh, om, scale;
	long long t;

	if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	s += 19;
	if (*s == '.') {
		for (s++, scale = 100; *s >= '0' && *s <= '9'; s++, scale /= 10)
			ms += scale * (*s - '0');
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (long long)timegm(&tm);
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if ((*s == '+' || *s == '-') && !digits(s + 1, 2, &oh) && s[3] == ':' &&
	    !digits(s + 4, 2, &om)) {
		t -= (*s == '+' ? 1 : -1) * (long long)(oh * 3600 + om * 60);
		s += 6;
	} else {
		return -1;
	}
	return *s == '\0' && t >= 0 ? t * 1000 + ms : -1;
}

int
harbor_repos_parse(const json_t *page, struct harbor_repo *out, size_t max,
    char *err, size_t errlen)
{
	const json_t *r;
	size_t i, n = 0;

	if (!json_is_array(page)) {
		(void)am_fail(err, errlen, AM_EINVAL, "the repository list is not a JSON array");
		return -1;
	}
	json_array_foreach(page, i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		long long t = harbor_time_ms(json_string_value(json_object_get(r, "update_time")));
		if (name == NULL || !name_valid_repo(name) || t < 0) {
			(void)am_fail(err, errlen, AM_EINVAL, "repository %zu has no valid name or update_time", i);
			return -1;
		}
		if (n < max) {
			(void)am_fmt(out[n].name, sizeof(out[n].name), "%s", name);
			out[n].update_ms = t;
			n++;
		}
	}
	return (int)json_array_size(page);
}

int
harbor_artifacts_parse(const json_t *page, struct harbor_tagged *out, size_t max, size_t *n,
    long long *oldest_ms, char *err, size_t errlen)
{
	const json_t *a, *t;
	size_t i, k;

	*n = 0;
	*oldest_ms = LLONG_MAX;
	if (!json_is_array(page)) {
		(void)am_fail(err, errlen, AM_EINVAL, "the artifact list is not a JSON array");
		return -1;
	}
	json_array_foreach(page, i, a) {
		const char *digest = json_string_value(json_object_get(a, "digest"));
		const json_t *tags = json_object_get(a, "tags");
		long long pt = harbor_time_ms(json_string_value(json_object_get(a, "push_time")));
		if (digest == NULL || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) >= sizeof(out->digest) ||
		    pt < 0 || (tags != NULL && !json_is_null(tags) && !json_is_array(tags))) {
			(void)am_fail(err, errlen, AM_EINVAL, "artifact %zu has no valid digest, push_time or tags", i);
			return -1;
		}
		if (pt < *oldest_ms)
			*oldest_ms = pt;
		json_array_foreach(tags, k, t) {
			const char *tag = json_string_value(json_object_get(t, "name"));
			if (tag == NULL || !name_valid_tag(tag) || *n >= max)
				continue;
			(void)am_fmt(out[*n].tag, sizeof(out[*n].tag), "%s", tag);
			(void)am_fmt(out[*n].digest, sizeof(out[*n].digest), "%s", digest);
			out[*n].push_ms = pt;
			(*n)++;
		}
	}
	return (int)json_array_size(page);
}

static enum am_err
get_page(struct harbor *h, const char *path, long *status, json_t **reply, char *err, size_t errlen)
{
	enum am_err rc = harbor_call(h, "GET", path, NULL, by_name, status, reply, err, errlen);

	if (rc == AM_OK && *status != 200) {
		json_decref(*reply);
		*reply = NULL;
	}
	return rc;
}

enum am_err
harbor_projects_page(struct harbor *h, int page, int page_size, long *status,
    json_t **reply, char *err, size_t errlen)
{
	char path[128];

	(void)am_fmt(path, sizeof(path), "/projects?page=%d&page_size=%d", page, page_size);
	return get_page(h, path, status, reply, err, errlen);
}

enum am_err
harbor_repos_page(struct harbor *h, const char *project, int page, int page_size,
    long *status, json_t **reply, char *err, size_t errlen)
{
	char esc[3 * NAME_MAX_REPO], path[4 * NAME_MAX_REPO];

	*status = 0;
	*reply = NULL;
	if (harbor_escape(project, 0, esc, sizeof(esc)) != 0 ||
	    am_fmt(path, sizeof(path), "/projects/%s/repositories?sort=-update_time&page=%d&page_size=%d",
	    esc, page, page_size) != 0)
		return am_fail(err, errlen, AM_EINVAL, "project name too long");
	return get_page(h, path, status, reply, err, errlen);
}

enum am_err
harbor_artifacts_page(struct harbor *h, const char *repo, int page, int page_size,
    long *status, json_t **reply, char *err, size_t errlen)
{
	char project[NAME_MAX_REPO], pesc[3 * NAME_MAX_REPO], resc[9 * NAME_MAX_REPO];
	char path[13 * NAME_MAX_REPO];
	size_t plen = strcspn(repo, "/");

	*status = 0;
	*reply = NULL;
	if (repo[plen] != '/' || plen >= sizeof(project))
		return am_fail(err, errlen, AM_EINVAL, "repository %s has no project", repo);
	(void)am_fmt(project, sizeof(project), "%.*s", (int)plen, repo);
	/* The repository below the project is encoded twice when it holds '/'. */
	if (harbor_escape(project, 0, pesc, sizeof(pesc)) != 0 ||
	    harbor_escape(repo + plen + 1, 1, resc, sizeof(resc)) != 0 ||
	    am_fmt(path, sizeof(path), "/projects/%s/repositories/%s/artifacts?with_tag=true"
	    "&sort=-push_time&page=%d&page_size=%d", pesc, resc, page, page_size) != 0)
		return am_fail(err, errlen, AM_EINVAL, "repository name too long");
	return get_page(h, path, status, reply, err, errlen);
}
