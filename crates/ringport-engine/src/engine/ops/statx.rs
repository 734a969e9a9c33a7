//! IORING_OP_STATX (the kernel's io_uring/statx.c).
//!
//! The path is copied at prep (`getname_uflags`: an empty path is allowed
//! with AT_EMPTY_PATH); the statx buffer is written by the system call at
//! issue, so a bad buffer is a -EFAULT CQE, as on Linux. Always run by a
//! worker (the kernel forces it async).

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{uaccess, Ctx, Errno, Sqe};
use std::ffi::CString;

/// A prepared STATX.
pub(crate) struct Statx {
    dfd: i32,
    path: CString,
    flags: i32,
    mask: u32,
    buf: u64,
}

/// `statx(fd, addr, statx_flags, len = mask, addr2 = buffer)`.
pub(crate) fn prep_statx(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    let flags = sqe.op_flags() as i32;
    let path = uaccess::read_path(sqe.addr(), flags & libc::AT_EMPTY_PATH != 0)?;
    Ok(OpData::Statx(Statx { dfd: sqe.fd(), path, flags, mask: sqe.len(), buf: sqe.addr2() }))
}

pub(crate) fn issue_statx(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Statx(s) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    // SAFETY: the path is owned by the request; the buffer is program
    // memory the kernel checks (EFAULT).
    let r = unsafe { libc::syscall(libc::SYS_statx, s.dfd, s.path.as_ptr(), s.flags, s.mask, s.buf as usize) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
