//! `io_uring_enter`: submit, then wait (the kernel's `io_uring_enter`).

use super::wait::{now, ts_add, WaitArg};
use super::{submit, uaccess, Ctx, Errno};
use crate::abi;
use std::sync::Arc;

/// Every enter flag the ABI defines.
pub(crate) const KNOWN_FLAGS: u32 = abi::IORING_ENTER_GETEVENTS
    | abi::IORING_ENTER_SQ_WAKEUP
    | abi::IORING_ENTER_SQ_WAIT
    | abi::IORING_ENTER_EXT_ARG
    | abi::IORING_ENTER_REGISTERED_RING
    | abi::IORING_ENTER_ABS_TIMER
    | abi::IORING_ENTER_EXT_ARG_REG
    | abi::IORING_ENTER_NO_IOWAIT;

/// The enter call's last two arguments, not yet read from program memory.
/// The kernel reads them only when it waits, and reports their errors only
/// when nothing was submitted; so does ringport.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawArg {
    /// No argument.
    None,
    /// Without EXT_ARG: a signal mask pointer and its size.
    Sigset { ptr: u64, size: usize },
    /// With EXT_ARG: a `struct io_uring_getevents_arg` pointer and its size.
    Ext { ptr: u64, size: usize },
    /// From the Rust API: an already decoded wait.
    Decoded(WaitArg),
}

/// A signal mask the program passed: only `sizeof(sigset_t)` for the kernel
/// (8 bytes on Linux) is accepted.
fn read_sigmask(ptr: u64, size: usize) -> Result<Option<libc::sigset_t>, Errno> {
    if ptr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno(libc::EINVAL));
    }
    let mut bits = [0u8; 8];
    uaccess::copy_in(&mut bits, ptr)?;
    // SAFETY: sigemptyset initialises the set; then we copy in the kernel's
    // 64-bit mask, which is the first word of glibc's sigset_t.
    let mut set = unsafe {
        let mut s = core::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(s.as_mut_ptr());
        s.assume_init()
    };
    // SAFETY: sigset_t is at least 8 bytes; we overwrite its first 8.
    unsafe { core::ptr::copy_nonoverlapping(bits.as_ptr(), (&mut set as *mut libc::sigset_t).cast::<u8>(), 8) };
    Ok(Some(set))
}

/// Decodes the EXT_ARG block (the kernel's `io_get_ext_arg`): its errors
/// come before any wait. The sigmask is read later, only if a wait happens.
fn read_ext(flags: u32, ptr: u64, size: usize) -> Result<(WaitArg, u64, usize), Errno> {
    if flags & abi::IORING_ENTER_EXT_ARG_REG != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if size != core::mem::size_of::<abi::io_uring_getevents_arg>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_getevents_arg is plain data.
    let a: abi::io_uring_getevents_arg = unsafe { uaccess::read_pod(ptr)? };
    if a.min_wait_usec != 0 {
        // IORING_FEAT_MIN_TIMEOUT is not claimed.
        return Err(Errno(libc::EINVAL));
    }
    let mut w = WaitArg::default();
    if a.ts != 0 {
        // SAFETY: __kernel_timespec is plain data.
        let ts: abi::__kernel_timespec = unsafe { uaccess::read_pod(a.ts)? };
        w.deadline = Some(if flags & abi::IORING_ENTER_ABS_TIMER != 0 {
            ts_add(libc::timespec { tv_sec: 0, tv_nsec: 0 }, ts.tv_sec, ts.tv_nsec)
        } else {
            ts_add(now(), ts.tv_sec, ts.tv_nsec)
        });
    }
    Ok((w, a.sigmask, a.sigmask_sz as usize))
}

