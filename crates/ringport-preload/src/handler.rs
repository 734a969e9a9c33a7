//! The two ways in: the SIGSYS handler, which decodes a trapped system call
//! from the signal's `ucontext`, and the interposed `syscall()`
//! ([`serve_syscall`]), which is handed the same call as arguments. Both
//! go through one [`dispatch`], which serves the call from the engine
//! (`ringport_engine::sys`) and returns the value or `-errno`: the handler
//! writes it where the program's `syscall` instruction leaves it, the
//! interposer returns it with libc's convention (`-1` and `errno`).
//!
//! Both run the engine in the same conditions: no handler of the
//! program's runs while the engine does (the trap by its `sa_mask`, which
//! blocks every signal but SIGSYS; the direct paths by deferring them,
//! `signals.rs`), cancellation disabled, `errno` preserved, and a CQ wait
//! that sleeps does so with the program's mask, so a signal ends it with
//! `EINTR`.
//!
//! See `docs/INTERCEPTION.md` for the signal-context rule this code follows.
//! In short: nothing of the program's interrupts the engine while it holds
//! a lock or allocates; a trap is synchronous, at a `syscall` instruction
//! the program chose to execute, so the interrupted code holds no lock the
//! engine needs; and the program's handlers run only once the engine is
//! left (deferred ones on the way out of the call).

use crate::{arch, fdtab, filter};
use ringport_engine::abi::{self, io_uring_getevents_arg, io_uring_params};
use ringport_engine::sys;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// `si_code` of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;
/// glibc's `PTHREAD_CANCEL_DISABLE`.
const PTHREAD_CANCEL_DISABLE: libc::c_int = 1;

extern "C" {
    fn pthread_setcancelstate(state: libc::c_int, oldstate: *mut libc::c_int) -> libc::c_int;
}

/// The SIGSYS part of `siginfo_t` (the kernel's `_sigsys` union member).
#[repr(C)]
struct SigsysInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    call_addr: *mut libc::c_void,
    syscall: i32,
    arch: u32,
}

/// The process the ring table belongs to: set at install and in the `fork`
/// child hook. A trap in another pid (a `vfork` child, a raw `clone`)
/// shares our memory or a stale copy of it, and must not touch either.
pub static OWNER_PID: AtomicI32 = AtomicI32::new(0);

/// The SIGSYS action the program had before us, or set after us through
/// the interposed `sigaction`/`signal`: (handler, sa_flags). Non-ringport
/// SIGSYS signals go there.
pub static CHAIN_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
/// `sa_flags` of [`CHAIN_HANDLER`].
pub static CHAIN_FLAGS: AtomicI32 = AtomicI32::new(0);

/// How many of our traps the SIGSYS handler has served (io_uring calls and
/// ring-fd closes that reached it as signals), for tests and benchmarks.
pub static TRAPPED: AtomicU64 = AtomicU64::new(0);

/// Whether the interposed `syscall()` serves io_uring calls itself (the
/// default) or lets them trap like inline instructions
/// (`RINGPORT_SYSCALL_FASTPATH=0` at install, to measure or compare).
pub static FAST_PATH: AtomicBool = AtomicBool::new(true);

/// True when the interposed `syscall()` should serve call `nr` itself:
/// exactly the calls the seccomp filter traps (see `filter.rs`), decided
/// the same way from the same 32-bit halves: the io_uring calls, and
/// `close`/`close_range` reaching into the reserved ring-fd range and
/// `dup2`/`dup3` onto it, unless they carry the library's own
/// [`filter::BYPASS`] marker.
#[inline]
pub(crate) fn is_served(nr: libc::c_long, a1: u64, a2: u64) -> bool {
    let nr = nr as u32;
    let served = match nr {
        arch::NR_IO_URING_SETUP | arch::NR_IO_URING_ENTER | arch::NR_IO_URING_REGISTER => true,
        n if n == arch::NR_CLOSE
            || n == arch::NR_READ
            || n == arch::NR_WRITE
            || n == arch::NR_CLOSE_RANGE
            || n == arch::NR_DUP2
            || n == arch::NR_DUP3 =>
        {
            let (base, end) = fdtab::range();
            let (first, marker) = (a1 as u32, (a1 >> 32) as u32);
            let in_range = |fd: u32| fd >= base as u32 && fd < end as u32;
            if base >= end || marker == filter::BYPASS {
                false
            } else if n == arch::NR_CLOSE || n == arch::NR_READ || n == arch::NR_WRITE {
                in_range(first)
            } else if n == arch::NR_CLOSE_RANGE {
                first < end as u32 && a2 as u32 >= base as u32
            } else {
                in_range(a2 as u32)
            }
        }
        _ => false,
    };
    served && FAST_PATH.load(Ordering::Relaxed)
}

