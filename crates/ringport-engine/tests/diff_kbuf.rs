//! Provided buffers, differential: PROVIDE_BUFFERS / REMOVE_BUFFERS,
//! ring-mapped groups (IORING_REGISTER_PBUF_RING), IOSQE_BUFFER_SELECT on
//! RECV and READ (CQE flag IORING_CQE_F_BUFFER with the buffer id), and
//! multishot RECV. Each scenario runs on the kernel and on ringport; CQEs
//! and the bytes that landed in the buffers must match. Loopback only.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};


#[macro_use]
mod scenario;
mod common;

use common::{diff, Backend, Mem, Ring, Sqe, Trace, KERNEL_ADDR2};
use ringport_engine::abi;
use scenario::Cqes;

/// An fd closed on drop.
struct Sock(i32);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.0) };
    }
}

fn pair() -> (Sock, Sock) {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid two-int array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, p.as_mut_ptr()) }, 0);
    (Sock(p[0]), Sock(p[1]))
}

fn put(fd: i32, b: &[u8]) {
    // SAFETY: writing from a live slice.
    assert_eq!(unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) }, b.len() as isize);
}

const BSEL: u8 = abi::IOSQE_BUFFER_SELECT;
const PROVIDE: u8 = linux_raw_sys::io_uring::io_uring_op::IORING_OP_PROVIDE_BUFFERS as u8;
const REMOVE: u8 = linux_raw_sys::io_uring::io_uring_op::IORING_OP_REMOVE_BUFFERS as u8;

/// A page-aligned buffer ring of `entries` plus the buffers it hands out.
struct BufRing {
    ring: Mem,
    data: Mem,
    entries: u16,
    tail: u16,
    size: usize,
}

impl BufRing {
    fn new(entries: u16, size: usize) -> BufRing {
        BufRing { ring: Mem::rw(4096), data: Mem::rw(entries as usize * size), entries, tail: 0, size }
    }
    /// Publishes buffer `bid` (the `bid`-th slice of `data`).
    fn add(&mut self, bid: u16) {
        let slot = (self.tail & (self.entries - 1)) as usize * 16;
        let addr = self.data.addr() + bid as u64 * self.size as u64;
        let e = self.ring.bytes_mut();
        e[slot..slot + 8].copy_from_slice(&addr.to_ne_bytes());
        e[slot + 8..slot + 12].copy_from_slice(&(self.size as u32).to_ne_bytes());
        e[slot + 12..slot + 14].copy_from_slice(&bid.to_ne_bytes());
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: offset 14 of the page-aligned ring is the u16 tail.
        let t = unsafe { &*((self.ring.addr() + 14) as *const AtomicU16) };
        t.store(self.tail, Ordering::Release);
    }
    fn buf(&self, bid: u16, n: usize) -> Vec<u8> {
        let o = bid as usize * self.size;
        self.data.bytes()[o..o + n].to_vec()
    }
}

scenario!(provide_recv_remove_legacy, |ring, c| {
    let (a, b) = pair();
    let mut mem = vec![0u8; 4 * 8];
    push!(ring, c::opcode::ProvideBuffers::new(mem.as_mut_ptr(), 8, 4, 3, 10).build().user_data(1));
    let mut got = reap!(ring, 1);
    put(a.0, b"hello");
    push!(
        ring,
        c::opcode::Recv::new(c::types::Fd(b.0), core::ptr::null_mut(), 8)
            .buf_group(3)
            .build()
            .flags(c::squeue::Flags::BUFFER_SELECT)
            .user_data(2)
    );
    got.extend(reap!(ring, 1));
    push!(
        ring,
        c::opcode::Recv::new(c::types::Fd(b.0), core::ptr::null_mut(), 3)
            .buf_group(3)
            .build()
            .flags(c::squeue::Flags::BUFFER_SELECT)
            .user_data(3)
    );
    got.extend(drain!(ring));
    put(a.0, b"world");
    got.extend(reap!(ring, 1));
    assert_eq!(&mem[..5], b"hello");
    assert_eq!(&mem[8..11], b"wor");
    push!(ring, c::opcode::RemoveBuffers::new(10, 3).build().user_data(4));
    got.extend(reap!(ring, 1));
    push!(ring, c::opcode::RemoveBuffers::new(10, 3).build().user_data(5));
    push!(ring, c::opcode::RemoveBuffers::new(1, 9).build().user_data(6));
    got.extend(reap!(ring, 2));
    got
});

