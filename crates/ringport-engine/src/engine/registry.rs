//! Which fds are rings: the map from a ring fd to its engine context.
//!
//! A ring is recognised by the identity of its memfd (device and inode), not
//! by the fd number alone, so a `dup`ed or inherited ring fd finds its ring
//! and a reused fd number never does.

use super::{Ctx, Errno};
use std::sync::{Arc, RwLock};

pub(crate) struct Entry {
    /// The fd the ring was created with (informational: lookups go by identity).
    #[allow(dead_code)]
    fd: i32,
    ctx: Arc<Ctx>,
}

/// The process's rings (empty in a fork child: the parent's are not usable).
pub(crate) static RINGS: super::global::Global<RwLock<Vec<Entry>>> = super::global::Global::new(|| RwLock::new(Vec::new()));

/// The (st_dev, st_ino) of `fd`, or EBADF.
pub(crate) fn identity(fd: i32) -> Result<(u64, u64), Errno> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out-pointer.
    if fd < 0 || unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(Errno(libc::EBADF));
    }
    // SAFETY: fstat succeeded.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
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
    v.iter().find(|e| e.ctx.ident == id).map(|e| e.ctx.clone()).ok_or(Errno(libc::EOPNOTSUPP))
}

/// True when `fd` refers to a ringport ring.
pub(crate) fn is_ring(fd: i32) -> bool {
    lookup(fd).is_ok()
}

/// Forgets the ring whose fd is `fd`, returning it.
pub(crate) fn remove(fd: i32) -> Option<Arc<Ctx>> {
    let id = identity(fd).ok()?;
    let mut v = RINGS.get().write().unwrap_or_else(|e| e.into_inner());
    let i = v.iter().position(|e| e.ctx.ident == id)?;
    Some(v.swap_remove(i).ctx)
}
