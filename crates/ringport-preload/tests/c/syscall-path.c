/* syscall-path: io_uring calls made through libc's syscall() are served by
 * the interposed syscall() without a seccomp trap, with libc's convention
 * (-1 and errno), while inline syscall instructions (liburing) still trap.
 * Run under `ringport run`. Exits 0 when so, 1 with a message otherwise. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static unsigned long long (*trap_count)(void);

static int ring_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, "memfd:[io_uring]") != NULL;
	if (f)
		fclose(f);
	return n;
}

/* Publishes the SQEs liburing prepared (what io_uring_submit does before
 * its enter), so the enter can be made by hand. */
static void flush_sq(struct io_uring *ring)
{
	ring->sq.sqe_head = ring->sq.sqe_tail;
	io_uring_smp_store_release(ring->sq.ktail, ring->sq.sqe_tail);
}

static void nop_roundtrip(struct io_uring *ring, unsigned long long ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	io_uring_prep_nop(sqe);
	sqe->user_data = ud;
	flush_sq(ring);
	errno = 4242;
	long r = syscall(__NR_io_uring_enter, ring->ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	if (r != 1)
		FAIL("enter through syscall(): %ld errno %d", r, errno);
	if (errno != 4242)
		FAIL("a successful syscall() changed errno to %d", errno);
	if (io_uring_peek_cqe(ring, &cqe) || cqe->user_data != ud || cqe->res != 0)
		FAIL("NOP %llu: no or wrong CQE", ud);
	io_uring_cqe_seen(ring, cqe);
}

int main(void)
{
	trap_count = (unsigned long long (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_trap_count");
	if (!trap_count)
		FAIL("not running under ringport (ringport_preload_trap_count not found)");

	/* 1. setup, enter, register through syscall(): no trap. */
	unsigned long long t0 = trap_count();
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	long fd = syscall(__NR_io_uring_setup, 8, &p);
	if (fd < 0)
		FAIL("setup through syscall(): errno %d", errno);
	struct io_uring ring;
	if (io_uring_queue_mmap(fd, &p, &ring))
		FAIL("io_uring_queue_mmap");
	/* Map SQ slots to SQEs one to one (io_uring_queue_init does this). */
	for (unsigned i = 0; i < *ring.sq.kring_entries; i++)
		ring.sq.array[i] = i;
	for (unsigned long long i = 0; i < 1000; i++)
		nop_roundtrip(&ring, i + 1);
	struct io_uring_probe *probe = calloc(1, sizeof(*probe) + 256 * sizeof(struct io_uring_probe_op));
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, probe, 256) != 0 || probe->last_op == 0)
		FAIL("register PROBE through syscall(): errno %d", errno);
	free(probe);
	/* Errors: -1 and errno, as libc's syscall() reports them. */
	errno = 0;
	long r = syscall(__NR_io_uring_enter, -1, 0, 0, 0, NULL, 0);
	if (r != -1 || errno != EBADF)
		FAIL("enter on fd -1: %ld errno %d (want -1 EBADF)", r, errno);
	errno = 0;
	r = syscall(__NR_io_uring_setup, 0, &p);
	if (r != -1 || errno != EINVAL)
		FAIL("setup with 0 entries: %ld errno %d (want -1 EINVAL)", r, errno);
	unsigned long long t1 = trap_count();
	if (t1 != t0)
		FAIL("%llu calls through syscall() trapped (want 0)", t1 - t0);

	/* 2. The same ring through liburing's inline syscall instructions:
	 *    every enter traps, and is served the same way. */
	for (int i = 0; i < 10; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		io_uring_prep_nop(sqe);
		sqe->user_data = 7000 + i;
		if (io_uring_submit_and_wait(&ring, 1) != 1)
			FAIL("liburing submit_and_wait");
		if (io_uring_peek_cqe(&ring, &cqe) || cqe->user_data != 7000ULL + i)
			FAIL("inline NOP: wrong CQE");
		io_uring_cqe_seen(&ring, cqe);
	}
	unsigned long long t2 = trap_count();
	if (t2 - t1 < 10)
		FAIL("inline enters: %llu traps (want >= 10)", t2 - t1);

	/* 3. A ring closed through syscall(SYS_close) is freed. */
	int before = ring_mappings();
	long fd2 = syscall(__NR_io_uring_setup, 4, &p);
	if (fd2 < 0 || ring_mappings() <= before)
		FAIL("second ring: fd %ld, mappings %d -> %d", fd2, before, ring_mappings());
	if (syscall(SYS_close, fd2) != 0)
		FAIL("close through syscall(): errno %d", errno);
	if (ring_mappings() != before)
		FAIL("ring closed through syscall(SYS_close) not freed");
	errno = 0;
	if (syscall(__NR_io_uring_enter, fd2, 0, 0, 0, NULL, 0) != -1 || errno != EBADF)
		FAIL("enter on the closed ring: errno %d (want EBADF)", errno);

	io_uring_queue_exit(&ring);
	printf("ok traps_syscall %llu traps_inline %llu\n", t1 - t0, t2 - t1);
	return 0;
}
