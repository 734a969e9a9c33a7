//! `ringport bench`: ringport against the kernel's io_uring, a blocking
//! `pread`/`pwrite` loop and a thread pool, in one run, on temporary files
//! it creates itself.
//!
//! Every backend runs the same loop ([`loops`]) on the same files, sizes and
//! queue depths. Each figure is the median of several repetitions, each
//! after a warm-up, with the backends interleaved so that a noisy neighbour
//! hits them all alike; ratios are taken against the kernel in the same run.
//! `ringport-trapped` runs the kernel backend's code in a worker process
//! whose io_uring calls are intercepted ([`trapped`]).

mod exec;
mod files;
mod latency;
mod loops;
mod machine;
mod ops;
mod output;
mod plot;
mod pool;
mod stats;
mod trapped;

pub use trapped::WORKER_COMMAND;

use exec::{Backend, BackendResult, Env, Figure, Kind, Measured, Outcome, Workload};
use files::TempFile;
use output::RunInfo;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

const HELP: &str = "\
usage: ringport bench [WORKLOAD...] [options]

Runs io_uring workloads through ringport's Rust API and, in the same run,
through the kernel's io_uring, the interception paths (raw io_uring syscalls
trapped into ringport, or served by its interposed syscall()), a blocking
pread/pwrite loop and a thread pool;
prints ops/s, p50/p99 latency and the ratio to the kernel.

Workloads (default: all of them):
  nop              push N NOPs, submit_and_wait(N), reap N (batch 1, 8, 32)
  randread         4 KiB random reads from a page-cached file (qd 1, 8, 32, 128)
  randread-direct  the same with O_DIRECT (skipped, with the reason, where
                   the file system refuses O_DIRECT)
  seqwrite         64 KiB sequential writes, an fsync after every 16 (qd 1, 8)
  poll             wake-up latency through a pipe: a one-shot POLL_ADD on the
                   read end is armed and waited for; another thread waits
                   --poll-gap (so the waiter is asleep), then writes its
                   CLOCK_MONOTONIC time into the pipe; latency = when the
                   waiter sees the CQE - that time. psync: a blocking
                   poll(2); threadpool: a pool thread's poll(2)
  timeout          timer firing error: a TIMEOUT of --timer, one at a time;
                   error = when the CQE is seen - (submit time + timer).
                   psync: clock_nanosleep; threadpool: a pool thread's
                   clock_nanosleep (both with the usual 50 us timer slack)
  sqpoll           NOPs on a ring set up with SQPOLL (sq_thread_idle 10 ms):
                   push N (batch 32), submit (no enter while the poller is
                   awake), reap N by polling the CQ ring. ringport and kernel
                   only; the poller thread spins a core while it runs
  all              every workload above
  For poll and timeout, p50/p99 are the latency or error, and 'vs kernel'
  is the p50 ratio (lower is better). poll, timeout and sqpoll run on one
  thread (pair) only: --threads does not apply to them.

Backends (default: all that apply; nop and sqpoll run ringport, kernel,
ringport-trapped and ringport-syscall):
  ringport          the ringport Rust API (plain function calls, no syscall)
  kernel            the kernel's io_uring (the io-uring crate); shown as
                    unavailable, with the reason, where setup fails
  ringport-trapped  the kernel backend's code (the io-uring crate, raw
                    io_uring syscalls) in a worker process that called
                    ringport::install(): every setup/enter/register
                    traps (seccomp, SIGSYS) and is served by the engine, as
                    for a C program under `ringport run`. Runs where the
                    kernel refuses io_uring too; shown as unavailable, with
                    the reason, where install() fails (no seccomp). The
                    worker sets RINGPORT_SYSCALL_FASTPATH=0, so the io-uring
                    crate's syscall() calls trap as inline instructions do
  ringport-syscall  the same worker with the fast path on: the io-uring
                    crate's calls go through libc's syscall(), which the
                    interception library interposes and serves without a
                    trap (what the io-uring crate and fio's setup/register
                    get under interception)
  psync             blocking pread/pwrite, one at a time (qd only sets how
                    many buffers it cycles through); poll(2) for poll,
                    clock_nanosleep for timeout
  threadpool        each op handed to a pool of qd threads (like tokio::fs);
                    one thread for poll and timeout

