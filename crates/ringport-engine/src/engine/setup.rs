//! `io_uring_setup`: parameter validation and ring creation
//! (the kernel's `io_uring_create`, `io_uring_sanitise_params`,
//! `io_uring_fill_params`).

use super::ring::{Geometry, RingFile, Rings};
use super::{registry, uaccess, Ctx, Errno};
use crate::abi::{self, io_uring_params};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::Arc;

/// Every setup flag this ABI defines; others are EINVAL, as on the kernel.
const KNOWN_FLAGS: u32 = abi::IORING_SETUP_IOPOLL
    | abi::IORING_SETUP_SQPOLL
    | abi::IORING_SETUP_SQ_AFF
    | abi::IORING_SETUP_CQSIZE
    | abi::IORING_SETUP_CLAMP
    | abi::IORING_SETUP_ATTACH_WQ
    | abi::IORING_SETUP_R_DISABLED
    | abi::IORING_SETUP_SUBMIT_ALL
    | abi::IORING_SETUP_COOP_TASKRUN
    | abi::IORING_SETUP_TASKRUN_FLAG
    | abi::IORING_SETUP_SQE128
    | abi::IORING_SETUP_CQE32
    | abi::IORING_SETUP_SINGLE_ISSUER
    | abi::IORING_SETUP_DEFER_TASKRUN
    | abi::IORING_SETUP_NO_MMAP
    | abi::IORING_SETUP_REGISTERED_FD_ONLY
    | abi::IORING_SETUP_NO_SQARRAY
    | abi::IORING_SETUP_HYBRID_IOPOLL;

/// Flags whose behaviour ringport has. The rest of KNOWN_FLAGS
/// (REGISTERED_FD_ONLY) are
/// refused with EINVAL until the engine implements them.
pub(crate) const SUPPORTED_FLAGS: u32 = abi::IORING_SETUP_SQPOLL
    | abi::IORING_SETUP_IOPOLL
    | abi::IORING_SETUP_HYBRID_IOPOLL
    | abi::IORING_SETUP_DEFER_TASKRUN
    | abi::IORING_SETUP_R_DISABLED
    | abi::IORING_SETUP_SQ_AFF
    | abi::IORING_SETUP_ATTACH_WQ
    | abi::IORING_SETUP_CQSIZE
    | abi::IORING_SETUP_CLAMP
    | abi::IORING_SETUP_SUBMIT_ALL
    | abi::IORING_SETUP_COOP_TASKRUN
    | abi::IORING_SETUP_TASKRUN_FLAG
    | abi::IORING_SETUP_SQE128
    | abi::IORING_SETUP_CQE32
    | abi::IORING_SETUP_SINGLE_ISSUER
    | abi::IORING_SETUP_NO_MMAP
    | abi::IORING_SETUP_NO_SQARRAY;

/// The feature bits whose behaviour ringport really has.
pub(crate) const FEATURES: u32 = abi::IORING_FEAT_NODROP
    | abi::IORING_FEAT_SUBMIT_STABLE
    | abi::IORING_FEAT_RW_CUR_POS
    | abi::IORING_FEAT_EXT_ARG
    | abi::IORING_FEAT_NATIVE_WORKERS
    | abi::IORING_FEAT_CQE_SKIP
    | abi::IORING_FEAT_FAST_POLL
    | abi::IORING_FEAT_SQPOLL_NONFIXED
    | abi::IORING_FEAT_POLL_32BITS
    // Inline issue runs on the submitting thread; workers share the
    // process's credentials (see docs/ARCHITECTURE.md for the one gap).
    | abi::IORING_FEAT_CUR_PERSONALITY;

/// The kernel's parameter checks, in its order. Fills sq/cq entries.
fn validate(entries: u32, p: &mut io_uring_params) -> Result<(), Errno> {
    let inval = Err(Errno(libc::EINVAL));
    if p.resv.iter().any(|&r| r != 0) || p.flags & !KNOWN_FLAGS != 0 {
        return inval;
    }
    let f = p.flags;
    let has = |x: u32| f & x != 0;
    if has(abi::IORING_SETUP_REGISTERED_FD_ONLY) && !has(abi::IORING_SETUP_NO_MMAP) {
        return inval;
    }
    if has(abi::IORING_SETUP_TASKRUN_FLAG)
        && !has(abi::IORING_SETUP_COOP_TASKRUN | abi::IORING_SETUP_DEFER_TASKRUN)
    {
        return inval;
    }
    if has(abi::IORING_SETUP_DEFER_TASKRUN) && !has(abi::IORING_SETUP_SINGLE_ISSUER) {
        return inval;
    }
    if has(abi::IORING_SETUP_SQ_AFF) && !has(abi::IORING_SETUP_SQPOLL) {
        return inval;
    }
    // Task-work flags make no sense with a poller thread.
    let taskrun = abi::IORING_SETUP_COOP_TASKRUN | abi::IORING_SETUP_TASKRUN_FLAG | abi::IORING_SETUP_DEFER_TASKRUN;
    if has(abi::IORING_SETUP_SQPOLL) && has(taskrun) {
        return inval;
    }
    if has(abi::IORING_SETUP_HYBRID_IOPOLL) && !has(abi::IORING_SETUP_IOPOLL) {
        return inval;
    }
    if entries == 0 {
        return inval;
    }
    let mut entries = entries;
    if entries > abi::MAX_ENTRIES {
        if !has(abi::IORING_SETUP_CLAMP) {
            return inval;
        }
        entries = abi::MAX_ENTRIES;
    }
    p.sq_entries = entries.next_power_of_two();
    if has(abi::IORING_SETUP_CQSIZE) {
        if p.cq_entries == 0 {
            return inval;
        }
        if p.cq_entries > abi::MAX_CQ_ENTRIES {
            if !has(abi::IORING_SETUP_CLAMP) {
                return inval;
            }
            p.cq_entries = abi::MAX_CQ_ENTRIES;
        }
        p.cq_entries = p.cq_entries.next_power_of_two();
        if p.cq_entries < p.sq_entries {
            return inval;
        }
    } else {
        p.cq_entries = 2 * p.sq_entries;
    }
    if f & !SUPPORTED_FLAGS != 0 {
        return inval;
    }
    Ok(())
}

