//! Extended attributes: FGETXATTR, FSETXATTR, GETXATTR, SETXATTR (the
//! kernel's io_uring/xattr.c).
//!
//! At prep, as in the kernel: the name is copied (ERANGE when empty or
//! longer than XATTR_NAME_MAX), SETXATTR's value is copied (E2BIG beyond
//! XATTR_SIZE_MAX, EFAULT when unreadable), and the path of the path-based
//! forms is copied (`getname`). GETXATTR's value buffer is written by the
//! system call at issue. All four always run in a worker.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{uaccess, Ctx, Errno, Sqe};
use std::ffi::CString;

/// The kernel's `XATTR_NAME_MAX` + 1: the name buffer, NUL included.
const NAME_BUF: usize = 256;
/// The kernel's `XATTR_SIZE_MAX`.
const SIZE_MAX: u32 = 65536;

/// A prepared xattr op.
pub(crate) struct Xattr {
    set: bool,
    name: CString,
    /// The path (GETXATTR/SETXATTR); None for the fd forms.
    path: Option<CString>,
    /// SETXATTR: the value, copied at prep.
    value: Vec<u8>,
    /// GETXATTR: the program's buffer.
    buf: u64,
    size: u32,
    flags: i32,
}

/// The kernel's `import_xattr_name`.
fn read_name(addr: u64) -> Result<CString, Errno> {
    match uaccess::read_str(addr, NAME_BUF)? {
        uaccess::Str::Found(v) if !v.is_empty() => CString::new(v).map_err(|_| Errno(libc::EINVAL)),
        _ => Err(Errno(libc::ERANGE)),
    }
}

fn prep_get(sqe: &Sqe, with_path: bool) -> Result<OpData, Errno> {
    if with_path && sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    if sqe.op_flags() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let name = read_name(sqe.addr())?;
    let path = if with_path { Some(uaccess::read_path(sqe.addr3(), false)?) } else { None };
    Ok(OpData::Xattr(Xattr {
        set: false,
        name,
        path,
        value: Vec::new(),
        buf: sqe.addr2(),
        size: sqe.len(),
        flags: 0,
    }))
}

fn prep_set(sqe: &Sqe, with_path: bool) -> Result<OpData, Errno> {
    if with_path && sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    let flags = sqe.op_flags();
    if flags & !((libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let name = read_name(sqe.addr())?;
    let size = sqe.len();
    let mut value = Vec::new();
    if size != 0 {
        if size > SIZE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        value = vec![0u8; size as usize];
        uaccess::copy_in(&mut value, sqe.addr2())?;
    }
    let path = if with_path { Some(uaccess::read_path(sqe.addr3(), false)?) } else { None };
    Ok(OpData::Xattr(Xattr { set: true, name, path, value, buf: 0, size, flags: flags as i32 }))
}

/// FGETXATTR: `fgetxattr(fd, addr = name, addr2 = value, len)`.
pub(crate) fn prep_fgetxattr(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_get(sqe, false)
}
/// GETXATTR: `getxattr(addr3 = path, addr = name, addr2 = value, len)`.
pub(crate) fn prep_getxattr(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_get(sqe, true)
}
/// FSETXATTR: `fsetxattr(fd, addr = name, addr2 = value, len, xattr_flags)`.
pub(crate) fn prep_fsetxattr(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_set(sqe, false)
}
/// SETXATTR: `setxattr(addr3 = path, addr = name, addr2 = value, len, xattr_flags)`.
pub(crate) fn prep_setxattr(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_set(sqe, true)
}

pub(crate) fn issue_xattr(_ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let fd = req.file.raw();
    let OpData::Xattr(x) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let name = x.name.as_ptr();
    let value = x.value.as_ptr() as *const libc::c_void;
    let buf = x.buf as usize as *mut libc::c_void;
    let len = x.value.len();
    // SAFETY: name, path and value are owned by the request; GETXATTR's
    // buffer is program memory the kernel checks (EFAULT).
    let r = unsafe {
        match (&x.path, x.set) {
            (None, false) => libc::fgetxattr(fd, name, buf, x.size as usize) as i64,
            (None, true) => libc::fsetxattr(fd, name, value, len, x.flags) as i64,
            (Some(p), false) => libc::getxattr(p.as_ptr(), name, buf, x.size as usize) as i64,
            (Some(p), true) => libc::setxattr(p.as_ptr(), name, value, len, x.flags) as i64,
        }
    };
    Issue::Done(if r < 0 { Errno::last().neg() } else { r as i32 }, 0)
}
