//! ASYNC_CANCEL (the kernel's io_uring/cancel.c).
//!
//! A request can be found in four places: waiting in the worker queue
//! (removed, completes with -ECANCELED), running in a worker (-EALREADY:
//! workers only run blocking file I/O, which no signal would interrupt;
//! reads and writes on pollable files wait in the reactor instead, as the
//! kernel's io-wq arms poll for them), armed in the reactor, or armed as a
//! timeout (both removed, -ECANCELED). Victims post their CQEs after the
//! cancel request's own, as task work does on Linux.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{remote, wq, Ctx, Errno, Sqe};

/// The `IORING_ASYNC_CANCEL_*` flags the kernel defines.
const CANCEL_FLAGS: u32 = abi::IORING_ASYNC_CANCEL_ALL
    | abi::IORING_ASYNC_CANCEL_FD
    | abi::IORING_ASYNC_CANCEL_ANY
    | abi::IORING_ASYNC_CANCEL_FD_FIXED
    | abi::IORING_ASYNC_CANCEL_USERDATA
    | abi::IORING_ASYNC_CANCEL_OP;

/// What identifies the requests to cancel (the kernel's `io_cancel_data`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub flags: u32,
    pub user_data: u64,
    pub fd: i32,
    pub opcode: u8,
}

/// The parts of a request a cancel can match on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ident {
    pub user_data: u64,
    pub fd: i32,
    pub fixed: bool,
    pub opcode: u8,
}

impl Ident {
    /// True when both name the same request (user_data and opcode).
    pub fn same_request(&self, other: &Ident) -> bool {
        self.user_data == other.user_data && self.opcode == other.opcode
    }

    /// The identity of `req`.
    pub fn of(req: &Req) -> Ident {
        Ident {
            user_data: req.user_data,
            fd: req.fd,
            fixed: req.sqe_flags & abi::IOSQE_FIXED_FILE != 0,
            opcode: req.opcode,
        }
    }
}

impl Spec {
    /// The kernel's `io_cancel_req_match`.
    pub fn matches(&self, id: &Ident) -> bool {
        let f = self.flags;
        if f & abi::IORING_ASYNC_CANCEL_ANY != 0 {
            return true;
        }
        let by_ud = f & abi::IORING_ASYNC_CANCEL_USERDATA != 0
            || f & (abi::IORING_ASYNC_CANCEL_FD | abi::IORING_ASYNC_CANCEL_OP) == 0;
        if f & abi::IORING_ASYNC_CANCEL_FD != 0 {
            let fixed = f & abi::IORING_ASYNC_CANCEL_FD_FIXED != 0;
            if id.fd != self.fd || id.fixed != fixed {
                return false;
            }
        }
        if f & abi::IORING_ASYNC_CANCEL_OP != 0 && id.opcode != self.opcode {
            return false;
        }
        !(by_ud && id.user_data != self.user_data)
    }
    /// ALL or ANY: cancel every match and return the count.
    pub fn all(&self) -> bool {
        self.flags & (abi::IORING_ASYNC_CANCEL_ALL | abi::IORING_ASYNC_CANCEL_ANY) != 0
    }
}

#[inline(always)]
pub(crate) fn prep_cancel(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.off() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.op_flags();
    if flags & !CANCEL_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let any = flags & abi::IORING_ASYNC_CANCEL_ANY != 0;
    if any && flags & (abi::IORING_ASYNC_CANCEL_FD | abi::IORING_ASYNC_CANCEL_OP) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let fixed = sqe.flags() & abi::IOSQE_FIXED_FILE != 0;
    Ok(OpData::Cancel(Spec {
        flags: if fixed { flags | abi::IORING_ASYNC_CANCEL_FD_FIXED } else { flags },
        user_data: sqe.addr(),
        fd: sqe.fd(),
        opcode: sqe.len() as u8,
    }))
}

/// [`cancel`] from outside a submit call: takes the submit lock, which
/// every cancel holds (see `Ctx::post_if_armed`).
pub(crate) fn cancel_locked(ctx: &Ctx, spec: &Spec) -> i32 {
    let _st = ctx.lock_submit();
    cancel(ctx, spec)
}

