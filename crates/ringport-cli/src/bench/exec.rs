//! Backends, workloads and figures: what is measured, and the code that
//! measures one repetition of one backend on N threads.

use super::files::{Buffers, TempFile};
use super::loops::{run_psync, run_uring, Ctl, RepStats, Spec};
use super::ops::Uring;
use super::pool::Pool;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The most threads a `threadpool` backend starts (tokio's default cap on
/// blocking threads).
const POOL_MAX_THREADS: usize = 512;

/// A barrier that can be opened early, so that a thread that could not be
/// started does not leave the others waiting for ever.
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
    count: usize,
}

impl Gate {
    fn new(count: usize) -> Gate {
        Gate { state: Mutex::new((0, false)), cv: Condvar::new(), count }
    }
    /// Waits until `count` threads have arrived, or the gate was opened.
    fn wait(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        if st.0 >= self.count {
            st.1 = true;
            self.cv.notify_all();
        }
        while !st.1 {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
    /// Lets everyone through now.
    fn open(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// Bytes per randread request.
pub const READ_BLOCK: u32 = 4096;
/// Bytes per seqwrite request.
pub const WRITE_BLOCK: u32 = 64 * 1024;
/// Writes per fsync in seqwrite (1 MiB).
pub const FSYNC_EVERY: usize = 16;
/// `sq_thread_idle` of the sqpoll workload's rings, in milliseconds.
pub const SQPOLL_IDLE_MS: u32 = 10;

/// Where an operation is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// ringport's Rust API: the engine by plain function calls.
    Ringport,
    /// The kernel's io_uring, through the `io-uring` crate.
    Kernel,
    /// Raw io_uring syscalls served through the interception path, every
    /// one trapped (seccomp, SIGSYS): what inline `syscall` instructions
    /// (liburing) get.
    Trapped,
    /// The same calls made through libc's `syscall()`, served by the
    /// interception library's interposed `syscall()` without a trap: what
    /// fio's setup/register and the `io-uring` crate get.
    Syscall,
    /// A blocking `pread`/`pwrite` loop.
    Psync,
    /// Each op handed to a pool of threads (like `tokio::fs`).
    Threadpool,
}

impl Backend {
    /// Every backend, in report order.
    pub const ALL: [Backend; 6] =
        [Backend::Ringport, Backend::Kernel, Backend::Trapped, Backend::Syscall, Backend::Psync, Backend::Threadpool];

    /// The name used on the command line, in tables and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ringport => "ringport",
            Backend::Kernel => "kernel",
            Backend::Trapped => "ringport-trapped",
            Backend::Syscall => "ringport-syscall",
            Backend::Psync => "psync",
            Backend::Threadpool => "threadpool",
        }
    }
    /// The backend called `s`.
    pub fn parse(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// A workload kind, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NOP round trips.
    Nop,
    /// 4k random reads from the page cache.
    RandRead,
    /// 4k random reads with O_DIRECT.
    RandReadDirect,
    /// 64k sequential writes and fsyncs.
    SeqWrite,
    /// Poll wake-up latency through a pipe.
    Poll,
    /// Timer firing error against the deadline.
    Timeout,
    /// NOP round trips on an SQPOLL ring.
    Sqpoll,
}

impl Kind {
    /// Every kind, in run order.
    pub const ALL: [Kind; 7] =
        [Kind::Nop, Kind::RandRead, Kind::RandReadDirect, Kind::SeqWrite, Kind::Poll, Kind::Timeout, Kind::Sqpoll];

    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nop => "nop",
            Kind::RandRead => "randread",
            Kind::RandReadDirect => "randread-direct",
            Kind::SeqWrite => "seqwrite",
            Kind::Poll => "poll",
            Kind::Timeout => "timeout",
            Kind::Sqpoll => "sqpoll",
        }
    }
    /// The kind called `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
    /// The name of its swept parameter.
    pub fn param(self) -> &'static str {
        match self {
            Kind::Nop | Kind::Sqpoll => "batch",
            Kind::RandRead | Kind::RandReadDirect | Kind::SeqWrite => "qd",
            Kind::Poll => "gap_us",
            Kind::Timeout => "timeout_us",
        }
    }
    /// The default values of its swept parameter.
    pub fn default_sweep(self) -> &'static [usize] {
        match self {
            Kind::Nop => &[1, 8, 32],
            Kind::RandRead | Kind::RandReadDirect => &[1, 8, 32, 128],
            Kind::SeqWrite => &[1, 8],
            Kind::Poll => &[50],
            Kind::Timeout => &[1000],
            Kind::Sqpoll => &[32],
        }
    }
    /// Whether its figures are latencies (one op in flight; p50/p99 are
    /// what counts, ops/s follows from them).
    pub fn is_latency(self) -> bool {
        matches!(self, Kind::Poll | Kind::Timeout)
    }
    /// Whether it runs on one thread only (`--threads` does not apply):
    /// the latency workloads, and sqpoll, whose poller thread spins a core.
    pub fn single_thread(self) -> bool {
        matches!(self, Kind::Poll | Kind::Timeout | Kind::Sqpoll)
    }
    /// Whether `b` can run this workload: psync has no NOP, and SQPOLL
    /// exists only on a ring.
    pub fn applies(self, b: Backend) -> bool {
        match self {
            Kind::Nop => b != Backend::Psync,
            Kind::Sqpoll => !matches!(b, Backend::Psync | Backend::Threadpool),
            _ => true,
        }
    }
    /// The backends run by default.
    pub fn default_backends(self) -> Vec<Backend> {
        match self {
            Kind::Nop | Kind::Sqpoll => vec![Backend::Ringport, Backend::Kernel, Backend::Trapped, Backend::Syscall],
            _ => Backend::ALL.to_vec(),
        }
    }
}

