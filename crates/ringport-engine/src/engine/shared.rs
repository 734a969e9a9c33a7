//! Rings shared across `fork`: the state every process using a ring must
//! agree on, kept in a `MAP_SHARED` page of its own.
//!
//! On Linux a fork child inherits the ring fd and its mappings; parent and
//! child may both submit, and either reaps the other's completions. The
//! ring memory is already shared. What must also be shared is the engine's
//! producer/consumer bookkeeping, which the program never sees:
//!
//! - the SQ head (the next SQE to fetch) and the CQ tail (the next CQE slot),
//!   which the engine otherwise keeps privately so that a program cannot
//!   steer it by writing shared memory;
//! - the lock around them (the kernel's `uring_lock` and `completion_lock`):
//!   a process-shared lock on a futex word, held by one *process* at a time
//!   (threads of one process are serialised by the ring's private submit lock
//!   first), which a waiter steals from a holder that died;
//! - the SINGLE_ISSUER submitter, processes with a CQ overflow backlog, the
//!   process whose thread polls the SQ, and timeouts handed over by a
//!   process that exited (see [`Orphan`]).
//!
//! The page is made at setup for every mmap'd ring and lives at the same
//! address in every process that inherits it. The lock is taken on every
//! submit and post, forked or not: it costs two uncontended atomic operations,
//! and it means a fork needs no handshake with threads that are mid-submit.
//!
//! Everything else stays per process: each process runs the requests it
//! submitted (its own workers, reactor and timers), and wakes its own
//! waiters. A waiter on a ring that existed at a fork cannot be woken by
//! another process's post, so it sleeps in slices of [`SLICE_NS`] and looks
//! again (see docs/ARCHITECTURE.md for what this costs and where it differs
//! from the kernel).

use super::Errno;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Longest sleep of a CQ waiter (or idle SQPOLL thread) on a ring that
/// another process may post to or submit on.
pub(crate) const SLICE_NS: i64 = 2_000_000;

/// Timeouts an exiting process can hand over per ring.
pub(crate) const MAX_ORPHANS: usize = 32;

const ORPHAN_FREE: u32 = 0;
const ORPHAN_CLAIMED: u32 = 1;
const ORPHAN_ARMED: u32 = 2;

/// A TIMEOUT whose process exited before it fired. On Linux the timer
/// belongs to the ring and still fires (`-ETIME`) after its submitter is
/// gone; here the exiting process leaves it in the shared page and any
/// process waiting on the ring posts it when its deadline passes.
#[repr(C)]
pub(crate) struct Orphan {
    state: AtomicU32,
    _pad: u32,
    user_data: AtomicU64,
    /// Absolute CLOCK_MONOTONIC deadline, in nanoseconds.
    deadline_ns: AtomicU64,
}

/// How many processes sharing a ring can be asked to cancel their requests
/// (see `remote.rs`).
pub(crate) const MAX_MEMBERS: usize = 8;

/// A request from one process to another to cancel (`remote.rs`).
#[repr(C)]
pub(crate) struct Mail {
    /// 0 when free, else the pid of the process using it.
    pub owner: AtomicI32,
    /// The number of the last ask begun (tickets are never 0).
    pub seq: AtomicU32,
    /// The ask whose fields are complete (0 while they are being written):
    /// a seqlock word, and the futex word service threads sleep on.
    pub ticket: AtomicU32,
    /// The process asked.
    pub target: AtomicI32,
    /// The cancel: `Spec`'s fields.
    pub flags: AtomicU32,
    pub fd: AtomicI32,
    pub opcode: AtomicU32,
    pub user_data: AtomicU64,
    /// The last ticket answered; the asker sleeps on it.
    pub answered: AtomicU32,
    /// The answer: its ticket in the high half, the result in the low.
    pub answer: AtomicU64,
    /// When the owner took the mail (CLOCK_MONOTONIC ns): an owner that
    /// holds it far longer than an ask takes (gone through a raw exec, say)
    /// loses it.
    pub owner_since: AtomicU64,
}

