/* A small liburing program: nop, write/read, readv/writev, fixed buffers,
 * fsync, then a second ring after closing the first. Prints "ok" and exits
 * 0 on success; on failure prints what failed and exits 1 (2 when the ring
 * cannot even be created, e.g. -EPERM under a container's seccomp profile). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static struct io_uring_cqe *one(struct io_uring *ring, const char *what)
{
	struct io_uring_cqe *cqe;
	int r = io_uring_submit_and_wait(ring, 1);
	if (r < 0)
		FAIL("%s: submit_and_wait: %s", what, strerror(-r));
	r = io_uring_peek_cqe(ring, &cqe);
	if (r < 0)
		FAIL("%s: peek: %s", what, strerror(-r));
	return cqe;
}

int main(int argc, char **argv)
{
	struct io_uring ring;
	char path[] = "/tmp/ringport-basic-XXXXXX";
	char wbuf[4096], rbuf[4096];
	int r, fd;

	r = io_uring_queue_init(8, &ring, 0);
	if (r < 0) {
		printf("io_uring_queue_init: %s\n", strerror(-r));
		return 2;
	}
	/* nop */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = 42;
	struct io_uring_cqe *cqe = one(&ring, "nop");
	if (cqe->user_data != 42 || cqe->res != 0)
		FAIL("nop: cqe %llu/%d", (unsigned long long)cqe->user_data, cqe->res);
	io_uring_cqe_seen(&ring, cqe);

	fd = mkstemp(path);
	if (fd < 0)
		FAIL("mkstemp: %s", strerror(errno));
	unlink(path);
	for (int i = 0; i < 4096; i++)
		wbuf[i] = (char)(i * 7 + 3);

	/* write then read */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_write(sqe, fd, wbuf, sizeof(wbuf), 0);
	cqe = one(&ring, "write");
	if (cqe->res != 4096)
		FAIL("write: res %d", cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	memset(rbuf, 0, sizeof(rbuf));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, rbuf, sizeof(rbuf), 0);
	cqe = one(&ring, "read");
	if (cqe->res != 4096 || memcmp(rbuf, wbuf, 4096))
		FAIL("read: res %d or data differs", cqe->res);
	io_uring_cqe_seen(&ring, cqe);

	/* readv */
	struct iovec iov[2] = {{rbuf, 1000}, {rbuf + 1000, 3096}};
	memset(rbuf, 0, sizeof(rbuf));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_readv(sqe, fd, iov, 2, 0);
	cqe = one(&ring, "readv");
	if (cqe->res != 4096 || memcmp(rbuf, wbuf, 4096))
		FAIL("readv: res %d or data differs", cqe->res);
	io_uring_cqe_seen(&ring, cqe);

	/* fixed buffers */
	struct iovec reg = {rbuf, sizeof(rbuf)};
	r = io_uring_register_buffers(&ring, &reg, 1);
	if (r < 0)
		FAIL("register_buffers: %s", strerror(-r));
	memset(rbuf, 0, sizeof(rbuf));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read_fixed(sqe, fd, rbuf, 4096, 0, 0);
	cqe = one(&ring, "read_fixed");
	if (cqe->res != 4096 || memcmp(rbuf, wbuf, 4096))
		FAIL("read_fixed: res %d or data differs", cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_unregister_buffers(&ring);

	/* fsync (punted to a worker) */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_fsync(sqe, fd, 0);
	cqe = one(&ring, "fsync");
	if (cqe->res != 0)
		FAIL("fsync: res %d", cqe->res);
	io_uring_cqe_seen(&ring, cqe);

	/* probe */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_READ))
		FAIL("probe: READ not supported");
	io_uring_free_probe(probe);

	int ring_fd = ring.ring_fd;
	/* Who serves the ring: the kernel's fd is anon_inode:[io_uring],
	 * ringport's a memfd named [io_uring]. */
	char link[64], target[256] = "";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", ring_fd);
	ssize_t l = readlink(link, target, sizeof(target) - 1);
	if (l > 0)
		target[l] = 0;
	const char *kind = strstr(target, "memfd:") ? "ringport" : strstr(target, "anon_inode") ? "kernel" : "unknown";
	io_uring_queue_exit(&ring);
	/* The ring fd is really closed. */
	if (fcntl(ring_fd, F_GETFD) != -1 || errno != EBADF)
		FAIL("ring fd %d still open after io_uring_queue_exit", ring_fd);

	/* A second ring works after the first is gone. */
	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0)
		FAIL("second queue_init: %s", strerror(-r));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	cqe = one(&ring, "nop2");
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	close(fd);
	printf("ok ring=%s ring_fd=%d\n", kind, ring_fd);
	return 0;
}
