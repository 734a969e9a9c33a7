//! `io_uring_register`: files, buffers, eventfd, probe (io_uring/register.c,
//! rsrc.c, filetable.c, eventfd.c).
//!
//! Where the kernel takes a reference on a `struct file`, ringport keeps a
//! private duplicate of the fd (placed high in the fd table, close-on-exec),
//! so the program may close its own fd and the registered one stays valid.
//! Registered buffers are checked to be mapped at registration; the kernel
//! pins them, ringport cannot, so a program that unmaps a registered buffer
//! gets EFAULT from later I/O instead of the pinned pages.

use super::{opdef, registry, uaccess, Ctx, Errno};
use crate::abi::{self, reg};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One registered buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buf {
    pub addr: u64,
    pub len: u64,
}

/// Registered files and buffers. An empty vector means "none registered"
/// (the kernel refuses to register zero entries, so the two cannot mix).
#[derive(Default)]
pub(crate) struct Resources {
    pub files: Vec<Option<Arc<OwnedFd>>>,
    pub bufs: Vec<Option<Buf>>,
    /// Where IORING_FILE_INDEX_ALLOC looks for a free slot next (the
    /// kernel's `alloc_hint`: after the last slot filled, or at the last
    /// slot emptied).
    pub alloc_hint: u32,
    /// The allocation range `[alloc_start, alloc_end)`
    /// (IORING_REGISTER_FILE_ALLOC_RANGE; the whole table by default).
    pub alloc_start: u32,
    /// End of the allocation range.
    pub alloc_end: u32,
}

impl Resources {
    /// Allocation over the whole file table, from its start.
    fn reset_alloc_range(&mut self) {
        self.alloc_start = 0;
        self.alloc_end = self.files.len() as u32;
        self.alloc_hint = 0;
    }

    /// This process's copy of a table inherited over fork: the same files
    /// (duplicated, so that the copy owns its fds) and the same buffers.
    pub(crate) fn inherit(&self) -> Resources {
        Resources {
            files: self.files.iter().map(|f| f.as_ref().and_then(|fd| dup_private(fd.as_raw_fd()).ok()).map(Arc::new)).collect(),
            bufs: self.bufs.clone(),
            alloc_hint: self.alloc_hint,
            alloc_start: self.alloc_start,
            alloc_end: self.alloc_end,
        }
    }
}

/// A registered eventfd.
pub(crate) struct EventFd {
    fd: OwnedFd,
    /// IORING_REGISTER_EVENTFD_ASYNC: signal only for async completions.
    pub async_only: bool,
}

impl EventFd {
    /// This process's copy of a registration inherited over fork.
    pub(crate) fn inherit(&self) -> Option<EventFd> {
        Some(EventFd { fd: dup_private(self.fd.as_raw_fd()).ok()?, async_only: self.async_only })
    }

    /// Adds one to the eventfd's counter.
    pub fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

fn nofile_limit() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 1024;
    }
    rl.rlim_cur
}

/// Duplicates `fd` close-on-exec, high in the fd table so that the program's
/// own low fd numbers are left as the kernel would leave them.
pub(crate) fn dup_private(fd: i32) -> Result<OwnedFd, Errno> {
    let limit = nofile_limit().min(i32::MAX as u64) as i32;
    let floor = (limit / 2).max(limit - 4096).max(0);
    // SAFETY: F_DUPFD_CLOEXEC only creates a new fd.
    let mut new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    if new < 0 && Errno::last().0 != libc::EBADF {
        // SAFETY: as above.
        new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    }
    if new < 0 {
        return Err(Errno::last());
    }
    // SAFETY: new is a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn fd_link(fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().map(|p| p.to_string_lossy().into_owned())
}

/// Takes a reference to a program fd for the file table: EBADF for a bad fd
/// or for an io_uring instance (rings may not be registered in rings).
fn take_file(fd: i32) -> Result<Arc<OwnedFd>, Errno> {
    if fd < 0 {
        return Err(Errno(libc::EBADF));
    }
    if registry::is_ring(fd) || fd_link(fd).is_some_and(|l| l == "anon_inode:[io_uring]") {
        return Err(Errno(libc::EBADF));
    }
    Ok(Arc::new(dup_private(fd)?))
}

fn files_register(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    if !rsrc.files.is_empty() {
        return Err(Errno(libc::EBUSY));
    }
    if nr == 0 {
        return Err(Errno(libc::EINVAL));
    }
    if nr > abi::MAX_FIXED_FILES || nr as u64 > nofile_limit() {
        return Err(Errno(libc::EMFILE));
    }
    // SAFETY: i32 is plain data.
    let fds: Vec<i32> = unsafe { uaccess::read_pod_vec(arg, nr as usize)? };
    let mut table = Vec::with_capacity(nr as usize);
    for fd in fds {
        table.push(if fd == -1 { None } else { Some(take_file(fd)?) });
    }
    rsrc.files = table;
    rsrc.reset_alloc_range();
    Ok(0)
}

