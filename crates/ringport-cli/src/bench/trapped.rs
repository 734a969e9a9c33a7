//! The `ringport-trapped` backend: the `kernel` backend's code (the
//! `io-uring` crate, making real `io_uring_setup`/`io_uring_enter`/
//! `io_uring_register` system calls), run in a worker process that has
//! called `ringport::install()` with `RINGPORT_SYSCALL_FASTPATH=0`. There
//! every io_uring system call traps (seccomp `SECCOMP_RET_TRAP`, SIGSYS)
//! and is served by the engine: what a C program on liburing gets under
//! `ringport run`. (Without that variable the `io-uring` crate's calls,
//! made through libc's `syscall()`, would take the interposed `syscall()`
//! fast path instead, as fio's do.)
//!
//! # Why a worker process, and why exec rather than fork
//!
//! `install()` cannot be undone and covers the whole process: done in the
//! bench process, it would capture the `kernel` backend too. So the trapped
//! figures come from a child. The child is `/proc/self/exe` re-executed
//! with a hidden subcommand ([`WORKER_COMMAND`]), not a bare `fork`:
//! - the bench process is multi-threaded at times (benchmark threads, the
//!   thread pool, the engine's workers from the `ringport` backend): a fork
//!   child of it may only make async-signal-safe calls, and would inherit
//!   copies of locks and of the engine's state. The engine's worker pool is
//!   not reset in a fork child (docs/INTERCEPTION.md, "Known engine
//!   limitation"), so once the `ringport` backend had used workers, the
//!   child's reads that need one would never complete;
//! - an exec'd child starts clean: one thread when `install()` runs (its
//!   filter trivially reaches every thread, present and future), a fresh
//!   engine, and nothing copied but the descriptors it is given.
//!
//! # How it runs
//!
//! One worker serves the whole run: it is started once the test files
//! exist, and answers one request per repetition, so the trapped backend
//! takes its turn in the same interleaved rotation as the others (while
//! the others run, the worker sleeps in `read`). Its test files are the
//! parent's own open descriptors (the files have no name any more), made
//! inheritable in the child only, between `fork` and `exec`; it runs
//! [`super::exec::run_rep`] with `Backend::Kernel` on them: the same loop,
//! sizes, queue depths, seeds, warm-up and timing as the kernel backend.
//!
//! # Protocol
//!
//! Text lines on the worker's stdin and stdout. The worker's messages
//! follow [`PREFIX`] (each written as a line of its own); anything else on
//! its stdout is ignored.
//! - worker, once at start: `ready pid=P ring=LINK` (interception is
//!   installed, and a test ring was served by the engine; LINK, the rest
//!   of the line, is what its fd points to), or `unavailable REASON`, then
//!   it exits;
//! - parent: `rep KIND VALUE THREADS REP WARM_NS DUR_NS` (KIND is the
//!   workload's name, VALUE its swept parameter);
//! - worker: `ok OPS_PER_SEC N LAT_1 .. LAT_N` (ops/s summed over threads,
//!   and the N latency samples in ns), or `err MESSAGE`.
//!
//! The parent closes the worker's stdin to end it, and reaps it. Every
//! wait on the worker is bounded: an answer that does not come within the
//! repetition's time plus [`REP_MARGIN`] gets the worker killed, the
//! repetition fails, and the next workload point starts a new worker.
//! The worker asks for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`,
//! which follows the thread that started it: `ringport bench` starts it
//! from its main thread), so it never outlives the run.

