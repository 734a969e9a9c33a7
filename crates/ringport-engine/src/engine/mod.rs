//! The engine: the kernel's side of io_uring, run inside the program's process.
//!
//! The life of an SQE (see `docs/ARCHITECTURE.md`) is one path through these
//! modules:
//!
//! 1. [`submit`]: *fetch* — copy the SQE out of shared memory once;
//! 2. [`opdef`]: *prep* — validate it into a [`opdef::Req`] using the opcode table;
//! 3. [`submit`]: *issue* — try it non-blocking inline; on EAGAIN, or if the op
//!    may block, punt it to the worker pool ([`wq`]);
//! 4. [`complete`]: *post* — write the CQE, or queue it on the overflow backlog.

pub(crate) mod aio;
pub(crate) mod complete;
pub(crate) mod enter;
pub(crate) mod global;
pub(crate) mod opdef;
pub(crate) mod par;
pub(crate) mod ops;
pub(crate) mod register;
pub(crate) mod reactor;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod ring;
pub(crate) mod setup;
pub(crate) mod shared;
pub(crate) mod sqpoll;
pub(crate) mod submit;
pub(crate) mod timer;
pub(crate) mod uaccess;
pub(crate) mod wait;
pub(crate) mod wq;

use crate::abi::io_uring_sqe;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Mutex, RwLock};

/// A positive errno value, as the kernel would return it negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }
    /// The value as a negative syscall-style result.
    pub fn neg(self) -> i32 {
        -self.0
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// A private copy of one SQE, taken from shared memory exactly once.
/// Accessors read the kernel struct's fields (unions included) by name.
#[derive(Clone, Copy)]
pub(crate) struct Sqe([u64; 8]);

impl Sqe {
    #[inline]
    fn raw(&self) -> &io_uring_sqe {
        // SAFETY: io_uring_sqe is a 64-byte repr(C) struct of plain integers
        // (asserted in abi.rs); any bit pattern is valid and the array is
        // 8-aligned, which covers every field's alignment.
        unsafe { &*(self.0.as_ptr() as *const io_uring_sqe) }
    }
    #[inline]
    pub fn opcode(&self) -> u8 {
        self.raw().opcode
    }
    #[inline]
    pub fn flags(&self) -> u8 {
        self.raw().flags
    }
    #[inline]
    pub fn ioprio(&self) -> u16 {
        self.raw().ioprio
    }
    #[inline]
    pub fn fd(&self) -> i32 {
        self.raw().fd
    }
    #[inline]
    pub fn off(&self) -> u64 {
        // SAFETY: every variant of this union is a plain integer.
        unsafe { self.raw().__bindgen_anon_1.off }
    }
    #[inline]
    pub fn addr(&self) -> u64 {
        // SAFETY: every variant of this union is a plain integer.
        unsafe { self.raw().__bindgen_anon_2.addr }
    }
    #[inline]
    pub fn len(&self) -> u32 {
        self.raw().len
    }
    /// The per-op flags word (`rw_flags`, `fsync_flags`, `nop_flags`, ...).
    #[inline]
    pub fn op_flags(&self) -> u32 {
        // SAFETY: every variant of this union is a plain integer.
        unsafe { self.raw().__bindgen_anon_3.rw_flags }
    }
    #[inline]
    pub fn user_data(&self) -> u64 {
        self.raw().user_data
    }
    #[inline]
    pub fn buf_index(&self) -> u16 {
        // SAFETY: every variant of this (packed) union is a u16; read by value.
        unsafe { core::ptr::read_unaligned(core::ptr::addr_of!(self.raw().__bindgen_anon_4.buf_index)) }
    }
    #[inline]
    pub fn personality(&self) -> u16 {
        self.raw().personality
    }
    /// `splice_fd_in` / `file_index` / `optlen`.
    #[inline]
    pub fn file_index(&self) -> u32 {
        // SAFETY: every variant of this union is a plain integer.
        unsafe { self.raw().__bindgen_anon_5.file_index }
    }
    /// `addr2` (shares its bytes with `off`).
    #[inline]
    pub fn addr2(&self) -> u64 {
        self.off()
    }
    /// `addr3` (the SQE's seventh u64).
    #[inline]
    pub fn addr3(&self) -> u64 {
        self.0[6]
    }
    /// The last u64 of the SQE (`__pad2[0]` / `attr_type_mask`).
    #[inline]
    pub fn pad2(&self) -> u64 {
        self.0[7]
    }
}

/// One completion, before it reaches the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
    /// The extra 16 bytes of a CQE32 ring.
    pub big: [u64; 2],
}