Options:
  --batch N[,N..]     nop batch sizes (default 1,8,32); sqpoll's (default 32)
  --qd N[,N..]        queue depths for randread, randread-direct, seqwrite
  --timer T[,T..]     timeout workload: the TIMEOUT's length, 1us to 1s,
                      e.g. 1ms, 500us (a bare number is in us; default 1ms)
  --poll-gap T[,T..]  poll workload: how long the writer waits after the
                      poll is armed before it writes, up to 1s (default
                      50us; 0 writes at once, racing the waiter to sleep)
  --duration T        time per figure per backend, e.g. 1, 0.5s, 300ms
                      (default 1s), split into --reps repetitions
  --reps N            repetitions per figure; the median is shown (default 3)
  --backends A,B..    only these backends
  --threads N         also run 2, 4, .. N threads, each with its own ring
                      (or loop, or pool), and show how ops/s scales
  --file-mib N        randread file size in MiB (default 128)
  --dir DIR           where the temporary files go (default: the temp dir)
  --json FILE         write the figures as JSON ('-' = stdout; the table
                      then goes to stderr). One figure gives one object:
                      {\"workload\":\"nop\",\"batch\":32,\"results\":[{\"backend\":
                      \"ringport\",\"ops_per_sec\":X,...},...]}; more give a list.
                      For poll and timeout, p50_ns/p99_ns are the latency
                      or error; p50_vs_kernel/p99_vs_kernel their ratios
  --plot FILE.svg     ops/s against queue depth (or batch) per backend
                      (not poll and timeout: their figures are latencies)
  --report DIR        results.json, plot.svg, table.txt and summary.md
  --no-progress       no progress bar
  -h, --help          this text

After the targets, for nop: the cost of one trapped io_uring_enter against
one native one (per enter = batch / ops/s), ringport-trapped - kernel, and
of one served by the interposed syscall(), ringport-syscall - kernel.

For testing: with RINGPORT_BENCH_KERNEL_ERRNO=EPERM (or ENOSYS) in the
environment, the kernel backend is shown as unavailable, as if
io_uring_setup had failed with that error; with
RINGPORT_BENCH_TRAPPED_ERRNO=EPERM (or ENOSYS), ringport-trapped is, as if
install() had failed with it.";

/// The parsed command line.
struct Opts {
    kinds: Vec<Kind>,
    batch: Option<Vec<usize>>,
    qd: Option<Vec<usize>>,
    /// timeout's timer lengths, in microseconds.
    timer: Option<Vec<usize>>,
    /// poll's writer gaps, in microseconds.
    gap: Option<Vec<usize>>,
    duration: f64,
    reps: usize,
    backends: Option<Vec<Backend>>,
    threads: usize,
    file_mib: u64,
    dir: PathBuf,
    json: Option<String>,
    plot: Option<PathBuf>,
    report: Option<PathBuf>,
    progress: bool,
}

fn parse_list(s: &str, what: &str) -> Result<Vec<usize>, String> {
    let v: Result<Vec<usize>, _> = s.split(',').map(|x| x.trim().parse::<usize>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|&x| (1..=4096).contains(&x)) => Ok(v),
        _ => Err(format!("{what}: expected numbers from 1 to 4096, separated by commas, got '{s}'")),
    }
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x * scale <= 3600.0 => Ok(x * scale),
        _ => Err(format!("--duration: expected a time such as 1, 0.5s or 300ms, got '{s}'")),
    }
}

/// A list of times in microseconds: `1ms,500us,2s` (a bare number is in
/// microseconds), each from `min_us` to 1 s.
fn parse_micros_list(s: &str, what: &str, min_us: u64) -> Result<Vec<usize>, String> {
    let one = |x: &str| -> Option<usize> {
        let x = x.trim();
        let (num, scale) = if let Some(n) = x.strip_suffix("us") {
            (n, 1.0)
        } else if let Some(n) = x.strip_suffix("ms") {
            (n, 1e3)
        } else if let Some(n) = x.strip_suffix('s') {
            (n, 1e6)
        } else {
            (x, 1.0)
        };
        let us = num.trim().parse::<f64>().ok()? * scale;
        (us.is_finite() && us.fract() == 0.0 && us >= min_us as f64 && us <= 1e6).then_some(us as usize)
    };
    let v: Option<Vec<usize>> = s.split(',').map(one).collect();
    match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!(
            "{what}: expected times from {min_us}us to 1s in whole microseconds, such as 1ms or 500us, separated by commas, got '{s}'"
        )),
    }
}