/// Serves one call the filter would trap, made through the interposed
/// `syscall()`, without a signal ([`serve_raw`]), and returns the result
/// as libc's `syscall` would (`-1` with `errno` on error; `errno`
/// untouched on success).
///
/// # Safety
/// As the system call `nr` with arguments `a` (the engine fault-checks
/// every pointer it is given).
pub(crate) unsafe fn serve_syscall(nr: u32, a: [u64; 6]) -> libc::c_long {
    // SAFETY: errno location is thread-local and always valid.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the caller's contract, passed on.
    let ret = unsafe { serve_raw(nr, a) };
    // SAFETY: as above.
    let errno = unsafe { &mut *libc::__errno_location() };
    if (-4095..0).contains(&ret) {
        *errno = -ret as i32;
        -1
    } else {
        *errno = saved_errno;
        ret as libc::c_long
    }
}

/// Serves one call the filter would trap, outside a signal handler: marks
/// the thread as in the engine, so that the program's signal handlers wait
/// until the call is served (`signals.rs`; a CQ wait that sleeps is woken
/// by a signal as the kernel's is), disables cancellation, and returns the
/// kernel's convention (the value or `-errno`), `errno` untouched. The
/// shared core of the `syscall()` fast path and of rewritten call sites
/// (`rewrite.rs`).
///
/// # Safety
/// As the system call `nr` with arguments `a` (the engine fault-checks
/// every pointer it is given).
pub(crate) unsafe fn serve_raw(nr: u32, a: [u64; 6]) -> i64 {
    let depth = crate::signals::enter();
    // SAFETY: errno location is thread-local and always valid.
    let saved_errno = unsafe { *libc::__errno_location() };
    let mut cancel = 0;
    // SAFETY: only flips the calling thread's cancelability (a TLS flag).
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut cancel) };
    let ret = dispatch(nr, a, None);
    // SAFETY: restoring the state changed above.
    unsafe {
        pthread_setcancelstate(cancel, core::ptr::null_mut());
        *libc::__errno_location() = saved_errno;
    }
    // Handlers of signals that arrived meanwhile run now (signals.rs).
    crate::signals::leave(depth, true);
    ret
}

/// Serves one intercepted call, the same way whichever path it came by:
/// `a` are its six arguments, `mask` the program's signal mask at the call
/// (first word) when the caller knows it (the trap, which runs with every
/// signal blocked), for a CQ wait to sleep with; without it the engine's
/// sleep gate finds it at the sleep (`signals.rs`). Returns the value or
/// `-errno`.
fn dispatch(nr: u32, a: [u64; 6], mask: Option<u64>) -> i64 {
    match nr {
        arch::NR_IO_URING_SETUP => setup(a[0] as u32, a[1] as usize as *mut io_uring_params),
        arch::NR_IO_URING_ENTER => enter(a, mask),
        arch::NR_IO_URING_REGISTER => register(a),
        arch::NR_CLOSE => close(a[0] as u32 as i32),
        arch::NR_CLOSE_RANGE => close_range(a[0] as u32, a[1] as u32, a[2] as u32),
        n if n == arch::NR_DUP2 || n == arch::NR_DUP3 => dup(n, a),
        arch::NR_EPOLL_CTL => epoll_ctl(a),
        n if n == arch::NR_READ || n == arch::NR_WRITE => ring_fd_rw(n, a),
        _ => -(libc::ENOSYS as i64),
    }
}

/// `read`/`write` on an fd in the reserved range: a ring's fd refuses both
/// with EINVAL, as the kernel's io_uring file does (it has no read or
/// write method); any other fd there is passed on.
fn ring_fd_rw(nr: u32, a: [u64; 6]) -> i64 {
    let fd = a[0] as u32 as i32;
    if fdtab::known_ident(fd).is_some() || sys::is_ring_fd(fd) {
        return -(libc::EINVAL as i64);
    }
    let arg = ((filter::BYPASS as u64) << 32) | fd as u32 as u64;
    // SAFETY: the program's own read/write; the kernel checks the buffer.
    let r = unsafe { crate::interpose::real_syscall(nr as libc::c_long, arg as libc::c_long, a[1] as libc::c_long, a[2] as libc::c_long, 0, 0, 0) };
    if r < 0 {
        neg_errno()
    } else {
        r as i64
    }
}