thread_local! {
    /// The ring whose enter call this thread is inside (0: none).
    static ENTERING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// True when the calling thread is inside an enter call on `ctx`: its
/// completions are the submitter's own (DEFER_TASKRUN posts them at once).
pub(crate) fn in_enter(ctx: &Ctx) -> bool {
    ENTERING.with(|e| e.get() == ctx as *const Ctx as usize)
}

/// Runs one enter call on `ctx`. `flags` were checked against KNOWN_FLAGS.
pub(crate) fn enter(ctx: &Arc<Ctx>, to_submit: u32, min_complete: u32, flags: u32, arg: RawArg) -> Result<i32, Errno> {
    use std::sync::atomic::Ordering;
    if !ctx.enabled.load(Ordering::Acquire) {
        return Err(Errno(libc::EBADFD));
    }
    ctx.settle_ready();
    let outer = ENTERING.with(|e| e.replace(Arc::as_ptr(ctx) as usize));
    let r = enter_inner(ctx, to_submit, min_complete, flags, arg);
    ENTERING.with(|e| e.set(outer));
    r
}

fn enter_inner(ctx: &Arc<Ctx>, to_submit: u32, min_complete: u32, flags: u32, arg: RawArg) -> Result<i32, Errno> {
    let mut ret = 0i32;
    if ctx.has(abi::IORING_SETUP_SQPOLL) {
        // The poller submits; enter only wakes it, or waits for SQ room.
        // In a fork child the poller is the parent's thread, which looks at
        // the SQ every slice by itself (see shared.rs).
        if flags & abi::IORING_ENTER_SQ_WAKEUP != 0 {
            match ctx.sqd.get() {
                Some(sqd) => sqd.wake(),
                None => ctx.check_sq_owner()?,
            }
        }
        if flags & abi::IORING_ENTER_SQ_WAIT != 0 {
            wait_sq_room(ctx);
        }
        ret = to_submit as i32;
    } else if to_submit > 0 {
        ctx.check_issuer()?;
        let n = submit::submit(ctx, to_submit)?;
        ret = n as i32;
        // As the kernel: a short submission returns at once, without waiting.
        if n != to_submit {
            return Ok(ret);
        }
    }
    if flags & abi::IORING_ENTER_GETEVENTS != 0 {
        // DEFER_TASKRUN work runs only in its submitter (io_allowed_run_tw).
        let r2 = if ctx.has(abi::IORING_SETUP_DEFER_TASKRUN) && ctx.check_issuer().is_err() {
            Err(Errno(libc::EEXIST))
        } else {
            wait(ctx, min_complete, flags, arg)
        };
        if ret == 0 {
            r2?;
        }
    }
    Ok(ret)
}

/// IORING_ENTER_SQ_WAIT: returns once the SQ is not full. The poller frees
/// slots within its busy window, so this sleeps in short steps.
fn wait_sq_room(ctx: &Ctx) {
    use std::sync::atomic::Ordering;
    let entries = ctx.rings.geo.sq_entries;
    loop {
        let tail = ctx.rings.sq_tail().load(Ordering::Acquire);
        let head = ctx.rings.sq_head().load(Ordering::Acquire);
        if tail.wrapping_sub(head) < entries || ctx.closed.load(Ordering::Acquire) {
            return;
        }
        if let Some(sqd) = ctx.sqd.get() {
            sqd.wake();
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

fn wait(ctx: &Ctx, min: u32, flags: u32, arg: RawArg) -> Result<(), Errno> {
    let (mut w, sig) = match (arg, flags & abi::IORING_ENTER_EXT_ARG != 0) {
        (RawArg::Decoded(w), _) => (w, None),
        (RawArg::Ext { ptr, size }, true) => {
            let (w, p, s) = read_ext(flags, ptr, size)?;
            (w, Some((p, s)))
        }
        (RawArg::Sigset { ptr, size }, false) => (WaitArg::default(), Some((ptr, size))),
        (RawArg::None, true) => return Err(Errno(libc::EFAULT)),
        _ => (WaitArg::default(), None),
    };
    // The mask is read only if the wait really sleeps (kernel order).
    if let Some((ptr, size)) = sig {
        if ptr != 0 && ctx.needs_wait(min) {
            w.sigmask = read_sigmask(ptr, size)?;
        }
    }
    ctx.wait_cqes(min, &w)
}
