//! Differential SQE fuzzing: SQE decoding and validation against the kernel.
//!
//! For every opcode both the kernel and ringport implement, a valid base
//! request is built, then one field at a time (and, in a seeded random
//! phase, two or three at once) is set to edge values: each SQE flag, each
//! `op_flags` bit, zero, one, all-ones, the fds of a set of fixtures (a
//! file, a directory, pipes, sockets, an epoll instance, /dev/null, the
//! ring, a closed number), and addresses of prepared structures (paths,
//! timespecs, iovecs, a msghdr, a sockaddr), of a guard page, of the kernel
//! half. Each case runs alone, on fresh fixtures and a fresh ring, once on
//! the kernel and once on ringport, on the same thread. Compared: enter's
//! result, the request's CQEs (results and flags; new fds as "fd"), the
//! bytes of the buffer the SQE points into, the file's contents, the
//! directory's listing, and what is left in the pipes and the socket.
//!
//! Requests still pending after a grace period (a poll that never fires, an
//! accept, a long timeout) are cancelled with ASYNC_CANCEL_ANY, on both.
//!
//! Safety of the test process: fixtures sit at fixed fd numbers per worker
//! thread (so the same case sees the same numbers on both backends, and a
//! CLOSE never reaches a number another thread owns); no field ever names
//! fd 0-2 or the ring's own fd for CLOSE; paths are relative names inside
//! the case's own directory (cwd-relative cases run one at a time, inside
//! it); MADVISE and FALLOCATE get only lengths that stay inside the case's
//! buffer or are small.
//!
//! `RINGPORT_FUZZ_SEED` and `RINGPORT_FUZZ_RANDOM` (random cases, default
//! 1500) change the random phase; `RINGPORT_FUZZ_OP=N` runs one opcode;
//! `RINGPORT_FUZZ_THREADS` (default 6) sets the worker threads and
//! `RINGPORT_FUZZ_VERBOSE=1` prints each case as it starts (to find one
//! that crashes the process).

mod common;
use common::*;
use linux_raw_sys::io_uring::io_uring_op as o;
use ringport_engine::abi;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// ---------------------------------------------------------------------------
// Symbolic SQEs: values resolved against a case's fixtures
// ---------------------------------------------------------------------------

/// A fixture fd, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FdRole {
    File,
    Dir,
    PipeR,
    PipeW,
    Pipe2W,
    Sock,
    Listen,
    Tcp,
    Null,
    Epoll,
    Ring,
    Closed,
    Cwd,
}

const FD_ROLES: [FdRole; 13] = [
    FdRole::File,
    FdRole::Dir,
    FdRole::PipeR,
    FdRole::PipeW,
    FdRole::Pipe2W,
    FdRole::Sock,
    FdRole::Listen,
    FdRole::Tcp,
    FdRole::Null,
    FdRole::Epoll,
    FdRole::Ring,
    FdRole::Closed,
    FdRole::Cwd,
];

/// Offsets in the case buffer (two pages, a PROT_NONE page after them).
mod at {
    pub const PATH_F: u64 = 0x000;
    pub const PATH_G: u64 = 0x010;
    pub const PATH_EMPTY: u64 = 0x020;
    pub const XNAME: u64 = 0x030;
    pub const TS_SHORT: u64 = 0x040;
    pub const TS_LONG: u64 = 0x050;
    pub const TS_BAD: u64 = 0x060;
    pub const TS_ZERO: u64 = 0x070;
    pub const IOV: u64 = 0x080;
    pub const MSG: u64 = 0x0a0;
    pub const SA: u64 = 0x0e0;
    pub const HOW: u64 = 0x0f0;
    pub const FDARR: u64 = 0x110;
    pub const EPEV: u64 = 0x120;
    /// Where reads land.
    pub const DATA: u64 = 0x1000;
    pub const END: u64 = 0x2000;
}
const BUF_LEN: usize = at::END as usize;

/// A field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V {
    Raw(u64),
    Fd(FdRole),
    /// An offset in the case buffer.
    Buf(u64),
    Guard,
}

/// An SQE whose fields may name fixtures.
#[derive(Clone, Copy, Debug)]
struct Sym {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: V,
    off: V,
    addr: V,
    len: V,
    op_flags: u32,
    buf_index: u16,
    personality: u16,
    file_index: V,
    addr3: V,
    pad2: u64,
}

const fn raw(v: u64) -> V {
    V::Raw(v)
}

impl Sym {
    const fn new(opcode: u8) -> Sym {
        Sym {
            opcode,
            flags: 0,
            ioprio: 0,
            fd: raw(0),
            off: raw(0),
            addr: raw(0),
            len: raw(0),
            op_flags: 0,
            buf_index: 0,
            personality: 0,
            file_index: raw(0),
            addr3: raw(0),
            pad2: 0,
        }
    }
    fn uses(&self, role: FdRole) -> bool {
        [self.fd, self.off, self.addr, self.len, self.file_index, self.addr3].contains(&V::Fd(role))
    }
}

fn op(x: o) -> u8 {
    x as u8
}