fn parse(args: &[OsString]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        kinds: Vec::new(),
        batch: None,
        qd: None,
        timer: None,
        gap: None,
        duration: 1.0,
        reps: 3,
        backends: None,
        threads: 1,
        file_mib: 128,
        dir: std::env::temp_dir(),
        json: None,
        plot: None,
        report: None,
        progress: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str().ok_or_else(|| format!("argument is not UTF-8: {a:?}"))?;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            it.next()
                .and_then(|v| v.to_str().map(str::to_string))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(None),
            "--batch" => o.batch = Some(parse_list(&value()?, "--batch")?),
            "--qd" => o.qd = Some(parse_list(&value()?, "--qd")?),
            "--timer" => o.timer = Some(parse_micros_list(&value()?, "--timer", 1)?),
            "--poll-gap" => o.gap = Some(parse_micros_list(&value()?, "--poll-gap", 0)?),
            "--duration" => o.duration = parse_duration(&value()?)?,
            "--reps" => {
                o.reps = parse_list(&value()?, "--reps")?[0];
            }
            "--threads" => o.threads = parse_list(&value()?, "--threads")?[0],
            "--file-mib" => {
                o.file_mib = value()?.parse().ok().filter(|&n| (1..=1 << 20).contains(&n)).ok_or("--file-mib: expected a size in MiB")?
            }
            "--dir" => o.dir = PathBuf::from(value()?),
            "--json" => o.json = Some(value()?),
            "--plot" => o.plot = Some(PathBuf::from(value()?)),
            "--report" => o.report = Some(PathBuf::from(value()?)),
            "--no-progress" => o.progress = false,
            "--backends" => {
                let v = value()?;
                let mut list = Vec::new();
                for n in v.split(',') {
                    list.push(Backend::parse(n.trim()).ok_or_else(|| {
                        let all: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
                        format!("unknown backend '{n}' (known: {})", all.join(", "))
                    })?);
                }
                o.backends = Some(list);
            }
            "all" => o.kinds.extend(Kind::ALL),
            n if n.starts_with('-') => return Err(format!("unknown option '{n}' (see ringport bench --help)")),
            n => o.kinds.push(Kind::parse(n).ok_or_else(|| format!("unknown workload '{n}' (see ringport bench --help)"))?),
        }
    }
    if o.kinds.is_empty() {
        o.kinds.extend(Kind::ALL);
    }
    let mut seen = Vec::new();
    o.kinds.retain(|k| {
        let new = !seen.contains(k);
        seen.push(*k);
        new
    });
    let has = |ks: &[Kind]| ks.iter().any(|k| o.kinds.contains(k));
    if o.batch.is_some() && !has(&[Kind::Nop, Kind::Sqpoll]) {
        return Err("--batch applies to the nop and sqpoll workloads only".into());
    }
    if o.qd.is_some() && !has(&[Kind::RandRead, Kind::RandReadDirect, Kind::SeqWrite]) {
        return Err("--qd applies to the randread, randread-direct and seqwrite workloads only".into());
    }
    if o.timer.is_some() && !has(&[Kind::Timeout]) {
        return Err("--timer applies to the timeout workload only".into());
    }
    if o.gap.is_some() && !has(&[Kind::Poll]) {
        return Err("--poll-gap applies to the poll workload only".into());
    }
    if o.threads > 256 {
        return Err("--threads: at most 256".into());
    }
    Ok(Some(o))
}

/// The errno name for the common setup failures.
fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EACCES => "EACCES",
        libc::ENOMEM => "ENOMEM",
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "error",
    }
}

/// Writes `s` to standard error (`err`) or output, ignoring a closed pipe:
/// `ringport bench | head` must not panic.
fn say(err: bool, s: &str) {
    let _ = if err { std::io::stderr().write_all(s.as_bytes()) } else { std::io::stdout().write_all(s.as_bytes()) };
}

