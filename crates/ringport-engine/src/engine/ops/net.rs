//! Networking ops (the kernel's io_uring/net.c): SEND, RECV, SENDMSG,
//! RECVMSG, ACCEPT (one-shot and multishot), CONNECT, SOCKET, SHUTDOWN, BIND,
//! LISTEN.
//!
//! Every socket call is made non-blocking (`MSG_DONTWAIT`, or for accept
//! and connect a non-blocking file for the duration of the call); on
//! EAGAIN the request parks in the reactor and is retried when the socket
//! is ready, as the kernel's fast poll does, so no thread ever blocks on a
//! socket. A program's own `MSG_DONTWAIT` (or `IORING_ACCEPT_DONTWAIT`)
//! makes EAGAIN final instead. `MSG_WAITALL` on a stream or seqpacket
//! socket keeps what a partial transfer moved and waits for the rest; the
//! CQE carries the total. Message headers and iovecs are copied at prep
//! (`IORING_FEAT_SUBMIT_STABLE`); what the kernel writes back into a
//! RECVMSG header (name length, control length, flags) is written back
//! through fault-checked copies.

use super::kbuf;
use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{register, uaccess, Ctx, Cqe, Errno, Sqe};
use std::os::fd::{FromRawFd, OwnedFd};

/// `MSG_CMSG_COMPAT` (<linux/socket.h>; not in libc).
const MSG_CMSG_COMPAT: u32 = 0x8000_0000;

/// Opcode numbers of this family.
pub(crate) mod code {
    use linux_raw_sys::io_uring::io_uring_op as o;
    /// `IORING_OP_SENDMSG`
    pub const SENDMSG: u8 = o::IORING_OP_SENDMSG as u8;
    /// `IORING_OP_RECVMSG`
    pub const RECVMSG: u8 = o::IORING_OP_RECVMSG as u8;
    /// `IORING_OP_ACCEPT`
    pub const ACCEPT: u8 = o::IORING_OP_ACCEPT as u8;
    /// `IORING_OP_CONNECT`
    pub const CONNECT: u8 = o::IORING_OP_CONNECT as u8;
    /// `IORING_OP_SEND`
    pub const SEND: u8 = o::IORING_OP_SEND as u8;
    /// `IORING_OP_RECV`
    pub const RECV: u8 = o::IORING_OP_RECV as u8;
    /// `IORING_OP_SHUTDOWN`
    pub const SHUTDOWN: u8 = o::IORING_OP_SHUTDOWN as u8;
    /// `IORING_OP_SOCKET`
    pub const SOCKET: u8 = o::IORING_OP_SOCKET as u8;
    /// `IORING_OP_SEND_ZC`
    pub const SEND_ZC: u8 = o::IORING_OP_SEND_ZC as u8;
    /// `IORING_OP_SENDMSG_ZC`
    pub const SENDMSG_ZC: u8 = o::IORING_OP_SENDMSG_ZC as u8;
    /// `IORING_OP_BIND`
    pub const BIND: u8 = o::IORING_OP_BIND as u8;
    /// `IORING_OP_LISTEN`
    pub const LISTEN: u8 = o::IORING_OP_LISTEN as u8;
}

use linux_raw_sys::io_uring as k;

const POLL_FIRST: u16 = k::IORING_RECVSEND_POLL_FIRST as u16;
const RECV_MULTISHOT: u16 = k::IORING_RECV_MULTISHOT as u16;
const SEND_VECTORIZED: u16 = k::IORING_SEND_VECTORIZED as u16;
const ACCEPT_MULTISHOT: u16 = k::IORING_ACCEPT_MULTISHOT as u16;
const ACCEPT_DONTWAIT: u16 = k::IORING_ACCEPT_DONTWAIT as u16;
const ACCEPT_POLL_FIRST: u16 = k::IORING_ACCEPT_POLL_FIRST as u16;
/// `IORING_FILE_INDEX_ALLOC`: pick a free registered-file slot.
const FILE_INDEX_ALLOC: u32 = k::IORING_FILE_INDEX_ALLOC as u32;
/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: usize = 128;
/// The kernel's `MAX_RW_COUNT`.
const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !4095;
/// Highest user address + 1 (the kernel's `access_ok` bound).
const TASK_SIZE: u64 = (1 << 47) - 4096;
/// Multishot: at most this many transfers per readiness before yielding
/// (the kernel's `MULTISHOT_MAX_RETRY`).
const MULTISHOT_MAX: u32 = 32;

fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len.min(MAX_RW_COUNT)).is_some_and(|e| e <= TASK_SIZE)
}

/// A socket address copied from the program (`move_addr_to_kernel`).
#[derive(Clone, Copy)]
pub(crate) struct Addr {
    bytes: [u8; SOCKADDR_MAX],
    len: u32,
}

impl Addr {
    /// Copies `len` bytes at `ptr`: EINVAL above 128, EFAULT if unreadable.
    fn copy_in(ptr: u64, len: i64) -> Result<Addr, Errno> {
        if !(0..=SOCKADDR_MAX as i64).contains(&len) {
            return Err(Errno(libc::EINVAL));
        }
        let mut a = Addr { bytes: [0; SOCKADDR_MAX], len: len as u32 };
        if len > 0 {
            uaccess::copy_in(&mut a.bytes[..len as usize], ptr)?;
        }
        Ok(a)
    }
    fn ptr(&self) -> *const libc::sockaddr {
        self.bytes.as_ptr().cast()
    }
}

/// The kinds of transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Send,
    Recv,
}

/// A prepared SEND, RECV, SENDMSG or RECVMSG.
pub(crate) struct Msg {
    dir: Dir,
    /// SENDMSG/RECVMSG (or SEND with IORING_SEND_VECTORIZED).
    vectored: bool,
    /// SEND/RECV: the buffer; RECVMSG: the program's msghdr.
    buf: u64,
    len: u32,
    umsg: u64,
    /// SENDMSG/RECVMSG: the iovecs, copied at prep.
    iov: Vec<libc::iovec>,
    /// Bytes asked for (after clamping).
    total: u64,
    /// SEND's destination, SENDMSG's name (copied).
    name: Option<Addr>,
    /// RECVMSG: the program's name buffer and its length.
    uname: u64,
    unamelen: u32,
    /// SENDMSG/RECVMSG: control buffer (program memory) and its length.
    control: u64,
    controllen: usize,
    msg_flags: i32,
    ioflags: u16,
    /// IOSQE_BUFFER_SELECT: the group to take a buffer from.
    bgid: Option<u16>,
    /// Bytes moved by earlier attempts (MSG_WAITALL).
    done: u64,
    /// Waited for readiness at least once (the kernel's REQ_F_POLLED).
    polled: bool,
    /// Multishot transfers since the last wait.
    loops: u32,
    /// Multishot RECVMSG: the name and control space each buffer reserves
    /// after its `io_uring_recvmsg_out` header.
    mshot_namelen: u32,
    mshot_controllen: u32,
    /// A selected buffer kept across a partial MSG_WAITALL transfer.
    held: Option<kbuf::Picked>,
    /// SEND_ZC / SENDMSG_ZC.
    zc: Option<Zc>,
    /// How the socket's protocol reports what is left queued, once asked
    /// (see [`inq_of`]).
    inq: Option<Inq>,
}