/// The shared page's contents.
#[repr(C)]
pub(crate) struct Shm {
    /// 0 when free, else the pid of the process holding the lock.
    lock: AtomicI32,
    /// Processes sleeping on `lock`.
    lock_waiters: AtomicU32,
    /// The next SQ position to fetch (valid under the lock).
    pub sq_head: AtomicU32,
    /// The next CQ position to fill (valid under the lock).
    pub cq_tail: AtomicU32,
    /// Processes whose overflow backlog is not empty (under the lock).
    pub backlogged: AtomicU32,
    /// SINGLE_ISSUER: the thread allowed to submit (0: anyone, for now).
    pub submitter: AtomicI32,
    /// Non-zero once the ring existed when its process forked.
    pub inherited: AtomicU32,
    /// The process running the ring's SQPOLL thread (0: none).
    pub sq_owner: AtomicI32,
    orphans: [Orphan; MAX_ORPHANS],
    /// Pids of the processes using the ring whose service thread answers
    /// `mail` (0: free slot).
    pub members: [AtomicI32; MAX_MEMBERS],
    pub mail: Mail,
}

const _: () = assert!(core::mem::size_of::<Shm>() <= 4096);

/// One process's mapping of a ring's shared page.
pub(crate) struct ShmPage {
    ptr: core::ptr::NonNull<Shm>,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for ShmPage {}
// SAFETY: see Send.
unsafe impl Sync for ShmPage {}

impl ShmPage {
    /// Maps a fresh, zeroed shared page.
    pub fn new() -> Result<ShmPage, Errno> {
        // SAFETY: an anonymous shared mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        // SAFETY: mmap returned a non-null page-aligned mapping.
        Ok(ShmPage { ptr: unsafe { core::ptr::NonNull::new_unchecked(p.cast()) } })
    }

    /// This process's own handle on a page it inherited over fork (the
    /// handle it inherited belongs to a leaked context and is never dropped).
    pub fn inherit(&self) -> ShmPage {
        ShmPage { ptr: self.ptr }
    }
}

impl Drop for ShmPage {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `new` in this address space (or
        // inherited with it) and only this handle unmaps it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), 4096) };
    }
}

impl core::ops::Deref for ShmPage {
    type Target = Shm;
    fn deref(&self) -> &Shm {
        // SAFETY: the mapping is live for this handle's life; all-zero bytes
        // are a valid Shm (atomics), and access is through atomics only.
        unsafe { self.ptr.as_ref() }
    }
}

/// This process's pid, cached (reset in a fork child).
static PID: AtomicI32 = AtomicI32::new(0);

/// The calling process's pid.
pub(crate) fn pid() -> i32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: getpid has no preconditions.
    let p = unsafe { libc::getpid() };
    PID.store(p, Ordering::Relaxed);
    p
}

/// Forgets the cached pid (fork child hook: no allocation, no locks).
pub(crate) fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// True while process `pid` exists and has not exited (a zombie has).
pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 && Errno::last().0 == libc::ESRCH {
        return false;
    }
    // A zombie still answers kill(0): look at its state.
    let path = format!("/proc/{pid}/stat\0");
    let mut buf = [0u8; 256];
    // SAFETY: a NUL-terminated path; reading into a local buffer.
    let n = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return true;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let stat = &buf[..n.max(0) as usize];
    // "pid (comm) S ...": the state follows the last ')'.
    match stat.iter().rposition(|&b| b == b')') {
        Some(i) => !matches!(stat.get(i + 2), Some(b'Z' | b'X')),
        None => true,
    }
}

pub(crate) fn futex(word: *const u32, op: i32, val: u32, timeout: *const libc::timespec) -> i64 {
    // SAFETY: word points at a live atomic of the shared page; a shared
    // (not FUTEX_PRIVATE) operation, because other processes use the word.
    unsafe { libc::syscall(libc::SYS_futex, word, op, val, timeout, core::ptr::null::<u32>(), 0) }
}

