//! File-system ops: IORING_OP_FSYNC (io_uring/sync.c).

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};

/// A prepared FSYNC.
pub(crate) struct Fsync {
    datasync: bool,
}

#[inline(always)]
pub(crate) fn prep_fsync(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.op_flags();
    if flags & !abi::IORING_FSYNC_DATASYNC != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Fsync(Fsync { datasync: flags & abi::IORING_FSYNC_DATASYNC != 0 }))
}

/// Syncs the whole file. The kernel syncs `[off, off+len)`; a whole-file sync
/// covers that range, and userspace has no ranged fsync with the same
/// durability guarantee.
pub(crate) fn issue_fsync(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Fsync(f) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = req.file.raw();
    // SAFETY: plain syscalls on an fd number; a bad fd gives EBADF.
    let r = unsafe { if f.datasync { libc::fdatasync(fd) } else { libc::fsync(fd) } };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
