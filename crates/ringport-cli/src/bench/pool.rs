//! The `threadpool` backend: each op is handed to a pool of threads that
//! run it with a blocking system call, the way `tokio::fs` (through
//! `spawn_blocking`) and monoio's fallback do.
//!
//! As in tokio's blocking pool, a shared queue behind a mutex feeds the
//! workers, each job wakes one idle worker, and a finished job wakes the
//! submitter. The pool has as many threads as the queue depth (at most
//! 512), as tokio's would grow to for that many outstanding operations.

use super::ops::{run_blocking, Op, Uring};
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Jobs {
    queue: VecDeque<(Op, u64)>,
    shutdown: bool,
}

struct Shared {
    jobs: Mutex<Jobs>,
    job_cv: Condvar,
    done: Mutex<Vec<(u64, i32)>>,
    done_cv: Condvar,
}

/// A pool of worker threads behind the [`Uring`] interface.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// Completions taken from the shared list, not yet reaped.
    ready: Vec<(u64, i32)>,
}

impl Pool {
    /// Starts `threads` workers (at least one).
    pub fn new(threads: usize) -> io::Result<Pool> {
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Jobs { queue: VecDeque::new(), shutdown: false }),
            job_cv: Condvar::new(),
            done: Mutex::new(Vec::new()),
            done_cv: Condvar::new(),
        });
        let mut pool = Pool { shared, threads: Vec::new(), ready: Vec::new() };
        for i in 0..threads.max(1) {
            let s = pool.shared.clone();
            let t = std::thread::Builder::new().name(format!("bench-pool-{i}")).spawn(move || worker(&s))?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    fn take_done(&mut self, want: usize) {
        // Ready or not, this returns; a wait with no limit cannot time out.
        let _ = self.take_done_until(want, None);
    }

    /// Moves finished jobs to `ready` once `want` are there, or at
    /// `deadline`; false if the deadline came first.
    fn take_done_until(&mut self, want: usize, deadline: Option<Instant>) -> bool {
        let mut done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        let mut ok = true;
        while self.ready.len() + done.len() < want {
            match deadline {
                None => done = self.shared.done_cv.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        ok = false;
                        break;
                    }
                    done = self.shared.done_cv.wait_timeout(done, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
        if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut *done);
        } else {
            self.ready.append(&mut done);
        }
        ok
    }
}

fn worker(s: &Shared) {
    loop {
        let (op, ud) = {
            let mut jobs = s.jobs.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(j) = jobs.queue.pop_front() {
                    break j;
                }
                if jobs.shutdown {
                    return;
                }
                jobs = s.job_cv.wait(jobs).unwrap_or_else(|e| e.into_inner());
            }
        };
        let res = run_blocking(op);
        s.done.lock().unwrap_or_else(|e| e.into_inner()).push((ud, res));
        s.done_cv.notify_one();
    }
}

impl Uring for Pool {
    unsafe fn push_with(&mut self, n: usize, mut make: impl FnMut(usize) -> (Op, u64)) -> io::Result<()> {
        // One lock and one wakeup per job, as spawn_blocking does.
        for i in 0..n {
            let job = make(i);
            self.shared.jobs.lock().unwrap_or_else(|e| e.into_inner()).queue.push_back(job);
            self.shared.job_cv.notify_one();
        }
        Ok(())
    }
    fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        self.take_done(want);
        Ok(0)
    }
    fn submit_and_wait_for(&mut self, want: usize, limit: Duration) -> io::Result<usize> {
        if self.take_done_until(want, Some(Instant::now() + limit)) {
            Ok(0)
        } else {
            Err(io::Error::from_raw_os_error(libc::ETIME))
        }
    }
    fn reap(&mut self, mut f: impl FnMut(u64, i32)) -> usize {
        if self.ready.is_empty() {
            self.take_done(0);
        }
        let n = self.ready.len();
        for (ud, res) in self.ready.drain(..) {
            f(ud, res);
        }
        n
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.jobs.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
        self.shared.job_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