/// The C library's text for `code`, without Rust's "(os error N)".
fn strerror(code: i32) -> String {
    let s = std::io::Error::from_raw_os_error(code).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Why the kernel's io_uring cannot be used here, if it cannot.
fn probe_kernel() -> Option<String> {
    let fake = std::env::var("RINGPORT_BENCH_KERNEL_ERRNO").ok().map(|n| match n.as_str() {
        "ENOSYS" => libc::ENOSYS,
        _ => libc::EPERM,
    });
    let err = match fake {
        Some(e) => std::io::Error::from_raw_os_error(e),
        None => match io_uring::IoUring::new(4) {
            Ok(_) => return None,
            Err(e) => e,
        },
    };
    let code = err.raw_os_error().unwrap_or(0);
    Some(format!("io_uring_setup: {} ({})", errno_name(code), strerror(code)))
}

/// Why the kernel cannot set up an SQPOLL ring (older kernels want
/// CAP_SYS_NICE for it; some sandboxes refuse it), if it cannot.
fn probe_kernel_sqpoll() -> Option<String> {
    match io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder().setup_sqpoll(exec::SQPOLL_IDLE_MS).build(4) {
        Ok(_) => None,
        Err(e) => {
            let code = e.raw_os_error().unwrap_or(0);
            Some(format!("io_uring_setup with SQPOLL: {} ({})", errno_name(code), strerror(code)))
        }
    }
}

/// The thread counts to run: 1, then powers of two up to `max`, then `max`.
fn thread_counts(max: usize) -> Vec<usize> {
    let mut v = vec![1];
    let mut t = 2;
    while t < max {
        v.push(t);
        t *= 2;
    }
    if max > 1 {
        v.push(max);
    }
    v
}

/// Runs the `ringport-trapped` worker process (`ringport
/// __bench-trapped-worker FILE...`, started by `ringport bench` itself);
/// returns the exit code.
pub fn trapped_worker(args: &[OsString]) -> i32 {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    trapped::worker_main(&args)
}

/// Runs `ringport bench ARGS`; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let o = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            say(false, &format!("{HELP}\n"));
            return 0;
        }
        Err(e) => {
            say(true, &format!("ringport bench: {e}\n"));
            return 2;
        }
    };
    let command = std::iter::once("ringport bench".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    match run(&o, &command) {
        Ok(code) => code,
        Err(e) => {
            say(true, &format!("ringport bench: {e}\n"));
            1
        }
    }
}

/// The workload points of the run, in order.
fn plan(o: &Opts) -> Vec<Workload> {
    let mut v = Vec::new();
    for &threads in &thread_counts(o.threads) {
        for &kind in &o.kinds {
            if threads > 1 && kind.single_thread() {
                continue;
            }
            let sweep = match kind {
                Kind::Nop | Kind::Sqpoll => o.batch.clone(),
                Kind::RandRead | Kind::RandReadDirect | Kind::SeqWrite => o.qd.clone(),
                Kind::Poll => o.gap.clone(),
                Kind::Timeout => o.timer.clone(),
            }
            .unwrap_or_else(|| kind.default_sweep().to_vec());
            for value in sweep {
                v.push(Workload { kind, value, threads });
            }
        }
    }
    v
}

fn backends_for(o: &Opts, kind: Kind) -> Vec<Backend> {
    let wanted = o.backends.clone().unwrap_or_else(|| kind.default_backends());
    Backend::ALL.into_iter().filter(|b| wanted.contains(b) && kind.applies(*b)).collect()
}

fn setup(o: &Opts, points: &[Workload], kernel_unavailable: Option<String>) -> Result<Env, String> {
    let needs = |k: Kind| points.iter().any(|w| w.kind == k);
    let kernel_sqpoll_unavailable = if needs(Kind::Sqpoll) && kernel_unavailable.is_none() {
        probe_kernel_sqpoll()
    } else {
        None
    };
    let mut env = Env {
        kernel_unavailable,
        read_file: None,
        direct: None,
        write_files: Vec::new(),
        kernel_sqpoll_unavailable,
        trapped_unavailable: None,
        syscall_unavailable: None,
    };
    if needs(Kind::RandRead) || needs(Kind::RandReadDirect) {
        let f = TempFile::create(&o.dir, "randread", o.file_mib << 20)
            .map_err(|e| format!("cannot create the test file in {}: {e}", o.dir.display()))?;
        f.warm_page_cache().map_err(|e| format!("cannot read {}: {e}", f.path().display()))?;
        if needs(Kind::RandReadDirect) {
            env.direct = Some(f.open_direct().map_err(|e| match e.raw_os_error() {
                Some(code) => format!("the file system refuses O_DIRECT: {} ({})", errno_name(code), strerror(code)),
                None => format!("the file system refuses O_DIRECT: {e}"),
            }));
        }
        env.read_file = Some(f);
    }
    if needs(Kind::SeqWrite) {
        let max_threads = points.iter().filter(|w| w.kind == Kind::SeqWrite).map(|w| w.threads).max().unwrap_or(1);
        for t in 0..max_threads {
            let f = TempFile::create(&o.dir, &format!("seqwrite-{t}"), 64 << 20)
                .map_err(|e| format!("cannot create the test file in {}: {e}", o.dir.display()))?;
            env.write_files.push(f);
        }
    }
    Ok(env)
}

