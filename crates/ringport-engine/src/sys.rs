//! The three io_uring system calls, served by the engine, with the kernel's
//! signatures and return convention (a value, or `-errno`).
//!
//! These take raw program pointers and never trust them: every read and
//! write through one is fault-checked. They are what the interception
//! library calls from its SIGSYS handler, and what the differential tests
//! drive side by side with the real system calls.

use crate::abi::{self, io_uring_params, reg};
use crate::engine::enter::{self, RawArg};
use crate::engine::{register, registry, setup, uaccess, Errno};

/// Registered-ring slots the kernel allows per task (`IO_RINGFD_REG_MAX`).
const RINGFD_REG_MAX: u32 = 16;

fn result(r: Result<i32, Errno>) -> i32 {
    r.unwrap_or_else(Errno::neg)
}

/// `io_uring_setup(2)`: creates a ring and returns its fd, or `-errno`.
///
/// # Safety
/// None beyond the syscall's: `params` is read and written with fault
/// checks, so a bad pointer gives `-EFAULT`.
pub unsafe fn io_uring_setup(entries: u32, params: *mut io_uring_params) -> i32 {
    result((|| {
        // SAFETY: io_uring_params is plain data.
        let mut p: io_uring_params = unsafe { uaccess::read_pod(params as u64)? };
        let (_ctx, fd) = setup::create(entries, &mut p)?;
        if let Err(e) = uaccess::write_pod(params as u64, &p) {
            io_uring_close(fd);
            return Err(e);
        }
        Ok(fd)
    })())
}

/// `io_uring_enter(2)`.
///
/// # Safety
/// As [`io_uring_setup`]: `arg` is only read with fault checks.
pub unsafe fn io_uring_enter(
    fd: i32,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    arg: *const libc::c_void,
    argsz: usize,
) -> i32 {
    // SAFETY: the caller's contract, passed on.
    unsafe { enter_with(fd, || registry::lookup(fd), to_submit, min_complete, flags, arg, argsz) }
}

/// `io_uring_enter(2)` on ring `fd`, which the caller knows refers to the
/// ring whose memfd identity (`st_dev`, `st_ino`) is `ring`: the ring is
/// found without an `fstat` of `fd`. The interception library calls this
/// for the ring fds it handed out and tracks (it sees every close and
/// `dup2` of them); if no ring has that identity (any more), `fd` is looked
/// up as by [`io_uring_enter`].
///
/// # Safety
/// As [`io_uring_enter`].
pub unsafe fn io_uring_enter_known(
    fd: i32,
    ring: (u64, u64),
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    arg: *const libc::c_void,
    argsz: usize,
) -> i32 {
    let lookup = || registry::lookup_ident(ring).or_else(|_| registry::lookup(fd));
    // SAFETY: the caller's contract, passed on.
    unsafe { enter_with(fd, lookup, to_submit, min_complete, flags, arg, argsz) }
}

/// `io_uring_enter` with the ring found by `lookup`.
///
/// # Safety
/// As [`io_uring_enter`].
unsafe fn enter_with(
    fd: i32,
    lookup: impl FnOnce() -> Result<std::sync::Arc<crate::engine::Ctx>, Errno>,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    arg: *const libc::c_void,
    argsz: usize,
) -> i32 {
    result((|| {
        if flags & !enter::KNOWN_FLAGS != 0 {
            return Err(Errno(libc::EINVAL));
        }
        if flags & abi::IORING_ENTER_REGISTERED_RING != 0 {
            // No ring fd can be registered yet, so every slot is empty.
            return Err(Errno(if (fd as u32) < RINGFD_REG_MAX { libc::EBADF } else { libc::EINVAL }));
        }
        let ctx = lookup()?;
        let raw = match (arg as u64, flags & abi::IORING_ENTER_EXT_ARG != 0) {
            (ptr, true) => RawArg::Ext { ptr, size: argsz },
            (0, false) => RawArg::None,
            (ptr, false) => RawArg::Sigset { ptr, size: argsz },
        };
        enter::enter(&ctx, to_submit, min_complete, flags, raw)
    })())
}

/// `io_uring_register(2)`.
///
/// # Safety
/// As [`io_uring_setup`]: `arg` is only accessed with fault checks.
pub unsafe fn io_uring_register(fd: i32, opcode: u32, arg: *mut libc::c_void, nr_args: u32) -> i32 {
    result((|| {
        let use_registered = opcode & reg::USE_REGISTERED_RING != 0;
        let opcode = opcode & !reg::USE_REGISTERED_RING;
        if opcode >= abi::io_uring_register_op::IORING_REGISTER_LAST as u32 {
            return Err(Errno(libc::EINVAL));
        }
        if fd == -1 {
            // "Blind" registration serves only SEND_MSG_RING, not provided.
            return Err(Errno(libc::EINVAL));
        }
        if use_registered {
            return Err(Errno(if (fd as u32) < RINGFD_REG_MAX { libc::EBADF } else { libc::EINVAL }));
        }
        let ctx = registry::lookup(fd)?;
        register::register(&ctx, opcode, arg as u64, nr_args)
    })())
}

