/* rewrite: io_uring_enter made with inline `mov $426,%eax; syscall`
 * sequences at three alignments (one fits an aligned 8-byte word, one an
 * aligned 16-byte word, one neither), from several threads at once, with a
 * vector register holding a value across every call. Under `ringport run`
 * the first two sites are rewritten to call the engine without a trap (the
 * third keeps trapping); every result and the vector register must be right
 * either way. A fourth site, a function ending in `mov $426,%eax;
 * syscall; ret` whose `mov` straddles a 16-byte boundary, with alignment
 * padding after the `ret` (Debian's liburing 2.3 submit path has this
 * shape), is rewritten at its `syscall` even with threads running.
 * Prints "ok sites N traps M calls C".
 * `rewrite single`: the same from the main thread alone; then the third
 * site is rewritten too (plain stores are safe when no other thread runs
 * the program's code).
 * `rewrite vectors`: from one thread, through three more sites, every vector
 * and mask register the CPU has carries a pattern across the call: xmm0-15
 * (with the AVX state first put in its initial state, so the upper halves
 * must come back as zeros), ymm0-15 with AVX, zmm0-31 and k0-7 with
 * AVX-512 (every other round zeros in zmm16-31 and k0-7), and ymm0-15 with
 * the AVX-512 state made initial (upper halves, zmm16-31 and k0-7 must
 * come back as zeros). Run with
 * RINGPORT_TEST_CLOBBER=1, the engine overwrites all of them on every call
 * through a rewritten site. Prints "ok sites N traps M calls C". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* enter_tail(fd, to_submit, min, flags): the `mov` at offset 14 of a
 * 16-byte line, `syscall; ret`, then padding to the next line. */
long enter_tail(int fd, unsigned sub, unsigned min, unsigned flags);
asm(".text\n"
    ".p2align 4\n"
    ".type enter_tail, @function\n"
    "enter_tail:\n\t"
    "mov %ecx, %r10d\n\t"
    "xor %r8d, %r8d\n\t"
    "xor %r9d, %r9d\n\t"
    ".fill 5, 1, 0x90\n\t"
    "mov $426, %eax\n"
    "enter_tail_sys:\n\t"
    "syscall\n\t"
    "ret\n\t"
    ".p2align 4\n\t"
    ".size enter_tail, .-enter_tail\n");

/* getpid through enter_tail's `syscall` instruction, jumped to with
 * another number in eax: once the site is rewritten, the page makes that
 * call itself. */
long tail_getpid(void);
asm(".text\n"
    ".type tail_getpid, @function\n"
    "tail_getpid:\n\t"
    "mov $39, %eax\n\t"
    "jmp enter_tail_sys\n\t"
    ".size tail_getpid, .-tail_getpid\n");

static long tail_site(int fd, unsigned sub, unsigned min, unsigned flags, const void *pat, void *out)
{
	long r = enter_tail(fd, sub, min, flags);
	memcpy(out, pat, 16);
	if (tail_getpid() != getpid())
		FAIL("getpid through the rewritten site's syscall: %ld, want %d", tail_getpid(), getpid());
	return r;
}

