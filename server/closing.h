/*
 * The closing path of every refusal: the answer is written first, then what
 * the client still sends is read and dropped against a wall-clock deadline
 * (not a length: a client trickling bytes cannot stretch it), then the
 * connection is closed without CivetWeb reading the rest of the body.
 */
#ifndef AM_CLOSING_H
#define AM_CLOSING_H

#include <stddef.h>

struct mg_connection;

#define CLOSING_BUDGET_MS 1000            /* what a refused request may cost after its headers */
#define CLOSING_DRAIN_BODY (64 * 1024)    /* a larger announced body is never read: closed at once */
#define CLOSING_DRAIN_MAX (80 * 1024)     /* bytes dropped at most (the body and TLS framing) */
#define CLOSING_QUIET_MS 100              /* nothing came for this long: the body is in, close */

/*
 * The socket of this process connected to remote_addr:remote_port on local
 * port local_port (a connection this thread serves: CivetWeb does not hand
 * out its descriptor); -1 when none is found.
 */
int closing_find_fd(const char *remote_addr, int remote_port, int local_port);

/*
 * Read and drop from fd until the peer closes, nothing arrives for
 * quiet_ms, max_bytes were dropped or the clock reaches deadline_ms
 * (am_now_ms()); never blocks past it. Returns the bytes dropped.
 */
size_t closing_drain(int fd, long long deadline_ms, long long quiet_ms, size_t max_bytes);

/*
 * After a refusal was written on conn: CivetWeb will close the connection
 * (no keep-alive, no reading of the unread body), and a small body the
 * client is still sending is read and dropped until deadline_ms, so that it
 * reads the answer rather than a reset. Larger bodies are not read.
 */
void closing_after_refusal(struct mg_connection *conn, long long deadline_ms);

#endif
