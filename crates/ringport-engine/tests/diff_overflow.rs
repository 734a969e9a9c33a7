//! Differential tests for CQ overflow (FEAT_NODROP): a CQ of 2 entries,
//! 10,000 NOPs submitted without reaping, then every CQE read back in order,
//! none lost; `IORING_SQ_CQ_OVERFLOW` set while the backlog is non-empty and
//! cleared after; the backlog flushed by enter with GETEVENTS. Also `dropped`.

mod common;

use common::*;
use ringport_engine::abi;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Run-length encoding, to keep long traces comparable and readable.
fn rle<T: PartialEq + Clone>(v: &[T]) -> Vec<(T, usize)> {
    let mut out: Vec<(T, usize)> = Vec::new();
    for x in v {
        match out.last_mut() {
            Some((y, n)) if y == x => *n += 1,
            _ => out.push((x.clone(), 1)),
        }
    }
    out
}

fn overflow_flag(r: &Ring) -> bool {
    r.sq_flags().load(Ordering::Acquire) & abi::IORING_SQ_CQ_OVERFLOW != 0
}

/// Where the user_data sequence first departs from 0, 1, 2, ...
fn first_out_of_order(c: &[Cqe]) -> Option<(usize, u64)> {
    c.iter()
        .enumerate()
        .find(|(i, c)| c.user_data != *i as u64)
        .map(|(i, c)| (i, c.user_data))
}

/// Submits `total` NOPs into a ring with a CQ of 2 without reaping, then
/// reads them all back, flushing the backlog with GETEVENTS.
fn flood(b: &dyn Backend, t: &mut Trace, entries: u32, total: u64, flags: u32) {
    let p = params(abi::IORING_SETUP_CQSIZE | flags, 2);
    let r = match Ring::with_params(b, entries, p) {
        Ok(r) => r,
        Err(e) => return t.rec("setup", errname(e)),
    };
    t.rec("sq/cq entries", (r.p.sq_entries, r.p.cq_entries));
    // Submission phase: (enter result, overflow flag, CQEs ready) per call.
    let mut subs = Vec::new();
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < total && Instant::now() < deadline {
        let mut n = 0;
        while next < total
            && r.push(&Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: (next % 1000) as u32,
                ..Sqe::nop(next)
            })
        {
            next += 1;
            n += 1;
        }
        let ret = r.submit(n);
        subs.push((res(ret), overflow_flag(&r), r.cq_ready()));
        if ret != n as i32 {
            break;
        }
    }
    t.rec("submitted", next);
    t.rec(
        "submission trace (result, CQ_OVERFLOW, ready) x count",
        rle(&subs),
    );
    t.rec(
        "dropped after submission",
        r.sq_dropped().load(Ordering::Acquire),
    );
    t.rec(
        "cq overflow counter after submission",
        r.cq_overflow().load(Ordering::Acquire),
    );
    // Reaping phase: take what is in the ring, then flush with GETEVENTS.
    let mut got: Vec<Cqe> = Vec::new();
    let mut reaps = Vec::new();
    let mut iters = 0;
    while (got.len() as u64) < total && iters < 4 * total + 100 && Instant::now() < deadline {
        iters += 1;
        let c = r.reap();
        let flag_before = overflow_flag(&r);
        got.extend(c.iter().copied());
        let e = r.enter(0, 0, abi::IORING_ENTER_GETEVENTS);
        reaps.push((
            c.len(),
            flag_before,
            res(e),
            overflow_flag(&r),
            r.cq_ready(),
        ));
    }
    t.rec(
        "reap trace (taken, CQ_OVERFLOW before, enter, CQ_OVERFLOW after, ready) x count",
        rle(&reaps),
    );
    t.rec("CQEs read", got.len());
    t.rec("first out of order", first_out_of_order(&got));
    let bad_res: Vec<&Cqe> = got
        .iter()
        .filter(|c| c.res != (c.user_data % 1000) as i32 || c.flags != 0)
        .take(3)
        .collect();
    t.rec("CQEs with a wrong result", bad_res);
    if r.cqe_size == 32 {
        t.rec(
            "CQE32 extra words all zero",
            got.iter().all(|c| c.big == [0, 0]),
        );
    }
    t.rec("CQ_OVERFLOW at the end", overflow_flag(&r));
    t.rec(
        "nothing more",
        r.wait_cqes(1, Duration::from_millis(10)).len(),
    );
    t.rec("dropped at the end", r.sq_dropped().load(Ordering::Acquire));
    t.rec(
        "cq overflow counter at the end",
        r.cq_overflow().load(Ordering::Acquire),
    );
    // The ring still works normally.
    t.rec("a NOP after the flood", r.one_short(&Sqe::nop(u64::MAX)));
}

