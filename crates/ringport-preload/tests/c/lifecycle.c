/* lifecycle MODE: the lifecycle edges of io_uring under ringport.
 * Exits 0 when the behaviour is the documented one (docs/INTERCEPTION.md),
 * 1 with a message otherwise. Every mode arms alarm() so it cannot hang.
 *
 *   close        rings closed with the raw close syscall are freed
 *   close-range  rings closed with close_range are freed
 *   dup          a dup of the ring fd works; closing the dup keeps the ring;
 *                closing the original keeps it too while the dup is open
 *   dup2         dup2/dup3 of another file onto the ring fd: the fd is that
 *                file now (enter on it: EOPNOTSUPP), and the ring is freed,
 *                or lives on through a dup of it; dup2(fd, fd) changes
 *                nothing
 *   fork         parent and child share the parent's ring: each reaps
 *                the other's completions, a completion of one ends the
 *                other's wait; a SINGLE_ISSUER ring refuses the child
 *                (EEXIST, as on the kernel); the child can make its own
 *   fork-punt    as fork, after the parent used the worker pool, and the
 *                child's own ring punts to workers too
 *   fork-cancel  a fork child cancels requests its parent submitted: a
 *                read a worker runs (-EINTR/-ECANCELED, the cancel 0 or
 *                -EALREADY), an armed poll (-ECANCELED, the cancel 0), and
 *                with CANCEL_ANY a timeout (the cancel counts 1)
 *   fork-exec    a fork child's requests in flight are cancelled when it
 *                execs (a timeout and the NOP linked to it: -ECANCELED
 *                both), through execl, execv, execle and execvp; the
 *                exec'd image gets its arguments and environment intact
 *   ring-poll    POLL_ADD on a ring fd waits until that ring has a CQE
 *                (POLLIN), and a ring with SQ room polls POLLOUT at once
 *   exec-keep    re-execs itself with LD_PRELOAD kept: the new image works
 *   exec-drop    re-execs itself without LD_PRELOAD: the new image is killed
 *                by SIGSYS at its first io_uring call (exit 0 when so)
 *   eintr        a signal during a blocking wait gives -EINTR (SA_RESTART
 *                or not), and the wait works again afterwards
 *   sigmask      a thread that blocks every signal (SIGSYS included, as
 *                far as it can tell) still makes io_uring calls
 *   storm        threads submitting reads and waiting while signals hit
 *                them at a high rate: every CQE right, no hang
 *   handlers     the program's handlers as it installed them: sigaction and
 *                signal() report them back; a queued signal's value and
 *                code reach a SA_SIGINFO handler that interrupts a wait; a
 *                one-shot (SA_RESETHAND) handler runs once; a handler
 *                making io_uring calls of its own while signals hit a
 *                thread that is in and out of io_uring_enter all the time
 *                (trapped, and through libc's syscall()) never runs inside
 *                the engine
 *   ring-rw      read() and write() on a ring fd fail with EINVAL, as on
 *                the kernel (trapped, and through syscall())
 *   shared       one ring, several threads submitting (under the program's
 *                lock, as the SQ requires) and several waiting in
 *                io_uring_enter at once: every CQE arrives exactly once
 *   child-*      internal: the re-exec'd images
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static const char *self_path;

static int count_ring_mappings(void)
{
	/* The engine maps each live ring's memfd; liburing's own maps are
	 * gone after io_uring_queue_exit. */
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;
	if (!f)
		FAIL("open maps");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "memfd:[io_uring]"))
			n++;
	fclose(f);
	return n;
}

static int count_ring_fds(void)
{
	char path[64], target[256];
	int n = 0;
	for (int fd = 0; fd < 65536; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t l = readlink(path, target, sizeof(target) - 1);
		if (l < 0)
			continue;
		target[l] = 0;
		if (strstr(target, "[io_uring]"))
			n++;
	}
	return n;
}

static void nop_roundtrip(struct io_uring *ring, const char *what)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	io_uring_prep_nop(sqe);
	sqe->user_data = 0x1234;
	int r = io_uring_submit_and_wait(ring, 1);
	if (r != 1)
		FAIL("%s: submit_and_wait %d", what, r);
	r = io_uring_peek_cqe(ring, &cqe);
	if (r || cqe->user_data != 0x1234 || cqe->res != 0)
		FAIL("%s: bad cqe", what);
	io_uring_cqe_seen(ring, cqe);
}

static void fsync_roundtrip(struct io_uring *ring, const char *what)
{
	char path[] = "/tmp/ringport-lc-XXXXXX";
	int fd = mkstemp(path);
	struct io_uring_cqe *cqe;
	if (fd < 0)
		FAIL("mkstemp");
	unlink(path);
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, fd, 0);
	int r = io_uring_submit_and_wait(ring, 1);
	if (r != 1)
		FAIL("%s: submit_and_wait %d", what, r);
	if (io_uring_peek_cqe(ring, &cqe) || cqe->res != 0)
		FAIL("%s: fsync cqe", what);
	io_uring_cqe_seen(ring, cqe);
	close(fd);
}

