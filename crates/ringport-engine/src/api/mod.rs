//! The native Rust API, shaped like the `io-uring` crate. The engine is
//! reached by plain function calls: no system call, no signal.

pub mod cqueue;
pub mod opcode;
pub mod register;
pub mod squeue;
pub mod types;

use crate::abi::{self, io_uring_params, reg};
use crate::engine::enter::{self, RawArg};
use crate::engine::wait::{now, ts_add, WaitArg};
use crate::engine::{register as engine_reg, registry, setup, Ctx};
use core::sync::atomic::AtomicU32;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// An io_uring instance served by the ringport engine.
pub struct Ring {
    ctx: Arc<Ctx>,
    fd: OwnedFd,
    params: Parameters,
    sq: squeue::SqRaw,
    cq: cqueue::CqRaw,
}

// SAFETY: the raw pointers point into the ring's shared memory, which the
// Arc<Ctx> keeps mapped; the SQ/CQ views borrow the Ring mutably, so one
// thread at a time produces SQEs and consumes CQEs, as with the kernel.
unsafe impl Send for Ring {}
// SAFETY: &Ring only allows submit/register, which the engine serialises.
unsafe impl Sync for Ring {}

/// The `io-uring` crate's name for the same type.
pub type IoUring = Ring;

/// The parameters the ring was created with, as the kernel reports them.
#[derive(Clone, Copy, Debug)]
pub struct Parameters(io_uring_params);

impl Parameters {
    /// SQ size.
    pub fn sq_entries(&self) -> u32 {
        self.0.sq_entries
    }
    /// CQ size.
    pub fn cq_entries(&self) -> u32 {
        self.0.cq_entries
    }
    /// `IORING_FEAT_*` bits.
    pub fn features(&self) -> u32 {
        self.0.features
    }
    /// `IORING_SETUP_*` flags.
    pub fn flags(&self) -> u32 {
        self.0.flags
    }
    /// The raw kernel struct.
    pub fn as_raw(&self) -> &io_uring_params {
        &self.0
    }
}

/// Builds a [`Ring`] with setup flags.
#[derive(Clone, Copy)]
pub struct Builder {
    params: io_uring_params,
}

