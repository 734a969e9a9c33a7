//! Opening and closing files: IORING_OP_OPENAT, OPENAT2, CLOSE and
//! FIXED_FD_INSTALL (the kernel's io_uring/openclose.c), direct descriptors
//! included.
//!
//! The path is copied at prep (the kernel's `getname`), so its errors
//! (EFAULT, ENAMETOOLONG, ENOENT for an empty path) are prep failures.
//! Issue follows the kernel: an open that creates or truncates goes straight
//! to a worker; any other is first tried inline with `RESOLVE_CACHED` and
//! `O_NONBLOCK` (the kernel's `LOOKUP_CACHED` attempt), and goes to a worker
//! when that says EAGAIN. As in the kernel, `O_NONBLOCK` is cleared again on
//! the opened file unless the program asked for it, so opening a FIFO for
//! reading completes at once, and opening one for writing with no reader
//! fails with ENXIO, exactly as on Linux.
//!
//! A direct descriptor (`file_index`) is opened close-on-exec and moved into
//! the registered file table (`register::install_fixed`); the program's fd
//! table keeps nothing.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{register, registry, uaccess, Ctx, Errno, Sqe};
use linux_raw_sys::general as g;
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

/// `struct open_how` (flags, mode, resolve): 24 bytes, the first version.
const OPEN_HOW_SIZE: usize = core::mem::size_of::<g::open_how>();

/// The kernel's `VALID_OPEN_FLAGS`.
const VALID_OPEN_FLAGS: u64 = (g::O_RDONLY
    | g::O_WRONLY
    | g::O_RDWR
    | g::O_CREAT
    | g::O_EXCL
    | g::O_NOCTTY
    | g::O_TRUNC
    | g::O_APPEND
    | g::O_NDELAY
    | g::O_NONBLOCK
    | g::__O_SYNC
    | g::O_DSYNC
    | g::FASYNC
    | g::O_DIRECT
    | g::O_LARGEFILE
    | g::O_DIRECTORY
    | g::O_NOFOLLOW
    | g::O_NOATIME
    | g::O_CLOEXEC
    | g::O_PATH
    | g::__O_TMPFILE) as u64;

/// The flags that survive `O_PATH` (the kernel's `O_PATH_FLAGS`).
const O_PATH_FLAGS: u64 = (g::O_DIRECTORY | g::O_NOFOLLOW | g::O_PATH | g::O_CLOEXEC) as u64;

/// Opens the kernel never tries inline (`io_openat_force_async`).
const FORCE_ASYNC: u64 = (g::O_TRUNC | g::O_CREAT | g::__O_TMPFILE) as u64;

/// A prepared OPENAT or OPENAT2.
pub(crate) struct Open {
    dfd: i32,
    path: CString,
    how: g::open_how,
    /// `file_index`: 0 for a plain fd, else a slot + 1 or FILE_INDEX_ALLOC.
    file_slot: u32,
}

/// The kernel's `build_open_how`: what OPENAT's flags and mode mean as an
/// `open_how` (unknown flags dropped, the mode kept only when creating).
fn build_open_how(flags: u32, mode: u32) -> g::open_how {
    let mut f = flags as u64 & VALID_OPEN_FLAGS;
    if f & g::O_PATH as u64 != 0 {
        f &= O_PATH_FLAGS;
    }
    let creates = f & (g::O_CREAT | g::__O_TMPFILE) as u64 != 0;
    let mode = if creates { (mode & 0o7777) as u64 } else { 0 };
    g::open_how { flags: f, mode, resolve: 0 }
}

/// The kernel's `__io_openat_prep`, common to both opcodes.
fn prep_common(sqe: &Sqe, mut how: g::open_how) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    // The kernel forces O_LARGEFILE (except for O_PATH).
    if how.flags & g::O_PATH as u64 == 0 {
        how.flags |= g::O_LARGEFILE as u64;
    }
    let path = uaccess::read_path(sqe.addr(), false)?;
    let file_slot = sqe.file_index();
    if file_slot != 0 && how.flags & g::O_CLOEXEC as u64 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Open(Open { dfd: sqe.fd(), path, how, file_slot }))
}