scenario!(recv_waiting_keeps_no_buffer, |ring, c| {
    let (a, b) = pair();
    let mut mem = vec![0u8; 16];
    push!(ring, c::opcode::ProvideBuffers::new(mem.as_mut_ptr(), 16, 1, 1, 0).build().user_data(1));
    push!(
        ring,
        c::opcode::Recv::new(c::types::Fd(b.0), core::ptr::null_mut(), 16)
            .buf_group(1)
            .build()
            .flags(c::squeue::Flags::BUFFER_SELECT)
            .user_data(2)
    );
    let mut got = drain!(ring);
    // The waiting receive holds no buffer: removing finds it.
    push!(ring, c::opcode::RemoveBuffers::new(5, 1).build().user_data(3));
    got.extend(reap!(ring, 1));
    put(a.0, b"data");
    got.extend(reap!(ring, 1));
    got
});

scenario!(ring_mapped_recv_in_order_then_enobufs, |ring, c| {
    let (a, b) = pair();
    let mut br = BufRing::new(8, 32);
    // SAFETY: the ring memory outlives its registration.
    unsafe { ring.submitter().register_buf_ring_with_flags(br.ring.addr(), 8, 7, 0).unwrap() };
    br.add(5);
    br.add(2);
    let mut got: Cqes = Vec::new();
    for (ud, msg) in [(1u64, &b"first"[..]), (2, &b"second"[..]), (3, &b"third"[..])] {
        put(a.0, msg);
        push!(
            ring,
            c::opcode::Recv::new(c::types::Fd(b.0), core::ptr::null_mut(), 0)
                .buf_group(7)
                .build()
                .flags(c::squeue::Flags::BUFFER_SELECT)
                .user_data(ud)
        );
        got.extend(reap!(ring, 1));
    }
    assert_eq!(br.buf(5, 5), b"first");
    assert_eq!(br.buf(2, 6), b"second");
    ring.submitter().unregister_buf_ring(7).unwrap();
    got.push((100, ring.submitter().unregister_buf_ring(7).map_err(|e| e.raw_os_error().unwrap_or(0)).err().unwrap_or(0), 0));
    got
});

scenario!(recv_multishot_ring_until_eof, |ring, c| {
    let (a, b) = pair();
    let mut br = BufRing::new(4, 16);
    // SAFETY: the ring memory outlives its registration.
    unsafe { ring.submitter().register_buf_ring_with_flags(br.ring.addr(), 4, 1, 0).unwrap() };
    for bid in 0..3 {
        br.add(bid);
    }
    push!(ring, c::opcode::RecvMulti::new(c::types::Fd(b.0), 1).build().user_data(9));
    let mut got = drain!(ring);
    for msg in [&b"one"[..], &b"two!"[..]] {
        put(a.0, msg);
        got.extend(reap!(ring, 1));
    }
    // SAFETY: shutting down our own socket.
    unsafe { libc::shutdown(a.0, libc::SHUT_WR) };
    got.extend(reap!(ring, 1));
    assert_eq!(br.buf(0, 3), b"one");
    assert_eq!(br.buf(1, 4), b"two!");
    got
});

// TCP data then the peer's FIN, both queued before the receive: every CQE
// up to the last byte says IORING_CQE_F_SOCK_NONEMPTY (after the data, TCP
// reports a pending FIN as 1 byte queued, `tcp_inq_hint`), so the request
// receives again at once and ends with res 0 in the same run.
scenario!(recv_multishot_tcp_data_then_fin, |ring, c| {
    use std::os::fd::AsRawFd;
    let (a, b) = common::tcp_pair();
    let mut br = BufRing::new(8, 4);
    // SAFETY: the ring memory outlives its registration.
    unsafe { ring.submitter().register_buf_ring_with_flags(br.ring.addr(), 8, 3, 0).unwrap() };
    for bid in 0..8 {
        br.add(bid);
    }
    put(a.as_raw_fd(), b"aaaabbbbcccc");
    a.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    push!(ring, c::opcode::RecvMulti::new(c::types::Fd(b.as_raw_fd()), 3).build().user_data(9));
    let got = reap!(ring, 4);
    assert_eq!(br.buf(0, 4), b"aaaa");
    assert_eq!(br.buf(2, 4), b"cccc");
    got
});

