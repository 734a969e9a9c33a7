//! Syncing and allocation: FSYNC, SYNC_FILE_RANGE, FALLOCATE (the kernel's
//! io_uring/sync.c). The kernel forces all three async: they always run in
//! a worker.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};

/// A prepared FSYNC.
pub(crate) struct Fsync {
    datasync: bool,
    /// The range starts below 0 (`sqe->off` as a signed offset): the
    /// kernel's `vfs_fsync_range` refuses it.
    negative: bool,
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
    Ok(OpData::Fsync(Fsync { datasync: flags & abi::IORING_FSYNC_DATASYNC != 0, negative: (sqe.off() as i64) < 0 }))
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
    if f.negative && crate::sys::fd_open(fd) {
        return Issue::Done(-libc::EINVAL, 0);
    }
    // SAFETY: plain syscalls on an fd number; a bad fd gives EBADF.
    let r = unsafe { if f.datasync { libc::fdatasync(fd) } else { libc::fsync(fd) } };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}

/// A prepared SYNC_FILE_RANGE or FALLOCATE.
pub(crate) struct Range {
    off: u64,
    len: u64,
    /// sync_range_flags, or fallocate's mode.
    arg: u32,
}

/// SYNC_FILE_RANGE: `sync_file_range(fd, off, len, sync_range_flags)`.
pub(crate) fn prep_sync_file_range(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Range(Range { off: sqe.off(), len: sqe.len() as u64, arg: sqe.op_flags() }))
}

/// FALLOCATE: `fallocate(fd, len = mode, off, addr = length)`.
pub(crate) fn prep_fallocate(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.op_flags() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Range(Range { off: sqe.off(), len: sqe.addr(), arg: sqe.len() }))
}

pub(crate) fn issue_sync_file_range(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Range(r) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = req.file.raw();
    // SAFETY: a plain syscall on an fd number.
    let n = unsafe { libc::syscall(libc::SYS_sync_file_range, fd, r.off as i64, r.len as i64, r.arg) };
    Issue::Done(if n < 0 { Errno::last().neg() } else { 0 }, 0)
}

pub(crate) fn issue_fallocate(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Range(r) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = req.file.raw();
    // SAFETY: a plain syscall on an fd number.
    let n = unsafe { libc::syscall(libc::SYS_fallocate, fd, r.arg as i32, r.off as i64, r.len as i64) };
    Issue::Done(if n < 0 { Errno::last().neg() } else { 0 }, 0)
}