#[test]
fn overflow_10000_nops_sq2() {
    diff("overflow_10000_nops_sq2", |b, t| flood(b, t, 2, 10_000, 0));
}

#[test]
fn overflow_10000_nops_sq1() {
    diff("overflow_10000_nops_sq1", |b, t| flood(b, t, 1, 10_000, 0));
}

#[test]
fn overflow_cqe32() {
    diff("overflow_cqe32", |b, t| {
        flood(b, t, 2, 300, abi::IORING_SETUP_CQE32)
    });
}

/// The backlog is flushed by a GETEVENTS wait too, and min_complete counts
/// flushed CQEs.
#[test]
fn overflow_flush_by_wait() {
    diff("overflow_flush_by_wait", |b, t| {
        let r = match Ring::with_params(b, 2, params(abi::IORING_SETUP_CQSIZE, 2)) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", errname(e)),
        };
        for i in 0..5u64 {
            r.push_all(&[Sqe::nop(2 * i), Sqe::nop(2 * i + 1)]);
            t.rec(
                format!("submit pair {i}"),
                (res(r.submit(2)), overflow_flag(&r), r.cq_ready()),
            );
        }
        // Reap the 2 in the ring; the ring is empty but the backlog is not.
        t.rec("reap", shorts(&r.reap()));
        t.rec("overflow flag with an empty ring", overflow_flag(&r));
        // A plain submit (no GETEVENTS).
        r.push(&Sqe::nop(100));
        t.rec(
            "submit 1 without GETEVENTS",
            (res(r.submit(1)), overflow_flag(&r), r.cq_ready()),
        );
        t.rec("reap", shorts(&r.reap()));
        // A wait for 2: flushes and returns at once.
        t.rec(
            "wait min 2 (1 s timeout)",
            (
                res(r.enter_timeout(0, 2, abi::IORING_ENTER_GETEVENTS, Duration::from_secs(1))),
                overflow_flag(&r),
                r.cq_ready(),
            ),
        );
        t.rec("reap", shorts(&r.reap()));
        // Submit and wait in one call while the backlog is non-empty.
        r.push(&Sqe::nop(101));
        t.rec(
            "submit 1 + wait 1",
            (
                res(r.enter_timeout(1, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_secs(1))),
                overflow_flag(&r),
                r.cq_ready(),
            ),
        );
        let mut rest = Vec::new();
        for _ in 0..20 {
            rest.extend(r.reap());
            r.enter(0, 0, abi::IORING_ENTER_GETEVENTS);
        }
        t.rec("the rest, in order", shorts(&rest));
        t.rec("overflow flag at the end", overflow_flag(&r));
        t.rec(
            "a 1 ms wait on the empty ring",
            res(r.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(1))),
        );
    });
}

/// Completions from workers overflow too, and none is lost (their order is
/// not defined, so they are compared as a set).
#[test]
fn overflow_async() {
    diff("overflow_async", |b, t| {
        let r = match Ring::with_params(b, 4, params(abi::IORING_SETUP_CQSIZE, 4)) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", errname(e)),
        };
        let f = TempFile::new("ovf", &pattern(64, 1), libc::O_RDWR);
        let mut bufs = vec![[0u8; 8]; 200];
        let mut sent = 0u64;
        for chunk in 0..50u64 {
            for j in 0..4u64 {
                let i = chunk * 4 + j;
                let s = if i % 2 == 0 {
                    Sqe::nop(i).flags(abi::IOSQE_ASYNC)
                } else {
                    Sqe::read(f.fd, bufs[i as usize].as_mut_ptr(), 8, (i % 8) * 8, i)
                        .flags(abi::IOSQE_ASYNC)
                };
                r.push(&s);
            }
            sent += r.submit(4).max(0) as u64;
        }
        t.rec("submitted", sent);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 200 && Instant::now() < deadline {
            got.extend(r.reap());
            r.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(50));
        }
        got.extend(r.reap());
        t.rec("CQEs", got.len());
        t.rec("by user_data", shorts(&sorted(got)));
        t.rec("overflow flag at the end", overflow_flag(&r));
        t.rec(
            "buffers",
            bufs.iter()
                .skip(1)
                .step_by(2)
                .map(|b| b.to_vec())
                .collect::<Vec<_>>(),
        );
    });
}

