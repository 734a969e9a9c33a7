//! Differential tests for `io_uring_register`: PROBE, BUFFERS /
//! UNREGISTER_BUFFERS, FILES / UNREGISTER_FILES / FILES_UPDATE, EVENTFD /
//! EVENTFD_ASYNC / UNREGISTER_EVENTFD, and the call's own errors.

mod common;

use common::*;
use ringport_engine::abi::{self, reg};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn ring<'b>(b: &'b dyn Backend, t: &mut Trace, entries: u32) -> Option<Ring<'b>> {
    match Ring::new(b, entries, 0) {
        Ok(r) => Some(r),
        Err(e) => {
            t.rec("setup", Err::<(), _>(errname(e)));
            None
        }
    }
}

/// register() with a raw argument address.
fn reg_raw(r: &Ring, op: u32, arg: u64, nr: u32) -> Result<i32, &'static str> {
    // SAFETY: `arg` is either memory the caller lets the callee read and
    // write, or deliberately invalid (the callee fault-checks it).
    res(unsafe { r.register_raw(op, arg as usize as *mut c_void, nr) })
}

// ---------------------------------------------------------------------------
// PROBE
// ---------------------------------------------------------------------------

const PROBE_HDR: usize = 16;
const PROBE_OP: usize = 8;

/// The ops ringport implements (and so must claim, and the kernel must too).
fn ringport_ops() -> Vec<u8> {
    (0..=255u8)
        .filter(|&o| ringport_engine::opcode_name(o).is_some())
        .collect()
}

fn probe_buf(nr: usize) -> Vec<u8> {
    vec![0u8; PROBE_HDR + nr * PROBE_OP]
}

/// (op, flags) of entry `i` of a probe buffer.
fn probe_entry(buf: &[u8], i: usize) -> (u8, u16) {
    let o = PROBE_HDR + i * PROBE_OP;
    (buf[o], u16::from_ne_bytes([buf[o + 2], buf[o + 3]]))
}

fn probe(r: &Ring, buf: &mut [u8], nr: u32) -> Result<i32, &'static str> {
    reg_raw(r, reg::PROBE, buf.as_mut_ptr() as u64, nr)
}

#[test]
fn register_probe() {
    diff("register_probe", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let mut buf = probe_buf(256);
        t.rec("probe 256", probe(&r, &mut buf, 256));
        t.rec(
            "header (last_op, ops_len, resv)",
            (buf[0], buf[1], &buf[2..PROBE_HDR]),
        );
        // Every op ringport implements is reported supported (by both).
        for o in ringport_ops() {
            t.rec(
                format!("op {o} ({})", ringport_engine::opcode_name(o).unwrap_or("?")),
                probe_entry(&buf, o as usize),
            );
        }
        // Each entry names its own op, with zero padding.
        let ops_len = buf[1] as usize;
        let names_ok = (0..ops_len).all(|i| probe_entry(&buf, i).0 == i as u8);
        let resv_ok = (0..ops_len).all(|i| {
            let o = PROBE_HDR + i * PROBE_OP;
            buf[o + 1] == 0 && buf[o + 4..o + 8].iter().all(|&x| x == 0)
        });
        t.rec("entries name their op, padding zero", (names_ok, resv_ok));
        t.rec(
            "entries past ops_len untouched",
            buf[PROBE_HDR + ops_len * PROBE_OP..]
                .iter()
                .all(|&x| x == 0),
        );
        let mut small = probe_buf(4);
        t.rec("probe 4", probe(&r, &mut small, 4));
        t.rec("probe 4 header", (small[0], small[1]));
        t.rec(
            "probe 4 entries",
            (0..4).map(|i| probe_entry(&small, i)).collect::<Vec<_>>(),
        );
        let mut zero = probe_buf(0);
        t.rec("probe 0", probe(&r, &mut zero, 0));
        t.rec("probe 0 header", (zero[0], zero[1]));
        let mut big = probe_buf(300);
        t.rec("probe 257", probe(&r, &mut big, 257));
        t.rec("probe 300", probe(&r, &mut big, 300));
        // The buffer must be zeroed.
        for (name, at) in [
            ("last_op", 0usize),
            ("ops_len", 1),
            ("resv", 4),
            ("ops[3].flags", PROBE_HDR + 3 * PROBE_OP + 2),
        ] {
            let mut dirty = probe_buf(8);
            dirty[at] = 1;
            let before = dirty.clone();
            t.rec(format!("non-zero {name}"), probe(&r, &mut dirty, 8));
            t.rec("  buffer untouched", dirty == before);
        }
        t.rec("probe null", reg_raw(&r, reg::PROBE, 0, 8));
        t.rec("probe null nr 0", reg_raw(&r, reg::PROBE, 0, 0));
        t.rec("probe at page zero", reg_raw(&r, reg::PROBE, UNMAPPED, 8));
        t.rec(
            "probe at kernel address",
            reg_raw(&r, reg::PROBE, KERNEL_ADDR, 8),
        );
        let ro = Mem::rw(page_size());
        // SAFETY: making our own zeroed page read-only.
        unsafe { libc::mprotect(ro.ptr.cast(), page_size(), libc::PROT_READ) };
        t.rec(
            "probe into read-only memory",
            reg_raw(&r, reg::PROBE, ro.addr(), 8),
        );
    });
}

