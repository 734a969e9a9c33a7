//! POLL_ADD, POLL_REMOVE and reads that wait for readiness, differential:
//! each scenario runs on the kernel (through the `io-uring` crate) and on
//! ringport, and the CQE streams must match.

use std::time::{Duration, Instant};

#[macro_use]
mod scenario;
use scenario::Cqes;


/// A pipe whose ends close on drop.
struct Pipe {
    r: i32,
    w: i32,
}

impl Pipe {
    fn new(flags: i32) -> Pipe {
        let mut p = [0i32; 2];
        // SAFETY: p is a valid 2-int array.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), flags | libc::O_CLOEXEC) }, 0);
        Pipe { r: p[0], w: p[1] }
    }
    fn put(&self, b: &[u8]) {
        // SAFETY: writing from a live slice to our pipe.
        assert_eq!(unsafe { libc::write(self.w, b.as_ptr().cast(), b.len()) }, b.len() as isize);
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

const IN: u32 = libc::POLLIN as u32;

scenario!(ready_pipe_completes_inline, |ring, c| {
    let p = Pipe::new(0);
    p.put(b"x");
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1));
    push!(ring, c::opcode::Nop::new().build().user_data(2));
    ring.submit().unwrap();
    ring.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect::<Cqes>()
});

scenario!(poll_waits_for_data, |ring, c| {
    let p = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1));
    let mut got = drain!(ring);
    p.put(b"x");
    got.extend(reap!(ring, 1));
    got
});

scenario!(multishot_then_remove, |ring, c| {
    let p = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).multi(true).build().user_data(1));
    let mut got = drain!(ring);
    for _ in 0..3 {
        p.put(b"x");
        got.extend(reap!(ring, 1));
    }
    push!(ring, c::opcode::PollRemove::new(1).build().user_data(2));
    got.extend(reap!(ring, 2));
    push!(ring, c::opcode::PollRemove::new(1).build().user_data(3));
    got.extend(reap!(ring, 1));
    got
});

scenario!(read_on_empty_pipe_waits, |ring, c| {
    let p = Pipe::new(0);
    let mut buf = [0u8; 8];
    push!(ring, c::opcode::Read::new(c::types::Fd(p.r), buf.as_mut_ptr(), 8).build().user_data(1));
    push!(ring, c::opcode::Nop::new().build().user_data(2));
    let mut got = drain!(ring);
    p.put(b"hello");
    got.extend(reap!(ring, 1));
    assert_eq!(&buf[..5], b"hello");
    got
});

scenario!(read_on_nonblocking_pipe_waits_too, |ring, c| {
    let p = Pipe::new(libc::O_NONBLOCK);
    let mut buf = [0u8; 8];
    push!(ring, c::opcode::Read::new(c::types::Fd(p.r), buf.as_mut_ptr(), 8).build().user_data(1));
    let mut got = drain!(ring);
    p.put(b"hi");
    got.extend(reap!(ring, 1));
    got
});

/// Sorts CQEs whose order the kernel leaves to its hash tables.
fn sorted(mut v: Cqes) -> Cqes {
    v.sort();
    v
}

scenario!(cancel_poll_timeout_and_missing, |ring, c| {
    let p = Pipe::new(0);
    let ts = c::types::Timespec::new().sec(5);
    push!(
        ring,
        c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1),
        c::opcode::Timeout::new(&ts).build().user_data(2),
    );
    ring.submit().unwrap();
    push!(
        ring,
        c::opcode::AsyncCancel::new(1).build().user_data(10),
        c::opcode::AsyncCancel::new(2).build().user_data(11),
        c::opcode::AsyncCancel::new(99).build().user_data(12),
    );
    reap!(ring, 5)
});

scenario!(cancel_waiting_read_and_all_none, |ring, c| {
    let p = Pipe::new(0);
    let mut buf = [0u8; 4];
    push!(ring, c::opcode::Read::new(c::types::Fd(p.r), buf.as_mut_ptr(), 4).build().user_data(1));
    ring.submit().unwrap();
    push!(ring, c::opcode::AsyncCancel::new(1).build().user_data(10));
    let mut got = reap!(ring, 2);
    push!(ring, c::opcode::AsyncCancel2::new(c::types::CancelBuilder::user_data(77).all()).build().user_data(11));
    got.extend(reap!(ring, 1));
    got
});

scenario!(cancel_any_and_by_fd, |ring, c| {
    let p = Pipe::new(0);
    let q = Pipe::new(0);
    for ud in 1..=3 {
        push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(ud));
    }
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(q.r), IN).build().user_data(4));
    ring.submit().unwrap();
    push!(ring, c::opcode::AsyncCancel2::new(c::types::CancelBuilder::fd(c::types::Fd(q.r))).build().user_data(10));
    let mut got = reap!(ring, 2);
    push!(ring, c::opcode::AsyncCancel2::new(c::types::CancelBuilder::any()).build().user_data(11));
    let rest = reap!(ring, 4);
    // The first CQE is the cancel's own count; which victims follow in
    // which order is the kernel's hash order.
    got.push(rest[0]);
    got.extend(sorted(rest[1..].to_vec()));
    got
});

