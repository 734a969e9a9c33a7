//! IORING_OP_NOP, with the kernel's `nop_flags` (io_uring/nop.c).

use crate::abi;
use crate::engine::opdef::{File, Issue, Mode, OpData, Req};
use crate::engine::{Ctx, Errno, Sqe};

/// NOP flags ringport implements: every flag the ABI defines.
const NOP_FLAGS: u32 = abi::IORING_NOP_INJECT_RESULT
    | abi::IORING_NOP_FILE
    | abi::IORING_NOP_FIXED_FILE
    | abi::IORING_NOP_FIXED_BUFFER
    | abi::IORING_NOP_TW;

/// A prepared NOP.
#[derive(Default)]
pub(crate) struct Nop {
    flags: u32,
    result: i32,
    buf_index: u16,
}

#[inline(always)]
pub(crate) fn prep(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    let flags = sqe.op_flags();
    if flags & !NOP_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let result = if flags & abi::IORING_NOP_INJECT_RESULT != 0 { sqe.len() as i32 } else { 0 };
    Ok(OpData::Nop(Nop { flags, result, buf_index: sqe.buf_index() }))
}

pub(crate) fn issue(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::Nop(nop) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let (flags, mut res, buf_index) = (nop.flags, nop.result, nop.buf_index);
    if flags & abi::IORING_NOP_FILE != 0 {
        let ok = if flags & abi::IORING_NOP_FIXED_FILE != 0 {
            req.sqe_flags |= abi::IOSQE_FIXED_FILE;
            crate::engine::opdef::assign_file(ctx, req).is_ok()
        } else {
            crate::sys::fd_open(req.fd)
        };
        if !ok {
            req.file = File::None;
            res = -libc::EBADF;
        }
    }
    if res >= 0 && flags & abi::IORING_NOP_FIXED_BUFFER != 0 {
        let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
        if rsrc.bufs.get(buf_index as usize).and_then(|b| b.as_ref()).is_none() {
            res = -libc::EFAULT;
        }
    }
    Issue::Done(res, 0)
}