/// ringport claims exactly the ops it implements, and the kernel supports
/// every one of them.
#[test]
fn register_probe_claims() {
    if skip_without_kernel("register_probe_claims") {
        return;
    }
    let mut claimed = [Vec::new(), Vec::new()];
    for (i, b) in backends().into_iter().enumerate() {
        let r = Ring::new(b, 4, 0).expect("setup");
        let mut buf = probe_buf(256);
        assert_eq!(probe(&r, &mut buf, 256), Ok(0), "{}", b.name());
        let n = buf[1] as usize;
        claimed[i] = (0..n)
            .filter(|&o| probe_entry(&buf, o).1 & abi::IO_URING_OP_SUPPORTED as u16 != 0)
            .map(|o| o as u8)
            .collect();
    }
    let [kernel, ringport] = claimed;
    assert_eq!(
        ringport,
        ringport_ops(),
        "ringport must claim exactly the ops it implements"
    );
    let missing: Vec<u8> = ringport
        .iter()
        .copied()
        .filter(|o| !kernel.contains(o))
        .collect();
    assert!(
        missing.is_empty(),
        "ringport claims ops the kernel does not support: {missing:?}"
    );
    println!(
        "register_probe_claims: ringport claims {ringport:?}; the kernel supports all of them"
    );
}

// ---------------------------------------------------------------------------
// BUFFERS
// ---------------------------------------------------------------------------

fn iovecs(bufs: &[(u64, u64)]) -> Vec<libc::iovec> {
    bufs.iter()
        .map(|&(a, l)| libc::iovec {
            iov_base: a as usize as *mut c_void,
            iov_len: l as usize,
        })
        .collect()
}

