//! Cancelling requests that another process sharing the ring submitted.
//!
//! On Linux a ring's requests belong to the ring: an ASYNC_CANCEL submitted
//! by a fork child finds a read its parent submitted (the kernel looks in
//! every task's io-wq), interrupts it if it is running (-EALREADY, the read
//! ends -EINTR) and removes it otherwise (0, the read ends -ECANCELED).
//! Here each process runs its own requests (`shared.rs`), so it is asked:
//!
//! - every process that uses a shared ring records its pid in the ring's
//!   shared page ([`Shm::join`]) and runs a service thread,
//!   `ringport-share`, that sleeps on the page's mail word;
//! - a cancel that finds nothing among its own process's requests (or that
//!   is ALL/ANY, which must look everywhere) is handed to a worker, which
//!   asks each other live process in turn ([`cancel_elsewhere`]): it writes
//!   the cancel into the mail, bumps the word, and waits for the answer; the
//!   target's service thread runs the same cancel on its own requests
//!   (posting their CQEs) and answers with its result;
//! - a process that does not answer within [`ANSWER_WAIT`] (stopped, or
//!   gone through a raw `exec`) counts as having nothing to cancel.
//!
//! The mail is one slot, used by one asker at a time (its owner word holds
//! the asker's pid, taken over from an asker that died or has held it for
//! a second). Each ask gets a ticket: the asker clears the ticket word,
//! writes the cancel, then publishes the ticket (a seqlock); a service
//! thread acts once per ticket addressed to it, and answers with the
//! ticket and the result in one word, so a late answer to an older ask is
//! never taken for the current one.
//!
//! [`Shm::join`]: super::shared::Shm::join

use super::ops::cancel::{cancel_locked, Spec};
use super::shared::{alive, futex, pid};
use super::timer::mono_ns as now_ns;
use super::Ctx;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an asker waits for the mail, and then for one process's answer.
const ANSWER_WAIT: Duration = Duration::from_millis(100);

/// Makes this process reachable for cancels from the other processes that
/// share `ctx`: records it in the shared page and starts its service thread
/// (once per ring and process).
pub(crate) fn serve(ctx: &Arc<Ctx>) {
    if ctx.serving.swap(true, Ordering::AcqRel) || !ctx.shm.join(pid()) {
        return;
    }
    let ctx2 = ctx.clone();
    let spawned = std::thread::Builder::new().name("ringport-share".into()).spawn(move || service(ctx2));
    if spawned.is_err() {
        ctx.shm.leave(pid());
    }
}

/// Wakes every process's service thread on `ctx` (a ring closes here).
pub(crate) fn kick(ctx: &Ctx) {
    futex(ctx.shm.mail.ticket.as_ptr(), libc::FUTEX_WAKE, i32::MAX as u32, core::ptr::null());
}

fn service(ctx: Arc<Ctx>) {
    super::wq::block_signals();
    let me = pid();
    let mail = &ctx.shm.mail;
    // A ticket stands only while its ask is open (the asker clears it when
    // done), so one already there when this thread starts is for it too
    // (a child may ask before its parent's service thread is up).
    let mut done = 0;
    while !ctx.closed.load(Ordering::Acquire) {
        let ticket = mail.ticket.load(Ordering::Acquire);
        if ticket != 0 && ticket != done && mail.target.load(Ordering::Acquire) == me {
            done = ticket;
            answer(&ctx, ticket);
            continue;
        }
        // Woken by a new ask or by a close; the timeout only bounds how
        // long a missed wake-up could go unnoticed.
        let one_s = libc::timespec { tv_sec: 1, tv_nsec: 0 };
        futex(mail.ticket.as_ptr(), libc::FUTEX_WAIT, ticket, &one_s);
    }
    ctx.shm.leave(me);
}

