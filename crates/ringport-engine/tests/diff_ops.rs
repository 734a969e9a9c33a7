//! Differential tests for the implemented ops (NOP, READ, WRITE, READV,
//! WRITEV, READ_FIXED, WRITE_FIXED, FSYNC, EPOLL_CTL), submission return values and
//! `io_uring_enter` errors. Each scenario runs on the kernel and on ringport;
//! CQEs, file contents and buffer contents must match.

mod common;

use common::*;
use ringport_engine::abi::{self, op};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::time::Duration;

const FILL: u8 = 0xee;

/// Runs one SQE alone and records its CQE.
fn one(t: &mut Trace, r: &Ring, label: &str, sqe: Sqe) {
    t.rec(label, r.one_short(&sqe));
}

fn lseek(fd: i32, off: i64) -> i64 {
    // SAFETY: lseek on an fd we own.
    unsafe { libc::lseek(fd, off, libc::SEEK_SET) }
}

fn fd_pos(fd: i32) -> i64 {
    // SAFETY: lseek on an fd we own.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

/// Two pages, the second PROT_NONE: `edge(n)` is an address `n` readable
/// bytes before the fault.
struct Edge(Mem);

impl Edge {
    fn new() -> Edge {
        let m = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe { libc::mprotect(m.ptr.add(page_size()).cast(), page_size(), libc::PROT_NONE) };
        Edge(m)
    }
    fn at(&self, n: usize) -> u64 {
        self.0.addr() + (page_size() - n) as u64
    }
    fn bytes(&self, n: usize) -> Vec<u8> {
        self.0.bytes()[page_size() - n..page_size()].to_vec()
    }
}

// ---------------------------------------------------------------------------
// NOP and the checks every SQE goes through
// ---------------------------------------------------------------------------

#[test]
fn ops_nop() {
    diff("ops_nop", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let pipe = Pipe::new(0);
        one(t, &r, "nop", Sqe::nop(1));
        one(
            t,
            &r,
            "nop INJECT_RESULT 42",
            Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: 42,
                ..Sqe::nop(2)
            },
        );
        one(
            t,
            &r,
            "nop INJECT_RESULT -EIO",
            Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: (-libc::EIO) as u32,
                ..Sqe::nop(3)
            },
        );
        one(
            t,
            &r,
            "nop unknown nop_flags",
            Sqe {
                op_flags: 1 << 31,
                ..Sqe::nop(4)
            },
        );
        one(
            t,
            &r,
            "nop FILE valid fd",
            Sqe {
                op_flags: abi::IORING_NOP_FILE,
                fd: pipe.r,
                ..Sqe::nop(5)
            },
        );
        one(
            t,
            &r,
            "nop FILE bad fd",
            Sqe {
                op_flags: abi::IORING_NOP_FILE,
                fd: BAD_FD,
                ..Sqe::nop(6)
            },
        );
        one(
            t,
            &r,
            "nop FILE fd -1",
            Sqe {
                op_flags: abi::IORING_NOP_FILE,
                fd: -1,
                ..Sqe::nop(7)
            },
        );
        one(
            t,
            &r,
            "nop FILE|FIXED_FILE no table",
            Sqe {
                op_flags: abi::IORING_NOP_FILE | abi::IORING_NOP_FIXED_FILE,
                fd: 0,
                ..Sqe::nop(8)
            },
        );
        one(
            t,
            &r,
            "nop FIXED_FILE without FILE",
            Sqe {
                op_flags: abi::IORING_NOP_FIXED_FILE,
                fd: 0,
                ..Sqe::nop(9)
            },
        );
        one(
            t,
            &r,
            "nop FIXED_BUFFER no buffers",
            Sqe {
                op_flags: abi::IORING_NOP_FIXED_BUFFER,
                ..Sqe::nop(10)
            },
        );
        one(
            t,
            &r,
            "nop TW",
            Sqe {
                op_flags: abi::IORING_NOP_TW,
                ..Sqe::nop(11)
            },
        );
        one(
            t,
            &r,
            "nop fd without FILE",
            Sqe {
                fd: BAD_FD,
                ..Sqe::nop(12)
            },
        );
        one(
            t,
            &r,
            "nop junk in addr/off/len",
            Sqe {
                addr: 1,
                off: 2,
                len: 3,
                addr3: 4,
                ..Sqe::nop(13)
            },
        );
        one(t, &r, "nop ASYNC", Sqe::nop(14).flags(abi::IOSQE_ASYNC));
        one(
            t,
            &r,
            "nop BUFFER_SELECT",
            Sqe::nop(15).flags(abi::IOSQE_BUFFER_SELECT),
        );
        one(
            t,
            &r,
            "nop unknown sqe flag 1<<7",
            Sqe::nop(16).flags(1 << 7),
        );
        one(
            t,
            &r,
            "nop ioprio",
            Sqe {
                ioprio: 1,
                ..Sqe::nop(17)
            },
        );
        one(
            t,
            &r,
            "nop personality",
            Sqe {
                personality: 1,
                ..Sqe::nop(18)
            },
        );
        one(t, &r, "opcode 255", Sqe::new(255, 19));
        one(t, &r, "opcode IORING_OP_LAST", Sqe::new(op::LAST, 20));
        one(t, &r, "opcode 200", Sqe::new(200, 21));
        // CQE_SKIP_SUCCESS: no CQE on success, a CQE on failure.
        r.push_all(&[
            Sqe::nop(30).flags(abi::IOSQE_CQE_SKIP_SUCCESS),
            Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: (-libc::EINVAL) as u32,
                ..Sqe::nop(31)
            }
            .flags(abi::IOSQE_CQE_SKIP_SUCCESS),
            Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: 7,
                ..Sqe::nop(32)
            }
            .flags(abi::IOSQE_CQE_SKIP_SUCCESS),
            Sqe::nop(33),
        ]);
        let (n, c) = r.run(4, 2);
        t.rec("CQE_SKIP_SUCCESS batch", (res(n), shorts(&c)));
        t.rec(
            "nothing more",
            shorts(&r.wait_cqes(1, Duration::from_millis(20))),
        );
        // A batch of 8 inline NOPs completes in order.
        for i in 0..8 {
            r.push(&Sqe::nop(100 + i));
        }
        let (n, c) = r.run(8, 8);
        t.rec("8 nops in order", (res(n), shorts(&c)));
    });
}

// ---------------------------------------------------------------------------
// READ / WRITE on regular files
// ---------------------------------------------------------------------------