fn run(o: &Opts, command: &str) -> Result<i32, String> {
    let points = plan(o);
    let kernel_unavailable = probe_kernel();
    let machine = machine::Machine::probe(&o.dir);
    let mut info = RunInfo {
        machine,
        dir: o.dir.display().to_string(),
        kernel_unavailable: kernel_unavailable.clone(),
        duration: o.duration,
        reps: o.reps,
        file_mib: o.file_mib,
        show_threads: o.threads > 1,
        trapped: None,
        syscall: None,
    };
    let to_stdout = o.json.as_deref() == Some("-");
    let mut text = String::new();
    text.push_str(&output::header(&info));
    // The header goes out at once, so the user sees what runs.
    say(to_stdout, &text);
    let mut env = setup(o, &points, kernel_unavailable)?;
    // The interception backends' worker processes, once the files they
    // inherit exist: one whose calls trap, one whose calls take the
    // interposed syscall() fast path.
    let wants = |b: Backend| {
        points.iter().any(|w| {
            let skipped = w.kind == Kind::RandReadDirect && matches!(env.direct, Some(Err(_)));
            !skipped && backends_for(o, w.kind).contains(&b)
        })
    };
    let (wants_trapped, wants_syscall) = (wants(Backend::Trapped), wants(Backend::Syscall));
    let mut trapped = wants_trapped.then(|| trapped::Trapped::start(&env, trapped::Launcher::this_binary()));
    if let Some(t) = &trapped {
        env.trapped_unavailable = t.unavailable.clone();
        info.trapped = Some(t.status());
    }
    let mut syscall_worker =
        wants_syscall.then(|| trapped::Trapped::start(&env, trapped::Launcher::this_binary().with_fast_path()));
    if let Some(t) = &syscall_worker {
        env.syscall_unavailable = t.unavailable.clone();
        info.syscall = Some(t.status());
    }
    if trapped.is_some() || syscall_worker.is_some() {
        let line = output::trapped_line(&info);
        say(to_stdout, &line);
        text.push_str(&line);
    }

    let rep_dur = Duration::from_secs_f64(o.duration / o.reps as f64);
    let warm = (rep_dur / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let skip_reason = |w: &Workload| -> Option<String> {
        match (w.kind, &env.direct) {
            (Kind::RandReadDirect, Some(Err(why))) => Some(why.clone()),
            _ => None,
        }
    };
    let measured_backends = |w: &Workload| -> Vec<Backend> {
        backends_for(o, w.kind)
            .into_iter()
            .filter(|b| env.unavailable(*b, w.kind).is_none())
            .collect()
    };
    let total: u64 =
        points.iter().filter(|w| skip_reason(w).is_none()).map(|w| (measured_backends(w).len() * o.reps) as u64).sum();
    let pb = if o.progress {
        indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr())
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise} < {eta}] {msg}") {
        pb.set_style(style.progress_chars("=> "));
    }

    let mut figs = Vec::new();
    let mut failed = false;
    for w in &points {
        let all = backends_for(o, w.kind);
        if let Some(why) = skip_reason(w) {
            figs.push(Figure { wl: *w, skipped: Some(why), results: Vec::new() });
            continue;
        }
        let run_list = measured_backends(w);
        let mut reps: Vec<Vec<f64>> = vec![Vec::new(); run_list.len()];
        let mut lats: Vec<Vec<u64>> = vec![Vec::new(); run_list.len()];
        let mut errors: Vec<Option<String>> = vec![None; run_list.len()];
        for rep in 0..o.reps {
            // Interleave the backends, rotating who goes first.
            for j in 0..run_list.len() {
                let i = (rep + j) % run_list.len();
                let b = run_list[i];
                pb.set_message(format!("{} {}={} {} rep {}/{}", w.kind.name(), w.kind.param(), w.value, b.name(), rep + 1, o.reps));
                if errors[i].is_none() {
                    let r = match (b, trapped.as_mut(), syscall_worker.as_mut()) {
                        (Backend::Trapped, Some(t), _) => t.run_rep(w, rep, warm, rep_dur),
                        (Backend::Syscall, _, Some(t)) => t.run_rep(w, rep, warm, rep_dur),
                        _ => exec::run_rep(&env, b, w, rep, warm, rep_dur),
                    };
                    match r {
                        Ok((rate, lat)) => {
                            reps[i].push(rate);
                            lats[i].extend(lat);
                        }
                        Err(e) => errors[i] = Some(e.to_string()),
                    }
                }
                pb.inc(1);
            }
        }
        let mut results = Vec::new();
        for b in all {
            let outcome = if let Some(i) = run_list.iter().position(|x| *x == b) {
                if let Some(e) = errors[i].take() {
                    failed = true;
                    Outcome::Failed(e)
                } else {
                    let lat = &mut lats[i];
                    lat.sort_unstable();
                    Outcome::Measured(Measured {
                        ops_per_sec: stats::median(&reps[i]),
                        reps: std::mem::take(&mut reps[i]),
                        p50_ns: stats::percentile(lat, 50.0),
                        p99_ns: stats::percentile(lat, 99.0),
                        samples: lat.len(),
                    })
                }
            } else {
                Outcome::Unavailable(env.unavailable(b, w.kind).unwrap_or_default())
            };
            results.push(BackendResult { backend: b, outcome });
        }
        figs.push(Figure { wl: *w, skipped: None, results });
    }
    pb.finish_and_clear();
    // Ends and reaps the worker (before its files' descriptors close here).
    drop(trapped);
    drop(syscall_worker);
    drop(env);

    let mut body = String::new();
    body.push('\n');
    body.push_str(&output::table(&figs, &info));
    if info.show_threads {
        body.push_str("\nscaling (ops/s with N threads / ops/s with 1 thread):\n");
        body.push_str(&output::scaling(&figs));
    }
    body.push_str(&output::notes_text(&figs));
    let t = output::targets(&figs);
    if !t.is_empty() {
        body.push_str("\ntargets (ratios from this run):\n");
        body.push_str(&output::targets_text(&t));
    }
    let c = output::trap_costs(&figs);
    if !c.is_empty() {
        body.push_str("\ninterception cost (issue 3): time per io_uring_enter, trapped against native (each nop round is one enter: batch / ops/s):\n");
        body.push_str(&output::trap_costs_text(&c));
    }
    say(to_stdout, &body);
    text.push_str(&body);

    let mut code = if failed { 1 } else { 0 };
    if let Some(path) = &o.json {
        let doc = output::json(&figs, &info, false);
        let r = if path == "-" {
            std::io::stdout().write_all(doc.as_bytes())
        } else {
            std::fs::write(path, doc)
        };
        if let Err(e) = r {
            say(true, &format!("ringport bench: cannot write {path}: {e}\n"));
            code = 1;
        }
    }
    let subtitle = format!("{} cores, {}", info.machine.cores, info.machine.kernel);
    if let Some(path) = &o.plot {
        if let Err(e) = plot::write(&figs, path, &subtitle) {
            say(true, &format!("ringport bench: cannot write the plot {}: {e}\n", path.display()));
            code = 1;
        }
    }
    if let Some(dir) = &o.report {
        if let Err(e) = write_report(dir, &figs, &info, &text, command, &subtitle) {
            say(true, &format!("ringport bench: cannot write the report in {}: {e}\n", dir.display()));
            code = 1;
        } else if !to_stdout {
            say(false, &format!("\nreport written to {}\n", dir.display()));
        }
    }
    Ok(code)
}