scenario!(recv_multishot_runs_out_of_buffers, |ring, c| {
    let (a, b) = pair();
    let mut br = BufRing::new(2, 16);
    // SAFETY: the ring memory outlives its registration.
    unsafe { ring.submitter().register_buf_ring_with_flags(br.ring.addr(), 2, 4, 0).unwrap() };
    br.add(1);
    push!(ring, c::opcode::RecvMulti::new(c::types::Fd(b.0), 4).build().user_data(9));
    let mut got = drain!(ring);
    put(a.0, b"x");
    got.extend(reap!(ring, 1));
    put(a.0, b"y");
    got.extend(reap!(ring, 1));
    got
});

// ---------------------------------------------------------------------------
// Raw SQEs: prep errors, READ with a selected buffer, registration errors
// ---------------------------------------------------------------------------

fn provide(addr: u64, len: u32, nbufs: i32, bgid: u16, bid: u64, ud: u64) -> Sqe {
    Sqe { fd: nbufs, addr, len, off: bid, buf_index: bgid, ..Sqe::new(PROVIDE, ud) }
}

fn one(t: &mut Trace, r: &Ring, label: &str, sqe: Sqe) {
    t.rec(label, r.one_short(&sqe));
}

#[test]
fn provide_remove_prep_errors() {
    diff("provide_remove_prep_errors", |b: &dyn Backend, t: &mut Trace| {
        let r = match Ring::new(b, 8, 0) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", e),
        };
        let mem = Mem::rw(4096);
        let a = mem.addr();
        let remove = |n: i32, g: u16, ud: u64| Sqe { fd: n, buf_index: g, ..Sqe::new(REMOVE, ud) };
        one(t, &r, "nbufs 0", provide(a, 8, 0, 1, 0, 1));
        one(t, &r, "nbufs 65537", provide(a, 8, 65537, 1, 0, 2));
        one(t, &r, "len 0", provide(a, 0, 1, 1, 0, 3));
        one(t, &r, "bid 65536", provide(a, 8, 1, 1, 65536, 4));
        one(t, &r, "bid + nbufs > 65536", provide(a, 8, 2, 1, 65535, 5));
        one(t, &r, "address overflow", provide(u64::MAX - 4, 8, 2, 1, 0, 6));
        one(t, &r, "kernel address", provide(KERNEL_ADDR2, 8, 2, 1, 0, 7));
        one(t, &r, "rw_flags", Sqe { op_flags: 1, ..provide(a, 8, 1, 1, 0, 8) });
        one(t, &r, "splice_fd_in", Sqe { file_index: 1, ..provide(a, 8, 1, 1, 0, 9) });
        one(t, &r, "buffer select on provide", Sqe { flags: BSEL, ..provide(a, 8, 1, 1, 0, 10) });
        one(t, &r, "good provide", provide(a, 8, 4, 1, 0, 11));
        one(t, &r, "provide more", provide(a + 32, 8, 2, 1, 4, 12));
        one(t, &r, "remove nbufs 0", remove(0, 1, 13));
        one(t, &r, "remove with addr", Sqe { addr: 8, ..remove(1, 1, 14) });
        one(t, &r, "remove with len", Sqe { len: 8, ..remove(1, 1, 15) });
        one(t, &r, "remove 4", remove(4, 1, 16));
        one(t, &r, "remove rest", remove(100, 1, 17));
        one(t, &r, "remove empty", remove(1, 1, 18));
        one(t, &r, "remove unknown group", remove(1, 2, 19));
    });
}

