//! The differential-test harness: one raw io_uring driver, two backends.
//!
//! Everything a program does with io_uring by hand, liburing-style, is here:
//! `setup`, mapping the SQ ring, the CQ ring and the SQE array with `mmap`
//! at the `IORING_OFF_*` offsets (or providing the memory for NO_MMAP),
//! pushing SQEs through the SQ array, `enter`, reaping CQEs. Only the four
//! calls (`setup`, `enter`, `register`, `close`) go through a [`Backend`]:
//! [`Kernel`] makes the real system calls, [`Ringport`] calls
//! `ringport_engine::sys`. A test scenario is written once against `&dyn Backend`,
//! records what it observes in a [`Trace`], and [`diff`] runs it on both
//! backends and reports every difference (the kernel is the reference).
//!
//! Where the kernel's io_uring is unavailable, [`diff`] prints a SKIPPED line
//! and compares nothing; it never passes silently.
#![allow(dead_code)]

use ringport_engine::abi::{self, io_uring_params};
use std::ffi::c_void;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// The four calls that differ between the kernel and ringport. Every return
/// value follows the syscall convention: a value, or `-errno`.
pub trait Backend: Sync {
    /// "kernel" or "ringport".
    fn name(&self) -> &'static str;
    /// `io_uring_setup(2)`.
    ///
    /// # Safety
    /// `p` is handed to the callee as is; it may be any address (the callee
    /// fault-checks it), but if valid it must point to writable params.
    unsafe fn setup(&self, entries: u32, p: *mut io_uring_params) -> i32;
    /// `io_uring_enter(2)`.
    ///
    /// # Safety
    /// As for the system call: `arg` is only read (fault-checked).
    unsafe fn enter(
        &self,
        fd: i32,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        arg: *const c_void,
        argsz: usize,
    ) -> i32;
    /// `io_uring_register(2)`.
    ///
    /// # Safety
    /// As for the system call: `arg` is read and possibly written
    /// (fault-checked); if valid it must be memory the caller lets it write.
    unsafe fn register(&self, fd: i32, opcode: u32, arg: *mut c_void, nr: u32) -> i32;
    /// Closes a ring fd.
    fn close(&self, fd: i32) -> i32;
}

/// The real io_uring, through raw system calls.
pub struct Kernel;
/// ringport's engine, through `ringport_engine::sys`.
pub struct Ringport;

/// The kernel backend.
pub static KERNEL: Kernel = Kernel;
/// The ringport backend.
pub static RINGPORT: Ringport = Ringport;

fn sysret(r: libc::c_long) -> i32 {
    if r < 0 {
        -errno()
    } else {
        r as i32
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

impl Backend for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }
    unsafe fn setup(&self, entries: u32, p: *mut io_uring_params) -> i32 {
        // SAFETY: the system call validates `p` itself (EFAULT).
        sysret(unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, p) })
    }
    unsafe fn enter(
        &self,
        fd: i32,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        arg: *const c_void,
        argsz: usize,
    ) -> i32 {
        // SAFETY: the system call validates `arg` itself.
        sysret(unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                fd,
                to_submit,
                min_complete,
                flags,
                arg,
                argsz,
            )
        })
    }
    unsafe fn register(&self, fd: i32, opcode: u32, arg: *mut c_void, nr: u32) -> i32 {
        // SAFETY: the system call validates `arg` itself; the caller vouches
        // that a valid `arg` may be written.
        sysret(unsafe { libc::syscall(libc::SYS_io_uring_register, fd, opcode, arg, nr) })
    }
    fn close(&self, fd: i32) -> i32 {
        // SAFETY: closing an fd number the caller owns.
        sysret(unsafe { libc::close(fd) } as libc::c_long)
    }
}

impl Backend for Ringport {
    fn name(&self) -> &'static str {
        "ringport"
    }
    unsafe fn setup(&self, entries: u32, p: *mut io_uring_params) -> i32 {
        // SAFETY: ringport fault-checks `p` as the kernel does.
        unsafe { ringport_engine::sys::io_uring_setup(entries, p) }
    }
    unsafe fn enter(
        &self,
        fd: i32,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        arg: *const c_void,
        argsz: usize,
    ) -> i32 {
        // SAFETY: ringport fault-checks `arg` as the kernel does.
        unsafe { ringport_engine::sys::io_uring_enter(fd, to_submit, min_complete, flags, arg, argsz) }
    }
    unsafe fn register(&self, fd: i32, opcode: u32, arg: *mut c_void, nr: u32) -> i32 {
        // SAFETY: ringport fault-checks `arg`; the caller vouches for writes.
        unsafe { ringport_engine::sys::io_uring_register(fd, opcode, arg, nr) }
    }
    fn close(&self, fd: i32) -> i32 {
        ringport_engine::sys::io_uring_close(fd)
    }
}

/// Both backends, kernel first.
pub fn backends() -> [&'static dyn Backend; 2] {
    [&KERNEL, &RINGPORT]
}