/// An fd with a unique inode that `mmap` refuses (ENODEV; the kernel's
/// NO_MMAP ring fd gives ENOMEM).
fn unmappable_fd() -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Errno::last());
    }
    // SAFETY: both fds are fresh and ours; the write end is not needed.
    unsafe {
        libc::close(p[1]);
        Ok(std::os::fd::OwnedFd::from_raw_fd(p[0]))
    }
}

/// Creates a ring from validated-by-us parameters `p` (updated in place,
/// as the kernel writes them back). Returns the context and the ring fd,
/// which the caller owns.
pub(crate) fn create(entries: u32, p: &mut io_uring_params) -> Result<(Arc<Ctx>, i32), Errno> {
    validate(entries, p)?;
    super::global::install_fork_handler();
    let geo = Geometry {
        sq_entries: p.sq_entries,
        cq_entries: p.cq_entries,
        sqe_size: if p.flags & abi::IORING_SETUP_SQE128 != 0 { 128 } else { 64 },
        cqe_size: if p.flags & abi::IORING_SETUP_CQE32 != 0 { 32 } else { 16 },
        no_sqarray: p.flags & abi::IORING_SETUP_NO_SQARRAY != 0,
    };
    let (sq_off, cq_off) = geo.offsets();
    let (rings, file) = if p.flags & abi::IORING_SETUP_NO_MMAP != 0 {
        let (rings_addr, sqes_addr) = (p.cq_off.user_addr, p.sq_off.user_addr);
        // The kernel's region checks, rings first: alignment, overflow, pin.
        for (addr, len) in [(rings_addr, geo.rings_size()), (sqes_addr, geo.sqes_size())] {
            if addr % 4096 != 0 {
                return Err(Errno(libc::EINVAL));
            }
            let size = (len as u64).div_ceil(4096) * 4096;
            if addr.checked_add(size).and_then(|e| e.checked_add(4095)).is_none() {
                return Err(Errno(libc::EOVERFLOW));
            }
            // The kernel pins this memory for writing: it must be writable.
            if !uaccess::is_pinnable(addr, len as u64) {
                return Err(Errno(libc::EFAULT));
            }
        }
        // The fd still has to exist, with an identity and (as on the kernel)
        // nothing to map: the read end of a fresh pipe.
        let file = RingFile { fd: unmappable_fd()? };
        // SAFETY: both regions were checked to be mapped for their sizes;
        // with NO_MMAP the program promises to keep them for the ring's life.
        let rings = unsafe { Rings::from_user(geo, rings_addr as usize as *mut u8, sqes_addr as usize as *mut u8) };
        (rings, file)
    } else {
        Rings::create_mapped(geo)?
    };
    let RingFile { fd } = file;
    let ident = registry::identity(fd.as_raw_fd())?;
    let shm = super::shared::ShmPage::new()?;
    if p.flags & abi::IORING_SETUP_SINGLE_ISSUER != 0 && p.flags & abi::IORING_SETUP_R_DISABLED == 0 {
        shm.submitter.store(Ctx::tid(), std::sync::atomic::Ordering::Release);
    }
    let ctx = Ctx::new(rings, shm, p.flags, ident, p.flags & abi::IORING_SETUP_R_DISABLED == 0);
    // SQPOLL: a CPU to pin to, and a group to join with ATTACH_WQ (the
    // kernel's io_attach_sq_data: ENXIO for a bad fd, EINVAL for a non-ring
    // or a ring without a poller).
    let attach = if p.flags & abi::IORING_SETUP_ATTACH_WQ != 0 {
        let other = match registry::lookup(p.wq_fd as i32) {
            Ok(c) => c,
            Err(Errno(libc::EBADF)) => return Err(Errno(libc::ENXIO)),
            Err(_) => return Err(Errno(libc::EINVAL)),
        };
        let sqd = other.sqd.get().cloned();
        if p.flags & abi::IORING_SETUP_SQPOLL != 0 && sqd.is_none() {
            return Err(Errno(libc::EINVAL));
        }
        sqd
    } else {
        None
    };
    if p.flags & abi::IORING_SETUP_SQPOLL != 0 {
        if p.flags & abi::IORING_SETUP_SQ_AFF != 0 {
            super::sqpoll::check_cpu(p.sq_thread_cpu)?;
        }
        let sqd = super::sqpoll::start(&ctx, p, attach)?;
        let _ = ctx.sqd.set(sqd);
        ctx.shm.sq_owner.store(super::shared::pid(), std::sync::atomic::Ordering::Release);
    }
    let user = (p.sq_off.user_addr, p.cq_off.user_addr);
    p.features = FEATURES;
    p.sq_off = sq_off;
    p.cq_off = cq_off;
    if p.flags & abi::IORING_SETUP_NO_MMAP != 0 {
        p.sq_off.user_addr = user.0;
        p.cq_off.user_addr = user.1;
    }
    let raw = fd.into_raw_fd();
    registry::insert(raw, ctx.clone());
    Ok((ctx, raw))
}
