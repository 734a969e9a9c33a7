//! Which fds are rings: the map from a ring fd to its engine context.
//!
//! A ring is recognised by the identity of its memfd (device and inode), not
//! by the fd number alone, so a `dup`ed or inherited ring fd finds its ring
//! and a reused fd number never does.
//!
//! Across `fork`: the prepare hook holds the registry (read) so that the
//! child's copy is whole, and marks every ring inherited (`shared.rs`). The
//! child starts an empty registry and keeps its parent's as a *generation*
//! (up to [`GENERATIONS`] of them, for grandchildren). The first time the
//! child names an inherited ring, it adopts it: a context of its own on the
//! same shared memory ([`Ctx::adopt`]).

use super::{Ctx, Errno};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

pub(crate) struct Entry {
    /// The fd the ring was created with (informational: lookups go by identity).
    #[allow(dead_code)]
    fd: i32,
    ctx: Arc<Ctx>,
}

type Table = RwLock<Vec<Entry>>;

/// The process's rings (empty in a fork child until it adopts its parent's).
pub(crate) static RINGS: super::global::Global<Table> = super::global::Global::new(|| RwLock::new(Vec::new()));

/// How many ancestors' registries a process remembers.
const GENERATIONS: usize = 8;

/// The registries of the processes this one was forked from, newest first
/// (copies made at the fork; never freed, never written).
static INHERITED: [AtomicPtr<Table>; GENERATIONS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; GENERATIONS];

thread_local! {
    /// The registry read lock the fork prepare hook holds.
    static FORK_HOLD: std::cell::RefCell<Option<RwLockReadGuard<'static, Vec<Entry>>>> = const { std::cell::RefCell::new(None) };
}

/// The rings this process uses that other processes share.
pub(crate) fn shared_rings() -> Vec<Arc<Ctx>> {
    let Some(t) = RINGS.peek() else { return Vec::new() };
    let v = t.read().unwrap_or_else(|e| e.into_inner());
    shared_of(&v)
}

fn shared_of(v: &[Entry]) -> Vec<Arc<Ctx>> {
    v.iter().filter(|e| e.ctx.shm.is_inherited() && !e.ctx.closed.load(Ordering::Acquire)).map(|e| e.ctx.clone()).collect()
}