/// One point of the sweep: a workload at one parameter value and thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The kind.
    pub kind: Kind,
    /// The swept parameter's value ([`Kind::param`]): the batch (nop,
    /// sqpoll), the queue depth (randread, randread-direct, seqwrite), the
    /// writer's gap in microseconds (poll) or the timer's length in
    /// microseconds (timeout).
    pub value: usize,
    /// Threads, each with its own ring / loop / pool.
    pub threads: usize,
}

impl Workload {
    /// The parameters that go into the JSON object and the table, besides
    /// the workload's name.
    pub fn params(&self, show_threads: bool, file_mib: u64) -> Vec<(&'static str, u64)> {
        let mut p = vec![(self.kind.param(), self.value as u64)];
        match self.kind {
            Kind::Nop => {}
            Kind::RandRead | Kind::RandReadDirect => {
                p.push(("block", READ_BLOCK as u64));
                p.push(("file_mib", file_mib));
            }
            Kind::SeqWrite => {
                p.push(("block", WRITE_BLOCK as u64));
                p.push(("fsync_every", FSYNC_EVERY as u64));
            }
            Kind::Poll | Kind::Timeout => {}
            Kind::Sqpoll => p.push(("idle_ms", SQPOLL_IDLE_MS as u64)),
        }
        if show_threads {
            p.push(("threads", self.threads as u64));
        }
        p
    }
}

/// One backend's measured figure.
#[derive(Clone, Debug)]
pub struct Measured {
    /// ops/s of each repetition (summed over threads).
    pub reps: Vec<f64>,
    /// Their median.
    pub ops_per_sec: f64,
    /// Latency percentiles over all repetitions' samples.
    pub p50_ns: Option<u64>,
    /// 99th percentile.
    pub p99_ns: Option<u64>,
    /// Number of latency samples.
    pub samples: usize,
}

/// What became of one backend on one workload.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Figures.
    Measured(Measured),
    /// The backend does not exist here (with the reason).
    Unavailable(String),
    /// The run failed (with the error).
    Failed(String),
}

/// One backend's line in a figure.
#[derive(Clone, Debug)]
pub struct BackendResult {
    /// Which backend.
    pub backend: Backend,
    /// Its outcome.
    pub outcome: Outcome,
}

impl BackendResult {
    /// ops/s, if measured.
    pub fn ops_per_sec(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m.ops_per_sec),
            _ => None,
        }
    }
}

/// Every backend's result for one workload point.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The workload point.
    pub wl: Workload,
    /// Set when the whole workload was skipped, with the reason.
    pub skipped: Option<String>,
    /// One entry per backend.
    pub results: Vec<BackendResult>,
}

