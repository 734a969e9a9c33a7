//! Rewriting hot `io_uring_enter` call sites (x86_64), so that a program's
//! inline `syscall` instructions stop paying for a signal on every call.
//!
//! A trapped enter costs a SIGSYS round trip (about 0.85 us here), which is
//! most of what a program like fio spends per I/O. The trap stays the way
//! every call is *caught*; after it has served an enter, the handler looks at
//! the instructions just before the `syscall`: if they are exactly
//! `mov $__NR_io_uring_enter, %eax; syscall` (what liburing and fio
//! compile to), it replaces the 5-byte `mov` with a `jmp` to a stub of its
//! own, so the next calls from that site go to the engine directly:
//!
//! - The site's page (one per site, near the site so a `jmp rel32` reaches
//!   it) steps over the 128-byte red zone and calls the common stub
//!   ([`crate::enter_stub`]), which saves the argument registers and the
//!   vector registers the engine may change, calls [`handler::serve_raw`]
//!   (signals handled as on the `syscall()` fast path), restores everything
//!   and returns; the page jumps back past the `syscall` with the result in
//!   `rax`, clobbering only `rcx` and `r11`, as the instruction does.
//! - A `jmp` to the `syscall` instruction itself (skipping the `mov`) still
//!   executes it and traps, so no path into the site changes meaning.
//! - The 5 bytes are swapped with one atomic aligned store (8 bytes, or 16
//!   with `cmpxchg16b`), so a thread running that code at the time sees the
//!   old or the new instruction, never half of each (the technique JIT
//!   compilers use to patch call sites). A site whose bytes do not fit one
//!   aligned word is patched with plain stores, and only while no other
//!   thread runs the program's code; otherwise it is left to the trap. The code page is made writable only
//!   for that store, and only if it is a private read-only executable
//!   mapping.
//!
//! `RINGPORT_REWRITE=0` turns it off. Where a step fails (no stub for the CPU, no page
//! within 2 GiB, `mprotect` refused), the site simply keeps trapping.
//!
//! [`handler::serve_raw`]: crate::handler

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Rewriting is on (set from `RINGPORT_REWRITE` at install).
pub static ENABLED: AtomicBool = AtomicBool::new(true);
/// Sites rewritten so far.
static SITES: AtomicUsize = AtomicUsize::new(0);
/// One rewrite at a time (others just leave their site for later).
static BUSY: AtomicBool = AtomicBool::new(false);

/// How many call sites have been rewritten in this process.
pub fn rewritten_sites() -> usize {
    SITES.load(Ordering::Relaxed)
}

/// Number of rewritten sites, for C programs and tests.
#[no_mangle]
pub extern "C" fn ringport_preload_rewritten_sites() -> libc::c_ulong {
    rewritten_sites() as libc::c_ulong
}

/// Called by the SIGSYS handler after it served an `io_uring_enter` that
/// trapped with the program about to resume at `resume`: rewrites that call
/// site if it can.
pub fn after_trap(resume: u64) {
    if !ENABLED.load(Ordering::Relaxed) || SKIP.iter().any(|s| s.load(Ordering::Relaxed) == resume) {
        return;
    }
    if BUSY.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let done = x86::rewrite(resume);
    #[cfg(not(target_arch = "x86_64"))]
    let done = false;
    if done {
        SITES.fetch_add(1, Ordering::Relaxed);
    } else {
        // Not a site we can rewrite: remember it, so that its next traps
        // skip the look (a read of program memory, a system call).
        let i = SKIP_NEXT.fetch_add(1, Ordering::Relaxed) % SKIP.len();
        SKIP[i].store(resume, Ordering::Relaxed);
    }
    BUSY.store(false, Ordering::Release);
}

