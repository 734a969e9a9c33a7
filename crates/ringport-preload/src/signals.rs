//! The program's signal handlers never run inside the engine.
//!
//! The engine takes locks and allocates, so a handler of the program's must
//! not run in the middle of it (the handler might make an io_uring call on
//! the same ring, or call `malloc`). The kernel's io_uring has no such
//! problem: a system call is not interrupted by a handler. Blocking every
//! signal around each served call would give the same guarantee, but costs
//! two `rt_sigprocmask` calls per call, a fifth of what a fast `enter`
//! costs in all. So instead, handlers are *deferred*:
//!
//! - While interception is active, the interposed `sigaction` and `signal`
//!   install [`wrapper`] in place of the program's handler and record the
//!   program's (handler, flags); handlers installed before, at
//!   [`wrap_existing`]. Queries report the program's handler.
//! - A thread serving a call marks itself in the engine ([`enter`]). A
//!   signal that reaches [`wrapper`] then is queued again to the same
//!   thread with its `siginfo` (`rt_tgsigqueueinfo`) and stays blocked when
//!   the wrapper returns (its bit is added to the interrupted context's
//!   saved mask): it waits, pending in the kernel, until [`leave`]
//!   unblocks it, and its handler then runs as usual, on the way out of
//!   the served call. Synchronous faults (SIGSEGV and the like raised by an
//!   instruction) are never deferred.
//! - A CQ wait that must sleep calls the gate ([`GATE`], given to the
//!   engine): it blocks signals, returns `EINTR` at once if one was
//!   deferred (the kernel's wait returns `EINTR` for a signal that arrived
//!   during the call), and otherwise sleeps in `ppoll` with the program's
//!   mask, so a signal wakes it as it wakes the kernel's wait.
//!
//! Only calls that sleep pay for signal-mask changes. Handlers installed
//! without the interposers (a raw `rt_sigaction`, glibc-internal calls such
//! as `sigset`) are not wrapped and can run inside the engine, as before
//! interception; see `docs/INTERCEPTION.md`.

use crate::interpose::real_sigaction;
use std::cell::Cell;
use std::sync::atomic::{compiler_fence, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Highest signal number the kernel's 64-bit mask holds.
const NSIG: usize = 64;

/// The program's handler for each signal the wrapper stands in for (0 = not
/// wrapped), index = signal number.
static HANDLER: [AtomicUsize; NSIG + 1] = [const { AtomicUsize::new(0) }; NSIG + 1];
/// The program's `sa_flags` for each wrapped signal.
static FLAGS: [AtomicI32; NSIG + 1] = [const { AtomicI32::new(0) }; NSIG + 1];

thread_local! {
    /// How many served calls this thread is inside (nested only through an
    /// unwrapped handler).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Signals deferred while in the engine (bit `n - 1` for signal `n`):
    /// pending and blocked until [`leave`]. Written by the wrapper, so an
    /// atomic (the compiler may not keep it in a register).
    static DEFERRED: AtomicU64 = const { AtomicU64::new(0) };
}

/// How many served calls the calling thread is inside (0 outside the
/// engine): for tests, which check that a handler of theirs never runs
/// inside it (`dlsym(RTLD_DEFAULT, "ringport_preload_in_engine")`).
#[no_mangle]
pub extern "C" fn ringport_preload_in_engine() -> u32 {
    DEPTH.with(|d| d.get())
}

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// The kernel's `rt_sigprocmask` on 64-bit masks, without touching
/// `errno`: the old mask.
fn sigprocmask(how: i32, set: Option<u64>) -> u64 {
    let mut old = 0u64;
    let setp = set.as_ref().map_or(0, |s| s as *const u64 as i64);
    // SAFETY: rt_sigprocmask with the kernel's 8-byte sets, both ours.
    unsafe { ringport_engine::rawsys::syscall6(libc::SYS_rt_sigprocmask, [how as i64, setp, &mut old as *mut u64 as i64, 8, 0, 0]) };
    old
}

/// Marks this thread as inside a served call; returns what [`leave`]
/// needs.
#[inline]
pub(crate) fn enter() -> u32 {
    let d = DEPTH.with(|d| d.replace(d.get() + 1));
    compiler_fence(Ordering::SeqCst);
    d
}

/// Ends a served call begun with [`enter`] (which returned `prev`). In the
/// outermost call, signals deferred meanwhile are unblocked, so their
/// handlers run now, if `unblock`; the SIGSYS handler passes false, as the
/// mask it returns to (the program's) unblocks them anyway.
#[inline]
pub(crate) fn leave(prev: u32, unblock: bool) {
    compiler_fence(Ordering::SeqCst);
    DEPTH.with(|d| d.set(prev));
    if prev != 0 {
        return;
    }
    let deferred = DEFERRED.with(|d| d.swap(0, Ordering::Relaxed));
    if deferred != 0 && unblock {
        sigprocmask(libc::SIG_UNBLOCK, Some(deferred));
    }
}

/// Every signal but SIGSYS (which must stay deliverable for the traps).
const ALL_BUT_SIGSYS: u64 = !(1u64 << (libc::SIGSYS - 1));

fn gate_block() -> Result<Option<(u64, u64)>, i32> {
    if DEPTH.with(|d| d.get()) == 0 {
        return Ok(None);
    }
    let cur = sigprocmask(libc::SIG_BLOCK, Some(ALL_BUT_SIGSYS));
    let deferred = DEFERRED.with(|d| d.load(Ordering::Relaxed));
    if deferred != 0 {
        sigprocmask(libc::SIG_SETMASK, Some(cur));
        return Err(libc::EINTR);
    }
    Ok(Some((cur, cur)))
}

fn gate_restore(cur: u64) {
    let deferred = DEFERRED.with(|d| d.load(Ordering::Relaxed));
    sigprocmask(libc::SIG_SETMASK, Some(cur | deferred));
}

/// The gate the engine calls around a CQ wait's sleep (see the module
/// documentation).
pub(crate) static GATE: ringport_engine::sys::SleepGate = ringport_engine::sys::SleepGate { block: gate_block, restore: gate_restore };

/// True for a signal raised by the instruction the thread was running (a
/// fault): its handler must run now, or the instruction faults again.
fn synchronous(sig: i32, info: *const libc::siginfo_t) -> bool {
    // SAFETY: the kernel's siginfo for this signal; si_code is common to all.
    let code = unsafe { (*info).si_code };
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP) && code > 0
}

