//! The readiness reactor: one epoll thread for the whole process, serving
//! every ring's armed polls.
//!
//! An armed poll registers a private duplicate of the program's fd (epoll
//! keys a registration on the fd *and* the open file, so one fd can be
//! polled by many requests this way, and the poll keeps the file alive as
//! the kernel's poll does). Registrations are removed with EPOLL_CTL_DEL
//! before the duplicate is closed: closing alone would leave it armed while
//! the program's own fd keeps the file open.
//!
//! Each ring keeps its registrations in an epoll instance of its own (its
//! [`RingPoller`]), nested, edge-triggered, in the reactor thread's epoll.
//! A thread waiting in the ring's `enter(GETEVENTS)` while polls are armed
//! sleeps on the ring's epoll itself and completes what becomes ready in its
//! own context ("harvesting", see `wait.rs`): one wake-up per readiness, as
//! the kernel's task work gives, instead of the reactor thread's and then the
//! waiter's. While a ring has harvesters its registration in the reactor's
//! epoll is disabled (events 0: the nested wake-up then does nothing), so the
//! reactor thread is not woken at all; the last harvester to leave enables
//! it again, and EPOLL_CTL_MOD queues it at once if events are pending, so
//! nothing a harvester left behind waits.
//!
//! A DEFER_TASKRUN ring's polls run only in its submitter's enter, where the
//! kernel runs their task work: the reactor thread only marks them pending
//! and wakes the submitter ([`RingPoller::leave_for_submitter`]).

use super::{Ctx, Errno};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// What a ready registration calls: the ring, the key, and the events.
pub(crate) type Ready = fn(&Arc<Ctx>, u64, u32);

/// Who a registration belongs to.
#[derive(Clone)]
enum Owner {
    /// A ring's armed request.
    Ring(Weak<Ctx>, Ready),
    /// A process-wide service (the AIO eventfd): key and events.
    Global(fn(u64, u32)),
    /// A ring's own epoll instance, nested in the reactor's.
    Poller(Weak<RingPoller>),
}

/// The reactor: an epoll instance and the owners of its registrations.
pub(crate) struct Reactor {
    epfd: i32,
    owners: Mutex<HashMap<u64, Owner>>,
    started: AtomicBool,
}

/// At most this many one-shot registrations are watched directly by a
/// harvester (see [`RingPoller::sleep`]).
pub(crate) const MAX_DIRECT: usize = 7;

/// A one-shot registration a harvester may watch with `ppoll` itself: the
/// private duplicate's fd, its key, and the poll bits.
#[derive(Clone, Copy, Default)]
pub(crate) struct Direct {
    pub fd: i32,
    pub key: u64,
    pub events: u32,
}

/// Events taken per `epoll_wait` when harvesting.
const HARVEST_BATCH: usize = 16;

/// Room for one harvest's events.
pub(crate) struct Events([libc::epoll_event; HARVEST_BATCH]);

impl Default for Events {
    fn default() -> Self {
        Events([libc::epoll_event { events: 0, u64: 0 }; HARVEST_BATCH])
    }
}

/// A ring's epoll instance: where its armed polls are registered, and where
/// its waiters sleep while polls are armed.
pub(crate) struct RingPoller {
    epfd: OwnedFd,
    /// Its registration key in the reactor's epoll.
    key: u64,
    /// Registrations currently in `epfd`.
    armed: AtomicU32,
    /// Who watches `epfd`, changed under this lock.
    watch: Mutex<Watch>,
    /// A DEFER_TASKRUN ring's own context: its polls run only in its
    /// submitter's enter (the kernel queues their task work on the ring and
    /// runs it there), so the reactor thread only tells it (see
    /// [`RingPoller::leave_for_submitter`]). None for other rings.
    defer: Option<Weak<Ctx>>,
    /// DEFER_TASKRUN: the reactor saw readiness it left to the submitter.
    pending: AtomicBool,
    /// The reactor thread is running this ring's ready polls (see
    /// [`RingPoller::settle`]).
    running: AtomicU32,
}