#[test]
fn ops_read_file() {
    diff("ops_read_file", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let data = pattern(100, 7);
        let f = TempFile::new("read", &data, libc::O_RDWR);
        let mut buf = vec![FILL; 256];
        let bp = buf.as_mut_ptr();
        let rd = |t: &mut Trace, label: &str, fd: i32, len: u32, off: u64, buf: &mut Vec<u8>| {
            buf.fill(FILL);
            one(t, &r, label, Sqe::read(fd, bp, len, off, 1));
            t.rec(format!("{label}: buffer"), buf.clone());
        };
        rd(t, "read 64 @0", f.fd, 64, 0, &mut buf);
        rd(t, "read 64 @64 (short)", f.fd, 64, 64, &mut buf);
        rd(t, "read 64 @100 (EOF)", f.fd, 64, 100, &mut buf);
        rd(t, "read 64 @5000 (past EOF)", f.fd, 64, 5000, &mut buf);
        rd(t, "read 0 @0", f.fd, 0, 0, &mut buf);
        rd(t, "read 256 @0 (whole file)", f.fd, 256, 0, &mut buf);
        // The file position: offset -1 uses and advances it.
        lseek(f.fd, 0);
        rd(t, "read 10 @-1 first", f.fd, 10, u64::MAX, &mut buf);
        rd(t, "read 10 @-1 second", f.fd, 10, u64::MAX, &mut buf);
        t.rec("position after two @-1 reads", fd_pos(f.fd));
        rd(t, "read 10 @50 (explicit offset)", f.fd, 10, 50, &mut buf);
        t.rec("position unchanged by explicit offset", fd_pos(f.fd));
        lseek(f.fd, 95);
        rd(t, "read 10 @-1 near EOF", f.fd, 10, u64::MAX, &mut buf);
        t.rec("position at EOF", fd_pos(f.fd));
        rd(t, "read 10 @-1 at EOF", f.fd, 10, u64::MAX, &mut buf);
        rd(t, "read @-2", f.fd, 10, (-2i64) as u64, &mut buf);
        rd(t, "read @i64::MIN", f.fd, 10, i64::MIN as u64, &mut buf);
        rd(t, "read @i64::MAX", f.fd, 10, i64::MAX as u64, &mut buf);
        // Bad fds.
        rd(t, "read bad fd", BAD_FD, 10, 0, &mut buf);
        rd(t, "read fd -1", -1, 10, 0, &mut buf);
        let wo = f.open(libc::O_WRONLY);
        rd(t, "read O_WRONLY fd", wo, 10, 0, &mut buf);
        close_fd(wo);
        let dir = open_path(&std::env::temp_dir(), libc::O_RDONLY | libc::O_DIRECTORY);
        rd(t, "read a directory", dir, 10, 0, &mut buf);
        close_fd(dir);
        // Bad buffers.
        for (label, addr) in [
            ("read to page zero", UNMAPPED),
            ("read to kernel address", KERNEL_ADDR),
            ("read to kernel half start", KERNEL_ADDR2),
            ("read to PROT_NONE page", guard_page()),
            ("read to null", 0),
        ] {
            one(t, &r, label, Sqe::rw(op::READ, f.fd, addr, 10, 0, 2));
        }
        one(
            t,
            &r,
            "read 0 bytes to null",
            Sqe::rw(op::READ, f.fd, 0, 0, 0, 2),
        );
        one(
            t,
            &r,
            "read 0 bytes to kernel address",
            Sqe::rw(op::READ, f.fd, KERNEL_ADDR, 0, 0, 2),
        );
        one(
            t,
            &r,
            "read len u32::MAX into 256 bytes",
            Sqe::read(f.fd, bp, u32::MAX, 0, 2),
        );
        t.rec("read len u32::MAX: buffer", buf[..120].to_vec());
        let edge = Edge::new();
        one(
            t,
            &r,
            "read 64 into 16 bytes before a fault",
            Sqe::rw(op::READ, f.fd, edge.at(16), 64, 0, 3),
        );
        t.rec("  bytes before the fault", edge.bytes(16));
        // Flags and fields.
        one(
            t,
            &r,
            "read RWF_NOWAIT (page cache)",
            Sqe {
                op_flags: libc::RWF_NOWAIT as u32,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read unknown rw_flags",
            Sqe {
                op_flags: 1 << 30,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read RWF_HIPRI (no IOPOLL)",
            Sqe {
                op_flags: libc::RWF_HIPRI as u32,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read ioprio class 7",
            Sqe {
                ioprio: 7 << 13,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read ioprio BE/4",
            Sqe {
                ioprio: (2 << 13) | 4,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read attr_type_mask 2",
            Sqe {
                pad2: 2,
                ..Sqe::read(f.fd, bp, 10, 0, 4)
            },
        );
        one(
            t,
            &r,
            "read ASYNC",
            Sqe::read(f.fd, bp, 30, 5, 5).flags(abi::IOSQE_ASYNC),
        );
        t.rec("read ASYNC: buffer", buf[..40].to_vec());
        t.rec("file unchanged", f.contents() == data);
    });
}

#[test]
fn ops_write_file() {
    diff("ops_write_file", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("write", &pattern(100, 3), libc::O_RDWR);
        let src = pattern(64, 99);
        let sp = src.as_ptr();
        one(t, &r, "write 10 @0", Sqe::write(f.fd, sp, 10, 0, 1));
        one(
            t,
            &r,
            "write 10 @200 (past EOF)",
            Sqe::write(f.fd, sp, 10, 200, 2),
        );
        t.rec("file after writes", f.contents());
        lseek(f.fd, 5);
        one(
            t,
            &r,
            "write 3 @-1",
            Sqe::write(f.fd, sp.wrapping_add(20), 3, u64::MAX, 3),
        );
        one(
            t,
            &r,
            "write 3 @-1 again",
            Sqe::write(f.fd, sp.wrapping_add(30), 3, u64::MAX, 4),
        );
        t.rec("position after @-1 writes", fd_pos(f.fd));
        one(t, &r, "write 0 bytes", Sqe::write(f.fd, sp, 0, 0, 5));
        one(
            t,
            &r,
            "write @-2",
            Sqe::write(f.fd, sp, 3, (-2i64) as u64, 6),
        );
        one(t, &r, "write bad fd", Sqe::write(BAD_FD, sp, 3, 0, 7));
        let ro = f.open(libc::O_RDONLY);
        one(t, &r, "write O_RDONLY fd", Sqe::write(ro, sp, 3, 0, 8));
        close_fd(ro);
        for (label, addr) in [
            ("write from page zero", UNMAPPED),
            ("write from kernel address", KERNEL_ADDR),
            ("write from PROT_NONE page", guard_page()),
            ("write from null", 0),
        ] {
            one(t, &r, label, Sqe::rw(op::WRITE, f.fd, addr, 10, 0, 9));
        }
        let mut edge = Edge::new();
        edge.0.bytes_mut()[page_size() - 16..page_size()].copy_from_slice(&[0x5a; 16]);
        one(
            t,
            &r,
            "write 64 from 16 bytes before a fault",
            Sqe::rw(op::WRITE, f.fd, edge.at(16), 64, 300, 10),
        );
        one(
            t,
            &r,
            "write RWF_APPEND",
            Sqe {
                op_flags: libc::RWF_APPEND as u32,
                ..Sqe::write(f.fd, sp, 4, 0, 11)
            },
        );
        one(
            t,
            &r,
            "write RWF_DSYNC",
            Sqe {
                op_flags: libc::RWF_DSYNC as u32,
                ..Sqe::write(f.fd, sp, 4, 40, 12)
            },
        );
        one(
            t,
            &r,
            "write unknown rw_flags",
            Sqe {
                op_flags: 1 << 30,
                ..Sqe::write(f.fd, sp, 4, 0, 13)
            },
        );
        one(
            t,
            &r,
            "write ASYNC",
            Sqe::write(f.fd, sp.wrapping_add(40), 8, 60, 14).flags(abi::IOSQE_ASYNC),
        );
        let ap = f.open(libc::O_WRONLY | libc::O_APPEND);
        one(t, &r, "write O_APPEND fd @0", Sqe::write(ap, sp, 5, 0, 15));
        close_fd(ap);
        t.rec("final file", f.contents());
        t.rec("final position", fd_pos(f.fd));
    });
}

// ---------------------------------------------------------------------------
// READV / WRITEV
// ---------------------------------------------------------------------------

fn iov(p: *const u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: p as *mut c_void,
        iov_len: len,
    }
}

#[test]
fn ops_readv_writev() {
    diff("ops_readv_writev", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("rv", &pattern(100, 11), libc::O_RDWR);
        let mut a = vec![FILL; 10];
        let mut bb = vec![FILL; 20];
        let mut c = vec![FILL; 30];
        let v = [
            iov(a.as_mut_ptr(), 10),
            iov(bb.as_mut_ptr(), 20),
            iov(c.as_mut_ptr(), 30),
        ];
        let snap =
            |t: &mut Trace, label: &str, a: &mut Vec<u8>, bb: &mut Vec<u8>, c: &mut Vec<u8>| {
                t.rec(
                    format!("{label}: buffers"),
                    (a.clone(), bb.clone(), c.clone()),
                );
                a.fill(FILL);
                bb.fill(FILL);
                c.fill(FILL);
            };
        one(
            t,
            &r,
            "readv 3 iovecs @0",
            Sqe::readv(f.fd, v.as_ptr(), 3, 0, 1),
        );
        snap(t, "readv @0", &mut a, &mut bb, &mut c);
        one(
            t,
            &r,
            "readv @80 (short)",
            Sqe::readv(f.fd, v.as_ptr(), 3, 80, 2),
        );
        snap(t, "readv @80", &mut a, &mut bb, &mut c);
        one(
            t,
            &r,
            "readv @100 (EOF)",
            Sqe::readv(f.fd, v.as_ptr(), 3, 100, 3),
        );
        one(
            t,
            &r,
            "readv 0 iovecs",
            Sqe::readv(f.fd, v.as_ptr(), 0, 0, 4),
        );
        one(
            t,
            &r,
            "readv 1025 iovecs",
            Sqe::readv(f.fd, v.as_ptr(), 1025, 0, 5),
        );
        one(
            t,
            &r,
            "readv iovecs at page zero",
            Sqe::rw(op::READV, f.fd, UNMAPPED, 2, 0, 6),
        );
        one(
            t,
            &r,
            "readv iovecs at kernel address",
            Sqe::rw(op::READV, f.fd, KERNEL_ADDR, 2, 0, 7),
        );
        one(
            t,
            &r,
            "readv iovecs at null",
            Sqe::rw(op::READV, f.fd, 0, 2, 0, 7),
        );
        // The iovec array runs into a PROT_NONE page.
        let edge = Edge::new();
        // SAFETY: writing one iovec into the 16 readable bytes before the fault.
        unsafe { core::ptr::write_unaligned(edge.at(16) as usize as *mut libc::iovec, v[0]) };
        one(
            t,
            &r,
            "readv iovec array crossing into a fault",
            Sqe::rw(op::READV, f.fd, edge.at(16), 2, 0, 8),
        );
        snap(t, "crossing", &mut a, &mut bb, &mut c);
        let bad2 = [v[0], iov(UNMAPPED as *const u8, 20), v[2]];
        one(
            t,
            &r,
            "readv 2nd iovec at page zero",
            Sqe::readv(f.fd, bad2.as_ptr(), 3, 0, 9),
        );
        snap(t, "2nd bad", &mut a, &mut bb, &mut c);
        let bad1 = [iov(UNMAPPED as *const u8, 20), v[1]];
        one(
            t,
            &r,
            "readv 1st iovec at page zero",
            Sqe::readv(f.fd, bad1.as_ptr(), 2, 0, 10),
        );
        let badk = [v[0], iov(KERNEL_ADDR as *const u8, 20)];
        one(
            t,
            &r,
            "readv iovec at kernel address",
            Sqe::readv(f.fd, badk.as_ptr(), 2, 0, 11),
        );
        snap(t, "kernel iovec", &mut a, &mut bb, &mut c);
        let huge = [iov(a.as_mut_ptr(), usize::MAX)];
        one(
            t,
            &r,
            "readv iov_len usize::MAX",
            Sqe::readv(f.fd, huge.as_ptr(), 1, 0, 12),
        );
        let zero = [iov(core::ptr::null(), 0), v[0]];
        one(
            t,
            &r,
            "readv null zero-length iovec first",
            Sqe::readv(f.fd, zero.as_ptr(), 2, 0, 13),
        );
        snap(t, "zero-length first", &mut a, &mut bb, &mut c);
        one(
            t,
            &r,
            "readv bad fd",
            Sqe::readv(BAD_FD, v.as_ptr(), 3, 0, 14),
        );
        lseek(f.fd, 40);
        one(
            t,
            &r,
            "readv @-1",
            Sqe::readv(f.fd, v.as_ptr(), 2, u64::MAX, 15),
        );
        t.rec("position after readv @-1", fd_pos(f.fd));
        snap(t, "readv @-1", &mut a, &mut bb, &mut c);
        one(
            t,
            &r,
            "readv ASYNC",
            Sqe::readv(f.fd, v.as_ptr(), 3, 1, 16).flags(abi::IOSQE_ASYNC),
        );
        snap(t, "readv ASYNC", &mut a, &mut bb, &mut c);

        // WRITEV
        let w1 = pattern(5, 1);
        let w2 = pattern(7, 2);
        let wv = [iov(w1.as_ptr(), 5), iov(w2.as_ptr(), 7)];
        one(
            t,
            &r,
            "writev 2 iovecs @10",
            Sqe::writev(f.fd, wv.as_ptr(), 2, 10, 20),
        );
        lseek(f.fd, 90);
        one(
            t,
            &r,
            "writev @-1 (extends)",
            Sqe::writev(f.fd, wv.as_ptr(), 2, u64::MAX, 21),
        );
        t.rec("position after writev @-1", fd_pos(f.fd));
        let wbad = [wv[0], iov(UNMAPPED as *const u8, 8), wv[1]];
        one(
            t,
            &r,
            "writev 2nd iovec at page zero",
            Sqe::writev(f.fd, wbad.as_ptr(), 3, 200, 22),
        );
        one(
            t,
            &r,
            "writev iovecs at page zero",
            Sqe::rw(op::WRITEV, f.fd, UNMAPPED, 1, 0, 23),
        );
        one(
            t,
            &r,
            "writev 1025 iovecs",
            Sqe::writev(f.fd, wv.as_ptr(), 1025, 0, 24),
        );
        one(
            t,
            &r,
            "writev ASYNC",
            Sqe::writev(f.fd, wv.as_ptr(), 2, 30, 25).flags(abi::IOSQE_ASYNC),
        );
        let ro = f.open(libc::O_RDONLY);
        one(
            t,
            &r,
            "writev O_RDONLY fd",
            Sqe::writev(ro, wv.as_ptr(), 2, 0, 26),
        );
        close_fd(ro);
        t.rec("final file", f.contents());
    });
}

// ---------------------------------------------------------------------------
// READ_FIXED / WRITE_FIXED
// ---------------------------------------------------------------------------

#[test]
fn ops_fixed_buffers() {
    diff("ops_fixed_buffers", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("fixed", &pattern(100, 21), libc::O_RDWR);
        let mut b0 = Mem::rw(2 * page_size());
        let mut b1 = Mem::rw(page_size());
        b0.bytes_mut().fill(FILL);
        b1.bytes_mut().fill(FILL);
        let (a0, a1) = (b0.addr(), b1.addr());
        let ps = page_size() as u64;
        one(
            t,
            &r,
            "read_fixed before registering",
            Sqe::rw(op::READ_FIXED, f.fd, a0, 10, 0, 1),
        );
        t.rec(
            "register 2 buffers",
            res(r.register_buffers(&[(a0, 2 * ps), (a1, ps)])),
        );
        let rf = |t: &mut Trace, label: &str, addr: u64, len: u32, off: u64, idx: u16| {
            one(
                t,
                &r,
                label,
                Sqe {
                    buf_index: idx,
                    ..Sqe::rw(op::READ_FIXED, f.fd, addr, len, off, 2)
                },
            );
        };
        rf(t, "read_fixed buf0 @0", a0, 100, 0, 0);
        rf(
            t,
            "read_fixed buf0 across its page boundary",
            a0 + ps - 50,
            100,
            0,
            0,
        );
        rf(
            t,
            "read_fixed buf0 ending exactly at its end",
            a0 + 2 * ps - 20,
            20,
            10,
            0,
        );
        rf(
            t,
            "read_fixed buf0 past its end",
            a0 + 2 * ps - 10,
            20,
            0,
            0,
        );
        rf(t, "read_fixed buf0 before its start", a0 - 8, 20, 0, 0);
        rf(t, "read_fixed buf0 len 0", a0, 0, 0, 0);
        rf(t, "read_fixed buf1", a1 + 100, 50, 25, 1);
        rf(t, "read_fixed buf1 index with buf0 address", a0, 10, 0, 1);
        rf(t, "read_fixed buf_index 2 (out of range)", a0, 10, 0, 2);
        rf(t, "read_fixed buf_index 0xffff", a0, 10, 0, 0xffff);
        rf(t, "read_fixed short (EOF)", a0 + 1000, 200, 50, 0);
        rf(t, "read_fixed @100 (EOF)", a0, 10, 100, 0);
        lseek(f.fd, 30);
        rf(t, "read_fixed @-1", a0 + 2000, 10, u64::MAX, 0);
        t.rec("position after read_fixed @-1", fd_pos(f.fd));
        one(
            t,
            &r,
            "read_fixed bad fd",
            Sqe {
                buf_index: 0,
                ..Sqe::rw(op::READ_FIXED, BAD_FD, a0, 10, 0, 3)
            },
        );
        one(
            t,
            &r,
            "read_fixed bad fd and bad index",
            Sqe {
                buf_index: 9,
                ..Sqe::rw(op::READ_FIXED, BAD_FD, a0, 10, 0, 3)
            },
        );
        one(
            t,
            &r,
            "read_fixed ASYNC",
            Sqe {
                buf_index: 1,
                ..Sqe::rw(op::READ_FIXED, f.fd, a1 + 500, 40, 60, 4)
            }
            .flags(abi::IOSQE_ASYNC),
        );
        t.rec("buf0 contents", b0.bytes().to_vec());
        t.rec("buf1 contents", b1.bytes().to_vec());
        // WRITE_FIXED from the registered buffers.
        b1.bytes_mut()[..64].copy_from_slice(&pattern(64, 77));
        let wf = |t: &mut Trace, label: &str, addr: u64, len: u32, off: u64, idx: u16| {
            one(
                t,
                &r,
                label,
                Sqe {
                    buf_index: idx,
                    ..Sqe::rw(op::WRITE_FIXED, f.fd, addr, len, off, 5)
                },
            );
        };
        wf(t, "write_fixed buf1 @0", a1, 32, 0, 1);
        wf(t, "write_fixed buf1 @150 (extends)", a1 + 32, 32, 150, 1);
        wf(t, "write_fixed past buffer end", a1 + ps - 4, 8, 0, 1);
        wf(t, "write_fixed buf_index 5", a1, 8, 0, 5);
        lseek(f.fd, 3);
        wf(t, "write_fixed @-1", a1 + 8, 4, u64::MAX, 1);
        t.rec("position after write_fixed @-1", fd_pos(f.fd));
        t.rec("file after write_fixed", f.contents());
        // Unregister: the buffers are gone.
        // SAFETY: no argument.
        t.rec(
            "unregister",
            res(unsafe { r.register_raw(abi::reg::UNREGISTER_BUFFERS, core::ptr::null_mut(), 0) }),
        );
        rf(t, "read_fixed after unregister", a0, 10, 0, 0);
        // A sparse slot (null, 0) cannot be used.
        t.rec(
            "register buf0 + sparse slot",
            res(r.register_buffers(&[(a0, 2 * ps), (0, 0)])),
        );
        rf(t, "read_fixed sparse slot", a0, 10, 0, 1);
        rf(t, "read_fixed slot 0 still fine", a0, 10, 0, 0);
        // NOP with FIXED_BUFFER checks the index.
        one(
            t,
            &r,
            "nop FIXED_BUFFER slot 0",
            Sqe {
                op_flags: abi::IORING_NOP_FIXED_BUFFER,
                buf_index: 0,
                ..Sqe::nop(6)
            },
        );
        one(
            t,
            &r,
            "nop FIXED_BUFFER sparse slot",
            Sqe {
                op_flags: abi::IORING_NOP_FIXED_BUFFER,
                buf_index: 1,
                ..Sqe::nop(7)
            },
        );
        one(
            t,
            &r,
            "nop FIXED_BUFFER slot 9",
            Sqe {
                op_flags: abi::IORING_NOP_FIXED_BUFFER,
                buf_index: 9,
                ..Sqe::nop(8)
            },
        );
    });
}