/// `dropped` while the CQ overflows: every 7th SQ array entry is out of
/// range. Each bad entry is counted once, ends its batch, and gets no CQE.
#[test]
fn overflow_with_dropped() {
    diff("overflow_with_dropped", |b, t| {
        let r = match Ring::with_params(b, 2, params(abi::IORING_SETUP_CQSIZE, 2)) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", errname(e)),
        };
        let mut rets = Vec::new();
        for i in 0..700u64 {
            if i % 7 == 3 {
                r.push_indexed(&Sqe::nop(i), 2 + (i as u32 % 5));
            } else {
                r.push(&Sqe::nop(i));
            }
            if r.sq_space() == 0 || i == 699 {
                let queued = r
                    .sq_tail()
                    .load(Ordering::Relaxed)
                    .wrapping_sub(r.sq_head().load(Ordering::Acquire));
                let mut ret = r.submit(queued);
                rets.push(res(ret));
                // A dropped entry stops the batch: submit what is left.
                while ret >= 0 && r.sq_space() < r.p.sq_entries {
                    ret = r.submit(2);
                    rets.push(res(ret));
                }
            }
        }
        t.rec("enter results x count", rle(&rets));
        t.rec("dropped", r.sq_dropped().load(Ordering::Acquire));
        t.rec(
            "head, tail",
            (
                r.sq_head().load(Ordering::Acquire),
                r.sq_tail().load(Ordering::Acquire),
            ),
        );
        let mut got = Vec::new();
        for _ in 0..2000 {
            got.extend(r.reap());
            if r.enter(0, 0, abi::IORING_ENTER_GETEVENTS) < 0
                || (!overflow_flag(&r) && r.cq_ready() == 0)
            {
                break;
            }
        }
        got.extend(r.reap());
        let ids: Vec<u64> = got.iter().map(|c| c.user_data).collect();
        let expect: Vec<u64> = (0..700).filter(|i| i % 7 != 3).collect();
        t.rec("CQEs", got.len());
        t.rec("exactly the valid entries, in order", ids == expect);
        t.rec("overflow flag at the end", overflow_flag(&r));
    });
}

/// A multishot request whose CQE finds the CQ ring full ends there: its
/// result becomes the final CQE (no F_MORE), which goes to the backlog
/// (the kernel's `io_req_post_cqe` fails and the request completes). Here:
/// a multishot TIMEOUT of 1 ms with no count, and a multishot POLL_ADD on a
/// pipe written to again and again, each on a ring with a CQ of 4 that is
/// not reaped for a while. Recorded: every CQE, in order, and whether the
/// request is gone afterwards (a cancel finds nothing).
fn multishot_meets_full_cq(b: &dyn Backend, t: &mut Trace, poll: bool) {
    let r = match Ring::with_params(b, 2, params(abi::IORING_SETUP_CQSIZE, 4)) {
        Ok(r) => r,
        Err(e) => return t.rec("setup", errname(e)),
    };
    let pipe = Pipe::new(0);
    let ts = abi::__kernel_timespec { tv_sec: 0, tv_nsec: 1_000_000 };
    let sqe = if poll {
        Sqe {
            fd: pipe.r,
            op_flags: libc::POLLIN as u32,
            len: abi::IORING_POLL_ADD_MULTI,
            ..Sqe::new(abi::op::POLL_ADD, 7)
        }
    } else {
        Sqe {
            addr: &ts as *const _ as u64,
            len: 1,
            op_flags: abi::IORING_TIMEOUT_MULTISHOT,
            ..Sqe::new(abi::op::TIMEOUT, 7)
        }
    };
    assert!(r.push(&sqe));
    t.rec("submit", res(r.submit(1)));
    // Readiness edges (poll) or timer firings (timeout): well past 4 + 1.
    for _ in 0..12 {
        if poll {
            write_fd(pipe.w, b"x");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    t.rec("overflow flag", overflow_flag(&r));
    let mut all = r.reap();
    all.extend(r.wait_cqes(1, Duration::from_millis(300)));
    all.extend(r.wait_cqes(usize::MAX, Duration::from_millis(50)));
    t.rec("cqes", rle(&shorts(&all)));
    // Nothing of it is left to cancel.
    assert!(r.push(&Sqe { addr: 7, ..Sqe::new(abi::op::ASYNC_CANCEL, 8) }));
    r.submit(1);
    t.rec("cancel", r.wait_cqes(1, Duration::from_secs(2)).iter().map(Cqe::short).collect::<Vec<_>>());
}

#[test]
fn multishot_timeout_ends_on_full_cq() {
    diff("multishot_timeout_ends_on_full_cq", |b, t| multishot_meets_full_cq(b, t, false));
}

#[test]
fn multishot_poll_ends_on_full_cq() {
    diff("multishot_poll_ends_on_full_cq", |b, t| multishot_meets_full_cq(b, t, true));
}
