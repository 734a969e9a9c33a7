//! `ringport run [--] prog args...`: run a program with its io_uring
//! syscalls served by the engine.
//!
//! It finds the interception library (`libringport_preload.so`), adds it to
//! `LD_PRELOAD` (after any libraries already there), and execs the program,
//! which keeps ringport's pid, stdio and signals. The library does the rest
//! when the program loads it: see `docs/INTERCEPTION.md`.
//!
//! The library is looked for in `$RINGPORT_PRELOAD` (a path to the `.so`),
//! then next to the `ringport` binary (the cargo target directory it was
//! built in), then in `../lib` relative to it (an installed layout).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// File name of the interception library.
pub const LIB_NAME: &str = "libringport_preload.so";

const USAGE: &str = "usage: ringport run [--] prog [args...]\n\
\n\
Runs prog with its io_uring system calls served by ringport (LD_PRELOAD of\n\
libringport_preload.so; set RINGPORT_PRELOAD=/path/to/it to choose one).";

/// Runs `ringport run ARGS`; returns the exit code (on success it does not
/// return: it execs the program).
pub fn main(args: &[OsString]) -> i32 {
    let args = match args.first().map(|a| a.as_bytes()) {
        Some(b"--") => &args[1..],
        Some(b"-h") | Some(b"--help") => {
            println!("{USAGE}");
            return 0;
        }
        _ => args,
    };
    let Some(prog) = args.first() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let lib = match find_library() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ringport run: {e}");
            return 127;
        }
    };
    let preload = with_preload(std::env::var_os("LD_PRELOAD").as_deref(), &lib);
    let err = std::process::Command::new(prog).args(&args[1..]).env("LD_PRELOAD", preload).exec();
    eprintln!("ringport run: {}: {err}", prog.to_string_lossy());
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// Locates the interception library (see the module docs).
pub fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RINGPORT_PRELOAD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(absolute(&p))
        } else {
            Err(format!("RINGPORT_PRELOAD={}: no such file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ringport binary: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [dir.join(LIB_NAME), dir.join("../lib").join(LIB_NAME)];
    candidates.iter().find(|p| p.is_file()).map(|p| absolute(p)).ok_or_else(|| {
        format!(
            "{LIB_NAME} not found next to {} (build it with `cargo build -p ringport-preload`, \
             or set RINGPORT_PRELOAD)",
            exe.display()
        )
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `LD_PRELOAD` with `lib` appended to `existing` (unless already listed).
/// glibc accepts both spaces and colons as separators.
pub fn with_preload(existing: Option<&OsStr>, lib: &Path) -> OsString {
    let lib = lib.as_os_str().as_bytes();
    let existing = existing.map(|e| e.as_bytes()).unwrap_or(b"");
    let already = existing.split(|&c| c == b':' || c == b' ').any(|e| e == lib);
    let trimmed = existing.strip_suffix(b":").unwrap_or(existing);
    if already {
        return OsString::from_vec(existing.to_vec());
    }
    if trimmed.iter().all(|c| c.is_ascii_whitespace()) {
        return OsString::from_vec(lib.to_vec());
    }
    let mut v = trimmed.to_vec();
    v.push(b':');
    v.extend_from_slice(lib);
    OsString::from_vec(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_appends() {
        let lib = Path::new("/x/libringport_preload.so");
        assert_eq!(with_preload(None, lib), "/x/libringport_preload.so");
        assert_eq!(with_preload(Some(OsStr::new("")), lib), "/x/libringport_preload.so");
        assert_eq!(with_preload(Some(OsStr::new("/a.so")), lib), "/a.so:/x/libringport_preload.so");
        assert_eq!(with_preload(Some(OsStr::new("/a.so /b.so")), lib), "/a.so /b.so:/x/libringport_preload.so");
        assert_eq!(with_preload(Some(OsStr::new("/x/libringport_preload.so")), lib), "/x/libringport_preload.so");
    }
}
