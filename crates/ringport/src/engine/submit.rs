//! Submission: fetch, prep, issue, and what happens to a request when it
//! finishes (its CQE, the next request of its chain).
//!
//! Runs under `Ctx::submit` (the kernel's `uring_lock`). The engine keeps its
//! own SQ head; the program's tail is read once per call and the number of
//! entries is bounded by the ring size, whatever the tail says.
//!
//! Links follow the kernel's observable order: CQEs of requests that
//! complete inline are posted as one batch; issuing the next request of a
//! chain, and failing the rest of a chain, are *task work* that runs after
//! that batch, in the order it was queued (`SubmitState::tw`). In a worker,
//! the next request of a chain runs directly in the same worker, as in io-wq.

use super::complete::Origin;
use super::opdef::{self, Issue, Mode, Req};
use super::{wq, Cqe, Ctx, Errno, Sqe};
use crate::abi;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Deferred work of one submit call (the kernel's task work).
pub(crate) enum Tw {
    /// Issue the next request of a chain.
    Issue(Req),
    /// Complete a chain's remaining requests without issuing them: each
    /// posts its preset result or -ECANCELED (no CQE at all when `quiet`).
    Cancel(Req, bool),
}

/// The submission side's private state.
#[derive(Default)]
pub(crate) struct SubmitState {
    /// Our SQ head: the next position to fetch.
    pub head: u32,
    /// Completions produced during this call, posted in one batch.
    pub cqes: Vec<Cqe>,
    /// The chain being assembled: its requests in SQE order.
    chain: Vec<Req>,
    /// A request of `chain` failed to prep: the whole chain fails.
    chain_failed: bool,
    /// Task work queued during this call.
    tw: VecDeque<Tw>,
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
        let (req, prep_failed) = match opdef::init_req(ctx, &sqe) {
            Ok(req) => (req, false),
            Err(e) => (Req::failed(&sqe, e), true),
        };
        if prep_failed {
            st.chain_failed |= req.links_next() || !st.chain.is_empty();
        }
        // A prep failure that ends a chain (or stands alone) ends the batch.
        let stop = prep_failed && !req.links_next() && !submit_all;
        if req.links_next() || !st.chain.is_empty() {
            let ends = !req.links_next();
            st.chain.push(req);
            if ends {
                queue_chain(ctx, st);
            }
        } else {
            queue(ctx, req, &mut st.cqes, &mut st.tw);
        }
        if stop {
            break;
        }
    }
    // A chain still open at the end of the batch is queued as it stands.
    if !st.chain.is_empty() {
        queue_chain(ctx, st);
    }
    rings.sq_head().store(st.head, Ordering::Release);
    flush(ctx, st);
    Ok(submitted)
}

/// Posts the batch, then runs task work until none is left, posting what it
/// completes after the batch.
fn flush(ctx: &Arc<Ctx>, st: &mut SubmitState) {
    loop {
        if !st.cqes.is_empty() {
            ctx.post(&st.cqes, Origin::Inline);
            st.cqes.clear();
        }
        if st.tw.is_empty() {
            return;
        }
        // Run the work queued so far; what it queues runs in the next round
        // of the same call (after this round's CQEs), as task work does.
        let round: Vec<Tw> = st.tw.drain(..).collect();
        for w in round {
            match w {
                Tw::Issue(req) => queue(ctx, req, &mut st.cqes, &mut st.tw),
                Tw::Cancel(req, quiet) => cancel_chain(req, quiet, &mut st.cqes),
            }
        }
    }
}

/// Links the assembled chain and queues it.
fn queue_chain(ctx: &Arc<Ctx>, st: &mut SubmitState) {
    let failed = std::mem::take(&mut st.chain_failed);
    let mut reqs = std::mem::take(&mut st.chain);
    let mut next: Option<Box<Req>> = None;
    while let Some(mut r) = reqs.pop() {
        r.link = next;
        next = Some(Box::new(r));
    }
    let Some(mut head) = next.map(|b| *b) else { return };
    if failed && head.preset.is_none() {
        head.preset = Some(-libc::ECANCELED);
    }
    queue(ctx, head, &mut st.cqes, &mut st.tw);
}

