//! Differential tests for `io_uring_setup`: every validation case, the
//! params written back, and the rings mapped by hand as liburing does.

mod common;

use common::*;
use ringport_engine::abi::{self, io_uring_params};
use std::sync::atomic::Ordering;

fn params_bytes(p: &io_uring_params) -> Vec<u8> {
    // SAFETY: io_uring_params is plain integers; viewing it as bytes is fine.
    unsafe { core::slice::from_raw_parts(p as *const _ as *const u8, core::mem::size_of_val(p)) }
        .to_vec()
}

/// Records what setup did with (entries, params): the result, the params
/// written back (all but `features`, which legitimately differ, and the
/// NO_MMAP user addresses, which are ours), the headers of the rings mapped
/// by hand, and one NOP round trip.
fn setup_case(b: &dyn Backend, t: &mut Trace, name: &str, entries: u32, p: io_uring_params) {
    let before = params_bytes(&p);
    let mut sent = p;
    let no_mmap = p.flags & abi::IORING_SETUP_NO_MMAP != 0;
    let ring = match Ring::with_params(b, entries, p) {
        Ok(r) => r,
        Err(e) => {
            t.rec(format!("{name}: setup"), Err::<(), _>(errname(e)));
            if !no_mmap {
                // A failed setup writes nothing back.
                // SAFETY: sent is a valid, writable params block; the setup
                // above already failed, this one is only to see the bytes.
                let r = unsafe { b.setup(entries, &mut sent) };
                if r >= 0 {
                    b.close(r);
                }
                t.rec(
                    format!("{name}: params untouched on failure"),
                    params_bytes(&sent) == before,
                );
            }
            return;
        }
    };
    t.rec(format!("{name}: setup"), Ok::<(), &str>(()));
    let mut q = ring.p;
    if no_mmap {
        let ((rings, _), (sqes, _)) = ring.user_memory().expect("NO_MMAP ring has user memory");
        t.rec(
            format!("{name}: user_addr kept"),
            (q.sq_off.user_addr == sqes, q.cq_off.user_addr == rings),
        );
        q.sq_off.user_addr = 0;
        q.cq_off.user_addr = 0;
    }
    t.rec(
        format!("{name}: params"),
        (
            q.sq_entries,
            q.cq_entries,
            q.flags,
            q.sq_thread_cpu,
            q.sq_thread_idle,
            q.wq_fd,
            q.resv,
        ),
    );
    t.rec(format!("{name}: sq_off"), q.sq_off);
    t.rec(format!("{name}: cq_off"), q.cq_off);
    // The headers as a program reads them after mapping by hand.
    let hdr = (
        ring.sq_head().load(Ordering::Acquire),
        ring.sq_tail().load(Ordering::Acquire),
        ring.sq_mask().load(Ordering::Acquire),
        ring.sq_ring_entries().load(Ordering::Acquire),
        ring.sq_flags().load(Ordering::Acquire),
        ring.sq_dropped().load(Ordering::Acquire),
        ring.cq_head().load(Ordering::Acquire),
        ring.cq_tail().load(Ordering::Acquire),
        ring.cq_mask().load(Ordering::Acquire),
        ring.cq_ring_entries().load(Ordering::Acquire),
        ring.cq_overflow().load(Ordering::Acquire),
        ring.cq_flags().load(Ordering::Acquire),
    );
    t.rec(format!("{name}: mapped headers"), hdr);
    // One NOP through the hand-mapped rings; then fill the whole SQ.
    t.rec(
        format!("{name}: nop"),
        ring.one_short(&Sqe::nop(0xfeed_0000_0000_0001)),
    );
    let n = ring.p.sq_entries.min(64);
    for i in 0..n {
        ring.push(&Sqe::nop(i as u64));
    }
    let (r, cqes) = ring.run(n, n as usize);
    t.rec(format!("{name}: {n} nops"), (res(r), shorts(&cqes)));
}

fn run_cases(test: &str, cases: &[(&str, u32, io_uring_params)]) {
    diff(test, |b, t| {
        for (name, entries, p) in cases {
            setup_case(b, t, name, *entries, *p);
        }
    });
}