#[test]
fn register_buffers() {
    diff("register_buffers", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let ps = page_size() as u64;
        let m = Mem::rw(4 * page_size());
        let a = m.addr();
        let unreg = |r: &Ring| reg_raw(r, reg::UNREGISTER_BUFFERS, 0, 0);
        t.rec("unregister with none", unreg(&r));
        t.rec(
            "register 2",
            res(r.register_buffers(&[(a, ps), (a + ps, 2 * ps)])),
        );
        t.rec("register again", res(r.register_buffers(&[(a, ps)])));
        t.rec(
            "unregister with arg",
            reg_raw(&r, reg::UNREGISTER_BUFFERS, a, 0),
        );
        t.rec(
            "unregister with nr",
            reg_raw(&r, reg::UNREGISTER_BUFFERS, 0, 1),
        );
        t.rec("unregister", unreg(&r));
        t.rec("unregister again", unreg(&r));
        let one = iovecs(&[(a, ps)]);
        t.rec("nr 0", reg_raw(&r, reg::BUFFERS, one.as_ptr() as u64, 0));
        t.rec(
            "nr 16385",
            reg_raw(&r, reg::BUFFERS, one.as_ptr() as u64, 16385),
        );
        t.rec("arg null", reg_raw(&r, reg::BUFFERS, 0, 1));
        t.rec("arg at page zero", reg_raw(&r, reg::BUFFERS, UNMAPPED, 1));
        t.rec(
            "arg at kernel address",
            reg_raw(&r, reg::BUFFERS, KERNEL_ADDR, 1),
        );
        let edge = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe {
            libc::mprotect(
                edge.ptr.add(page_size()).cast(),
                page_size(),
                libc::PROT_NONE,
            )
        };
        let ro = Mem::rw(page_size());
        // SAFETY: making our own page read-only.
        unsafe { libc::mprotect(ro.ptr.cast(), page_size(), libc::PROT_READ) };
        let none = Mem::new(page_size(), libc::PROT_NONE);
        let f = TempFile::new("regbuf", &vec![0u8; 8192], libc::O_RDWR);
        // SAFETY: a fresh shared mapping of our own temp file.
        let fmap = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.fd,
                0,
            )
        };
        assert_ne!(fmap, libc::MAP_FAILED);
        let cases: Vec<(&str, Vec<(u64, u64)>)> = vec![
            ("sparse slot (null, 0)", vec![(0, 0)]),
            ("null with length", vec![(0, 10)]),
            ("valid base, length 0", vec![(a, 0)]),
            ("length 1 GiB + 1", vec![(a, (1 << 30) + 1)]),
            ("length exactly 1 GiB (mostly unmapped)", vec![(a, 1 << 30)]),
            ("base at page zero", vec![(UNMAPPED, 4096)]),
            ("base in kernel space", vec![(KERNEL_ADDR, 4096)]),
            ("base + length overflows", vec![(u64::MAX - 4096, 8192)]),
            ("runs into a PROT_NONE page", vec![(edge.addr(), 2 * ps)]),
            ("PROT_NONE memory", vec![(none.addr(), ps)]),
            ("read-only memory", vec![(ro.addr(), ps)]),
            ("shared file mapping", vec![(fmap as u64, 8192)]),
            ("unaligned base", vec![(a + 100, 200)]),
            ("good then bad", vec![(a, ps), (UNMAPPED, ps)]),
            ("good, sparse, good", vec![(a, ps), (0, 0), (a + ps, ps)]),
            ("same memory twice", vec![(a, ps), (a, ps)]),
        ];
        for (name, bufs) in cases {
            let rr = res(r.register_buffers(&bufs));
            // What the table looks like: usable slot 0? and unregister.
            let probe_slot0 = r.one_short(&Sqe {
                op_flags: abi::IORING_NOP_FIXED_BUFFER,
                ..Sqe::nop(1)
            });
            let un = unreg(&r);
            t.rec(name, (rr, probe_slot0, un));
        }
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(fmap, 8192) };
    });
}

// ---------------------------------------------------------------------------
// FILES / FILES_UPDATE
// ---------------------------------------------------------------------------

/// Which of slots 0..n are usable, seen through NOP FILE|FIXED_FILE.
fn slots(r: &Ring, n: i32) -> Vec<bool> {
    (0..n)
        .map(|i| {
            let s = Sqe {
                op_flags: abi::IORING_NOP_FILE | abi::IORING_NOP_FIXED_FILE,
                fd: i,
                ..Sqe::nop(i as u64)
            };
            matches!(r.one(&s), (1, Some(c)) if c.res == 0)
        })
        .collect()
}

fn nofile_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    rl.rlim_cur
}

