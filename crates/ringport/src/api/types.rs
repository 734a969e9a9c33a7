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

/// A timespec for timeout ops: the kernel's `__kernel_timespec`.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Timespec(pub(crate) crate::abi::__kernel_timespec);

impl Timespec {
    /// Zero.
    pub const fn new() -> Timespec {
        Timespec(crate::abi::__kernel_timespec { tv_sec: 0, tv_nsec: 0 })
    }
    /// Sets the seconds.
    pub const fn sec(mut self, sec: u64) -> Timespec {
        self.0.tv_sec = sec as i64;
        self
    }
    /// Sets the nanoseconds.
    pub const fn nsec(mut self, nsec: u32) -> Timespec {
        self.0.tv_nsec = nsec as i64;
        self
    }
}

impl Default for Timespec {
    fn default() -> Self {
        Timespec::new()
    }
}

impl core::fmt::Debug for Timespec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Timespec({}s {}ns)", self.0.tv_sec, self.0.tv_nsec)
    }
}

impl From<std::time::Duration> for Timespec {
    fn from(d: std::time::Duration) -> Timespec {
        Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos())
    }
}

/// What [`crate::Submitter::submit_with_args`] waits with: a timeout
/// (relative, as `IORING_ENTER_EXT_ARG` takes it) and a signal mask to
/// install while waiting.
#[derive(Clone, Copy, Debug, Default)]
pub struct SubmitArgs<'a> {
    pub(crate) timespec: Option<&'a Timespec>,
    pub(crate) sigmask: Option<&'a libc::sigset_t>,
}

impl<'a> SubmitArgs<'a> {
    /// Neither a timeout nor a signal mask.
    pub const fn new() -> SubmitArgs<'a> {
        SubmitArgs { timespec: None, sigmask: None }
    }
    /// Gives up with `ETIME` after `timespec`.
    pub const fn timespec(mut self, timespec: &'a Timespec) -> SubmitArgs<'a> {
        self.timespec = Some(timespec);
        self
    }
    /// Installs `sigmask` while waiting (atomically with the sleep).
    pub const fn sigmask(mut self, sigmask: &'a libc::sigset_t) -> SubmitArgs<'a> {
        self.sigmask = Some(sigmask);
        self
    }
}

/// Flags for [`crate::opcode::Timeout`] and [`crate::opcode::TimeoutUpdate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeoutFlags(pub(crate) u32);

impl TimeoutFlags {
    /// The time is absolute.
    pub const ABS: TimeoutFlags = TimeoutFlags(crate::abi::IORING_TIMEOUT_ABS);
    /// Measure on CLOCK_BOOTTIME.
    pub const BOOTTIME: TimeoutFlags = TimeoutFlags(crate::abi::IORING_TIMEOUT_BOOTTIME);
    /// Measure on CLOCK_REALTIME.
    pub const REALTIME: TimeoutFlags = TimeoutFlags(crate::abi::IORING_TIMEOUT_REALTIME);
    /// An expiry does not fail the chain.
    pub const ETIME_SUCCESS: TimeoutFlags = TimeoutFlags(crate::abi::IORING_TIMEOUT_ETIME_SUCCESS);
    /// Fire repeatedly (`count` times, 0 = until removed).
    pub const MULTISHOT: TimeoutFlags = TimeoutFlags(crate::abi::IORING_TIMEOUT_MULTISHOT);
    /// No flags.
    pub const fn empty() -> TimeoutFlags {
        TimeoutFlags(0)
    }
}

impl core::ops::BitOr for TimeoutFlags {
    type Output = TimeoutFlags;
    fn bitor(self, o: TimeoutFlags) -> TimeoutFlags {
        TimeoutFlags(self.0 | o.0)
    }
}

/// Which requests an [`crate::opcode::AsyncCancel2`] targets.
#[derive(Clone, Copy, Debug)]
pub struct CancelBuilder {
    pub(crate) flags: u32,
    pub(crate) user_data: u64,
    pub(crate) fd: Option<Target>,
}

impl CancelBuilder {
    /// Every request (IORING_ASYNC_CANCEL_ANY).
    pub fn any() -> CancelBuilder {
        CancelBuilder { flags: crate::abi::IORING_ASYNC_CANCEL_ANY, user_data: 0, fd: None }
    }
    /// Requests with this user data.
    pub fn user_data(user_data: u64) -> CancelBuilder {
        CancelBuilder { flags: 0, user_data, fd: None }
    }
    /// Requests on this file (IORING_ASYNC_CANCEL_FD).
    pub fn fd(fd: impl Into<Target>) -> CancelBuilder {
        CancelBuilder { flags: crate::abi::IORING_ASYNC_CANCEL_FD, user_data: 0, fd: Some(fd.into()) }
    }
    /// Every match, not just the first (IORING_ASYNC_CANCEL_ALL).
    pub fn all(mut self) -> CancelBuilder {
        self.flags |= crate::abi::IORING_ASYNC_CANCEL_ALL;
        self
    }
}

/// Where ACCEPT or SOCKET puts its new file in the registered file table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestinationSlot {
    /// The kernel's encoding: slot + 1, or IORING_FILE_INDEX_ALLOC.
    dest: u32,
}

impl DestinationSlot {
    /// Any free slot (IORING_FILE_INDEX_ALLOC): the CQE carries its index.
    pub const fn auto_target() -> DestinationSlot {
        DestinationSlot { dest: linux_raw_sys::io_uring::IORING_FILE_INDEX_ALLOC as u32 }
    }
    /// Slot `target` (0 to `u32::MAX - 2`); `Err(target)` beyond.
    pub fn try_from_slot_target(target: u32) -> Result<DestinationSlot, u32> {
        if target > u32::MAX - 2 {
            return Err(target);
        }
        Ok(DestinationSlot { dest: target + 1 })
    }
    pub(crate) fn kernel_index_arg(&self) -> u32 {
        self.dest
    }
}
