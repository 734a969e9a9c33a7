//! The timed loops, one per workload: generic over [`Uring`] for the
//! queue-shaped backends, plus the plain blocking loops of `psync`.
//!
//! Timing does not disturb what it measures: the clock is read once per
//! millisecond or so to check the deadline (the interval is calibrated in
//! the warm-up), and latency is sampled on a fixed fraction of operations
//! (about 20,000 a second), the same fraction for every backend. The
//! latency workloads (poll, timeout) live in [`super::latency`]; they
//! sample every operation.

use super::files::{Buffers, Rng};
use super::latency::{poll_wake, timer_error, Waiter};
use super::ops::{run_blocking, Op, Uring};
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Latency samples aimed for per second of run.
const SAMPLES_PER_SEC: f64 = 20_000.0;
/// User data of the fsync that ends a seqwrite segment.
const FSYNC_UD: u64 = u64::MAX;

/// What one loop runs: a workload with its concrete files and sizes.
#[derive(Clone, Copy, Debug)]
pub enum Spec {
    /// Push `batch` NOPs, submit and wait for `batch`, reap `batch`.
    Nop {
        /// NOPs per round.
        batch: usize,
    },
    /// `qd` reads of `block` bytes in flight, at random block-aligned
    /// offsets below `blocks * block`.
    RandRead {
        /// File to read.
        fd: RawFd,
        /// Number of blocks in the file.
        blocks: u64,
        /// Bytes per read.
        block: u32,
        /// Reads in flight.
        qd: usize,
        /// Offset generator seed (the same for every backend).
        seed: u64,
    },
    /// Sequential writes of `block` bytes, `qd` in flight, wrapping at
    /// `size`; every `fsync_every` writes are followed by an fsync.
    SeqWrite {
        /// File to write.
        fd: RawFd,
        /// Bytes in the file.
        size: u64,
        /// Bytes per write.
        block: u32,
        /// Writes in flight.
        qd: usize,
        /// Writes per fsync.
        fsync_every: usize,
    },
    /// NOPs on a ring created with SQPOLL, reaped by polling the CQ ring.
    SqpollNop {
        /// NOPs per round.
        batch: usize,
        /// `sq_thread_idle` in milliseconds.
        idle_ms: u32,
    },
    /// Poll wake-up latency through a pipe, `gap` after arming.
    Poll {
        /// How long the writer waits after the poll is armed.
        gap: Duration,
    },
    /// Timer firing error of a relative timer of `dur`.
    Timeout {
        /// The timer's length.
        dur: Duration,
    },
}

impl Spec {
    /// How many request slots (and buffers) the loop needs.
    pub fn slots(&self) -> usize {
        match *self {
            Spec::Nop { batch } | Spec::SqpollNop { batch, .. } => batch,
            Spec::RandRead { qd, .. } | Spec::SeqWrite { qd, .. } => qd,
            Spec::Poll { .. } | Spec::Timeout { .. } => 1,
        }
    }
    /// Bytes per buffer.
    pub fn buf_size(&self) -> usize {
        match *self {
            Spec::Nop { .. } | Spec::SqpollNop { .. } | Spec::Poll { .. } | Spec::Timeout { .. } => 0,
            Spec::RandRead { block, .. } | Spec::SeqWrite { block, .. } => block as usize,
        }
    }
}

/// How long to run and how often to look at the clock.
#[derive(Clone, Copy, Debug)]
pub struct Ctl {
    /// Run time.
    pub dur: Duration,
    /// Loop iterations between two deadline checks.
    pub check_every: u64,
    /// Sampling units (ops, or rounds for nop) between two latency samples.
    pub sample_every: u64,
}

impl Ctl {
    /// A warm-up: checks the clock every iteration, samples no latency.
    pub fn warmup(dur: Duration) -> Ctl {
        Ctl { dur, check_every: 1, sample_every: u64::MAX }
    }
    /// The timed run's control, calibrated from a warm-up's figures.
    pub fn calibrated(dur: Duration, warm: &RepStats) -> Ctl {
        let secs = warm.secs.max(1e-6);
        let iters_per_ms = warm.iters as f64 / secs / 1000.0;
        let units_per_sec = warm.units as f64 / secs;
        Ctl {
            dur,
            check_every: (iters_per_ms as u64).max(1),
            sample_every: ((units_per_sec / SAMPLES_PER_SEC) as u64).max(1),
        }
    }
}

/// What one timed run produced.
#[derive(Clone, Debug, Default)]
pub struct RepStats {
    /// Operations completed (NOPs, reads, writes; not the fsyncs).
    pub ops: u64,
    /// Loop iterations.
    pub iters: u64,
    /// Latency sampling units (rounds for nop, ops otherwise).
    pub units: u64,
    /// Seconds the timed loop ran.
    pub secs: f64,
    /// Sampled latencies, in nanoseconds.
    pub lat_ns: Vec<u64>,
}

