/*
 * The feed cursor file:
 *   {"version":1,"cursors":[{"registry":h,"project":p,"push_ms":n,"at":[key,...]}]}
 * Small (one entry per project the rules cover), rewritten whole.
 */
#include "server/reconcile/feedcursor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>

#define CURSOR_FILE_MAX (8u * 1024 * 1024)

struct looked {
	char *repo;
	long long ms;
};

struct entry {
	char *host, *project;
	long long ms;
	char **at;
	size_t n_at;
	long long listed_ms;      /* newest update_time of a whole listing; 0: none yet (memory only) */
	struct looked *looked;    /* memory only */
	size_t n_looked;
};

struct feedcursor {
	char *path;
	struct entry *v;
	size_t n;
	int dirty;
};

static void
entry_clear_at(struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_at; i++)
		free(e->at[i]);
	free(e->at);
	e->at = NULL;
	e->n_at = 0;
}

static void
entry_clear_looked(struct entry *e)
{
	size_t i;

	for (i = 0; i < e->n_looked; i++)
		free(e->looked[i].repo);
	free(e->looked);
	e->looked = NULL;
	e->n_looked = 0;
}

void
feedcursor_free(struct feedcursor *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].host);
		free(c->v[i].project);
		entry_clear_at(&c->v[i]);
		entry_clear_looked(&c->v[i]);
	}
	free(c->v);
	free(c->path);
	free(c);
}

static struct entry *
find(const struct feedcursor *c, const char *host, const char *project)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->v[i].host, host) == 0 && strcmp(c->v[i].project, project) == 0)
			return &c->v[i];
	return NULL;
}

static struct entry *
add(struct feedcursor *c, const char *host, const char *project)
{
	struct entry *e;

	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	e->host = xstrdup(host);
	e->project = xstrdup(project);
	return e;
}

static void
add_at(struct entry *e, const char *key)
{
	size_t i;

	for (i = 0; i < e->n_at; i++)
		if (strcmp(e->at[i], key) == 0)
			return;
	if (e->n_at == FEEDCURSOR_MAX_AT)
		return;     /* beyond: those are handled again after a restart (at least once) */
	e->at = xrealloc(e->at, (e->n_at + 1) * sizeof(*e->at));
	e->at[e->n_at++] = xstrdup(key);
}

static enum am_err
parse(struct feedcursor *c, const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(buf, len, 0, &je), *cur, *k;
	size_t i, j;

	if (root == NULL || json_integer_value(json_object_get(root, "version")) != 1 ||
	    !json_is_array(json_object_get(root, "cursors"))) {
		json_decref(root);
		return am_fail(err, errlen, AM_EINVAL, "%s: not a feed cursor (version 1)", c->path);
	}
	json_array_foreach(json_object_get(root, "cursors"), i, cur) {
		const char *host = json_string_value(json_object_get(cur, "registry"));
		const char *project = json_string_value(json_object_get(cur, "project"));
		json_t *ms = json_object_get(cur, "push_ms");
		struct entry *e;
		if (host == NULL || project == NULL || !json_is_integer(ms) || json_integer_value(ms) < 0) {
			json_decref(root);
			return am_fail(err, errlen, AM_EINVAL, "%s: cursor %zu is malformed", c->path, i);
		}
		e = find(c, host, project) ? find(c, host, project) : add(c, host, project);
		e->ms = (long long)json_integer_value(ms);
		json_array_foreach(json_object_get(cur, "at"), j, k)
			if (json_is_string(k))
				add_at(e, json_string_value(k));
	}
	json_decref(root);
	return AM_OK;
}

enum am_err
feedcursor_open(const char *state_dir, struct feedcursor **out, char *err, size_t errlen)
{
	struct feedcursor *c = xcalloc(1, sizeof(*c));
	char path[4096], *buf = NULL;
	size_t len = 0;
	enum am_err rc;

	*out = NULL;
	if (am_fmt(path, sizeof(path), "%s/%s", state_dir, FEEDCURSOR_FILE) != 0) {
		free(c);
		return am_fail(err, errlen, AM_EINVAL, "state_dir path too long");
	}
	c->path = xstrdup(path);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*out = c;
		return AM_OK;
	}
	if ((rc = am_read_file(path, CURSOR_FILE_MAX, &buf, &len, err, errlen)) == AM_OK)
		rc = parse(c, buf, len, err, errlen);
	free(buf);
	if (rc != AM_OK) {
		feedcursor_free(c);
		return rc;
	}
	*out = c;
	return AM_OK;
}

long long
feedcursor_get(const struct feedcursor *c, const char *host, const char *project, int *known)
{
	const struct entry *e = find(c, host, project);

	*known = e != NULL;
	return e != NULL ? e->ms : 0;
}

int
feedcursor_at(const struct feedcursor *c, const char *host, const char *project, const char *key)
{
	const struct entry *e = find(c, host, project);
	size_t i;

	for (i = 0; e != NULL && i < e->n_at; i++)
		if (strcmp(e->at[i], key) == 0)
			return 1;
	return 0;
}

