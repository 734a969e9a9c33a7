//! The ring-fd table: which fds the program holds as rings, and the
//! reserved fd range they live in.
//!
//! A program closes its ring with `close(ring_fd)`, often as a raw system
//! call (liburing does), so the library must see that close to free the
//! ring. Trapping every `close` would cost every program a signal per close;
//! instead ring fds are moved into a reserved range `[base, end)` high in the
//! fd table, and the filter traps `close`/`close_range` only there (and
//! `dup2`/`dup3` onto it). Since every change to a ring fd is then seen,
//! the table also tells the engine which ring an fd is without an `fstat`
//! ([`known_ident`]).
//!
//! Each ring has two fds:
//! - the **program fd** (`H`, in the range), handed to the program;
//! - the **engine fd** (`L`), the one the engine created and registered.
//!   It is kept open, close-on-exec, for the ring's life: the engine's
//!   registry remembers the number it returned, and keeping that number
//!   occupied means no later ring can be handed the same number.
//!
//! Slot `H - base` describes ring `H`. Slots are lock-free (a state word
//! claimed by compare-and-swap), because they are used from the SIGSYS
//! handler and from the `fork` child hook.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Most rings the reserved range holds at once.
pub const MAX_SLOTS: usize = 4096;

const EMPTY: u32 = 0;
const BUSY: u32 = 1;
const LIVE: u32 = 2;

/// One ring handed to the program.
pub struct Slot {
    state: AtomicU32,
    /// The engine fd (`L`).
    pub low: AtomicI32,
    /// The process that created the ring.
    pub pid: AtomicI32,
    /// Identity of the ring's memfd.
    pub dev: AtomicU64,
    /// Identity of the ring's memfd.
    pub ino: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU32::new(EMPTY),
            low: AtomicI32::new(0),
            pid: AtomicI32::new(0),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
        }
    }

    /// The memfd identity this slot records.
    pub fn ident(&self) -> (u64, u64) {
        (self.dev.load(Ordering::Relaxed), self.ino.load(Ordering::Relaxed))
    }

    /// True when the slot describes a ring.
    pub fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) == LIVE
    }

    /// Claims a live slot for closing; false if it is not live or someone
    /// else claimed it first.
    pub fn claim_live(&self) -> bool {
        self.state.compare_exchange(LIVE, BUSY, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Claims the slot for (re)filling, whatever it held. Returns the state
    /// it had (EMPTY or LIVE), or None if another thread is busy with it.
    pub fn claim_any(&self) -> Option<bool> {
        for from in [EMPTY, LIVE] {
            if self.state.compare_exchange(from, BUSY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Some(from == LIVE);
            }
        }
        None
    }

    /// Publishes a claimed slot as describing a ring.
    pub fn publish(&self, low: i32, pid: i32, ident: (u64, u64)) {
        self.low.store(low, Ordering::Relaxed);
        self.pid.store(pid, Ordering::Relaxed);
        self.dev.store(ident.0, Ordering::Relaxed);
        self.ino.store(ident.1, Ordering::Relaxed);
        self.state.store(LIVE, Ordering::Release);
    }

    /// Releases a claimed slot as empty.
    pub fn release(&self) {
        self.state.store(EMPTY, Ordering::Release);
    }

    /// Puts back a slot claimed with [`Slot::claim_live`] whose fd turned
    /// out to still be the ring.
    pub fn restore_live(&self) {
        self.state.store(LIVE, Ordering::Release);
    }
}

/// False once the table may no longer match the fd table: a
/// `close_range(CLOSE_RANGE_UNSHARE)` over the range closed fds in a
/// private copy of the fd table that the slots cannot follow. From then on
/// every lookup checks the fd itself ([`known_ident`] answers None).
static TRUSTED: AtomicBool = AtomicBool::new(true);

/// Stops trusting the table for lookups (see [`TRUSTED`]).
pub fn distrust() {
    TRUSTED.store(false, Ordering::Relaxed);
}

/// The memfd identity of ring `fd`, if `fd` is a ring fd this library
/// handed out and still tracks: then `fd` refers to that ring without
/// asking the kernel, because every way the program can make `fd` refer to
/// something else (`close`, `close_range`, `dup2`, `dup3` onto it) reaches
/// the library first. None otherwise (the caller then checks the fd).
pub fn known_ident(fd: i32) -> Option<(u64, u64)> {
    let s = slot(fd)?;
    if !TRUSTED.load(Ordering::Relaxed) || !s.is_live() {
        return None;
    }
    let id = s.ident();
    // The slot may have been closed and filled again while we read it:
    // the identity counts only if it is still live (a ring closed and
    // replaced in between has another identity, which the engine then
    // does not find, and falls back to the fd).
    s.is_live().then_some(id)
}

static SLOTS: [Slot; MAX_SLOTS] = [const { Slot::new() }; MAX_SLOTS];
static BASE: AtomicI32 = AtomicI32::new(0);
static END: AtomicI32 = AtomicI32::new(0);

/// The reserved range `[base, end)`; empty when ring fds are not moved.
pub fn range() -> (i32, i32) {
    (BASE.load(Ordering::Relaxed), END.load(Ordering::Relaxed))
}

/// Chooses the reserved range from `RLIMIT_NOFILE`: just below the range
/// the engine uses for its private duplicates of registered files
/// (`[max(limit/2, limit-4096), limit)`), so the two never overlap, and
/// high enough that programs rarely reach it; at most [`MAX_SLOTS`] fds and
/// a quarter of the fds below the engine's range. Called once, at install.
pub fn choose_range() -> (i32, i32) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is a valid out-pointer.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_cur.min(1 << 30) as i64
    } else {
        1024
    };
    let engine_floor = (limit / 2).max(limit - 4096).max(0);
    let n = (engine_floor / 4).min(MAX_SLOTS as i64);
    let (base, end) = if n >= 8 { ((engine_floor - n) as i32, engine_floor as i32) } else { (0, 0) };
    BASE.store(base, Ordering::Relaxed);
    END.store(end, Ordering::Relaxed);
    (base, end)
}

