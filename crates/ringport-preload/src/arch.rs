//! What differs between architectures: the seccomp audit arch, the numbers
//! of the system calls the filter looks at, and where a trapped system
//! call's number, arguments and result live in the signal's `ucontext`.
//!
//! The io_uring syscall numbers (425, 426, 427) and `close_range` (436) are
//! the same on every architecture Linux added them to after the syscall
//! table unification; `close`, `dup2` and `dup3` are not.

/// `io_uring_setup`.
pub const NR_IO_URING_SETUP: u32 = 425;
/// `io_uring_enter`.
pub const NR_IO_URING_ENTER: u32 = 426;
/// `io_uring_register`.
pub const NR_IO_URING_REGISTER: u32 = 427;
/// `close_range`.
pub const NR_CLOSE_RANGE: u32 = 436;

#[cfg(target_arch = "x86_64")]
mod imp {
    /// `AUDIT_ARCH_X86_64`: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub const AUDIT_ARCH: u32 = 0xC000_003E;
    /// `__NR_close`.
    pub const NR_CLOSE: u32 = 3;
    /// `__NR_read`.
    pub const NR_READ: u32 = 0;
    /// `__NR_write`.
    pub const NR_WRITE: u32 = 1;
    /// `__NR_dup2`.
    pub const NR_DUP2: u32 = 33;
    /// `__NR_dup3`.
    pub const NR_DUP3: u32 = 292;
    /// `__NR_epoll_ctl`.
    pub const NR_EPOLL_CTL: u32 = 233;
    /// True when interception is implemented for this architecture.
    pub const SUPPORTED: bool = true;

    /// The six syscall arguments of the trapped call.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
    pub unsafe fn args(uc: *const libc::ucontext_t) -> [u64; 6] {
        // SAFETY: per the contract, uc points to a live ucontext_t.
        let g = unsafe { &(*uc).uc_mcontext.gregs };
        let r = |i: libc::c_int| g[i as usize] as u64;
        [r(libc::REG_RDI), r(libc::REG_RSI), r(libc::REG_RDX), r(libc::REG_R10), r(libc::REG_R8), r(libc::REG_R9)]
    }

    /// Stores the syscall's return value where the program reads it.
    ///
    /// # Safety
    /// As [`args`]; the handler must not have returned yet.
    pub unsafe fn set_result(uc: *mut libc::ucontext_t, v: i64) {
        // SAFETY: per the contract, uc points to a live, writable ucontext_t.
        unsafe { (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] = v };
    }

    /// Where the program resumes: just past its `syscall` instruction.
    ///
    /// # Safety
    /// As [`args`].
    pub unsafe fn resume_addr(uc: *const libc::ucontext_t) -> u64 {
        // SAFETY: per the contract, uc points to a live ucontext_t.
        unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    /// `AUDIT_ARCH_AARCH64`: EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub const AUDIT_ARCH: u32 = 0xC000_00B7;
    /// `__NR_close` (asm-generic).
    pub const NR_CLOSE: u32 = 57;
    /// `__NR_read` (asm-generic).
    pub const NR_READ: u32 = 63;
    /// `__NR_write` (asm-generic).
    pub const NR_WRITE: u32 = 64;
    /// No `dup2` system call on aarch64 (libc implements it with `dup3`);
    /// a number no call has.
    pub const NR_DUP2: u32 = u32::MAX;
    /// `__NR_dup3` (asm-generic).
    pub const NR_DUP3: u32 = 24;
    /// `__NR_epoll_ctl` (asm-generic).
    pub const NR_EPOLL_CTL: u32 = 21;
    /// True when interception is implemented for this architecture.
    pub const SUPPORTED: bool = true;

    /// The six syscall arguments of the trapped call (x0..x5).
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
    pub unsafe fn args(uc: *const libc::ucontext_t) -> [u64; 6] {
        // SAFETY: per the contract, uc points to a live ucontext_t.
        let r = unsafe { &(*uc).uc_mcontext.regs };
        [r[0], r[1], r[2], r[3], r[4], r[5]]
    }

    /// Stores the syscall's return value in x0.
    ///
    /// # Safety
    /// As [`args`]; the handler must not have returned yet.
    pub unsafe fn set_result(uc: *mut libc::ucontext_t, v: i64) {
        // SAFETY: per the contract, uc points to a live, writable ucontext_t.
        unsafe { (*uc).uc_mcontext.regs[0] = v as u64 };
    }

    /// Where the program resumes: just past its `svc` instruction.
    ///
    /// # Safety
    /// As [`args`].
    pub unsafe fn resume_addr(uc: *const libc::ucontext_t) -> u64 {
        // SAFETY: per the contract, uc points to a live ucontext_t.
        unsafe { (*uc).uc_mcontext.pc }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    /// No audit arch: interception is not implemented here.
    pub const AUDIT_ARCH: u32 = 0;
    /// No close number either.
    pub const NR_CLOSE: u32 = u32::MAX;
    /// Nor read.
    pub const NR_READ: u32 = u32::MAX;
    /// Nor write.
    pub const NR_WRITE: u32 = u32::MAX;
    /// Nor dup2.
    pub const NR_DUP2: u32 = u32::MAX;
    /// Nor dup3.
    pub const NR_DUP3: u32 = u32::MAX;
    /// Nor epoll_ctl.
    pub const NR_EPOLL_CTL: u32 = u32::MAX;
    /// True when interception is implemented for this architecture.
    pub const SUPPORTED: bool = false;

    /// Unreachable: `install` refuses to run on this architecture.
    ///
    /// # Safety
    /// Never called.
    pub unsafe fn args(_uc: *const libc::ucontext_t) -> [u64; 6] {
        [0; 6]
    }

    /// Unreachable: `install` refuses to run on this architecture.
    ///
    /// # Safety
    /// Never called.
    pub unsafe fn set_result(_uc: *mut libc::ucontext_t, _v: i64) {}

    /// Unreachable, as [`set_result`].
    ///
    /// # Safety
    /// None.
    pub unsafe fn resume_addr(_uc: *const libc::ucontext_t) -> u64 {
        0
    }
}

pub use imp::*;

/// The first word of the signal mask saved in the `ucontext` (the kernel's
/// 64-signal mask; glibc's `sigset_t` is larger but starts with it).
///
/// # Safety
/// As [`args`].
pub unsafe fn saved_sigmask(uc: *const libc::ucontext_t) -> u64 {
    // SAFETY: uc_sigmask is at least 8 bytes and suitably aligned for u64
    // (sigset_t is an array of unsigned long).
    unsafe { core::ptr::read(core::ptr::addr_of!((*uc).uc_sigmask) as *const u64) }
}
