//! The submission queue and its entries.

use crate::abi::{self, io_uring_sqe};
use core::sync::atomic::{AtomicU32, Ordering};

/// One submission queue entry: the kernel's `io_uring_sqe`, built by the
/// [`crate::opcode`] builders.
#[repr(transparent)]
pub struct Entry(pub(crate) io_uring_sqe);

impl Clone for Entry {
    fn clone(&self) -> Entry {
        // SAFETY: io_uring_sqe is plain data; a bitwise copy is a valid clone.
        Entry(unsafe { core::ptr::read(&self.0) })
    }
}

impl core::fmt::Debug for Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Entry")
            .field("opcode", &self.0.opcode)
            .field("flags", &self.0.flags)
            .field("fd", &self.0.fd)
            .field("user_data", &self.0.user_data)
            .finish()
    }
}

impl Entry {
    /// A zeroed SQE with `opcode`.
    pub(crate) fn new(opcode: u8) -> Entry {
        // SAFETY: io_uring_sqe is plain integers; all-zero is valid.
        let mut sqe: io_uring_sqe = unsafe { core::mem::zeroed() };
        sqe.opcode = opcode;
        Entry(sqe)
    }
    /// Sets the value returned in this entry's CQE.
    pub fn user_data(mut self, user_data: u64) -> Entry {
        self.0.user_data = user_data;
        self
    }
    /// The user data set on this entry.
    pub fn get_user_data(&self) -> u64 {
        self.0.user_data
    }
    /// Adds IOSQE flags.
    pub fn flags(mut self, flags: Flags) -> Entry {
        self.0.flags |= flags.0;
        self
    }
    /// Sets the personality (credentials id).
    pub fn personality(mut self, personality: u16) -> Entry {
        self.0.personality = personality;
        self
    }
    /// The raw kernel struct.
    pub fn as_raw(&self) -> &io_uring_sqe {
        &self.0
    }
}

/// IOSQE flags for an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    /// `fd` is a registered-file index.
    pub const FIXED_FILE: Flags = Flags(abi::IOSQE_FIXED_FILE);
    /// Start only after all earlier entries have completed.
    pub const IO_DRAIN: Flags = Flags(abi::IOSQE_IO_DRAIN);
    /// Link the next entry to this one.
    pub const IO_LINK: Flags = Flags(abi::IOSQE_IO_LINK);
    /// Link the next entry, even if this one fails.
    pub const IO_HARDLINK: Flags = Flags(abi::IOSQE_IO_HARDLINK);
    /// Always run in the worker pool.
    pub const ASYNC: Flags = Flags(abi::IOSQE_ASYNC);
    /// Pick a buffer from a provided group.
    pub const BUFFER_SELECT: Flags = Flags(abi::IOSQE_BUFFER_SELECT);
    /// Post no CQE on success.
    pub const SKIP_SUCCESS: Flags = Flags(abi::IOSQE_CQE_SKIP_SUCCESS);
    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

/// Returned by [`SubmissionQueue::push`] when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushError;

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("submission queue is full")
    }
}

impl std::error::Error for PushError {}

/// The SQ's shared-memory pointers, fixed at ring creation.
pub(crate) struct SqRaw {
    pub head: *const AtomicU32,
    pub tail: *const AtomicU32,
    pub flags: *const AtomicU32,
    pub dropped: *const AtomicU32,
    /// Null with NO_SQARRAY.
    pub array: *mut u32,
    pub sqes: *mut u8,
    pub sqe_size: usize,
    pub mask: u32,
    pub entries: u32,
}

/// A view of the submission queue; pushed entries become visible to the
/// engine when it is dropped or [`SubmissionQueue::sync`]ed.
pub struct SubmissionQueue<'a> {
    raw: &'a SqRaw,
    head: u32,
    tail: u32,
}

impl<'a> SubmissionQueue<'a> {
    pub(crate) fn new(raw: &'a SqRaw) -> Self {
        // SAFETY: the pointers are into the ring, live as long as raw.
        let (head, tail) = unsafe { ((*raw.head).load(Ordering::Acquire), (*raw.tail).load(Ordering::Relaxed)) };
        SubmissionQueue { raw, head, tail }
    }
    /// Publishes pushed entries and reloads the engine's head.
    pub fn sync(&mut self) {
        // SAFETY: as in new.
        unsafe {
            (*self.raw.tail).store(self.tail, Ordering::Release);
            self.head = (*self.raw.head).load(Ordering::Acquire);
        }
    }
    /// Entries pushed and not yet consumed.
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }
    /// True when no entry is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// True when no entry can be pushed.
    pub fn is_full(&self) -> bool {
        self.len() >= self.raw.entries as usize
    }
    /// The queue's size.
    pub fn capacity(&self) -> usize {
        self.raw.entries as usize
    }
    /// Entries the engine dropped for an invalid SQ array index.
    pub fn dropped(&self) -> u32 {
        // SAFETY: as in new.
        unsafe { (*self.raw.dropped).load(Ordering::Acquire) }
    }
    /// True when the SQPOLL thread sleeps and needs an enter with
    /// IORING_ENTER_SQ_WAKEUP (`submit` does that by itself).
    pub fn need_wakeup(&self) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: as in new.
        unsafe { (*self.raw.flags).load(Ordering::Relaxed) & abi::IORING_SQ_NEED_WAKEUP != 0 }
    }
    /// True when completions wait in the overflow backlog.
    pub fn cq_overflow(&self) -> bool {
        // SAFETY: as in new.
        unsafe { (*self.raw.flags).load(Ordering::Acquire) & abi::IORING_SQ_CQ_OVERFLOW != 0 }
    }
    /// True when an enter has work to run for the ring (IORING_SQ_TASKRUN,
    /// set with `setup_taskrun_flag`).
    pub fn taskrun(&self) -> bool {
        // SAFETY: as in new.
        unsafe { (*self.raw.flags).load(Ordering::Acquire) & abi::IORING_SQ_TASKRUN != 0 }
    }
    /// Pushes one entry.
    ///
    /// # Safety
    /// The buffers and other memory the entry points at must stay valid
    /// until its completion is reaped.
    pub unsafe fn push(&mut self, entry: &Entry) -> Result<(), PushError> {
        if self.is_full() {
            return Err(PushError);
        }
        let idx = self.tail & self.raw.mask;
        // SAFETY: idx < entries; the slot lies in the SQE array, and the
        // array slot in the SQ ring. We are the SQ's only producer.
        unsafe {
            let dst = self.raw.sqes.add(idx as usize * self.raw.sqe_size) as *mut io_uring_sqe;
            core::ptr::copy_nonoverlapping(&entry.0, dst, 1);
            if !self.raw.array.is_null() {
                *self.raw.array.add(idx as usize) = idx;
            }
        }
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }
    /// Pushes all entries, or none if they do not all fit.
    ///
    /// # Safety
    /// As [`SubmissionQueue::push`].
    pub unsafe fn push_multiple(&mut self, entries: &[Entry]) -> Result<(), PushError> {
        if self.raw.entries as usize - self.len() < entries.len() {
            return Err(PushError);
        }
        for e in entries {
            // SAFETY: forwarded contract; room was checked above.
            unsafe { self.push(e)? };
        }
        Ok(())
    }
}

impl Drop for SubmissionQueue<'_> {
    fn drop(&mut self) {
        // SAFETY: as in new.
        unsafe { (*self.raw.tail).store(self.tail, Ordering::Release) };
    }
}