/// `Ok` when the kernel's io_uring works here, else the errno of setup.
/// `RINGPORT_TEST_NO_KERNEL=1` pretends it is unavailable (ENOSYS), to
/// exercise the skip path.
pub fn kernel_available() -> Result<(), i32> {
    static AVAIL: OnceLock<Result<(), i32>> = OnceLock::new();
    *AVAIL.get_or_init(|| {
        if std::env::var_os("RINGPORT_TEST_NO_KERNEL").is_some_and(|v| v == "1") {
            return Err(libc::ENOSYS);
        }
        let mut p = zeroed_params();
        // SAFETY: p is a valid, writable params block.
        let fd = unsafe { KERNEL.setup(1, &mut p) };
        if fd >= 0 {
            KERNEL.close(fd);
            Ok(())
        } else {
            Err(-fd)
        }
    })
}

/// True (after printing a SKIPPED line) when the kernel's io_uring cannot be
/// used, so a differential test must stop without comparing anything.
pub fn skip_without_kernel(test: &str) -> bool {
    match kernel_available() {
        Ok(()) => false,
        Err(e) => {
            let line = format!(
                "SKIPPED {test}: the kernel's io_uring is unavailable (setup: {}); nothing compared\n",
                errname(e)
            );
            // Straight to fd 2 as well: the test harness captures print!
            // output of passing tests, and a skip must never be silent.
            print!("{line}");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            true
        }
    }
}

// ---------------------------------------------------------------------------
// Traces and comparison
// ---------------------------------------------------------------------------

/// What one scenario observed on one backend: labelled values, in order.
#[derive(Default, Debug)]
pub struct Trace {
    pub items: Vec<(String, String)>,
}

impl Trace {
    /// Records one observation.
    pub fn rec(&mut self, label: impl Into<String>, v: impl Debug) {
        self.items.push((label.into(), format!("{v:?}")));
    }
}

/// A ring of `entries` with `flags`, or the setup error recorded.
pub fn ring<'b>(b: &'b dyn Backend, t: &mut Trace, entries: u32, flags: u32) -> Option<Ring<'b>> {
    match Ring::new(b, entries, flags) {
        Ok(r) => Some(r),
        Err(e) => {
            t.rec("setup", Err::<(), _>(errname(e)));
            None
        }
    }
}


/// Runs `scenario` on the kernel and on ringport and asserts that both
/// traces are equal, reporting every differing observation (printed as
/// `MISMATCH` lines and in the panic message). Prints SKIPPED and returns
/// if the kernel's io_uring is unavailable.
pub fn diff(test: &str, scenario: impl Fn(&dyn Backend, &mut Trace)) {
    if skip_without_kernel(test) {
        return;
    }
    let mut k = Trace::default();
    watchdog(
        &format!("{test} on the kernel"),
        Duration::from_secs(30),
        || scenario(&KERNEL, &mut k),
    );
    let mut r = Trace::default();
    watchdog(
        &format!("{test} on ringport"),
        Duration::from_secs(30),
        || scenario(&RINGPORT, &mut r),
    );
    if std::env::var_os("RINGPORT_DIFF_VERBOSE").is_some() {
        for (l, v) in &k.items {
            println!("TRACE {test} [{l}] = {v}");
        }
    }
    let problems = compare_traces(test, &k, &r);
    if problems.is_empty() {
        println!(
            "{test}: {} observations identical on kernel and ringport",
            k.items.len()
        );
        return;
    }
    for p in &problems {
        println!("{p}");
    }
    panic!(
        "{test}: ringport differs from the kernel:\n{}",
        problems.join("\n")
    );
}

/// Runs `f`, aborting the whole test process (with a message) if it takes
/// longer than `limit`: a hang in a backend must fail the run, not stall it.
pub fn watchdog<R>(what: &str, limit: Duration, f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let what2 = what.to_string();
    let start = Instant::now();
    let th = std::thread::spawn(move || {
        while !d.load(Ordering::Acquire) {
            if start.elapsed() > limit {
                eprintln!("HANG: {what2} did not finish within {limit:?}; aborting");
                std::process::abort();
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
    });
    let r = f();
    done.store(true, Ordering::Release);
    th.thread().unpark();
    let _ = th.join();
    r
}

/// Every difference between the kernel trace `k` and the ringport trace `r`.
pub fn compare_traces(test: &str, k: &Trace, r: &Trace) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (a, b)) in k.items.iter().zip(r.items.iter()).enumerate() {
        if a.0 != b.0 {
            out.push(format!(
                "MISMATCH {test} #{i}: scenario diverged: kernel at [{}] = {}, ringport at [{}] = {}",
                a.0, a.1, b.0, b.1
            ));
            return out;
        }
        if a.1 != b.1 {
            out.push(format!(
                "MISMATCH {test} [{}]: kernel {} | ringport {}",
                a.0, a.1, b.1
            ));
        }
    }
    if k.items.len() != r.items.len() {
        let (longer, who) = if k.items.len() > r.items.len() {
            (k, "kernel")
        } else {
            (r, "ringport")
        };
        let n = k.items.len().min(r.items.len());
        out.push(format!(
            "MISMATCH {test}: {who} recorded {} more observations, first: [{}] = {}",
            longer.items.len() - n,
            longer.items[n].0,
            longer.items[n].1
        ));
    }
    out
}