/// Closes a ring fd and releases the ring (the kernel frees a ring on the
/// last close of its file). Work still running finishes, posting into
/// memory the engine keeps until then. Returns 0 or `-errno`.
pub fn io_uring_close(fd: i32) -> i32 {
    if let Some(ctx) = registry::remove(fd) {
        ctx.close();
    }
    // SAFETY: closing an fd number the caller gave us to close.
    if unsafe { libc::close(fd) } == 0 {
        0
    } else {
        Errno::last().neg()
    }
}

/// The stand-in for ring `fd` in an epoll set (a memfd cannot be added to
/// one): an eventfd that is readable while CQEs wait and is written on every
/// post, so edge- and level-triggered watchers wake as for a kernel ring.
/// `ring` is the ring's identity where the caller knows it (see
/// [`io_uring_enter_known`]). Returns the eventfd (owned by the ring, which
/// closes it when it is freed) or `-errno` (EBADF: not a ring).
pub fn io_uring_ready_fd(fd: i32, ring: Option<(u64, u64)>) -> i32 {
    let ctx = match ring {
        Some(id) => registry::lookup_ident(id).or_else(|_| registry::lookup(fd)),
        None => registry::lookup(fd),
    };
    match ctx.and_then(|c| c.ready_eventfd()) {
        Ok(efd) => efd,
        Err(e) => e.neg(),
    }
}

/// A marker for the upper half of `close`'s argument: the kernel ignores
/// it (`close` takes an `unsigned int`), and the interception library's
/// seccomp filter lets such closes through untrapped. The engine closes
/// program fds for IORING_OP_CLOSE with it, so a close it makes (in a
/// worker, or inside the library's SIGSYS handler) never traps.
pub const CLOSE_BYPASS: u32 = 0x5250_4f52; // "RPOR"

pub use crate::engine::wait::SleepGate;

/// Puts `gate` around the sleep of every later CQ wait (`io_uring_enter`
/// with `IORING_ENTER_GETEVENTS` that finds too few CQEs). For an embedder
/// that serves io_uring calls with signals unblocked and defers the
/// program's handlers while the engine runs: the gate blocks signals
/// before the sleep, says whether one is already pending (the wait then
/// returns `EINTR`, as the kernel's does), and gives the mask to sleep
/// with, swapped in atomically by `ppoll`. A wait that never sleeps costs
/// nothing.
pub fn set_sleep_gate(gate: &'static SleepGate) {
    crate::engine::wait::set_sleep_gate(gate);
}

/// Call just before this process replaces its image with `exec`: as the
/// kernel cancels an exec'ing task's requests, the requests this process
/// has in flight on rings that other processes share (over `fork`) are
/// cancelled, timeouts included, and their CQEs posted for those processes
/// to reap. Does nothing in a `vfork` child, or when no ring is shared.
/// If the `exec` then fails, call [`exec_failed`]: the cancelled requests
/// stay cancelled (the kernel cancels only once the exec cannot fail).
pub fn before_exec() {
    crate::engine::shared::before_exec();
}

/// The `exec` announced by [`before_exec`] failed: this process goes on
/// using its shared rings (and answers cancels from the others again).
pub fn exec_failed() {
    crate::engine::shared::exec_failed();
}

/// True when `fd` is a ring served by ringport.
pub fn is_ring_fd(fd: i32) -> bool {
    registry::is_ring(fd)
}

/// What ringport needs to know of an open file: its type and identity, and
/// for a device file the device it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// `st_ino`.
    pub ino: u64,
    /// `st_dev`, the device the file lives on.
    pub dev: u64,
    /// `st_rdev`, the device a device file stands for.
    pub rdev: u64,
}

/// True when `fd` is an open file descriptor.
pub(crate) fn fd_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only inspects the fd table.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

/// True when `fd` is open, for writing (`write`) or for reading.
pub(crate) fn opened_for(fd: i32, write: bool) -> bool {
    // SAFETY: F_GETFL only reads the file's status flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_ACCMODE != if write { libc::O_RDONLY } else { libc::O_WRONLY }
}

/// The [`FileStat`] of `fd`, or None (not open).
///
/// Asked with `statx` for the type and inode only. A `fstat` would also ask
/// for the change time, and since Linux 6.13 (multigrain timestamps) a
/// change time that was looked at makes the file's next write take a
/// fine-grained timestamp: the inode is dirtied again by every write, and
/// an fsync that follows has one more block to write, one more device round
/// trip. The kernel's io_uring never looks at a file's times; neither may
/// ringport.
pub fn file_stat(fd: i32) -> Option<FileStat> {
    if fd < 0 {
        return None;
    }
    let mut stx = core::mem::MaybeUninit::<libc::statx>::uninit();
    // SAFETY: an empty path with AT_EMPTY_PATH names fd itself; stx is a
    // valid out-pointer. statx is async-signal-safe (a plain system call).
    let r = unsafe {
        libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_TYPE | libc::STATX_INO, stx.as_mut_ptr())
    };
    if r != 0 {
        return None;
    }
    // SAFETY: statx succeeded and filled stx.
    let x = unsafe { stx.assume_init() };
    Some(FileStat {
        mode: x.stx_mode as u32,
        ino: x.stx_ino,
        dev: libc::makedev(x.stx_dev_major, x.stx_dev_minor),
        rdev: libc::makedev(x.stx_rdev_major, x.stx_rdev_minor),
    })
}