/// A countdown that fires every `every` calls (the first after `every`).
struct Every {
    left: u64,
    every: u64,
}

impl Every {
    fn new(every: u64) -> Every {
        Every { left: every, every }
    }
    #[inline(always)]
    fn tick(&mut self) -> bool {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.every;
            true
        } else {
            false
        }
    }
}

fn bad_result(what: &str, res: i32, want: i64) -> io::Error {
    if res < 0 {
        io::Error::other(format!("{what} failed: {}", io::Error::from_raw_os_error(-res)))
    } else {
        io::Error::other(format!("{what} returned {res}, expected {want}"))
    }
}

/// Runs `spec` on a queue-shaped backend.
pub fn run_uring<U: Uring>(u: &mut U, spec: &Spec, bufs: &Buffers, ctl: &Ctl) -> io::Result<RepStats> {
    match *spec {
        Spec::Nop { batch } => nop(u, batch, ctl),
        Spec::SqpollNop { batch, .. } => sqpoll_nop(u, batch, ctl),
        Spec::Poll { gap } => poll_wake(Waiter::Queue(u), gap, ctl),
        Spec::Timeout { dur } => timer_error(Waiter::Queue(u), dur, ctl),
        Spec::RandRead { fd, blocks, block, qd, seed } => randread(u, fd, blocks, block, qd, seed, bufs, ctl),
        Spec::SeqWrite { fd, size, block, qd, fsync_every } => seqwrite(u, fd, size, block, qd, fsync_every, bufs, ctl),
    }
}

