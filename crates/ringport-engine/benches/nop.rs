//! NOP round trips: ringport's Rust API against the kernel's io_uring.
//!
//! One iteration pushes `batch` NOPs, calls `submit_and_wait(batch)` and
//! reaps `batch` completions, checking each result is 0. Run with
//! `cargo bench -p ringport-engine --bench nop`; compare the two backends of the
//! same batch size (the ratio is what matters on a shared machine).
//! Where the kernel's io_uring is unavailable its benchmarks are skipped
//! with a message.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// Batch sizes measured.
const BATCHES: [u32; 2] = [1, 32];

/// One round on ringport: push, submit and wait, reap.
fn round_ringport(ring: &mut ringport_engine::Ring, batch: u32) {
    {
        let mut sq = ring.submission();
        for i in 0..batch {
            let e = ringport_engine::opcode::Nop::new().build().user_data(i as u64);
            // SAFETY: a NOP points at no memory.
            unsafe { sq.push(&e).expect("SQ full") };
        }
    }
    ring.submit_and_wait(batch as usize).expect("submit_and_wait");
    let mut n = 0;
    for c in ring.completion() {
        assert_eq!(c.result(), 0);
        n += 1;
    }
    assert_eq!(n, batch);
    black_box(n);
}

/// One round on the kernel's io_uring, the same way.
fn round_kernel(ring: &mut io_uring::IoUring, batch: u32) {
    {
        let mut sq = ring.submission();
        for i in 0..batch {
            let e = io_uring::opcode::Nop::new().build().user_data(i as u64);
            // SAFETY: a NOP points at no memory.
            unsafe { sq.push(&e).expect("SQ full") };
        }
    }
    ring.submit_and_wait(batch as usize).expect("submit_and_wait");
    let mut n = 0;
    for c in ring.completion() {
        assert_eq!(c.result(), 0);
        n += 1;
    }
    assert_eq!(n, batch);
    black_box(n);
}

fn nop(c: &mut Criterion) {
    for batch in BATCHES {
        let mut g = c.benchmark_group(format!("nop/batch{batch}"));
        g.throughput(Throughput::Elements(batch as u64));
        let mut rp = ringport_engine::Ring::new(batch.max(2)).expect("ringport ring");
        g.bench_function(BenchmarkId::from_parameter("ringport"), |b| b.iter(|| round_ringport(&mut rp, batch)));
        match io_uring::IoUring::new(batch.max(2)) {
            Ok(mut k) => {
                g.bench_function(BenchmarkId::from_parameter("kernel"), |b| b.iter(|| round_kernel(&mut k, batch)));
            }
            Err(e) => eprintln!("nop/batch{batch}/kernel: skipped, the kernel's io_uring is unavailable ({e})"),
        }
        g.finish();
    }
}

criterion_group!(benches, nop);
criterion_main!(benches);