/// `epoll_ctl` on a ring fd: the ring's readiness eventfd stands in for it
/// (a memfd cannot join an epoll set), with the program's op and event.
fn epoll_ctl(a: [u64; 6]) -> i64 {
    let (epfd, op, fd, ev) = (a[0] as i32, a[1] as i32, a[2] as i32, a[3] as usize as *mut libc::epoll_event);
    let efd = sys::io_uring_ready_fd(fd, fdtab::known_ident(fd));
    if efd < 0 {
        return efd as i64;
    }
    // SAFETY: the program's call with another fd; the kernel checks `ev`
    // (EFAULT) and `epfd`. The eventfd is outside the reserved range, so
    // this does not trap again.
    if unsafe { libc::epoll_ctl(epfd, op, efd, ev) } < 0 {
        neg_errno()
    } else {
        0
    }
}

fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

fn neg_errno() -> i64 {
    // SAFETY: __errno_location returns the calling thread's errno.
    -(unsafe { *libc::__errno_location() } as i64)
}

/// `close` that the filter lets through (see [`filter::BYPASS`]).
pub(crate) fn bypass_close(fd: i32) -> i64 {
    let arg = ((filter::BYPASS as u64) << 32) | fd as u32 as u64;
    // SAFETY: close on an fd number; the marker bits are ignored by the kernel.
    let r = unsafe { crate::interpose::real_syscall(libc::SYS_close, arg as libc::c_long, 0, 0, 0, 0, 0) };
    if r < 0 {
        neg_errno()
    } else {
        r as i64
    }
}

/// `close_range` that the filter lets through.
fn bypass_close_range(first: u32, last: u32, flags: u32) -> i64 {
    let arg = ((filter::BYPASS as u64) << 32) | first as u64;
    // SAFETY: plain close_range; the marker bits are ignored by the kernel.
    let r = unsafe {
        crate::interpose::real_syscall(libc::SYS_close_range, arg as libc::c_long, last as libc::c_long, flags as libc::c_long, 0, 0, 0)
    };
    if r < 0 {
        neg_errno()
    } else {
        r as i64
    }
}

/// `dup2`/`dup3` that the filter lets through.
fn bypass_dup(nr: u32, old: u32, new: u32, flags: u64) -> i64 {
    let arg = ((filter::BYPASS as u64) << 32) | old as u64;
    // SAFETY: plain dup2/dup3; the marker bits are ignored by the kernel.
    let r = unsafe {
        crate::interpose::real_syscall(nr as libc::c_long, arg as libc::c_long, new as libc::c_long, flags as libc::c_long, 0, 0, 0)
    };
    if r < 0 {
        neg_errno()
    } else {
        r as i64
    }
}

/// The signal handler installed for SIGSYS.
///
/// # Safety
/// Only the kernel calls this, as a SA_SIGINFO handler.
pub unsafe extern "C" fn on_sigsys(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: for SIGSYS the kernel fills the _sigsys member, laid out as SigsysInfo.
    let si = unsafe { &*(info as *const SigsysInfo) };
    if si.code != SYS_SECCOMP || si.errno != filter::TRAP_DATA as i32 || si.arch != arch::AUDIT_ARCH {
        // SAFETY: forwarding the kernel's own arguments.
        unsafe { chain(sig, info, uc) };
        return;
    }
    TRAPPED.fetch_add(1, Ordering::Relaxed);
    let uc = uc as *mut libc::ucontext_t;
    // SAFETY: errno location is thread-local and always valid.
    let saved_errno = unsafe { *libc::__errno_location() };
    let mut cancel = 0;
    // SAFETY: only flips the calling thread's cancelability (a TLS flag), so
    // a pthread_cancel cannot unwind through the engine while it holds a lock.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut cancel) };
    // SAFETY: uc is the kernel-provided ucontext of this SIGSYS.
    let a = unsafe { arch::args(uc) };
    // SAFETY: as above.
    let mask = unsafe { arch::saved_sigmask(uc) };
    let depth = crate::signals::enter();
    let ret = dispatch(si.syscall as u32, a, Some(mask));
    crate::signals::leave(depth, false);
    // SAFETY: as above; the handler has not returned.
    unsafe { arch::set_result(uc, ret) };
    if si.syscall as u32 == arch::NR_IO_URING_ENTER {
        // SAFETY: uc is the kernel-provided ucontext of this SIGSYS.
        crate::rewrite::after_trap(unsafe { arch::resume_addr(uc) });
    }
    // SAFETY: restoring the state saved above.
    unsafe {
        pthread_setcancelstate(cancel, core::ptr::null_mut());
        *libc::__errno_location() = saved_errno;
    }
}

