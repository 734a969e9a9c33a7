//! One interface over every queue-shaped backend: ringport's Rust API, the
//! kernel's io_uring (through the `io-uring` crate) and the thread pool.
//!
//! The workload loops are written once against [`Uring`] and monomorphised
//! for each backend, so every backend runs exactly the same loop.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The time of a TIMEOUT, in the form each backend's builder reads: the
/// opcode builders take a pointer, which must stay valid until the SQE is
/// submitted, so the loop owns one of these for its whole run.
#[derive(Clone, Copy, Debug)]
pub struct TimerSpec {
    /// For ringport's `opcode::Timeout`.
    pub ringport: ringport::types::Timespec,
    /// For the kernel's (the `io-uring` crate's) `opcode::Timeout`.
    pub kernel: io_uring::types::Timespec,
    /// For the blocking backends' `clock_nanosleep`.
    pub dur: Duration,
}

impl TimerSpec {
    /// A relative timer of `dur`.
    pub fn new(dur: Duration) -> TimerSpec {
        TimerSpec { ringport: dur.into(), kernel: dur.into(), dur }
    }
}

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
    /// One-shot `POLL_ADD`: completes with the ready `poll(2)` events.
    /// The blocking backends run `poll(2)` (bounded by [`BLOCKING_LIMIT`]).
    PollAdd {
        /// File to poll.
        fd: RawFd,
        /// `POLLIN` ...
        events: u32,
    },
    /// A relative `TIMEOUT` with no count: completes with `-ETIME`. The
    /// blocking backends sleep in `clock_nanosleep(CLOCK_MONOTONIC)`.
    Timeout {
        /// The time; valid until the op has been reaped.
        spec: *const TimerSpec,
    },
}

/// The longest a blocking backend's `poll(2)` waits, so that a pool thread
/// can never block for ever (it answers `-ETIME`, as a timed-out wait does).
pub const BLOCKING_LIMIT: Duration = Duration::from_secs(10);

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
    /// As `submit_and_wait`, but gives up after `limit` with an `ETIME`
    /// error (the kernel's `EXT_ARG` timeout), so that a lost wake-up
    /// ends the run instead of hanging it.
    fn submit_and_wait_for(&mut self, want: usize, limit: Duration) -> io::Result<usize>;
    /// Hands every ready completion, as `(user_data, result)`, to `f`.
    /// Returns how many there were.
    fn reap(&mut self, f: impl FnMut(u64, i32)) -> usize;
}

fn full() -> io::Error {
    io::Error::other("submission queue full (ring sized too small)")
}

/// The queue backends: ringport's API and the `io-uring` crate have the
/// same shape, so one body serves both (`$spec` is the TimerSpec field in
/// the crate's own Timespec type).
macro_rules! uring_impl {
    ($ring:ty, $krate:ident, $spec:ident) => {
        impl Uring for $ring {
            #[inline]
            unsafe fn push_with(&mut self, n: usize, mut make: impl FnMut(usize) -> (Op, u64)) -> io::Result<()> {
                use $krate::opcode;
                use $krate::types::Fd;
                let mut sq = self.submission();
                for i in 0..n {
                    let (op, ud) = make(i);
                    let e = match op {
                        Op::Nop => opcode::Nop::new().build(),
                        Op::Read { fd, buf, len, off } => opcode::Read::new(Fd(fd), buf, len).offset(off).build(),
                        Op::Write { fd, buf, len, off } => opcode::Write::new(Fd(fd), buf, len).offset(off).build(),
                        Op::Fsync { fd } => opcode::Fsync::new(Fd(fd)).build(),
                        Op::PollAdd { fd, events } => opcode::PollAdd::new(Fd(fd), events).build(),
                        // SAFETY: the caller keeps `spec` valid until reaped.
                        Op::Timeout { spec } => opcode::Timeout::new(unsafe { &(*spec).$spec }).build(),
                    }
                    .user_data(ud);
                    // SAFETY: the caller keeps the op's buffers valid until reaped.
                    unsafe { sq.push(&e).map_err(|_| full())? };
                }
                Ok(())
            }
            #[inline]
            fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
                <$ring>::submit_and_wait(self, want)
            }
            #[inline]
            fn submit_and_wait_for(&mut self, want: usize, limit: Duration) -> io::Result<usize> {
                let ts = $krate::types::Timespec::from(limit);
                let args = $krate::types::SubmitArgs::new().timespec(&ts);
                self.submitter().submit_with_args(want, &args)
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
    };
}

uring_impl!(ringport::Ring, ringport, ringport);
uring_impl!(io_uring::IoUring, io_uring, kernel);

/// Runs `op` with a blocking system call; returns the result as a CQE
/// would carry it (a count, the ready poll events, or `-errno`; a timer
/// that ran out gives `-ETIME`, as a TIMEOUT's CQE does).
pub fn run_blocking(op: Op) -> i32 {
    // SAFETY: the caller of push_with/psync guarantees the buffers are valid
    // for `len` bytes, and a timer spec valid, for the duration of the op.
    let r = unsafe {
        match op {
            Op::Nop => 0,
            Op::Read { fd, buf, len, off } => libc::pread(fd, buf.cast(), len as usize, off as libc::off_t) as i64,
            Op::Write { fd, buf, len, off } => libc::pwrite(fd, buf.cast(), len as usize, off as libc::off_t) as i64,
            Op::Fsync { fd } => libc::fsync(fd) as i64,
            Op::PollAdd { fd, events } => {
                let mut p = libc::pollfd { fd, events: events as libc::c_short, revents: 0 };
                match libc::poll(&mut p, 1, BLOCKING_LIMIT.as_millis() as libc::c_int) {
                    0 => return -libc::ETIME,
                    n if n > 0 => p.revents as u16 as i64,
                    n => n as i64,
                }
            }
            Op::Timeout { spec } => {
                let d = (*spec).dur;
                let ts = libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long };
                // clock_nanosleep returns the error number itself; a
                // signal (EINTR) ends the sleep early, as it would a timer.
                return match libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, core::ptr::null_mut()) {
                    0 => -libc::ETIME,
                    e => -e,
                };
            }
        }
    };
    if r < 0 {
        -io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    } else {
        r as i32
    }
}