/// For calls on an fd that was just closed: when another test thread has
/// reused the number in between, the result would say nothing about closed
/// fds, so the call is not made and a fixed marker is returned instead.
pub fn on_closed_fd(
    fd: i32,
    call: impl FnOnce() -> Result<i32, &'static str>,
) -> Result<i32, &'static str> {
    // SAFETY: F_GETFD only inspects the fd table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
        return Err("fd number reused by another thread; not checked");
    }
    call()
}

/// Result of a call in a readable form: `Ok(v)` or `Err("EINVAL")`.
pub fn res(r: i32) -> Result<i32, &'static str> {
    if r >= 0 {
        Ok(r)
    } else {
        Err(errname(-r))
    }
}

/// The symbolic name of an errno value.
pub fn errname(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIME => "ETIME",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECANCELED => "ECANCELED",
        libc::E2BIG => "E2BIG",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENFILE => "ENFILE",
        libc::EXDEV => "EXDEV",
        libc::ENODATA => "ENODATA",
        libc::ENOTDIR => "ENOTDIR",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EROFS => "EROFS",
        libc::EFBIG => "EFBIG",
        libc::ETXTBSY => "ETXTBSY",
        libc::EMLINK => "EMLINK",
        libc::EBADFD => "EBADFD",
        libc::EALREADY => "EALREADY",
        512 => "ERESTARTSYS",
        _ => "E?",
    }
}

// ---------------------------------------------------------------------------
// SQEs and CQEs
// ---------------------------------------------------------------------------

/// A plain-field view of the 64-byte SQE (the kernel's unions flattened to
/// the members the implemented ops use). Its layout is checked against
/// `ringport_engine::abi::io_uring_sqe` below.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sqe {
    pub opcode: u8,
    pub flags: u8,
    pub ioprio: u16,
    pub fd: i32,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    /// rw_flags / fsync_flags / nop_flags.
    pub op_flags: u32,
    pub user_data: u64,
    pub buf_index: u16,
    pub personality: u16,
    pub file_index: u32,
    pub addr3: u64,
    pub pad2: u64,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Sqe>() == size_of::<abi::io_uring_sqe>());
    assert!(offset_of!(Sqe, fd) == offset_of!(abi::io_uring_sqe, fd));
    assert!(offset_of!(Sqe, len) == offset_of!(abi::io_uring_sqe, len));
    assert!(offset_of!(Sqe, user_data) == offset_of!(abi::io_uring_sqe, user_data));
    assert!(offset_of!(Sqe, personality) == offset_of!(abi::io_uring_sqe, personality));
};

impl Sqe {
    pub fn new(opcode: u8, user_data: u64) -> Sqe {
        Sqe {
            opcode,
            user_data,
            ..Default::default()
        }
    }
    pub fn nop(user_data: u64) -> Sqe {
        Sqe::new(abi::op::NOP, user_data)
    }
    /// READ / WRITE / READ_FIXED / WRITE_FIXED style: one buffer.
    pub fn rw(opcode: u8, fd: i32, addr: u64, len: u32, off: u64, user_data: u64) -> Sqe {
        Sqe {
            opcode,
            fd,
            addr,
            len,
            off,
            user_data,
            ..Default::default()
        }
    }
    pub fn read(fd: i32, buf: *mut u8, len: u32, off: u64, user_data: u64) -> Sqe {
        Sqe::rw(abi::op::READ, fd, buf as u64, len, off, user_data)
    }
    pub fn write(fd: i32, buf: *const u8, len: u32, off: u64, user_data: u64) -> Sqe {
        Sqe::rw(abi::op::WRITE, fd, buf as u64, len, off, user_data)
    }
    pub fn readv(fd: i32, iov: *const libc::iovec, n: u32, off: u64, user_data: u64) -> Sqe {
        Sqe::rw(abi::op::READV, fd, iov as u64, n, off, user_data)
    }
    pub fn writev(fd: i32, iov: *const libc::iovec, n: u32, off: u64, user_data: u64) -> Sqe {
        Sqe::rw(abi::op::WRITEV, fd, iov as u64, n, off, user_data)
    }
    pub fn read_fixed(fd: i32, buf: *mut u8, len: u32, off: u64, idx: u16, user_data: u64) -> Sqe {
        Sqe {
            buf_index: idx,
            ..Sqe::rw(abi::op::READ_FIXED, fd, buf as u64, len, off, user_data)
        }
    }
    pub fn write_fixed(
        fd: i32,
        buf: *const u8,
        len: u32,
        off: u64,
        idx: u16,
        user_data: u64,
    ) -> Sqe {
        Sqe {
            buf_index: idx,
            ..Sqe::rw(abi::op::WRITE_FIXED, fd, buf as u64, len, off, user_data)
        }
    }
    pub fn fsync(fd: i32, fsync_flags: u32, user_data: u64) -> Sqe {
        Sqe {
            fd,
            op_flags: fsync_flags,
            ..Sqe::new(abi::op::FSYNC, user_data)
        }
    }
    pub fn flags(mut self, f: u8) -> Sqe {
        self.flags |= f;
        self
    }
    pub fn as_words(&self) -> [u64; 8] {
        // SAFETY: Sqe is 64 bytes of plain integers, 8-aligned; any bit
        // pattern is a valid [u64; 8].
        unsafe { core::mem::transmute::<Sqe, [u64; 8]>(*self) }
    }
}

