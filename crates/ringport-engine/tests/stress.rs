//! Stress: threads submitting a random mix of ops, links, timeouts, polls
//! and cancels for a bounded time. Every SQE must get exactly one final CQE
//! (a multishot request: CQEs with F_MORE, then exactly one without), no fd
//! may leak, no heap memory may leak, nothing may hang, and the thread count
//! stays bounded.

use ringport_engine::{cqueue, opcode, squeue::Flags, types, Ring};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The global allocator, counting the bytes in use (to catch leaks).
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only bookkeeping.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { std::alloc::System.alloc(l) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let q = unsafe { std::alloc::System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE_BYTES.fetch_add(new as isize - l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// xorshift64*: a small deterministic PRNG (seeded per thread).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn fd_list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| format!("{} -> {}", e.file_name().to_string_lossy(), std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// What a user_data still owes: CQEs outstanding, and whether the request
/// is multishot (its final CQE is the one without F_MORE).
#[derive(Default)]
struct Ledger {
    open: HashMap<u64, bool>,
    finals: u64,
}

impl Ledger {
    fn expect(&mut self, ud: u64, multishot: bool) {
        assert!(self.open.insert(ud, multishot).is_none(), "user_data {ud} reused");
    }
    fn seen(&mut self, c: &cqueue::Entry) {
        let ud = c.user_data();
        let Some(&multishot) = self.open.get(&ud) else {
            panic!("CQE for unknown or already finished user_data {ud} (res {})", c.result());
        };
        if multishot && cqueue::more(c.flags()) {
            return;
        }
        assert!(!cqueue::more(c.flags()), "F_MORE on a single-shot request {ud}");
        self.open.remove(&ud);
        self.finals += 1;
    }
}

struct Pipe {
    r: i32,
    w: i32,
}

impl Pipe {
    fn new() -> Pipe {
        let mut p = [0i32; 2];
        // SAFETY: p is a valid 2-int array.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }, 0);
        Pipe { r: p[0], w: p[1] }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: closing our own fds.
        unsafe {
            libc::close(self.r);
            libc::close(self.w);
        }
    }
}

fn worker(seed: u64, budget: Duration) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut ring = Ring::builder().setup_cqsize(64).build(32).unwrap();
    let mut ledger = Ledger::default();
    let pipe = Pipe::new();
    let ts_short = types::Timespec::new().nsec(200_000);
    let ts_long = types::Timespec::new().sec(30);
    let mut bufs = vec![[0u8; 8]; 4096];
    let mut next_ud = 1u64;
    let mut armed: Vec<u64> = Vec::new(); // long-lived things to cancel later
    let start = Instant::now();
    while start.elapsed() < budget {
        let free = 32 - ring.submission().len();
        let n = (rng.below(8) + 1).min(free as u64);
        for _ in 0..n {
            let ud = next_ud;
            next_ud += 1;
            let buf = bufs[(ud % 4096) as usize].as_mut_ptr();
            let (e, multishot) = match rng.below(10) {
                0 => (opcode::Nop::new().build(), false),
                1 => (opcode::Nop::new().build().flags(Flags::ASYNC), false),
                2 => (opcode::Nop::new().inject_result(-5).build().flags(Flags::IO_LINK), false),
                3 => (opcode::Timeout::new(&ts_short).build(), false),
                4 => {
                    armed.push(ud);
                    (opcode::Timeout::new(&ts_long).build(), false)
                }
                5 => {
                    armed.push(ud);
                    (opcode::PollAdd::new(types::Fd(pipe.r), libc::POLLIN as u32).build(), false)
                }
                6 => {
                    armed.push(ud);
                    (opcode::PollAdd::new(types::Fd(pipe.r), libc::POLLIN as u32).multi(true).build(), true)
                }
                7 => (opcode::Read::new(types::Fd(pipe.r), buf, 8).build(), false),
                8 => (opcode::Write::new(types::Fd(pipe.w), b"12345678".as_ptr(), 8).build(), false),
                _ => match armed.pop() {
                    Some(victim) => (opcode::AsyncCancel::new(victim).build(), false),
                    None => (opcode::Nop::new().build().flags(Flags::IO_LINK), false),
                },
            };
            ledger.expect(ud, multishot);
            // SAFETY: buffers, timespecs and the pipe outlive every CQE.
            unsafe { ring.submission().push(&e.user_data(ud)).unwrap() };
        }
        ring.submitter().submit_with_timeout(1, Duration::from_millis(5)).ok();
        for c in ring.completion() {
            ledger.seen(&c);
        }
        // Keep reads from piling up forever: drain the pipe now and then.
        if rng.below(16) == 0 {
            let mut sink = [0u8; 4096];
            // SAFETY: reading into a live buffer from our non-blocking pipe.
            unsafe { libc::read(pipe.r, sink.as_mut_ptr().cast(), sink.len()) };
        }
    }
    // Wind down: cancel everything still armed, feed pending reads, and
    // reap until every request has finished.
    let end = Instant::now() + Duration::from_secs(20);
    while !ledger.open.is_empty() {
        assert!(Instant::now() < end, "hung: {} requests never finished: {:?}", ledger.open.len(), ledger.open.keys().take(8).collect::<Vec<_>>());
        let ud = next_ud;
        next_ud += 1;
        ledger.expect(ud, false);
        let any = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build().user_data(ud);
        // SAFETY: a cancel points at no memory.
        if unsafe { ring.submission().push(&any) }.is_err() {
            ledger.open.remove(&ud);
        }
        // SAFETY: writing from a static buffer to our pipe (reads may wait).
        unsafe { libc::write(pipe.w, b"xxxxxxxx".as_ptr().cast(), 8) };
        ring.submitter().submit_with_timeout(1, Duration::from_millis(10)).ok();
        for c in ring.completion() {
            ledger.seen(&c);
        }
    }
    drop(bufs);
    ledger.finals
}

#[test]
fn mixed_ops_from_many_threads() {
    // Warm up the process-wide threads and fds (timer, reactor, workers).
    {
        let mut r = Ring::new(4).unwrap();
        let ts = types::Timespec::new().nsec(1000);
        // SAFETY: ts outlives the CQE.
        unsafe { r.submission().push(&opcode::Timeout::new(&ts).build()).unwrap() };
        r.submit_and_wait(1).unwrap();
        // A poll that has to wait starts the reactor (and its epoll fd).
        let p = Pipe::new();
        // SAFETY: a poll points at no memory.
        unsafe { r.submission().push(&opcode::PollAdd::new(types::Fd(p.r), libc::POLLIN as u32).build().user_data(1)).unwrap() };
        r.submit().unwrap();
        // SAFETY: a cancel points at no memory.
        unsafe { r.submission().push(&opcode::AsyncCancel::new(1).build()).unwrap() };
        r.submit_and_wait(2).unwrap();
    }
    let fds_before = fd_count();
    let list_before = fd_list();
    // A first round grows the engine's process-wide tables to their working
    // size; the second must then give back every byte it takes.
    let round = |budget: Duration| -> u64 {
        let handles: Vec<_> = (0..4u64).map(|t| std::thread::spawn(move || worker(0x9e37_79b9 * (t + 1), budget))).collect();
        handles.into_iter().map(|h| h.join().expect("a stress thread failed")).sum()
    };
    let settle = || {
        // Workers still finishing a cancelled chain, dups still closing.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fd_count() > fds_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let warm = round(Duration::from_millis(700));
    settle();
    let bytes_before = live_bytes();
    let total = round(Duration::from_millis(2000));
    println!("stress: {warm} + {total} requests, each with exactly one final CQE");
    assert!(total > 1000, "too little work done: {total}");
    let threads = thread_count();
    assert!(threads < 300, "thread count grew to {threads}");
    // Every ring, reactor registration and private dup is gone.
    settle();
    assert_eq!(fd_count(), fds_before, "fds leaked: before {list_before:?}, after {:?}", fd_list());
    // Every request's memory came back. What may grow is the high-water
    // capacity of process-wide tables (a hash map or heap doubling once
    // more: a few hundred KiB, independent of the request count); a leak of
    // a request (a few hundred bytes each) would show as tens of MiB.
    let grown = live_bytes() - bytes_before;
    println!("stress: heap in use grew by {grown} bytes over {total} requests");
    assert!(grown < 4 << 20, "heap grew by {grown} bytes over {total} requests");
    assert!(total > 50_000 || grown < 1 << 20, "too few requests ({total}) to bound a leak with {grown} bytes");
}
