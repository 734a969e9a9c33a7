//! Hostile memory (ringport only): random bytes in the ring headers (head,
//! tail, masks, entries, flags, dropped), the SQ array and the SQEs, written
//! between submissions and, in a second phase, from another thread while the
//! engine is submitting.
//!
//! The engine must never panic, never hang, and never write memory it does
//! not own: every byte of the shared regions outside the fields the kernel
//! writes (SQ head, SQ flags, dropped, CQ tail, CQ overflow, the CQEs) must
//! keep the value the program last wrote, and buffers that no request could
//! legitimately fill stay untouched. With intact headers, every consumed SQ
//! entry is accounted for: one CQE per submitted SQE (an error CQE for a bad
//! one), or one count in `dropped`.
//!
//! Random SQEs are made harmless for the test process itself: their fds are
//! never readable (a write-only /dev/null, or numbers that are not open),
//! their opcodes are the implemented rw/nop/fsync ops or invalid ones, and
//! their addresses are random, unmapped, PROT_NONE or a canary buffer.
//! Every loop is bounded in count and time, waits carry short timeouts, and
//! a watchdog aborts the run if anything hangs.

mod common;

use common::*;
use ringport_engine::abi::{self, op};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set by the panic hook if any thread other than the tests' own (engine
/// workers and timers included) panics, even if the panic is caught.
static PANICKED: AtomicBool = AtomicBool::new(false);

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A failing assertion of a test fails that test by itself.
            let test_thread = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("hostile_"));
            if !test_thread {
                PANICKED.store(true, Ordering::SeqCst);
            }
            prev(info);
        }));
    });
}

// ---------------------------------------------------------------------------
// Shared regions with a shadow copy of what the program wrote
// ---------------------------------------------------------------------------

struct Region {
    name: &'static str,
    base: *mut u8,
    len: usize,
    /// Byte ranges the engine may write.
    allowed: Vec<(usize, usize)>,
    /// What the program last wrote (or the initial contents).
    shadow: Vec<u32>,
}

impl Region {
    fn word(&self, i: usize) -> &AtomicU32 {
        // SAFETY: i < len / 4 (callers check), the base is page-aligned and
        // the region is mapped for `len` bytes for the ring's life.
        unsafe { &*(self.base.add(i * 4) as *const AtomicU32) }
    }
    fn is_allowed(&self, byte: usize) -> bool {
        self.allowed.iter().any(|&(a, b)| byte >= a && byte < b)
    }
}

/// All of one ring's shared memory, every program write mirrored in shadows.
struct Scribe {
    regions: Vec<Region>,
    /// Indexes into `regions` of the SQ-side header, the CQ-side header and
    /// the SQEs (SQ and CQ are the same region with NO_MMAP).
    sq: usize,
    cq: usize,
    sqes: usize,
}

// SAFETY: the raw pointers refer to ring memory that outlives the Scribe;
// all accesses are atomic word operations.
unsafe impl Send for Scribe {}

impl Scribe {
    fn new(r: &Ring) -> Scribe {
        let ps = page_size();
        let round = |l: usize| l.div_ceil(ps) * ps;
        let (so, co) = (r.p.sq_off, r.p.cq_off);
        let sq_allowed = vec![
            (so.head as usize, so.head as usize + 4),
            (so.flags as usize, so.flags as usize + 4),
            (so.dropped as usize, so.dropped as usize + 4),
        ];
        let cq_allowed = vec![
            (co.tail as usize, co.tail as usize + 4),
            (co.overflow as usize, co.overflow as usize + 4),
            (
                co.cqes as usize,
                co.cqes as usize + r.p.cq_entries as usize * r.cqe_size,
            ),
        ];
        let mut regions = Vec::new();
        let (sq, cq, sqes);
        match r.user_memory() {
            Some(((_, rings_len), (_, sqes_len))) => {
                let mut allowed = sq_allowed;
                allowed.extend(cq_allowed);
                regions.push(Region {
                    name: "rings",
                    base: r.sq,
                    len: rings_len,
                    allowed,
                    shadow: Vec::new(),
                });
                regions.push(Region {
                    name: "SQEs",
                    base: r.sqes,
                    len: sqes_len,
                    allowed: vec![],
                    shadow: Vec::new(),
                });
                (sq, cq, sqes) = (0, 0, 1);
            }
            None => {
                regions.push(Region {
                    name: "SQ ring",
                    base: r.sq,
                    len: round(r.sq_len),
                    allowed: sq_allowed,
                    shadow: Vec::new(),
                });
                regions.push(Region {
                    name: "CQ ring",
                    base: r.cq,
                    len: round(r.cq_len),
                    allowed: cq_allowed,
                    shadow: Vec::new(),
                });
                regions.push(Region {
                    name: "SQEs",
                    base: r.sqes,
                    len: round(r.sqes_len),
                    allowed: vec![],
                    shadow: Vec::new(),
                });
                (sq, cq, sqes) = (0, 1, 2);
            }
        }
        for reg in &mut regions {
            reg.shadow = (0..reg.len / 4)
                .map(|i| reg.word(i).load(Ordering::Acquire))
                .collect();
        }
        Scribe {
            regions,
            sq,
            cq,
            sqes,
        }
    }