#[test]
fn register_files() {
    diff("register_files", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let f = TempFile::new("regfiles", b"x", libc::O_RDWR);
        let p = Pipe::new(0);
        let unreg = |r: &Ring| reg_raw(r, reg::UNREGISTER_FILES, 0, 0);
        t.rec("unregister with none", unreg(&r));
        let fds = [f.fd, -1, p.r];
        t.rec("register [file, -1, pipe]", res(r.register_files(&fds)));
        t.rec("  slots", slots(&r, 4));
        t.rec("register again", res(r.register_files(&fds)));
        t.rec(
            "unregister with arg",
            reg_raw(&r, reg::UNREGISTER_FILES, fds.as_ptr() as u64, 0),
        );
        t.rec(
            "unregister with nr",
            reg_raw(&r, reg::UNREGISTER_FILES, 0, 3),
        );
        t.rec("unregister", unreg(&r));
        t.rec("unregister again", unreg(&r));
        t.rec("  slots", slots(&r, 2));
        let cases: Vec<(&str, u64, u32)> = vec![
            ("nr 0", fds.as_ptr() as u64, 0),
            ("arg at page zero", UNMAPPED, 3),
            ("arg at kernel address", KERNEL_ADDR, 3),
            (
                "nr above RLIMIT_NOFILE",
                fds.as_ptr() as u64,
                nofile_limit().saturating_add(1).min(1 << 20) as u32,
            ),
            (
                "nr above IORING_MAX_FIXED_FILES",
                fds.as_ptr() as u64,
                (1 << 20) + 1,
            ),
            ("arg null, nr 4 (sparse table)", 0, 4),
        ];
        for (name, arg, nr) in cases {
            let rr = reg_raw(&r, reg::FILES, arg, nr);
            t.rec(name, (rr, slots(&r, 1), unreg(&r)));
        }
        let fd_cases: Vec<(&str, Vec<i32>)> = vec![
            ("all sparse", vec![-1, -1, -1]),
            ("bad fd", vec![f.fd, BAD_FD]),
            ("fd -2", vec![-2]),
            ("the ring itself", vec![f.fd, r.fd]),
            ("same fd twice", vec![f.fd, f.fd]),
        ];
        for (name, v) in fd_cases {
            let rr = res(r.register_files(&v));
            t.rec(name, (rr, slots(&r, v.len() as i32), unreg(&r)));
        }
        // The array runs into a PROT_NONE page after one entry.
        let edge = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe {
            libc::mprotect(
                edge.ptr.add(page_size()).cast(),
                page_size(),
                libc::PROT_NONE,
            )
        };
        let at = edge.addr() + page_size() as u64 - 4;
        // SAFETY: the 4 bytes before the fault are ours.
        unsafe { core::ptr::write(at as usize as *mut i32, f.fd) };
        let rr = reg_raw(&r, reg::FILES, at, 2);
        t.rec("array crossing into a fault", (rr, unreg(&r)));
        // A large sparse table.
        let big = vec![-1i32; 1000];
        t.rec("1000 sparse", res(r.register_files(&big)));
        t.rec("update slot 999", res(r.files_update(999, &[f.fd])));
        t.rec("update slot 1000", res(r.files_update(1000, &[f.fd])));
        t.rec(
            "slot 999 usable",
            r.one_short(&Sqe {
                op_flags: abi::IORING_NOP_FILE | abi::IORING_NOP_FIXED_FILE,
                fd: 999,
                ..Sqe::nop(9)
            }),
        );
        t.rec("unregister", unreg(&r));
    });
}