#[test]
fn setup_entries() {
    use abi::IORING_SETUP_CLAMP as CLAMP;
    run_cases(
        "setup_entries",
        &[
            ("entries 0", 0, params(0, 0)),
            ("entries 0 CLAMP", 0, params(CLAMP, 0)),
            ("entries 1", 1, params(0, 0)),
            ("entries 2", 2, params(0, 0)),
            ("entries 3", 3, params(0, 0)),
            ("entries 5", 5, params(0, 0)),
            ("entries 4096", 4096, params(0, 0)),
            ("entries 16385", 16385, params(0, 0)),
            ("entries 32768", 32768, params(0, 0)),
            ("entries 32769", 32769, params(0, 0)),
            ("entries 32769 CLAMP", 32769, params(CLAMP, 0)),
            ("entries 65536", 65536, params(0, 0)),
            ("entries u32::MAX", u32::MAX, params(0, 0)),
            ("entries u32::MAX CLAMP", u32::MAX, params(CLAMP, 0)),
            ("entries 3 CLAMP", 3, params(CLAMP, 0)),
            ("cq_entries ignored without CQSIZE", 4, params(0, 3)),
        ],
    );
}

#[test]
fn setup_cqsize() {
    use abi::{IORING_SETUP_CLAMP as CLAMP, IORING_SETUP_CQSIZE as CQSIZE};
    run_cases(
        "setup_cqsize",
        &[
            ("cq 0", 4, params(CQSIZE, 0)),
            ("cq 0 CLAMP", 4, params(CQSIZE | CLAMP, 0)),
            ("cq < sq", 8, params(CQSIZE, 4)),
            ("cq < sq CLAMP", 8, params(CQSIZE | CLAMP, 4)),
            ("cq 5 rounds up below sq 8", 8, params(CQSIZE, 5)),
            ("cq == sq", 8, params(CQSIZE, 8)),
            ("cq 9 rounds up", 8, params(CQSIZE, 9)),
            ("cq 2 sq 1", 1, params(CQSIZE, 2)),
            ("cq 2 sq 2", 2, params(CQSIZE, 2)),
            ("cq 3 sq 3", 3, params(CQSIZE, 3)),
            ("cq 65536", 4, params(CQSIZE, 65536)),
            ("cq 65537", 4, params(CQSIZE, 65537)),
            ("cq 65537 CLAMP", 4, params(CQSIZE | CLAMP, 65537)),
            ("cq u32::MAX", 4, params(CQSIZE, u32::MAX)),
            ("cq u32::MAX CLAMP", 4, params(CQSIZE | CLAMP, u32::MAX)),
            (
                "cq 40000 CLAMP sq 32769",
                32769,
                params(CQSIZE | CLAMP, 40000),
            ),
            ("cq 1 sq 1", 1, params(CQSIZE, 1)),
        ],
    );
}

