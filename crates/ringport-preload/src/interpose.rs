//! libc functions the library interposes (by symbol, through `LD_PRELOAD`,
//! or at static link time for a Rust program that links this crate): the
//! signal functions, to keep SIGSYS deliverable and the handler in place,
//! and `syscall`, the fast path for io_uring calls made through it.
//!
//! `syscall(2)`: fio's io_uring engine and the `io-uring` crate make their
//! io_uring calls through libc's `syscall()`, not inline instructions.
//! Once interception is active, the interposed `syscall` serves
//! `io_uring_setup`/`enter`/`register`, and `close`/`close_range` of the
//! reserved ring-fd range (exactly what the filter traps), by calling the
//! handler's dispatch directly ([`crate::handler::serve_syscall`]): no
//! seccomp trap, no signal. Every other call, every call before install,
//! and the library's own calls ([`real_syscall`]) go to the next
//! definition (libc's) unchanged.
//!
//! A seccomp trap raised while SIGSYS is blocked, or while its action is
//! the default, kills the process (the kernel forces the default action).
//! So once interception is active:
//! - `pthread_sigmask`/`sigprocmask` never block SIGSYS (it is removed from
//!   the set; a thread that blocks "all signals" then makes io_uring calls
//!   keeps working), and `sigaction` removes it from every handler's
//!   `sa_mask`;
//! - `sigaction`/`signal` for SIGSYS do not replace our handler: the
//!   program's action is recorded and receives every SIGSYS that is not one
//!   of our traps.
//!
//! Before [`ACTIVE`] is set (and in a program that never installs), every
//! function passes straight through to libc.
//!
//! Calls glibc makes internally (not through the PLT), and raw
//! `rt_sigprocmask` system calls, are not seen; see `docs/INTERCEPTION.md`.

use crate::handler::{CHAIN_FLAGS, CHAIN_HANDLER};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Set once interception is installed.
pub static ACTIVE: AtomicBool = AtomicBool::new(false);

type SigactionFn = unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;
type SigmaskFn = unsafe extern "C" fn(libc::c_int, *const libc::sigset_t, *mut libc::sigset_t) -> libc::c_int;
type SignalFn = unsafe extern "C" fn(libc::c_int, libc::sighandler_t) -> libc::sighandler_t;

/// The next definition of `name` after ours (libc's), cached in `cache`.
pub(crate) fn next(cache: &AtomicUsize, name: &core::ffi::CStr) -> usize {
    let p = cache.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: dlsym with RTLD_NEXT and a valid C string.
    let mut p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if p == 0 {
        // libc comes before us in the lookup order (it is itself listed in
        // LD_PRELOAD ahead of us): ask libc directly.
        // SAFETY: RTLD_NOLOAD only returns a handle to an already loaded
        // object; dlsym on it with a valid C string.
        unsafe {
            let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
            if !h.is_null() {
                p = libc::dlsym(h, name.as_ptr()) as usize;
            }
        }
    }
    cache.store(p, Ordering::Relaxed);
    p
}

static NEXT_SIGACTION: AtomicUsize = AtomicUsize::new(0);
static NEXT_PTHREAD_SIGMASK: AtomicUsize = AtomicUsize::new(0);
static NEXT_SIGPROCMASK: AtomicUsize = AtomicUsize::new(0);
static NEXT_SIGNAL: AtomicUsize = AtomicUsize::new(0);
static NEXT_SYSCALL: AtomicUsize = AtomicUsize::new(0);

/// Resolves libc's definitions now (`dlsym` may allocate, so this is done
/// at load and at install, not first in some `vfork` child or signal
/// handler).
pub fn resolve_all() {
    next(&NEXT_SIGACTION, c"sigaction");
    next(&NEXT_PTHREAD_SIGMASK, c"pthread_sigmask");
    next(&NEXT_SIGPROCMASK, c"sigprocmask");
    next(&NEXT_SIGNAL, c"signal");
    next(&NEXT_SYSCALL, c"syscall");
    crate::exec::resolve_all();
}

extern "C" fn resolve_at_load() {
    resolve_all();
}

/// Resolves libc's definitions when the object holding the interposers is
/// loaded (the cdylib) or when the program starts (a Rust program linking
/// this crate), whether or not `install` is ever called: the interposed
/// `syscall` is used from the start, by std's futex calls among others.
#[used]
#[link_section = ".init_array"]
static RESOLVE_AT_LOAD: extern "C" fn() = resolve_at_load;

type SyscallFn = unsafe extern "C" fn(libc::c_long, libc::c_long, libc::c_long, libc::c_long, libc::c_long, libc::c_long, libc::c_long) -> libc::c_long;

