//! Waiting for completions (`IORING_ENTER_GETEVENTS`), on a futex.
//!
//! The kernel's `io_cqring_wait` returns `-EINTR` when a signal handler runs,
//! whatever `SA_RESTART` says. A futex wait *with a timeout* has the same
//! property (the kernel turns it into `-ERESTART_RESTARTBLOCK`, which becomes
//! `EINTR` once a handler has run), so every wait here carries a deadline,
//! a far one when the caller gave none.
//!
//! With a signal mask (`sigmask` in `EXT_ARG`, or the plain sigset argument),
//! the mask must be swapped in atomically with the sleep, as `ppoll` does;
//! a futex cannot do that, so those waits sleep in `ppoll` on a per-ring
//! eventfd that posters write while `Ctx::sig_waiters` is non-zero.
//!
//! While the ring has polls armed, a waiter sleeps in that same `ppoll`,
//! also watching the ring's epoll instance, and completes ready requests
//! itself ("harvesting", see `reactor.rs`): a readiness then costs one
//! wake-up, as on the kernel. `ppoll` is never restarted after a handler
//! (whatever `SA_RESTART` says), which is the EINTR rule we need.

use super::{Ctx, Errno};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// [`SleepGate::block`]: `Ok(Some((restore, sleep_mask)))`, `Ok(None)` or
/// `Err(errno)`.
pub type GateBlock = fn() -> Result<Option<(u64, u64)>, i32>;

/// What an embedder (the interception library) puts around the sleep of a
/// CQ wait, when it serves calls without blocking signals first (see
/// [`crate::sys::set_sleep_gate`]).
#[derive(Debug)]
pub struct SleepGate {
    /// Called once before a wait sleeps. `Ok(None)`: no gate for this
    /// thread (sleep as usual). `Ok(Some((restore, sleep)))`: signals are
    /// now blocked; `restore` is handed to [`SleepGate::restore`] after
    /// the wait, and `sleep` is the mask to sleep with when the caller gave
    /// none. `Err(errno)`: do not sleep (`EINTR`: a signal is already
    /// waiting for its handler).
    pub block: GateBlock,
    /// Called after a wait for which `block` returned `Some`.
    pub restore: fn(u64),
}

static GATE: AtomicPtr<SleepGate> = AtomicPtr::new(core::ptr::null_mut());

/// Installs `gate` for every later wait.
pub(crate) fn set_sleep_gate(gate: &'static SleepGate) {
    GATE.store(gate as *const SleepGate as *mut SleepGate, Ordering::Release);
}

fn sleep_gate() -> Option<&'static SleepGate> {
    let p = GATE.load(Ordering::Acquire);
    // SAFETY: only ever set from a &'static SleepGate.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// A sigset_t whose first word (the kernel's 64 signals) is `mask`.
fn sigset_of(mask: u64) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; all zeroes is the empty set.
    let mut s: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: sigset_t is at least 8 bytes and aligned for u64.
    unsafe { *(&mut s as *mut libc::sigset_t as *mut u64) = mask };
    s
}

/// What the waiter was asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WaitArg {
    /// Absolute CLOCK_MONOTONIC deadline, if any.
    pub deadline: Option<libc::timespec>,
    /// Signal mask to install while sleeping, if any.
    pub sigmask: Option<libc::sigset_t>,
}

/// Current CLOCK_MONOTONIC time.
pub(crate) fn now() -> libc::timespec {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

/// `base + (sec, nsec)`, normalised and saturating.
pub(crate) fn ts_add(base: libc::timespec, sec: i64, nsec: i64) -> libc::timespec {
    let mut s = base.tv_sec.saturating_add(sec).saturating_add(nsec.div_euclid(1_000_000_000));
    let mut n = base.tv_nsec + nsec.rem_euclid(1_000_000_000);
    if n >= 1_000_000_000 {
        n -= 1_000_000_000;
        s = s.saturating_add(1);
    }
    libc::timespec { tv_sec: s, tv_nsec: n }
}

fn ts_le(a: &libc::timespec, b: &libc::timespec) -> bool {
    (a.tv_sec, a.tv_nsec) <= (b.tv_sec, b.tv_nsec)
}

/// Wakes every thread sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only reads the address, which is a live AtomicU32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Sleeps while `*word == val`, until the absolute CLOCK_MONOTONIC `deadline`.
/// Returns Ok on wake or value change, `ETIMEDOUT`, or `EINTR`.
pub(crate) fn futex_wait_until(word: &AtomicU32, val: u32, deadline: &libc::timespec) -> Result<(), Errno> {
    // SAFETY: the address is a live AtomicU32; deadline is a valid timespec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
            val,
            deadline as *const libc::timespec,
            core::ptr::null::<u32>(),
            u32::MAX,
        )
    };
    if r == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno(libc::EAGAIN) => Ok(()),
        e => Err(e),
    }
}