static int mode_close(int use_range)
{
	int base_maps = count_ring_mappings(), base_fds = count_ring_fds();
	for (int i = 0; i < 300; i++) {
		struct io_uring ring;
		int r = io_uring_queue_init(4, &ring, 0);
		if (r)
			FAIL("queue_init %d: %s", i, strerror(-r));
		nop_roundtrip(&ring, "close");
		int fd = ring.ring_fd;
		/* Unmap liburing's views, then close the fd our way. */
		ring.ring_fd = open("/dev/null", O_RDONLY);
		io_uring_queue_exit(&ring);
		r = use_range ? (int)syscall(SYS_close_range, fd, fd, 0) : (int)syscall(SYS_close, fd);
		if (r)
			FAIL("close %d: %s", fd, strerror(errno));
		if (fcntl(fd, F_GETFD) != -1)
			FAIL("fd %d still open", fd);
	}
	int maps = count_ring_mappings(), fds = count_ring_fds();
	if (maps != base_maps || fds != base_fds)
		FAIL("rings not freed: %d mappings (was %d), %d ring fds (was %d)", maps, base_maps, fds, base_fds);
	return 0;
}

static int mode_dup(void)
{
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	int d = dup(ring.ring_fd);
	if (d < 0)
		FAIL("dup");
	/* Submitting through the dup reaches the same ring. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	io_uring_smp_store_release(ring.sq.ktail, *ring.sq.ktail + 1);
	ring.sq.sqe_head = ring.sq.sqe_tail;
	r = (int)syscall(__NR_io_uring_enter, d, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	if (r != 1)
		FAIL("enter on dup: %d %s", r, strerror(errno));
	struct io_uring_cqe *cqe;
	if (io_uring_peek_cqe(&ring, &cqe))
		FAIL("no cqe through dup");
	io_uring_cqe_seen(&ring, cqe);
	close(d);
	nop_roundtrip(&ring, "after closing the dup");

	/* The other way round: close the original, keep the dup. As on the
	 * kernel, the ring lives while any fd refers to it. */
	int base_maps = count_ring_mappings();
	d = dup(ring.ring_fd);
	if (syscall(SYS_close, ring.ring_fd))
		FAIL("close original");
	ring.ring_fd = ring.enter_ring_fd = d;
	nop_roundtrip(&ring, "through the dup after closing the original");
	io_uring_queue_exit(&ring); /* closes the dup: the last fd */
	/* The orphaned ring is freed at the next ring operation that looks. */
	struct io_uring other;
	if (io_uring_queue_init(4, &other, 0))
		FAIL("second ring");
	io_uring_queue_exit(&other);
	if (count_ring_mappings() >= base_maps || count_ring_fds() != 0)
		FAIL("orphaned ring not freed: %d mappings (had %d with it), %d ring fds",
		     count_ring_mappings(), base_maps, count_ring_fds());
	return 0;
}

static int enter_nop(struct io_uring *ring, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_nop(sqe);
	io_uring_smp_store_release(ring->sq.ktail, *ring->sq.ktail + 1);
	ring->sq.sqe_head = ring->sq.sqe_tail;
	return (int)syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
}

static int mode_dup2(void)
{
	int base_maps = count_ring_mappings();
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	int h = ring.ring_fd;
	/* dup2(h, h) changes nothing. */
	if (dup2(h, h) != h)
		FAIL("dup2(h, h)");
	nop_roundtrip(&ring, "after dup2(h, h)");
	/* dup2 of /dev/null onto the ring fd: the ring is freed. */
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, h) != h)
		FAIL("dup2 onto the ring fd: %s", strerror(errno));
	errno = 0;
	if (syscall(__NR_io_uring_enter, h, 0, 0, 0, NULL, 0) != -1 || errno != EOPNOTSUPP)
		FAIL("enter on the replaced fd: errno %d (want EOPNOTSUPP)", errno);
	io_uring_queue_exit(&ring); /* unmaps liburing's views; closes h (/dev/null now) */
	if (count_ring_mappings() != base_maps || count_ring_fds() != 0)
		FAIL("ring not freed by dup2 over its fd: %d mappings (want %d), %d ring fds", count_ring_mappings(),
		     base_maps, count_ring_fds());
	/* With a dup open, the ring lives on through it (dup3 this time,
	 * through syscall(), the interposed path). */
	r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	h = ring.ring_fd;
	int d = dup(h);
	if (syscall(SYS_dup3, null, h, O_CLOEXEC) != h)
		FAIL("dup3 onto the ring fd: %s", strerror(errno));
	if (enter_nop(&ring, d) != 1)
		FAIL("enter through the dup after dup3 over the original: %s", strerror(errno));
	struct io_uring_cqe *cqe;
	if (io_uring_peek_cqe(&ring, &cqe))
		FAIL("no cqe through the dup");
	io_uring_cqe_seen(&ring, cqe);
	errno = 0;
	if (enter_nop(&ring, h) != -1 || errno != EOPNOTSUPP)
		FAIL("enter on the replaced fd: errno %d (want EOPNOTSUPP)", errno);
	close(h);
	ring.ring_fd = ring.enter_ring_fd = d;
	io_uring_queue_exit(&ring); /* closes the dup: the last fd */
	struct io_uring other;
	if (io_uring_queue_init(4, &other, 0))
		FAIL("second ring");
	io_uring_queue_exit(&other);
	if (count_ring_mappings() != base_maps || count_ring_fds() != 0)
		FAIL("orphaned ring not freed: %d mappings (want %d), %d ring fds", count_ring_mappings(), base_maps,
		     count_ring_fds());
	close(null);
	return 0;
}

