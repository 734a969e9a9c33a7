//! TIMEOUT and TIMEOUT_REMOVE, differential: each scenario is written once
//! and expanded for the kernel (through the `io-uring` crate) and for
//! ringport (whose API has the same shape); the CQE streams must match.

use std::time::{Duration, Instant};

#[macro_use]
mod scenario;
use scenario::Cqes;

scenario!(pure_timeout_expires, |ring, c| {
    let ts = c::types::Timespec::new().nsec(5_000_000);
    push!(ring, c::opcode::Timeout::new(&ts).build().user_data(1));
    reap!(ring, 1)
});

scenario!(count_timeout_satisfied_by_completions, |ring, c| {
    let ts = c::types::Timespec::new().sec(5);
    push!(
        ring,
        c::opcode::Timeout::new(&ts).count(2).build().user_data(1),
        c::opcode::Nop::new().build().user_data(2),
        c::opcode::Nop::new().build().user_data(3),
    );
    reap!(ring, 3)
});

scenario!(remove_and_missing_remove, |ring, c| {
    let ts = c::types::Timespec::new().sec(5);
    push!(ring, c::opcode::Timeout::new(&ts).build().user_data(1));
    ring.submit().unwrap();
    push!(
        ring,
        c::opcode::TimeoutRemove::new(1).build().user_data(2),
        c::opcode::TimeoutRemove::new(99).build().user_data(3),
    );
    reap!(ring, 3)
});

scenario!(update_shortens_a_timeout, |ring, c| {
    let long = c::types::Timespec::new().sec(5);
    let short = c::types::Timespec::new().nsec(2_000_000);
    push!(ring, c::opcode::Timeout::new(&long).build().user_data(1));
    ring.submit().unwrap();
    push!(ring, c::opcode::TimeoutUpdate::new(1, &short).build().user_data(2));
    reap!(ring, 2)
});

scenario!(multishot_fires_count_times, |ring, c| {
    let ts = c::types::Timespec::new().nsec(3_000_000);
    let f = c::types::TimeoutFlags::MULTISHOT;
    push!(ring, c::opcode::Timeout::new(&ts).count(3).flags(f).build().user_data(1));
    reap!(ring, 3)
});

scenario!(expiry_cancels_link_unless_etime_success, |ring, c| {
    let ts = c::types::Timespec::new().nsec(2_000_000);
    let link = c::squeue::Flags::IO_LINK;
    push!(
        ring,
        c::opcode::Timeout::new(&ts).build().user_data(1).flags(link),
        c::opcode::Nop::new().build().user_data(2),
    );
    let mut got = reap!(ring, 2);
    let ok = c::types::TimeoutFlags::ETIME_SUCCESS;
    push!(
        ring,
        c::opcode::Timeout::new(&ts).flags(ok).build().user_data(3).flags(link),
        c::opcode::Nop::new().build().user_data(4),
    );
    got.extend(reap!(ring, 2));
    got
});

scenario!(prep_errors, |ring, c| {
    let ts = c::types::Timespec::new().nsec(1);
    let bad_ns = c::types::Timespec::new().sec(0).nsec(u32::MAX);
    let multi_abs = c::types::TimeoutFlags::MULTISHOT | c::types::TimeoutFlags::ABS;
    let clocks = c::types::TimeoutFlags::BOOTTIME | c::types::TimeoutFlags::REALTIME;
    push!(ring, c::opcode::Timeout::new(&ts).flags(multi_abs).build().user_data(1));
    ring.submit().unwrap();
    push!(ring, c::opcode::Timeout::new(&ts).flags(clocks).build().user_data(2));
    ring.submit().unwrap();
    // tv_nsec of u32::MAX is a positive i64: accepted (the kernel only
    // rejects negative fields), it fires after ~4.3 s... so remove it.
    push!(ring, c::opcode::Timeout::new(&bad_ns).build().user_data(3));
    ring.submit().unwrap();
    push!(ring, c::opcode::TimeoutRemove::new(3).build().user_data(4));
    reap!(ring, 4)
});

/// A timeout that fires ends a wait for more CQEs than there are.
#[test]
fn expiry_wakes_a_larger_wait() {
    fn run<R>(wait: impl Fn(&mut R) -> std::io::Result<usize>, ring: &mut R) -> Duration {
        let t = Instant::now();
        let _ = wait(ring);
        t.elapsed()
    }
    let ts_k = io_uring::types::Timespec::new().nsec(5_000_000);
    let Ok(mut k) = io_uring::IoUring::new(8) else {
        println!("SKIPPED expiry_wakes_a_larger_wait: the kernel's io_uring is unavailable");
        return;
    };
    // SAFETY: ts_k outlives the CQE.
    unsafe { k.submission().push(&io_uring::opcode::Timeout::new(&ts_k).build()).unwrap() };
    let kt = run(|r: &mut io_uring::IoUring| r.submit_and_wait(4), &mut k);
    let ts_r = ringport_engine::types::Timespec::new().nsec(5_000_000);
    let mut r = ringport_engine::Ring::new(8).unwrap();
    // SAFETY: ts_r outlives the CQE.
    unsafe { r.submission().push(&ringport_engine::opcode::Timeout::new(&ts_r).build()).unwrap() };
    let rt = run(|r: &mut ringport_engine::Ring| r.submit_and_wait(4), &mut r);
    assert!(kt < Duration::from_secs(2), "kernel returned after {kt:?}");
    assert!(rt < Duration::from_secs(2), "ringport returned after {rt:?}");
    assert_eq!(r.completion().count(), 1);
}
