/* enter-cost [N]: average cost of one io_uring_enter that does nothing
 * (to_submit 0, no GETEVENTS), and of one NOP submitted and reaped, in ns.
 * Run natively and under `ringport run` to compare a trapped enter with a
 * native one. */
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	struct io_uring ring;
	int r = io_uring_queue_init(64, &ring, 0);
	if (r) {
		fprintf(stderr, "queue_init: %d\n", r);
		return 1;
	}
	double t0 = now();
	for (long i = 0; i < n; i++)
		syscall(__NR_io_uring_enter, ring.ring_fd, 0, 0, 0, NULL, 0);
	double empty = (now() - t0) / n;
	t0 = now();
	for (long i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		io_uring_prep_nop(sqe);
		io_uring_submit_and_wait(&ring, 1);
		io_uring_peek_cqe(&ring, &cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
	double nop = (now() - t0) / n;
	printf("empty_enter_ns %.0f nop_roundtrip_ns %.0f\n", empty, nop);
	io_uring_queue_exit(&ring);
	return 0;
}