fn write_report(dir: &std::path::Path, figs: &[Figure], info: &RunInfo, text: &str, command: &str, subtitle: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), output::json(figs, info, true)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("table.txt"), text).map_err(|e| e.to_string())?;
    let plot = match plot::write(figs, &dir.join("plot.svg"), subtitle) {
        Ok(()) => Some("plot.svg"),
        Err(_) => None,
    };
    std::fs::write(dir.join("summary.md"), output::markdown(figs, info, command, plot)).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_the_issue_forms() {
        let o = parse(&args("nop --batch 32 --json -")).unwrap().unwrap();
        assert_eq!(o.kinds, vec![Kind::Nop]);
        assert_eq!(o.batch, Some(vec![32]));
        assert_eq!(o.json.as_deref(), Some("-"));
        assert_eq!(plan(&o).len(), 1);
        let o = parse(&args("nop")).unwrap().unwrap();
        assert_eq!(plan(&o).iter().map(|w| w.value).collect::<Vec<_>>(), vec![1, 8, 32]);
        let o = parse(&args("")).unwrap().unwrap();
        assert_eq!(o.kinds, Kind::ALL.to_vec());
        assert!(parse(&args("pol")).is_err());
        assert!(parse(&args("nop --batch 0")).is_err());
        assert!(parse(&args("randread --batch 4")).is_err());
        assert_eq!(parse_duration("300ms").unwrap(), 0.3);
        assert_eq!(thread_counts(1), vec![1]);
        assert_eq!(thread_counts(6), vec![1, 2, 4, 6]);
    }

    #[test]
    fn parses_the_latency_and_sqpoll_workloads() {
        let o = parse(&args("poll timeout sqpoll")).unwrap().unwrap();
        assert_eq!(o.kinds, vec![Kind::Poll, Kind::Timeout, Kind::Sqpoll]);
        let p = plan(&o);
        assert_eq!(p.iter().map(|w| (w.kind, w.value)).collect::<Vec<_>>(), vec![(Kind::Poll, 50), (Kind::Timeout, 1000), (Kind::Sqpoll, 32)]);
        // --timer and --poll-gap take times; a bare number is microseconds.
        let o = parse(&args("timeout --timer 1ms,500us,1s,250")).unwrap().unwrap();
        assert_eq!(o.timer, Some(vec![1000, 500, 1_000_000, 250]));
        assert!(parse(&args("timeout --timer 2s")).is_err(), "at most 1 s");
        assert!(parse(&args("timeout --timer 0")).is_err(), "a timer of 0 measures nothing");
        assert!(parse(&args("timeout --timer 1.5us")).is_err(), "whole microseconds");
        assert_eq!(parse(&args("poll --poll-gap=0,0.2ms")).unwrap().unwrap().gap, Some(vec![0, 200]));
        // Each option needs its workload.
        assert!(parse(&args("nop --timer 1ms")).is_err());
        assert!(parse(&args("timeout --poll-gap 10us")).is_err());
        assert!(parse(&args("poll --qd 8")).is_err());
        assert_eq!(parse(&args("sqpoll --batch 8")).unwrap().unwrap().batch, Some(vec![8]));
        // --threads does not multiply them: one point each, on one thread.
        let o = parse(&args("poll timeout sqpoll nop --threads 4")).unwrap().unwrap();
        let p = plan(&o);
        for k in [Kind::Poll, Kind::Timeout, Kind::Sqpoll] {
            assert_eq!(p.iter().filter(|w| w.kind == k).map(|w| w.threads).collect::<Vec<_>>(), vec![1]);
        }
        assert_eq!(p.iter().filter(|w| w.kind == Kind::Nop).count(), 3 * 3);
    }

    #[test]
    fn sqpoll_runs_on_rings_only_and_latency_workloads_on_all() {
        let o = parse(&args("sqpoll poll")).unwrap().unwrap();
        assert_eq!(backends_for(&o, Kind::Sqpoll), vec![Backend::Ringport, Backend::Kernel, Backend::Trapped, Backend::Syscall]);
        assert_eq!(backends_for(&o, Kind::Poll), Backend::ALL.to_vec());
        let o = parse(&args("sqpoll --backends ringport,psync")).unwrap().unwrap();
        assert_eq!(backends_for(&o, Kind::Sqpoll), vec![Backend::Ringport]);
    }

    #[test]
    fn nop_backends_are_ringport_then_kernel() {
        let o = parse(&args("nop")).unwrap().unwrap();
        let b = backends_for(&o, Kind::Nop);
        assert_eq!(&b[..2], &[Backend::Ringport, Backend::Kernel]);
        assert!(!b.contains(&Backend::Psync));
    }
}