/// How a socket's protocol reports what is left queued after a receive
/// (the kernel's `msg_inq`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Inq {
    /// It does not (io_uring then takes "maybe more").
    Unknown,
    /// Unix stream: the bytes queued.
    Bytes,
    /// TCP (`tcp_inq_hint`): the bytes queued, or 1 once the peer's FIN has
    /// arrived and nothing is left, so that a reader reads again and sees
    /// the end.
    Tcp,
}

/// A zero-copy send's options. ringport copies the data (as the kernel
/// does on loopback) and posts the kernel's notification CQE after the
/// send's own.
#[derive(Clone, Copy, Debug)]
struct Zc {
    /// IORING_SEND_ZC_REPORT_USAGE: the notification says the data was copied.
    report: bool,
    /// IORING_RECVSEND_FIXED_BUF: the data lies in this registered buffer.
    fixed: Option<u16>,
}

/// A prepared ACCEPT.
pub(crate) struct Accept {
    addr: u64,
    addrlen: u64,
    flags: i32,
    ioflags: u16,
    file_slot: u32,
    polled: bool,
}

/// A prepared CONNECT.
pub(crate) struct Connect {
    addr: Addr,
    in_progress: bool,
    seen_econnaborted: bool,
}

/// A prepared SOCKET.
pub(crate) struct Socket {
    domain: i32,
    ty: i32,
    protocol: i32,
    file_slot: u32,
}

/// One networking request's state.
pub(crate) enum Kind {
    Msg(Msg),
    Accept(Accept),
    Connect(Connect),
    Socket(Socket),
    Shutdown(i32),
    /// BIND: the address, copied at prep.
    Bind(Addr),
    /// A zero-copy send that failed at prep after the kernel's point of
    /// no return (its notification is allocated): it still posts F_MORE
    /// and a notification.
    /// With REPORT_USAGE or not.
    ZcFailed(bool),
    /// LISTEN: the backlog.
    Listen(i32),
}

/// A prepared networking request.
pub(crate) struct Net {
    kind: Kind,
    /// CQE flags decided by the last issue (buffer id, SOCK_NONEMPTY).
    pub cflags: u32,
    /// The request failed though its result is not an error (a short
    /// MSG_WAITALL transfer): the kernel's REQ_F_FAIL, for links.
    pub fail: bool,
    /// A zero-copy send: its CQE has F_MORE and a notification follows.
    notif: bool,
}

impl Net {
    fn data(kind: Kind) -> OpData {
        OpData::Net(Box::new(Net { kind, cflags: 0, fail: false, notif: false }))
    }
    /// True when a wait for readiness is a wait for POLLOUT.
    pub fn waits_for_write(&self) -> bool {
        match &self.kind {
            Kind::Msg(m) => m.dir == Dir::Send,
            Kind::Connect(_) => true,
            _ => false,
        }
    }
}

fn err<T>(e: i32) -> Result<T, Errno> {
    Err(Errno(e))
}

/// Copies and checks an iovec array as `__import_iovec` does; returns the
/// iovecs (clamped to MAX_RW_COUNT in total) and their total.
fn import_iov(addr: u64, n: u64) -> Result<(Vec<libc::iovec>, u64), Errno> {
    if n > abi::UIO_MAXIOV as u64 {
        return err(libc::EINVAL);
    }
    // SAFETY: iovec is plain data.
    let mut iov: Vec<libc::iovec> = unsafe { uaccess::read_pod_vec(addr, n as usize)? };
    let mut total = 0u64;
    for v in iov.iter_mut() {
        let len = v.iov_len as u64;
        if len > isize::MAX as u64 {
            return err(libc::EINVAL);
        }
        if !access_ok(v.iov_base as u64, len) {
            return err(libc::EFAULT);
        }
        let room = MAX_RW_COUNT - total;
        if len > room {
            v.iov_len = room as usize;
        }
        total += v.iov_len as u64;
    }
    Ok((iov, total))
}

fn msg_base(dir: Dir, sqe: &Sqe) -> Msg {
    Msg {
        dir,
        vectored: false,
        buf: sqe.addr(),
        len: sqe.len(),
        umsg: 0,
        iov: Vec::new(),
        total: (sqe.len() as u64).min(MAX_RW_COUNT),
        name: None,
        uname: 0,
        unamelen: 0,
        control: 0,
        controllen: 0,
        // MSG_CMSG_COMPAT is the kernel's own marker for 32-bit callers: the
        // kernel's io_uring drops it (a sendmsg(2) with it fails).
        msg_flags: (sqe.op_flags() & !MSG_CMSG_COMPAT) as i32,
        ioflags: sqe.ioprio(),
        bgid: (sqe.flags() & abi::IOSQE_BUFFER_SELECT != 0).then(|| sqe.buf_index()),
        done: 0,
        polled: false,
        loops: 0,
        mshot_namelen: 0,
        mshot_controllen: 0,
        held: None,
        inq: None,
        zc: None,
    }
}

