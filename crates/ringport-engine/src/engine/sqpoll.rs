//! SQPOLL: a thread that takes SQEs without `io_uring_enter` (the kernel's
//! io_uring/sqpoll.c).
//!
//! One poller thread serves a group of rings (IORING_SETUP_ATTACH_WQ joins an
//! existing ring's group). It submits whatever the rings' SQs hold; after
//! `sq_thread_idle` ms without work it sets `IORING_SQ_NEED_WAKEUP` on every
//! ring and sleeps on a futex until an enter with `IORING_ENTER_SQ_WAKEUP`.
//!
//! No wakeup can be lost. The program stores its SQ tail, issues a full
//! barrier, then reads the flags (liburing's `io_uring_flush_sq` +
//! `sq_ring_needs_enter`). The poller sets NEED_WAKEUP, issues a full barrier,
//! then reads every SQ tail once more before it sleeps. Of two threads that
//! each store then load with a full barrier between, at least one sees the
//! other's store: either the poller sees the new tail and keeps running, or
//! the program sees NEED_WAKEUP and wakes it. The futex word is bumped before
//! each wake, so a wake that lands before the poller sleeps is not missed.

use super::{submit, Ctx, Errno};
use crate::abi;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A poller thread and the rings it serves.
pub(crate) struct SqData {
    rings: Mutex<Vec<Weak<Ctx>>>,
    /// Futex word the poller sleeps on.
    wake: AtomicU32,
    /// How long the poller spins without work before it sleeps.
    idle: Duration,
    /// Set when the last ring left: the thread exits.
    stop: AtomicBool,
}

impl SqData {
    /// Wakes the poller (IORING_ENTER_SQ_WAKEUP, a new ring, a closed one).
    pub fn wake(&self) {
        self.wake.fetch_add(1, Ordering::Release);
        super::wait::futex_wake_all(&self.wake);
    }
}

/// Starts a poller for `ctx`, or joins the group of the ring `attach_to`.
pub(crate) fn start(ctx: &Arc<Ctx>, p: &abi::io_uring_params, attach_to: Option<Arc<SqData>>) -> Result<Arc<SqData>, Errno> {
    if let Some(sqd) = attach_to {
        sqd.rings.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(ctx));
        sqd.wake();
        return Ok(sqd);
    }
    let idle_ms = if p.sq_thread_idle == 0 { 1000 } else { p.sq_thread_idle };
    let sqd = Arc::new(SqData {
        rings: Mutex::new(vec![Arc::downgrade(ctx)]),
        wake: AtomicU32::new(0),
        idle: Duration::from_millis(idle_ms as u64),
        stop: AtomicBool::new(false),
    });
    let cpu = (p.flags & abi::IORING_SETUP_SQ_AFF != 0).then_some(p.sq_thread_cpu);
    let run = sqd.clone();
    std::thread::Builder::new()
        .name("ringport-sqpoll".into())
        .spawn(move || poller(run, cpu))
        .map_err(|_| Errno(libc::ENOMEM))?;
    Ok(sqd)
}

/// Leaves the group (the ring is closing); the last ring stops the thread.
pub(crate) fn leave(sqd: &SqData, ctx: &Ctx) {
    let mut rings = sqd.rings.lock().unwrap_or_else(|e| e.into_inner());
    rings.retain(|w| w.upgrade().is_some_and(|c| !std::ptr::eq(Arc::as_ptr(&c), ctx)));
    if rings.is_empty() {
        sqd.stop.store(true, Ordering::Release);
    }
    drop(rings);
    sqd.wake();
}

/// Validates `sq_thread_cpu` for SQ_AFF: an existing, allowed CPU.
pub(crate) fn check_cpu(cpu: u32) -> Result<(), Errno> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n > 0 && (cpu as i64) < n {
        Ok(())
    } else {
        Err(Errno(libc::EINVAL))
    }
}

fn pin(cpu: u32) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays in
    // bounds for cpu < CPU_SETSIZE (checked at setup against the CPU count).
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        if (cpu as usize) < libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu as usize, &mut set);
            libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

fn live_rings(sqd: &SqData) -> Vec<Arc<Ctx>> {
    let rings = sqd.rings.lock().unwrap_or_else(|e| e.into_inner());
    rings
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|c| !c.closed.load(Ordering::Acquire) && c.enabled.load(Ordering::Acquire))
        .collect()
}

fn pending(ctx: &Ctx) -> bool {
    let tail = ctx.rings.sq_tail().load(Ordering::Acquire);
    let head = ctx.shm.sq_head.load(Ordering::Acquire);
    tail != head
}

fn poller(sqd: Arc<SqData>, cpu: Option<u32>) {
    // SAFETY: blocking every signal on this thread only.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
    if let Some(cpu) = cpu {
        pin(cpu);
    }
    let mut last_work = Instant::now();
    while !sqd.stop.load(Ordering::Acquire) {
        let rings = live_rings(&sqd);
        let mut did = false;
        for ctx in &rings {
            if pending(ctx) {
                let _ = submit::submit(ctx, ctx.rings.geo.sq_entries);
                did = true;
            }
        }
        if did {
            last_work = Instant::now();
            continue;
        }
        if last_work.elapsed() < sqd.idle {
            std::hint::spin_loop();
            std::thread::yield_now();
            continue;
        }
        // Idle: announce that we sleep, then look once more (see the module
        // comment for why this cannot lose a wakeup).
        let seen = sqd.wake.load(Ordering::Acquire);
        for ctx in &rings {
            ctx.rings.sq_flags().fetch_or(abi::IORING_SQ_NEED_WAKEUP, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let work = rings.iter().any(|c| pending(c));
        if !work && !sqd.stop.load(Ordering::Acquire) {
            let shared = rings.iter().any(|c| c.shm.is_inherited());
            drop(rings);
            // A ring that another process shares can get SQEs from a
            // process whose wakeups cannot reach this futex: look again
            // every slice (see shared.rs), still asleep as far as the
            // program can tell (NEED_WAKEUP stays set).
            loop {
                let far = if shared {
                    super::wait::ts_add(super::wait::now(), 0, super::shared::SLICE_NS)
                } else {
                    super::wait::ts_add(super::wait::now(), 3600, 0)
                };
                let _ = super::wait::futex_wait_until(&sqd.wake, seen, &far);
                if !shared || sqd.wake.load(Ordering::Acquire) != seen || sqd.stop.load(Ordering::Acquire) {
                    break;
                }
                if live_rings(&sqd).iter().any(|c| pending(c)) {
                    break;
                }
            }
        }
        for ctx in live_rings(&sqd) {
            ctx.rings.sq_flags().fetch_and(!abi::IORING_SQ_NEED_WAKEUP, Ordering::SeqCst);
        }
        last_work = Instant::now();
    }
}
