//! The latency workloads: `poll` (wake-up through a pipe) and `timeout`
//! (timer firing error). One operation is in flight at a time and every
//! operation is a latency sample; ops/s follows from the latency (and, for
//! poll, the gap), so the figures that matter are p50 and p99.
//!
//! **poll.** The waiter arms a one-shot POLL_ADD(POLLIN) on the read end of
//! a pipe (for a ring: push and submit, which arms it on the kernel and on
//! ringport alike), tells the writer thread, and waits for the CQE. The
//! writer waits `gap` (so that the waiter is asleep, and what is measured
//! is a wake-up), reads the monotonic clock and writes those 8 bytes into
//! the pipe. The waiter reads the clock as soon as it sees the CQE, then
//! drains the 8 bytes: latency = its reading - the writer's. The timestamp
//! travels in the byte stream itself, so it is always the one of the write
//! that woke this poll, and there is no shared variable to order. Both
//! readings are `Instant` (CLOCK_MONOTONIC, one clock for every CPU),
//! taken as nanoseconds since one `Instant` both threads share. psync is
//! a blocking `poll(2)` in the waiter; threadpool hands that `poll(2)` to
//! a pool thread.
//!
//! **timeout.** Read the clock, submit a relative TIMEOUT of `T` and wait
//! for its CQE (`-ETIME`), read the clock again: error = seen - (start +
//! T). A timer that fires before its deadline is an error, not a sample.
//! psync sleeps in `clock_nanosleep(CLOCK_MONOTONIC, T)`; threadpool has
//! a pool thread do that sleep. Both keep the default 50 us timer slack of
//! an ordinary thread, as a program using them would.
//!
//! Every wait is bounded ([`WAIT_LIMIT`]): a lost wake-up ends the run
//! with an error instead of hanging it.

use super::loops::{Ctl, RepStats};
use super::ops::{run_blocking, Op, TimerSpec, Uring, BLOCKING_LIMIT};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a waiter waits for one wake-up before it calls it lost.
pub const WAIT_LIMIT: Duration = Duration::from_secs(5);
/// User data of the POLL_ADD.
const POLL_UD: u64 = 0x9011;
/// User data of the TIMEOUT.
const TIMEOUT_UD: u64 = 0x7173;

/// Where a latency loop waits: a queue-shaped backend, or a blocking call.
pub enum Waiter<'a, U: Uring> {
    /// Ringport, the kernel or the pool: POLL_ADD / TIMEOUT ops.
    Queue(&'a mut U),
    /// psync: `poll(2)` / `clock_nanosleep` in the calling thread.
    Blocking,
}

impl<U: Uring> Waiter<'_, U> {
    /// Arms a poll for readability of `fd` (nothing to do for psync, whose
    /// `poll(2)` arms and waits in one call).
    fn arm_poll(&mut self, fd: RawFd) -> io::Result<()> {
        match self {
            Waiter::Queue(u) => {
                // SAFETY: a POLL_ADD points at no memory.
                unsafe { u.push_with(1, |_| (Op::PollAdd { fd, events: libc::POLLIN as u32 }, POLL_UD))? };
                u.submit_and_wait(0)?;
                Ok(())
            }
            Waiter::Blocking => Ok(()),
        }
    }

    /// Waits for the poll armed on `fd`; returns its result (the ready events).
    fn wait_poll(&mut self, fd: RawFd) -> io::Result<i32> {
        match self {
            Waiter::Queue(u) => one_cqe(*u, POLL_UD, WAIT_LIMIT, "POLL_ADD"),
            Waiter::Blocking => Ok(run_blocking(Op::PollAdd { fd, events: libc::POLLIN as u32 })),
        }
    }

    /// Starts a timer of `spec` and waits for it; returns its result.
    fn timer(&mut self, spec: &TimerSpec) -> io::Result<i32> {
        match self {
            Waiter::Queue(u) => {
                // SAFETY: `spec` outlives the op: it is reaped before we return
                // (or, on an error, the run ends and the ring is dropped before
                // the spec is).
                unsafe { u.push_with(1, |_| (Op::Timeout { spec }, TIMEOUT_UD))? };
                one_cqe(*u, TIMEOUT_UD, spec.dur + WAIT_LIMIT, "TIMEOUT")
            }
            Waiter::Blocking => Ok(run_blocking(Op::Timeout { spec })),
        }
    }
}

