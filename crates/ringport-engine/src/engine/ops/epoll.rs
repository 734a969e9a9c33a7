//! EPOLL_CTL (the kernel's io_uring/epoll.c): `epoll_ctl(2)` issued from
//! the ring.
//!
//! `sqe->fd` is the epoll fd, `len` the operation, `off` the target fd and
//! `addr` the event, copied at prep (EFAULT there) unless the operation is
//! EPOLL_CTL_DEL, which takes none. `buf_index` and `splice_fd_in` must be
//! 0. The call never sleeps, so it is issued inline. A target that is a
//! ring served by ringport (a memfd, which epoll refuses) joins the set
//! through its readiness eventfd, as the interception library's
//! `epoll_ctl` stand-in does, so the ring reads as readable while CQEs are
//! waiting.

use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{registry, uaccess, Ctx, Errno, Sqe};

/// A prepared EPOLL_CTL.
pub(crate) struct EpollCtl {
    epfd: i32,
    op: i32,
    fd: i32,
    event: libc::epoll_event,
}

pub(crate) fn prep(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.buf_index() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let op = sqe.len() as i32;
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    if op != libc::EPOLL_CTL_DEL {
        let mut b = [0u8; core::mem::size_of::<libc::epoll_event>()];
        uaccess::copy_in(&mut b, sqe.addr())?;
        // SAFETY: b holds size_of::<epoll_event>() bytes; the struct is
        // plain data (packed on x86_64, so read unaligned).
        event = unsafe { core::ptr::read_unaligned(b.as_ptr() as *const libc::epoll_event) };
    }
    Ok(OpData::Epoll(EpollCtl { epfd: sqe.fd(), op, fd: sqe.off() as i32, event }))
}

pub(crate) fn issue(_ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::Epoll(e) = &mut req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let fd = match registry::lookup(e.fd).and_then(|ring| ring.ready_eventfd()) {
        Ok(efd) => efd,
        Err(_) => e.fd,
    };
    // SAFETY: epoll_ctl on fd numbers with our copy of the event.
    let r = unsafe { libc::epoll_ctl(e.epfd, e.op, fd, &mut e.event) };
    Issue::Done(if r < 0 { Errno::last().neg() } else { 0 }, 0)
}