/// One CQE as read from the ring. `big` holds the second 16 bytes of a
/// CQE32 ring (zero on 16-byte rings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
    pub big: [u64; 2],
}

impl Cqe {
    /// A compact, comparable form: (user_data, result, flags).
    pub fn short(&self) -> ShortCqe {
        (self.user_data, res(self.res), self.flags)
    }
}

/// The comparable short form of a CQE: (user_data, result, flags).
pub type ShortCqe = (u64, Result<i32, &'static str>, u32);

/// CQEs sorted by user_data (for completions whose order is not defined).
pub fn sorted(mut v: Vec<Cqe>) -> Vec<Cqe> {
    v.sort();
    v
}

/// The short forms of `v`, in order.
pub fn shorts(v: &[Cqe]) -> Vec<ShortCqe> {
    v.iter().map(Cqe::short).collect()
}

// ---------------------------------------------------------------------------
// Rings, mapped by hand
// ---------------------------------------------------------------------------

/// Params with everything zero.
pub fn zeroed_params() -> io_uring_params {
    // SAFETY: io_uring_params is plain integers; all-zero is valid.
    unsafe { core::mem::zeroed() }
}

/// Params with `flags` set (and `cq_entries` for CQSIZE).
pub fn params(flags: u32, cq_entries: u32) -> io_uring_params {
    let mut p = zeroed_params();
    p.flags = flags;
    p.cq_entries = cq_entries;
    p
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn round_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

/// An anonymous private mapping, unmapped on drop.
pub struct Mem {
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: the mapping is plain memory owned by this value.
unsafe impl Send for Mem {}
// SAFETY: see Send; users synchronise their own accesses.
unsafe impl Sync for Mem {}

impl Mem {
    /// `len` bytes (page-rounded), zero-filled, with protection `prot`.
    pub fn new(len: usize, prot: i32) -> Mem {
        let len = round_up(len.max(1), page_size());
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: errno {}", errno());
        Mem { ptr: p.cast(), len }
    }
    pub fn rw(len: usize) -> Mem {
        Mem::new(len, libc::PROT_READ | libc::PROT_WRITE)
    }
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }
    /// The memory as a byte slice. Only for read-write mappings that no
    /// backend is writing concurrently.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is valid for len bytes for our lifetime.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
    /// As [`Mem::bytes`], mutable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as bytes(); &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from our own successful mmap.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// An address in page zero: never mapped (mmap_min_addr forbids it).
pub const UNMAPPED: u64 = 0x100;
/// An address in the kernel half of the address space.
pub const KERNEL_ADDR: u64 = 0xffff_ffff_ffff_f000;
/// The start of the kernel half (the first non-canonical-for-users address).
pub const KERNEL_ADDR2: u64 = 0xffff_8000_0000_0000;
/// An fd number that is never open.
pub const BAD_FD: i32 = 0x3fff_fff0;

/// The address of a page that is mapped PROT_NONE for the whole run: every
/// access faults, and nothing else can ever be mapped there.
pub fn guard_page() -> u64 {
    static G: OnceLock<u64> = OnceLock::new();
    *G.get_or_init(|| {
        let m = Mem::new(page_size(), libc::PROT_NONE);
        let a = m.addr();
        core::mem::forget(m);
        a
    })
}

/// Where a ring's memory came from.
enum Backing {
    /// Our own mmaps of the ring fd: (SQ ring, CQ ring, SQEs).
    Mapped,
    /// IORING_SETUP_NO_MMAP: memory we provided (rings, SQEs).
    User(Mem, Mem),
}

/// A ring set up through a backend and mapped by hand, liburing-style.
pub struct Ring<'b> {
    pub b: &'b dyn Backend,
    pub fd: i32,
    /// The params as the backend wrote them back.
    pub p: io_uring_params,
    pub sq: *mut u8,
    pub sq_len: usize,
    pub cq: *mut u8,
    pub cq_len: usize,
    pub sqes: *mut u8,
    pub sqes_len: usize,
    pub sqe_size: usize,
    pub cqe_size: usize,
    backing: Backing,
    closed: bool,
}

// SAFETY: the ring memory is shared memory accessed through atomics and
// volatile copies; moving the handle between threads is fine.
unsafe impl Send for Ring<'_> {}
// SAFETY: see Send.
unsafe impl Sync for Ring<'_> {}

/// The SQ and CQ entries setup will choose for valid parameters (used only
/// to size NO_MMAP memory).
fn expected_entries(entries: u32, p: &io_uring_params) -> (u32, u32) {
    let clamp = p.flags & abi::IORING_SETUP_CLAMP != 0;
    let sq = if clamp { entries.min(32768) } else { entries }
        .max(1)
        .next_power_of_two();
    let cq = if p.flags & abi::IORING_SETUP_CQSIZE != 0 {
        let c = if clamp {
            p.cq_entries.min(65536)
        } else {
            p.cq_entries
        };
        c.max(1).next_power_of_two()
    } else {
        2 * sq
    };
    (sq, cq)
}

impl<'b> Ring<'b> {
    /// A ring with `flags` (and default everything else).
    pub fn new(b: &'b dyn Backend, entries: u32, flags: u32) -> Result<Ring<'b>, i32> {
        Ring::with_params(b, entries, params(flags, 0))
    }

    /// A ring from full params. For NO_MMAP, memory is allocated here and
    /// its addresses are put into `sq_off.user_addr`/`cq_off.user_addr`.
    pub fn with_params(
        b: &'b dyn Backend,
        entries: u32,
        mut p: io_uring_params,
    ) -> Result<Ring<'b>, i32> {
        let user = if p.flags & abi::IORING_SETUP_NO_MMAP != 0 {
            let (sq, cq) = expected_entries(entries, &p);
            let sqe = if p.flags & abi::IORING_SETUP_SQE128 != 0 {
                128
            } else {
                64
            };
            let cqe = if p.flags & abi::IORING_SETUP_CQE32 != 0 {
                32
            } else {
                16
            };
            let rings = Mem::rw(round_up(64 + cq as usize * cqe, 64) + sq as usize * 4 + 64);
            let sqes = Mem::rw(sq as usize * sqe);
            p.cq_off.user_addr = rings.addr();
            p.sq_off.user_addr = sqes.addr();
            Some((rings, sqes))
        } else {
            None
        };
        // SAFETY: p is a valid, writable params block.
        let fd = unsafe { b.setup(entries, &mut p) };
        if fd < 0 {
            return Err(-fd);
        }
        Ring::from_fd(b, fd, p, user)
    }

    fn from_fd(
        b: &'b dyn Backend,
        fd: i32,
        p: io_uring_params,
        user: Option<(Mem, Mem)>,
    ) -> Result<Ring<'b>, i32> {
        let sqe_size = if p.flags & abi::IORING_SETUP_SQE128 != 0 {
            128
        } else {
            64
        };
        let cqe_size = if p.flags & abi::IORING_SETUP_CQE32 != 0 {
            32
        } else {
            16
        };
        let no_array = p.flags & abi::IORING_SETUP_NO_SQARRAY != 0;
        // liburing's sizes: the SQ ring ends with the SQ array; the CQ ring
        // with the CQEs. The SQ header lives at the front either way.
        let sq_len = if no_array {
            64
        } else {
            p.sq_off.array as usize + p.sq_entries as usize * 4
        };
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * cqe_size;
        let sqes_len = p.sq_entries as usize * sqe_size;
        let mut ring = Ring {
            b,
            fd,
            p,
            sq: core::ptr::null_mut(),
            sq_len,
            cq: core::ptr::null_mut(),
            cq_len,
            sqes: core::ptr::null_mut(),
            sqes_len,
            sqe_size,
            cqe_size,
            backing: Backing::Mapped,
            closed: false,
        };
        if let Some((rings, sqes)) = user {
            ring.sq = rings.ptr;
            ring.cq = rings.ptr;
            ring.sqes = sqes.ptr;
            ring.backing = Backing::User(rings, sqes);
            return Ok(ring);
        }
        let map = |off: u32, len: usize| -> Result<*mut u8, i32> {
            // SAFETY: mapping the ring fd at one of its documented offsets;
            // a failure is reported, nothing existing is replaced.
            let m = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd,
                    off as libc::off_t,
                )
            };
            if m == libc::MAP_FAILED {
                Err(errno())
            } else {
                Ok(m.cast())
            }
        };
        // On failure, Drop unmaps whatever was mapped and closes the fd.
        ring.sq = map(abi::IORING_OFF_SQ_RING, sq_len)?;
        ring.cq = map(abi::IORING_OFF_CQ_RING, cq_len)?;
        ring.sqes = map(abi::IORING_OFF_SQES, sqes_len)?;
        Ok(ring)
    }

    pub fn flags(&self) -> u32 {
        self.p.flags
    }

    /// With NO_MMAP: the (rings, SQEs) memory we provided, as (address, length).
    pub fn user_memory(&self) -> Option<((u64, usize), (u64, usize))> {
        match &self.backing {
            Backing::User(r, s) => Some(((r.addr(), r.len), (s.addr(), s.len))),
            Backing::Mapped => None,
        }
    }

    fn u32_at(&self, base: *mut u8, off: u32) -> &AtomicU32 {
        // SAFETY: `off` is a header offset published by setup (checked to
        // lie inside the mapping by the callers' layout), 4-aligned; the
        // memory is shared with the backend, hence atomic access.
        unsafe { &*(base.add(off as usize) as *const AtomicU32) }
    }

    pub fn sq_head(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.head)
    }
    pub fn sq_tail(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.tail)
    }
    pub fn sq_mask(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.ring_mask)
    }
    pub fn sq_ring_entries(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.ring_entries)
    }
    pub fn sq_flags(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.flags)
    }
    pub fn sq_dropped(&self) -> &AtomicU32 {
        self.u32_at(self.sq, self.p.sq_off.dropped)
    }
    pub fn cq_head(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.head)
    }
    pub fn cq_tail(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.tail)
    }
    pub fn cq_mask(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.ring_mask)
    }
    pub fn cq_ring_entries(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.ring_entries)
    }
    pub fn cq_overflow(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.overflow)
    }
    pub fn cq_flags(&self) -> &AtomicU32 {
        self.u32_at(self.cq, self.p.cq_off.flags)
    }
    /// Slot `i` (masked) of the SQ index array. Panics with NO_SQARRAY.
    pub fn sq_array(&self, i: u32) -> &AtomicU32 {
        assert!(
            self.p.flags & abi::IORING_SETUP_NO_SQARRAY == 0,
            "no SQ array"
        );
        let i = i & (self.p.sq_entries - 1);
        self.u32_at(self.sq, self.p.sq_off.array + i * 4)
    }
    pub fn has_sq_array(&self) -> bool {
        self.p.flags & abi::IORING_SETUP_NO_SQARRAY == 0
    }

    /// Writes `sqe` into SQE slot `idx` (masked); on an SQE128 ring the
    /// upper 64 bytes are filled with `0xa5` junk, which these ops ignore.
    pub fn write_sqe(&self, idx: u32, sqe: &Sqe) {
        let idx = (idx & (self.p.sq_entries - 1)) as usize;
        let words = sqe.as_words();
        // SAFETY: idx < sq_entries, so the slot lies in the SQE mapping;
        // volatile stores because the backend reads this memory.
        unsafe {
            let p = self.sqes.add(idx * self.sqe_size) as *mut u64;
            for (i, w) in words.iter().enumerate() {
                core::ptr::write_volatile(p.add(i), *w);
            }
            for i in 8..self.sqe_size / 8 {
                core::ptr::write_volatile(p.add(i), 0xa5a5_a5a5_a5a5_a5a5);
            }
        }
    }

    /// Free SQ slots as the program sees them.
    pub fn sq_space(&self) -> u32 {
        let head = self.sq_head().load(Ordering::Acquire);
        let tail = self.sq_tail().load(Ordering::Relaxed);
        self.p.sq_entries - tail.wrapping_sub(head)
    }

    /// Queues `sqe` at the tail (slot = tail & mask, array entry = slot)
    /// and publishes the new tail. False when the SQ is full.
    pub fn push(&self, sqe: &Sqe) -> bool {
        let tail = self.sq_tail().load(Ordering::Relaxed);
        let slot = tail & (self.p.sq_entries - 1);
        self.push_indexed(sqe, slot)
    }

    /// As [`Ring::push`], but the SQ array entry is `array_value` (which may
    /// be out of range, for `dropped`). The SQE goes to slot tail & mask.
    pub fn push_indexed(&self, sqe: &Sqe, array_value: u32) -> bool {
        if self.sq_space() == 0 {
            return false;
        }
        let tail = self.sq_tail().load(Ordering::Relaxed);
        let slot = tail & (self.p.sq_entries - 1);
        self.write_sqe(slot, sqe);
        if self.has_sq_array() {
            self.sq_array(tail).store(array_value, Ordering::Relaxed);
        }
        self.sq_tail()
            .store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Pushes all of `sqes`; panics if they do not fit.
    pub fn push_all(&self, sqes: &[Sqe]) {
        for s in sqes {
            assert!(self.push(s), "SQ full");
        }
    }

    /// Raw `enter` with no argument.
    pub fn enter(&self, to_submit: u32, min_complete: u32, flags: u32) -> i32 {
        // SAFETY: a null argument is always acceptable.
        unsafe {
            self.b.enter(
                self.fd,
                to_submit,
                min_complete,
                flags,
                core::ptr::null(),
                0,
            )
        }
    }

    /// `enter` with EXT_ARG carrying a relative timeout (and no sigmask).
    pub fn enter_timeout(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        timeout: Duration,
    ) -> i32 {
        let ts = abi::__kernel_timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let arg = abi::io_uring_getevents_arg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: 0,
            ts: &ts as *const _ as u64,
        };
        // SAFETY: arg and ts are valid for the call.
        unsafe {
            self.b.enter(
                self.fd,
                to_submit,
                min_complete,
                flags | abi::IORING_ENTER_EXT_ARG,
                &arg as *const _ as *const c_void,
                core::mem::size_of_val(&arg),
            )
        }
    }

    /// Submits `n` and returns enter's result.
    pub fn submit(&self, n: u32) -> i32 {
        self.enter(n, 0, 0)
    }

    /// Submits `n` and waits (up to 5 s) for `want` completions.
    pub fn submit_and_wait(&self, n: u32, want: u32) -> i32 {
        self.enter_timeout(n, want, abi::IORING_ENTER_GETEVENTS, Duration::from_secs(5))
    }

    /// Reads CQE at unmasked position `pos`.
    pub fn read_cqe(&self, pos: u32) -> Cqe {
        let idx = (pos & (self.p.cq_entries - 1)) as usize;
        // SAFETY: idx < cq_entries: the CQE lies inside the CQ mapping.
        unsafe {
            let p = self
                .cq
                .add(self.p.cq_off.cqes as usize + idx * self.cqe_size);
            let mut big = [0u64; 2];
            if self.cqe_size == 32 {
                big = [
                    core::ptr::read_volatile(p.add(16) as *const u64),
                    core::ptr::read_volatile(p.add(24) as *const u64),
                ];
            }
            Cqe {
                user_data: core::ptr::read_volatile(p as *const u64),
                res: core::ptr::read_volatile(p.add(8) as *const i32),
                flags: core::ptr::read_volatile(p.add(12) as *const u32),
                big,
            }
        }
    }

    /// CQEs ready in the ring (tail - head).
    pub fn cq_ready(&self) -> u32 {
        self.cq_tail()
            .load(Ordering::Acquire)
            .wrapping_sub(self.cq_head().load(Ordering::Relaxed))
    }

    /// Takes every CQE now in the ring.
    pub fn reap(&self) -> Vec<Cqe> {
        let head = self.cq_head().load(Ordering::Relaxed);
        let tail = self.cq_tail().load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(self.p.cq_entries);
        let out: Vec<Cqe> = (0..n)
            .map(|i| self.read_cqe(head.wrapping_add(i)))
            .collect();
        self.cq_head()
            .store(head.wrapping_add(n), Ordering::Release);
        out
    }

    /// Collects `n` CQEs, waiting (with bounded enter waits) up to `timeout`.
    /// Returns what arrived, which may be fewer on timeout.
    pub fn wait_cqes(&self, n: usize, timeout: Duration) -> Vec<Cqe> {
        let deadline = Instant::now() + timeout;
        let mut out = self.reap();
        while out.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let slice = (deadline - now).min(Duration::from_millis(200));
            self.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, slice);
            out.extend(self.reap());
        }
        out
    }

    /// Submits exactly the queued SQEs and collects `n` CQEs (5 s limit).
    /// Returns (enter result, CQEs).
    pub fn run(&self, to_submit: u32, n: usize) -> (i32, Vec<Cqe>) {
        let r = self.submit(to_submit);
        (r, self.wait_cqes(n, Duration::from_secs(5)))
    }

    /// Pushes one SQE, submits it and returns its CQE (None on timeout or
    /// if submit failed; the submit result is in the first element).
    pub fn one(&self, sqe: &Sqe) -> (i32, Option<Cqe>) {
        assert!(self.push(sqe), "SQ full");
        let r = self.submit(1);
        if r != 1 {
            return (r, None);
        }
        let v = self.wait_cqes(1, Duration::from_secs(5));
        (r, v.first().copied())
    }

    /// Like [`Ring::one`], in a comparable form.
    pub fn one_short(&self, sqe: &Sqe) -> Result<Option<ShortCqe>, &'static str> {
        let (r, c) = self.one(sqe);
        res(r).map(|_| c.map(|c| c.short()))
    }

    /// `io_uring_register`.
    ///
    /// # Safety
    /// As [`Backend::register`].
    pub unsafe fn register_raw(&self, opcode: u32, arg: *mut c_void, nr: u32) -> i32 {
        // SAFETY: forwarded contract.
        unsafe { self.b.register(self.fd, opcode, arg, nr) }
    }

    /// Registers fds (`-1` = sparse slot).
    pub fn register_files(&self, fds: &[i32]) -> i32 {
        // SAFETY: fds is a valid array of fds.len() i32s; only read.
        unsafe {
            self.register_raw(
                abi::reg::FILES,
                fds.as_ptr() as *mut c_void,
                fds.len() as u32,
            )
        }
    }

    /// FILES_UPDATE at `offset` with `fds`.
    pub fn files_update(&self, offset: u32, fds: &[i32]) -> i32 {
        let mut up = abi::io_uring_files_update {
            offset,
            resv: 0,
            fds: fds.as_ptr() as u64,
        };
        // SAFETY: up and fds are valid for the call; only read.
        unsafe {
            self.register_raw(
                abi::reg::FILES_UPDATE,
                &mut up as *mut _ as *mut c_void,
                fds.len() as u32,
            )
        }
    }

    /// Registers buffers given as (addr, len).
    pub fn register_buffers(&self, bufs: &[(u64, u64)]) -> i32 {
        let iov: Vec<libc::iovec> = bufs
            .iter()
            .map(|&(a, l)| libc::iovec {
                iov_base: a as usize as *mut c_void,
                iov_len: l as usize,
            })
            .collect();
        // SAFETY: the iovec array is valid and only read.
        unsafe {
            self.register_raw(
                abi::reg::BUFFERS,
                iov.as_ptr() as *mut c_void,
                iov.len() as u32,
            )
        }
    }

    /// Closes the ring (also done on drop).
    pub fn close(&mut self) -> i32 {
        if self.closed {
            return 0;
        }
        self.closed = true;
        self.b.close(self.fd)
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        if let Backing::Mapped = self.backing {
            for (p, l) in [
                (self.sq, self.sq_len),
                (self.cq, self.cq_len),
                (self.sqes, self.sqes_len),
            ] {
                if !p.is_null() {
                    // SAFETY: p/l are one of our own successful mmaps.
                    unsafe { libc::munmap(p.cast(), l) };
                }
            }
        }
        self.close();
        // With NO_MMAP the memory (Backing::User) is unmapped after the fd
        // is closed, when `backing` is dropped.
    }
}

