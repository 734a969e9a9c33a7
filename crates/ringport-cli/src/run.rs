//! `ringport run [--] prog args...`: run a program with its io_uring
//! syscalls served by the engine.

use std::ffi::OsString;

/// Runs `ringport run ARGS`; returns the exit code (on success it does not
/// return: it execs the program).
pub fn main(_args: &[OsString]) -> i32 {
    eprintln!("ringport run: not built yet");
    2
}
