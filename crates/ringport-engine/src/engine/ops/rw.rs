//! Reads and writes: READ, WRITE, READV, WRITEV, READ_FIXED, WRITE_FIXED
//! (the kernel's io_uring/rw.c).
//!
//! Issue follows the kernel: first a non-blocking attempt inline
//! (`preadv2`/`pwritev2` with `RWF_NOWAIT`); on EAGAIN the request is punted
//! to a worker, which issues it blocking. A short non-blocking transfer on a
//! regular file or block device is not final: the worker finishes the rest
//! and the CQE carries the total, as the kernel's `need_complete_io` retry
//! does. If the program itself passed `RWF_NOWAIT`, the first answer is final.
//! An offset of -1 uses and advances the file position (FEAT_RW_CUR_POS); on a
//! pipe the offset is ignored, and a socket takes 0 or -1 only (ESPIPE
//! otherwise), as on the kernel.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{uaccess, Ctx, Errno, Sqe};
use crate::sys::{fd_open, file_stat, opened_for};

/// Highest user address + 1 (x86_64 and aarch64 with 48-bit VAs): the
/// kernel's `access_ok` bound. Buffers beyond it fail at prep with EFAULT.
const TASK_SIZE: u64 = (1 << 47) - 4096;
/// The kernel's `RWF_SUPPORTED` (HIPRI, DSYNC, SYNC, NOWAIT, APPEND,
/// NOAPPEND, ATOMIC, DONTCACHE, NOSIGNAL), as of Linux 6.18.
const RWF_SUPPORTED: u32 = 0x1ff;
/// RWF flags the kernel's io_uring accepts on any file and that a file
/// without read_iter/write_iter never sees (DSYNC, SYNC, APPEND, NOAPPEND,
/// NOSIGNAL).
const LOOP_IGNORED: i32 = libc::RWF_DSYNC | libc::RWF_SYNC | libc::RWF_APPEND | libc::RWF_NOAPPEND | RWF_NOSIGNAL;
/// `RWF_NOSIGNAL` (Linux 6.18; not in libc).
const RWF_NOSIGNAL: i32 = 0x100;
/// The kernel's `MAX_RW_COUNT`: one transfer is clamped to this.
const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !4095;

/// A prepared read or write.
pub(crate) struct Rw {
    addr: u64,
    len: u32,
    /// `sqe->off`; `u64::MAX` (-1) means the file position.
    off: u64,
    rw_flags: i32,
    /// For READ_FIXED/WRITE_FIXED: the registered buffer index.
    fixed: Option<u16>,
    /// For READV/WRITEV: the iovecs, copied at prep (FEAT_SUBMIT_STABLE).
    iov: Vec<libc::iovec>,
    /// Bytes asked for.
    pub total: u64,
    /// Bytes already transferred by earlier (non-blocking) attempts.
    done: u64,
    /// Chosen for asynchronous direct I/O (see `engine/aio.rs`).
    pub via_aio: bool,
    /// IOSQE_BUFFER_SELECT (READ): the group to take the buffer from at
    /// first issue.
    bgid: Option<u16>,
    /// CQE flags of the selected buffer.
    pub cflags: u32,
    /// A protection-information attribute came with the request (fails at
    /// issue: ringport does no PI).
    pi: bool,
}

impl Rw {
    /// The Linux AIO control block for this request (`aio_data` = `id`,
    /// completion signalled on `resfd`), or None when AIO cannot express it
    /// (the file position, a partly done transfer).
    pub fn iocb(&self, fd: i32, write: bool, id: u64, resfd: u32) -> Option<libc::iocb> {
        // <linux/aio_abi.h> opcodes and flags (not in libc or linux-raw-sys).
        const PREAD: u16 = 0;
        const PWRITE: u16 = 1;
        const PREADV: u16 = 7;
        const PWRITEV: u16 = 8;
        const FLAG_RESFD: u32 = 1;
        if self.off == u64::MAX || self.done != 0 || fd < 0 {
            return None;
        }
        // SAFETY: iocb is plain integers; all-zero is valid.
        let mut cb: libc::iocb = unsafe { core::mem::zeroed() };
        cb.aio_data = id;
        cb.aio_fildes = fd as u32;
        cb.aio_offset = self.off as i64;
        cb.aio_rw_flags = self.rw_flags;
        cb.aio_flags = FLAG_RESFD;
        cb.aio_resfd = resfd;
        if self.iov.is_empty() {
            cb.aio_lio_opcode = if write { PWRITE } else { PREAD };
            cb.aio_buf = self.addr;
            cb.aio_nbytes = (self.len as u64).min(MAX_RW_COUNT);
        } else {
            cb.aio_lio_opcode = if write { PWRITEV } else { PREADV };
            cb.aio_buf = self.iov.as_ptr() as u64;
            cb.aio_nbytes = self.iov.len() as u64;
        }
        Some(cb)
    }
}