impl Builder {
    fn flag(mut self, f: u32) -> Self {
        self.params.flags |= f;
        self
    }
    /// A CQ of `entries` (IORING_SETUP_CQSIZE).
    pub fn setup_cqsize(mut self, entries: u32) -> Self {
        self.params.cq_entries = entries;
        self.flag(abi::IORING_SETUP_CQSIZE)
    }
    /// Clamp too-large sizes instead of failing (IORING_SETUP_CLAMP).
    pub fn setup_clamp(self) -> Self {
        self.flag(abi::IORING_SETUP_CLAMP)
    }
    /// Keep submitting after a failed SQE (IORING_SETUP_SUBMIT_ALL).
    pub fn setup_submit_all(self) -> Self {
        self.flag(abi::IORING_SETUP_SUBMIT_ALL)
    }
    /// One thread submits (IORING_SETUP_SINGLE_ISSUER).
    pub fn setup_single_issuer(self) -> Self {
        self.flag(abi::IORING_SETUP_SINGLE_ISSUER)
    }
    /// A poller thread takes SQEs (IORING_SETUP_SQPOLL); it sleeps after
    /// `idle_ms` without work (0: the kernel's default of one second).
    pub fn setup_sqpoll(mut self, idle_ms: u32) -> Self {
        self.params.sq_thread_idle = idle_ms;
        self.flag(abi::IORING_SETUP_SQPOLL)
    }
    /// Pins the SQPOLL thread to `cpu` (IORING_SETUP_SQ_AFF).
    pub fn setup_sqpoll_cpu(mut self, cpu: u32) -> Self {
        self.params.sq_thread_cpu = cpu;
        self.flag(abi::IORING_SETUP_SQ_AFF)
    }
    /// Shares the SQPOLL thread of the ring `fd` (IORING_SETUP_ATTACH_WQ).
    pub fn setup_attach_wq(mut self, fd: RawFd) -> Self {
        self.params.wq_fd = fd as u32;
        self.flag(abi::IORING_SETUP_ATTACH_WQ)
    }
    /// Polled completions for direct I/O (IORING_SETUP_IOPOLL).
    pub fn setup_iopoll(self) -> Self {
        self.flag(abi::IORING_SETUP_IOPOLL)
    }
    /// Start disabled until [`Submitter::register_enable_rings`]
    /// (IORING_SETUP_R_DISABLED).
    pub fn setup_r_disabled(self) -> Self {
        self.flag(abi::IORING_SETUP_R_DISABLED)
    }
    /// Post completions only when the submitter waits for them
    /// (IORING_SETUP_DEFER_TASKRUN; needs SINGLE_ISSUER).
    pub fn setup_defer_taskrun(self) -> Self {
        self.flag(abi::IORING_SETUP_DEFER_TASKRUN)
    }
    /// IORING_SETUP_COOP_TASKRUN.
    pub fn setup_coop_taskrun(self) -> Self {
        self.flag(abi::IORING_SETUP_COOP_TASKRUN)
    }
    /// IORING_SETUP_TASKRUN_FLAG.
    pub fn setup_taskrun_flag(self) -> Self {
        self.flag(abi::IORING_SETUP_TASKRUN_FLAG)
    }
    /// No SQ index array: SQEs are taken in ring order (IORING_SETUP_NO_SQARRAY).
    pub fn setup_no_sqarray(self) -> Self {
        self.flag(abi::IORING_SETUP_NO_SQARRAY)
    }
    /// Creates the ring with at least `entries` SQ entries.
    pub fn build(self, entries: u32) -> io::Result<Ring> {
        let mut p = self.params;
        let (ctx, raw) = setup::create(entries, &mut p)?;
        // SAFETY: raw is the ring fd setup just created for us.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let (sq_base, cq_base, sqes) = ctx.rings.raw_views();
        let at = |base: *mut u8, off: u32| {
            // SAFETY: the offset is one the engine published for this ring.
            unsafe { base.add(off as usize) }
        };
        let sq = squeue::SqRaw {
            head: at(sq_base, p.sq_off.head) as *const AtomicU32,
            tail: at(sq_base, p.sq_off.tail) as *const AtomicU32,
            flags: at(sq_base, p.sq_off.flags) as *const AtomicU32,
            dropped: at(sq_base, p.sq_off.dropped) as *const AtomicU32,
            array: if p.flags & abi::IORING_SETUP_NO_SQARRAY != 0 {
                core::ptr::null_mut()
            } else {
                at(sq_base, p.sq_off.array) as *mut u32
            },
            sqes,
            sqe_size: ctx.rings.geo.sqe_size,
            mask: p.sq_entries - 1,
            entries: p.sq_entries,
        };
        let cq = cqueue::CqRaw {
            head: at(cq_base, p.cq_off.head) as *const AtomicU32,
            tail: at(cq_base, p.cq_off.tail) as *const AtomicU32,
            overflow: at(cq_base, p.cq_off.overflow) as *const AtomicU32,
            cqes: at(cq_base, p.cq_off.cqes),
            cqe_size: ctx.rings.geo.cqe_size,
            mask: p.cq_entries - 1,
            entries: p.cq_entries,
        };
        Ok(Ring { ctx, fd, params: Parameters(p), sq, cq })
    }
}