/// Issues `req` inline (or punts it) and finishes it if it completed.
fn queue(ctx: &Arc<Ctx>, req: Req, out: &mut Vec<Cqe>, tw: &mut VecDeque<Tw>) {
    if let Some((req, res, flags)) = issue_once(ctx, req, Mode::NonBlock) {
        if let Some(next) = finish(req, res, flags, out, Some(tw)) {
            tw.push_back(Tw::Issue(next));
        }
    }
}

/// One issue attempt. Returns the request and its result if it completed;
/// None if it went to a worker.
fn issue_once(ctx: &Arc<Ctx>, mut req: Req, mode: Mode) -> Option<(Req, i32, u32)> {
    if let Some(res) = req.preset {
        return Some((req, res, 0));
    }
    if mode == Mode::NonBlock
        && (req.sqe_flags & abi::IOSQE_ASYNC != 0 || opdef::lookup(req.opcode).is_some_and(|d| d.may_block))
    {
        wq::punt(ctx.clone(), req);
        return None;
    }
    match opdef::issue(ctx, &mut req, mode) {
        Issue::Done(res, flags) => Some((req, res, flags)),
        Issue::Punt if mode == Mode::NonBlock => {
            wq::punt(ctx.clone(), req);
            None
        }
        // Blocking issue that still cannot proceed: report it, never lose it.
        Issue::Punt => Some((req, -libc::EAGAIN, 0)),
    }
}

/// Runs `req` in a worker: blocking issue, then the rest of its chain in the
/// same thread, posting each CQE before the next request starts.
pub(crate) fn run_in_worker(ctx: &Arc<Ctx>, req: Req) {
    let mut out = Vec::new();
    let mut cur = Some(req);
    while let Some(req) = cur.take() {
        if let Some((req, res, flags)) = issue_once(ctx, req, Mode::Block) {
            cur = finish(req, res, flags, &mut out, None);
        }
        ctx.post(&out, Origin::Async);
        out.clear();
    }
}

/// Produces the CQE of a finished request and decides what its chain does.
/// Returns the next request to issue, if any. Failing the rest of a chain
/// is queued as task work when `tw` is given, done at once otherwise.
fn finish(mut req: Req, res: i32, flags: u32, out: &mut Vec<Cqe>, tw: Option<&mut VecDeque<Tw>>) -> Option<Req> {
    let failed = req.preset.is_some() || opdef::failed(&req, res);
    let skip = req.sqe_flags & abi::IOSQE_CQE_SKIP_SUCCESS != 0;
    if !skip || failed {
        out.push(Cqe::new(req.user_data, res, flags));
    }
    let next = *req.link.take()?;
    // A failed request cancels the rest of its chain unless it is a
    // hardlink; a prep-failed chain always fails whole. When the failed
    // request had CQE_SKIP_SUCCESS, the cancelled ones post nothing.
    let cancel = req.preset.is_some() || (failed && req.sqe_flags & abi::IOSQE_IO_HARDLINK == 0);
    if !cancel {
        return Some(next);
    }
    let quiet = skip && failed && req.preset.is_none();
    match tw {
        Some(tw) => tw.push_back(Tw::Cancel(next, quiet)),
        None => cancel_chain(next, quiet, out),
    }
    None
}

/// Completes `req` and everything linked after it without issuing them.
fn cancel_chain(req: Req, quiet: bool, out: &mut Vec<Cqe>) {
    let mut cur = Some(req);
    while let Some(mut r) = cur.take() {
        cur = r.link.take().map(|b| *b);
        if !quiet {
            out.push(Cqe::new(r.user_data, r.preset.unwrap_or(-libc::ECANCELED), 0));
        }
    }
}
