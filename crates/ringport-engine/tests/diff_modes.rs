//! Task-running modes and ring gating, differential: SINGLE_ISSUER,
//! DEFER_TASKRUN, R_DISABLED with ENABLE_RINGS, and RESTRICTIONS.
//! Each scenario runs on the kernel (`io-uring` crate) and on ringport.

use std::time::{Duration, Instant};

type Obs = Vec<String>;

macro_rules! scenario {
    ($name:ident, |$c:ident, $b:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub fn kernel() -> Obs {
                use io_uring as $c;
                #[allow(unused)]
                let $b = || io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder();
                $body
            }
            pub fn ringport() -> Obs {
                use ringport_engine as $c;
                #[allow(unused)]
                let $b = ringport_engine::IoUring::builder;
                $body
            }
        }
        #[test]
        fn $name() {
            if io_uring::IoUring::new(2).is_err() {
                println!("SKIPPED {}: the kernel's io_uring is unavailable", stringify!($name));
                return;
            }
            let k = $name::kernel();
            let r = $name::ringport();
            println!("{}: kernel {:?}", stringify!($name), k);
            assert_eq!(r, k, "ringport vs kernel");
        }
    };
}

fn code<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
    }
}

macro_rules! push {
    ($ring:ident, $e:expr) => {
        // SAFETY: the entries point at memory that outlives their CQEs.
        unsafe { $ring.submission().push(&$e).unwrap() }
    };
}

macro_rules! cqes {
    ($ring:ident) => {
        $ring.completion().map(|c| format!("{}:{}", c.user_data(), c.result())).collect::<Vec<_>>()
    };
}

scenario!(single_issuer_refuses_other_threads, |c, b| {
    let mut ring = b().setup_single_issuer().build(8).unwrap();
    push!(ring, c::opcode::Nop::new().build().user_data(1));
    let mut obs = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            obs.push(format!("submit elsewhere: {}", code(ring.submit())));
            obs.push(format!("register elsewhere: {}", code(ring.submitter().register_files(&[0]))));
        });
    });
    obs.push(format!("submit here: {}", code(ring.submit_and_wait(1))));
    obs.extend(cqes!(ring));
    obs
});

scenario!(defer_taskrun_posts_only_when_asked, |c, b| {
    let mut ring = b()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
        .unwrap();
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 4];
    push!(ring, c::opcode::Read::new(c::types::Fd(p[0]), buf.as_mut_ptr(), 4).build().user_data(1));
    ring.submit().unwrap();
    // SAFETY: writing 4 bytes from a live buffer to our pipe.
    unsafe { libc::write(p[1], b"abcd".as_ptr().cast(), 4) };
    std::thread::sleep(Duration::from_millis(30));
    let mut obs = vec![format!("before getevents: {:?}", cqes!(ring))];
    let t = Instant::now();
    let _ = ring.submit_and_wait(1);
    obs.push(format!("after getevents: {:?}", cqes!(ring)));
    assert!(t.elapsed() < Duration::from_secs(5));
    std::thread::scope(|s| {
        s.spawn(|| obs.push(format!("wait elsewhere: {}", code(ring.submitter().submit_and_wait(1)))));
    });
    // SAFETY: closing our pipe.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    obs
});

// On a DEFER_TASKRUN ring a request waiting for readiness runs in the
// submitter's enter, not when its file became ready: data written after the
// readiness but before the enter is read by the same read.
scenario!(defer_taskrun_runs_ready_work_at_enter, |c, b| {
    let mut ring = b()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(8)
        .unwrap();
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 16];
    push!(ring, c::opcode::Read::new(c::types::Fd(p[0]), buf.as_mut_ptr(), 16).build().user_data(1));
    ring.submit().unwrap();
    // SAFETY: writing from live buffers to our pipe.
    unsafe { libc::write(p[1], b"abc".as_ptr().cast(), 3) };
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: as above.
    unsafe { libc::write(p[1], b"def".as_ptr().cast(), 3) };
    let mut obs = vec![format!("taskrun flag: {}", ring.submission().taskrun())];
    let t = Instant::now();
    let _ = ring.submit_and_wait(1);
    obs.push(format!("after getevents: {:?} {:?}", cqes!(ring), &buf[..6]));
    obs.push(format!("taskrun flag after: {}", ring.submission().taskrun()));
    assert!(t.elapsed() < Duration::from_secs(5));
    // SAFETY: closing our pipe.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    obs
});

