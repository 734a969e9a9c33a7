//! The `exec` family, interposed: on Linux `exec` cancels the calling
//! task's io_uring requests (`-ECANCELED`, timeouts included), which a
//! process sharing the ring over `fork` sees in its CQ. The engine's
//! requests live in this process's threads, which `exec` ends without a
//! word, so each interposer first lets the engine cancel and post them
//! ([`ringport_engine::sys::before_exec`]), then calls libc's function. If
//! that returns (the exec failed), the process goes on sharing its rings
//! (the requests stay cancelled: see `docs/INTERCEPTION.md`).
//!
//! Covered: `execve`, `execv`, `execvp`, `execvpe`, `fexecve`, `execveat`,
//! and the variadic `execl`, `execlp`, `execle` (small assembly trampolines
//! gather their arguments, since stable Rust cannot define a variadic
//! function). Not covered: a raw `execve` system call, and the calls glibc
//! makes internally (`posix_spawn`, `system`: their child is a new process
//! with no requests of its own).
//!
//! Safe in a `vfork` child (which shares this memory): the engine does
//! nothing there, and nothing here allocates or takes a lock on that path.

use crate::interpose::next;
use core::ffi::{c_char, c_int};
use std::sync::atomic::AtomicUsize;

type Argv = *const *const c_char;

static NEXT_EXECVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_EXECV: AtomicUsize = AtomicUsize::new(0);
static NEXT_EXECVP: AtomicUsize = AtomicUsize::new(0);
static NEXT_EXECVPE: AtomicUsize = AtomicUsize::new(0);
static NEXT_FEXECVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_EXECVEAT: AtomicUsize = AtomicUsize::new(0);

/// Resolves libc's definitions (at load: `dlsym` must not run first in a
/// `vfork` child).
pub(crate) fn resolve_all() {
    next(&NEXT_EXECVE, c"execve");
    next(&NEXT_EXECV, c"execv");
    next(&NEXT_EXECVP, c"execvp");
    next(&NEXT_EXECVPE, c"execvpe");
    next(&NEXT_FEXECVE, c"fexecve");
    next(&NEXT_EXECVEAT, c"execveat");
}

fn set_errno(e: i32) {
    // SAFETY: __errno_location is always valid.
    unsafe { *libc::__errno_location() = e };
}

/// Runs `real` (libc's exec function) between the engine's hooks.
fn around(real: impl FnOnce() -> c_int) -> c_int {
    ringport_engine::sys::before_exec();
    let r = real();
    // SAFETY: __errno_location is always valid.
    let e = unsafe { *libc::__errno_location() };
    ringport_engine::sys::exec_failed();
    set_errno(e);
    r
}

/// libc's `name` from `cache`, or ENOSYS.
macro_rules! real {
    ($cache:expr, $name:expr, $ty:ty) => {{
        let p = next(&$cache, $name);
        if p == 0 {
            set_errno(libc::ENOSYS);
            return -1;
        }
        // SAFETY: p is libc's definition of this function, of this type.
        unsafe { core::mem::transmute::<usize, $ty>(p) }
    }};
}

/// Interposed `execve(2)`.
///
/// # Safety
/// As `execve(2)`.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let f = real!(NEXT_EXECVE, c"execve", unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(path, argv, envp) })
}

/// Interposed `execv(3)`.
///
/// # Safety
/// As `execv(3)`.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    let f = real!(NEXT_EXECV, c"execv", unsafe extern "C" fn(*const c_char, Argv) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(path, argv) })
}

/// Interposed `execvp(3)`.
///
/// # Safety
/// As `execvp(3)`.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    let f = real!(NEXT_EXECVP, c"execvp", unsafe extern "C" fn(*const c_char, Argv) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(file, argv) })
}

/// Interposed `execvpe(3)`.
///
/// # Safety
/// As `execvpe(3)`.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let f = real!(NEXT_EXECVPE, c"execvpe", unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(file, argv, envp) })
}

/// Interposed `fexecve(3)`.
///
/// # Safety
/// As `fexecve(3)`.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    let f = real!(NEXT_FEXECVE, c"fexecve", unsafe extern "C" fn(c_int, Argv, Argv) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(fd, argv, envp) })
}

