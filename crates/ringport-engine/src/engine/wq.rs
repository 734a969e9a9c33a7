//! The worker pool (the kernel's io-wq): threads that run requests which
//! would block.
//!
//! One pool per process, shared by every ring, started lazily. Workers are
//! created on demand while work waits and no worker is idle, up to a cap, and
//! exit after a while without work. They block every signal, so that signals
//! meant for the program reach the program's own threads.
//!
//! Cancelling a request that a worker is running (the kernel's io-wq
//! `io_wq_worker_cancel`) marks it cancelled and signals that thread, so a
//! blocking call that sleeps interruptibly (a splice from an empty pipe, say)
//! returns EINTR; the cancel itself answers -EALREADY, as on Linux. The
//! signal is [`intr_signal`], given a do-nothing handler (no SA_RESTART) when
//! the first worker starts, and only if the program has left it at SIG_DFL;
//! workers keep it unblocked (every other signal blocked). A signal can reach the
//! thread just before its call starts sleeping and be missed, so the timer
//! thread sends it again, at growing intervals, while the request runs. A
//! request that was *not* cancelled and still got EINTR (the signal was meant
//! for the worker's previous request) is simply issued again.

use super::ops::cancel::{Ident, Spec};
use super::opdef::Req;
use super::submit::run_in_worker;
use super::Ctx;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The most worker threads the pool runs at once.
const MAX_WORKERS: usize = 256;
/// How long an idle worker waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Workers that have posted their request's last CQE and are on their way
/// back to the queue. A request punted meanwhile wakes nobody: one of them
/// takes it. (Posting wakes the CQ waiter, which often preempts the
/// worker at once and punts the next request before the worker is idle;
/// waking another sleeping worker for it costs more than the request on a
/// virtual machine, and spreads the work round-robin over cold threads.)
static FINISHING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This worker counts in [`FINISHING`].
    static MARKED: Cell<bool> = const { Cell::new(false) };
    /// The write hash this worker holds in `State::busy` (0: none).
    static HASH: Cell<u64> = const { Cell::new(0) };
}