impl Ring {
    /// A ring with default settings and at least `entries` SQ entries.
    pub fn new(entries: u32) -> io::Result<Ring> {
        Ring::builder().build(entries)
    }
    /// A builder for setup flags.
    pub fn builder() -> Builder {
        // SAFETY: io_uring_params is plain integers; all-zero is valid.
        Builder { params: unsafe { core::mem::zeroed() } }
    }
    /// The submission queue.
    pub fn submission(&mut self) -> squeue::SubmissionQueue<'_> {
        squeue::SubmissionQueue::new(&self.sq)
    }
    /// The completion queue.
    pub fn completion(&mut self) -> cqueue::CompletionQueue<'_> {
        cqueue::CompletionQueue::new(&self.cq)
    }
    /// Both queues at once.
    pub fn split(&mut self) -> (Submitter<'_>, squeue::SubmissionQueue<'_>, cqueue::CompletionQueue<'_>) {
        (Submitter { ring_ctx: &self.ctx }, squeue::SubmissionQueue::new(&self.sq), cqueue::CompletionQueue::new(&self.cq))
    }
    /// Submission and registration calls.
    pub fn submitter(&self) -> Submitter<'_> {
        Submitter { ring_ctx: &self.ctx }
    }
    /// Submits every pending SQE; returns how many were consumed.
    pub fn submit(&self) -> io::Result<usize> {
        self.submitter().submit()
    }
    /// Submits, then waits until `want` completions are ready.
    pub fn submit_and_wait(&self, want: usize) -> io::Result<usize> {
        self.submitter().submit_and_wait(want)
    }
    /// The setup parameters.
    pub fn params(&self) -> &Parameters {
        &self.params
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        registry::remove(self.fd.as_raw_fd());
        self.ctx.close();
    }
}

/// Submission and registration calls on a ring.
pub struct Submitter<'a> {
    ring_ctx: &'a Arc<Ctx>,
}

fn io(r: Result<i32, crate::engine::Errno>) -> io::Result<usize> {
    r.map(|n| n as usize).map_err(Into::into)
}