/// Who watches a ring's poller.
#[derive(Default)]
struct Watch {
    /// Threads harvesting (waiting on the poller in enter).
    harvesters: u32,
    /// The poller's registration in the reactor's epoll is enabled.
    reactor: bool,
}

/// How a ring's poller is registered in the reactor's epoll when enabled.
const POLLER_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

impl RingPoller {
    /// The epoll fd a harvester sleeps on, if polls are armed (otherwise a
    /// plain futex wait is cheaper).
    pub fn armed_fd(&self) -> Option<i32> {
        (self.armed.load(Ordering::Acquire) > 0).then(|| self.epfd.as_raw_fd())
    }

    /// A thread starts harvesting this ring's events: the reactor thread's
    /// watch goes off.
    pub fn join(&self) {
        let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        w.harvesters += 1;
        if w.reactor {
            self.set_reactor_watch(0);
            w.reactor = false;
        }
    }

    /// A harvester stops: the last one puts the polls harvesters watched
    /// directly back into the epoll instance and switches the reactor
    /// thread's watch back on if polls are armed (EPOLL_CTL_ADD and _MOD
    /// queue what is already ready, so nothing left behind waits); if none
    /// is, the next [`add`] does.
    pub fn leave(&self, ctx: &Ctx) {
        let last = {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            w.harvesters -= 1;
            w.harvesters == 0
        };
        crate::chaos::point();
        if last {
            // Not under the watch lock (arming takes the poll table's lock,
            // then the watch's). A harvester that joins meanwhile may take
            // polls out again: it watches them, and puts them back itself.
            super::ops::poll::reregister_all(ctx);
        }
        self.rewatch(&mut self.watch.lock().unwrap_or_else(|e| e.into_inner()));
    }



    /// With no harvester and polls armed, makes sure the reactor watches.
    fn rewatch(&self, w: &mut Watch) {
        if w.harvesters == 0 && !w.reactor && self.armed.load(Ordering::Acquire) > 0 {
            self.set_reactor_watch(POLLER_EVENTS);
            w.reactor = true;
        }
    }