/// [`shared_rings`] for `exec`, which a signal handler may call: the
/// registry is only tried, for up to 10 ms (the handler's own thread may
/// be the one holding it), and None if it stayed busy.
pub(crate) fn shared_rings_try() -> Option<Vec<Arc<Ctx>>> {
    let Some(t) = RINGS.peek() else { return Some(Vec::new()) };
    let until = std::time::Instant::now() + std::time::Duration::from_millis(10);
    loop {
        match t.try_read() {
            Ok(v) => return Some(shared_of(&v)),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(shared_of(&e.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < until => std::thread::yield_now(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

/// `fork` prepare hook: holds the registry and marks every ring inherited.
pub(crate) fn before_fork() {
    super::shared::arm_exit_hook();
    let g = RINGS.get().read().unwrap_or_else(|e| e.into_inner());
    for e in g.iter() {
        e.ctx.mark_inherited();
    }
    FORK_HOLD.with(|h| *h.borrow_mut() = Some(g));
}

/// `fork` parent hook: lets the registry go.
pub(crate) fn after_fork_parent() {
    FORK_HOLD.with(|h| drop(h.borrow_mut().take()));
    for ctx in shared_rings() {
        super::remote::serve(&ctx);
    }
}

/// `fork` child hook: unlocks the copied registry and keeps it as the
/// newest generation; the child starts an empty one.
pub(crate) fn after_fork_child() {
    FORK_HOLD.with(|h| drop(h.borrow_mut().take()));
    let parent = RINGS.take() as *mut Table;
    for i in (1..GENERATIONS).rev() {
        INHERITED[i].store(INHERITED[i - 1].load(Ordering::Relaxed), Ordering::Relaxed);
    }
    INHERITED[0].store(parent, Ordering::Release);
}

/// The inherited (not yet adopted) ring whose identity is `id`: marked
/// taken in its generation, so it is adopted once.
fn take_inherited(id: (u64, u64)) -> Option<Arc<Ctx>> {
    for gen in &INHERITED {
        let p = gen.load(Ordering::Acquire);
        if p.is_null() {
            continue;
        }
        // SAFETY: generations are leaked registries, never freed.
        let Ok(v) = (unsafe { &*p }).try_read() else { continue };
        if let Some(e) = v.iter().find(|e| e.ctx.ident == id && !e.ctx.closed.load(Ordering::Acquire)) {
            // The copy is this process's own memory: marking it closed
            // touches nothing of the parent's.
            e.ctx.closed.store(true, Ordering::Release);
            return Some(e.ctx.clone());
        }
    }
    None
}

/// Adopts the inherited ring `id` (see the module comment).
#[cold]
fn adopt(id: (u64, u64)) -> Result<Arc<Ctx>, Errno> {
    if INHERITED[0].load(Ordering::Acquire).is_null() {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    let mut v = RINGS.get().write().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = v.iter().find(|e| e.ctx.ident == id) {
        return Ok(e.ctx.clone());
    }
    let old = take_inherited(id).ok_or(Errno(libc::EOPNOTSUPP))?;
    // The exit hook is already armed: the parent's prepare hook did it,
    // and the registration is inherited.
    let ctx = Ctx::adopt(&old);
    v.retain(|e| !e.ctx.closed.load(Ordering::Acquire));
    v.push(Entry { fd: -1, ctx: ctx.clone() });
    drop(v);
    super::remote::serve(&ctx);
    Ok(ctx)
}

/// The (st_dev, st_ino) of `fd`, or EBADF (see [`crate::sys::file_stat`]).
pub(crate) fn identity(fd: i32) -> Result<(u64, u64), Errno> {
    crate::sys::file_stat(fd).map(|st| (st.dev, st.ino)).ok_or(Errno(libc::EBADF))
}

/// Records that `fd` is the ring `ctx`.
pub(crate) fn insert(fd: i32, ctx: Arc<Ctx>) {
    let mut v = RINGS.get().write().unwrap_or_else(|e| e.into_inner());
    // Rings are told apart by identity, not fd number (a number can be
    // reused while a dup keeps the old ring alive): drop only closed ones.
    v.retain(|e| !e.ctx.closed.load(std::sync::atomic::Ordering::Acquire));
    v.push(Entry { fd, ctx });
}

/// The ring behind `fd`: EBADF for a bad fd, EOPNOTSUPP for a non-ring.
pub(crate) fn lookup(fd: i32) -> Result<Arc<Ctx>, Errno> {
    lookup_ident(identity(fd)?)
}

/// The ring whose memfd identity is `id` (EOPNOTSUPP if none): the
/// lookup for a caller that already knows which ring an fd refers to, so
/// no `fstat` is needed.
pub(crate) fn lookup_ident(id: (u64, u64)) -> Result<Arc<Ctx>, Errno> {
    let v = RINGS.get().read().unwrap_or_else(|e| e.into_inner());
    match v.iter().find(|e| e.ctx.ident == id) {
        Some(e) => Ok(e.ctx.clone()),
        None => {
            drop(v);
            adopt(id)
        }
    }
}

/// True when `fd` refers to a ringport ring.
pub(crate) fn is_ring(fd: i32) -> bool {
    lookup(fd).is_ok()
}

/// Forgets the ring whose fd is `fd`, returning it.
pub(crate) fn remove(fd: i32) -> Option<Arc<Ctx>> {
    let id = identity(fd).ok()?;
    let mut v = RINGS.get().write().unwrap_or_else(|e| e.into_inner());
    match v.iter().position(|e| e.ctx.ident == id) {
        Some(i) => Some(v.swap_remove(i).ctx),
        None => {
            // An inherited ring this process never used: forget it here.
            drop(v);
            take_inherited(id);
            None
        }
    }
}