// ---------------------------------------------------------------------------
// Files, pipes, eventfds
// ---------------------------------------------------------------------------

/// A unique path under the temp dir.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "ringport-test-{}-{tag}-{n}-{t}",
        std::process::id()
    ))
}

/// A temporary file (removed on drop) with an open fd.
pub struct TempFile {
    pub path: std::path::PathBuf,
    pub fd: i32,
}

impl TempFile {
    /// A new file holding `contents`, opened with `oflags` (e.g. O_RDWR).
    pub fn new(tag: &str, contents: &[u8], oflags: i32) -> TempFile {
        let path = temp_path(tag);
        std::fs::write(&path, contents).expect("write temp file");
        let fd = open_path(&path, oflags);
        TempFile { path, fd }
    }
    /// Another fd on the same file.
    pub fn open(&self, oflags: i32) -> i32 {
        open_path(&self.path, oflags)
    }
    pub fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read temp file")
    }
    /// The fd's file position.
    pub fn pos(&self) -> i64 {
        // SAFETY: lseek on our own fd.
        unsafe { libc::lseek(self.fd, 0, libc::SEEK_CUR) as i64 }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        close_fd(self.fd);
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn open_path(path: &std::path::Path, oflags: i32) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: c is a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), oflags | libc::O_CLOEXEC, 0o600) };
    assert!(fd >= 0, "open {path:?}: errno {}", errno());
    fd
}