/// libc's `syscall`, bypassing our interposer: `-1` and `errno` on error.
/// The library's own system calls go through here.
///
/// # Safety
/// As `syscall(2)` with system call `nr` and these arguments.
pub unsafe fn real_syscall(nr: libc::c_long, a1: libc::c_long, a2: libc::c_long, a3: libc::c_long, a4: libc::c_long, a5: libc::c_long, a6: libc::c_long) -> libc::c_long {
    let p = next(&NEXT_SYSCALL, c"syscall");
    if p == 0 {
        // No libc definition to be found (a static program): make the
        // call ourselves, with the same convention.
        // SAFETY: the caller's system call and arguments.
        let r = unsafe { raw_syscall(nr, [a1, a2, a3, a4, a5, a6]) };
        if (-4095..0).contains(&r) {
            // SAFETY: __errno_location is always valid.
            unsafe { *libc::__errno_location() = -r as i32 };
            return -1;
        }
        return r;
    }
    // libc's `syscall` is variadic, but on x86_64 and aarch64 (Linux)
    // integer variadic arguments travel in the same registers and stack
    // slots as these seven fixed ones, and glibc's implementation reads
    // exactly seven.
    // SAFETY: p is libc's syscall, callable with this signature (above).
    let f: SyscallFn = unsafe { core::mem::transmute(p) };
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(nr, a1, a2, a3, a4, a5, a6) }
}

/// System call `nr` by the architecture's own instruction: the value, or
/// `-errno` (the engine's, shared).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use ringport_engine::rawsys::syscall6 as raw_syscall;

/// No system call instruction for this architecture here: ENOSYS.
///
/// # Safety
/// None.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn raw_syscall(_nr: libc::c_long, _a: [libc::c_long; 6]) -> libc::c_long {
    -(libc::ENOSYS as libc::c_long)
}

/// Interposed `syscall(2)`. Declared with seven `long` parameters: on
/// x86_64 (and aarch64 Linux) a variadic call with integer arguments puts
/// them where a seven-argument function finds them, and a caller that
/// passed fewer leaves unused registers and a stack slot of its own frame,
/// which are read but ignored (libc's own `syscall` reads them the same
/// way).
///
/// While interception is active, the io_uring calls and ring-fd closes
/// the seccomp filter would trap are served directly
/// ([`crate::handler::serve_syscall`]) with libc's convention (`-1` and
/// `errno`); everything else goes to libc's `syscall` unchanged.
///
/// # Safety
/// As `syscall(2)`.
#[no_mangle]
pub unsafe extern "C" fn syscall(nr: libc::c_long, a1: libc::c_long, a2: libc::c_long, a3: libc::c_long, a4: libc::c_long, a5: libc::c_long, a6: libc::c_long) -> libc::c_long {
    if ACTIVE.load(Ordering::Relaxed) && crate::handler::is_served(nr, a1 as u64, a2 as u64) {
        let args = [a1, a2, a3, a4, a5, a6].map(|a| a as u64);
        // SAFETY: the caller's system call, served as the trap would be.
        return unsafe { crate::handler::serve_syscall(nr as u32, args) };
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { real_syscall(nr, a1, a2, a3, a4, a5, a6) }
}

/// libc's `sigaction`, bypassing our interposer.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn real_sigaction(sig: libc::c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> libc::c_int {
    let p = next(&NEXT_SIGACTION, c"sigaction");
    if p == 0 {
        // SAFETY: __errno_location is always valid.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        return -1;
    }
    // SAFETY: p is libc's sigaction, which has this signature.
    let f: SigactionFn = unsafe { core::mem::transmute(p) };
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(sig, act, old) }
}

/// A copy of `set` without SIGSYS, if it contains it and we are active.
///
/// # Safety
/// `set` is null or points to a sigset_t.
unsafe fn without_sigsys(set: *const libc::sigset_t) -> Option<libc::sigset_t> {
    // SAFETY: per the contract.
    if !ACTIVE.load(Ordering::Relaxed) || set.is_null() || unsafe { libc::sigismember(set, libc::SIGSYS) } != 1 {
        return None;
    }
    // SAFETY: set points to a sigset_t (contract); sigdelset on our copy.
    unsafe {
        let mut copy = *set;
        libc::sigdelset(&mut copy, libc::SIGSYS);
        Some(copy)
    }
}

unsafe fn mask_call(cache: &AtomicUsize, name: &core::ffi::CStr, how: libc::c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t, posix_ret: bool) -> libc::c_int {
    // SAFETY: set comes from the program's call.
    let stripped = if how == libc::SIG_UNBLOCK { None } else { unsafe { without_sigsys(set) } };
    let set = stripped.as_ref().map_or(set, |s| s as *const libc::sigset_t);
    let p = next(cache, name);
    if p != 0 {
        // SAFETY: p is libc's function of this signature.
        let f: SigmaskFn = unsafe { core::mem::transmute(p) };
        // SAFETY: forwarding the (possibly stripped) arguments.
        return unsafe { f(how, set, old) };
    }
    // SAFETY: the raw system call with the kernel's 8-byte mask size.
    let r = unsafe { real_syscall(libc::SYS_rt_sigprocmask, how as libc::c_long, set as libc::c_long, old as libc::c_long, 8, 0, 0) };
    match (r, posix_ret) {
        (0, _) => 0,
        // SAFETY: errno of the failed call.
        (_, true) => unsafe { *libc::__errno_location() },
        (_, false) => -1,
    }
}