// ---------------------------------------------------------------------------
// FSYNC
// ---------------------------------------------------------------------------

#[test]
fn ops_fsync() {
    diff("ops_fsync", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("fsync", b"data", libc::O_RDWR);
        let pipe = Pipe::new(0);
        one(t, &r, "fsync", Sqe::fsync(f.fd, 0, 1));
        one(
            t,
            &r,
            "fsync DATASYNC",
            Sqe::fsync(f.fd, abi::IORING_FSYNC_DATASYNC, 2),
        );
        one(t, &r, "fsync unknown flag", Sqe::fsync(f.fd, 2, 3));
        one(
            t,
            &r,
            "fsync range",
            Sqe {
                off: 1,
                len: 2,
                ..Sqe::fsync(f.fd, 0, 4)
            },
        );
        one(t, &r, "fsync bad fd", Sqe::fsync(BAD_FD, 0, 5));
        one(t, &r, "fsync fd -1", Sqe::fsync(-1, 0, 5));
        one(t, &r, "fsync pipe", Sqe::fsync(pipe.w, 0, 6));
        let ro = f.open(libc::O_RDONLY);
        one(t, &r, "fsync O_RDONLY fd", Sqe::fsync(ro, 0, 7));
        close_fd(ro);
        let null = open_path(std::path::Path::new("/dev/null"), libc::O_WRONLY);
        one(t, &r, "fsync /dev/null", Sqe::fsync(null, 0, 8));
        close_fd(null);
        one(
            t,
            &r,
            "fsync addr set",
            Sqe {
                addr: 1,
                ..Sqe::fsync(f.fd, 0, 9)
            },
        );
        one(
            t,
            &r,
            "fsync buf_index set",
            Sqe {
                buf_index: 1,
                ..Sqe::fsync(f.fd, 0, 10)
            },
        );
        one(
            t,
            &r,
            "fsync file_index set",
            Sqe {
                file_index: 1,
                ..Sqe::fsync(f.fd, 0, 11)
            },
        );
        one(
            t,
            &r,
            "fsync ioprio set",
            Sqe {
                ioprio: 1,
                ..Sqe::fsync(f.fd, 0, 12)
            },
        );
        one(
            t,
            &r,
            "fsync ASYNC",
            Sqe::fsync(f.fd, 0, 13).flags(abi::IOSQE_ASYNC),
        );
    });
}

