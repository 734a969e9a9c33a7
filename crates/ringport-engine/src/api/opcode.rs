//! Builders for SQEs, one type per opcode, as in the `io-uring` crate:
//! `opcode::Read::new(Fd(fd), ptr, len).offset(o).build().user_data(u)`.

use crate::abi::{self, op};
use crate::squeue::Entry;
use crate::types::{statx, DestinationSlot, Fd, FsyncFlags, OpenHow, Target, TimeoutFlags, Timespec};
use std::os::fd::RawFd;

/// An entry that works on no file: `fd` -1, with `addr`, `len`, `off` and
/// the per-op flags word (the timeout and cancel family).
fn fileless(code: u8, addr: u64, len: u32, off: u64, op_flags: u32) -> Entry {
    let mut e = Entry::new(code);
    e.0.fd = -1;
    e.0.__bindgen_anon_2.addr = addr;
    e.0.len = len;
    e.0.__bindgen_anon_1.off = off;
    e.0.__bindgen_anon_3.timeout_flags = op_flags;
    e
}

fn with_target(mut e: Entry, fd: Target) -> Entry {
    match fd {
        Target::Fd(fd) => e.0.fd = fd,
        Target::Fixed(i) => {
            e.0.fd = i as i32;
            e.0.flags |= abi::IOSQE_FIXED_FILE;
        }
    }
    e
}

/// `IORING_OP_NOP`: completes with 0 (or an injected result).
#[derive(Clone, Copy, Debug, Default)]
pub struct Nop {
    inject: Option<i32>,
}

impl Nop {
    /// The opcode.
    pub const CODE: u8 = op::NOP;
    /// A plain NOP.
    pub fn new() -> Nop {
        Nop::default()
    }
    /// Completes with `res` instead of 0 (`IORING_NOP_INJECT_RESULT`).
    pub fn inject_result(mut self, res: i32) -> Nop {
        self.inject = Some(res);
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = Entry::new(Self::CODE);
        if let Some(res) = self.inject {
            e.0.__bindgen_anon_3.nop_flags = abi::IORING_NOP_INJECT_RESULT;
            e.0.len = res as u32;
        }
        e
    }
}

/// Defines a read/write opcode builder: target, buffer address, length, and
/// the common `offset`, `rw_flags` and `ioprio` setters.
macro_rules! rw_op {
    ($(#[$doc:meta])* $name:ident, $code:expr, $buf:ty, $len:ident $(, $extra:ident : $ety:ty => $set:ident)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            fd: Target,
            addr: $buf,
            $len: u32,
            offset: u64,
            rw_flags: i32,
            ioprio: u16,
            $($extra: $ety,)?
        }

        impl $name {
            /// The opcode.
            pub const CODE: u8 = $code;
            /// A new entry at offset 0.
            pub fn new(fd: impl Into<Target>, addr: $buf, $len: u32 $(, $extra: $ety)?) -> Self {
                $name { fd: fd.into(), addr, $len, offset: 0, rw_flags: 0, ioprio: 0 $(, $extra)? }
            }
            /// File offset; `u64::MAX` (-1) uses and advances the file position.
            pub fn offset(mut self, offset: u64) -> Self {
                self.offset = offset;
                self
            }
            /// `RWF_*` flags, as for `preadv2`.
            pub fn rw_flags(mut self, flags: i32) -> Self {
                self.rw_flags = flags;
                self
            }
            /// I/O priority.
            pub fn ioprio(mut self, ioprio: u16) -> Self {
                self.ioprio = ioprio;
                self
            }
            /// The SQE.
            pub fn build(self) -> Entry {
                let mut e = with_target(Entry::new(Self::CODE), self.fd);
                e.0.__bindgen_anon_2.addr = self.addr as u64;
                e.0.len = self.$len;
                e.0.__bindgen_anon_1.off = self.offset;
                e.0.__bindgen_anon_3.rw_flags = self.rw_flags as u32;
                e.0.ioprio = self.ioprio;
                $(e.0.__bindgen_anon_4.$set = self.$extra;)?
                e
            }
        }
    };
}

rw_op!(
    /// `IORING_OP_READ`: read into one buffer.
    Read, op::READ, *mut u8, len
);
rw_op!(
    /// `IORING_OP_WRITE`: write from one buffer.
    Write, op::WRITE, *const u8, len
);
rw_op!(
    /// `IORING_OP_READV`: read into an iovec array (`len` iovecs).
    Readv, op::READV, *const libc::iovec, len
);
rw_op!(
    /// `IORING_OP_WRITEV`: write from an iovec array (`len` iovecs).
    Writev, op::WRITEV, *const libc::iovec, len
);
rw_op!(
    /// `IORING_OP_READ_FIXED`: read into registered buffer `buf_index`.
    ReadFixed, op::READ_FIXED, *mut u8, len, buf_index: u16 => buf_index
);
rw_op!(
    /// `IORING_OP_WRITE_FIXED`: write from registered buffer `buf_index`.
    WriteFixed, op::WRITE_FIXED, *const u8, len, buf_index: u16 => buf_index
);

/// `IORING_OP_FSYNC`: sync a file (`DATASYNC` for data only).
#[derive(Clone, Copy, Debug)]
pub struct Fsync {
    fd: Target,
    flags: FsyncFlags,
}

impl Fsync {
    /// The opcode.
    pub const CODE: u8 = op::FSYNC;
    /// A full fsync of `fd`.
    pub fn new(fd: impl Into<Target>) -> Fsync {
        Fsync { fd: fd.into(), flags: FsyncFlags::default() }
    }
    /// Sets the flags.
    pub fn flags(mut self, flags: FsyncFlags) -> Fsync {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = with_target(Entry::new(Self::CODE), self.fd);
        e.0.__bindgen_anon_3.fsync_flags = self.flags.0;
        e
    }
}

/// `IORING_OP_TIMEOUT`: completes with `-ETIME` after `timespec`, or with 0
/// once `count` other completions have been posted.
#[derive(Clone, Copy, Debug)]
pub struct Timeout {
    timespec: *const Timespec,
    count: u32,
    flags: TimeoutFlags,
}

impl Timeout {
    /// The opcode.
    pub const CODE: u8 = op::TIMEOUT;
    /// A timeout of `*timespec` (read when the entry is submitted).
    pub fn new(timespec: *const Timespec) -> Timeout {
        Timeout { timespec, count: 0, flags: TimeoutFlags::empty() }
    }
    /// Completions that satisfy the timeout (for MULTISHOT: firings).
    pub fn count(mut self, count: u32) -> Timeout {
        self.count = count;
        self
    }
    /// Sets the flags.
    pub fn flags(mut self, flags: TimeoutFlags) -> Timeout {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.timespec as u64, 1, self.count as u64, self.flags.0)
    }
}