/// The handler installed for every signal the program handles.
///
/// # Safety
/// Only the kernel calls this, as a SA_SIGINFO handler.
unsafe extern "C" fn wrapper(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    if DEPTH.with(|d| d.get()) > 0 && !synchronous(sig, info) {
        // SAFETY: the kernel's arguments, passed on.
        unsafe { defer(sig, info, uc.cast()) };
        return;
    }
    // SAFETY: as above.
    unsafe { call_program(sig, info, uc) };
}

/// Queues `sig` again to this thread and keeps it blocked once the wrapper
/// returns.
unsafe fn defer(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) {
    let b = bit(sig);
    if FLAGS[sig as usize].load(Ordering::Relaxed) & libc::SA_NODEFER != 0 {
        // Not blocked while its handler runs: block it before it is
        // queued again, or it would arrive here at once.
        sigprocmask(libc::SIG_BLOCK, Some(b));
    }
    // SAFETY: uc is the kernel's ucontext; its saved mask starts with the
    // kernel's 64-bit word, aligned for u64. The mask is what sigreturn
    // installs when this handler returns.
    unsafe { *(core::ptr::addr_of_mut!((*uc).uc_sigmask) as *mut u64) |= b };
    DEFERRED.with(|d| d.fetch_or(b, Ordering::Relaxed));
    // SAFETY: getpid/gettid cannot fail; rt_tgsigqueueinfo reads `info`,
    // the kernel's own siginfo for this signal.
    unsafe {
        let pid = ringport_engine::rawsys::syscall6(libc::SYS_getpid, [0; 6]);
        let tid = ringport_engine::rawsys::syscall6(libc::SYS_gettid, [0; 6]);
        let r = ringport_engine::rawsys::syscall6(libc::SYS_rt_tgsigqueueinfo, [pid, tid, sig as i64, info as i64, 0, 0]);
        if r < 0 {
            // The kernel takes a kernel-made siginfo back only from the
            // main thread: elsewhere the signal comes again without it.
            ringport_engine::rawsys::syscall6(libc::SYS_tgkill, [pid, tid, sig as i64, 0, 0, 0]);
        }
    }
}

