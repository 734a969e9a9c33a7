//! The readiness reactor: one epoll instance and one thread for the whole
//! process, serving every ring's armed polls.
//!
//! An armed poll registers a private duplicate of the program's fd (epoll
//! keys a registration on the fd *and* the open file, so one fd can be
//! polled by many requests this way, and the poll keeps the file alive as
//! the kernel's poll does). Registrations are removed with EPOLL_CTL_DEL
//! before the duplicate is closed: closing alone would leave it armed while
//! the program's own fd keeps the file open.

use super::Ctx;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// What a ready registration calls: the ring, the key, and the events.
pub(crate) type Ready = fn(&Arc<Ctx>, u64, u32);

/// Who a registration belongs to.
#[derive(Clone)]
enum Owner {
    /// A ring's armed request.
    Ring(Weak<Ctx>, Ready),
    /// A process-wide service (the AIO eventfd): key and events.
    Global(fn(u64, u32)),
}

/// The reactor: an epoll instance and the owners of its registrations.
pub(crate) struct Reactor {
    epfd: i32,
    owners: Mutex<HashMap<u64, Owner>>,
    started: AtomicBool,
}

/// The process's reactor (started afresh in a fork child).
pub(crate) static REACTOR: super::global::Global<Reactor> = super::global::Global::new(|| Reactor {
    // SAFETY: plain syscall; a failure leaves epfd < 0, checked on use.
    epfd: unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
    owners: Mutex::new(HashMap::new()),
    started: AtomicBool::new(false),
});
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn reactor() -> Option<&'static Reactor> {
    let r = REACTOR.get();
    if r.epfd < 0 {
        return None;
    }
    if !r.started.swap(true, Ordering::AcqRel) {
        let spawned = std::thread::Builder::new().name("ringport-poll".into()).spawn(move || run(r));
        if spawned.is_err() {
            r.started.store(false, Ordering::Release);
            return None;
        }
    }
    Some(r)
}

/// In a fork child: closes the epoll fd inherited from the parent (the
/// instance is shared with the parent; the child gets its own).
pub(crate) fn close_inherited() {
    if let Some(r) = REACTOR.peek() {
        if r.epfd >= 0 {
            // SAFETY: closing the child's copy of the inherited fd.
            unsafe { libc::close(r.epfd) };
        }
    }
}

/// A fresh registration key.
pub(crate) fn new_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// Registers `fd` (a private duplicate the caller owns) for `events`
/// (EPOLL* bits, including EPOLLONESHOT/EPOLLET as wanted) under `key`.
pub(crate) fn add(ctx: &Arc<Ctx>, key: u64, fd: i32, events: u32, ready: Ready) -> Result<(), super::Errno> {
    let r = reactor().ok_or(super::Errno(libc::ENOMEM))?;
    add_owner(r, key, fd, events, Owner::Ring(Arc::downgrade(ctx), ready))
}

/// Registers `fd` for a process-wide service: `ready(key, events)` runs on
/// readiness.
pub(crate) fn add_global(key: u64, fd: i32, events: u32, ready: fn(u64, u32)) -> Result<(), super::Errno> {
    let r = reactor().ok_or(super::Errno(libc::ENOMEM))?;
    add_owner(r, key, fd, events, Owner::Global(ready))
}

/// Removes a process-wide registration.
pub(crate) fn remove_global(key: u64, fd: i32) {
    remove(key, fd);
}

fn add_owner(r: &Reactor, key: u64, fd: i32, events: u32, owner: Owner) -> Result<(), super::Errno> {
    r.owners.lock().unwrap_or_else(|e| e.into_inner()).insert(key, owner);
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: ev is a valid epoll_event; fd and epfd are open.
    if unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        let e = super::Errno::last();
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        return Err(e);
    }
    Ok(())
}

/// Changes the events of a registration (re-enables a fired EPOLLONESHOT).
pub(crate) fn modify(key: u64, fd: i32, events: u32) -> Result<(), super::Errno> {
    let r = reactor().ok_or(super::Errno(libc::ENOMEM))?;
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: as in add.
    if unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_MOD, fd, &mut ev) } != 0 {
        return Err(super::Errno::last());
    }
    Ok(())
}

/// Removes a registration. The caller closes `fd` afterwards.
pub(crate) fn remove(key: u64, fd: i32) {
    if let Some(r) = reactor() {
        // SAFETY: EPOLL_CTL_DEL ignores the event argument.
        unsafe { libc::epoll_ctl(r.epfd, libc::EPOLL_CTL_DEL, fd, core::ptr::null_mut()) };
        r.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

fn run(r: &'static Reactor) {
    // SAFETY: blocking every signal on this thread only.
    unsafe {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), core::ptr::null_mut());
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: events has room for 64 entries.
        let n = unsafe { libc::epoll_wait(r.epfd, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue;
        }
        for ev in &events[..n as usize] {
            let (key, revents) = (ev.u64, ev.events);
            let owner = r.owners.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
            match owner {
                Some(Owner::Ring(ctx, ready)) => {
                    if let Some(ctx) = ctx.upgrade() {
                        ready(&ctx, key, revents);
                    }
                }
                Some(Owner::Global(ready)) => ready(key, revents),
                None => {}
            }
        }
    }
}