/// `IORING_OP_TIMEOUT_REMOVE`: removes the timeout with `user_data`.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutRemove {
    user_data: u64,
}

impl TimeoutRemove {
    /// The opcode.
    pub const CODE: u8 = op::TIMEOUT_REMOVE;
    /// Targets the timeout whose SQE carried `user_data`.
    pub fn new(user_data: u64) -> TimeoutRemove {
        TimeoutRemove { user_data }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.user_data, 0, 0, 0)
    }
}

/// `IORING_OP_TIMEOUT_REMOVE` with `IORING_TIMEOUT_UPDATE`: gives the
/// timeout with `user_data` a new time.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutUpdate {
    user_data: u64,
    timespec: *const Timespec,
    flags: TimeoutFlags,
}

impl TimeoutUpdate {
    /// The opcode.
    pub const CODE: u8 = op::TIMEOUT_REMOVE;
    /// Re-arms the timeout `user_data` with `*timespec`.
    pub fn new(user_data: u64, timespec: *const Timespec) -> TimeoutUpdate {
        TimeoutUpdate { user_data, timespec, flags: TimeoutFlags::empty() }
    }
    /// Sets the flags (ABS).
    pub fn flags(mut self, flags: TimeoutFlags) -> TimeoutUpdate {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        // addr2 (the new time) shares its bytes with `off`.
        fileless(Self::CODE, self.user_data, 0, self.timespec as u64, self.flags.0 | abi::IORING_TIMEOUT_UPDATE)
    }
}

/// `IORING_OP_POLL_ADD`: completes with the ready `poll(2)` events of a
/// file; with `multi(true)`, posts each readiness (with
/// `IORING_CQE_F_MORE`) until removed.
#[derive(Clone, Copy, Debug)]
pub struct PollAdd {
    fd: Target,
    flags: u32,
    multi: bool,
}

impl PollAdd {
    /// The opcode.
    pub const CODE: u8 = op::POLL_ADD;
    /// Polls `fd` for `flags` (`libc::POLLIN` ...).
    pub fn new(fd: impl Into<Target>, flags: u32) -> PollAdd {
        PollAdd { fd: fd.into(), flags, multi: false }
    }
    /// Multishot: stay armed.
    pub fn multi(mut self, multi: bool) -> PollAdd {
        self.multi = multi;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = with_target(Entry::new(Self::CODE), self.fd);
        e.0.__bindgen_anon_3.poll32_events = self.flags;
        if self.multi {
            e.0.len = abi::IORING_POLL_ADD_MULTI;
        }
        e
    }
}

/// `IORING_OP_POLL_REMOVE`: removes the poll with `user_data`.
#[derive(Clone, Copy, Debug)]
pub struct PollRemove {
    user_data: u64,
}

impl PollRemove {
    /// The opcode.
    pub const CODE: u8 = op::POLL_REMOVE;
    /// Targets the poll whose SQE carried `user_data`.
    pub fn new(user_data: u64) -> PollRemove {
        PollRemove { user_data }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.user_data, 0, 0, 0)
    }
}

/// `IORING_OP_ASYNC_CANCEL` by user data.
#[derive(Clone, Copy, Debug)]
pub struct AsyncCancel {
    user_data: u64,
}

impl AsyncCancel {
    /// The opcode.
    pub const CODE: u8 = op::ASYNC_CANCEL;
    /// Cancels the request whose SQE carried `user_data`.
    pub fn new(user_data: u64) -> AsyncCancel {
        AsyncCancel { user_data }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        AsyncCancel2::new(crate::types::CancelBuilder::user_data(self.user_data)).build()
    }
}

/// `IORING_OP_ASYNC_CANCEL` with a [`crate::types::CancelBuilder`].
#[derive(Clone, Copy, Debug)]
pub struct AsyncCancel2 {
    builder: crate::types::CancelBuilder,
}

impl AsyncCancel2 {
    /// The opcode.
    pub const CODE: u8 = op::ASYNC_CANCEL;
    /// Cancels what `builder` names.
    pub fn new(builder: crate::types::CancelBuilder) -> AsyncCancel2 {
        AsyncCancel2 { builder }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let b = self.builder;
        let mut e = match b.fd {
            Some(t) => with_target(Entry::new(Self::CODE), t),
            None => {
                let mut e = Entry::new(Self::CODE);
                e.0.fd = -1;
                e
            }
        };
        let fixed = matches!(b.fd, Some(Target::Fixed(_)));
        e.0.flags &= !abi::IOSQE_FIXED_FILE;
        e.0.__bindgen_anon_2.addr = b.user_data;
        e.0.__bindgen_anon_3.cancel_flags = b.flags | if fixed { abi::IORING_ASYNC_CANCEL_FD_FIXED } else { 0 };
        e
    }
}

/// `IORING_OP_LINK_TIMEOUT`: bounds the request linked before it; if that
/// request has not completed after `timespec`, it is cancelled.
#[derive(Clone, Copy, Debug)]
pub struct LinkTimeout {
    timespec: *const Timespec,
    flags: TimeoutFlags,
}

impl LinkTimeout {
    /// The opcode.
    pub const CODE: u8 = op::LINK_TIMEOUT;
    /// A link timeout of `*timespec` (read when the entry is submitted).
    pub fn new(timespec: *const Timespec) -> LinkTimeout {
        LinkTimeout { timespec, flags: TimeoutFlags::empty() }
    }
    /// Sets the flags (ABS, clocks).
    pub fn flags(mut self, flags: TimeoutFlags) -> LinkTimeout {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.timespec as u64, 1, 0, self.flags.0)
    }
}

/// An entry with the op's fields set from a file target (`fd` or a fixed
/// slot) and the common address/length/offset fields.
fn on_file(code: u8, fd: Target, addr: u64, len: u32, off: u64, op_flags: u32) -> Entry {
    let mut e = with_target(Entry::new(code), fd);
    e.0.__bindgen_anon_2.addr = addr;
    e.0.len = len;
    e.0.__bindgen_anon_1.off = off;
    e.0.__bindgen_anon_3.rw_flags = op_flags;
    e
}

/// Sets the SQE's `addr3` (the path of GETXATTR/SETXATTR).
fn set_addr3(e: &mut Entry, v: u64) {
    // SAFETY: the union's members are plain integers laid over the same
    // bytes; writing addr3 through the bindgen accessor is a plain store.
    unsafe { e.0.__bindgen_anon_6.__bindgen_anon_1.as_mut().addr3 = v };
}

/// An entry on a directory fd (never a fixed file) with a path in `addr`.
fn at_dir(code: u8, dirfd: Fd, path: *const libc::c_char, len: u32, addr2: u64, op_flags: u32) -> Entry {
    on_file(code, Target::Fd(dirfd.0), path as u64, len, addr2, op_flags)
}