/// Hands a SIGSYS that is not ours to the program's handler, or applies
/// the default action (terminate with a core dump) as the kernel would.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let h = CHAIN_HANDLER.load(Ordering::Acquire);
    let flags = CHAIN_FLAGS.load(Ordering::Acquire);
    if h == libc::SIG_IGN {
        return;
    }
    if h == libc::SIG_DFL {
        // SAFETY: resetting SIGSYS to its default and re-raising it: the
        // process ends as it would have without us.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            crate::interpose::real_sigaction(libc::SIGSYS, &sa, core::ptr::null_mut());
            libc::raise(libc::SIGSYS);
        }
        return;
    }
    // SAFETY: the program's own handler, with the kernel's arguments.
    unsafe { crate::signals::call_handler(h, flags, sig, info, uc) };
}

/// `io_uring_setup`: create the ring, then move its fd into the reserved
/// range so that the program's `close` of it traps.
fn setup(entries: u32, params: *mut io_uring_params) -> i64 {
    let me = getpid();
    if me != OWNER_PID.load(Ordering::Relaxed) {
        // A vfork child or raw clone: our memory may be the parent's.
        return -(libc::EPERM as i64);
    }
    fdtab::collect_orphans(|low| {
        sys::io_uring_close(low);
    });
    // SAFETY: sys fault-checks the params pointer.
    let fd = unsafe { sys::io_uring_setup(entries, params) };
    if fd < 0 {
        return fd as i64;
    }
    let (base, end) = fdtab::range();
    if base >= end {
        return fd as i64;
    }
    // SAFETY: F_DUPFD_CLOEXEC creates a new fd (ring fds are close-on-exec).
    let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base) };
    let slot = (h >= 0).then(|| fdtab::slot(h)).flatten();
    let id = fdtab::ident(fd);
    let claimed = slot.zip(id).and_then(|(s, id)| s.claim_any().map(|stale| (s, id, stale)));
    let Some((slot, id, stale)) = claimed else {
        // The range is full (or, impossibly, the number is being closed by
        // another thread): hand out the engine's fd itself. The ring works;
        // only a raw close of it is not seen (see docs/INTERCEPTION.md).
        if h >= 0 {
            bypass_close(h);
        }
        return fd as i64;
    };
    if stale {
        forget_stale(slot);
    }
    slot.publish(fd, me, id);
    h as i64
}

/// A slot still described a ring although the kernel handed out its number
/// again: the program closed it in a way we did not see (`dup2` over it,
/// `close_range` with `CLOSE_RANGE_UNSHARE`). Free that ring now.
fn forget_stale(slot: &fdtab::Slot) {
    let low = slot.low.load(Ordering::Relaxed);
    if fdtab::ident(low) == Some(slot.ident()) {
        sys::io_uring_close(low);
    }
}

/// Set once `process_vm_readv` was refused (seccomp, as in Docker without
/// CAP_SYS_PTRACE): later reads go straight to the pipe.
static VM_READV_REFUSED: AtomicBool = AtomicBool::new(false);