    /// A program write of one word.
    fn write(&mut self, region: usize, off: usize, v: u32) {
        let reg = &mut self.regions[region];
        let i = off / 4;
        assert!(
            off.is_multiple_of(4) && i < reg.shadow.len(),
            "write outside {}: {off:#x}",
            reg.name
        );
        reg.word(i).store(v, Ordering::Release);
        reg.shadow[i] = v;
    }

    fn read(&self, region: usize, off: usize) -> u32 {
        self.regions[region].word(off / 4).load(Ordering::Acquire)
    }

    /// Every word outside the engine's fields that differs from what the
    /// program wrote: (region, offset, expected, found).
    fn foreign_writes(&self) -> Vec<(&'static str, usize, u32, u32)> {
        let mut out = Vec::new();
        for reg in &self.regions {
            for (i, &want) in reg.shadow.iter().enumerate() {
                if reg.is_allowed(i * 4) {
                    continue;
                }
                let got = reg.word(i).load(Ordering::Acquire);
                if got != want {
                    out.push((reg.name, i * 4, want, got));
                }
            }
        }
        out
    }

    /// One random word write anywhere in the shared memory: headers (often),
    /// the SQ array, the SQEs or the CQEs. SQE words are kept harmless (see
    /// the module comment): opcode byte from the safe set, fd never small.
    fn scribble(&mut self, rng: &mut Rng, r: &Ring) {
        let pick = rng.below(100);
        let (region, off) = if pick < 45 {
            // A header field of the SQ or CQ side (including the other view's
            // dead copies of them on mmap'ed rings).
            let region = if rng.chance(50) { self.sq } else { self.cq };
            (region, 4 * rng.below(16) as usize)
        } else if pick < 65 && r.has_sq_array() {
            (
                self.sq,
                r.p.sq_off.array as usize + 4 * rng.below(r.p.sq_entries as u64) as usize,
            )
        } else if pick < 95 {
            (
                self.sqes,
                4 * rng.below((r.p.sq_entries as usize * r.sqe_size / 4) as u64) as usize,
            )
        } else {
            let cqes = r.p.cq_off.cqes as usize;
            (
                self.cq,
                cqes + 4 * rng.below((r.p.cq_entries as usize * r.cqe_size / 4) as u64) as usize,
            )
        };
        let mut v = random_value(rng);
        if region == self.sqes {
            match (off % r.sqe_size) / 4 {
                // Opcode from the safe set; never IOSQE_FIXED_FILE (bit 8
                // of the word), which would turn the fd into a table index.
                0 => {
                    v = (v & !0xff & !((abi::IOSQE_FIXED_FILE as u32) << 8))
                        | safe_opcode(rng) as u32
                }
                1 => v |= 0x4000_0000,
                _ => {}
            }
        }
        self.write(region, off, v);
    }
}

fn random_value(rng: &mut Rng) -> u32 {
    match rng.below(6) {
        0 => 0,
        1 => u32::MAX,
        2 => rng.below(64) as u32,
        3 => (rng.below(64) as u32).wrapping_neg(),
        4 => 1 << rng.below(32),
        _ => rng.next_u32(),
    }
}

// ---------------------------------------------------------------------------
// Harmless random SQEs
// ---------------------------------------------------------------------------

const RW_OPS: [u8; 8] = [
    op::NOP,
    op::READ,
    op::WRITE,
    op::READV,
    op::WRITEV,
    op::READ_FIXED,
    op::WRITE_FIXED,
    op::FSYNC,
];

/// An implemented rw/nop/fsync opcode, or one no kernel defines.
fn safe_opcode(rng: &mut Rng) -> u8 {
    if rng.chance(80) {
        RW_OPS[rng.below(RW_OPS.len() as u64) as usize]
    } else {
        op::LAST + rng.below(256 - op::LAST as u64) as u8
    }
}

