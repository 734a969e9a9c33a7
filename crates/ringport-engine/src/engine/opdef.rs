//! The opcode table: one entry per opcode, with its prep, its issue and its
//! properties, like the kernel's `io_issue_defs` (io_uring/opdef.c).
//!
//! `init_req` is the kernel's `io_init_req`: the checks every SQE goes
//! through before its op's own prep, in the kernel's order and with its
//! errors. An error here is a *prep failure*: the SQE still counts as
//! submitted and gets an error CQE, and submission stops after it (unless
//! `IORING_SETUP_SUBMIT_ALL`).

use super::ops::{advise, cancel, epoll, fs, kbuf, msg_ring, net, nop, openclose, poll, rsrc, rw, splice, statx, sync, timeout, truncate, xattr};
use super::{Ctx, Errno, Sqe};
use crate::abi::{self, op};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// The file a request works on, resolved at issue time.
pub(crate) enum File {
    /// Not resolved yet, or the op needs none.
    None,
    /// A plain fd of the program's.
    Raw(i32),
    /// A registered file; the Arc keeps it open while the request runs.
    Fixed(Arc<OwnedFd>),
}

impl File {
    /// The fd to hand to a syscall (-1 when there is none).
    #[inline]
    pub fn raw(&self) -> i32 {
        match self {
            File::None => -1,
            File::Raw(fd) => *fd,
            File::Fixed(f) => f.as_raw_fd(),
        }
    }
}

/// Per-op state decoded at prep time (the kernel's `io_kiocb` cmd area).
pub(crate) enum OpData {
    Nop(nop::Nop),
    Rw(rw::Rw),
    Fsync(sync::Fsync),
    Range(sync::Range),
    Open(openclose::Open),
    Close(openclose::Close),
    FdInstall(openclose::FdInstall),
    Statx(statx::Statx),
    Fs(fs::FsOp),
    Advise(advise::Advise),
    Ftruncate(truncate::Ftruncate),
    Splice(splice::Splice),
    FilesUpdate(rsrc::FilesUpdate),
    Xattr(xattr::Xattr),
    Timeout(timeout::Timeout),
    TimeoutRemove(timeout::TimeoutRemove),
    PollAdd(poll::PollAdd),
    PollRemove(poll::PollRemove),
    Cancel(cancel::Spec),
    Epoll(epoll::EpollCtl),
    MsgRing(msg_ring::MsgRing),
    Net(Box<net::Net>),
    Kbuf(kbuf::Provide),
}

/// One request: a validated SQE, owned by the engine from prep to post.
pub(crate) struct Req {
    pub opcode: u8,
    pub sqe_flags: u8,
    pub user_data: u64,
    /// `sqe->fd`: an fd, or a registered-file index with IOSQE_FIXED_FILE.
    pub fd: i32,
    pub file: File,
    pub data: OpData,
    /// A result decided before issue: a prep error, or -ECANCELED for the
    /// head of a chain that failed to prep. Such a request is never issued.
    pub preset: Option<i32>,
    /// The next request of an IO_LINK/IO_HARDLINK chain.
    pub link: Option<Box<Req>>,
    /// The key of this request's armed LINK_TIMEOUT, if any.
    pub ltimeout: Option<u64>,
}

// SAFETY: a Req's raw pointers (iovecs, buffers) are program addresses that
// are only handed to syscalls; moving them to a worker thread is what the
// kernel's io-wq does with the same requests.
unsafe impl Send for Req {}

impl Req {
    /// A request for `sqe`, before prep fills in its data.
    #[inline(always)]
    pub fn new(sqe: &Sqe) -> Req {
        Req {
            opcode: sqe.opcode(),
            sqe_flags: sqe.flags(),
            user_data: sqe.user_data(),
            fd: sqe.fd(),
            file: File::None,
            data: OpData::Nop(nop::Nop::default()),
            preset: None,
            link: None,
            ltimeout: None,
        }
    }
    /// Moves the request out, leaving an inert one behind.
    pub fn take(&mut self) -> Req {
        std::mem::replace(
            self,
            Req {
                opcode: 0,
                sqe_flags: 0,
                user_data: 0,
                fd: -1,
                file: File::None,
                data: OpData::Nop(nop::Nop::default()),
                preset: None,
                link: None,
                ltimeout: None,
            },
        )
    }
    /// True when the SQE had IO_LINK or IO_HARDLINK: the next SQE joins its chain.
    #[inline]
    pub fn links_next(&self) -> bool {
        self.sqe_flags & (abi::IOSQE_IO_LINK | abi::IOSQE_IO_HARDLINK) != 0
    }
}

