//! One module per op family, like the kernel's `io_uring/` directory.

pub(crate) mod advise;
pub(crate) mod cancel;
pub(crate) mod epoll;
pub(crate) mod fs;
pub(crate) mod nop;
pub(crate) mod openclose;
pub(crate) mod poll;
pub(crate) mod rsrc;
pub(crate) mod rw;
pub(crate) mod splice;
pub(crate) mod statx;
pub(crate) mod sync;
pub(crate) mod timeout;
pub(crate) mod truncate;
pub(crate) mod xattr;
pub(crate) mod kbuf;
pub(crate) mod msg_ring;
pub(crate) mod net;