fn files_update(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    if nr == 0 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_files_update is plain data.
    let up: abi::io_uring_files_update = unsafe { uaccess::read_pod(arg)? };
    if up.resv != 0 {
        return Err(Errno(libc::EINVAL));
    }
    update_files(ctx, up.offset, up.fds, nr)
}

/// The kernel's `__io_sqe_files_update`: replaces `nr` slots from `offset`
/// with the fds read from `fds` (-1 empties a slot, FILES_SKIP leaves it).
/// Returns how many were updated; an error only if none was.
pub(crate) fn update_files(ctx: &Ctx, offset: u32, fds: u64, nr: u32) -> Result<i32, Errno> {
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    if rsrc.files.is_empty() {
        return Err(Errno(libc::ENXIO));
    }
    let end = offset.checked_add(nr).ok_or(Errno(libc::EOVERFLOW))?;
    if end as usize > rsrc.files.len() {
        return Err(Errno(libc::EINVAL));
    }
    let mut done = 0u32;
    let mut err = None;
    while done < nr {
        // SAFETY: i32 is plain data.
        let fd: i32 = match unsafe { uaccess::read_pod(fds.wrapping_add(done as u64 * 4)) } {
            Ok(fd) => fd,
            Err(e) => {
                err = Some(e);
                break;
            }
        };
        if fd != abi::IORING_REGISTER_FILES_SKIP {
            let slot = (offset + done) as usize;
            if rsrc.files[slot].take().is_some() {
                rsrc.alloc_hint = slot as u32;
            }
            if fd != -1 {
                match take_file(fd) {
                    Ok(f) => {
                        rsrc.files[slot] = Some(f);
                        rsrc.alloc_hint = slot as u32 + 1;
                    }
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
        }
        done += 1;
    }
    match (done, err) {
        (0, Some(e)) => Err(e),
        (d, _) => Ok(d as i32),
    }
}

/// The kernel's `io_file_bitmap_get`: the next free slot in the allocation
/// range, searching from the hint and then wrapping to the range's start.
fn alloc_slot(rsrc: &mut Resources) -> Result<u32, Errno> {
    if rsrc.files.is_empty() {
        return Err(Errno(libc::ENFILE));
    }
    let (start, end) = (rsrc.alloc_start as usize, (rsrc.alloc_end as usize).min(rsrc.files.len()));
    let free = |r: &Resources, from: usize, to: usize| (from..to).find(|&i| r.files.get(i).is_some_and(|f| f.is_none()));
    let mut nr = end;
    loop {
        let hint = rsrc.alloc_hint as usize;
        if let Some(i) = free(rsrc, hint, nr) {
            return Ok(i as u32);
        }
        if hint == start {
            return Err(Errno(libc::ENFILE));
        }
        nr = hint;
        rsrc.alloc_hint = start as u32;
    }
}

/// The kernel's `io_fixed_fd_install`: puts `file` (an fd the engine owns)
/// into the registered file table. `file_slot` is the SQE's `file_index`:
/// IORING_FILE_INDEX_ALLOC picks a free slot and returns it; otherwise it
/// is the slot + 1, and the result is 0. On error the file is closed.
pub(crate) fn install_fixed(ctx: &Ctx, file: OwnedFd, file_slot: u32) -> Result<i32, Errno> {
    let alloc = file_slot == abi::IORING_FILE_INDEX_ALLOC as u32;
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    let slot = if alloc { alloc_slot(&mut rsrc)? } else { file_slot.wrapping_sub(1) };
    if registry::is_ring(file.as_raw_fd()) {
        return Err(Errno(libc::EBADF));
    }
    if rsrc.files.is_empty() {
        return Err(Errno(libc::ENXIO));
    }
    let Some(entry) = rsrc.files.get_mut(slot as usize) else { return Err(Errno(libc::EINVAL)) };
    // The table keeps its files high in the fd table, like registration.
    let private = dup_private(file.as_raw_fd())?;
    drop(file);
    let was_empty = entry.replace(Arc::new(private)).is_none();
    if was_empty {
        rsrc.alloc_hint = slot + 1;
    }
    Ok(if alloc { slot as i32 } else { 0 })
}

/// The kernel's `io_fixed_fd_remove`: empties registered slot `offset`.
pub(crate) fn remove_fixed(ctx: &Ctx, offset: u32) -> Result<i32, Errno> {
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    if rsrc.files.is_empty() {
        return Err(Errno(libc::ENXIO));
    }
    let Some(entry) = rsrc.files.get_mut(offset as usize) else { return Err(Errno(libc::EINVAL)) };
    if entry.take().is_none() {
        return Err(Errno(libc::EBADF));
    }
    rsrc.alloc_hint = offset;
    Ok(0)
}

/// IORING_REGISTER_FILE_ALLOC_RANGE: where IORING_FILE_INDEX_ALLOC looks.
fn file_alloc_range(ctx: &Ctx, arg: u64) -> Result<i32, Errno> {
    // SAFETY: io_uring_file_index_range is plain data.
    let r: abi::io_uring_file_index_range = unsafe { uaccess::read_pod(arg)? };
    let end = r.off.checked_add(r.len).ok_or(Errno(libc::EOVERFLOW))?;
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    if r.resv != 0 || end as usize > rsrc.files.len() {
        return Err(Errno(libc::EINVAL));
    }
    rsrc.alloc_start = r.off;
    rsrc.alloc_end = end;
    rsrc.alloc_hint = r.off;
    Ok(0)
}

/// IORING_REGISTER_FILES2 / BUFFERS2 (`struct io_uring_rsrc_register`):
/// registration with an optional sparse table. Tags are not supported:
/// a nonzero tag is refused with EINVAL.
fn rsrc_register(ctx: &Ctx, arg: u64, size: u32, files: bool) -> Result<i32, Errno> {
    if size as usize != core::mem::size_of::<abi::io_uring_rsrc_register>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_rsrc_register is plain data.
    let rr: abi::io_uring_rsrc_register = unsafe { uaccess::read_pod(arg)? };
    if rr.nr == 0 || rr.resv2 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if rr.flags & !abi::IORING_RSRC_REGISTER_SPARSE != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let sparse = rr.flags & abi::IORING_RSRC_REGISTER_SPARSE != 0;
    if sparse && rr.data != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if rr.tags != 0 {
        // SAFETY: u64 is plain data.
        let tags: Vec<u64> = unsafe { uaccess::read_pod_vec(rr.tags, rr.nr.min(abi::MAX_FIXED_FILES) as usize)? };
        if tags.iter().any(|&t| t != 0) {
            return Err(Errno(libc::EINVAL));
        }
    }
    if !files {
        if sparse {
            // Sparse buffer tables: not supported.
            return Err(Errno(libc::EINVAL));
        }
        return buffers_register(ctx, rr.data, rr.nr);
    }
    if sparse {
        let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
        if !rsrc.files.is_empty() {
            return Err(Errno(libc::EBUSY));
        }
        if rr.nr > abi::MAX_FIXED_FILES || rr.nr as u64 > nofile_limit() {
            return Err(Errno(libc::EMFILE));
        }
        rsrc.files = vec![None; rr.nr as usize];
        rsrc.reset_alloc_range();
        return Ok(0);
    }
    files_register(ctx, rr.data, rr.nr)
}

/// IORING_REGISTER_FILES_UPDATE2 (`struct io_uring_rsrc_update2`).
fn rsrc_update2(ctx: &Ctx, arg: u64, size: u32, files: bool) -> Result<i32, Errno> {
    if size as usize != core::mem::size_of::<abi::io_uring_rsrc_update2>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_rsrc_update2 is plain data.
    let up: abi::io_uring_rsrc_update2 = unsafe { uaccess::read_pod(arg)? };
    if up.resv != 0 || up.resv2 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if !files || up.nr == 0 {
        return Err(Errno(libc::EINVAL));
    }
    if up.tags != 0 {
        // SAFETY: u64 is plain data.
        let tags: Vec<u64> = unsafe { uaccess::read_pod_vec(up.tags, up.nr.min(abi::MAX_FIXED_FILES) as usize)? };
        if tags.iter().any(|&t| t != 0) {
            return Err(Errno(libc::EINVAL));
        }
    }
    update_files(ctx, up.offset, up.data, up.nr)
}

fn buffers_register(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
    if !rsrc.bufs.is_empty() {
        return Err(Errno(libc::EBUSY));
    }
    if nr == 0 || nr > abi::MAX_REG_BUFFERS {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: iovec is plain data.
    let iovs: Vec<libc::iovec> = unsafe { uaccess::read_pod_vec(arg, nr as usize)? };
    let mut table = Vec::with_capacity(nr as usize);
    for v in iovs {
        let (base, len) = (v.iov_base as u64, v.iov_len as u64);
        if base == 0 {
            if len != 0 {
                return Err(Errno(libc::EFAULT));
            }
            table.push(None);
            continue;
        }
        if len > abi::MAX_REG_BUFFER_LEN {
            return Err(Errno(libc::EFAULT));
        }
        if base.checked_add(len + 4095).is_none() {
            return Err(Errno(libc::EOVERFLOW));
        }
        if len == 0 || !uaccess::is_pinnable(base, len) {
            return Err(Errno(libc::EFAULT));
        }
        table.push(Some(Buf { addr: base, len }));
    }
    rsrc.bufs = table;
    Ok(0)
}

fn eventfd_register(ctx: &Ctx, arg: u64, async_only: bool) -> Result<i32, Errno> {
    let mut slot = ctx.evfd.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err(Errno(libc::EBUSY));
    }
    // SAFETY: i32 is plain data.
    let fd: i32 = unsafe { uaccess::read_pod(arg)? };
    if !crate::sys::fd_open(fd) {
        return Err(Errno(libc::EBADF));
    }
    if fd_link(fd).as_deref() != Some("anon_inode:[eventfd]") {
        return Err(Errno(libc::EINVAL));
    }
    *slot = Some(EventFd { fd: dup_private(fd)?, async_only });
    ctx.has_evfd.store(true, Ordering::Release);
    Ok(0)
}

fn probe(arg: u64, nr: u32) -> Result<i32, Errno> {
    if arg == 0 || nr > 256 {
        return Err(Errno(libc::EINVAL));
    }
    let nr = nr.min(abi::op::LAST as u32) as usize;
    let hdr = core::mem::size_of::<abi::io_uring_probe>();
    let opsz = core::mem::size_of::<abi::io_uring_probe_op>();
    let mut buf = vec![0u8; hdr + nr * opsz];
    uaccess::copy_in(&mut buf, arg)?;
    if buf.iter().any(|&b| b != 0) {
        return Err(Errno(libc::EINVAL));
    }
    buf[0] = abi::op::LAST - 1; // last_op
    buf[1] = nr as u8; // ops_len
    for i in 0..nr {
        let o = hdr + i * opsz;
        buf[o] = i as u8;
        if opdef::lookup(i as u8).is_some() {
            buf[o + 2..o + 4].copy_from_slice(&(abi::IO_URING_OP_SUPPORTED as u16).to_ne_bytes());
        }
    }
    uaccess::copy_out(arg, &buf)?;
    Ok(0)
}

/// IORING_REGISTER_RESTRICTIONS: what an enabled ring may do.
#[derive(Default, Debug, Clone)]
pub(crate) struct Restrictions {
    register_ops: u64,
    sqe_ops: u64,
    flags_allowed: u8,
    flags_required: u8,
}

impl Restrictions {
    /// The kernel's `io_check_restriction`.
    pub fn allows_sqe(&self, opcode: u8, flags: u8) -> bool {
        self.sqe_ops & (1u64 << (opcode & 63)) != 0
            && flags & self.flags_required == self.flags_required
            && flags & !(self.flags_allowed | self.flags_required) == 0
    }
    fn allows_register(&self, opcode: u32) -> bool {
        opcode < 64 && self.register_ops & (1u64 << opcode) != 0
    }
}

fn restrictions_register(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    use abi::io_uring_register_restriction_op as ro;
    if ctx.enabled.load(Ordering::Acquire) {
        return Err(Errno(libc::EBADFD));
    }
    if ctx.restrictions.get().is_some() {
        return Err(Errno(libc::EBUSY));
    }
    let max = ro::IORING_RESTRICTION_LAST as u32 + reg::LAST;
    if arg == 0 || nr > max {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_restriction is plain data.
    let list: Vec<abi::io_uring_restriction> = unsafe { uaccess::read_pod_vec(arg, nr as usize)? };
    let mut r = Restrictions::default();
    for e in list {
        // SAFETY: every variant of this union is a u8.
        let v = unsafe { e.__bindgen_anon_1.register_op };
        match e.opcode as u32 {
            x if x == ro::IORING_RESTRICTION_REGISTER_OP as u32 => {
                if v as u32 >= reg::LAST {
                    return Err(Errno(libc::EINVAL));
                }
                r.register_ops |= 1 << v;
            }
            x if x == ro::IORING_RESTRICTION_SQE_OP as u32 => {
                if v >= abi::op::LAST {
                    return Err(Errno(libc::EINVAL));
                }
                r.sqe_ops |= 1 << v;
            }
            x if x == ro::IORING_RESTRICTION_SQE_FLAGS_ALLOWED as u32 => r.flags_allowed = v,
            x if x == ro::IORING_RESTRICTION_SQE_FLAGS_REQUIRED as u32 => r.flags_required = v,
            _ => return Err(Errno(libc::EINVAL)),
        }
    }
    let _ = ctx.restrictions.set(r);
    Ok(0)
}

fn enable_rings(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    if arg != 0 || nr != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if ctx.enabled.load(Ordering::Acquire) {
        return Err(Errno(libc::EBADFD));
    }
    if ctx.has(abi::IORING_SETUP_SINGLE_ISSUER) {
        ctx.shm.submitter.store(Ctx::tid(), Ordering::Release);
    }
    ctx.enabled.store(true, Ordering::Release);
    if let Some(sqd) = ctx.sqd.get() {
        sqd.wake();
    }
    Ok(0)
}

/// Runs one register opcode (already stripped of USE_REGISTERED_RING).
pub(crate) fn register(ctx: &Arc<Ctx>, opcode: u32, arg: u64, nr: u32) -> Result<i32, Errno> {
    ctx.check_issuer()?;
    if let Some(r) = ctx.restricted() {
        if !r.allows_register(opcode) {
            return Err(Errno(libc::EACCES));
        }
    }
    let no_args = || if arg != 0 || nr != 0 { Err(Errno(libc::EINVAL)) } else { Ok(()) };
    match opcode {
        reg::BUFFERS => {
            if arg == 0 {
                return Err(Errno(libc::EFAULT));
            }
            buffers_register(ctx, arg, nr)
        }
        reg::UNREGISTER_BUFFERS => {
            no_args()?;
            let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
            if rsrc.bufs.is_empty() {
                return Err(Errno(libc::ENXIO));
            }
            rsrc.bufs.clear();
            Ok(0)
        }
        reg::FILES => {
            if arg == 0 {
                return Err(Errno(libc::EFAULT));
            }
            files_register(ctx, arg, nr)
        }
        reg::UNREGISTER_FILES => {
            no_args()?;
            let mut rsrc = ctx.rsrc.write().unwrap_or_else(|e| e.into_inner());
            if rsrc.files.is_empty() {
                return Err(Errno(libc::ENXIO));
            }
            rsrc.files.clear();
            Ok(0)
        }
        reg::FILES_UPDATE => files_update(ctx, arg, nr),
        reg::FILES2 => rsrc_register(ctx, arg, nr, true),
        reg::FILES_UPDATE2 => rsrc_update2(ctx, arg, nr, true),
        reg::FILE_ALLOC_RANGE => {
            if arg == 0 || nr != 0 {
                return Err(Errno(libc::EINVAL));
            }
            file_alloc_range(ctx, arg)
        }
        reg::EVENTFD | reg::EVENTFD_ASYNC => {
            if nr != 1 {
                return Err(Errno(libc::EINVAL));
            }
            eventfd_register(ctx, arg, opcode == reg::EVENTFD_ASYNC)
        }
        reg::UNREGISTER_EVENTFD => {
            no_args()?;
            let mut slot = ctx.evfd.write().unwrap_or_else(|e| e.into_inner());
            if slot.take().is_none() {
                return Err(Errno(libc::ENXIO));
            }
            ctx.has_evfd.store(false, Ordering::Release);
            Ok(0)
        }
        reg::PROBE => probe(arg, nr),
        reg::RESTRICTIONS => restrictions_register(ctx, arg, nr),
        reg::ENABLE_RINGS => enable_rings(ctx, arg, nr),
        reg::SYNC_CANCEL => {
            if arg == 0 || nr != 1 {
                return Err(Errno(libc::EINVAL));
            }
            super::ops::cancel::sync_cancel(ctx, arg)
        }
        x if x == PBUF_RING => super::ops::kbuf::register_ring(ctx, arg, nr),
        x if x == UNREGISTER_PBUF_RING => super::ops::kbuf::unregister_ring(ctx, arg, nr),
        x if x == PBUF_STATUS => super::ops::kbuf::ring_status(ctx, arg, nr),
        _ => Err(Errno(libc::EINVAL)),
    }
}

/// Register opcodes of the provided-buffer family (engine/ops/kbuf.rs).
const PBUF_RING: u32 = reg_op::IORING_REGISTER_PBUF_RING as u32;
const UNREGISTER_PBUF_RING: u32 = reg_op::IORING_UNREGISTER_PBUF_RING as u32;
const PBUF_STATUS: u32 = reg_op::IORING_REGISTER_PBUF_STATUS as u32;
use linux_raw_sys::io_uring::io_uring_register_op as reg_op;
