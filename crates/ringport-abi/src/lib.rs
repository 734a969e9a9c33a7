//! The io_uring ABI: the kernel's structs and constants, taken from
//! `linux-raw-sys` (never retyped), plus the few names ringport derives from
//! them and ringport's own extensions.
//!
//! Everything a program shares with the engine (SQEs, CQEs, the params block,
//! the ring offsets) has the kernel's layout; the asserts at the bottom of this
//! file pin that layout at compile time.
//!
//! This is the bottom layer of ringport: `ringport-engine` serves this ABI,
//! and the `ringport` facade re-exports it as `ringport::abi`.

#![deny(missing_docs)]

pub use linux_raw_sys::io_uring::{
    __kernel_timespec, io_cqring_offsets, io_sqring_offsets, io_uring_cqe,
    io_uring_files_update, io_uring_getevents_arg, io_uring_op, io_uring_params, io_uring_probe,
    io_uring_probe_op, io_uring_register_op, io_uring_rsrc_register, io_uring_rsrc_update,
    io_uring_restriction, io_uring_register_restriction_op, io_uring_rsrc_update2, io_uring_sqe,
    io_uring_sync_cancel_reg, io_uring_file_index_range,
    io_uring_sqe_flags_bit,
};

pub use linux_raw_sys::io_uring::{
    IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, IORING_CQE_F_NOTIF,
    IORING_CQE_F_SOCK_NONEMPTY, IORING_CQ_EVENTFD_DISABLED, IORING_ENTER_ABS_TIMER,
    IORING_ENTER_EXT_ARG, IORING_ENTER_EXT_ARG_REG, IORING_ENTER_GETEVENTS,
    IORING_ENTER_NO_IOWAIT, IORING_ENTER_REGISTERED_RING, IORING_ENTER_SQ_WAIT,
    IORING_ENTER_SQ_WAKEUP, IORING_FEAT_CQE_SKIP, IORING_FEAT_CUR_PERSONALITY,
    IORING_FEAT_EXT_ARG, IORING_FEAT_FAST_POLL, IORING_FEAT_LINKED_FILE, IORING_FEAT_MIN_TIMEOUT,
    IORING_FEAT_NATIVE_WORKERS, IORING_FEAT_NODROP, IORING_FEAT_NO_IOWAIT,
    IORING_FEAT_POLL_32BITS, IORING_FEAT_RECVSEND_BUNDLE, IORING_FEAT_REG_REG_RING,
    IORING_FEAT_RSRC_TAGS, IORING_FEAT_RW_ATTR, IORING_FEAT_RW_CUR_POS, IORING_FEAT_SINGLE_MMAP,
    IORING_FEAT_SQPOLL_NONFIXED, IORING_FEAT_SUBMIT_STABLE, IORING_FSYNC_DATASYNC,
    IORING_NOP_FILE, IORING_NOP_FIXED_BUFFER, IORING_NOP_FIXED_FILE, IORING_NOP_INJECT_RESULT,
    IORING_NOP_TW, IORING_OFF_CQ_RING, IORING_OFF_MMAP_MASK, IORING_OFF_PBUF_RING,
    IORING_OFF_SQES, IORING_OFF_SQ_RING, IORING_REGISTER_FILES_SKIP,
    IORING_RSRC_REGISTER_SPARSE, IORING_SETUP_ATTACH_WQ, IORING_SETUP_CLAMP,
    IORING_SETUP_COOP_TASKRUN, IORING_SETUP_CQE32, IORING_SETUP_CQSIZE,
    IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_HYBRID_IOPOLL, IORING_SETUP_IOPOLL,
    IORING_SETUP_NO_MMAP, IORING_SETUP_NO_SQARRAY, IORING_SETUP_REGISTERED_FD_ONLY,
    IORING_SETUP_R_DISABLED, IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_SQE128,
    IORING_SETUP_SQPOLL, IORING_SETUP_SQ_AFF, IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_TASKRUN_FLAG, IORING_SQ_CQ_OVERFLOW, IORING_SQ_NEED_WAKEUP, IORING_SQ_TASKRUN,
    IORING_LINK_TIMEOUT_UPDATE, IORING_TIMEOUT_ABS, IORING_TIMEOUT_BOOTTIME, IORING_TIMEOUT_CLOCK_MASK,
    IORING_TIMEOUT_ETIME_SUCCESS, IORING_TIMEOUT_MULTISHOT, IORING_TIMEOUT_REALTIME, IORING_TIMEOUT_UPDATE,
    IORING_TIMEOUT_UPDATE_MASK, IO_URING_OP_SUPPORTED, IORING_POLL_ADD_LEVEL, IORING_POLL_ADD_MULTI,
    IORING_POLL_UPDATE_EVENTS, IORING_POLL_UPDATE_USER_DATA, IORING_ASYNC_CANCEL_ALL,
    IORING_ASYNC_CANCEL_ANY, IORING_ASYNC_CANCEL_FD, IORING_ASYNC_CANCEL_FD_FIXED, IORING_ASYNC_CANCEL_OP,
    IORING_ASYNC_CANCEL_USERDATA, IORING_FILE_INDEX_ALLOC, SPLICE_F_FD_IN_FIXED, IORING_FIXED_FD_NO_CLOEXEC,
};