/// A valid request for `opcode` (the kernel accepts it on the fixtures).
fn base(opcode: u8) -> Sym {
    use FdRole::*;
    let mut s = Sym::new(opcode);
    let data = V::Buf(at::DATA);
    match opcode {
        x if x == op(o::IORING_OP_READV) || x == op(o::IORING_OP_WRITEV) => {
            (s.fd, s.addr, s.len) = (V::Fd(File), V::Buf(at::IOV), raw(2))
        }
        x if x == op(o::IORING_OP_READ) || x == op(o::IORING_OP_WRITE) => {
            (s.fd, s.addr, s.len) = (V::Fd(File), data, raw(64))
        }
        x if x == op(o::IORING_OP_READ_FIXED) || x == op(o::IORING_OP_WRITE_FIXED) => {
            (s.fd, s.addr, s.len) = (V::Fd(File), data, raw(64))
        }
        x if x == op(o::IORING_OP_FSYNC) => s.fd = V::Fd(File),
        x if x == op(o::IORING_OP_POLL_ADD) => (s.fd, s.op_flags) = (V::Fd(PipeR), libc::POLLIN as u32),
        x if x == op(o::IORING_OP_POLL_REMOVE)
            || x == op(o::IORING_OP_ASYNC_CANCEL)
            || x == op(o::IORING_OP_TIMEOUT_REMOVE) =>
        {
            s.addr = raw(1234)
        }
        x if x == op(o::IORING_OP_TIMEOUT) || x == op(o::IORING_OP_LINK_TIMEOUT) => {
            (s.addr, s.len) = (V::Buf(at::TS_SHORT), raw(1))
        }
        x if x == op(o::IORING_OP_SYNC_FILE_RANGE) => (s.fd, s.len) = (V::Fd(File), raw(4096)),
        x if x == op(o::IORING_OP_FALLOCATE) => (s.fd, s.addr) = (V::Fd(File), raw(4096)),
        x if x == op(o::IORING_OP_OPENAT) => (s.fd, s.addr) = (V::Fd(Dir), V::Buf(at::PATH_F)),
        x if x == op(o::IORING_OP_OPENAT2) => {
            (s.fd, s.addr, s.off, s.len) = (V::Fd(Dir), V::Buf(at::PATH_F), V::Buf(at::HOW), raw(24))
        }
        x if x == op(o::IORING_OP_CLOSE) => s.fd = V::Fd(Null),
        x if x == op(o::IORING_OP_FIXED_FD_INSTALL) => s.flags = abi::IOSQE_FIXED_FILE,
        x if x == op(o::IORING_OP_FILES_UPDATE) => (s.addr, s.len) = (V::Buf(at::FDARR), raw(1)),
        x if x == op(o::IORING_OP_STATX) => {
            (s.fd, s.addr, s.len, s.off) = (V::Fd(Dir), V::Buf(at::PATH_F), raw(libc::STATX_BASIC_STATS as u64), data)
        }
        x if x == op(o::IORING_OP_FADVISE) => (s.fd, s.len) = (V::Fd(File), raw(4096)),
        x if x == op(o::IORING_OP_MADVISE) => (s.addr, s.len) = (data, raw(4096)),
        x if x == op(o::IORING_OP_SPLICE) => {
            (s.fd, s.file_index, s.off, s.len) = (V::Fd(Pipe2W), V::Fd(File), raw(u64::MAX), raw(64))
        }
        x if x == op(o::IORING_OP_TEE) => (s.fd, s.file_index, s.len) = (V::Fd(Pipe2W), V::Fd(PipeR), raw(16)),
        x if x == op(o::IORING_OP_RENAMEAT) || x == op(o::IORING_OP_LINKAT) => {
            (s.fd, s.addr, s.len, s.off) = (V::Fd(Dir), V::Buf(at::PATH_F), V::Fd(Dir), V::Buf(at::PATH_G))
        }
        x if x == op(o::IORING_OP_UNLINKAT) => (s.fd, s.addr) = (V::Fd(Dir), V::Buf(at::PATH_F)),
        x if x == op(o::IORING_OP_MKDIRAT) => (s.fd, s.addr, s.len) = (V::Fd(Dir), V::Buf(at::PATH_G), raw(0o755)),
        x if x == op(o::IORING_OP_SYMLINKAT) => (s.fd, s.addr, s.off) = (V::Fd(Dir), V::Buf(at::PATH_F), V::Buf(at::PATH_G)),
        x if x == op(o::IORING_OP_FSETXATTR) || x == op(o::IORING_OP_FGETXATTR) => {
            (s.fd, s.addr, s.off, s.len) = (V::Fd(File), V::Buf(at::XNAME), data, raw(8))
        }
        x if x == op(o::IORING_OP_SETXATTR) || x == op(o::IORING_OP_GETXATTR) => {
            (s.addr, s.off, s.len, s.addr3) = (V::Buf(at::XNAME), data, raw(8), V::Buf(at::PATH_F))
        }
        x if x == op(o::IORING_OP_EPOLL_CTL) => {
            (s.fd, s.off, s.len, s.addr) = (V::Fd(Epoll), V::Fd(PipeR), raw(libc::EPOLL_CTL_ADD as u64), V::Buf(at::EPEV))
        }
        x if x == op(o::IORING_OP_MSG_RING) => (s.fd, s.len, s.off) = (V::Fd(Ring), raw(16), raw(99)),
        x if x == op(o::IORING_OP_FTRUNCATE) => (s.fd, s.off) = (V::Fd(File), raw(100)),
        x if x == op(o::IORING_OP_SENDMSG)
            || x == op(o::IORING_OP_RECVMSG)
            || x == op(o::IORING_OP_SENDMSG_ZC) =>
        {
            (s.fd, s.addr, s.len) = (V::Fd(Sock), V::Buf(at::MSG), raw(1))
        }
        x if x == op(o::IORING_OP_SEND) || x == op(o::IORING_OP_RECV) || x == op(o::IORING_OP_SEND_ZC) => {
            (s.fd, s.addr, s.len) = (V::Fd(Sock), data, raw(16))
        }
        x if x == op(o::IORING_OP_ACCEPT) => s.fd = V::Fd(Listen),
        x if x == op(o::IORING_OP_CONNECT) => (s.fd, s.addr, s.off) = (V::Fd(Tcp), V::Buf(at::SA), raw(16)),
        x if x == op(o::IORING_OP_SOCKET) => (s.fd, s.off) = (raw(libc::AF_INET as u64), raw(libc::SOCK_STREAM as u64)),
        x if x == op(o::IORING_OP_SHUTDOWN) => (s.fd, s.len) = (V::Fd(Sock), raw(libc::SHUT_WR as u64)),
        x if x == op(o::IORING_OP_BIND) => (s.fd, s.addr, s.off) = (V::Fd(Tcp), V::Buf(at::SA), raw(16)),
        x if x == op(o::IORING_OP_LISTEN) => (s.fd, s.len) = (V::Fd(Listen), raw(8)),
        x if x == op(o::IORING_OP_PROVIDE_BUFFERS) => (s.fd, s.addr, s.len, s.buf_index) = (raw(2), data, raw(64), 1),
        x if x == op(o::IORING_OP_REMOVE_BUFFERS) => (s.fd, s.buf_index) = (raw(1), 1),
        _ => {}
    }
    s
}