scenario!(link_timeout_fires_on_waiting_read, |ring, c| {
    let p = Pipe::new(0);
    let mut buf = [0u8; 4];
    let ts = c::types::Timespec::new().nsec(10_000_000);
    let link = c::squeue::Flags::IO_LINK;
    push!(
        ring,
        c::opcode::Read::new(c::types::Fd(p.r), buf.as_mut_ptr(), 4).build().user_data(1).flags(link),
        c::opcode::LinkTimeout::new(&ts).build().user_data(2).flags(link),
        c::opcode::Nop::new().build().user_data(3),
    );
    reap!(ring, 3)
});

scenario!(link_timeout_disarmed_by_completion, |ring, c| {
    let p = Pipe::new(0);
    let mut buf = [0u8; 4];
    let ts = c::types::Timespec::new().sec(5);
    let link = c::squeue::Flags::IO_LINK;
    push!(
        ring,
        c::opcode::Nop::new().build().user_data(1).flags(link),
        c::opcode::LinkTimeout::new(&ts).build().user_data(2).flags(link),
        c::opcode::Nop::new().build().user_data(3),
    );
    let mut got = reap!(ring, 3);
    push!(
        ring,
        c::opcode::Read::new(c::types::Fd(p.r), buf.as_mut_ptr(), 4).build().user_data(4).flags(link),
        c::opcode::LinkTimeout::new(&ts).build().user_data(5),
    );
    got.extend(drain!(ring));
    p.put(b"abcd");
    got.extend(reap!(ring, 2));
    got
});

scenario!(link_timeout_prep_errors, |ring, c| {
    let ts = c::types::Timespec::new().sec(1);
    push!(ring, c::opcode::LinkTimeout::new(&ts).build().user_data(1));
    ring.submit().unwrap();
    let link = c::squeue::Flags::IO_LINK;
    push!(
        ring,
        c::opcode::Nop::new().build().user_data(2).flags(link),
        c::opcode::LinkTimeout::new(&ts).build().user_data(3).flags(link),
        c::opcode::LinkTimeout::new(&ts).build().user_data(4),
    );
    reap!(ring, 4)
});

/// IORING_REGISTER_SYNC_CANCEL on a pending poll, then on nothing.
#[test]
fn sync_cancel_matches_kernel() {
    fn run<S, C>(
        push: impl Fn(&mut S),
        cancel: impl Fn(&S, u64) -> std::io::Result<()>,
        reap: impl Fn(&mut S) -> Cqes,
        ring: &mut S,
        _c: std::marker::PhantomData<C>,
    ) -> Vec<String> {
        push(ring);
        let mut obs = vec![format!("{:?}", cancel(ring, 1).map_err(|e| e.raw_os_error()))];
        obs.push(format!("{:?}", reap(ring)));
        obs.push(format!("{:?}", cancel(ring, 99).map_err(|e| e.raw_os_error())));
        obs
    }
    let p = Pipe::new(0);
    let Ok(mut k) = io_uring::IoUring::new(8) else {
        println!("SKIPPED sync_cancel_matches_kernel: the kernel's io_uring is unavailable");
        return;
    };
    let ko = run(
        |r: &mut io_uring::IoUring| {
            // SAFETY: a poll points at no memory.
            unsafe { r.submission().push(&io_uring::opcode::PollAdd::new(io_uring::types::Fd(p.r), IN).build().user_data(1)).unwrap() };
            r.submit().unwrap();
        },
        |r, ud| r.submitter().register_sync_cancel(None, io_uring::types::CancelBuilder::user_data(ud)),
        |r| {
            let _ = r.submit_and_wait(1);
            r.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect()
        },
        &mut k,
        std::marker::PhantomData::<()>,
    );
    let mut rp = ringport_engine::Ring::new(8).unwrap();
    let ro = run(
        |r: &mut ringport_engine::Ring| {
            // SAFETY: a poll points at no memory.
            unsafe { r.submission().push(&ringport_engine::opcode::PollAdd::new(ringport_engine::types::Fd(p.r), IN).build().user_data(1)).unwrap() };
            r.submit().unwrap();
        },
        |r, ud| r.submitter().register_sync_cancel(None, ringport_engine::types::CancelBuilder::user_data(ud)),
        |r| {
            let _ = r.submit_and_wait(1);
            r.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect()
        },
        &mut rp,
        std::marker::PhantomData::<()>,
    );
    println!("sync cancel: kernel {ko:?}");
    assert_eq!(ro, ko);
}