/// Submits, waits (at most `limit`) for the one CQE in flight, checks its
/// user data and returns its result.
fn one_cqe<U: Uring>(u: &mut U, ud: u64, limit: Duration, what: &str) -> io::Result<i32> {
    match u.submit_and_wait_for(1, limit) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ETIME) => {
            return Err(io::Error::other(format!("no {what} completion within {} s (a lost wake-up?)", limit.as_secs())))
        }
        Err(e) => return Err(e),
    }
    let (mut n, mut res, mut other) = (0, 0, None);
    u.reap(|got, r| {
        n += 1;
        res = r;
        if got != ud {
            other = Some(got);
        }
    });
    match (n, other) {
        (1, None) => Ok(res),
        (_, Some(got)) => Err(io::Error::other(format!("{what}: unexpected completion with user data {got:#x}"))),
        _ => Err(io::Error::other(format!("{what}: reaped {n} completions, expected 1"))),
    }
}

/// A pipe, both ends non-blocking and close-on-exec; closed on drop.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both fds are open and ours alone.
        Ok(unsafe { Pipe { r: OwnedFd::from_raw_fd(fds[0]), w: OwnedFd::from_raw_fd(fds[1]) } })
    }
}

/// Writes or reads exactly one 8-byte stamp; anything else is an error.
fn stamp_io(fd: RawFd, write: Option<u64>) -> io::Result<u64> {
    let mut v = write.unwrap_or(0).to_ne_bytes();
    // SAFETY: v is 8 valid, writable bytes for the whole call.
    let n = unsafe {
        match write {
            Some(_) => libc::write(fd, v.as_ptr().cast(), 8),
            None => libc::read(fd, v.as_mut_ptr().cast(), 8),
        }
    };
    match n {
        8 => Ok(u64::from_ne_bytes(v)),
        n if n < 0 => Err(io::Error::last_os_error()),
        n => Err(io::Error::other(format!("pipe: {n} bytes instead of 8"))),
    }
}

/// Lowers this thread's timer slack to 1 ns, so that its `gap` sleeps are
/// as long as asked (the default slack adds up to 50 us).
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK changes the calling thread only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// What the waiter and the writer share.
struct Handoff {
    /// Set by the waiter when a poll is armed; taken by the writer.
    armed: AtomicBool,
    /// Set by the waiter when the run is over.
    stop: AtomicBool,
}

/// The writer thread: for each armed poll, waits `gap`, then writes the
/// time into the pipe. Returns when told to stop.
fn writer(h: &Handoff, fd: RawFd, base: Instant, gap: Duration) -> io::Result<()> {
    precise_sleeps();
    loop {
        loop {
            if h.armed.swap(false, Ordering::AcqRel) {
                break;
            }
            if h.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            // Bounded, so that a missed unpark costs 10 ms, not the run.
            std::thread::park_timeout(Duration::from_millis(10));
        }
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let t = base.elapsed().as_nanos() as u64;
        stamp_io(fd, Some(t))?;
    }
}