/// Reads a program `msghdr` (the kernel's `__copy_msghdr` checks) into `m`.
fn copy_msghdr(m: &mut Msg, umsg: u64) -> Result<(), Errno> {
    // SAFETY: msghdr is plain data (pointers are only handed to syscalls).
    let h: libc::msghdr = unsafe { uaccess::read_pod(umsg)? };
    let raw_namelen = h.msg_namelen as i32;
    let raw_controllen = h.msg_controllen;
    let mut namelen = if h.msg_name.is_null() { 0 } else { h.msg_namelen as i32 };
    if namelen < 0 {
        return err(libc::EINVAL);
    }
    namelen = namelen.min(SOCKADDR_MAX as i32);
    m.umsg = umsg;
    m.control = h.msg_control as u64;
    m.controllen = h.msg_controllen;
    if m.dir == Dir::Send {
        if namelen > 0 {
            m.name = Some(Addr::copy_in(h.msg_name as u64, namelen as i64)?);
        }
    } else {
        m.uname = h.msg_name as u64;
        m.unamelen = namelen as u32;
    }
    if h.msg_iovlen > abi::UIO_MAXIOV as usize {
        return err(libc::EMSGSIZE);
    }
    if m.bgid.is_some() {
        match h.msg_iovlen {
            0 => m.len = 0,
            1 => {
                // SAFETY: iovec is plain data.
                let v: libc::iovec = unsafe { uaccess::read_pod(h.msg_iov as u64)? };
                m.len = v.iov_len as u32;
            }
            _ => return err(libc::EINVAL),
        }
        m.total = m.len as u64;
        if m.ioflags & RECV_MULTISHOT != 0 {
            // io_recvmsg_mshot_prep: the layout must fit in an int.
            if raw_namelen < 0 {
                return err(libc::EOVERFLOW);
            }
            let hdr = OUT_HDR as u64 + raw_namelen as u64 + raw_controllen as u64;
            if hdr > i32::MAX as u64 {
                return err(libc::EOVERFLOW);
            }
            m.mshot_namelen = raw_namelen as u32;
            m.mshot_controllen = raw_controllen as u32;
        }
        return Ok(());
    }
    let (iov, total) = import_iov(h.msg_iov as u64, h.msg_iovlen as u64)?;
    m.iov = iov;
    m.total = total;
    Ok(())
}

/// SEND and SENDMSG (`io_sendmsg_prep`).
#[inline(always)]
pub(crate) fn prep_send(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    let op = sqe.opcode();
    if op != code::SEND && (sqe.off() != 0 || sqe.file_index() != 0) {
        return err(libc::EINVAL);
    }
    let mut m = msg_base(Dir::Send, sqe);
    // The kernel keeps the length as an int and refuses a negative one.
    if (sqe.len() as i32) < 0 {
        return err(libc::EINVAL);
    }
    let known = POLL_FIRST | if op == code::SEND { SEND_VECTORIZED } else { 0 };
    if m.ioflags & !known != 0 {
        // IORING_RECVSEND_BUNDLE is not emulated.
        return err(libc::EINVAL);
    }
    m.msg_flags |= libc::MSG_NOSIGNAL;
    if m.bgid.is_some() && op == code::SENDMSG {
        return err(libc::EINVAL);
    }
    if op == code::SENDMSG {
        m.vectored = true;
        copy_msghdr(&mut m, sqe.addr())?;
        return Ok(Net::data(Kind::Msg(m)));
    }
    // addr_len is the low half of the file_index word, __pad3 the high half.
    if sqe.file_index() >> 16 != 0 {
        return err(libc::EINVAL);
    }
    if sqe.off() != 0 {
        m.name = Some(Addr::copy_in(sqe.off(), (sqe.file_index() & 0xffff) as i64)?);
    }
    if m.ioflags & SEND_VECTORIZED != 0 {
        let (iov, total) = import_iov(m.buf, m.len as u64)?;
        m.vectored = true;
        m.iov = iov;
        m.total = total;
    } else if m.bgid.is_none() && !access_ok(m.buf, m.len as u64) {
        return err(libc::EFAULT);
    }
    Ok(Net::data(Kind::Msg(m)))
}

/// SEND_ZC and SENDMSG_ZC (`io_send_zc_prep`), in the table's in-place
/// form: past the kernel's notification allocation a failure still leaves
/// a request that posts F_MORE and a notification.
pub(crate) fn prep_send_zc(_ctx: &Ctx, sqe: &Sqe, out: &mut OpData) -> Result<(), Errno> {
    if sqe.pad2() != 0 || sqe.0[6] != 0 {
        return err(libc::EINVAL);
    }
    if sqe.flags() & abi::IOSQE_CQE_SKIP_SUCCESS != 0 {
        return err(libc::EINVAL);
    }
    let (kind, r) = match prep_zc_msg(sqe) {
        Ok(m) => (Kind::Msg(m), Ok(())),
        Err(e) => {
            // REPORT_USAGE takes effect once the flags passed their check.
            let ioprio = sqe.ioprio();
            (Kind::ZcFailed(ioprio & !ZC_FLAGS == 0 && ioprio & ZC_REPORT != 0), Err(e))
        }
    };
    *out = OpData::Net(Box::new(Net { kind, cflags: 0, fail: false, notif: true }));
    r
}

/// IORING_SEND_ZC_REPORT_USAGE.
const ZC_REPORT: u16 = k::IORING_SEND_ZC_REPORT_USAGE as u16;
/// The ioprio flags a zero-copy send takes.
const ZC_FLAGS: u16 = POLL_FIRST | k::IORING_RECVSEND_FIXED_BUF as u16 | ZC_REPORT;

fn prep_zc_msg(sqe: &Sqe) -> Result<Msg, Errno> {
    let op = sqe.opcode();
    let mut m = msg_base(Dir::Send, sqe);
    if m.ioflags & !ZC_FLAGS != 0 {
        return err(libc::EINVAL);
    }
    let fixed = m.ioflags & k::IORING_RECVSEND_FIXED_BUF as u16 != 0;
    if op == code::SENDMSG_ZC && (sqe.off() != 0 || sqe.file_index() != 0 || fixed) {
        return err(libc::EINVAL);
    }
    m.zc = Some(Zc { report: m.ioflags & ZC_REPORT != 0, fixed: fixed.then(|| sqe.buf_index()) });
    m.bgid = None;
    // MSG_ZEROCOPY is the kernel's own doing here; the copy never asks for it.
    m.msg_flags = (m.msg_flags | libc::MSG_NOSIGNAL) & !libc::MSG_ZEROCOPY;
    if op == code::SENDMSG_ZC {
        m.vectored = true;
        copy_msghdr(&mut m, sqe.addr())?;
        return Ok(m);
    }
    if sqe.file_index() >> 16 != 0 {
        return err(libc::EINVAL);
    }
    if sqe.off() != 0 {
        m.name = Some(Addr::copy_in(sqe.off(), (sqe.file_index() & 0xffff) as i64)?);
    }
    if !fixed && !access_ok(m.buf, m.len as u64) {
        return err(libc::EFAULT);
    }
    Ok(m)
}