// ---------------------------------------------------------------------------
// Fixed files
// ---------------------------------------------------------------------------

#[test]
fn ops_fixed_files() {
    diff("ops_fixed_files", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let fa = TempFile::new("ffa", &pattern(100, 1), libc::O_RDWR);
        let fb = TempFile::new("ffb", &pattern(50, 2), libc::O_RDWR);
        let mut buf = vec![FILL; 128];
        let bp = buf.as_mut_ptr();
        let fixed = |idx: i32, len: u32, off: u64, ud: u64| {
            Sqe::read(idx, bp, len, off, ud).flags(abi::IOSQE_FIXED_FILE)
        };
        one(t, &r, "fixed read, no table", fixed(0, 10, 0, 1));
        // Registered: [a, sparse, b]; the table holds its own reference.
        let a2 = fa.open(libc::O_RDWR);
        t.rec(
            "register [a, -1, b]",
            res(r.register_files(&[a2, -1, fb.fd])),
        );
        close_fd(a2);
        one(
            t,
            &r,
            "fixed read slot 0 (fd closed since)",
            fixed(0, 100, 0, 2),
        );
        t.rec("slot 0 data", buf.clone());
        buf.fill(FILL);
        one(t, &r, "fixed read slot 2", fixed(2, 100, 0, 3));
        t.rec("slot 2 data", buf.clone());
        buf.fill(FILL);
        one(t, &r, "fixed read sparse slot 1", fixed(1, 10, 0, 4));
        one(
            t,
            &r,
            "fixed read slot 3 (out of range)",
            fixed(3, 10, 0, 5),
        );
        one(t, &r, "fixed read slot -1", fixed(-1, 10, 0, 6));
        one(t, &r, "fixed read slot i32::MAX", fixed(i32::MAX, 10, 0, 7));
        one(t, &r, "fixed read slot 0x10000", fixed(0x10000, 10, 0, 7));
        // Offset -1 uses the registered file's position, which the table
        // shares with the original open file description.
        let a3 = fa.open(libc::O_RDWR);
        t.rec("update slot 1 <- a3", res(r.files_update(1, &[a3])));
        lseek(a3, 10);
        one(t, &r, "fixed read slot 1 @-1", fixed(1, 5, u64::MAX, 8));
        t.rec("@-1 data", buf[..5].to_vec());
        t.rec("a3 position moved", fd_pos(a3));
        close_fd(a3);
        t.rec(
            "update [skip, -1] at 0",
            res(r.files_update(0, &[abi::IORING_REGISTER_FILES_SKIP, -1])),
        );
        one(t, &r, "slot 0 kept by skip", fixed(0, 4, 0, 9));
        one(t, &r, "slot 1 cleared", fixed(1, 4, 0, 10));
        // Writes and fsync through the table.
        let src = pattern(8, 200);
        one(
            t,
            &r,
            "fixed write slot 2",
            Sqe::write(2, src.as_ptr(), 8, 4, 11).flags(abi::IOSQE_FIXED_FILE),
        );
        let v = [iov(src.as_ptr(), 3)];
        one(
            t,
            &r,
            "fixed writev slot 2",
            Sqe::writev(2, v.as_ptr(), 1, 20, 12).flags(abi::IOSQE_FIXED_FILE),
        );
        one(
            t,
            &r,
            "fixed fsync slot 2",
            Sqe::fsync(2, 0, 13).flags(abi::IOSQE_FIXED_FILE),
        );
        one(
            t,
            &r,
            "fixed fsync slot 1 (cleared)",
            Sqe::fsync(1, 0, 14).flags(abi::IOSQE_FIXED_FILE),
        );
        one(
            t,
            &r,
            "fixed read ASYNC slot 0",
            fixed(0, 10, 90, 15).flags(abi::IOSQE_ASYNC),
        );
        one(
            t,
            &r,
            "nop FILE|FIXED_FILE slot 0",
            Sqe {
                op_flags: abi::IORING_NOP_FILE | abi::IORING_NOP_FIXED_FILE,
                fd: 0,
                ..Sqe::nop(16)
            },
        );
        one(
            t,
            &r,
            "nop FILE|FIXED_FILE slot 1",
            Sqe {
                op_flags: abi::IORING_NOP_FILE | abi::IORING_NOP_FIXED_FILE,
                fd: 1,
                ..Sqe::nop(17)
            },
        );
        one(
            t,
            &r,
            "nop FILE with IOSQE_FIXED_FILE slot 0",
            Sqe {
                op_flags: abi::IORING_NOP_FILE,
                fd: 0,
                ..Sqe::nop(18)
            }
            .flags(abi::IOSQE_FIXED_FILE),
        );
        t.rec("file b", fb.contents());
        // SAFETY: no argument.
        t.rec(
            "unregister",
            res(unsafe { r.register_raw(abi::reg::UNREGISTER_FILES, core::ptr::null_mut(), 0) }),
        );
        one(t, &r, "fixed read after unregister", fixed(0, 10, 0, 19));
    });
}

// ---------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------

#[test]
fn ops_pipes() {
    diff("ops_pipes", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let mut buf = vec![FILL; 64];
        let bp = buf.as_mut_ptr();
        // Data already there.
        let p = Pipe::new(0);
        write_fd(p.w, b"hello");
        one(t, &r, "read pipe with data", Sqe::read(p.r, bp, 64, 0, 1));
        t.rec("data", buf[..8].to_vec());
        write_fd(p.w, b"offset");
        one(
            t,
            &r,
            "read pipe @12345 (offset ignored)",
            Sqe::read(p.r, bp, 64, 12345, 2),
        );
        write_fd(p.w, b"pos");
        one(t, &r, "read pipe @-1", Sqe::read(p.r, bp, 64, u64::MAX, 3));
        write_fd(p.w, b"0123456789");
        one(t, &r, "read pipe 4 of 10", Sqe::read(p.r, bp, 4, 0, 4));
        one(t, &r, "read pipe rest", Sqe::read(p.r, bp, 64, 0, 5));
        t.rec("rest data", buf[..8].to_vec());
        // Writes to a pipe.
        one(
            t,
            &r,
            "write pipe",
            Sqe::write(p.w, b"abc".as_ptr(), 3, 0, 6),
        );
        t.rec("pipe got", read_fd(p.r, 16));
        one(
            t,
            &r,
            "write pipe @777",
            Sqe::write(p.w, b"xyz".as_ptr(), 3, 777, 7),
        );
        t.rec("pipe got", read_fd(p.r, 16));
        one(t, &r, "fsync pipe", Sqe::fsync(p.r, 0, 8));

        // A blocking pipe read whose data arrives later from another thread.
        buf.fill(FILL);
        r.push(&Sqe::read(p.r, bp, 64, 0, 10));
        t.rec("submit blocking read", res(r.submit(1)));
        t.rec(
            "nothing yet (1 ms wait)",
            res(r.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(1))),
        );
        t.rec("still nothing", shorts(&r.reap()));
        let w = p.w;
        let th = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            write_fd(w, b"late data")
        });
        let c = r.wait_cqes(1, Duration::from_secs(5));
        th.join().unwrap();
        t.rec("late read", shorts(&c));
        t.rec("late data", buf[..12].to_vec());

        // READV on an empty pipe: the iovecs are copied at submission, so
        // changing them afterwards does not matter (FEAT_SUBMIT_STABLE).
        buf.fill(FILL);
        let mut v = vec![iov(bp, 4), iov(bp.wrapping_add(8), 4)];
        r.push(&Sqe::readv(p.r, v.as_ptr(), 2, 0, 11));
        t.rec("submit blocking readv", res(r.submit(1)));
        v[0] = iov(UNMAPPED as *const u8, 4);
        v[1] = iov(UNMAPPED as *const u8, 4);
        let th = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            write_fd(w, b"ABCDEFGH")
        });
        let c = r.wait_cqes(1, Duration::from_secs(5));
        th.join().unwrap();
        t.rec("readv after iovecs changed", shorts(&c));
        t.rec("readv data", buf[..12].to_vec());
        drop(v);

        // Two blocked readers, one write that satisfies both.
        buf.fill(FILL);
        let mut buf2 = vec![FILL; 8];
        r.push_all(&[
            Sqe::read(p.r, bp, 5, 0, 20),
            Sqe::read(p.r, buf2.as_mut_ptr(), 5, 0, 21),
        ]);
        t.rec("submit two blocking reads", res(r.submit(2)));
        std::thread::sleep(Duration::from_millis(10));
        write_fd(p.w, b"0123456789");
        let c = sorted(r.wait_cqes(2, Duration::from_secs(5)));
        t.rec("two reads", shorts(&c));
        let mut got: Vec<u8> = buf[..5].iter().chain(buf2[..5].iter()).copied().collect();
        got.sort();
        t.rec("two reads data (as a multiset)", got);

        // EOF: the write end is closed.
        let mut p2 = Pipe::new(0);
        p2.close_w();
        one(
            t,
            &r,
            "read pipe after writer closed",
            Sqe::read(p2.r, bp, 8, 0, 30),
        );
        // A blocked read sees EOF when the writer goes away.
        let mut p3 = Pipe::new(0);
        r.push(&Sqe::read(p3.r, bp, 8, 0, 31));
        t.rec("submit read, then close writer", res(r.submit(1)));
        std::thread::sleep(Duration::from_millis(10));
        p3.close_w();
        t.rec(
            "blocked read at EOF",
            shorts(&r.wait_cqes(1, Duration::from_secs(5))),
        );
        // EPIPE: the read end is closed (SIGPIPE is ignored by the test runtime).
        let mut p4 = Pipe::new(0);
        p4.close_r();
        one(
            t,
            &r,
            "write pipe with reader closed",
            Sqe::write(p4.w, b"x".as_ptr(), 1, 0, 32),
        );
        // O_NONBLOCK pipe, empty: the read waits for data all the same
        // (pipes support NOWAIT, so io_uring polls instead of failing).
        let p5 = Pipe::new(libc::O_NONBLOCK);
        buf.fill(FILL);
        r.push(&Sqe::read(p5.r, bp, 8, 0, 33));
        t.rec("submit read on an empty O_NONBLOCK pipe", res(r.submit(1)));
        t.rec(
            "  after 20 ms",
            shorts(&r.wait_cqes(1, Duration::from_millis(20))),
        );
        write_fd(p5.w, b"nbdata");
        t.rec(
            "  after data arrives",
            shorts(&r.wait_cqes(1, Duration::from_millis(1000))),
        );
        t.rec("  data", buf[..8].to_vec());
        t.rec("  left in the pipe", read_fd(p5.r, 16));
        // A bad buffer on a pipe with data.
        write_fd(p5.w, b"data");
        one(
            t,
            &r,
            "read pipe to page zero",
            Sqe::rw(op::READ, p5.r, UNMAPPED, 8, 0, 34),
        );
        one(
            t,
            &r,
            "write pipe from page zero",
            Sqe::rw(op::WRITE, p5.w, UNMAPPED, 8, 0, 35),
        );
        t.rec("pipe still holds", read_fd(p5.r, 16));
    });
}

