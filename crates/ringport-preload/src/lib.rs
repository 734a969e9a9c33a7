//! The interception library: loaded with `LD_PRELOAD`, it traps the
//! program's io_uring system calls and serves them from the ringport engine.
//!
//! On load (an ELF constructor) it calls [`install`], which
//! 1. installs a SIGSYS handler (`SA_SIGINFO | SA_NODEFER`, every other
//!    signal blocked while it runs);
//! 2. sets `PR_SET_NO_NEW_PRIVS` and adds a seccomp filter returning
//!    `SECCOMP_RET_TRAP` for `io_uring_setup`, `io_uring_enter`,
//!    `io_uring_register`, for `close`/`close_range` of the reserved
//!    ring-fd range, and for `dup2`/`dup3` onto it (see [`fdtab`]).
//!
//! The handler reads the syscall number and arguments from the signal's
//! ucontext, calls `ringport_engine::sys::*`, and writes the result into the
//! return register. This catches liburing's inline `syscall` instructions.
//! TRAP outranks ERRNO, so it works under a container's "io_uring → EPERM"
//! filter, and where the kernel allows io_uring ringport serves the calls
//! anyway.
//!
//! Calls made through libc's `syscall()` (fio, the `io-uring` crate) take a
//! faster path: the library interposes `syscall`, and once installed serves
//! the calls the filter would trap by calling the handler's dispatch
//! directly, with no signal (about a fifth of the trap's cost). Set
//! `RINGPORT_SYSCALL_FASTPATH=0` before install to let them trap instead.
//!
//! A Rust program can serve its own io_uring calls in-process with one line,
//! `ringport::install()` (this crate's [`install`], re-exported by the
//! `ringport` facade), before it makes any. Linking this crate also
//! interposes `syscall`, `pthread_sigmask`, `sigprocmask`, `sigaction` and
//! `signal` in that program: they pass straight through to libc until
//! `install()` succeeds, then serve io_uring calls and keep SIGSYS
//! deliverable (see `interpose.rs`).
//!
//! Behaviour around `fork`, `exec`, signals and threads, and the rule the
//! handler follows in signal context, are in `docs/INTERCEPTION.md`.

#![deny(missing_docs)]

pub mod arch;
#[cfg(target_arch = "x86_64")]
mod enter_stub;
mod exec;
pub mod fdtab;
pub mod filter;
mod handler;
mod interpose;
pub mod rewrite;
mod signals;

use std::sync::atomic::{AtomicU8, Ordering};

/// Why interception could not be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallError {
    /// No interception for this CPU architecture (x86_64 and aarch64 only).
    UnsupportedArch,
    /// A system call failed: which, and its errno.
    Sys(&'static str, i32),
    /// An earlier `install` failed.
    Failed,
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallError::UnsupportedArch => write!(f, "unsupported CPU architecture"),
            InstallError::Sys(what, e) => write!(f, "{what}: {}", std::io::Error::from_raw_os_error(*e)),
            InstallError::Failed => write!(f, "an earlier install failed"),
        }
    }
}

impl std::error::Error for InstallError {}

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
const FAILED: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

/// Serves this process's io_uring system calls from the ringport engine,
/// from now on, in every thread.
///
/// Idempotent: later calls return the first call's outcome. Call it before
/// the program makes io_uring calls (rings created natively before it stay
/// kernel rings, but later calls on them would be trapped and refused).
/// The filter cannot be removed; it is inherited by children and kept
/// across `exec` (see `docs/INTERCEPTION.md`).
pub fn install() -> Result<(), InstallError> {
    loop {
        match STATE.compare_exchange(NOT_INSTALLED, INSTALLING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(INSTALLED) => return Ok(()),
            Err(FAILED) => return Err(InstallError::Failed),
            Err(_) => std::thread::yield_now(),
        }
    }
    let r = install_once();
    STATE.store(if r.is_ok() { INSTALLED } else { FAILED }, Ordering::Release);
    r
}

/// True once [`install`] has succeeded in this process.
pub fn is_installed() -> bool {
    STATE.load(Ordering::Acquire) == INSTALLED
}

/// How many calls this process's SIGSYS handler has served (io_uring calls
/// and ring-fd closes that arrived as seccomp traps). Calls made through
/// libc's `syscall()` are served by the interposer and not counted: for
/// tests and benchmarks, to tell the two paths apart.
pub fn trap_count() -> u64 {
    handler::TRAPPED.load(Ordering::Relaxed)
}

/// [`trap_count`] for C programs run under the preloaded library (look it
/// up with `dlsym(RTLD_DEFAULT, "ringport_preload_trap_count")`).
#[no_mangle]
pub extern "C" fn ringport_preload_trap_count() -> u64 {
    trap_count()
}

