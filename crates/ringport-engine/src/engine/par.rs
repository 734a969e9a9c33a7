//! Parallel inline issue: a batch of page-cache reads shared with a helper
//! thread.
//!
//! The kernel issues a page-cache read inline, inside the one
//! `io_uring_enter` that submitted it, with no system call per read. The
//! engine needs one `preadv2(RWF_NOWAIT)` per read, which costs more than
//! the copy it wraps on small reads. When one submit brings several plain
//! positional reads in a row, the submitter therefore shares them with one
//! helper thread per process (`ringport-par`): both claim reads from the
//! batch by an atomic index and issue them (non-blocking, as inline), the
//! submitter waits for the ones the helper took, and then settles every
//! outcome *in submission order* (CQEs, punts, parks), so the CQ reads as if
//! the reads had been issued one by one, as the kernel's are.
//!
//! Which reads (`rw::parallel_buffer`): READ and READ_FIXED at an explicit
//! offset, with no SQE flag but FIXED_FILE, no selected buffer, and buffers
//! that do not overlap within the batch (else the order in which two reads
//! land in one buffer would show). A positional read of a file that cannot
//! be read at an offset (a pipe, a socket) answers ESPIPE without touching
//! the file; such a read is issued again in order, after the batch, the
//! usual way (as a stream).
//!
//! The helper spins for [`SPIN`] after each batch, looking for the next one,
//! then sleeps on a futex. It is only started on a machine with more than
//! one CPU available, and only offered a batch while a CPU looks free for it
//! ([`cpu_free`]: the system's runnable tasks fit the CPUs, checked every
//! 10 ms); a batch the helper cannot join (another ring's submitter has it,
//! or no CPU is free) is simply issued by its own submitter.

use super::opdef::{self, Issue, Mode, Req};
use super::Ctx;
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Fewest reads worth sharing.
pub(crate) const MIN_BATCH: usize = 4;

/// How long the helper looks for a next batch before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// One outcome, on a cache line of its own (the two threads write
/// neighbouring ones).
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct Out(pub Option<Issue>);

/// The claim index, on a cache line of its own.
#[repr(align(64))]
struct Next(AtomicUsize);

/// One shared batch, on the submitter's stack for the call.
struct Job {
    ctx: *const Ctx,
    reqs: *mut Req,
    outs: *mut Out,
    n: usize,
    next: Next,
}

pub(crate) struct Helper {
    /// The batch on offer (null: none).
    job: AtomicPtr<Job>,
    /// The helper is looking at `job` (the submitter waits for 0 before its
    /// batch goes away).
    active: AtomicU32,
    /// Bumped when a batch is offered; the sleeping helper waits on it.
    seq: AtomicU32,
    sleeping: AtomicBool,
    /// A submitter is using the helper.
    taken: AtomicBool,
    /// The helper thread could not be started.
    absent: AtomicBool,
}

/// The process's helper (started afresh in a fork child).
pub(crate) static HELPER: super::global::Global<Helper> = super::global::Global::new(start);

fn start() -> Helper {
    Helper {
        job: AtomicPtr::new(core::ptr::null_mut()),
        active: AtomicU32::new(0),
        seq: AtomicU32::new(0),
        sleeping: AtomicBool::new(false),
        taken: AtomicBool::new(false),
        absent: AtomicBool::new(true),
    }
}

/// The CPUs this process may use (0: not asked yet).
static CPUS: AtomicUsize = AtomicUsize::new(0);

/// True where a helper can run beside the submitter (more than one CPU;
/// asked once).
#[inline]
pub(crate) fn available() -> bool {
    let mut n = CPUS.load(Ordering::Relaxed);
    if n == 0 {
        n = std::thread::available_parallelism().map_or(1, |n| n.get());
        CPUS.store(n, Ordering::Relaxed);
    }
    n > 1
}

/// How often the check for a free CPU is made again.
const CHECK_EVERY_NS: u64 = 10_000_000;
/// The last check's verdict, and when the next one is due.
static ROOM: AtomicBool = AtomicBool::new(true);
static NEXT_CHECK: AtomicU64 = AtomicU64::new(0);
/// Checks in a row that found no free CPU; the helper stands aside from
/// [`STRIKES_OUT`] of them (a lone task passing by is no contention).
static STRIKES: AtomicU32 = AtomicU32::new(0);
const STRIKES_OUT: u32 = 3;