static void expect_cqe(struct io_uring *ring, __u64 ud, int res, const char *what)
{
	struct io_uring_cqe *cqe;
	int r = io_uring_wait_cqe(ring, &cqe);
	if (r)
		FAIL("%s: wait_cqe %d", what, r);
	if (cqe->user_data != ud || cqe->res != res)
		FAIL("%s: cqe %llu/%d, want %llu/%d", what, (unsigned long long)cqe->user_data, cqe->res,
		     (unsigned long long)ud, res);
	io_uring_cqe_seen(ring, cqe);
}

static void submit_nop(struct io_uring *ring, __u64 ud, const char *what)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe)
		FAIL("%s: no sqe", what);
	io_uring_prep_nop(sqe);
	sqe->user_data = ud;
	if (io_uring_submit(ring) != 1)
		FAIL("%s: submit", what);
}

static int mode_fork(int punt)
{
	/* As in liburing's across-fork test, liburing's own bookkeeping (its
	 * private SQ tail) is in shared memory too, so that both processes
	 * can submit. */
	struct io_uring *ring = mmap(NULL, sizeof(*ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct io_uring single;
	int sync[2];
	if (ring == MAP_FAILED || pipe(sync))
		FAIL("mmap/pipe");
	int r = io_uring_queue_init(4, ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	if (io_uring_queue_init(4, &single, IORING_SETUP_SINGLE_ISSUER))
		FAIL("queue_init single issuer");
	nop_roundtrip(ring, "parent before fork");
	nop_roundtrip(&single, "parent single-issuer before fork");
	if (punt)
		fsync_roundtrip(ring, "parent fsync before fork");
	/* Completed in the parent, reaped by the child. */
	submit_nop(ring, 0x11, "parent before fork");
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork");
	if (pid == 0) {
		alarm(10);
		expect_cqe(ring, 0x11, 0, "child reaps the parent's cqe");
		/* The parent's ring is shared: the child submits and reaps. */
		nop_roundtrip(ring, "child on the inherited ring");
		if (punt)
			fsync_roundtrip(ring, "child fsync on the inherited ring");
		/* A SINGLE_ISSUER ring belongs to the thread that made it. */
		struct io_uring_sqe *sqe = io_uring_get_sqe(&single);
		io_uring_prep_nop(sqe);
		r = io_uring_submit(&single);
		if (r != -EEXIST)
			FAIL("child: submit on the parent's SINGLE_ISSUER ring gave %d, want -EEXIST", r);
		struct io_uring mine;
		r = io_uring_queue_init(4, &mine, 0);
		if (r)
			FAIL("child: queue_init: %s", strerror(-r));
		nop_roundtrip(&mine, "child's own ring");
		if (punt)
			fsync_roundtrip(&mine, "child fsync");
		io_uring_queue_exit(&mine);
		/* Tell the parent to wait, then post while it sleeps: the
		 * completion of another process must end its wait. */
		if (write(sync[1], "x", 1) != 1)
			FAIL("child: write");
		usleep(50000);
		submit_nop(ring, 0x22, "child while the parent waits");
		/* Left for the parent to reap after the child has gone. */
		submit_nop(ring, 0x33, "child before exit");
		io_uring_queue_exit(&single);
		close(ring->ring_fd); /* this process's use of the ring ends */
		_exit(0);
	}
	char c;
	if (read(sync[0], &c, 1) != 1)
		FAIL("parent: read");
	alarm(10);
	expect_cqe(ring, 0x22, 0, "parent woken by the child's completion");
	int st;
	if (waitpid(pid, &st, 0) != pid)
		FAIL("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("child failed (status %#x%s)", st, WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? ", hung" : "");
	expect_cqe(ring, 0x33, 0, "parent reaps the exited child's cqe");
	nop_roundtrip(ring, "parent after child");
	nop_roundtrip(&single, "parent single-issuer after child");
	if (punt)
		fsync_roundtrip(ring, "parent fsync after child");
	io_uring_queue_exit(ring);
	io_uring_queue_exit(&single);
	return 0;
}

static struct io_uring_cqe *wait_one(struct io_uring *ring, const char *what)
{
	struct io_uring_cqe *cqe;
	int r = io_uring_wait_cqe(ring, &cqe);
	if (r)
		FAIL("%s: wait_cqe %d", what, r);
	return cqe;
}

/* Waits for the CQEs of `a` and `b` (either order); returns their results. */
static void expect_pair(struct io_uring *ring, __u64 a, int *ra, __u64 b, int *rb, const char *what)
{
	int seen = 0;
	while (seen != 3) {
		struct io_uring_cqe *cqe = wait_one(ring, what);
		if (cqe->user_data == a && !(seen & 1)) {
			*ra = cqe->res;
			seen |= 1;
		} else if (cqe->user_data == b && !(seen & 2)) {
			*rb = cqe->res;
			seen |= 2;
		} else {
			FAIL("%s: unexpected cqe %llu/%d", what, (unsigned long long)cqe->user_data, cqe->res);
		}
		io_uring_cqe_seen(ring, cqe);
	}
}

static void submit_cancel(struct io_uring *ring, __u64 target, int flags, __u64 ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_cancel64(sqe, target, flags);
	sqe->user_data = ud;
	if (io_uring_submit(ring) != 1)
		FAIL("submit cancel %llu", (unsigned long long)ud);
}

static int mode_fork_cancel(void)
{
	struct io_uring *ring = mmap(NULL, sizeof(*ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int rd[2], pl[2];
	char buf[16];
	if (ring == MAP_FAILED || pipe(rd) || pipe(pl))
		FAIL("mmap/pipe");
	if (io_uring_queue_init(8, ring, 0))
		FAIL("queue_init");
	/* A read a worker blocks in, a poll armed on an empty pipe, a timeout. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_read(sqe, rd[0], buf, sizeof(buf), 0);
	sqe->flags |= IOSQE_ASYNC;
	sqe->user_data = 1;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_poll_add(sqe, pl[0], POLLIN);
	sqe->user_data = 3;
	struct __kernel_timespec ts = {.tv_sec = 10};
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	sqe->user_data = 4;
	if (io_uring_submit(ring) != 3)
		FAIL("parent: submit");
	usleep(20000); /* the worker is in its read */
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork");
	if (pid == 0) {
		alarm(10);
		int r1, r2;
		submit_cancel(ring, 1, 0, 2);
		expect_pair(ring, 1, &r1, 2, &r2, "child cancels the parent's running read");
		if ((r1 != -EINTR && r1 != -ECANCELED) || (r2 != 0 && r2 != -EALREADY))
			FAIL("cancel of the parent's read: read %d, cancel %d", r1, r2);
		submit_cancel(ring, 3, 0, 5);
		expect_pair(ring, 3, &r1, 5, &r2, "child cancels the parent's poll");
		if (r1 != -ECANCELED || r2 != 0)
			FAIL("cancel of the parent's poll: poll %d, cancel %d", r1, r2);
		submit_cancel(ring, 0, IORING_ASYNC_CANCEL_ANY, 6);
		expect_pair(ring, 4, &r1, 6, &r2, "child cancels anything");
		if (r1 != -ECANCELED || r2 != 1)
			FAIL("CANCEL_ANY: timeout %d, cancel %d (want 1)", r1, r2);
		submit_cancel(ring, 1, 0, 7);
		expect_cqe(ring, 7, -ENOENT, "nothing left to cancel");
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		FAIL("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("child failed (status %#x)", st);
	io_uring_queue_exit(ring);
	return 0;
}

/* The child's requests: a 10 s timeout and a NOP linked to it. */
static void submit_linked_timeout_nop(struct io_uring *ring)
{
	static struct __kernel_timespec ts = {.tv_sec = 10};
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = 0x10;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = 0x11;
	if (io_uring_submit(ring) != 2)
		FAIL("child: submit");
}

static int mode_fork_exec(void)
{
	struct io_uring *ring = mmap(NULL, sizeof(*ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ring == MAP_FAILED || io_uring_queue_init(8, ring, 0))
		FAIL("queue_init");
	for (int how = 0; how < 4; how++) {
		pid_t pid = fork();
		if (pid < 0)
			FAIL("fork");
		if (pid == 0) {
			submit_linked_timeout_nop(ring);
			const char *s = self_path;
			char *argv[] = {(char *)s, "child-args", "a", "b", "c", "d", "e", "f", "g", NULL};
			char *envp[] = {"RINGPORT_TEST_ENV=1", NULL, NULL};
			char pre[4096];
			if (getenv("LD_PRELOAD")) {
				snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", getenv("LD_PRELOAD"));
				envp[1] = pre;
			}
			setenv("RINGPORT_TEST_ENV", "1", 1);
			if (how == 0) /* more arguments than registers: some on the stack */
				execl(s, s, "child-args", "a", "b", "c", "d", "e", "f", "g", (char *)NULL);
			else if (how == 1)
				execv(s, argv);
			else if (how == 2)
				execle(s, s, "child-args", "a", "b", "c", "d", "e", "f", "g", (char *)NULL, envp);
			else
				execvp(s, argv);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid)
			FAIL("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("exec %d: child failed (status %#x)", how, st);
		int r1, r2;
		expect_pair(ring, 0x10, &r1, 0x11, &r2, "requests of a child that exec'd");
		if (r1 != -ECANCELED || r2 != -ECANCELED)
			FAIL("exec %d: timeout %d, linked nop %d, want -ECANCELED both", how, r1, r2);
	}
	io_uring_queue_exit(ring);
	return 0;
}

static int child_args(int argc, char **argv)
{
	const char *want[] = {"a", "b", "c", "d", "e", "f", "g"};
	if (argc != 9)
		FAIL("exec'd with %d arguments, want 9", argc);
	for (int i = 0; i < 7; i++)
		if (strcmp(argv[i + 2], want[i]))
			FAIL("argument %d is %s, want %s", i + 2, argv[i + 2], want[i]);
	const char *e = getenv("RINGPORT_TEST_ENV");
	if (!e || strcmp(e, "1"))
		FAIL("environment not passed");
	return 0;
}

static int mode_ring_poll(void)
{
	struct io_uring ring, other;
	if (io_uring_queue_init(8, &ring, 0) || io_uring_queue_init(8, &other, 0))
		FAIL("queue_init");
	/* SQ room: writable at once. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, other.ring_fd, POLLOUT);
	sqe->user_data = 1;
	io_uring_submit(&ring);
	expect_cqe(&ring, 1, POLLOUT, "POLLOUT on a ring with SQ room");
	/* No CQE on `other`: the poll waits. */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, other.ring_fd, POLLIN);
	sqe->user_data = 2;
	io_uring_submit(&ring);
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_nsec = 50000000};
	int r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (r != -ETIME)
		FAIL("POLLIN on a ring without CQEs completed at once (%d, res %d)", r, r ? 0 : cqe->res);
	submit_nop(&other, 9, "other ring");
	expect_cqe(&ring, 2, POLLIN, "POLLIN once the ring has a CQE");
	expect_cqe(&other, 9, 0, "the other ring's cqe");
	io_uring_queue_exit(&ring);
	io_uring_queue_exit(&other);
	return 0;
}

static int mode_exec(int keep)
{
	char *argv[] = {(char *)self_path, "child-exec", NULL};
	pid_t pid = fork();
	if (pid == 0) {
		if (!keep)
			unsetenv("LD_PRELOAD");
		execv(self_path, argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		FAIL("waitpid");
	if (keep) {
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			FAIL("exec'd image with the library failed: status %#x", st);
	} else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS) {
		FAIL("exec'd image without the library: status %#x, expected death by SIGSYS", st);
	}
	return 0;
}

static int child_exec(void)
{
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("exec'd: queue_init: %s", strerror(-r));
	nop_roundtrip(&ring, "exec'd");
	io_uring_queue_exit(&ring);
	return 0;
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s) { (void)s; got_sig++; }

static void wait_interrupted(struct io_uring *ring, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 100000}};
	got_sig = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	struct io_uring_cqe *cqe;
	int r = io_uring_wait_cqe(ring, &cqe); /* nothing in flight: sleeps */
	if (r != -EINTR || got_sig != 1)
		FAIL("wait with SA_RESTART=%d: got %d (sig %d), want -EINTR", restart, r, (int)got_sig);
}

static int mode_eintr(void)
{
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	wait_interrupted(&ring, 0);
	wait_interrupted(&ring, 1);
	/* A timed wait (EXT_ARG) is interrupted the same way. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 100000}};
	setitimer(ITIMER_REAL, &it, NULL);
	struct __kernel_timespec ts = {5, 0};
	struct io_uring_cqe *cqe;
	r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (r != -EINTR)
		FAIL("timed wait: got %d, want -EINTR", r);
	/* And a blocked signal does not interrupt: the timeout fires. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	struct __kernel_timespec short_ts = {0, 300000000};
	r = io_uring_wait_cqe_timeout(&ring, &cqe, &short_ts);
	if (r != -ETIME)
		FAIL("wait with SIGALRM blocked: got %d, want -ETIME", r);
	sigprocmask(SIG_UNBLOCK, &set, NULL); /* delivers the pending one */
	nop_roundtrip(&ring, "after EINTR");
	io_uring_queue_exit(&ring);
	return 0;
}

static void *blocked_thread(void *arg)
{
	(void)arg;
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("blocked thread: queue_init: %s", strerror(-r));
	nop_roundtrip(&ring, "blocked thread");
	io_uring_queue_exit(&ring);
	return NULL;
}

static int mode_sigmask(void)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_t t;
	pthread_create(&t, NULL, blocked_thread, NULL);
	pthread_join(t, NULL);
	sigprocmask(SIG_SETMASK, &all, NULL);
	blocked_thread(NULL);
	return 0;
}

static volatile sig_atomic_t info_code, info_val;
static void on_info(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	info_code = si->si_code;
	info_val = si->si_value.sival_int;
	got_sig++;
}

struct sender { pthread_t target; int sig, val; };
static void *send_later(void *arg)
{
	struct sender *s = arg;
	usleep(50000); /* the target is asleep in its wait by then */
	union sigval v = {.sival_int = s->val};
	pthread_sigqueue(s->target, s->sig, v);
	return NULL;
}

/* A wait interrupted by the signal `snd` describes, sent from a thread. */
static void wait_for_signal(struct io_uring *ring, struct sender *snd, const char *what)
{
	pthread_t t;
	struct io_uring_cqe *cqe;
	got_sig = 0;
	snd->target = pthread_self();
	pthread_create(&t, NULL, send_later, snd);
	int r = io_uring_wait_cqe(ring, &cqe);
	pthread_join(t, NULL);
	if (r != -EINTR || got_sig != 1)
		FAIL("%s: wait got %d (handler ran %d times), want -EINTR and 1", what, r, (int)got_sig);
}

static struct io_uring handler_ring;
static atomic_long handler_calls, handler_inside;
static unsigned (*in_engine)(void);
static atomic_int hammer_stop;
static void on_sig_uring(int s)
{
	(void)s;
	if (in_engine())
		atomic_fetch_add(&handler_inside, 1);
	nop_roundtrip(&handler_ring, "in the handler");
	atomic_fetch_add(&handler_calls, 1);
}

static void *hammer(void *arg)
{
	pthread_t target = *(pthread_t *)arg;
	while (!atomic_load(&hammer_stop)) {
		pthread_kill(target, SIGUSR1);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do /* about 10 us, without sleeping */
			clock_gettime(CLOCK_MONOTONIC, &t1);
		while ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec < 10000);
	}
	return NULL;
}

/* A 64 KiB read round trip whose enter goes through libc's syscall()
 * (served without a trap, with signals unblocked), not liburing's inline
 * one: the engine's read system call gives signals a place to land. */
static char big_buf[65536];
static void read_roundtrip_syscall(struct io_uring *ring, int fd, const char *what)
{
	struct io_uring_sq *sq = &ring->sq;
	struct io_uring_cqe *cqe;
	io_uring_prep_read(io_uring_get_sqe(ring), fd, big_buf, sizeof(big_buf), 0);
	sq->sqe_head = sq->sqe_tail;
	io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
	long r = syscall(__NR_io_uring_enter, ring->ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 8);
	if (r != 1)
		FAIL("%s: enter %ld (%s)", what, r, strerror(errno));
	if (io_uring_peek_cqe(ring, &cqe) || cqe->res != (int)sizeof(big_buf))
		FAIL("%s: bad cqe", what);
	io_uring_cqe_seen(ring, cqe);
}

static int mode_handlers(void)
{
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	nop_roundtrip(&ring, "warm-up"); /* (its enter site is rewritten now) */

	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_info;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR1, NULL, &old);
	if (old.sa_sigaction != on_info || !(old.sa_flags & SA_SIGINFO))
		FAIL("sigaction reports %p flags %#x, not the handler installed", (void *)old.sa_sigaction, old.sa_flags);
	if (signal(SIGUSR2, on_sig) == SIG_ERR || signal(SIGUSR2, SIG_DFL) != on_sig)
		FAIL("signal() does not give back the handler it installed");

	struct sender snd = {0, SIGUSR1, 42};
	wait_for_signal(&ring, &snd, "queued signal");
	if (info_code != SI_QUEUE || info_val != 42)
		FAIL("queued signal: handler saw code %d value %d, want SI_QUEUE and 42", (int)info_code, (int)info_val);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGUSR2, NULL, &old);
	if (old.sa_handler != on_sig || !(old.sa_flags & SA_RESETHAND))
		FAIL("one-shot handler reported as %p flags %#x", (void *)old.sa_handler, old.sa_flags);
	snd = (struct sender){0, SIGUSR2, 0};
	wait_for_signal(&ring, &snd, "one-shot signal");
	sigaction(SIGUSR2, NULL, &old);
	if (old.sa_handler != SIG_DFL)
		FAIL("one-shot handler still installed after it ran");

	/* Handlers with io_uring calls of their own, against a thread that is
	 * in and out of io_uring_enter all the time. */
	in_engine = (unsigned (*)(void))dlsym(RTLD_DEFAULT, "ringport_preload_in_engine");
	if (!in_engine)
		FAIL("ringport_preload_in_engine not found: not under ringport?");
	r = io_uring_queue_init(4, &handler_ring, 0);
	if (r)
		FAIL("handler ring: %s", strerror(-r));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig_uring;
	sigaction(SIGUSR1, &sa, NULL);
	char path[] = "/tmp/ringport-lc-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, big_buf, sizeof(big_buf)) != (ssize_t)sizeof(big_buf))
		FAIL("temp file");
	unlink(path);
	pthread_t self = pthread_self(), t;
	pthread_create(&t, NULL, hammer, &self);
	/* Until 2000 handlers have run, or for 3 s at most. */
	time_t end = time(NULL) + 3;
	for (long i = 0; atomic_load(&handler_calls) < 2000 && time(NULL) < end; i++) {
		if (i % 8 == 0)
			nop_roundtrip(&ring, "under signals");
		else
			read_roundtrip_syscall(&ring, fd, "under signals, syscall()");
	}
	atomic_store(&hammer_stop, 1);
	pthread_join(t, NULL);
	if (atomic_load(&handler_calls) == 0)
		FAIL("no handler ran");
	if (atomic_load(&handler_inside))
		FAIL("%ld of %ld handlers ran inside the engine", atomic_load(&handler_inside), atomic_load(&handler_calls));
	close(fd);
	io_uring_queue_exit(&handler_ring);
	io_uring_queue_exit(&ring);
	return 0;
}

static int mode_ring_rw(void)
{
	struct io_uring ring;
	char buf[4096] = {0};
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	errno = 0;
	if (read(ring.ring_fd, buf, sizeof(buf)) != -1 || errno != EINVAL)
		FAIL("read on the ring fd: errno %d, want EINVAL", errno);
	errno = 0;
	if (write(ring.ring_fd, buf, sizeof(buf)) != -1 || errno != EINVAL)
		FAIL("write on the ring fd: errno %d, want EINVAL", errno);
	errno = 0;
	if (syscall(SYS_read, ring.ring_fd, buf, sizeof(buf)) != -1 || errno != EINVAL)
		FAIL("syscall(SYS_read) on the ring fd: errno %d, want EINVAL", errno);
	/* The ring is unharmed, and other fds read as usual. */
	nop_roundtrip(&ring, "after read");
	int p[2];
	if (pipe(p) || write(p[1], "x", 1) != 1 || read(p[0], buf, 1) != 1 || buf[0] != 'x')
		FAIL("pipe read/write");
	close(p[0]);
	close(p[1]);
	io_uring_queue_exit(&ring);
	return 0;
}

#define STORM_THREADS 8
static atomic_int storm_stop;
static atomic_long storm_sigs, storm_ios;
static pthread_t storm_tids[STORM_THREADS];
static void storm_sig(int s) { (void)s; atomic_fetch_add(&storm_sigs, 1); }

static void *storm_worker(void *arg)
{
	long id = (long)arg;
	struct io_uring ring;
	char path[] = "/tmp/ringport-storm-XXXXXX";
	char wbuf[8][512], rbuf[8][512];
	int r = io_uring_queue_init(16, &ring, 0);
	if (r)
		FAIL("storm %ld: queue_init: %s", id, strerror(-r));
	int fd = mkstemp(path);
	unlink(path);
	for (int i = 0; i < 8; i++) {
		memset(wbuf[i], (int)(id * 8 + i), 512);
		if (pwrite(fd, wbuf[i], 512, i * 512) != 512)
			FAIL("pwrite");
	}
	while (!atomic_load(&storm_stop)) {
		for (int i = 0; i < 8; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (i % 3 == 2)
				io_uring_prep_nop(sqe);
			else
				io_uring_prep_read(sqe, fd, rbuf[i], 512, i * 512);
			sqe->user_data = i;
		}
		int done = 0;
		int sub = io_uring_submit(&ring);
		if (sub != 8)
			FAIL("storm %ld: submit %d", id, sub);
		while (done < 8) {
			struct io_uring_cqe *cqe;
			r = io_uring_wait_cqe(&ring, &cqe);
			if (r == -EINTR)
				continue;
			if (r)
				FAIL("storm %ld: wait %d", id, r);
			int i = (int)cqe->user_data;
			int want = i % 3 == 2 ? 0 : 512;
			if (i < 0 || i > 7 || cqe->res != want)
				FAIL("storm %ld: cqe %d res %d", id, i, cqe->res);
			if (want && memcmp(rbuf[i], wbuf[i], 512))
				FAIL("storm %ld: data %d", id, i);
			io_uring_cqe_seen(&ring, cqe);
			done++;
		}
		atomic_fetch_add(&storm_ios, 8);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	return NULL;
}

static int mode_storm(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = storm_sig;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	for (long i = 0; i < STORM_THREADS; i++)
		pthread_create(&storm_tids[i], NULL, storm_worker, (void *)i);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long n = 0;; n++) {
		pthread_kill(storm_tids[n % STORM_THREADS], SIGUSR1);
		usleep(50);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 3)
			break;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	atomic_store(&storm_stop, 1);
	for (int i = 0; i < STORM_THREADS; i++)
		pthread_join(storm_tids[i], NULL);
	printf("storm: %ld ios, %ld signals\n", atomic_load(&storm_ios), atomic_load(&storm_sigs));
	if (atomic_load(&storm_ios) == 0 || atomic_load(&storm_sigs) < 1000)
		FAIL("storm too small");
	return 0;
}

#define SHARED_SUBMITTERS 4
#define SHARED_WAITERS 3
#define SHARED_PER_THREAD 20000
static struct io_uring shared_ring;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long shared_reaped;
static unsigned char shared_seen[SHARED_SUBMITTERS * SHARED_PER_THREAD];

static void *shared_submitter(void *arg)
{
	long id = (long)arg;
	for (long i = 0; i < SHARED_PER_THREAD; i++) {
		for (;;) {
			pthread_mutex_lock(&shared_lock);
			struct io_uring_sqe *sqe = io_uring_get_sqe(&shared_ring);
			if (sqe) {
				io_uring_prep_nop(sqe);
				sqe->user_data = id * SHARED_PER_THREAD + i;
				int r = io_uring_submit(&shared_ring);
				pthread_mutex_unlock(&shared_lock);
				if (r != 1)
					FAIL("shared: submit %d", r);
				break;
			}
			pthread_mutex_unlock(&shared_lock);
			sched_yield();
		}
	}
	return NULL;
}

static void *shared_waiter(void *arg)
{
	(void)arg;
	const long total = SHARED_SUBMITTERS * SHARED_PER_THREAD;
	while (atomic_load(&shared_reaped) < total) {
		/* Several threads sleep in enter on the same ring at once. */
		struct __kernel_timespec ts = {0, 20000000};
		struct io_uring_getevents_arg ga = {.ts = (unsigned long)&ts};
		int r = (int)syscall(__NR_io_uring_enter, shared_ring.ring_fd, 0, 1,
				     IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, sizeof(ga));
		if (r < 0 && errno != ETIME && errno != EINTR)
			FAIL("shared: wait: %s", strerror(errno));
		pthread_mutex_lock(&shared_lock);
		struct io_uring_cqe *cqe;
		while (io_uring_peek_cqe(&shared_ring, &cqe) == 0) {
			unsigned long long u = cqe->user_data;
			if (u >= (unsigned long long)total || cqe->res != 0 || shared_seen[u]++)
				FAIL("shared: bad or duplicate cqe %llu res %d", u, cqe->res);
			io_uring_cqe_seen(&shared_ring, cqe);
			atomic_fetch_add(&shared_reaped, 1);
		}
		pthread_mutex_unlock(&shared_lock);
	}
	return NULL;
}

static int mode_shared(void)
{
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 4096;
	int r = io_uring_queue_init_params(64, &shared_ring, &p);
	if (r)
		FAIL("queue_init: %s", strerror(-r));
	pthread_t s[SHARED_SUBMITTERS], w[SHARED_WAITERS];
	for (long i = 0; i < SHARED_WAITERS; i++)
		pthread_create(&w[i], NULL, shared_waiter, NULL);
	for (long i = 0; i < SHARED_SUBMITTERS; i++)
		pthread_create(&s[i], NULL, shared_submitter, (void *)i);
	for (int i = 0; i < SHARED_SUBMITTERS; i++)
		pthread_join(s[i], NULL);
	for (int i = 0; i < SHARED_WAITERS; i++)
		pthread_join(w[i], NULL);
	io_uring_queue_exit(&shared_ring);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		FAIL("usage: lifecycle MODE");
	self_path = argv[0];
	const char *m = argv[1];
	/* A hang is a failure, never a stuck test run. */
	if (strcmp(m, "eintr") && strcmp(m, "storm"))
		alarm(30);
	else
		alarm(0);
	if (!strcmp(m, "close"))
		return mode_close(0);
	if (!strcmp(m, "close-range"))
		return mode_close(1);
	if (!strcmp(m, "dup"))
		return mode_dup();
	if (!strcmp(m, "dup2"))
		return mode_dup2();
	if (!strcmp(m, "fork"))
		return mode_fork(0);
	if (!strcmp(m, "fork-punt"))
		return mode_fork(1);
	if (!strcmp(m, "fork-cancel"))
		return mode_fork_cancel();
	if (!strcmp(m, "fork-exec"))
		return mode_fork_exec();
	if (!strcmp(m, "child-args"))
		return child_args(argc, argv);
	if (!strcmp(m, "ring-poll"))
		return mode_ring_poll();
	if (!strcmp(m, "exec-keep"))
		return mode_exec(1);
	if (!strcmp(m, "exec-drop"))
		return mode_exec(0);
	if (!strcmp(m, "child-exec"))
		return child_exec();
	if (!strcmp(m, "eintr"))
		return mode_eintr();
	if (!strcmp(m, "sigmask"))
		return mode_sigmask();
	if (!strcmp(m, "storm"))
		return mode_storm();
	if (!strcmp(m, "shared"))
		return mode_shared();
	if (!strcmp(m, "handlers"))
		return mode_handlers();
	if (!strcmp(m, "ring-rw"))
		return mode_ring_rw();
	FAIL("unknown mode %s", m);
}