// ---------------------------------------------------------------------------
// Batches: CQEs of requests that may complete in any order, by user_data.
// ---------------------------------------------------------------------------

#[test]
fn ops_batch() {
    diff("ops_batch", |b, t| {
        let Some(r) = ring(b, t, 16, 0) else { return };
        let f = TempFile::new("batch", &pattern(200, 5), libc::O_RDWR);
        let g = TempFile::new("batch2", b"", libc::O_RDWR);
        let mut bufs = vec![vec![FILL; 32]; 4];
        let src = pattern(32, 9);
        let sqes = [
            Sqe::nop(1),
            Sqe::read(f.fd, bufs[0].as_mut_ptr(), 32, 0, 2),
            Sqe::read(f.fd, bufs[1].as_mut_ptr(), 32, 190, 3),
            Sqe::write(g.fd, src.as_ptr(), 32, 0, 4),
            Sqe::write(g.fd, src.as_ptr(), 16, 64, 5).flags(abi::IOSQE_ASYNC),
            Sqe::read(f.fd, bufs[2].as_mut_ptr(), 32, 100, 6).flags(abi::IOSQE_ASYNC),
            Sqe::fsync(g.fd, 0, 7),
            Sqe::read(BAD_FD, bufs[3].as_mut_ptr(), 32, 0, 8),
            Sqe::nop(9).flags(abi::IOSQE_ASYNC),
            Sqe {
                op_flags: abi::IORING_NOP_INJECT_RESULT,
                len: 5,
                ..Sqe::nop(10)
            },
        ];
        r.push_all(&sqes);
        let (n, c) = r.run(sqes.len() as u32, sqes.len());
        t.rec("submitted", res(n));
        t.rec("CQEs by user_data", shorts(&sorted(c)));
        t.rec("buffers", bufs.clone());
        t.rec("file g", g.contents());
        // A second round with the SQ wrapping.
        for round in 0..3u64 {
            for i in 0..12u64 {
                r.push(&Sqe::read(
                    f.fd,
                    bufs[(i % 3) as usize].as_mut_ptr(),
                    8,
                    i * 8,
                    round * 100 + i,
                ));
            }
            let (n, c) = r.run(12, 12);
            t.rec(format!("round {round}"), (res(n), shorts(&sorted(c))));
        }
    });
}

/// A submit of many positional reads (which ringport may share with a
/// helper thread, `engine/par.rs`): the CQEs come in SQE order, as the
/// kernel's inline completions do, with the results and buffers the
/// kernel gives, including a read of a pipe at an offset (a stream read,
/// in its place), a bad buffer, reads at and past the end of the file, and
/// reads whose buffers overlap (the last one's bytes win, as in order).
#[test]
fn ops_read_batch_order() {
    diff("ops_read_batch_order", |b, t| {
        let Some(r) = ring(b, t, 64, 0) else { return };
        let f = TempFile::new("readbatch", &pattern(64 * 1024, 3), libc::O_RDWR);
        let pipe = Pipe::new(0);
        // SAFETY: writing 10 bytes from a local array into our pipe.
        assert_eq!(unsafe { libc::write(pipe.w, b"pipe bytes".as_ptr().cast(), 10) }, 10);
        let mut bufs = vec![vec![FILL; 4096]; 24];
        let mut sqes: Vec<Sqe> = Vec::new();
        for (i, buf) in bufs.iter_mut().enumerate() {
            let off = match i {
                5 => 64 * 1024 - 100, // short: the file's last 100 bytes
                9 => 64 * 1024,       // at the end: 0
                13 => 1 << 30,        // far past the end: 0
                _ => ((i * 7919) % 15 * 4096 + i * 13) as u64,
            };
            sqes.push(Sqe::read(f.fd, buf.as_mut_ptr(), 4096, off, i as u64));
        }
        let mut pbuf = vec![FILL; 32];
        sqes.insert(7, Sqe::read(pipe.r, pbuf.as_mut_ptr(), 32, 0, 100));
        sqes.insert(12, Sqe::read(f.fd, 8 as *mut u8, 4096, 0, 101));
        r.push_all(&sqes);
        let (n, c) = r.run(sqes.len() as u32, sqes.len());
        t.rec("submitted", res(n));
        t.rec("CQEs in order", shorts(&c));
        t.rec("buffers", bufs.clone());
        t.rec("pipe buffer", pbuf.clone());
        // Overlapping buffers: eight reads into one buffer, at growing
        // offsets and lengths; in order, each later one overwrites.
        let mut one = vec![FILL; 8192];
        let over: Vec<Sqe> =
            (0..8u64).map(|i| Sqe::read(f.fd, one[(i as usize) * 512..].as_mut_ptr(), 4096, i * 4096 + 1, 200 + i)).collect();
        r.push_all(&over);
        let (n, c) = r.run(over.len() as u32, over.len());
        t.rec("overlapping: submitted", res(n));
        t.rec("overlapping: CQEs in order", shorts(&c));
        t.rec("overlapping: buffer", one.clone());
        // The first batch went through the shared path: its helper runs.
        // (A new thread names itself once it first runs, which on a loaded
        // machine can take a while: look for up to 5 s.)
        if b.name() == "ringport" && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            let named = || {
                std::fs::read_dir("/proc/self/task").unwrap().flatten().any(|task| {
                    std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "ringport-par")
                })
            };
            let since = std::time::Instant::now();
            while !named() && since.elapsed() < std::time::Duration::from_secs(5) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(named(), "no ringport-par thread: the batch was not shared");
        }
    });
}

/// Writes to one regular file that go to workers run one at a time, in SQE
/// order (the kernel's io-wq hashes them by inode): sixteen IOSQE_ASYNC
/// writes over the same bytes leave the last one's, and complete in order.
#[test]
fn ops_async_writes_to_one_file_in_order() {
    diff("ops_async_writes_to_one_file_in_order", |b, t| {
        let Some(r) = ring(b, t, 32, 0) else { return };
        let f = TempFile::new("asyncwrites", b"", libc::O_RDWR);
        let bufs: Vec<Vec<u8>> = (0..16u8).map(|i| vec![b'a' + i; 8192]).collect();
        let sqes: Vec<Sqe> = bufs
            .iter()
            .enumerate()
            .map(|(i, buf)| Sqe::write(f.fd, buf.as_ptr(), 8192 - i as u32 * 256, 0, i as u64).flags(abi::IOSQE_ASYNC))
            .collect();
        r.push_all(&sqes);
        let (n, c) = r.run(sqes.len() as u32, sqes.len());
        t.rec("submitted", res(n));
        t.rec("CQEs in order", shorts(&c));
        t.rec("file", f.contents());
    });
}

