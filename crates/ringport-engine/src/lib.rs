//! ringport-engine: the Linux io_uring interface, served by a userspace
//! engine. Most users depend on the `ringport` facade crate instead, which
//! re-exports this crate's API and adds interception (`ringport::install()`).
//!
//! Where io_uring is blocked (container seccomp profiles,
//! `kernel.io_uring_disabled`), ringport runs the kernel's side of it inside
//! the program's own process: the same rings in shared memory, the same
//! SQEs and CQEs, the same errors.
//!
//! - [`abi`]: the kernel's structs and constants (the `ringport-abi` crate).
//! - [`sys`]: `io_uring_setup`/`enter`/`register` with the syscall convention,
//!   for the interception library and for tests.
//! - [`Ring`] and the [`opcode`], [`squeue`], [`cqueue`] and [`types`]
//!   modules: a native API shaped like the `io-uring` crate.
//!
//! ```
//! use ringport_engine::{opcode, Ring};
//! let mut ring = Ring::new(8).unwrap();
//! let nop = opcode::Nop::new().build().user_data(7);
//! // SAFETY: a NOP points at no memory that could go away.
//! unsafe { ring.submission().push(&nop).unwrap() };
//! ring.submit_and_wait(1).unwrap();
//! let cqe = ring.completion().next().unwrap();
//! assert_eq!((cqe.user_data(), cqe.result()), (7, 0));
//! ```
#![deny(missing_docs)]

pub use ringport_abi as abi;
mod api;
mod chaos;
mod engine;
pub mod rawsys;
pub mod sys;

pub use api::{cqueue, opcode, register, squeue, types, Builder, IoUring, Parameters, Probe, Ring, Submitter};

/// The kernel's name for `opcode` (`"READ"`, `"NOP"`, ...), if ringport
/// implements it.
pub fn opcode_name(opcode: u8) -> Option<&'static str> {
    engine::opdef::name(opcode)
}
