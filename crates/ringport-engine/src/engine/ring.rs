//! The rings in shared memory: layout, mapping, and bounded access.
//!
//! The layout is the kernel's `struct io_rings` byte for byte (the offsets a
//! program reads from `io_uring_params` are the ones Linux 6.x publishes):
//!
//! ```text
//!  0 sq.head   4 sq.tail   8 cq.head  12 cq.tail
//! 16 sq_mask  20 cq_mask  24 sq_entries 28 cq_entries
//! 32 sq_dropped 36 sq_flags 40 cq_flags 44 cq_overflow
//! 64 cqes[cq_entries]     then, 64-aligned, the SQ index array
//! ```
//!
//! With mmap (the default) the ring fd is a sparse memfd. The SQ-ring view of
//! that layout lives at file offset `IORING_OFF_SQ_RING`, the CQ-ring view at
//! `IORING_OFF_CQ_RING` and the SQE array at `IORING_OFF_SQES`, so a program's
//! own `mmap(ring_fd, IORING_OFF_*)` calls return the right memory. The two ring
//! views are different pages (a file cannot alias two of its offsets), so only
//! the SQ fields of the first view and the CQ fields of the second are live, and
//! ringport does not claim `IORING_FEAT_SINGLE_MMAP`.
//!
//! Shared memory is untrusted: the engine keeps its own sizes and masks here,
//! masks every index it reads, and never reads an SQE twice.

use crate::abi::{self, io_cqring_offsets, io_sqring_offsets};
use crate::engine::Errno;
use core::sync::atomic::{AtomicU32, Ordering};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const OFF_SQ_HEAD: u32 = 0;
const OFF_SQ_TAIL: u32 = 4;
const OFF_CQ_HEAD: u32 = 8;
const OFF_CQ_TAIL: u32 = 12;
const OFF_SQ_MASK: u32 = 16;
const OFF_CQ_MASK: u32 = 20;
const OFF_SQ_ENTRIES: u32 = 24;
const OFF_CQ_ENTRIES: u32 = 28;
const OFF_SQ_DROPPED: u32 = 32;
const OFF_SQ_FLAGS: u32 = 36;
const OFF_CQ_FLAGS: u32 = 40;
const OFF_CQ_OVERFLOW: u32 = 44;
const OFF_CQES: u32 = 64;

fn align_up(v: usize, a: usize) -> usize {
    (v + a - 1) & !(a - 1)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Sizes of one ring instance, computed from the validated setup parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub sqe_size: usize,
    pub cqe_size: usize,
    pub no_sqarray: bool,
}

impl Geometry {
    /// Bytes of the rings struct up to the end of the CQEs. As in the
    /// kernel's `rings_size`, CQE32 doubles the whole struct, header included.
    fn cq_end(&self) -> usize {
        let base = OFF_CQES as usize + self.cq_entries as usize * 16;
        if self.cqe_size == 32 {
            2 * base
        } else {
            base
        }
    }
    /// Byte offset of the SQ index array (0 with NO_SQARRAY, as the kernel reports).
    pub fn array_off(&self) -> usize {
        if self.no_sqarray {
            0
        } else {
            align_up(self.cq_end(), 64)
        }
    }
    /// Bytes of the rings region (both headers, the CQEs and the SQ array).
    pub fn rings_size(&self) -> usize {
        if self.no_sqarray {
            self.cq_end()
        } else {
            self.array_off() + self.sq_entries as usize * 4
        }
    }
    /// Bytes of the SQE array.
    pub fn sqes_size(&self) -> usize {
        self.sq_entries as usize * self.sqe_size
    }
    /// The offsets published to the program in `io_uring_params`.
    pub fn offsets(&self) -> (io_sqring_offsets, io_cqring_offsets) {
        let sq = io_sqring_offsets {
            head: OFF_SQ_HEAD,
            tail: OFF_SQ_TAIL,
            ring_mask: OFF_SQ_MASK,
            ring_entries: OFF_SQ_ENTRIES,
            flags: OFF_SQ_FLAGS,
            dropped: OFF_SQ_DROPPED,
            array: self.array_off() as u32,
            resv1: 0,
            user_addr: 0,
        };
        let cq = io_cqring_offsets {
            head: OFF_CQ_HEAD,
            tail: OFF_CQ_TAIL,
            ring_mask: OFF_CQ_MASK,
            ring_entries: OFF_CQ_ENTRIES,
            overflow: OFF_CQ_OVERFLOW,
            cqes: OFF_CQES,
            flags: OFF_CQ_FLAGS,
            resv1: 0,
            user_addr: 0,
        };
        (sq, cq)
    }
}