/// How an issue attempt may behave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Inline in the submitter: must not block (RWF_NOWAIT and friends).
    NonBlock,
    /// In a worker thread: may block.
    Block,
}

/// The outcome of one issue attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Issue {
    /// Finished with this CQE result and flags.
    Done(i32, u32),
    /// Would block: hand it to a worker.
    Punt,
    /// Completes later from elsewhere (a timer, a poll): hand the request
    /// to its family's `park` (see [`park`]).
    Park,
}

/// One opcode's entry.
pub(crate) struct OpDef {
    /// The kernel's name for it.
    pub name: &'static str,
    /// `sqe->fd` names a file the op works on (resolved before issue).
    pub needs_file: bool,
    /// `sqe->ioprio` is meaningful; otherwise it must be zero.
    pub ioprio: bool,
    /// IOSQE_BUFFER_SELECT is allowed.
    pub buffer_select: bool,
    /// The op works on files that can be polled for readiness: on EAGAIN
    /// from a pipe or socket it parks in the reactor instead of occupying
    /// a worker.
    pub pollable: bool,
    /// The op may block however it is issued: always run by a worker.
    pub may_block: bool,
    /// The op may be used on an IORING_SETUP_IOPOLL ring.
    pub iopoll: bool,
    /// The kernel sets an error result without marking the request failed
    /// (no `req_set_fail`): with CQE_SKIP_SUCCESS the error posts nothing,
    /// and a link after it still runs. For an op that needs a file, a bad
    /// fd is still a failure (the kernel's file lookup fails first).
    pub errors_unmarked: bool,
    /// Validates the SQE into per-op data, written in place (no copy of
    /// the data through a return value on the hot path).
    pub prep: fn(&Ctx, &Sqe, &mut OpData) -> Result<(), Errno>,
    /// Runs the op.
    pub issue: fn(&Ctx, &mut Req, Mode) -> Issue,
}

/// An opcode's properties, named in the table below.
#[derive(Clone, Copy)]
struct Props {
    file: bool,
    ioprio: bool,
    pollable: bool,
    may_block: bool,
    iopoll: bool,
}

/// No file, no ioprio, never blocks, not for IOPOLL rings.
const PLAIN: Props = Props { file: false, ioprio: false, pollable: false, may_block: false, iopoll: false };
/// No file, always run by a worker (the kernel forces it async).
const BLOCKING: Props = Props { may_block: true, ..PLAIN };
/// On a file, always run by a worker.
const BLOCKING_FILE: Props = Props { file: true, may_block: true, ..PLAIN };
/// Reads and writes: a file, ioprio, pollable files, IOPOLL rings.
const RW: Props = Props { file: true, ioprio: true, pollable: true, may_block: false, iopoll: true };

/// Adapts an op's `prep` (which returns its data) to the table's in-place form.
macro_rules! prep {
    ($f:path) => {{
        fn in_place(ctx: &Ctx, sqe: &Sqe, out: &mut OpData) -> Result<(), Errno> {
            *out = $f(ctx, sqe)?;
            Ok(())
        }
        in_place
    }};
}

const fn def(
    name: &'static str,
    p: Props,
    prep: fn(&Ctx, &Sqe, &mut OpData) -> Result<(), Errno>,
    issue: fn(&Ctx, &mut Req, Mode) -> Issue,
) -> Option<OpDef> {
    Some(OpDef {
        name,
        needs_file: p.file,
        ioprio: p.ioprio,
        buffer_select: false,
        pollable: p.pollable,
        may_block: p.may_block,
        iopoll: p.iopoll,
        errors_unmarked: false,
        prep,
        issue,
    })
}