/// Which field a mutation sets.
#[derive(Clone, Copy, Debug)]
enum Field {
    Flags(u8),
    Ioprio(u16),
    Fd(V),
    Off(V),
    Addr(V),
    Len(V),
    OpFlags(u32),
    BufIndex(u16),
    Personality(u16),
    FileIndex(V),
    Addr3(V),
    Pad2(u64),
}

fn apply(s: &mut Sym, f: Field) {
    match f {
        Field::Flags(v) => s.flags = v,
        Field::Ioprio(v) => s.ioprio = v,
        Field::Fd(v) => s.fd = v,
        Field::Off(v) => s.off = v,
        Field::Addr(v) => s.addr = v,
        Field::Len(v) => s.len = v,
        Field::OpFlags(v) => s.op_flags = v,
        Field::BufIndex(v) => s.buf_index = v,
        Field::Personality(v) => s.personality = v,
        Field::FileIndex(v) => s.file_index = v,
        Field::Addr3(v) => s.addr3 = v,
        Field::Pad2(v) => s.pad2 = v,
    }
}

const RAW64: [u64; 8] = [0, 1, 7, 4096, 1 << 32, 0xffff_ffff, 1 << 63, u64::MAX];
const ADDRS: [V; 15] = [
    V::Raw(0),
    V::Buf(at::DATA),
    V::Buf(at::DATA + 1),
    V::Buf(at::END - 8),
    V::Buf(at::PATH_F),
    V::Buf(at::PATH_G),
    V::Buf(at::PATH_EMPTY),
    V::Buf(at::TS_SHORT),
    V::Buf(at::TS_LONG),
    V::Buf(at::TS_BAD),
    V::Buf(at::IOV),
    V::Buf(at::MSG),
    V::Guard,
    V::Raw(UNMAPPED),
    V::Raw(KERNEL_ADDR2),
];

/// Every single-field mutation of a base request.
fn mutations() -> Vec<Field> {
    let mut m = Vec::new();
    for b in 0..8 {
        m.push(Field::Flags(1 << b));
    }
    for v in [1u16, 2, 4, 8, 0x10, 0x8000, 0xffff] {
        m.push(Field::Ioprio(v));
    }
    for r in FD_ROLES {
        m.push(Field::Fd(V::Fd(r)));
        m.push(Field::FileIndex(V::Fd(r)));
    }
    for v in [BAD_FD as u64, u32::MAX as u64, u64::MAX] {
        m.push(Field::Fd(raw(v)));
    }
    for v in RAW64 {
        m.push(Field::Off(raw(v)));
        m.push(Field::Addr(raw(v)));
        m.push(Field::Addr3(raw(v)));
    }
    for v in ADDRS {
        m.push(Field::Off(v));
        m.push(Field::Addr(v));
    }
    m.push(Field::Addr3(V::Buf(at::DATA)));
    m.push(Field::Addr3(V::Buf(at::PATH_F)));
    m.push(Field::Off(V::Fd(FdRole::PipeR)));
    for v in [0u64, 1, 2, 16, 1024, 1025, 4096, 0x7fff_ffff, u32::MAX as u64] {
        m.push(Field::Len(raw(v)));
    }
    m.push(Field::Len(V::Fd(FdRole::Dir)));
    m.push(Field::Len(V::Fd(FdRole::Closed)));
    for b in 0..32 {
        m.push(Field::OpFlags(1 << b));
    }
    m.push(Field::OpFlags(u32::MAX));
    for v in [1u16, 0xffff] {
        m.push(Field::BufIndex(v));
        m.push(Field::Personality(v));
    }
    for v in [1u64, 2, u32::MAX as u64] {
        m.push(Field::FileIndex(raw(v)));
    }
    m.push(Field::Pad2(1));
    m
}