/// The kernel's SOCK_SUPPORT_ZC: TCP and UDP sockets take zero-copy sends.
fn zc_supported(fd: i32) -> Result<(), Errno> {
    let mut v: i32 = 0;
    let mut l = core::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: v and l are valid out-pointers of the sizes given.
    if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, (&mut v as *mut i32).cast(), &mut l) } != 0 {
        return Err(Errno::last());
    }
    let inet = v == libc::AF_INET || v == libc::AF_INET6;
    let proto = sockopt(fd, libc::SO_PROTOCOL);
    if inet && matches!(proto, Some(libc::IPPROTO_TCP) | Some(libc::IPPROTO_UDP)) {
        Ok(())
    } else {
        Err(Errno(libc::EOPNOTSUPP))
    }
}

/// RECV and RECVMSG (`io_recvmsg_prep`).
#[inline(always)]
pub(crate) fn prep_recv(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    let op = sqe.opcode();
    if sqe.file_index() != 0 || sqe.off() != 0 {
        return err(libc::EINVAL);
    }
    let mut m = msg_base(Dir::Recv, sqe);
    if (sqe.len() as i32) < 0 {
        return err(libc::EINVAL);
    }
    let bundle = k::IORING_RECVSEND_BUNDLE as u16;
    if m.ioflags & !(POLL_FIRST | RECV_MULTISHOT | bundle) != 0 {
        return err(libc::EINVAL);
    }
    if m.ioflags & bundle != 0 && (op == code::RECVMSG || m.bgid.is_some()) {
        // A bundle only means something with selected buffers, and
        // bundles of selected buffers are not emulated.
        return err(libc::EINVAL);
    }
    if m.ioflags & RECV_MULTISHOT != 0 {
        if m.bgid.is_none() || m.msg_flags & libc::MSG_WAITALL != 0 {
            return err(libc::EINVAL);
        }
        if op == code::RECV && sqe.len() != 0 {
            return err(libc::EINVAL);
        }
    }
    if op == code::RECVMSG {
        m.vectored = true;
        copy_msghdr(&mut m, sqe.addr())?;
        return Ok(Net::data(Kind::Msg(m)));
    }
    if m.bgid.is_none() && !access_ok(m.buf, m.len as u64) {
        return err(libc::EFAULT);
    }
    Ok(Net::data(Kind::Msg(m)))
}

#[inline(always)]
pub(crate) fn prep_accept(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.len() != 0 || sqe.buf_index() != 0 {
        return err(libc::EINVAL);
    }
    let flags = sqe.op_flags() as i32;
    let ioflags = sqe.ioprio();
    if ioflags & !(ACCEPT_MULTISHOT | ACCEPT_DONTWAIT | ACCEPT_POLL_FIRST) != 0 {
        return err(libc::EINVAL);
    }
    let file_slot = sqe.file_index();
    if file_slot != 0 {
        if flags & libc::SOCK_CLOEXEC != 0 {
            return err(libc::EINVAL);
        }
        if ioflags & ACCEPT_MULTISHOT != 0 && file_slot != FILE_INDEX_ALLOC {
            return err(libc::EINVAL);
        }
    }
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return err(libc::EINVAL);
    }
    Ok(Net::data(Kind::Accept(Accept { addr: sqe.addr(), addrlen: sqe.off(), flags, ioflags, file_slot, polled: false })))
}

#[inline(always)]
pub(crate) fn prep_connect(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.len() != 0 || sqe.buf_index() != 0 || sqe.op_flags() != 0 || sqe.file_index() != 0 {
        return err(libc::EINVAL);
    }
    let addr = Addr::copy_in(sqe.addr(), sqe.off() as i32 as i64)?;
    Ok(Net::data(Kind::Connect(Connect { addr, in_progress: false, seen_econnaborted: false })))
}

#[inline(always)]
pub(crate) fn prep_socket(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr() != 0 || sqe.op_flags() != 0 || sqe.buf_index() != 0 {
        return err(libc::EINVAL);
    }
    let ty = sqe.off() as i32;
    let file_slot = sqe.file_index();
    let flags = ty & !0xf;
    if file_slot != 0 && flags & libc::SOCK_CLOEXEC != 0 {
        return err(libc::EINVAL);
    }
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return err(libc::EINVAL);
    }
    Ok(Net::data(Kind::Socket(Socket { domain: sqe.fd(), ty, protocol: sqe.len() as i32, file_slot })))
}

#[inline(always)]
pub(crate) fn prep_shutdown(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.off() != 0 || sqe.addr() != 0 || sqe.op_flags() != 0 || sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return err(libc::EINVAL);
    }
    Ok(Net::data(Kind::Shutdown(sqe.len() as i32)))
}

#[inline(always)]
pub(crate) fn prep_bind(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.len() != 0 || sqe.buf_index() != 0 || sqe.op_flags() != 0 || sqe.file_index() != 0 {
        return err(libc::EINVAL);
    }
    Ok(Net::data(Kind::Bind(Addr::copy_in(sqe.addr(), sqe.off() as i32 as i64)?)))
}

#[inline(always)]
pub(crate) fn prep_listen(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.addr() != 0 || sqe.buf_index() != 0 || sqe.op_flags() != 0 || sqe.file_index() != 0 || sqe.off() != 0 {
        return err(libc::EINVAL);
    }
    Ok(Net::data(Kind::Listen(sqe.len() as i32)))
}

/// BIND and LISTEN: one system call each.
pub(crate) fn issue_bind_listen(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let fd = req.file.raw();
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let r = match &net.kind {
        // SAFETY: the address is our own copy.
        Kind::Bind(a) => unsafe { libc::bind(fd, a.ptr(), a.len) },
        // SAFETY: plain system call on an fd number.
        Kind::Listen(backlog) => unsafe { libc::listen(fd, *backlog) },
        _ => return Issue::Done(-libc::EINVAL, 0),
    };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}

/// `getsockopt(fd, SOL_SOCKET, opt)` as an int.
fn sockopt(fd: i32, opt: i32) -> Option<i32> {
    let mut v: i32 = 0;
    let mut l = core::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: v and l are valid out-pointers of the sizes given.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&mut v as *mut i32).cast(), &mut l) };
    (r == 0).then_some(v)
}

