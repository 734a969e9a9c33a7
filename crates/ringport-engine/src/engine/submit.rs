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

use super::opdef::{self, Issue, Mode, Req};
use super::ops::timeout;
use super::{enter, wq, Cqe, Ctx, Errno, Sqe};
use crate::abi;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Deferred work of one submit call (the kernel's task work).
pub(crate) enum Tw {
    /// Issue the next request of a chain.
    Issue(Box<Req>),
    /// Complete a chain's remaining requests without issuing them: each
    /// posts its preset result or -ECANCELED (no CQE at all when `quiet`).
    Cancel(Box<Req>, bool),
    /// Complete a request with a result decided elsewhere.
    Complete(Box<Req>, i32),
}

/// What one issue attempt came to.
enum Outcome {
    Done(i32, u32),
    Punt,
    Park,
}

/// The submission side's private state.
#[derive(Default)]
pub(crate) struct SubmitState {
    /// Our SQ head: the next position to fetch.
    pub head: u32,
    /// Completions produced during this call, posted in one batch.
    pub cqes: Vec<Cqe>,
    /// The CQ producer side: the submit lock is also the CQ lock.
    pub cq: super::complete::CqState,
    /// The chain being assembled: its requests in SQE order.
    chain: Vec<Req>,
    /// A request of `chain` failed to prep: the whole chain fails.
    chain_failed: bool,
    /// Task work queued during this call.
    tw: VecDeque<Tw>,
    /// Requests finished inline whose CQEs are not posted yet: they count
    /// as done for IO_DRAIN only once posted (else a drained request could
    /// overtake them).
    finished: u64,
    /// Requests submitted so far (every chain member counts).
    seq: u64,
    /// A CQE_SKIP_SUCCESS SQE was seen: IO_DRAIN is refused from now on,
    /// as on the kernel.
    drain_disabled: bool,
    /// Reads gathered for a shared batch (`par.rs`), in SQE order, with
    /// their buffers; and the batch's outcomes (kept for their capacity).
    par: Vec<Req>,
    par_bufs: Vec<(u64, u64)>,
    par_outs: Vec<super::par::Out>,
}

/// IO_DRAIN bookkeeping (the kernel's defer list).
///
/// While a drain is active, every new request waits here until all
/// requests submitted before it have completed; then it runs in a worker.
#[derive(Default)]
pub(crate) struct Drain {
    /// True while `queue` may be non-empty (checked without the lock).
    active: AtomicBool,
    /// Waiting chains, with the number of requests submitted before each.
    queue: Mutex<VecDeque<(u64, Box<Req>)>>,
    /// Requests finished inline (written only under the submit lock).
    done_inline: AtomicU64,
    /// Requests finished in workers.
    done_async: AtomicU64,
}

impl Drain {
    fn done(&self) -> u64 {
        self.done_inline.load(Ordering::Acquire) + self.done_async.load(Ordering::Acquire)
    }

    /// Counts `n` requests finished by the submitter (under the submit lock).
    #[inline]
    fn count_inline(&self, n: u64) {
        let v = self.done_inline.load(Ordering::Relaxed);
        self.done_inline.store(v + n, Ordering::Release);
    }

    /// Releases queued chains whose predecessors have all completed.
    fn release(&self, ctx: &Arc<Ctx>) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        while q.front().is_some_and(|(seq, _)| self.done() >= *seq) {
            if let Some((_, req)) = q.pop_front() {
                wq::punt(ctx.clone(), req);
            }
        }
        if q.is_empty() {
            self.active.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    /// The ring whose submit lock this thread holds (0: none).
    static IN_SUBMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Submits up to `to_submit` SQEs. Returns how many were consumed (a
/// dropped entry is consumed but not counted, as on the kernel).
pub(crate) fn submit(ctx: &Arc<Ctx>, to_submit: u32) -> Result<u32, Errno> {
    let guard = ctx.lock_submit();
    IN_SUBMIT.with(|s| s.set(Arc::as_ptr(ctx) as usize));
    let submitted = submit_locked(ctx, guard, to_submit);
    IN_SUBMIT.with(|s| s.set(0));
    ctx.after_post();
    ctx.drain.release(ctx);
    Ok(submitted)
}

fn submit_locked(ctx: &Arc<Ctx>, mut guard: super::SubmitGuard<'_>, to_submit: u32) -> u32 {
    let st = &mut *guard;
    let rings = &ctx.rings;
    let tail = rings.sq_tail().load(Ordering::Acquire);
    let avail = tail.wrapping_sub(st.head).min(rings.geo.sq_entries);
    let nr = to_submit.min(avail);
    let submit_all = ctx.has(abi::IORING_SETUP_SUBMIT_ALL);
    // Enough SQEs for reads to be worth sharing with the helper (par.rs).
    let gather = nr as usize >= super::par::MIN_BATCH && super::par::available();
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
        let mut req = Req::new(&sqe);
        if let Err(e) = init_req(ctx, st, &sqe, &mut req) {
            // Kept so that a chain can report it; never issued.
            req.preset = Some(e.neg());
        }
        let prep_failed = req.preset.is_some();
        if prep_failed {
            st.chain_failed |= req.links_next() || !st.chain.is_empty();
        }
        // A prep failure that ends a chain (or stands alone) ends the batch.
        let stop = prep_failed && !req.links_next() && !submit_all;
        let shared = if gather && st.chain.is_empty() && !req.links_next() && !must_wait(ctx, &req) {
            super::ops::rw::parallel_buffer(ctx, &req)
        } else {
            None
        };
        if let Some(buf) = shared {
            st.seq += 1;
            st.par.push(req);
            st.par_bufs.push(buf);
            continue;
        }
        // Whatever comes next is issued after the reads gathered so far.
        if !st.par.is_empty() {
            flush_par(ctx, st);
        }
        if req.links_next() || !st.chain.is_empty() {
            let ends = !req.links_next();
            st.chain.push(req);
            if ends {
                queue_chain(ctx, st);
            }
        } else {
            let seq = st.seq;
            st.seq += 1;
            if must_wait(ctx, &req) {
                wait_drain(ctx, Box::new(req), seq);
            } else {
                queue(ctx, &mut req, &mut st.cqes, &mut st.tw, &mut st.finished);
            }
        }
        if stop {
            break;
        }
    }
    if !st.par.is_empty() {
        flush_par(ctx, st);
    }
    // A chain still open at the end of the batch is queued as it stands.
    if !st.chain.is_empty() {
        queue_chain(ctx, st);
    }
    rings.sq_head().store(st.head, Ordering::Release);
    flush(ctx, st);
    submitted
}

/// The kernel's `io_init_req`, plus the drain rule that depends on what
/// this ring has seen: after a CQE_SKIP_SUCCESS SQE, IO_DRAIN is EOPNOTSUPP.
/// A LINK_TIMEOUT must also follow a linked request that is not one.
#[inline(always)]
fn init_req(ctx: &Ctx, st: &mut SubmitState, sqe: &Sqe, req: &mut Req) -> Result<(), Errno> {
    let flags = sqe.flags();
    if flags & !abi::IOSQE_ALL == 0 {
        st.drain_disabled |= flags & abi::IOSQE_CQE_SKIP_SUCCESS != 0;
        if flags & abi::IOSQE_IO_DRAIN != 0 && st.drain_disabled {
            return Err(Errno(libc::EOPNOTSUPP));
        }
    }
    if sqe.opcode() == abi::op::LINK_TIMEOUT && st.chain.last().is_none_or(|l| l.opcode == abi::op::LINK_TIMEOUT) {
        // Its own prep errors come first, as on the kernel.
        opdef::init_req(ctx, sqe, req)?;
        return Err(Errno(libc::EINVAL));
    }
    opdef::init_req(ctx, sqe, req)
}

/// Posts the batch, then runs task work until none is left, posting what it
/// completes after the batch.
fn flush(ctx: &Arc<Ctx>, st: &mut SubmitState) {
    loop {
        if !st.cqes.is_empty() {
            ctx.post_inline(&mut st.cq, &st.cqes);
            st.cqes.clear();
        }
        ctx.drain.count_inline(std::mem::take(&mut st.finished));
        // Held CQEs (DEFER_TASKRUN, IOPOLL) were produced before this
        // call's task work: post them first, since we are in enter anyway.
        if enter::in_enter(ctx) {
            let held = ctx.take_deferred();
            if !held.is_empty() {
                ctx.post_inline(&mut st.cq, &held);
            }
        }
        for (req, res) in ctx.take_remote_tw() {
            st.tw.push_back(Tw::Complete(req, res));
        }
        if st.tw.is_empty() {
            return;
        }
        // Run the work queued so far; what it queues runs in the next round
        // of the same call (after this round's CQEs), as task work does.
        let round: Vec<Tw> = st.tw.drain(..).collect();
        for w in round {
            match w {
                Tw::Issue(mut req) => queue(ctx, &mut req, &mut st.cqes, &mut st.tw, &mut st.finished),
                Tw::Cancel(req, quiet) => {
                    st.finished += cancel_chain(req, quiet, &mut st.cqes);
                }
                Tw::Complete(mut req, res) => {
                    st.finished += 1;
                    if let Some(next) = finish(ctx, &mut req, res, 0, &mut st.cqes, Some(&mut st.tw)) {
                        st.tw.push_back(Tw::Issue(next));
                    }
                }
            }
        }
    }
}

/// True when a chain head must wait in the drain queue: it has IO_DRAIN, or a
/// drain is active. A chain that failed at prep completes at once.
#[inline]
fn must_wait(ctx: &Ctx, req: &Req) -> bool {
    (req.sqe_flags & abi::IOSQE_IO_DRAIN != 0 || ctx.drain.active.load(Ordering::Acquire)) && req.preset.is_none()
}

/// Parks a chain head until the `seq` requests submitted before it are done.
fn wait_drain(ctx: &Ctx, req: Box<Req>, seq: u64) {
    let mut q = ctx.drain.queue.lock().unwrap_or_else(|e| e.into_inner());
    ctx.drain.active.store(true, Ordering::Release);
    q.push_back((seq, req));
}

/// Links the assembled chain and queues it.
fn queue_chain(ctx: &Arc<Ctx>, st: &mut SubmitState) {
    let failed = std::mem::take(&mut st.chain_failed);
    let mut reqs = std::mem::take(&mut st.chain);
    // IO_DRAIN on any member drains the whole chain (the kernel marks the
    // head), and what follows the chain waits behind it.
    let drain = reqs.iter().any(|r| r.sqe_flags & abi::IOSQE_IO_DRAIN != 0);
    if let Some(first) = reqs.first_mut() {
        if drain {
            first.sqe_flags |= abi::IOSQE_IO_DRAIN;
        }
    }
    let mut next: Option<Box<Req>> = None;
    while let Some(mut r) = reqs.pop() {
        r.link = next;
        next = Some(Box::new(r));
    }
    let Some(mut head) = next else { return };
    if failed && head.preset.is_none() {
        head.preset = Some(-libc::ECANCELED);
    }
    let seq = st.seq;
    st.seq += chain_len(&head);
    if must_wait(ctx, &head) {
        wait_drain(ctx, head, seq);
    } else {
        queue(ctx, &mut head, &mut st.cqes, &mut st.tw, &mut st.finished);
    }
}

fn chain_len(req: &Req) -> u64 {
    let mut n = 1;
    let mut cur = req.link.as_deref();
    while let Some(r) = cur {
        n += 1;
        cur = r.link.as_deref();
    }
    n
}

/// Issues `req` inline (or punts it) and finishes it if it completed.
/// The request is worked on in place; it is moved out only when it leaves
/// for a worker or a parking place (moving it on the hot path costs a copy
/// and a store-forwarding stall).
#[inline(always)]
fn queue(ctx: &Arc<Ctx>, req: &mut Req, out: &mut Vec<Cqe>, tw: &mut VecDeque<Tw>, finished: &mut u64) {
    let outcome = issue_once(ctx, req, Mode::NonBlock);
    settle(ctx, req, outcome, out, tw, finished);
}

/// Issues the gathered reads (shared with the helper when there are enough
/// and their buffers are apart), then settles each in SQE order.
#[inline(never)]
fn flush_par(ctx: &Arc<Ctx>, st: &mut SubmitState) {
    let mut reqs = std::mem::take(&mut st.par);
    let shared = reqs.len() >= super::par::MIN_BATCH && !super::par::overlap(&mut st.par_bufs);
    let mut outs = std::mem::take(&mut st.par_outs);
    if shared {
        super::par::issue_all(ctx, &mut reqs, &mut outs);
    }
    for (i, req) in reqs.iter_mut().enumerate() {
        let outcome = match outs.get_mut(i).and_then(|o| o.0.take()) {
            // A stream read at an offset: issue it now, as one.
            Some(Issue::Done(r, _)) if r == -libc::ESPIPE => issue_once(ctx, req, Mode::NonBlock),
            Some(Issue::Done(r, f)) => Outcome::Done(r, f),
            Some(Issue::Punt) => Outcome::Punt,
            Some(Issue::Park) => Outcome::Park,
            None => issue_once(ctx, req, Mode::NonBlock),
        };
        settle(ctx, req, outcome, &mut st.cqes, &mut st.tw, &mut st.finished);
    }
    reqs.clear();
    outs.clear();
    st.par = reqs;
    st.par_outs = outs;
    st.par_bufs.clear();
}

/// What becomes of a request after an issue attempt: finished (its CQE
/// and the next of its chain), punted to a worker, or parked.
#[inline(always)]
fn settle(ctx: &Arc<Ctx>, req: &mut Req, outcome: Outcome, out: &mut Vec<Cqe>, tw: &mut VecDeque<Tw>, finished: &mut u64) {
    match outcome {
        Outcome::Done(res, flags) => {
            *finished += 1;
            if let Some(next) = finish(ctx, req, res, flags, out, Some(tw)) {
                tw.push_back(Tw::Issue(next));
            }
        }
        Outcome::Punt => wq::punt(ctx.clone(), Box::new(req.take())),
        Outcome::Park => opdef::park(ctx, Box::new(req.take())),
    }
}

/// One issue attempt: completed, to be punted to a worker, or parked.
#[inline]
fn issue_once(ctx: &Ctx, req: &mut Req, mode: Mode) -> Outcome {
    if let Some(res) = req.preset {
        return Outcome::Done(res, 0);
    }
    // IOPOLL reads and writes complete asynchronously, to be reaped in
    // enter(GETEVENTS), as the kernel's polled I/O does.
    let polled = |d: &opdef::OpDef| d.iopoll && d.needs_file && ctx.has(abi::IORING_SETUP_IOPOLL);
    if mode == Mode::NonBlock
        && (req.sqe_flags & abi::IOSQE_ASYNC != 0 || opdef::lookup(req.opcode).is_some_and(|d| d.may_block || polled(d)))
    {
        return Outcome::Punt;
    }
    match opdef::issue(ctx, req, mode) {
        Issue::Done(res, flags) => Outcome::Done(res, flags),
        Issue::Punt if mode == Mode::NonBlock => Outcome::Punt,
        // Blocking issue that still cannot proceed: report it, never lose it.
        Issue::Punt => Outcome::Done(-libc::EAGAIN, 0),
        Issue::Park => Outcome::Park,
    }
}

/// Completes `req` from outside any submit call (a timer, a sequence
/// count): its CQE is posted at once, and the next request of its chain
/// goes to a worker.
pub(crate) fn complete_elsewhere(ctx: &Arc<Ctx>, mut req: Box<Req>, res: i32) {
    // Inside this ring's submit (a failed park, say) the submit lock is
    // held: complete it as task work of the same call instead.
    if IN_SUBMIT.with(|s| s.get()) == Arc::as_ptr(ctx) as usize {
        ctx.defer_completion(req, res);
        return;
    }
    let mut out = Vec::new();
    let before = chain_len(&req);
    let next = finish(ctx, &mut req, res, 0, &mut out, None);
    let left = next.as_deref().map_or(0, chain_len);
    crate::chaos::point();
    ctx.post(&out);
    // Done for IO_DRAIN only once its CQE is out.
    ctx.drain.done_async.fetch_add(before - left, Ordering::AcqRel);
    if let Some(next) = next {
        wq::punt(ctx.clone(), next);
    }
    ctx.drain.release(ctx);
}

/// Runs `req` in a worker: blocking issue, then the rest of its chain in the
/// same thread, posting each CQE before the next request starts.
pub(crate) fn run_in_worker(ctx: &Arc<Ctx>, mut req: Box<Req>) {
    let mut out = Vec::new();
    loop {
        let before = chain_len(&req);
        // Recorded once for all its attempts: a cancel between two attempts
        // still finds it.
        wq::set_running(ctx, &req);
        let outcome = loop {
            let outcome = issue_once(ctx, &mut req, Mode::Block);
            // EINTR without a cancel: the interrupt was meant for this
            // worker's previous request; the call had no effect, so again.
            if matches!(outcome, Outcome::Done(r, _) if r == -libc::EINTR) && !wq::running_cancelled() {
                continue;
            }
            break outcome;
        };
        let park = matches!(outcome, Outcome::Park);
        let cancelled = if park { wq::running_cancelled() } else { wq::clear_running() };
        let (res, flags) = match outcome {
            // Interrupted by a cancel: the kernel's op sees ERESTARTSYS,
            // which only some families turn into EINTR.
            Outcome::Done(r, f) if cancelled && r == -libc::EINTR => (opdef::interrupted_result(req.opcode), f),
            Outcome::Done(res, flags) => (res, flags),
            // A cancel found it running (and answered -EALREADY): it ends
            // as interrupted here instead of waiting in the reactor, where
            // that cancel would never reach it.
            Outcome::Park if cancelled => {
                wq::clear_running();
                (opdef::interrupted_result(req.opcode), 0)
            }
            Outcome::Park => {
                // Armed while still recorded as running, then no longer
                // running: a cancel (which looks at running work before
                // armed polls) finds it in one place or the other. One that
                // found it running ends it here, out of the reactor again.
                let (ud, opcode) = (req.user_data, req.opcode);
                opdef::park(ctx, req);
                if wq::clear_running() {
                    if let Some(req) = super::ops::poll::take(ctx, ud, true) {
                        complete_elsewhere(ctx, req, opdef::interrupted_result(opcode));
                    }
                }
                break;
            }
            Outcome::Punt => (-libc::EAGAIN, 0),
        };
        let next = finish(ctx, &mut req, res, flags, &mut out, None);
        // Everything of the chain that is not still to run has finished;
        // it counts as done for IO_DRAIN once its CQEs are out.
        let left = next.as_deref().map_or(0, chain_len);
        if next.is_none() {
            wq::about_to_finish();
        }
        crate::chaos::point();
        ctx.post(&out);
        wq::release_hash(next.is_some());
        out.clear();
        ctx.drain.done_async.fetch_add(before - left, Ordering::AcqRel);
        for (req, res) in ctx.take_remote_tw() {
            complete_elsewhere(ctx, req, res);
        }
        match next {
            Some(n) => req = n,
            None => break,
        }
    }
    ctx.drain.release(ctx);
}

/// Produces the CQE of a finished request and decides what its chain does.
/// Returns the next request to issue, if any. Failing the rest of a chain
/// is queued as task work when `tw` is given, done at once otherwise.
#[inline]
fn finish(
    ctx: &Ctx,
    req: &mut Req,
    res: i32,
    flags: u32,
    out: &mut Vec<Cqe>,
    mut tw: Option<&mut VecDeque<Tw>>,
) -> Option<Box<Req>> {
    let failed = req.preset.is_some() || opdef::failed(req, res);
    let res = opdef::final_res(req, res);
    let skip = req.sqe_flags & abi::IOSQE_CQE_SKIP_SUCCESS != 0;
    if !skip || failed {
        out.push(Cqe::new(req.user_data, res, flags | opdef::cqe_flags(req)));
        if let Some(n) = opdef::notif_res(req, res) {
            out.push(Cqe::new(req.user_data, n, abi::IORING_CQE_F_NOTIF));
        }
    }
    // Its LINK_TIMEOUT, armed or still in the chain, ends with -ECANCELED
    // (unless the timer already fired) and the chain goes on after it.
    let armed = req.ltimeout.is_some();
    let lt = match req.ltimeout.take() {
        Some(key) => timeout::take_link(ctx, key),
        None if req.link.as_ref().is_some_and(|l| l.opcode == abi::op::LINK_TIMEOUT) && req.preset.is_none() => {
            req.link.take().map(|mut lt| {
                req.link = lt.link.take();
                lt
            })
        }
        None => None,
    };
    if let Some(lt) = lt {
        // Disarmed is not failed: with CQE_SKIP_SUCCESS it posts nothing.
        let quiet = lt.sqe_flags & abi::IOSQE_CQE_SKIP_SUCCESS != 0;
        match tw.as_deref_mut() {
            Some(tw) if quiet => tw.push_back(Tw::Cancel(lt, true)),
            Some(tw) => tw.push_back(Tw::Complete(lt, -libc::ECANCELED)),
            None => {
                if !quiet {
                    out.push(Cqe::new(lt.user_data, -libc::ECANCELED, 0));
                }
                // An armed one left the chain, so the caller's count misses it.
                if armed {
                    ctx.drain.done_async.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }
    let next = req.link.take()?;
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
        None => {
            // Counted by the worker as part of the chain it ran.
            cancel_chain(next, quiet, out);
        }
    }
    None
}

/// Completes `req` and everything linked after it without issuing them.
/// Returns how many requests that was.
fn cancel_chain(req: Box<Req>, quiet: bool, out: &mut Vec<Cqe>) -> u64 {
    let mut n = 0;
    let mut cur = Some(req);
    while let Some(mut r) = cur.take() {
        cur = r.link.take();
        if !quiet {
            out.push(Cqe::new(r.user_data, r.preset.unwrap_or(-libc::ECANCELED), 0));
        }
        n += 1;
    }
    n
}
