//! System calls made with the architecture's own instruction, for the hot
//! paths (a read's `preadv2`): no libc wrapper, and no detour through an
//! interposed `syscall()` (the interception library exports one, which the
//! engine inside it would otherwise call for its own system calls; the
//! library uses this too, for the calls it must make past its own filter).

/// System call `nr` with six arguments. Returns the kernel's value:
/// the result, or `-errno`.
///
/// # Safety
/// As the system call.
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn syscall6(nr: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    let r: libc::c_long;
    // SAFETY: the kernel's x86_64 convention (number in rax, arguments in
    // rdi, rsi, rdx, r10, r8, r9; rcx and r11 clobbered); memory effects are
    // the caller's system call's.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => r,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    r
}

/// System call `nr` with six arguments: the result, or `-errno`.
///
/// # Safety
/// As the system call.
#[cfg(target_arch = "aarch64")]
#[inline]
pub unsafe fn syscall6(nr: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    let r: libc::c_long;
    // SAFETY: the kernel's aarch64 convention (number in x8, arguments and
    // result in x0..x5).
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] => r, in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack),
        );
    }
    r
}

/// System call `nr` with six arguments, through libc: the result, or
/// `-errno`.
///
/// # Safety
/// As the system call.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub unsafe fn syscall6(nr: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    // SAFETY: the caller's system call.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as libc::c_long)
    } else {
        r
    }
}
