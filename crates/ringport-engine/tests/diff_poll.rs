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

// A thread waiting in enter while polls are armed completes them itself
// (ringport's "harvesting"); these check every hand-off around it.

/// An enter result as a pseudo-CQE (user_data u64::MAX, res = -errno).
fn enter_res(r: std::io::Result<usize>) -> (u64, i32, u32) {
    (u64::MAX, r.map(|_| 0).unwrap_or_else(|e| -e.raw_os_error().unwrap_or(0)), 0)
}

/// Reads the CQ without entering, until `n` CQEs arrived or 5 s passed.
macro_rules! spin_for {
    ($ring:ident, $n:expr) => {{
        let mut got: Cqes = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < $n && Instant::now() < deadline {
            got.extend($ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            std::thread::yield_now();
        }
        got
    }};
}

scenario!(readiness_after_a_timed_out_wait_still_completes, |ring, c| {
    let p = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1));
    let ts = c::types::Timespec::new().nsec(20_000_000);
    let args = c::types::SubmitArgs::new().timespec(&ts);
    let mut got = vec![enter_res(ring.submitter().submit_with_args(1, &args))];
    // Nobody is in enter now: the readiness must still be completed.
    p.put(b"x");
    got.extend(spin_for!(ring, 1));
    got
});

scenario!(waiter_with_armed_poll_wakes_for_a_timeout, |ring, c| {
    let p = Pipe::new(0);
    let ts = c::types::Timespec::new().nsec(20_000_000);
    push!(
        ring,
        c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1),
        c::opcode::Timeout::new(&ts).build().user_data(2),
    );
    let mut got = vec![enter_res(ring.submit_and_wait(1))];
    got.extend(ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
    push!(ring, c::opcode::PollRemove::new(1).build().user_data(3));
    got.extend(reap!(ring, 2));
    got
});

scenario!(other_rings_polls_complete_while_one_waits, |ring, c| {
    let mut other = c::IoUring::new(8).map_err(|e| e.to_string())?;
    let p = Pipe::new(0);
    let q = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1));
    push!(other, c::opcode::PollAdd::new(c::types::Fd(q.r), IN).build().user_data(2));
    other.submit().unwrap();
    let r = &ring;
    let (waited, mut got) = std::thread::scope(|s| {
        let t = s.spawn(move || enter_res(r.submit_and_wait(1)));
        std::thread::sleep(Duration::from_millis(20));
        // `ring`'s waiter sleeps; `other`'s poll is served regardless.
        q.put(b"y");
        let got = spin_for!(other, 1);
        p.put(b"x");
        (t.join().unwrap(), got)
    });
    got.push(waited);
    got.extend(ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
    got
});

scenario!(two_waiters_on_one_ring, |ring, c| {
    let p = Pipe::new(0);
    let q = Pipe::new(0);
    push!(
        ring,
        c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1),
        c::opcode::PollAdd::new(c::types::Fd(q.r), IN).build().user_data(2),
    );
    ring.submit().unwrap();
    let r = &ring;
    let mut got = std::thread::scope(|s| {
        let a = s.spawn(move || enter_res(r.submit_and_wait(1)));
        let b = s.spawn(move || enter_res(r.submit_and_wait(2)));
        std::thread::sleep(Duration::from_millis(20));
        p.put(b"x");
        std::thread::sleep(Duration::from_millis(5));
        q.put(b"y");
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    got.extend(sorted(ring.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect()));
    got
});

extern "C" fn on_usr1(_: i32) {}

scenario!(signal_interrupts_a_waiter_with_armed_polls, |ring, c| {
    // SAFETY: a handler that does nothing, installed with SA_RESTART (which
    // enter ignores, as the kernel does).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let p = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1));
    ring.submit().unwrap();
    let r = &ring;
    let mut got = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = s.spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            enter_res(r.submit_and_wait(1))
        });
        let id = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        // SAFETY: the thread is alive until joined below.
        unsafe { libc::pthread_kill(id as libc::pthread_t, libc::SIGUSR1) };
        vec![t.join().unwrap()]
    });
    // The poll is still armed: complete it.
    p.put(b"x");
    got.extend(reap!(ring, 1));
    got
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