/// Reads `T` from program memory without faulting: `process_vm_readv` on
/// ourselves, or a pipe where that call is refused (Docker without
/// CAP_SYS_PTRACE). None if the memory is not readable.
pub(crate) fn read_user<T: Copy>(addr: u64) -> Option<T> {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let len = core::mem::size_of::<T>();
    if addr == 0 {
        return None;
    }
    if !VM_READV_REFUSED.load(Ordering::Relaxed) {
        let l = libc::iovec { iov_base: v.as_mut_ptr().cast(), iov_len: len };
        let r = libc::iovec { iov_base: addr as usize as *mut libc::c_void, iov_len: len };
        // SAFETY: the local iovec covers v; the kernel checks the remote one.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &l, 1, &r, 1, 0) };
        if n == len as isize {
            // SAFETY: fully written by the kernel; T is plain data.
            return Some(unsafe { v.assume_init() });
        }
        // SAFETY: errno of the call above.
        match unsafe { *libc::__errno_location() } {
            libc::EFAULT if n < 0 => return None,
            libc::EPERM | libc::ENOSYS if n < 0 => VM_READV_REFUSED.store(true, Ordering::Relaxed),
            _ => {}
        }
    }
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: write faults with EFAULT on a bad source; read fills v.
    let ok = unsafe {
        libc::write(p[1], addr as usize as *const libc::c_void, len) == len as isize
            && libc::read(p[0], v.as_mut_ptr().cast(), len) == len as isize
    };
    bypass_close(p[0]);
    bypass_close(p[1]);
    // SAFETY: fully written by read when ok; T is plain data.
    ok.then(|| unsafe { v.assume_init() })
}

/// `io_uring_enter`. A trapped wait (`GETEVENTS`, `saved_mask` from the
/// ucontext) without a signal mask of the program's own is given the
/// program's mask at the trap, so the engine sleeps in `ppoll` with it and
/// the program's signals interrupt the wait with EINTR, atomically, as on
/// the kernel, while the rest of the call runs with signals blocked. On
/// the direct paths (`saved_mask` None) the engine's sleep gate does the
/// same at the sleep (`signals.rs`).
fn enter(a: [u64; 6], saved_mask: Option<u64>) -> i64 {
    let (fd, to_submit, min, flags) = (a[0] as i32, a[1] as u32, a[2] as u32, a[3] as u32);
    let (arg, argsz) = (a[4] as usize as *const libc::c_void, a[5] as usize);
    // A ring fd this library handed out and tracks needs no fstat to be
    // found (see fdtab::known_ident).
    let known = if flags & abi::IORING_ENTER_REGISTERED_RING == 0 { fdtab::known_ident(fd) } else { None };
    let call = |arg: *const libc::c_void, argsz: usize| -> i64 {
        // SAFETY: sys fault-checks every pointer it is given.
        unsafe {
            match known {
                Some(ring) => sys::io_uring_enter_known(fd, ring, to_submit, min, flags, arg, argsz) as i64,
                None => sys::io_uring_enter(fd, to_submit, min, flags, arg, argsz) as i64,
            }
        }
    };
    // Without a known mask (no trap), the engine's sleep gate finds it.
    let Some(saved_mask) = saved_mask.filter(|_| flags & abi::IORING_ENTER_GETEVENTS != 0) else {
        return call(arg, argsz);
    };
    // A trapped wait runs with every signal blocked, so it sleeps with the
    // program's mask from the trap, unless the program gave one. SIGSYS is
    // never blocked while waiting: a handler that runs during the wait may
    // make io_uring calls itself.
    let mask: u64 = saved_mask & !(1u64 << (libc::SIGSYS - 1));
    if flags & abi::IORING_ENTER_EXT_ARG == 0 {
        if arg.is_null() {
            return call((&mask as *const u64).cast(), 8);
        }
        return call(arg, argsz);
    }
    if flags & abi::IORING_ENTER_EXT_ARG_REG != 0 || argsz != core::mem::size_of::<io_uring_getevents_arg>() {
        return call(arg, argsz);
    }
    match read_user::<io_uring_getevents_arg>(arg as u64) {
        Some(mut ga) if ga.sigmask == 0 => {
            ga.sigmask = &mask as *const u64 as u64;
            ga.sigmask_sz = 8;
            call((&ga as *const io_uring_getevents_arg).cast(), argsz)
        }
        // The program's own mask, or an unreadable block (the engine
        // reports EFAULT without waiting).
        _ => call(arg, argsz),
    }
}

/// `io_uring_register`.
fn register(a: [u64; 6]) -> i64 {
    let (fd, opcode) = (a[0] as i32, a[1] as u32);
    // SAFETY: sys fault-checks the argument pointer.
    unsafe { sys::io_uring_register(fd, opcode, a[2] as usize as *mut libc::c_void, a[3] as u32) as i64 }
}