impl Shm {
    /// Takes the process-shared lock. The caller holds the ring's private
    /// submit lock, so at most one thread per process waits here.
    #[inline]
    pub fn lock(&self) {
        let me = pid();
        if self.lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow(me);
        }
    }

    #[cold]
    fn lock_slow(&self, me: i32) {
        let mut spins = 0;
        loop {
            let holder = self.lock.load(Ordering::Relaxed);
            if holder == 0 {
                if self.lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return;
                }
                continue;
            }
            if spins < 100 {
                spins += 1;
                core::hint::spin_loop();
                continue;
            }
            self.lock_waiters.fetch_add(1, Ordering::SeqCst);
            let ten_ms = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
            let r = futex(self.lock.as_ptr() as *const u32, libc::FUTEX_WAIT, holder as u32, &ten_ms);
            self.lock_waiters.fetch_sub(1, Ordering::SeqCst);
            if r != 0 && Errno::last().0 == libc::ETIMEDOUT && !alive(holder) {
                // The holder died inside the lock (killed by a signal): the
                // state it guarded is whatever it last stored, still sound
                // to use, so take the lock over.
                let _ = self.lock.compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// Releases the lock.
    #[inline]
    pub fn unlock(&self) {
        self.lock.store(0, Ordering::SeqCst);
        if self.lock_waiters.load(Ordering::SeqCst) > 0 {
            futex(self.lock.as_ptr() as *const u32, libc::FUTEX_WAKE, 1, core::ptr::null());
        }
    }

    /// True when another process may post to or submit on this ring.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.inherited.load(Ordering::Relaxed) != 0
    }

    /// Records process `me` as a user of the ring that answers mail. False
    /// when every slot is taken by a live process.
    pub fn join(&self, me: i32) -> bool {
        if self.members.iter().any(|m| m.load(Ordering::Acquire) == me) {
            return true;
        }
        for m in &self.members {
            let cur = m.load(Ordering::Acquire);
            if (cur == 0 || !alive(cur)) && m.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return true;
            }
        }
        false
    }

    /// Forgets process `me` as a user of the ring.
    pub fn leave(&self, me: i32) {
        for m in &self.members {
            let _ = m.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// The other processes recorded as users of the ring (maybe dead).
    pub fn others(&self, me: i32) -> impl Iterator<Item = i32> + '_ {
        self.members.iter().map(|m| m.load(Ordering::Acquire)).filter(move |&p| p != 0 && p != me)
    }

    /// Hands a timeout over (see [`Orphan`]). False when every slot is taken.
    pub fn adopt_orphan(&self, user_data: u64, deadline_ns: u64) -> bool {
        for o in &self.orphans {
            if o.state.compare_exchange(ORPHAN_FREE, ORPHAN_CLAIMED, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                o.user_data.store(user_data, Ordering::Relaxed);
                o.deadline_ns.store(deadline_ns, Ordering::Relaxed);
                o.state.store(ORPHAN_ARMED, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Takes the handed-over timeouts whose deadline is `now_ns` or earlier,
    /// calling `fire` with each one's user_data. Returns the earliest deadline
    /// still pending, if any.
    pub fn take_expired_orphans(&self, now_ns: u64, mut fire: impl FnMut(u64)) -> Option<u64> {
        let mut next: Option<u64> = None;
        for o in &self.orphans {
            if o.state.load(Ordering::Acquire) != ORPHAN_ARMED {
                continue;
            }
            let d = o.deadline_ns.load(Ordering::Relaxed);
            if d > now_ns {
                next = Some(next.map_or(d, |n| n.min(d)));
                continue;
            }
            if o.state.compare_exchange(ORPHAN_ARMED, ORPHAN_CLAIMED, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                let ud = o.user_data.load(Ordering::Relaxed);
                o.state.store(ORPHAN_FREE, Ordering::Release);
                fire(ud);
            }
        }
        next
    }
}

impl super::Ctx {
    /// A fork is about to copy this process: from now on another process
    /// may submit on this ring and post to it. Wakes this process's
    /// sleepers so that they go back to sleep in slices.
    pub(crate) fn mark_inherited(&self) {
        self.shm.inherited.store(1, Ordering::Release);
        // Recorded before the fork, so the child can ask this process to
        // cancel at once; the service thread starts in the parent hook.
        self.shm.join(pid());
        self.cq_seq.fetch_add(1, Ordering::Release);
        super::wait::futex_wake_all(&self.cq_seq);
        if let Some(fd) = self.sig_evfd.get() {
            let one = 1u64;
            // SAFETY: writing 8 bytes from a u64 to the ring's own eventfd.
            unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), (&one as *const u64).cast(), 8) };
        }
        if let Some(sqd) = self.sqd.get() {
            sqd.wake();
        }
    }

    /// In a fork child: this process's own context for ring `old`, which
    /// the parent had when the child was born. It shares the ring memory and
    /// the shared page; it starts with nothing in flight (the parent's
    /// requests stay the parent's), and with copies of what was registered.
    /// A ring polled by the parent's SQPOLL thread stays polled by it.
    pub(crate) fn adopt(old: &super::Ctx) -> std::sync::Arc<super::Ctx> {
        let ctx = super::Ctx::new(
            old.rings.inherit(),
            old.shm.inherit(),
            old.flags,
            old.ident,
            old.enabled.load(Ordering::Acquire),
        );
        // A lock the parent held at the fork stays held in the child's copy:
        // take what can be read, and start empty otherwise.
        if let Ok(r) = old.rsrc.try_read() {
            *ctx.rsrc.write().unwrap_or_else(|e| e.into_inner()) = r.inherit();
        }
        if let Ok(e) = old.evfd.try_read() {
            if let Some(ev) = e.as_ref().and_then(|ev| ev.inherit()) {
                *ctx.evfd.write().unwrap_or_else(|e| e.into_inner()) = Some(ev);
                ctx.has_evfd.store(true, Ordering::Release);
            }
        }
        if let Some(r) = old.restrictions.get() {
            let _ = ctx.restrictions.set(r.clone());
        }
        ctx.cq_posted.store(old.cq_posted.load(Ordering::Acquire), Ordering::Release);
        ctx.cq_timeouts.store(old.cq_timeouts.load(Ordering::Acquire), Ordering::Release);
        ctx
    }

    /// SQPOLL ring adopted in a fork child: its poller is a thread of the
    /// process that created it. EOWNERDEAD once that process has exited, as
    /// the kernel answers when a ring's SQ thread is gone.
    pub(crate) fn check_sq_owner(&self) -> Result<(), Errno> {
        let owner = self.shm.sq_owner.load(Ordering::Acquire);
        if owner != 0 && owner != pid() && !alive(owner) {
            return Err(Errno(libc::EOWNERDEAD));
        }
        Ok(())
    }
}

/// Registers [`leave_shared_rings`] to run at `exit` (once per process; a
/// fork child inherits the registration).
pub(crate) fn arm_exit_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe { libc::atexit(on_exit) };
    });
}