#[test]
fn read_with_selected_buffer() {
    diff("read_with_selected_buffer", |b: &dyn Backend, t: &mut Trace| {
        let r = match Ring::new(b, 8, 0) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", e),
        };
        let file = common::TempFile::new("kbuf-read", b"0123456789abcdef", libc::O_RDWR);
        let fd = file.open(libc::O_RDONLY);
        let mem = Mem::rw(4096);
        one(t, &r, "provide", provide(mem.addr(), 6, 3, 2, 40, 1));
        let read = |len: u32, off: u64, ud: u64| Sqe {
            fd,
            len,
            off,
            buf_index: 2,
            flags: BSEL,
            ..Sqe::new(abi::op::READ, ud)
        };
        one(t, &r, "read 4 at 0", read(4, 0, 2));
        one(t, &r, "read 0 = whole buffer, at 4", read(0, 4, 3));
        one(t, &r, "read 100 capped by buffer", read(100, 10, 4));
        one(t, &r, "read, group empty", read(4, 0, 5));
        one(t, &r, "read, unknown group", Sqe { buf_index: 9, ..read(4, 0, 6) });
        one(t, &r, "readv with buffer select, no iovec", Sqe { flags: BSEL, ..Sqe::readv(fd, core::ptr::null(), 1, 0, 7) });
        one(t, &r, "readv with buffer select, 2 iovecs", Sqe { flags: BSEL, ..Sqe::readv(fd, core::ptr::null(), 2, 0, 7) });
        one(t, &r, "provide again", provide(mem.addr() + 32, 6, 1, 2, 50, 1));
        let iov = libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 3 };
        one(t, &r, "readv with buffer select", Sqe { flags: BSEL, buf_index: 2, ..Sqe::readv(fd, &iov, 1, 1, 7) });
        t.rec("buffers", mem.bytes()[..40].to_vec());
        let mut p = common::Pipe::new(0);
        one(t, &r, "provide for pipe", provide(mem.addr() + 64, 8, 1, 3, 0, 8));
        assert!(r.push(&Sqe { fd: p.r, len: 8, buf_index: 3, flags: BSEL, ..Sqe::new(abi::op::READ, 9) }));
        r.submit(1);
        std::thread::sleep(Duration::from_millis(20));
        t.rec("pipe read waits", r.reap().len());
        common::write_fd(p.w, b"piped");
        t.rec("pipe read", common::shorts(&r.wait_cqes(1, Duration::from_secs(5))));
        t.rec("pipe buffer", mem.bytes()[64..69].to_vec());
        p.close_w();
        common::close_fd(fd);
    });
}

#[test]
fn pbuf_ring_register_errors() {
    diff("pbuf_ring_register_errors", |b: &dyn Backend, t: &mut Trace| {
        let r = match Ring::new(b, 8, 0) {
            Ok(r) => r,
            Err(e) => return t.rec("setup", e),
        };
        let ring_mem = Mem::rw(8192);
        let reg = |addr: u64, entries: u32, bgid: u16, flags: u16, resv: u64| {
            let mut a = linux_raw_sys::io_uring::io_uring_buf_reg { ring_addr: addr, ring_entries: entries, bgid, flags, resv: [resv, 0, 0] };
            // SAFETY: a is a live, writable registration block.
            unsafe { r.register_raw(linux_raw_sys::io_uring::io_uring_register_op::IORING_REGISTER_PBUF_RING as u32, (&mut a as *mut linux_raw_sys::io_uring::io_uring_buf_reg).cast(), 1) }
        };
        let unreg = |bgid: u16, resv: u64| {
            let mut a = linux_raw_sys::io_uring::io_uring_buf_reg { ring_addr: 0, ring_entries: 0, bgid, flags: 0, resv: [resv, 0, 0] };
            // SAFETY: as above.
            unsafe { r.register_raw(linux_raw_sys::io_uring::io_uring_register_op::IORING_UNREGISTER_PBUF_RING as u32, (&mut a as *mut linux_raw_sys::io_uring::io_uring_buf_reg).cast(), 1) }
        };
        let a = ring_mem.addr();
        t.rec("entries not a power of two", common::res(reg(a, 3, 1, 0, 0)));
        t.rec("entries 65536", common::res(reg(a, 65536, 1, 0, 0)));
        t.rec("entries 0", common::res(reg(a, 0, 1, 0, 0)));
        t.rec("resv nonzero", common::res(reg(a, 8, 1, 0, 1)));
        t.rec("unknown flag", common::res(reg(a, 8, 1, 4, 0)));
        t.rec("unaligned", common::res(reg(a + 8, 8, 1, 0, 0)));
        t.rec("good", common::res(reg(a, 8, 1, 0, 0)));
        t.rec("again", common::res(reg(a + 4096, 8, 1, 0, 0)));
        t.rec("unregister unknown", common::res(unreg(2, 0)));
        t.rec("unregister resv", common::res(unreg(1, 1)));
        t.rec("unregister", common::res(unreg(1, 0)));
        t.rec("unregister again", common::res(unreg(1, 0)));
        // A legacy group with buffers refuses a ring; an empty one does not.
        let mem = Mem::rw(4096);
        t.rec("provide", r.one_short(&provide(mem.addr(), 8, 1, 5, 0, 1)));
        t.rec("ring over legacy group", common::res(reg(a, 8, 5, 0, 0)));
        t.rec("ring for 6", common::res(reg(a, 8, 6, 0, 0)));
        t.rec("provide into ring group", r.one_short(&provide(mem.addr(), 8, 1, 6, 0, 2)));
        t.rec("remove from ring group", r.one_short(&Sqe { fd: 1, buf_index: 6, ..Sqe::new(REMOVE, 3) }));
    });
}