/// The kernel's `io_net_retry`: MSG_WAITALL retries partial transfers on
/// stream and seqpacket sockets only.
fn net_retry(fd: i32, flags: i32) -> bool {
    flags & libc::MSG_WAITALL != 0
        && matches!(sockopt(fd, libc::SO_TYPE), Some(libc::SOCK_STREAM) | Some(libc::SOCK_SEQPACKET))
}

/// How `fd`'s protocol tells io_uring what is left queued after a receive
/// (`msg_inq`: TCP and unix stream sockets report it).
fn inq_of(fd: i32) -> Inq {
    if sockopt(fd, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return Inq::Unknown;
    }
    match sockopt(fd, libc::SO_DOMAIN) {
        Some(libc::AF_INET) | Some(libc::AF_INET6) => match sockopt(fd, libc::SO_PROTOCOL) {
            Some(libc::IPPROTO_TCP) | Some(0) => Inq::Tcp,
            _ => Inq::Unknown,
        },
        Some(libc::AF_UNIX) => Inq::Bytes,
        _ => Inq::Unknown,
    }
}

/// True when `fd` reports something left to receive: bytes queued
/// (FIONREAD), or on TCP the peer's FIN (seen as POLLRDHUP), which
/// `tcp_inq_hint` reports as one byte.
fn queued(fd: i32, inq: Inq) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) == 0 && n > 0 } {
        return true;
    }
    inq == Inq::Tcp && super::poll::poll_now(fd, libc::POLLRDHUP as u32) & libc::POLLRDHUP as u32 != 0
}

/// The sockets ringport has made non-blocking for a call of its own, by
/// identity (device, inode), with how many such calls are in progress.
/// Threads that call on one socket at once (the submitter's inline accept
/// and the reactor's retry of another accept on the same listener) share
/// the window: the first sets O_NONBLOCK, the last clears it. Each clearing
/// it on its own would end another thread's window while its call runs:
/// that accept then blocked, holding its ring's submit lock, and the
/// reactor thread waited for that lock.
pub(crate) static NONBLOCKING: crate::engine::global::Global<std::sync::Mutex<Vec<(u64, u64, u32)>>> =
    crate::engine::global::Global::new(|| std::sync::Mutex::new(Vec::new()));

/// Runs `f` with `fd`'s file non-blocking (the flag is set for the call
/// only, when the program has not set it itself; see [`NONBLOCKING`]).
fn nonblocking(fd: i32, f: impl FnOnce() -> isize) -> Result<isize, Errno> {
    let result = |r: isize, e: Errno| if r < 0 { Err(e) } else { Ok(r) };
    let Some(st) = crate::sys::file_stat(fd) else { return Err(Errno::last()) };
    let key = (st.dev, st.ino);
    let table = NONBLOCKING.get();
    {
        let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
        match t.iter_mut().find(|e| (e.0, e.1) == key) {
            Some(e) => e.2 += 1,
            None => {
                // SAFETY: F_GETFL only reads the file's status flags.
                let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                if fl < 0 {
                    return Err(Errno::last());
                }
                if fl & libc::O_NONBLOCK != 0 {
                    // The program's own flag: nothing to set or clear.
                    drop(t);
                    crate::chaos::point();
                    let r = f();
                    return result(r, Errno::last());
                }
                // SAFETY: sets the file's status flags; cleared below.
                unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
                t.push((key.0, key.1, 1));
            }
        }
    }
    crate::chaos::point();
    let r = f();
    let e = Errno::last();
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = t.iter().position(|e| (e.0, e.1) == key) {
        t[i].2 -= 1;
        if t[i].2 == 0 {
            t.swap_remove(i);
            // SAFETY: F_GETFL/F_SETFL on an open fd; only O_NONBLOCK is
            // cleared (another flag the program changed meanwhile stays).
            unsafe {
                let now = libc::fcntl(fd, libc::F_GETFL);
                if now >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, now & !libc::O_NONBLOCK);
                }
            }
        }
    }
    result(r, e)
}

/// Puts a new file (`raw`, which this takes over) in the registered file
/// table (`io_fixed_fd_install`, shared with the open family): slot
/// `file_slot - 1`, or a free one for IORING_FILE_INDEX_ALLOC. Returns 0 or
/// the slot allocated, or `-errno`.
fn install_fixed(ctx: &Ctx, raw: i32, file_slot: u32) -> i32 {
    // SAFETY: raw is a fresh fd the caller hands over.
    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
    register::install_fixed(ctx, owned, file_slot).unwrap_or_else(|e| e.neg())
}

fn net_of(req: &mut Req) -> Option<&mut Net> {
    match &mut req.data {
        OpData::Net(n) => Some(n),
        _ => None,
    }
}