/// Sizes the sparse ring file. RLIMIT_FSIZE applies to memfds: under a low
/// limit `ftruncate` fails with EFBIG *and* raises SIGXFSZ, whose default
/// action kills the program. The signal is blocked around the call and a
/// SIGXFSZ it raised is consumed; the limit is lifted for a second attempt
/// where the process may do so, and otherwise setup fails with EFBIG (the
/// kernel's rings have no such limit; see docs/ARCHITECTURE.md).
fn size_file(fd: i32, len: usize) -> Result<(), Errno> {
    // SAFETY: sigset operations on locals; pthread_sigmask and sigtimedwait
    // act on this thread only; the fd is ours.
    unsafe {
        let mut block = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(block.as_mut_ptr());
        libc::sigaddset(block.as_mut_ptr(), libc::SIGXFSZ);
        let mut old = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::pthread_sigmask(libc::SIG_BLOCK, block.as_ptr(), old.as_mut_ptr());
        let mut r = libc::ftruncate(fd, len as libc::off_t);
        let mut err = (r != 0).then(Errno::last);
        let signalled = err == Some(Errno(libc::EFBIG));
        if signalled {
            // The program's RLIMIT_FSIZE is below the ring file's size. Lift
            // it for this one call where we may (up to the hard limit, or
            // past it with CAP_SYS_RESOURCE), then put it back. Another
            // thread's write in this window is not limited: the price of
            // rings the kernel would give without any file.
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) == 0 {
                let raised = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
                let soft_only = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                let lifted = libc::setrlimit(libc::RLIMIT_FSIZE, &raised) == 0
                    || (lim.rlim_max >= len as libc::rlim_t && libc::setrlimit(libc::RLIMIT_FSIZE, &soft_only) == 0);
                if lifted {
                    r = libc::ftruncate(fd, len as libc::off_t);
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    if r == 0 {
                        err = None;
                    }
                }
            }
        }
        if signalled && libc::sigismember(old.as_ptr(), libc::SIGXFSZ) == 0 {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            libc::sigtimedwait(block.as_ptr(), core::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), core::ptr::null_mut());
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// One mapping the engine made and must unmap.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap owned by this value.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The engine's handle on one ring's shared memory.
pub(crate) struct Rings {
    pub geo: Geometry,
    sq_mask: u32,
    cq_mask: u32,
    /// Base of the SQ-ring view (the SQ fields are read and written here).
    sq_base: *mut u8,
    /// Base of the CQ-ring view.
    cq_base: *mut u8,
    /// Base of the SQE array.
    sqes: *const u8,
    _maps: Vec<Mapping>,
}

// SAFETY: the pointers refer to mappings owned by this value (or to caller
// memory under NO_MMAP, which the caller promised to keep); every access goes
// through atomics or volatile copies, so sharing across threads is sound.
unsafe impl Send for Rings {}
// SAFETY: see Send.
unsafe impl Sync for Rings {}

/// The memfd behind a mmap-able ring, plus its identity.
pub(crate) struct RingFile {
    pub fd: OwnedFd,
}

impl Rings {
    /// Creates a memfd laid out for `geo` and maps the engine's own views.
    pub fn create_mapped(geo: Geometry) -> Result<(Rings, RingFile), Errno> {
        let name = c"[io_uring]";
        // SAFETY: name is a valid C string.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sqes_len = align_up(geo.sqes_size(), page_size());
        let file_len = abi::IORING_OFF_SQES as usize + sqes_len;
        size_file(fd.as_raw_fd(), file_len)?;
        // The size is final: a program's ftruncate of the ring fd (a raw
        // call, or an FTRUNCATE request) must not pull the pages from under
        // the engine's mappings (SIGBUS). The kernel's ring file cannot be
        // resized at all.
        // SAFETY: F_ADD_SEALS on our own memfd.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL) };
        let rings_len = align_up(geo.rings_size(), page_size());
        let map = |off: u32, len: usize| -> Result<Mapping, Errno> {
            // SAFETY: mapping a range of our own memfd, within its size.
            let p = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    off as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                Err(Errno::last())
            } else {
                Ok(Mapping { ptr: p.cast(), len })
            }
        };
        let a = map(abi::IORING_OFF_SQ_RING, rings_len)?;
        let b = map(abi::IORING_OFF_CQ_RING, rings_len)?;
        let s = map(abi::IORING_OFF_SQES, sqes_len)?;
        let rings = Rings::new(geo, a.ptr, b.ptr, s.ptr, vec![a, b, s]);
        Ok((rings, RingFile { fd }))
    }

    /// Uses caller-provided memory (IORING_SETUP_NO_MMAP): one region holds both
    /// ring headers, the CQEs and the SQ array; another holds the SQEs.
    ///
    /// # Safety
    /// `rings` must be valid for `geo.rings_size()` bytes and `sqes` for
    /// `geo.sqes_size()` bytes for the ring's whole life.
    pub unsafe fn from_user(geo: Geometry, rings: *mut u8, sqes: *mut u8) -> Rings {
        Rings::new(geo, rings, rings, sqes, Vec::new())
    }

    /// This process's handle on rings inherited over fork: the same
    /// mappings (inherited with the address space), unmapped when this
    /// handle goes (the parent's handle, copied into the child, is never
    /// dropped there).
    pub fn inherit(&self) -> Rings {
        Rings {
            geo: self.geo,
            sq_mask: self.sq_mask,
            cq_mask: self.cq_mask,
            sq_base: self.sq_base,
            cq_base: self.cq_base,
            sqes: self.sqes,
            _maps: self._maps.iter().map(|m| Mapping { ptr: m.ptr, len: m.len }).collect(),
        }
    }

    fn new(geo: Geometry, sq_base: *mut u8, cq_base: *mut u8, sqes: *mut u8, maps: Vec<Mapping>) -> Rings {
        let r = Rings {
            geo,
            sq_mask: geo.sq_entries - 1,
            cq_mask: geo.cq_entries - 1,
            sq_base,
            cq_base,
            sqes,
            _maps: maps,
        };
        for base in [sq_base, cq_base] {
            r.at(base, OFF_SQ_MASK).store(r.sq_mask, Ordering::Relaxed);
            r.at(base, OFF_CQ_MASK).store(r.cq_mask, Ordering::Relaxed);
            r.at(base, OFF_SQ_ENTRIES).store(geo.sq_entries, Ordering::Relaxed);
            r.at(base, OFF_CQ_ENTRIES).store(geo.cq_entries, Ordering::Relaxed);
        }
        r
    }

    #[inline]
    fn at(&self, base: *mut u8, off: u32) -> &AtomicU32 {
        // SAFETY: off is one of the fixed header offsets, inside the mapped
        // region and 4-aligned; AtomicU32 tolerates concurrent writers.
        unsafe { &*(base.add(off as usize) as *const AtomicU32) }
    }

    /// SQ head (written by the engine).
    #[inline]
    pub fn sq_head(&self) -> &AtomicU32 {
        self.at(self.sq_base, OFF_SQ_HEAD)
    }
    /// SQ tail (written by the program).
    #[inline]
    pub fn sq_tail(&self) -> &AtomicU32 {
        self.at(self.sq_base, OFF_SQ_TAIL)
    }
    /// SQ flags (`IORING_SQ_*`), written by the engine.
    #[inline]
    pub fn sq_flags(&self) -> &AtomicU32 {
        self.at(self.sq_base, OFF_SQ_FLAGS)
    }
    /// Count of dropped (invalid) SQ entries.
    #[inline]
    pub fn sq_dropped(&self) -> &AtomicU32 {
        self.at(self.sq_base, OFF_SQ_DROPPED)
    }
    /// CQ head (written by the program).
    #[inline]
    pub fn cq_head(&self) -> &AtomicU32 {
        self.at(self.cq_base, OFF_CQ_HEAD)
    }
    /// CQ tail (written by the engine).
    #[inline]
    pub fn cq_tail(&self) -> &AtomicU32 {
        self.at(self.cq_base, OFF_CQ_TAIL)
    }
    /// CQ flags (`IORING_CQ_*`), written by the program.
    #[inline]
    pub fn cq_flags(&self) -> &AtomicU32 {
        self.at(self.cq_base, OFF_CQ_FLAGS)
    }
    #[inline]
    fn sq_array_slot(&self, i: u32) -> &AtomicU32 {
        let off = self.geo.array_off() + (i & self.sq_mask) as usize * 4;
        // SAFETY: the index is masked to sq_entries, so the slot is inside
        // the array at the end of the rings region.
        unsafe { &*(self.sq_base.add(off) as *const AtomicU32) }
    }

    /// Resolves SQ position `pos` (an unmasked head value) to an SQE slot.
    /// `None` means the SQ array held an out-of-range index: a dropped entry.
    #[inline]
    pub fn sqe_index(&self, pos: u32) -> Option<u32> {
        if self.geo.no_sqarray {
            return Some(pos & self.sq_mask);
        }
        let idx = self.sq_array_slot(pos).load(Ordering::Relaxed);
        (idx < self.geo.sq_entries).then_some(idx)
    }

    /// Copies SQE `idx` (already bounded) out of shared memory, once.
    /// Only the first 64 bytes are decoded; the SQE128 tail is for
    /// URING_CMD-style ops that ringport does not implement.
    #[inline]
    pub fn copy_sqe(&self, idx: u32) -> [u64; 8] {
        debug_assert!(idx < self.geo.sq_entries);
        let idx = idx & self.sq_mask;
        // SAFETY: idx < sq_entries, so the slot lies inside the SQE array;
        // volatile word loads read each byte exactly once.
        unsafe {
            let p = self.sqes.add(idx as usize * self.geo.sqe_size) as *const u64;
            let mut out = [0u64; 8];
            for (i, w) in out.iter_mut().enumerate() {
                *w = core::ptr::read_volatile(p.add(i));
            }
            out
        }
    }

    /// Writes one CQE at unmasked position `pos`.
    #[inline]
    pub fn write_cqe(&self, pos: u32, user_data: u64, res: i32, flags: u32, big: [u64; 2]) {
        let idx = (pos & self.cq_mask) as usize;
        // SAFETY: idx < cq_entries; the CQE slot lies inside the rings region
        // of the CQ view. Volatile stores: the program may read concurrently.
        unsafe {
            let p = self.cq_base.add(OFF_CQES as usize + idx * self.geo.cqe_size);
            core::ptr::write_volatile(p as *mut u64, user_data);
            core::ptr::write_volatile(p.add(8) as *mut i32, res);
            core::ptr::write_volatile(p.add(12) as *mut u32, flags);
            if self.geo.cqe_size == 32 {
                core::ptr::write_volatile(p.add(16) as *mut u64, big[0]);
                core::ptr::write_volatile(p.add(24) as *mut u64, big[1]);
            }
        }
    }

    /// Raw base pointers, for the in-process API which reads the rings directly.
    pub fn raw_views(&self) -> (*mut u8, *mut u8, *mut u8) {
        (self.sq_base, self.cq_base, self.sqes as *mut u8)
    }
}