/// Cancels what `spec` names on `ctx`. Returns the count for ALL/ANY,
/// else 0, -EALREADY or -ENOENT. The caller holds the submit lock.
pub(crate) fn cancel(ctx: &Ctx, spec: &Spec) -> i32 {
    let all = spec.all();
    let mut victims: Vec<Box<Req>> = Vec::new();
    let mut running = 0usize;
    // The worker queue and the running work, then the reactor, then
    // timeouts (not for FD matches: timeouts have no file), as
    // io_try_cancel orders them. A request moves from the queue to a worker
    // (under the pool's lock) and from a worker to the reactor (armed
    // before the worker stops counting it as running), so looking at each
    // place in that order cannot miss one on its way.
    victims.extend(wq::cancel_queued(ctx, spec, all));
    if all || victims.is_empty() {
        running = wq::interrupt_running(ctx, spec, all);
    }
    if all || victims.is_empty() && running == 0 {
        victims.extend(super::poll::take_matching(ctx, spec, if all { usize::MAX } else { 1 }));
    }
    // Passing through a retry: marked, completed by the retry.
    let mut retrying = 0;
    if all || victims.is_empty() && running == 0 {
        retrying = super::poll::cancel_retrying(ctx, spec, if all { usize::MAX } else { 1 });
    }
    if (all || victims.is_empty() && running == 0 && retrying == 0) && spec.flags & abi::IORING_ASYNC_CANCEL_FD == 0 {
        victims.extend(super::timeout::take_matching(ctx, spec, if all { usize::MAX } else { 1 }));
    }
    let found = victims.len() + retrying;
    for v in victims {
        ctx.defer_completion(v, -libc::ECANCELED);
    }
    if all {
        (found + running) as i32
    } else if found > 0 {
        0
    } else if running > 0 {
        -libc::EALREADY
    } else {
        -libc::ENOENT
    }
}

/// IORING_REGISTER_SYNC_CANCEL (the kernel's `io_sync_cancel`): cancels,
/// and if the match is running in a worker, waits for it to finish, until
/// the timeout in the request (`-1, -1`: none) passes (ETIME).
pub(crate) fn sync_cancel(ctx: &std::sync::Arc<Ctx>, arg: u64) -> Result<i32, Errno> {
    // SAFETY: io_uring_sync_cancel_reg is plain data.
    let sc: abi::io_uring_sync_cancel_reg = unsafe { crate::engine::uaccess::read_pod(arg)? };
    if sc.pad.iter().any(|&b| b != 0) || sc.pad2.iter().any(|&w| w != 0) {
        return Err(Errno(libc::EINVAL));
    }
    if sc.flags & !CANCEL_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let spec = Spec { flags: sc.flags, user_data: sc.addr, fd: sc.fd, opcode: sc.opcode };
    let by_fd = sc.flags & abi::IORING_ASYNC_CANCEL_FD != 0 && sc.flags & abi::IORING_ASYNC_CANCEL_FD_FIXED == 0;
    if by_fd && !crate::sys::fd_open(sc.fd) {
        return Err(Errno(libc::EBADF));
    }
    let run = |ctx: &std::sync::Arc<Ctx>| {
        let r = cancel_locked(ctx, &spec);
        for (req, res) in ctx.take_remote_tw() {
            crate::engine::submit::complete_elsewhere(ctx, req, res);
        }
        r
    };
    let done = |r: i32| if r < 0 { Err(Errno(-r)) } else { Ok(r) };
    let r = run(ctx);
    if r != -libc::EALREADY {
        return done(r);
    }
    let forever = sc.timeout.tv_sec == -1 && sc.timeout.tv_nsec == -1;
    let deadline = (!forever).then(|| {
        std::time::Instant::now()
            + std::time::Duration::new(sc.timeout.tv_sec.max(0) as u64, sc.timeout.tv_nsec.clamp(0, 999_999_999) as u32)
    });
    loop {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(Errno(libc::ETIME));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
        let r = run(ctx);
        if r != -libc::EALREADY {
            return done(if r == -libc::ENOENT || r > 0 { 0 } else { r });
        }
    }
}

/// Issues ASYNC_CANCEL. On a ring other processes share, a cancel that
/// must look beyond this process's requests (nothing found here, or ALL/ANY)
/// goes to a worker, which asks the others (`remote.rs`).
pub(crate) fn issue_cancel(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    let OpData::Cancel(spec) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let others = remote::has_others(ctx);
    match mode {
        Mode::NonBlock if others && spec.all() => Issue::Punt,
        Mode::NonBlock => match cancel(ctx, spec) {
            r if r == -libc::ENOENT && others => Issue::Punt,
            r => Issue::Done(r, 0),
        },
        Mode::Block => {
            let here = cancel_locked(ctx, spec);
            if !others || (!spec.all() && here != -libc::ENOENT) {
                return Issue::Done(here, 0);
            }
            let there = remote::cancel_elsewhere(ctx, spec);
            Issue::Done(if spec.all() { here + there } else { there }, 0)
        }
    }
}