const fn table() -> [Option<OpDef>; op::LAST as usize] {
    let mut t = [const { None }; op::LAST as usize];
    t[op::NOP as usize] = def("NOP", Props { iopoll: true, ..PLAIN }, prep!(nop::prep), nop::issue);
    t[op::READV as usize] = def("READV", RW, prep!(rw::prep_readv), rw::issue_read);
    t[op::WRITEV as usize] = def("WRITEV", RW, prep!(rw::prep_writev), rw::issue_write);
    t[op::FSYNC as usize] = def("FSYNC", BLOCKING_FILE, prep!(sync::prep_fsync), sync::issue_fsync);
    t[op::READ_FIXED as usize] = def("READ_FIXED", RW, prep!(rw::prep_read_fixed), rw::issue_read);
    t[op::WRITE_FIXED as usize] = def("WRITE_FIXED", RW, prep!(rw::prep_write_fixed), rw::issue_write);
    t[op::POLL_ADD as usize] =
        def("POLL_ADD", Props { file: true, pollable: true, ..PLAIN }, prep!(poll::prep_poll_add), poll::issue_poll_add);
    t[op::POLL_REMOVE as usize] = def("POLL_REMOVE", PLAIN, prep!(poll::prep_poll_remove), poll::issue_poll_remove);
    t[op::ASYNC_CANCEL as usize] = def("ASYNC_CANCEL", PLAIN, prep!(cancel::prep_cancel), cancel::issue_cancel);
    t[op::LINK_TIMEOUT as usize] =
        def("LINK_TIMEOUT", PLAIN, prep!(timeout::prep_link_timeout), timeout::issue_link_timeout);
    t[op::TIMEOUT as usize] = def("TIMEOUT", PLAIN, prep!(timeout::prep_timeout), timeout::issue_timeout);
    t[op::TIMEOUT_REMOVE as usize] =
        def("TIMEOUT_REMOVE", PLAIN, prep!(timeout::prep_timeout_remove), timeout::issue_timeout_remove);
    t[op::READ as usize] = def("READ", RW, prep!(rw::prep_read), rw::issue_read);
    t[op::WRITE as usize] = def("WRITE", RW, prep!(rw::prep_write), rw::issue_write);
    t[op::SYNC_FILE_RANGE as usize] =
        def("SYNC_FILE_RANGE", BLOCKING_FILE, prep!(sync::prep_sync_file_range), sync::issue_sync_file_range);
    t[op::FALLOCATE as usize] = def("FALLOCATE", BLOCKING_FILE, prep!(sync::prep_fallocate), sync::issue_fallocate);
    // OPENAT/OPENAT2 decide per request (inline cached lookup, or a worker).
    t[op::OPENAT as usize] = def("OPENAT", PLAIN, prep!(openclose::prep_openat), openclose::issue_openat);
    t[op::OPENAT2 as usize] = def("OPENAT2", PLAIN, prep!(openclose::prep_openat2), openclose::issue_openat);
    t[op::CLOSE as usize] = def("CLOSE", PLAIN, prep!(openclose::prep_close), openclose::issue_close);
    t[op::FIXED_FD_INSTALL as usize] = def(
        "FIXED_FD_INSTALL",
        Props { file: true, ..PLAIN },
        prep!(openclose::prep_fixed_fd_install),
        openclose::issue_fixed_fd_install,
    );
    t[op::FILES_UPDATE as usize] =
        def("FILES_UPDATE", Props { iopoll: true, ..PLAIN }, prep!(rsrc::prep_files_update), rsrc::issue_files_update);
    t[op::STATX as usize] = def("STATX", BLOCKING, prep!(statx::prep_statx), statx::issue_statx);
    // FADVISE decides per request (by the advice).
    t[op::FADVISE as usize] = def("FADVISE", Props { file: true, ..PLAIN }, prep!(advise::prep_fadvise), advise::issue_fadvise);
    t[op::MADVISE as usize] = def("MADVISE", BLOCKING, prep!(advise::prep_madvise), advise::issue_madvise);
    t[op::SPLICE as usize] = def("SPLICE", BLOCKING_FILE, prep!(splice::prep_splice), splice::issue_splice);
    t[op::TEE as usize] = def("TEE", BLOCKING_FILE, prep!(splice::prep_tee), splice::issue_splice);
    t[op::RENAMEAT as usize] = def("RENAMEAT", BLOCKING, prep!(fs::prep_renameat), fs::issue_fs);
    t[op::UNLINKAT as usize] = def("UNLINKAT", BLOCKING, prep!(fs::prep_unlinkat), fs::issue_fs);
    t[op::MKDIRAT as usize] = def("MKDIRAT", BLOCKING, prep!(fs::prep_mkdirat), fs::issue_fs);
    t[op::SYMLINKAT as usize] = def("SYMLINKAT", BLOCKING, prep!(fs::prep_symlinkat), fs::issue_fs);
    t[op::LINKAT as usize] = def("LINKAT", BLOCKING, prep!(fs::prep_linkat), fs::issue_fs);
    t[op::FSETXATTR as usize] = def("FSETXATTR", BLOCKING_FILE, prep!(xattr::prep_fsetxattr), xattr::issue_xattr);
    t[op::SETXATTR as usize] = def("SETXATTR", BLOCKING, prep!(xattr::prep_setxattr), xattr::issue_xattr);
    t[op::FGETXATTR as usize] = def("FGETXATTR", BLOCKING_FILE, prep!(xattr::prep_fgetxattr), xattr::issue_xattr);
    t[op::GETXATTR as usize] = def("GETXATTR", BLOCKING, prep!(xattr::prep_getxattr), xattr::issue_xattr);
    t[op::EPOLL_CTL as usize] = def("EPOLL_CTL", PLAIN, prep!(epoll::prep), epoll::issue);
    t[op::MSG_RING as usize] = def("MSG_RING", Props { file: true, ..PLAIN }, prep!(msg_ring::prep), msg_ring::issue);
    t[op::FTRUNCATE as usize] = def("FTRUNCATE", BLOCKING_FILE, prep!(truncate::prep_ftruncate), truncate::issue_ftruncate);
    net_entries(&mut t);
    // The path, xattr and sync families, STATX, MADVISE and FTRUNCATE set
    // their result without req_set_fail.
    let unmarked = [
        op::FSYNC,
        op::SYNC_FILE_RANGE,
        op::FALLOCATE,
        op::FTRUNCATE,
        op::STATX,
        op::MADVISE,
        op::RENAMEAT,
        op::UNLINKAT,
        op::MKDIRAT,
        op::SYMLINKAT,
        op::LINKAT,
        op::FSETXATTR,
        op::SETXATTR,
        op::FGETXATTR,
        op::GETXATTR,
    ];
    let mut i = 0;
    while i < unmarked.len() {
        if let Some(d) = &mut t[unmarked[i] as usize] {
            d.errors_unmarked = true;
        }
        i += 1;
    }
    t
}