/// The `poll` workload on `w`: see the module comment.
pub fn poll_wake<U: Uring>(mut w: Waiter<'_, U>, gap: Duration, ctl: &Ctl) -> io::Result<RepStats> {
    let pipe = Pipe::new()?;
    let (rfd, wfd) = (pipe.r.as_raw_fd(), pipe.w.as_raw_fd());
    let h = Handoff { armed: AtomicBool::new(false), stop: AtomicBool::new(false) };
    let base = Instant::now();
    std::thread::scope(|s| {
        let wt = std::thread::Builder::new().name("bench-poll-writer".into()).spawn_scoped(s, || writer(&h, wfd, base, gap))?;
        let mut run = || -> io::Result<RepStats> {
            let mut st = RepStats::default();
            let mut left = ctl.check_every;
            let start = Instant::now();
            loop {
                w.arm_poll(rfd)?;
                h.armed.store(true, Ordering::Release);
                wt.thread().unpark();
                let res = w.wait_poll(rfd)?;
                let seen = base.elapsed().as_nanos() as u64;
                if res < 0 || res & libc::POLLIN as i32 == 0 {
                    return Err(if res < 0 && res == -libc::ETIME {
                        io::Error::other(format!("poll(2) saw no data within {} s", BLOCKING_LIMIT.as_secs()))
                    } else if res < 0 {
                        io::Error::other(format!("poll failed: {}", io::Error::from_raw_os_error(-res)))
                    } else {
                        io::Error::other(format!("poll returned events {res:#x}, without POLLIN"))
                    });
                }
                let t = stamp_io(rfd, None)?;
                st.lat_ns.push(seen.saturating_sub(t));
                st.ops += 1;
                st.iters += 1;
                left -= 1;
                if left == 0 {
                    left = ctl.check_every;
                    if start.elapsed() >= ctl.dur {
                        break;
                    }
                }
            }
            st.secs = start.elapsed().as_secs_f64();
            st.units = st.ops;
            Ok(st)
        };
        let r = run();
        if r.is_err() {
            // A poll may still be armed (or a pool thread in poll(2)):
            // make it ready, so that nothing waits on a pipe about to close.
            // The writer may not have written yet; one byte more is harmless.
            let _ = stamp_io(wfd, Some(0));
        }
        h.stop.store(true, Ordering::Release);
        wt.thread().unpark();
        let wr = wt.join().unwrap_or_else(|_| Err(io::Error::other("poll writer thread panicked")));
        // The writer's error explains the waiter's (which only timed out).
        wr.and(r)
    })
}

/// The `timeout` workload on `w`: see the module comment. The samples are
/// the firing errors.
pub fn timer_error<U: Uring>(mut w: Waiter<'_, U>, dur: Duration, ctl: &Ctl) -> io::Result<RepStats> {
    let spec = TimerSpec::new(dur);
    let want = dur.as_nanos() as u64;
    let mut st = RepStats::default();
    let mut left = ctl.check_every;
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        let res = w.timer(&spec)?;
        let took = t0.elapsed().as_nanos() as u64;
        if res != -libc::ETIME {
            return Err(if res < 0 {
                io::Error::other(format!("timer failed: {}", io::Error::from_raw_os_error(-res)))
            } else {
                io::Error::other(format!("timer completed with {res}, expected -ETIME"))
            });
        }
        if took < want {
            return Err(io::Error::other(format!(
                "a timer of {} us fired early, after {:.1} us (CLOCK_MONOTONIC)",
                want / 1000,
                took as f64 / 1e3
            )));
        }
        st.lat_ns.push(took - want);
        st.ops += 1;
        st.iters += 1;
        left -= 1;
        if left == 0 {
            left = ctl.check_every;
            if start.elapsed() >= ctl.dur {
                break;
            }
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.ops;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_cross_a_pipe_whole() {
        let p = Pipe::new().unwrap();
        stamp_io(p.w.as_raw_fd(), Some(0x0123_4567_89ab_cdef)).unwrap();
        assert_eq!(stamp_io(p.r.as_raw_fd(), None).unwrap(), 0x0123_4567_89ab_cdef);
        // Empty and non-blocking: an error, not a hang.
        assert_eq!(stamp_io(p.r.as_raw_fd(), None).unwrap_err().raw_os_error(), Some(libc::EAGAIN));
    }
}