impl Figure {
    /// The result of `b`, if it took part.
    pub fn get(&self, b: Backend) -> Option<&BackendResult> {
        self.results.iter().find(|r| r.backend == b)
    }
    /// `b`'s ops/s divided by the kernel's, when both were measured.
    pub fn ratio_to_kernel(&self, b: Backend) -> Option<f64> {
        let k = self.get(Backend::Kernel)?.ops_per_sec()?;
        let x = self.get(b)?.ops_per_sec()?;
        (k > 0.0).then(|| x / k)
    }
    /// `b`'s latency percentile (`pick` chooses p50 or p99) divided by the
    /// kernel's: lower is better.
    pub fn lat_ratio_to_kernel(&self, b: Backend, pick: fn(&Measured) -> Option<u64>) -> Option<f64> {
        let lat = |b| match &self.get(b)?.outcome {
            Outcome::Measured(m) => pick(m),
            _ => None,
        };
        let (k, x) = (lat(Backend::Kernel)?, lat(b)?);
        (k > 0).then(|| x as f64 / k as f64)
    }
    /// The ratio the table shows in its "vs kernel" column: ops/s for the
    /// throughput workloads; for the latency ones the p50 latency (or
    /// timer error) ratio, lower is better.
    pub fn shown_ratio(&self, b: Backend) -> Option<String> {
        if self.wl.kind.is_latency() {
            self.lat_ratio_to_kernel(b, |m| m.p50_ns).map(|x| format!("p50 {x:.2}x"))
        } else {
            self.ratio_to_kernel(b).map(|x| format!("{x:.2}x"))
        }
    }
}

/// The files and facts shared by every figure of a run.
pub struct Env {
    /// Why the kernel's io_uring cannot be used, if it cannot.
    pub kernel_unavailable: Option<String>,
    /// The randread file (page-cached).
    pub read_file: Option<TempFile>,
    /// The same file opened with O_DIRECT, or why it could not be.
    pub direct: Option<Result<File, String>>,
    /// One seqwrite file per thread.
    pub write_files: Vec<TempFile>,
    /// Why the kernel cannot set up an SQPOLL ring, if it cannot (and its
    /// io_uring is otherwise available).
    pub kernel_sqpoll_unavailable: Option<String>,
    /// Why the `ringport-trapped` worker process could not be started or
    /// could not install interception, if so (see [`super::trapped`]).
    pub trapped_unavailable: Option<String>,
    /// The same for the `ringport-syscall` worker.
    pub syscall_unavailable: Option<String>,
}

impl Env {
    /// Why backend `b` cannot run workload `kind` on this machine, if so.
    /// `ringport-trapped` does not depend on the kernel's io_uring: the
    /// engine serves its calls even where the kernel refuses them.
    pub fn unavailable(&self, b: Backend, kind: Kind) -> Option<String> {
        match b {
            Backend::Kernel => self
                .kernel_unavailable
                .clone()
                .or_else(|| if kind == Kind::Sqpoll { self.kernel_sqpoll_unavailable.clone() } else { None }),
            Backend::Trapped => self.trapped_unavailable.clone(),
            Backend::Syscall => self.syscall_unavailable.clone(),
            _ => None,
        }
    }

    /// The loop spec of `wl` for thread `t`.
    fn spec(&self, wl: &Workload, t: usize, rep: usize) -> io::Result<Spec> {
        let missing = || io::Error::other("test file missing");
        Ok(match wl.kind {
            Kind::Nop => Spec::Nop { batch: wl.value },
            Kind::Sqpoll => Spec::SqpollNop { batch: wl.value, idle_ms: SQPOLL_IDLE_MS },
            Kind::Poll => Spec::Poll { gap: Duration::from_micros(wl.value as u64) },
            Kind::Timeout => Spec::Timeout { dur: Duration::from_micros(wl.value as u64) },
            Kind::RandRead | Kind::RandReadDirect => {
                let f = self.read_file.as_ref().ok_or_else(missing)?;
                let fd = if wl.kind == Kind::RandReadDirect {
                    match &self.direct {
                        Some(Ok(d)) => d.as_raw_fd(),
                        _ => return Err(missing()),
                    }
                } else {
                    f.fd()
                };
                Spec::RandRead {
                    fd,
                    blocks: f.size / READ_BLOCK as u64,
                    block: READ_BLOCK,
                    qd: wl.value,
                    // Same offsets for every backend; different per thread and rep.
                    seed: 0x5eed + (t as u64) * 7919 + (rep as u64) * 104_729,
                }
            }
            Kind::SeqWrite => {
                let f = self.write_files.get(t).ok_or_else(missing)?;
                Spec::SeqWrite { fd: f.fd(), size: f.size, block: WRITE_BLOCK, qd: wl.value, fsync_every: FSYNC_EVERY }
            }
        })
    }
}