/// Interposed `pthread_sigmask(3)`: never blocks SIGSYS while active.
///
/// # Safety
/// As `pthread_sigmask(3)`.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(how: libc::c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> libc::c_int {
    // SAFETY: forwarding the caller's arguments.
    unsafe { mask_call(&NEXT_PTHREAD_SIGMASK, c"pthread_sigmask", how, set, old, true) }
}

/// Interposed `sigprocmask(2)`: never blocks SIGSYS while active.
///
/// # Safety
/// As `sigprocmask(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigprocmask(how: libc::c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> libc::c_int {
    // SAFETY: forwarding the caller's arguments.
    unsafe { mask_call(&NEXT_SIGPROCMASK, c"sigprocmask", how, set, old, false) }
}

/// Interposed `sigaction(2)`: while active, a SIGSYS action is recorded as
/// the one non-ringport SIGSYS signals go to, SIGSYS is removed from other
/// handlers' `sa_mask`, and other handlers are wrapped so that they never
/// run inside the engine (`signals.rs`).
///
/// # Safety
/// As `sigaction(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(sig: libc::c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> libc::c_int {
    if !ACTIVE.load(Ordering::Relaxed) {
        // SAFETY: forwarding.
        return unsafe { real_sigaction(sig, act, old) };
    }
    if sig == libc::SIGSYS {
        if !old.is_null() {
            // SAFETY: old points to a sigaction (caller's contract).
            unsafe {
                let mut o: libc::sigaction = core::mem::zeroed();
                o.sa_sigaction = CHAIN_HANDLER.load(Ordering::Acquire);
                o.sa_flags = CHAIN_FLAGS.load(Ordering::Acquire);
                *old = o;
            }
        }
        if !act.is_null() {
            // SAFETY: act points to a sigaction (caller's contract).
            let (h, f) = unsafe { ((*act).sa_sigaction, (*act).sa_flags) };
            CHAIN_FLAGS.store(f, Ordering::Release);
            CHAIN_HANDLER.store(h, Ordering::Release);
        }
        return 0;
    }
    if !act.is_null() {
        // SAFETY: act points to a sigaction (caller's contract).
        let mut a = unsafe { *act };
        // SAFETY: sigdelset on our copy.
        unsafe { libc::sigdelset(&mut a.sa_mask, libc::SIGSYS) };
        // SAFETY: our copy; old is the caller's.
        return unsafe { crate::signals::sigaction(sig, &a, old) };
    }
    // SAFETY: a query, passed on.
    unsafe { crate::signals::sigaction(sig, act, old) }
}

/// Interposed `signal(2)`: as [`sigaction`] (glibc's BSD semantics).
///
/// # Safety
/// As `signal(2)`.
#[no_mangle]
pub unsafe extern "C" fn signal(sig: libc::c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if ACTIVE.load(Ordering::Relaxed) && sig == libc::SIGSYS {
        let old = CHAIN_HANDLER.swap(handler, Ordering::AcqRel);
        CHAIN_FLAGS.store(0, Ordering::Release);
        return old;
    }
    if ACTIVE.load(Ordering::Relaxed) {
        // glibc's signal(): BSD semantics (SA_RESTART, the signal blocked
        // in its handler), through our sigaction so the handler is wrapped.
        // SAFETY: a zeroed sigaction, filled in; sigaction's contract holds.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = handler;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if sig > 0 {
                libc::sigaddset(&mut sa.sa_mask, sig);
            }
            let mut old: libc::sigaction = core::mem::zeroed();
            return if sigaction(sig, &sa, &mut old) == 0 { old.sa_sigaction } else { libc::SIG_ERR };
        }
    }
    let p = next(&NEXT_SIGNAL, c"signal");
    if p == 0 {
        return libc::SIG_ERR;
    }
    // SAFETY: p is libc's signal.
    let f: SignalFn = unsafe { core::mem::transmute(p) };
    // SAFETY: forwarding.
    unsafe { f(sig, handler) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback used when libc's `syscall` cannot be found: the
    /// kernel's value, or `-errno`.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn raw_syscall_returns_value_or_negative_errno() {
        // SAFETY: getpid and a close of an fd that cannot be open.
        unsafe {
            assert_eq!(raw_syscall(libc::SYS_getpid, [0; 6]), libc::getpid() as libc::c_long);
            assert_eq!(raw_syscall(libc::SYS_close, [-1, 0, 0, 0, 0, 0]), -(libc::EBADF as libc::c_long));
        }
    }

    /// Before install, the interposed `syscall` is libc's.
    #[test]
    fn syscall_passes_through_before_install() {
        // SAFETY: getpid, through the interposer.
        let r = unsafe { syscall(libc::SYS_getpid, 0, 0, 0, 0, 0, 0) };
        // SAFETY: getpid cannot fail.
        assert_eq!(r, unsafe { libc::getpid() } as libc::c_long);
        // SAFETY: close of an fd that cannot be open.
        let r = unsafe { syscall(libc::SYS_close, -1, 0, 0, 0, 0, 0) };
        assert_eq!((r, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EBADF)));
    }
}
