//! Name-space ops: RENAMEAT, UNLINKAT, MKDIRAT, SYMLINKAT, LINKAT (the
//! kernel's io_uring/fs.c).
//!
//! Paths are copied at prep (`getname`), so a bad pointer, an empty path or
//! one longer than PATH_MAX fails the SQE's prep, as on Linux. The kernel
//! forces all of these async: they always run in a worker.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{uaccess, Ctx, Errno, Sqe};
use std::ffi::CString;

/// Which name-space op.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rename,
    Unlink,
    Mkdir,
    Symlink,
    Link,
}

/// A prepared name-space op: up to two directory fds and paths.
pub(crate) struct FsOp {
    kind: Kind,
    dfd: i32,
    path: CString,
    /// The second directory fd (RENAMEAT, LINKAT).
    dfd2: i32,
    /// The second path (RENAMEAT, SYMLINKAT, LINKAT).
    path2: CString,
    /// rename/unlink/link flags, or MKDIRAT's mode.
    arg: u32,
}

fn no_fixed(sqe: &Sqe) -> Result<(), Errno> {
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    Ok(())
}

fn einval_if(cond: bool) -> Result<(), Errno> {
    if cond {
        Err(Errno(libc::EINVAL))
    } else {
        Ok(())
    }
}

/// RENAMEAT: `renameat2(fd, addr, len, addr2, rename_flags)`.
pub(crate) fn prep_renameat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    einval_if(sqe.buf_index() != 0 || sqe.file_index() != 0)?;
    no_fixed(sqe)?;
    let path = uaccess::read_path(sqe.addr(), false)?;
    let path2 = uaccess::read_path(sqe.addr2(), false)?;
    Ok(OpData::Fs(FsOp { kind: Kind::Rename, dfd: sqe.fd(), path, dfd2: sqe.len() as i32, path2, arg: sqe.op_flags() }))
}

/// UNLINKAT: `unlinkat(fd, addr, unlink_flags)`; only AT_REMOVEDIR.
pub(crate) fn prep_unlinkat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    einval_if(sqe.off() != 0 || sqe.len() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0)?;
    no_fixed(sqe)?;
    let flags = sqe.op_flags();
    einval_if(flags & !(libc::AT_REMOVEDIR as u32) != 0)?;
    let path = uaccess::read_path(sqe.addr(), false)?;
    Ok(OpData::Fs(FsOp { kind: Kind::Unlink, dfd: sqe.fd(), path, dfd2: -1, path2: CString::default(), arg: flags }))
}

/// MKDIRAT: `mkdirat(fd, addr, len = mode)`.
pub(crate) fn prep_mkdirat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    einval_if(sqe.off() != 0 || sqe.op_flags() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0)?;
    no_fixed(sqe)?;
    let path = uaccess::read_path(sqe.addr(), false)?;
    Ok(OpData::Fs(FsOp { kind: Kind::Mkdir, dfd: sqe.fd(), path, dfd2: -1, path2: CString::default(), arg: sqe.len() }))
}

/// SYMLINKAT: `symlinkat(addr = target, fd, addr2 = link path)`.
pub(crate) fn prep_symlinkat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    einval_if(sqe.len() != 0 || sqe.op_flags() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0)?;
    no_fixed(sqe)?;
    let target = uaccess::read_path(sqe.addr(), false)?;
    let link = uaccess::read_path(sqe.addr2(), false)?;
    Ok(OpData::Fs(FsOp { kind: Kind::Symlink, dfd: sqe.fd(), path: target, dfd2: -1, path2: link, arg: 0 }))
}

/// LINKAT: `linkat(fd, addr, len, addr2, hardlink_flags)`.
pub(crate) fn prep_linkat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    einval_if(sqe.buf_index() != 0 || sqe.file_index() != 0)?;
    no_fixed(sqe)?;
    let flags = sqe.op_flags();
    let path = uaccess::read_path(sqe.addr(), flags & libc::AT_EMPTY_PATH as u32 != 0)?;
    let path2 = uaccess::read_path(sqe.addr2(), false)?;
    Ok(OpData::Fs(FsOp { kind: Kind::Link, dfd: sqe.fd(), path, dfd2: sqe.len() as i32, path2, arg: flags }))
}

/// Runs the op in a worker with the matching system call.
pub(crate) fn issue_fs(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::Fs(f) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let (p1, p2) = (f.path.as_ptr(), f.path2.as_ptr());
    // SAFETY: the paths are NUL-terminated strings owned by the request;
    // the fds are the program's, checked by the kernel.
    let r = unsafe {
        match f.kind {
            Kind::Rename => libc::syscall(libc::SYS_renameat2, f.dfd, p1, f.dfd2, p2, f.arg),
            Kind::Unlink => libc::syscall(libc::SYS_unlinkat, f.dfd, p1, f.arg),
            Kind::Mkdir => libc::syscall(libc::SYS_mkdirat, f.dfd, p1, f.arg),
            Kind::Symlink => libc::syscall(libc::SYS_symlinkat, p1, f.dfd, p2),
            Kind::Link => libc::syscall(libc::SYS_linkat, f.dfd, p1, f.dfd2, p2, f.arg),
        }
    };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