use super::exec::{self, Backend, Env, Kind, Workload};
use super::files::{adopt_fd, TempFile};
use std::ffi::OsString;
use std::io::{self, BufRead as _, Read as _, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set to `0` in the worker: its io_uring calls, made through libc's
/// `syscall()` by the `io-uring` crate, then trap as inline ones do,
/// instead of taking the interposed `syscall()` fast path.
pub const FASTPATH_VAR: &str = "RINGPORT_SYSCALL_FASTPATH";
/// The hidden `ringport` subcommand that runs the worker.
pub const WORKER_COMMAND: &str = "__bench-trapped-worker";
/// Every protocol line of the worker starts with this.
pub const PREFIX: &str = "@ringport-trapped ";
/// With this set to an errno name (EPERM, ENOSYS, ...), the worker reports
/// `install()` as failed with that error instead of installing, so the
/// "unavailable" path can be seen and tested.
pub const FAKE_ERRNO_VAR: &str = "RINGPORT_BENCH_TRAPPED_ERRNO";
/// How long a new worker may take to install interception and answer.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(20);
/// How much longer than its warm-up and timed run a repetition may take
/// before the worker is declared hung (a lost wake-up waits up to
/// `latency::WAIT_LIMIT`; a seqwrite segment ends with an fsync).
pub const REP_MARGIN: Duration = Duration::from_secs(60);
/// How long a worker whose stdin was closed may take to exit before it is
/// killed.
const EXIT_LIMIT: Duration = Duration::from_secs(5);
/// The longest line accepted from the worker (a repetition's latency
/// samples are one line; 20,000 a second per thread).
const MAX_LINE: usize = 512 << 20;

/// How the worker process is started.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The executable.
    program: PathBuf,
    /// Arguments before the worker's own.
    lead: Vec<OsString>,
    /// When set, the worker's arguments go into this environment variable
    /// (space-separated) instead of the command line.
    args_var: Option<&'static str>,
    /// Extra environment for the worker.
    env: Vec<(OsString, OsString)>,
    /// Whether the worker's `syscall()` calls take the interposed fast
    /// path (the `ringport-syscall` backend) or trap (`ringport-trapped`).
    fast_path: bool,
}

impl Launcher {
    /// This `ringport` binary, re-executed with [`WORKER_COMMAND`].
    pub fn this_binary() -> Launcher {
        let proc_exe = PathBuf::from("/proc/self/exe");
        let program = if proc_exe.exists() { proc_exe } else { std::env::current_exe().unwrap_or(proc_exe) };
        Launcher { program, lead: vec![WORKER_COMMAND.into()], args_var: None, env: Vec::new(), fast_path: false }
    }

    /// The same worker with the interposed `syscall()` fast path on: the
    /// `ringport-syscall` backend.
    pub fn with_fast_path(mut self) -> Launcher {
        self.fast_path = true;
        self
    }
}

/// One test file handed to the worker: its role, descriptor and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileArg {
    role: Role,
    fd: RawFd,
    size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The randread file (buffered descriptor).
    Read,
    /// The same file opened with O_DIRECT.
    Direct,
    /// A seqwrite file (one per thread, in order).
    Write,
}

impl FileArg {
    fn encode(&self) -> String {
        let role = match self.role {
            Role::Read => "read",
            Role::Direct => "direct",
            Role::Write => "write",
        };
        format!("{role}={}:{}", self.fd, self.size)
    }
    fn decode(s: &str) -> Option<FileArg> {
        let (role, rest) = s.split_once('=')?;
        let role = match role {
            "read" => Role::Read,
            "direct" => Role::Direct,
            "write" => Role::Write,
            _ => return None,
        };
        let (fd, size) = rest.split_once(':')?;
        Some(FileArg { role, fd: fd.parse().ok()?, size: size.parse().ok()? })
    }
}

/// The descriptors of `env`'s test files.
fn file_args(env: &Env) -> Vec<FileArg> {
    let mut v = Vec::new();
    if let Some(f) = &env.read_file {
        v.push(FileArg { role: Role::Read, fd: f.fd(), size: f.size });
        if let Some(Ok(d)) = &env.direct {
            v.push(FileArg { role: Role::Direct, fd: d.as_raw_fd(), size: f.size });
        }
    }
    for f in &env.write_files {
        v.push(FileArg { role: Role::Write, fd: f.fd(), size: f.size });
    }
    v
}

/// How a worker ended, to follow "the worker process": `was killed by
/// signal 31 (SIGSYS ...)`, `exited with status 1`.
fn describe(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGSYS => " (SIGSYS: a trapped call with no handler)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGPIPE => " (SIGPIPE)",
            _ => "",
        };
        format!("was killed by signal {sig}{name}")
    } else {
        match status.code() {
            Some(0) => "exited normally".into(),
            Some(c) => format!("exited with status {c}"),
            None => format!("{status}"),
        }
    }
}