/// SEND, RECV, SENDMSG, RECVMSG.
pub(crate) fn issue_msg(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let fd = req.file.raw();
    let user_data = req.user_data;
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let Kind::Msg(m) = &mut net.kind else { return Issue::Done(-libc::EINVAL, 0) };
    if let Some(zc) = m.zc {
        if let Err(e) = zc_supported(fd) {
            return Issue::Done(e.neg(), 0);
        }
        if m.ioflags & POLL_FIRST != 0 && !m.polled {
            m.polled = true;
            return Issue::Park;
        }
        if let Some(index) = zc.fixed {
            // io_send_zc_import: the range must lie in the registered buffer.
            let rsrc = ctx.rsrc.read().unwrap_or_else(|e| e.into_inner());
            let ok = rsrc.bufs.get(index as usize).and_then(|b| b.as_ref()).is_some_and(|b| {
                m.buf >= b.addr && m.buf.checked_add(m.len as u64).is_some_and(|end| end <= b.addr + b.len)
            });
            if !ok {
                return Issue::Done(-libc::EFAULT, 0);
            }
        }
    }
    if m.ioflags & POLL_FIRST != 0 && !m.polled {
        m.polled = true;
        return Issue::Park;
    }
    let multishot = m.ioflags & RECV_MULTISHOT != 0;
    if multishot && !m.polled {
        // The first transfer happens from the reactor, where F_MORE CQEs
        // can be posted as they come.
        m.polled = true;
        return Issue::Park;
    }
    let user_nowait = m.msg_flags & libc::MSG_DONTWAIT != 0;
    let flags = m.msg_flags | libc::MSG_DONTWAIT;
    loop {
        // A buffer from the group, held (with the group lock) for this
        // attempt only.
        // A buffer kept from a partial transfer is used on; otherwise the
        // group lock is held for this attempt.
        let held = m.held;
        let mut table = if held.is_none() { m.bgid.map(|_| kbuf::lock(ctx)) } else { None };
        let picked = match (&mut table, m.bgid) {
            _ if held.is_some() => held,
            (Some(t), Some(bgid)) => match t.select(bgid, m.len) {
                Some(p) => Some(p),
                None => {
                    // A send looks its group up first (io_buffers_select).
                    let e = if m.dir == Dir::Send && !t.exists(bgid) { libc::ENOENT } else { libc::ENOBUFS };
                    net.fail = true;
                    net.cflags = 0;
                    return Issue::Done(-e, 0);
                }
            },
            _ => None,
        };
        let mut finished = false;
        // Where this attempt starts in a kept buffer.
        let at = picked.map(|p| {
            let mut q = p;
            let skip = m.done.min(p.len as u64) as u32;
            q.addr += skip as u64;
            q.len -= skip;
            q
        });
        let (ret, msg_out_flags) = if multishot && m.vectored {
            match picked.as_ref() {
                Some(p) => recvmsg_multishot(m, fd, flags, p, &mut finished),
                None => (-(libc::ENOBUFS as isize), 0),
            }
        } else {
            transfer(m, fd, flags, at.as_ref())
        };
        let min = if m.msg_flags & libc::MSG_WAITALL == 0 || (m.vectored && m.dir == Dir::Recv && m.controllen != 0) {
            0
        } else if let Some(p) = at {
            p.len as u64
        } else {
            m.total.saturating_sub(m.done)
        };
        if ret < 0 && ret == -libc::EAGAIN as isize && !user_nowait {
            if let (Some(t), Some(p), None) = (&mut table, picked, held) {
                t.recycle(p);
            }
            if multishot {
                m.loops = 0;
            }
            m.polled = true;
            return Issue::Park;
        }
        if ret > 0 && (ret as u64) < min && net_retry(fd, flags) {
            m.done += ret as u64;
            // The buffer stays this request's for the rest.
            m.held = picked;
            m.polled = true;
            return Issue::Park;
        }
        let mut fail = ret < 0 || (ret as u64) < min;
        if m.dir == Dir::Recv
            && m.msg_flags & libc::MSG_WAITALL != 0
            && msg_out_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0
        {
            fail = true;
        }
        let res: i64 = if m.dir == Dir::Recv {
            if ret > 0 {
                ret as i64 + m.done as i64
            } else if m.done > 0 {
                m.done as i64
            } else {
                ret as i64
            }
        } else if ret >= 0 {
            ret as i64 + m.done as i64
        } else if m.done > 0 {
            m.done as i64
        } else {
            ret as i64
        };
        let mut cflags = 0;
        if let Some(p) = picked {
            // A receive that got nothing gives its buffer back; a send
            // keeps it whatever happened (io_send_finish).
            if ret > 0 || m.done > 0 || m.dir == Dir::Send {
                cflags |= p.cqe_flags();
            } else if let Some(t) = &mut table {
                t.recycle(p);
            }
        }
        drop(table);
        let inq = if m.dir == Dir::Recv { *m.inq.get_or_insert_with(|| inq_of(fd)) } else { Inq::Unknown };
        let inq_known = inq != Inq::Unknown;
        if inq_known && ret >= 0 && queued(fd, inq) {
            cflags |= abi::IORING_CQE_F_SOCK_NONEMPTY;
        }
        let res = res.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        if multishot && ret > 0 && !finished && ctx.cq_has_room() {
            // Post this one and keep receiving while data is queued.
            let Some(me) = ctx.self_arc() else { return Issue::Done(res, cflags) };
            me.post(&[Cqe::new(user_data, res, cflags | abi::IORING_CQE_F_MORE)]);
            m.done = 0;
            m.loops += 1;
            // Known to have more, or unknown (a protocol that does not
            // say): receive again at once, as the kernel does.
            if (cflags & abi::IORING_CQE_F_SOCK_NONEMPTY != 0 || !inq_known) && m.loops < MULTISHOT_MAX {
                continue;
            }
            m.loops = 0;
            return Issue::Park;
        }
        net.fail = fail;
        net.cflags = cflags;
        return Issue::Done(res, cflags);
    }
}

/// One send or receive system call for `m`, from where earlier attempts
/// left off. Returns the result (-errno on failure) and, for RECVMSG, the
/// message flags the kernel reported.
fn transfer(m: &mut Msg, fd: i32, flags: i32, picked: Option<&kbuf::Picked>) -> (isize, i32) {
    let send = m.dir == Dir::Send;
    if let Some(p) = picked {
        // A selected buffer: one plain range.
        let r = if m.vectored {
            let mut iov = libc::iovec { iov_base: p.addr as usize as *mut libc::c_void, iov_len: p.len as usize };
            return recvmsg_into(m, fd, flags, std::slice::from_mut(&mut iov));
        } else {
            let at = p.addr as usize as *mut libc::c_void;
            let len = (p.len as u64).min(MAX_RW_COUNT) as usize;
            if send {
                let (np, nl) = m.name.as_ref().map_or((core::ptr::null(), 0), |a| (a.ptr(), a.len));
                // SAFETY: the buffer is program memory (kernel-checked);
                // the address is our own copy.
                unsafe { libc::sendto(fd, at, len, flags, np, nl) }
            } else {
                // SAFETY: the buffer is program memory; the kernel checks it (EFAULT).
                unsafe { libc::recvfrom(fd, at, len, flags, core::ptr::null_mut(), core::ptr::null_mut()) }
            }
        };
        return (if r < 0 { -(Errno::last().0 as isize) } else { r }, 0);
    }
    if !m.vectored {
        let left = (m.len as u64).min(MAX_RW_COUNT) - m.done.min(m.len as u64);
        let at = (m.buf + m.done) as usize as *mut libc::c_void;
        let r = if send {
            let (np, nl) = m.name.as_ref().map_or((core::ptr::null(), 0), |a| (a.ptr(), a.len));
            // SAFETY: the buffer is program memory (kernel-checked); the
            // address is our own copy.
            unsafe { libc::sendto(fd, at, left as usize, flags, np, nl) }
        } else {
            // SAFETY: as above, no address wanted.
            unsafe { libc::recvfrom(fd, at, left as usize, flags, core::ptr::null_mut(), core::ptr::null_mut()) }
        };
        return (if r < 0 { -(Errno::last().0 as isize) } else { r }, 0);
    }
    let mut iov = remaining(&m.iov, m.done);
    if send {
        // SAFETY: msghdr is plain data; all-zero is valid.
        let mut h: libc::msghdr = unsafe { core::mem::zeroed() };
        if let Some(a) = &m.name {
            h.msg_name = a.ptr() as *mut libc::c_void;
            h.msg_namelen = a.len;
        }
        h.msg_iov = iov.as_mut_ptr();
        h.msg_iovlen = iov.len();
        // After a partial MSG_WAITALL send the control data went out
        // with the first part (the kernel clears it for retries).
        if m.done == 0 {
            h.msg_control = m.control as usize as *mut libc::c_void;
            h.msg_controllen = m.controllen;
        }
        // SAFETY: h points at our iovecs and copies; the buffers they
        // describe are program memory, checked by the kernel.
        let r = unsafe { libc::sendmsg(fd, &h, flags) };
        return (if r < 0 { -(Errno::last().0 as isize) } else { r }, 0);
    }
    recvmsg_into(m, fd, flags, &mut iov)
}