/// Memory random SQEs may point at: none of it may ever be written.
struct Env {
    devnull: i32,
    /// Registered as fixed buffers 0 and 2; filled with a pattern.
    canary: Mem,
    /// Iovec arrays pointing at the canary, PROT_NONE and unmapped memory.
    iovecs: Mem,
    /// A reserved PROT_NONE range.
    none: Mem,
}

impl Env {
    fn new() -> Env {
        let devnull = open_path(std::path::Path::new("/dev/null"), libc::O_WRONLY);
        let mut canary = Mem::rw(4 * page_size());
        let pat = pattern(canary.len, 0x3c);
        canary.bytes_mut().copy_from_slice(&pat);
        let none = Mem::new(16 * page_size(), libc::PROT_NONE);
        let mut iovecs = Mem::rw(page_size());
        let n = iovecs.len / core::mem::size_of::<libc::iovec>();
        let mut rng = Rng::new(99);
        let targets = [canary.addr(), none.addr(), UNMAPPED, KERNEL_ADDR, 0];
        // SAFETY: the mapping holds n iovecs; we own it.
        let v = unsafe {
            core::slice::from_raw_parts_mut(iovecs.bytes_mut().as_mut_ptr() as *mut libc::iovec, n)
        };
        for e in v.iter_mut() {
            let t = targets[rng.below(targets.len() as u64) as usize];
            *e = libc::iovec {
                iov_base: (t + rng.below(4096)) as usize as *mut libc::c_void,
                iov_len: rng.below(8192) as usize,
            };
        }
        Env {
            devnull,
            canary,
            iovecs,
            none,
        }
    }

    fn canary_intact(&self) -> bool {
        self.canary.bytes() == pattern(self.canary.len, 0x3c).as_slice()
    }

    fn addr(&self, rng: &mut Rng, opcode: u8) -> u64 {
        if (opcode == op::READV || opcode == op::WRITEV) && rng.chance(60) {
            return self.iovecs.addr() + 16 * rng.below((self.iovecs.len / 16 - 64) as u64);
        }
        match rng.below(7) {
            0 => rng.next_u64(),
            1 => self.none.addr() + rng.below(self.none.len as u64),
            2 => self.canary.addr() + rng.below(self.canary.len as u64),
            3 => UNMAPPED,
            4 => KERNEL_ADDR - rng.below(1 << 20),
            5 => 0,
            _ => self.canary.addr(),
        }
    }

