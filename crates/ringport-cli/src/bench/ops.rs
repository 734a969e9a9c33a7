//! One interface over every queue-shaped backend: ringport's Rust API, the
//! kernel's io_uring (through the `io-uring` crate) and the thread pool.
//!
//! The workload loops are written once against [`Uring`] and monomorphised
//! for each backend, so every backend runs exactly the same loop.

use std::io;
use std::os::fd::RawFd;

/// What one request asks for, independent of the backend.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Nothing: completes with 0.
    Nop,
    /// `pread(fd, buf, len, off)`.
    Read {
        /// File.
        fd: RawFd,
        /// Destination buffer.
        buf: *mut u8,
        /// Bytes.
        len: u32,
        /// File offset.
        off: u64,
    },
    /// `pwrite(fd, buf, len, off)`.
    Write {
        /// File.
        fd: RawFd,
        /// Source buffer.
        buf: *const u8,
        /// Bytes.
        len: u32,
        /// File offset.
        off: u64,
    },
    /// `fsync(fd)`.
    Fsync {
        /// File.
        fd: RawFd,
    },
}

// SAFETY: the pointers in an Op are only handed to system calls by whichever
// thread runs it; the loops keep the buffers alive until the op completes.
unsafe impl Send for Op {}

/// A submission/completion queue pair, as the loops use it.
pub trait Uring {
    /// Queues `n` requests; `make(i)` gives the i-th request and its user data.
    ///
    /// # Safety
    /// Every buffer an op points at must stay valid until its completion
    /// has been reaped.
    unsafe fn push_with(&mut self, n: usize, make: impl FnMut(usize) -> (Op, u64)) -> io::Result<()>;
    /// Submits what was queued and waits until `want` completions are ready.
    fn submit_and_wait(&mut self, want: usize) -> io::Result<usize>;
    /// Hands every ready completion, as `(user_data, result)`, to `f`.
    /// Returns how many there were.
    fn reap(&mut self, f: impl FnMut(u64, i32)) -> usize;
}

fn full() -> io::Error {
    io::Error::other("submission queue full (ring sized too small)")
}

impl Uring for ringport::Ring {
    #[inline]
    unsafe fn push_with(&mut self, n: usize, mut make: impl FnMut(usize) -> (Op, u64)) -> io::Result<()> {
        use ringport::opcode;
        use ringport::types::Fd;
        let mut sq = self.submission();
        for i in 0..n {
            let (op, ud) = make(i);
            let e = match op {
                Op::Nop => opcode::Nop::new().build(),
                Op::Read { fd, buf, len, off } => opcode::Read::new(Fd(fd), buf, len).offset(off).build(),
                Op::Write { fd, buf, len, off } => opcode::Write::new(Fd(fd), buf, len).offset(off).build(),
                Op::Fsync { fd } => opcode::Fsync::new(Fd(fd)).build(),
            }
            .user_data(ud);
            // SAFETY: the caller keeps the op's buffers valid until reaped.
            unsafe { sq.push(&e).map_err(|_| full())? };
        }
        Ok(())
    }
    #[inline]
    fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        ringport::Ring::submit_and_wait(self, want)
    }
    #[inline]
    fn reap(&mut self, mut f: impl FnMut(u64, i32)) -> usize {
        let mut n = 0;
        for c in self.completion() {
            f(c.user_data(), c.result());
            n += 1;
        }
        n
    }
}

impl Uring for io_uring::IoUring {
    #[inline]
    unsafe fn push_with(&mut self, n: usize, mut make: impl FnMut(usize) -> (Op, u64)) -> io::Result<()> {
        use io_uring::opcode;
        use io_uring::types::Fd;
        let mut sq = self.submission();
        for i in 0..n {
            let (op, ud) = make(i);
            let e = match op {
                Op::Nop => opcode::Nop::new().build(),
                Op::Read { fd, buf, len, off } => opcode::Read::new(Fd(fd), buf, len).offset(off).build(),
                Op::Write { fd, buf, len, off } => opcode::Write::new(Fd(fd), buf, len).offset(off).build(),
                Op::Fsync { fd } => opcode::Fsync::new(Fd(fd)).build(),
            }
            .user_data(ud);
            // SAFETY: the caller keeps the op's buffers valid until reaped.
            unsafe { sq.push(&e).map_err(|_| full())? };
        }
        Ok(())
    }
    #[inline]
    fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        io_uring::IoUring::submit_and_wait(self, want)
    }
    #[inline]
    fn reap(&mut self, mut f: impl FnMut(u64, i32)) -> usize {
        let mut n = 0;
        for c in self.completion() {
            f(c.user_data(), c.result());
            n += 1;
        }
        n
    }
}

/// Runs `op` with a blocking system call; returns the result as a CQE
/// would carry it (a count or `-errno`).
pub fn run_blocking(op: Op) -> i32 {
    // SAFETY: the caller of push_with/psync guarantees the buffers are valid
    // for `len` bytes for the duration of the op.
    let r = unsafe {
        match op {
            Op::Nop => 0,
            Op::Read { fd, buf, len, off } => libc::pread(fd, buf.cast(), len as usize, off as libc::off_t) as i64,
            Op::Write { fd, buf, len, off } => libc::pwrite(fd, buf.cast(), len as usize, off as libc::off_t) as i64,
            Op::Fsync { fd } => libc::fsync(fd) as i64,
        }
    };
    if r < 0 {
        -io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    } else {
        r as i32
    }
}