scenario!(recvmsg_multishot_udp_layout, |ring, c| {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let mut br = BufRing::new(4, 256);
    // SAFETY: the ring memory outlives its registration.
    unsafe { ring.submitter().register_buf_ring_with_flags(br.ring.addr(), 4, 2, 0).unwrap() };
    for bid in 0..3 {
        br.add(bid);
    }
    // Only msg_namelen and msg_controllen matter for the multishot form.
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_namelen = core::mem::size_of::<libc::sockaddr_in>() as u32;
    push!(ring, c::opcode::RecvMsgMulti::new(c::types::Fd(std::os::fd::AsRawFd::as_raw_fd(&rx)), &msg, 2).build().user_data(5));
    let mut got = drain!(ring);
    for m in [&b"alpha"[..], &b"be"[..]] {
        tx.send(m).unwrap();
        got.extend(reap!(ring, 1));
    }
    // UDP does not report what is left queued, so the kernel tries again
    // at once after each message: with the last buffer used, that retry
    // ends the request with ENOBUFS.
    tx.send(b"gamma").unwrap();
    got.extend(reap!(ring, 2));
    // Header: namelen, controllen, payloadlen, flags; then the name.
    let head = br.buf(0, 16 + 16 + 5);
    let word = |i: usize| u32::from_ne_bytes(head[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!((word(0), word(1), word(2)), (16, 0, 5));
    assert_eq!(&head[32..37], b"alpha");
    assert_eq!(u16::from_be_bytes([head[18], head[19]]), tx.local_addr().unwrap().port());
    got.push((100, word(0) as i32, word(3)));
    got
});

scenario!(send_from_provided_buffer, |ring, c| {
    let (a, b) = pair();
    let mut mem = *b"abcdefgh";
    push!(ring, c::opcode::ProvideBuffers::new(mem.as_mut_ptr(), 4, 2, 0, 0).build().user_data(1));
    let mut got = reap!(ring, 1);
    for ud in 2..=4 {
        push!(
            ring,
            c::opcode::Send::new(c::types::Fd(a.0), core::ptr::null(), 0)
                .build()
                .flags(c::squeue::Flags::BUFFER_SELECT)
                .user_data(ud)
        );
        got.extend(reap!(ring, 1));
    }
    let mut buf = [0u8; 16];
    // SAFETY: reading into a live buffer.
    let n = unsafe { libc::read(b.0, buf.as_mut_ptr().cast(), 16) };
    assert_eq!(&buf[..n as usize], b"abcdefgh");
    got
});

scenario!(recv_waitall_fills_one_selected_buffer, |ring, c| {
    let (a, b) = pair();
    let mut mem = vec![0u8; 2 * 8];
    push!(ring, c::opcode::ProvideBuffers::new(mem.as_mut_ptr(), 8, 2, 1, 0).build().user_data(1));
    let mut got = reap!(ring, 1);
    push!(
        ring,
        c::opcode::Recv::new(c::types::Fd(b.0), core::ptr::null_mut(), 0)
            .flags(libc::MSG_WAITALL)
            .buf_group(1)
            .build()
            .flags(c::squeue::Flags::BUFFER_SELECT)
            .user_data(2)
    );
    got.extend(drain!(ring));
    put(a.0, b"012");
    got.extend(drain!(ring));
    put(a.0, b"34567");
    got.extend(reap!(ring, 1));
    assert_eq!(&mem[..8], b"01234567");
    got
});