scenario!(disabled_ring_and_restrictions, |c, b| {
    use c::register::Restriction;
    let mut ring = b().setup_r_disabled().build(8).unwrap();
    let mut obs = Vec::new();
    push!(ring, c::opcode::Nop::new().build().user_data(1));
    obs.push(format!("enter while disabled: {}", code(ring.submit())));
    let mut res = [
        Restriction::sqe_op(c::opcode::Nop::CODE),
        Restriction::register_op(8), // PROBE
        Restriction::sqe_flags_allowed(c::squeue::Flags::IO_LINK.bits()),
    ];
    obs.push(format!("restrict: {}", code(ring.submitter().register_restrictions(&mut res))));
    obs.push(format!("restrict again: {}", code(ring.submitter().register_restrictions(&mut res))));
    obs.push(format!("enable: {}", code(ring.submitter().register_enable_rings())));
    obs.push(format!("enable again: {}", code(ring.submitter().register_enable_rings())));
    obs.push(format!("submit: {}", code(ring.submit_and_wait(1))));
    obs.extend(cqes!(ring));
    let mut buf = [0u8; 1];
    push!(ring, c::opcode::Read::new(c::types::Fd(0), buf.as_mut_ptr(), 1).build().user_data(2));
    push!(ring, c::opcode::Nop::new().build().user_data(3).flags(c::squeue::Flags::ASYNC));
    push!(ring, c::opcode::Nop::new().build().user_data(4).flags(c::squeue::Flags::IO_LINK));
    push!(ring, c::opcode::Nop::new().build().user_data(5));
    obs.push(format!("submit restricted: {}", code(ring.submit())));
    std::thread::sleep(Duration::from_millis(20));
    let _ = ring.submit_and_wait(0);
    let mut got = cqes!(ring);
    got.sort();
    obs.extend(got);
    obs.push(format!("register files: {}", code(ring.submitter().register_files(&[0]))));
    obs
});

scenario!(iopoll_direct_io_only, |c, b| {
    let path = std::env::temp_dir().join(format!("ringport-iopoll-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 1 << 16]).unwrap();
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: opening a file we just wrote, with a valid C path.
    let direct = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR | libc::O_DIRECT) };
    // SAFETY: as above, buffered.
    let buffered = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR) };
    let mut obs = Vec::new();
    if direct < 0 {
        // The filesystem refuses O_DIRECT: nothing to compare.
        std::fs::remove_file(&path).unwrap();
        return vec!["no O_DIRECT".into()];
    }
    let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: a non-zero-sized, aligned allocation, freed below.
    let buf = unsafe { std::alloc::alloc(layout) };
    let mut ring = b().setup_iopoll().build(8).unwrap();
    push!(ring, c::opcode::Read::new(c::types::Fd(direct), buf, 4096).build().user_data(1));
    push!(ring, c::opcode::Nop::new().build().user_data(2));
    push!(ring, c::opcode::Fsync::new(c::types::Fd(direct)).build().user_data(3));
    obs.push(format!("submit: {}", code(ring.submit())));
    obs.push(format!("visible before reaping: {:?}", cqes!(ring)));
    // The kernel's reap loop may return early (it yields on need_resched),
    // so reap until a polled CQE shows up, within a bound.
    macro_rules! reap_some {
        () => {{
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.is_empty() && Instant::now() < deadline {
                let _ = ring.submit_and_wait(1);
                got.extend(cqes!(ring));
            }
            got
        }};
    }
    obs.push(format!("reaped: {:?}", reap_some!()));
    // A direct write: on a device without poll queues the kernel does it
    // unpolled (iomap clears the polled flag for writes) and succeeds,
    // where the read above was refused.
    push!(ring, c::opcode::Write::new(c::types::Fd(direct), buf, 4096).offset(4096).build().user_data(5));
    obs.push(format!("direct write: {:?}", reap_some!()));
    push!(ring, c::opcode::Read::new(c::types::Fd(buffered), buf, 4096).build().user_data(4));
    let _ = ring.submit_and_wait(1);
    obs.push(format!("buffered: {:?}", cqes!(ring)));
    // SAFETY: freeing the allocation above; closing our fds.
    unsafe {
        std::alloc::dealloc(buf, layout);
        libc::close(direct);
        libc::close(buffered);
    }
    std::fs::remove_file(&path).unwrap();
    obs
});

extern "C" fn on_usr1(_: i32) {}

/// A signal handler runs while a thread waits for CQEs: the wait returns
/// EINTR, even with SA_RESTART, on the kernel and on ringport.
#[test]
fn signal_interrupts_a_blocking_wait() {
    if io_uring::IoUring::new(2).is_err() {
        println!("SKIPPED signal_interrupts_a_blocking_wait: the kernel's io_uring is unavailable");
        return;
    }
    // SAFETY: installing a no-op handler for SIGUSR1 with a valid sigaction.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut());
    }
    fn interrupted(wait: impl FnOnce() -> std::io::Result<usize> + Send) -> Option<i32> {
        let tid = std::sync::atomic::AtomicI32::new(0);
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                // SAFETY: gettid has no preconditions.
                tid.store(unsafe { libc::gettid() }, std::sync::atomic::Ordering::Release);
                wait()
            });
            while tid.load(std::sync::atomic::Ordering::Acquire) == 0 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(50));
            let t = tid.load(std::sync::atomic::Ordering::Acquire);
            // SAFETY: sending SIGUSR1 (handled by a no-op) to that one thread.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), t, libc::SIGUSR1) };
            h.join().unwrap().err().and_then(|e| e.raw_os_error())
        })
    }
    let k = io_uring::IoUring::new(4).unwrap();
    let r = ringport_engine::Ring::new(4).unwrap();
    let ke = interrupted(|| k.submit_and_wait(1));
    let re = interrupted(|| r.submit_and_wait(1));
    println!("kernel {ke:?} ringport {re:?}");
    assert_eq!(ke, Some(libc::EINTR));
    assert_eq!(re, ke);
}