// ---------------------------------------------------------------------------
// Submission return values, dropped entries
// ---------------------------------------------------------------------------

#[test]
fn submit_return_values() {
    diff("submit_return_values", |b, t| {
        let Some(r) = ring(b, t, 4, 0) else { return };
        let f = TempFile::new("sub", &pattern(16, 1), libc::O_RDWR);
        let mut buf = vec![0u8; 16];
        let bp = buf.as_mut_ptr();
        let state = |r: &Ring| {
            (
                r.sq_head().load(Ordering::Acquire),
                r.sq_dropped().load(Ordering::Acquire),
            )
        };
        // More asked than available.
        r.push_all(&[Sqe::nop(1), Sqe::nop(2)]);
        t.rec("to_submit 10 with 2 queued", res(r.submit(10)));
        t.rec("  CQEs", shorts(&r.wait_cqes(2, Duration::from_secs(1))));
        t.rec("  head, dropped", state(&r));
        // Nothing asked.
        r.push(&Sqe::nop(3));
        t.rec("to_submit 0 with 1 queued", res(r.submit(0)));
        t.rec("  head, dropped", state(&r));
        t.rec("to_submit 1", res(r.submit(1)));
        r.reap();
        // Part of what is queued.
        r.push_all(&[Sqe::nop(4), Sqe::nop(5), Sqe::nop(6)]);
        t.rec("to_submit 1 of 3", res(r.submit(1)));
        t.rec("  head, dropped", state(&r));
        t.rec("then to_submit 5", res(r.submit(5)));
        t.rec("  CQEs", shorts(&r.wait_cqes(3, Duration::from_secs(1))));
        // Prep failures: counted, an error CQE, and the batch stops there.
        let cases: Vec<(&str, Sqe)> = vec![
            ("unknown opcode", Sqe::new(250, 11)),
            ("unknown sqe flag", Sqe::nop(11).flags(1 << 7)),
            (
                "bad nop_flags",
                Sqe {
                    op_flags: 1 << 30,
                    ..Sqe::nop(11)
                },
            ),
            ("fsync bad flags", Sqe::fsync(f.fd, 8, 11)),
            (
                "read to kernel address",
                Sqe::rw(op::READ, f.fd, KERNEL_ADDR, 8, 0, 11),
            ),
            (
                "readv iovecs at page zero",
                Sqe::rw(op::READV, f.fd, UNMAPPED, 1, 0, 11),
            ),
            (
                "readv 1025 iovecs",
                Sqe::rw(op::READV, f.fd, bp as u64, 1025, 0, 11),
            ),
            (
                "read bad ioprio",
                Sqe {
                    ioprio: 7 << 13,
                    ..Sqe::read(f.fd, bp, 8, 0, 11)
                },
            ),
            // Failures at issue (not prep): the batch goes on.
            ("read bad fd", Sqe::read(BAD_FD, bp, 8, 0, 11)),
            (
                "read to page zero",
                Sqe::rw(op::READ, f.fd, UNMAPPED, 8, 0, 11),
            ),
            (
                "read_fixed no buffers",
                Sqe::rw(op::READ_FIXED, f.fd, bp as u64, 8, 0, 11),
            ),
            (
                "fixed file no table",
                Sqe::read(0, bp, 8, 0, 11).flags(abi::IOSQE_FIXED_FILE),
            ),
            (
                "nop FILE bad fd",
                Sqe {
                    op_flags: abi::IORING_NOP_FILE,
                    fd: BAD_FD,
                    ..Sqe::nop(11)
                },
            ),
        ];
        for (name, bad) in &cases {
            r.push_all(&[Sqe::nop(10), *bad, Sqe::nop(12)]);
            let n = r.submit(3);
            let rest = r.submit(4);
            let c = r.wait_cqes(3, Duration::from_secs(2));
            t.rec(
                format!("[nop, {name}, nop]"),
                (res(n), res(rest), shorts(&c), state(&r)),
            );
        }
        // The head only moves over what was consumed.
        r.push_all(&[Sqe::new(250, 20), Sqe::nop(21)]);
        t.rec("prep failure first", res(r.submit(2)));
        t.rec("  head, dropped", state(&r));
        t.rec("  rest", res(r.submit(1)));
        t.rec("  CQEs", shorts(&r.wait_cqes(2, Duration::from_secs(1))));
    });
}

#[test]
fn submit_all_flag() {
    diff("submit_all_flag", |b, t| {
        let Some(r) = ring(b, t, 4, abi::IORING_SETUP_SUBMIT_ALL) else {
            return;
        };
        r.push_all(&[
            Sqe::nop(1),
            Sqe::new(250, 2),
            Sqe::nop(3).flags(1 << 7),
            Sqe::nop(4),
        ]);
        let (n, c) = r.run(4, 3);
        t.rec(
            "SUBMIT_ALL [nop, bad opcode, nop, nop]",
            (res(n), shorts(&c)),
        );
        r.push_all(&[Sqe::new(250, 5), Sqe::nop(6).flags(1 << 7), Sqe::nop(7)]);
        let (n, c) = r.run(3, 3);
        t.rec("SUBMIT_ALL [bad, bad flag, nop]", (res(n), shorts(&c)));
    });
}

#[test]
fn submit_dropped() {
    diff("submit_dropped", |b, t| {
        let Some(r) = ring(b, t, 4, 0) else { return };
        let state = |r: &Ring| {
            (
                r.sq_head().load(Ordering::Acquire),
                r.sq_tail().load(Ordering::Acquire),
                r.sq_dropped().load(Ordering::Acquire),
            )
        };
        // [nop, bad index, nop]: the bad entry is consumed, counted in
        // dropped, not counted as submitted, and ends the batch.
        r.push(&Sqe::nop(1));
        r.push_indexed(&Sqe::nop(2), 4);
        r.push(&Sqe::nop(3));
        t.rec("[nop, index 4, nop] submit 3", res(r.submit(3)));
        t.rec("  head, tail, dropped", state(&r));
        t.rec("  submit the rest", res(r.submit(3)));
        t.rec("  CQEs", shorts(&r.wait_cqes(2, Duration::from_secs(1))));
        t.rec("  head, tail, dropped", state(&r));
        // A bad index first.
        r.push_indexed(&Sqe::nop(4), u32::MAX);
        r.push(&Sqe::nop(5));
        t.rec("[index u32::MAX, nop] submit 2", res(r.submit(2)));
        t.rec("  head, tail, dropped", state(&r));
        t.rec("  submit the rest", res(r.submit(2)));
        t.rec("  CQEs", shorts(&r.wait_cqes(1, Duration::from_secs(1))));
        // Only bad indexes.
        for v in [4u32, 5, 0x8000_0000, 7] {
            r.push_indexed(&Sqe::nop(6), v);
        }
        t.rec("4 bad indexes, submit 4", res(r.submit(4)));
        t.rec("  head, tail, dropped", state(&r));
        for _ in 0..3 {
            t.rec("  submit again", res(r.submit(4)));
        }
        t.rec("  head, tail, dropped", state(&r));
        t.rec(
            "  no CQEs",
            shorts(&r.wait_cqes(1, Duration::from_millis(10))),
        );
        // Two array entries naming the same SQE slot: both are submitted.
        let tail = r.sq_tail().load(Ordering::Relaxed);
        r.write_sqe(tail, &Sqe::nop(7));
        r.sq_array(tail).store(tail & 3, Ordering::Relaxed);
        r.sq_array(tail + 1).store(tail & 3, Ordering::Relaxed);
        r.sq_tail().store(tail + 2, Ordering::Release);
        let (n, c) = r.run(2, 2);
        t.rec("same slot twice", (res(n), shorts(&c)));
        // With GETEVENTS: a dropped entry returns before waiting.
        r.push(&Sqe::nop(8));
        r.push_indexed(&Sqe::nop(9), 100);
        t.rec(
            "[nop, bad] submit 2 wait 2",
            res(r.enter_timeout(
                2,
                2,
                abi::IORING_ENTER_GETEVENTS,
                Duration::from_millis(100),
            )),
        );
        t.rec("  CQEs", shorts(&r.wait_cqes(1, Duration::from_secs(1))));
        t.rec("  head, tail, dropped", state(&r));
    });
}

/// The tail says more than the ring holds: submission is bounded by the
/// ring size (the kernel's `min(tail - head, sq_entries)`).
#[test]
fn submit_tail_beyond_ring() {
    diff("submit_tail_beyond_ring", |b, t| {
        let Some(r) = ring(b, t, 4, 0) else { return };
        for i in 0..4 {
            r.write_sqe(i, &Sqe::nop(i as u64));
            r.sq_array(i).store(i, Ordering::Relaxed);
        }
        r.sq_tail().store(100, Ordering::Release);
        let (n, c) = r.run(100, 4);
        t.rec(
            "tail 100, submit 100",
            (res(n), shorts(&c), r.sq_head().load(Ordering::Acquire)),
        );
        let (n, c) = r.run(2, 2);
        t.rec(
            "again, submit 2",
            (res(n), shorts(&c), r.sq_head().load(Ordering::Acquire)),
        );
        // Tail behind head: tail - head wraps to a huge count.
        let head = r.sq_head().load(Ordering::Acquire);
        r.sq_tail().store(head.wrapping_sub(1), Ordering::Release);
        let (n, c) = r.run(8, 4);
        t.rec(
            "tail = head - 1, submit 8",
            (res(n), shorts(&c), r.sq_head().load(Ordering::Acquire)),
        );
        let head = r.sq_head().load(Ordering::Acquire);
        r.sq_tail().store(head, Ordering::Release);
        t.rec("tail = head, submit 8", res(r.submit(8)));
    });
}