/// `IORING_OP_OPENAT`: `openat(dirfd, pathname, flags, mode)`; the CQE is
/// the new fd, or with [`OpenAt::file_index`] a direct descriptor.
#[derive(Clone, Copy, Debug)]
pub struct OpenAt {
    dirfd: Fd,
    pathname: *const libc::c_char,
    file_index: Option<DestinationSlot>,
    flags: i32,
    mode: libc::mode_t,
}

impl OpenAt {
    /// The opcode.
    pub const CODE: u8 = op::OPENAT;
    /// Opens `pathname` relative to `dirfd` (`Fd(libc::AT_FDCWD)` for the cwd).
    pub fn new(dirfd: Fd, pathname: *const libc::c_char) -> OpenAt {
        OpenAt { dirfd, pathname, file_index: None, flags: 0, mode: 0 }
    }
    /// Installs the file in the registered table instead of the fd table.
    pub fn file_index(mut self, file_index: Option<DestinationSlot>) -> OpenAt {
        self.file_index = file_index;
        self
    }
    /// `O_*` flags.
    pub fn flags(mut self, flags: i32) -> OpenAt {
        self.flags = flags;
        self
    }
    /// The mode of a created file.
    pub fn mode(mut self, mode: libc::mode_t) -> OpenAt {
        self.mode = mode;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = at_dir(Self::CODE, self.dirfd, self.pathname, self.mode, 0, self.flags as u32);
        if let Some(d) = self.file_index {
            e.0.__bindgen_anon_5.file_index = d.kernel_index_arg();
        }
        e
    }
}

/// `IORING_OP_OPENAT2`: `openat2(dirfd, pathname, how)`.
#[derive(Clone, Copy, Debug)]
pub struct OpenAt2 {
    dirfd: Fd,
    pathname: *const libc::c_char,
    how: *const OpenHow,
    file_index: Option<DestinationSlot>,
}

impl OpenAt2 {
    /// The opcode.
    pub const CODE: u8 = op::OPENAT2;
    /// Opens `pathname` relative to `dirfd` as `*how` says (read at submit).
    pub fn new(dirfd: Fd, pathname: *const libc::c_char, how: *const OpenHow) -> OpenAt2 {
        OpenAt2 { dirfd, pathname, how, file_index: None }
    }
    /// Installs the file in the registered table instead of the fd table.
    pub fn file_index(mut self, file_index: Option<DestinationSlot>) -> OpenAt2 {
        self.file_index = file_index;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let size = core::mem::size_of::<OpenHow>() as u32;
        let mut e = at_dir(Self::CODE, self.dirfd, self.pathname, size, self.how as u64, 0);
        if let Some(d) = self.file_index {
            e.0.__bindgen_anon_5.file_index = d.kernel_index_arg();
        }
        e
    }
}

/// `IORING_OP_CLOSE`: closes an fd, or empties a registered slot.
#[derive(Clone, Copy, Debug)]
pub struct Close {
    fd: Target,
}

impl Close {
    /// The opcode.
    pub const CODE: u8 = op::CLOSE;
    /// Closes `fd` (`Fd`) or registered slot `Fixed(i)`.
    pub fn new(fd: impl Into<Target>) -> Close {
        Close { fd: fd.into() }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = Entry::new(Self::CODE);
        match self.fd {
            Target::Fd(fd) => e.0.fd = fd,
            Target::Fixed(i) => {
                e.0.fd = 0;
                e.0.__bindgen_anon_5.file_index = i.wrapping_add(1);
            }
        }
        e
    }
}

/// `IORING_OP_FILES_UPDATE`: replaces `len` registered slots from `offset`
/// with the fds at `fds` (-1 empties, -2 skips). With `offset`
/// IORING_FILE_INDEX_ALLOC (-1) each fd goes to a free slot, written back
/// over it. The CQE is the number updated.
#[derive(Clone, Copy, Debug)]
pub struct FilesUpdate {
    fds: *const RawFd,
    len: u32,
    offset: i32,
}

impl FilesUpdate {
    /// The opcode.
    pub const CODE: u8 = op::FILES_UPDATE;
    /// Updates from slot 0.
    pub fn new(fds: *const RawFd, len: u32) -> FilesUpdate {
        FilesUpdate { fds, len, offset: 0 }
    }
    /// The first slot (or IORING_FILE_INDEX_ALLOC).
    pub fn offset(mut self, offset: i32) -> FilesUpdate {
        self.offset = offset;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.fds as u64, self.len, self.offset as i64 as u64, 0)
    }
}

/// `IORING_OP_STATX`: `statx(dirfd, pathname, flags, mask, statxbuf)`.
#[derive(Clone, Copy, Debug)]
pub struct Statx {
    dirfd: Fd,
    pathname: *const libc::c_char,
    statxbuf: *mut statx,
    flags: i32,
    mask: u32,
}

impl Statx {
    /// The opcode.
    pub const CODE: u8 = op::STATX;
    /// Stats `pathname` relative to `dirfd` into `*statxbuf`.
    pub fn new(dirfd: Fd, pathname: *const libc::c_char, statxbuf: *mut statx) -> Statx {
        Statx { dirfd, pathname, statxbuf, flags: 0, mask: 0 }
    }
    /// `AT_*` flags.
    pub fn flags(mut self, flags: i32) -> Statx {
        self.flags = flags;
        self
    }
    /// `STATX_*` fields wanted.
    pub fn mask(mut self, mask: u32) -> Statx {
        self.mask = mask;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.dirfd, self.pathname, self.mask, self.statxbuf as u64, self.flags as u32)
    }
}

/// `IORING_OP_FALLOCATE`: `fallocate(fd, mode, offset, len)`.
#[derive(Clone, Copy, Debug)]
pub struct Fallocate {
    fd: Target,
    len: u64,
    offset: u64,
    mode: i32,
}

impl Fallocate {
    /// The opcode.
    pub const CODE: u8 = op::FALLOCATE;
    /// Allocates `len` bytes at offset 0.
    pub fn new(fd: impl Into<Target>, len: u64) -> Fallocate {
        Fallocate { fd: fd.into(), len, offset: 0, mode: 0 }
    }
    /// The offset.
    pub fn offset(mut self, offset: u64) -> Fallocate {
        self.offset = offset;
        self
    }
    /// `FALLOC_FL_*` mode.
    pub fn mode(mut self, mode: i32) -> Fallocate {
        self.mode = mode;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, self.len, self.mode as u32, self.offset, 0)
    }
}

/// `IORING_OP_FADVISE`: `posix_fadvise(fd, offset, len, advice)`.
#[derive(Clone, Copy, Debug)]
pub struct Fadvise {
    fd: Target,
    len: libc::off_t,
    advice: i32,
    offset: u64,
}