    fn set_reactor_watch(&self, events: u32) {
        let r = REACTOR.get();
        let mut ev = libc::epoll_event { events, u64: self.key };
        // SAFETY: ev is a valid epoll_event; both fds are open (the reactor's
        // for the process's life, ours while self lives).
        unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_MOD, self.epfd.as_raw_fd(), &mut ev) };
    }

    /// DEFER_TASKRUN: the reactor thread saw some of the ring's polls
    /// become ready. It does not run them: it turns its watch off (until
    /// the submitter has run them, [`RingPoller::run_pending`]), marks them
    /// pending and wakes the submitter, as the kernel's
    /// `io_req_local_work_add` does (IORING_SQ_TASKRUN, its waiters, the
    /// registered eventfd, the ring fd's readiness).
    fn leave_for_submitter(&self, ctx: &Weak<Ctx>) {
        {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            if w.reactor {
                self.set_reactor_watch(0);
                w.reactor = false;
            }
        }
        crate::chaos::point();
        self.pending.store(true, Ordering::Release);
        if let Some(ctx) = ctx.upgrade() {
            ctx.wake_submitter();
        }
    }

    /// DEFER_TASKRUN: true while readiness the reactor saw waits for the
    /// submitter's enter.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// DEFER_TASKRUN, in the submitter's enter: runs every ready poll and,
    /// if the reactor left some pending, turns its watch back on
    /// (EPOLL_CTL_MOD queues what became ready meanwhile at once).
    pub fn run_pending(&self) {
        let pending = self.pending.swap(false, Ordering::AcqRel);
        while self.harvest() == HARVEST_BATCH {}
        if pending {
            self.rewatch(&mut self.watch.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Waits (yielding, at most 2 ms) while the reactor thread is running
    /// this ring's ready polls, so that a CQ waiter it woke returns with
    /// everything that run posts: the kernel runs a ring's task work before
    /// the woken thread is back in user space, so a multishot request's
    /// CQEs from one readiness are seen together.
    pub fn settle(&self) {
        if self.running.load(Ordering::Acquire) == 0 {
            return;
        }
        let t = std::time::Instant::now();
        while self.running.load(Ordering::Acquire) != 0 && t.elapsed() < std::time::Duration::from_millis(2) {
            std::thread::yield_now();
        }
    }

    /// Takes the ready events without sleeping and runs their owners.
    /// Returns how many there were.
    pub fn harvest(&self) -> usize {
        let mut events = Events::default();
        let n = self.take(&mut events);
        self.run(&events, n);
        n
    }

    /// A harvester's sleep: waits up to `timeout` (relative; None = no
    /// limit) with `sigmask` swapped in atomically, for the ring's armed
    /// polls or its wait eventfd `wake_fd` (which it drains). Returns how many
    /// events it put in `events` (for [`RingPoller::run`]), or `EINTR` once
    /// a signal handler ran.
    ///
    /// It sleeps in `ppoll` and then takes the events, one syscall more than
    /// `epoll_pwait2`, because `epoll_pwait2` also fails with EINTR when only
    /// task work (a kernel io_uring's, for one) woke the thread, where
    /// `ppoll` restarts by itself. The eventfd is polled directly, not
    /// through the epoll instance: whoever else harvests the instance (the
    /// reactor thread, still finishing a batch) could take its edge.
    pub fn sleep(
        &self,
        wake_fd: i32,
        direct: &[Direct],
        timeout: Option<&libc::timespec>,
        sigmask: Option<&libc::sigset_t>,
        events: &mut Events,
    ) -> Result<usize, Errno> {
        let epfd = self.epfd.as_raw_fd();
        let tp = timeout.map_or(core::ptr::null(), |t| t as *const libc::timespec);
        let mp = sigmask.map_or(core::ptr::null(), |m| m as *const libc::sigset_t);
        let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 1 + MAX_DIRECT];
        pfds[0] = libc::pollfd { fd: wake_fd, events: libc::POLLIN, revents: 0 };
        // A few one-shot registrations are watched directly (their events
        // then need no epoll_wait); otherwise the epoll instance is.
        let n = if direct.is_empty() {
            pfds[1] = libc::pollfd { fd: epfd, events: libc::POLLIN, revents: 0 };
            2
        } else {
            for (p, d) in pfds[1..].iter_mut().zip(direct) {
                *p = libc::pollfd { fd: d.fd, events: d.events as i16, revents: 0 };
            }
            1 + direct.len().min(MAX_DIRECT)
        };
        // SAFETY: n valid pollfds; tp and mp are null or valid.
        let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), n as libc::nfds_t, tp, mp) };
        if r < 0 {
            return Err(Errno::last());
        }
        if pfds[0].revents != 0 {
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into a u64 from the ring's non-blocking
            // eventfd.
            unsafe { libc::read(wake_fd, (&mut v as *mut u64).cast(), 8) };
        }
        if !direct.is_empty() {
            // Poll and epoll bits have the same values.
            let mut got = 0;
            for (p, d) in pfds[1..n].iter().zip(direct) {
                if p.revents != 0 && got < HARVEST_BATCH {
                    events.0[got] = libc::epoll_event { events: p.revents as u16 as u32, u64: d.key };
                    got += 1;
                }
            }
            return Ok(got);
        }
        if pfds[1].revents == 0 {
            return Ok(0);
        }
        // SAFETY: events has room for HARVEST_BATCH entries; timeout 0.
        let n = unsafe { libc::epoll_wait(epfd, events.0.as_mut_ptr(), HARVEST_BATCH as i32, 0) };
        Ok(n.max(0) as usize)
    }

    /// Takes what is ready without sleeping into `events`.
    fn take(&self, events: &mut Events) -> usize {
        // SAFETY: events has room for HARVEST_BATCH entries; timeout 0.
        let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.0.as_mut_ptr(), HARVEST_BATCH as i32, 0) };
        n.max(0) as usize
    }

    /// Runs the owners of the first `n` events [`RingPoller::sleep`] gave.
    pub fn run(&self, events: &Events, n: usize) {
        let r = REACTOR.get();
        for ev in &events.0[..n.min(HARVEST_BATCH)] {
            dispatch(r, ev.u64, ev.events);
        }
    }
}