/// IORING_OP_OPENAT: `openat(fd, addr, open_flags, len)`.
pub(crate) fn prep_openat(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_common(sqe, build_open_how(sqe.op_flags(), sqe.len()))
}

/// The kernel's `copy_struct_from_user` for an `open_how` of `len` bytes:
/// a longer struct must be zero past the part the kernel knows (E2BIG).
fn read_open_how(addr: u64, len: usize) -> Result<g::open_how, Errno> {
    if len > OPEN_HOW_SIZE {
        let mut off = OPEN_HOW_SIZE;
        let mut chunk = [0u8; 4096];
        while off < len {
            let n = (len - off).min(chunk.len());
            let src = addr.checked_add(off as u64).ok_or(Errno(libc::EFAULT))?;
            uaccess::copy_in(&mut chunk[..n], src)?;
            if chunk[..n].iter().any(|&b| b != 0) {
                return Err(Errno(libc::E2BIG));
            }
            off += n;
        }
    }
    // SAFETY: open_how is three u64s; any bit pattern is valid.
    unsafe { uaccess::read_pod(addr) }
}

/// IORING_OP_OPENAT2: `openat2(fd, addr, addr2 = &open_how, len)`.
pub(crate) fn prep_openat2(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    let len = sqe.len() as usize;
    if len < OPEN_HOW_SIZE {
        return Err(Errno(libc::EINVAL));
    }
    let how = read_open_how(sqe.addr2(), len)?;
    prep_common(sqe, how)
}

fn openat2(dfd: i32, path: &CString, how: &g::open_how) -> Result<i32, Errno> {
    // SAFETY: path is a NUL-terminated string and how a live open_how, both
    // owned by the request; the kernel only reads them.
    let r = unsafe {
        libc::syscall(libc::SYS_openat2, dfd, path.as_ptr(), how as *const g::open_how, OPEN_HOW_SIZE)
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as i32)
    }
}

/// Opens the file (inline: cached lookup, non-blocking; in a worker: as
/// asked) and hands back an fd or installs it as a direct descriptor.
pub(crate) fn issue_openat(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    let OpData::Open(o) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let inline = mode == Mode::NonBlock;
    if inline && o.how.flags & FORCE_ASYNC != 0 {
        return Issue::Punt;
    }
    let mut how = o.how;
    let fixed = o.file_slot != 0;
    let is_path = how.flags & g::O_PATH as u64 != 0;
    if fixed {
        // A private fd until it moves into the table.
        how.flags |= g::O_CLOEXEC as u64;
    }
    if inline {
        how.resolve |= g::RESOLVE_CACHED as u64;
        // O_PATH never calls a driver's open; openat2 refuses it with
        // other flags, so it is left alone.
        if !is_path {
            how.flags |= g::O_NONBLOCK as u64;
        }
    }
    let mut opened = openat2(o.dfd, &o.path, &how);
    if matches!(opened, Err(Errno(libc::ENOSYS))) && o.how.resolve == 0 {
        // No openat2 (an old seccomp profile): plain openat, blocking, in
        // a worker; the flags are already the kernel's open_how.
        if inline {
            return Issue::Punt;
        }
        // SAFETY: path is a NUL-terminated string owned by the request.
        let r = unsafe { libc::syscall(libc::SYS_openat, o.dfd, o.path.as_ptr(), how.flags as i32, how.mode as u32) };
        opened = if r < 0 { Err(Errno::last()) } else { Ok(r as i32) };
    }
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) => {
            let user_cached = o.how.resolve & g::RESOLVE_CACHED as u64 != 0;
            if inline && e.0 == libc::EAGAIN && !user_cached {
                return Issue::Punt;
            }
            return Issue::Done(e.neg(), 0);
        }
    };
    if inline && !is_path && o.how.flags & g::O_NONBLOCK as u64 == 0 {
        // SAFETY: fcntl on the fd just opened.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
    }
    if !fixed {
        return Issue::Done(fd, 0);
    }
    // SAFETY: fd was just opened here and is owned by nobody else.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    match register::install_fixed(ctx, file, o.file_slot) {
        Ok(r) => Issue::Done(r, 0),
        Err(e) => Issue::Done(e.neg(), 0),
    }
}