// ---------------------------------------------------------------------------
// enter errors
// ---------------------------------------------------------------------------

fn getevents_arg(
    ts: Option<&abi::__kernel_timespec>,
    sigmask: u64,
    sigmask_sz: u32,
) -> abi::io_uring_getevents_arg {
    abi::io_uring_getevents_arg {
        sigmask,
        sigmask_sz,
        min_wait_usec: 0,
        ts: ts.map_or(0, |t| t as *const _ as u64),
    }
}

/// enter with an explicit argument pointer and size.
fn enter_arg(
    r: &Ring,
    to_submit: u32,
    min: u32,
    flags: u32,
    arg: u64,
    argsz: usize,
) -> Result<i32, &'static str> {
    // SAFETY: `arg` is either valid for the call or deliberately bad
    // (the callee fault-checks it).
    res(unsafe {
        r.b.enter(
            r.fd,
            to_submit,
            min,
            flags,
            arg as usize as *const c_void,
            argsz,
        )
    })
}

#[test]
fn enter_errors() {
    diff("enter_errors", |b, t| {
        let Some(r) = ring(b, t, 4, 0) else { return };
        use abi::{IORING_ENTER_EXT_ARG as EXT, IORING_ENTER_GETEVENTS as GET};
        let raw = |fd: i32, n: u32, min: u32, flags: u32| {
            // SAFETY: null argument.
            res(unsafe { b.enter(fd, n, min, flags, core::ptr::null(), 0) })
        };
        t.rec("flags 1<<31", res(r.enter(0, 0, 1 << 31)));
        r.push(&Sqe::nop(1));
        t.rec(
            "flags 1<<31 with an SQE queued",
            res(r.enter(1, 0, 1 << 31)),
        );
        t.rec("  SQE still queued", r.sq_head().load(Ordering::Acquire));
        t.rec("  now submit it", res(r.submit(1)));
        r.reap();
        t.rec("fd -1", raw(-1, 0, 0, 0));
        t.rec("fd never open", raw(BAD_FD, 0, 0, 0));
        let f = TempFile::new("enter", b"x", libc::O_RDWR);
        t.rec("regular file fd", raw(f.fd, 0, 0, 0));
        let p = Pipe::new(0);
        t.rec("pipe fd", raw(p.r, 1, 1, GET));
        let ev = eventfd();
        t.rec("eventfd fd", raw(ev, 0, 0, 0));
        close_fd(ev);
        // Waits.
        let ts1ms = abi::__kernel_timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        let a = getevents_arg(Some(&ts1ms), 0, 0);
        let ap = &a as *const _ as u64;
        let asz = core::mem::size_of_val(&a);
        t.rec(
            "EXT_ARG 1 ms, empty CQ, min 1",
            enter_arg(&r, 0, 1, GET | EXT, ap, asz),
        );
        t.rec(
            "EXT_ARG 1 ms, empty CQ, min 0",
            enter_arg(&r, 0, 0, GET | EXT, ap, asz),
        );
        r.push(&Sqe::nop(2));
        t.rec(
            "EXT_ARG submit 1, min 2, 1 ms (CQ not empty)",
            enter_arg(&r, 1, 2, GET | EXT, ap, asz),
        );
        t.rec("  CQEs", shorts(&r.reap()));
        let zero = abi::__kernel_timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let az = getevents_arg(Some(&zero), 0, 0);
        t.rec(
            "EXT_ARG ABS_TIMER at 0",
            enter_arg(
                &r,
                0,
                1,
                GET | EXT | abi::IORING_ENTER_ABS_TIMER,
                &az as *const _ as u64,
                asz,
            ),
        );
        t.rec(
            "EXT_ARG zero timeout",
            enter_arg(&r, 0, 1, GET | EXT, &az as *const _ as u64, asz),
        );
        t.rec("EXT_ARG size 16", enter_arg(&r, 0, 1, GET | EXT, ap, 16));
        t.rec("EXT_ARG size 32", enter_arg(&r, 0, 1, GET | EXT, ap, 32));
        t.rec("EXT_ARG size 0", enter_arg(&r, 0, 1, GET | EXT, ap, 0));
        t.rec(
            "EXT_ARG size 16 without GETEVENTS",
            enter_arg(&r, 0, 1, EXT, ap, 16),
        );
        r.push(&Sqe::nop(3));
        t.rec(
            "EXT_ARG size 16 with 1 submitted",
            enter_arg(&r, 1, 1, GET | EXT, ap, 16),
        );
        t.rec("  CQEs", shorts(&r.wait_cqes(1, Duration::from_secs(1))));
        t.rec("EXT_ARG null", enter_arg(&r, 0, 1, GET | EXT, 0, asz));
        t.rec(
            "EXT_ARG at page zero",
            enter_arg(&r, 0, 1, GET | EXT, UNMAPPED, asz),
        );
        t.rec(
            "EXT_ARG at kernel address",
            enter_arg(&r, 0, 1, GET | EXT, KERNEL_ADDR, asz),
        );
        let mut bad_ts = a;
        bad_ts.ts = UNMAPPED;
        t.rec(
            "EXT_ARG ts at page zero",
            enter_arg(&r, 0, 1, GET | EXT, &bad_ts as *const _ as u64, asz),
        );
        let mut no_ts = a;
        no_ts.ts = 0;
        // No timeout, but the CQ already has what is asked: returns at once.
        r.push(&Sqe::nop(4));
        t.rec(
            "EXT_ARG no ts, submit 1 wait 1",
            enter_arg(&r, 1, 1, GET | EXT, &no_ts as *const _ as u64, asz),
        );
        t.rec("  CQEs", shorts(&r.reap()));
        // Signal masks: only read when the call really waits.
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
        // SAFETY: set is a valid sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        let sp = &set as *const _ as u64;
        let sm_bad = getevents_arg(Some(&ts1ms), sp, 4);
        t.rec(
            "EXT_ARG sigmask_sz 4, must wait",
            enter_arg(&r, 0, 1, GET | EXT, &sm_bad as *const _ as u64, asz),
        );
        let sm_ok = getevents_arg(Some(&ts1ms), sp, 8);
        t.rec(
            "EXT_ARG sigmask ok, must wait 1 ms",
            enter_arg(&r, 0, 1, GET | EXT, &sm_ok as *const _ as u64, asz),
        );
        let sm_fault = getevents_arg(Some(&ts1ms), UNMAPPED, 8);
        t.rec(
            "EXT_ARG sigmask at page zero, must wait",
            enter_arg(&r, 0, 1, GET | EXT, &sm_fault as *const _ as u64, asz),
        );
        r.push(&Sqe::nop(5));
        r.submit(1);
        t.rec(
            "EXT_ARG sigmask_sz 4, CQ ready",
            enter_arg(&r, 0, 1, GET | EXT, &sm_bad as *const _ as u64, asz),
        );
        t.rec("sigset size 4, CQ ready", enter_arg(&r, 0, 1, GET, sp, 4));
        t.rec(
            "sigset at page zero, CQ ready",
            enter_arg(&r, 0, 1, GET, UNMAPPED, 8),
        );
        r.reap();
        // Must wait and the sigset is bad: an error before any sleep.
        t.rec("sigset size 4, must wait", enter_arg(&r, 0, 1, GET, sp, 4));
        t.rec(
            "sigset at page zero, must wait",
            enter_arg(&r, 0, 1, GET, UNMAPPED, 8),
        );
        // Flags that need features not set up here.
        t.rec(
            "EXT_ARG_REG without a wait region",
            enter_arg(&r, 0, 1, GET | EXT | abi::IORING_ENTER_EXT_ARG_REG, 0, asz),
        );
        t.rec(
            "SQ_WAKEUP without SQPOLL",
            res(r.enter(0, 0, abi::IORING_ENTER_SQ_WAKEUP)),
        );
        t.rec(
            "SQ_WAIT without SQPOLL",
            res(r.enter(0, 0, abi::IORING_ENTER_SQ_WAIT)),
        );
        t.rec(
            "ABS_TIMER without EXT_ARG",
            res(r.enter(0, 0, abi::IORING_ENTER_ABS_TIMER | GET)),
        );
        t.rec(
            "NO_IOWAIT",
            res(r.enter(0, 0, abi::IORING_ENTER_NO_IOWAIT | GET)),
        );
        t.rec(
            "REGISTERED_RING, index 0 (nothing registered)",
            raw(0, 0, 0, abi::IORING_ENTER_REGISTERED_RING),
        );
        t.rec(
            "REGISTERED_RING, index 16",
            raw(16, 0, 0, abi::IORING_ENTER_REGISTERED_RING),
        );
        t.rec(
            "REGISTERED_RING, index -1",
            raw(-1, 0, 0, abi::IORING_ENTER_REGISTERED_RING),
        );
        // GETEVENTS with the submissions satisfying min_complete.
        r.push_all(&[Sqe::nop(6), Sqe::nop(7), Sqe::nop(8)]);
        t.rec("submit 3 wait 3", res(r.enter(3, 3, GET)));
        t.rec("  ready", r.cq_ready());
        t.rec("  CQEs", shorts(&r.reap()));
        t.rec("GETEVENTS min 0", res(r.enter(0, 0, GET)));
        // min_complete larger than the CQ: clamped; returns with a full CQ.
        for i in 0..4 {
            r.push(&Sqe::nop(10 + i));
        }
        r.submit(4);
        for i in 0..4 {
            r.push(&Sqe::nop(20 + i));
        }
        t.rec(
            "min 1000 with a full CQ of 8",
            res(r.enter_timeout(4, 1000, GET, Duration::from_secs(2))),
        );
        t.rec("  CQEs", shorts(&r.reap()));
        // A closed ring.
        let fd = r.fd;
        let mut r = r;
        r.close();
        t.rec("closed ring fd", on_closed_fd(fd, || raw(fd, 0, 0, 0)));
    });
}

