//! POLL_ADD, POLL_REMOVE, and readiness retry for reads and writes
//! (the kernel's io_uring/poll.c, including its "fast poll").
//!
//! A one-shot POLL_ADD that is ready at once completes inline, like the
//! kernel's first `vfs_poll`; otherwise it is armed in the process's reactor
//! ([`crate::engine::reactor`]). A multishot poll stays armed and posts each
//! readiness with `IORING_CQE_F_MORE`. A read or write on a pollable file
//! (pipe, socket, eventfd...) that answers EAGAIN is armed the same way and
//! retried when the file is ready, so no thread ever blocks on such a file.
//!
//! Each ring's armed polls live in its [`Table`], which owns their requests.

use crate::abi;
use crate::engine::opdef::{self, Issue, Mode, OpData, Req};
use crate::engine::{reactor, register, submit, Ctx, Errno, Sqe};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Bits the kernel always polls for (`IO_POLL_UNMASK`).
const UNMASK: u32 = (libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 | libc::POLLNVAL as u32;

/// A prepared POLL_ADD.
pub(crate) struct PollAdd {
    /// The 16 poll bits asked for.
    events: u32,
    multishot: bool,
    level: bool,
}

/// A prepared POLL_REMOVE (or update).
pub(crate) struct PollRemove {
    target: u64,
    events: Option<u32>,
    user_data: Option<u64>,
}

enum Kind {
    Poll,
    /// A read or write waiting to be retried.
    Retry,
}

struct Armed {
    req: Box<Req>,
    /// Our duplicate of the polled fd, registered in the reactor.
    fd: OwnedFd,
    /// EPOLL* bits registered.
    events: u32,
    kind: Kind,
    /// `fd` is in the ring's epoll instance (a harvester may have taken it
    /// out to watch it directly; see `direct_watch`).
    registered: bool,
}

/// A ring's armed polls, by reactor key.
#[derive(Default)]
pub(crate) struct Table {
    armed: HashMap<u64, Armed>,
    /// Reads and writes taken out of `armed` to be retried (their file
    /// became ready), by their old key: what a cancel matches on, and
    /// whether one came meanwhile. Kept until the retry has completed the
    /// request or armed it again (under this table's lock), so a cancel
    /// never misses a request that is only passing through a retry.
    retrying: HashMap<u64, (super::cancel::Ident, bool)>,
}

std::thread_local! {
    /// The old key of the retry this thread is arming again (0: none); see
    /// [`arm_key`].
    static REARMING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
pub(crate) fn prep_poll_add(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.off() != 0 || sqe.addr() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.len();
    if flags & !(abi::IORING_POLL_ADD_MULTI | abi::IORING_POLL_ADD_LEVEL) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let multishot = flags & abi::IORING_POLL_ADD_MULTI != 0;
    if multishot && sqe.flags() & abi::IOSQE_CQE_SKIP_SUCCESS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    // The whole 32-bit `poll32_events` is read (IORING_FEAT_POLL_32BITS);
    // as in the kernel's demangle_poll, the 16 poll bits are what is
    // waited for (EPOLLEXCLUSIVE has no meaning for one waiter per file).
    Ok(OpData::PollAdd(PollAdd {
        events: sqe.op_flags() & 0xffff,
        multishot,
        level: flags & abi::IORING_POLL_ADD_LEVEL != 0,
    }))
}

#[inline(always)]
pub(crate) fn prep_poll_remove(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.len();
    let known = abi::IORING_POLL_UPDATE_EVENTS | abi::IORING_POLL_UPDATE_USER_DATA | abi::IORING_POLL_ADD_MULTI;
    if flags & !known != 0 || flags == abi::IORING_POLL_ADD_MULTI {
        return Err(Errno(libc::EINVAL));
    }
    let update_ud = flags & abi::IORING_POLL_UPDATE_USER_DATA != 0;
    if !update_ud && sqe.off() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let events = if flags & abi::IORING_POLL_UPDATE_EVENTS != 0 {
        Some(sqe.op_flags() & 0xffff)
    } else if sqe.op_flags() != 0 {
        return Err(Errno(libc::EINVAL));
    } else {
        None
    };
    Ok(OpData::PollRemove(PollRemove { target: sqe.addr(), events, user_data: update_ud.then(|| sqe.off()) }))
}

/// Readiness of `fd` for `events` right now (poll bits; 0 if none).
pub(crate) fn poll_now(fd: i32, events: u32) -> u32 {
    let mut p = libc::pollfd { fd, events: (events | UNMASK) as i16, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n == 1 {
        p.revents as u16 as u32 & (events | UNMASK)
    } else {
        0
    }
}

pub(crate) fn issue_poll_add(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::PollAdd(p) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    if !p.multishot {
        let mut mask = poll_now(req.file.raw(), p.events);
        if mask & libc::POLLNVAL as u32 != 0 {
            // POLLNVAL: no such file (the kernel fails the lookup).
            return Issue::Done(-libc::EBADF, 0);
        }
        // A ring's memfd always polls ready; the ring itself may not be.
        if mask != 0 {
            if let Some(ring) = ring_of(req.file.raw()) {
                mask = ring_mask(&ring, p.events);
            }
        }
        if mask != 0 {
            return Issue::Done(mask as i32, 0);
        }
    }
    Issue::Park
}

/// The ring `fd` refers to, if it is a ringport ring.
fn ring_of(fd: i32) -> Option<Arc<Ctx>> {
    crate::engine::registry::lookup(fd).ok()
}

/// A ring's readiness, as the kernel's `io_uring_poll` reports it: readable
/// while CQEs wait, writable while the SQ has room.
fn ring_mask(ring: &Ctx, events: u32) -> u32 {
    use std::sync::atomic::Ordering;
    let mut mask = 0;
    if ring.cq_ready() > 0 || ring.has_task_work() || ring.has_backlog.load(Ordering::Acquire) {
        mask |= (libc::POLLIN | libc::POLLRDNORM) as u32;
    }
    let queued = ring.rings.sq_tail().load(Ordering::Acquire).wrapping_sub(ring.rings.sq_head().load(Ordering::Acquire));
    if queued < ring.rings.geo.sq_entries {
        mask |= (libc::POLLOUT | libc::POLLWRNORM) as u32;
    }
    mask & (events | UNMASK)
}

fn arm_key(ctx: &Arc<Ctx>, req: Box<Req>, events: u32, kind: Kind) -> Result<(), (Box<Req>, Errno)> {
    let mut raw = req.file.raw();
    if matches!(kind, Kind::Poll) {
        // A ring is watched through its readiness eventfd, readable while
        // CQEs wait and written on every post (drained first if stale).
        if let Some(ring) = ring_of(raw) {
            ring.settle_ready();
            raw = match ring.ready_eventfd() {
                Ok(fd) => fd,
                Err(e) => return Err((req, e)),
            };
        }
    }
    let fd = match register::dup_private(raw) {
        Ok(fd) => fd,
        Err(e) => return Err((req, e)),
    };
    let key = reactor::new_key();
    crate::chaos::point();
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let old = REARMING.with(|k| k.replace(0));
    if old != 0 && table.retrying.remove(&old).is_some_and(|(_, cancelled)| cancelled) {
        return Err((req, Errno(libc::ECANCELED)));
    }
    if let Err(e) = reactor::add(ctx, key, fd.as_raw_fd(), events, ready) {
        return Err((req, e));
    }
    table.armed.insert(key, Armed { req, fd, events, kind, registered: true });
    Ok(())
}

/// Arms a POLL_ADD request.
pub(crate) fn arm(ctx: &Arc<Ctx>, req: Box<Req>) {
    let OpData::PollAdd(p) = &req.data else { return };
    let mut events = p.events | UNMASK;
    if !p.multishot {
        events |= libc::EPOLLONESHOT as u32;
    }
    if !p.level {
        events |= libc::EPOLLET as u32;
    }
    if let Err((req, mut e)) = arm_key(ctx, req, events, Kind::Poll) {
        if e.0 == libc::EPERM {
            // A file without a poll method (epoll refuses it): the kernel's
            // poll finds no wait queue to join and answers EINVAL.
            e = Errno(libc::EINVAL);
        }
        submit::complete_elsewhere(ctx, req, e.neg());
    }
}

/// Arms a read or write that hit EAGAIN, to retry it when ready.
pub(crate) fn arm_retry(ctx: &Arc<Ctx>, req: Box<Req>, write: bool) {
    let want = if write { libc::EPOLLOUT } else { libc::EPOLLIN } as u32;
    if let Err((req, e)) = arm_key(ctx, req, want | UNMASK | libc::EPOLLONESHOT as u32, Kind::Retry) {
        submit::complete_elsewhere(ctx, req, e.neg());
    }
}

/// The reactor reports `revents` on `key`.
fn ready(ctx: &Arc<Ctx>, key: u64, revents: u32) {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let Some(a) = table.armed.get(&key) else { return };
    let mask = revents & a.events & (0xffff | UNMASK);
    let multishot = matches!((&a.kind, &a.req.data), (Kind::Poll, OpData::PollAdd(p)) if p.multishot);
    // With the CQ ring full, a multishot poll ends here: this mask is its
    // final CQE (the kernel's io_poll_check_events when io_req_post_cqe
    // fails).
    if multishot && ctx.cq_has_room() {
        let ud = a.req.user_data;
        drop(table);
        let cqe = crate::engine::Cqe::new(ud, mask as i32, abi::IORING_CQE_F_MORE);
        ctx.post_if_armed(cqe, || ctx.polls.lock().unwrap_or_else(|e| e.into_inner()).armed.contains_key(&key));
        return;
    }
    let Some(a) = table.armed.remove(&key) else { return };
    if matches!(a.kind, Kind::Retry) {
        table.retrying.insert(key, (super::cancel::Ident::of(&a.req), false));
    }
    drop(table);
    crate::chaos::point();
    // The registration was one-shot: it cannot fire again, so it is taken
    // down after the completion. (Left in place, disabled, it would stay on
    // the file's wait queue and slow every later wake-up and EPOLL_CTL_ADD.)
    let (fd, registered) = (a.fd, a.registered);
    match a.kind {
        Kind::Poll => submit::complete_elsewhere(ctx, a.req, mask as i32),
        Kind::Retry => retry(ctx, key, a.req),
    }
    reactor::remove(ctx, key, fd.as_raw_fd(), registered);
    drop(fd);
}

/// Retries a read or write (armed under `key`) now that its file is ready.
/// A cancel that matched it meanwhile (see [`Table::retrying`]) is
/// honoured before the call, or after it if the request would wait again:
/// -ECANCELED, as the kernel's poll, still hashed for cancellation, is
/// cancelled before its retry. (A cancel that lands during the call itself
/// answers 0 while the request completes with its result, which the kernel
/// shows only when the cancel comes from another task.)
fn retry(ctx: &Arc<Ctx>, key: u64, mut req: Box<Req>) {
    let cancelled = ctx.polls.lock().unwrap_or_else(|e| e.into_inner()).retrying.get(&key).is_some_and(|e| e.1);
    if cancelled {
        end_retry(ctx, key);
        submit::complete_elsewhere(ctx, req, -libc::ECANCELED);
        return;
    }
    let outcome = opdef::issue(ctx, &mut req, Mode::NonBlock);
    if let Issue::Park = outcome {
        // Armed again under the table's lock, which also looks at (and
        // ends) the retry's entry; a park that does not arm a poll (Linux
        // AIO) leaves it to the check below.
        REARMING.with(|k| k.set(key));
        opdef::park(ctx, req);
        if REARMING.with(|k| k.replace(0)) != 0 {
            end_retry(ctx, key);
        }
        return;
    }
    let cancelled = end_retry(ctx, key);
    match outcome {
        Issue::Done(res, _) => submit::complete_elsewhere(ctx, req, res),
        Issue::Punt if cancelled => submit::complete_elsewhere(ctx, req, -libc::ECANCELED),
        _ => crate::engine::wq::punt(ctx.clone(), req),
    }
}

/// Ends a retry's entry; true when a cancel came during it.
fn end_retry(ctx: &Ctx, key: u64) -> bool {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    table.retrying.remove(&key).is_some_and(|(_, cancelled)| cancelled)
}

/// Marks up to `max` requests that `spec` matches and that are being
/// retried as cancelled (their retry completes them). Returns how many.
pub(crate) fn cancel_retrying(ctx: &Ctx, spec: &super::cancel::Spec, max: usize) -> usize {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let mut n = 0;
    for (id, cancelled) in table.retrying.values_mut() {
        if n == max {
            break;
        }
        if !*cancelled && spec.matches(id) {
            *cancelled = true;
            n += 1;
        }
    }
    n
}

/// Fills `out` with the ring's armed registrations if there are few enough
/// and every one is one-shot (a harvester may then `ppoll` them itself);
/// returns how many, or None.
pub(crate) fn direct_watch(ctx: &Ctx, out: &mut [reactor::Direct; reactor::MAX_DIRECT]) -> Option<usize> {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    if table.armed.is_empty() || table.armed.len() > out.len() {
        return None;
    }
    if table.armed.values().any(|a| a.events & libc::EPOLLONESHOT as u32 == 0) {
        return None;
    }
    // Out of the epoll instance while watched directly: completing them then
    // costs no EPOLL_CTL_DEL after the wake-up. The last harvester to leave
    // puts back what is still armed (RingPoller::leave).
    for (slot, (&key, a)) in out.iter_mut().zip(table.armed.iter_mut()) {
        if a.registered && reactor::unregister(ctx, a.fd.as_raw_fd()) {
            a.registered = false;
        }
        *slot = reactor::Direct { fd: a.fd.as_raw_fd(), key, events: a.events & (0xffff | UNMASK) };
    }
    Some(table.armed.len())
}

/// Puts every armed poll a harvester took out back into the ring's epoll
/// instance (the last harvester leaving). One that cannot be put back
/// completes with the error rather than wait unwatched.
pub(crate) fn reregister_all(ctx: &Ctx) {
    let mut failed = Vec::new();
    {
        let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
        for (&key, a) in table.armed.iter_mut().filter(|(_, a)| !a.registered) {
            match reactor::reregister(ctx, key, a.fd.as_raw_fd(), a.events) {
                Ok(()) => a.registered = true,
                Err(e) => failed.push((key, e)),
            }
        }
        for (key, _) in &failed {
            if let Some(a) = table.armed.get_mut(key) {
                // Marked registered so that taking it out skips the DEL.
                a.registered = false;
            }
        }
    }
    let Some(me) = ctx.self_arc() else { return };
    for (key, e) in failed {
        let taken = ctx.polls.lock().unwrap_or_else(|e| e.into_inner()).armed.remove(&key);
        if let Some(a) = taken {
            reactor::remove(ctx, key, a.fd.as_raw_fd(), false);
            submit::complete_elsewhere(&me, a.req, e.neg());
        }
    }
}

/// Takes up to `max` armed requests (polls and waiting reads/writes) that
/// `spec` matches out of the reactor.
#[allow(clippy::vec_box)] // the boxes move on to the completion path unchanged
pub(crate) fn take_matching(ctx: &Ctx, spec: &super::cancel::Spec, max: usize) -> Vec<Box<Req>> {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let keys: Vec<u64> = table
        .armed
        .iter()
        .filter(|(_, a)| spec.matches(&super::cancel::Ident::of(&a.req)))
        .map(|(k, _)| *k)
        .take(max)
        .collect();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(a) = table.armed.remove(&key) {
            reactor::remove(ctx, key, a.fd.as_raw_fd(), a.registered);
            out.push(a.req);
        }
    }
    out
}

/// Takes an armed request out of the reactor, if `user_data` names one.
/// Only POLL_ADD requests match unless `any_kind`.
pub(crate) fn take(ctx: &Ctx, user_data: u64, any_kind: bool) -> Option<Box<Req>> {
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let key = table
        .armed
        .iter()
        .find(|(_, a)| a.req.user_data == user_data && (any_kind || matches!(a.kind, Kind::Poll)))
        .map(|(k, _)| *k)?;
    let a = table.armed.remove(&key)?;
    drop(table);
    reactor::remove(ctx, key, a.fd.as_raw_fd(), a.registered);
    Some(a.req)
}

pub(crate) fn issue_poll_remove(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::PollRemove(rem) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    if rem.events.is_none() && rem.user_data.is_none() {
        return match take(ctx, rem.target, false) {
            Some(victim) => {
                ctx.defer_completion(victim, -libc::ECANCELED);
                Issue::Done(0, 0)
            }
            None => Issue::Done(-libc::ENOENT, 0),
        };
    }
    let mut table = ctx.polls.lock().unwrap_or_else(|e| e.into_inner());
    let Some((&key, a)) = table.armed.iter_mut().find(|(_, a)| a.req.user_data == rem.target && matches!(a.kind, Kind::Poll))
    else {
        return Issue::Done(-libc::ENOENT, 0);
    };
    if let Some(ud) = rem.user_data {
        a.req.user_data = ud;
    }
    if let Some(ev) = rem.events {
        a.events = (a.events & !0xffff) | ev;
        if let OpData::PollAdd(p) = &mut a.req.data {
            p.events = ev;
        }
        // (Unregistered, a harvester watches it with the new events, and
        // leaving puts it back with them.)
        if a.registered {
            if let Err(e) = reactor::modify(ctx, key, a.fd.as_raw_fd(), a.events) {
                return Issue::Done(e.neg(), 0);
            }
        }
    }
    Issue::Done(0, 0)
}