impl Fadvise {
    /// The opcode.
    pub const CODE: u8 = op::FADVISE;
    /// Advice for `len` bytes at offset 0.
    pub fn new(fd: impl Into<Target>, len: libc::off_t, advice: i32) -> Fadvise {
        Fadvise { fd: fd.into(), len, advice, offset: 0 }
    }
    /// The offset.
    pub fn offset(mut self, offset: u64) -> Fadvise {
        self.offset = offset;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, 0, self.len as u32, self.offset, self.advice as u32)
    }
}

/// `IORING_OP_MADVISE`: `madvise(addr, len, advice)`.
#[derive(Clone, Copy, Debug)]
pub struct Madvise {
    addr: *const libc::c_void,
    len: libc::off_t,
    advice: i32,
}

impl Madvise {
    /// The opcode.
    pub const CODE: u8 = op::MADVISE;
    /// Advice for `[addr, addr + len)`.
    pub fn new(addr: *const libc::c_void, len: libc::off_t, advice: i32) -> Madvise {
        Madvise { addr, len, advice }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        fileless(Self::CODE, self.addr as u64, self.len as u32, 0, self.advice as u32)
    }
}

/// `IORING_OP_SYNC_FILE_RANGE`: `sync_file_range(fd, offset, len, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct SyncFileRange {
    fd: Target,
    len: u32,
    offset: u64,
    flags: u32,
}

impl SyncFileRange {
    /// The opcode.
    pub const CODE: u8 = op::SYNC_FILE_RANGE;
    /// Syncs `len` bytes at offset 0.
    pub fn new(fd: impl Into<Target>, len: u32) -> SyncFileRange {
        SyncFileRange { fd: fd.into(), len, offset: 0, flags: 0 }
    }
    /// The offset.
    pub fn offset(mut self, offset: u64) -> SyncFileRange {
        self.offset = offset;
        self
    }
    /// `SYNC_FILE_RANGE_*` flags.
    pub fn flags(mut self, flags: u32) -> SyncFileRange {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, 0, self.len, self.offset, self.flags)
    }
}

fn splice_in(e: &mut Entry, fd_in: Target, flags: &mut u32) {
    match fd_in {
        Target::Fd(fd) => e.0.__bindgen_anon_5.splice_fd_in = fd,
        Target::Fixed(i) => {
            e.0.__bindgen_anon_5.splice_fd_in = i as i32;
            *flags |= abi::SPLICE_F_FD_IN_FIXED;
        }
    }
}

/// `IORING_OP_SPLICE`: `splice(fd_in, off_in, fd_out, off_out, len, flags)`;
/// an offset of -1 means none.
#[derive(Clone, Copy, Debug)]
pub struct Splice {
    fd_in: Target,
    off_in: i64,
    fd_out: Target,
    off_out: i64,
    len: u32,
    flags: u32,
}

impl Splice {
    /// The opcode.
    pub const CODE: u8 = op::SPLICE;
    /// Moves up to `len` bytes from `fd_in` to `fd_out`.
    pub fn new(fd_in: impl Into<Target>, off_in: i64, fd_out: impl Into<Target>, off_out: i64, len: u32) -> Splice {
        Splice { fd_in: fd_in.into(), off_in, fd_out: fd_out.into(), off_out, len, flags: 0 }
    }
    /// `SPLICE_F_*` flags.
    pub fn flags(mut self, flags: u32) -> Splice {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut flags = self.flags;
        let mut e = on_file(Self::CODE, self.fd_out, self.off_in as u64, self.len, self.off_out as u64, 0);
        splice_in(&mut e, self.fd_in, &mut flags);
        e.0.__bindgen_anon_3.splice_flags = flags;
        e
    }
}

/// `IORING_OP_TEE`: `tee(fd_in, fd_out, len, flags)` between two pipes.
#[derive(Clone, Copy, Debug)]
pub struct Tee {
    fd_in: Target,
    fd_out: Target,
    len: u32,
    flags: u32,
}

impl Tee {
    /// The opcode.
    pub const CODE: u8 = op::TEE;
    /// Duplicates up to `len` bytes of `fd_in` into `fd_out`.
    pub fn new(fd_in: impl Into<Target>, fd_out: impl Into<Target>, len: u32) -> Tee {
        Tee { fd_in: fd_in.into(), fd_out: fd_out.into(), len, flags: 0 }
    }
    /// `SPLICE_F_*` flags.
    pub fn flags(mut self, flags: u32) -> Tee {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut flags = self.flags;
        let mut e = on_file(Self::CODE, self.fd_out, 0, self.len, 0, 0);
        splice_in(&mut e, self.fd_in, &mut flags);
        e.0.__bindgen_anon_3.splice_flags = flags;
        e
    }
}

/// `IORING_OP_RENAMEAT`: `renameat2(olddirfd, oldpath, newdirfd, newpath, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct RenameAt {
    olddirfd: Fd,
    oldpath: *const libc::c_char,
    newdirfd: Fd,
    newpath: *const libc::c_char,
    flags: u32,
}

impl RenameAt {
    /// The opcode.
    pub const CODE: u8 = op::RENAMEAT;
    /// Renames `oldpath` to `newpath`.
    pub fn new(olddirfd: Fd, oldpath: *const libc::c_char, newdirfd: Fd, newpath: *const libc::c_char) -> RenameAt {
        RenameAt { olddirfd, oldpath, newdirfd, newpath, flags: 0 }
    }
    /// `RENAME_*` flags.
    pub fn flags(mut self, flags: u32) -> RenameAt {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.olddirfd, self.oldpath, self.newdirfd.0 as u32, self.newpath as u64, self.flags)
    }
}

/// `IORING_OP_UNLINKAT`: `unlinkat(dirfd, pathname, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct UnlinkAt {
    dirfd: Fd,
    pathname: *const libc::c_char,
    flags: i32,
}

impl UnlinkAt {
    /// The opcode.
    pub const CODE: u8 = op::UNLINKAT;
    /// Removes `pathname`.
    pub fn new(dirfd: Fd, pathname: *const libc::c_char) -> UnlinkAt {
        UnlinkAt { dirfd, pathname, flags: 0 }
    }
    /// `AT_REMOVEDIR` to remove a directory.
    pub fn flags(mut self, flags: i32) -> UnlinkAt {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.dirfd, self.pathname, 0, 0, self.flags as u32)
    }
}

/// `IORING_OP_MKDIRAT`: `mkdirat(dirfd, pathname, mode)`.
#[derive(Clone, Copy, Debug)]
pub struct MkDirAt {
    dirfd: Fd,
    pathname: *const libc::c_char,
    mode: libc::mode_t,
}