/// Fork child hook: no worker of the parent's exists here.
pub(crate) fn forget_finishing() {
    FINISHING.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// The hashed write this worker ran has finished: other writes to its file
/// may start, before the rest of its chain runs (as io-wq clears the hash
/// before it runs linked work). `chain_goes_on`: this worker runs linked
/// work next, so a write waiting for the file needs another worker woken;
/// otherwise this one looks at the queue next and takes it (waking a
/// second worker for every write of a stream would only have the two
/// contend for the pool's lock).
pub(crate) fn release_hash(chain_goes_on: bool) {
    let hash = HASH.with(|h| h.replace(0));
    if hash != 0 {
        let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
        st.busy.retain(|&h| h != hash);
        if chain_goes_on && st.queue.iter().any(|w| w.hash == hash) {
            wake_idle(&mut st);
        }
    }
}

/// Called by a worker just before it posts the last CQE of its request:
/// it will look at the queue again before sleeping.
pub(crate) fn about_to_finish() {
    if current_is_worker() && !MARKED.with(|m| m.replace(true)) {
        FINISHING.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

struct Work {
    ctx: Arc<Ctx>,
    req: Box<Req>,
    /// Writes to one regular file run one at a time, in order (the
    /// kernel's hashed io-wq work): the file's identity, or 0.
    hash: u64,
}

/// The hash of a write to a regular file (its device and inode), else 0.
/// Concurrent buffered writes to one file only contend for its inode lock,
/// so the kernel's io-wq runs them serially (`hash_reg_file`).
fn write_hash(ctx: &Ctx, req: &Req) -> u64 {
    use crate::abi::op;
    if !matches!(req.opcode, op::WRITE | op::WRITEV | op::WRITE_FIXED) {
        return 0;
    }
    let Some(st) = super::opdef::named_fd(ctx, req).and_then(crate::sys::file_stat) else { return 0 };
    if st.mode & libc::S_IFMT != libc::S_IFREG {
        return 0;
    }
    (st.ino ^ st.dev.rotate_left(32)) | 1
}

/// What a worker is running.
struct Running {
    /// Its ring, by address.
    ctx: usize,
    ident: Ident,
    thread: libc::pthread_t,
    /// A cancel asked for it to be interrupted.
    cancelled: bool,
}

struct State {
    queue: VecDeque<Work>,
    /// Hashes of the writes workers are running.
    busy: Vec<u64>,
    /// Workers asleep on the condition variable.
    idle: usize,
    /// Of those, how many a notification has already claimed (woken for
    /// work queued since; not yet back under the lock). An idle worker is
    /// claimed once: two requests punted before it wakes get two workers,
    /// so that one blocking for long (a splice from an empty pipe) does
    /// not hold the other back.
    woken: usize,
    workers: usize,
    /// What each worker is running, by worker id.
    running: Option<HashMap<u64, Running>>,
    next_worker: u64,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

/// The process's pool (started afresh in a fork child).
pub(crate) static POOL: super::global::Global<Pool> = super::global::Global::new(|| Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        busy: Vec::new(),
        idle: 0,
        woken: 0,
        workers: 0,
        running: None,
        next_worker: 0,
    }),
    cv: Condvar::new(),
});

/// Hands `req` to a worker; its CQE is posted when it finishes.
pub(crate) fn punt(ctx: Arc<Ctx>, mut req: Box<Req>) {
    super::ops::timeout::arm_link_timeout(&ctx, &mut req);
    let hash = write_hash(&ctx, &req);
    crate::chaos::point();
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(Work { ctx, req, hash });
    // The worker writing this file runs it next (it looks at the queue
    // again, under this lock, once done).
    if hash != 0 && st.busy.contains(&hash) {
        return;
    }
    // A finishing worker takes the pool lock (decrementing FINISHING under
    // it) before it looks at the queue: seen here, it will see this work.
    if FINISHING.load(std::sync::atomic::Ordering::Acquire) >= st.queue.len() {
        return;
    }
    if wake_idle(&mut st) {
        return;
    }
    if st.workers < MAX_WORKERS {
        st.workers += 1;
        let spawned = std::thread::Builder::new().name("ringport-wq".into()).spawn(worker);
        if spawned.is_err() {
            st.workers -= 1;
            if st.workers == 0 {
                // No thread could be made: fail it rather than lose it.
                let w = st.queue.pop_back();
                drop(st);
                if let Some(w) = w {
                    super::submit::complete_elsewhere(&w.ctx, w.req, -libc::EAGAIN);
                }
            }
        }
    }
}

thread_local! {
    /// This worker's id in `State::running` (None off the pool).
    static WORKER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// True on a worker thread of the pool.
pub(crate) fn current_is_worker() -> bool {
    WORKER.with(|w| w.get().is_some())
}

/// Records in `st` that worker `id` runs `req` of `ctx` (for cancellation);
/// a record of the same request already there (made when the worker took
/// it off the queue) is kept, with any cancel that marked it since.
fn record_running(st: &mut State, id: u64, ctx: &Ctx, req: &Req) {
    let (ctx, ident) = (ctx as *const Ctx as usize, Ident::of(req));
    let running = st.running.get_or_insert_with(HashMap::new);
    if running.get(&id).is_some_and(|r| r.ctx == ctx && r.ident.same_request(&ident)) {
        return;
    }
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    running.insert(id, Running { ctx, ident, thread, cancelled: false });
}

/// Records that this worker now runs `req` of `ctx` (for cancellation).
pub(crate) fn set_running(ctx: &Ctx, req: &Req) {
    let Some(id) = WORKER.with(|w| w.get()) else { return };
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    record_running(&mut st, id, ctx, req);
}

/// Whether a cancel has marked the request this worker runs.
pub(crate) fn running_cancelled() -> bool {
    let Some(id) = WORKER.with(|w| w.get()) else { return false };
    let st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.running.as_ref().and_then(|r| r.get(&id)).is_some_and(|r| r.cancelled)
}

/// Records that this worker runs nothing; returns whether a cancel had
/// marked its request.
pub(crate) fn clear_running() -> bool {
    let Some(id) = WORKER.with(|w| w.get()) else { return false };
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.running.as_mut().and_then(|r| r.remove(&id)).is_some_and(|r| r.cancelled)
}

/// The signal that interrupts a worker's blocking call.
pub(crate) fn intr_signal() -> i32 {
    libc::SIGRTMAX() - 1
}

/// 0: not tried yet; 1: our handler is installed; 2: the program uses the
/// signal, so workers are never interrupted.
static INTR_STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

extern "C" fn on_intr(_: libc::c_int) {}

/// Installs the do-nothing handler if the signal is free. Called under the
/// pool lock (so once at a time): when the first worker starts.
fn intr_handler() -> bool {
    use std::sync::atomic::Ordering;
    match INTR_STATE.load(Ordering::Acquire) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    // SAFETY: sigaction with valid pointers; the handler is async-signal-safe
    // (it does nothing).
    let ok = unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        libc::sigaction(intr_signal(), core::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_DFL && {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_intr as extern "C" fn(libc::c_int) as usize;
            libc::sigfillset(&mut sa.sa_mask);
            libc::sigaction(intr_signal(), &sa, core::ptr::null_mut()) == 0
        }
    };
    INTR_STATE.store(if ok { 1 } else { 2 }, Ordering::Release);
    ok
}

fn intr_mask(how: libc::c_int) {
    // SAFETY: a local sigset holding one signal; this thread's mask only.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), intr_signal());
        libc::pthread_sigmask(how, set.as_ptr(), core::ptr::null_mut());
    }
}

/// How many requests of `ctx` workers are running or have queued.
pub(crate) fn busy_with(ctx: &Ctx) -> usize {
    let me = ctx as *const Ctx as usize;
    let Some(pool) = POOL.peek() else { return 0 };
    let st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    let queued = st.queue.iter().filter(|w| Arc::as_ptr(&w.ctx) as usize == me).count();
    queued + st.running.as_ref().map_or(0, |r| r.values().filter(|r| r.ctx == me).count())
}

/// Interrupts requests of `ctx` that `spec` matches and that workers are
/// running: the first one, or all. Returns how many were found.
pub(crate) fn interrupt_running(ctx: &Ctx, spec: &Spec, all: bool) -> usize {
    let me = ctx as *const Ctx as usize;
    let mut n = 0;
    let mut signalled = false;
    {
        let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(running) = st.running.as_mut() else { return 0 };
        let mut handler = None;
        // A cancel a worker runs never matches itself.
        // SAFETY: pthread_self has no preconditions.
        let this = unsafe { libc::pthread_self() };
        for r in running.values_mut().filter(|r| r.ctx == me && r.thread != this && spec.matches(&r.ident)) {
            n += 1;
            if !r.cancelled {
                r.cancelled = true;
                if *handler.get_or_insert_with(intr_handler) {
                    // SAFETY: the thread is alive: it removes its entry under
                    // this lock before it can exit.
                    unsafe { libc::pthread_kill(r.thread, intr_signal()) };
                    signalled = true;
                }
            }
            if !all {
                break;
            }
        }
    }
    if signalled {
        if let Some(me) = ctx.self_arc() {
            arm_resignal(&me, RESIGNAL_FIRST_NS);
        }
    }
    n
}

/// Arms the next re-send. The map's lock is held across arming, so the
/// timer's callback (which takes it) cannot look before the entry is in.
fn arm_resignal(ctx: &Arc<Ctx>, interval: u64) {
    let mut m = RESIGNAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = super::timer::arm(ctx, super::timer::mono_ns() + interval, resignal);
    m.get_or_insert_with(HashMap::new).insert(id, interval);
}

/// First re-send of the interrupt after a cancel, then doubling, up to the
/// cap.
const RESIGNAL_FIRST_NS: u64 = 1_000_000;
const RESIGNAL_MAX_NS: u64 = 100_000_000;
/// Pending re-sends: timer id -> its interval.
static RESIGNAL: Mutex<Option<HashMap<u64, u64>>> = Mutex::new(None);

/// Timer: signals again the cancelled requests of `ctx` still running.
fn resignal(ctx: &Arc<Ctx>, id: u64) {
    let Some(interval) = RESIGNAL.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).remove(&id)
    else {
        return;
    };
    let me = Arc::as_ptr(ctx) as usize;
    let any = {
        let st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for r in st.running.iter().flat_map(|m| m.values()).filter(|r| r.ctx == me && r.cancelled) {
            // SAFETY: as in interrupt_running.
            unsafe { libc::pthread_kill(r.thread, intr_signal()) };
            any = true;
        }
        any
    };
    if any {
        arm_resignal(ctx, (interval * 2).min(RESIGNAL_MAX_NS));
    }
}