/// Cases that could harm the test process or the machine, left out: the
/// rule is in the module comment.
fn allowed(s: &Sym) -> bool {
    let user_fd = |v: V| matches!(v, V::Raw(0..=2));
    if s.opcode == op(o::IORING_OP_CLOSE) && (s.uses(FdRole::Ring) || user_fd(s.fd)) {
        return false;
    }
    // MSG_OOB on the AF_UNIX socket: the kernel's io_uring (6.18) never
    // returns from that case, so there is nothing to compare.
    let send = [op(o::IORING_OP_SEND), op(o::IORING_OP_SENDMSG), op(o::IORING_OP_SEND_ZC), op(o::IORING_OP_SENDMSG_ZC)];
    if send.contains(&s.opcode) && s.op_flags & libc::MSG_OOB as u32 != 0 {
        return false;
    }
    // splice_fd_in is an fd: never the test's stdio.
    if [op(o::IORING_OP_SPLICE), op(o::IORING_OP_TEE)].contains(&s.opcode) && user_fd(s.file_index) {
        return false;
    }
    if s.opcode == op(o::IORING_OP_MADVISE) {
        // Stay inside the case buffer (and its guard page). The length is
        // `off` when that is nonzero, else `len`.
        let small = |v: V| matches!(v, V::Raw(l) if l <= 3 * 4096);
        let len_ok = small(s.len) && small(s.off);
        let addr_ok = matches!(s.addr, V::Buf(_) | V::Guard | V::Raw(0) | V::Raw(UNMAPPED) | V::Raw(KERNEL_ADDR2));
        return len_ok && addr_ok && s.op_flags != 100 && s.op_flags != 101;
    }
    if s.opcode == op(o::IORING_OP_FALLOCATE) {
        // addr is the length: small, or too big for any file system.
        return matches!(s.addr, V::Raw(l) if l <= 1 << 20 || l >= 1 << 62)
            || matches!(s.addr, V::Guard | V::Buf(_));
    }
    if s.opcode == op(o::IORING_OP_FILES_UPDATE) {
        // Never installs the process's stdio: fds come from FDARR only.
        return !matches!(s.addr, V::Buf(a) if a != at::FDARR);
    }
    // The target fd of EPOLL_CTL: never a number another thread (or the
    // engine) may be opening or closing meanwhile.
    if s.opcode == op(o::IORING_OP_EPOLL_CTL) && matches!(s.off, V::Raw(v) if v < 1 << 31) && s.off != V::Raw(0) {
        return false;
    }
    true
}

/// Known differences from the kernel, by class, each with its reason (also
/// in docs/ARCHITECTURE.md). A case in one of these classes is run on both
/// backends but its trace is not compared; the count per class is printed.
fn known(s: &Sym) -> Option<&'static str> {
    let rw = [
        op(o::IORING_OP_READ),
        op(o::IORING_OP_WRITE),
        op(o::IORING_OP_READV),
        op(o::IORING_OP_WRITEV),
        op(o::IORING_OP_READ_FIXED),
        op(o::IORING_OP_WRITE_FIXED),
    ];
    let ring_is_target = s.opcode != op(o::IORING_OP_MSG_RING)
        && s.opcode != op(o::IORING_OP_POLL_ADD)
        && [s.fd, s.file_index].contains(&V::Fd(FdRole::Ring));
    if ring_is_target {
        return Some("ring fd as a file: ringport's ring fd is a memfd, which reads, writes, syncs and sizes; the kernel's ring file refuses those");
    }
    if rw.contains(&s.opcode) && s.fd == V::Fd(FdRole::Epoll) {
        return Some("read/write of an epoll fd: the kernel waits for it (until cancelled); ringport fails it at once with read(2)'s EINVAL");
    }
    if [op(o::IORING_OP_SEND), op(o::IORING_OP_RECV)].contains(&s.opcode) && s.ioprio & 16 != 0 {
        return Some("IORING_RECVSEND_BUNDLE is not emulated (EINVAL)");
    }
    if s.opcode == op(o::IORING_OP_RECVMSG) && s.op_flags & 0x8000_0000 != 0 {
        return Some("MSG_CMSG_COMPAT on RECVMSG: the kernel writes the msghdr back in the 32-bit layout; ringport drops the flag");
    }
    let zc = [op(o::IORING_OP_SEND_ZC), op(o::IORING_OP_SENDMSG_ZC)];
    if s.opcode == op(o::IORING_OP_SENDMSG_ZC) && s.ioprio & 4 != 0 {
        return Some("SENDMSG_ZC with registered buffers (IORING_RECVSEND_FIXED_BUF, Linux 6.15) is not emulated (EINVAL)");
    }
    let never_ready = s.opcode == op(o::IORING_OP_POLL_ADD) && s.op_flags & libc::POLLIN as u32 == 0;
    if (zc.contains(&s.opcode) || never_ready) && s.flags & abi::IOSQE_IO_DRAIN != 0 {
        return Some("IO_DRAIN on a zero-copy send, or on a poll that never fires: the kernel posts no CQE within the test's wait, even after a cancel");
    }
    if s.opcode == op(o::IORING_OP_ACCEPT) && s.flags & (abi::IOSQE_IO_LINK | abi::IOSQE_IO_HARDLINK | abi::IOSQE_IO_DRAIN) != 0 {
        return Some("a cancelled accept that the kernel runs in its worker (a lone link head, a drain) ends with EINTR; ringport waits for it by poll and ends it with ECANCELED");
    }
    None
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// First fixed fd number of worker thread `t`.
fn fd_base(t: usize) -> i32 {
    1000 + 40 * t as i32
}