use io_uring_sqe_flags_bit as bit;

/// `IOSQE_FIXED_FILE`: `fd` is an index into the registered file table.
pub const IOSQE_FIXED_FILE: u8 = 1 << bit::IOSQE_FIXED_FILE_BIT as u8;
/// `IOSQE_IO_DRAIN`: issue only after every earlier request has completed.
pub const IOSQE_IO_DRAIN: u8 = 1 << bit::IOSQE_IO_DRAIN_BIT as u8;
/// `IOSQE_IO_LINK`: the next SQE starts only when this one succeeds.
pub const IOSQE_IO_LINK: u8 = 1 << bit::IOSQE_IO_LINK_BIT as u8;
/// `IOSQE_IO_HARDLINK`: like `IO_LINK`, but the chain survives a failure.
pub const IOSQE_IO_HARDLINK: u8 = 1 << bit::IOSQE_IO_HARDLINK_BIT as u8;
/// `IOSQE_ASYNC`: skip the inline attempt and go to the worker pool.
pub const IOSQE_ASYNC: u8 = 1 << bit::IOSQE_ASYNC_BIT as u8;
/// `IOSQE_BUFFER_SELECT`: take a buffer from a provided-buffer group.
pub const IOSQE_BUFFER_SELECT: u8 = 1 << bit::IOSQE_BUFFER_SELECT_BIT as u8;
/// `IOSQE_CQE_SKIP_SUCCESS`: post no CQE when the request succeeds.
pub const IOSQE_CQE_SKIP_SUCCESS: u8 = 1 << bit::IOSQE_CQE_SKIP_SUCCESS_BIT as u8;

/// Every SQE flag the kernel defines.
pub const IOSQE_ALL: u8 = IOSQE_FIXED_FILE
    | IOSQE_IO_DRAIN
    | IOSQE_IO_LINK
    | IOSQE_IO_HARDLINK
    | IOSQE_ASYNC
    | IOSQE_BUFFER_SELECT
    | IOSQE_CQE_SKIP_SUCCESS;

