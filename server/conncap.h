/*
 * Per-address connection cap (server.max_connections_per_client): on the
 * TLS listener at the handshake, on the plain status listener at the first
 * request (conncap_take_text).
 *
 * CivetWeb 1.15 gives no hook between accept() and the worker thread. The
 * earliest code of ours that runs for a connection is OpenSSL's info
 * callback at the start of the handshake, in the worker, before a byte has
 * been read. There the peer's address is counted; over the cap the socket is
 * shut down, the handshake fails at once and the thread is free again within
 * microseconds. The count drops when CivetWeb frees the connection's SSL
 * object, which it does however the connection ends.
 */
#ifndef AM_CONNCAP_H
#define AM_CONNCAP_H

#include <stddef.h>
#include <openssl/ssl.h>

struct conncap;
struct conncap_slot;

/*
 * cap: connections one address may hold at once (at least 1); slots: how
 * many addresses are tracked at once (the worker count is enough: only
 * workers hold counted connections). on_refuse(addr) is called for every
 * connection shut for being over the cap (may be NULL).
 */
struct conncap *conncap_new(unsigned cap, size_t slots, void (*on_refuse)(const char *addr));
void conncap_free(struct conncap *cc);   /* accepts NULL */

/*
 * The table alone (key: the address's bytes, 4 or 16). Returns the slot the
 * connection now counts in, or NULL when the address is at the cap. When
 * every slot is taken by other addresses the connection is let through
 * uncounted (*untracked set): refusing Harbor for a full table would be worse.
 */
struct conncap_slot *conncap_take(struct conncap *cc, const unsigned char *key, size_t keylen,
    int *untracked);
void conncap_release(struct conncap_slot *s);
unsigned conncap_count(struct conncap *cc, const unsigned char *key, size_t keylen);

/*
 * Hang cc on a server SSL_CTX: from now on every handshake on it is counted.
 * The context owns cc afterwards (freed with the context). Returns 0, or -1
 * when OpenSSL refused the ex_data slot.
 */
int conncap_attach(SSL_CTX *ctx, struct conncap *cc);

/*
 * The plain-HTTP listener (server.status_listen) has no handshake to hook:
 * CivetWeb 1.15 calls init_connection before the request information is
 * readable (mg_get_request_info() returns NULL there), so a connection is
 * counted at its first request's headers (begin_request) instead, by the
 * address text CivetWeb reports, and released when it closes
 * (connection_close). Returns 0 and sets *slot (NULL when untracked: a full
 * table or an address that does not parse), or -1 when addr is at the cap.
 */
int conncap_take_text(struct conncap *cc, const char *addr, struct conncap_slot **slot);

#endif
