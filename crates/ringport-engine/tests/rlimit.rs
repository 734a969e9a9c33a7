//! RLIMIT_FSIZE, differential (liburing's `test_write_efbig`): under a file
//! size limit below the ring file's size, setup still works, and writes past
//! the limit fail with EFBIG while those below it succeed, as on the kernel.
//!
//! The limit is process-wide, so this is the only test in its binary.

mod common;
use common::*;

const BS: usize = 4096;
const LIMIT: u64 = 128 * 1024;

#[test]
fn writes_past_rlimit_fsize_fail_with_efbig() {
    // SAFETY: getrlimit/setrlimit/signal with valid arguments; SIGXFSZ is
    // ignored so that the writes past the limit do not kill the test.
    let old = unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
        // The soft limit only, so that it can be put back unprivileged.
        let low = libc::rlimit { rlim_cur: LIMIT, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &low), 0);
        old
    };
    let buf = vec![0x5au8; BS];
    diff("writes_past_rlimit_fsize", |b, t| {
        let ring = match Ring::new(b, 32, 0) {
            Ok(r) => r,
            Err(e) => {
                t.rec("setup", e);
                return;
            }
        };
        t.rec("setup", "ok");
        let f = TempFile::new("efbig", b"", libc::O_WRONLY);
        let sqes: Vec<Sqe> = (0..32u64).map(|i| Sqe::write(f.fd, buf.as_ptr(), BS as u32, i * BS as u64, i)).collect();
        ring.push_all(&sqes);
        t.rec("submit", ring.submit(32));
        let mut cqes = ring.wait_cqes(32, std::time::Duration::from_secs(5));
        cqes.sort_by_key(|c| c.user_data);
        // (user_data, res): BS below the limit, -EFBIG past it.
        t.rec("results", cqes.iter().map(|c| (c.user_data, c.res)).collect::<Vec<_>>());
        let efbig = cqes.iter().filter(|c| c.res == -libc::EFBIG).count();
        t.rec("writes refused with EFBIG", efbig);
        t.rec("file size", std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0));
    });
    // SAFETY: restoring the limit read above.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };
}
