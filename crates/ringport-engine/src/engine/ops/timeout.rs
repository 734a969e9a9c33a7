//! TIMEOUT and TIMEOUT_REMOVE (the kernel's io_uring/timeout.c).
//!
//! A TIMEOUT completes with `-ETIME` when its timer fires, or with 0 once
//! `off` other completions have been posted (a *sequence* timeout). Timeouts
//! that complete either way count in `cq_timeouts`, and their own CQEs do not
//! count toward other sequence timeouts, as on the kernel. MULTISHOT re-arms
//! and posts `-ETIME` with `IORING_CQE_F_MORE` until `off` firings (0: until
//! removed). ETIME_SUCCESS makes an expiry not a failure for its chain.
//!
//! Each ring's pending timeouts live in its [`Table`], which owns their
//! requests; the process-wide timer thread ([`crate::engine::timer`]) only
//! holds (ring, generation id) pairs.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{timer, uaccess, Ctx, Errno, Sqe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A prepared TIMEOUT.
pub(crate) struct Timeout {
    sec: i64,
    nsec: i64,
    flags: u32,
    off: u32,
}

impl Timeout {
    /// An expiry is not a failure with IORING_TIMEOUT_ETIME_SUCCESS.
    pub fn failed(&self, res: i32) -> bool {
        res < 0 && !(res == -libc::ETIME && self.flags & abi::IORING_TIMEOUT_ETIME_SUCCESS != 0)
    }
}

/// A prepared TIMEOUT_REMOVE (or update).
pub(crate) struct TimeoutRemove {
    target: u64,
    /// With IORING_TIMEOUT_UPDATE: the new time and whether it is absolute.
    update: Option<(i64, i64, bool)>,
    link: bool,
}

/// One armed timeout.
struct Pending {
    /// For a LINK_TIMEOUT: the user_data of the request it times.
    link_of: Option<u64>,
    /// Stable key (the first timer id): what the timed request holds.
    key: u64,
    /// Generation id of the armed timer.
    timer: u64,
    req: Box<Req>,
    /// For a sequence timeout: the completion count when it was armed, and
    /// how many more completions satisfy it.
    target: Option<(u32, u32)>,
    /// MULTISHOT firings left (0: unlimited).
    repeats: u32,
    /// The armed timer's CLOCK_MONOTONIC deadline, in nanoseconds.
    when: u64,
}

/// A ring's armed timeouts.
#[derive(Default)]
pub(crate) struct Table {
    list: Vec<Pending>,
}

fn read_ts(addr: u64) -> Result<(i64, i64), Errno> {
    // SAFETY: __kernel_timespec is plain data.
    let ts: abi::__kernel_timespec = unsafe { uaccess::read_pod(addr)? };
    if ts.tv_sec < 0 || ts.tv_nsec < 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok((ts.tv_sec, ts.tv_nsec))
}

fn one_clock(flags: u32) -> bool {
    (flags & abi::IORING_TIMEOUT_CLOCK_MASK).count_ones() <= 1
}

/// LINK_TIMEOUT: a TIMEOUT without a count, attached to the request before
/// it in a chain (that the chain exists is checked at submission).
#[inline(always)]
pub(crate) fn prep_link_timeout(ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.off() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    prep_timeout(ctx, sqe)
}

/// A LINK_TIMEOUT is armed with the request it times and never issued on
/// its own; reached as a plain chain member it only ends.
pub(crate) fn issue_link_timeout(_ctx: &Ctx, _req: &mut Req, _mode: Mode) -> Issue {
    Issue::Done(-libc::ECANCELED, 0)
}

/// If `req`'s next request is a LINK_TIMEOUT, detaches it from the chain
/// (the chain goes on after it) and arms it for `req`.
pub(crate) fn arm_link_timeout(ctx: &Arc<Ctx>, req: &mut Req) {
    if req.link.as_ref().is_none_or(|l| l.opcode != abi::op::LINK_TIMEOUT) {
        return;
    }
    let Some(mut lt) = req.link.take() else { return };
    req.link = lt.link.take();
    let OpData::Timeout(t) = &lt.data else { return };
    let when = deadline(t.flags, t.sec, t.nsec, t.flags & abi::IORING_TIMEOUT_ABS != 0);
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let id = timer::arm(ctx, when, fire_link);
    req.ltimeout = Some(id);
    table.list.push(Pending { link_of: Some(req.user_data), key: id, timer: id, req: lt, target: None, repeats: 0, when });
}

/// Takes the armed LINK_TIMEOUT with `key` (None if it already fired).
pub(crate) fn take_link(ctx: &Ctx, key: u64) -> Option<Box<Req>> {
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let i = table.list.iter().position(|p| p.key == key && p.link_of.is_some())?;
    let p = table.list.swap_remove(i);
    timer::disarm(p.timer);
    Some(p.req)
}

