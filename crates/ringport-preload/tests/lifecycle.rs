//! Lifecycle edges under interception (docs/INTERCEPTION.md): close,
//! close_range, dup, fork, exec, EINTR, blocked signal masks, and a signal
//! storm against submitting threads. Each case is a mode of
//! `tests/c/lifecycle.c`, run under `ringport run` with a deadline.

mod common;
use common::*;

fn lifecycle(mode: &str, secs: u64) {
    let exe = build_c("lifecycle");
    let out = run(ringport_run().arg(&exe).arg(mode), secs);
    assert!(out.status.success(), "lifecycle {mode}: {}", text(&out));
}

/// [`lifecycle`], and the same mode on the kernel's io_uring first: the
/// expectations are the kernel's. Where the kernel refuses io_uring, the
/// native half says SKIPPED.
fn lifecycle_both(mode: &str, secs: u64) {
    let exe = build_c("lifecycle");
    // SAFETY: io_uring_setup with a zeroed params struct; the fd is closed.
    let fd = unsafe {
        let mut p = [0u8; 120];
        libc::syscall(libc::SYS_io_uring_setup, 1, p.as_mut_ptr())
    };
    if fd < 0 {
        println!("SKIPPED native half of lifecycle {mode}: {}", std::io::Error::last_os_error());
    } else {
        // SAFETY: closing the fd just made.
        unsafe { libc::close(fd as i32) };
        let out = run(std::process::Command::new(&exe).arg(mode).env_remove("LD_PRELOAD"), secs);
        assert!(out.status.success(), "lifecycle {mode} on the kernel: {}", text(&out));
    }
    lifecycle(mode, secs);
}

#[test]
fn raw_close_frees_the_ring() {
    lifecycle("close", 60);
}

#[test]
fn close_range_frees_the_ring() {
    lifecycle("close-range", 60);
}

#[test]
fn dup_of_ring_fd_reaches_the_ring() {
    lifecycle("dup", 30);
}

/// dup2/dup3 onto a ring fd (trapped, or through the interposed
/// syscall()) replace it as on the kernel: the ring is freed, or lives on
/// through a dup, and the ring-fd table follows.
#[test]
fn dup2_over_ring_fd_frees_or_orphans_the_ring() {
    lifecycle("dup2", 30);
}

/// A ring inherited over fork is shared, as on Linux: each process reaps
/// the other's completions and submits its own; a post by one ends the
/// other's wait; a SINGLE_ISSUER ring refuses the child (EEXIST).
#[test]
fn fork_parent_and_child_share_a_ring_single_issuer_refuses_the_child() {
    lifecycle("fork", 30);
}

/// The worker pool's bookkeeping (idle worker count) is copied into a fork
/// child whose worker threads do not exist; the engine's atfork hook resets
/// it, so the child's first punted op (here an fsync) gets a fresh worker
/// and completes.
#[test]

fn fork_child_punted_ops_after_parent_used_workers() {
    lifecycle("fork-punt", 40);
}

/// A cancel reaches requests another process sharing the ring submitted:
/// running in its worker, armed as a poll, or a timeout (CANCEL_ANY).
#[test]
fn fork_child_cancels_the_parents_requests() {
    lifecycle_both("fork-cancel", 30);
}

/// `exec` cancels the exec'ing process's requests (-ECANCELED, timeouts
/// included), through each of execl, execv, execle and execvp, and the
/// image gets its arguments (some passed on the stack) and environment.
#[test]
fn exec_cancels_the_childs_requests_on_a_shared_ring() {
    lifecycle_both("fork-exec", 30);
}

/// POLL_ADD on a ring fd follows that ring's CQ and SQ, not its memfd.
#[test]
fn poll_on_a_ring_fd_waits_for_its_cqes() {
    lifecycle_both("ring-poll", 30);
}

#[test]
fn exec_with_ld_preload_kept_works() {
    lifecycle("exec-keep", 30);
}

#[test]
fn exec_without_the_library_dies_by_sigsys_at_first_io_uring_call() {
    lifecycle("exec-drop", 30);
}

#[test]
fn signal_during_wait_gives_eintr() {
    lifecycle("eintr", 30);
}

#[test]
fn threads_blocking_all_signals_still_trap() {
    lifecycle("sigmask", 30);
}

#[test]
fn threads_submit_and_wait_on_one_ring_at_once() {
    lifecycle("shared", 60);
}

#[test]
fn program_handlers_run_as_installed_and_never_inside_the_engine() {
    lifecycle("handlers", 60);
}

#[test]
fn read_and_write_on_a_ring_fd_fail_with_einval() {
    lifecycle("ring-rw", 30);
}

#[test]
fn signal_storm_against_submitting_threads() {
    lifecycle("storm", 60);
}