/// Removes queued (not yet started) requests of `ctx` that `spec` matches:
/// the first one, or all of them.
#[allow(clippy::vec_box)] // the boxes move on to the completion path unchanged
pub(crate) fn cancel_queued(ctx: &Ctx, spec: &Spec, all: bool) -> Vec<Box<Req>> {
    let me = ctx as *const Ctx;
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let mut i = 0;
    while i < st.queue.len() {
        let w = &st.queue[i];
        if std::ptr::eq(Arc::as_ptr(&w.ctx), me) && spec.matches(&Ident::of(&w.req)) {
            if let Some(w) = st.queue.remove(i) {
                out.push(w.req);
            }
            if !all {
                break;
            }
        } else {
            i += 1;
        }
    }
    out
}

pub(crate) fn block_signals() {
    // SAFETY: sigfillset/pthread_sigmask on a local, valid sigset.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
}

fn worker() {
    block_signals();
    // The interrupt's handler is in place before a worker can run a request
    // (a cancel can only reach requests that ran with the signal unblocked).
    if INTR_STATE.load(std::sync::atomic::Ordering::Acquire) == 0 {
        let _g = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
        intr_handler();
    }
    // Unblocked for the worker's whole life (not per request: that would be
    // two system calls on every punted request). Only our cancels send it;
    // one that lands on a later request's call makes it EINTR, which
    // run_in_worker re-issues.
    if INTR_STATE.load(std::sync::atomic::Ordering::Acquire) == 1 {
        intr_mask(libc::SIG_UNBLOCK);
    }
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.next_worker += 1;
    let id = st.next_worker;
    WORKER.with(|w| w.set(Some(id)));
    loop {
        if let Some(w) = take_runnable(&mut st) {
            // Running from the moment it leaves the queue, under the same
            // lock: a cancel in between would find it in neither place.
            record_running(&mut st, id, &w.ctx, &w.req);
            drop(st);
            crate::chaos::point();
            HASH.with(|h| h.set(w.hash));
            run(w);
            release_hash(false);
            st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
            if MARKED.with(|m| m.replace(false)) {
                FINISHING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
            continue;
        }
        st.idle += 1;
        let (g, timeout) = POOL.get().cv.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        // Woken, timed out or spurious: either way this worker looks at the
        // queue now, which is what a claim asked of it.
        st.woken = st.woken.saturating_sub(1);
        if timeout.timed_out() && st.queue.is_empty() {
            st.workers -= 1;
            return;
        }
    }
}

/// Wakes an idle worker no earlier notification has claimed yet. False
/// when there is none.
fn wake_idle(st: &mut State) -> bool {
    if st.idle <= st.woken {
        return false;
    }
    st.woken += 1;
    POOL.get().cv.notify_one();
    true
}

/// The first queued work that may run now (not a write to a file another
/// worker is writing), marked busy.
fn take_runnable(st: &mut State) -> Option<Work> {
    let i = st.queue.iter().position(|w| w.hash == 0 || !st.busy.contains(&w.hash))?;
    let w = st.queue.remove(i)?;
    if w.hash != 0 {
        st.busy.push(w.hash);
    }
    Some(w)
}

fn run(w: Work) {
    run_in_worker(&w.ctx, w.req);
}
