//! The interception library: loaded with `LD_PRELOAD`, it traps the
//! program's io_uring system calls and serves them from the ringport engine.
//! (Being built: see issue 3.)
