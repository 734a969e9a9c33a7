//! The native Rust API end to end: each test drives real files, pipes and
//! eventfds through `ringport_engine::Ring` and checks CQEs and data.

use ringport_engine::{cqueue, opcode, squeue, types, Probe, Ring};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn temp_file(tag: &str, contents: &[u8]) -> (std::fs::File, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("ringport-api-{tag}-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.write_all(contents).unwrap();
    (f, path)
}

fn push(ring: &mut Ring, e: &squeue::Entry) {
    // SAFETY: the tests keep every buffer alive until its CQE is reaped.
    unsafe { ring.submission().push(e).unwrap() };
}

fn run_one(ring: &mut Ring, e: squeue::Entry) -> cqueue::Entry {
    push(ring, &e);
    ring.submit_and_wait(1).unwrap();
    ring.completion().next().expect("one CQE")
}

#[test]
fn read_write_file_and_position() {
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let (f, path) = temp_file("rw", &data);
    let fd = types::Fd(f.as_raw_fd());
    let mut ring = Ring::new(8).unwrap();

    let mut buf = vec![0u8; 4096];
    let c = run_one(&mut ring, opcode::Read::new(fd, buf.as_mut_ptr(), 4096).offset(100).build().user_data(1));
    assert_eq!((c.user_data(), c.result()), (1, 4096));
    assert_eq!(&buf[..], &data[100..4196]);

    // Short read at EOF, then EOF.
    let c = run_one(&mut ring, opcode::Read::new(fd, buf.as_mut_ptr(), 4096).offset(8000).build().user_data(2));
    assert_eq!(c.result(), 192);
    let c = run_one(&mut ring, opcode::Read::new(fd, buf.as_mut_ptr(), 4096).offset(9000).build().user_data(3));
    assert_eq!(c.result(), 0);

    // Offset -1: the file position is used and advanced.
    // SAFETY: lseek on our own fd.
    unsafe { libc::lseek(f.as_raw_fd(), 10, libc::SEEK_SET) };
    let c = run_one(&mut ring, opcode::Read::new(fd, buf.as_mut_ptr(), 10).offset(u64::MAX).build());
    assert_eq!(c.result(), 10);
    assert_eq!(&buf[..10], &data[10..20]);
    // SAFETY: lseek on our own fd.
    assert_eq!(unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_CUR) }, 20);

    let msg = b"written through ringport";
    let c = run_one(&mut ring, opcode::Write::new(fd, msg.as_ptr(), msg.len() as u32).offset(5).build());
    assert_eq!(c.result(), msg.len() as i32);
    let back = std::fs::read(&path).unwrap();
    assert_eq!(&back[5..5 + msg.len()], msg);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn vectored_fixed_and_fsync() {
    let (f, path) = temp_file("vec", &[0u8; 64]);
    let fd = f.as_raw_fd();
    let mut ring = Ring::new(8).unwrap();

    let a = *b"hello ";
    let b = *b"world";
    let iov = [
        libc::iovec { iov_base: a.as_ptr() as *mut _, iov_len: a.len() },
        libc::iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() },
    ];
    let c = run_one(&mut ring, opcode::Writev::new(types::Fd(fd), iov.as_ptr(), 2).build());
    assert_eq!(c.result(), 11);

    let c = run_one(&mut ring, opcode::Fsync::new(types::Fd(fd)).flags(types::FsyncFlags::DATASYNC).build());
    assert_eq!(c.result(), 0);

    // Registered file in slot 1 (slot 0 sparse), registered buffer.
    let mut reg = vec![0u8; 4096];
    let bufs = [libc::iovec { iov_base: reg.as_mut_ptr().cast(), iov_len: reg.len() }];
    // SAFETY: `reg` outlives the registration (unregistered below).
    unsafe { ring.submitter().register_buffers(&bufs).unwrap() };
    ring.submitter().register_files(&[-1, fd]).unwrap();
    let c = run_one(&mut ring, opcode::ReadFixed::new(types::Fixed(1), reg.as_mut_ptr(), 11, 0).build());
    assert_eq!(c.result(), 11);
    assert_eq!(&reg[..11], b"hello world");
    // Out of the registered range: EFAULT. Empty slot: EBADF.
    let c = run_one(&mut ring, opcode::ReadFixed::new(types::Fixed(1), reg.as_mut_ptr(), 8192, 0).build());
    assert_eq!(c.result(), -libc::EFAULT);
    let c = run_one(&mut ring, opcode::ReadFixed::new(types::Fixed(0), reg.as_mut_ptr(), 4, 0).build());
    assert_eq!(c.result(), -libc::EBADF);
    // The registered file survives closing the program's fd.
    drop(f);
    let c = run_one(&mut ring, opcode::ReadFixed::new(types::Fixed(1), reg.as_mut_ptr(), 5, 0).offset(6).build());
    assert_eq!(c.result(), 5);
    assert_eq!(&reg[..5], b"world");
    assert_eq!(ring.submitter().register_files_update(0, &[-2, -1]).unwrap(), 2);
    let c = run_one(&mut ring, opcode::ReadFixed::new(types::Fixed(1), reg.as_mut_ptr(), 5, 0).build());
    assert_eq!(c.result(), -libc::EBADF);
    ring.submitter().unregister_files().unwrap();
    ring.submitter().unregister_buffers().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn pipe_read_completes_from_worker_and_wakes_waiter() {
    let (mut rx, mut tx) = {
        let mut p = [0i32; 2];
        // SAFETY: p is a valid 2-int array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        // SAFETY: both fds are fresh and owned here.
        unsafe { (std::fs::File::from_raw_fd_checked(p[0]), std::fs::File::from_raw_fd_checked(p[1])) }
    };
    let mut ring = Ring::new(4).unwrap();
    let mut buf = [0u8; 16];
    push(&mut ring, &opcode::Read::new(types::Fd(rx.as_raw_fd()), buf.as_mut_ptr(), 16).build().user_data(9));
    assert_eq!(ring.submit().unwrap(), 1);
    assert!(ring.completion().next().is_none(), "no data yet");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        tx.write_all(b"ping").unwrap();
        tx
    });
    let t = Instant::now();
    ring.submitter().submit_with_timeout(1, Duration::from_secs(10)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    let c = ring.completion().next().unwrap();
    assert_eq!((c.user_data(), c.result()), (9, 4));
    assert_eq!(&buf[..4], b"ping");
    drop(writer.join().unwrap());
    let mut rest = Vec::new();
    rx.read_to_end(&mut rest).unwrap();
}

