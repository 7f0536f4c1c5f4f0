/*
 * Per-address connection cap, counted from OpenSSL's handshake-start
 * callback (see conncap.h for why there). One small table of addresses,
 * one mutex; the table never holds more addresses than there are worker
 * threads, so a linear scan is cheaper than anything cleverer.
 */
#include "server/conncap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server/base/common.h"

struct conncap_slot {
	struct conncap *cc;
	unsigned count;              /* 0: free */
	unsigned char keylen;
	unsigned char key[16];
};

struct conncap {
	pthread_mutex_t mu;
	unsigned cap;
	size_t n;
	void (*on_refuse)(const char *addr);
	struct conncap_slot slot[];
};

struct conncap *
conncap_new(unsigned cap, size_t slots, void (*on_refuse)(const char *addr))
{
	struct conncap *cc;
	size_t i;

	if (slots == 0)
		slots = 1;
	cc = xcalloc(1, sizeof(*cc) + slots * sizeof(cc->slot[0]));
	pthread_mutex_init(&cc->mu, NULL);
	cc->cap = cap > 0 ? cap : 1;
	cc->n = slots;
	cc->on_refuse = on_refuse;
	for (i = 0; i < slots; i++)
		cc->slot[i].cc = cc;
	return cc;
}

void
conncap_free(struct conncap *cc)
{
	if (cc == NULL)
		return;
	pthread_mutex_destroy(&cc->mu);
	free(cc);
}

static int
same_key(const struct conncap_slot *s, const unsigned char *key, size_t keylen)
{
	return s->count > 0 && s->keylen == keylen && memcmp(s->key, key, keylen) == 0;
}

struct conncap_slot *
conncap_take(struct conncap *cc, const unsigned char *key, size_t keylen, int *untracked)
{
	struct conncap_slot *free_slot = NULL, *s = NULL;
	size_t i;

	*untracked = 0;
	if (keylen == 0 || keylen > sizeof(cc->slot[0].key)) {
		*untracked = 1;
		return NULL;
	}
	pthread_mutex_lock(&cc->mu);
	for (i = 0; i < cc->n && s == NULL; i++) {
		if (same_key(&cc->slot[i], key, keylen))
			s = &cc->slot[i];
		else if (cc->slot[i].count == 0 && free_slot == NULL)
			free_slot = &cc->slot[i];
	}
	if (s != NULL) {
		if (s->count >= cc->cap)
			s = NULL;
		else
			s->count++;
	} else if (free_slot != NULL) {
		s = free_slot;
		memcpy(s->key, key, keylen);
		s->keylen = (unsigned char)keylen;
		s->count = 1;
	} else {
		*untracked = 1;
	}
	pthread_mutex_unlock(&cc->mu);
	return s;
}

void
conncap_release(struct conncap_slot *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->cc->mu);
	if (s->count > 0)
		s->count--;
	pthread_mutex_unlock(&s->cc->mu);
}

unsigned
conncap_count(struct conncap *cc, const unsigned char *key, size_t keylen)
{
	unsigned n = 0;
	size_t i;

	pthread_mutex_lock(&cc->mu);
	for (i = 0; i < cc->n; i++)
		if (same_key(&cc->slot[i], key, keylen))
			n = cc->slot[i].count;
	pthread_mutex_unlock(&cc->mu);
	return n;
}

int
conncap_take_text(struct conncap *cc, const char *addr, struct conncap_slot **slot)
{
	unsigned char key[16];
	size_t keylen = 0;
	int untracked;

	*slot = NULL;
	if (addr != NULL && inet_pton(AF_INET, addr, key) == 1)
		keylen = 4;
	else if (addr != NULL && inet_pton(AF_INET6, addr, key) == 1)
		keylen = 16;
	if (keylen == 0)
		return 0;
	*slot = conncap_take(cc, key, keylen, &untracked);
	return *slot != NULL || untracked ? 0 : -1;
}

/* ---- OpenSSL glue ---- */

static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int ssl_index = -1;     /* SSL: the slot the connection counts in */
static int ctx_index = -1;     /* SSL_CTX: the conncap */

/* SSL_free(): the connection is gone, whichever way it ended. */
static void
ssl_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	conncap_release(ptr);
}

static void
ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	conncap_free(ptr);
}

static void
make_indexes(void)
{
	ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_data_free);
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
}

/* The peer's address bytes (4 or 16) and text; 0 when the socket has none. */
static size_t
peer_key(int fd, unsigned char key[16], char *text, size_t textlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	text[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		memcpy(key, &a->sin_addr, 4);
		(void)inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)textlen);
		return 4;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		memcpy(key, &a->sin6_addr, 16);
		(void)inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)textlen);
		return 16;
	}
	return 0;
}

/*
 * OpenSSL calls this at the start of SSL_accept(), before reading the
 * ClientHello. Over the cap, shutdown() (not close(): CivetWeb owns the
 * descriptor) makes the read that follows see end of file, so the
 * handshake fails and CivetWeb closes the connection at once.
 */
static void
on_info(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl;
	struct conncap *cc;
	struct conncap_slot *s;
	unsigned char key[16];
	char text[64];
	size_t keylen;
	int untracked, fd;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START) || !SSL_is_server(ssl) ||
	    SSL_get_ex_data(ssl, ssl_index) != NULL)
		return;   /* not a new server handshake, or counted already (renegotiation) */
	cc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	fd = SSL_get_fd(ssl);
	if (cc == NULL || (keylen = peer_key(fd, key, text, sizeof(text))) == 0)
		return;
	s = conncap_take(cc, key, keylen, &untracked);
	if (s != NULL) {
		if (SSL_set_ex_data(ssl, ssl_index, s) != 1)
			conncap_release(s);
		return;
	}
	if (untracked)
		return;
	(void)shutdown(fd, SHUT_RDWR);
	if (cc->on_refuse != NULL)
		cc->on_refuse(text);
}

int
conncap_attach(SSL_CTX *ctx, struct conncap *cc)
{
	pthread_once(&index_once, make_indexes);
	if (ssl_index < 0 || ctx_index < 0 || SSL_CTX_set_ex_data(ctx, ctx_index, cc) != 1)
		return -1;
	/* Replaces CivetWeb's own info callback, which does nothing in 1.15. */
	SSL_CTX_set_info_callback(ctx, on_info);
	return 0;
}
