//! `ringport bench`: ringport against the kernel's io_uring in one run.

use std::ffi::OsString;

/// Runs `ringport bench ARGS`; returns the exit code.
pub fn main(_args: &[OsString]) -> i32 {
    eprintln!("ringport bench: not built yet");
    2
}
