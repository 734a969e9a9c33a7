//! The worker pool (the kernel's io-wq): threads that run requests which
//! would block.
//!
//! One pool per process, shared by every ring, started lazily. Workers are
//! created on demand while work waits and no worker is idle, up to a cap, and
//! exit after a while without work. They block every signal, so that signals
//! meant for the program reach the program's own threads.

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

struct Work {
    ctx: Arc<Ctx>,
    req: Box<Req>,
}

struct State {
    queue: VecDeque<Work>,
    idle: usize,
    workers: usize,
    /// What each worker is running: its ring (by address) and the request.
    running: Option<HashMap<u64, (usize, Ident)>>,
    next_worker: u64,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

/// The process's pool (started afresh in a fork child).
pub(crate) static POOL: super::global::Global<Pool> = super::global::Global::new(|| Pool {
    state: Mutex::new(State { queue: VecDeque::new(), idle: 0, workers: 0, running: None, next_worker: 0 }),
    cv: Condvar::new(),
});

/// Hands `req` to a worker; its CQE is posted when it finishes.
pub(crate) fn punt(ctx: Arc<Ctx>, mut req: Box<Req>) {
    super::ops::timeout::arm_link_timeout(&ctx, &mut req);
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(Work { ctx, req });
    if st.idle > 0 {
        POOL.get().cv.notify_one();
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

/// Records that this worker now runs `req` of `ctx` (for cancellation).
pub(crate) fn set_running(ctx: &Ctx, req: &Req) {
    let Some(id) = WORKER.with(|w| w.get()) else { return };
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.running.get_or_insert_with(HashMap::new).insert(id, (ctx as *const Ctx as usize, Ident::of(req)));
}

/// Records that this worker runs nothing.
pub(crate) fn clear_running() {
    let Some(id) = WORKER.with(|w| w.get()) else { return };
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = st.running.as_mut() {
        r.remove(&id);
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

/// How many requests of `ctx` that `spec` matches are running in workers.
pub(crate) fn count_running(ctx: &Ctx, spec: &Spec) -> usize {
    let me = ctx as *const Ctx as usize;
    let st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.running.as_ref().map_or(0, |r| r.values().filter(|(c, id)| *c == me && spec.matches(id)).count())
}

fn block_signals() {
    // SAFETY: sigfillset/pthread_sigmask on a local, valid sigset.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
}

fn worker() {
    block_signals();
    let mut st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
    st.next_worker += 1;
    let id = st.next_worker;
    WORKER.with(|w| w.set(Some(id)));
    loop {
        if let Some(w) = st.queue.pop_front() {
            drop(st);
            run(w);
            st = POOL.get().state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (g, timeout) = POOL.get().cv.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            st.workers -= 1;
            return;
        }
    }
}

fn run(w: Work) {
    run_in_worker(&w.ctx, w.req);
}
