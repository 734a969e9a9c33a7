//! `ringport_preload::install()` in a Rust program: after a Docker-like
//! "io_uring → EPERM" filter, the `io-uring` crate fails; after install(),
//! the same code works, served in-process by ringport.

use io_uring::{opcode, types, IoUring};
use std::os::fd::AsRawFd;

fn ring_kind(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).map(|p| p.display().to_string()).unwrap_or_default()
}

fn ring_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|l| l.contains("memfd:[io_uring]")).count()
}

#[test]
fn install_serves_the_io_uring_crate_under_an_eperm_filter() {
    // 1. A container: io_uring is refused.
    let deny = ringport_preload::filter::deny_io_uring_program(libc::EPERM as u16);
    assert_eq!(ringport_preload::filter::install_program(&deny, true), 0);
    let err = IoUring::new(8).err().expect("io_uring should be blocked");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));

    // 2. One line.
    ringport_preload::install().expect("install");
    assert!(ringport_preload::is_installed());
    ringport_preload::install().expect("install is idempotent");

    // 3. The same code works now.
    let mut ring = IoUring::new(8).expect("IoUring::new after install");
    assert!(ring_kind(ring.as_raw_fd()).contains("memfd:[io_uring]"), "{}", ring_kind(ring.as_raw_fd()));
    let path = std::env::temp_dir().join(format!("ringport-install-{}", std::process::id()));
    std::fs::write(&path, b"hello, ringport").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut buf = vec![0u8; 64];
    let nop = opcode::Nop::new().build().user_data(1);
    let read = opcode::Read::new(types::Fd(file.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build().user_data(2);
    // SAFETY: buf outlives the submission, which completes below.
    unsafe {
        ring.submission().push(&nop).unwrap();
        ring.submission().push(&read).unwrap();
    }
    ring.submit_and_wait(2).unwrap();
    let mut got: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
    got.sort();
    assert_eq!(got, vec![(1, 0), (2, 15)]);
    assert_eq!(&buf[..15], b"hello, ringport");

    // The io-uring crate calls libc's syscall(), which this crate
    // interposes in the test binary: setup, enter and register were served
    // without a single seccomp trap.
    assert_eq!(ringport_preload::trap_count(), 0, "io-uring crate calls trapped");
    // SAFETY: io_uring_enter on an fd that is not open: no memory involved.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_enter, -1, 0, 0, 0, 0usize, 0usize) };
    assert_eq!((r, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EBADF)));

    // 4. Several threads at once, each with its own ring.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut ring = IoUring::new(4).unwrap();
                for i in 0..1000u64 {
                    let e = opcode::Nop::new().build().user_data(t * 10_000 + i);
                    // SAFETY: a NOP references no memory.
                    unsafe { ring.submission().push(&e).unwrap() };
                    ring.submit_and_wait(1).unwrap();
                    let c = ring.completion().next().unwrap();
                    assert_eq!(c.user_data(), t * 10_000 + i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    // 5. Dropping the ring closes its fd, which frees it in the engine.
    drop(ring);
    assert_eq!(ring_mappings(), 0);
}