/// `dup2(old, new)` / `dup3(old, new, flags)` with `new` in the reserved
/// range. The kernel replaces `new` atomically; when `new` was a ring fd
/// the library handed out, the ring loses that fd just as a `close` of it
/// would lose it (freed, or orphaned while a `dup` of it is open), so the
/// ring-fd table keeps matching the fd table.
fn dup(nr: u32, a: [u64; 6]) -> i64 {
    let (old, new) = (a[0] as u32, a[1] as u32);
    let claimed = fdtab::slot(new as i32).filter(|s| getpid() == OWNER_PID.load(Ordering::Relaxed) && s.claim_live());
    let r = bypass_dup(nr, old, new, a[2]);
    if let Some(slot) = claimed {
        if fdtab::ident(new as i32) == Some(slot.ident()) {
            // Still the ring: the call failed, or was dup2(H, H).
            slot.restore_live();
        } else {
            ring_lost_fd(slot);
            slot.release();
        }
    }
    r
}

/// The ring of `slot` (claimed by the caller) no longer has its program
/// fd: free it, or keep it as an orphan while another fd refers to it.
fn ring_lost_fd(slot: &fdtab::Slot) {
    let id = slot.ident();
    let low = slot.low.load(Ordering::Relaxed);
    if fdtab::ident(low) != Some(id) {
        return;
    }
    if !(fdtab::other_fd_refers(id, [low, -1]) && fdtab::add_orphan(low, id)) {
        sys::io_uring_close(low);
    }
}

/// `close(fd)` for an fd in the reserved range.
fn close(fd: i32) -> i64 {
    let Some(slot) = fdtab::slot(fd) else { return bypass_close(fd) };
    if getpid() != OWNER_PID.load(Ordering::Relaxed) {
        // vfork child: the table is the parent's; close only our fd.
        return bypass_close(fd);
    }
    if !slot.claim_live() {
        // Not a ring, or the engine's own close of it (nested trap).
        return bypass_close(fd);
    }
    let r = close_ring(fd, slot);
    slot.release();
    fdtab::collect_orphans(|low| {
        sys::io_uring_close(low);
    });
    r
}

/// Closes ring `fd` whose slot the caller claimed: the engine forgets the
/// ring (in a fork child, only this process's use of a ring it shares with
/// its parent ends), and its engine fd is closed.
fn close_ring(fd: i32, slot: &fdtab::Slot) -> i64 {
    let id = slot.ident();
    let low = slot.low.load(Ordering::Relaxed);
    let low_is_ring = fdtab::ident(low) == Some(id);
    if fdtab::ident(fd) == Some(id) {
        if low_is_ring && fdtab::other_fd_refers(id, [fd, low]) && fdtab::add_orphan(low, id) {
            // A dup of the ring is still open: the ring lives on, as on
            // the kernel, until no fd refers to it (collected later).
            return bypass_close(fd);
        }
        // The engine closes `fd` itself; that close traps again and finds
        // the slot claimed, so it goes straight to the kernel.
        let r = sys::io_uring_close(fd) as i64;
        if low_is_ring {
            bypass_close(low);
        }
        r
    } else {
        // `fd` was replaced behind our back (dup2): the ring is only
        // reachable through its engine fd now.
        if low_is_ring {
            sys::io_uring_close(low);
        }
        bypass_close(fd)
    }
}

/// `close_range(first, last, flags)` meeting the reserved range.
fn close_range(first: u32, last: u32, flags: u32) -> i64 {
    let unshare_or_cloexec = flags & (libc::CLOSE_RANGE_CLOEXEC | libc::CLOSE_RANGE_UNSHARE) != 0;
    if flags & libc::CLOSE_RANGE_UNSHARE != 0 && flags & libc::CLOSE_RANGE_CLOEXEC == 0 {
        // The fds close in a private copy of the fd table the slots cannot
        // follow: look every ring fd up by itself from now on.
        fdtab::distrust();
    }
    if !unshare_or_cloexec && getpid() == OWNER_PID.load(Ordering::Relaxed) {
        for (fd, slot) in fdtab::slots() {
            if (fd as u32) < first || fd as u32 > last || !slot.claim_live() {
                continue;
            }
            close_ring(fd, slot);
            slot.release();
        }
    }
    bypass_close_range(first, last, flags)
}
