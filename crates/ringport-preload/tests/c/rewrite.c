/* rewrite: io_uring_enter made with inline `mov $426,%eax; syscall`
 * sequences at three alignments (one fits an aligned 8-byte word, one an
 * aligned 16-byte word, one neither), from several threads at once, with a
 * vector register holding a value across every call. Under `ringport run`
 * the first two sites are rewritten to call the engine without a trap (the
 * third keeps trapping); every result and the vector register must be right
 * either way. Prints "ok sites N traps M calls C".
 * `rewrite single`: the same from the main thread alone; then the third
 * site is rewritten too (plain stores are safe when no other thread runs
 * the program's code). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define THREADS 4
#define ROUNDS 20000

/* One enter through a site whose `mov` starts PAD bytes past a 16-byte
 * boundary; xmm8 (and ymm8 with AVX) carries `pat` across it. */
#define ENTER_AT(name, pad)                                                        \
static long name(int fd, unsigned sub, unsigned min, unsigned flags, const void *pat, void *out) \
{                                                                                  \
	register long r10 asm("r10") = flags;                                          \
	register long r8 asm("r8") = 0;                                                \
	register long r9 asm("r9") = 0;                                                \
	long ret;                                                                      \
	asm volatile("movdqu (%[p]), %%xmm8\n\t"                                       \
		     ".p2align 4\n\t"                                                  \
		     ".fill " #pad ", 1, 0x90\n\t"                                     \
		     "mov $426, %%eax\n\t"                                             \
		     "syscall\n\t"                                                     \
		     "movdqu %%xmm8, (%[o])"                                           \
		     : "=a"(ret)                                                       \
		     : "D"(fd), "S"(sub), "d"(min), "r"(r10), "r"(r8), "r"(r9),       \
		       [p] "r"(pat), [o] "r"(out)                                      \
		     : "rcx", "r11", "memory", "xmm8");                                \
	return ret;                                                                    \
}
ENTER_AT(enter_w8, 3)
ENTER_AT(enter_w16, 7)
ENTER_AT(enter_none, 13)

static long (*const sites[3])(int, unsigned, unsigned, unsigned, const void *, void *) = {
	enter_w8, enter_w16, enter_none,
};

static void *worker(void *arg)
{
	long id = (long)arg;
	struct io_uring ring;
	if (io_uring_queue_init(8, &ring, 0))
		FAIL("queue_init");
	unsigned char pat[16], out[16];
	for (int i = 0; i < ROUNDS; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = i;
		/* Publish the SQE (what io_uring_submit does before its enter). */
		ring.sq.sqe_head = ring.sq.sqe_tail;
		io_uring_smp_store_release(ring.sq.ktail, ring.sq.sqe_tail);
		memset(pat, (int)(id * 16 + i % 16), sizeof pat);
		memset(out, 0, sizeof out);
		long r = sites[i % 3](ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, pat, out);
		if (r != 1)
			FAIL("thread %ld round %d site %d: enter returned %ld", id, i, i % 3, r);
		if (memcmp(pat, out, sizeof pat))
			FAIL("thread %ld round %d site %d: xmm8 not preserved", id, i, i % 3);
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(&ring, &cqe) || cqe->user_data != (unsigned long long)i || cqe->res != 0)
			FAIL("thread %ld round %d: bad completion", id, i);
		io_uring_cqe_seen(&ring, cqe);
	}
	/* An error comes back as -errno, not -1/errno. */
	unsigned char pat2[16] = { 0 }, out2[16];
	long r = enter_w8(-1, 0, 0, 0, pat2, out2);
	if (r != -9)
		FAIL("enter on fd -1: want -EBADF (-9), got %ld", r);
	io_uring_queue_exit(&ring);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];
	int threads = THREADS;
	if (argc > 1 && !strcmp(argv[1], "single")) {
		threads = 1;
		worker(0);
	} else {
		for (long i = 0; i < THREADS; i++)
			pthread_create(&t[i], NULL, worker, (void *)i);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
	}
	unsigned long (*sites_fn)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_rewritten_sites");
	unsigned long long (*traps_fn)(void) = (unsigned long long (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_trap_count");
	printf("ok sites %lu traps %llu calls %d\n", sites_fn ? sites_fn() : 0, traps_fn ? traps_fn() : 0, threads * ROUNDS);
	return 0;
}
