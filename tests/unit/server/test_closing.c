/* The refusal's closing path: its socket found by address, its drain bounded by the clock. */
#include "tests/unit/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/base/common.h"
#include "server/closing.h"

struct pair {
	int lfd, cfd, sfd;
	int lport, cport;
};

static int
port_of(int fd, int peer)
{
	struct sockaddr_in a;
	socklen_t sl = sizeof(a);

	if ((peer ? getpeername(fd, (struct sockaddr *)&a, &sl) : getsockname(fd, (struct sockaddr *)&a, &sl)) != 0)
		return -1;
	return ntohs(a.sin_port);
}

/* A loopback TCP connection: cfd the client's end, sfd the server's. */
static int
pair_open(struct pair *p)
{
	struct sockaddr_in a;
	socklen_t sl = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(p->lfd, 4) != 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &sl) != 0)
		return -1;
	p->cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->cfd < 0 || connect(p->cfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    (p->sfd = accept(p->lfd, NULL, NULL)) < 0)
		return -1;
	p->lport = port_of(p->lfd, 0);
	p->cport = port_of(p->cfd, 0);
	return 0;
}

static void
pair_close(struct pair *p)
{
	close(p->cfd);
	close(p->sfd);
	close(p->lfd);
}

/* The client's side: a byte every interval ms, count times, then close (close_after) or stay. */
struct drip {
	int fd, interval, count, close_after;
};

static void *
drip_run(void *arg)
{
	struct drip *d = arg;
	int i;

	for (i = 0; i < d->count; i++) {
		if (send(d->fd, "x", 1, MSG_NOSIGNAL) != 1)
			break;
		usleep((useconds_t)d->interval * 1000);
	}
	if (d->close_after)
		shutdown(d->fd, SHUT_WR);
	return NULL;
}

static long long
drain_with(struct pair *p, int interval, int count, int close_after, long long budget, long long quiet,
    size_t max, size_t *dropped)
{
	struct drip d = { p->cfd, interval, count, close_after };
	pthread_t t;
	long long t0 = am_now_ms();

	pthread_create(&t, NULL, drip_run, &d);
	*dropped = closing_drain(p->sfd, t0 + budget, quiet, max);
	t0 = am_now_ms() - t0;
	pthread_join(t, NULL);
	return t0;
}

static void
run_tests(void)
{
	struct pair p;
	size_t dropped;
	long long ms;

	CHECK(pair_open(&p) == 0);
	CHECK(closing_find_fd("127.0.0.1", p.cport, p.lport) == p.sfd);
	CHECK(closing_find_fd("127.0.0.1", p.lport, p.cport) == p.cfd);   /* the other end, by its addresses */
	CHECK(closing_find_fd("127.0.0.2", p.cport, p.lport) == -1);
	CHECK(closing_find_fd("127.0.0.1", p.cport, 1) == -1);
	CHECK(closing_find_fd(NULL, p.cport, p.lport) == -1);

	/* A byte every 20 ms, forever: cut at the deadline, not at a length. */
	ms = drain_with(&p, 20, 40, 0, 300, 100, 1 << 20, &dropped);
	CHECK(ms >= 290 && ms < 450);
	CHECK(dropped >= 5 && dropped <= 16);
	pair_close(&p);

	/* A byte every 300 ms (the one per second, faster): quiet after 100 ms, closed. */
	CHECK(pair_open(&p) == 0);
	ms = drain_with(&p, 300, 2, 0, 1000, 100, 1 << 20, &dropped);
	CHECK(ms >= 90 && ms < 250);
	CHECK(dropped == 1);
	pair_close(&p);

	/* The client sends its body and closes: done at once with every byte. */
	CHECK(pair_open(&p) == 0);
	ms = drain_with(&p, 0, 50, 1, 1000, 500, 1 << 20, &dropped);
	CHECK(ms < 250);
	CHECK(dropped == 50);
	pair_close(&p);

	/* A byte cap ends it too. */
	CHECK(pair_open(&p) == 0);
	ms = drain_with(&p, 0, 200, 0, 1000, 500, 64, &dropped);
	CHECK(dropped >= 64 && ms < 250);
	pair_close(&p);
}

TEST_MAIN("closing")