/// Reads the worker's stdout line by line, never waiting past a deadline.
struct LineReader {
    src: ChildStdout,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
}

impl LineReader {
    /// The next line (without its newline); None at end of file; an
    /// error of kind `TimedOut` at `deadline`.
    fn next_line(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        // Bounded: every pass reads more data, or polls until the deadline.
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&c| c == b'\n') {
                let end = self.scanned + i;
                let line = self.buf[..end].to_vec();
                self.buf.drain(..=end);
                self.scanned = 0;
                return Ok(Some(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::other(format!("a line of more than {} MiB from the worker", MAX_LINE >> 20)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut p = libc::pollfd { fd: self.src.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: p is one valid pollfd for the whole call.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                continue;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.src.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next protocol message (the text after [`PREFIX`] on its line),
    /// skipping any other output; see [`LineReader::next_line`].
    fn next_message(&mut self, deadline: Instant) -> io::Result<Option<String>> {
        // Bounded by the deadline, as next_line is.
        loop {
            let Some(line) = self.next_line(deadline)? else { return Ok(None) };
            if let Some(m) = message(&line) {
                return Ok(Some(m));
            }
        }
    }
}

/// The protocol message in `line`: the text after [`PREFIX`], which
/// normally starts the line (something else writing to the worker's stdout
/// may have left a line unfinished before it).
fn message(line: &[u8]) -> Option<String> {
    let p = PREFIX.as_bytes();
    let at = line.windows(p.len()).position(|w| w == p)?;
    Some(String::from_utf8_lossy(&line[at + p.len()..]).into_owned())
}

/// A running worker process.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    out: LineReader,
    /// What its test ring's fd pointed to (from the handshake).
    ring: String,
}

/// Why a repetition on the worker failed.
enum Fault {
    /// The repetition failed; the worker is fine.
    Rep(String),
    /// The worker died, hung or spoke nonsense; it has been reaped.
    Dead(String),
}

impl Worker {
    /// Starts a worker with `files` and waits for its handshake. The error
    /// is why the backend is unavailable. The calling thread must outlive
    /// the worker (it gets SIGKILL when that thread ends).
    fn start(launcher: &Launcher, files: &[FileArg]) -> Result<Worker, String> {
        let args: Vec<String> = files.iter().map(FileArg::encode).collect();
        let mut cmd = Command::new(&launcher.program);
        cmd.arg0("ringport").args(&launcher.lead);
        match launcher.args_var {
            Some(var) => {
                cmd.env(var, args.join(" "));
            }
            None => {
                cmd.args(&args);
            }
        }
        // The io-uring crate calls libc's syscall(), which the interception
        // library serves without a trap; ringport-trapped measures the
        // trap (what liburing's inline instructions get), so it switches
        // that off.
        cmd.env(FASTPATH_VAR, if launcher.fast_path { "1" } else { "0" });
        for (k, v) in &launcher.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let keep: Vec<RawFd> = files.iter().map(|f| f.fd).collect();
        // SAFETY: getpid cannot fail.
        let parent = unsafe { libc::getpid() };
        // The closure runs in the forked child before exec; it allocates
        // nothing (iterating a Vec, an io::Error from an errno).
        // SAFETY: only async-signal-safe calls (fcntl, prctl, getppid) on
        // data captured before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // Inherit the test files: FD_CLOEXEC off, in this child only
                // (descriptor flags are per process).
                for &fd in &keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                // Never outlive the bench: SIGKILL when it dies ...
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // ... including if it died before that was set.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            })
        };
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the worker process ({}): {e}", launcher.program.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let Some(stdout) = stdout else {
            reap(&mut child, Duration::ZERO);
            return Err("the worker process has no stdout pipe".into());
        };
        let mut w = Worker { child, stdin, out: LineReader { src: stdout, buf: Vec::new(), scanned: 0 }, ring: String::new() };
        match w.out.next_message(Instant::now() + HANDSHAKE_LIMIT) {
            Ok(Some(m)) => {
                if let Some(rest) = m.strip_prefix("ready ") {
                    w.ring = rest.split_once("ring=").map_or("?", |r| r.1).to_string();
                    return Ok(w);
                }
                let why = m.strip_prefix("unavailable ").map(str::to_string).unwrap_or_else(|| format!("unexpected answer from the worker: {m}"));
                w.close();
                Err(why)
            }
            Ok(None) => Err(format!("the worker process {} before it was ready", w.close())),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let st = w.kill();
                Err(format!("the worker process did not get ready within {} s; it {st}", HANDSHAKE_LIMIT.as_secs()))
            }
            Err(e) => Err(format!("reading from the worker process: {e}; it {}", w.kill())),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One repetition on the worker.
    fn rep(&mut self, wl: &Workload, rep: usize, warm: Duration, dur: Duration) -> Result<(f64, Vec<u64>), Fault> {
        let req = encode_request(wl, rep, warm, dur);
        let sent = match self.stdin.as_mut() {
            Some(s) => s.write_all(req.as_bytes()).and_then(|_| s.flush()),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        };
        if let Err(e) = sent {
            return Err(Fault::Dead(format!("cannot send to the worker process ({e}); it {}", self.close())));
        }
        let limit = warm + dur + REP_MARGIN;
        match self.out.next_message(Instant::now() + limit) {
            Ok(Some(m)) => match decode_reply(&m) {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(Fault::Rep(e)),
                Err(e) => Err(Fault::Dead(format!("{e}; the worker process {}", self.kill()))),
            },
            Ok(None) => Err(Fault::Dead(format!("the worker process {} during the repetition", self.close()))),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let st = self.kill();
                Err(Fault::Dead(format!("no answer from the worker process within {} s; it {st}", limit.as_secs())))
            }
            Err(e) => Err(Fault::Dead(format!("reading from the worker process: {e}; it {}", self.kill()))),
        }
    }

    /// Closes its stdin (which ends it) and reaps it, killing it if it
    /// does not exit within [`EXIT_LIMIT`]. Returns how it ended.
    fn close(&mut self) -> String {
        self.stdin = None;
        reap(&mut self.child, EXIT_LIMIT)
    }

    /// Kills and reaps it. Returns how it ended.
    fn kill(&mut self) -> String {
        self.stdin = None;
        reap(&mut self.child, Duration::ZERO)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits up to `limit` for `child` to exit, then kills it (our own child,
/// by its pid) and waits for it. Returns how it ended ([`describe`]).
/// Idempotent: a reaped child keeps its status.
fn reap(child: &mut Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    // Bounded by the deadline.
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return describe(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => break,
            Err(e) => return format!("could not be waited for: {e}"),
        }
    }
    let _ = child.kill();
    match child.wait() {
        Ok(st) => describe(st),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// The request line for one repetition.
fn encode_request(wl: &Workload, rep: usize, warm: Duration, dur: Duration) -> String {
    format!("rep {} {} {} {} {} {}\n", wl.kind.name(), wl.value, wl.threads, rep, warm.as_nanos(), dur.as_nanos())
}

/// A request line: the workload point, repetition, warm-up and run time.
fn decode_request(line: &str) -> Result<(Workload, usize, Duration, Duration), String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let bad = || format!("bad request: {line}");
    if f.len() != 7 || f[0] != "rep" {
        return Err(bad());
    }
    let kind = Kind::parse(f[1]).ok_or_else(bad)?;
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let (value, threads, rep) = (num(f[2])? as usize, num(f[3])? as usize, num(f[4])? as usize);
    if value == 0 || value > 1 << 20 || threads == 0 || threads > 4096 {
        return Err(bad());
    }
    let (warm, dur) = (Duration::from_nanos(num(f[5])?), Duration::from_nanos(num(f[6])?));
    Ok((Workload { kind, value, threads }, rep, warm, dur))
}

/// The worker's reply to a repetition, without [`PREFIX`] or newline.
fn encode_reply(r: &io::Result<(f64, Vec<u64>)>) -> String {
    use std::fmt::Write as _;
    match r {
        Ok((rate, lat)) => {
            let mut s = String::with_capacity(32 + lat.len() * 8);
            let _ = write!(s, "ok {rate} {}", lat.len());
            for x in lat {
                let _ = write!(s, " {x}");
            }
            s
        }
        Err(e) => format!("err {}", e.to_string().replace(['\n', '\r'], " ")),
    }
}

/// A reply: Ok(the repetition's outcome), or Err if it makes no sense.
#[allow(clippy::type_complexity)]
fn decode_reply(m: &str) -> Result<Result<(f64, Vec<u64>), String>, String> {
    if let Some(e) = m.strip_prefix("err ") {
        return Ok(Err(e.to_string()));
    }
    let bad = || {
        let head: String = m.chars().take(80).collect();
        format!("unexpected answer from the worker: {head}")
    };
    let mut it = m.split(' ');
    if it.next() != Some("ok") {
        return Err(bad());
    }
    let rate: f64 = it.next().and_then(|x| x.parse().ok()).filter(|x: &f64| x.is_finite() && *x >= 0.0).ok_or_else(bad)?;
    let n: usize = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let lat: Vec<u64> = it.map(|x| x.parse::<u64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    if lat.len() != n {
        return Err(bad());
    }
    Ok(Ok((rate, lat)))
}

/// The `ringport-trapped` backend of one run: its worker, started again
/// after one died.
pub struct Trapped {
    launcher: Launcher,
    files: Vec<FileArg>,
    worker: Option<Worker>,
    /// Why the backend is unavailable (the first worker could not install
    /// interception, or could not be started), if it is.
    pub unavailable: Option<String>,
    /// Workers started so far.
    started: usize,
}

impl Trapped {
    /// Starts the worker for a run on `env`'s test files. If it cannot,
    /// [`Trapped::unavailable`] says why.
    pub fn start(env: &Env, launcher: Launcher) -> Trapped {
        let files = file_args(env);
        let (worker, unavailable) = match Worker::start(&launcher, &files) {
            Ok(w) => (Some(w), None),
            Err(why) => (None, Some(why)),
        };
        Trapped { launcher, files, worker, unavailable, started: 1 }
    }

    /// The header's line about the backend.
    pub fn status(&self) -> String {
        match (&self.unavailable, &self.worker) {
            (Some(why), _) => format!("unavailable ({why})"),
            (None, Some(w)) if self.launcher.fast_path => format!(
                "the kernel backend's loops (io-uring crate, libc's syscall()) in worker process {}, \
                 after ringport::install(): every io_uring call is served by the interposed syscall(), no trap (ring fd: {})",
                w.pid(),
                w.ring
            ),
            (None, Some(w)) => format!(
                "the kernel backend's loops (io-uring crate, raw syscalls) in worker process {}, \
                 after ringport::install(): every io_uring call traps into the engine (ring fd: {})",
                w.pid(),
                w.ring
            ),
            (None, None) => "no worker".into(),
        }
    }

    /// One repetition of `wl` in the worker: ops/s summed over threads,
    /// and the latency samples. Starts a new worker first if the last one
    /// died.
    pub fn run_rep(&mut self, wl: &Workload, rep: usize, warm: Duration, dur: Duration) -> io::Result<(f64, Vec<u64>)> {
        if let Some(why) = &self.unavailable {
            return Err(io::Error::other(why.clone()));
        }
        if self.worker.is_none() {
            self.started += 1;
            let w = Worker::start(&self.launcher, &self.files).map_err(|e| io::Error::other(format!("restarting the worker: {e}")))?;
            self.worker = Some(w);
        }
        let w = self.worker.as_mut().expect("started above");
        match w.rep(wl, rep, warm, dur) {
            Ok(r) => Ok(r),
            Err(Fault::Rep(e)) => Err(io::Error::other(e)),
            Err(Fault::Dead(e)) => {
                self.worker = None;
                Err(io::Error::other(e))
            }
        }
    }
}

/// Builds the worker's [`Env`] from its arguments.
fn worker_env(args: &[String]) -> Result<Env, String> {
    let mut env = Env {
        kernel_unavailable: None,
        read_file: None,
        direct: None,
        write_files: Vec::new(),
        kernel_sqpoll_unavailable: None,
        trapped_unavailable: None,
        syscall_unavailable: None,
    };
    for a in args {
        let f = FileArg::decode(a).ok_or_else(|| format!("bad worker argument '{a}'"))?;
        let err = |e: io::Error| format!("test file descriptor {}: {e}", f.fd);
        match f.role {
            Role::Read => env.read_file = Some(TempFile::adopt(f.fd, f.size).map_err(err)?),
            Role::Direct => env.direct = Some(Ok(adopt_fd(f.fd).map_err(err)?)),
            Role::Write => env.write_files.push(TempFile::adopt(f.fd, f.size).map_err(err)?),
        }
    }
    Ok(env)
}

/// Writes one protocol line to stdout (after a newline, in case something
/// else left a line unfinished); false if stdout is gone.
fn say(msg: &str) -> bool {
    let out = io::stdout();
    let mut o = out.lock();
    o.write_all(b"\n")
        .and_then(|_| o.write_all(PREFIX.as_bytes())).and_then(|_| o.write_all(msg.as_bytes())).and_then(|_| o.write_all(b"\n")).and_then(|_| o.flush()).is_ok()
}

/// Installs interception and checks that it is in effect: a ring set up
/// now must be the engine's, not the kernel's. Returns what its fd points
/// to.
fn install_and_check() -> Result<String, String> {
    if let Ok(name) = std::env::var(FAKE_ERRNO_VAR) {
        let code = match name.as_str() {
            "ENOSYS" => libc::ENOSYS,
            "EINVAL" => libc::EINVAL,
            "EACCES" => libc::EACCES,
            _ => libc::EPERM,
        };
        return Err(format!("ringport::install() failed: seccomp: {} (simulated: {FAKE_ERRNO_VAR}={name})", super::strerror(code)));
    }
    ringport::install().map_err(|e| format!("ringport::install() failed: {e}"))?;
    let ring = io_uring::IoUring::new(2).map_err(|e| format!("io_uring_setup through the interception path failed: {e}"))?;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", ring.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    if link.contains("anon_inode:[io_uring]") {
        return Err("io_uring_setup reached the kernel after install(): interception is not in effect".into());
    }
    Ok(link)
}

/// The worker: `ringport __bench-trapped-worker FILE...` (see the module
/// docs). Returns the exit code.
pub fn worker_main(args: &[String]) -> i32 {
    // The files first: a bad argument is the parent's bug, not an
    // unavailable backend, but it is reported the same way.
    let env = match worker_env(args) {
        Ok(e) => e,
        Err(e) => {
            say(&format!("unavailable {e}"));
            return 2;
        }
    };
    // Named for top and ps (the exec'd /proc/self/exe is called "exe").
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of up to 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"ringport-trap".as_ptr(), 0, 0, 0) };
    let ring = match install_and_check() {
        Ok(r) => r,
        Err(e) => {
            say(&format!("unavailable {e}"));
            return 0;
        }
    };
    // SAFETY: getpid cannot fail.
    if !say(&format!("ready pid={} ring={ring}", unsafe { libc::getpid() })) {
        return 1;
    }
    // One request per line, until the parent closes our stdin (or dies:
    // then PR_SET_PDEATHSIG ends us, or the pipe's EOF does).
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match decode_request(&line) {
            Ok((wl, rep, warm, dur)) => encode_reply(&exec::run_rep(&env, Backend::Kernel, &wl, rep, warm, dur)),
            Err(e) => format!("err {e}"),
        };
        if !say(&reply) {
            break;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the test worker finds its arguments.
    const TEST_ARGS_VAR: &str = "RINGPORT_BENCH_TEST_WORKER_ARGS";

    /// The worker, when this test binary is started as one (by
    /// [`test_launcher`]); otherwise nothing.
    #[test]
    fn worker_shim() {
        if let Ok(a) = std::env::var(TEST_ARGS_VAR) {
            let args: Vec<String> = a.split_whitespace().map(str::to_string).collect();
            assert_eq!(worker_main(&args), 0);
        }
    }

    /// This test binary, running only [`worker_shim`]: the worker without
    /// the `ringport` binary (which `cargo test` need not have built).
    fn test_launcher(env: &[(&str, &str)]) -> Launcher {
        Launcher {
            program: PathBuf::from("/proc/self/exe"),
            lead: ["bench::trapped::tests::worker_shim", "--exact", "--nocapture", "--test-threads=1"].map(OsString::from).to_vec(),
            args_var: Some(TEST_ARGS_VAR),
            env: env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect(),
            fast_path: false,
        }
    }

    fn empty_env() -> Env {
        worker_env(&[]).unwrap()
    }

    #[test]
    fn protocol_round_trips() {
        let wl = Workload { kind: Kind::RandReadDirect, value: 32, threads: 2 };
        let req = encode_request(&wl, 2, Duration::from_millis(20), Duration::from_nanos(333_333_333));
        assert_eq!(req, "rep randread-direct 32 2 2 20000000 333333333\n");
        assert_eq!(decode_request(req.trim_end()).unwrap(), (wl, 2, Duration::from_millis(20), Duration::from_nanos(333_333_333)));
        assert!(decode_request("rep nop 0 1 0 1 1").is_err());
        assert!(decode_request("rep bogus 1 1 0 1 1").is_err());
        assert!(decode_request("rep nop 1 1 0 1").is_err());

        let ok = encode_reply(&Ok((1234567.891, vec![70, 95, 1_000_000])));
        assert_eq!(decode_reply(&ok).unwrap().unwrap(), (1234567.891, vec![70, 95, 1_000_000]));
        let none = encode_reply(&Ok((0.5, vec![])));
        assert_eq!(decode_reply(&none).unwrap().unwrap(), (0.5, vec![]));
        let err = encode_reply(&Err(io::Error::other("read failed:\nEIO")));
        assert_eq!(decode_reply(&err).unwrap().unwrap_err(), "read failed: EIO");
        assert!(decode_reply("ok 1.0 2 5").is_err(), "a short sample list is nonsense");
        assert!(decode_reply("ok NaN 0").is_err());
        assert!(decode_reply("hello").is_err());

        let f = FileArg { role: Role::Write, fd: 7, size: 64 << 20 };
        assert_eq!(FileArg::decode(&f.encode()), Some(f));
        assert_eq!(FileArg::decode("direct=5:4096"), Some(FileArg { role: Role::Direct, fd: 5, size: 4096 }));
        assert_eq!(FileArg::decode("read=x:1"), None);

        assert_eq!(message(b"@ringport-trapped ok 1 0").as_deref(), Some("ok 1 0"));
        assert_eq!(message(b"test x ... @ringport-trapped ready pid=1 ring=/a b").as_deref(), Some("ready pid=1 ring=/a b"));
        assert_eq!(message(b"running 1 test"), None);
    }

    #[test]
    fn worker_refuses_descriptors_it_was_not_given() {
        assert!(worker_env(&["read=1:4096".into()]).is_err(), "a standard stream");
        assert!(worker_env(&["write=999999:4096".into()]).is_err(), "not open");
        assert!(worker_env(&["bogus".into()]).is_err());
    }

    /// End to end: a worker process installs interception, runs NOPs and
    /// random reads on a file it inherits, through the io-uring crate; the
    /// figures come back; the worker is reaped when the backend is dropped.
    #[test]
    fn trapped_worker_measures_through_the_interception_path() {
        let dir = std::env::temp_dir();
        let f = TempFile::create(&dir, "trapped-test", 1 << 20).unwrap();
        let mut env = empty_env();
        env.read_file = Some(f);
        let mut t = Trapped::start(&env, test_launcher(&[]));
        if let Some(why) = &t.unavailable {
            // Only where seccomp itself is refused.
            assert!(why.contains("install() failed"), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
        let pid = t.worker.as_ref().unwrap().pid();
        assert!(t.status().contains(&format!("worker process {pid}")), "{}", t.status());
        assert!(!t.status().contains("anon_inode"), "{}", t.status());
        let (warm, dur) = (Duration::from_millis(20), Duration::from_millis(50));
        let (rate, lat) = t.run_rep(&Workload { kind: Kind::Nop, value: 1, threads: 1 }, 0, warm, dur).unwrap();
        assert!(rate > 1000.0 && !lat.is_empty(), "{rate} {}", lat.len());
        let (rate, lat) = t.run_rep(&Workload { kind: Kind::RandRead, value: 4, threads: 2 }, 1, warm, dur).unwrap();
        assert!(rate > 1000.0 && !lat.is_empty(), "{rate} {}", lat.len());
        // A workload whose file it was not given fails that repetition
        // only; the worker carries on.
        let e = t.run_rep(&Workload { kind: Kind::SeqWrite, value: 1, threads: 1 }, 0, warm, dur).unwrap_err();
        assert!(e.to_string().contains("test file missing"), "{e}");
        assert!(t.run_rep(&Workload { kind: Kind::Nop, value: 8, threads: 1 }, 0, warm, dur).is_ok());
        // The latency workloads (a writer thread in the worker; a wait
        // with a timeout, EXT_ARG, through the trap).
        let (_, lat) = t.run_rep(&Workload { kind: Kind::Poll, value: 50, threads: 1 }, 0, warm, dur).unwrap();
        assert!(!lat.is_empty());
        let (_, lat) = t.run_rep(&Workload { kind: Kind::Timeout, value: 1000, threads: 1 }, 0, warm, dur).unwrap();
        assert!(!lat.is_empty());
        assert_eq!(t.started, 1);
        drop(t);
        // Reaped: no such process (not even a zombie).
        // SAFETY: kill with signal 0 only checks that the pid exists.
        assert_eq!(unsafe { libc::kill(pid as i32, 0) }, -1);
    }

    /// A worker killed mid-run fails that repetition with how it died, and
    /// the next repetition gets a new worker.
    #[test]
    fn a_dead_worker_is_reported_and_replaced() {
        let env = empty_env();
        let mut t = Trapped::start(&env, test_launcher(&[]));
        if t.unavailable.is_some() {
            return;
        }
        let pid = t.worker.as_ref().unwrap().pid();
        // SAFETY: SIGKILL to our own child, by its pid.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        let wl = Workload { kind: Kind::Nop, value: 1, threads: 1 };
        let (warm, dur) = (Duration::from_millis(10), Duration::from_millis(20));
        let e = t.run_rep(&wl, 0, warm, dur).unwrap_err().to_string();
        assert!(e.contains("SIGKILL"), "{e}");
        assert!(t.run_rep(&wl, 1, warm, dur).is_ok());
        assert_eq!(t.started, 2);
        assert_ne!(t.worker.as_ref().unwrap().pid(), pid);
    }

    /// Where install() fails, the backend is unavailable with the reason.
    #[test]
    fn install_failure_makes_the_backend_unavailable() {
        let env = empty_env();
        let mut t = Trapped::start(&env, test_launcher(&[(FAKE_ERRNO_VAR, "EPERM")]));
        let why = t.unavailable.clone().expect("unavailable");
        assert!(why.starts_with("ringport::install() failed: seccomp: Operation not permitted"), "{why}");
        assert!(t.status().starts_with("unavailable ("), "{}", t.status());
        let wl = Workload { kind: Kind::Nop, value: 1, threads: 1 };
        assert!(t.run_rep(&wl, 0, Duration::from_millis(1), Duration::from_millis(1)).is_err());
        assert!(t.worker.is_none());
    }

    /// A worker that cannot be started at all is unavailable too.
    #[test]
    fn a_missing_program_is_unavailable() {
        let mut l = test_launcher(&[]);
        l.program = PathBuf::from("/nonexistent/ringport");
        let t = Trapped::start(&empty_env(), l);
        assert!(t.unavailable.as_deref().unwrap().contains("cannot start the worker process"), "{:?}", t.unavailable);
    }
}
