//! IORING_OP_FTRUNCATE (the kernel's io_uring/truncate.c): always run by a
//! worker, as the kernel forces it async.

use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};

/// A prepared FTRUNCATE.
pub(crate) struct Ftruncate {
    len: i64,
}

/// `ftruncate(fd, off)`; every other field must be zero.
pub(crate) fn prep_ftruncate(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.op_flags() != 0
        || sqe.addr() != 0
        || sqe.len() != 0
        || sqe.buf_index() != 0
        || sqe.file_index() != 0
        || sqe.addr3() != 0
    {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Ftruncate(Ftruncate { len: sqe.off() as i64 }))
}

pub(crate) fn issue_ftruncate(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Ftruncate(t) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = req.file.raw();
    // The kernel has the file before it looks at the length; the system
    // call checks the length first.
    if t.len < 0 && !crate::sys::fd_open(fd) {
        return Issue::Done(-libc::EBADF, 0);
    }
    // SAFETY: a plain syscall on an fd number.
    let r = unsafe { libc::ftruncate(fd, t.len) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
