//! The timer service: one thread for the whole process, one min-heap of
//! deadlines, no thread per timer.
//!
//! Deadlines are CLOCK_MONOTONIC nanoseconds. Cancelling is lazy: an entry
//! carries a generation id, and the owner (a ring's timeout table) ignores a
//! firing whose id it no longer holds. So that disarmed timers (every
//! LINK_TIMEOUT whose request finished in time) do not pile up until their
//! deadlines, the heap is compacted once stale entries outnumber live ones. The thread sleeps on a futex with an
//! absolute deadline and a 1 ns timer slack, so timers fire promptly.

use super::wait::futex_wait_until;
use super::Ctx;
use std::collections::BinaryHeap;
use std::cmp::Reverse;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};

/// What a firing timer calls: the ring and the generation id it was armed with.
pub(crate) type Fire = fn(&std::sync::Arc<Ctx>, u64);

struct Entry {
    ctx: Weak<Ctx>,
    fire: Fire,
}

struct State {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    entries: std::collections::HashMap<u64, Entry>,
    started: bool,
}

/// The timer service: its heap, and the futex word it sleeps on.
pub(crate) struct Timers {
    state: Mutex<Option<State>>,
    /// Futex word: bumped when an earlier deadline is armed.
    wake: AtomicU32,
}

/// The process's timer service (started afresh in a fork child).
pub(crate) static TIMERS: super::global::Global<Timers> =
    super::global::Global::new(|| Timers { state: Mutex::new(None), wake: AtomicU32::new(0) });
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// CLOCK_MONOTONIC now, in nanoseconds.
pub(crate) fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `clock` now, in nanoseconds (0 for a clock that cannot be read).
pub(crate) fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Arms a timer that calls `fire(ctx, id)` at `deadline` (monotonic ns).
/// Returns the generation id.
pub(crate) fn arm(ctx: &std::sync::Arc<Ctx>, deadline: u64, fire: Fire) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let t = TIMERS.get();
    let mut g = t.state.lock().unwrap_or_else(|e| e.into_inner());
    let st = g.get_or_insert_with(|| State {
        heap: BinaryHeap::new(),
        entries: Default::default(),
        started: false,
    });
    let earliest = st.heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
    st.heap.push(Reverse((deadline, id)));
    st.entries.insert(id, Entry { ctx: std::sync::Arc::downgrade(ctx), fire });
    if !st.started {
        st.started = std::thread::Builder::new().name("ringport-timer".into()).spawn(move || run(t)).is_ok();
    }
    drop(g);
    if earliest {
        t.wake.fetch_add(1, Ordering::Release);
        super::wait::futex_wake_all(&t.wake);
    }
    id
}

/// Forgets timer `id` (it will not fire). Harmless if it already fired.
pub(crate) fn disarm(id: u64) {
    let mut g = TIMERS.get().state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(st) = g.as_mut() {
        st.entries.remove(&id);
        if st.heap.len() > 2 * st.entries.len() + 64 {
            let live = &st.entries;
            st.heap.retain(|Reverse((_, id))| live.contains_key(id));
        }
    }
}

fn run(t: &'static Timers) {
    // SAFETY: prctl/pthread_sigmask on the current thread with valid arguments.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
    loop {
        let seen = t.wake.load(Ordering::Acquire);
        let mut due = Vec::new();
        let next = {
            let mut g = t.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(st) = g.as_mut() else { return };
            let now = mono_ns();
            while let Some(&Reverse((d, id))) = st.heap.peek() {
                if d > now {
                    break;
                }
                st.heap.pop();
                if let Some(e) = st.entries.remove(&id) {
                    due.push((e, id));
                }
            }
            st.heap.peek().map(|Reverse((d, _))| *d)
        };
        for (e, id) in due {
            crate::chaos::point();
            if let Some(ctx) = e.ctx.upgrade() {
                (e.fire)(&ctx, id);
            }
        }
        let deadline = next.unwrap_or_else(|| mono_ns() + 3_600_000_000_000);
        let ts = libc::timespec {
            tv_sec: (deadline / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
        };
        let _ = futex_wait_until(&t.wake, seen, &ts);
    }
}