/// Runs the cancel of ask `ticket` on this process's requests and answers.
fn answer(ctx: &Arc<Ctx>, ticket: u32) {
    let m = &ctx.shm.mail;
    let spec = Spec {
        flags: m.flags.load(Ordering::Relaxed),
        user_data: m.user_data.load(Ordering::Relaxed),
        fd: m.fd.load(Ordering::Relaxed),
        opcode: m.opcode.load(Ordering::Relaxed) as u8,
    };
    // A seqlock read: the fields belong to `ticket` only if it still
    // stands (an asker clears it before it writes new ones).
    fence(Ordering::Acquire);
    if m.ticket.load(Ordering::Relaxed) != ticket {
        return;
    }
    let r = cancel_locked(ctx, &spec);
    for (req, res) in ctx.take_remote_tw() {
        super::submit::complete_elsewhere(ctx, req, res);
    }
    m.answer.store((ticket as u64) << 32 | r as u32 as u64, Ordering::Release);
    m.answered.store(ticket, Ordering::Release);
    futex(m.answered.as_ptr(), libc::FUTEX_WAKE, i32::MAX as u32, core::ptr::null());
}

/// True when other processes that might hold requests share `ctx`.
#[inline]
pub(crate) fn has_others(ctx: &Ctx) -> bool {
    ctx.shm.is_inherited() && ctx.shm.others(pid()).next().is_some()
}

/// Asks the other processes sharing `ctx` to cancel what `spec` names.
/// Returns the count for ALL/ANY, else 0, -EALREADY or -ENOENT, as
/// [`super::ops::cancel::cancel`] does for one process. Blocks for the
/// answers: called from a worker, holding no lock.
pub(crate) fn cancel_elsewhere(ctx: &Ctx, spec: &Spec) -> i32 {
    let me = pid();
    let all = spec.all();
    let others: Vec<i32> = ctx.shm.others(me).collect();
    let mut count = 0;
    for p in others {
        if !alive(p) {
            continue;
        }
        match ask(ctx, me, p, spec) {
            Some(r) if all => count += r.max(0),
            Some(r) if r == 0 || r == -libc::EALREADY => return r,
            _ => {}
        }
    }
    if all {
        count
    } else {
        -libc::ENOENT
    }
}

/// How long an owner may hold the mail before another asker takes it.
const OWNER_STALE_NS: u64 = 1_000_000_000;

/// One question to process `target`; None if it did not answer in time.
fn ask(ctx: &Ctx, me: i32, target: i32, spec: &Spec) -> Option<i32> {
    let m = &ctx.shm.mail;
    let until = Instant::now() + ANSWER_WAIT;
    loop {
        let cur = m.owner.load(Ordering::Acquire);
        let stale = cur != 0 && now_ns().saturating_sub(m.owner_since.load(Ordering::Acquire)) > OWNER_STALE_NS;
        let free = cur == 0 || (cur != me && (!alive(cur) || stale));
        if free && m.owner.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            m.owner_since.store(now_ns(), Ordering::Release);
            break;
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut ticket = m.seq.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
    if ticket == 0 {
        ticket = m.seq.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
    }
    // Seqlock write: no ticket while the fields change.
    m.ticket.store(0, Ordering::Relaxed);
    fence(Ordering::Release);
    m.target.store(target, Ordering::Relaxed);
    m.flags.store(spec.flags, Ordering::Relaxed);
    m.user_data.store(spec.user_data, Ordering::Relaxed);
    m.fd.store(spec.fd, Ordering::Relaxed);
    m.opcode.store(spec.opcode as u32, Ordering::Relaxed);
    m.ticket.store(ticket, Ordering::Release);
    futex(m.ticket.as_ptr(), libc::FUTEX_WAKE, i32::MAX as u32, core::ptr::null());
    let until = Instant::now() + ANSWER_WAIT;
    let answer = loop {
        let a = m.answered.load(Ordering::Acquire);
        let packed = m.answer.load(Ordering::Acquire);
        if (packed >> 32) as u32 == ticket {
            break Some(packed as u32 as i32);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        let ts = libc::timespec { tv_sec: 0, tv_nsec: left.as_nanos() as i64 };
        futex(m.answered.as_ptr(), libc::FUTEX_WAIT, a, &ts);
    };
    // Closed (or withdrawn, unanswered): a late service thread finds the
    // ticket gone.
    let _ = m.ticket.compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Relaxed);
    m.owner.store(0, Ordering::Release);
    answer
}