#[test]
fn register_files_update() {
    diff("register_files_update", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let f = TempFile::new("upd", b"x", libc::O_RDWR);
        let p = Pipe::new(0);
        let upd = |r: &Ring, off: u32, fds: &[i32]| res(r.files_update(off, fds));
        t.rec("update with no table", upd(&r, 0, &[f.fd]));
        t.rec(
            "register 4 sparse",
            res(r.register_files(&[-1, -1, -1, -1])),
        );
        t.rec("update [file] at 0", upd(&r, 0, &[f.fd]));
        t.rec("update [pipe, pipe] at 2", upd(&r, 2, &[p.r, p.w]));
        t.rec("  slots", slots(&r, 4));
        t.rec(
            "update [skip, -1, skip] at 1",
            upd(
                &r,
                1,
                &[
                    abi::IORING_REGISTER_FILES_SKIP,
                    -1,
                    abi::IORING_REGISTER_FILES_SKIP,
                ],
            ),
        );
        t.rec("  slots", slots(&r, 4));
        t.rec("update [-1] at 0", upd(&r, 0, &[-1]));
        t.rec("  slots", slots(&r, 4));
        t.rec("update at 4 (out of range)", upd(&r, 4, &[f.fd]));
        t.rec(
            "update 2 at 3 (runs past the end)",
            upd(&r, 3, &[f.fd, f.fd]),
        );
        t.rec(
            "update at u32::MAX, nr 2 (overflow)",
            upd(&r, u32::MAX, &[f.fd, f.fd]),
        );
        t.rec("update nr 0", upd(&r, 0, &[]));
        t.rec("update [bad fd] at 0", upd(&r, 0, &[BAD_FD]));
        t.rec(
            "update [file, bad fd, file] at 0",
            upd(&r, 0, &[f.fd, BAD_FD, f.fd]),
        );
        t.rec("  slots", slots(&r, 4));
        t.rec("update [ring fd] at 1", upd(&r, 1, &[r.fd]));
        t.rec("update [-3] at 1", upd(&r, 1, &[-3]));
        t.rec("  slots", slots(&r, 4));
        // Bad update structs.
        let fds = [f.fd];
        let mut up = abi::io_uring_files_update {
            offset: 1,
            resv: 1,
            fds: fds.as_ptr() as u64,
        };
        t.rec(
            "resv non-zero",
            reg_raw(&r, reg::FILES_UPDATE, &mut up as *mut _ as u64, 1),
        );
        t.rec("arg null", reg_raw(&r, reg::FILES_UPDATE, 0, 1));
        t.rec(
            "arg at page zero",
            reg_raw(&r, reg::FILES_UPDATE, UNMAPPED, 1),
        );
        let mut up = abi::io_uring_files_update {
            offset: 1,
            resv: 0,
            fds: UNMAPPED,
        };
        t.rec(
            "fds at page zero",
            reg_raw(&r, reg::FILES_UPDATE, &mut up as *mut _ as u64, 1),
        );
        let mut up = abi::io_uring_files_update {
            offset: 1,
            resv: 0,
            fds: 0,
        };
        t.rec(
            "fds null",
            reg_raw(&r, reg::FILES_UPDATE, &mut up as *mut _ as u64, 1),
        );
        // fds readable for one entry only.
        let edge = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe {
            libc::mprotect(
                edge.ptr.add(page_size()).cast(),
                page_size(),
                libc::PROT_NONE,
            )
        };
        let at = edge.addr() + page_size() as u64 - 4;
        // SAFETY: the 4 bytes before the fault are ours.
        unsafe { core::ptr::write(at as usize as *mut i32, p.w) };
        let mut up = abi::io_uring_files_update {
            offset: 1,
            resv: 0,
            fds: at,
        };
        t.rec(
            "fds crossing into a fault",
            reg_raw(&r, reg::FILES_UPDATE, &mut up as *mut _ as u64, 3),
        );
        t.rec("  slots", slots(&r, 4));
    });
}

// ---------------------------------------------------------------------------
// EVENTFD
// ---------------------------------------------------------------------------

/// True if the eventfd becomes readable within `ms`; drains it.
fn signalled(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n == 1 && eventfd_take(fd) > 0
}