pub fn close_fd(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing an fd the caller owns.
        unsafe { libc::close(fd) };
    }
}

/// A pipe (read end, write end), closed on drop unless taken.
pub struct Pipe {
    pub r: i32,
    pub w: i32,
}

impl Pipe {
    pub fn new(flags: i32) -> Pipe {
        let mut p = [0i32; 2];
        // SAFETY: p is a valid two-int array.
        assert_eq!(
            unsafe { libc::pipe2(p.as_mut_ptr(), flags | libc::O_CLOEXEC) },
            0
        );
        Pipe { r: p[0], w: p[1] }
    }
    pub fn close_r(&mut self) {
        close_fd(self.r);
        self.r = -1;
    }
    pub fn close_w(&mut self) {
        close_fd(self.w);
        self.w = -1;
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        close_fd(self.r);
        close_fd(self.w);
    }
}

/// write(2) of all of `data` to fd; returns the result.
pub fn write_fd(fd: i32, data: &[u8]) -> isize {
    // SAFETY: data is valid for its length.
    unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) }
}

/// read(2) of up to `n` bytes from fd.
pub fn read_fd(fd: i32, n: usize) -> Result<Vec<u8>, i32> {
    let mut v = vec![0u8; n];
    // SAFETY: v is valid for n bytes.
    let r = unsafe { libc::read(fd, v.as_mut_ptr().cast(), n) };
    if r < 0 {
        return Err(errno());
    }
    v.truncate(r as usize);
    Ok(v)
}

/// A non-blocking eventfd, closed by the caller.
pub fn eventfd() -> i32 {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    fd
}

/// Reads (and resets) an eventfd counter; 0 when it was not signalled.
pub fn eventfd_take(fd: i32) -> u64 {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into v.
    let r = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if r == 8 {
        v
    } else {
        0
    }
}

/// A deterministic byte pattern.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A small deterministic PRNG (xorshift64*), for tests that need random bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A connected TCP pair over 127.0.0.1.
pub fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}