/// Opcode numbers as `u8`, the width of `io_uring_sqe::opcode`.
pub mod op {
    use super::io_uring_op as o;
    /// `IORING_OP_NOP`
    pub const NOP: u8 = o::IORING_OP_NOP as u8;
    /// `IORING_OP_READV`
    pub const READV: u8 = o::IORING_OP_READV as u8;
    /// `IORING_OP_WRITEV`
    pub const WRITEV: u8 = o::IORING_OP_WRITEV as u8;
    /// `IORING_OP_FSYNC`
    pub const FSYNC: u8 = o::IORING_OP_FSYNC as u8;
    /// `IORING_OP_READ_FIXED`
    pub const READ_FIXED: u8 = o::IORING_OP_READ_FIXED as u8;
    /// `IORING_OP_WRITE_FIXED`
    pub const WRITE_FIXED: u8 = o::IORING_OP_WRITE_FIXED as u8;
    /// `IORING_OP_POLL_ADD`
    pub const POLL_ADD: u8 = o::IORING_OP_POLL_ADD as u8;
    /// `IORING_OP_POLL_REMOVE`
    pub const POLL_REMOVE: u8 = o::IORING_OP_POLL_REMOVE as u8;
    /// `IORING_OP_ASYNC_CANCEL`
    pub const ASYNC_CANCEL: u8 = o::IORING_OP_ASYNC_CANCEL as u8;
    /// `IORING_OP_LINK_TIMEOUT`
    pub const LINK_TIMEOUT: u8 = o::IORING_OP_LINK_TIMEOUT as u8;
    /// `IORING_OP_TIMEOUT`
    pub const TIMEOUT: u8 = o::IORING_OP_TIMEOUT as u8;
    /// `IORING_OP_TIMEOUT_REMOVE`
    pub const TIMEOUT_REMOVE: u8 = o::IORING_OP_TIMEOUT_REMOVE as u8;
    /// `IORING_OP_READ`
    pub const READ: u8 = o::IORING_OP_READ as u8;
    /// `IORING_OP_WRITE`
    pub const WRITE: u8 = o::IORING_OP_WRITE as u8;
    /// `IORING_OP_SYNC_FILE_RANGE`
    pub const SYNC_FILE_RANGE: u8 = o::IORING_OP_SYNC_FILE_RANGE as u8;
    /// `IORING_OP_FALLOCATE`
    pub const FALLOCATE: u8 = o::IORING_OP_FALLOCATE as u8;
    /// `IORING_OP_OPENAT`
    pub const OPENAT: u8 = o::IORING_OP_OPENAT as u8;
    /// `IORING_OP_CLOSE`
    pub const CLOSE: u8 = o::IORING_OP_CLOSE as u8;
    /// `IORING_OP_FILES_UPDATE`
    pub const FILES_UPDATE: u8 = o::IORING_OP_FILES_UPDATE as u8;
    /// `IORING_OP_STATX`
    pub const STATX: u8 = o::IORING_OP_STATX as u8;
    /// `IORING_OP_FADVISE`
    pub const FADVISE: u8 = o::IORING_OP_FADVISE as u8;
    /// `IORING_OP_MADVISE`
    pub const MADVISE: u8 = o::IORING_OP_MADVISE as u8;
    /// `IORING_OP_OPENAT2`
    pub const OPENAT2: u8 = o::IORING_OP_OPENAT2 as u8;
    /// `IORING_OP_SPLICE`
    pub const SPLICE: u8 = o::IORING_OP_SPLICE as u8;
    /// `IORING_OP_TEE`
    pub const TEE: u8 = o::IORING_OP_TEE as u8;
    /// `IORING_OP_RENAMEAT`
    pub const RENAMEAT: u8 = o::IORING_OP_RENAMEAT as u8;
    /// `IORING_OP_UNLINKAT`
    pub const UNLINKAT: u8 = o::IORING_OP_UNLINKAT as u8;
    /// `IORING_OP_MKDIRAT`
    pub const MKDIRAT: u8 = o::IORING_OP_MKDIRAT as u8;
    /// `IORING_OP_SYMLINKAT`
    pub const SYMLINKAT: u8 = o::IORING_OP_SYMLINKAT as u8;
    /// `IORING_OP_LINKAT`
    pub const LINKAT: u8 = o::IORING_OP_LINKAT as u8;
    /// `IORING_OP_FSETXATTR`
    pub const FSETXATTR: u8 = o::IORING_OP_FSETXATTR as u8;
    /// `IORING_OP_SETXATTR`
    pub const SETXATTR: u8 = o::IORING_OP_SETXATTR as u8;
    /// `IORING_OP_FGETXATTR`
    pub const FGETXATTR: u8 = o::IORING_OP_FGETXATTR as u8;
    /// `IORING_OP_GETXATTR`
    pub const GETXATTR: u8 = o::IORING_OP_GETXATTR as u8;
    /// `IORING_OP_EPOLL_CTL`
    pub const EPOLL_CTL: u8 = o::IORING_OP_EPOLL_CTL as u8;
    /// `IORING_OP_MSG_RING`
    pub const MSG_RING: u8 = o::IORING_OP_MSG_RING as u8;
    /// `IORING_OP_FTRUNCATE`
    pub const FTRUNCATE: u8 = o::IORING_OP_FTRUNCATE as u8;
    /// `IORING_OP_FIXED_FD_INSTALL`
    pub const FIXED_FD_INSTALL: u8 = o::IORING_OP_FIXED_FD_INSTALL as u8;
    /// `IORING_OP_LAST`: one past the highest opcode the ABI knows.
    pub const LAST: u8 = o::IORING_OP_LAST as u8;
}