impl Submitter<'_> {
    fn pending(&self) -> u32 {
        let r = &self.ring_ctx.rings;
        let tail = r.sq_tail().load(core::sync::atomic::Ordering::Acquire);
        let head = r.sq_head().load(core::sync::atomic::Ordering::Acquire);
        tail.wrapping_sub(head).min(r.geo.sq_entries)
    }
    fn enter(&self, min: u32, mut flags: u32, arg: WaitArg) -> io::Result<usize> {
        if self.ring_ctx.has(abi::IORING_SETUP_SQPOLL) {
            // The tail was published; a full barrier before reading the
            // poller's NEED_WAKEUP flag (see engine/sqpoll.rs).
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            let f = self.ring_ctx.rings.sq_flags().load(core::sync::atomic::Ordering::Relaxed);
            if f & abi::IORING_SQ_NEED_WAKEUP != 0 {
                flags |= abi::IORING_ENTER_SQ_WAKEUP;
            }
        }
        io(enter::enter(self.ring_ctx, self.pending(), min, flags, RawArg::Decoded(arg)))
    }
    /// Submits every pending SQE.
    pub fn submit(&self) -> io::Result<usize> {
        self.enter(0, 0, WaitArg::default())
    }
    /// Submits, then waits until `want` completions are ready.
    pub fn submit_and_wait(&self, want: usize) -> io::Result<usize> {
        let flags = if want > 0 { abi::IORING_ENTER_GETEVENTS } else { 0 };
        self.enter(want.min(u32::MAX as usize) as u32, flags, WaitArg::default())
    }
    /// As `submit_and_wait`, giving up with `ETIME` after `timeout`.
    pub fn submit_with_timeout(&self, want: usize, timeout: Duration) -> io::Result<usize> {
        let deadline = ts_add(now(), timeout.as_secs().min(i64::MAX as u64) as i64, timeout.subsec_nanos() as i64);
        let arg = WaitArg { deadline: Some(deadline), sigmask: None };
        self.enter(want.min(u32::MAX as usize) as u32, abi::IORING_ENTER_GETEVENTS, arg)
    }
    /// As `submit_and_wait`, with a timeout and/or a signal mask
    /// (`IORING_ENTER_EXT_ARG`'s arguments).
    pub fn submit_with_args(&self, want: usize, args: &types::SubmitArgs<'_>) -> io::Result<usize> {
        let deadline = args.timespec.map(|t| ts_add(now(), t.0.tv_sec, t.0.tv_nsec));
        let arg = WaitArg { deadline, sigmask: args.sigmask.copied() };
        self.enter(want.min(u32::MAX as usize) as u32, abi::IORING_ENTER_GETEVENTS, arg)
    }
    fn register(&self, opcode: u32, arg: u64, nr: u32) -> io::Result<()> {
        engine_reg::register(self.ring_ctx, opcode, arg, nr).map(|_| ()).map_err(Into::into)
    }
    /// Registers buffers for READ_FIXED/WRITE_FIXED.
    ///
    /// # Safety
    /// The buffers must stay valid until unregistered.
    pub unsafe fn register_buffers(&self, bufs: &[libc::iovec]) -> io::Result<()> {
        self.register(reg::BUFFERS, bufs.as_ptr() as u64, bufs.len() as u32)
    }
    /// Unregisters all buffers.
    pub fn unregister_buffers(&self) -> io::Result<()> {
        self.register(reg::UNREGISTER_BUFFERS, 0, 0)
    }
    /// Registers a file table; -1 leaves a slot empty.
    pub fn register_files(&self, fds: &[RawFd]) -> io::Result<()> {
        self.register(reg::FILES, fds.as_ptr() as u64, fds.len() as u32)
    }
    /// Replaces slots from `offset`; -1 empties a slot, -2 skips it.
    /// Returns how many slots were updated.
    pub fn register_files_update(&self, offset: u32, fds: &[RawFd]) -> io::Result<usize> {
        let up = abi::io_uring_files_update { offset, resv: 0, fds: fds.as_ptr() as u64 };
        io(engine_reg::register(self.ring_ctx, reg::FILES_UPDATE, &up as *const _ as u64, fds.len() as u32))
    }
    /// Unregisters the file table.
    pub fn unregister_files(&self) -> io::Result<()> {
        self.register(reg::UNREGISTER_FILES, 0, 0)
    }
    /// Signals `eventfd` whenever completions are posted.
    pub fn register_eventfd(&self, eventfd: RawFd) -> io::Result<()> {
        self.register(reg::EVENTFD, &eventfd as *const RawFd as u64, 1)
    }
    /// Signals `eventfd` only for completions that finished asynchronously.
    pub fn register_eventfd_async(&self, eventfd: RawFd) -> io::Result<()> {
        self.register(reg::EVENTFD_ASYNC, &eventfd as *const RawFd as u64, 1)
    }
    /// Removes the eventfd.
    pub fn unregister_eventfd(&self) -> io::Result<()> {
        self.register(reg::UNREGISTER_EVENTFD, 0, 0)
    }
    /// Limits what the ring may do once enabled (IORING_REGISTER_RESTRICTIONS;
    /// only on a ring created with `setup_r_disabled`).
    pub fn register_restrictions(&self, res: &mut [register::Restriction]) -> io::Result<()> {
        self.register(reg::RESTRICTIONS, res.as_mut_ptr() as u64, res.len() as u32)
    }
    /// Enables a ring created with `setup_r_disabled`.
    pub fn register_enable_rings(&self) -> io::Result<()> {
        self.register(reg::ENABLE_RINGS, 0, 0)
    }
    /// Cancels what `builder` names and waits, up to `timeout` (None:
    /// forever), for it to finish (IORING_REGISTER_SYNC_CANCEL).
    pub fn register_sync_cancel(&self, timeout: Option<types::Timespec>, builder: types::CancelBuilder) -> io::Result<()> {
        // SAFETY: io_uring_sync_cancel_reg is plain integers; all-zero is valid.
        let mut sc: abi::io_uring_sync_cancel_reg = unsafe { core::mem::zeroed() };
        sc.addr = builder.user_data;
        sc.flags = builder.flags;
        sc.fd = -1;
        if let Some(t) = builder.fd {
            match t {
                types::Target::Fd(fd) => sc.fd = fd,
                types::Target::Fixed(i) => {
                    sc.fd = i as i32;
                    sc.flags |= abi::IORING_ASYNC_CANCEL_FD_FIXED;
                }
            }
        }
        let t = timeout.map(|t| t.0).unwrap_or(abi::__kernel_timespec { tv_sec: -1, tv_nsec: -1 });
        sc.timeout = t;
        self.register(reg::SYNC_CANCEL, &sc as *const _ as u64, 1)
    }
    /// Registers a ring of provided buffers for group `bgid`
    /// (IORING_REGISTER_PBUF_RING); `ring_addr` must be page aligned.
    ///
    /// # Safety
    /// The ring and the buffers it lists must stay valid until unregistered.
    pub unsafe fn register_buf_ring(&self, ring_addr: u64, ring_entries: u16, bgid: u16) -> io::Result<()> {
        // SAFETY: forwarded contract.
        unsafe { self.register_buf_ring_with_flags(ring_addr, ring_entries, bgid, 0) }
    }
    /// [`Submitter::register_buf_ring`] with `IOU_PBUF_RING_*` flags.
    ///
    /// # Safety
    /// As [`Submitter::register_buf_ring`].
    pub unsafe fn register_buf_ring_with_flags(&self, ring_addr: u64, ring_entries: u16, bgid: u16, flags: u16) -> io::Result<()> {
        let arg = linux_raw_sys::io_uring::io_uring_buf_reg { ring_addr, ring_entries: ring_entries as u32, bgid, flags, resv: [0; 3] };
        self.register(linux_raw_sys::io_uring::io_uring_register_op::IORING_REGISTER_PBUF_RING as u32, &arg as *const _ as u64, 1)
    }
    /// Unregisters group `bgid`'s buffer ring.
    pub fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        let arg = linux_raw_sys::io_uring::io_uring_buf_reg { ring_addr: 0, ring_entries: 0, bgid, flags: 0, resv: [0; 3] };
        self.register(linux_raw_sys::io_uring::io_uring_register_op::IORING_UNREGISTER_PBUF_RING as u32, &arg as *const _ as u64, 1)
    }
    /// Limits the slots IORING_FILE_INDEX_ALLOC picks from to
    /// `[offset, offset + len)` (IORING_REGISTER_FILE_ALLOC_RANGE).
    pub fn register_file_alloc_range(&self, offset: u32, len: u32) -> io::Result<()> {
        let r = linux_raw_sys::io_uring::io_uring_file_index_range { off: offset, len, resv: 0 };
        self.register(linux_raw_sys::io_uring::io_uring_register_op::IORING_REGISTER_FILE_ALLOC_RANGE as u32, &r as *const _ as u64, 0)
    }
    /// Fills `probe` with the supported opcodes.
    pub fn register_probe(&self, probe: &mut Probe) -> io::Result<()> {
        probe.0.fill(0);
        self.register(reg::PROBE, probe.0.as_mut_ptr() as u64, Probe::COUNT as u32)
    }
}

/// Which opcodes the engine supports (IORING_REGISTER_PROBE).
pub struct Probe(Vec<u8>);

impl Probe {
    const COUNT: usize = 256;
    /// An empty probe, to pass to [`Submitter::register_probe`].
    pub fn new() -> Probe {
        let size = core::mem::size_of::<abi::io_uring_probe>() + Probe::COUNT * core::mem::size_of::<abi::io_uring_probe_op>();
        Probe(vec![0; size])
    }
    /// True when `opcode` is supported.
    pub fn is_supported(&self, opcode: u8) -> bool {
        let len = self.0[1] as usize;
        let o = core::mem::size_of::<abi::io_uring_probe>() + opcode as usize * 8;
        (opcode as usize) < len
            && u16::from_ne_bytes([self.0[o + 2], self.0[o + 3]]) as u32 & abi::IO_URING_OP_SUPPORTED != 0
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}