extern "C" fn on_exit() {
    leave_shared_rings(false);
}

/// The process is about to `exec`: on Linux that cancels every request of
/// the task, timeouts included (-ECANCELED), on every ring; only rings that
/// other processes share can show it. Nothing happens in a `vfork` child
/// (it shares this memory but none of these requests are its own; its pid
/// differs from the cached one) or in a process that never used a ring
/// since its fork (no cached pid). `exec` is async-signal-safe and a
/// handler may call it: the ring registry is only tried (if it stays busy,
/// nothing is cancelled). Under the interception library a handler never
/// runs inside the engine, so the locks taken after that are never held by
/// the handler's own thread; with shared rings the cancel allocates, so a
/// handler that interrupted `malloc` and then execs is not safe.
pub(crate) fn before_exec() {
    if exec_pid().is_some() {
        leave_shared_rings(true);
    }
}

/// The cached pid, if it is this process's (not a `vfork` child's, which
/// shares the cache; not unset since a fork): the process whose requests
/// an `exec` concerns.
fn exec_pid() -> Option<i32> {
    let cached = PID.load(Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    (cached != 0 && cached == unsafe { libc::getpid() }).then_some(cached)
}

/// The `exec` after [`before_exec`] failed: answer cancels again.
pub(crate) fn exec_failed() {
    let Some(cached) = exec_pid() else { return };
    for ctx in super::registry::shared_rings() {
        if ctx.serving.load(Ordering::Acquire) {
            ctx.shm.join(cached);
        }
    }
}

/// This process exits (or, with `exec`, execs) while other processes share
/// some of its rings. On Linux its requests belong to the ring and end
/// there: the kernel cancels or interrupts what it ran for this task, and at
/// exit its timers still fire. Here the process's workers, reactor and
/// timers die with it, so before it goes: at exit plain timeouts are handed
/// over to the shared page (another process posts their `-ETIME`);
/// everything else is cancelled (`-ECANCELED`; a request a worker is
/// running is interrupted, `-EINTR`, or finishes) and posted, waiting up to
/// a second for running workers; the overflow backlog is flushed into the
/// CQ as far as it fits; and the process stops answering cancels.
pub(crate) fn leave_shared_rings(exec: bool) {
    use super::ops::cancel::{cancel_locked, Spec};
    let rings = if exec { super::registry::shared_rings_try().unwrap_or_default() } else { super::registry::shared_rings() };
    for ctx in rings {
        ctx.shm.leave(pid());
        if !exec {
            super::ops::timeout::hand_over(&ctx);
        }
        let any = Spec { flags: crate::abi::IORING_ASYNC_CANCEL_ANY, user_data: 0, fd: 0, opcode: 0 };
        cancel_locked(&ctx, &any);
        for (req, res) in ctx.take_remote_tw() {
            super::submit::complete_elsewhere(&ctx, req, res);
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while super::wq::busy_with(&ctx) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        ctx.flush_overflow();
    }
}
