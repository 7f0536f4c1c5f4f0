/*
 * The closing path of a refusal (see closing.h). The drain reads the raw
 * socket with poll() against the deadline: CivetWeb's mg_read() returns
 * only once its whole length arrived, as long as each byte comes within
 * the header timeout. On TLS the bytes dropped are records never decrypted:
 * the connection is closed right after, only the kernel's buffer matters
 * (closing with unread data in it sends a reset instead of the answer).
 */
#include "server/closing.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <civetweb.h>

#include "server/base/common.h"
#include "server/base/num.h"

/* The port of a socket address, and its address as text; -1 when not IP. */
static int
sa_port(const struct sockaddr_storage *ss, char *text, size_t textlen)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		if (text != NULL)
			(void)inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)textlen);
		return ntohs(a->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (text != NULL)
			(void)inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)textlen);
		return ntohs(a->sin6_port);
	}
	return -1;
}

int
closing_find_fd(const char *remote_addr, int remote_port, int local_port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct dirent *d;
	DIR *dir;
	char text[64];
	long long n;
	int fd, found = -1;

	if (remote_addr == NULL || (dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while (found < 0 && (d = readdir(dir)) != NULL) {
		if (am_parse_numz(d->d_name, 0, 1 << 30, &n) != 0 || (fd = (int)n) == dirfd(dir))
			continue;
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || sa_port(&ss, NULL, 0) != local_port)
			continue;
		sl = sizeof(ss);
		text[0] = '\0';
		if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    sa_port(&ss, text, sizeof(text)) == remote_port && strcmp(text, remote_addr) == 0)
			found = fd;
	}
	closedir(dir);
	return found;
}

size_t
closing_drain(int fd, long long deadline_ms, long long quiet_ms, size_t max_bytes)
{
	struct pollfd pfd;
	char buf[4096];
	size_t dropped = 0;
	long long left;
	ssize_t n;

	while (dropped < max_bytes && (left = deadline_ms - am_now_ms()) > 0) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (left > quiet_ms)
			left = quiet_ms;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;    /* quiet (the client sent its body and waits), deadline, or an error */
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
			break;    /* the client closed (it has the answer), or an error */
		dropped += (size_t)n;
	}
	return dropped;
}

void
closing_after_refusal(struct mg_connection *conn, long long deadline_ms)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	int fd;

	/* must_close: CivetWeb then neither reads the rest of the body nor waits for another request. */
	mg_disable_connection_keep_alive(conn);
	if (ri == NULL || ri->content_length > CLOSING_DRAIN_BODY ||
	    (ri->content_length <= 0 && mg_get_header(conn, "Transfer-Encoding") == NULL))
		return;   /* nothing announced, or too much to be worth reading: close at once */
	if ((fd = closing_find_fd(ri->remote_addr, ri->remote_port, ri->server_port)) >= 0)
		(void)closing_drain(fd, deadline_ms, CLOSING_QUIET_MS, CLOSING_DRAIN_MAX);
}