impl Cqe {
    pub fn new(user_data: u64, res: i32, flags: u32) -> Cqe {
        Cqe { user_data, res, flags, big: [0; 2] }
    }
}

/// The submit state, locked (see [`Ctx::lock_submit`]). Dropping it stores
/// the SQ head and CQ tail back into the shared page, then unlocks.
pub(crate) struct SubmitGuard<'a> {
    st: std::sync::MutexGuard<'a, submit::SubmitState>,
    shm: &'a shared::Shm,
}

impl core::ops::Deref for SubmitGuard<'_> {
    type Target = submit::SubmitState;
    #[inline]
    fn deref(&self) -> &submit::SubmitState {
        &self.st
    }
}

impl core::ops::DerefMut for SubmitGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut submit::SubmitState {
        &mut self.st
    }
}

impl Drop for SubmitGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shm.sq_head.store(self.st.head, std::sync::atomic::Ordering::Relaxed);
        self.shm.cq_tail.store(self.st.cq.tail, std::sync::atomic::Ordering::Relaxed);
        self.shm.unlock();
    }
}

thread_local! {
    /// This thread's id once asked for (0: not yet).
    pub(crate) static TID: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// One io_uring instance.
pub(crate) struct Ctx {
    pub rings: ring::Rings,
    /// The `IORING_SETUP_*` flags it was created with.
    pub flags: u32,
    /// Identity of the ring's memfd (st_dev, st_ino): how an fd is recognised.
    pub ident: (u64, u64),
    /// The submission side, serialised like the kernel's `uring_lock`.
    pub submit: Mutex<submit::SubmitState>,
    /// This context itself, for code that only has `&Ctx` but must hand an
    /// `Arc` on (a timer, a worker).
    pub me: std::sync::Weak<Ctx>,
    /// Armed polls (POLL_ADD, and reads/writes waiting for readiness).
    pub polls: Mutex<ops::poll::Table>,
    /// Armed TIMEOUT requests.
    pub timeouts: Mutex<ops::timeout::Table>,
    /// Timeouts completed so far (expired or satisfied): a change wakes CQ
    /// waiters, and their CQEs do not count toward sequence timeouts.
    pub cq_timeouts: AtomicU32,
    /// A sequence timeout (TIMEOUT with `off`) has been armed.
    pub seq_timeouts: AtomicBool,
    /// CQEs posted so far (into the ring or the backlog).
    pub cq_posted: AtomicU32,
    /// Completions decided inside an issue (a removed timeout's -ECANCELED)
    /// that must be posted after the current batch, as task work.
    pub remote_tw: Mutex<Vec<(Box<opdef::Req>, i32)>>,
    /// Fast check for `remote_tw`.
    pub has_remote_tw: AtomicBool,
    /// IO_DRAIN's defer queue and completion counts.
    pub drain: submit::Drain,
    /// Futex word bumped whenever CQEs are posted while someone waits.
    pub cq_seq: AtomicU32,
    /// Number of threads sleeping (or about to sleep) in a CQ wait.
    pub waiters: AtomicU32,
    /// Registered files and buffers.
    pub rsrc: RwLock<register::Resources>,
    /// Registered eventfd, if any.
    pub evfd: RwLock<Option<register::EventFd>>,
    /// True while the overflow backlog is non-empty (private: the program
    /// can clear the shared IORING_SQ_CQ_OVERFLOW bit, not this).
    pub has_backlog: AtomicBool,
    /// Fast check for `evfd`.
    pub has_evfd: AtomicBool,
    /// The SQPOLL thread serving this ring, with IORING_SETUP_SQPOLL.
    pub sqd: std::sync::OnceLock<std::sync::Arc<sqpoll::SqData>>,
    /// The state shared with every process that inherited the ring over
    /// fork (SQ head, CQ tail, their lock, the SINGLE_ISSUER submitter).
    pub shm: shared::ShmPage,
    /// False while an R_DISABLED ring waits for IORING_REGISTER_ENABLE_RINGS.
    pub enabled: AtomicBool,
    /// Restrictions, once registered (enforced once the ring is enabled).
    pub restrictions: std::sync::OnceLock<register::Restrictions>,
    /// DEFER_TASKRUN: completions that finished away from the submitter,
    /// posted only inside its `enter(GETEVENTS)`.
    pub deferred: Mutex<Vec<Cqe>>,
    /// Fast check for `deferred`.
    pub has_deferred: AtomicBool,
    /// Set once the ring's fd is closed: no new submissions.
    pub closed: AtomicBool,
    /// Threads in a sigmask wait (they sleep in `ppoll` on `sig_evfd`).
    pub sig_waiters: AtomicU32,
    /// Eventfd that wakes sigmask waiters, made on first use.
    pub sig_evfd: std::sync::OnceLock<std::os::fd::OwnedFd>,
    /// The ring's own epoll instance for its armed polls, made on first use.
    pub poller: std::sync::OnceLock<std::sync::Arc<reactor::RingPoller>>,
    /// Serialises the poller's creation.
    pub poller_init: Mutex<()>,
    /// Stand-in for the ring fd in the program's epoll sets (the ring fd is
    /// a memfd, which epoll refuses): readable while CQEs wait, written on
    /// every post, made on first use.
    pub ready_evfd: std::sync::OnceLock<std::os::fd::OwnedFd>,
    /// `ready_evfd` was written since it was last drained.
    pub ready_signalled: AtomicBool,
    /// Provided-buffer groups (PROVIDE_BUFFERS, PBUF_RING).
    pub kbufs: Mutex<ops::kbuf::Table>,
    /// This process answers cancels from the others sharing the ring
    /// (`remote.rs`).
    pub serving: AtomicBool,
}

impl Ctx {
    /// A context for `rings` with nothing in flight and nothing registered.
    pub(crate) fn new(rings: ring::Rings, shm: shared::ShmPage, flags: u32, ident: (u64, u64), enabled: bool) -> std::sync::Arc<Ctx> {
        std::sync::Arc::new_cyclic(|me| Ctx {
            me: me.clone(),
            timeouts: Default::default(),
            polls: Default::default(),
            cq_timeouts: AtomicU32::new(0),
            seq_timeouts: AtomicBool::new(false),
            cq_posted: AtomicU32::new(0),
            remote_tw: Default::default(),
            has_remote_tw: AtomicBool::new(false),
            rings,
            shm,
            flags,
            ident,
            submit: Mutex::new(Default::default()),
            drain: Default::default(),
            cq_seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            rsrc: RwLock::new(Default::default()),
            evfd: RwLock::new(None),
            has_evfd: AtomicBool::new(false),
            has_backlog: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sig_waiters: AtomicU32::new(0),
            sig_evfd: Default::default(),
            poller: Default::default(),
            poller_init: Default::default(),
            ready_evfd: Default::default(),
            ready_signalled: AtomicBool::new(false),
            kbufs: Default::default(),
            sqd: Default::default(),
            enabled: AtomicBool::new(enabled),
            restrictions: Default::default(),
            deferred: Default::default(),
            has_deferred: AtomicBool::new(false),
            serving: AtomicBool::new(false),
        })
    }

    /// The submit lock (the kernel's `uring_lock`, which is also the CQ
    /// lock here), with the process-shared lock and the SQ head and CQ tail
    /// it guards (see [`shared`]).
    #[inline]
    pub(crate) fn lock_submit(&self) -> SubmitGuard<'_> {
        let mut st = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        self.shm.lock();
        st.head = self.shm.sq_head.load(std::sync::atomic::Ordering::Relaxed);
        st.cq.tail = self.shm.cq_tail.load(std::sync::atomic::Ordering::Relaxed);
        SubmitGuard { st, shm: &self.shm }
    }

    /// An `Arc` of this context (None only while it is being dropped).
    pub fn self_arc(&self) -> Option<std::sync::Arc<Ctx>> {
        self.me.upgrade()
    }

    /// The completion count sequence timeouts are measured against.
    pub fn completion_seq(&self) -> u32 {
        self.cq_posted.load(std::sync::atomic::Ordering::Acquire)
            .wrapping_sub(self.cq_timeouts.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Queues a completion to be posted after the current batch.
    pub fn defer_completion(&self, req: Box<opdef::Req>, res: i32) {
        self.remote_tw.lock().unwrap_or_else(|e| e.into_inner()).push((req, res));
        self.has_remote_tw.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Takes the completions queued by [`Ctx::defer_completion`].
    pub fn take_remote_tw(&self) -> Vec<(Box<opdef::Req>, i32)> {
        if !self.has_remote_tw.load(std::sync::atomic::Ordering::Acquire) {
            return Vec::new();
        }
        self.has_remote_tw.store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut *self.remote_tw.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The eventfd that wakes sigmask waiters, created on first use.
    pub fn sig_eventfd(&self) -> Result<i32, Errno> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        if let Some(fd) = self.sig_evfd.get() {
            return Ok(fd.as_raw_fd());
        }
        // SAFETY: plain syscall; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let _ = self.sig_evfd.set(fd);
        Ok(self.sig_evfd.get().map(|f| f.as_raw_fd()).unwrap_or(raw))
    }

    /// The ring's readiness eventfd (see `ready_evfd`), created on first
    /// use; readable at once if CQEs are waiting.
    pub fn ready_eventfd(&self) -> Result<i32, Errno> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        if let Some(fd) = self.ready_evfd.get() {
            return Ok(fd.as_raw_fd());
        }
        // SAFETY: plain syscall; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: raw is a fresh fd we own.
        let _ = self.ready_evfd.set(unsafe { OwnedFd::from_raw_fd(raw) });
        if self.cq_ready() > 0 || self.has_task_work() {
            self.signal_ready();
        }
        Ok(self.ready_evfd.get().map(|f| f.as_raw_fd()).unwrap_or(raw))
    }

    /// Makes the readiness eventfd readable (after a post).
    #[inline]
    pub fn signal_ready(&self) {
        if let Some(fd) = self.ready_evfd.get() {
            self.ready_signalled.store(true, std::sync::atomic::Ordering::Release);
            let one = 1u64;
            // SAFETY: writing 8 bytes from a u64 to our own eventfd.
            unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), (&one as *const u64).cast(), 8) };
        }
    }

    /// Drains the readiness eventfd when the CQ is empty and no task work
    /// waits, so that a level-triggered watcher stops seeing the ring
    /// readable (called on every enter: the program's CQ head moves without
    /// telling us).
    #[inline]
    pub fn settle_ready(&self) {
        if self.ready_signalled.load(std::sync::atomic::Ordering::Acquire) && self.cq_ready() == 0 && !self.has_task_work() {
            if let Some(fd) = self.ready_evfd.get() {
                self.ready_signalled.store(false, std::sync::atomic::Ordering::Release);
                let mut v = 0u64;
                // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
                unsafe { libc::read(std::os::fd::AsRawFd::as_raw_fd(fd), (&mut v as *mut u64).cast(), 8) };
                // A post that raced with the drain signals again.
                if self.cq_ready() > 0 {
                    self.signal_ready();
                }
            }
        }
    }

    /// Marks the ring closed and lets go of its SQPOLL thread.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        if let Some(sqd) = self.sqd.get() {
            sqpoll::leave(sqd, self);
        }
        if self.serving.load(std::sync::atomic::Ordering::Acquire) {
            self.shm.leave(shared::pid());
            remote::kick(self);
        }
    }

    /// The calling thread's id, cached per thread (a fork child's thread
    /// forgets it in `global::fork_child`).
    pub fn tid() -> i32 {
        TID.with(|t| {
            let mut id = t.get();
            if id == 0 {
                // SAFETY: gettid has no preconditions.
                id = unsafe { libc::gettid() };
                t.set(id);
            }
            id
        })
    }

    /// SINGLE_ISSUER: EEXIST unless the caller is the ring's submitter.
    pub fn check_issuer(&self) -> Result<(), Errno> {
        let s = self.shm.submitter.load(std::sync::atomic::Ordering::Acquire);
        if s != 0 && s != Ctx::tid() {
            return Err(Errno(libc::EEXIST));
        }
        Ok(())
    }

    /// True when this ring has restrictions in force.
    pub fn restricted(&self) -> Option<&register::Restrictions> {
        if self.enabled.load(std::sync::atomic::Ordering::Acquire) {
            self.restrictions.get()
        } else {
            None
        }
    }

    /// DEFER_TASKRUN, in the submitter's enter: runs its task work, the
    /// polls the reactor left to it (see `RingPoller::run_pending`), then
    /// posts the completions held for it.
    pub fn run_deferred(&self) {
        if let Some(p) = self.poller.get().filter(|p| p.pending()) {
            p.run_pending();
        }
        let batch = self.take_deferred();
        if !batch.is_empty() {
            self.post_now(&batch);
        }
    }

    /// True when `flag` (an `IORING_SETUP_*` bit) was given at setup.
    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}