/// IORING_REGISTER_SYNC_CANCEL's argument checks: one struct (nr_args 1), a
/// non-null pointer, zero padding; a cancel that finds nothing is -ENOENT.
#[test]
fn sync_cancel_argument_checks_match_kernel() {
    use std::os::fd::AsRawFd;
    const SYNC_CANCEL: u32 = 24;
    fn observe(reg: &dyn Fn(*mut libc::c_void, u32) -> i32) -> Vec<i32> {
        // SAFETY: the struct is plain integers; all-zero is valid.
        let mut sc: ringport_engine::abi::io_uring_sync_cancel_reg = unsafe { std::mem::zeroed() };
        sc.addr = 0x77;
        sc.timeout.tv_sec = -1;
        sc.timeout.tv_nsec = -1;
        let p = &mut sc as *mut _ as *mut libc::c_void;
        let mut out = vec![reg(p, 1), reg(p, 0), reg(p, 2), reg(std::ptr::null_mut(), 1)];
        sc.pad2[0] = 1;
        out.push(reg(&mut sc as *mut _ as *mut libc::c_void, 1));
        sc.pad2[0] = 0;
        sc.flags = 1 << 30;
        out.push(reg(&mut sc as *mut _ as *mut libc::c_void, 1));
        out
    }
    let Ok(k) = io_uring::IoUring::new(8) else {
        println!("SKIPPED sync_cancel_argument_checks_match_kernel: the kernel's io_uring is unavailable");
        return;
    };
    let kfd = k.as_raw_fd();
    let ko = observe(&|arg, nr| {
        // SAFETY: io_uring_register on our ring with a pointer to a live struct (or null).
        let r = unsafe { libc::syscall(libc::SYS_io_uring_register, kfd, SYNC_CANCEL, arg, nr) };
        if r < 0 { -std::io::Error::last_os_error().raw_os_error().unwrap() } else { r as i32 }
    });
    let rp = ringport_engine::Ring::new(8).unwrap();
    let rfd = rp.as_raw_fd();
    // SAFETY: as above, served by the engine.
    let ro = observe(&|arg, nr| unsafe { ringport_engine::sys::io_uring_register(rfd, SYNC_CANCEL, arg, nr) });
    println!("sync cancel arguments: kernel {ko:?}");
    assert_eq!(ko[0], -libc::ENOENT, "the kernel's answer for a cancel that finds nothing");
    assert_eq!(ro, ko);
}

// Cancelling a request that blocks in a worker: io-wq signals the worker,
// the cancel answers -EALREADY, and the blocked call ends early (a pipe
// splice posts -ERESTARTSYS, 512, as the kernel leaks it).
scenario!(cancel_interrupts_a_splice_blocked_in_a_worker, |ring, c| {
    let p = Pipe::new(0);
    let path = std::env::temp_dir().join(format!("ringport-splice-cancel-{}", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let out = std::os::fd::AsRawFd::as_raw_fd(&f);
    push!(ring, c::opcode::Splice::new(c::types::Fd(p.r), -1, c::types::Fd(out), 0, 4096).build().user_data(1));
    ring.submit().unwrap();
    // Let the worker start and block on the empty pipe.
    std::thread::sleep(Duration::from_millis(100));
    push!(ring, c::opcode::AsyncCancel::new(1).build().user_data(2));
    let got = reap!(ring, 2);
    drop(f);
    got
});

// More armed polls than a waiter watches directly (it then sleeps on the
// epoll instance), and a multishot one among one-shots.
scenario!(waiter_with_many_armed_polls_and_a_multishot, |ring, c| {
    let pipes: Vec<Pipe> = (0..10).map(|_| Pipe::new(0)).collect();
    for (i, p) in pipes.iter().enumerate() {
        push!(ring, c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(i as u64));
    }
    let m = Pipe::new(0);
    push!(ring, c::opcode::PollAdd::new(c::types::Fd(m.r), IN).multi(true).build().user_data(100));
    ring.submit().unwrap();
    let r = &ring;
    let mut got = std::thread::scope(|s| {
        let t = s.spawn(move || {
            let mut n = Vec::new();
            for _ in 0..4 {
                n.push(enter_res(r.submit_and_wait(1)));
            }
            n
        });
        for p in pipes.iter().take(3) {
            std::thread::sleep(Duration::from_millis(5));
            p.put(b"x");
        }
        std::thread::sleep(Duration::from_millis(5));
        m.put(b"y");
        t.join().unwrap()
    });
    got.truncate(0);
    got.extend(reap!(ring, 4));
    for p in pipes.iter().skip(3) {
        p.put(b"z");
    }
    got.extend(sorted(reap!(ring, 7)));
    push!(ring, c::opcode::PollRemove::new(100).build().user_data(200));
    got.extend(sorted(reap!(ring, 2)));
    sorted(got)
});

// A waiter watching polls directly leaves (timeout) with polls armed; the
// next waiter, and the reactor in between, still see their readiness.
scenario!(polls_survive_waiters_coming_and_going, |ring, c| {
    let p = Pipe::new(0);
    let q = Pipe::new(0);
    push!(
        ring,
        c::opcode::PollAdd::new(c::types::Fd(p.r), IN).build().user_data(1),
        c::opcode::PollAdd::new(c::types::Fd(q.r), IN).build().user_data(2),
    );
    let ts = c::types::Timespec::new().nsec(10_000_000);
    let args = c::types::SubmitArgs::new().timespec(&ts);
    let mut got = vec![enter_res(ring.submitter().submit_with_args(1, &args))];
    p.put(b"x");
    got.extend(spin_for!(ring, 1));
    got.push(enter_res(ring.submitter().submit_with_args(1, &args)));
    q.put(b"y");
    got.push(enter_res(ring.submit_and_wait(1)));
    got.extend(ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
    got
});
