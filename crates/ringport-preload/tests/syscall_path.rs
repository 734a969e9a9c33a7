//! The interposed `syscall()` fast path: io_uring calls made through libc's
//! `syscall()` are served without a seccomp trap, with libc's convention,
//! while inline `syscall` instructions keep trapping.

mod common;
use common::*;

/// A C program under `ringport run`: setup, enter and register through
/// `syscall()` take no trap (the library's trap counter stays put), errors
/// come back as -1 and errno, liburing's inline instructions on the same
/// ring still trap (call-site rewriting off: it would turn them into stub
/// calls after their first trap, see `tests/rewrite.rs`), and a ring closed
/// through `syscall(SYS_close)` is freed.
#[test]
fn syscall_calls_take_no_trap_and_inline_ones_still_do() {
    let exe = build_c("syscall-path");
    let out = run(ringport_run().env("RINGPORT_REWRITE", "0").arg(&exe), 60);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok traps_syscall 0 "), "{}", text(&out));
}

/// With `RINGPORT_SYSCALL_FASTPATH=0` the same calls trap instead, and are
/// served just the same (the program checks it sees traps, so it fails).
#[test]
fn fast_path_can_be_switched_off() {
    let exe = build_c("syscall-path");
    let out = run(ringport_run().env("RINGPORT_SYSCALL_FASTPATH", "0").env("RINGPORT_REWRITE", "0").arg(&exe), 60);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("calls through syscall() trapped"), "{}", text(&out));
}
