//! Shared helpers for the interception tests: building the C test programs,
//! finding the library and the `ringport` binary, running with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cargo target profile directory (`target/debug`) this test runs from.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).expect("target layout").to_path_buf()
}

/// The interception library built with this test.
pub fn preload_lib() -> PathBuf {
    let p = profile_dir().join("libringport_preload.so");
    assert!(p.is_file(), "{} missing: build the workspace (cargo build)", p.display());
    p
}

/// `ringport run --` as a command prefix: the real `ringport` binary when
/// it is built (`cargo test --workspace` builds it), otherwise the same
/// thing by hand (LD_PRELOAD of the library), with a note.
pub fn ringport_run() -> Command {
    let bin = profile_dir().join("ringport");
    if bin.is_file() {
        let mut c = Command::new(bin);
        c.arg("run").arg("--");
        c.env("RINGPORT_PRELOAD", preload_lib());
        c
    } else {
        eprintln!("note: {} not built; using LD_PRELOAD directly", bin.display());
        let mut c = Command::new("env");
        c.arg(format!("LD_PRELOAD={}", preload_lib().display()));
        c
    }
}

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// Compiles `tests/c/<name>.c` (with liburing and pthreads); returns the
/// executable's path. The executable is named after a hash of its source
/// and reused while the source is unchanged; a build goes to a private
/// temporary name and is renamed into place, so no test ever runs a file
/// that is being written.
pub fn build_c(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ringport-preload-c");
    std::fs::create_dir_all(&out_dir).unwrap();
    let src = c_dir().join(format!("{name}.c"));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&std::fs::read(&src).expect("C source"), &mut h);
    let exe = out_dir.join(format!("{name}-{:016x}", std::hash::Hasher::finish(&h)));
    if exe.is_file() {
        built.push((name.to_string(), exe.clone()));
        return exe;
    }
    let tmp = out_dir.join(format!("{name}.{}.tmp", std::process::id()));
    let out = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-D_GNU_SOURCE", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(["-luring", "-lpthread"])
        .output()
        .expect("cannot run cc: a C compiler is needed for these tests");
    assert!(
        out.status.success(),
        "compiling {} failed (liburing-dev installed? apt-get install -y liburing-dev):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &exe).unwrap();
    built.push((name.to_string(), exe.clone()));
    exe
}

/// Runs `cmd` to completion, killing it after `secs` seconds (then the
/// test fails). Output is captured.
pub fn run(cmd: &mut Command, secs: u64) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "timed out after {secs}s: {desc}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Text of stdout and stderr, for messages.
pub fn text(o: &Output) -> String {
    format!("status {:?}\nstdout: {}\nstderr: {}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