/// Sockets: a file, pollable (EAGAIN waits for readiness), ioprio carries
/// the op's own flags.
const NET: Props = Props { file: true, ioprio: true, pollable: true, may_block: false, iopoll: false };

/// The entry `d`, also allowing IOSQE_BUFFER_SELECT.
const fn with_buffer_select(mut d: Option<OpDef>) -> Option<OpDef> {
    if let Some(x) = &mut d {
        x.buffer_select = true;
    }
    d
}

/// The networking and provided-buffer families (ops/net.rs, ops/kbuf.rs).
const fn net_entries(t: &mut [Option<OpDef>; op::LAST as usize]) {
    use kbuf::code as kc;
    use net::code as nc;
    // READ and READV take a provided buffer with IOSQE_BUFFER_SELECT (ops/rw.rs).
    if let Some(d) = &mut t[op::READ as usize] {
        d.buffer_select = true;
    }
    if let Some(d) = &mut t[op::READV as usize] {
        d.buffer_select = true;
    }
    t[nc::SENDMSG as usize] = def("SENDMSG", NET, prep!(net::prep_send), net::issue_msg);
    t[nc::RECVMSG as usize] = with_buffer_select(def("RECVMSG", NET, prep!(net::prep_recv), net::issue_msg));
    t[nc::SEND as usize] = with_buffer_select(def("SEND", NET, prep!(net::prep_send), net::issue_msg));
    t[nc::RECV as usize] = with_buffer_select(def("RECV", NET, prep!(net::prep_recv), net::issue_msg));
    t[nc::ACCEPT as usize] = def("ACCEPT", NET, prep!(net::prep_accept), net::issue_accept);
    t[nc::CONNECT as usize] = def("CONNECT", Props { ioprio: false, ..NET }, prep!(net::prep_connect), net::issue_connect);
    t[nc::SOCKET as usize] = def("SOCKET", PLAIN, prep!(net::prep_socket), net::issue_socket);
    t[nc::SHUTDOWN as usize] =
        def("SHUTDOWN", Props { file: true, may_block: true, ..PLAIN }, prep!(net::prep_shutdown), net::issue_shutdown);
    t[nc::SEND_ZC as usize] = def("SEND_ZC", NET, net::prep_send_zc, net::issue_msg);
    t[nc::SENDMSG_ZC as usize] = def("SENDMSG_ZC", NET, net::prep_send_zc, net::issue_msg);
    t[nc::BIND as usize] = def("BIND", Props { file: true, ..PLAIN }, prep!(net::prep_bind), net::issue_bind_listen);
    t[nc::LISTEN as usize] = def("LISTEN", Props { file: true, ..PLAIN }, prep!(net::prep_listen), net::issue_bind_listen);
    t[kc::PROVIDE_BUFFERS as usize] =
        def("PROVIDE_BUFFERS", Props { iopoll: true, ..PLAIN }, prep!(kbuf::prep_provide), kbuf::issue_provide);
    t[kc::REMOVE_BUFFERS as usize] =
        def("REMOVE_BUFFERS", Props { iopoll: true, ..PLAIN }, prep!(kbuf::prep_remove), kbuf::issue_remove);
}