struct Fixture {
    dir: std::path::PathBuf,
    fds: BTreeMap<&'static str, i32>,
    /// Read ends kept for looking at what is left (not exposed as roles).
    pipe_r_shadow: i32,
    pipe2_r: i32,
    sock_peer: i32,
    buf: Mem,
}

const FILE_LEN: usize = 8192;

fn fill(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = if i % 16 == 15 { 0 } else { b'a' + (i * 7 % 26) as u8 };
    }
}

fn put(buf: &mut [u8], off: u64, bytes: &[u8]) {
    buf[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
}

fn words(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

impl Fixture {
    fn new(t: usize, tag: usize) -> Fixture {
        let base = fd_base(t);
        let mut next = base;
        let mut pin = |fd: i32| -> i32 {
            assert!(fd >= 0, "fixture fd: errno {}", errno());
            // SAFETY: dup3 onto a number reserved for this thread.
            let r = unsafe { libc::dup3(fd, next, libc::O_CLOEXEC) };
            assert_eq!(r, next, "dup3: errno {}", errno());
            if fd != next {
                close_fd(fd);
            }
            next += 1;
            r
        };
        let dir = std::env::temp_dir().join(format!("rpfz-{}-{t}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let mut content = vec![0u8; FILE_LEN];
        fill(&mut content);
        std::fs::write(dir.join("f"), &content).unwrap();
        let mut fds = BTreeMap::new();
        fds.insert("file", pin(open_path(&dir.join("f"), libc::O_RDWR)));
        fds.insert("dir", pin(open_path(&dir, libc::O_RDONLY | libc::O_DIRECTORY)));
        let mut p = [0i32; 2];
        // SAFETY: p is a valid out-array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        write_fd(p[1], &content[..64]);
        // SAFETY: dup of a fresh fd.
        let shadow = pin(unsafe { libc::dup(p[0]) });
        fds.insert("pipe_r", pin(p[0]));
        fds.insert("pipe_w", pin(p[1]));
        // SAFETY: p is a valid out-array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        let pipe2_r = pin(p[0]);
        fds.insert("pipe2_w", pin(p[1]));
        let mut sv = [0i32; 2];
        // SAFETY: sv is a valid out-array.
        assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }, 0);
        write_fd(sv[1], &content[64..128]);
        fds.insert("sock", pin(sv[0]));
        let sock_peer = pin(sv[1]);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        fds.insert("listen", pin(std::os::fd::IntoRawFd::into_raw_fd(l)));
        // SAFETY: plain socket(2).
        fds.insert("tcp", pin(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) }));
        fds.insert("null", pin(open_path(std::path::Path::new("/dev/null"), libc::O_RDWR)));
        // SAFETY: plain epoll_create1(2).
        fds.insert("epoll", pin(unsafe { libc::epoll_create1(0) }));
        let closed = next;
        next += 1;
        fds.insert("closed", closed);
        assert!(next < base + 40);

        let buf = Mem::new(BUF_LEN + page_size(), libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: the last page of our own mapping.
        assert_eq!(unsafe { libc::mprotect(buf.ptr.add(BUF_LEN).cast(), page_size(), libc::PROT_NONE) }, 0);
        let mut fx = Fixture { dir, fds, pipe_r_shadow: shadow, pipe2_r, sock_peer, buf };
        fx.reset_buf();
        fx
    }

    fn fd(&self, role: FdRole, ring_fd: i32) -> i32 {
        match role {
            FdRole::File => self.fds["file"],
            FdRole::Dir => self.fds["dir"],
            FdRole::PipeR => self.fds["pipe_r"],
            FdRole::PipeW => self.fds["pipe_w"],
            FdRole::Pipe2W => self.fds["pipe2_w"],
            FdRole::Sock => self.fds["sock"],
            FdRole::Listen => self.fds["listen"],
            FdRole::Tcp => self.fds["tcp"],
            FdRole::Null => self.fds["null"],
            FdRole::Epoll => self.fds["epoll"],
            FdRole::Ring => ring_fd,
            FdRole::Closed => self.fds["closed"],
            FdRole::Cwd => libc::AT_FDCWD,
        }
    }

    fn addr(&self, off: u64) -> u64 {
        self.buf.addr() + off
    }

    /// The buffer's initial contents: the pattern plus the structures.
    fn initial(&self) -> Vec<u8> {
        let mut b = vec![0u8; BUF_LEN];
        fill(&mut b);
        put(&mut b, at::PATH_F, b"f\0");
        put(&mut b, at::PATH_G, b"g\0");
        put(&mut b, at::PATH_EMPTY, b"\0");
        put(&mut b, at::XNAME, b"user.fz\0");
        put(&mut b, at::TS_SHORT, &words(&[0, 1000]));
        put(&mut b, at::TS_LONG, &words(&[1000, 0]));
        put(&mut b, at::TS_BAD, &words(&[0, u64::MAX]));
        put(&mut b, at::TS_ZERO, &words(&[0, 0]));
        put(&mut b, at::IOV, &words(&[self.addr(at::DATA), 32, self.addr(at::DATA + 0x100), 32]));
        // msghdr: name, namelen, iov, iovlen, control, controllen, flags.
        put(&mut b, at::MSG, &words(&[0, 0, self.addr(at::IOV), 2, 0, 0, 0]));
        // sockaddr_in 127.0.0.1:0.
        let mut sa = [0u8; 16];
        sa[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sa[4..8].copy_from_slice(&[127, 0, 0, 1]);
        put(&mut b, at::SA, &sa);
        // open_how: flags, mode, resolve.
        put(&mut b, at::HOW, &words(&[libc::O_RDONLY as u64, 0, 0]));
        let arr: Vec<u8> = [self.fds["file"], self.fds["sock"]].iter().flat_map(|f| f.to_ne_bytes()).collect();
        put(&mut b, at::FDARR, &arr);
        // epoll_event (packed on x86_64): events, data.
        let mut ev = (libc::EPOLLIN as u32).to_ne_bytes().to_vec();
        ev.extend_from_slice(&5u64.to_ne_bytes());
        put(&mut b, at::EPEV, &ev);
        b
    }

    fn reset_buf(&mut self) {
        let init = self.initial();
        self.buf.bytes_mut()[..BUF_LEN].copy_from_slice(&init);
    }

    fn resolve(&self, s: &Sym, ring_fd: i32) -> Sqe {
        let val = |v: V| -> u64 {
            match v {
                V::Raw(x) => x,
                V::Fd(r) => self.fd(r, ring_fd) as u32 as u64,
                V::Buf(off) => self.addr(off),
                V::Guard => guard_page(),
            }
        };
        Sqe {
            opcode: s.opcode,
            flags: s.flags,
            ioprio: s.ioprio,
            fd: val(s.fd) as i32,
            off: val(s.off),
            addr: val(s.addr),
            len: val(s.len) as u32,
            op_flags: s.op_flags,
            user_data: CASE_UD,
            buf_index: s.buf_index,
            personality: s.personality,
            file_index: val(s.file_index) as u32,
            addr3: val(s.addr3),
            pad2: s.pad2,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let base = *self.fds.values().min().unwrap();
        for fd in base.min(self.pipe_r_shadow)..base + 40 {
            // SAFETY: numbers reserved for this thread's fixtures.
            unsafe { libc::close(fd) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// Running one case
// ---------------------------------------------------------------------------

const CASE_UD: u64 = 0x5eed;
const CANCEL_UD: u64 = 0xcace1;
/// How long a request may take before it counts as pending.
const GRACE: Duration = Duration::from_millis(300);

/// Opcodes whose successful result is a new fd (normalised to "fd").
fn makes_fd(s: &Sqe) -> bool {
    let o_ = s.opcode;
    o_ == op(o::IORING_OP_FIXED_FD_INSTALL)
        || (s.file_index == 0
            && [op(o::IORING_OP_OPENAT), op(o::IORING_OP_OPENAT2), op(o::IORING_OP_ACCEPT), op(o::IORING_OP_SOCKET)]
                .contains(&o_))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Ranges of `now` that differ from `was`.
fn changed(was: &[u8], now: &[u8]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in 0..was.len() {
        if was[i] != now[i] {
            match out.last_mut() {
                Some(r) if r.1 == i => r.1 = i + 1,
                _ => out.push((i, i + 1)),
            }
        }
    }
    out
}

fn drain(fd: i32) -> String {
    let mut all = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        // Only what is there now: a zero-timeout poll before each read.
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 0) } != 1 || pfd.revents & libc::POLLIN == 0 {
            break;
        }
        // SAFETY: b is a valid buffer of b.len() bytes.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
        if n <= 0 {
            break;
        }
        all.extend_from_slice(&b[..n as usize]);
    }
    format!("{} bytes {:016x}", all.len(), fnv(&all))
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let p = e.path();
                    let md = std::fs::symlink_metadata(&p).unwrap();
                    let ft = md.file_type();
                    let kind = if ft.is_symlink() {
                        format!("link->{:?}", std::fs::read_link(&p).ok())
                    } else if ft.is_dir() {
                        "dir".into()
                    } else {
                        // The first 64 KiB (a case may make the file huge and sparse).
                        let mut bytes = vec![0u8; 65536];
                        let n = std::fs::File::open(&p).and_then(|mut f| std::io::Read::read(&mut f, &mut bytes)).unwrap_or(0);
                        bytes.truncate(n);
                        format!("file {} {:016x}", md.len(), fnv(&bytes))
                    };
                    format!("{:?} {kind}", e.file_name())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `s` on `b` with fresh fixtures and records what it did. With
/// `home`, the case runs inside its own directory (the caller serialises
/// those) and `home` is entered again after.
fn run_case(b: &dyn Backend, s: &Sym, t: usize, tag: usize, home: Option<&std::path::Path>, trace: &mut Trace) {
    let mut fx = Fixture::new(t, tag);
    if home.is_some() {
        std::env::set_current_dir(&fx.dir).unwrap();
    }
    let ring = match Ring::new(b, 8, 0) {
        Ok(r) => r,
        Err(e) => {
            trace.rec("setup", errname(e));
            return;
        }
    };
    assert_eq!(ring.register_files(&[fx.fds["file"], fx.fds["sock"]]), 0);
    assert_eq!(ring.register_buffers(&[(fx.addr(0), BUF_LEN as u64)]), 0);
    fx.reset_buf();
    let sqe = fx.resolve(s, ring.fd);
    assert!(ring.push(&sqe));
    if std::env::var_os("RINGPORT_FUZZ_VERBOSE").is_some() {
        eprintln!("  on {}", b.name());
    }
    let r = ring.enter(1, 0, 0);
    trace.rec("enter", res(r));
    let mut cqes = ring.wait_cqes(1, GRACE);
    let finished = |v: &[Cqe]| v.iter().any(|c| c.user_data == CASE_UD && c.flags & abi::IORING_CQE_F_MORE == 0);
    if r == 1 && !finished(&cqes) {
        // Pending (or multishot): cancel everything, then collect.
        let c = Sqe {
            op_flags: abi::IORING_ASYNC_CANCEL_ANY,
            ..Sqe::new(abi::op::ASYNC_CANCEL, CANCEL_UD)
        };
        assert!(ring.push(&c));
        ring.enter(1, 0, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline && !finished(&cqes) {
            cqes.extend(ring.wait_cqes(1, Duration::from_millis(100)));
        }
        // A SEND_ZC's notification, or anything else still on its way.
        cqes.extend(ring.wait_cqes(usize::MAX, Duration::from_millis(20)));
    }
    // The case's CQEs: a multishot stream is recorded as its first CQE and
    // that more followed (how many depends on timing).
    let mine: Vec<Cqe> = cqes.iter().copied().filter(|c| c.user_data != CANCEL_UD).collect();
    let norm = |c: &Cqe| -> String {
        let mut rv = format!("{:?}", res(c.res));
        if c.user_data == CASE_UD && c.res >= 0 && makes_fd(&sqe) {
            close_fd(c.res);
            rv = "fd".into();
        }
        // A CQE another op posted (MSG_RING's) carries `off`, which may be
        // one of this fixture's addresses.
        let ud = if c.user_data != CASE_UD && matches!(s.off, V::Buf(_)) { "addr".to_string() } else { format!("{:#x}", c.user_data) };
        format!("ud {ud} {rv} flags {:#x}", c.flags)
    };
    let stream = mine.first().is_some_and(|c| c.flags & abi::IORING_CQE_F_MORE != 0)
        && !mine.iter().any(|c| c.flags & abi::IORING_CQE_F_NOTIF != 0);
    if stream {
        // A multishot stream (not a zero-copy send's notification): how
        // many CQEs come before the cancel, and how it ends (the cancel,
        // or a full CQ ring first), is a matter of timing here;
        // tests/diff_overflow.rs checks the rule.
        trace.rec("cqe first", norm(&mine[0]));
    } else {
        for c in &mine {
            trace.rec("cqe", norm(c));
        }
    }
    if s.opcode != op(o::IORING_OP_STATX) {
        let init = fx.initial();
        let now = fx.buf.bytes()[..BUF_LEN].to_vec();
        // The structures hold this fixture's addresses: compare what changed.
        let ranges = changed(&init, &now);
        let bytes: Vec<u8> = ranges.iter().flat_map(|&(a, b)| now[a..b].to_vec()).collect();
        trace.rec("buffer changed", (ranges, format!("{:016x}", fnv(&bytes))));
    }
    // Data taken from the structures page carries this fixture's
    // addresses: only its length is comparable.
    let volatile = matches!(s.addr, V::Buf(o) if o < at::DATA) || matches!(s.off, V::Buf(o) if o < at::DATA);
    let shown = |v: String| if volatile { v.split(' ').next().unwrap_or("").to_string() } else { v };
    trace.rec("dir", listing(&fx.dir).into_iter().map(|l| if volatile { l.rsplit_once(' ').map_or(l.clone(), |x| x.0.to_string()) } else { l }).collect::<Vec<_>>());
    trace.rec("pipe", shown(drain(fx.pipe_r_shadow)));
    trace.rec("pipe2", shown(drain(fx.pipe2_r)));
    trace.rec("sock peer", shown(drain(fx.sock_peer)));
    drop(ring);
    if let Some(h) = home {
        std::env::set_current_dir(h).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------

/// Opcodes the backend's probe reports as supported.
fn probed(b: &dyn Backend) -> Vec<u8> {
    let ring = Ring::new(b, 1, 0).expect("setup");
    let n = 256usize;
    let size = core::mem::size_of::<abi::io_uring_probe>() + n * core::mem::size_of::<abi::io_uring_probe_op>();
    let mut mem = vec![0u64; size.div_ceil(8)];
    // SAFETY: mem holds a probe header and n entries.
    let r = unsafe { ring.register_raw(abi::reg::PROBE, mem.as_mut_ptr().cast(), n as u32) };
    assert!(r >= 0, "probe: {r}");
    // SAFETY: the probe header sits at the start of mem.
    let probe = unsafe { &*(mem.as_ptr() as *const abi::io_uring_probe) };
    let ops = probe.ops.as_ptr();
    (0..probe.ops_len as usize)
        // SAFETY: ops_len entries were written after the header.
        .map(|i| unsafe { *ops.add(i) })
        .filter(|e| e.flags as u32 & abi::IO_URING_OP_SUPPORTED != 0)
        .map(|e| e.op)
        .collect()
}

fn raise_nofile() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is a valid in/out pointer.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max.min(8192).max(rl.rlim_cur);
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn fuzz_sqe_fields_against_the_kernel() {
    const TEST: &str = "fuzz_sqe_fields_against_the_kernel";
    if skip_without_kernel(TEST) {
        return;
    }
    raise_nofile();
    let kernel_ops = probed(&KERNEL);
    let mut ops: Vec<u8> = probed(&RINGPORT).into_iter().filter(|o_| kernel_ops.contains(o_)).collect();
    if let Ok(one) = std::env::var("RINGPORT_FUZZ_OP") {
        let one: u8 = one.parse().expect("RINGPORT_FUZZ_OP");
        ops.retain(|&x| x == one);
    }
    assert!(ops.len() > 40 || std::env::var_os("RINGPORT_FUZZ_OP").is_some(), "only {} ops in common", ops.len());

    let mut cases: Vec<Sym> = Vec::new();
    let muts = mutations();
    for &opc in &ops {
        cases.push(base(opc));
        for &m in &muts {
            let mut s = base(opc);
            apply(&mut s, m);
            cases.push(s);
        }
    }
    let mut rng = Rng::new(env_u64("RINGPORT_FUZZ_SEED", 0x5eed_f00d));
    for _ in 0..env_u64("RINGPORT_FUZZ_RANDOM", 1500) {
        let mut s = base(ops[rng.below(ops.len() as u64) as usize]);
        for _ in 0..2 + rng.below(2) {
            apply(&mut s, muts[rng.below(muts.len() as u64) as usize]);
        }
        cases.push(s);
    }
    cases.retain(allowed);
    let total = cases.len();

    // Cases that resolve paths against the working directory run one at a
    // time, inside their own directory.
    let cwd_lock = Mutex::new(());
    let home = std::env::current_dir().unwrap();
    let cwd_relative = |s: &Sym| {
        s.uses(FdRole::Cwd) || [op(o::IORING_OP_SETXATTR), op(o::IORING_OP_GETXATTR)].contains(&s.opcode)
    };
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let known_seen: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());
    let threads = env_u64("RINGPORT_FUZZ_THREADS", 6) as usize;
    let verbose = std::env::var_os("RINGPORT_FUZZ_VERBOSE").is_some();
    watchdog(TEST, Duration::from_secs(600), || {
        std::thread::scope(|sc| {
            for t in 0..threads {
                let (cases, next, problems, cwd_lock, home, verbose) = (&cases, &next, &problems, &cwd_lock, &home, verbose);
                let known_seen = &known_seen;
                sc.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = cases.get(i) else { break };
                    if verbose {
                        eprintln!("case {i}: {s:?}");
                    }
                    let mut k = Trace::default();
                    let mut r = Trace::default();
                    if cwd_relative(s) {
                        let _g = cwd_lock.lock().unwrap_or_else(|e| e.into_inner());
                        run_case(&KERNEL, s, t, 2 * i, Some(home), &mut k);
                        run_case(&RINGPORT, s, t, 2 * i + 1, Some(home), &mut r);
                    } else {
                        run_case(&KERNEL, s, t, 2 * i, None, &mut k);
                        run_case(&RINGPORT, s, t, 2 * i + 1, None, &mut r);
                    }
                    let diffs = compare_traces(&format!("{s:?}"), &k, &r);
                    if let Some(why) = known(s) {
                        *known_seen.lock().unwrap().entry(why).or_insert(0usize) += 1;
                    } else if !diffs.is_empty() {
                        problems.lock().unwrap().push(format!("case {i}: {s:?}\n  {}", diffs.join("\n  ")));
                    }
                });
            }
        })
    });
    let problems = problems.into_inner().unwrap();
    for (why, n) in known_seen.into_inner().unwrap() {
        println!("not compared: {n} cases: {why}");
    }
    for p in &problems {
        println!("MISMATCH {p}");
    }
    println!("{TEST}: {total} cases over {} opcodes, {} differ", ops.len(), problems.len());
    assert!(problems.is_empty(), "{} of {total} cases differ from the kernel (first: {})", problems.len(), problems[0]);
}
