//! ringport: the Linux io_uring interface, served by a userspace engine.
//!
//! Where io_uring is blocked (container seccomp profiles,
//! `kernel.io_uring_disabled`), ringport runs the kernel's side of it inside
//! the program's own process: the same rings in shared memory, the same
//! SQEs and CQEs, the same errors.
//!
//! This crate is the one to depend on. It is a thin facade over the layers
//! that do the work:
//!
//! | layer | crate | here |
//! |---|---|---|
//! | the kernel ABI | `ringport-abi` | [`abi`] |
//! | the engine, its syscall-convention entry points and the native API | `ringport-engine` | [`sys`], [`Ring`], [`opcode`], ... |
//! | interception of the process's own io_uring system calls | `ringport-preload` | [`install`] (feature `intercept`, on by default) |
//!
//! - [`abi`]: the kernel's structs and constants (from `linux-raw-sys`).
//! - [`sys`]: `io_uring_setup`/`enter`/`register` with the syscall convention,
//!   for the interception library and for tests.
//! - [`Ring`] and the [`opcode`], [`squeue`], [`cqueue`] and [`types`]
//!   modules: a native API shaped like the `io-uring` crate. It reaches the
//!   engine by function calls: no system call, no signal.
//! - [`install`]: from then on, every io_uring system call this process
//!   makes (raw `syscall` instructions, as liburing's, or libc's `syscall()`,
//!   as the `io-uring` crate's) is served by the engine.
//!
//! ```
//! use ringport::{opcode, Ring};
//! let mut ring = Ring::new(8).unwrap();
//! let nop = opcode::Nop::new().build().user_data(7);
//! // SAFETY: a NOP points at no memory that could go away.
//! unsafe { ring.submission().push(&nop).unwrap() };
//! ring.submit_and_wait(1).unwrap();
//! let cqe = ring.completion().next().unwrap();
//! assert_eq!((cqe.user_data(), cqe.result()), (7, 0));
//! ```
//!
//! Without the default `intercept` feature the crate is the engine and its
//! API only, and links no libc interposers (see [`install`]).
#![deny(missing_docs)]

pub use ringport_engine::{
    abi, cqueue, opcode, opcode_name, register, squeue, sys, types, Builder, IoUring, Parameters, Probe, Ring,
    Submitter,
};

/// Serves this process's io_uring system calls from the ringport engine,
/// from now on, in every thread: `ringport_preload::install()`.
///
/// After it, a program (or a library it uses, such as the `io-uring` crate
/// or liburing) that calls `io_uring_setup`/`enter`/`register` gets the
/// engine's answer, whether or not the kernel allows io_uring. Idempotent.
/// Linking this feature interposes libc's `syscall`, `sigaction`, `signal`,
/// `sigprocmask` and `pthread_sigmask`; until `install()` succeeds they pass
/// straight through to libc. See `docs/INTERCEPTION.md`.
///
/// ```no_run
/// ringport::install().expect("io_uring interception");
/// // From here on, io_uring calls made through the io-uring crate (or
/// // liburing, or raw syscalls) reach the engine.
/// ```
#[cfg(feature = "intercept")]
pub use ringport_preload::install;

#[cfg(feature = "intercept")]
pub use ringport_preload::{is_installed, InstallError};
