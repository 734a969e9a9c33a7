//! Argument types for the opcode builders.

use std::os::fd::RawFd;

/// A file descriptor of the program's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub RawFd);

/// An index into the ring's registered file table (IOSQE_FIXED_FILE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed(pub u32);

/// Either kind of file target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A plain fd.
    Fd(RawFd),
    /// A registered-file index.
    Fixed(u32),
}

impl From<Fd> for Target {
    fn from(f: Fd) -> Target {
        Target::Fd(f.0)
    }
}

impl From<Fixed> for Target {
    fn from(f: Fixed) -> Target {
        Target::Fixed(f.0)
    }
}

/// Flags for [`crate::opcode::Fsync`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsyncFlags(pub(crate) u32);

impl FsyncFlags {
    /// Sync data only, like `fdatasync` (`IORING_FSYNC_DATASYNC`).
    pub const DATASYNC: FsyncFlags = FsyncFlags(crate::abi::IORING_FSYNC_DATASYNC);
}
