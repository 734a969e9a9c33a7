//! A ring fd in an epoll set (tokio-uring registers its ring with
//! `AsyncFd`): the same C program passes natively and under `ringport run`.

mod common;
use common::*;

#[test]
fn ring_fd_in_epoll_matches_the_kernel() {
    let exe = build_c("epoll-ring");
    let native = run(&mut std::process::Command::new(&exe), 60);
    if native.status.success() {
        println!("native: ok");
    } else {
        let why = text(&native);
        assert!(why.contains("queue_init"), "the kernel fails this program: {why}");
        println!("SKIPPED native run: the kernel's io_uring is unavailable ({why})");
    }
    let out = run(ringport_run().arg(&exe), 60);
    assert!(out.status.success(), "under ringport: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