impl MkDirAt {
    /// The opcode.
    pub const CODE: u8 = op::MKDIRAT;
    /// Creates directory `pathname` (mode 0 unless set).
    pub fn new(dirfd: Fd, pathname: *const libc::c_char) -> MkDirAt {
        MkDirAt { dirfd, pathname, mode: 0 }
    }
    /// The mode.
    pub fn mode(mut self, mode: libc::mode_t) -> MkDirAt {
        self.mode = mode;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.dirfd, self.pathname, self.mode, 0, 0)
    }
}

/// `IORING_OP_SYMLINKAT`: `symlinkat(target, newdirfd, linkpath)`.
#[derive(Clone, Copy, Debug)]
pub struct SymlinkAt {
    newdirfd: Fd,
    target: *const libc::c_char,
    linkpath: *const libc::c_char,
}

impl SymlinkAt {
    /// The opcode.
    pub const CODE: u8 = op::SYMLINKAT;
    /// Creates `linkpath` pointing at `target`.
    pub fn new(newdirfd: Fd, target: *const libc::c_char, linkpath: *const libc::c_char) -> SymlinkAt {
        SymlinkAt { newdirfd, target, linkpath }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.newdirfd, self.target, 0, self.linkpath as u64, 0)
    }
}

/// `IORING_OP_LINKAT`: `linkat(olddirfd, oldpath, newdirfd, newpath, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct LinkAt {
    olddirfd: Fd,
    oldpath: *const libc::c_char,
    newdirfd: Fd,
    newpath: *const libc::c_char,
    flags: i32,
}

impl LinkAt {
    /// The opcode.
    pub const CODE: u8 = op::LINKAT;
    /// Creates hard link `newpath` to `oldpath`.
    pub fn new(olddirfd: Fd, oldpath: *const libc::c_char, newdirfd: Fd, newpath: *const libc::c_char) -> LinkAt {
        LinkAt { olddirfd, oldpath, newdirfd, newpath, flags: 0 }
    }
    /// `AT_SYMLINK_FOLLOW`, `AT_EMPTY_PATH`.
    pub fn flags(mut self, flags: i32) -> LinkAt {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        at_dir(Self::CODE, self.olddirfd, self.oldpath, self.newdirfd.0 as u32, self.newpath as u64, self.flags as u32)
    }
}

/// `IORING_OP_FTRUNCATE`: `ftruncate(fd, len)`.
#[derive(Clone, Copy, Debug)]
pub struct Ftruncate {
    fd: Target,
    len: u64,
}

impl Ftruncate {
    /// The opcode.
    pub const CODE: u8 = op::FTRUNCATE;
    /// Sets the file's length to `len`.
    pub fn new(fd: impl Into<Target>, len: u64) -> Ftruncate {
        Ftruncate { fd: fd.into(), len }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, 0, 0, self.len, 0)
    }
}

/// `IORING_OP_FGETXATTR`: `fgetxattr(fd, name, value, len)`.
#[derive(Clone, Copy, Debug)]
pub struct FGetXattr {
    fd: Target,
    name: *const libc::c_char,
    value: *mut libc::c_void,
    len: u32,
}

impl FGetXattr {
    /// The opcode.
    pub const CODE: u8 = op::FGETXATTR;
    /// Reads attribute `name` into `value` (`len` bytes).
    pub fn new(fd: impl Into<Target>, name: *const libc::c_char, value: *mut libc::c_void, len: u32) -> FGetXattr {
        FGetXattr { fd: fd.into(), name, value, len }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, self.name as u64, self.len, self.value as u64, 0)
    }
}

/// `IORING_OP_FSETXATTR`: `fsetxattr(fd, name, value, len, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct FSetXattr {
    fd: Target,
    name: *const libc::c_char,
    value: *const libc::c_void,
    len: u32,
    flags: i32,
}

impl FSetXattr {
    /// The opcode.
    pub const CODE: u8 = op::FSETXATTR;
    /// Sets attribute `name` to `len` bytes at `value`.
    pub fn new(fd: impl Into<Target>, name: *const libc::c_char, value: *const libc::c_void, len: u32) -> FSetXattr {
        FSetXattr { fd: fd.into(), name, value, len, flags: 0 }
    }
    /// `XATTR_CREATE`, `XATTR_REPLACE`.
    pub fn flags(mut self, flags: i32) -> FSetXattr {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, self.fd, self.name as u64, self.len, self.value as u64, self.flags as u32)
    }
}

/// `IORING_OP_GETXATTR`: `getxattr(path, name, value, len)`.
#[derive(Clone, Copy, Debug)]
pub struct GetXattr {
    name: *const libc::c_char,
    value: *mut libc::c_void,
    path: *const libc::c_char,
    len: u32,
}

impl GetXattr {
    /// The opcode.
    pub const CODE: u8 = op::GETXATTR;
    /// Reads attribute `name` of `path` into `value` (`len` bytes).
    pub fn new(name: *const libc::c_char, value: *mut libc::c_void, path: *const libc::c_char, len: u32) -> GetXattr {
        GetXattr { name, value, path, len }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_file(Self::CODE, Target::Fd(0), self.name as u64, self.len, self.value as u64, 0);
        set_addr3(&mut e, self.path as u64);
        e
    }
}

/// `IORING_OP_SETXATTR`: `setxattr(path, name, value, len, flags)`.
#[derive(Clone, Copy, Debug)]
pub struct SetXattr {
    name: *const libc::c_char,
    value: *const libc::c_void,
    path: *const libc::c_char,
    len: u32,
    flags: i32,
}

impl SetXattr {
    /// The opcode.
    pub const CODE: u8 = op::SETXATTR;
    /// Sets attribute `name` of `path` to `len` bytes at `value`.
    pub fn new(name: *const libc::c_char, value: *const libc::c_void, path: *const libc::c_char, len: u32) -> SetXattr {
        SetXattr { name, value, path, len, flags: 0 }
    }
    /// `XATTR_CREATE`, `XATTR_REPLACE`.
    pub fn flags(mut self, flags: i32) -> SetXattr {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_file(Self::CODE, Target::Fd(0), self.name as u64, self.len, self.value as u64, self.flags as u32);
        set_addr3(&mut e, self.path as u64);
        e
    }
}

/// `IORING_OP_FIXED_FD_INSTALL`: gives registered file `fd` a normal fd
/// (close-on-exec unless `file_flags` has IORING_FIXED_FD_NO_CLOEXEC); the
/// CQE is the new fd.
#[derive(Clone, Copy, Debug)]
pub struct FixedFdInstall {
    fd: crate::types::Fixed,
    file_flags: u32,
}

impl FixedFdInstall {
    /// The opcode.
    pub const CODE: u8 = op::FIXED_FD_INSTALL;
    /// Installs registered file `fd`.
    pub fn new(fd: crate::types::Fixed, file_flags: u32) -> FixedFdInstall {
        FixedFdInstall { fd, file_flags }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        on_file(Self::CODE, Target::Fixed(self.fd.0), 0, 0, 0, self.file_flags)
    }
}

