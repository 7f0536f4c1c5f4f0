/* The per-address connection cap: the table, then the OpenSSL hook on real loopback sockets. */
#include "server/conncap.h"

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "tests/unit/harness.h"

static int refusals;
static char last_refused[64];

static void
note_refusal(const char *addr)
{
	refusals++;
	snprintf(last_refused, sizeof(last_refused), "%s", addr);
}

static void
test_table(void)
{
	const unsigned char a[4] = { 10, 0, 0, 1 }, b[4] = { 10, 0, 0, 2 }, c[4] = { 10, 0, 0, 3 };
	const unsigned char a6[16] = { 0xfd, 0, [15] = 1 };
	struct conncap *cc = conncap_new(2, 2, NULL);
	struct conncap_slot *s1, *s2, *s3, *t1, *u;
	int untracked;

	s1 = conncap_take(cc, a, 4, &untracked);
	s2 = conncap_take(cc, a, 4, &untracked);
	CHECK(s1 != NULL && s1 == s2 && !untracked);
	s3 = conncap_take(cc, a, 4, &untracked);
	CHECK(s3 == NULL && !untracked);            /* the third from a: over the cap */
	CHECK(conncap_count(cc, a, 4) == 2);
	t1 = conncap_take(cc, b, 4, &untracked);
	CHECK(t1 != NULL && t1 != s1);              /* another address has its own count */
	u = conncap_take(cc, c, 4, &untracked);
	CHECK(u == NULL && untracked);              /* table full: let through, uncounted */
	CHECK(conncap_take(cc, a6, 16, &untracked) == NULL && untracked);
	conncap_release(s1);
	CHECK(conncap_count(cc, a, 4) == 1);
	s3 = conncap_take(cc, a, 4, &untracked);
	CHECK(s3 == s1);                            /* room again */
	conncap_release(s2);
	conncap_release(s3);
	CHECK(conncap_count(cc, a, 4) == 0);
	u = conncap_take(cc, c, 4, &untracked);     /* a's slot is free now */
	CHECK(u != NULL && !untracked && conncap_count(cc, c, 4) == 1);
	conncap_release(u);
	conncap_release(t1);
	conncap_release(NULL);
	CHECK(conncap_take(cc, a, 0, &untracked) == NULL && untracked);
	conncap_free(cc);
	conncap_free(NULL);
}

/* A listening socket on 127.0.0.1 and one connection accepted from it: server fd in *srv. */
static int
loopback_pair(int lfd, int *srv)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);

	if (getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0 || connect(cfd, (struct sockaddr *)&sa, sl) != 0)
		return -1;
	*srv = accept(lfd, NULL, NULL);
	return cfd;
}

/*
 * Server SSL objects on accepted loopback sockets, SSL_accept() called once
 * (the clients never send a hello): the cap counts the first two and shuts
 * the third's socket, whose client then reads end of file. SSL_free() gives
 * the count back.
 */
static void
test_handshake_hook(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct conncap *cc = conncap_new(2, 4, note_refusal);
	const unsigned char lo[4] = { 127, 0, 0, 1 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd[3], sfd[3], i;
	SSL *ssl[3];
	char byte;

	CHECK(ctx != NULL && conncap_attach(ctx, cc) == 0);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 8) == 0);
	for (i = 0; i < 3; i++) {
		cfd[i] = loopback_pair(lfd, &sfd[i]);
		CHECK(cfd[i] >= 0 && sfd[i] >= 0);
		ssl[i] = SSL_new(ctx);
		SSL_set_fd(ssl[i], sfd[i]);
		if (i < 2) {
			/* would wait for the hello: make the read not block */
			struct timeval tv = { 0, 1000 };
			setsockopt(sfd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		CHECK(SSL_accept(ssl[i]) <= 0);
	}
	CHECK(conncap_count(cc, lo, 4) == 2);
	CHECK(refusals == 1);
	CHECK_STR(last_refused, "127.0.0.1");
	CHECK(recv(cfd[2], &byte, 1, 0) == 0);          /* the third was shut: end of file */
	CHECK(SSL_accept(ssl[0]) <= 0);                 /* a second call is not a second count */
	CHECK(conncap_count(cc, lo, 4) == 2);
	SSL_free(ssl[0]);
	CHECK(conncap_count(cc, lo, 4) == 1);
	SSL_free(ssl[1]);
	SSL_free(ssl[2]);                               /* refused: was never counted */
	CHECK(conncap_count(cc, lo, 4) == 0);
	for (i = 0; i < 3; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	close(lfd);
	SSL_CTX_free(ctx);                              /* frees cc */
}

/* The plain listener's entry: the address as CivetWeb reports it, in text. */
static void
test_take_text(void)
{
	struct conncap *cc = conncap_new(1, 1, NULL);
	struct conncap_slot *s, *t;
	const unsigned char a[4] = { 127, 0, 0, 2 };

	CHECK(conncap_take_text(cc, "127.0.0.2", &s) == 0 && s != NULL);
	CHECK(conncap_count(cc, a, 4) == 1);
	CHECK(conncap_take_text(cc, "127.0.0.2", &t) == -1 && t == NULL);   /* over the cap */
	CHECK(conncap_take_text(cc, "::1", &t) == 0 && t == NULL);          /* table full: through */
	CHECK(conncap_take_text(cc, "not an address", &t) == 0 && t == NULL);
	conncap_release(s);
	CHECK(conncap_take_text(cc, "127.0.0.2", &s) == 0 && s != NULL);   /* freed again */
	conncap_release(s);
	conncap_free(cc);
}

TEST_MAIN("conncap")

static void
run_tests(void)
{
	signal(SIGPIPE, SIG_IGN);   /* as in the service: a write to a shut socket must not kill */
	test_table();
	test_take_text();
	test_handshake_hook();
}