    /// A random SQE that cannot hurt the test process. With `fixed`, it may
    /// use IOSQE_FIXED_FILE with a small index: only where nothing can clear
    /// the flag afterwards (the index would then name one of our real fds).
    fn sqe(&self, rng: &mut Rng, user_data: u64, allow_skip: bool, fixed: bool) -> Sqe {
        let opcode = safe_opcode(rng);
        let mut flags = if rng.chance(70) {
            (rng.next_u32() as u8) & (abi::IOSQE_FIXED_FILE | abi::IOSQE_ASYNC)
        } else {
            rng.next_u32() as u8
        };
        if !allow_skip {
            flags &= !abi::IOSQE_CQE_SKIP_SUCCESS;
        }
        if !fixed {
            flags &= !abi::IOSQE_FIXED_FILE;
        }
        let fd = if flags & abi::IOSQE_FIXED_FILE != 0 {
            rng.below(8) as i32 - 2
        } else {
            match rng.below(3) {
                0 => self.devnull,
                1 => -1,
                _ => 0x4000_0000 | rng.next_u32() as i32,
            }
        };
        let len = if rng.chance(85) {
            rng.below(64) as u32
        } else {
            rng.next_u32()
        };
        let op_flags = match rng.below(4) {
            0 => rng.next_u32(),
            1 => 1 << rng.below(32),
            _ => 0,
        };
        Sqe {
            opcode,
            flags,
            ioprio: if rng.chance(85) {
                0
            } else {
                rng.next_u32() as u16
            },
            fd,
            off: if rng.chance(50) {
                rng.below(4096)
            } else {
                rng.next_u64()
            },
            addr: self.addr(rng, opcode),
            len,
            op_flags,
            user_data,
            buf_index: if rng.chance(85) {
                rng.below(4) as u16
            } else {
                rng.next_u32() as u16
            },
            personality: if rng.chance(90) {
                0
            } else {
                rng.next_u32() as u16
            },
            file_index: if rng.chance(85) { 0 } else { rng.next_u32() },
            addr3: if rng.chance(85) { 0 } else { rng.next_u64() },
            pad2: if rng.chance(85) { 0 } else { rng.next_u64() },
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        close_fd(self.devnull);
    }
}

fn sqe_words(s: &Sqe) -> [u32; 16] {
    let w = s.as_words();
    let mut out = [0u32; 16];
    for (i, x) in w.iter().enumerate() {
        out[2 * i] = *x as u32;
        out[2 * i + 1] = (*x >> 32) as u32;
    }
    out
}

/// Writes SQE `s` into slot `slot` through the scribe.
fn put_sqe(sc: &mut Scribe, r: &Ring, slot: u32, s: &Sqe) {
    let base = (slot & (r.p.sq_entries - 1)) as usize * r.sqe_size;
    for (i, w) in sqe_words(s).iter().enumerate() {
        sc.write(sc.sqes, base + 4 * i, *w);
    }
}

fn user_data_of(sc: &Scribe, r: &Ring, slot: u32) -> u64 {
    let base = (slot & (r.p.sq_entries - 1)) as usize * r.sqe_size + 32;
    sc.read(sc.sqes, base) as u64 | (sc.read(sc.sqes, base + 4) as u64) << 32
}

/// Takes every CQE (program-side head write through the scribe).
fn reap(sc: &mut Scribe, r: &Ring) -> Vec<Cqe> {
    let head = sc.read(sc.cq, r.p.cq_off.head as usize);
    let tail = sc.read(sc.cq, r.p.cq_off.tail as usize);
    let n = tail.wrapping_sub(head).min(r.p.cq_entries);
    let out = (0..n).map(|i| r.read_cqe(head.wrapping_add(i))).collect();
    sc.write(sc.cq, r.p.cq_off.head as usize, head.wrapping_add(n));
    out
}

/// enter, timed; every wait carries a timeout of at most 1 ms.
fn enter(r: &Ring, rng: &mut Rng, to_submit: u32) -> (i32, Duration) {
    let start = Instant::now();
    let ret = match rng.below(4) {
        0 => r.enter(to_submit, 0, 0),
        1 => r.enter(
            to_submit,
            rng.below(3) as u32,
            abi::IORING_ENTER_GETEVENTS | abi::IORING_ENTER_EXT_ARG,
        ),
        _ => r.enter_timeout(
            to_submit,
            rng.below(4) as u32,
            abi::IORING_ENTER_GETEVENTS,
            Duration::from_micros(rng.below(1000)),
        ),
    };
    (ret, start.elapsed())
}

fn check_ret(cfg: &str, ret: i32, to_submit: u32, took: Duration) {
    assert!(
        ret >= -4095 && ret as i64 <= to_submit as i64,
        "{cfg}: enter({to_submit}) returned {ret}"
    );
    assert!(
        took < Duration::from_secs(1),
        "{cfg}: enter({to_submit}) took {took:?}"
    );
}

fn check_memory(cfg: &str, phase: &str, sc: &Scribe, env: &Env) {
    let bad = sc.foreign_writes();
    assert!(
        bad.is_empty(),
        "{cfg} {phase}: the engine wrote program-owned ring memory (region, offset, wrote, found): {:x?}",
        &bad[..bad.len().min(8)]
    );
    assert!(
        env.canary_intact(),
        "{cfg} {phase}: a buffer no request could fill was written"
    );
    assert!(
        !PANICKED.load(Ordering::SeqCst),
        "{cfg} {phase}: a thread panicked"
    );
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------

/// Intact headers, random SQ array and SQEs: exact accounting.
fn phase_accounting(
    cfg: &str,
    r: &Ring,
    sc: &mut Scribe,
    env: &Env,
    rng: &mut Rng,
    budget: Duration,
) {
    let entries = r.p.sq_entries;
    let mut next_ud = 1u64 << 40;
    let mut expected: HashMap<u64, usize> = HashMap::new();
    let mut received: Vec<Cqe> = Vec::new();
    let mut total_dropped = 0u32;
    let mut tail = sc.read(sc.sq, r.p.sq_off.tail as usize);
    let start = Instant::now();
    let mut iters = 0;
    while start.elapsed() < budget && iters < 2000 {
        iters += 1;
        let head = sc.read(sc.sq, r.p.sq_off.head as usize);
        let room = entries - tail.wrapping_sub(head);
        let n = rng.below(room as u64 + 1) as u32;
        for _ in 0..n {
            let slot = tail & (entries - 1);
            put_sqe(sc, r, slot, &env.sqe(rng, next_ud, false, true));
            next_ud += 1;
            if r.has_sq_array() {
                let idx = match rng.below(10) {
                    0..=6 => slot,
                    7 => rng.below(entries as u64) as u32,
                    8 => entries + rng.below(8) as u32,
                    _ => random_value(rng) | entries,
                };
                sc.write(sc.sq, r.p.sq_off.array as usize + 4 * slot as usize, idx);
            }
            tail = tail.wrapping_add(1);
        }
        sc.write(sc.sq, r.p.sq_off.tail as usize, tail);
        let queued = tail.wrapping_sub(head);
        let to_submit = match rng.below(5) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.below(queued as u64 + 2) as u32,
        };
        // What the engine will find at each position, decided now.
        let plan: Vec<Option<u64>> = (0..queued)
            .map(|i| {
                let pos = head.wrapping_add(i);
                let slot = if r.has_sq_array() {
                    sc.read(
                        sc.sq,
                        r.p.sq_off.array as usize + 4 * (pos & (entries - 1)) as usize,
                    )
                } else {
                    pos & (entries - 1)
                };
                (slot < entries).then(|| user_data_of(sc, r, slot))
            })
            .collect();
        let dropped0 = sc.read(sc.sq, r.p.sq_off.dropped as usize);
        let (ret, took) = enter(r, rng, to_submit);
        check_ret(cfg, ret, to_submit, took);
        let head1 = sc.read(sc.sq, r.p.sq_off.head as usize);
        let dropped = sc
            .read(sc.sq, r.p.sq_off.dropped as usize)
            .wrapping_sub(dropped0);
        let consumed = head1.wrapping_sub(head);
        let submitted = ret.max(0) as u32;
        assert!(
            dropped <= 1,
            "{cfg}: one enter dropped {dropped} entries (a dropped entry ends the batch)"
        );
        assert_eq!(
            consumed,
            submitted + dropped,
            "{cfg}: head moved {consumed}, submitted {submitted}, dropped {dropped}"
        );
        assert!(
            consumed <= queued.min(to_submit),
            "{cfg}: consumed {consumed} of {queued} queued, to_submit {to_submit}"
        );
        for (i, p) in plan.iter().take(consumed as usize).enumerate() {
            match p {
                Some(ud) => *expected.entry(*ud).or_default() += 1,
                None => assert!(
                    dropped == 1 && i + 1 == consumed as usize,
                    "{cfg}: a bad index at {i} of {consumed} was consumed without being dropped last"
                ),
            }
        }
        if dropped == 1 {
            assert!(
                plan[consumed as usize - 1].is_none(),
                "{cfg}: dropped a valid entry"
            );
        }
        total_dropped += dropped;
        received.extend(reap(sc, r));
        check_memory(cfg, "accounting", sc, env);
    }
    // Put back what was not consumed: set the tail to the head.
    let head = sc.read(sc.sq, r.p.sq_off.head as usize);
    sc.write(sc.sq, r.p.sq_off.tail as usize, head);
    // Drain: every submitted SQE has exactly one CQE.
    let want: usize = expected.values().sum();
    let deadline = Instant::now() + Duration::from_secs(3);
    while received.len() < want && Instant::now() < deadline {
        r.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(20));
        received.extend(reap(sc, r));
    }
    std::thread::sleep(Duration::from_millis(5));
    r.enter(0, 0, abi::IORING_ENTER_GETEVENTS);
    received.extend(reap(sc, r));
    let mut got: HashMap<u64, usize> = HashMap::new();
    for c in &received {
        *got.entry(c.user_data).or_default() += 1;
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, _)| !expected.contains_key(k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{cfg}: CQE accounting: {} expected, {} received; wrong counts {missing:?}; unexpected {extra:x?}",
        want,
        received.len()
    );
    println!("{cfg}: accounting: {iters} enters, {want} SQEs submitted and completed, {total_dropped} dropped");
    check_memory(cfg, "accounting drain", sc, env);
}