#[test]
fn setup_flags() {
    use abi::*;
    let mut cases = vec![
        ("no flags", 4, params(0, 0)),
        ("SUBMIT_ALL", 4, params(IORING_SETUP_SUBMIT_ALL, 0)),
        ("SQE128", 4, params(IORING_SETUP_SQE128, 0)),
        ("CQE32", 4, params(IORING_SETUP_CQE32, 0)),
        (
            "SQE128|CQE32",
            4,
            params(IORING_SETUP_SQE128 | IORING_SETUP_CQE32, 0),
        ),
        ("NO_SQARRAY", 4, params(IORING_SETUP_NO_SQARRAY, 0)),
        (
            "NO_SQARRAY|SQE128|CQE32",
            8,
            params(
                IORING_SETUP_NO_SQARRAY | IORING_SETUP_SQE128 | IORING_SETUP_CQE32,
                0,
            ),
        ),
        ("SINGLE_ISSUER", 4, params(IORING_SETUP_SINGLE_ISSUER, 0)),
        ("COOP_TASKRUN", 4, params(IORING_SETUP_COOP_TASKRUN, 0)),
        (
            "COOP_TASKRUN|TASKRUN_FLAG",
            4,
            params(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0),
        ),
        (
            "TASKRUN_FLAG alone",
            4,
            params(IORING_SETUP_TASKRUN_FLAG, 0),
        ),
        ("SQ_AFF without SQPOLL", 4, params(IORING_SETUP_SQ_AFF, 0)),
        (
            "DEFER_TASKRUN without SINGLE_ISSUER",
            4,
            params(IORING_SETUP_DEFER_TASKRUN, 0),
        ),
        (
            "REGISTERED_FD_ONLY without NO_MMAP",
            4,
            params(IORING_SETUP_REGISTERED_FD_ONLY, 0),
        ),
        (
            "HYBRID_IOPOLL without IOPOLL",
            4,
            params(IORING_SETUP_HYBRID_IOPOLL, 0),
        ),
        ("unknown flag 1<<31", 4, params(1 << 31, 0)),
        ("unknown flag 1<<30", 4, params(1 << 30, 0)),
        ("unknown flag 1<<25", 4, params(1 << 25, 0)),
        ("unknown flag with entries 0", 0, params(1 << 31, 0)),
        (
            "unknown flag with CLAMP",
            4,
            params((1 << 31) | IORING_SETUP_CLAMP, 0),
        ),
        (
            "all supported flags",
            16,
            params(
                IORING_SETUP_CQSIZE
                    | IORING_SETUP_CLAMP
                    | IORING_SETUP_SUBMIT_ALL
                    | IORING_SETUP_COOP_TASKRUN
                    | IORING_SETUP_TASKRUN_FLAG
                    | IORING_SETUP_SQE128
                    | IORING_SETUP_CQE32
                    | IORING_SETUP_SINGLE_ISSUER
                    | IORING_SETUP_NO_SQARRAY,
                64,
            ),
        ),
    ];
    // Fields that only SQPOLL / ATTACH_WQ read are ignored without them.
    let mut p = params(0, 0);
    p.sq_thread_cpu = 3;
    p.sq_thread_idle = 1000;
    cases.push(("sq_thread_* without SQPOLL", 4, p));
    let mut p = params(0, 0);
    p.wq_fd = 12345;
    cases.push(("wq_fd without ATTACH_WQ", 4, p));
    let mut p = params(0, 0);
    p.features = 0xffff_ffff;
    cases.push(("features is output only", 4, p));
    run_cases("setup_flags", &cases);
}

#[test]
fn setup_resv() {
    let mut cases = Vec::new();
    for i in 0..3 {
        let mut p = params(0, 0);
        p.resv[i] = 1;
        cases.push((["resv[0]=1", "resv[1]=1", "resv[2]=1"][i], 4, p));
    }
    let mut p = params(0, 0);
    p.resv[2] = 0x8000_0000;
    cases.push(("resv[2] high bit", 4, p));
    let mut p = params(0, 0);
    p.resv[0] = 1;
    cases.push(("resv with entries 0", 0, p));
    // The offsets' reserved words are outputs (and user_addr is only read
    // with NO_MMAP): junk there is overwritten, not an error.
    let mut p = params(0, 0);
    p.sq_off.resv1 = 7;
    p.cq_off.resv1 = 7;
    p.sq_off.user_addr = 0x1234;
    p.cq_off.user_addr = 0x5678;
    cases.push(("junk in sq_off/cq_off", 4, p));
    run_cases("setup_resv", &cases);
}

