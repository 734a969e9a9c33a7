//! MSG_RING (the kernel's io_uring/msg_ring.c): one ring posts a CQE into
//! another (IORING_MSG_DATA), or passes it a registered file
//! (IORING_MSG_SEND_FD).
//!
//! `sqe->fd` is the target ring; `addr` the command; `off` the target
//! CQE's user_data; `len` its res (DATA; must be 0 for SEND_FD); `addr3`
//! the source slot (SEND_FD); `file_index` the target slot (SEND_FD:
//! slot + 1, or IORING_FILE_INDEX_ALLOC) or, with FLAGS_PASS, the target
//! CQE's flags (DATA); `msg_ring_flags` CQE_SKIP and FLAGS_PASS.
//!
//! It always runs in a worker: posting into the target takes the target's
//! locks, which must not be taken while the source's submit lock is held
//! (two rings messaging each other would deadlock; the kernel takes the
//! second lock with a trylock and goes to io-wq when it fails). The source
//! CQE follows the target's.

use crate::abi::msg;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{register, registry, Cqe, Ctx, Errno, Sqe};
use std::os::fd::{FromRawFd, OwnedFd};

/// A prepared MSG_RING.
pub(crate) struct MsgRing {
    cmd: u64,
    user_data: u64,
    len: u32,
    src_slot: u64,
    dst: u32,
    flags: u32,
}

pub(crate) fn prep(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.personality() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let flags = sqe.op_flags();
    if flags & !(msg::CQE_SKIP | msg::FLAGS_PASS) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::MsgRing(MsgRing {
        // The kernel keeps the command in 32 bits.
        cmd: sqe.addr() as u32 as u64,
        user_data: sqe.off(),
        len: sqe.len(),
        // The kernel keeps the source slot in 32 bits too.
        src_slot: sqe.addr3() as u32 as u64,
        dst: sqe.file_index(),
        flags,
    }))
}

pub(crate) fn issue(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    if mode == Mode::NonBlock {
        return Issue::Punt;
    }
    let OpData::MsgRing(m) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = req.file.raw();
    let Ok(target) = registry::lookup(fd) else {
        return Issue::Done(if crate::sys::fd_open(fd) { -libc::EBADFD } else { -libc::EBADF }, 0);
    };
    let r = match m.cmd {
        msg::DATA => data(&target, m),
        msg::SEND_FD => send_fd(ctx, &target, m),
        _ => Err(Errno(libc::EINVAL)),
    };
    Issue::Done(r.unwrap_or_else(Errno::neg), 0)
}

/// A target still disabled (IORING_SETUP_R_DISABLED) takes no message.
fn check_enabled(target: &Ctx) -> Result<(), Errno> {
    if target.enabled.load(std::sync::atomic::Ordering::Acquire) {
        Ok(())
    } else {
        Err(Errno(libc::EBADFD))
    }
}

fn data(target: &Ctx, m: &MsgRing) -> Result<i32, Errno> {
    if m.src_slot != 0 || m.flags & !msg::FLAGS_PASS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if m.flags & msg::FLAGS_PASS == 0 && m.dst != 0 {
        return Err(Errno(libc::EINVAL));
    }
    check_enabled(target)?;
    let flags = if m.flags & msg::FLAGS_PASS != 0 { m.dst } else { 0 };
    target.post(&[Cqe::new(m.user_data, m.len as i32, flags)]);
    Ok(0)
}

fn send_fd(ctx: &Ctx, target: &Ctx, m: &MsgRing) -> Result<i32, Errno> {
    if m.len != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if std::ptr::eq(ctx, target) {
        return Err(Errno(libc::EINVAL));
    }
    check_enabled(target)?;
    // The source's registered file at `addr3`, duplicated for the target
    // (whose install makes its own private copy).
    let file = {
        let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
        let Some(Some(f)) = usize::try_from(m.src_slot).ok().and_then(|i| rsrc.files.get(i)) else {
            return Err(Errno(libc::EBADF));
        };
        // SAFETY: F_DUPFD_CLOEXEC makes a new fd, owned below.
        let fd = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&**f), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: fd was just created and is ours.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let r = register::install_fixed(target, file, m.dst)?;
    if m.flags & msg::CQE_SKIP == 0 {
        target.post(&[Cqe::new(m.user_data, r, 0)]);
    }
    Ok(r)
}
