//! The completion queue and its entries.

use crate::abi::{self, io_uring_cqe};
use core::sync::atomic::{AtomicU32, Ordering};

/// One completion: the fields of the kernel's `io_uring_cqe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    user_data: u64,
    result: i32,
    flags: u32,
}

impl Entry {
    /// The user data of the SQE this completes.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }
    /// The result: a count or value, or `-errno`.
    pub fn result(&self) -> i32 {
        self.result
    }
    /// `IORING_CQE_F_*` flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// True when more completions will follow for the same request.
pub fn more(flags: u32) -> bool {
    flags & abi::IORING_CQE_F_MORE != 0
}

/// The CQ's shared-memory pointers, fixed at ring creation.
pub(crate) struct CqRaw {
    pub head: *const AtomicU32,
    pub tail: *const AtomicU32,
    pub overflow: *const AtomicU32,
    pub cqes: *const u8,
    pub cqe_size: usize,
    pub mask: u32,
    pub entries: u32,
}

/// A view of the completion queue; an iterator over ready completions.
/// Consumed entries are released when it is dropped or synced.
pub struct CompletionQueue<'a> {
    raw: &'a CqRaw,
    head: u32,
    tail: u32,
}

impl<'a> CompletionQueue<'a> {
    pub(crate) fn new(raw: &'a CqRaw) -> Self {
        // SAFETY: pointers into the live ring.
        let (head, tail) = unsafe { ((*raw.head).load(Ordering::Relaxed), (*raw.tail).load(Ordering::Acquire)) };
        CompletionQueue { raw, head, tail }
    }
    /// Releases consumed entries and looks for new ones.
    pub fn sync(&mut self) {
        // SAFETY: pointers into the live ring.
        unsafe {
            (*self.raw.head).store(self.head, Ordering::Release);
            self.tail = (*self.raw.tail).load(Ordering::Acquire);
        }
    }
    /// Ready completions.
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }
    /// True when none is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The queue's size.
    pub fn capacity(&self) -> usize {
        self.raw.entries as usize
    }
    /// Completions lost (always 0: the engine keeps an overflow backlog).
    pub fn overflow(&self) -> u32 {
        // SAFETY: pointer into the live ring.
        unsafe { (*self.raw.overflow).load(Ordering::Acquire) }
    }
}

impl Iterator for CompletionQueue<'_> {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        if self.head == self.tail {
            return None;
        }
        let idx = (self.head & self.raw.mask) as usize;
        // SAFETY: idx < entries; the CQE slot lies in the CQ ring and was
        // published by the engine's release store of the tail.
        let c = unsafe { &*(self.raw.cqes.add(idx * self.raw.cqe_size) as *const io_uring_cqe) };
        let e = Entry { user_data: c.user_data, result: c.res, flags: c.flags };
        self.head = self.head.wrapping_add(1);
        Some(e)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl Drop for CompletionQueue<'_> {
    fn drop(&mut self) {
        // SAFETY: pointer into the live ring.
        unsafe { (*self.raw.head).store(self.head, Ordering::Release) };
    }
}

/// The id of the provided buffer a completion used (IORING_CQE_F_BUFFER).
pub fn buffer_select(flags: u32) -> Option<u16> {
    (flags & abi::IORING_CQE_F_BUFFER != 0).then_some((flags >> abi::IORING_CQE_BUFFER_SHIFT) as u16)
}

/// True when the socket had more data (or connections) queued after the
/// completion (IORING_CQE_F_SOCK_NONEMPTY).
pub fn sock_nonempty(flags: u32) -> bool {
    flags & abi::IORING_CQE_F_SOCK_NONEMPTY != 0
}
