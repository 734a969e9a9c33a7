//! Schedule perturbation for hunting races (the `chaos` cargo feature).
//!
//! [`point`] marks a place where another thread's interleaving matters:
//! between a lock's release and the wake-up it decided on, between arming
//! a request and sleeping, between taking a request out of a table and
//! completing it. Built with `--features ringport-engine/chaos`, a point
//! yields the CPU about one time in eleven and sleeps up to 300 us about one
//! time in 64, from a per-thread random sequence, so that interleavings a
//! test would meet once in thousands of runs come up in a few. Without the
//! feature a point is empty and costs nothing. It is safe in signal context
//! (a thread-local word, `sched_yield`, `nanosleep`).
//!
//! `scripts/chaos.sh` builds the interception library this way and runs
//! liburing tests under it.

/// A perturbation point (empty without the `chaos` feature).
#[cfg(not(feature = "chaos"))]
#[inline(always)]
pub(crate) fn point() {}

/// A perturbation point: sometimes yields, sometimes sleeps briefly.
#[cfg(feature = "chaos")]
pub(crate) fn point() {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    let r = STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: ts is a valid out-pointer; gettid has no preconditions.
            let tid = unsafe {
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
                libc::gettid()
            };
            x = ((tid as u64) << 32) ^ (ts.tv_nsec as u64) ^ 0x9e37_79b9_7f4a_7c15;
        }
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    match r % 64 {
        0..=5 => {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
        6 => {
            let ts = libc::timespec { tv_sec: 0, tv_nsec: ((r >> 16) % 300_000) as libc::c_long };
            // SAFETY: ts is a valid timespec; no remainder wanted.
            unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        }
        _ => {}
    }
}