// ---------------------------------------------------------------------------
// Networking and provided buffers (engine/ops/net.rs, engine/ops/kbuf.rs),
// with the `io-uring` crate's names and shapes.
// ---------------------------------------------------------------------------

use linux_raw_sys::io_uring::io_uring_op as raw_op;

/// An entry on `fd` with the given opcode.
fn on_target(code: u8, fd: Target) -> Entry {
    with_target(Entry::new(code), fd)
}

/// `IORING_OP_SEND`: `send(2)` (or `sendto(2)` with a destination).
#[derive(Clone, Copy, Debug)]
pub struct Send {
    fd: Target,
    buf: *const u8,
    len: u32,
    ioprio: u16,
    flags: i32,
    dest_addr: *const libc::sockaddr,
    dest_addr_len: libc::socklen_t,
}

impl Send {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_SEND as u8;
    /// Sends `len` bytes at `buf`.
    pub fn new(fd: impl Into<Target>, buf: *const u8, len: u32) -> Send {
        Send { fd: fd.into(), buf, len, ioprio: 0, flags: 0, dest_addr: core::ptr::null(), dest_addr_len: 0 }
    }
    /// The op's own flags (`IORING_RECVSEND_*`).
    pub fn ioprio(mut self, ioprio: u16) -> Send {
        self.ioprio = ioprio;
        self
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: i32) -> Send {
        self.flags = flags;
        self
    }
    /// The destination address, for an unconnected socket.
    pub fn dest_addr(mut self, addr: *const libc::sockaddr) -> Send {
        self.dest_addr = addr;
        self
    }
    /// The destination address's length.
    pub fn dest_addr_len(mut self, len: libc::socklen_t) -> Send {
        self.dest_addr_len = len;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.__bindgen_anon_2.addr = self.buf as u64;
        e.0.__bindgen_anon_1.addr2 = self.dest_addr as u64;
        e.0.__bindgen_anon_5.__bindgen_anon_1.addr_len = self.dest_addr_len as u16;
        e.0.len = self.len;
        e.0.ioprio = self.ioprio;
        e.0.__bindgen_anon_3.msg_flags = self.flags as u32;
        e
    }
}

/// `IORING_OP_RECV`: `recv(2)`; with IOSQE_BUFFER_SELECT the buffer comes
/// from group `buf_group`.
#[derive(Clone, Copy, Debug)]
pub struct Recv {
    fd: Target,
    buf: *mut u8,
    len: u32,
    ioprio: u16,
    flags: i32,
    buf_group: u16,
}

impl Recv {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_RECV as u8;
    /// Receives up to `len` bytes into `buf`.
    pub fn new(fd: impl Into<Target>, buf: *mut u8, len: u32) -> Recv {
        Recv { fd: fd.into(), buf, len, ioprio: 0, flags: 0, buf_group: 0 }
    }
    /// The op's own flags (`IORING_RECVSEND_*`).
    pub fn ioprio(mut self, ioprio: u16) -> Recv {
        self.ioprio = ioprio;
        self
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: i32) -> Recv {
        self.flags = flags;
        self
    }
    /// The provided-buffer group (with IOSQE_BUFFER_SELECT).
    pub fn buf_group(mut self, group: u16) -> Recv {
        self.buf_group = group;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.__bindgen_anon_2.addr = self.buf as u64;
        e.0.len = self.len;
        e.0.ioprio = self.ioprio;
        e.0.__bindgen_anon_3.msg_flags = self.flags as u32;
        e.0.__bindgen_anon_4.buf_group = self.buf_group;
        e
    }
}

/// Multishot `IORING_OP_RECV`: each arrival is received into a buffer of
/// group `buf_group` and posted with IORING_CQE_F_MORE until the last.
#[derive(Clone, Copy, Debug)]
pub struct RecvMulti {
    fd: Target,
    buf_group: u16,
    flags: i32,
    len: u32,
}

impl RecvMulti {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_RECV as u8;
    /// Receives repeatedly into buffers of `buf_group`.
    pub fn new(fd: impl Into<Target>, buf_group: u16) -> RecvMulti {
        RecvMulti { fd: fd.into(), buf_group, flags: 0, len: 0 }
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: i32) -> RecvMulti {
        self.flags = flags;
        self
    }
    /// Per-receive length limit (0: the whole buffer).
    pub fn len(mut self, len: u32) -> RecvMulti {
        self.len = len;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.len = self.len;
        e.0.__bindgen_anon_3.msg_flags = self.flags as u32;
        e.0.__bindgen_anon_4.buf_group = self.buf_group;
        e.0.flags |= abi::IOSQE_BUFFER_SELECT;
        e.0.ioprio = linux_raw_sys::io_uring::IORING_RECV_MULTISHOT as u16;
        e
    }
}

/// SENDMSG and SENDMSG_ZC: the same fields and SQE, two opcodes.
macro_rules! sendmsg_op {
    ($(#[$doc:meta])* $name:ident, $code:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            fd: Target,
            msg: *const libc::msghdr,
            ioprio: u16,
            flags: u32,
        }

        impl $name {
            /// The opcode.
            pub const CODE: u8 = raw_op::$code as u8;
            /// Sends the message `msg` describes.
            pub fn new(fd: impl Into<Target>, msg: *const libc::msghdr) -> $name {
                $name { fd: fd.into(), msg, ioprio: 0, flags: 0 }
            }
            /// The op's own flags (`IORING_RECVSEND_*`).
            pub fn ioprio(mut self, ioprio: u16) -> $name {
                self.ioprio = ioprio;
                self
            }
            /// `MSG_*` flags.
            pub fn flags(mut self, flags: u32) -> $name {
                self.flags = flags;
                self
            }
            /// The SQE.
            pub fn build(self) -> Entry {
                let mut e = on_target(Self::CODE, self.fd);
                e.0.ioprio = self.ioprio;
                e.0.__bindgen_anon_2.addr = self.msg as u64;
                e.0.len = 1;
                e.0.__bindgen_anon_3.msg_flags = self.flags;
                e
            }
        }
    };
}

sendmsg_op!(
    /// `IORING_OP_SENDMSG`: `sendmsg(2)`.
    SendMsg,
    IORING_OP_SENDMSG
);

/// `IORING_OP_RECVMSG`: `recvmsg(2)`.
#[derive(Clone, Copy, Debug)]
pub struct RecvMsg {
    fd: Target,
    msg: *mut libc::msghdr,
    ioprio: u16,
    flags: u32,
    buf_group: u16,
}