// ---------------------------------------------------------------------------
// Ring geometries: SQE128, CQE32, NO_SQARRAY, NO_MMAP
// ---------------------------------------------------------------------------

#[test]
fn ops_ring_geometries() {
    diff("ops_ring_geometries", |b, t| {
        use abi::*;
        let f = TempFile::new("geo", &pattern(64, 3), libc::O_RDWR);
        for (name, flags) in [
            ("SQE128", IORING_SETUP_SQE128),
            ("CQE32", IORING_SETUP_CQE32),
            ("SQE128|CQE32", IORING_SETUP_SQE128 | IORING_SETUP_CQE32),
            ("NO_SQARRAY", IORING_SETUP_NO_SQARRAY),
            ("NO_MMAP", IORING_SETUP_NO_MMAP),
            (
                "NO_MMAP|NO_SQARRAY|SQE128|CQE32",
                IORING_SETUP_NO_MMAP
                    | IORING_SETUP_NO_SQARRAY
                    | IORING_SETUP_SQE128
                    | IORING_SETUP_CQE32,
            ),
        ] {
            let r = match Ring::new(b, 4, flags) {
                Ok(r) => r,
                Err(e) => {
                    t.rec(format!("{name}: setup"), errname(e));
                    continue;
                }
            };
            let mut buf = vec![FILL; 16];
            let bp = buf.as_mut_ptr();
            // Three rounds of 4 so the SQ and the CQ wrap.
            for round in 0..3u64 {
                r.push_all(&[
                    Sqe::nop(round * 10),
                    Sqe::read(f.fd, bp, 16, round * 16, round * 10 + 1),
                    Sqe {
                        op_flags: IORING_NOP_INJECT_RESULT,
                        len: round as u32,
                        ..Sqe::nop(round * 10 + 2)
                    },
                    Sqe::new(250, round * 10 + 3),
                ]);
                let (n, c) = r.run(4, 4);
                // Full CQEs, including the CQE32 extra words.
                t.rec(format!("{name}: round {round}"), (res(n), c, buf.clone()));
            }
        }
    });
}

/// `epoll_wait` with no timeout on `epfd`: (count, events, data) of the
/// first event, or the errno.
fn epoll_peek(epfd: i32) -> Result<(i32, u32, u64), &'static str> {
    let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 4];
    // SAFETY: ev holds 4 events.
    let n = unsafe { libc::epoll_wait(epfd, ev.as_mut_ptr(), 4, 0) };
    if n < 0 {
        return Err(errname(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
    }
    let (events, data) = if n > 0 { (ev[0].events, ev[0].u64) } else { (0, 0) };
    Ok((n, events, data))
}

/// EPOLL_CTL: add, modify and delete a pipe in an epoll set; a ring's own
/// fd in the set (readable once a CQE waits); the errors (bad epoll fd,
/// unreadable event, a second add, a delete of what is not there, nonzero
/// buf_index).
#[test]
fn epoll_ctl() {
    diff("epoll_ctl", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        // SAFETY: creating an epoll instance.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epfd >= 0);
        let p = Pipe::new(libc::O_NONBLOCK);
        let ev = |events: u32, data: u64| libc::epoll_event { events, u64: data };
        let ctl = |op: i32, fd: i32, e: Option<&libc::epoll_event>, ud: u64| Sqe {
            fd: epfd,
            len: op as u32,
            off: fd as u64,
            addr: e.map_or(0, |e| e as *const libc::epoll_event as u64),
            ..Sqe::new(op::EPOLL_CTL, ud)
        };
        let e_in = ev(libc::EPOLLIN as u32, 7);
        one(t, &r, "add pipe", ctl(libc::EPOLL_CTL_ADD, p.r, Some(&e_in), 1));
        t.rec("empty pipe", epoll_peek(epfd));
        write_fd(p.w, b"x");
        t.rec("after a write", epoll_peek(epfd));
        one(t, &r, "add again", ctl(libc::EPOLL_CTL_ADD, p.r, Some(&e_in), 2));
        let e_out = ev(libc::EPOLLOUT as u32, 8);
        one(t, &r, "mod to EPOLLOUT", ctl(libc::EPOLL_CTL_MOD, p.r, Some(&e_out), 3));
        t.rec("after mod", epoll_peek(epfd));
        one(t, &r, "del (no event)", ctl(libc::EPOLL_CTL_DEL, p.r, None, 4));
        one(t, &r, "del again", ctl(libc::EPOLL_CTL_DEL, p.r, None, 5));
        t.rec("after del", epoll_peek(epfd));
        one(t, &r, "add, event unreadable", ctl(libc::EPOLL_CTL_ADD, p.r, None, 6));
        one(t, &r, "bad epoll fd", Sqe { fd: p.w, ..ctl(libc::EPOLL_CTL_ADD, p.r, Some(&e_in), 7) });
        one(t, &r, "buf_index set", Sqe { buf_index: 1, ..ctl(libc::EPOLL_CTL_ADD, p.r, Some(&e_in), 8) });
        // The ring itself, readable while a CQE waits in its CQ.
        let e_ring = ev(libc::EPOLLIN as u32, 9);
        one(t, &r, "add the ring", ctl(libc::EPOLL_CTL_ADD, r.fd, Some(&e_ring), 10));
        // (ringport re-reads an empty CQ at the next enter: until then a
        // ring whose CQEs were reaped still reads as readable.)
        t.rec("enter", r.enter(0, 0, 0));
        t.rec("ring, CQ empty", epoll_peek(epfd));
        assert!(r.push(&Sqe::nop(11)));
        t.rec("submit a NOP", r.submit(1));
        t.rec("ring, a CQE waiting", epoll_peek(epfd));
        t.rec("reaped", r.reap().len());
        close_fd(epfd);
    });
}

/// DEFER_TASKRUN with TASKRUN_FLAG: a poll that becomes ready shows as
/// IORING_SQ_TASKRUN with nothing in the CQ yet; an enter runs it (the CQE
/// appears) and clears the flag. (ringport sets the flag while the poll is
/// armed, ahead of the readiness; only the states after the write are
/// compared.)
#[test]
fn defer_taskrun_poll_sets_and_clears_the_taskrun_flag() {
    diff("defer_taskrun_poll_flag", |b, t| {
        let flags = abi::IORING_SETUP_SINGLE_ISSUER | abi::IORING_SETUP_DEFER_TASKRUN | abi::IORING_SETUP_TASKRUN_FLAG;
        let Some(r) = ring(b, t, 8, flags) else { return };
        // SAFETY: creating an eventfd.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        assert!(r.push(&Sqe { fd: efd, op_flags: libc::POLLIN as u32, ..Sqe::new(op::POLL_ADD, 1) }));
        t.rec("submitted", r.submit(1));
        t.rec("eventfd write", write_fd(efd, &1u64.to_ne_bytes()));
        // Read at once, as liburing's defer-taskrun test does: the kernel
        // set the flag inside the write.
        let taskrun = |r: &Ring| r.sq_flags().load(Ordering::Acquire) & abi::IORING_SQ_TASKRUN != 0;
        t.rec("CQEs before an enter", r.cq_ready());
        t.rec("TASKRUN after the write", taskrun(&r));
        t.rec("enter(GETEVENTS)", r.enter(0, 0, abi::IORING_ENTER_GETEVENTS));
        t.rec("CQEs", r.reap().iter().map(Cqe::short).collect::<Vec<_>>());
        t.rec("TASKRUN after the enter", taskrun(&r));
        close_fd(efd);
    });
}

/// READ/WRITE/READV/WRITEV on a socket with an offset of 0, 7 and -1 (the
/// file position): what the kernel makes of a position on a stream that
/// has none.
#[test]
fn ops_socket_offsets() {
    diff("ops_socket_offsets", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let mut sv = [0i32; 2];
        // SAFETY: sv is a valid out-array.
        assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }, 0);
        let mut buf = vec![FILL; 16];
        let iov = [libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 4 }];
        for (i, off) in [0u64, 7, u64::MAX].into_iter().enumerate() {
            let ud = 10 * i as u64;
            one(t, &r, &format!("write @{off:#x}"), Sqe::write(sv[0], b"abcd".as_ptr(), 4, off, ud));
            one(t, &r, &format!("read @{off:#x}"), Sqe::read(sv[1], buf.as_mut_ptr(), 4, off, ud + 1));
            one(t, &r, &format!("writev @{off:#x}"), Sqe::writev(sv[0], iov.as_ptr(), 1, off, ud + 2));
            one(t, &r, &format!("readv @{off:#x}"), Sqe::readv(sv[1], iov.as_ptr(), 1, off, ud + 3));
        }
        close_fd(sv[0]);
        close_fd(sv[1]);
    });
}
