/*
 * archmerge status: asks the running service's GET /status over the
 * listener its configuration names (the status listener when set, else the
 * main one) and prints a summary, or the JSON itself with --json.
 *
 * TLS: the main listener's certificate is the one in the configuration, so
 * it is trusted as its own anchor (curl accepts a partial chain) and the
 * host name is not checked: the command talks to 127.0.0.1, not to the name
 * the certificate was issued for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config/config.h"
#include "server/cmd/commands.h"
#include "registry/client/fetch.h"

/* "0.0.0.0:8443" -> "127.0.0.1:8443": a wildcard bind is reached on loopback. */
static int
connect_addr(const char *listen, char *out, size_t outlen)
{
	const char *colon = strrchr(listen, ':');
	const char *host = listen;
	size_t hlen;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - listen);
	if ((hlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0) || (hlen == 1 && listen[0] == '*')) {
		host = "127.0.0.1";
		hlen = 9;
	} else if ((hlen == 2 && strncmp(listen, "::", 2) == 0) ||
	    (hlen == 4 && strncmp(listen, "[::]", 4) == 0)) {
		host = "[::1]";
		hlen = 5;
	}
	return am_fmt(out, outlen, "%.*s%s", (int)hlen, host, colon);
}

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void
print_summary(const char *url, json_t *st)
{
	json_t *waiting = json_object_get(st, "waiting"), *pub = json_object_get(st, "published");
	json_t *fail = json_object_get(st, "failures"), *counts = json_object_get(st, "counts");
	json_t *e, *m;
	size_t i, j;

	printf("archmerge %s at %s: queue %lld, %zu waiting, %zu recent publications, %zu recent failures\n",
	    str(st, "version"), url, (long long)json_integer_value(json_object_get(st, "queue_depth")),
	    json_array_size(waiting), json_array_size(pub), json_array_size(fail));
	printf("since start: published %lld, unchanged %lld, waiting %lld, refused %lld, failed %lld\n",
	    (long long)json_integer_value(json_object_get(counts, "published")),
	    (long long)json_integer_value(json_object_get(counts, "unchanged")),
	    (long long)json_integer_value(json_object_get(counts, "waiting")),
	    (long long)json_integer_value(json_object_get(counts, "refused")),
	    (long long)json_integer_value(json_object_get(counts, "failed")));

	printf("\nwaiting groups (what each lacks):\n");
	if (json_array_size(waiting) == 0)
		printf("  none\n");
	json_array_foreach(waiting, i, e) {
		printf("  %s  lacks ", str(e, "group"));
		if (json_array_size(json_object_get(e, "missing")) == 0)
			printf("? (%s)", str(e, "detail"));
		json_array_foreach(json_object_get(e, "missing"), j, m)
			printf("%s%s", j ? ", " : "", json_string_value(m) ? json_string_value(m) : "?");
		printf("  (since %s, %lld checks)\n", str(e, "since"),
		    (long long)json_integer_value(json_object_get(e, "checks")));
	}

	printf("\nrecent publications (newest first):\n");
	if (json_array_size(pub) == 0)
		printf("  none\n");
	json_array_foreach(pub, i, e)
		printf("  %s  %s  %s\n", str(e, "time"), str(e, "group"), str(e, "digest"));

	printf("\nrecent failures (newest first):\n");
	if (json_array_size(fail) == 0)
		printf("  none\n");
	json_array_foreach(fail, i, e)
		printf("  %s  %s  %s: %s\n", str(e, "time"), str(e, "group"), str(e, "outcome"),
		    str(e, "error"));
}

int
cmd_status(const struct args *a)
{
	struct cfg *c = cmd_load_config(a->config, 0);
	struct fetch_opts fo;
	struct fetch_reply r;
	json_t *st = NULL;
	char addr[300], url[400], err[1024], *secret = NULL;
	int rc = EXIT_FAIL, tls;

	memset(&r, 0, sizeof(r));
	if (c == NULL)
		return EXIT_FAIL;
	tls = c->status_listen == NULL && !c->plain_http;
	if (connect_addr(c->status_listen ? c->status_listen : c->listen, addr, sizeof(addr)) != 0 ||
	    am_fmt(url, sizeof(url), "%s://%s/status", tls ? "https" : "http", addr) != 0) {
		fprintf(stderr, "archmerge: cannot make a URL from the listen address\n");
		goto done;
	}
	if (c->status_secret_file != NULL &&
	    am_read_secret(c->status_secret_file, &secret, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	memset(&fo, 0, sizeof(fo));
	fo.url = url;
	fo.ca_file = tls ? c->tls_certificate : NULL;
	fo.skip_hostname = tls;
	fo.authorization = secret;
	fo.max = 16 * 1024 * 1024;
	if (fetch_get(&fo, &r, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: the service does not answer: %s\n", err);
		goto done;
	}
	if (r.status != 200 || (st = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL)) == NULL) {
		json_t *e = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
		fprintf(stderr, "archmerge: GET %s answered %ld%s%s\n", url, r.status,
		    json_string_value(json_object_get(e, "error")) ? ": " : "",
		    json_string_value(json_object_get(e, "error")) ? json_string_value(json_object_get(e, "error")) : "");
		json_decref(e);
		goto done;
	}
	if (a->json)
		fwrite(r.body, 1, r.body_len, stdout);
	else
		print_summary(url, st);
	rc = EXIT_OK;
done:
	json_decref(st);
	fetch_reply_clear(&r);
	am_secret_free(secret);
	cfg_free(c);
	return rc;
}