void
feedcursor_advance(struct feedcursor *c, const char *host, const char *project, long long ms,
    const char *key)
{
	struct entry *e = find(c, host, project);

	if (e == NULL) {
		e = add(c, host, project);
		e->ms = ms;
	}
	if (ms < e->ms)
		return;
	if (ms > e->ms) {
		entry_clear_at(e);
		e->ms = ms;
	}
	if (key != NULL)
		add_at(e, key);
	c->dirty = 1;
}

int
feedcursor_looked(const struct feedcursor *c, const char *host, const char *project, const char *repo,
    long long update_ms)
{
	const struct entry *e = find(c, host, project);
	size_t i;

	for (i = 0; e != NULL && i < e->n_looked; i++)
		if (e->looked[i].ms == update_ms && strcmp(e->looked[i].repo, repo) == 0)
			return 1;
	return 0;
}

void
feedcursor_look(struct feedcursor *c, const char *host, const char *project, const char *repo,
    long long update_ms)
{
	struct entry *e = find(c, host, project);
	size_t i;

	if (e == NULL)     /* only a project with a cursor is listed */
		return;
	for (i = 0; i < e->n_looked; i++) {
		if (strcmp(e->looked[i].repo, repo) == 0) {
			if (update_ms > e->looked[i].ms)
				e->looked[i].ms = update_ms;
			return;
		}
	}
	if (e->n_looked == FEEDCURSOR_MAX_LOOKED)
		return;     /* beyond: read again on the next pass (it costs a request, loses nothing) */
	e->looked = xrealloc(e->looked, (e->n_looked + 1) * sizeof(*e->looked));
	e->looked[e->n_looked].repo = xstrdup(repo);
	e->looked[e->n_looked].ms = update_ms;
	e->n_looked++;
}

void
feedcursor_listed(struct feedcursor *c, const char *host, const char *project, long long newest_ms)
{
	struct entry *e = find(c, host, project);
	size_t i, j = 0;

	if (e == NULL)     /* only a project with a cursor is listed */
		return;
	if (newest_ms <= e->listed_ms)
		return;
	e->listed_ms = newest_ms;
	/* Below the floor no listing reads any more: forget those. */
	for (i = 0; i < e->n_looked; i++) {
		if (e->looked[i].ms < newest_ms - FEEDCURSOR_REPO_SLACK_MS)
			free(e->looked[i].repo);
		else
			e->looked[j++] = e->looked[i];
	}
	e->n_looked = j;
}

long long
feedcursor_list_floor(const struct feedcursor *c, const char *host, const char *project, long long since)
{
	const struct entry *e = find(c, host, project);
	long long mark;

	if (e == NULL || e->listed_ms == 0)
		return since;
	mark = e->listed_ms - FEEDCURSOR_REPO_SLACK_MS;
	return mark > since ? mark : since;
}

static enum am_err
write_file(const char *path, const char *text, char *err, size_t errlen)
{
	size_t n = strlen(text), off = 0;
	ssize_t w;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	enum am_err rc = AM_OK;

	if (fd < 0)
		return am_fail(err, errlen, AM_EIO, "%s: %s", path, strerror(errno));
	while (rc == AM_OK && off < n) {
		if ((w = write(fd, text + off, n - off)) < 0 && errno != EINTR)
			rc = am_fail(err, errlen, AM_EIO, "%s: write: %s", path, strerror(errno));
		else if (w > 0)
			off += (size_t)w;
	}
	if (rc == AM_OK && fsync(fd) != 0)
		rc = am_fail(err, errlen, AM_EIO, "%s: fsync: %s", path, strerror(errno));
	if (close(fd) != 0 && rc == AM_OK)
		rc = am_fail(err, errlen, AM_EIO, "%s: close: %s", path, strerror(errno));
	return rc;
}

enum am_err
feedcursor_save(struct feedcursor *c, char *err, size_t errlen)
{
	json_t *root, *list;
	char tmp[4200], *text;
	enum am_err rc;
	size_t i, j;

	if (!c->dirty)
		return AM_OK;
	list = json_array();
	for (i = 0; i < c->n; i++) {
		json_t *at = json_array();
		for (j = 0; j < c->v[i].n_at; j++)
			json_array_append_new(at, json_string(c->v[i].at[j]));
		json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:o}", "registry", c->v[i].host,
		    "project", c->v[i].project, "push_ms", (json_int_t)c->v[i].ms, "at", at));
	}
	root = json_pack("{s:i, s:o}", "version", 1, "cursors", list);
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	(void)am_fmt(tmp, sizeof(tmp), "%s.tmp", c->path);
	rc = write_file(tmp, text, err, errlen);
	free(text);
	if (rc == AM_OK && rename(tmp, c->path) != 0)
		rc = am_fail(err, errlen, AM_EIO, "%s: rename: %s", c->path, strerror(errno));
	if (rc == AM_OK)
		c->dirty = 0;
	return rc;
}