/// Runs the program's handler for `sig`, as the kernel would have.
unsafe fn call_program(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let h = HANDLER[sig as usize].load(Ordering::Acquire);
    let flags = FLAGS[sig as usize].load(Ordering::Acquire);
    if h == 0 || h == libc::SIG_IGN || h == libc::SIG_DFL {
        // Unwrapped meanwhile (a race with sigaction): nothing to run.
        return;
    }
    if flags & libc::SA_RESETHAND != 0 {
        // The one-shot handler: the kernel would have reset the action on
        // delivery (the wrapper is installed without SA_RESETHAND, so that
        // a deferred signal still finds it).
        HANDLER[sig as usize].store(0, Ordering::Release);
        // SAFETY: a zeroed sigaction is SIG_DFL with no flags.
        unsafe {
            let sa: libc::sigaction = core::mem::zeroed();
            real_sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    // SAFETY: the program's own handler, with the kernel's arguments.
    unsafe { call_handler(h, flags, sig, info, uc) };
}

/// Calls handler `h` the way its `sa_flags` say: with the siginfo and
/// ucontext for SA_SIGINFO, with the signal number alone otherwise.
///
/// # Safety
/// `h` is a handler function the program installed with `flags`; the
/// other arguments are the kernel's for this signal.
pub(crate) unsafe fn call_handler(h: usize, flags: i32, sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program registered this as a SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = unsafe { core::mem::transmute(h) };
        f(sig, info, uc);
    } else {
        // SAFETY: the program registered this as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(h) };
        f(sig);
    }
}

/// True for signals whose handlers are wrapped: catchable, not SIGSYS
/// (ours), and in the kernel's 64.
fn wrappable(sig: i32) -> bool {
    (1..=NSIG as i32).contains(&sig) && sig != libc::SIGSYS && sig != libc::SIGKILL && sig != libc::SIGSTOP
}

/// `sigaction` while interception is active, for any signal but SIGSYS:
/// installs [`wrapper`] for a handler, records the program's, and reports
/// the program's action in `old`. `act`'s mask is used as it is (the caller
/// has taken SIGSYS out of it).
///
/// # Safety
/// As `sigaction(2)`.
pub(crate) unsafe fn sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> i32 {
    if !wrappable(sig) {
        // SAFETY: forwarding.
        return unsafe { real_sigaction(sig, act, old) };
    }
    let s = sig as usize;
    let (prev_h, prev_f) = (HANDLER[s].load(Ordering::Acquire), FLAGS[s].load(Ordering::Acquire));
    let r = if act.is_null() {
        // SAFETY: a query.
        unsafe { real_sigaction(sig, act, old) }
    } else {
        // SAFETY: act points to a sigaction (caller's contract).
        let mut a = unsafe { *act };
        let h = a.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            HANDLER[s].store(0, Ordering::Release);
        } else {
            FLAGS[s].store(a.sa_flags, Ordering::Release);
            HANDLER[s].store(h, Ordering::Release);
            a.sa_sigaction = wrapper as *const () as usize;
            a.sa_flags = (a.sa_flags | libc::SA_SIGINFO) & !libc::SA_RESETHAND;
        }
        // SAFETY: forwarding our copy.
        let r = unsafe { real_sigaction(sig, &a, old) };
        if r != 0 {
            FLAGS[s].store(prev_f, Ordering::Release);
            HANDLER[s].store(prev_h, Ordering::Release);
        }
        r
    };
    if r == 0 && !old.is_null() {
        // SAFETY: old points to a sigaction the call filled.
        let o = unsafe { &mut *old };
        if o.sa_sigaction == wrapper as *const () as usize && prev_h != 0 {
            let ours = libc::SA_SIGINFO | libc::SA_RESETHAND;
            o.sa_sigaction = prev_h;
            o.sa_flags = (o.sa_flags & !ours) | (prev_f & ours);
        }
    }
    r
}

/// Wraps the handlers installed before interception was (at install).
pub(crate) fn wrap_existing() {
    for sig in 1..=NSIG as i32 {
        if !wrappable(sig) {
            continue;
        }
        // SAFETY: a zeroed sigaction out-parameter, for a query.
        let mut cur: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: valid pointers; a query changes nothing.
        if unsafe { real_sigaction(sig, core::ptr::null(), &mut cur) } != 0 {
            continue;
        }
        let h = cur.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN || h == wrapper as *const () as usize {
            continue;
        }
        // SAFETY: re-installing the same action, wrapped.
        unsafe { sigaction(sig, &cur, core::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outside a served call the gate leaves waits alone.
    #[test]
    fn gate_is_a_no_op_outside_the_engine() {
        assert_eq!(gate_block(), Ok(None));
    }

    /// Inside one, it blocks signals and hands back the mask it found;
    /// with a deferred signal it refuses to sleep.
    #[test]
    fn gate_blocks_and_reports_deferred_signals() {
        let before = sigprocmask(libc::SIG_BLOCK, None);
        let d = enter();
        let Ok(Some((restore, sleep))) = gate_block() else { panic!("gate did not block") };
        assert_eq!((restore, sleep), (before, before));
        let unblockable = bit(libc::SIGKILL) | bit(libc::SIGSTOP);
        assert_eq!(sigprocmask(libc::SIG_BLOCK, None), (before | ALL_BUT_SIGSYS) & !unblockable);
        gate_restore(restore);
        assert_eq!(sigprocmask(libc::SIG_BLOCK, None), before);
        DEFERRED.with(|x| x.store(bit(libc::SIGUSR2), Ordering::Relaxed));
        assert_eq!(gate_block(), Err(libc::EINTR));
        assert_eq!(sigprocmask(libc::SIG_BLOCK, None), before);
        DEFERRED.with(|x| x.store(0, Ordering::Relaxed));
        leave(d, true);
    }
}
