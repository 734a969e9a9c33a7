//! Differential tests for MSG_RING: data messages (to another ring, to
//! itself, with FLAGS_PASS), registered files passed between rings
//! (SEND_FD, with a slot, allocated, with CQE_SKIP), and the errors. Each
//! scenario runs on the kernel and on ringport; the CQEs of both rings and
//! what the passed file reads must match.

mod common;

use common::*;
use ringport_engine::abi::{self, msg, op};
use std::time::Duration;

/// A MSG_RING SQE to ring fd `target`.
fn msg_sqe(target: i32, cmd: u64, user_data: u64, len: u32, ud: u64) -> Sqe {
    Sqe { fd: target, addr: cmd, off: user_data, len, ..Sqe::new(op::MSG_RING, ud) }
}

/// Runs `sqe` on `src`, records its CQE and then what `dst` received.
fn send(t: &mut Trace, src: &Ring, dst: &Ring, label: &str, sqe: Sqe) {
    t.rec(format!("{label}: source"), src.one_short(&sqe));
    let got: Vec<ShortCqe> = dst.wait_cqes(1, Duration::from_millis(50)).iter().map(Cqe::short).collect();
    t.rec(format!("{label}: target"), got);
}

#[test]
fn msg_ring_data() {
    diff("msg_ring_data", |b, t| {
        let Some(a) = ring(b, t, 8, 0) else { return };
        let Some(c) = ring(b, t, 8, 0) else { return };
        send(t, &a, &c, "data", msg_sqe(c.fd, msg::DATA, 0xabc, 17, 1));
        send(t, &a, &c, "data, FLAGS_PASS", Sqe { op_flags: msg::FLAGS_PASS, file_index: 0x55, ..msg_sqe(c.fd, msg::DATA, 0xdef, 3, 2) });
        send(t, &a, &c, "data, file_index without FLAGS_PASS", Sqe { file_index: 1, ..msg_sqe(c.fd, msg::DATA, 1, 1, 3) });
        send(t, &a, &c, "data, CQE_SKIP", Sqe { op_flags: msg::CQE_SKIP, ..msg_sqe(c.fd, msg::DATA, 1, 1, 4) });
        send(t, &a, &c, "data, addr3 set", Sqe { addr3: 1, ..msg_sqe(c.fd, msg::DATA, 1, 1, 5) });
        send(t, &a, &c, "unknown command", msg_sqe(c.fd, 9, 1, 1, 6));
        send(t, &a, &c, "unknown flag", Sqe { op_flags: 0x80, ..msg_sqe(c.fd, msg::DATA, 1, 1, 7) });
        send(t, &a, &c, "buf_index set", Sqe { buf_index: 1, ..msg_sqe(c.fd, msg::DATA, 1, 1, 8) });
        let p = Pipe::new(0);
        send(t, &a, &c, "target not a ring", msg_sqe(p.r, msg::DATA, 1, 1, 9));
        send(t, &a, &c, "target not open", msg_sqe(1 << 20, msg::DATA, 1, 1, 10));
        // To itself: two CQEs on the same ring.
        assert!(a.push(&msg_sqe(a.fd, msg::DATA, 0x77, 5, 11)));
        t.rec("to itself: submitted", a.submit(1));
        t.rec("to itself", sorted(a.wait_cqes(2, Duration::from_millis(500))).iter().map(Cqe::short).collect::<Vec<_>>());
        // A disabled target.
        let Some(d) = ring(b, t, 8, abi::IORING_SETUP_R_DISABLED) else { return };
        send(t, &a, &d, "disabled target", msg_sqe(d.fd, msg::DATA, 1, 1, 12));
    });
}

#[test]
fn msg_ring_send_fd() {
    diff("msg_ring_send_fd", |b, t| {
        let Some(a) = ring(b, t, 8, 0) else { return };
        let Some(c) = ring(b, t, 8, 0) else { return };
        let p = Pipe::new(0);
        t.rec("register source files", a.register_files(&[p.r, -1]));
        send(t, &a, &c, "target has no table", Sqe { addr3: 0, file_index: 1, ..msg_sqe(c.fd, msg::SEND_FD, 0x10, 0, 1) });
        t.rec("register target files", c.register_files(&[-1, -1, -1, -1]));
        send(t, &a, &c, "to slot 2", Sqe { addr3: 0, file_index: 3, ..msg_sqe(c.fd, msg::SEND_FD, 0x11, 0, 2) });
        // The target reads the pipe through the slot it was given.
        write_fd(p.w, b"passed");
        let mut buf = [0u8; 16];
        let rd = Sqe { flags: abi::IOSQE_FIXED_FILE, ..Sqe::read(2, buf.as_mut_ptr(), 16, 0, 20) };
        t.rec("target reads slot 2", c.one_short(&rd));
        t.rec("bytes", buf[..6].to_vec());
        send(t, &a, &c, "allocated slot", Sqe { addr3: 0, file_index: abi::IORING_FILE_INDEX_ALLOC as u32, ..msg_sqe(c.fd, msg::SEND_FD, 0x12, 0, 3) });
        send(t, &a, &c, "CQE_SKIP", Sqe { addr3: 0, file_index: 4, op_flags: msg::CQE_SKIP, ..msg_sqe(c.fd, msg::SEND_FD, 0x13, 0, 4) });
        send(t, &a, &c, "empty source slot", Sqe { addr3: 1, file_index: 1, ..msg_sqe(c.fd, msg::SEND_FD, 0x14, 0, 5) });
        send(t, &a, &c, "source slot out of range", Sqe { addr3: 9, file_index: 1, ..msg_sqe(c.fd, msg::SEND_FD, 0x15, 0, 6) });
        send(t, &a, &c, "target slot out of range", Sqe { addr3: 0, file_index: 99, ..msg_sqe(c.fd, msg::SEND_FD, 0x16, 0, 7) });
        send(t, &a, &c, "len set", Sqe { addr3: 0, file_index: 1, ..msg_sqe(c.fd, msg::SEND_FD, 0x17, 5, 8) });
        send(t, &a, &a, "to itself", Sqe { addr3: 0, file_index: 2, ..msg_sqe(a.fd, msg::SEND_FD, 0x18, 0, 9) });
    });
}