/// A prepared CLOSE.
pub(crate) struct Close {
    fd: i32,
    /// `file_index`: a registered slot + 1, or 0 for a plain fd.
    file_slot: u32,
}

/// IORING_OP_CLOSE: closes `fd`, or registered slot `file_index - 1`.
pub(crate) fn prep_close(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.off() != 0 || sqe.addr() != 0 || sqe.len() != 0 || sqe.op_flags() != 0 || sqe.buf_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.flags() & abi::IOSQE_FIXED_FILE != 0 {
        return Err(Errno(libc::EBADF));
    }
    let (fd, file_slot) = (sqe.fd(), sqe.file_index());
    if file_slot != 0 && fd != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Close(Close { fd, file_slot }))
}

/// Closes inline: the kernel punts only files with a `->flush` method (NFS,
/// FUSE), which userspace cannot tell apart. A ring fd is refused with
/// EBADF, as the kernel refuses io_uring files.
pub(crate) fn issue_close(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::Close(c) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    if c.file_slot != 0 {
        return match register::remove_fixed(ctx, c.file_slot - 1) {
            Ok(r) => Issue::Done(r, 0),
            Err(e) => Issue::Done(e.neg(), 0),
        };
    }
    if c.fd < 0 || registry::is_ring(c.fd) {
        return Issue::Done(-libc::EBADF, 0);
    }
    // With the bypass marker, so that the interception library's filter
    // (which traps closes in its reserved ring-fd range) never traps it.
    let arg = ((crate::sys::CLOSE_BYPASS as u64) << 32) | c.fd as u32 as u64;
    // SAFETY: closing a program fd at the program's request, as the kernel
    // does for IORING_OP_CLOSE; the marker bits are ignored by the kernel.
    let r = unsafe { libc::syscall(libc::SYS_close, arg as libc::c_long) };
    if r < 0 {
        let e = Errno::last();
        // As the kernel's filp_close: the fd is gone even when the flush
        // failed; EINTR is not a failure of the close itself.
        return Issue::Done(if e.0 == libc::EINTR { 0 } else { e.neg() }, 0);
    }
    Issue::Done(0, 0)
}

/// A prepared FIXED_FD_INSTALL.
pub(crate) struct FdInstall {
    cloexec: bool,
}

/// IORING_OP_FIXED_FD_INSTALL: a registered file (`fd` with
/// IOSQE_FIXED_FILE, which is required) gets a normal fd, close-on-exec
/// unless IORING_FIXED_FD_NO_CLOEXEC.
pub(crate) fn prep_fixed_fd_install(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.off() != 0
        || sqe.addr() != 0
        || sqe.len() != 0
        || sqe.buf_index() != 0
        || sqe.file_index() != 0
        || sqe.addr3() != 0
    {
        return Err(Errno(libc::EINVAL));
    }
    if sqe.flags() & abi::IOSQE_FIXED_FILE == 0 {
        return Err(Errno(libc::EBADF));
    }
    let flags = sqe.op_flags();
    if flags & !abi::IORING_FIXED_FD_NO_CLOEXEC != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::FdInstall(FdInstall { cloexec: flags & abi::IORING_FIXED_FD_NO_CLOEXEC == 0 }))
}

/// The kernel's `receive_fd`: the lowest free fd number for the file.
pub(crate) fn issue_fixed_fd_install(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::FdInstall(f) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let cmd = if f.cloexec { libc::F_DUPFD_CLOEXEC } else { libc::F_DUPFD };
    // SAFETY: duplicating the registered file's fd; only creates a new fd.
    let r = unsafe { libc::fcntl(req.file.raw(), cmd, 0) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { r }, 0)
}
