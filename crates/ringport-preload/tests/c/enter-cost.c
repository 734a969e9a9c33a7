/* enter-cost [N]: average cost in ns of
 *   empty_syscall  one io_uring_enter that does nothing (to_submit 0, no
 *                  GETEVENTS), made through libc's syscall()
 *   empty_inline   the same, made with an inline syscall instruction
 *   nop_syscall    one NOP submitted and reaped, enter through syscall()
 *   nop_inline     the same through liburing (inline instructions)
 * Run natively and under `ringport run` to compare: under ringport,
 * syscall() calls take the interposed fast path and inline ones trap
 * (set RINGPORT_SYSCALL_FASTPATH=0 to make both trap). */
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

/* io_uring_enter(fd, to_submit, min, flags, NULL, 0) as an inline
 * instruction, as liburing makes it. */
static long enter_inline(int fd, unsigned to_submit, unsigned min, unsigned flags)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = flags;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = 0;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"((long)__NR_io_uring_enter), "D"((long)fd), "S"((long)to_submit), "d"((long)min),
			   "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#else
	return syscall(__NR_io_uring_enter, fd, to_submit, min, flags, NULL, 0);
#endif
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
	double empty_syscall = (now() - t0) / n;
	t0 = now();
	for (long i = 0; i < n; i++)
		enter_inline(ring.ring_fd, 0, 0, 0);
	double empty_inline = (now() - t0) / n;
	t0 = now();
	for (long i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		io_uring_prep_nop(sqe);
		/* Publish the SQE as io_uring_submit does, then enter by hand. */
		ring.sq.sqe_head = ring.sq.sqe_tail;
		io_uring_smp_store_release(ring.sq.ktail, ring.sq.sqe_tail);
		syscall(__NR_io_uring_enter, ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		io_uring_peek_cqe(&ring, &cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
	double nop_syscall = (now() - t0) / n;
	t0 = now();
	for (long i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		io_uring_prep_nop(sqe);
		io_uring_submit_and_wait(&ring, 1);
		io_uring_peek_cqe(&ring, &cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
	double nop_inline = (now() - t0) / n;
	printf("empty_syscall_ns %.0f empty_inline_ns %.0f nop_syscall_ns %.0f nop_inline_ns %.0f\n", empty_syscall,
	       empty_inline, nop_syscall, nop_inline);
	io_uring_queue_exit(&ring);
	return 0;
}
