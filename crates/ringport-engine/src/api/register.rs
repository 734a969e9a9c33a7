//! Types for registration calls.

use crate::abi::{io_uring_register_restriction_op as ro, io_uring_restriction};

/// One restriction for [`crate::Submitter::register_restrictions`]: the
/// kernel's `io_uring_restriction`.
#[repr(transparent)]
pub struct Restriction(io_uring_restriction);

impl Restriction {
    fn new(opcode: ro, value: u8) -> Restriction {
        // SAFETY: io_uring_restriction is plain integers; all-zero is valid.
        let mut r: io_uring_restriction = unsafe { core::mem::zeroed() };
        r.opcode = opcode as u16;
        r.__bindgen_anon_1.register_op = value;
        Restriction(r)
    }
    /// Allow the register opcode `op`.
    pub fn register_op(op: u8) -> Restriction {
        Restriction::new(ro::IORING_RESTRICTION_REGISTER_OP, op)
    }
    /// Allow the SQE opcode `op`.
    pub fn sqe_op(op: u8) -> Restriction {
        Restriction::new(ro::IORING_RESTRICTION_SQE_OP, op)
    }
    /// Allow these IOSQE flags.
    pub fn sqe_flags_allowed(flags: u8) -> Restriction {
        Restriction::new(ro::IORING_RESTRICTION_SQE_FLAGS_ALLOWED, flags)
    }
    /// Require these IOSQE flags.
    pub fn sqe_flags_required(flags: u8) -> Restriction {
        Restriction::new(ro::IORING_RESTRICTION_SQE_FLAGS_REQUIRED, flags)
    }
}
