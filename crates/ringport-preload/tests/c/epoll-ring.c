/* epoll-ring: a ring fd in an epoll set (as tokio-uring's AsyncFd puts it)
 * reports EPOLLIN when completions wait, edge- and level-triggered, with the
 * program's event data; ADD/MOD/DEL answer as the kernel does. Run natively
 * and under `ringport run`; exits 0 when all holds, 1 with a message. */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static int wait_events(int epfd, int ms, unsigned long long *data)
{
	struct epoll_event ev[4];
	int n;
	/* The kernel's task work interrupts epoll_wait (EINTR) on a ring set
	 * up without COOP_TASKRUN. */
	do
		n = epoll_wait(epfd, ev, 4, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		FAIL("epoll_wait: %s", strerror(errno));
	if (n > 0) {
		if (!(ev[0].events & EPOLLIN))
			FAIL("event without EPOLLIN: %#x", ev[0].events);
		*data = ev[0].data.u64;
	}
	return n;
}

static void reap(struct io_uring *ring, int n)
{
	for (int i = 0; i < n; i++) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(ring, &cqe))
			FAIL("wait_cqe");
		io_uring_cqe_seen(ring, cqe);
	}
}

int main(void)
{
	struct io_uring ring;
	unsigned long long data = 0;
	if (io_uring_queue_init(8, &ring, 0))
		FAIL("queue_init");
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 0x1234 };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ring.ring_fd, &ev))
		FAIL("EPOLL_CTL_ADD: %s", strerror(errno));
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ring.ring_fd, &ev) != -1 || errno != EEXIST)
		FAIL("second ADD: want EEXIST, got %s", strerror(errno));
	if (wait_events(epfd, 0, &data) != 0)
		FAIL("readable with an empty CQ");

	/* An inline completion (NOP) and one from another thread (TIMEOUT). */
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	io_uring_submit(&ring);
	if (wait_events(epfd, 1000, &data) != 1 || data != 0x1234)
		FAIL("no EPOLLIN after a NOP (data %#llx)", data);
	reap(&ring, 1);
	if (wait_events(epfd, 0, &data) != 0)
		FAIL("edge-triggered: a second event without a new completion");
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000 * 1000 };
	io_uring_prep_timeout(io_uring_get_sqe(&ring), &ts, 0, 0);
	io_uring_submit(&ring);
	if (wait_events(epfd, 1000, &data) != 1)
		FAIL("no EPOLLIN for a timeout's completion");
	reap(&ring, 1);

	/* Level-triggered: readable while a CQE waits, not once it is reaped
	 * (ringport notices the reaping at the next enter). */
	ev.events = EPOLLIN;
	ev.data.u64 = 0x5678;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, ring.ring_fd, &ev))
		FAIL("EPOLL_CTL_MOD: %s", strerror(errno));
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	io_uring_submit(&ring);
	for (int i = 0; i < 2; i++)
		if (wait_events(epfd, 1000, &data) != 1 || data != 0x5678)
			FAIL("level-triggered: not readable with a CQE waiting (round %d)", i);
	reap(&ring, 1);
	io_uring_enter(ring.ring_fd, 0, 0, 0, NULL);
	if (wait_events(epfd, 0, &data) != 0)
		FAIL("level-triggered: readable after the CQ was emptied");

	if (epoll_ctl(epfd, EPOLL_CTL_DEL, ring.ring_fd, NULL))
		FAIL("EPOLL_CTL_DEL: %s", strerror(errno));
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, ring.ring_fd, NULL) != -1 || errno != ENOENT)
		FAIL("second DEL: want ENOENT, got %s", strerror(errno));
	io_uring_queue_exit(&ring);
	close(epfd);
	printf("ok\n");
	return 0;
}