trait FromRawFdChecked {
    /// # Safety
    /// `fd` must be an open fd owned by the caller.
    unsafe fn from_raw_fd_checked(fd: i32) -> Self;
}

impl FromRawFdChecked for std::fs::File {
    unsafe fn from_raw_fd_checked(fd: i32) -> Self {
        assert!(fd >= 0);
        // SAFETY: forwarded contract.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    }
}

#[test]
fn wait_timeout_is_etime() {
    let ring = Ring::new(4).unwrap();
    let t = Instant::now();
    let err = ring.submitter().submit_with_timeout(1, Duration::from_millis(20)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn overflow_keeps_every_cqe_in_order() {
    let mut ring = Ring::builder().setup_cqsize(2).build(2).unwrap();
    let total = 10_000u64;
    for i in 0..total / 2 {
        push(&mut ring, &opcode::Nop::new().build().user_data(2 * i));
        push(&mut ring, &opcode::Nop::new().build().user_data(2 * i + 1));
        assert_eq!(ring.submit().unwrap(), 2);
    }
    assert!(ring.submission().cq_overflow());
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < total {
        assert!(Instant::now() < deadline);
        for c in ring.completion() {
            assert_eq!(c.user_data(), next);
            assert_eq!(c.result(), 0);
            next += 1;
        }
        if next < total {
            ring.submit_and_wait(1).unwrap();
        }
    }
    assert!(!ring.submission().cq_overflow());
    assert_eq!(ring.completion().overflow(), 0);
}

#[test]
fn skip_success_posts_only_failures() {
    let mut ring = Ring::new(8).unwrap();
    push(&mut ring, &opcode::Nop::new().build().user_data(1).flags(squeue::Flags::SKIP_SUCCESS));
    push(&mut ring, &opcode::Nop::new().inject_result(-5).build().user_data(2).flags(squeue::Flags::SKIP_SUCCESS));
    push(&mut ring, &opcode::Nop::new().build().user_data(3));
    assert_eq!(ring.submit_and_wait(2).unwrap(), 3);
    let got: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
    assert_eq!(got, vec![(2, -5), (3, 0)]);
}

#[test]
fn eventfd_is_signalled() {
    // SAFETY: plain syscall.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(efd >= 0);
    let mut ring = Ring::new(4).unwrap();
    ring.submitter().register_eventfd(efd).unwrap();
    run_one(&mut ring, opcode::Nop::new().build());
    let mut v = 0u64;
    // SAFETY: reading 8 bytes into a u64.
    assert_eq!(unsafe { libc::read(efd, (&mut v as *mut u64).cast(), 8) }, 8);
    assert!(v >= 1);
    ring.submitter().unregister_eventfd().unwrap();
    assert_eq!(ring.submitter().unregister_eventfd().unwrap_err().raw_os_error(), Some(libc::ENXIO));
    // SAFETY: closing our fd.
    unsafe { libc::close(efd) };
}

#[test]
fn probe_lists_exactly_the_implemented_ops() {
    let ring = Ring::new(4).unwrap();
    let mut p = Probe::new();
    ring.submitter().register_probe(&mut p).unwrap();
    for op in 0..=255u8 {
        assert_eq!(p.is_supported(op), ringport_engine::opcode_name(op).is_some(), "op {op}");
    }
    assert!(p.is_supported(opcode::Read::CODE));
    assert!(p.is_supported(opcode::Fsync::CODE));
}

#[test]
fn bad_fd_and_bad_buffer() {
    let mut ring = Ring::new(4).unwrap();
    let mut buf = [0u8; 8];
    let c = run_one(&mut ring, opcode::Read::new(types::Fd(-1), buf.as_mut_ptr(), 8).build());
    assert_eq!(c.result(), -libc::EBADF);
    let (f, path) = temp_file("efault", b"0123456789");
    let c = run_one(&mut ring, opcode::Read::new(types::Fd(f.as_raw_fd()), 0x10 as *mut u8, 8).build());
    assert_eq!(c.result(), -libc::EFAULT);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn many_threads_each_with_a_ring() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut ring = Ring::new(32).unwrap();
                for round in 0..500u64 {
                    for i in 0..8 {
                        push(&mut ring, &opcode::Nop::new().build().user_data(round * 8 + i));
                    }
                    ring.submit_and_wait(8).unwrap();
                    assert_eq!(ring.completion().count(), 8, "thread {t}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Submits `entries` in one call and returns every CQE as (user_data, res),
/// in posting order.
fn batch(ring: &mut Ring, entries: &[squeue::Entry]) -> (usize, Vec<(u64, i32)>) {
    for e in entries {
        push(ring, e);
    }
    let n = ring.submit().unwrap();
    let got = ring.completion().map(|c| (c.user_data(), c.result())).collect();
    (n, got)
}

fn nop(ud: u64) -> squeue::Entry {
    opcode::Nop::new().build().user_data(ud)
}

fn bad_op(ud: u64) -> squeue::Entry {
    // Opcode 200 is beyond IORING_OP_LAST: a prep failure (EINVAL).
    let e = opcode::Nop::new().build().user_data(ud);
    // SAFETY: io_uring_sqe is plain data, so a bitwise copy is valid.
    let mut raw: ringport_engine::abi::io_uring_sqe = unsafe { std::ptr::read(e.as_raw()) };
    raw.opcode = 200;
    // SAFETY: squeue::Entry is repr(transparent) over io_uring_sqe.
    unsafe { std::mem::transmute::<ringport_engine::abi::io_uring_sqe, squeue::Entry>(raw) }
}

// The expected orders below were measured on Linux 6.18 with the same SQEs.
#[test]
fn links_follow_kernel_order() {
    use squeue::Flags as F;
    let mut ring = Ring::new(8).unwrap();
    let ecanceled = -libc::ECANCELED;
    // Successful chain plus standalone: chain tails run after the batch.
    let r = batch(&mut ring, &[nop(1).flags(F::IO_LINK), nop(2).flags(F::IO_LINK), nop(3), nop(4), nop(5)]);
    assert_eq!(r, (5, vec![(1, 0), (4, 0), (5, 0), (2, 0), (3, 0)]));
    // A failing head cancels the rest; a hardlinked one does not.
    let fail = |ud| opcode::Nop::new().inject_result(-5).build().user_data(ud);
    let r = batch(&mut ring, &[fail(1).flags(F::IO_LINK), nop(2), nop(3)]);
    assert_eq!(r, (3, vec![(1, -5), (3, 0), (2, ecanceled)]));
    let r = batch(&mut ring, &[fail(1).flags(F::IO_HARDLINK), nop(2).flags(F::IO_LINK), nop(3)]);
    assert_eq!(r, (3, vec![(1, -5), (2, 0), (3, 0)]));
    // A prep failure inside a chain fails the chain; submission goes on.
    let r = batch(&mut ring, &[nop(1).flags(F::IO_LINK), bad_op(2).flags(F::IO_LINK), nop(3), nop(4)]);
    assert_eq!(r, (4, vec![(1, ecanceled), (4, 0), (2, -libc::EINVAL), (3, ecanceled)]));
    // ... but a prep failure that ends a chain ends the batch.
    let r = batch(&mut ring, &[nop(1).flags(F::IO_LINK), bad_op(2), nop(3)]);
    assert_eq!(r, (2, vec![(1, ecanceled), (2, -libc::EINVAL)]));
    let r = batch(&mut ring, &[]);
    assert_eq!(r, (1, vec![(3, 0)]), "the SQE left behind is submitted next time");
    // A failing CQE_SKIP_SUCCESS head posts its own CQE and silences the rest.
    let r = batch(&mut ring, &[fail(1).flags(F::IO_LINK | F::SKIP_SUCCESS), nop(2).flags(F::IO_LINK), nop(3)]);
    assert_eq!(r, (3, vec![(1, -5)]));
}

#[test]
fn link_through_worker_keeps_order() {
    use squeue::Flags as F;
    let (f, path) = temp_file("link", b"");
    let fd = types::Fd(f.as_raw_fd());
    let mut ring = Ring::new(8).unwrap();
    let data = b"abcdef";
    let mut back = [0u8; 6];
    // write -> fsync (always a worker) -> read: each starts after the last.
    push(&mut ring, &opcode::Write::new(fd, data.as_ptr(), 6).build().user_data(1).flags(F::IO_LINK));
    push(&mut ring, &opcode::Fsync::new(fd).build().user_data(2).flags(F::IO_LINK));
    push(&mut ring, &opcode::Read::new(fd, back.as_mut_ptr(), 6).build().user_data(3));
    assert_eq!(ring.submit().unwrap(), 3);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 3 && Instant::now() < deadline {
        ring.submitter().submit_with_timeout(1, Duration::from_secs(1)).ok();
        got.extend(ring.completion().map(|c| (c.user_data(), c.result())));
    }
    assert_eq!(got, vec![(1, 6), (2, 0), (3, 6)]);
    assert_eq!(&back, data);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn drain_waits_for_earlier_requests() {
    use squeue::Flags as F;
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut ring = Ring::new(8).unwrap();
    let mut buf = [0u8; 4];
    // A pipe read that waits for data, then a drained NOP, then a NOP: the
    // two NOPs must not complete before the read (measured on Linux 6.18).
    push(&mut ring, &opcode::Read::new(types::Fd(p[0]), buf.as_mut_ptr(), 4).build().user_data(1));
    push(&mut ring, &nop(2).flags(F::IO_DRAIN));
    push(&mut ring, &nop(3));
    assert_eq!(ring.submit().unwrap(), 3);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(ring.completion().count(), 0, "nothing may finish before the read");
    // SAFETY: writing 4 bytes from a live buffer to our pipe.
    assert_eq!(unsafe { libc::write(p[1], b"abcd".as_ptr().cast(), 4) }, 4);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 3 && Instant::now() < deadline {
        ring.submitter().submit_with_timeout(1, Duration::from_secs(1)).ok();
        got.extend(ring.completion().map(|c| (c.user_data(), c.result())));
    }
    assert_eq!(got, vec![(1, 4), (2, 0), (3, 0)]);
    // After a CQE_SKIP_SUCCESS SQE, IO_DRAIN is refused (as on Linux).
    let r = batch(&mut ring, &[nop(4).flags(F::SKIP_SUCCESS), nop(5).flags(F::IO_DRAIN)]);
    assert_eq!(r, (2, vec![(5, -libc::EOPNOTSUPP)]));
    // SAFETY: closing our pipe fds.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
}

/// A fork child of a process that used every engine service (workers,
/// timer, reactor) starts them afresh for its own rings.
#[test]
fn fork_child_gets_fresh_services() {
    let (f, path) = temp_file("fork", b"data");
    let mut ring = Ring::new(8).unwrap();
    let ts = types::Timespec::new().nsec(1_000_000);
    run_one(&mut ring, opcode::Fsync::new(types::Fd(f.as_raw_fd())).build());
    run_one(&mut ring, opcode::Timeout::new(&ts).build());
    // SAFETY: fork; the child only uses the engine and then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            let mut r = Ring::new(8).ok()?;
            let c = run_one(&mut r, opcode::Fsync::new(types::Fd(f.as_raw_fd())).build());
            if c.result() != 0 {
                return Some(2);
            }
            let c = run_one(&mut r, opcode::Timeout::new(&ts).build());
            if c.result() != -libc::ETIME {
                return Some(3);
            }
            let mut p = [0i32; 2];
            // SAFETY: p is a valid 2-int array.
            unsafe { libc::pipe(p.as_mut_ptr()) };
            // SAFETY: a poll points at no memory.
            unsafe { r.submission().push(&opcode::PollAdd::new(types::Fd(p[0]), libc::POLLIN as u32).build()).unwrap() };
            r.submit().ok()?;
            // SAFETY: writing one byte from a static buffer to our pipe.
            unsafe { libc::write(p[1], b"x".as_ptr().cast(), 1) };
            r.submitter().submit_with_timeout(1, Duration::from_secs(5)).ok()?;
            let c = r.completion().next()?;
            Some(if c.result() & libc::POLLIN as i32 != 0 { 0 } else { 4 })
        })()
        .unwrap_or(1);
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        assert!(Instant::now() < deadline, "fork child hung");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status:#x}");
    std::fs::remove_file(path).unwrap();
}

/// O_DIRECT reads and writes (which ringport starts through Linux AIO)
/// return the same bytes and results as buffered I/O, including vectored
/// reads, a short read at EOF and a bad-offset error.
#[test]
fn direct_io_roundtrip() {
    use std::os::unix::fs::OpenOptionsExt;
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let (f, path) = temp_file("direct", &data);
    drop(f);
    let Ok(d) = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(&path) else {
        println!("SKIPPED direct_io_roundtrip: the file system refuses O_DIRECT");
        std::fs::remove_file(path).unwrap();
        return;
    };
    let fd = types::Fd(d.as_raw_fd());
    let layout = std::alloc::Layout::from_size_align(8192, 4096).unwrap();
    // SAFETY: a non-zero-sized aligned allocation, freed at the end.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    // SAFETY: buf is valid for 8192 bytes.
    let view = |n: usize| unsafe { std::slice::from_raw_parts(buf, n) }.to_vec();
    let mut ring = Ring::new(8).unwrap();

    let c = run_one(&mut ring, opcode::Read::new(fd, buf, 4096).offset(8192).build());
    assert_eq!(c.result(), 4096);
    assert_eq!(view(4096), &data[8192..12288]);

    let iov = [
        libc::iovec { iov_base: buf.cast(), iov_len: 4096 },
        // SAFETY: the second half of the same allocation.
        libc::iovec { iov_base: unsafe { buf.add(4096) }.cast(), iov_len: 4096 },
    ];
    let c = run_one(&mut ring, opcode::Readv::new(fd, iov.as_ptr(), 2).offset(61440).build());
    assert_eq!(c.result(), 4096, "short read at EOF");
    assert_eq!(view(4096), &data[61440..65536]);

    // SAFETY: filling our own buffer.
    unsafe { std::ptr::write_bytes(buf, 0xab, 4096) };
    let c = run_one(&mut ring, opcode::Write::new(fd, buf, 4096).offset(4096).build());
    assert_eq!(c.result(), 4096);
    let back = std::fs::read(&path).unwrap();
    assert!(back[4096..8192].iter().all(|&b| b == 0xab));
    assert_eq!(&back[..4096], &data[..4096]);

    // Misaligned offset: O_DIRECT refuses it (EINVAL), as on the kernel.
    let c = run_one(&mut ring, opcode::Read::new(fd, buf, 4096).offset(100).build());
    assert_eq!(c.result(), -libc::EINVAL);

    // SAFETY: freeing the allocation above.
    unsafe { std::alloc::dealloc(buf, layout) };
    std::fs::remove_file(path).unwrap();
}