/// A LINK_TIMEOUT expired: cancel the request it times. Its own CQE comes
/// first: -ETIME if the cancel worked, else the cancel's error.
fn fire_link(ctx: &Arc<Ctx>, id: u64) {
    let (lt, target) = {
        let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = table.list.iter().position(|p| p.timer == id && p.link_of.is_some()) else { return };
        let p = table.list.swap_remove(i);
        (p.req, p.link_of.unwrap_or(0))
    };
    let spec = super::cancel::Spec { flags: 0, user_data: target, fd: -1, opcode: 0 };
    let r = super::cancel::cancel_locked(ctx, &spec);
    super::super::submit::complete_elsewhere(ctx, lt, if r == 0 { -libc::ETIME } else { r });
    for (req, res) in ctx.take_remote_tw() {
        super::super::submit::complete_elsewhere(ctx, req, res);
    }
}

#[inline(always)]
pub(crate) fn prep_timeout(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr3() != 0 || sqe.pad2() != 0 || sqe.buf_index() != 0 || sqe.len() != 1 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.op_flags();
    let allowed = abi::IORING_TIMEOUT_ABS
        | abi::IORING_TIMEOUT_CLOCK_MASK
        | abi::IORING_TIMEOUT_ETIME_SUCCESS
        | abi::IORING_TIMEOUT_MULTISHOT;
    if flags & !allowed != 0 || !one_clock(flags) {
        return Err(Errno(libc::EINVAL));
    }
    let both = abi::IORING_TIMEOUT_MULTISHOT | abi::IORING_TIMEOUT_ABS;
    if flags & both == both {
        return Err(Errno(libc::EINVAL));
    }
    let (sec, nsec) = read_ts(sqe.addr())?;
    Ok(OpData::Timeout(Timeout { sec, nsec, flags, off: sqe.off() as u32 }))
}

#[inline(always)]
pub(crate) fn prep_timeout_remove(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.addr3() != 0 || sqe.pad2() != 0 || sqe.buf_index() != 0 || sqe.len() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.op_flags();
    let mut rem = TimeoutRemove { target: sqe.addr(), update: None, link: false };
    if flags & abi::IORING_TIMEOUT_UPDATE_MASK != 0 {
        if !one_clock(flags) || flags & !(abi::IORING_TIMEOUT_UPDATE_MASK | abi::IORING_TIMEOUT_ABS) != 0 {
            return Err(Errno(libc::EINVAL));
        }
        rem.link = flags & abi::IORING_LINK_TIMEOUT_UPDATE != 0;
        // addr2 shares its bytes with `off`.
        let (sec, nsec) = read_ts(sqe.off())?;
        rem.update = Some((sec, nsec, flags & abi::IORING_TIMEOUT_ABS != 0));
    } else if flags != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::TimeoutRemove(rem))
}

/// TIMEOUT never completes at issue: it is parked in the ring's table.
pub(crate) fn issue_timeout(_ctx: &Ctx, _req: &mut Req, _mode: Mode) -> Issue {
    Issue::Park
}

/// Monotonic deadline for `(sec, nsec)` on the timeout's clock.
fn deadline(flags: u32, sec: i64, nsec: i64, abs: bool) -> u64 {
    let t = (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
    let now = timer::mono_ns();
    if !abs {
        return now.saturating_add(t);
    }
    let clock = match flags & abi::IORING_TIMEOUT_CLOCK_MASK {
        abi::IORING_TIMEOUT_BOOTTIME => libc::CLOCK_BOOTTIME,
        abi::IORING_TIMEOUT_REALTIME => libc::CLOCK_REALTIME,
        _ => libc::CLOCK_MONOTONIC,
    };
    let clock_now = timer::clock_ns(clock);
    now.saturating_add(t.saturating_sub(clock_now))
}

/// Arms a TIMEOUT request (the kernel's `io_timeout`).
pub(crate) fn arm(ctx: &Arc<Ctx>, req: Box<Req>) {
    let OpData::Timeout(t) = &req.data else { return };
    let multishot = t.flags & abi::IORING_TIMEOUT_MULTISHOT != 0;
    let target = (t.off != 0 && !multishot).then(|| (ctx.completion_seq(), t.off));
    let repeats = if multishot { t.off } else { 0 };
    let when = deadline(t.flags, t.sec, t.nsec, t.flags & abi::IORING_TIMEOUT_ABS != 0);
    if target.is_some() {
        ctx.seq_timeouts.store(true, Ordering::Release);
    }
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let id = timer::arm(ctx, when, fire);
    table.list.push(Pending { link_of: None, key: id, timer: id, req, target, repeats, when });
}

/// The timer of generation `id` fired.
fn fire(ctx: &Arc<Ctx>, id: u64) {
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let Some(i) = table.list.iter().position(|p| p.timer == id && p.link_of.is_none()) else { return };
    ctx.cq_timeouts.fetch_add(1, Ordering::AcqRel);
    let p = &mut table.list[i];
    let OpData::Timeout(t) = &p.req.data else { return };
    if t.flags & abi::IORING_TIMEOUT_MULTISHOT != 0 {
        let again = t.off == 0 || {
            p.repeats -= 1;
            p.repeats > 0
        };
        // A full CQ ring ends it: the final -ETIME below (as the kernel's
        // io_timeout_complete when io_req_post_cqe fails).
        if again && ctx.cq_has_room() {
            let (ud, when) = (p.req.user_data, deadline(t.flags, t.sec, t.nsec, false));
            let next = timer::arm(ctx, when, fire);
            p.timer = next;
            drop(table);
            let cqe = super::super::Cqe::new(ud, -libc::ETIME, abi::IORING_CQE_F_MORE);
            ctx.post_if_armed(cqe, || {
                ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner()).list.iter().any(|p| p.timer == next)
            });
            return;
        }
    }
    let p = table.list.swap_remove(i);
    drop(table);
    super::super::submit::complete_elsewhere(ctx, p.req, -libc::ETIME);
}