/// Grows the process's fd table to cover the reserved range now. The
/// kernel grows a table shared by several threads only after an RCU grace
/// period (milliseconds here); a ring's setup in a process whose table is
/// still small would pay that once the engine has started a thread, which
/// in a `fork` child (whose table is sized to the fds it inherited) means
/// every child that creates a ring. Called at install and in the `fork`
/// child hook, while the process has one thread. `close` closes a number
/// in the range without trapping. Async-signal-safe.
pub fn grow_table(close: impl Fn(i32)) {
    let (base, end) = range();
    if base >= end {
        return;
    }
    // SAFETY: opening "/" as a path-only fd and duplicating it: new fds of
    // ours, closed below.
    unsafe {
        let fd = libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let top = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, end - 1);
        if top >= 0 {
            close(top);
        }
        libc::close(fd);
    }
}

/// The slot for program fd `fd`, if `fd` is in the reserved range.
pub fn slot(fd: i32) -> Option<&'static Slot> {
    let (base, end) = range();
    if fd >= base && fd < end {
        SLOTS.get((fd - base) as usize)
    } else {
        None
    }
}

/// Every slot with its program fd.
pub fn slots() -> impl Iterator<Item = (i32, &'static Slot)> {
    let (base, end) = range();
    SLOTS.iter().enumerate().take((end - base).max(0) as usize).map(move |(i, s)| (base + i as i32, s))
}

/// The (st_dev, st_ino) of `fd`, if it is open (`statx` for the identity
/// only, async-signal-safe; see `ringport_engine::sys::file_stat`).
pub fn ident(fd: i32) -> Option<(u64, u64)> {
    ringport_engine::sys::file_stat(fd).map(|st| (st.dev, st.ino))
}

/// True when an open fd other than those in `exclude` refers to the memfd
/// `id`: a `dup` of a ring keeps the ring alive, as on the kernel. Scans
/// `/proc/self/fd` with raw `getdents64` (no allocation); without `/proc`,
/// answers false.
pub fn other_fd_refers(id: (u64, u64), exclude: [i32; 2]) -> bool {
    // SAFETY: opening a directory read-only; the result is checked.
    let dir = unsafe {
        libc::open(c"/proc/self/fd".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
    };
    if dir < 0 {
        return false;
    }
    let mut buf = [0u8; 4096];
    let mut found = false;
    // Bounded: one pass over the directory, at most 1 << 20 entries.
    let mut seen = 0usize;
    'scan: while seen < 1 << 20 {
        // SAFETY: getdents64 fills at most buf.len() bytes of buf.
        let n = unsafe { crate::interpose::real_syscall(libc::SYS_getdents64, dir as libc::c_long, buf.as_mut_ptr() as libc::c_long, buf.len() as libc::c_long, 0, 0, 0) };
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 {
                break 'scan;
            }
            let name = &buf[off + 19..(off + reclen).min(n as usize)];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            off += reclen;
            seen += 1;
            let Some(fd) = std::str::from_utf8(name).ok().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if fd == dir || exclude.contains(&fd) {
                continue;
            }
            if ident(fd) == Some(id) {
                found = true;
                break 'scan;
            }
        }
    }
    crate::handler::bypass_close(dir);
    found
}

/// A ring whose program fd was closed while a `dup` of it stayed open: it
/// lives on until no fd but its engine fd refers to it.
struct Orphan {
    state: AtomicU32,
    low: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
}

/// Most orphaned rings tracked at once; beyond that they live until exit.
const MAX_ORPHANS: usize = 64;
static ORPHANS: [Orphan; MAX_ORPHANS] = [const {
    Orphan { state: AtomicU32::new(EMPTY), low: AtomicI32::new(0), dev: AtomicU64::new(0), ino: AtomicU64::new(0) }
}; MAX_ORPHANS];
static ORPHAN_COUNT: AtomicU32 = AtomicU32::new(0);

/// Records ring `id`, whose engine fd is `low`, as orphaned. False if the
/// table is full.
pub fn add_orphan(low: i32, id: (u64, u64)) -> bool {
    for o in &ORPHANS {
        if o.state.compare_exchange(EMPTY, BUSY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            o.low.store(low, Ordering::Relaxed);
            o.dev.store(id.0, Ordering::Relaxed);
            o.ino.store(id.1, Ordering::Relaxed);
            o.state.store(LIVE, Ordering::Release);
            ORPHAN_COUNT.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Calls `free(low)` for every orphan no other fd refers to any more, and
/// forgets it. Cheap when there are none.
pub fn collect_orphans(free: impl Fn(i32)) {
    if ORPHAN_COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    for o in &ORPHANS {
        if o.state.compare_exchange(LIVE, BUSY, Ordering::AcqRel, Ordering::Acquire).is_err() {
            continue;
        }
        let low = o.low.load(Ordering::Relaxed);
        let id = (o.dev.load(Ordering::Relaxed), o.ino.load(Ordering::Relaxed));
        if ident(low) == Some(id) && other_fd_refers(id, [low, -1]) {
            o.state.store(LIVE, Ordering::Release);
            continue;
        }
        if ident(low) == Some(id) {
            free(low);
        }
        ORPHAN_COUNT.fetch_sub(1, Ordering::Relaxed);
        o.state.store(EMPTY, Ordering::Release);
    }
}
