//! The container scenario: under a seccomp filter that makes the io_uring
//! system calls fail with EPERM (as Docker's default profile does), a
//! liburing program fails natively and passes under `ringport run`.

mod common;
use common::*;
use std::process::Command;

#[test]
fn liburing_program_fails_natively_under_eperm_filter() {
    let (eperm, basic) = (build_c("eperm-exec"), build_c("basic"));
    let out = run(Command::new(&eperm).arg(&basic), 30);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Operation not permitted"), "{}", text(&out));
}

#[test]
fn liburing_program_passes_under_ringport_run_with_eperm_filter() {
    let (eperm, basic) = (build_c("eperm-exec"), build_c("basic"));
    let rr = ringport_run();
    // eperm-exec ringport run -- basic: the filter is installed first, then
    // ringport execs the program with the library preloaded.
    let mut cmd = Command::new(&eperm);
    cmd.arg(rr.get_program()).args(rr.get_args()).envs(rr.get_envs().filter_map(|(k, v)| Some((k, v?)))).arg(&basic);
    let out = run(&mut cmd, 60);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok ring=ringport"), "{}", text(&out));
}

#[test]
fn ringport_serves_even_where_the_kernel_allows_io_uring() {
    let basic = build_c("basic");
    let out = run(ringport_run().arg(&basic), 60);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok ring=ringport"), "{}", text(&out));
}
