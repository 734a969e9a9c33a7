//! SPLICE and TEE (the kernel's io_uring/splice.c).
//!
//! The kernel forces both async and runs them blocking in io-wq, whatever
//! the files are: a splice from an empty pipe waits there for data. ringport
//! does the same in a worker: the pipe ends are pollable, but a splice has
//! two files and moves data between them in one call, so it is not parked
//! in the reactor; a program that wants no waiting passes SPLICE_F_NONBLOCK
//! and gets EAGAIN, as on Linux. The input file is `splice_fd_in`, a
//! registered slot with SPLICE_F_FD_IN_FIXED. A transfer shorter than `len`
//! fails the request (it breaks an IO_LINK chain), as in the kernel.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};
use crate::sys::{fd_open, opened_for};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// The flags `splice(2)` knows (the kernel's `SPLICE_F_ALL`).
const SPLICE_F_ALL: u32 = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MORE | libc::SPLICE_F_GIFT;

/// A prepared SPLICE or TEE.
pub(crate) struct Splice {
    tee: bool,
    fd_in: i32,
    off_in: u64,
    off_out: u64,
    /// Bytes asked for: the CQE is a failure unless it moved exactly this.
    pub len: u32,
    flags: u32,
}

fn prep_common(sqe: &Sqe, tee: bool, off_in: u64, off_out: u64) -> Result<OpData, Errno> {
    let flags = sqe.op_flags();
    if flags & !(abi::SPLICE_F_FD_IN_FIXED | SPLICE_F_ALL) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Splice(Splice { tee, fd_in: sqe.file_index() as i32, off_in, off_out, len: sqe.len(), flags }))
}

/// SPLICE: `splice(splice_fd_in, splice_off_in, fd, off, len, splice_flags)`;
/// an offset of -1 means none (the file position).
pub(crate) fn prep_splice(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    // splice_off_in shares its bytes with addr.
    prep_common(sqe, false, sqe.addr(), sqe.off())
}

/// TEE: `tee(splice_fd_in, fd, len, splice_flags)`; both offsets must be 0.
pub(crate) fn prep_tee(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr() != 0 || sqe.off() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    prep_common(sqe, true, 0, 0)
}

/// The input file: a registered slot, or a program fd checked to be open.
enum In {
    Fixed(Arc<OwnedFd>),
    Raw(i32),
}

pub(crate) fn issue_splice(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let fd_out = req.file.raw();
    let OpData::Splice(sp) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let input = if sp.flags & abi::SPLICE_F_FD_IN_FIXED != 0 {
        let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
        match usize::try_from(sp.fd_in).ok().and_then(|i| rsrc.files.get(i)).and_then(|f| f.clone()) {
            Some(f) => In::Fixed(f),
            None => return Issue::Done(-libc::EBADF, 0),
        }
    } else {
        if !fd_open(sp.fd_in) {
            return Issue::Done(-libc::EBADF, 0);
        }
        In::Raw(sp.fd_in)
    };
    let fd_in = match &input {
        In::Fixed(f) => f.as_raw_fd(),
        In::Raw(fd) => *fd,
    };
    if sp.len == 0 {
        return Issue::Done(0, 0);
    }
    let flags = sp.flags & !abi::SPLICE_F_FD_IN_FIXED;
    let mut off_in = sp.off_in as i64;
    let mut off_out = sp.off_out as i64;
    let p_in: *mut i64 = if sp.off_in == u64::MAX { core::ptr::null_mut() } else { &mut off_in };
    let p_out: *mut i64 = if sp.off_out == u64::MAX { core::ptr::null_mut() } else { &mut off_out };
    // SAFETY: the offsets are locals (or null); the fds are checked by the
    // kernel.
    let r = unsafe {
        if sp.tee {
            libc::syscall(libc::SYS_tee, fd_in, fd_out, sp.len as usize, flags)
        } else {
            libc::syscall(libc::SYS_splice, fd_in, p_in, fd_out, p_out, sp.len as usize, flags)
        }
    };
    let mut res = if r < 0 { Errno::last().neg() } else { r as i32 };
    if res == -libc::ESPIPE && !(opened_for(fd_in, false) && opened_for(fd_out, true)) {
        // splice(2) looks at the offsets first; the kernel's io_uring
        // checks the files' modes first.
        res = -libc::EBADF;
    }
    drop(input);
    Issue::Done(res, 0)
}