#[test]
fn setup_bad_params_pointer() {
    diff("setup_bad_params_pointer", |b, t| {
        let g = guard_page();
        for (name, addr) in [
            ("null", 0u64),
            ("page zero", UNMAPPED),
            ("kernel address", KERNEL_ADDR),
            ("kernel half start", KERNEL_ADDR2),
            ("PROT_NONE page", g),
        ] {
            // SAFETY: every address here is invalid; the callee must fault-check it.
            let r = unsafe { b.setup(4, addr as usize as *mut io_uring_params) };
            if r >= 0 {
                b.close(r);
            }
            t.rec(name, res(r.min(0)));
        }
        // Params that straddle into a PROT_NONE page.
        let m = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe { libc::mprotect(m.ptr.add(page_size()).cast(), page_size(), libc::PROT_NONE) };
        let at = m.addr() + page_size() as u64 - 60;
        // SAFETY: the first 60 bytes are readable zeroes, the rest faults.
        let r = unsafe { b.setup(4, at as usize as *mut io_uring_params) };
        if r >= 0 {
            b.close(r);
        }
        t.rec("straddling a PROT_NONE page", res(r.min(0)));
        // Valid, readable params in read-only memory: the ring is created
        // but writing the params back faults.
        let ro = Mem::rw(page_size());
        // SAFETY: making our own zeroed page read-only.
        unsafe { libc::mprotect(ro.ptr.cast(), page_size(), libc::PROT_READ) };
        // SAFETY: readable zero params; writes must fault-check.
        let r = unsafe { b.setup(4, ro.ptr as *mut io_uring_params) };
        if r >= 0 {
            b.close(r);
        }
        t.rec("read-only params", res(r.min(0)));
        t.rec(
            "read-only params unchanged",
            ro.bytes()[..120].iter().all(|&x| x == 0),
        );
        // Unmapped params with bad entries: the copy comes first.
        // SAFETY: null is invalid; must be fault-checked.
        let r = unsafe { b.setup(0, core::ptr::null_mut()) };
        t.rec("null params, entries 0", res(r.min(0)));
    });
}

#[test]
fn setup_no_mmap() {
    use abi::*;
    let mut cases = vec![
        ("NO_MMAP", 4, params(IORING_SETUP_NO_MMAP, 0)),
        ("NO_MMAP 1 entry", 1, params(IORING_SETUP_NO_MMAP, 0)),
        (
            "NO_MMAP|NO_SQARRAY",
            8,
            params(IORING_SETUP_NO_MMAP | IORING_SETUP_NO_SQARRAY, 0),
        ),
        (
            "NO_MMAP|SQE128|CQE32|CQSIZE",
            4,
            params(
                IORING_SETUP_NO_MMAP
                    | IORING_SETUP_SQE128
                    | IORING_SETUP_CQE32
                    | IORING_SETUP_CQSIZE,
                16,
            ),
        ),
    ];
    cases.push(("NO_MMAP 64 entries", 64, params(IORING_SETUP_NO_MMAP, 0)));
    run_cases("setup_no_mmap", &cases);

    // Bad user memory: the addresses are ours to choose here.
    diff("setup_no_mmap_bad_memory", |b, t| {
        let good = Mem::rw(4 * page_size());
        let cases: [(&str, u64, u64); 6] = [
            ("both null", 0, 0),
            ("rings null", 0, good.addr()),
            ("sqes null", good.addr(), 0),
            (
                "rings misaligned",
                good.addr() + 64,
                good.addr() + 2 * page_size() as u64,
            ),
            ("rings in page zero", UNMAPPED & !0xfff, good.addr()),
            ("sqes in kernel space", good.addr(), KERNEL_ADDR),
        ];
        for (name, rings, sqes) in cases {
            let mut p = params(IORING_SETUP_NO_MMAP, 0);
            p.cq_off.user_addr = rings;
            p.sq_off.user_addr = sqes;
            // SAFETY: p is valid; the user addresses are checked by the callee.
            let r = unsafe { b.setup(4, &mut p) };
            if r >= 0 {
                b.close(r);
            }
            t.rec(name, res(r.min(0)));
        }
        // The rings in a PROT_NONE mapping.
        let none = Mem::new(page_size(), libc::PROT_NONE);
        let mut p = params(IORING_SETUP_NO_MMAP, 0);
        p.cq_off.user_addr = none.addr();
        p.sq_off.user_addr = good.addr();
        // SAFETY: as above.
        let r = unsafe { b.setup(4, &mut p) };
        if r >= 0 {
            b.close(r);
        }
        t.rec("rings PROT_NONE", res(r.min(0)));
    });
}

