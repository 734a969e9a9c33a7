//! Completion posting: CQ ring writes, the overflow backlog, wakeups.
//!
//! Any engine thread may post. Posting takes `Ctx::cq` (the kernel's
//! `completion_lock`). When the CQ ring is full, CQEs wait in an unbounded
//! backlog in order, `IORING_SQ_CQ_OVERFLOW` is set, and every later CQE also
//! goes to the backlog until it has drained, so order is kept. The backlog is
//! flushed when a program asks for events (`IORING_ENTER_GETEVENTS`), as on
//! the kernel. No CQE is ever dropped (`IORING_FEAT_NODROP`).
//!
//! Wakeup protocol (no lost wakeups): a poster publishes the CQ tail, issues a
//! SeqCst fence, then reads `waiters`; a waiter increments `waiters` (SeqCst),
//! reads `cq_seq`, then re-checks the tail before sleeping on `cq_seq`. One of
//! the two always sees the other's write, and a poster that sees a waiter
//! bumps `cq_seq` before waking, so the futex value check fails if the bump
//! came first.

use super::{Cqe, Ctx};
use crate::abi;
use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};

/// The completion side's private state.
#[derive(Default)]
pub(crate) struct CqState {
    /// Our own CQ tail (the shared one is only ever written from this).
    pub tail: u32,
    /// CQEs that did not fit, oldest first.
    pub backlog: VecDeque<Cqe>,
}

/// Where a completion comes from; `EVENTFD_ASYNC` signals only for `Async`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Completed inline, inside the submitter's call.
    Inline,
    /// Completed by a worker or another engine thread.
    Async,
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
            if st.backlog.is_empty() {
                self.rings.sq_flags().fetch_or(abi::IORING_SQ_CQ_OVERFLOW, Ordering::Release);
            }
            st.backlog.push_back(*c);
        }
    }

    /// Posts a batch of CQEs and wakes whoever waits for them.
    pub fn post(&self, cqes: &[Cqe], origin: Origin) {
        if cqes.is_empty() {
            return;
        }
        {
            let mut st = self.cq.lock().unwrap_or_else(|e| e.into_inner());
            let mut space = self.cq_space(&st);
            for c in cqes {
                self.post_locked(&mut st, c, &mut space);
            }
            self.rings.cq_tail().store(st.tail, Ordering::Release);
        }
        self.notify(origin);
    }

    /// Moves backlog entries into the ring while there is room.
    /// Returns true if the backlog is now empty.
    pub fn flush_overflow(&self) -> bool {
        if self.rings.sq_flags().load(Ordering::Relaxed) & abi::IORING_SQ_CQ_OVERFLOW == 0 {
            // The flag is ours to set; a program that clears it only makes
            // us check the backlog under the lock below on the next call.
            let st = self.cq.lock().unwrap_or_else(|e| e.into_inner());
            if st.backlog.is_empty() {
                return true;
            }
        }
        let mut st = self.cq.lock().unwrap_or_else(|e| e.into_inner());
        let mut space = self.cq_space(&st);
        let mut moved = false;
        while space > 0 {
            let Some(c) = st.backlog.pop_front() else { break };
            self.rings.write_cqe(st.tail, c.user_data, c.res, c.flags, c.big);
            st.tail = st.tail.wrapping_add(1);
            space -= 1;
            moved = true;
        }
        let empty = st.backlog.is_empty();
        if empty {
            self.rings.sq_flags().fetch_and(!abi::IORING_SQ_CQ_OVERFLOW, Ordering::Release);
        } else {
            self.rings.sq_flags().fetch_or(abi::IORING_SQ_CQ_OVERFLOW, Ordering::Release);
        }
        self.rings.cq_tail().store(st.tail, Ordering::Release);
        drop(st);
        if moved {
            self.notify(Origin::Inline);
        }
        empty
    }

    /// Wakes CQ waiters and signals the registered eventfd.
    #[inline]
    fn notify(&self, origin: Origin) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.cq_seq.fetch_add(1, Ordering::SeqCst);
            super::wait::futex_wake_all(&self.cq_seq);
        }
        if self.sig_waiters.load(Ordering::Relaxed) > 0 {
            if let Some(fd) = self.sig_evfd.get() {
                let one = 1u64;
                // SAFETY: writing 8 bytes from a u64 to our own eventfd.
                unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), (&one as *const u64).cast(), 8) };
            }
        }
        if self.has_evfd.load(Ordering::Acquire) {
            self.signal_eventfd(origin);
        }
    }

    fn signal_eventfd(&self, origin: Origin) {
        if self.rings.cq_flags().load(Ordering::Relaxed) & abi::IORING_CQ_EVENTFD_DISABLED != 0 {
            return;
        }
        let guard = self.evfd.read().unwrap_or_else(|e| e.into_inner());
        if let Some(ev) = guard.as_ref() {
            if ev.async_only && origin != Origin::Async {
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