/// Resume addresses of sites found not rewritable (a small ring; a site
/// that falls out is just looked at again).
static SKIP: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];
static SKIP_NEXT: AtomicUsize = AtomicUsize::new(0);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::arch;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// `mov $__NR_io_uring_enter, %eax; syscall`.
    const SITE: [u8; 7] = [0xb8, (arch::NR_IO_URING_ENTER & 0xff) as u8, (arch::NR_IO_URING_ENTER >> 8) as u8, 0, 0, 0x0f, 0x05];
    const PAGE: u64 = 4096;

    /// Machine code under construction, without allocating (the handler
    /// runs in signal context).
    struct Code {
        b: [u8; 64],
        n: usize,
    }

    impl Code {
        fn extend<I: IntoIterator<Item = u8>>(&mut self, xs: I) {
            for x in xs {
                self.b[self.n] = x;
                self.n += 1;
            }
        }
        fn len(&self) -> usize {
            self.n
        }
        fn bytes(&self) -> &[u8] {
            &self.b[..self.n]
        }
    }

    /// A site's page: steps over the red zone, calls the common stub
    /// ([`crate::enter_stub`]), steps back and jumps past the `syscall`;
    /// `back_rel(end)` gives a `jmp`'s displacement when the instruction
    /// ends `end` bytes into the page. With `check` (the second site form),
    /// it first checks that `eax` holds `__NR_io_uring_enter`, and else
    /// makes the system call `eax` names itself. Clobbers `r11` (and the
    /// flags), as the instruction does.
    fn site_code(check: bool, back_rel: impl Fn(usize) -> i32) -> Code {
        let mut c = Code { b: [0; 64], n: 0 };
        if check {
            c.extend([0x3d]); // cmp $NR,%eax
            c.extend(arch::NR_IO_URING_ENTER.to_le_bytes());
            c.extend([0x75, 0]); // jne other (set below)
        }
        c.extend([0x48, 0x8d, 0x64, 0x24, 0x80]); // lea -128(%rsp),%rsp
        c.extend([0x49, 0xbb]); // movabs $stub,%r11
        c.extend((crate::enter_stub::stub as *const () as u64).to_le_bytes());
        c.extend([0x41, 0xff, 0xd3]); // call *%r11
        c.extend([0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0]); // lea 128(%rsp),%rsp
        c.extend([0xe9]); // jmp back
        let rel = back_rel(c.len() + 4);
        c.extend(rel.to_le_bytes());
        if check {
            // other:
            c.b[6] = (c.len() - 7) as u8;
            c.extend([0x0f, 0x05]); // syscall
            c.extend([0xe9]); // jmp back
            let rel = back_rel(c.len() + 4);
            c.extend(rel.to_le_bytes());
        }
        c
    }

    /// A fresh page within `jmp rel32` reach of `near`.
    fn page_near(near: u64) -> Option<u64> {
        const STEP: u64 = 1 << 20;
        let base = near & !(PAGE - 1);
        for k in 1..1024u64 {
            for hint in [base.checked_sub(k * STEP), base.checked_add(k * STEP)].into_iter().flatten() {
                // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; a new
                // anonymous page is ours.
                let p = unsafe {
                    libc::mmap(
                        hint as *mut libc::c_void,
                        PAGE as usize,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                        -1,
                        0,
                    )
                };
                if p == libc::MAP_FAILED {
                    continue;
                }
                let p = p as u64;
                if p.abs_diff(near) < (1 << 31) - 2 * PAGE {
                    return Some(p);
                }
                // SAFETY: unmapping the page just mapped (an old kernel took
                // the hint as a hint and put it elsewhere).
                unsafe { libc::munmap(p as *mut libc::c_void, PAGE as usize) };
            }
        }
        None
    }

    /// The permissions of the mapping holding `addr`, from /proc/self/maps
    /// ("r-xp" and so on), read without allocating.
    fn perms_of(addr: u64) -> Option<[u8; 4]> {
        // SAFETY: open/read/close on a path we own the buffer of.
        let fd = unsafe { libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let mut buf = [0u8; 4096];
        let mut line = [0u8; 256];
        let mut len = 0usize;
        let mut found = None;
        'read: loop {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            for &b in &buf[..n as usize] {
                if b != b'\n' {
                    if len < line.len() {
                        line[len] = b;
                        len += 1;
                    }
                    continue;
                }
                if let Some(p) = line_perms(&line[..len], addr) {
                    found = Some(p);
                    break 'read;
                }
                len = 0;
            }
        }
        // SAFETY: closing our fd.
        unsafe { libc::close(fd) };
        found
    }

    /// For a maps line "start-end perms ...": its perms if it holds `addr`.
    fn line_perms(line: &[u8], addr: u64) -> Option<[u8; 4]> {
        let hex = |s: &[u8]| -> Option<u64> {
            let mut v = 0u64;
            for &c in s {
                v = v.checked_mul(16)? + (c as char).to_digit(16)? as u64;
            }
            Some(v)
        };
        let dash = line.iter().position(|&c| c == b'-')?;
        let sp = line.iter().position(|&c| c == b' ')?;
        let (start, end) = (hex(&line[..dash])?, hex(&line[dash + 1..sp])?);
        let perms = line.get(sp + 1..sp + 5)?;
        (start <= addr && addr < end).then(|| [perms[0], perms[1], perms[2], perms[3]])
    }

    /// How the bytes of a site are replaced.
    #[derive(Clone, Copy)]
    enum Store {
        /// One aligned 8-byte compare-and-swap of the word at this address.
        Word8(u64),
        /// One aligned 16-byte compare-and-swap (`cmpxchg16b`).
        Word16(u64),
        /// Plain stores: the bytes straddle an aligned 16-byte word, so no
        /// single store covers them. Only done when no other thread can be
        /// running the program's code ([`sole_program_thread`]).
        Plain,
    }

    impl Store {
        /// How `n` bytes at `at` can be replaced.
        fn for_bytes(at: u64, n: u64) -> Store {
            if at % 8 + n <= 8 {
                Store::Word8(at & !7)
            } else if at % 16 + n <= 16 {
                Store::Word16(at & !15)
            } else {
                Store::Plain
            }
        }
    }

    /// The longest dead padding the second site form uses.
    const MAX_PAD: usize = 15;

    /// Rewrites the site that resumes at `resume`. True when done.
    ///
    /// Two forms, tried in turn:
    /// 1. the `mov` becomes `jmp page` (its 5 bytes in one aligned word, or
    ///    any 5 bytes while no other thread runs program code);
    /// 2. where those 5 bytes straddle an aligned 16-byte word with other
    ///    program threads running, and the `syscall` is followed by `ret`
    ///    and then alignment padding (NOPs up to the next 16-byte boundary,
    ///    dead code: nothing falls through a `ret`, and compilers jump to
    ///    the aligned label after the padding, never into it), the padding
    ///    gets a `jmp page` and the 2-byte `syscall` becomes `jmp .+3` over
    ///    the `ret` into it. The `mov` still runs, so the page sees `eax`
    ///    = 426; the page checks it (a jump straight to the old `syscall`
    ///    with another number makes that system call from the page).
    ///    Debian's liburing 2.3 has its submit path's enter in this shape.
    pub(super) fn rewrite(resume: u64) -> bool {
        let Some(site) = resume.checked_sub(SITE.len() as u64) else { return false };
        if crate::handler::read_user::<[u8; 7]>(site) != Some(SITE) || !crate::enter_stub::usable() {
            return false;
        }
        // The `mov` must be an instruction of its own: a prefix byte just
        // before it (REX, operand or address size) could make it part of
        // another (`41 b8 ...` is a `mov` to r8d). A byte of a previous
        // instruction that looks like one only costs the rewrite.
        match crate::handler::read_user::<u8>(site - 1) {
            Some(0x40..=0x4f | 0x66 | 0x67) | None => return false,
            Some(_) => {}
        }
        if perms_of(site) != Some(*b"r-xp") || perms_of(resume - 1) != Some(*b"r-xp") {
            return false;
        }
        let mov = Store::for_bytes(site, 5);
        let padding = if matches!(mov, Store::Plain) { dead_padding(resume) } else { None };
        // Plain stores of the `mov` need this thread alone (asked once).
        let sole = matches!(mov, Store::Plain) && padding.is_none() && sole_program_thread();
        if matches!(mov, Store::Plain) && padding.is_none() && !sole {
            return false;
        }
        let Some(page) = page_near(site) else { return false };
        let code = site_code(padding.is_some(), |rel_end| (resume as i64 - (page as i64 + rel_end as i64)) as i32);
        // SAFETY: the page is ours, PAGE bytes long and writable; the code
        // fits in it; then it becomes read-only executable.
        let ok = unsafe {
            core::ptr::copy_nonoverlapping(code.bytes().as_ptr(), page as *mut u8, code.len());
            libc::mprotect(page as *mut libc::c_void, PAGE as usize, libc::PROT_READ | libc::PROT_EXEC) == 0
        };
        let done = ok
            && match padding {
                None => jmp_at(site, &SITE[..5], page, || sole || sole_program_thread()),
                Some((pad, nops)) => {
                    jmp_at(pad, &nops[..5], page, || true) && patch(resume - 2, &[0x0f, 0x05], &[0xeb, 0x01], || false)
                }
            };
        if !done {
            // SAFETY: our own page; nothing jumps to it (a padding `jmp`
            // written before a failed swap is dead code).
            unsafe { libc::munmap(page as *mut libc::c_void, PAGE as usize) };
        }
        done
    }

    /// Writes `jmp page` over the 5 bytes `expect` at `at` (see [`patch`]).
    fn jmp_at(at: u64, expect: &[u8], page: u64, plain_ok: impl Fn() -> bool) -> bool {
        let Ok(rel) = i32::try_from(page as i64 - (at as i64 + 5)) else { return false };
        let r = rel.to_le_bytes();
        patch(at, expect, &[0xe9, r[0], r[1], r[2], r[3]], plain_ok)
    }

    /// Dead padding after `syscall; ret` ending at `resume`: `ret`, then
    /// only NOP instructions up to the next 16-byte boundary, at least 5
    /// bytes, the first a long NOP (so not a function's patchable entry of
    /// single `nop`s), none an `int3` (a debugger's breakpoint, or a linker's
    /// fill before code that is not aligned), in the same mapping. Returns
    /// where it starts and its first 5 bytes.
    fn dead_padding(resume: u64) -> Option<(u64, [u8; 5])> {
        let end = (resume + 1 + 15) & !15;
        let len = (end - resume - 1) as usize;
        if !(5..=MAX_PAD).contains(&len) || perms_of(end - 1) != Some(*b"r-xp") {
            return None;
        }
        // The aligned 16 bytes that end at `end` hold the `ret` and the
        // padding (len <= 15), and nothing past it is read.
        let block = crate::handler::read_user::<[u8; 16]>(end - 16)?;
        let ret = 15 - len;
        let pad = &block[ret + 1..];
        let long_first = pad.iter().position(|&b| b != 0x66 && b != 0x2e).is_some_and(|i| pad[i] == 0x0f);
        let ok = block[ret] == 0xc3 && long_first && !pad.contains(&0xcc) && all_nops(pad);
        ok.then(|| (resume + 1, [pad[0], pad[1], pad[2], pad[3], pad[4]]))
    }

    /// True when `b` is exactly a sequence of NOP instructions, as
    /// assemblers pad with: `nop`, `xchg %ax,%ax`, `nopl`/`nopw` with
    /// any `66`/`2e` prefixes and zero displacement, or `int3`.
    fn all_nops(mut b: &[u8]) -> bool {
        while !b.is_empty() {
            let mut i = 0;
            while i < b.len() && (b[i] == 0x66 || b[i] == 0x2e) {
                i += 1;
            }
            let rest = &b[i..];
            let n = match rest {
                [0x90, ..] | [0xcc, ..] => 1,
                [0x0f, 0x1f, 0x00, ..] => 3,
                [0x0f, 0x1f, 0x40, 0, ..] => 4,
                [0x0f, 0x1f, 0x44, 0, 0, ..] => 5,
                [0x0f, 0x1f, 0x80, 0, 0, 0, 0, ..] => 7,
                [0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, ..] => 8,
                _ => return false,
            };
            if (rest[0] == 0xcc && i > 0) || i + n > b.len() {
                return false;
            }
            b = &b[i + n..];
        }
        true
    }

    /// Replaces the instruction bytes `expect` at `at` with `new` (1 to 8
    /// bytes), as other threads may be executing them: with one atomic
    /// aligned compare-and-swap (8 bytes, or 16 with `cmpxchg16b`) covering
    /// them, so a thread sees the old or the new instructions, never a mix
    /// (the technique JIT compilers use to patch call sites); with plain
    /// stores only where no aligned word covers them and `plain_ok()` says
    /// no other thread runs the program's code. Nothing is written unless
    /// the bytes are still `expect` (compared by the swap itself). The pages
    /// are a private read-only executable mapping (checked by the caller),
    /// writable only for the store.
    fn patch(at: u64, expect: &[u8], new: &[u8], plain_ok: impl Fn() -> bool) -> bool {
        let n = new.len() as u64;
        let mut store = Store::for_bytes(at, n);
        if matches!(store, Store::Word16(_)) && !cx16() {
            store = Store::Plain;
        }
        if matches!(store, Store::Plain) && !plain_ok() {
            return false;
        }
        let (word, wlen) = match store {
            Store::Word8(w) => (w, 8),
            Store::Word16(w) => (w, 16),
            Store::Plain => (at, n as usize),
        };
        let off = (at - word) as usize;
        let mut old = [0u8; 16];
        let read = match wlen {
            8 => crate::handler::read_user::<[u8; 8]>(word).map(|b| old[..8].copy_from_slice(&b)),
            16 => crate::handler::read_user::<[u8; 16]>(word).map(|b| old = b),
            _ => (0..wlen).try_for_each(|k| crate::handler::read_user::<u8>(at + k as u64).map(|b| old[k] = b)),
        };
        if read.is_none() || old[off..off + new.len()] != *expect {
            return false;
        }
        let mut next = old;
        next[off..off + new.len()].copy_from_slice(new);
        // The code pages holding the bytes (two when they cross a page).
        let first = at & !(PAGE - 1);
        let len = ((at + n - 1) & !(PAGE - 1)) - first + PAGE;
        let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
        // SAFETY: the pages are a private executable mapping of the
        // program's (checked by the caller); writable only for the store.
        if unsafe { libc::mprotect(first as *mut libc::c_void, len as usize, rwx) } != 0 {
            return false;
        }
        let swapped = match store {
            // SAFETY: `word` is 16-byte aligned and writable now, and the
            // CPU has cmpxchg16b; the compare keeps a concurrent change
            // (another library's) intact.
            Store::Word16(w) => unsafe { cas16(w, &old, &next) },
            Store::Word8(w) => {
                // SAFETY: `w` is 8-byte aligned and writable now.
                let a = unsafe { &*(w as *const AtomicU64) };
                let o = u64::from_le_bytes(old[..8].try_into().unwrap_or([0; 8]));
                let v = u64::from_le_bytes(next[..8].try_into().unwrap_or([0; 8]));
                a.compare_exchange(o, v, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            }
            Store::Plain => {
                // No other thread runs these bytes (plain_ok); this thread
                // is in the SIGSYS handler, not at them, and returns to the
                // program through sigreturn, which serialises instruction
                // fetch.
                // SAFETY: the bytes are writable now and nobody runs them.
                unsafe {
                    for (k, b) in new.iter().enumerate().rev() {
                        core::ptr::write_volatile((at + k as u64) as *mut u8, *b);
                    }
                }
                true
            }
        };
        // SAFETY: back to what perms_of found.
        unsafe { libc::mprotect(first as *mut libc::c_void, len as usize, libc::PROT_READ | libc::PROT_EXEC) };
        swapped
    }

    /// The CPU has `cmpxchg16b` (CPUID.1:ECX bit 13).
    fn cx16() -> bool {
        core::arch::x86_64::__cpuid(1).ecx & (1 << 13) != 0
    }

    /// True when the calling thread is the only one of the process that
    /// runs the program's code: every other task in `/proc/self/task` is
    /// one of the engine's, which name themselves `ringport-*` and never
    /// run program code. (A new thread of the engine carries its creator's
    /// name until it names itself, and then counts as the program's: the
    /// answer errs towards false.) While this thread is in the SIGSYS
    /// handler, no other program thread can appear: only a program thread
    /// could create one. Reads with raw calls into stack buffers.
    fn sole_program_thread() -> bool {
        // A vfork child (posix_spawn) or another CLONE_VM process shares
        // this memory with threads its /proc/self/task does not list.
        // SAFETY: getpid cannot fail.
        if unsafe { libc::getpid() } != crate::handler::OWNER_PID.load(Ordering::Relaxed) {
            return false;
        }
        // SAFETY: gettid cannot fail.
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
        // SAFETY: opening a directory of ours read-only.
        let dir = unsafe { libc::open(c"/proc/self/task".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if dir < 0 {
            return false;
        }
        let mut buf = [0u8; 4096];
        let mut sole = true;
        'scan: loop {
            // SAFETY: getdents64 into our buffer.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                sole = false;
                break;
            }
            if n == 0 {
                break;
            }
            let mut at = 0usize;
            while at + 19 < n as usize {
                // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
                let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
                if reclen == 0 {
                    sole = false;
                    break 'scan;
                }
                let name = &buf[at + 19..(at + reclen).min(n as usize)];
                let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                at += reclen;
                let Some(tid) = parse_dec(name) else { continue };
                if tid != me && !is_engine_thread(tid) {
                    sole = false;
                    break 'scan;
                }
            }
        }
        // SAFETY: closing our fd.
        unsafe { libc::close(dir) };
        sole
    }

    fn parse_dec(s: &[u8]) -> Option<u64> {
        if s.is_empty() {
            return None;
        }
        s.iter().try_fold(0u64, |v, &c| c.is_ascii_digit().then(|| v * 10 + (c - b'0') as u64))
    }

    /// True when task `tid` of this process is named `ringport-*`.
    fn is_engine_thread(tid: u64) -> bool {
        let mut path = [0u8; 64];
        let mut n = 0;
        for &c in b"/proc/self/task/" {
            path[n] = c;
            n += 1;
        }
        let mut digits = [0u8; 20];
        let (mut k, mut v) = (0, tid);
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in (0..k).rev() {
            path[n] = digits[i];
            n += 1;
        }
        for &c in b"/comm\0" {
            path[n] = c;
            n += 1;
        }
        // SAFETY: path is NUL-terminated; reading into our buffer.
        unsafe {
            let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                // Gone meanwhile: not running anything.
                return true;
            }
            let mut comm = [0u8; 32];
            let r = libc::read(fd, comm.as_mut_ptr().cast(), comm.len());
            libc::close(fd);
            r > 9 && comm.starts_with(b"ringport-")
        }
    }

    /// 16-byte compare-and-swap (`lock cmpxchg16b`) at the aligned `addr`.
    ///
    /// # Safety
    /// `addr` is 16-byte aligned and writable.
    unsafe fn cas16(addr: u64, old: &[u8; 16], new: &[u8; 16]) -> bool {
        let o = u128::from_le_bytes(*old);
        let n = u128::from_le_bytes(*new);
        let ok: u64;
        // cmpxchg16b compares rdx:rax with the memory and stores rcx:rbx.
        // rbx cannot be an asm operand, so it is saved in r8, loaded from
        // rsi, and put back; every register used is named explicitly (none
        // can be allocated to rbx).
        // SAFETY: `addr` is aligned and writable (the contract); see above.
        unsafe {
            core::arch::asm!(
                "mov r8, rbx",
                "mov rbx, rsi",
                "lock cmpxchg16b [rdi]",
                "setz r9b",
                "movzx r9, r9b",
                "mov rbx, r8",
                in("rdi") addr,
                in("rsi") n as u64,
                in("rcx") (n >> 64) as u64,
                inout("rax") o as u64 => _,
                inout("rdx") (o >> 64) as u64 => _,
                out("r8") _,
                out("r9") ok,
            );
        }
        ok != 0
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn maps_lines_parse() {
            let l = b"55d0c0a00000-55d0c0a23000 r-xp 00002000 fe:01 123 /usr/bin/x";
            assert_eq!(super::line_perms(l, 0x55d0c0a00010), Some(*b"r-xp"));
            assert_eq!(super::line_perms(l, 0x55d0c0a23000), None);
            assert_eq!(super::line_perms(b"garbage", 1), None);
        }

        #[test]
        fn stub_jumps_back_where_asked() {
            let code = super::site_code(false, |end| end as i32);
            let code = code.bytes();
            assert_eq!(code[code.len() - 5], 0xe9);
            let rel = i32::from_le_bytes(code[code.len() - 4..].try_into().unwrap());
            assert_eq!(rel as usize, code.len());
            let target = u64::from_le_bytes(code[7..15].try_into().unwrap());
            assert_eq!(target, crate::enter_stub::stub as *const () as u64);
            // The checking form: `jne` lands on the `syscall`.
            let checked = super::site_code(true, |end| end as i32);
            let checked = checked.bytes();
            assert_eq!(&checked[..5], &[0x3d, 0xaa, 0x01, 0, 0]);
            let other = 7 + checked[6] as usize;
            assert_eq!(&checked[other..other + 3], &[0x0f, 0x05, 0xe9]);
            assert_eq!(&checked[7..other - 4], &code[..code.len() - 4]);
        }

        #[test]
        fn padding_is_nops_only() {
            assert!(super::all_nops(&[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]));
            assert!(super::all_nops(&[0x0f, 0x1f, 0x40, 0, 0x90, 0xcc, 0xcc]));
            assert!(super::all_nops(&[0x66, 0x0f, 0x1f, 0x44, 0, 0]));
            assert!(!super::all_nops(&[0x0f, 0x1f, 0x84, 0, 0, 0, 0]));
            assert!(!super::all_nops(&[0x90, 0x48, 0x89, 0xc7]));
            assert!(!super::all_nops(&[0x66, 0xcc]));
            assert!(!super::all_nops(&[0x66]));
            assert!(!super::all_nops(&[0x0f, 0x1f, 0x40]));
        }
    }
}
