//! One module per op family, like the kernel's `io_uring/` directory.

pub(crate) mod cancel;
pub(crate) mod fs;
pub(crate) mod nop;
pub(crate) mod poll;
pub(crate) mod rw;
pub(crate) mod timeout;
pub(crate) mod kbuf;
pub(crate) mod net;
