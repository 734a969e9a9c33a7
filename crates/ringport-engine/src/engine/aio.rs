//! Asynchronous direct I/O through Linux AIO.
//!
//! The kernel's io_uring issues an O_DIRECT read or write and returns; the
//! device completes it later. From userspace, `preadv2` on an O_DIRECT file
//! blocks for the whole device round trip (RWF_NOWAIT never says EAGAIN
//! there), so without this every such request would hold a worker thread.
//! Linux AIO (`io_submit`) is the userspace interface that does the same as
//! the kernel's path: the request is queued to the device and completes on
//! an eventfd, which the reactor watches. One AIO context serves the whole
//! process (a fork child starts its own, see `engine/global.rs`).
//!
//! Where AIO is refused (no `io_setup`, a seccomp rule, a full context) the
//! request simply goes to a worker, as before: AIO is a faster path, never a
//! different result.

use super::global::Global;
use super::opdef::Req;
use super::{reactor, submit, Ctx};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Requests the AIO context can hold at once.
const MAX_EVENTS: u32 = 1024;

/// `struct io_event` from `<linux/aio_abi.h>` (neither linux-raw-sys nor
/// libc carries it): what `io_getevents` returns per completed iocb.
#[repr(C)]
#[derive(Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

const _: () = assert!(core::mem::size_of::<IoEvent>() == 32);

/// One request in flight: it, its iocb and its iovecs stay here until the
/// completion arrives.
struct InFlight {
    ring: Arc<Ctx>,
    req: Box<Req>,
    _iocb: Box<libc::iocb>,
}

// SAFETY: the iocb holds program addresses that only the kernel uses; the
// request is Send (see opdef::Req).
unsafe impl Send for InFlight {}

/// The process's AIO context.
pub(crate) struct Aio {
    ctx: libc::c_ulong,
    efd: OwnedFd,
    key: u64,
    inflight: Mutex<HashMap<u64, InFlight>>,
    next: AtomicU64,
}

/// The process's AIO service (None where AIO is unavailable).
pub(crate) static AIO: Global<Option<Aio>> = Global::new(start);

fn start() -> Option<Aio> {
    let mut ctx: libc::c_ulong = 0;
    // SAFETY: io_setup writes the new context id into ctx.
    if unsafe { libc::syscall(libc::SYS_io_setup, MAX_EVENTS, &mut ctx) } != 0 {
        return None;
    }
    // SAFETY: plain syscall; the result is checked.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        // SAFETY: destroying the context we just made.
        unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
        return None;
    }
    // SAFETY: raw is a fresh fd we own.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let key = reactor::new_key();
    let events = (libc::EPOLLIN | libc::EPOLLET) as u32;
    if reactor::add_global(key, efd.as_raw_fd(), events, on_ready).is_err() {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
        return None;
    }
    Some(Aio { ctx, efd, key, inflight: Mutex::new(HashMap::new()), next: AtomicU64::new(1) })
}

impl Drop for Aio {
    fn drop(&mut self) {
        // Only a context that lost the race to be published is dropped.
        reactor::remove_global(self.key, self.efd.as_raw_fd());
        // SAFETY: destroying our own context.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.ctx) };
    }
}

/// Starts `req` (an O_DIRECT read or write whose iocb `build` makes) through
/// AIO. Gives the request back if AIO cannot take it; the caller then hands
/// it to a worker.
pub(crate) fn submit(
    ring: &Arc<Ctx>,
    req: Box<Req>,
    build: impl FnOnce(&Req, u64, u32) -> Option<libc::iocb>,
) -> Result<(), Box<Req>> {
    let Some(aio) = AIO.get().as_ref() else { return Err(req) };
    let id = aio.next.fetch_add(1, Ordering::Relaxed);
    let Some(iocb) = build(&req, id, aio.efd.as_raw_fd() as u32) else { return Err(req) };
    let iocb = Box::new(iocb);
    let ptr: *const libc::iocb = &*iocb;
    let mut map = aio.inflight.lock().unwrap_or_else(|e| e.into_inner());
    map.insert(id, InFlight { ring: ring.clone(), req, _iocb: iocb });
    let mut list = [ptr];
    // SAFETY: one valid iocb, kept alive in the in-flight table until its
    // completion is reaped.
    let n = unsafe { libc::syscall(libc::SYS_io_submit, aio.ctx, 1 as libc::c_long, list.as_mut_ptr()) };
    if n != 1 {
        return Err(map.remove(&id).map(|f| f.req).expect("just inserted"));
    }
    Ok(())
}

/// The eventfd fired: reap finished iocbs and complete their requests.
fn on_ready(_key: u64, _revents: u32) {
    let Some(aio) = AIO.peek().and_then(|a| a.as_ref()) else { return };
    let mut count = 0u64;
    // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
    unsafe { libc::read(aio.efd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    let mut events = [IoEvent { data: 0, obj: 0, res: 0, res2: 0 }; 64];
    loop {
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: room for 64 events; a zero timeout never blocks.
        let n = unsafe {
            libc::syscall(libc::SYS_io_getevents, aio.ctx, 0 as libc::c_long, 64 as libc::c_long, events.as_mut_ptr(), &zero)
        };
        if n <= 0 {
            return;
        }
        for ev in &events[..n as usize] {
            let done = aio.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&ev.data);
            if let Some(f) = done {
                let res = ev.res.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                submit::complete_elsewhere(&f.ring, f.req, res);
            }
        }
        if (n as usize) < events.len() {
            return;
        }
    }
}
