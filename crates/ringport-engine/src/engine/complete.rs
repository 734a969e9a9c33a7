//! Completion posting: CQ ring writes, the overflow backlog, wakeups.
//!
//! Any engine thread may post. The CQ producer state lives inside the
//! submit state, so the CQ lock *is* the submit lock (`Ctx::submit`): the
//! submitter posts its inline completions under the lock it already holds,
//! and other threads take it to post. Nothing may call [`Ctx::post`] while
//! holding it (the submit path uses [`Ctx::post_inline`]). When the CQ ring is full, CQEs wait in an unbounded
//! backlog in order, `IORING_SQ_CQ_OVERFLOW` is set, and every later CQE also
//! goes to the backlog until it has drained, so order is kept. The backlog is
//! flushed when a program asks for events (`IORING_ENTER_GETEVENTS`), as on
//! the kernel. No CQE is ever dropped (`IORING_FEAT_NODROP`).
//!
//! Wakeup protocol (no lost wakeups, no fences on the fast path): a waiter
//! registers itself in `waiters`, reads `cq_seq` and checks the CQ, all under
//! the CQ lock; a poster publishes the tail and reads `waiters` under the same
//! lock. So either the waiter's check sees the new CQE, or the poster sees the
//! waiter and, after unlocking, bumps `cq_seq` and wakes it; a bump that
//! lands before the waiter sleeps makes its futex value check fail.

use super::{Cqe, Ctx};
use crate::abi;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// The completion side's private state.
#[derive(Default)]
pub(crate) struct CqState {
    /// Our own CQ tail (the shared one is only ever written from this).
    pub tail: u32,
    /// CQEs that did not fit, oldest first.
    pub backlog: VecDeque<Cqe>,
}