impl RecvMsg {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_RECVMSG as u8;
    /// Receives into the buffers `msg` describes.
    pub fn new(fd: impl Into<Target>, msg: *mut libc::msghdr) -> RecvMsg {
        RecvMsg { fd: fd.into(), msg, ioprio: 0, flags: 0, buf_group: 0 }
    }
    /// The op's own flags (`IORING_RECVSEND_*`).
    pub fn ioprio(mut self, ioprio: u16) -> RecvMsg {
        self.ioprio = ioprio;
        self
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: u32) -> RecvMsg {
        self.flags = flags;
        self
    }
    /// The provided-buffer group (with IOSQE_BUFFER_SELECT).
    pub fn buf_group(mut self, group: u16) -> RecvMsg {
        self.buf_group = group;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.ioprio = self.ioprio;
        e.0.__bindgen_anon_2.addr = self.msg as u64;
        e.0.len = 1;
        e.0.__bindgen_anon_3.msg_flags = self.flags;
        e.0.__bindgen_anon_4.buf_group = self.buf_group;
        e
    }
}

/// `IORING_OP_ACCEPT`: `accept4(2)`, optionally into a registered slot.
#[derive(Clone, Copy, Debug)]
pub struct Accept {
    fd: Target,
    addr: *mut libc::sockaddr,
    addrlen: *mut libc::socklen_t,
    file_index: Option<DestinationSlot>,
    flags: i32,
}

impl Accept {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_ACCEPT as u8;
    /// Accepts one connection; the peer's address goes to `addr`/`addrlen`
    /// (both may be null).
    pub fn new(fd: impl Into<Target>, addr: *mut libc::sockaddr, addrlen: *mut libc::socklen_t) -> Accept {
        Accept { fd: fd.into(), addr, addrlen, file_index: None, flags: 0 }
    }
    /// Installs the new socket in a registered-file slot instead of an fd.
    pub fn file_index(mut self, slot: Option<DestinationSlot>) -> Accept {
        self.file_index = slot;
        self
    }
    /// `SOCK_CLOEXEC` / `SOCK_NONBLOCK`.
    pub fn flags(mut self, flags: i32) -> Accept {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.__bindgen_anon_2.addr = self.addr as u64;
        e.0.__bindgen_anon_1.addr2 = self.addrlen as u64;
        e.0.__bindgen_anon_3.accept_flags = self.flags as u32;
        if let Some(d) = self.file_index {
            e.0.__bindgen_anon_5.file_index = d.kernel_index_arg();
        }
        e
    }
}

/// Multishot `IORING_OP_ACCEPT`: one CQE (with IORING_CQE_F_MORE) per
/// accepted connection.
#[derive(Clone, Copy, Debug)]
pub struct AcceptMulti {
    fd: Target,
    allocate_file_index: bool,
    flags: i32,
}

impl AcceptMulti {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_ACCEPT as u8;
    /// Accepts connections until cancelled or an error.
    pub fn new(fd: impl Into<Target>) -> AcceptMulti {
        AcceptMulti { fd: fd.into(), allocate_file_index: false, flags: 0 }
    }
    /// Installs each new socket in a free registered-file slot.
    pub fn allocate_file_index(mut self, yes: bool) -> AcceptMulti {
        self.allocate_file_index = yes;
        self
    }
    /// `SOCK_CLOEXEC` / `SOCK_NONBLOCK`.
    pub fn flags(mut self, flags: i32) -> AcceptMulti {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.ioprio = linux_raw_sys::io_uring::IORING_ACCEPT_MULTISHOT as u16;
        e.0.__bindgen_anon_3.accept_flags = self.flags as u32;
        if self.allocate_file_index {
            e.0.__bindgen_anon_5.file_index = linux_raw_sys::io_uring::IORING_FILE_INDEX_ALLOC as u32;
        }
        e
    }
}

/// CONNECT and BIND: an fd and a socket address, two opcodes.
macro_rules! sockaddr_op {
    ($(#[$doc:meta])* $name:ident, $code:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            fd: Target,
            addr: *const libc::sockaddr,
            addrlen: libc::socklen_t,
        }

        impl $name {
            /// The opcode.
            pub const CODE: u8 = raw_op::$code as u8;
            #[doc = $what]
            pub fn new(fd: impl Into<Target>, addr: *const libc::sockaddr, addrlen: libc::socklen_t) -> $name {
                $name { fd: fd.into(), addr, addrlen }
            }
            /// The SQE.
            pub fn build(self) -> Entry {
                let mut e = on_target(Self::CODE, self.fd);
                e.0.__bindgen_anon_2.addr = self.addr as u64;
                e.0.__bindgen_anon_1.off = self.addrlen as u64;
                e
            }
        }
    };
}

sockaddr_op!(
    /// `IORING_OP_CONNECT`: `connect(2)`.
    Connect,
    IORING_OP_CONNECT,
    "Connects to `addr`."
);

/// `IORING_OP_SOCKET`: `socket(2)`, optionally into a registered slot.
#[derive(Clone, Copy, Debug)]
pub struct Socket {
    domain: i32,
    socket_type: i32,
    protocol: i32,
    file_index: Option<DestinationSlot>,
    flags: i32,
}

impl Socket {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_SOCKET as u8;
    /// A new socket (`socket_type` may carry SOCK_CLOEXEC/SOCK_NONBLOCK).
    pub fn new(domain: i32, socket_type: i32, protocol: i32) -> Socket {
        Socket { domain, socket_type, protocol, file_index: None, flags: 0 }
    }
    /// Installs the socket in a registered-file slot instead of an fd.
    pub fn file_index(mut self, slot: Option<DestinationSlot>) -> Socket {
        self.file_index = slot;
        self
    }
    /// The SQE's flags word (must be 0; kept for the `io-uring` shape).
    pub fn flags(mut self, flags: i32) -> Socket {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = Entry::new(Self::CODE);
        e.0.fd = self.domain;
        e.0.__bindgen_anon_1.off = self.socket_type as u64;
        e.0.len = self.protocol as u32;
        e.0.__bindgen_anon_3.rw_flags = self.flags as u32;
        if let Some(d) = self.file_index {
            e.0.__bindgen_anon_5.file_index = d.kernel_index_arg();
        }
        e
    }
}

/// `IORING_OP_SHUTDOWN`: `shutdown(2)`.
#[derive(Clone, Copy, Debug)]
pub struct Shutdown {
    fd: Target,
    how: i32,
}

impl Shutdown {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_SHUTDOWN as u8;
    /// Shuts down `how` (SHUT_RD, SHUT_WR, SHUT_RDWR).
    pub fn new(fd: impl Into<Target>, how: i32) -> Shutdown {
        Shutdown { fd: fd.into(), how }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.len = self.how as u32;
        e
    }
}

