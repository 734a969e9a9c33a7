//! The seccomp filter: a classic BPF program that returns
//! `SECCOMP_RET_TRAP` for the io_uring system calls, for `close` /
//! `close_range` reaching into the reserved ring-fd range, for `dup2` /
//! `dup3` onto it, for `epoll_ctl`, `read` and `write` on an fd in it, and
//! `SECCOMP_RET_ALLOW` for everything else.
//!
//! Seccomp runs every installed filter and takes the most restrictive
//! action in a fixed order (KILL > TRAP > ERRNO > USER_NOTIF > TRACE > LOG >
//! ALLOW), so adding this filter over a container's "io_uring → EPERM"
//! filter makes those calls trap to us.
//!
//! The library's own `close` (and `dup2`/`dup3`) calls must not trap
//! again: they carry [`BYPASS`] in the upper half of the first argument,
//! which the kernel ignores (`close`, `close_range`, `dup2` and `dup3` take
//! `unsigned int`) and the filter lets through. This marker is the same in every generation of the
//! library, so filters stacked by an `exec`ed program that loads the library
//! again let each other's bypass calls through as well.

use crate::arch;

/// Marker placed in the upper 32 bits of `close`'s first argument by the
/// library's own calls (see the module docs).
pub const BYPASS: u32 = ringport_engine::sys::CLOSE_BYPASS; // "RPOR"

/// `SECCOMP_RET_DATA` of our traps: arrives as `si_errno` in the SIGSYS
/// siginfo, which is how the handler tells our traps from anyone else's.
pub const TRAP_DATA: u32 = 0x5250; // "RP"

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
const SECCOMP_FILTER_FLAG_TSYNC: libc::c_long = 1;

// BPF opcodes (linux/bpf_common.h): class | size/op | mode/source.
const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;
const BPF_LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
const BPF_JMP_JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
const BPF_JMP_JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
const BPF_RET_K: u16 = BPF_RET | BPF_K;

// Offsets in struct seccomp_data (little-endian halves of the u64 args).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