/// Size of `struct io_uring_recvmsg_out`.
const OUT_HDR: usize = core::mem::size_of::<linux_raw_sys::io_uring::io_uring_recvmsg_out>();

/// One multishot RECVMSG receive into buffer `p`, laid out as the kernel
/// does: an `io_uring_recvmsg_out` header, `namelen` bytes of name,
/// `controllen` bytes of control data, then the payload. Returns the bytes
/// of the buffer used (or -errno), the message flags, and in `finished`
/// whether the receive ends the multishot request (nothing received).
fn recvmsg_multishot(m: &Msg, fd: i32, flags: i32, p: &kbuf::Picked, finished: &mut bool) -> (isize, i32) {
    let hdr = OUT_HDR as u64 + m.mshot_namelen as u64 + m.mshot_controllen as u64;
    if (p.len as u64) < hdr {
        *finished = true;
        return (-(libc::EFAULT as isize), 0);
    }
    let payload = p.len as u64 - hdr;
    let mut name = [0u8; SOCKADDR_MAX];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut h: libc::msghdr = unsafe { core::mem::zeroed() };
    if m.mshot_namelen > 0 {
        h.msg_name = name.as_mut_ptr().cast();
        h.msg_namelen = SOCKADDR_MAX as u32;
    }
    if m.mshot_controllen > 0 {
        h.msg_control = (p.addr + OUT_HDR as u64 + m.mshot_namelen as u64) as usize as *mut libc::c_void;
        h.msg_controllen = m.mshot_controllen as usize;
    }
    let mut iov = libc::iovec { iov_base: (p.addr + hdr) as usize as *mut libc::c_void, iov_len: payload as usize };
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    // SAFETY: h points at our name buffer and at program memory that the
    // kernel checks (EFAULT).
    let r = unsafe { libc::recvmsg(fd, &mut h, flags & !libc::MSG_WAITALL) };
    if r < 0 {
        let e = Errno::last();
        *finished = e.0 != libc::EAGAIN;
        return (-(e.0 as isize), 0);
    }
    *finished = r == 0;
    let out = linux_raw_sys::io_uring::io_uring_recvmsg_out {
        namelen: h.msg_namelen,
        controllen: if m.mshot_controllen > 0 { h.msg_controllen as u32 } else { 0 },
        payloadlen: r as u32,
        flags: h.msg_flags as u32,
    };
    let mut head = Vec::with_capacity(OUT_HDR + SOCKADDR_MAX);
    // SAFETY: viewing a plain-data struct as its bytes.
    head.extend_from_slice(unsafe { core::slice::from_raw_parts((&out as *const linux_raw_sys::io_uring::io_uring_recvmsg_out).cast::<u8>(), OUT_HDR) });
    let name_copy = (h.msg_namelen.min(m.mshot_namelen) as usize).min(SOCKADDR_MAX);
    head.extend_from_slice(&name[..name_copy]);
    if uaccess::copy_out(p.addr, &head).is_err() {
        *finished = true;
        return (-(libc::EFAULT as isize), h.msg_flags);
    }
    ((hdr + (r as u64).min(payload)) as isize, h.msg_flags)
}

/// recvmsg into `iov` with the program's name and control buffers, then
/// the kernel's write-back of name length, flags and control length into
/// the program's msghdr.
fn recvmsg_into(m: &Msg, fd: i32, flags: i32, iov: &mut [libc::iovec]) -> (isize, i32) {
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut h: libc::msghdr = unsafe { core::mem::zeroed() };
    h.msg_name = m.uname as usize as *mut libc::c_void;
    h.msg_namelen = m.unamelen;
    h.msg_iov = iov.as_mut_ptr();
    h.msg_iovlen = iov.len();
    h.msg_control = m.control as usize as *mut libc::c_void;
    h.msg_controllen = m.controllen;
    // SAFETY: h describes program buffers, checked by the kernel.
    let r = unsafe { libc::recvmsg(fd, &mut h, flags) };
    if r < 0 {
        return (-(Errno::last().0 as isize), 0);
    }
    let base = m.umsg;
    let wb = (|| {
        if m.uname != 0 {
            uaccess::write_pod(base + core::mem::offset_of!(libc::msghdr, msg_namelen) as u64, &h.msg_namelen)?;
        }
        uaccess::write_pod(base + core::mem::offset_of!(libc::msghdr, msg_flags) as u64, &h.msg_flags)?;
        uaccess::write_pod(base + core::mem::offset_of!(libc::msghdr, msg_controllen) as u64, &h.msg_controllen)
    })();
    match wb {
        Ok(()) => (r, h.msg_flags),
        Err(e) => (-(e.0 as isize), h.msg_flags),
    }
}

/// The iovecs still to transfer after `done` bytes.
fn remaining(iov: &[libc::iovec], done: u64) -> Vec<libc::iovec> {
    let mut skip = done;
    let mut out = Vec::with_capacity(iov.len());
    for v in iov {
        let l = v.iov_len as u64;
        if skip >= l {
            skip -= l;
            continue;
        }
        out.push(libc::iovec { iov_base: (v.iov_base as u64 + skip) as usize as *mut libc::c_void, iov_len: (l - skip) as usize });
        skip = 0;
    }
    out
}

/// True when `fd` is a TCP listener with more connections queued: the
/// kernel's accept then reports IORING_CQE_F_SOCK_NONEMPTY.
fn accept_queue_nonempty(fd: i32) -> bool {
    let inet = matches!(sockopt(fd, libc::SO_DOMAIN), Some(libc::AF_INET) | Some(libc::AF_INET6));
    inet && super::poll::poll_now(fd, libc::POLLIN as u32) & libc::POLLIN as u32 != 0
}

