/*
 * Unit tests of the token flow (registry/client/token.c) against a small fake
 * registry and token service on 127.0.0.1 (plain HTTP, one thread per
 * connection). The fake registry holds a token for FRESH_MS only, while the
 * token service announces a long lifetime: what a registry does when it
 * considers a token expired before the client does.
 */
#include "tests/unit/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "registry/client/client.h"

#define FRESH_MS 150
#define MAX_TOKENS 16

struct fake {
	int fd;
	int port;
	atomic_int stop;
	pthread_mutex_t mu;
	long long issued[MAX_TOKENS + 1];   /* am_now_ms() of tok-N; [0] unused */
	int n_issued;
	atomic_int target_seen;              /* the held request arrived */
	atomic_int rejected_bearer;          /* 401s to a Bearer token */
};

static struct fake g_fake;

static void
reply(int fd, const char *status, const char *headers, const char *body, int head)
{
	char buf[2048];
	size_t blen = body != NULL ? strlen(body) : 0;
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n%s",
	    status, blen, headers, head || body == NULL ? "" : body);

	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!write(fd, buf, (size_t)n);
}

static void
challenge(int fd, int head)
{
	char h[512];

	(void)snprintf(h, sizeof(h), "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\","
	    "service=\"fake\",scope=\"repository:lib/app:pull\"\r\nContent-Type: application/json\r\n",
	    g_fake.port);
	reply(fd, "401 Unauthorized", h, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", head);
}

/* One request per connection: read the head, answer, close. */
static void *
serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg, head, n_tok;
	char req[8192], *auth;
	size_t used = 0;
	ssize_t r;

	while (used < sizeof(req) - 1 && (r = read(fd, req + used, sizeof(req) - 1 - used)) > 0) {
		used += (size_t)r;
		req[used] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	req[used] = '\0';
	head = strncmp(req, "HEAD ", 5) == 0;
	if (strncmp(req, "GET /token", 10) == 0) {
		char body[128];
		pthread_mutex_lock(&g_fake.mu);
		n_tok = g_fake.n_issued < MAX_TOKENS ? ++g_fake.n_issued : g_fake.n_issued;
		g_fake.issued[n_tok] = am_now_ms();
		pthread_mutex_unlock(&g_fake.mu);
		(void)snprintf(body, sizeof(body), "{\"token\":\"tok-%d\",\"expires_in\":300}", n_tok);
		reply(fd, "200 OK", "Content-Type: application/json\r\n", body, 0);
		goto out;
	}
	auth = strcasestr(req, "\r\nAuthorization: Bearer tok-");
	if (auth != NULL) {
		long long age;
		n_tok = atoi(auth + strlen("\r\nAuthorization: Bearer tok-"));
		pthread_mutex_lock(&g_fake.mu);
		age = n_tok >= 1 && n_tok <= g_fake.n_issued ? am_now_ms() - g_fake.issued[n_tok] : -1;
		pthread_mutex_unlock(&g_fake.mu);
		if (age >= 0 && age <= FRESH_MS) {
			reply(fd, "200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
			    "Docker-Content-Digest: sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\r\n",
			    "{}", head);
		} else {
			atomic_fetch_add(&g_fake.rejected_bearer, 1);
			challenge(fd, head);
		}
		goto out;
	}
	if (strstr(req, "/manifests/target ") != NULL) {
		/* Held until a token was issued and the registry no longer takes it. */
		long long t0 = am_now_ms(), first = 0;
		atomic_store(&g_fake.target_seen, 1);
		while (am_now_ms() - t0 < 5000) {
			pthread_mutex_lock(&g_fake.mu);
			first = g_fake.n_issued > 0 ? g_fake.issued[1] : 0;
			pthread_mutex_unlock(&g_fake.mu);
			if (first != 0 && am_now_ms() - first > FRESH_MS + 50)
				break;
			usleep(5000);
		}
	}
	challenge(fd, head);
out:
	close(fd);
	return NULL;
}

static void *
accept_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_fake.stop)) {
		pthread_t t;
		int fd = accept(g_fake.fd, NULL, NULL);
		if (fd < 0)
			continue;
		if (atomic_load(&g_fake.stop) || pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int
fake_start(pthread_t *thr)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(&g_fake, 0, sizeof(g_fake));
	pthread_mutex_init(&g_fake.mu, NULL);
	g_fake.fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (g_fake.fd < 0 || bind(g_fake.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(g_fake.fd, 16) != 0 || getsockname(g_fake.fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	g_fake.port = ntohs(a.sin_port);
	return pthread_create(thr, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static void
fake_stop(pthread_t thr)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	atomic_store(&g_fake.stop, 1);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)g_fake.port);
	(void)connect(fd, (struct sockaddr *)&a, sizeof(a));   /* wakes accept() */
	close(fd);
	pthread_join(thr, NULL);
	close(g_fake.fd);
	usleep(50000);                                         /* detached connection threads */
	pthread_mutex_destroy(&g_fake.mu);
}

struct call {
	struct reg_client *c;
	const char *tag;
	enum am_err rc;
	char err[512];
};

static void *
head_call(void *arg)
{
	struct call *k = arg;
	struct reg_reply r;

	reg_reply_init(&r);
	k->rc = reg_manifest_head(k->c, "lib/app", k->tag, &r, k->err, sizeof(k->err));
	reg_reply_clear(&r);
	return NULL;
}

/*
 * Issue 22.5: the target HEAD goes out before any token is cached and gets a
 * 401; meanwhile the reads fetched and cached a token, which the registry
 * has expired by the time that 401 arrives. The HEAD's retry must use a token
 * fetched after its 401, not the cached one ("credentials rejected").
 */
static void
test_retry_after_401_uses_a_token_fetched_after_it(void)
{
	struct reg_client_opts o;
	struct reg_client *c;
	struct call target, read;
	struct reg_stats s;
	pthread_t srv, tb;
	char err[256];
	long long t0;

	if (fake_start(&srv) != 0) {
		CHECK(!"fake registry did not start");
		return;
	}
	memset(&o, 0, sizeof(o));
	(void)am_fmt(err, sizeof(err), "http://127.0.0.1:%d", g_fake.port);
	o.url = err;
	o.username = "robot";
	o.password = "pw";
	o.timeout_ms = 5000;
	o.max_concurrent = 4;
	c = reg_client_new(&o, err, sizeof(err));
	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&target, 0, sizeof(target));
	memset(&read, 0, sizeof(read));
	target.c = read.c = c;
	target.tag = "target";
	read.tag = "src";
	CHECK(pthread_create(&tb, NULL, head_call, &target) == 0);
	t0 = am_now_ms();
	while (!atomic_load(&g_fake.target_seen) && am_now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(atomic_load(&g_fake.target_seen));
	/* The read: 401, a token (tok-1), cached, accepted while fresh. */
	head_call(&read);
	CHECK(read.rc == AM_OK);
	pthread_join(tb, NULL);
	if (target.rc != AM_OK)
		fprintf(stderr, "  target HEAD: %s\n", target.err);
	CHECK(target.rc == AM_OK);
	reg_client_stats(c, &s);
	CHECK(s.token_fetches == 2);                          /* tok-1 for the read, tok-2 for the retry */
	CHECK(atomic_load(&g_fake.rejected_bearer) == 0);      /* tok-1 was never offered stale */

	/* A later call: the cached tok-2 is stale for the registry by now. The refused cached
	 * token is dropped and one fetched after the 401 succeeds. */
	usleep((FRESH_MS + 50) * 1000);
	head_call(&read);
	CHECK(read.rc == AM_OK);
	reg_client_stats(c, &s);
	CHECK(s.token_fetches == 3);
	reg_client_free(c);
	fake_stop(srv);
}

static void
run_tests(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_retry_after_401_uses_a_token_fetched_after_it();
	curl_global_cleanup();
}

TEST_MAIN("token")