/// The one-shot registrations a harvester of `ctx` may watch directly, or
/// an empty list (watch the epoll instance).
fn direct_list<'a>(ctx: &Ctx, buf: &'a mut [super::reactor::Direct; super::reactor::MAX_DIRECT]) -> &'a [super::reactor::Direct] {
    match super::ops::poll::direct_watch(ctx, buf) {
        Some(n) => &buf[..n],
        None => &[],
    }
}

/// The earlier of `deadline` and the end of a sleep slice: a ring another
/// process may post to is looked at again every `shared::SLICE_NS`, as that
/// process's posts cannot wake this one's sleepers (see `shared.rs`).
fn sliced(ctx: &Ctx, deadline: &libc::timespec) -> libc::timespec {
    if !ctx.shm.is_inherited() {
        return *deadline;
    }
    let end = ts_add(now(), 0, super::shared::SLICE_NS);
    if ts_le(&end, deadline) {
        end
    } else {
        *deadline
    }
}

impl Ctx {
    /// Posts the timeouts a process that shared this ring handed over when
    /// it exited and whose deadline has passed (see `shared::Orphan`).
    pub fn reap_orphans(&self) {
        if !self.shm.is_inherited() {
            return;
        }
        let mut fired = Vec::new();
        self.shm.take_expired_orphans(super::timer::mono_ns(), |ud| fired.push(super::Cqe::new(ud, -libc::ETIME, 0)));
        if !fired.is_empty() {
            self.cq_timeouts.fetch_add(fired.len() as u32, Ordering::AcqRel);
            self.post_now(&fired);
        }
    }

    /// True when fewer than `min` CQEs are ready after an overflow flush.
    pub fn needs_wait(&self, min: u32) -> bool {
        self.reap_orphans();
        self.run_deferred();
        self.flush_overflow();
        self.cq_ready() < min.min(self.rings.geo.cq_entries)
    }