impl CqState {
    /// Records whether the backlog is non-empty, in the private flag and in
    /// the program-visible `IORING_SQ_CQ_OVERFLOW` bit.
    /// The bit is the ring's, so it stays set while any process sharing the
    /// ring (see `shared.rs`) has a backlog. Runs under the submit lock.
    fn set_overflow(&self, ctx: &Ctx) {
        let on = !self.backlog.is_empty();
        if ctx.has_backlog.swap(on, Ordering::AcqRel) != on {
            if on {
                ctx.shm.backlogged.fetch_add(1, Ordering::Relaxed);
            } else {
                ctx.shm.backlogged.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if ctx.shm.backlogged.load(Ordering::Relaxed) > 0 {
            ctx.rings.sq_flags().fetch_or(abi::IORING_SQ_CQ_OVERFLOW, Ordering::Release);
        } else {
            ctx.rings.sq_flags().fetch_and(!abi::IORING_SQ_CQ_OVERFLOW, Ordering::Release);
        }
    }
}


impl Ctx {
    /// Free CQ slots, judged against the program's head. A head the program
    /// corrupted can only make the ring look full, never overrun it.
    #[inline]
    fn cq_space(&self, st: &CqState) -> u32 {
        let head = self.rings.cq_head().load(Ordering::Acquire);
        let used = st.tail.wrapping_sub(head).min(self.rings.geo.cq_entries);
        self.rings.geo.cq_entries - used
    }

    #[inline]
    fn post_locked(&self, st: &mut CqState, c: &Cqe, space: &mut u32) {
        if st.backlog.is_empty() && *space > 0 {
            self.rings.write_cqe(st.tail, c.user_data, c.res, c.flags, c.big);
            st.tail = st.tail.wrapping_add(1);
            *space -= 1;
        } else {
            st.backlog.push_back(*c);
            if st.backlog.len() == 1 {
                st.set_overflow(self);
            }
        }
    }

    /// DEFER_TASKRUN, and IOPOLL (unless a SQPOLL thread reaps): CQEs made
    /// outside an enter call are held until someone asks for events.
    #[inline]
    fn holds_cqes(&self) -> bool {
        self.has(abi::IORING_SETUP_DEFER_TASKRUN) || (self.has(abi::IORING_SETUP_IOPOLL) && !self.has(abi::IORING_SETUP_SQPOLL))
    }

    /// True when a multishot CQE can go straight into the CQ ring. The
    /// kernel posts multishot CQEs only there (`io_req_post_cqe`); when the
    /// ring is full the request ends instead, its last result posted as the
    /// final CQE (which may overflow).
    pub(crate) fn cq_has_room(&self) -> bool {
        let held = if self.has_deferred.load(Ordering::Acquire) {
            self.deferred.lock().unwrap_or_else(|e| e.into_inner()).len() as u32
        } else {
            0
        };
        !self.has_backlog.load(Ordering::Acquire) && self.cq_ready().saturating_add(held) < self.rings.geo.cq_entries
    }

    /// Posts a batch of CQEs and wakes whoever waits for them. On a
    /// DEFER_TASKRUN or IOPOLL ring, CQEs from anywhere but an enter call on
    /// the ring are held until someone asks for events.
    pub fn post(&self, cqes: &[Cqe]) {
        if cqes.is_empty() {
            return;
        }
        let held = self.holds_cqes();
        if held && !super::enter::in_enter(self) {
            self.deferred.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(cqes);
            self.has_deferred.store(true, Ordering::Release);
            self.wake_submitter();
            return;
        }
        if held && self.has_deferred.load(Ordering::Acquire) {
            // Posting in an enter while CQEs made earlier elsewhere are
            // held: they go first (the kernel would have run their task
            // work first; a multishot request's CQEs stay in order).
            let mut all = self.take_deferred();
            all.extend_from_slice(cqes);
            self.post_now(&all);
            return;
        }
        self.post_now(cqes);
    }

    /// DEFER_TASKRUN (and IOPOLL's held CQEs): tells the submitter that an
    /// enter has work to run, as the kernel's `io_req_local_work_add`
    /// does: IORING_SQ_TASKRUN (with TASKRUN_FLAG), its CQ waiters, the
    /// registered eventfd and the ring fd's readiness. The caller has made
    /// the work visible ([`Ctx::has_task_work`]) first; the sleepers are
    /// read under the submit lock, which waiters register under, so either
    /// a waiter sees the work or it is woken.
    pub fn wake_submitter(&self) {
        if self.has(abi::IORING_SETUP_TASKRUN_FLAG) {
            self.rings.sq_flags().fetch_or(abi::IORING_SQ_TASKRUN, Ordering::Release);
        }
        let sleepers = {
            let _st = self.submit.lock().unwrap_or_else(|e| e.into_inner());
            self.sleepers()
        };
        crate::chaos::point();
        self.notify(sleepers);
    }

    /// DEFER_TASKRUN: true while work waits for the submitter's enter:
    /// completions held for it, or polls the reactor saw become ready.
    #[inline]
    pub fn has_task_work(&self) -> bool {
        self.has_deferred.load(Ordering::Acquire) || self.poller.get().is_some_and(|p| p.pending())
    }

    /// Posts a batch of CQEs now (taking the submit lock).
    pub fn post_now(&self, cqes: &[Cqe]) {
        let sleepers = {
            let mut st = self.lock_submit();
            self.post_locked_batch(&mut st.cq, cqes)
        };
        crate::chaos::point();
        self.notify(sleepers);
        self.after_post();
    }

    /// Posts `cqe` (a multishot request's F_MORE completion) only if
    /// `still_armed` says its request has not been cancelled meanwhile.
    /// The check runs under the submit lock, which is what every cancel
    /// holds, so a cancelled request's final CQE is never followed by
    /// another. Lock order: submit lock, then the family's table lock.
    pub fn post_if_armed(&self, cqe: Cqe, still_armed: impl FnOnce() -> bool) {
        let held_ring = self.holds_cqes();
        let held = held_ring && !super::enter::in_enter(self);
        let mut st = self.lock_submit();
        if !still_armed() {
            return;
        }
        let sleepers = if held {
            self.deferred.lock().unwrap_or_else(|e| e.into_inner()).push(cqe);
            self.has_deferred.store(true, Ordering::Release);
            if self.has(abi::IORING_SETUP_TASKRUN_FLAG) {
                self.rings.sq_flags().fetch_or(abi::IORING_SQ_TASKRUN, Ordering::Release);
            }
            self.sleepers()
        } else if held_ring && self.has_deferred.load(Ordering::Acquire) {
            // As in `post`: CQEs held from earlier go first.
            let mut all = self.take_deferred();
            all.push(cqe);
            self.post_locked_batch(&mut st.cq, &all)
        } else {
            self.post_locked_batch(&mut st.cq, &[cqe])
        };
        drop(st);
        self.notify(sleepers);
        self.after_post();
    }

    /// Takes the CQEs held for DEFER_TASKRUN/IOPOLL (the caller posts them).
    pub fn take_deferred(&self) -> Vec<Cqe> {
        if !self.has_deferred.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        self.has_deferred.store(false, Ordering::Release);
        self.settle_taskrun_flag();
        std::mem::take(&mut *d)
    }

    /// DEFER_TASKRUN with TASKRUN_FLAG: IORING_SQ_TASKRUN tells the program
    /// that an enter has work to run. It is set while completions are held
    /// for the submitter, and while requests of the ring wait on readiness
    /// in the reactor: the kernel sets it the moment such a request becomes
    /// ready, in the waker's own context; ringport learns of it a little
    /// later (the reactor thread, or the submitter's next enter, which
    /// harvests ready polls itself), so it says so ahead of time. A program
    /// then makes an enter that finds nothing to do at worst, never misses
    /// one it needed. (An IOPOLL ring's flag follows its held completions
    /// only.) Cleared first, then set again if either holds, so a
    /// concurrent post is never hidden.
    pub fn settle_taskrun_flag(&self) {
        if !self.has(abi::IORING_SETUP_TASKRUN_FLAG) {
            return;
        }
        self.rings.sq_flags().fetch_and(!abi::IORING_SQ_TASKRUN, Ordering::AcqRel);
        let armed = self.has(abi::IORING_SETUP_DEFER_TASKRUN) && self.poller.get().is_some_and(|p| p.armed_fd().is_some());
        if armed || self.has_deferred.load(Ordering::Acquire) {
            self.rings.sq_flags().fetch_or(abi::IORING_SQ_TASKRUN, Ordering::Release);
        }
    }

    /// Sets IORING_SQ_TASKRUN ahead of time for a request that now waits on
    /// readiness (see [`Ctx::settle_taskrun_flag`]).
    pub fn flag_taskrun_ahead(&self) {
        if self.has(abi::IORING_SETUP_DEFER_TASKRUN) && self.has(abi::IORING_SETUP_TASKRUN_FLAG) {
            self.rings.sq_flags().fetch_or(abi::IORING_SQ_TASKRUN, Ordering::Release);
        }
    }

    /// Posts the submitter's own batch under the submit lock it holds.
    /// The caller runs [`Ctx::after_post`] once it has let go of the lock.
    pub fn post_inline(&self, cq: &mut CqState, cqes: &[Cqe]) {
        let sleepers = self.post_locked_batch(cq, cqes);
        self.notify(sleepers);
    }

    /// Work that follows posting and must not run under the submit lock:
    /// sequence timeouts whose count was reached.
    pub fn after_post(&self) {
        if self.seq_timeouts.load(Ordering::Acquire) {
            if let Some(me) = self.self_arc() {
                super::ops::timeout::flush_seq(&me);
            }
        }
    }

    fn post_locked_batch(&self, st: &mut CqState, cqes: &[Cqe]) -> (u32, u32) {
        let mut space = self.cq_space(st);
        for c in cqes {
            self.post_locked(st, c, &mut space);
        }
        self.rings.cq_tail().store(st.tail, Ordering::Release);
        // Only written under the lock: a plain store, not an RMW.
        let posted = self.cq_posted.load(Ordering::Relaxed);
        self.cq_posted.store(posted.wrapping_add(cqes.len() as u32), Ordering::Release);
        self.sleepers()
    }

    /// Moves backlog entries into the ring while there is room.
    /// Returns true if the backlog is now empty.
    pub fn flush_overflow(&self) -> bool {
        if !self.has_backlog.load(Ordering::Acquire) {
            return true;
        }
        let (empty, waiters) = {
            let mut guard = self.lock_submit();
            let st = &mut guard.cq;
            let mut space = self.cq_space(st);
            while space > 0 {
                let Some(c) = st.backlog.pop_front() else { break };
                self.rings.write_cqe(st.tail, c.user_data, c.res, c.flags, c.big);
                st.tail = st.tail.wrapping_add(1);
                space -= 1;
            }
            st.set_overflow(self);
            self.rings.cq_tail().store(st.tail, Ordering::Release);
            (st.backlog.is_empty(), self.sleepers())
        };
        self.notify(waiters);
        empty
    }

    /// Who sleeps, read under the CQ lock: (futex waiters, sigmask waiters).
    #[inline]
    fn sleepers(&self) -> (u32, u32) {
        (self.waiters.load(Ordering::Relaxed), self.sig_waiters.load(Ordering::Relaxed))
    }

    fn sleeper_count(&self, sigmask: bool) -> &std::sync::atomic::AtomicU32 {
        if sigmask {
            &self.sig_waiters
        } else {
            &self.waiters
        }
    }

    /// Registers a CQ waiter (a sigmask waiter if `sigmask`) and reports
    /// whether `min` CQEs are ready and the futex value to sleep on,
    /// atomically with respect to posters.
    /// A timeout completing (`cq_timeouts` moving away from `timeouts`)
    /// also ends the wait, as on the kernel.
    pub fn wait_register(&self, min: u32, sigmask: bool, timeouts: u32) -> (bool, u32) {
        let _st = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        self.sleeper_count(sigmask).fetch_add(1, Ordering::Relaxed);
        let ready = self.cq_ready() >= min
            || self.cq_timeouts.load(Ordering::Acquire) != timeouts
            || self.has_task_work();
        (ready, self.cq_seq.load(Ordering::Relaxed))
    }

    /// Undoes [`Ctx::wait_register`].
    pub fn wait_unregister(&self, sigmask: bool) {
        self.sleeper_count(sigmask).fetch_sub(1, Ordering::Relaxed);
    }

    /// Wakes CQ sleepers (counted under the CQ lock) and signals the
    /// registered eventfd.
    #[inline]
    fn notify(&self, (waiters, sig_waiters): (u32, u32)) {
        if waiters > 0 {
            self.cq_seq.fetch_add(1, Ordering::Release);
            super::wait::futex_wake_all(&self.cq_seq);
        }
        if sig_waiters > 0 {
            if let Some(fd) = self.sig_evfd.get() {
                let one = 1u64;
                // SAFETY: writing 8 bytes from a u64 to our own eventfd.
                unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), (&one as *const u64).cast(), 8) };
            }
        }
        if self.has_evfd.load(Ordering::Acquire) {
            self.signal_eventfd();
        }
        self.signal_ready();
    }

    /// With `EVENTFD_ASYNC`, only completions posted by a worker signal
    /// (the kernel's `io_wq_current_is_worker()` test).
    fn signal_eventfd(&self) {
        if self.rings.cq_flags().load(Ordering::Relaxed) & abi::IORING_CQ_EVENTFD_DISABLED != 0 {
            return;
        }
        let guard = self.evfd.read().unwrap_or_else(|e| e.into_inner());
        if let Some(ev) = guard.as_ref() {
            if ev.async_only && !super::wq::current_is_worker() {
                return;
            }
            ev.signal();
        }
    }

    /// Number of CQEs the program has not consumed yet.
    #[inline]
    pub fn cq_ready(&self) -> u32 {
        let tail = self.rings.cq_tail().load(Ordering::Acquire);
        let head = self.rings.cq_head().load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }
}