fn errno() -> i32 {
    // SAFETY: __errno_location is always valid.
    unsafe { *libc::__errno_location() }
}

fn install_once() -> Result<(), InstallError> {
    if !arch::SUPPORTED {
        return Err(InstallError::UnsupportedArch);
    }
    // SAFETY: getpid cannot fail.
    handler::OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    let (base, end) = fdtab::choose_range();
    fdtab::grow_table(|fd| {
        handler::bypass_close(fd);
    });
    interpose::resolve_all();
    let fast = std::env::var_os("RINGPORT_SYSCALL_FASTPATH").is_none_or(|v| v != "0");
    handler::FAST_PATH.store(fast, Ordering::Relaxed);
    let rewrite = std::env::var_os("RINGPORT_REWRITE").is_none_or(|v| v != "0");
    rewrite::ENABLED.store(rewrite, Ordering::Relaxed);
    #[cfg(target_arch = "x86_64")]
    enter_stub::POISON.store(std::env::var_os("RINGPORT_TEST_CLOBBER").is_some_and(|v| v == "1"), Ordering::Relaxed);

    // 1. The handler, before any call can trap.
    // SAFETY: a zeroed sigaction is a valid starting point; the set calls
    // operate on our local.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = handler::on_sigsys as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESTART;
    // SAFETY: sa_mask is a local sigset_t.
    unsafe {
        libc::sigfillset(&mut sa.sa_mask);
        libc::sigdelset(&mut sa.sa_mask, libc::SIGSYS);
    }
    // SAFETY: zeroed sigaction out-parameter.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: valid sigaction pointers.
    if unsafe { interpose::real_sigaction(libc::SIGSYS, &sa, &mut old) } != 0 {
        return Err(InstallError::Sys("sigaction(SIGSYS)", errno()));
    }
    handler::CHAIN_FLAGS.store(old.sa_flags, Ordering::Release);
    handler::CHAIN_HANDLER.store(old.sa_sigaction, Ordering::Release);

    // 2. The fork hook.
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };

    // 3. Make sure SIGSYS is not blocked in this thread (threads created
    //    from now on inherit that; the interposers keep it so).
    // SAFETY: a local sigset with SIGSYS only.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGSYS);
        interpose::real_syscall(libc::SYS_rt_sigprocmask, libc::SIG_UNBLOCK as libc::c_long, &set as *const libc::sigset_t as libc::c_long, 0, 8, 0, 0);
    }

    // 4. The filter, for every thread if possible.
    let prog = filter::interception_program(base as u32, end as u32);
    let mut r = filter::install_program(&prog, true);
    if r != 0 {
        // TSYNC fails when another thread has a different filter stack.
        r = filter::install_program(&prog, false);
    }
    if r != 0 {
        // SAFETY: restoring the action we replaced.
        unsafe { interpose::real_sigaction(libc::SIGSYS, &old, core::ptr::null_mut()) };
        return Err(InstallError::Sys("seccomp", (-r) as i32));
    }
    ringport_engine::sys::set_sleep_gate(&signals::GATE);
    interpose::ACTIVE.store(true, Ordering::Release);
    signals::wrap_existing();
    Ok(())
}

/// `pthread_atfork` child hook: this process is now the owner of its own
/// (copied) ring table. The rings it inherited are shared with the parent
/// (the engine adopts them on first use).
extern "C" fn after_fork_child() {
    // SAFETY: getpid cannot fail.
    handler::OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    fdtab::grow_table(|fd| {
        handler::bypass_close(fd);
    });
}

/// True when this code is part of a shared object (the cdylib loaded with
/// `LD_PRELOAD`) rather than linked into the main program.
fn in_shared_object() -> bool {
    // SAFETY: dladdr only reads the loader's tables; Dl_info is plain data.
    unsafe {
        let mut me: libc::Dl_info = core::mem::zeroed();
        let mut main: libc::Dl_info = core::mem::zeroed();
        let phdr = libc::getauxval(libc::AT_PHDR) as *const libc::c_void;
        if libc::dladdr(in_shared_object as *const libc::c_void, &mut me) == 0 || libc::dladdr(phdr, &mut main) == 0 {
            return false;
        }
        me.dli_fbase != main.dli_fbase
    }
}

extern "C" fn constructor() {
    if !in_shared_object() {
        // Linked into a program as a Rust library: it calls install() itself.
        return;
    }
    if std::env::var_os("RINGPORT_DISABLE").is_some_and(|v| v == "1") {
        return;
    }
    if let Err(e) = install() {
        let msg = format!("ringport: io_uring interception not installed: {e}\n");
        // SAFETY: writing a local buffer to stderr.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    }
}

/// The ELF constructor: the dynamic loader runs it when the library is
/// loaded, before the program's `main`.
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;
