//! `ringport bench`: ringport against the kernel's io_uring, a blocking
//! `pread`/`pwrite` loop and a thread pool, in one run, on temporary files
//! it creates itself.
//!
//! Every backend runs the same loop ([`loops`]) on the same files, sizes and
//! queue depths. Each figure is the median of several repetitions, each
//! after a warm-up, with the backends interleaved so that a noisy neighbour
//! hits them all alike; ratios are taken against the kernel in the same run.

mod exec;
mod files;
mod loops;
mod machine;
mod ops;
mod output;
mod plot;
mod pool;
mod stats;

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
through the kernel's io_uring, a blocking pread/pwrite loop and a thread
pool; prints ops/s, p50/p99 latency and the ratio to the kernel.

Workloads (default: all of them):
  nop              push N NOPs, submit_and_wait(N), reap N (batch 1, 8, 32)
  randread         4 KiB random reads from a page-cached file (qd 1, 8, 32, 128)
  randread-direct  the same with O_DIRECT (skipped, with the reason, where
                   the file system refuses O_DIRECT)
  seqwrite         64 KiB sequential writes, an fsync after every 16 (qd 1, 8)
  all              every workload above
  Not yet: poll (pipe wake-up latency) and timeout (timer error) need
  engine features not built yet (POLL_ADD, TIMEOUT); they are left out.

Backends (default: all that apply; nop runs ringport and kernel):
  ringport          the ringport Rust API (plain function calls, no syscall)
  kernel            the kernel's io_uring (the io-uring crate); shown as
                    unavailable, with the reason, where setup fails
  ringport-trapped  raw io_uring syscalls through the interception path:
                    unavailable (interception library not built yet)
  psync             blocking pread/pwrite, one at a time (qd only sets how
                    many buffers it cycles through)
  threadpool        each op handed to a pool of qd threads (like tokio::fs)

Options:
  --batch N[,N..]     nop batch sizes (default 1,8,32)
  --qd N[,N..]        queue depths for randread, randread-direct, seqwrite
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
                      \"ringport\",\"ops_per_sec\":X,...},...]}; more give a list
  --plot FILE.svg     ops/s against queue depth (or batch) per backend
  --report DIR        results.json, plot.svg, table.txt and summary.md
  --no-progress       no progress bar
  -h, --help          this text

For testing: with RINGPORT_BENCH_KERNEL_ERRNO=EPERM (or ENOSYS) in the
environment, the kernel backend is shown as unavailable, as if
io_uring_setup had failed with that error.";

/// The parsed command line.
struct Opts {
    kinds: Vec<Kind>,
    batch: Option<Vec<usize>>,
    qd: Option<Vec<usize>>,
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

fn parse(args: &[OsString]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        kinds: Vec::new(),
        batch: None,
        qd: None,
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
            "poll" | "timeout" => {
                return Err(format!(
                    "workload '{name}' is not available yet: it needs engine support ({}) that is not built yet",
                    if name == "poll" { "IORING_OP_POLL_ADD" } else { "IORING_OP_TIMEOUT" }
                ))
            }
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
    if o.batch.is_some() && !o.kinds.contains(&Kind::Nop) {
        return Err("--batch applies to the nop workload only".into());
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
            let sweep = match kind {
                Kind::Nop => o.batch.clone(),
                _ => o.qd.clone(),
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
    let mut env = Env { kernel_unavailable, read_file: None, direct: None, write_files: Vec::new() };
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
    let info = RunInfo {
        machine,
        dir: o.dir.display().to_string(),
        kernel_unavailable: kernel_unavailable.clone(),
        duration: o.duration,
        reps: o.reps,
        file_mib: o.file_mib,
        show_threads: o.threads > 1,
    };
    let to_stdout = o.json.as_deref() == Some("-");
    let mut text = String::new();
    text.push_str(&output::header(&info));
    // The header goes out at once, so the user sees what runs.
    say(to_stdout, &text);
    let env = setup(o, &points, kernel_unavailable)?;

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
            .filter(|b| *b != Backend::Trapped && !(*b == Backend::Kernel && env.kernel_unavailable.is_some()))
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
                    match exec::run_rep(&env, b, w, rep, warm, rep_dur) {
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
            let outcome = if b == Backend::Trapped {
                Outcome::Unavailable(exec::TRAPPED_REASON.into())
            } else if let Some(i) = run_list.iter().position(|x| *x == b) {
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
                Outcome::Unavailable(env.kernel_unavailable.clone().unwrap_or_default())
            };
            results.push(BackendResult { backend: b, outcome });
        }
        figs.push(Figure { wl: *w, skipped: None, results });
    }
    pb.finish_and_clear();
    drop(env);

    let mut body = String::new();
    body.push('\n');
    body.push_str(&output::table(&figs, &info));
    if info.show_threads {
        body.push_str("\nscaling (ops/s with N threads / ops/s with 1 thread):\n");
        body.push_str(&output::scaling(&figs));
    }
    let t = output::targets(&figs);
    if !t.is_empty() {
        body.push_str("\ntargets (ratios from this run):\n");
        body.push_str(&output::targets_text(&t));
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
        assert!(parse(&args("poll")).is_err());
        assert!(parse(&args("nop --batch 0")).is_err());
        assert!(parse(&args("randread --batch 4")).is_err());
        assert_eq!(parse_duration("300ms").unwrap(), 0.3);
        assert_eq!(thread_counts(1), vec![1]);
        assert_eq!(thread_counts(6), vec![1, 2, 4, 6]);
    }

    #[test]
    fn nop_backends_are_ringport_then_kernel() {
        let o = parse(&args("nop")).unwrap().unwrap();
        let b = backends_for(&o, Kind::Nop);
        assert_eq!(&b[..2], &[Backend::Ringport, Backend::Kernel]);
        assert!(!b.contains(&Backend::Psync));
    }
}
