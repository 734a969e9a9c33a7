//! SQPOLL: SQEs taken without enter, the idle flag and wakeup, and setup
//! errors compared with the kernel's.

use ringport_engine::{opcode, Ring};
use std::time::{Duration, Instant};

fn reap_without_enter(ring: &mut Ring, n: usize, limit: Duration) -> Vec<u64> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    while got.len() < n && Instant::now() < deadline {
        got.extend(ring.completion().map(|c| c.user_data()));
        std::thread::yield_now();
    }
    got
}

#[test]
fn poller_takes_sqes_without_enter() {
    let mut ring = Ring::builder().setup_sqpoll(200).build(16).unwrap();
    {
        let mut sq = ring.submission();
        for i in 0..8u64 {
            // SAFETY: a NOP points at no memory.
            unsafe { sq.push(&opcode::Nop::new().build().user_data(i)).unwrap() };
        }
    } // dropping the view publishes the tail; no enter is made.
    let mut got = reap_without_enter(&mut ring, 8, Duration::from_secs(5));
    got.sort();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
}

#[test]
fn idle_poller_sleeps_and_is_woken() {
    let mut ring = Ring::builder().setup_sqpoll(5).build(8).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ring.submission().need_wakeup() {
        assert!(Instant::now() < deadline, "the poller never set NEED_WAKEUP");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: a NOP points at no memory.
    unsafe { ring.submission().push(&opcode::Nop::new().build().user_data(42)).unwrap() };
    // submit() sees NEED_WAKEUP and wakes the poller; then wait for the CQE.
    ring.submit_and_wait(1).unwrap();
    assert_eq!(ring.completion().next().map(|c| c.user_data()), Some(42));
}

#[test]
fn attached_rings_share_a_poller() {
    use std::os::fd::AsRawFd;
    let a = Ring::builder().setup_sqpoll(100).build(8).unwrap();
    let mut b = Ring::builder().setup_sqpoll(100).setup_attach_wq(a.as_raw_fd()).build(8).unwrap();
    // SAFETY: a NOP points at no memory.
    unsafe { b.submission().push(&opcode::Nop::new().build().user_data(7)).unwrap() };
    b.submit_and_wait(1).unwrap();
    assert_eq!(b.completion().next().map(|c| c.user_data()), Some(7));
}

/// Setup errors, compared with the kernel's for the same parameters.
#[test]
fn setup_errors_match_kernel() {
    if io_uring::IoUring::new(2).is_err() {
        println!("SKIPPED setup_errors_match_kernel: the kernel's io_uring is unavailable");
        return;
    }
    let code = |r: std::io::Result<()>| r.err().and_then(|e| e.raw_os_error());
    let null = std::fs::File::open("/dev/null").unwrap();
    let nfd = null.as_raw_fd_checked();
    let plain_k = io_uring::IoUring::new(2).unwrap();
    let plain_r = Ring::new(2).unwrap();
    use std::os::fd::AsRawFd;
    let cases: Vec<(&str, Option<i32>, Option<i32>)> = vec![
        (
            "SQ_AFF cpu 4096",
            code(io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(10).setup_sqpoll_cpu(4096).build(8).map(|_| ())),
            code(Ring::builder().setup_sqpoll(10).setup_sqpoll_cpu(4096).build(8).map(|_| ())),
        ),
        (
            "ATTACH_WQ to /dev/null",
            code(io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(10).setup_attach_wq(nfd).build(8).map(|_| ())),
            code(Ring::builder().setup_sqpoll(10).setup_attach_wq(nfd).build(8).map(|_| ())),
        ),
        (
            "ATTACH_WQ to a closed fd",
            code(io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(10).setup_attach_wq(9999).build(8).map(|_| ())),
            code(Ring::builder().setup_sqpoll(10).setup_attach_wq(9999).build(8).map(|_| ())),
        ),
        (
            "SQPOLL attached to a ring without a poller",
            code(io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(10).setup_attach_wq(plain_k.as_raw_fd()).build(8).map(|_| ())),
            code(Ring::builder().setup_sqpoll(10).setup_attach_wq(plain_r.as_raw_fd()).build(8).map(|_| ())),
        ),
        (
            "SQPOLL with COOP_TASKRUN",
            code(io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(10).setup_coop_taskrun().build(8).map(|_| ())),
            code(Ring::builder().setup_sqpoll(10).setup_coop_taskrun().build(8).map(|_| ())),
        ),
    ];
    for (what, k, r) in cases {
        println!("{what}: kernel {k:?} ringport {r:?}");
        assert_eq!(r, k, "{what}");
    }
}

trait RawFdChecked {
    fn as_raw_fd_checked(&self) -> i32;
}

impl RawFdChecked for std::fs::File {
    fn as_raw_fd_checked(&self) -> i32 {
        use std::os::fd::AsRawFd;
        let fd = self.as_raw_fd();
        assert!(fd >= 0);
        fd
    }
}