/// The system's runnable tasks now (`/proc/loadavg`'s fourth field, whose
/// first number counts the reading thread too); None if unreadable.
fn nr_running() -> Option<usize> {
    let mut buf = [0u8; 128];
    // SAFETY: a NUL-terminated path; reading into a local buffer; the fd
    // is closed at once.
    let n = unsafe {
        let fd = libc::open(c"/proc/loadavg".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let text = core::str::from_utf8(buf.get(..usize::try_from(n).ok()?)?).ok()?;
    text.split_ascii_whitespace().nth(3)?.split('/').next()?.parse().ok()
}

/// True when a CPU looks free for the helper: the system's runnable tasks,
/// counting the helper, fit in the CPUs this process may use. A helper
/// competing for a CPU with another submitter (or another program) slows
/// both, so then batches are issued by their submitters alone: after three
/// checks in a row found no free CPU, until one finds one. Checked every
/// 10 ms at most (about 5 us per check).
fn cpu_free(h: &Helper) -> bool {
    let now = super::timer::mono_ns();
    let due = NEXT_CHECK.load(Ordering::Relaxed);
    if now < due || NEXT_CHECK.compare_exchange(due, now + CHECK_EVERY_NS, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return ROOM.load(Ordering::Relaxed);
    }
    let free = match nr_running() {
        Some(running) => {
            let helper_off_cpu = usize::from(h.sleeping.load(Ordering::Relaxed));
            running + helper_off_cpu <= CPUS.load(Ordering::Relaxed)
        }
        None => true,
    };
    let strikes = if free { 0 } else { (STRIKES.load(Ordering::Relaxed) + 1).min(STRIKES_OUT) };
    STRIKES.store(strikes, Ordering::Relaxed);
    let room = strikes < STRIKES_OUT;
    ROOM.store(room, Ordering::Relaxed);
    room
}

/// The helper, started on first use; None where it cannot help.
fn helper() -> Option<&'static Helper> {
    if !available() {
        return None;
    }
    let h = HELPER.get();
    if h.absent.load(Ordering::Acquire) {
        // Started once: the flag only changes here, under `taken`.
        if h.taken.swap(true, Ordering::Acquire) {
            return None;
        }
        if h.absent.load(Ordering::Acquire) {
            let ok = std::thread::Builder::new().name("ringport-par".into()).spawn(move || run(h)).is_ok();
            if !ok {
                // Leave `taken` set: nobody uses a helper that is not there.
                return None;
            }
            h.absent.store(false, Ordering::Release);
        }
        h.taken.store(false, Ordering::Release);
    }
    Some(h)
}

thread_local! {
    /// This thread issues a read of a shared batch (see `rw`'s ESPIPE rule).
    static IN_BATCH: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread issues a read of a shared batch: a positional
/// read of a stream must then answer ESPIPE rather than read as a stream.
pub(crate) fn in_batch() -> bool {
    IN_BATCH.with(|b| b.get())
}

/// Claims and issues reads of `job` until none is left.
fn work(job: &Job) {
    IN_BATCH.with(|b| b.set(true));
    loop {
        let i = job.next.0.fetch_add(1, Ordering::AcqRel);
        if i >= job.n {
            break;
        }
        // SAFETY: index i was claimed by this thread alone; the batch's
        // arrays live until the submitter has seen the helper leave it.
        unsafe {
            let req = &mut *job.reqs.add(i);
            (*job.outs.add(i)).0 = Some(opdef::issue(&*job.ctx, req, Mode::NonBlock));
        }
    }
    IN_BATCH.with(|b| b.set(false));
}

fn run(h: &'static Helper) {
    super::wq::block_signals();
    let mut since = Instant::now();
    loop {
        let seq = h.seq.load(Ordering::Acquire);
        h.active.fetch_add(1, Ordering::SeqCst);
        // Pairs with the submitter's fence (tests/loom_protocol.rs): the
        // submitter sees this helper active, or the helper sees no job.
        fence(Ordering::SeqCst);
        let job = h.job.load(Ordering::SeqCst);
        if !job.is_null() {
            // SAFETY: the submitter keeps the job alive until `active` is 0.
            work(unsafe { &*job });
            since = Instant::now();
        }
        h.active.fetch_sub(1, Ordering::SeqCst);
        if since.elapsed() < SPIN {
            while h.seq.load(Ordering::Acquire) == seq && since.elapsed() < SPIN {
                core::hint::spin_loop();
            }
            continue;
        }
        h.sleeping.store(true, Ordering::SeqCst);
        // Pairs with the submitter's fence: it sees the helper sleeping, or
        // the helper sees the new batch.
        fence(Ordering::SeqCst);
        if h.seq.load(Ordering::SeqCst) == seq {
            super::shared::futex(h.seq.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, seq, core::ptr::null());
        }
        h.sleeping.store(false, Ordering::SeqCst);
        since = Instant::now();
    }
}

/// Issues every request of `reqs` non-blocking, sharing them with the
/// helper when it is free, and returns each one's outcome in `outs` (same
/// order). The caller holds the ring's submit lock for the whole call, on
/// the helper's behalf too.
pub(crate) fn issue_all(ctx: &Ctx, reqs: &mut [Req], outs: &mut Vec<Out>) {
    outs.clear();
    outs.resize_with(reqs.len(), Out::default);
    let job = Job { ctx, reqs: reqs.as_mut_ptr(), outs: outs.as_mut_ptr(), n: reqs.len(), next: Next(AtomicUsize::new(0)) };
    let shared = match helper() {
        Some(h) if cpu_free(h) && !h.taken.swap(true, Ordering::Acquire) => Some(h),
        _ => None,
    };
    if let Some(h) = shared {
        h.job.store(&job as *const Job as *mut Job, Ordering::SeqCst);
        h.seq.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if h.sleeping.load(Ordering::SeqCst) {
            super::shared::futex(h.seq.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1, core::ptr::null());
        }
    }
    work(&job);
    if let Some(h) = shared {
        h.job.store(core::ptr::null_mut(), Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // Once the helper has left the batch (it stops looking at it before
        // `active` drops), every read it claimed is done. They take about a
        // microsecond each; if it was preempted meanwhile, let it run.
        let mut spins = 0u32;
        while h.active.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 4096 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        h.taken.store(false, Ordering::Release);
    }
}

/// True when the buffers `ranges` (address, length) overlap anywhere. Sorts
/// `ranges`.
pub(crate) fn overlap(ranges: &mut [(u64, u64)]) -> bool {
    ranges.sort_unstable();
    ranges.windows(2).any(|w| w[0].0.saturating_add(w[0].1) > w[1].0)
}