    /// The GETEVENTS half of enter: wait until `min` CQEs are ready.
    /// Returns 0, `ETIME` or `EINTR` (as the kernel does, 0 whenever the CQ
    /// is non-empty at the end).
    pub fn wait_cqes(&self, min: u32, arg: &WaitArg) -> Result<(), Errno> {
        let min = min.min(self.rings.geo.cq_entries);
        let defer = self.has(crate::abi::IORING_SETUP_DEFER_TASKRUN);
        // The caller runs what is ready now, as the kernel runs the task
        // work the wakers queued before it looks at the CQ: a file that
        // became ready before the call has been served when it returns,
        // whether or not the reactor thread got to it yet, and a run the
        // reactor thread is in the middle of is let finish.
        if let Some(p) = self.poller.get().filter(|p| p.armed_fd().is_some()) {
            if defer {
                p.run_pending();
            } else {
                p.harvest();
                p.settle();
            }
        }
        if defer {
            self.settle_taskrun_flag();
        }
        self.run_deferred();
        self.flush_overflow();
        if self.cq_ready() >= min {
            return Ok(());
        }
        let gate = sleep_gate();
        let mut sigmask = arg.sigmask;
        let restore = match gate.map(|g| (g.block)()) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some((restore, sleep)))) => {
                sigmask = Some(sigmask.unwrap_or_else(|| sigset_of(sleep)));
                Some(restore)
            }
            Some(Err(e)) => return if self.cq_ready() > 0 { Ok(()) } else { Err(Errno(e)) },
        };
        let timeouts = self.cq_timeouts.load(Ordering::Acquire);
        let far = ts_add(now(), 86_400 * 365, 0);
        let deadline = arg.deadline.unwrap_or(far);
        let poller = self.poller.get().filter(|p| p.armed_fd().is_some());
        let res = match (sigmask, poller) {
            (None, None) => self.wait_futex(min, &deadline, timeouts),
            (mask, poller) => {
                if let Some(p) = poller {
                    p.join();
                }
                let r = self.wait_ppoll(min, &deadline, mask.as_ref(), poller.map(|p| &**p), timeouts);
                if let Some(p) = poller {
                    p.leave(self);
                }
                r
            }
        };
        if let (Some(g), Some(r)) = (gate, restore) {
            (g.restore)(r);
        }
        if let Some(p) = self.poller.get() {
            p.settle();
        }
        match res {
            Err(_) if self.cq_ready() > 0 => Ok(()),
            r => r,
        }
    }

    fn wait_futex(&self, min: u32, deadline: &libc::timespec, timeouts: u32) -> Result<(), Errno> {
        loop {
            self.reap_orphans();
            self.run_deferred();
            self.flush_overflow();
            let (ready, seq) = self.wait_register(min, false, timeouts);
            if ready {
                self.wait_unregister(false);
                if self.has_task_work() {
                    continue;
                }
                return Ok(());
            }
            let until = sliced(self, deadline);
            crate::chaos::point();
            let r = futex_wait_until(&self.cq_seq, seq, &until);
            self.wait_unregister(false);
            match r {
                Ok(()) => {}
                Err(Errno(libc::ETIMEDOUT)) if !ts_le(deadline, &now()) => {}
                Err(Errno(libc::ETIMEDOUT)) => {
                    self.flush_overflow();
                    return if self.cq_ready() >= min { Ok(()) } else { Err(Errno(libc::ETIME)) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A wait in `ppoll`: with a temporary signal mask (swapped in
    /// atomically with the sleep), and/or harvesting the ring's armed polls
    /// from `poller`. Posters write the ring's wait eventfd while
    /// `sig_waiters` is non-zero (registered under the CQ lock, as the futex
    /// path's waiters are).
    fn wait_ppoll(
        &self,
        min: u32,
        deadline: &libc::timespec,
        mask: Option<&libc::sigset_t>,
        poller: Option<&super::reactor::RingPoller>,
        timeouts: u32,
    ) -> Result<(), Errno> {
        let efd = self.sig_eventfd()?;
        let mut events = super::reactor::Events::default();
        let mut direct = [super::reactor::Direct::default(); super::reactor::MAX_DIRECT];
        loop {
            self.reap_orphans();
            self.run_deferred();
            self.flush_overflow();
            let (ready, _) = self.wait_register(min, true, timeouts);
            if ready {
                self.wait_unregister(true);
                if self.has_task_work() {
                    continue;
                }
                return Ok(());
            }
            let now = now();
            if ts_le(deadline, &now) {
                self.wait_unregister(true);
                return Err(Errno(libc::ETIME));
            }
            let until = sliced(self, deadline);
            let mut rel_ns = (until.tv_sec - now.tv_sec) as i128 * 1_000_000_000
                + (until.tv_nsec - now.tv_nsec) as i128;
            rel_ns = rel_ns.max(0);
            let rel = libc::timespec {
                tv_sec: (rel_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (rel_ns % 1_000_000_000) as libc::c_long,
            };
            let maskp = mask.map_or(core::ptr::null(), |m| m as *const libc::sigset_t);
            let mut got = 0;
            crate::chaos::point();
            let err = match poller {
                Some(p) => match p.sleep(efd, direct_list(self, &mut direct), Some(&rel), mask, &mut events) {
                    Ok(n) => {
                        got = n;
                        None
                    }
                    Err(e) => Some(e),
                },
                None => {
                    let mut pfd = libc::pollfd { fd: efd, events: libc::POLLIN, revents: 0 };
                    // SAFETY: one valid pollfd; rel is valid; maskp is null
                    // or a valid sigset for the call.
                    let r = unsafe { libc::ppoll(&mut pfd, 1, &rel, maskp) };
                    let err = (r < 0).then(Errno::last);
                    if r > 0 {
                        let mut v = 0u64;
                        // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
                        unsafe { libc::read(efd, (&mut v as *mut u64).cast(), 8) };
                    }
                    err
                }
            };
            // Unregistered first: completions we run ourselves need no
            // eventfd write to wake us.
            self.wait_unregister(true);
            crate::chaos::point();
            if let (Some(p), 1..) = (poller, got) {
                p.run(&events, got);
            }
            if let Some(e) = err {
                if e.0 == libc::EINTR {
                    return Err(e);
                }
            }
        }
    }
}