/// Interposed `execveat(2)` (glibc's wrapper).
///
/// # Safety
/// As `execveat(2)`.
#[no_mangle]
pub unsafe extern "C" fn execveat(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int {
    let f = real!(NEXT_EXECVEAT, c"execveat", unsafe extern "C" fn(c_int, *const c_char, Argv, Argv, c_int) -> c_int);
    // SAFETY: the caller's arguments, forwarded.
    around(|| unsafe { f(dirfd, path, argv, envp, flags) })
}

const KIND_EXECL: usize = 0;
const KIND_EXECLP: usize = 1;
const KIND_EXECLE: usize = 2;

/// Arguments gathered on the stack up to this many; more go in a mapping.
/// (In a `vfork` child that execs successfully with more arguments than
/// this, the mapping stays in the parent, which shares the memory: one
/// small leak per such call.)
const ON_STACK: usize = 256;

/// The body of `execl`, `execlp` and `execle`: argument `i` (after `path`)
/// is `regs[i]` for `i < nregs`, then `stack[i - nregs]`, as the
/// trampolines lay them out. Builds the NULL-terminated argv (no
/// allocation: on the stack, or in an anonymous mapping when long) and
/// calls the interposed `execv`, `execvp` or `execve`.
///
/// # Safety
/// `regs` and `stack` as the trampolines pass them, for a call following
/// the `execl` family's contract (a NULL-terminated list, then `envp` for
/// `execle`).
unsafe extern "C" fn execl_common(path: *const c_char, regs: Argv, nregs: usize, stack: Argv, kind: usize) -> c_int {
    // SAFETY: the caller's argument list, read up to its NULL (and the
    // envp after it for execle), as the contract guarantees.
    let arg = |i: usize| unsafe { if i < nregs { *regs.add(i) } else { *stack.add(i - nregs) } };
    let mut n = 0;
    while !arg(n).is_null() {
        n += 1;
    }
    let envp = if kind == KIND_EXECLE { arg(n + 1) as Argv } else { core::ptr::null() };
    let mut small = [core::ptr::null::<c_char>(); ON_STACK];
    let bytes = (n + 1) * core::mem::size_of::<*const c_char>();
    let argv: *mut *const c_char = if n < ON_STACK {
        small.as_mut_ptr()
    } else {
        // SAFETY: an anonymous private mapping; checked below.
        let p = unsafe {
            libc::mmap(core::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            set_errno(libc::E2BIG);
            return -1;
        }
        p.cast()
    };
    for i in 0..=n {
        // SAFETY: argv holds n + 1 pointers (the stack array or the mapping).
        unsafe { *argv.add(i) = arg(i) };
    }
    // SAFETY: a NULL-terminated argv built above; path and envp are the
    // caller's.
    let r = unsafe {
        match kind {
            KIND_EXECLP => execvp(path, argv),
            KIND_EXECLE => execve(path, argv, envp),
            _ => execv(path, argv),
        }
    };
    if n >= ON_STACK {
        // SAFETY: unmapping the mapping made above (the exec failed).
        unsafe { libc::munmap(argv.cast(), bytes) };
    }
    r
}

/// A trampoline for one of the variadic `execl` functions: it stores the
/// argument registers after `path` next to each other on the stack and
/// calls [`execl_common`] with where they are and where the arguments
/// passed on the stack begin.
macro_rules! execl_trampoline {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As the libc function of this name.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, arg: *const c_char) -> c_int {
            // rsi, rdx, rcx, r8, r9 hold the first five arguments after
            // path; the rest start above the return address. Five pushes
            // keep the stack 16-byte aligned for the call.
            core::arch::naked_asm!(
                "push r9",
                "push r8",
                "push rcx",
                "push rdx",
                "push rsi",
                "mov rsi, rsp",
                "mov edx, 5",
                "lea rcx, [rsp + 48]",
                "mov r8d, {kind}",
                "call {common}",
                "add rsp, 40",
                "ret",
                kind = const $kind,
                common = sym execl_common,
            )
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// As the libc function of this name.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, arg: *const c_char) -> c_int {
            // x1..x7 hold the first seven arguments after path; the rest
            // start at the caller's sp. The link register is saved with them.
            core::arch::naked_asm!(
                "sub sp, sp, #64",
                "stp x1, x2, [sp]",
                "stp x3, x4, [sp, #16]",
                "stp x5, x6, [sp, #32]",
                "stp x7, x30, [sp, #48]",
                "mov x1, sp",
                "mov x2, #7",
                "add x3, sp, #64",
                "mov x4, #{kind}",
                "bl {common}",
                "ldr x30, [sp, #56]",
                "add sp, sp, #64",
                "ret",
                kind = const $kind,
                common = sym execl_common,
            )
        }
    };
}

execl_trampoline!(
    /// Interposed `execl(3)`.
    execl,
    KIND_EXECL
);
execl_trampoline!(
    /// Interposed `execlp(3)`.
    execlp,
    KIND_EXECLP
);
execl_trampoline!(
    /// Interposed `execle(3)`.
    execle,
    KIND_EXECLE
);