/// ACCEPT: one connection, or (multishot) every pending one, posting each.
pub(crate) fn issue_accept(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let fd = req.file.raw();
    let user_data = req.user_data;
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let Kind::Accept(a) = &mut net.kind else { return Issue::Done(-libc::EINVAL, 0) };
    let multishot = a.ioflags & ACCEPT_MULTISHOT != 0;
    if (a.ioflags & ACCEPT_POLL_FIRST != 0 || multishot) && !a.polled {
        // Multishot: the first accept happens from the reactor, where
        // F_MORE CQEs can be posted as they come.
        a.polled = true;
        return Issue::Park;
    }
    let mut loops = 0;
    loop {
        // Nothing pending: wait without touching the file's flags.
        // (A socket that is not listening fails at once, so only a
        // listener waits.)
        if a.ioflags & ACCEPT_DONTWAIT == 0
            && super::poll::poll_now(fd, libc::POLLIN as u32) == 0
            && sockopt(fd, libc::SO_ACCEPTCONN) == Some(1)
        {
            a.polled = true;
            return Issue::Park;
        }
        let flags = a.flags | if a.file_slot != 0 { libc::SOCK_CLOEXEC } else { 0 };
        let r = nonblocking(fd, || {
            // SAFETY: addr/addrlen are program pointers the kernel checks
            // (EFAULT); null means no address wanted.
            unsafe {
                libc::accept4(fd, a.addr as usize as *mut libc::sockaddr, a.addrlen as usize as *mut libc::socklen_t, flags)
                    as isize
            }
        });
        let res = match r {
            Err(e) if e.0 == libc::EAGAIN && a.ioflags & ACCEPT_DONTWAIT == 0 => {
                a.polled = true;
                return Issue::Park;
            }
            Err(e) => e.neg(),
            Ok(newfd) if a.file_slot != 0 => install_fixed(ctx, newfd as i32, a.file_slot),
            Ok(newfd) => newfd as i32,
        };
        let cflags = if res >= 0 && accept_queue_nonempty(fd) { abi::IORING_CQE_F_SOCK_NONEMPTY } else { 0 };
        if res >= 0 && multishot && ctx.cq_has_room() {
            let Some(me) = ctx.self_arc() else { return Issue::Done(res, cflags) };
            me.post(&[Cqe::new(user_data, res, cflags | abi::IORING_CQE_F_MORE)]);
            loops += 1;
            if loops >= MULTISHOT_MAX {
                return Issue::Park;
            }
            continue;
        }
        net.cflags = cflags;
        return Issue::Done(res, cflags);
    }
}

/// CONNECT: non-blocking, waiting for POLLOUT while the handshake runs.
pub(crate) fn issue_connect(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let fd = req.file.raw();
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let Kind::Connect(c) = &mut net.kind else { return Issue::Done(-libc::EINVAL, 0) };
    let (ap, al) = (c.addr.ptr(), c.addr.len);
    // SAFETY: the address is our own copy.
    let r = nonblocking(fd, || unsafe { libc::connect(fd, ap, al) as isize });
    let mut res = match r {
        Ok(_) => 0,
        Err(e) => e.neg(),
    };
    // EALREADY only after our own EINPROGRESS (a wake-up before the
    // handshake ended); a connect the program started itself answers it.
    if res == -libc::EINPROGRESS || res == -libc::EAGAIN || (res == -libc::EALREADY && c.in_progress) {
        if res == -libc::EINPROGRESS {
            c.in_progress = true;
        }
        return Issue::Park;
    }
    if res == -libc::ECONNABORTED {
        if !c.seen_econnaborted {
            c.seen_econnaborted = true;
            return Issue::Park;
        }
    } else if c.in_progress && (res == -libc::EBADFD || res == -libc::EISCONN) {
        res = -sockopt(fd, libc::SO_ERROR).unwrap_or(0);
    }
    net.fail = res < 0;
    Issue::Done(res, 0)
}

/// SOCKET: a new socket as an fd or in a registered slot.
pub(crate) fn issue_socket(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let Kind::Socket(s) = &net.kind else { return Issue::Done(-libc::EINVAL, 0) };
    let ty = s.ty | if s.file_slot != 0 { libc::SOCK_CLOEXEC } else { 0 };
    // SAFETY: plain system call.
    let fd = unsafe { libc::socket(s.domain, ty, s.protocol) };
    if fd < 0 {
        return Issue::Done(Errno::last().neg(), 0);
    }
    if s.file_slot != 0 {
        return Issue::Done(install_fixed(ctx, fd, s.file_slot), 0);
    }
    Issue::Done(fd, 0)
}

/// SHUTDOWN (always in a worker, as the kernel forces it async).
pub(crate) fn issue_shutdown(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let fd = req.file.raw();
    let Some(net) = net_of(req) else { return Issue::Done(-libc::EINVAL, 0) };
    let Kind::Shutdown(how) = net.kind else { return Issue::Done(-libc::EINVAL, 0) };
    // SAFETY: plain system call on an fd number.
    let r = unsafe { libc::shutdown(fd, how) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}

/// The result a failed networking request reports: what a partial
/// MSG_WAITALL transfer already moved wins over the error (the kernel's
/// `io_sendrecv_fail`, which also covers cancellation).
pub(crate) fn fail_res(n: &Net, res: i32) -> i32 {
    match &n.kind {
        Kind::Msg(m) if res < 0 && m.done > 0 => m.done.min(i32::MAX as u64) as i32,
        _ => res,
    }
}

/// The CQE flags a finished networking request reports.
pub(crate) fn cqe_flags(n: &Net) -> u32 {
    n.cflags | if n.notif { abi::IORING_CQE_F_MORE } else { 0 }
}

/// The result of the notification CQE a zero-copy send posts after its
/// own, if it is one: with REPORT_USAGE, "copied" (ringport always copies;
/// the kernel also says so for a send that sent nothing).
pub(crate) fn notif_res(n: &Net, _res: i32) -> Option<i32> {
    if !n.notif {
        return None;
    }
    let report = match &n.kind {
        Kind::Msg(m) => m.zc.is_some_and(|z| z.report),
        Kind::ZcFailed(report) => *report,
        _ => false,
    };
    Some(if report { k::IORING_NOTIF_USAGE_ZC_COPIED as i32 } else { 0 })
}