/// Random writes to the headers and everything else between enters.
fn phase_headers(cfg: &str, r: &Ring, sc: &mut Scribe, env: &Env, rng: &mut Rng, budget: Duration) {
    let start = Instant::now();
    let mut iters = 0;
    while start.elapsed() < budget && iters < 3000 {
        iters += 1;
        for _ in 0..rng.below(6) {
            sc.scribble(rng, r);
        }
        // Sometimes queue sane-looking SQEs too.
        if rng.chance(50) {
            let tail = sc.read(sc.sq, r.p.sq_off.tail as usize);
            put_sqe(sc, r, tail, &env.sqe(rng, iters as u64, true, false));
            if r.has_sq_array() {
                sc.write(
                    sc.sq,
                    r.p.sq_off.array as usize + 4 * (tail & (r.p.sq_entries - 1)) as usize,
                    tail & (r.p.sq_entries - 1),
                );
            }
            sc.write(sc.sq, r.p.sq_off.tail as usize, tail.wrapping_add(1));
        }
        let to_submit = match rng.below(4) {
            0 => 0,
            1 => rng.next_u32(),
            _ => rng.below(2 * r.p.sq_entries as u64) as u32,
        };
        let (ret, took) = enter(r, rng, to_submit);
        check_ret(cfg, ret, to_submit, took);
        if rng.chance(70) {
            reap(sc, r);
        }
        check_memory(cfg, "header corruption", sc, env);
    }
    println!("{cfg}: header corruption: {iters} enters");
}