/// The table itself, indexed by opcode.
pub(crate) static OPS: [Option<OpDef>; op::LAST as usize] = table();

/// The kernel's name of `opcode`, if ringport implements it.
pub(crate) fn name(opcode: u8) -> Option<&'static str> {
    lookup(opcode).map(|d| d.name)
}

/// The entry for `opcode`, if ringport implements it.
#[inline]
pub(crate) fn lookup(opcode: u8) -> Option<&'static OpDef> {
    OPS.get(opcode as usize).and_then(|d| d.as_ref())
}


/// The kernel's `io_init_req`: common checks, then the op's prep, which
/// fills `req` (made by [`Req::new`]) in place. On error the caller posts
/// `-errno` with the SQE's user_data.
pub(crate) fn init_req(ctx: &Ctx, sqe: &Sqe, req: &mut Req) -> Result<(), Errno> {
    let opcode = sqe.opcode();
    let flags = sqe.flags();
    if opcode >= op::LAST {
        return Err(Errno(libc::EINVAL));
    }
    if flags & !abi::IOSQE_ALL != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let Some(def) = lookup(opcode) else {
        return Err(Errno(libc::EOPNOTSUPP));
    };
    if flags & abi::IOSQE_BUFFER_SELECT != 0 && !def.buffer_select {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    if ctx.restricted().is_some_and(|r| !r.allows_sqe(opcode, flags)) {
        return Err(Errno(libc::EACCES));
    }
    if !def.ioprio && sqe.ioprio() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if !def.iopoll && ctx.has(abi::IORING_SETUP_IOPOLL) {
        return Err(Errno(libc::EINVAL));
    }
    // No personalities can be registered, so any id is unknown.
    if sqe.personality() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    (def.prep)(ctx, sqe, &mut req.data)
}

/// The registered file in slot `index`, if any.
fn fixed_file(ctx: &Ctx, index: i32) -> Option<Arc<OwnedFd>> {
    let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
    usize::try_from(index).ok().and_then(|i| rsrc.files.get(i)).and_then(|f| f.clone())
}

/// The fd of the file `req` names, resolved or not yet (a request punted
/// before issue); None for a bad fd or an empty registered slot.
pub(crate) fn named_fd(ctx: &Ctx, req: &Req) -> Option<i32> {
    match &req.file {
        File::None if req.sqe_flags & abi::IOSQE_FIXED_FILE != 0 => fixed_file(ctx, req.fd).map(|f| f.as_raw_fd()),
        File::None => (req.fd >= 0).then_some(req.fd),
        f => Some(f.raw()),
    }
}

/// Resolves `req.fd` (a registered index with IOSQE_FIXED_FILE) to a file.
pub(crate) fn assign_file(ctx: &Ctx, req: &mut Req) -> Result<(), Errno> {
    if !matches!(req.file, File::None) {
        return Ok(());
    }
    if req.sqe_flags & abi::IOSQE_FIXED_FILE != 0 {
        let slot = fixed_file(ctx, req.fd);
        match slot {
            Some(f) => req.file = File::Fixed(f),
            None => return Err(Errno(libc::EBADF)),
        }
    } else {
        if req.fd < 0 {
            return Err(Errno(libc::EBADF));
        }
        req.file = File::Raw(req.fd);
    }
    Ok(())
}

/// Issues `req` once in `mode`: file resolution, then the op's issue.
pub(crate) fn issue(ctx: &Ctx, req: &mut Req, mode: Mode) -> Issue {
    let Some(def) = lookup(req.opcode) else {
        return Issue::Done(-libc::EOPNOTSUPP, 0);
    };
    if def.needs_file {
        if let Err(e) = assign_file(ctx, req) {
            return Issue::Done(e.neg(), 0);
        }
    }
    (def.issue)(ctx, req, mode)
}

/// The result of a request whose blocking call a cancel interrupted. The
/// kernel's call returns -ERESTARTSYS there; reads and writes (io_rw_done)
/// and the socket ops (net.c) turn it into -EINTR, every other op posts it
/// as it is (-512: measured on 6.18 for a FIFO open and a pipe splice).
pub(crate) fn interrupted_result(opcode: u8) -> i32 {
    use crate::abi::io_uring_op as o;
    const ERESTARTSYS: i32 = 512;
    const NET: [o; 8] = [
        o::IORING_OP_SEND,
        o::IORING_OP_RECV,
        o::IORING_OP_SENDMSG,
        o::IORING_OP_RECVMSG,
        o::IORING_OP_ACCEPT,
        o::IORING_OP_CONNECT,
        o::IORING_OP_SEND_ZC,
        o::IORING_OP_SENDMSG_ZC,
    ];
    match opcode {
        op::READ | op::WRITE | op::READV | op::WRITEV | op::READ_FIXED | op::WRITE_FIXED => -libc::EINTR,
        n if NET.iter().any(|&x| x as u8 == n) => -libc::EINTR,
        _ => -ERESTARTSYS,
    }
}

/// True when `res` counts as a failure for `req` (the kernel's REQ_F_FAIL):
/// an error, or a short read/write. A failed request always posts its CQE,
/// even with IOSQE_CQE_SKIP_SUCCESS.
pub(crate) fn failed(req: &Req, res: i32) -> bool {
    // The kernel never marks a LINK_TIMEOUT failed (fired, or not): with
    // CQE_SKIP_SUCCESS it posts nothing either way.
    if req.opcode == op::LINK_TIMEOUT {
        return false;
    }
    if let Some(d) = lookup(req.opcode).filter(|d| d.errors_unmarked) {
        return d.needs_file && res == -libc::EBADF;
    }
    match &req.data {
        OpData::Rw(rw) => res < 0 || res as u64 != rw.total,
        OpData::Timeout(t) => t.failed(res),
        // A short splice or tee fails (the kernel's `ret != sp->len`).
        OpData::Splice(sp) => res < 0 || res as u32 != sp.len,
        OpData::Net(n) => res < 0 || n.fail,
        _ => res < 0,
    }
}

/// The result a request that ends with `res` reports (a partial transfer
/// can win over a late error or a cancellation).
#[inline]
pub(crate) fn final_res(req: &Req, res: i32) -> i32 {
    match &req.data {
        OpData::Net(n) => net::fail_res(n, res),
        _ => res,
    }
}

/// The result of a second CQE (a zero-copy send's notification) that
/// follows this request's own, if any.
#[inline]
pub(crate) fn notif_res(req: &Req, res: i32) -> Option<i32> {
    match &req.data {
        OpData::Net(n) => net::notif_res(n, res),
        _ => None,
    }
}

/// CQE flags a finished request reports beyond its issue's own (a
/// selected buffer's id, SOCK_NONEMPTY), whichever path completes it.
#[inline]
pub(crate) fn cqe_flags(req: &Req) -> u32 {
    match &req.data {
        OpData::Net(n) => net::cqe_flags(n),
        OpData::Rw(rw) => rw.cflags,
        _ => 0,
    }
}

/// Hands a request whose issue answered [`Issue::Park`] to its family.
pub(crate) fn park(ctx: &Arc<Ctx>, mut req: Box<Req>) {
    timeout::arm_link_timeout(ctx, &mut req);
    match req.data {
        OpData::Timeout(_) => timeout::arm(ctx, req),
        OpData::PollAdd(_) => poll::arm(ctx, req),
        OpData::Rw(ref rw) if rw.via_aio => {
            let write = matches!(req.opcode, op::WRITE | op::WRITEV | op::WRITE_FIXED);
            let fd = req.file.raw();
            let built = |r: &Req, id: u64, resfd: u32| match &r.data {
                OpData::Rw(rw) => rw.iocb(fd, write, id, resfd),
                _ => None,
            };
            if let Err(mut req) = super::aio::submit(ctx, req, built) {
                // AIO could not take it: a worker does the I/O.
                if let OpData::Rw(rw) = &mut req.data {
                    rw.via_aio = false;
                }
                super::wq::punt(ctx.clone(), req);
            }
        }
        OpData::Rw(_) => {
            let write = matches!(req.opcode, op::WRITE | op::WRITEV | op::WRITE_FIXED);
            poll::arm_retry(ctx, req, write)
        }
        OpData::Net(ref n) => {
            let write = n.waits_for_write();
            poll::arm_retry(ctx, req, write)
        }
        // No other family parks: complete rather than lose it.
        _ => super::submit::complete_elsewhere(ctx, req, -libc::EINVAL),
    }
}