/// `IORING_OP_PROVIDE_BUFFERS`: hands `nbufs` buffers of `len` bytes,
/// consecutive from `addr`, to group `bgid` with ids from `bid`.
#[derive(Clone, Copy, Debug)]
pub struct ProvideBuffers {
    addr: *mut u8,
    len: i32,
    nbufs: u16,
    bgid: u16,
    bid: u16,
}

impl ProvideBuffers {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_PROVIDE_BUFFERS as u8;
    /// The buffers.
    pub fn new(addr: *mut u8, len: i32, nbufs: u16, bgid: u16, bid: u16) -> ProvideBuffers {
        ProvideBuffers { addr, len, nbufs, bgid, bid }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = Entry::new(Self::CODE);
        e.0.fd = self.nbufs as i32;
        e.0.__bindgen_anon_2.addr = self.addr as u64;
        e.0.len = self.len as u32;
        e.0.__bindgen_anon_1.off = self.bid as u64;
        e.0.__bindgen_anon_4.buf_group = self.bgid;
        e
    }
}

/// `IORING_OP_REMOVE_BUFFERS`: takes up to `nbufs` buffers out of group `bgid`.
#[derive(Clone, Copy, Debug)]
pub struct RemoveBuffers {
    nbufs: u16,
    bgid: u16,
}

impl RemoveBuffers {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_REMOVE_BUFFERS as u8;
    /// Removes up to `nbufs` buffers.
    pub fn new(nbufs: u16, bgid: u16) -> RemoveBuffers {
        RemoveBuffers { nbufs, bgid }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = Entry::new(Self::CODE);
        e.0.fd = self.nbufs as i32;
        e.0.__bindgen_anon_4.buf_group = self.bgid;
        e
    }
}

/// Multishot `IORING_OP_RECVMSG`: each message lands in a buffer of group
/// `buf_group`, laid out as an `io_uring_recvmsg_out` header, the name,
/// the control data and the payload (only `msg_namelen` and
/// `msg_controllen` of `msg` are used).
#[derive(Clone, Copy, Debug)]
pub struct RecvMsgMulti {
    fd: Target,
    msg: *const libc::msghdr,
    buf_group: u16,
    ioprio: u16,
    flags: u32,
}

impl RecvMsgMulti {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_RECVMSG as u8;
    /// Receives messages repeatedly into buffers of `buf_group`.
    pub fn new(fd: impl Into<Target>, msg: *const libc::msghdr, buf_group: u16) -> RecvMsgMulti {
        RecvMsgMulti { fd: fd.into(), msg, buf_group, ioprio: 0, flags: 0 }
    }
    /// More of the op's own flags (`IORING_RECVSEND_*`).
    pub fn ioprio(mut self, ioprio: u16) -> RecvMsgMulti {
        self.ioprio = ioprio;
        self
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: u32) -> RecvMsgMulti {
        self.flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.__bindgen_anon_2.addr = self.msg as u64;
        e.0.len = 1;
        e.0.__bindgen_anon_3.msg_flags = self.flags;
        e.0.__bindgen_anon_4.buf_group = self.buf_group;
        e.0.flags |= abi::IOSQE_BUFFER_SELECT;
        e.0.ioprio = self.ioprio | linux_raw_sys::io_uring::IORING_RECV_MULTISHOT as u16;
        e
    }
}

sockaddr_op!(
    /// `IORING_OP_BIND`: `bind(2)`.
    Bind,
    IORING_OP_BIND,
    "Binds to `addr`."
);
/// `IORING_OP_LISTEN`: `listen(2)`.
#[derive(Clone, Copy, Debug)]
pub struct Listen {
    fd: Target,
    backlog: i32,
}

impl Listen {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_LISTEN as u8;
    /// Listens with `backlog`.
    pub fn new(fd: impl Into<Target>, backlog: i32) -> Listen {
        Listen { fd: fd.into(), backlog }
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.len = self.backlog as u32;
        e
    }
}

/// `IORING_OP_SEND_ZC`: a send whose CQE (with IORING_CQE_F_MORE) is
/// followed by a notification CQE (IORING_CQE_F_NOTIF) once the buffer may
/// be reused. ringport copies the data.
#[derive(Clone, Copy, Debug)]
pub struct SendZc {
    fd: Target,
    buf: *const u8,
    len: u32,
    buf_index: Option<u16>,
    dest_addr: *const libc::sockaddr,
    dest_addr_len: libc::socklen_t,
    flags: i32,
    zc_flags: u16,
}

impl SendZc {
    /// The opcode.
    pub const CODE: u8 = raw_op::IORING_OP_SEND_ZC as u8;
    /// Sends `len` bytes at `buf`.
    pub fn new(fd: impl Into<Target>, buf: *const u8, len: u32) -> SendZc {
        SendZc {
            fd: fd.into(),
            buf,
            len,
            buf_index: None,
            dest_addr: core::ptr::null(),
            dest_addr_len: 0,
            flags: 0,
            zc_flags: 0,
        }
    }
    /// The data lies in registered buffer `index` (IORING_RECVSEND_FIXED_BUF).
    pub fn buf_index(mut self, index: Option<u16>) -> SendZc {
        self.buf_index = index;
        self
    }
    /// The destination address, for an unconnected socket.
    pub fn dest_addr(mut self, addr: *const libc::sockaddr) -> SendZc {
        self.dest_addr = addr;
        self
    }
    /// The destination address's length.
    pub fn dest_addr_len(mut self, len: libc::socklen_t) -> SendZc {
        self.dest_addr_len = len;
        self
    }
    /// `MSG_*` flags.
    pub fn flags(mut self, flags: i32) -> SendZc {
        self.flags = flags;
        self
    }
    /// `IORING_RECVSEND_*` / `IORING_SEND_ZC_*` flags.
    pub fn zc_flags(mut self, flags: u16) -> SendZc {
        self.zc_flags = flags;
        self
    }
    /// The SQE.
    pub fn build(self) -> Entry {
        let mut e = on_target(Self::CODE, self.fd);
        e.0.__bindgen_anon_2.addr = self.buf as u64;
        e.0.len = self.len;
        e.0.__bindgen_anon_3.msg_flags = self.flags as u32;
        e.0.ioprio = self.zc_flags;
        if let Some(i) = self.buf_index {
            e.0.__bindgen_anon_4.buf_index = i;
            e.0.ioprio |= linux_raw_sys::io_uring::IORING_RECVSEND_FIXED_BUF as u16;
        }
        e.0.__bindgen_anon_1.addr2 = self.dest_addr as u64;
        e.0.__bindgen_anon_5.__bindgen_anon_1.addr_len = self.dest_addr_len as u16;
        e
    }
}

sendmsg_op!(
    /// `IORING_OP_SENDMSG_ZC`: [`SendMsg`] with a notification CQE, as [`SendZc`].
    SendMsgZc,
    IORING_OP_SENDMSG_ZC
);