/// A NO_MMAP ring's fd cannot be mapped: its memory is the program's.
#[test]
fn setup_no_mmap_fd_not_mappable() {
    diff("setup_no_mmap_fd_not_mappable", |b, t| {
        let ring = match Ring::with_params(b, 4, params(abi::IORING_SETUP_NO_MMAP, 0)) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", errname(e)),
        };
        for off in [
            abi::IORING_OFF_SQ_RING,
            abi::IORING_OFF_CQ_RING,
            abi::IORING_OFF_SQES,
        ] {
            // SAFETY: a fresh shared mapping request; nothing is replaced.
            let m = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    page_size(),
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    ring.fd,
                    off as i64,
                )
            };
            // Compared as "refused or not": the kernel says ENOMEM, ringport's
            // NO_MMAP fd (a pipe) says ENODEV (see docs/ARCHITECTURE.md).
            let r = if m == libc::MAP_FAILED {
                Err("refused")
            } else {
                // SAFETY: unmapping what we just mapped.
                unsafe { libc::munmap(m, page_size()) };
                Ok(())
            };
            t.rec(format!("mmap at {off:#x}"), r);
        }
    });
}

/// The ring layout for each supported geometry: SQE128, CQE32, NO_SQARRAY,
/// several sizes. (Compares sq_off/cq_off and the mapped headers.)
#[test]
fn setup_layouts() {
    use abi::*;
    let mut cases = Vec::new();
    for e in [1u32, 2, 8, 128, 1024] {
        for (fname, f) in [
            ("plain", 0),
            ("SQE128", IORING_SETUP_SQE128),
            ("CQE32", IORING_SETUP_CQE32),
            ("NO_SQARRAY", IORING_SETUP_NO_SQARRAY),
            (
                "all three",
                IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | IORING_SETUP_NO_SQARRAY,
            ),
        ] {
            let name: &'static str = Box::leak(format!("{fname} x{e}").into_boxed_str());
            cases.push((name, e, params(f, 0)));
        }
    }
    run_cases("setup_layouts", &cases);
}

/// The ring fd: mmap at an offset that is not one of the three regions.
#[test]
fn setup_mmap_bad_offset() {
    diff("setup_mmap_bad_offset", |b, t| {
        let ring = match Ring::new(b, 4, 0) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", errname(e)),
        };
        for off in [0x1000u64, 0x400_0000, 0xc00_0000] {
            // SAFETY: a fresh shared mapping request; nothing is replaced.
            let m = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    page_size(),
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    ring.fd,
                    off as i64,
                )
            };
            // Compared as "refused or not": the kernel says ENOMEM, ringport's
            // NO_MMAP fd (a pipe) says ENODEV (see docs/ARCHITECTURE.md).
            let r = if m == libc::MAP_FAILED {
                Err("refused")
            } else {
                // SAFETY: unmapping what we just mapped.
                unsafe { libc::munmap(m, page_size()) };
                Ok(())
            };
            t.rec(format!("mmap at {off:#x}"), r);
        }
        // A mapping larger than the SQ ring.
        // SAFETY: as above.
        let m = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                64 * page_size(),
                libc::PROT_READ,
                libc::MAP_SHARED,
                ring.fd,
                0,
            )
        };
        let r = if m == libc::MAP_FAILED {
            Err(errname(errno()))
        } else {
            // SAFETY: unmapping what we just mapped.
            unsafe { libc::munmap(m, 64 * page_size()) };
            Ok(())
        };
        t.rec("oversized SQ ring mapping", r);
    });
}

/// The feature bits ringport claims are ones this kernel claims too (it
/// never advertises behaviour Linux does not have), and they include
/// CUR_PERSONALITY, which liburing's eventfd tests require.
#[test]
fn features_are_a_subset_of_the_kernels() {
    if let Err(e) = kernel_available() {
        println!("SKIPPED features_are_a_subset_of_the_kernels: the kernel's io_uring is unavailable ({e})");
        return;
    }
    let features = |b: &dyn Backend| {
        // SAFETY: io_uring_params is plain integers; all-zero is a valid request.
        let mut p: io_uring_params = unsafe { core::mem::zeroed() };
        // SAFETY: p is a valid, writable params block.
        let fd = unsafe { b.setup(4, &mut p) };
        assert!(fd >= 0, "setup: {fd}");
        b.close(fd);
        p.features
    };
    let [k, r] = backends().map(features);
    println!("features: kernel {k:#x}, ringport {r:#x}");
    assert_eq!(r & !k, 0, "ringport claims {:#x} that the kernel does not", r & !k);
    assert_ne!(r & abi::IORING_FEAT_CUR_PERSONALITY, 0);
    assert_ne!(r & abi::IORING_FEAT_NODROP, 0);
}