static long (*const sites[4])(int, unsigned, unsigned, unsigned, const void *, void *) = {
	enter_w8, enter_w16, enter_none, tail_site,
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
		long r = sites[i % 4](ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, pat, out);
		if (r != 1)
			FAIL("thread %ld round %d site %d: enter returned %ld", id, i, i % 4, r);
		if (memcmp(pat, out, sizeof pat))
			FAIL("thread %ld round %d site %d: xmm8 not preserved", id, i, i % 4);
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

/* ---- `rewrite vectors` ---- */
#define VROUNDS 3000
/* The site: the `mov` at offset 3 of a 16-byte line (one aligned word). */
#define ENTER_ASM ".p2align 4\n\t" ".fill 3, 1, 0x90\n\t" "mov $426, %%eax\n\t" "syscall\n\t"
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
#define ZMM_CLOBBERS XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", \
	"xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", \
	"xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
/* Stores zmm0-31 (64 bytes each) and then k0-7 (8 bytes each) at %[o]. */
#define ZMM_STORE_ASM                                                              \
	".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n\t" \
	"vmovdqu64 %%zmm\\r, \\r*64(%[o])\n\t"                                  \
	".endr\n\t"                                                               \
	".irp r,0,1,2,3,4,5,6,7\n\t"                                              \
	"kmovq %%k\\r, 2048+\\r*8(%[o])\n\t"                                     \
	".endr\n\t"                                                               \
	"vzeroupper"
#define SETUP_ARGS                                                                 \
	register long r10 asm("r10") = flags;                                          \
	register long r8 asm("r8") = 0;                                                \
	register long r9 asm("r9") = 0;                                                \
	long ret;

/* xmm0-15; where the CPU has AVX, its state is put in its initial state
 * first and the upper halves of ymm0-15 are stored after the call (must
 * be zeros). */
static long enter_xmm(int fd, unsigned sub, unsigned min, unsigned flags, int avx, const unsigned char *in, unsigned char *out)
{
	SETUP_ARGS
	asm volatile("test %[avx], %[avx]\n\t"
		     "jz 1f\n\t"
		     "vzeroupper\n"
		     "1:\n\t"
		     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "movdqu \\r*16(%[i]), %%xmm\\r\n\t"
		     ".endr\n\t"
		     ENTER_ASM
		     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "movdqu %%xmm\\r, \\r*16(%[o])\n\t"
		     ".endr\n\t"
		     "test %[avx], %[avx]\n\t"
		     "jz 2f\n\t"
		     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "vextractf128 $1, %%ymm\\r, 256+\\r*16(%[o])\n\t"
		     ".endr\n"
		     "2:"
		     : "=a"(ret)
		     : "D"(fd), "S"(sub), "d"(min), "r"(r10), "r"(r8), "r"(r9),
		       [i] "r"(in), [o] "r"(out), [avx] "r"(avx)
		     : "rcx", "r11", "memory", "cc", XMM_CLOBBERS);
	return ret;
}

__attribute__((target("avx")))
static long enter_ymm(int fd, unsigned sub, unsigned min, unsigned flags, const unsigned char *in, unsigned char *out)
{
	SETUP_ARGS
	asm volatile(".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "vmovdqu \\r*32(%[i]), %%ymm\\r\n\t"
		     ".endr\n\t"
		     ENTER_ASM
		     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "vmovdqu %%ymm\\r, \\r*32(%[o])\n\t"
		     ".endr\n\t"
		     "vzeroupper"
		     : "=a"(ret)
		     : "D"(fd), "S"(sub), "d"(min), "r"(r10), "r"(r8), "r"(r9), [i] "r"(in), [o] "r"(out)
		     : "rcx", "r11", "memory", XMM_CLOBBERS);
	return ret;
}

/* zmm0-31 at 64 bytes each, then k0-7 at 8 bytes each. */
__attribute__((target("avx512f,avx512bw")))
static long enter_zmm(int fd, unsigned sub, unsigned min, unsigned flags, const unsigned char *in, unsigned char *out)
{
	SETUP_ARGS
	asm volatile(".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n\t"
		     "vmovdqu64 \\r*64(%[i]), %%zmm\\r\n\t"
		     ".endr\n\t"
		     ".irp r,0,1,2,3,4,5,6,7\n\t"
		     "kmovq 2048+\\r*8(%[i]), %%k\\r\n\t"
		     ".endr\n\t"
		     ENTER_ASM
		     ZMM_STORE_ASM
		     : "=a"(ret)
		     : "D"(fd), "S"(sub), "d"(min), "r"(r10), "r"(r8), "r"(r9), [i] "r"(in), [o] "r"(out)
		     : "rcx", "r11", "memory", ZMM_CLOBBERS);
	return ret;
}

/* ymm0-15 hold the pattern (32 bytes each) and the AVX-512 state is put
 * in its initial state (XRSTOR of components 5-7 with XSTATE_BV clear):
 * the stub finds them not in use, and must give back zeros there (upper
 * halves of zmm0-15, zmm16-31, k0-7) whatever the engine left. Stores
 * zmm0-31 and k0-7 as enter_zmm does. */
__attribute__((target("avx512f,avx512bw")))
static long enter_zinit(int fd, unsigned sub, unsigned min, unsigned flags, const unsigned char *in, unsigned char *out)
{
	static unsigned char area[1024] __attribute__((aligned(64))); /* header all zero */
	register long r10 asm("r10") = flags;
	register long r8 asm("r8") = 0;
	register long r9 asm("r9") = 0;
	long ret;
	asm volatile(".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		     "vmovdqu \\r*32(%[i]), %%ymm\\r\n\t"
		     ".endr\n\t"
		     "mov $0xe0, %%eax\n\t"
		     "xor %%edx, %%edx\n\t"
		     "xrstor64 (%[a])\n\t"
		     "mov %[m], %%edx\n\t"
		     ENTER_ASM
		     ZMM_STORE_ASM
		     : "=&a"(ret)
		     : "D"(fd), "S"(sub), [m] "r"(min), "r"(r10), "r"(r8), "r"(r9), [i] "r"(in), [o] "r"(out), [a] "r"(area)
		     : "rcx", "rdx", "r11", "memory", ZMM_CLOBBERS);
	return ret;
}

/* The OS enabled the state (XCR0) and the CPU has the instructions. */
static int os_has(unsigned long long xcr0_bits, const char *feature)
{
	unsigned a, b, c, d;
	asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if (!(c & (1u << 27)))
		return 0;
	unsigned lo, hi;
	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	unsigned long long xcr0 = ((unsigned long long)hi << 32) | lo;
	if ((xcr0 & xcr0_bits) != xcr0_bits)
		return 0;
	if (!strcmp(feature, "avx"))
		return !!__builtin_cpu_supports("avx");
	return !!__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

static int vectors(void)
{
	int avx = os_has(0x6, "avx"), avx512 = os_has(0xe6, "avx512");
	/* xmm, then ymm with AVX, then zmm and zmm-initial with AVX-512. */
	int order[4], kinds = 0;
	order[kinds++] = 0;
	if (avx)
		order[kinds++] = 1;
	if (avx512) {
		order[kinds++] = 2;
		order[kinds++] = 3;
	}
	struct io_uring ring;
	if (io_uring_queue_init(8, &ring, 0))
		FAIL("queue_init");
	static unsigned char in[2112], out[2112], want[2112];
	for (int i = 0; i < VROUNDS; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = i;
		ring.sq.sqe_head = ring.sq.sqe_tail;
		io_uring_smp_store_release(ring.sq.ktail, ring.sq.sqe_tail);
		for (int j = 0; j < (int)sizeof in; j++)
			in[j] = (unsigned char)(i * 31 + j * 7 + 1);
		memset(out, 0xa5, sizeof out);
		memcpy(want, in, sizeof want);
		int kind = order[i % kinds];
		long r;
		size_t len;
		if (kind == 0) {
			r = enter_xmm(ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, avx, in, out);
			len = avx ? 512 : 256;
			memset(want + 256, 0, 256);
		} else if (kind == 1) {
			r = enter_ymm(ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, in, out);
			len = 512;
		} else if (kind == 3) {
			r = enter_zinit(ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, in, out);
			len = 2112;
			memset(want, 0, sizeof want);
			for (int z = 0; z < 16; z++)
				memcpy(want + z * 64, in + z * 32, 32);
		} else {
			if (i % 2) {
				/* zmm16-31 and k0-7 hold zeros. */
				memset(in + 1024, 0, 1088);
				memset(want + 1024, 0, 1088);
			}
			r = enter_zmm(ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, in, out);
			len = 2112;
		}
		if (r != 1)
			FAIL("round %d kind %d: enter returned %ld", i, kind, r);
		for (size_t j = 0; j < len; j++)
			if (out[j] != want[j])
				FAIL("round %d kind %d: register byte %zu is %#x, want %#x", i, kind, j, out[j], want[j]);
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(&ring, &cqe) || cqe->user_data != (unsigned long long)i || cqe->res != 0)
			FAIL("round %d: bad completion", i);
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	unsigned long (*sites_fn)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_rewritten_sites");
	unsigned long long (*traps_fn)(void) = (unsigned long long (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_trap_count");
	printf("ok sites %lu traps %llu calls %d kinds %d\n", sites_fn ? sites_fn() : 0, traps_fn ? traps_fn() : 0, VROUNDS, kinds);
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];
	int threads = THREADS;
	if (argc > 1 && !strcmp(argv[1], "vectors"))
		return vectors();
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
