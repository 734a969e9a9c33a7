//! IORING_OP_FILES_UPDATE (the kernel's io_uring/rsrc.c): updating the
//! registered file table from an SQE. Its result is the number of slots
//! updated. With `off` = IORING_FILE_INDEX_ALLOC each fd goes into a free
//! slot, and the slot chosen is written back over the fd in the array.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::register::{dup_private, install_fixed, remove_fixed, update_files};
use crate::engine::{uaccess, Ctx, Errno, Sqe};

/// A prepared FILES_UPDATE.
pub(crate) struct FilesUpdate {
    offset: u32,
    nr: u32,
    fds: u64,
}

/// `addr` = the fd array, `len` = its length, `off` = the first slot.
pub(crate) fn prep_files_update(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.op_flags() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let nr = sqe.len();
    if nr == 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::FilesUpdate(FilesUpdate { offset: sqe.off() as u32, nr, fds: sqe.addr() }))
}

/// The kernel's `io_files_update_with_index_alloc`.
fn update_alloc(ctx: &Ctx, up: &FilesUpdate) -> Result<i32, Errno> {
    if ctx.rsrc.read().unwrap_or_else(|e| e.into_inner()).files.is_empty() {
        return Err(Errno(libc::ENXIO));
    }
    let mut done = 0u32;
    let mut err = Errno(libc::EINVAL);
    while done < up.nr {
        let at = up.fds.wrapping_add(done as u64 * 4);
        // SAFETY: i32 is plain data.
        let fd: i32 = match unsafe { uaccess::read_pod(at) } {
            Ok(fd) => fd,
            Err(e) => {
                err = e;
                break;
            }
        };
        let file = match dup_private(fd) {
            Ok(f) if fd >= 0 => f,
            _ => {
                err = Errno(libc::EBADF);
                break;
            }
        };
        let slot = match install_fixed(ctx, file, abi::IORING_FILE_INDEX_ALLOC as u32) {
            Ok(s) => s,
            Err(e) => {
                err = e;
                break;
            }
        };
        if let Err(e) = uaccess::write_pod(at, &slot) {
            let _ = remove_fixed(ctx, slot as u32);
            err = e;
            break;
        }
        done += 1;
    }
    if done > 0 {
        Ok(done as i32)
    } else {
        Err(err)
    }
}

pub(crate) fn issue_files_update(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::FilesUpdate(up) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let r = if up.offset == abi::IORING_FILE_INDEX_ALLOC as u32 {
        update_alloc(ctx, up)
    } else {
        update_files(ctx, up.offset, up.fds, up.nr)
    };
    Issue::Done(r.unwrap_or_else(|e| e.neg()), 0)
}