/// The NOP loop of `ringport bench nop`: push `batch` NOPs,
/// `submit_and_wait(batch)`, reap `batch` CQEs and check each is 0.
fn nop<U: Uring>(u: &mut U, batch: usize, ctl: &Ctl) -> io::Result<RepStats> {
    let mut st = RepStats::default();
    let mut check = Every::new(ctl.check_every);
    let mut sample = Every::new(ctl.sample_every);
    let start = Instant::now();
    loop {
        let t0 = if sample.tick() { Some(Instant::now()) } else { None };
        // SAFETY: NOPs point at no memory.
        unsafe { u.push_with(batch, |i| (Op::Nop, i as u64))? };
        u.submit_and_wait(batch)?;
        let mut got = 0usize;
        let mut bad = None;
        u.reap(|_, res| {
            got += 1;
            if res != 0 {
                bad = Some(res);
            }
        });
        if let Some(t0) = t0 {
            st.lat_ns.push(t0.elapsed().as_nanos() as u64);
        }
        if let Some(res) = bad {
            return Err(bad_result("NOP", res, 0));
        }
        if got != batch {
            return Err(io::Error::other(format!("reaped {got} NOP completions, expected {batch}")));
        }
        st.ops += got as u64;
        st.iters += 1;
        if check.tick() && start.elapsed() >= ctl.dur {
            break;
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.iters;
    Ok(st)
}

/// How long the SQPOLL loop polls the CQ ring without progress before it
/// waits in enter instead (when the machine is busy, a poller that lost its
/// CPU should not be fought for it).
const SQPOLL_SPIN_LIMIT: Duration = Duration::from_millis(1);

/// The loop of `ringport bench sqpoll`: push `batch` NOPs and publish them
/// with `submit()` (on an SQPOLL ring the library enters only to wake a
/// sleeping poller), then reap `batch` CQEs by polling the CQ ring, as
/// SQPOLL programs do: no enter on the way. After [`SQPOLL_SPIN_LIMIT`]
/// without a new CQE, it waits in enter (bounded) for the rest.
fn sqpoll_nop<U: Uring>(u: &mut U, batch: usize, ctl: &Ctl) -> io::Result<RepStats> {
    let mut st = RepStats::default();
    let mut check = Every::new(ctl.check_every);
    let mut sample = Every::new(ctl.sample_every);
    let start = Instant::now();
    loop {
        let t0 = if sample.tick() { Some(Instant::now()) } else { None };
        // SAFETY: NOPs point at no memory.
        unsafe { u.push_with(batch, |i| (Op::Nop, i as u64))? };
        u.submit_and_wait(0)?;
        let mut got = 0usize;
        let mut bad = None;
        let mut idle_since: Option<Instant> = None;
        let mut polls = 0u32;
        while got < batch {
            let n = u.reap(|_, res| {
                if res != 0 {
                    bad = Some(res);
                }
            });
            got += n;
            if n > 0 {
                idle_since = None;
                continue;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && idle_since.get_or_insert_with(Instant::now).elapsed() >= SQPOLL_SPIN_LIMIT {
                let limit = super::latency::WAIT_LIMIT;
                u.submit_and_wait_for(batch - got, limit).map_err(|e| match e.raw_os_error() {
                    Some(libc::ETIME) => io::Error::other(format!(
                        "{} SQPOLL NOPs not completed within {} s (a lost wake-up?)",
                        batch - got,
                        limit.as_secs()
                    )),
                    _ => e,
                })?;
                idle_since = None;
            } else {
                std::hint::spin_loop();
            }
        }
        if let Some(t0) = t0 {
            st.lat_ns.push(t0.elapsed().as_nanos() as u64);
        }
        if let Some(res) = bad {
            return Err(bad_result("NOP", res, 0));
        }
        st.ops += got as u64;
        st.iters += 1;
        if check.tick() && start.elapsed() >= ctl.dur {
            break;
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.iters;
    Ok(st)
}

/// Waits for the `inflight` requests still out, checking none failed.
fn drain<U: Uring>(u: &mut U, mut inflight: usize) -> io::Result<()> {
    let mut bad = None;
    while inflight > 0 {
        u.submit_and_wait(1)?;
        inflight -= u.reap(|_, res| {
            if res < 0 {
                bad = Some(res);
            }
        });
    }
    match bad {
        Some(res) => Err(bad_result("request", res, 0)),
        None => Ok(()),
    }
}

/// Random reads with `qd` in flight: each completion is replaced at once
/// by a new read into the same buffer.
#[allow(clippy::too_many_arguments)]
fn randread<U: Uring>(
    u: &mut U,
    fd: RawFd,
    blocks: u64,
    block: u32,
    qd: usize,
    seed: u64,
    bufs: &Buffers,
    ctl: &Ctl,
) -> io::Result<RepStats> {
    let mut st = RepStats::default();
    let mut rng = Rng::new(seed);
    let mut stamps: Vec<Option<Instant>> = vec![None; qd];
    let mut free: Vec<usize> = (0..qd).collect();
    let mut inflight = 0usize;
    let mut check = Every::new(ctl.check_every);
    let mut sample = Every::new(ctl.sample_every);
    let mut bad = None;
    let start = Instant::now();
    loop {
        let n = free.len();
        // SAFETY: slot buffers live in `bufs`, which outlives every read:
        // all of them are reaped (drain) before we return.
        unsafe {
            u.push_with(n, |i| {
                let slot = free[i];
                if sample.tick() {
                    stamps[slot] = Some(Instant::now());
                }
                let off = rng.below(blocks) * block as u64;
                (Op::Read { fd, buf: bufs.get(slot), len: block, off }, slot as u64)
            })?
        };
        free.clear();
        inflight += n;
        u.submit_and_wait(1)?;
        let mut now = None;
        let got = u.reap(|ud, res| {
            let slot = ud as usize;
            if res != block as i32 {
                bad = Some(res);
            }
            if let Some(t) = stamps.get_mut(slot).and_then(Option::take) {
                let now = *now.get_or_insert_with(Instant::now);
                st.lat_ns.push(now.duration_since(t).as_nanos() as u64);
            }
            free.push(slot);
        });
        inflight -= got;
        st.ops += got as u64;
        st.iters += 1;
        if bad.is_some() || (check.tick() && start.elapsed() >= ctl.dur) {
            break;
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.ops;
    drain(u, inflight)?;
    match bad {
        Some(res) => Err(bad_result("read", res, block as i64)),
        None => Ok(st),
    }
}

/// Sequential writes with `qd` in flight; after every `fsync_every` writes
/// have completed, one fsync (its time counts; its latency is not sampled).
#[allow(clippy::too_many_arguments)]
fn seqwrite<U: Uring>(
    u: &mut U,
    fd: RawFd,
    size: u64,
    block: u32,
    qd: usize,
    fsync_every: usize,
    bufs: &Buffers,
    ctl: &Ctl,
) -> io::Result<RepStats> {
    let mut st = RepStats::default();
    let mut stamps: Vec<Option<Instant>> = vec![None; qd];
    let mut free: Vec<usize> = (0..qd).collect();
    let mut sample = Every::new(ctl.sample_every);
    let mut pos = 0u64;
    let mut bad = None;
    let start = Instant::now();
    'outer: loop {
        let (mut issued, mut done) = (0usize, 0usize);
        while done < fsync_every {
            let n = free.len().min(fsync_every - issued);
            // SAFETY: the buffers outlive every write: each segment waits
            // for all its writes and its fsync before the next one.
            unsafe {
                u.push_with(n, |i| {
                    let slot = free[i];
                    if sample.tick() {
                        stamps[slot] = Some(Instant::now());
                    }
                    let off = pos;
                    pos = (pos + block as u64) % size;
                    (Op::Write { fd, buf: bufs.get(slot), len: block, off }, slot as u64)
                })?
            };
            free.drain(..n);
            issued += n;
            u.submit_and_wait(1)?;
            let mut now = None;
            done += u.reap(|ud, res| {
                let slot = ud as usize;
                if res != block as i32 {
                    bad = Some(res);
                }
                if let Some(t) = stamps.get_mut(slot).and_then(Option::take) {
                    let now = *now.get_or_insert_with(Instant::now);
                    st.lat_ns.push(now.duration_since(t).as_nanos() as u64);
                }
                free.push(slot);
            });
            st.iters += 1;
        }
        if let Some(res) = bad {
            return Err(bad_result("write", res, block as i64));
        }
        // SAFETY: an fsync points at no memory.
        unsafe { u.push_with(1, |_| (Op::Fsync { fd }, FSYNC_UD))? };
        u.submit_and_wait(1)?;
        let mut synced = false;
        while !synced {
            u.reap(|ud, res| {
                if ud == FSYNC_UD {
                    synced = true;
                    if res != 0 {
                        bad = Some(res);
                    }
                }
            });
            if !synced {
                u.submit_and_wait(1)?;
            }
        }
        if let Some(res) = bad {
            return Err(bad_result("fsync", res, 0));
        }
        st.ops += fsync_every as u64;
        if start.elapsed() >= ctl.dur {
            break 'outer;
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.ops;
    Ok(st)
}

/// Runs `spec` as a blocking `pread`/`pwrite` loop, one call at a time.
/// The queue depth sets only how many buffers it cycles through, so that
/// it touches as much memory as the queued backends do. The latency
/// workloads run their loops with a blocking `poll(2)` or
/// `clock_nanosleep`. None for a workload psync cannot run (NOPs).
pub fn run_psync(spec: &Spec, bufs: &Buffers, ctl: &Ctl) -> Option<io::Result<RepStats>> {
    let mut st = RepStats::default();
    let mut check = Every::new(ctl.check_every);
    let mut sample = Every::new(ctl.sample_every);
    let start = Instant::now();
    match *spec {
        Spec::Nop { .. } | Spec::SqpollNop { .. } => return None,
        // The latency loops; `U` is only a placeholder here.
        Spec::Poll { gap } => return Some(poll_wake(Waiter::<ringport::Ring>::Blocking, gap, ctl)),
        Spec::Timeout { dur } => return Some(timer_error(Waiter::<ringport::Ring>::Blocking, dur, ctl)),
        Spec::RandRead { fd, blocks, block, seed, qd } => {
            let mut rng = Rng::new(seed);
            let mut slot = 0;
            loop {
                let off = rng.below(blocks) * block as u64;
                let buf = bufs.get(slot);
                slot = if slot + 1 == qd { 0 } else { slot + 1 };
                let t0 = if sample.tick() { Some(Instant::now()) } else { None };
                let res = run_blocking(Op::Read { fd, buf, len: block, off });
                if let Some(t0) = t0 {
                    st.lat_ns.push(t0.elapsed().as_nanos() as u64);
                }
                if res != block as i32 {
                    return Some(Err(bad_result("pread", res, block as i64)));
                }
                st.ops += 1;
                st.iters += 1;
                if check.tick() && start.elapsed() >= ctl.dur {
                    break;
                }
            }
        }
        Spec::SeqWrite { fd, size, block, fsync_every, qd } => {
            let mut pos = 0u64;
            let mut slot = 0;
            loop {
                for _ in 0..fsync_every {
                    let buf = bufs.get(slot);
                    slot = if slot + 1 == qd { 0 } else { slot + 1 };
                    let t0 = if sample.tick() { Some(Instant::now()) } else { None };
                    let res = run_blocking(Op::Write { fd, buf, len: block, off: pos });
                    if let Some(t0) = t0 {
                        st.lat_ns.push(t0.elapsed().as_nanos() as u64);
                    }
                    if res != block as i32 {
                        return Some(Err(bad_result("pwrite", res, block as i64)));
                    }
                    pos = (pos + block as u64) % size;
                    st.iters += 1;
                }
                let res = run_blocking(Op::Fsync { fd });
                if res != 0 {
                    return Some(Err(bad_result("fsync", res, 0)));
                }
                st.ops += fsync_every as u64;
                if start.elapsed() >= ctl.dur {
                    break;
                }
            }
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    st.units = st.ops;
    Some(Ok(st))
}