/// A second thread scribbles while this one submits and reaps.
fn phase_concurrent(
    cfg: &str,
    r: &Ring,
    sc: Scribe,
    env: &Env,
    seed: u64,
    budget: Duration,
) -> Scribe {
    let sc = Mutex::new(sc);
    let stop = AtomicBool::new(false);
    let scribbles = std::thread::scope(|s| {
        let th = s.spawn(|| {
            let mut rng = Rng::new(seed ^ 0x5eed);
            let mut n = 0u64;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < budget + Duration::from_secs(1)
            {
                let mut g = sc.lock().unwrap();
                for _ in 0..8 {
                    g.scribble(&mut rng, r);
                }
                drop(g);
                n += 8;
                if n.is_multiple_of(512) {
                    std::thread::yield_now();
                }
            }
            n
        });
        let mut rng = Rng::new(seed);
        let start = Instant::now();
        let mut iters = 0;
        while start.elapsed() < budget && iters < 20_000 {
            iters += 1;
            {
                let mut g = sc.lock().unwrap();
                for _ in 0..rng.below(4) {
                    let tail = g.read(g.sq, r.p.sq_off.tail as usize);
                    put_sqe(
                        &mut g,
                        r,
                        tail,
                        &env.sqe(&mut rng, iters as u64, true, false),
                    );
                    if r.has_sq_array() {
                        let sq = g.sq;
                        g.write(
                            sq,
                            r.p.sq_off.array as usize + 4 * (tail & (r.p.sq_entries - 1)) as usize,
                            tail & (r.p.sq_entries - 1),
                        );
                    }
                    let sq = g.sq;
                    g.write(sq, r.p.sq_off.tail as usize, tail.wrapping_add(1));
                }
            }
            let to_submit = match rng.below(4) {
                0 => 0,
                1 => rng.next_u32(),
                _ => rng.below(2 * r.p.sq_entries as u64) as u32,
            };
            let (ret, took) = enter(r, &mut rng, to_submit);
            check_ret(cfg, ret, to_submit, took);
            let mut g = sc.lock().unwrap();
            if rng.chance(70) {
                reap(&mut g, r);
            }
            check_memory(cfg, "concurrent scribbling", &g, env);
        }
        stop.store(true, Ordering::Relaxed);
        let n = th.join().expect("scribbler");
        println!("{cfg}: concurrent: {iters} enters against {n} scribbled words");
        n
    });
    assert!(scribbles > 0);
    sc.into_inner().unwrap()
}