/// Warm-up, barrier, timed run: one thread's part of a repetition.
fn timed<U: Uring>(u: io::Result<U>, spec: &Spec, bufs: &Buffers, warm: Duration, dur: Duration, barrier: &Gate) -> io::Result<RepStats> {
    let ready = u.and_then(|mut u| {
        let w = run_uring(&mut u, spec, bufs, &Ctl::warmup(warm))?;
        Ok((u, w))
    });
    barrier.wait();
    let (mut u, w) = ready?;
    run_uring(&mut u, spec, bufs, &Ctl::calibrated(dur, &w))
}

fn ring_entries(spec: &Spec) -> u32 {
    // One spare slot for seqwrite's fsync.
    (spec.slots() + 1).next_power_of_two().max(2) as u32
}

fn thread_body(b: Backend, spec: &Spec, warm: Duration, dur: Duration, barrier: &Gate) -> io::Result<RepStats> {
    let bufs = Buffers::new(spec.slots(), spec.buf_size());
    let sqpoll = match *spec {
        Spec::SqpollNop { idle_ms, .. } => Some(idle_ms),
        _ => None,
    };
    match b {
        Backend::Ringport => {
            let mut builder = ringport::Ring::builder();
            if let Some(idle) = sqpoll {
                builder = builder.setup_sqpoll(idle);
            }
            timed(builder.build(ring_entries(spec)), spec, &bufs, warm, dur, barrier)
        }
        Backend::Kernel => {
            let mut builder = io_uring::IoUring::builder();
            if let Some(idle) = sqpoll {
                builder.setup_sqpoll(idle);
            }
            timed(builder.build(ring_entries(spec)), spec, &bufs, warm, dur, barrier)
        }
        Backend::Threadpool => timed(Pool::new(spec.slots().min(POOL_MAX_THREADS)), spec, &bufs, warm, dur, barrier),
        Backend::Psync => {
            let w = run_psync(spec, &bufs, &Ctl::warmup(warm));
            barrier.wait();
            let w = w.ok_or_else(|| io::Error::other("psync has no such workload"))??;
            run_psync(spec, &bufs, &Ctl::calibrated(dur, &w)).expect("checked above")
        }
        Backend::Trapped | Backend::Syscall => {
            // Never in this process: the interception backends run the
            // Kernel arm above in a worker process (see super::trapped).
            barrier.wait();
            Err(io::Error::other(format!("{} runs in its worker process, not here", b.name())))
        }
    }
}

/// One repetition of backend `b` on `wl`: returns ops/s summed over the
/// threads, and the latency samples of all of them.
pub fn run_rep(env: &Env, b: Backend, wl: &Workload, rep: usize, warm: Duration, dur: Duration) -> io::Result<(f64, Vec<u64>)> {
    let specs = (0..wl.threads).map(|t| env.spec(wl, t, rep)).collect::<io::Result<Vec<_>>>()?;
    let barrier = Gate::new(wl.threads);
    let results: Vec<io::Result<RepStats>> = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(t, spec)| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("bench-{}-{t}", b.name()))
                    .spawn_scoped(s, move || thread_body(b, spec, warm, dur, barrier))
            })
            .collect();
        if handles.iter().any(|h| h.is_err()) {
            // A thread could not be started: release the ones that were.
            barrier.open();
        }
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(io::Error::other("benchmark thread panicked"))),
                Err(e) => Err(e),
            })
            .collect()
    });
    let mut rate = 0.0;
    let mut lat = Vec::new();
    for r in results {
        let st = r?;
        rate += st.ops as f64 / st.secs.max(1e-9);
        lat.extend(st.lat_ns);
    }
    Ok((rate, lat))
}