/// MSG_RING commands (`sqe->addr`) and flags (`sqe->msg_ring_flags`).
pub mod msg {
    use linux_raw_sys::io_uring as k;
    /// `IORING_MSG_DATA`: post a CQE carrying `len` and `off` to the target.
    pub const DATA: u64 = k::io_uring_msg_ring_flags::IORING_MSG_DATA as u64;
    /// `IORING_MSG_SEND_FD`: install a registered file in the target's table.
    pub const SEND_FD: u64 = k::io_uring_msg_ring_flags::IORING_MSG_SEND_FD as u64;
    /// `IORING_MSG_RING_CQE_SKIP`: no CQE in the target (SEND_FD only).
    pub const CQE_SKIP: u32 = k::IORING_MSG_RING_CQE_SKIP;
    /// `IORING_MSG_RING_FLAGS_PASS`: `file_index` becomes the target CQE's flags.
    pub const FLAGS_PASS: u32 = k::IORING_MSG_RING_FLAGS_PASS;
}

/// Register opcodes as `u32`, the width of the `io_uring_register` argument.
pub mod reg {
    use super::io_uring_register_op as r;
    /// `IORING_REGISTER_BUFFERS`
    pub const BUFFERS: u32 = r::IORING_REGISTER_BUFFERS as u32;
    /// `IORING_UNREGISTER_BUFFERS`
    pub const UNREGISTER_BUFFERS: u32 = r::IORING_UNREGISTER_BUFFERS as u32;
    /// `IORING_REGISTER_FILES`
    pub const FILES: u32 = r::IORING_REGISTER_FILES as u32;
    /// `IORING_UNREGISTER_FILES`
    pub const UNREGISTER_FILES: u32 = r::IORING_UNREGISTER_FILES as u32;
    /// `IORING_REGISTER_EVENTFD`
    pub const EVENTFD: u32 = r::IORING_REGISTER_EVENTFD as u32;
    /// `IORING_UNREGISTER_EVENTFD`
    pub const UNREGISTER_EVENTFD: u32 = r::IORING_UNREGISTER_EVENTFD as u32;
    /// `IORING_REGISTER_FILES_UPDATE`
    pub const FILES_UPDATE: u32 = r::IORING_REGISTER_FILES_UPDATE as u32;
    /// `IORING_REGISTER_EVENTFD_ASYNC`
    pub const EVENTFD_ASYNC: u32 = r::IORING_REGISTER_EVENTFD_ASYNC as u32;
    /// `IORING_REGISTER_PROBE`
    pub const PROBE: u32 = r::IORING_REGISTER_PROBE as u32;
    /// `IORING_REGISTER_RESTRICTIONS`
    pub const RESTRICTIONS: u32 = r::IORING_REGISTER_RESTRICTIONS as u32;
    /// `IORING_REGISTER_ENABLE_RINGS`
    pub const ENABLE_RINGS: u32 = r::IORING_REGISTER_ENABLE_RINGS as u32;
    /// `IORING_REGISTER_FILES2`
    pub const FILES2: u32 = r::IORING_REGISTER_FILES2 as u32;
    /// `IORING_REGISTER_FILES_UPDATE2`
    pub const FILES_UPDATE2: u32 = r::IORING_REGISTER_FILES_UPDATE2 as u32;
    /// `IORING_REGISTER_FILE_ALLOC_RANGE`
    pub const FILE_ALLOC_RANGE: u32 = r::IORING_REGISTER_FILE_ALLOC_RANGE as u32;
    /// `IORING_REGISTER_SYNC_CANCEL`
    pub const SYNC_CANCEL: u32 = r::IORING_REGISTER_SYNC_CANCEL as u32;
    /// `IORING_REGISTER_LAST`: one past the highest register opcode.
    pub const LAST: u32 = r::IORING_REGISTER_LAST as u32;
    /// `IORING_REGISTER_USE_REGISTERED_RING`: high bit, the fd is a registered-ring index.
    pub const USE_REGISTERED_RING: u32 = r::IORING_REGISTER_USE_REGISTERED_RING as u32;
}