/// A jump target in the tiny assembler below.
#[derive(Clone, Copy)]
enum T {
    Next,
    L(&'static str),
}

enum Ins {
    Ld(u32),
    Jeq(u32, T, T),
    Jge(u32, T, T),
    Ret(u32),
    Label(&'static str),
}

/// Resolves labels into relative jumps. Panics only on a malformed program,
/// which is a bug here, not a runtime condition.
fn assemble(prog: &[Ins]) -> Vec<libc::sock_filter> {
    let mut pos = std::collections::HashMap::new();
    let mut n = 0usize;
    for i in prog {
        match i {
            Ins::Label(l) => {
                pos.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    let jump = |t: T, at: usize| -> u8 {
        match t {
            T::Next => 0,
            T::L(l) => {
                let d = pos[l] - at - 1;
                u8::try_from(d).expect("BPF jump too far")
            }
        }
    };
    for i in prog {
        let at = out.len();
        let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        match *i {
            Ins::Label(_) => continue,
            Ins::Ld(off) => out.push(f(BPF_LD_W_ABS, 0, 0, off)),
            Ins::Jeq(k, t, e) => out.push(f(BPF_JMP_JEQ_K, jump(t, at), jump(e, at), k)),
            Ins::Jge(k, t, e) => out.push(f(BPF_JMP_JGE_K, jump(t, at), jump(e, at), k)),
            Ins::Ret(k) => out.push(f(BPF_RET_K, 0, 0, k)),
        }
    }
    out
}

/// The interception filter. Calls for other architectures (i386 via
/// `int 0x80`, x32) pass; the `[base, end)` range is the reserved ring-fd
/// range (empty: never trap `close`).
pub fn interception_program(base: u32, end: u32) -> Vec<libc::sock_filter> {
    use Ins::*;
    let trap = SECCOMP_RET_TRAP | TRAP_DATA;
    let mut p = vec![
        Ld(OFF_ARCH),
        Jeq(arch::AUDIT_ARCH, T::Next, T::L("allow")),
        Ld(OFF_NR),
        Jeq(arch::NR_IO_URING_SETUP, T::L("trap"), T::Next),
        Jeq(arch::NR_IO_URING_ENTER, T::L("trap"), T::Next),
        Jeq(arch::NR_IO_URING_REGISTER, T::L("trap"), T::Next),
    ];
    if base < end {
        p.extend([
            Jeq(arch::NR_READ, T::L("fd0"), T::Next),
            Jeq(arch::NR_WRITE, T::L("fd0"), T::Next),
            Jeq(arch::NR_CLOSE, T::L("fd0"), T::Next),
            Jeq(arch::NR_CLOSE_RANGE, T::L("close_range"), T::Next),
            Jeq(arch::NR_DUP2, T::L("dup"), T::Next),
            Jeq(arch::NR_DUP3, T::L("dup"), T::Next),
            Jeq(arch::NR_EPOLL_CTL, T::L("epoll"), T::Next),
            Ret(SECCOMP_RET_ALLOW),
            // close/read/write(fd, ...): trap when base <= fd < end, unless
            // it is our own (the kernel takes an unsigned int fd).
            Label("fd0"),
            Ld(off_arg_hi(0)),
            Jeq(BYPASS, T::L("allow"), T::Next),
            Ld(off_arg_lo(0)),
            Jge(base, T::Next, T::L("allow")),
            Jge(end, T::L("allow"), T::L("trap")),
            // close_range(first, last, flags): trap when [first, last]
            // meets [base, end).
            Label("close_range"),
            Ld(off_arg_hi(0)),
            Jeq(BYPASS, T::L("allow"), T::Next),
            Ld(off_arg_lo(0)),
            Jge(end, T::L("allow"), T::Next),
            Ld(off_arg_lo(1)),
            Jge(base, T::L("trap"), T::L("allow")),
            // dup2/dup3(old, new, ...): trap when base <= new < end, unless
            // it is our own.
            Label("dup"),
            Ld(off_arg_hi(0)),
            Jeq(BYPASS, T::L("allow"), T::Next),
            Ld(off_arg_lo(1)),
            Jge(base, T::Next, T::L("allow")),
            Jge(end, T::L("allow"), T::L("trap")),
            // epoll_ctl(epfd, op, fd, event): trap when base <= fd < end
            // (the ring fd is a memfd; its stand-in is an eventfd).
            Label("epoll"),
            Ld(off_arg_lo(2)),
            Jge(base, T::Next, T::L("allow")),
            Jge(end, T::L("allow"), T::L("trap")),
        ]);
    }
    p.extend([Label("allow"), Ret(SECCOMP_RET_ALLOW), Label("trap"), Ret(trap)]);
    assemble(&p)
}

/// A filter that makes the io_uring system calls fail with `errno`, as
/// Docker's default seccomp profile does (EPERM). For tests and for
/// reproducing a container on a machine that allows io_uring.
pub fn deny_io_uring_program(errno: u16) -> Vec<libc::sock_filter> {
    use Ins::*;
    let deny = SECCOMP_RET_ERRNO | errno as u32;
    assemble(&[
        Ld(OFF_ARCH),
        Jeq(arch::AUDIT_ARCH, T::Next, T::L("allow")),
        Ld(OFF_NR),
        Jeq(arch::NR_IO_URING_SETUP, T::L("deny"), T::Next),
        Jeq(arch::NR_IO_URING_ENTER, T::L("deny"), T::Next),
        Jeq(arch::NR_IO_URING_REGISTER, T::L("deny"), T::Next),
        Label("allow"),
        Ret(SECCOMP_RET_ALLOW),
        Label("deny"),
        Ret(deny),
    ])
}

/// Installs `prog` for the calling thread, and for every thread of the
/// process when `all_threads` (SECCOMP_FILTER_FLAG_TSYNC). Sets
/// `PR_SET_NO_NEW_PRIVS` first, as an unprivileged seccomp filter requires.
/// Returns 0 or `-errno` (a positive return is the id of a thread TSYNC
/// could not synchronise).
///
/// Async-signal-safe (only `prctl` and `seccomp`), so it may run between
/// `fork` and `exec`.
pub fn install_program(prog: &[libc::sock_filter], all_threads: bool) -> i64 {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return -(errno() as i64);
    }
    let flags = if all_threads { SECCOMP_FILTER_FLAG_TSYNC } else { 0 };
    // SAFETY: fprog points to `prog`, which outlives the call; the kernel
    // copies the program.
    let r = unsafe {
        crate::interpose::real_syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog as *const libc::sock_fprog as libc::c_long, 0, 0, 0)
    };
    if r < 0 {
        -(errno() as i64)
    } else {
        r as i64
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location always returns the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_forward() {
        let p = interception_program(1000, 2000);
        assert!(p.len() < 48);
        // The last two instructions are the two returns.
        assert_eq!(p[p.len() - 2].k, SECCOMP_RET_ALLOW);
        assert_eq!(p[p.len() - 1].k, SECCOMP_RET_TRAP | TRAP_DATA);
        let p = interception_program(0, 0);
        assert_eq!(p.len(), 8);
    }
}