/// Completes sequence timeouts whose count has been reached (the kernel's
/// `io_flush_timeouts`); called after CQEs are posted.
pub(crate) fn flush_seq(ctx: &Arc<Ctx>) {
    let seq = ctx.completion_seq();
    let mut done = Vec::new();
    {
        let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
        let mut i = 0;
        while i < table.list.len() {
            // Events since arming against events needed, both unsigned (the
            // kernel's io_flush_timeouts): a count of 2^32-1 is never reached.
            let reached = table.list[i].target.is_some_and(|(armed, off)| seq.wrapping_sub(armed) >= off);
            if reached {
                let p = table.list.swap_remove(i);
                timer::disarm(p.timer);
                ctx.cq_timeouts.fetch_add(1, Ordering::AcqRel);
                done.push(p.req);
            } else {
                i += 1;
            }
        }
    }
    for req in done {
        super::super::submit::complete_elsewhere(ctx, req, 0);
    }
}

/// This process is leaving a ring it shares with others (it exits): its
/// plain timeouts (no count, not multishot, nothing linked after them) are
/// handed over to the ring's shared page, where another process posts their
/// `-ETIME` at the deadline, as the kernel's timer would (`shared::Orphan`).
/// Those that do not fit stay here (and are cancelled by the caller).
pub(crate) fn hand_over(ctx: &Ctx) {
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    table.list.retain(|p| {
        let OpData::Timeout(t) = &p.req.data else { return true };
        let plain =
            p.link_of.is_none() && p.target.is_none() && t.flags & abi::IORING_TIMEOUT_MULTISHOT == 0 && p.req.link.is_none();
        if plain && ctx.shm.adopt_orphan(p.req.user_data, p.when) {
            timer::disarm(p.timer);
            return false;
        }
        true
    });
}

/// Takes up to `max` pending timeouts that `spec` matches.
#[allow(clippy::vec_box)] // the boxes move on to the completion path unchanged
pub(crate) fn take_matching(ctx: &Ctx, spec: &super::cancel::Spec, max: usize) -> Vec<Box<Req>> {
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let mut i = 0;
    while i < table.list.len() && out.len() < max {
        if table.list[i].link_of.is_none() && spec.matches(&super::cancel::Ident::of(&table.list[i].req)) {
            let p = table.list.remove(i);
            timer::disarm(p.timer);
            out.push(p.req);
        } else {
            i += 1;
        }
    }
    out
}

/// TIMEOUT_REMOVE: removes (the target completes with -ECANCELED, after
/// this request's own CQE) or updates a pending timeout.
pub(crate) fn issue_timeout_remove(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::TimeoutRemove(rem) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let mut table = ctx.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    // TIMEOUT_REMOVE sees timeouts; LINK_TIMEOUT_UPDATE sees link timeouts.
    let Some(i) = table.list.iter().position(|p| p.req.user_data == rem.target && p.link_of.is_some() == rem.link)
    else {
        return Issue::Done(-libc::ENOENT, 0);
    };
    timer::disarm(table.list[i].timer);
    match rem.update {
        None => {
            let p = table.list.swap_remove(i);
            drop(table);
            ctx.defer_completion(p.req, -libc::ECANCELED);
        }
        Some((sec, nsec, abs)) => {
            let Some(arc) = ctx.self_arc() else { return Issue::Done(-libc::ENOENT, 0) };
            let p = &mut table.list[i];
            let OpData::Timeout(t) = &mut p.req.data else { return Issue::Done(-libc::EINVAL, 0) };
            t.sec = sec;
            t.nsec = nsec;
            p.target = None;
            let f: timer::Fire = if p.link_of.is_some() { fire_link } else { fire };
            p.when = deadline(t.flags, sec, nsec, abs);
            p.timer = timer::arm(&arc, p.when, f);
        }
    }
    Issue::Done(0, 0)
}