impl Drop for RingPoller {
    fn drop(&mut self) {
        // Closing the instance's only fd (OwnedFd, next) also takes it out of
        // the reactor's epoll.
        if let Some(r) = REACTOR.peek() {
            r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
        }
    }
}

/// The process's reactor (started afresh in a fork child).
pub(crate) static REACTOR: super::global::Global<Reactor> = super::global::Global::new(|| Reactor {
    // SAFETY: plain syscall; a failure leaves epfd < 0, checked on use.
    epfd: unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
    owners: Mutex::new(HashMap::new()),
    started: AtomicBool::new(false),
});
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn reactor() -> Option<&'static Reactor> {
    let r = REACTOR.get();
    if r.epfd < 0 {
        return None;
    }
    if !r.started.swap(true, Ordering::AcqRel) {
        let spawned = std::thread::Builder::new().name("ringport-poll".into()).spawn(move || run(r));
        if spawned.is_err() {
            r.started.store(false, Ordering::Release);
            return None;
        }
    }
    Some(r)
}

/// In a fork child: closes the epoll fd inherited from the parent (the
/// instance is shared with the parent; the child gets its own).
pub(crate) fn close_inherited() {
    if let Some(r) = REACTOR.peek() {
        if r.epfd >= 0 {
            // SAFETY: closing the child's copy of the inherited fd.
            unsafe { libc::close(r.epfd) };
        }
    }
}

/// A fresh registration key.
pub(crate) fn new_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// The ring's poller, created (and nested in the reactor's epoll) on first
/// use.
fn poller(r: &Reactor, ctx: &Ctx) -> Result<Arc<RingPoller>, Errno> {
    if let Some(p) = ctx.poller.get() {
        return Ok(p.clone());
    }
    let _guard = ctx.poller_init.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = ctx.poller.get() {
        return Ok(p.clone());
    }
    // SAFETY: plain syscall; the result is checked.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: raw is a fresh fd we own.
    let epfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let p = Arc::new(RingPoller {
        epfd,
        key: new_key(),
        armed: AtomicU32::new(0),
        watch: Mutex::new(Watch { harvesters: 0, reactor: true }),
        defer: ctx.has(crate::abi::IORING_SETUP_DEFER_TASKRUN).then(|| ctx.me.clone()),
        pending: AtomicBool::new(false),
        running: AtomicU32::new(0),
    });
    add_owner(r, p.key, raw, POLLER_EVENTS, Owner::Poller(Arc::downgrade(&p)))?;
    let _ = ctx.poller.set(p.clone());
    Ok(p)
}

/// Registers `fd` (a private duplicate the caller owns) for `events`
/// (EPOLL* bits, including EPOLLONESHOT/EPOLLET as wanted) under `key`, in
/// the ring's own epoll instance.
pub(crate) fn add(ctx: &Arc<Ctx>, key: u64, fd: i32, events: u32, ready: Ready) -> Result<(), Errno> {
    let r = reactor().ok_or(Errno(libc::ENOMEM))?;
    let p = poller(r, ctx)?;
    r.owners.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Owner::Ring(Arc::downgrade(ctx), ready));
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: ev is a valid epoll_event; fd and the poller's epfd are open.
    if unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        let e = Errno::last();
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        return Err(e);
    }
    crate::chaos::point();
    p.armed.fetch_add(1, Ordering::AcqRel);
    ctx.flag_taskrun_ahead();
    let mut w = p.watch.lock().unwrap_or_else(|e| e.into_inner());
    p.rewatch(&mut w);
    if w.harvesters > 0 {
        // A harvester may be watching a list of fds that lacks this one:
        // wake it so that it looks again.
        drop(w);
        if let Some(fd) = ctx.sig_evfd.get() {
            let one = 1u64;
            // SAFETY: writing 8 bytes from a u64 to the ring's eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
    Ok(())
}

/// Registers `fd` for a process-wide service: `ready(key, events)` runs on
/// readiness.
pub(crate) fn add_global(key: u64, fd: i32, events: u32, ready: fn(u64, u32)) -> Result<(), Errno> {
    let r = reactor().ok_or(Errno(libc::ENOMEM))?;
    add_owner(r, key, fd, events, Owner::Global(ready))
}

/// Removes a process-wide registration.
pub(crate) fn remove_global(key: u64, fd: i32) {
    if let Some(r) = reactor() {
        // SAFETY: EPOLL_CTL_DEL ignores the event argument.
        unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_DEL, fd, core::ptr::null_mut()) };
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

fn add_owner(r: &Reactor, key: u64, fd: i32, events: u32, owner: Owner) -> Result<(), Errno> {
    r.owners.lock().unwrap_or_else(|e| e.into_inner()).insert(key, owner);
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: ev is a valid epoll_event; fd and epfd are open.
    if unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        let e = Errno::last();
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        return Err(e);
    }
    Ok(())
}