#[test]
fn register_eventfd() {
    diff("register_eventfd", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let ev = eventfd();
        let evp = &ev as *const i32 as u64;
        let unreg = |r: &Ring| reg_raw(r, reg::UNREGISTER_EVENTFD, 0, 0);
        t.rec("unregister with none", unreg(&r));
        t.rec("register nr 0", reg_raw(&r, reg::EVENTFD, evp, 0));
        t.rec("register nr 2", reg_raw(&r, reg::EVENTFD, evp, 2));
        t.rec("register arg null", reg_raw(&r, reg::EVENTFD, 0, 1));
        t.rec(
            "register arg at page zero",
            reg_raw(&r, reg::EVENTFD, UNMAPPED, 1),
        );
        for (name, fd) in [("fd -1", -1), ("bad fd", BAD_FD)] {
            t.rec(
                format!("register {name}"),
                reg_raw(&r, reg::EVENTFD, &fd as *const i32 as u64, 1),
            );
        }
        let f = TempFile::new("evf", b"x", libc::O_RDWR);
        t.rec(
            "register a regular file",
            reg_raw(&r, reg::EVENTFD, &f.fd as *const i32 as u64, 1),
        );
        t.rec(
            "register the ring fd",
            reg_raw(&r, reg::EVENTFD, &r.fd as *const i32 as u64, 1),
        );
        t.rec("nothing registered yet", unreg(&r));

        t.rec("register", reg_raw(&r, reg::EVENTFD, evp, 1));
        t.rec("  registering alone signals", signalled(ev, 20));
        t.rec("  nop", r.one_short(&Sqe::nop(1)));
        t.rec("  signalled by an inline completion", signalled(ev, 500));
        t.rec(
            "  nop ASYNC",
            r.one_short(&Sqe::nop(2).flags(abi::IOSQE_ASYNC)),
        );
        t.rec("  signalled by an async completion", signalled(ev, 500));
        t.rec("  no stray signal", signalled(ev, 20));
        // A pipe read that completes later.
        let p = Pipe::new(0);
        let mut buf = [0u8; 8];
        r.push(&Sqe::read(p.r, buf.as_mut_ptr(), 8, 0, 3));
        t.rec("  submit a blocking pipe read", res(r.submit(1)));
        t.rec("  not signalled before data", signalled(ev, 20));
        write_fd(p.w, b"wake");
        t.rec(
            "  pipe read",
            shorts(&r.wait_cqes(1, Duration::from_secs(2))),
        );
        t.rec("  signalled by the pipe read", signalled(ev, 500));
        // CQ flag: signalling disabled.
        r.cq_flags()
            .store(abi::IORING_CQ_EVENTFD_DISABLED, Ordering::Release);
        t.rec("  nop with EVENTFD_DISABLED", r.one_short(&Sqe::nop(4)));
        t.rec("  not signalled while disabled", signalled(ev, 50));
        r.cq_flags().store(0, Ordering::Release);
        t.rec("  nop re-enabled", r.one_short(&Sqe::nop(5)));
        t.rec("  signalled again", signalled(ev, 500));
        t.rec("register again", reg_raw(&r, reg::EVENTFD, evp, 1));
        t.rec(
            "register EVENTFD_ASYNC while registered",
            reg_raw(&r, reg::EVENTFD_ASYNC, evp, 1),
        );
        t.rec(
            "unregister with arg",
            reg_raw(&r, reg::UNREGISTER_EVENTFD, evp, 0),
        );
        t.rec(
            "unregister with nr",
            reg_raw(&r, reg::UNREGISTER_EVENTFD, 0, 1),
        );
        t.rec("unregister", unreg(&r));
        t.rec("  nop", r.one_short(&Sqe::nop(6)));
        t.rec("  not signalled after unregister", signalled(ev, 50));
        t.rec("unregister again", unreg(&r));
        // The eventfd may be closed by the program after registering.
        let ev2 = eventfd();
        t.rec(
            "register a second eventfd",
            reg_raw(&r, reg::EVENTFD, &ev2 as *const i32 as u64, 1),
        );
        let ev2b = {
            // SAFETY: dup of our own fd.
            unsafe { libc::dup(ev2) }
        };
        close_fd(ev2);
        t.rec(
            "  nop after closing the registered fd",
            r.one_short(&Sqe::nop(7)),
        );
        t.rec("  still signalled (through a dup)", signalled(ev2b, 500));
        t.rec("unregister", unreg(&r));
        close_fd(ev2b);
        close_fd(ev);
    });
}