/// Repairs the headers and proves the ring still works: a NOP goes through.
fn recover(cfg: &str, r: &Ring, sc: &mut Scribe) {
    let (so, co) = (r.p.sq_off, r.p.cq_off);
    let entries = r.p.sq_entries;
    sc.write(sc.sq, so.ring_mask as usize, entries - 1);
    sc.write(sc.sq, so.ring_entries as usize, entries);
    sc.write(sc.cq, co.ring_mask as usize, r.p.cq_entries - 1);
    sc.write(sc.cq, co.ring_entries as usize, r.p.cq_entries);
    sc.write(sc.cq, co.flags as usize, 0);
    // Every slot a harmless NOP, every array entry valid.
    for slot in 0..entries {
        put_sqe(sc, r, slot, &Sqe::nop(0xdead_0000 + slot as u64));
        if r.has_sq_array() {
            sc.write(sc.sq, so.array as usize + 4 * slot as usize, slot);
        }
    }
    // Learn the engine's own head: one submission makes it publish it.
    let head = sc.read(sc.sq, so.head as usize);
    sc.write(sc.sq, so.tail as usize, head.wrapping_add(1));
    r.enter(1, 0, 0);
    let head = sc.read(sc.sq, so.head as usize);
    sc.write(sc.sq, so.tail as usize, head);
    // Drain everything, including any backlog.
    let deadline = Instant::now() + Duration::from_secs(3);
    let tail = sc.read(sc.cq, co.tail as usize);
    sc.write(sc.cq, co.head as usize, tail);
    while Instant::now() < deadline {
        r.enter_timeout(0, 0, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(1));
        let n = reap(sc, r).len();
        if n == 0 && r.sq_flags().load(Ordering::Acquire) & abi::IORING_SQ_CQ_OVERFLOW == 0 {
            std::thread::sleep(Duration::from_millis(10));
            if reap(sc, r).is_empty() {
                break;
            }
        }
    }
    // The proof: one NOP, submitted and completed.
    let tail = sc.read(sc.sq, so.tail as usize);
    put_sqe(sc, r, tail, &Sqe::nop(0x600d));
    if r.has_sq_array() {
        sc.write(
            sc.sq,
            so.array as usize + 4 * (tail & (entries - 1)) as usize,
            tail & (entries - 1),
        );
    }
    sc.write(sc.sq, so.tail as usize, tail.wrapping_add(1));
    let ret = r.enter_timeout(1, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_secs(1));
    assert_eq!(
        ret, 1,
        "{cfg}: after recovery, a NOP could not be submitted"
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !seen.iter().any(|c: &Cqe| c.user_data == 0x600d) && Instant::now() < deadline {
        seen.extend(reap(sc, r));
        r.enter_timeout(0, 1, abi::IORING_ENTER_GETEVENTS, Duration::from_millis(20));
    }
    let c = seen
        .iter()
        .find(|c| c.user_data == 0x600d)
        .unwrap_or_else(|| panic!("{cfg}: the recovery NOP never completed"));
    assert_eq!(c.res, 0, "{cfg}: recovery NOP");
}

fn run_config(name: &str, entries: u32, p: abi::io_uring_params, seed: u64) {
    let env = Env::new();
    let r = Ring::with_params(&RINGPORT, entries, p)
        .unwrap_or_else(|e| panic!("{name}: setup: {}", errname(e)));
    // Files [devnull, -, devnull, -] and buffers [canary, -, canary].
    assert_eq!(r.register_files(&[env.devnull, -1, env.devnull, -1]), 0);
    let ca = env.canary.addr();
    let cl = env.canary.len as u64;
    assert_eq!(
        r.register_buffers(&[(ca, cl), (0, 0), (ca + 4096, 4096)]),
        0
    );
    let mut sc = Scribe::new(&r);
    let mut rng = Rng::new(seed);
    phase_accounting(
        name,
        &r,
        &mut sc,
        &env,
        &mut rng,
        Duration::from_millis(250),
    );
    recover(name, &r, &mut sc);
    phase_headers(
        name,
        &r,
        &mut sc,
        &env,
        &mut rng,
        Duration::from_millis(250),
    );
    recover(name, &r, &mut sc);
    let mut sc = phase_concurrent(
        name,
        &r,
        sc,
        &env,
        seed.wrapping_mul(31),
        Duration::from_millis(400),
    );
    recover(name, &r, &mut sc);
    check_memory(name, "end", &sc, &env);
    drop(r);
}

fn configs() -> Vec<(&'static str, u32, abi::io_uring_params)> {
    use abi::*;
    vec![
        ("default 8", 8, params(0, 0)),
        ("NO_SQARRAY 8", 8, params(IORING_SETUP_NO_SQARRAY, 0)),
        (
            "SQE128|CQE32, cq 4",
            4,
            params(
                IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | IORING_SETUP_CQSIZE,
                4,
            ),
        ),
        ("NO_MMAP 8", 8, params(IORING_SETUP_NO_MMAP, 0)),
        (
            "SUBMIT_ALL 2, cq 2",
            2,
            params(IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE, 2),
        ),
    ]
}

#[test]
fn hostile_ring_memory() {
    install_panic_hook();
    let seed = std::env::var("RINGPORT_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1234_5678_9abc_def1u64);
    println!("hostile_ring_memory: seed {seed} (set RINGPORT_HOSTILE_SEED to replay)");
    watchdog("hostile_ring_memory", Duration::from_secs(60), || {
        for (i, (name, entries, p)) in configs().into_iter().enumerate() {
            run_config(name, entries, p, seed.wrapping_add(i as u64 * 0x9e37_79b9));
        }
    });
    assert!(!PANICKED.load(Ordering::SeqCst), "a thread panicked");
}

/// Hostile enter/register arguments on a sane ring: random pointers and
/// sizes never crash the engine and always give an errno or a result.
#[test]
fn hostile_call_arguments() {
    install_panic_hook();
    let env = Env::new();
    let r = Ring::new(&RINGPORT, 8, 0).expect("setup");
    let mut rng = Rng::new(77);
    // EXT_ARG blocks that are wrong in every way but never ask for a long
    // wait: bad timespec pointers, bad sigmasks, min_wait set, or a 1 ms ts.
    let ts = Box::new(abi::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    });
    let bad_ts = Box::new(abi::__kernel_timespec {
        tv_sec: -1,
        tv_nsec: -1,
    });
    let mut args = Vec::new();
    for sigmask in [0u64, UNMAPPED, KERNEL_ADDR, env.none.addr()] {
        for sigmask_sz in [0u32, 4, 8, 128, u32::MAX] {
            for tsp in [
                &*ts as *const _ as u64,
                &*bad_ts as *const _ as u64,
                UNMAPPED,
                KERNEL_ADDR,
                env.none.addr(),
            ] {
                for min_wait_usec in [0u32, 1] {
                    args.push(abi::io_uring_getevents_arg {
                        sigmask,
                        sigmask_sz,
                        min_wait_usec,
                        ts: tsp,
                    });
                }
            }
        }
    }
    let bad_addr = |rng: &mut Rng| match rng.below(5) {
        0 => rng.next_u64(),
        1 => env.none.addr() + rng.below(env.none.len as u64),
        2 => UNMAPPED,
        3 => KERNEL_ADDR - rng.below(1 << 20),
        _ => 0,
    };
    use abi::reg;
    let opcodes = [
        reg::PROBE,
        reg::BUFFERS,
        reg::UNREGISTER_BUFFERS,
        reg::FILES,
        reg::UNREGISTER_FILES,
        reg::FILES_UPDATE,
        reg::EVENTFD,
        reg::EVENTFD_ASYNC,
        reg::UNREGISTER_EVENTFD,
    ];
    watchdog("hostile_call_arguments", Duration::from_secs(30), || {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(500) && n < 20_000 {
            n += 1;
            let (addr, size) = if rng.chance(60) {
                let a = &args[rng.below(args.len() as u64) as usize];
                let size = if rng.chance(80) {
                    24
                } else {
                    rng.below(64) as usize
                };
                (a as *const _ as u64, size)
            } else {
                (
                    bad_addr(&mut rng),
                    if rng.chance(50) {
                        24
                    } else {
                        rng.next_u64() as usize
                    },
                )
            };
            // Random flags, but a GETEVENTS wait always goes through EXT_ARG
            // (a plain wait on an empty CQ would rightly sleep forever).
            let mut flags = rng.next_u32() & if rng.chance(50) { 0xff } else { u32::MAX };
            if flags & abi::IORING_ENTER_GETEVENTS != 0 {
                flags |= abi::IORING_ENTER_EXT_ARG;
            }
            let min = rng.below(3) as u32;
            let t0 = Instant::now();
            // SAFETY: hostile pointers are the point: the engine must
            // fault-check them; none points at memory we rely on.
            let ret = unsafe {
                RINGPORT.enter(
                    r.fd,
                    0,
                    min,
                    flags,
                    addr as usize as *const libc::c_void,
                    size,
                )
            };
            assert!(ret >= -4095, "enter returned {ret}");
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "enter with flags {flags:#x} took {:?}",
                t0.elapsed()
            );
            // Register: an implemented opcode, random argument and count.
            let opcode = opcodes[rng.below(opcodes.len() as u64) as usize];
            let nr = if rng.chance(50) {
                rng.below(8) as u32
            } else {
                rng.next_u32()
            };
            let arg = if opcode == reg::PROBE || rng.chance(50) {
                bad_addr(&mut rng)
            } else {
                env.addr(&mut rng, op::READV)
            };
            // SAFETY: as above; PROBE (the only one that writes) gets only
            // addresses that cannot be written.
            let ret =
                unsafe { RINGPORT.register(r.fd, opcode, arg as usize as *mut libc::c_void, nr) };
            assert!(ret >= -4095, "register {opcode} returned {ret}");
            // Undo anything that succeeded, so the next round starts clean.
            for un in [
                reg::UNREGISTER_BUFFERS,
                reg::UNREGISTER_FILES,
                reg::UNREGISTER_EVENTFD,
            ] {
                // SAFETY: no argument.
                unsafe { RINGPORT.register(r.fd, un, core::ptr::null_mut(), 0) };
            }
        }
        println!("hostile_call_arguments: {n} rounds");
    });
    assert!(env.canary_intact(), "a random call wrote the canary buffer");
    assert!(!PANICKED.load(Ordering::SeqCst), "a thread panicked");
    // The ring still works.
    assert_eq!(r.one(&Sqe::nop(5)).1.map(|c| c.res), Some(0));
}
