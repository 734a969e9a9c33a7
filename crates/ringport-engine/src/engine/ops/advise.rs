//! FADVISE and MADVISE (the kernel's io_uring/advise.c).
//!
//! Lengths are 64-bit: FADVISE takes `addr` as its length when nonzero
//! (else `len`), MADVISE takes `off` (else `len`), as Linux 6.9+ does.
//! MADVISE always runs in a worker; FADVISE inline for the advice that
//! only sets a flag (NORMAL, RANDOM, SEQUENTIAL), in a worker otherwise.

use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};

/// A prepared FADVISE or MADVISE.
pub(crate) struct Advise {
    /// The file offset (FADVISE) or the address (MADVISE).
    start: u64,
    len: u64,
    advice: i32,
}

fn check(sqe: &Sqe) -> Result<(), Errno> {
    if sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

/// FADVISE: `posix_fadvise(fd, off, addr or len, fadvise_advice)`.
pub(crate) fn prep_fadvise(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    check(sqe)?;
    let len = if sqe.addr() != 0 { sqe.addr() } else { sqe.len() as u64 };
    Ok(OpData::Advise(Advise { start: sqe.off(), len, advice: sqe.op_flags() as i32 }))
}

/// MADVISE: `madvise(addr, off or len, fadvise_advice)`.
pub(crate) fn prep_madvise(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    check(sqe)?;
    let len = if sqe.off() != 0 { sqe.off() } else { sqe.len() as u64 };
    Ok(OpData::Advise(Advise { start: sqe.addr(), len, advice: sqe.op_flags() as i32 }))
}

pub(crate) fn issue_fadvise(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    let OpData::Advise(a) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let quick = matches!(a.advice, libc::POSIX_FADV_NORMAL | libc::POSIX_FADV_RANDOM | libc::POSIX_FADV_SEQUENTIAL);
    if mode == Mode::NonBlock && !quick {
        return Issue::Punt;
    }
    // SAFETY: a plain syscall on an fd number; it returns the error number.
    let e = unsafe { libc::posix_fadvise(req.file.raw(), a.start as i64, a.len as i64, a.advice) };
    Issue::Done(-e, 0)
}

pub(crate) fn issue_madvise(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Advise(a) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    // SAFETY: madvise on the program's own address range, at its request,
    // exactly as the kernel's do_madvise on the program's mm; the kernel
    // checks the range.
    let r = unsafe { libc::syscall(libc::SYS_madvise, a.start as usize, a.len as usize, a.advice) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
