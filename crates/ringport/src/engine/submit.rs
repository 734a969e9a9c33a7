//! Submission: fetch, prep, issue — the first half of an SQE's life.
//!
//! Runs under `Ctx::submit` (the kernel's `uring_lock`). The engine keeps its
//! own SQ head; the program's tail is read once per call and the number of
//! entries is bounded by the ring size, whatever the tail says.

use super::complete::Origin;
use super::opdef::{self, Issue, Mode, Req};
use super::{wq, Cqe, Ctx, Errno, Sqe};
use crate::abi;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The submission side's private state.
#[derive(Default)]
pub(crate) struct SubmitState {
    /// Our SQ head: the next position to fetch.
    pub head: u32,
    /// Completions produced inline during this call, posted in one batch.
    pub cqes: Vec<Cqe>,
}

/// Submits up to `to_submit` SQEs. Returns how many were consumed (a
/// dropped entry is consumed but not counted, as on the kernel).
pub(crate) fn submit(ctx: &Arc<Ctx>, to_submit: u32) -> Result<u32, Errno> {
    let mut guard = ctx.submit.lock().unwrap_or_else(|e| e.into_inner());
    let st = &mut *guard;
    let rings = &ctx.rings;
    let tail = rings.sq_tail().load(Ordering::Acquire);
    let avail = tail.wrapping_sub(st.head).min(rings.geo.sq_entries);
    let nr = to_submit.min(avail);
    let submit_all = ctx.has(abi::IORING_SETUP_SUBMIT_ALL);
    let mut submitted = 0u32;
    while submitted < nr {
        let pos = st.head;
        st.head = st.head.wrapping_add(1);
        let Some(idx) = rings.sqe_index(pos) else {
            rings.sq_dropped().fetch_add(1, Ordering::Relaxed);
            break;
        };
        let sqe = Sqe(rings.copy_sqe(idx));
        submitted += 1;
        match opdef::init_req(ctx, &sqe) {
            Ok(req) => issue_inline(ctx, req, &mut st.cqes),
            Err(e) => {
                st.cqes.push(Cqe::new(sqe.user_data(), e.neg(), 0));
                if !submit_all {
                    break;
                }
            }
        }
    }
    rings.sq_head().store(st.head, Ordering::Release);
    if !st.cqes.is_empty() {
        ctx.post(&st.cqes, Origin::Inline);
        st.cqes.clear();
    }
    Ok(submitted)
}

/// First issue of a request: inline and non-blocking, or straight to a
/// worker for IOSQE_ASYNC and ops that may block.
fn issue_inline(ctx: &Arc<Ctx>, mut req: Req, out: &mut Vec<Cqe>) {
    let punt = req.sqe_flags & abi::IOSQE_ASYNC != 0
        || opdef::lookup(req.opcode).is_some_and(|d| d.may_block);
    if !punt {
        if let Issue::Done(res, flags) = opdef::issue(ctx, &mut req, Mode::NonBlock) {
            if let Some(c) = completion(&req, res, flags) {
                out.push(c);
            }
            return;
        }
    }
    wq::punt(ctx.clone(), req);
}

/// The CQE for a finished request, or None when IOSQE_CQE_SKIP_SUCCESS
/// suppresses it.
#[inline]
pub(crate) fn completion(req: &Req, res: i32, flags: u32) -> Option<Cqe> {
    if req.sqe_flags & abi::IOSQE_CQE_SKIP_SUCCESS != 0 && !opdef::failed(req, res) {
        return None;
    }
    Some(Cqe::new(req.user_data, res, flags))
}
