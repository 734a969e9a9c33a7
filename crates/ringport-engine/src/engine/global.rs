//! Process-wide services (the worker pool, the timer, the reactor, the ring
//! registry) and what becomes of them across `fork`.
//!
//! A fork child has only the thread that called fork: the parent's workers,
//! timer and reactor threads are gone, and a lock one of them held is held
//! forever. So each service lives behind a [`Global`] pointer that the
//! `pthread_atfork` child handler clears; the child starts fresh services on
//! first use and the parent's copies are leaked (nothing may touch them).
//! The parent's rings are shared with the child, as on Linux: see
//! `registry.rs` (how the child finds them) and `shared.rs` (what the two
//! processes share).

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// A lazily created process-wide value that a fork child forgets.
pub(crate) struct Global<T: 'static> {
    ptr: AtomicPtr<T>,
    init: fn() -> T,
}

impl<T: 'static> Global<T> {
    /// A service built by `init` on first use.
    pub const fn new(init: fn() -> T) -> Global<T> {
        Global { ptr: AtomicPtr::new(core::ptr::null_mut()), init }
    }

    /// The current instance, created if there is none.
    pub fn get(&self) -> &'static T {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null pointer came from Box::into_raw below and is
            // never freed (reset leaks it), so it stays valid forever.
            return unsafe { &*p };
        }
        let new = Box::into_raw(Box::new((self.init)()));
        match self.ptr.compare_exchange(core::ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: we just published `new`; it is never freed.
            Ok(_) => unsafe { &*new },
            Err(existing) => {
                // SAFETY: `new` lost the race and was never shared.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: as above for a published pointer.
                unsafe { &*existing }
            }
        }
    }

    /// The current instance, if one was created.
    pub fn peek(&self) -> Option<&'static T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: as in get.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Forgets the instance (in a fork child; it is leaked, not dropped).
    fn reset(&self) {
        self.ptr.store(core::ptr::null_mut(), Ordering::Release);
    }

    /// Forgets the instance and returns it (null if there was none); it
    /// is never freed.
    pub fn take(&self) -> *const T {
        self.ptr.swap(core::ptr::null_mut(), Ordering::AcqRel)
    }
}

extern "C" fn fork_prepare() {
    super::registry::before_fork();
}

extern "C" fn fork_parent() {
    super::registry::after_fork_parent();
}

extern "C" fn fork_child() {
    // Only atomic stores, an unlock and a close: no allocation.
    super::registry::after_fork_child();
    super::shared::forget_pid();
    super::reactor::close_inherited();
    super::wq::POOL.reset();
    super::wq::forget_finishing();
    super::timer::TIMERS.reset();
    super::reactor::REACTOR.reset();
    super::aio::AIO.reset();
    super::par::HELPER.reset();
    super::ops::net::NONBLOCKING.reset();
    // The forking thread goes on in the child with a new thread id.
    super::TID.with(|t| t.set(0));
}

/// Installs the fork-child handler (once per process).
pub(crate) fn install_fork_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The prepare handler takes the ring registry's read lock, the parent
        // and child handlers release it; the child one otherwise only
        // touches atomics and closes an fd the child inherited.
        // SAFETY: registers handlers that run outside any engine lock.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    });
}