#[test]
fn register_eventfd_async() {
    diff("register_eventfd_async", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        let ev = eventfd();
        t.rec(
            "register EVENTFD_ASYNC nr 0",
            reg_raw(&r, reg::EVENTFD_ASYNC, &ev as *const i32 as u64, 0),
        );
        t.rec(
            "register EVENTFD_ASYNC",
            reg_raw(&r, reg::EVENTFD_ASYNC, &ev as *const i32 as u64, 1),
        );
        t.rec("  nop (inline)", r.one_short(&Sqe::nop(1)));
        t.rec("  not signalled by an inline completion", signalled(ev, 50));
        t.rec(
            "  nop ASYNC (io-wq)",
            r.one_short(&Sqe::nop(2).flags(abi::IOSQE_ASYNC)),
        );
        t.rec("  signalled by a worker completion", signalled(ev, 500));
        let f = TempFile::new("evasync", b"0123456789", libc::O_RDWR);
        t.rec(
            "  fsync (always a worker)",
            r.one_short(&Sqe::fsync(f.fd, 0, 3)),
        );
        t.rec("  signalled by fsync", signalled(ev, 500));
        // A pipe read that waits for data: completed by poll/task work on
        // the kernel, not by an io-wq worker.
        let p = Pipe::new(0);
        let mut buf = [0u8; 8];
        r.push(&Sqe::read(p.r, buf.as_mut_ptr(), 8, 0, 4));
        t.rec("  submit a blocking pipe read", res(r.submit(1)));
        std::thread::sleep(Duration::from_millis(10));
        write_fd(p.w, b"wake");
        t.rec(
            "  pipe read",
            shorts(&r.wait_cqes(1, Duration::from_secs(2))),
        );
        t.rec(
            "  signalled by the pipe read completion",
            signalled(ev, 100),
        );
        t.rec("unregister", reg_raw(&r, reg::UNREGISTER_EVENTFD, 0, 0));
        close_fd(ev);
    });
}

// ---------------------------------------------------------------------------
// The call itself
// ---------------------------------------------------------------------------

#[test]
fn register_errors() {
    diff("register_errors", |b, t| {
        let Some(r) = ring(b, t, 4) else { return };
        // Use the ring once so the task has io_uring state (as a program would).
        t.rec("nop", r.one_short(&Sqe::nop(1)));
        let mut pb = probe_buf(4);
        let raw = |fd: i32, op: u32, arg: u64, nr: u32| {
            // SAFETY: `arg` is a valid probe buffer or null.
            res(unsafe { b.register(fd, op, arg as usize as *mut c_void, nr) })
        };
        t.rec("unknown opcode 250", reg_raw(&r, 250, 0, 0));
        t.rec("opcode 0x7fff_ffff", reg_raw(&r, 0x7fff_ffff, 0, 0));
        t.rec(
            "probe on fd -1 (blind)",
            raw(-1, reg::PROBE, pb.as_mut_ptr() as u64, 4),
        );
        t.rec(
            "probe on a never-open fd",
            raw(BAD_FD, reg::PROBE, pb.as_mut_ptr() as u64, 4),
        );
        t.rec("unknown opcode on a never-open fd", raw(BAD_FD, 250, 0, 0));
        let f = TempFile::new("regerr", b"x", libc::O_RDWR);
        t.rec(
            "probe on a regular file",
            raw(f.fd, reg::PROBE, pb.as_mut_ptr() as u64, 4),
        );
        t.rec("unknown opcode on a regular file", raw(f.fd, 250, 0, 0));
        t.rec(
            "probe, USE_REGISTERED_RING index 0",
            raw(
                0,
                reg::PROBE | reg::USE_REGISTERED_RING,
                pb.as_mut_ptr() as u64,
                4,
            ),
        );
        t.rec(
            "probe, USE_REGISTERED_RING index 16",
            raw(
                16,
                reg::PROBE | reg::USE_REGISTERED_RING,
                pb.as_mut_ptr() as u64,
                4,
            ),
        );
        // A dup of the ring fd is the same ring.
        // SAFETY: dup of our own fd.
        let d = unsafe { libc::dup(r.fd) };
        let mut pb2 = probe_buf(4);
        t.rec(
            "probe through a dup of the ring fd",
            raw(d, reg::PROBE, pb2.as_mut_ptr() as u64, 4),
        );
        close_fd(d);
        let fd = r.fd;
        let mut r = r;
        r.close();
        t.rec(
            "probe on a closed ring fd",
            on_closed_fd(fd, || raw(fd, reg::PROBE, pb.as_mut_ptr() as u64, 4)),
        );
    });
}