/// The kernel's limit on SQ entries (`IORING_MAX_ENTRIES`, io_uring.c).
pub const MAX_ENTRIES: u32 = 32768;
/// The kernel's limit on CQ entries (`IORING_MAX_CQ_ENTRIES`).
pub const MAX_CQ_ENTRIES: u32 = 2 * MAX_ENTRIES;
/// The kernel's limit on registered files (`IORING_MAX_FIXED_FILES`).
pub const MAX_FIXED_FILES: u32 = 1 << 20;
/// The kernel's limit on registered buffers (`IORING_MAX_REG_BUFFERS`).
pub const MAX_REG_BUFFERS: u32 = 1 << 14;
/// The kernel's limit on one registered buffer's length (`SZ_1G`).
pub const MAX_REG_BUFFER_LEN: u64 = 1 << 30;
/// `UIO_MAXIOV`: the most iovecs one vectored request may carry.
pub const UIO_MAXIOV: u32 = 1024;

// Layout pins: a program and the engine must agree on every byte.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<io_uring_restriction>() == 16);
    assert!(size_of::<io_uring_sync_cancel_reg>() == 64);
    assert!(size_of::<io_uring_sqe>() == 64);
    assert!(size_of::<io_uring_cqe>() == 16);
    assert!(size_of::<io_uring_params>() == 120);
    assert!(size_of::<io_sqring_offsets>() == 40);
    assert!(size_of::<io_cqring_offsets>() == 40);
    assert!(size_of::<io_uring_files_update>() == 16);
    assert!(size_of::<io_uring_probe>() == 16);
    assert!(size_of::<io_uring_probe_op>() == 8);
    assert!(size_of::<io_uring_getevents_arg>() == 24);
    assert!(offset_of!(io_uring_sqe, opcode) == 0);
    assert!(offset_of!(io_uring_sqe, flags) == 1);
    assert!(offset_of!(io_uring_sqe, ioprio) == 2);
    assert!(offset_of!(io_uring_sqe, fd) == 4);
    assert!(offset_of!(io_uring_sqe, len) == 24);
    assert!(offset_of!(io_uring_sqe, user_data) == 32);
    assert!(offset_of!(io_uring_sqe, personality) == 42);
    assert!(offset_of!(io_uring_cqe, user_data) == 0);
    assert!(offset_of!(io_uring_cqe, res) == 8);
    assert!(offset_of!(io_uring_cqe, flags) == 12);
    assert!(offset_of!(io_uring_params, sq_off) == 40);
    assert!(offset_of!(io_uring_params, cq_off) == 80);
};