/// Changes the events of a ring's registration (re-enables a fired
/// EPOLLONESHOT).
pub(crate) fn modify(ctx: &Ctx, key: u64, fd: i32, events: u32) -> Result<(), Errno> {
    let p = ctx.poller.get().ok_or(Errno(libc::ENOENT))?;
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: as in add.
    if unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Removes a ring's armed poll (`registered`: its fd is in the ring's epoll
/// instance, see [`unregister`]). The caller closes `fd` afterwards.
pub(crate) fn remove(ctx: &Ctx, key: u64, fd: i32, registered: bool) {
    if let Some(p) = ctx.poller.get() {
        if registered {
            // SAFETY: EPOLL_CTL_DEL ignores the event argument.
            unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, core::ptr::null_mut()) };
        }
        p.armed.fetch_sub(1, Ordering::AcqRel);
    }
    if let Some(r) = REACTOR.peek() {
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

/// Takes an armed one-shot poll's fd out of the ring's epoll instance while
/// a harvester watches it directly (so that completing it costs no
/// EPOLL_CTL_DEL after the wake-up). True when done.
pub(crate) fn unregister(ctx: &Ctx, fd: i32) -> bool {
    let Some(p) = ctx.poller.get() else { return false };
    // SAFETY: EPOLL_CTL_DEL ignores the event argument.
    unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, core::ptr::null_mut()) == 0 }
}

/// Puts an armed poll [`unregister`] took out back into the ring's epoll
/// instance (EPOLL_CTL_ADD queues it at once if it is ready).
pub(crate) fn reregister(ctx: &Ctx, key: u64, fd: i32, events: u32) -> Result<(), Errno> {
    let p = ctx.poller.get().ok_or(Errno(libc::ENOENT))?;
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: ev is a valid epoll_event; fd and the poller's epfd are open.
    if unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn run(r: &'static Reactor) {
    // SAFETY: blocking every signal on this thread only.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: events has room for 64 entries.
        let n = unsafe { libc::epoll_wait(r.epfd, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue;
        }
        for ev in &events[..n as usize] {
            dispatch(r, ev.u64, ev.events);
        }
    }
}

/// Runs the owner of a ready registration (on the reactor thread, or on a
/// harvesting waiter's).
fn dispatch(r: &Reactor, key: u64, revents: u32) {
    let owner = r.owners.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    crate::chaos::point();
    match owner {
        Some(Owner::Ring(ctx, ready)) => {
            if let Some(ctx) = ctx.upgrade() {
                ready(&ctx, key, revents);
            }
        }
        Some(Owner::Global(ready)) => ready(key, revents),
        Some(Owner::Poller(p)) => {
            // Edge-triggered: take everything, or no new edge comes (a
            // DEFER_TASKRUN ring's submitter takes it).
            if let Some(p) = p.upgrade() {
                match &p.defer {
                    Some(ctx) => p.leave_for_submitter(ctx),
                    None => {
                        p.running.fetch_add(1, Ordering::AcqRel);
                        while p.harvest() == HARVEST_BATCH {}
                        p.running.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
        }
        None => {}
    }
}