fn access_ok(addr: u64, len: u64) -> bool {
    let len = len.min(MAX_RW_COUNT);
    addr.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
}

/// The kernel's `ioprio_check_cap`.
fn check_ioprio(ioprio: u16) -> Result<(), Errno> {
    let class = ioprio >> 13;
    let level = ioprio & 7;
    match class {
        0 if level != 0 => Err(Errno(libc::EINVAL)),
        // SAFETY: geteuid has no preconditions.
        1 if unsafe { libc::geteuid() } != 0 => Err(Errno(libc::EPERM)),
        0..=3 => Ok(()),
        _ => Err(Errno(libc::EINVAL)),
    }
}

#[inline(always)]
fn prep_common(sqe: &Sqe) -> Result<Rw, Errno> {
    check_ioprio(sqe.ioprio())?;
    let pi = prep_attr(sqe)?;
    Ok(Rw {
        addr: sqe.addr(),
        len: sqe.len(),
        off: sqe.off(),
        rw_flags: sqe.op_flags() as i32,
        fixed: None,
        iov: Vec::new(),
        total: sqe.len() as u64,
        done: 0,
        via_aio: false,
        bgid: None,
        cflags: 0,
        pi,
    })
}

/// `attr_type_mask` (the last SQE word) and the attribute at `attr_ptr`
/// (addr3), as the kernel's `io_prep_rw_pi` reads them: only the PI
/// attribute is defined; it is copied in and checked at prep. Returns
/// whether one was given.
fn prep_attr(sqe: &Sqe) -> Result<bool, Errno> {
    /// `IORING_RW_ATTR_FLAG_PI`.
    const ATTR_PI: u64 = 1;
    match sqe.pad2() {
        0 => Ok(false),
        ATTR_PI => {
            // struct io_uring_attr_pi: flags u16, app_tag u16, len u32,
            // addr u64, seed u64, rsvd u64.
            let mut a = [0u8; 32];
            uaccess::copy_in(&mut a, sqe.addr3())?;
            let word = |i: usize| u64::from_ne_bytes(a[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            if word(3) != 0 {
                return Err(Errno(libc::EINVAL));
            }
            if !access_ok(word(1), word(0) >> 32) {
                return Err(Errno(libc::EFAULT));
            }
            Ok(true)
        }
        _ => Err(Errno(libc::EINVAL)),
    }
}

#[inline(always)]
fn prep_single(sqe: &Sqe) -> Result<OpData, Errno> {
    let rw = prep_common(sqe)?;
    if !access_ok(rw.addr, rw.len as u64) {
        return Err(Errno(libc::EFAULT));
    }
    Ok(OpData::Rw(rw))
}

#[inline(always)]
fn prep_vectored(sqe: &Sqe) -> Result<OpData, Errno> {
    let mut rw = prep_common(sqe)?;
    if rw.len > abi::UIO_MAXIOV {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: iovec is plain data.
    let mut iov: Vec<libc::iovec> = unsafe { uaccess::read_pod_vec(rw.addr, rw.len as usize)? };
    // As the kernel's import_iovec: a negative length anywhere (checked
    // while copying the array in) before any address.
    if iov.iter().any(|v| v.iov_len > isize::MAX as usize) {
        return Err(Errno(libc::EINVAL));
    }
    let mut total = 0u64;
    for v in iov.iter_mut() {
        let len = v.iov_len as u64;
        if !access_ok(v.iov_base as u64, len) {
            return Err(Errno(libc::EFAULT));
        }
        // Clamp the total to MAX_RW_COUNT as import_iovec does.
        let room = MAX_RW_COUNT - total;
        if len > room {
            v.iov_len = room as usize;
        }
        total += v.iov_len as u64;
    }
    rw.total = total;
    rw.iov = iov;
    Ok(OpData::Rw(rw))
}

#[inline(always)]
fn prep_fixed(sqe: &Sqe) -> Result<OpData, Errno> {
    let mut rw = prep_common(sqe)?;
    rw.fixed = Some(sqe.buf_index());
    Ok(OpData::Rw(rw))
}

#[inline(always)]
pub(crate) fn prep_read(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.flags() & crate::abi::IOSQE_BUFFER_SELECT != 0 {
        // The buffer comes from a group at issue (engine/ops/kbuf.rs).
        let mut rw = prep_common(sqe)?;
        rw.bgid = Some(sqe.buf_index());
        return Ok(OpData::Rw(rw));
    }
    prep_single(sqe)
}
#[inline(always)]
pub(crate) fn prep_write(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_single(sqe)
}
#[inline(always)]
pub(crate) fn prep_readv(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.flags() & crate::abi::IOSQE_BUFFER_SELECT != 0 {
        // One iovec, whose length is what to read into the selected
        // buffer (io_iov_buffer_select_prep).
        let mut rw = prep_common(sqe)?;
        if rw.len != 1 {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: iovec is plain data.
        let v: libc::iovec = unsafe { uaccess::read_pod(rw.addr)? };
        if v.iov_len > isize::MAX as usize {
            return Err(Errno(libc::EINVAL));
        }
        rw.len = v.iov_len.min(u32::MAX as usize) as u32;
        rw.total = rw.len as u64;
        rw.bgid = Some(sqe.buf_index());
        return Ok(OpData::Rw(rw));
    }
    prep_vectored(sqe)
}
#[inline(always)]
pub(crate) fn prep_writev(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_vectored(sqe)
}
#[inline(always)]
pub(crate) fn prep_read_fixed(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_fixed(sqe)
}
#[inline(always)]
pub(crate) fn prep_write_fixed(_: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    prep_fixed(sqe)
}

pub(crate) fn issue_read(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    issue_rw(ctx, req, mode, false)
}
pub(crate) fn issue_write(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    issue_rw(ctx, req, mode, true)
}

/// The kernel's `io_import_reg_buf`: the range must lie inside buffer `index`.
fn check_fixed(ctx: &Ctx, index: u16, addr: u64, len: u32) -> Result<(), Errno> {
    let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
    let buf = rsrc.bufs.get(index as usize).and_then(|b| b.as_ref()).ok_or(Errno(libc::EFAULT))?;
    let end = addr.checked_add(len as u64).ok_or(Errno(libc::EFAULT))?;
    if addr < buf.addr || end > buf.addr + buf.len {
        return Err(Errno(libc::EFAULT));
    }
    Ok(())
}

/// The iovecs still to transfer after `done` bytes.
fn remaining(rw: &Rw) -> Vec<libc::iovec> {
    if rw.iov.is_empty() {
        let skip = rw.done.min(rw.len as u64);
        return vec![libc::iovec {
            iov_base: (rw.addr + skip) as usize as *mut libc::c_void,
            iov_len: (rw.len as u64 - skip).min(MAX_RW_COUNT) as usize,
        }];
    }
    let mut skip = rw.done;
    let mut out = Vec::with_capacity(rw.iov.len());
    for v in &rw.iov {
        let l = v.iov_len as u64;
        if skip >= l {
            skip -= l;
            continue;
        }
        out.push(libc::iovec {
            iov_base: (v.iov_base as u64 + skip) as usize as *mut libc::c_void,
            iov_len: (l - skip) as usize,
        });
        skip = 0;
    }
    out
}

/// What polled I/O on `fd` meets below the file (the kernel's IOPOLL path).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PollDev {
    /// No block device under the file (tmpfs, procfs, ...): such files
    /// have no `iopoll` method, and IOPOLL refuses them.
    None,
    /// A block device without poll queues (`queue/io_poll` is 0).
    NoQueues,
    /// A block device with poll queues.
    Polls,
}

/// Classifies block device `dev`, via `/sys/dev/block/M:m/queue/io_poll`
/// (a partition's disk's queue). Cached per device.
fn poll_dev(dev: u64) -> PollDev {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<u64, PollDev>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    *cache.get_or_insert_with(HashMap::new).entry(dev).or_insert_with(|| {
        let (maj, min) = (libc::major(dev), libc::minor(dev));
        let base = format!("/sys/dev/block/{maj}:{min}");
        // A partition has no queue/ of its own: use its disk's.
        match [format!("{base}/queue/io_poll"), format!("{base}/../queue/io_poll")]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
        {
            None => PollDev::None,
            Some(v) if v.trim() == "1" => PollDev::Polls,
            Some(_) => PollDev::NoQueues,
        }
    })
}

/// IOPOLL's check (the kernel's: O_DIRECT and a file with `iopoll`, then
/// the block layer's): EOPNOTSUPP unless the I/O can be polled or is done
/// without polling. On a device without poll queues the kernel's block
/// layer refuses polled bios, but a direct *write* to a file on a file
/// system goes through unpolled (iomap completes writes out of line and
/// clears the polled flag), so only reads, and writes to the block device
/// itself, are refused there — measured on Linux 6.18, ext4 on virtio-blk.
fn iopoll_refuses(fd: i32, write: bool) -> Option<i32> {
    // SAFETY: F_GETFL only reads the file's status flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Some(-libc::EBADF);
    }
    let Some(st) = (fl & libc::O_DIRECT != 0).then(|| file_stat(fd)).flatten() else {
        return Some(-libc::EOPNOTSUPP);
    };
    let blockdev = st.mode & libc::S_IFMT == libc::S_IFBLK;
    match poll_dev(if blockdev { st.rdev } else { st.dev }) {
        PollDev::Polls => None,
        PollDev::NoQueues if write && !blockdev => None,
        _ => Some(-libc::EOPNOTSUPP),
    }
}

/// True for files whose short transfers the kernel completes (regular files
/// and block devices).
fn completes_short(fd: i32) -> bool {
    file_stat(fd).is_some_and(|st| matches!(st.mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFBLK))
}

/// What the engine has learned about an fd, to route its I/O without a
/// wasted attempt. A hint is keyed by fd number, and a number can be reused
/// for another file, so a hint is only ever used after checking it against
/// the file at hand (see `still_direct`): a stale one costs a system call,
/// never a different result or CQE order.
mod hints {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// The fd was looked at.
    pub const KNOWN: u8 = 1;
    /// O_DIRECT: RWF_NOWAIT never says EAGAIN, so it would block inline.
    pub const DIRECT: u8 = 2;
    /// A non-blocking write was refused (EOPNOTSUPP: ext4's buffered
    /// writes, say): writes go to a worker without trying (the kernel
    /// checks the file's FMODE_BUF_WASYNC the same way, for free).
    pub const NOWAIT_WRITE_REFUSED: u8 = 4;

    const SLOTS: usize = 4096;
    static TABLE: [AtomicU8; SLOTS] = [const { AtomicU8::new(0) }; SLOTS];

    /// The hints for `fd`, learning its open flags on first sight.
    pub fn get(fd: i32) -> u8 {
        let Some(slot) = usize::try_from(fd).ok().and_then(|i| TABLE.get(i)) else { return 0 };
        let h = slot.load(Ordering::Relaxed);
        if h & KNOWN != 0 {
            return h;
        }
        // SAFETY: F_GETFL only reads the file's status flags.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fl < 0 {
            return 0;
        }
        let h = KNOWN | if fl & libc::O_DIRECT != 0 { DIRECT } else { 0 };
        slot.store(h, Ordering::Relaxed);
        h
    }

    /// Adds `bit` to the hints for `fd`.
    pub fn add(fd: i32, bit: u8) {
        if let Some(slot) = usize::try_from(fd).ok().and_then(|i| TABLE.get(i)) {
            slot.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Re-checks O_DIRECT before a request goes to AIO: a hint left by a
    /// closed fd whose number was reused is forgotten.
    pub fn still_direct(fd: i32) -> bool {
        // SAFETY: F_GETFL only reads the file's status flags.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        let direct = fl >= 0 && fl & libc::O_DIRECT != 0;
        if !direct {
            if let Some(slot) = usize::try_from(fd).ok().and_then(|i| TABLE.get(i)) {
                slot.store(0, Ordering::Relaxed);
            }
        }
        direct
    }
}

/// True for a regular file on a memory-backed file system (tmpfs, ramfs):
/// its I/O never waits on a device, so it may run inline without
/// RWF_NOWAIT when the file refuses that flag. Checked per request.
fn memfs_regular(fd: i32) -> bool {
    let mut fs = core::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fs is a valid out-pointer.
    if unsafe { libc::fstatfs(fd, fs.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs succeeded.
    let t = unsafe { fs.assume_init() }.f_type;
    let mem = t == libc::TMPFS_MAGIC || t as u32 == linux_raw_sys::general::RAMFS_MAGIC;
    mem && completes_short(fd) && !is_blockdev(fd)
}

fn is_blockdev(fd: i32) -> bool {
    file_stat(fd).is_some_and(|st| st.mode & libc::S_IFMT == libc::S_IFBLK)
}

/// `preadv2`/`pwritev2` as raw system calls: the engine is not a
/// cancellation point, so glibc's wrapper (about 8% of a page-cache read)
/// is skipped, as is libc's `syscall()` (which, under interception, is the
/// library's own interposed one). Returns the count, or -1 with errno set.
#[inline]
fn rw_syscall(write: bool, fd: i32, iov: &[libc::iovec], off: i64, flags: i32) -> isize {
    let nr = if write { libc::SYS_pwritev2 } else { libc::SYS_preadv2 };
    let args = [fd as libc::c_long, iov.as_ptr() as libc::c_long, iov.len() as libc::c_long, off, 0, flags as libc::c_long];
    // SAFETY: the iovecs point at program memory; the kernel checks every
    // address and answers EFAULT for bad ones. On 64-bit Linux the offset
    // travels whole in the low half and the high half is 0 (-1 = position).
    let r = unsafe { crate::rawsys::syscall6(nr, args) };
    if r < 0 {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = -r as i32 };
        return -1;
    }
    r as isize
}

/// The buffer (address, length) of a read that may be issued alongside
/// others of its batch (`engine/par.rs`): READ or READ_FIXED at an explicit
/// offset, with no SQE flag but FIXED_FILE and no buffer to select, not yet
/// started, on a ring without IOPOLL.
pub(crate) fn parallel_buffer(ctx: &Ctx, req: &Req) -> Option<(u64, u64)> {
    if !matches!(req.opcode, crate::abi::op::READ | crate::abi::op::READ_FIXED)
        || req.sqe_flags & !crate::abi::IOSQE_FIXED_FILE != 0
        || req.preset.is_some()
        || ctx.has(crate::abi::IORING_SETUP_IOPOLL)
    {
        return None;
    }
    let OpData::Rw(rw) = &req.data else { return None };
    if rw.off == u64::MAX || rw.bgid.is_some() || rw.done != 0 || !rw.iov.is_empty() || rw.rw_flags & libc::RWF_HIPRI != 0 {
        return None;
    }
    Some((rw.addr, rw.len as u64))
}

fn pollable(opcode: u8) -> bool {
    crate::engine::opdef::lookup(opcode).is_some_and(|d| d.pollable)
}

/// Issues a read or write. A non-blocking read of a regular file that came
/// back short goes on inline at once, as the kernel's `io_read` loops: the
/// next attempt reads on (the rest was cached after all), hits the end of
/// the file (0: done, in its place among the CQEs), or would block (a
/// worker finishes it).
fn issue_rw(ctx: &Ctx, req: &mut Req, mode: Mode, write: bool) -> Issue {
    loop {
        if let Some(issue) = issue_rw_once(ctx, req, mode, write) {
            return issue;
        }
    }
}

/// One attempt of [`issue_rw`]; None: a short read to go on with.
fn issue_rw_once(ctx: &Ctx, req: &mut Req, mode: Mode, write: bool) -> Option<Issue> {
    let fd = req.file.raw();
    let OpData::Rw(rw) = &mut req.data else { return Some(Issue::Done(-libc::EINVAL, 0)) };
    if let Some(bgid) = rw.bgid.take() {
        // The selected buffer is consumed at once and kept for the whole
        // request (the kernel's choice for unlocked or unpollable issue).
        match super::kbuf::lock(ctx).select(bgid, rw.len) {
            Some(p) => {
                rw.addr = p.addr;
                rw.len = p.len;
                rw.total = p.len as u64;
                rw.cflags = p.cqe_flags();
            }
            None => return Some(Issue::Done(-libc::ENOBUFS, 0)),
        }
    }
    // The kernel resolves the file before it looks at the buffer or flags;
    // ringport only checks the fd once one of those checks has failed.
    if let Some(index) = rw.fixed {
        if let Err(e) = check_fixed(ctx, index, rw.addr, rw.len) {
            return Some(Issue::Done(if fd_open(fd) { e.neg() } else { -libc::EBADF }, 0));
        }
    }
    // The kernel's io_rw_init_file: the file's mode, then its
    // kiocb_set_rw_flags (unknown flags), then HIPRI outside IOPOLL; then a
    // PI attribute, which needs O_DIRECT and a device with integrity data
    // (ringport supports neither).
    let unknown = rw.rw_flags as u32 & !RWF_SUPPORTED != 0;
    let hipri = rw.rw_flags & libc::RWF_HIPRI != 0 && !ctx.has(crate::abi::IORING_SETUP_IOPOLL);
    if unknown || hipri || rw.pi {
        let e = if !opened_for(fd, write) {
            -libc::EBADF
        } else if unknown || rw.pi {
            -libc::EOPNOTSUPP
        } else {
            -libc::EINVAL
        };
        return Some(Issue::Done(e, 0));
    }
    // An IOPOLL ring only does direct I/O that can be polled (or that the
    // kernel does without polling).
    if ctx.has(crate::abi::IORING_SETUP_IOPOLL) {
        if let Some(e) = iopoll_refuses(fd, write) {
            return Some(Issue::Done(e, 0));
        }
    }
    let user_nowait = rw.rw_flags & libc::RWF_NOWAIT != 0;
    // In a worker, a pollable file is still never waited on by blocking:
    // like io-wq, try it non-blocking and wait in the reactor.
    let mut nonblock = !user_nowait && (mode == Mode::NonBlock || !completes_short(fd));
    let hint = if nonblock && mode == Mode::NonBlock { hints::get(fd) } else { 0 };
    if write && hint & hints::NOWAIT_WRITE_REFUSED != 0 {
        return Some(Issue::Punt);
    }
    if hint & hints::DIRECT != 0 && hints::still_direct(fd) {
        if rw.off != u64::MAX && rw.done == 0 {
            // Direct I/O: start it asynchronously (engine/aio.rs).
            rw.via_aio = true;
            return Some(Issue::Park);
        }
        return Some(Issue::Punt);
    }
    let mut flags = rw.rw_flags | if nonblock { libc::RWF_NOWAIT } else { 0 };
    let single;
    let owned;
    let iov: &[libc::iovec] = if rw.done == 0 && !rw.iov.is_empty() {
        &rw.iov
    } else if rw.done == 0 {
        single = [libc::iovec {
            iov_base: rw.addr as usize as *mut libc::c_void,
            iov_len: (rw.len as u64).min(MAX_RW_COUNT) as usize,
        }];
        &single
    } else {
        owned = remaining(rw);
        &owned
    };
    let mut off: i64 = if rw.off == u64::MAX { -1 } else { rw.off.wrapping_add(rw.done) as i64 };
    let n = loop {
        let n = rw_syscall(write, fd, iov, off, flags);
        if n < 0 && off != -1 && Errno::last().0 == libc::ESPIPE {
            if crate::engine::par::in_batch() {
                // Nothing was read: the submitter issues it again, in order.
                return Some(Issue::Done(-libc::ESPIPE, 0));
            }
            // A socket refuses a position other than 0 (sock_read_iter's
            // ESPIPE); other streams (pipes) ignore it, as on the kernel.
            if off != 0 && file_stat(fd).is_some_and(|st| st.mode & libc::S_IFMT == libc::S_IFSOCK) {
                return Some(Issue::Done(-libc::ESPIPE, 0));
            }
            off = -1;
            continue;
        }
        if n < 0 && mode == Mode::Block && flags & libc::RWF_NOWAIT == 0 && flags != 0 && flags & !LOOP_IGNORED == 0 && Errno::last().0 == libc::EOPNOTSUPP {
            // A file without read_iter/write_iter (a directory, some
            // devices): preadv2/pwritev2 refuse any flag there, while the
            // kernel's io_uring calls its read/write method and ignores them.
            flags = 0;
            continue;
        }
        if n < 0 && mode == Mode::Block && nonblock && flags & libc::RWF_NOWAIT != 0 && Errno::last().0 == libc::EOPNOTSUPP {
            // In a worker, a file without RWF_NOWAIT support is simply
            // issued blocking.
            flags &= !libc::RWF_NOWAIT;
            continue;
        }
        break n;
    };
    if n < 0 && off < -1 && Errno::last().0 == libc::EINVAL && !opened_for(fd, write) {
        // preadv2/pwritev2 refuse a negative position before they look at
        // the file; the kernel's io_uring checks the file's mode first.
        return Some(Issue::Done(-libc::EBADF, 0));
    }
    if n < 0 {
        let e = Errno::last();
        if nonblock && e.0 == libc::EAGAIN && !completes_short(fd) && pollable(req.opcode) {
            // A pipe or socket: wait for readiness, then retry.
            return Some(Issue::Park);
        }
        if nonblock && e.0 == libc::EOPNOTSUPP && mode == Mode::NonBlock && memfs_regular(fd) {
            // A tmpfs/ramfs file that refuses RWF_NOWAIT: plain I/O cannot
            // wait on a device, so retry it at once, inline.
            nonblock = false;
            flags &= !libc::RWF_NOWAIT;
            off = if rw.off == u64::MAX { -1 } else { rw.off.wrapping_add(rw.done) as i64 };
            let n = rw_syscall(write, fd, iov, off, flags);
            return finish_rw(rw, n, nonblock, fd, write);
        }
        // Only an answer to ringport's own RWF_NOWAIT sends the request to a
        // worker; a worker's call without it (a file that refused the flag)
        // gives the final result.
        if nonblock && flags & libc::RWF_NOWAIT != 0 && (e.0 == libc::EAGAIN || e.0 == libc::EOPNOTSUPP) {
            if write && e.0 == libc::EOPNOTSUPP && mode == Mode::NonBlock {
                hints::add(fd, hints::NOWAIT_WRITE_REFUSED);
            }
            return Some(Issue::Punt);
        }
        if user_nowait && write && e.0 == libc::EOPNOTSUPP && file_stat(fd).is_some_and(|st| st.mode & libc::S_IFMT == libc::S_IFREG) {
            // The program's own RWF_NOWAIT on a buffered write the file
            // system cannot do without blocking (ext4's): pwritev2 says
            // EOPNOTSUPP, the kernel's io_uring EAGAIN. (A file that takes
            // no RWF_NOWAIT at all, a directory say, is EOPNOTSUPP in both.)
            return Some(Issue::Done(if rw.done > 0 { rw.done as i32 } else { -libc::EAGAIN }, 0));
        }
    }
    finish_rw(rw, n, nonblock, fd, write)
}

/// The outcome of a transfer that returned `n` (-1 with errno set): a
/// count, or an error once nothing was transferred. A short non-blocking
/// transfer on a regular file goes on: a read inline (None), a write in a
/// worker (as the kernel's `io_write` retries in io-wq).
fn finish_rw(rw: &mut Rw, n: isize, nonblock: bool, fd: i32, write: bool) -> Option<Issue> {
    if n < 0 {
        let e = Errno::last();
        return Some(Issue::Done(if rw.done > 0 { rw.done as i32 } else { e.neg() }, 0));
    }
    rw.done += n as u64;
    if nonblock && n > 0 && rw.done < rw.total && completes_short(fd) {
        return if write { Some(Issue::Punt) } else { None };
    }
    Some(Issue::Done(rw.done as i32, 0))
}
